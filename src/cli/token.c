/* hoist service token add LOGIN: a key for the deployer service. */
#include <string.h>

#include "cli.h"
#include "env.h"
#include "hoist/server.h"

#define VERB "service token"

static const char usage[] =
    "Usage: hoist service token add LOGIN [--data DIR]\n\n"
    "Create a key for LOGIN in the service's tokens file (DATA/tokens.json) and print\n"
    "it as UUID:KEY. The key is printed this once; the file keeps only its SHA-256.\n"
    "A running `hoist serve` picks the new entry up at once.\n\n"
    "Options:\n"
    "  --data DIR  data directory (default ${HOIST_CACHE:-~/.cache/hoist}/serve)\n"
    "  -h, --help  show this help\n";

static int token_run(int argc, char **argv) {
  const char *data = NULL;
  const cli_opt opts[] = {CLI_STRING("data", &data), CLI_END};
  int rc = cli_parse_opts(VERB, usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (argc - optind != 2 || strcmp(argv[optind], "add") != 0)
    return cli_usage(VERB, "expected: add LOGIN");
  _cleanup_free_ char *default_data = data ? NULL : cli_env_serve_data();
  hoist_err *err = NULL;
  _cleanup_free_ char *key = NULL;
  if (hoist_server_token_add(data ? data : default_data, argv[optind + 1], &key, &err) < 0)
    return cli_fail(VERB, err);
  printf("%s\n", key);
  return EXIT_OK;
}

HOIST_SERVICE_SUBVERB(token, "token", "create a key for the deployer service", token_run);
