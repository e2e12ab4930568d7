/* hoist token add LOGIN: a key for the deployer service. */
#include <string.h>

#include "cli.h"
#include "env.h"
#include "hoist/server.h"

static const char usage[] =
    "Usage: hoist token add LOGIN [--data DIR]\n\n"
    "Create a key for LOGIN in the service's tokens file (DATA/tokens.json) and print\n"
    "it as UUID:KEY. The key is printed this once; the file keeps only its SHA-256.\n"
    "A running `hoist serve` picks the new entry up at once.\n\n"
    "Options:\n"
    "  --data DIR  data directory (default ${HOIST_CACHE:-~/.cache/hoist}/serve)\n"
    "  -h, --help  show this help\n";

static int token_run(int argc, char **argv) {
  enum { O_DATA = 256 };
  static const struct option opts[] = {
      {"data", required_argument, NULL, O_DATA},
      {"help", no_argument, NULL, 'h'},
      {0},
  };
  _cleanup_free_ char *data = NULL;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case O_DATA:
      free(data);
      data = hoist_strdup(optarg);
      break;
    case 'h':
      fputs(usage, stdout);
      return EXIT_OK;
    default:
      return cli_usage("token", "unknown option");
    }
  }
  if (argc - optind != 2 || strcmp(argv[optind], "add") != 0)
    return cli_usage("token", "expected: add LOGIN");
  if (!data)
    data = cli_env_serve_data();
  hoist_err *err = NULL;
  _cleanup_free_ char *key = NULL;
  if (hoist_server_token_add(data, argv[optind + 1], &key, &err) < 0)
    return cli_fail("token", err);
  printf("%s\n", key);
  return EXIT_OK;
}

HOIST_VERB(token, "token", "create a key for the deployer service", token_run);
