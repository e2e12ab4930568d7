/* hoist logs [ID]: a build's log from the deployer service. */
#include <string.h>

#include "client.h"

static const char usage[] = "Usage: hoist logs [ID] [--follow] [OPTIONS]\n\n"
                            "Print the log of build job ID (default: your latest build).\n\n"
                            "Options:\n"
                            "  -f, --follow  keep printing until the build ends\n"
                            "  -h, --help    show this help\n\n" CLIENT_HELP;

static int logs_run(int argc, char **argv) {
  static const struct option opts[] = {
      {"follow", no_argument, NULL, 'f'},
      {"help", no_argument, NULL, 'h'},
      CLIENT_LONG,
      {0},
  };
  bool follow = false;
  cli_client cl = {0};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "hf", opts, NULL)) != -1) {
    if (c == 'f')
      follow = true;
    else if (c == 'h') {
      fputs(usage, stdout);
      cli_client_free(&cl);
      return EXIT_OK;
    } else if (!cli_client_handle(&cl, c, optarg)) {
      cli_client_free(&cl);
      return cli_usage("logs", "unknown option");
    }
  }
  if (argc - optind > 1) {
    cli_client_free(&cl);
    return cli_usage("logs", "expected at most one job id");
  }
  hoist_err *err = NULL;
  if (cli_client_ready(&cl, &err) < 0) {
    cli_client_free(&cl);
    return cli_fail("logs", err);
  }
  _cleanup_free_ char *id = optind < argc ? hoist_strdup(argv[optind]) : NULL;
  if (!id) {
    long status;
    json_t *out = NULL;
    if (cli_client_call(&cl, "GET", "/system/api/v1/builds", NULL, &status, &out, &err) < 0) {
      cli_client_free(&cl);
      return cli_fail("logs", err);
    }
    const char *last =
        json_string_value(json_object_get(json_array_get(json_object_get(out, "builds"), 0), "id"));
    if (!last) {
      json_decref(out);
      cli_client_free(&cl);
      fprintf(stderr, "hoist logs: no build jobs\n");
      return EXIT_FAIL;
    }
    id = hoist_strdup(last);
    json_decref(out);
  }
  int r = cli_client_stream_log(&cl, id, follow, &err);
  cli_client_free(&cl);
  return r < 0 ? cli_fail("logs", err) : EXIT_OK;
}

HOIST_VERB(logs, "logs", "print a build's log from the deployer service", logs_run);
