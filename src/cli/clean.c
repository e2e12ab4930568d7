/* hoist clean: remove the caller's old build jobs on the deployer service. */
#include <math.h>
#include <string.h>

#include "client.h"

static const char usage[] =
    "Usage: hoist clean [--max-age-hours N] [OPTIONS]\n\n"
    "Remove your build jobs (records, logs, work directories) older than N hours\n"
    "(default 24) from the deployer service. Running builds are kept.\n\n"
    "Options:\n"
    "  --max-age-hours N  age limit in hours (a non-negative number)\n"
    "  -h, --help         show this help\n\n" CLIENT_HELP;

static int clean_run(int argc, char **argv) {
  enum { O_AGE = 256 };
  static const struct option opts[] = {
      {"max-age-hours", required_argument, NULL, O_AGE},
      {"help", no_argument, NULL, 'h'},
      CLIENT_LONG,
      {0},
  };
  double hours = 24;
  cli_client cl = {0};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == O_AGE) {
      char *end;
      hours = strtod(optarg, &end);
      if (!*optarg || *end || !isfinite(hours) || hours < 0) {
        cli_client_free(&cl);
        return cli_usage("clean", "--max-age-hours: expected a non-negative number");
      }
    } else if (c == 'h') {
      fputs(usage, stdout);
      cli_client_free(&cl);
      return EXIT_OK;
    } else if (!cli_client_handle(&cl, c, optarg)) {
      cli_client_free(&cl);
      return cli_usage("clean", "unknown option");
    }
  }
  if (optind != argc) {
    cli_client_free(&cl);
    return cli_usage("clean", "unexpected argument \"%s\"", argv[optind]);
  }
  hoist_err *err = NULL;
  json_t *body = json_pack("{s:f}", "max_age_hours", hours);
  long status = 0;
  json_t *out = NULL;
  int r = cli_client_ready(&cl, &err);
  if (r == 0)
    r = cli_client_call(&cl, "POST", "/system/api/v1/build/cleanup", body, &status, &out, &err);
  json_decref(body);
  if (r < 0) {
    cli_client_free(&cl);
    return cli_fail("clean", err);
  }
  int ret = cli_client_report(&cl, "clean", status, out);
  cli_client_free(&cl);
  return ret;
}

HOIST_VERB(clean, "clean", "remove old build jobs from the deployer service", clean_run);
