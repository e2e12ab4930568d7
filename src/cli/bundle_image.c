/* hoist bundle apply|publish: runtime bundles into images (commands of the
 * bundle verb, dispatched from bundle.c). */
#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "env.h"
#include "hoist/bundle.h"
#include "regopts.h"

int cli_bundle_apply(int argc, char **argv);
int cli_bundle_publish(int argc, char **argv);

static const char apply_usage[] =
    "Usage: hoist bundle apply STAGED_DIR --base REF --target REF [--arch ARCH] [OPTIONS]\n"
    "\n"
    "Adds one layer to the base image with the staged bundle's payload where the image\n"
    "expects it: the five usr/bin/nvidia-* binaries in /usr/bin/, etc/nvidia-container-\n"
    "runtime/ in /etc/nvidia-container-runtime/, usr/lib/LIBDIR/libnvidia-container*.so*\n"
    "in the image's library directory. STAGED_DIR is what 'hoist bundle stage' printed.\n"
    "The base's platform must be linux/ARCH (from an index base, that image is taken).\n"
    "REF is a registry reference or oci:DIR[:TAG] (the target needs a tag).\n"
    "\n"
    "Options:\n"
    "  --base REF                 the base image\n"
    "  --target REF               where the new image goes\n"
    "  --arch ARCH                bundle architecture, amd64 or arm64 (default: the\n"
    "                             staged manifest's; checked against it when given)\n"
    "  --platform linux/ARCH      instead of --arch\n"
    "  --libdir DIR               the image's library directory (default\n"
    "                             /usr/lib/x86_64-linux-gnu or /usr/lib/aarch64-linux-gnu)\n"
    "  --compress gzip|zstd|none  the new layer's compression (default gzip)\n"
    "  --source-date-epoch N      clamp mtimes and set created to N\n"
    "                             (default: $SOURCE_DATE_EPOCH)\n"
    "  -h, --help                 show this help\n\n" REGOPTS_HELP;

static const char publish_usage[] =
    "Usage: hoist bundle publish --base REF --target REF --bundle ARCH=TARBALL...\n"
    "                            [OPTIONS]\n"
    "\n"
    "The multi-arch flow in one command: verifies and stages every bundle (in a\n"
    "temporary directory), checks the base has each architecture, then applies each\n"
    "bundle on the base's image of its architecture, pushes it as TARGET-ARCH, and\n"
    "joins those images in one index at TARGET (a Docker manifest list unless --oci\n"
    "or TARGET is an oci: layout).\n"
    "Nothing is pushed when any bundle is missing or invalid.\n"
    "\n"
    "Options:\n"
    "  --base REF                 the base image or multi-arch index\n"
    "  --target REF               the index's reference, with a tag\n"
    "  --bundle ARCH=TARBALL      a runtime bundle (amd64, arm64; once per architecture)\n"
    "  --oci                      push an OCI index instead of a Docker manifest list\n"
    "  --tag T                    another tag for the index (repeatable)\n"
    "  --libdir DIR               the image's library directory (see bundle apply)\n"
    "  --max-size N               refuse a bundle of more than N bytes of member data\n"
    "                             (K, M, G suffixes; default 4G)\n"
    "  --max-entries N            refuse a bundle of more than N tar members\n"
    "                             (default 100000)\n"
    "  --compress gzip|zstd|none  the new layers' compression (default gzip)\n"
    "  --source-date-epoch N      clamp mtimes and set created to N\n"
    "                             (default: $SOURCE_DATE_EPOCH)\n"
    "  -h, --help                 show this help\n\n" REGOPTS_HELP;

enum {
  OPT_BASE = 256,
  OPT_TARGET,
  OPT_ARCH,
  OPT_PLATFORM,
  OPT_LIBDIR,
  OPT_COMPRESS,
  OPT_SDE,
  OPT_BUNDLE,
  OPT_OCI,
  OPT_TAG,
  OPT_MAX_SIZE,
  OPT_MAX_ENTRIES,
};

typedef struct image_args {
  const char *verb;
  const char *base, *target, *arch, *platform, *libdir;
  hoist_layer_options layer;
  bool sde_given;
  hoist_bundle_publish_item bundles[HOIST_BUNDLE_PUBLISH_MAX];
  size_t n_bundles;
  const char *tags[32];
  size_t n_tags;
  bool oci;
  uint64_t max_size, max_entries;
  cli_regopts ro;
} image_args;

/* Parses the options of apply (publish false) or publish. Returns -1 to go
 * on, else the exit code. */
static int parse(image_args *a, bool publish, int argc, char **argv) {
  static const struct option opts[] = {
      {"help", no_argument, NULL, 'h'},
      {"base", required_argument, NULL, OPT_BASE},
      {"target", required_argument, NULL, OPT_TARGET},
      {"arch", required_argument, NULL, OPT_ARCH},
      {"platform", required_argument, NULL, OPT_PLATFORM},
      {"libdir", required_argument, NULL, OPT_LIBDIR},
      {"compress", required_argument, NULL, OPT_COMPRESS},
      {"source-date-epoch", required_argument, NULL, OPT_SDE},
      {"bundle", required_argument, NULL, OPT_BUNDLE},
      {"oci", no_argument, NULL, OPT_OCI},
      {"tag", required_argument, NULL, OPT_TAG},
      {"max-size", required_argument, NULL, OPT_MAX_SIZE},
      {"max-entries", required_argument, NULL, OPT_MAX_ENTRIES},
      REGOPTS_LONG,
      {NULL, 0, NULL, 0},
  };
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'h':
      fputs(publish ? publish_usage : apply_usage, stdout);
      return EXIT_OK;
    case OPT_BASE:
      a->base = optarg;
      break;
    case OPT_TARGET:
      a->target = optarg;
      break;
    case OPT_ARCH:
    case OPT_PLATFORM:
      if (publish)
        return cli_usage(a->verb, "--arch and --platform go with --bundle ARCH=TARBALL");
      *(c == OPT_ARCH ? &a->arch : &a->platform) = optarg;
      break;
    case OPT_LIBDIR:
      if (optarg[0] != '/')
        return cli_usage(a->verb, "--libdir must be an absolute path in the image");
      a->libdir = optarg;
      break;
    case OPT_COMPRESS: {
      hoist_err *err = NULL;
      if (hoist_layer_compression_parse(optarg, &a->layer.compression, &err) < 0) {
        hoist_err_free(err);
        return cli_usage(a->verb, "unknown compression '%s' (gzip, zstd or none)", optarg);
      }
      break;
    }
    case OPT_SDE: {
      char *end;
      errno = 0;
      long long v = strtoll(optarg, &end, 10);
      if (errno || *end || end == optarg || v < 0)
        return cli_usage(a->verb, "bad --source-date-epoch '%s'", optarg);
      a->layer.source_date_epoch = v;
      a->sde_given = true;
      break;
    }
    case OPT_BUNDLE: {
      const char *eq = strchr(optarg, '=');
      if (!publish)
        return cli_usage(a->verb, "unknown option --bundle");
      if (!eq || eq == optarg || !eq[1])
        return cli_usage(a->verb, "bad --bundle '%s' (want ARCH=TARBALL)", optarg);
      if (a->n_bundles == HOIST_BUNDLE_PUBLISH_MAX)
        return cli_usage(a->verb, "at most %d bundles, one per architecture",
                         HOIST_BUNDLE_PUBLISH_MAX);
      *(char *)eq = '\0'; /* argv is ours to split */
      a->bundles[a->n_bundles].arch = optarg;
      a->bundles[a->n_bundles].tarball = eq + 1;
      a->n_bundles++;
      break;
    }
    case OPT_OCI:
      if (!publish)
        return cli_usage(a->verb, "unknown option --oci");
      a->oci = true;
      break;
    case OPT_TAG:
      if (!publish)
        return cli_usage(a->verb, "unknown option --tag");
      if (a->n_tags == sizeof a->tags / sizeof *a->tags - 1)
        return cli_usage(a->verb, "too many --tag");
      a->tags[a->n_tags++] = optarg;
      break;
    case OPT_MAX_SIZE:
      if (!publish)
        return cli_usage(a->verb, "unknown option --max-size");
      if (!hoist_size_parse(optarg, &a->max_size))
        return cli_usage(a->verb, "--max-size: not a size: %s", optarg);
      break;
    case OPT_MAX_ENTRIES: {
      char *end;
      errno = 0;
      unsigned long long v = strtoull(optarg, &end, 10);
      if (!publish)
        return cli_usage(a->verb, "unknown option --max-entries");
      if (errno || *end || end == optarg || !v || optarg[0] == '-')
        return cli_usage(a->verb, "--max-entries: not a positive number: %s", optarg);
      a->max_entries = v;
      break;
    }
    default: {
      int h = cli_regopts_handle(&a->ro, a->verb, c, optarg);
      if (h != 1)
        return h < 0 ? EXIT_USAGE : cli_usage(a->verb, "unknown option");
    }
    }
  }
  if (!a->base)
    return cli_usage(a->verb, "needs --base REF");
  if (!a->target)
    return cli_usage(a->verb, "needs --target REF");
  if (a->arch && a->platform)
    return cli_usage(a->verb, "--arch and --platform are exclusive");
  if (publish) {
    if (optind < argc)
      return cli_usage(a->verb, "unexpected argument: %s", argv[optind]);
    if (!a->n_bundles)
      return cli_usage(a->verb, "needs --bundle ARCH=TARBALL (once per architecture)");
  } else {
    if (optind >= argc)
      return cli_usage(a->verb, "missing STAGED_DIR");
    if (optind + 1 < argc)
      return cli_usage(a->verb, "unexpected argument: %s", argv[optind + 1]);
  }
  if (!a->sde_given) {
    hoist_err *err = NULL;
    if (cli_env_epoch(&a->layer.source_date_epoch, &err) < 0)
      return cli_fail(a->verb, err);
  }
  return -1;
}

/* Parses base and target; the target needs a tag. */
static int parse_locs(image_args *a, hoist_loc **base, hoist_loc **target) {
  hoist_err *err = NULL;
  if (hoist_loc_parse(a->base, base, &err) < 0 || hoist_loc_parse(a->target, target, &err) < 0) {
    _cleanup_free_ char *t = hoist_err_text(err);
    hoist_err_free(err);
    return cli_usage(a->verb, "%s", t);
  }
  const hoist_loc *t = *target;
  if (!hoist_loc_tag(t))
    return cli_usage(a->verb, "--target needs a tag (REPO:TAG or oci:DIR:TAG)");
  return -1;
}

int cli_bundle_apply(int argc, char **argv) {
  image_args a = {.verb = "bundle apply", .layer = HOIST_LAYER_OPTIONS_INIT};
  _cleanup_loc_ hoist_loc *base = NULL;
  _cleanup_loc_ hoist_loc *target = NULL;
  int rc = parse(&a, false, argc, argv);
  if (rc < 0)
    rc = parse_locs(&a, &base, &target);
  if (rc >= 0) {
    cli_regopts_free(&a.ro);
    return rc;
  }
  const char *staged = argv[optind];
  hoist_err *err = NULL;
  const char *arch = NULL;
  _cleanup_registry_ hoist_registry *reg = NULL;
  _cleanup_transport_source_ hoist_transport_source *src = NULL;
  _cleanup_transport_target_ hoist_transport_target *dst = NULL;
  hoist_image_append_result res;
  if (((a.arch || a.platform) && hoist_bundle_arch_resolve(a.arch, a.platform, &arch, &err) < 0) ||
      cli_regopts_open(&a.ro, false, &reg, &err) < 0) {
    cli_regopts_free(&a.ro);
    return cli_fail(a.verb, err);
  }
  hoist_transport_opts to = {.registry = reg};
  if (hoist_transport_open_source(&to, base, &src, &err) < 0 ||
      hoist_transport_open_target(&to, target, &dst, &err) < 0) {
    cli_regopts_free(&a.ro);
    return cli_fail(a.verb, err);
  }
  hoist_bundle_apply_opts ao = {.arch = arch, .image_libdir = a.libdir, .layer = a.layer};
  if (hoist_bundle_apply(src, dst, staged, &ao, &res, &err) < 0 ||
      hoist_transport_commit(dst, &err) < 0) {
    cli_regopts_free(&a.ro);
    return cli_fail(a.verb, err);
  }
  _cleanup_free_ char *tname = hoist_loc_string(target);
  if (a.ro.json) {
    cli_print_json(json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "target", tname,
                             "manifest", res.manifest_digest, "config", res.config_digest, "diffID",
                             res.layer.diff_id, "layer", res.layer.digest, "layerSize",
                             (json_int_t)res.layer.size, "layers", (json_int_t)res.n_layers,
                             "entries", (json_int_t)res.layer.n_entries));
  } else {
    printf("Runtime bundle applied: %s %s\n", tname, res.manifest_digest);
    printf("layer: %s (%llu entries, %llu bytes), %zu layers in the image\n", res.layer.digest,
           (unsigned long long)res.layer.n_entries, (unsigned long long)res.layer.size,
           res.n_layers);
  }
  cli_regopts_free(&a.ro);
  return EXIT_OK;
}

int cli_bundle_publish(int argc, char **argv) {
  image_args a = {.verb = "bundle publish", .layer = HOIST_LAYER_OPTIONS_INIT};
  _cleanup_loc_ hoist_loc *base = NULL;
  _cleanup_loc_ hoist_loc *target = NULL;
  int rc = parse(&a, true, argc, argv);
  if (rc < 0)
    rc = parse_locs(&a, &base, &target);
  if (rc >= 0) {
    cli_regopts_free(&a.ro);
    return rc;
  }
  hoist_err *err = NULL;
  _cleanup_registry_ hoist_registry *reg = NULL;
  if (cli_regopts_open(&a.ro, false, &reg, &err) < 0) {
    cli_regopts_free(&a.ro);
    return cli_fail(a.verb, err);
  }
  a.tags[a.n_tags] = NULL;
  hoist_bundle_publish_opts po = {.bundles = a.bundles,
                                  .n_bundles = a.n_bundles,
                                  .base = base,
                                  .target = target,
                                  .tags = a.n_tags ? a.tags : NULL,
                                  .oci_index = a.oci,
                                  .image_libdir = a.libdir,
                                  .layer = a.layer,
                                  .max_size = a.max_size,
                                  .max_entries = a.max_entries,
                                  .stage_parent = cli_env_tmpdir(NULL)};
  hoist_bundle_publish_result res;
  hoist_transport_opts to = {.registry = reg};
  if (hoist_bundle_publish(&to, &po, &res, &err) < 0) {
    cli_regopts_free(&a.ro);
    return cli_fail(a.verb, err);
  }
  _cleanup_free_ char *tname = hoist_loc_string(target);
  if (a.ro.json) {
    json_t *imgs = json_array();
    for (size_t i = 0; i < res.n; i++)
      json_array_append_new(imgs, json_pack("{s:s, s:s, s:s}", "arch", res.images[i].arch, "target",
                                            res.images[i].target, "digest", res.images[i].digest));
    cli_print_json(json_pack("{s:s, s:s, s:s, s:o}", "target", tname, "digest", res.index_digest,
                             "mediaType", res.index_media_type, "images", imgs));
  } else {
    for (size_t i = 0; i < res.n; i++)
      printf("%s: %s %s\n", res.images[i].arch, res.images[i].target, res.images[i].digest);
    printf("index: %s %s (%s)\n", tname, res.index_digest, res.index_media_type);
  }
  hoist_bundle_publish_result_clear(&res);
  cli_regopts_free(&a.ro);
  return EXIT_OK;
}
