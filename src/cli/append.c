/* hoist append: base image + one new layer -> a new image. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "hoist/image.h"
#include "hoist/ref.h"
#include "layeropts.h"
#include "regopts.h"

#define VERB "append"

static const char usage[] =
    "Usage: hoist append BASE --target DEST (--layer TREE | --map SRC:DEST ...) [OPTIONS]\n\n"
    "Makes a new image: BASE's layers plus one layer written from TREE (or from the\n"
    "mapped host paths), with the config's diff_ids, history and created updated.\n"
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
    "  --source-date-epoch N      clamp mtimes and set created to N\n"
    "                             (default: $SOURCE_DATE_EPOCH)\n"
    "  --platform OS/ARCH[/VAR]   which manifest of a multi-platform base (default: host)\n"
    "  --created-by TEXT          history entry text (default \"hoist append\")\n"
    "  -h, --help                 show this help\n\n" REGOPTS_HELP;

static int append_run(int argc, char **argv) {
  hoist_image_append_options ao = {.layer = HOIST_LAYER_OPTIONS_INIT};
  const char *target_s = NULL, *tree = NULL, *platform_s = NULL;
  bool overlay = false;
  _cleanup_maps_ cli_maps maps = {.n = 0};
  _cleanup_regopts_ cli_regopts ro = {0};
  const cli_opt opts[] = {
      CLI_STRING("target", &target_s),
      CLI_STRING("layer", &tree),
      CLI_FLAG("overlay", &overlay),
      CLI_CALL("map", cli_opt_map, &maps),
      CLI_CALL("compress", cli_opt_compression, &ao.layer.compression),
      CLI_CALL("level", cli_opt_level, &ao.layer.level),
      CLI_CALL("source-date-epoch", cli_opt_epoch, &ao.layer.source_date_epoch),
      CLI_STRING("platform", &platform_s),
      CLI_STRING("created-by", &ao.created_by),
      CLI_GROUP(cli_regopts_opts, &ro),
      CLI_END,
  };
  int rc = cli_parse_opts(VERB, usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (argc - optind != 1)
    return cli_usage(VERB, "needs exactly one BASE");
  if (!target_s)
    return cli_usage(VERB, "needs --target DEST");
  if (!!tree == !!maps.n)
    return cli_usage(VERB, "needs either --layer TREE or --map SRC:DEST");
  if (overlay && !tree)
    return cli_usage(VERB, "--overlay goes with --layer TREE");
  hoist_err *err = NULL;
  _cleanup_loc_ hoist_loc *base_loc = NULL;
  _cleanup_loc_ hoist_loc *target_loc = NULL;
  bool scratch = strcmp(argv[optind], "scratch") == 0;
  if ((!scratch && hoist_loc_parse(argv[optind], &base_loc, &err) < 0) ||
      hoist_loc_parse(target_s, &target_loc, &err) < 0)
    return cli_usage_err(VERB, err);
  if (target_loc->kind == HOIST_LOC_LAYOUT && !target_loc->tag)
    return cli_usage(VERB, "--target oci:DIR needs a tag (oci:DIR:TAG)");
  _cleanup_platform_ hoist_platform *platform = NULL;
  if (platform_s && hoist_platform_parse(platform_s, &platform, &err) < 0)
    return cli_fail(VERB, err);
  ao.platform = platform;
  if (cli_layer_epoch_default(&ao.layer.source_date_epoch, &err) < 0)
    return cli_fail(VERB, err);

  hoist_layer_source ls = {0};
  if (tree) {
    ls.kind = overlay ? HOIST_LAYER_OVERLAY : HOIST_LAYER_TREE;
    ls.dir = tree;
  } else {
    ls.kind = HOIST_LAYER_MAP;
    ls.maps = maps.v;
    ls.n_maps = maps.n;
  }
  if (target_loc->kind == HOIST_LOC_REGISTRY && !target_loc->ref->tag) {
    hoist_err_set(&err, EINVAL, "target %s needs a tag", target_loc->ref->path);
    return cli_fail(VERB, err);
  }
  _cleanup_registry_ hoist_registry *reg = NULL;
  if (((base_loc && base_loc->kind == HOIST_LOC_REGISTRY) ||
       target_loc->kind == HOIST_LOC_REGISTRY) &&
      cli_regopts_open(&ro, false, &reg, &err) < 0)
    return cli_fail(VERB, err);
  hoist_transport_opts to = {.registry = reg};
  _cleanup_transport_source_ hoist_transport_source *src = NULL;
  _cleanup_transport_target_ hoist_transport_target *dst = NULL;
  hoist_image_append_result res;
  if ((!scratch && hoist_transport_open_source(&to, base_loc, &src, &err) < 0) ||
      hoist_transport_open_target(&to, target_loc, &dst, &err) < 0 ||
      hoist_image_append(src, dst, &ls, &ao, &res, &err) < 0 ||
      hoist_transport_commit(dst, &err) < 0)
    return cli_fail(VERB, err);
  if (ro.json)
    cli_json_print(stdout,
                   json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "manifest",
                             res.manifest_digest, "config", res.config_digest, "diffID",
                             res.layer.diff_id, "layer", res.layer.digest, "layerSize",
                             (json_int_t)res.layer.size, "layers", (json_int_t)res.n_layers,
                             "copied", (json_int_t)res.blobs_copied, "skipped",
                             (json_int_t)res.blobs_skipped),
                   JSON_SORT_KEYS);
  else
    printf("manifest: %s\nconfig: %s\nlayer: %s (diffID %s, %" PRIu64 " bytes)\n"
           "layers: %zu (%zu copied, %zu already there)\n",
           res.manifest_digest, res.config_digest, res.layer.digest, res.layer.diff_id,
           res.layer.size, res.n_layers, res.blobs_copied, res.blobs_skipped);
  return EXIT_OK;
}

HOIST_VERB(append, "append", "add a layer to an image (base layers + one new layer)", append_run);
