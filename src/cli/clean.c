/* hoist service clean: remove the caller's old build jobs on the deployer service. */
#include <math.h>
#include <string.h>

#include "client.h"

#define VERB "service clean"

static const char usage[] =
    "Usage: hoist service clean [--max-age-hours N] [OPTIONS]\n\n"
    "Remove your build jobs (records, logs, work directories) older than N hours\n"
    "(default 24) from the deployer service. Running builds are kept.\n\n"
    "Options:\n"
    "  --max-age-hours N  age limit in hours (a non-negative number)\n"
    "  -h, --help         show this help\n\n" CLIENT_HELP;

/* --max-age-hours: a non-negative number of hours, into a double. */
static int opt_hours(const char *verb, const char *arg, void *dest) {
  char *end;
  double v = strtod(arg, &end);
  if (!*arg || *end || !isfinite(v) || v < 0)
    return cli_usage(verb, "--max-age-hours: expected a non-negative number"), -1;
  *(double *)dest = v;
  return 0;
}

static int clean_run(int argc, char **argv) {
  double hours = 24;
  _cleanup_client_ cli_client cl = {0};
  const cli_opt opts[] = {
      CLI_CALL("max-age-hours", opt_hours, &hours),
      CLI_GROUP(cli_client_opts, &cl),
      CLI_END,
  };
  int rc = cli_parse_opts(VERB, usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (optind != argc)
    return cli_usage(VERB, "unexpected argument \"%s\"", argv[optind]);
  hoist_err *err = NULL;
  json_t *body = json_pack("{s:f}", "max_age_hours", hours);
  long status = 0;
  json_t *out = NULL;
  int r = cli_client_ready(&cl, &err);
  if (r == 0)
    r = cli_client_call(&cl, "POST", "/system/api/v1/build/cleanup", body, &status, &out, &err);
  json_decref(body);
  if (r < 0)
    return cli_fail(VERB, err);
  return cli_client_report(&cl, VERB, status, out);
}

HOIST_SERVICE_SUBVERB(clean, "clean", "remove old build jobs from the deployer service", clean_run);
