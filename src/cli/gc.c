/* hoist gc: remove unreferenced blobs from an OCI image layout. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <string.h>

#include "cli.h"
#include "hoist/ref.h"
#include "hoist/store.h"

#define VERB "gc"

static const char usage[] =
    "Usage: hoist gc [OPTIONS] oci:DIR\n"
    "\n"
    "Remove the blobs of an OCI image layout that no entry of index.json reaches\n"
    "(through indexes, manifests, configs and layers), and temp files that\n"
    "interrupted writes left behind. Prints the number of files removed and the\n"
    "bytes freed. An unreachable blob younger than --min-age is kept: it may\n"
    "belong to a write that has not been tagged yet (reusing a stored blob\n"
    "makes it young again).\n"
    "\n"
    "Options:\n"
    "  --min-age AGE  keep unreachable blobs younger than AGE: seconds, or a\n"
    "                 number with s, m, h or d (default 1h; 0 collects all, for\n"
    "                 when nothing else writes to the layout)\n"
    "  --json         print {\"removed\": N, \"freedBytes\": N}\n"
    "  -h, --help     show this help\n";

static int run(int argc, char **argv) {
  enum { OPT_JSON = 256, OPT_MIN_AGE };
  static const struct option opts[] = {
      {"json", no_argument, NULL, OPT_JSON},
      {"min-age", required_argument, NULL, OPT_MIN_AGE},
      {"help", no_argument, NULL, 'h'},
      {0},
  };
  bool json = false;
  int64_t min_age = 3600;
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_JSON:
      json = true;
      break;
    case OPT_MIN_AGE:
      if (!cli_parse_age(optarg, &min_age))
        return cli_usage(VERB, "--min-age: \"%s\" is not an age (like 0, 90s, 15m, 1h, 2d)",
                         optarg);
      break;
    case 'h':
      fputs(usage, stdout);
      return EXIT_OK;
    default:
      return cli_usage(VERB, "unknown option");
    }
  }
  if (optind + 1 != argc)
    return cli_usage(VERB, "expected one layout location (oci:DIR)");
  hoist_err *err = NULL;
  _cleanup_loc_ hoist_loc *loc = NULL;
  if (hoist_loc_parse(argv[optind], &loc, &err) < 0)
    return cli_fail(VERB, err);
  if (loc->kind != HOIST_LOC_LAYOUT || loc->tag)
    return cli_usage(VERB, "%s: expected an image layout without a tag (oci:DIR)", argv[optind]);
  _cleanup_store_ hoist_store *s = NULL;
  uint64_t removed = 0, freed = 0;
  if (hoist_store_open(loc->dir, false, &s, &err) < 0 ||
      hoist_store_gc(s, min_age, &removed, &freed, &err) < 0)
    return cli_fail(VERB, err);
  if (json)
    printf("{\"removed\": %llu, \"freedBytes\": %llu}\n", (unsigned long long)removed,
           (unsigned long long)freed);
  else
    printf("removed %llu blob%s, freed %llu bytes\n", (unsigned long long)removed,
           removed == 1 ? "" : "s", (unsigned long long)freed);
  return EXIT_OK;
}

HOIST_VERB(gc, VERB, "remove unreferenced blobs from an OCI image layout", run);
