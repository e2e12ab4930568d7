/* hoist append: base image + one new layer -> a new image. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <string.h>

#include "cli.h"
#include "env.h"
#include "hoist/image.h"
#include "hoist/ref.h"
#include "regopts.h"

#define VERB "append"

int cli_parse_map(const char *s, hoist_layer_map *out);

static void usage(FILE *out) {
  fprintf(out,
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
          "  -h, --help                 show this help\n\n" REGOPTS_HELP);
}

static int append_run(int argc, char **argv) {
  enum {
    OPT_TARGET = 256,
    OPT_LAYER,
    OPT_OVERLAY,
    OPT_MAP,
    OPT_COMPRESS,
    OPT_LEVEL,
    OPT_SDE,
    OPT_PLATFORM,
    OPT_CREATED_BY,
  };
  static const struct option opts[] = {
      {"target", required_argument, NULL, OPT_TARGET},
      {"layer", required_argument, NULL, OPT_LAYER},
      {"overlay", no_argument, NULL, OPT_OVERLAY},
      {"map", required_argument, NULL, OPT_MAP},
      {"compress", required_argument, NULL, OPT_COMPRESS},
      {"level", required_argument, NULL, OPT_LEVEL},
      {"source-date-epoch", required_argument, NULL, OPT_SDE},
      {"platform", required_argument, NULL, OPT_PLATFORM},
      {"created-by", required_argument, NULL, OPT_CREATED_BY},
      {"help", no_argument, NULL, 'h'},
      REGOPTS_LONG,
      {NULL, 0, NULL, 0},
  };
  hoist_image_append_options ao = {.layer = HOIST_LAYER_OPTIONS_INIT};
  hoist_err *err = NULL;
  const char *target_s = NULL, *tree = NULL, *platform_s = NULL;
  cli_regopts ro = {0};
  hoist_registry *reg = NULL;
  bool overlay = false, sde_given = false;
  hoist_layer_map maps[256];
  size_t n_maps = 0;
  int rc = EXIT_USAGE;
  _cleanup_loc_ hoist_loc *base_loc = NULL;
  _cleanup_loc_ hoist_loc *target_loc = NULL;
  _cleanup_platform_ hoist_platform *platform = NULL;
  _cleanup_transport_source_ hoist_transport_source *src = NULL;
  _cleanup_transport_target_ hoist_transport_target *dst = NULL;

  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_TARGET:
      target_s = optarg;
      break;
    case OPT_LAYER:
      tree = optarg;
      break;
    case OPT_OVERLAY:
      overlay = true;
      break;
    case OPT_MAP:
      if (n_maps == 256 || cli_parse_map(optarg, &maps[n_maps]) < 0) {
        rc = cli_usage(VERB, "bad --map '%s' (want SRC:DEST)", optarg);
        goto out;
      }
      n_maps++;
      break;
    case OPT_COMPRESS:
      if (hoist_layer_compression_parse(optarg, &ao.layer.compression, &err) < 0) {
        hoist_err_free(err);
        rc = cli_usage(VERB, "unknown compression '%s' (gzip, zstd or none)", optarg);
        goto out;
      }
      break;
    case OPT_LEVEL: {
      char *end;
      long v = strtol(optarg, &end, 10);
      if (*end || end == optarg || v < 0 || v > 22) {
        rc = cli_usage(VERB, "bad --level '%s'", optarg);
        goto out;
      }
      ao.layer.level = (int)v;
      break;
    }
    case OPT_SDE: {
      char *end;
      long long v = strtoll(optarg, &end, 10);
      if (*end || end == optarg || v < 0) {
        rc = cli_usage(VERB, "bad --source-date-epoch '%s'", optarg);
        goto out;
      }
      ao.layer.source_date_epoch = v;
      sde_given = true;
      break;
    }
    case OPT_PLATFORM:
      platform_s = optarg;
      break;
    case OPT_CREATED_BY:
      ao.created_by = optarg;
      break;
    case 'h':
      usage(stdout);
      rc = EXIT_OK;
      goto out;
    default: {
      int h = cli_regopts_handle(&ro, VERB, c, optarg);
      if (h != 1) {
        rc = h < 0 ? EXIT_USAGE : cli_usage(VERB, "unknown option");
        goto out;
      }
    }
    }
  }
  if (argc - optind != 1) {
    rc = cli_usage(VERB, "needs exactly one BASE");
    goto out;
  }
  if (!target_s) {
    rc = cli_usage(VERB, "needs --target DEST");
    goto out;
  }
  if (!!tree == !!n_maps) {
    rc = cli_usage(VERB, "needs either --layer TREE or --map SRC:DEST");
    goto out;
  }
  if (overlay && !tree) {
    rc = cli_usage(VERB, "--overlay goes with --layer TREE");
    goto out;
  }
  bool scratch = strcmp(argv[optind], "scratch") == 0;
  if ((!scratch && hoist_loc_parse(argv[optind], &base_loc, &err) < 0) ||
      hoist_loc_parse(target_s, &target_loc, &err) < 0) {
    char *t = hoist_err_text(err);
    hoist_err_free(err);
    rc = cli_usage(VERB, "%s", t);
    free(t);
    goto out;
  }
  if (target_loc->kind == HOIST_LOC_LAYOUT && !target_loc->tag) {
    rc = cli_usage(VERB, "--target oci:DIR needs a tag (oci:DIR:TAG)");
    goto out;
  }
  if (platform_s) {
    if (hoist_platform_parse(platform_s, &platform, &err) < 0) {
      rc = cli_fail(VERB, err);
      goto out;
    }
    ao.platform = platform;
  }
  if (!sde_given && cli_env_epoch(&ao.layer.source_date_epoch, &err) < 0) {
    rc = cli_fail(VERB, err);
    goto out;
  }

  hoist_layer_source ls = {0};
  if (tree) {
    ls.kind = overlay ? HOIST_LAYER_OVERLAY : HOIST_LAYER_TREE;
    ls.dir = tree;
  } else {
    ls.kind = HOIST_LAYER_MAP;
    ls.maps = maps;
    ls.n_maps = n_maps;
  }
  hoist_image_append_result res;
  if (target_loc->kind == HOIST_LOC_REGISTRY && !target_loc->ref->tag) {
    hoist_err_set(&err, EINVAL, "target %s needs a tag", target_loc->ref->path);
    rc = cli_fail(VERB, err);
    goto out;
  }
  if (((base_loc && base_loc->kind == HOIST_LOC_REGISTRY) ||
       target_loc->kind == HOIST_LOC_REGISTRY) &&
      cli_regopts_open(&ro, false, &reg, &err) < 0) {
    rc = cli_fail(VERB, err);
    goto out;
  }
  hoist_transport_opts to = {.registry = reg};
  if ((!scratch && hoist_transport_open_source(&to, base_loc, &src, &err) < 0) ||
      hoist_transport_open_target(&to, target_loc, &dst, &err) < 0 ||
      hoist_image_append(src, dst, &ls, &ao, &res, &err) < 0 ||
      hoist_transport_commit(dst, &err) < 0) {
    rc = cli_fail(VERB, err);
    goto out;
  }
  if (ro.json) {
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "manifest",
                          res.manifest_digest, "config", res.config_digest, "diffID",
                          res.layer.diff_id, "layer", res.layer.digest, "layerSize",
                          (json_int_t)res.layer.size, "layers", (json_int_t)res.n_layers, "copied",
                          (json_int_t)res.blobs_copied, "skipped", (json_int_t)res.blobs_skipped);
    char *s = json_dumps(j, JSON_SORT_KEYS);
    printf("%s\n", s);
    free(s);
    json_decref(j);
  } else {
    printf("manifest: %s\nconfig: %s\nlayer: %s (diffID %s, %" PRIu64 " bytes)\n"
           "layers: %zu (%zu copied, %zu already there)\n",
           res.manifest_digest, res.config_digest, res.layer.digest, res.layer.diff_id,
           res.layer.size, res.n_layers, res.blobs_copied, res.blobs_skipped);
  }
  rc = EXIT_OK;
out:
  hoist_transport_source_free(steal_pointer(&src));
  hoist_transport_target_free(steal_pointer(&dst));
  hoist_registry_free(reg);
  cli_regopts_free(&ro);
  for (size_t i = 0; i < n_maps; i++) {
    free((char *)maps[i].src);
    free((char *)maps[i].dest);
  }
  return rc;
}

HOIST_VERB(append, "append", "add a layer to an image (base layers + one new layer)", append_run);
