/* hoist prune: remove what the rootfs and build caches have not used lately. */
#include <inttypes.h>
#include <string.h>

#include "cli.h"
#include "env.h"
#include "hoist/build.h"
#include "hoist/unpack.h"

#define VERB "prune"

static const char usage[] =
    "Usage: hoist prune [--max-age AGE] [--dry-run] [--json]\n"
    "\n"
    "Remove what hoist keeps only for speed and has not used for AGE: the\n"
    "unpacked base images of the rootfs cache ($HOIST_ROOTFS_CACHE, else\n"
    "${HOIST_CACHE:-~/.cache/hoist}/rootfs) and the entries of the build cache\n"
    "(with the layers only they held). A later build unpacks or builds again\n"
    "what it needs. Images in the image store are not touched (hoist gc).\n"
    "\n"
    "Options:\n"
    "  --max-age AGE  keep what was used within AGE: seconds, or a number with\n"
    "                 s, m, h or d (default 7d). A tree a running build or\n"
    "                 run is using is kept whatever its age.\n"
    "  --dry-run      print what would be removed; remove nothing\n"
    "  --json         print {\"rootfs\": {\"removed\": N, \"bytes\": N, \"inUse\": N},\n"
    "                 \"buildCache\": {...}, \"dryRun\": B}\n"
    "  -h, --help     show this help\n";

static int run(int argc, char **argv) {
  bool json = false, dry_run = false;
  int64_t max_age = 7 * 86400;
  const cli_opt opts[] = {
      CLI_FLAG("json", &json),
      CLI_CALL("max-age", cli_opt_age, &max_age,
               .bad = "--max-age: \"%s\" is not an age (like 0, 90s, 15m, 1h, 7d)"),
      CLI_FLAG("dry-run", &dry_run),
      CLI_END,
  };
  int rc = cli_parse_opts(VERB, usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (optind != argc)
    return cli_usage(VERB, "unexpected argument '%s'", argv[optind]);
  hoist_err *err = NULL;
  hoist_prune_report rootfs, builds;
  _cleanup_free_ char *rootfs_dir = cli_env_rootfs_cache();
  _cleanup_free_ char *build_dir = cli_env_build_cache();
  if (hoist_unpack_cache_prune(rootfs_dir, max_age, dry_run, &rootfs, &err) < 0 ||
      hoist_build_cache_prune(build_dir, max_age, dry_run, &builds, &err) < 0)
    return cli_fail(VERB, err);
  if (json) {
    cli_json_print(stdout,
                   json_pack("{s:{s:I, s:I, s:I}, s:{s:I, s:I}, s:b}", "rootfs", "removed",
                             (json_int_t)rootfs.removed, "bytes", (json_int_t)rootfs.bytes, "inUse",
                             (json_int_t)rootfs.in_use, "buildCache", "removed",
                             (json_int_t)builds.removed, "bytes", (json_int_t)builds.bytes,
                             "dryRun", dry_run),
                   0);
    return EXIT_OK;
  }
  const char *verb = dry_run ? "would remove" : "removed";
  char rb[32], bb[32];
  cli_human_size((double)rootfs.bytes, rb);
  cli_human_size((double)builds.bytes, bb);
  char in_use[64] = "";
  if (rootfs.in_use)
    snprintf(in_use, sizeof in_use, "; kept %" PRIu64 " in use", rootfs.in_use);
  printf("rootfs cache: %s %" PRIu64 " tree%s (%s)%s\n"
         "build cache: %s %" PRIu64 " entr%s (%s)\n",
         verb, rootfs.removed, rootfs.removed == 1 ? "" : "s", rb, in_use, verb, builds.removed,
         builds.removed == 1 ? "y" : "ies", bb);
  return EXIT_OK;
}

HOIST_VERB(prune, VERB, "remove what the rootfs and build caches have not used lately", run);
