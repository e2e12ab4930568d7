/* hoist append: base image + one new layer -> a new image. */
#include <inttypes.h>
#include <string.h>

#include "attestopts.h"
#include "configopts.h"
#include "env.h"
#include "hoist/image.h"
#include "hoist/ref.h"
#include "layeropts.h"
#include "regopts.h"

#define VERB "append"

static const char usage[] =
    "Usage: hoist append BASE --target DEST (--layer TREE | --map SRC:DEST ...) [OPTIONS]\n\n"
    "Makes a new image: BASE's layers plus one layer written from TREE (or from the\n"
    "mapped host paths), with the config's diff_ids, history and created updated,\n"
    "and changed as the config options say (those of hoist config).\n"
    "BASE \"scratch\" is the empty image.\n"
    "BASE and DEST are registry references or oci:DIR[:TAG] layouts (DEST needs a\n"
    "tag). Blobs DEST already has are not uploaded again.\n\n"
    "Options:\n"
    "  --target DEST              where the new image goes\n"
    "  --layer TREE               the new layer's content (a directory)\n"
    "  --overlay                  TREE is an overlayfs upper dir: convert whiteouts\n"
    "  --map SRC:DEST             put host path SRC at DEST in the image (repeatable)\n"
    "  --compress gzip|zstd|none  new layer's compression (default gzip)\n"
    "  --level N                  compression level\n"
    "  --compress-threads N       threads compressing the layer (default: one per CPU;\n"
    "                             the blob is the same whatever N)\n"
    "  --source-date-epoch N      clamp mtimes and set created to N\n"
    "                             (default: $SOURCE_DATE_EPOCH)\n"
    "  --platform OS/ARCH[/VAR]   which manifest of a multi-platform base (default: host)\n"
    "  --created-by TEXT          history entry text (default \"hoist append\")\n"
    "  --history-comment TEXT     history entry comment\n"
    "  -h, --help                 show this help\n" SIGN_KEY_HELP "\n" CONFIGOPTS_HELP
    "\n" ATTESTOPTS_HELP
    "  --sbom                     attach an SPDX 2.3 SBOM of the packages the new layer\n"
    "                             holds and the base's system packages\n"
    "\n" REGOPTS_HELP;

/* The digest of the document the base names (its index, for a
 * multi-platform one). */
static int append_base_digest(hoist_transport_source *src, char digest[HOIST_DIGEST_STR_LEN],
                              hoist_err **err) {
  _cleanup_free_ char *mt = NULL;
  if (src->ops->resolve)
    return src->ops->resolve(src, digest, &mt, err);
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  return src->ops->manifest(src, NULL, &data, &len, &mt, digest, err);
}

static int append_run(int argc, char **argv) {
  hoist_image_append_options ao = {.layer = HOIST_LAYER_OPTIONS_INIT};
  const char *target_s = NULL, *tree = NULL, *platform_s = NULL;
  bool overlay = false;
  _cleanup_maps_ cli_maps maps = {.n = 0};
  _cleanup_regopts_ cli_regopts ro = {0};
  _cleanup_config_edit_ hoist_config_edit edit = {0};
  cli_attestopts ato = {0};
  const cli_opt opts[] = {
      CLI_STRING("target", &target_s),
      CLI_STRING("layer", &tree),
      CLI_FLAG("overlay", &overlay),
      CLI_CALL("map", cli_opt_map, &maps),
      CLI_CALL("compress", cli_opt_compression, &ao.layer.compression),
      CLI_CALL("level", cli_opt_level, &ao.layer.level),
      CLI_CALL("compress-threads", cli_opt_compress_threads, &ao.layer.threads),
      CLI_CALL("source-date-epoch", cli_opt_epoch, &ao.layer.source_date_epoch),
      CLI_STRING("platform", &platform_s),
      CLI_STRING("created-by", &ao.created_by),
      CLI_STRING("history-comment", &ao.comment),
      CLI_GROUP(cli_config_opts, &edit),
      CLI_GROUP(cli_regopts_opts, &ro),
      CLI_GROUP(cli_sign_key_opts, &ro),
      CLI_GROUP(cli_attestopts_opts, &ato),
      CLI_FLAG("sbom", &ato.sbom),
      CLI_END,
  };
  int rc = cli_parse_opts(VERB, usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if ((rc = cli_attestopts_check(VERB, &ato)) >= 0)
    return rc;
  if (!!tree == !!maps.n)
    return cli_usage(VERB, "needs either --layer TREE or --map SRC:DEST");
  if (overlay && !tree)
    return cli_usage(VERB, "--overlay goes with --layer TREE");
  hoist_err *err = NULL;
  _cleanup_platform_ hoist_platform *platform = NULL;
  if (platform_s && hoist_platform_parse(platform_s, &platform, &err) < 0)
    return cli_fail(VERB, err);
  ao.platform = platform;
  ao.config_edit = &edit;
  if (cli_layer_epoch_default(&ao.layer.source_date_epoch, &err) < 0)
    return cli_fail(VERB, err);
  _cleanup_image_ends_ cli_image_ends ends = {0};
  if ((rc = cli_image_ends_open(VERB, "BASE", true, argc, argv, target_s, &ro, &ends)) >= 0 ||
      (rc = cli_attestopts_check_target(VERB, &ato, ends.dst_loc)) >= 0)
    return rc;

  hoist_layer_source ls = {0};
  if (tree) {
    ls.kind = overlay ? HOIST_LAYER_OVERLAY : HOIST_LAYER_TREE;
    ls.dir = tree;
  } else {
    ls.kind = HOIST_LAYER_MAP;
    ls.maps = maps.v;
    ls.n_maps = maps.n;
  }
  _cleanup_attest_job_ cli_attest_job job;
  cli_attest_job_init(&job, VERB);
  char base_digest[HOIST_DIGEST_STR_LEN] = "";
  if (cli_attest_wanted(&ato) && ends.src && append_base_digest(ends.src, base_digest, &err) < 0)
    return cli_fail(VERB, err);
  hoist_image_append_result res;
  if (hoist_image_append(ends.src, ends.dst, &ls, &ao, &res, &err) < 0 ||
      hoist_transport_commit(ends.dst, &err) < 0)
    return cli_fail(VERB, err);
  hoist_attest_result ares = {0};
  if (cli_attest_wanted(&ato)) {
    hoist_transport_opts to = {.registry = ends.reg, .tmp_dir = cli_env_tmpdir(NULL)};
    const char *base_name = optind < argc ? argv[optind] : "scratch";
    json_object_set_new(job.external, "base", json_string(base_name));
    json_object_set_new(job.external, "target", json_string(target_s));
    json_t *layer = json_array();
    if (tree)
      json_array_append_new(layer, json_string(tree));
    for (size_t i = 0; i < maps.n; i++)
      json_array_append_new(
          layer, json_pack("{s:s, s:s}", "source", maps.v[i].src, "destination", maps.v[i].dest));
    json_object_set_new(job.external, "layer", layer);
    json_object_set_new(job.external, "overlay", json_boolean(overlay));
    if (platform_s)
      json_object_set_new(job.external, "platform", json_string(platform_s));
    json_object_set_new(job.internal, "layerDigest", json_string(res.layer.digest));
    if (*base_digest)
      cli_attest_job_dep(&job, base_name, base_digest, "base");
    if ((ato.sbom && cli_attest_sbom_image(&job, &to, ends.dst_loc, res.manifest_digest, ends.src,
                                           NULL, &err) < 0) ||
        cli_attest_finish(&ato, &to, ends.dst_loc, res.manifest_digest, &job, &ares, &err) < 0)
      return cli_fail(VERB, err);
  }
  /* signed last: what the tag names then (in index mode, the index of the
   * image and its attestations) */
  if (cli_sign_after_store(&ro, ends.reg, ends.dst_loc, &err) < 0)
    return cli_fail(VERB, err);
  if (ro.json) {
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "manifest",
                          res.manifest_digest, "config", res.config_digest, "diffID",
                          res.layer.diff_id, "layer", res.layer.digest, "layerSize",
                          (json_int_t)res.layer.size, "layers", (json_int_t)res.n_layers, "copied",
                          (json_int_t)res.blobs_copied, "skipped", (json_int_t)res.blobs_skipped);
    if (cli_attest_wanted(&ato))
      json_object_set_new(j, "attestation",
                          json_pack("{s:s, s:s, s:s}", "mode",
                                    ato.mode == HOIST_ATTEST_INDEX ? "index" : "referrer", "tag",
                                    ares.digest, "manifest", ares.attestation));
    cli_json_print(stdout, j, JSON_SORT_KEYS);
  } else {
    printf("manifest: %s\nconfig: %s\nlayer: %s (diffID %s, %" PRIu64 " bytes)\n"
           "layers: %zu (%zu copied, %zu already there)\n",
           res.manifest_digest, res.config_digest, res.layer.digest, res.layer.diff_id,
           res.layer.size, res.n_layers, res.blobs_copied, res.blobs_skipped);
    if (cli_attest_wanted(&ato) && ato.mode == HOIST_ATTEST_INDEX)
      printf("index: %s (attestations %s)\n", ares.digest, ares.attestation);
    else if (cli_attest_wanted(&ato))
      printf("attestations: %s (referrer)\n", ares.attestation);
  }
  return EXIT_OK;
}

HOIST_VERB(append, "append", "add a layer to an image (base layers + one new layer)", append_run);
