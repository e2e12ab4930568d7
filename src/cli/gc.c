/* hoist gc: remove unreferenced blobs from an OCI image layout. */
#include <errno.h>
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
    "bytes freed. Run it when nothing else writes to the layout: a blob written\n"
    "but not yet tagged counts as garbage.\n"
    "\n"
    "Options:\n"
    "  --json      print {\"removed\": N, \"freedBytes\": N}\n"
    "  -h, --help  show this help\n";

static int run(int argc, char **argv) {
  bool json = false;
  _cleanup_loc_ hoist_loc *loc = NULL;
  int code = cli_parse_layout_args(VERB, usage, argc, argv, &json, &loc);
  if (code >= 0)
    return code;
  hoist_err *err = NULL;
  _cleanup_store_ hoist_store *s = NULL;
  uint64_t removed = 0, freed = 0;
  if (hoist_store_open(loc->dir, false, &s, &err) < 0 ||
      hoist_store_gc(s, &removed, &freed, &err) < 0)
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
