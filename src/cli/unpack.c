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

static void usage(FILE *out) {
  fprintf(out,
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
          "  -h, --help                   show this help\n\n"
          "%s",
          REGOPTS_HELP);
}

static void print_report(const hoist_unpack_report *r, const char *path, bool hit, bool json) {
  if (json) {
    json_t *o =
        json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "path", path, "entries",
                  (json_int_t)r->entries, "bytes", (json_int_t)r->bytes, "whiteouts",
                  (json_int_t)r->whiteouts, "devices_skipped", (json_int_t)r->devices_skipped,
                  "owners_not_applied", (json_int_t)r->owners_recorded, "xattrs_skipped",
                  (json_int_t)r->xattrs_skipped, "acls_skipped", (json_int_t)r->acls_skipped,
                  "cache_hit", hit);
    char *s = json_dumps(o, JSON_COMPACT);
    printf("%s\n", s);
    free(s);
    json_decref(o);
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
  enum { OPT_PLATFORM = 256, OPT_CACHE, OPT_CACHE_DIR, OPT_NO_CHOWN, OPT_FOREIGN };
  static const struct option opts[] = {
      {"platform", required_argument, NULL, OPT_PLATFORM},
      {"cache", no_argument, NULL, OPT_CACHE},
      {"cache-dir", required_argument, NULL, OPT_CACHE_DIR},
      {"no-chown", no_argument, NULL, OPT_NO_CHOWN},
      {"allow-foreign-urls", no_argument, NULL, OPT_FOREIGN},
      {"help", no_argument, NULL, 'h'},
      REGOPTS_LONG,
      {NULL, 0, NULL, 0},
  };
  const char *platform_s = NULL, *cache_dir = NULL;
  bool cache = false, foreign = false;
  __attribute__((cleanup(cli_regopts_free))) cli_regopts ro = {0};
  hoist_unpack_opts uo = {.owners = HOIST_OWNER_AUTO};
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_PLATFORM:
      platform_s = optarg;
      break;
    case OPT_CACHE:
      cache = true;
      break;
    case OPT_CACHE_DIR:
      cache_dir = optarg;
      cache = true;
      break;
    case OPT_NO_CHOWN:
      uo.owners = HOIST_OWNER_IGNORE;
      break;
    case OPT_FOREIGN:
      foreign = true;
      break;
    case 'h':
      usage(stdout);
      return EXIT_OK;
    default: {
      int r = cli_regopts_handle(&ro, VERB, c, optarg);
      if (r == 1)
        break;
      return r < 0 ? EXIT_USAGE : cli_usage(VERB, "unknown option");
    }
    }
  }
  int want = cache ? 1 : 2;
  if (argc - optind != want)
    return cli_usage(VERB, cache ? "expected SOURCE" : "expected SOURCE and DEST");
  const char *src = argv[optind];
  const char *dest = cache ? NULL : argv[optind + 1];

  hoist_err *err = NULL;
  _cleanup_loc_ hoist_loc *loc = NULL;
  if (hoist_loc_parse(src, &loc, &err) < 0) {
    hoist_err_free(err);
    return cli_usage(VERB, "bad source %s", src);
  }
  hoist_platform *platform = NULL;
  if (platform_s && hoist_platform_parse(platform_s, &platform, &err) < 0) {
    hoist_err_free(err);
    return cli_usage(VERB, "bad platform %s", platform_s);
  }
  if (loc->kind != HOIST_LOC_LAYOUT) {
    /* pulled into the image store first, unless it is there already */
    hoist_loc *layout = NULL;
    if (cli_pull_to_store(&ro, NULL, loc, platform, &layout, &err) < 0) {
      hoist_platform_free(platform);
      return cli_fail(VERB, err);
    }
    hoist_loc_free(loc);
    loc = layout;
  }

  int rc = EXIT_FAIL;
  hoist_store *store = NULL;
  hoist_manifest *m = NULL;
  hoist_unpack_report rep = {0};
  if (hoist_store_open(loc->dir, false, &store, &err) < 0 ||
      hoist_unpack_resolve(store, loc->tag, platform, &m, &err) < 0 ||
      (foreign && cli_fetch_foreign(&ro, store, m, &err) < 0)) {
    rc = cli_fail(VERB, err);
    goto out;
  }
  if (cache) {
    _cleanup_free_ char *path = NULL;
    _cleanup_free_ char *default_dir = cache_dir ? NULL : cli_env_rootfs_cache();
    bool hit = false;
    if (hoist_unpack_cached(store, m, cache_dir ? cache_dir : default_dir, &uo, &path, &hit, NULL,
                            &rep, &err) < 0) {
      rc = cli_fail(VERB, err);
      goto out;
    }
    if (!ro.json)
      printf("%s\n", path);
    print_report(&rep, path, hit, ro.json);
  } else {
    if (hoist_unpack_image(store, m, dest, &uo, &rep, &err) < 0) {
      rc = cli_fail(VERB, err);
      goto out;
    }
    print_report(&rep, dest, false, ro.json);
  }
  rc = EXIT_OK;
out:
  hoist_unpack_report_clear(&rep);
  hoist_manifest_free(m);
  hoist_store_close(store);
  hoist_platform_free(platform);
  return rc;
}

HOIST_VERB(unpack, VERB, "apply an image's layers into a directory", run);
