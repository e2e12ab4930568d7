/* hoist unpack: an image's layers applied into a directory (or the rootfs cache). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <string.h>

#include "env.h"
#include "hoist/ref.h"
#include "hoist/registry.h"
#include "hoist/unpack.h"
#include "regopts.h"

#define VERB "unpack"

static const char usage[] =
    "Usage: hoist unpack REF|oci:DIR[:TAG] DEST [OPTIONS]\n"
    "       hoist unpack --cache REF|oci:DIR[:TAG] [OPTIONS]\n\n"
    "Applies an image's layers in order into DEST, which must not exist or be empty,\n"
    "verifying every layer's digest and diffID. On failure DEST is removed.\n"
    "With --cache, unpacks into the rootfs cache (keyed by the image's config digest,\n"
    "done once per image) and prints the tree's path.\n"
    "A registry reference is pulled first into the image store, as `hoist pull REF`\n"
    "does (blobs already there are not fetched again).\n\n"
    "Options:\n"
    "  --platform OS/ARCH[/VARIANT]  image of a multi-platform index (default: host)\n"
    "  --cache                      unpack into the rootfs cache and print its path\n"
    "  --cache-dir DIR              rootfs cache directory (default:\n"
    "                               $HOIST_CACHE/rootfs or ~/.cache/hoist/rootfs)\n"
    "  --no-chown                   never change owners (they are reported instead)\n"
    "  --allow-foreign-urls         fetch non-distributable (foreign) layers from their\n"
    "                               urls (http/https; size and digest checked)\n"
    "  -h, --help                   show this help\n\n" REGOPTS_HELP;

static void print_report(const hoist_unpack_report *r, const char *path, bool hit, bool json) {
  if (json) {
    json_t *o =
        json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "path", path, "entries",
                  (json_int_t)r->entries, "bytes", (json_int_t)r->bytes, "whiteouts",
                  (json_int_t)r->whiteouts, "devices_skipped", (json_int_t)r->devices_skipped,
                  "owners_not_applied", (json_int_t)r->owners_recorded, "xattrs_skipped",
                  (json_int_t)r->xattrs_skipped, "acls_skipped", (json_int_t)r->acls_skipped,
                  "cache_hit", hit);
    cli_json_print(stdout, o, JSON_COMPACT);
    return;
  }
  if (r->devices_skipped)
    fprintf(stderr,
            "hoist unpack: %" PRIu64 " device node(s) not created (not permitted), e.g. %s\n",
            r->devices_skipped, r->first_device);
  if (r->owners_recorded)
    fprintf(stderr,
            "hoist unpack: owner of %" PRIu64 " member(s) not applied (not root), e.g. %s\n",
            r->owners_recorded, r->first_owner);
  if (r->xattrs_skipped)
    fprintf(stderr, "hoist unpack: %" PRIu64 " xattr(s) refused by the kernel, e.g. on %s\n",
            r->xattrs_skipped, r->first_xattr);
  if (r->acls_skipped)
    fprintf(stderr,
            "hoist unpack: %" PRIu64 " ACL(s) not applied (refused or malformed), e.g. on %s\n",
            r->acls_skipped, r->first_acl);
}

static int run(int argc, char **argv) {
  const char *platform_s = NULL, *cache_dir = NULL;
  bool cache = false, no_chown = false, foreign = false;
  _cleanup_regopts_ cli_regopts ro = {0};
  const cli_opt opts[] = {
      CLI_STRING("platform", &platform_s),
      CLI_FLAG("cache", &cache),
      CLI_STRING("cache-dir", &cache_dir),
      CLI_FLAG("no-chown", &no_chown),
      CLI_FLAG("allow-foreign-urls", &foreign),
      CLI_GROUP(cli_regopts_opts, &ro),
      CLI_END,
  };
  int rc = cli_parse_opts(VERB, usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  cache = cache || cache_dir;
  hoist_unpack_opts uo = {.owners = no_chown ? HOIST_OWNER_IGNORE : HOIST_OWNER_AUTO};
  int want = cache ? 1 : 2;
  if (argc - optind != want)
    return cli_usage(VERB, cache ? "expected SOURCE" : "expected SOURCE and DEST");
  const char *src = argv[optind];
  const char *dest = cache ? NULL : argv[optind + 1];

  _cleanup_loc_ hoist_loc *loc = NULL;
  _cleanup_platform_ hoist_platform *platform = NULL;
  rc = cli_image_layout(&ro, VERB, "source", src, platform_s, &loc, &platform);
  if (rc >= 0)
    return rc;

  hoist_err *err = NULL;
  _cleanup_store_ hoist_store *store = NULL;
  _cleanup_manifest_ hoist_manifest *m = NULL;
  __attribute__((cleanup(hoist_unpack_report_clear))) hoist_unpack_report rep = {0};
  if (hoist_store_open(loc->dir, false, &store, &err) < 0 ||
      hoist_unpack_resolve(store, loc->tag, platform, &m, &err) < 0 ||
      (foreign && cli_fetch_foreign(&ro, store, m, &err) < 0))
    return cli_fail(VERB, err);
  if (cache) {
    _cleanup_free_ char *path = NULL;
    _cleanup_free_ char *default_dir = cache_dir ? NULL : cli_env_rootfs_cache();
    bool hit = false;
    if (hoist_unpack_cached(store, m, cache_dir ? cache_dir : default_dir, &uo, &path, &hit, NULL,
                            &rep, &err) < 0)
      return cli_fail(VERB, err);
    if (!ro.json)
      printf("%s\n", path);
    print_report(&rep, path, hit, ro.json);
  } else {
    if (hoist_unpack_image(store, m, dest, &uo, &rep, &err) < 0)
      return cli_fail(VERB, err);
    print_report(&rep, dest, false, ro.json);
  }
  return EXIT_OK;
}

HOIST_VERB(unpack, VERB, "apply an image's layers into a directory", run);
