/* hoist status ID: a build job's state on the deployer service. */
#include <string.h>

#include "client.h"

static const char usage[] = "Usage: hoist status ID [OPTIONS]\n\n"
                            "Print the state of build job ID: phase, times, image and\n"
                            "digest, or the error.\n\n"
                            "Options:\n"
                            "  -h, --help  show this help\n\n" CLIENT_HELP;

static int status_run(int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, CLIENT_LONG, {0}};
  cli_client cl = {0};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == 'h') {
      fputs(usage, stdout);
      cli_client_free(&cl);
      return EXIT_OK;
    }
    if (!cli_client_handle(&cl, c, optarg)) {
      cli_client_free(&cl);
      return cli_usage("status", "unknown option");
    }
  }
  if (argc - optind != 1) {
    cli_client_free(&cl);
    return cli_usage("status", "expected one job id");
  }
  hoist_err *err = NULL;
  _cleanup_free_ char *path = NULL;
  char *q = cli_client_escape(argv[optind]);
  path = hoist_asprintf("/system/api/v1/build/status?id=%s", q);
  free(q);
  long status = 0;
  json_t *out = NULL;
  if (cli_client_ready(&cl, &err) < 0 ||
      cli_client_call(&cl, "GET", path, NULL, &status, &out, &err) < 0) {
    cli_client_free(&cl);
    return cli_fail("status", err);
  }
  const char *st = json_string_value(json_object_get(out, "status"));
  if (!cl.json && st && strcmp(st, "ok") == 0) {
    static const char *const fields[] = {"id",        "job_name",       "phase",  "creationTime",
                                         "startTime", "completionTime", "source", "target",
                                         "kind",      "image",          "digest", "error"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
      const char *v = json_string_value(json_object_get(out, fields[i]));
      if (v)
        printf("%s: %s\n", fields[i], v);
    }
    json_decref(out);
    cli_client_free(&cl);
    return EXIT_OK;
  }
  int ret = cli_client_report(&cl, "status", status, out);
  cli_client_free(&cl);
  return ret;
}

HOIST_VERB(status, "status", "show a build job of the deployer service", status_run);
