/* hoist service status ID: a build job's state on the deployer service. */
#include <string.h>

#include "client.h"

#define VERB "service status"

static const char usage[] = "Usage: hoist service status ID [OPTIONS]\n\n"
                            "Print the state of build job ID: phase, times, image and\n"
                            "digest, or the error.\n\n"
                            "Options:\n"
                            "  -h, --help  show this help\n\n" CLIENT_HELP;

static int status(cli_client *cl, char **operands, int n) {
  (void)n;
  hoist_err *err = NULL;
  _cleanup_free_ char *q = cli_client_escape(operands[0]);
  _cleanup_free_ char *path = hoist_asprintf("/system/api/v1/build/status?id=%s", q);
  long status = 0;
  json_t *out = NULL;
  if (cli_client_ready(cl, &err) < 0 ||
      cli_client_call(cl, "GET", path, NULL, &status, &out, &err) < 0)
    return cli_fail(VERB, err);
  const char *st = json_string_value(json_object_get(out, "status"));
  if (cl->json || !st || strcmp(st, "ok") != 0)
    return cli_client_report(cl, VERB, status, out);
  static const char *const fields[] = {"id",        "job_name",       "phase",  "creationTime",
                                       "startTime", "completionTime", "source", "target",
                                       "kind",      "image",          "digest", "error"};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    const char *v = json_string_value(json_object_get(out, fields[i]));
    if (v)
      printf("%s: %s\n", fields[i], v);
  }
  json_decref(out);
  return EXIT_OK;
}

static int status_run(int argc, char **argv) {
  return cli_client_run(VERB, usage, 1, "expected one job id", status, argc, argv);
}

HOIST_SERVICE_SUBVERB(status, "status", "show a build job of the deployer service", status_run);
