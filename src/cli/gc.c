/* hoist gc: remove unreferenced blobs from an OCI image layout. */
#include <stdint.h>

#include "cli.h"
#include "env.h"
#include "hoist/image.h"
#include "hoist/ref.h"
#include "hoist/store.h"

#define VERB "gc"

static const char usage[] =
    "Usage: hoist gc [OPTIONS] [oci:DIR]\n"
    "\n"
    "Remove the blobs of an OCI image layout (without one: of every layout of the\n"
    "image store, as `hoist rmi` leaves them) that no entry of index.json reaches\n"
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
  bool json = false;
  int64_t min_age = 3600;
  const cli_opt opts[] = {
      CLI_FLAG("json", &json),
      CLI_CALL("min-age", cli_opt_age, &min_age,
               .bad = "--min-age: \"%s\" is not an age (like 0, 90s, 15m, 1h, 2d)"),
      CLI_END,
  };
  _cleanup_loc_ hoist_loc *loc = NULL;
  int rc = cli_parse_opts(VERB, usage, opts, argc, argv);
  if (rc < 0 && optind < argc)
    rc = cli_layout_operand(VERB, argc, argv, &loc);
  if (rc >= 0)
    return rc;
  hoist_err *err = NULL;
  _cleanup_strfreev_ char **dirs = NULL;
  size_t n = 0;
  if (loc) {
    dirs = hoist_malloc0(2 * sizeof *dirs);
    dirs[n++] = hoist_strdup(loc->dir);
  } else {
    _cleanup_free_ char *store = cli_env_image_store();
    if (hoist_image_store_layouts(store, &dirs, &n, &err) < 0)
      return cli_fail(VERB, err);
  }
  uint64_t removed = 0, freed = 0;
  for (size_t i = 0; i < n; i++) {
    _cleanup_store_ hoist_store *s = NULL;
    uint64_t r = 0, f = 0;
    if (hoist_store_open(dirs[i], false, &s, &err) < 0 ||
        hoist_store_gc(s, min_age, &r, &f, &err) < 0)
      return cli_fail(VERB, err);
    removed += r;
    freed += f;
  }
  if (json)
    cli_json_print(
        stdout,
        json_pack("{s:I, s:I}", "removed", (json_int_t)removed, "freedBytes", (json_int_t)freed),
        0);
  else
    printf("removed %llu blob%s, freed %llu bytes\n", (unsigned long long)removed,
           removed == 1 ? "" : "s", (unsigned long long)freed);
  return EXIT_OK;
}

HOIST_VERB(gc, VERB, "remove unreferenced blobs from a layout or the image store", run);
