/* hoist bundle apply|publish: runtime bundles into images (commands of the
 * bundle verb, dispatched from bundle.c). */
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "attestopts.h"
#include "bundle.h"
#include "env.h"
#include "hoist/bundle.h"
#include "layeropts.h"
#include "regopts.h"

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
    "  --compress-threads N       threads compressing the layer (default: one per CPU;\n"
    "                             the blob is the same whatever N)\n"
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
    "  --compress-threads N       threads compressing the layer (default: one per CPU;\n"
    "                             the blob is the same whatever N)\n"
    "  --source-date-epoch N      clamp mtimes and set created to N\n"
    "                             (default: $SOURCE_DATE_EPOCH)\n"
    "  -h, --help                 show this help\n\n" ATTESTOPTS_HELP
    "  (each TARGET-ARCH image gets its provenance: the bundle's manifest digest and\n"
    "  bundle_version, the base; in index mode the index at TARGET then holds the\n"
    "  attestation manifests too)\n\n" REGOPTS_HELP;

typedef struct image_args {
  const char *verb;
  const char *base, *target, *arch, *platform, *libdir;
  hoist_layer_options layer;
  hoist_bundle_publish_item bundles[HOIST_BUNDLE_PUBLISH_MAX];
  size_t n_bundles;
  const char *tags[32];
  size_t n_tags;
  bool oci;
  uint64_t max_size, max_entries;
  cli_regopts ro;
  cli_attestopts ato;
} image_args;

/* Parses base and target; the target needs a tag. */
static int parse_locs(image_args *a, hoist_loc **base, hoist_loc **target) {
  hoist_err *err = NULL;
  if (cli_loc_parse(&a->ro, a->base, base, &err) < 0 ||
      cli_loc_parse(&a->ro, a->target, target, &err) < 0)
    return cli_usage_err(a->verb, err);
  const hoist_loc *t = *target;
  if (!hoist_loc_tag(t))
    return cli_usage(a->verb, "--target needs a tag (REPO:TAG or oci:DIR:TAG)");
  return -1;
}

/* --libdir: an absolute path in the image, into a const char *. */
static int opt_libdir(const char *verb, const char *arg, void *dest) {
  if (arg[0] != '/')
    return cli_usage(verb, "--libdir must be an absolute path in the image"), -1;
  *(const char **)dest = arg;
  return 0;
}

/* --bundle ARCH=TARBALL: one more bundle of an image_args (argv is ours to
 * split). */
static int opt_bundle(const char *verb, const char *arg, void *dest) {
  image_args *a = dest;
  char *eq = strchr(arg, '=');
  if (!eq || eq == arg || !eq[1])
    return cli_usage(verb, "bad --bundle '%s' (want ARCH=TARBALL)", arg), -1;
  if (a->n_bundles == HOIST_BUNDLE_PUBLISH_MAX)
    return cli_usage(verb, "at most %d bundles, one per architecture", HOIST_BUNDLE_PUBLISH_MAX),
           -1;
  *eq = '\0';
  a->bundles[a->n_bundles++] = (hoist_bundle_publish_item){.arch = arg, .tarball = eq + 1};
  return 0;
}

/* --tag T: one more tag of an image_args (room is kept for a NULL). */
static int opt_tag(const char *verb, const char *arg, void *dest) {
  image_args *a = dest;
  if (a->n_tags == sizeof a->tags / sizeof *a->tags - 1)
    return cli_usage(verb, "too many --tag"), -1;
  a->tags[a->n_tags++] = arg;
  return 0;
}

/* Parses the options of apply (publish false) or publish, then base and
 * target (the target needs a tag). Returns -1 to go on, else the exit code. */
static int parse(image_args *a, bool publish, int argc, char **argv, hoist_loc **base,
                 hoist_loc **target) {
  const char *arch_refused = publish ? "--arch and --platform go with --bundle ARCH=TARBALL" : NULL;
  const cli_opt opts[] = {
      CLI_STRING("base", &a->base),
      CLI_STRING("target", &a->target),
      CLI_STRING("arch", &a->arch, .refuse = arch_refused),
      CLI_STRING("platform", &a->platform, .refuse = arch_refused),
      CLI_CALL("libdir", opt_libdir, &a->libdir),
      CLI_CALL("compress", cli_opt_compression, &a->layer.compression),
      CLI_CALL("compress-threads", cli_opt_compress_threads, &a->layer.threads),
      CLI_CALL("source-date-epoch", cli_opt_epoch, &a->layer.source_date_epoch),
      CLI_CALL("bundle", opt_bundle, a, .refuse = publish ? NULL : "unknown option --bundle"),
      CLI_FLAG("oci", &a->oci, .refuse = publish ? NULL : "unknown option --oci"),
      CLI_CALL("tag", opt_tag, a, .refuse = publish ? NULL : "unknown option --tag"),
      CLI_CALL("max-size", cli_bundle_opt_max_size, &a->max_size,
               .refuse = publish ? NULL : "unknown option --max-size"),
      CLI_CALL("max-entries", cli_bundle_opt_max_entries, &a->max_entries,
               .refuse = publish ? NULL : "unknown option --max-entries"),
      CLI_FLAG("provenance", &a->ato.provenance,
               .refuse = publish ? NULL : "unknown option --provenance"),
      CLI_STRING("attest-mode", &a->ato.mode_s,
                 .refuse = publish ? NULL : "unknown option --attest-mode"),
      CLI_STRING("requested-by", &a->ato.requested_by,
                 .refuse = publish ? NULL : "unknown option --requested-by"),
      CLI_GROUP(cli_regopts_opts, &a->ro),
      CLI_END,
  };
  int rc = cli_parse_opts(a->verb, publish ? publish_usage : apply_usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if ((rc = cli_attestopts_check(a->verb, &a->ato)) >= 0)
    return rc;
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
  hoist_err *err = NULL;
  if (cli_layer_epoch_default(&a->layer.source_date_epoch, &err) < 0)
    return cli_fail(a->verb, err);
  return parse_locs(a, base, target);
}

static void image_args_clear(image_args *a) { cli_regopts_free(&a->ro); }

int cli_bundle_apply(int argc, char **argv) {
  __attribute__((cleanup(image_args_clear)))
  image_args a = {.verb = "bundle apply", .layer = HOIST_LAYER_OPTIONS_INIT};
  _cleanup_loc_ hoist_loc *base = NULL;
  _cleanup_loc_ hoist_loc *target = NULL;
  int rc = parse(&a, false, argc, argv, &base, &target);
  if (rc >= 0)
    return rc;
  const char *staged = argv[optind];
  hoist_err *err = NULL;
  const char *arch = NULL;
  _cleanup_registry_ hoist_registry *reg = NULL;
  if (((a.arch || a.platform) && hoist_bundle_arch_resolve(a.arch, a.platform, &arch, &err) < 0) ||
      cli_regopts_open(&a.ro, false, &reg, &err) < 0)
    return cli_fail(a.verb, err);
  hoist_transport_opts to = {.registry = reg};
  _cleanup_transport_source_ hoist_transport_source *src = NULL;
  _cleanup_transport_target_ hoist_transport_target *dst = NULL;
  hoist_bundle_apply_opts ao = {.arch = arch, .image_libdir = a.libdir, .layer = a.layer};
  hoist_image_append_result res;
  if (hoist_transport_open_source(&to, base, &src, &err) < 0 ||
      hoist_transport_open_target(&to, target, &dst, &err) < 0 ||
      hoist_bundle_apply(src, dst, staged, &ao, &res, &err) < 0 ||
      hoist_transport_commit(dst, &err) < 0)
    return cli_fail(a.verb, err);
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
  return EXIT_OK;
}

/* Attaches each published image's provenance; in index mode the index at
 * the target is made again from the attested images, so it holds their
 * attestation manifests. */
static int publish_attest(image_args *a, const hoist_transport_opts *to, const hoist_loc *base,
                          const hoist_loc *target, time_t started, hoist_bundle_publish_result *res,
                          hoist_err **err) {
  char base_digest[HOIST_DIGEST_STR_LEN] = "";
  {
    _cleanup_transport_source_ hoist_transport_source *src = NULL;
    _cleanup_free_ char *data = NULL;
    _cleanup_free_ char *mt = NULL;
    size_t len = 0;
    if (hoist_transport_open_source(to, base, &src, err) < 0 ||
        src->ops->manifest(src, NULL, &data, &len, &mt, base_digest, err) < 0)
      return hoist_err_wrap(err, "provenance: base %s", a->base);
  }
  hoist_loc *locs[HOIST_BUNDLE_PUBLISH_MAX] = {0};
  int r = 0;
  for (size_t i = 0; r == 0 && i < res->n; i++) {
    _cleanup_attest_job_ cli_attest_job job;
    cli_attest_job_init(&job, "bundle-publish");
    job.started = started;
    const char *tarball = NULL;
    for (size_t k = 0; k < a->n_bundles; k++)
      if (strcmp(a->bundles[k].arch, res->images[i].arch) == 0)
        tarball = a->bundles[k].tarball;
    json_object_set_new(job.external, "bundle",
                        json_pack("{s:s?, s:s, s:s, s:s}", "tarball", tarball, "name",
                                  res->images[i].bundle_name, "bundle_version",
                                  res->images[i].bundle_version, "manifestDigest",
                                  res->images[i].bundle_manifest));
    json_object_set_new(job.external, "arch", json_string(res->images[i].arch));
    json_object_set_new(job.external, "base", json_string(a->base));
    json_object_set_new(job.external, "target", json_string(a->target));
    cli_attest_job_dep(&job, a->base, base_digest, "base");
    _cleanup_free_ char *uri = hoist_asprintf("%s@%s/manifest.json", res->images[i].bundle_name,
                                              res->images[i].bundle_version);
    cli_attest_job_dep(&job, uri, res->images[i].bundle_manifest, "bundle");
    hoist_attest_result ares;
    r = cli_loc_parse(&a->ro, res->images[i].target, &locs[i], err);
    if (r == 0)
      r = cli_attest_finish(&a->ato, to, locs[i], res->images[i].digest, &job, &ares, err);
  }
  if (r == 0 && a->ato.mode == HOIST_ATTEST_INDEX) {
    hoist_image_index_opts io = {.oci = true, .tags = a->n_tags ? a->tags : NULL};
    hoist_image_index_result ir;
    r = hoist_image_index_create(to, target, (const hoist_loc *const *)locs, res->n, &io, &ir, err);
    if (r == 0) {
      memcpy(res->index_digest, ir.digest, sizeof ir.digest);
      res->index_media_type = ir.media_type;
    }
  }
  for (size_t i = 0; i < res->n; i++)
    hoist_loc_free(locs[i]);
  return r;
}

int cli_bundle_publish(int argc, char **argv) {
  __attribute__((cleanup(image_args_clear)))
  image_args a = {.verb = "bundle publish", .layer = HOIST_LAYER_OPTIONS_INIT};
  _cleanup_loc_ hoist_loc *base = NULL;
  _cleanup_loc_ hoist_loc *target = NULL;
  int rc = parse(&a, true, argc, argv, &base, &target);
  if (rc >= 0)
    return rc;
  if ((rc = cli_attestopts_check_target(a.verb, &a.ato, target)) >= 0)
    return rc;
  hoist_err *err = NULL;
  _cleanup_registry_ hoist_registry *reg = NULL;
  if (cli_regopts_open(&a.ro, false, &reg, &err) < 0)
    return cli_fail(a.verb, err);
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
  time_t started = time(NULL);
  if (hoist_bundle_publish(&to, &po, &res, &err) < 0)
    return cli_fail(a.verb, err);
  if (cli_attest_wanted(&a.ato) && publish_attest(&a, &to, base, target, started, &res, &err) < 0) {
    hoist_bundle_publish_result_clear(&res);
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
  return EXIT_OK;
}
