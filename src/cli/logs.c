/* hoist service logs [ID]: a build's log from the deployer service. */
#include <string.h>

#include "client.h"

#define VERB "service logs"

static const char usage[] = "Usage: hoist service logs [ID] [--follow] [OPTIONS]\n\n"
                            "Print the log of build job ID (default: your latest build).\n\n"
                            "Options:\n"
                            "  -f, --follow  keep printing until the build ends\n"
                            "  -h, --help    show this help\n\n" CLIENT_HELP;

static int logs_run(int argc, char **argv) {
  bool follow = false;
  _cleanup_client_ cli_client cl = {0};
  const cli_opt opts[] = {
      CLI_FLAG("follow", &follow, .letter = 'f'),
      CLI_GROUP(cli_client_opts, &cl),
      CLI_END,
  };
  int rc = cli_parse_opts(VERB, usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (argc - optind > 1)
    return cli_usage(VERB, "expected at most one job id");
  hoist_err *err = NULL;
  if (cli_client_ready(&cl, &err) < 0)
    return cli_fail(VERB, err);
  _cleanup_free_ char *id = optind < argc ? hoist_strdup(argv[optind]) : NULL;
  if (!id) {
    long status;
    json_t *out = NULL;
    if (cli_client_call(&cl, "GET", "/system/api/v1/builds", NULL, &status, &out, &err) < 0)
      return cli_fail(VERB, err);
    const char *last =
        json_string_value(json_object_get(json_array_get(json_object_get(out, "builds"), 0), "id"));
    if (!last) {
      json_decref(out);
      fprintf(stderr, "hoist service logs: no build jobs\n");
      return EXIT_FAIL;
    }
    id = hoist_strdup(last);
    json_decref(out);
  }
  int r = cli_client_stream_log(&cl, id, follow, &err);
  return r < 0 ? cli_fail(VERB, err) : EXIT_OK;
}

HOIST_SERVICE_SUBVERB(logs, "logs", "print a build's log from the deployer service", logs_run);
