/* hoist layer create: a layer blob from a tree, an overlay upper dir or mappings. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <string.h>

#include "cli.h"
#include "env.h"
#include "hoist/layer.h"

#define VERB "layer"

static void usage(FILE *out) {
  fprintf(out, "Usage: hoist layer create TREE -o FILE [OPTIONS]\n"
               "       hoist layer create --map SRC:DEST [--map ...] -o FILE [OPTIONS]\n\n"
               "Writes a layer blob (tar, compressed) from a directory in one pass and prints its\n"
               "diffID (sha256 of the tar) and digest (sha256 of the blob).\n\n"
               "Options:\n"
               "  -o, --output FILE          where to write the blob (\"-\" for stdout)\n"
               "  --compress gzip|zstd|none  compression (default gzip)\n"
               "  --level N                  compression level (gzip 0-9, 0-3 igzip; zstd 1-19)\n"
               "  --source-date-epoch N      clamp mtimes to N (default: $SOURCE_DATE_EPOCH)\n"
               "  --overlay                  TREE is an overlayfs upper dir: convert whiteouts\n"
               "  --map SRC:DEST             put host path SRC at DEST in the layer (repeatable)\n"
               "  --uid-map IN:OUT:COUNT     host uids OUT.. become IN.. (repeatable)\n"
               "  --gid-map IN:OUT:COUNT     host gids OUT.. become IN.. (repeatable)\n"
               "  --sparse                   keep holes as GNU sparse entries (not portable:\n"
               "                             podman and Go readers mishandle them)\n"
               "  --json                     print a JSON object\n"
               "  -h, --help                 show this help\n");
}

int cli_parse_idmap(const char *s, hoist_idmap *out);
int cli_parse_idmap(const char *s, hoist_idmap *out) {
  unsigned a, b, c;
  char tail;
  if (sscanf(s, "%u:%u:%u%c", &a, &b, &c, &tail) != 3 || c == 0)
    return -1;
  *out = (hoist_idmap){a, b, c};
  return 0;
}

/* Splits "SRC:DEST" at the last ':' (a host path may contain ':'). */
int cli_parse_map(const char *s, hoist_layer_map *out);
int cli_parse_map(const char *s, hoist_layer_map *out) {
  const char *c = strrchr(s, ':');
  if (!c || c == s || !c[1])
    return -1;
  out->src = strndup(s, (size_t)(c - s));
  out->dest = strdup(c + 1);
  if (!out->src || !out->dest)
    abort();
  return 0;
}

static int layer_create(int argc, char **argv) {
  enum { OPT_COMPRESS = 256, OPT_LEVEL, OPT_SDE, OPT_OVERLAY, OPT_MAP, OPT_UID, OPT_GID, OPT_JSON };
  enum { OPT_SPARSE = OPT_JSON + 1 };
  static const struct option opts[] = {
      {"output", required_argument, NULL, 'o'},
      {"compress", required_argument, NULL, OPT_COMPRESS},
      {"level", required_argument, NULL, OPT_LEVEL},
      {"source-date-epoch", required_argument, NULL, OPT_SDE},
      {"overlay", no_argument, NULL, OPT_OVERLAY},
      {"map", required_argument, NULL, OPT_MAP},
      {"uid-map", required_argument, NULL, OPT_UID},
      {"gid-map", required_argument, NULL, OPT_GID},
      {"json", no_argument, NULL, OPT_JSON},
      {"sparse", no_argument, NULL, OPT_SPARSE},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  hoist_layer_options lo = HOIST_LAYER_OPTIONS_INIT;
  hoist_err *err = NULL;
  const char *output = NULL;
  bool json = false, overlay = false, sde_given = false;
  hoist_layer_map maps[256];
  hoist_idmap uids[16], gids[16];
  size_t n_maps = 0, n_uids = 0, n_gids = 0;
  int rc = EXIT_USAGE;
  _cleanup_writer_ hoist_writer *sink = NULL;

  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
    switch (c) {
    case 'o':
      output = optarg;
      break;
    case OPT_COMPRESS:
      if (hoist_layer_compression_parse(optarg, &lo.compression, &err) < 0) {
        hoist_err_free(err);
        rc = cli_usage(VERB, "unknown compression '%s' (gzip, zstd or none)", optarg);
        goto out;
      }
      break;
    case OPT_LEVEL: {
      char *end;
      long v = strtol(optarg, &end, 10);
      if (*end || v < 0 || v > 22) {
        rc = cli_usage(VERB, "bad --level '%s'", optarg);
        goto out;
      }
      lo.level = (int)v;
      break;
    }
    case OPT_SDE: {
      char *end;
      long long v = strtoll(optarg, &end, 10);
      if (*end || v < 0 || end == optarg) {
        rc = cli_usage(VERB, "bad --source-date-epoch '%s'", optarg);
        goto out;
      }
      lo.source_date_epoch = v;
      sde_given = true;
      break;
    }
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
    case OPT_UID:
    case OPT_GID: {
      hoist_idmap *v = c == OPT_UID ? uids : gids;
      size_t *n = c == OPT_UID ? &n_uids : &n_gids;
      if (*n == 16 || cli_parse_idmap(optarg, &v[*n]) < 0) {
        rc = cli_usage(VERB, "bad id map '%s' (want INSIDE:OUTSIDE:COUNT)", optarg);
        goto out;
      }
      (*n)++;
      break;
    }
    case OPT_JSON:
      json = true;
      break;
    case OPT_SPARSE:
      lo.sparse = true;
      break;
    case 'h':
      usage(stdout);
      rc = EXIT_OK;
      goto out;
    default:
      rc = cli_usage(VERB, "unknown option");
      goto out;
    }
  }
  lo.uid_map = uids;
  lo.n_uid_map = n_uids;
  lo.gid_map = gids;
  lo.n_gid_map = n_gids;

  int rest = argc - optind;
  if (!output) {
    rc = cli_usage(VERB, "create needs -o FILE");
    goto out;
  }
  if ((n_maps > 0) == (rest == 1) || rest > 1) {
    rc = cli_usage(VERB, "create needs one TREE or --map SRC:DEST options");
    goto out;
  }
  if (n_maps && overlay) {
    rc = cli_usage(VERB, "--overlay takes a TREE, not --map");
    goto out;
  }
  if (!sde_given && cli_env_epoch(&lo.source_date_epoch, &err) < 0) {
    rc = cli_fail(VERB, err);
    goto out;
  }

  hoist_layer_source src = {0};
  if (n_maps) {
    src.kind = HOIST_LAYER_MAP;
    src.maps = maps;
    src.n_maps = n_maps;
  } else {
    src.kind = overlay ? HOIST_LAYER_OVERLAY : HOIST_LAYER_TREE;
    src.dir = argv[optind];
  }

  if (hoist_layer_file_writer(AT_FDCWD, output, 0644, &sink, &err) < 0) {
    rc = cli_fail(VERB, err);
    goto out;
  }
  hoist_layer_result res;
  if (hoist_layer_write(&src, &lo, sink, &res, &err) < 0) {
    rc = cli_fail(VERB, err);
    goto out;
  }
  FILE *o = strcmp(output, "-") == 0 ? stderr : stdout;
  if (json) {
    json_t *j =
        json_pack("{s:s, s:s, s:I, s:s, s:I, s:I}", "diffID", res.diff_id, "digest", res.digest,
                  "size", (json_int_t)res.size, "mediaType", res.media_type, "tarSize",
                  (json_int_t)res.tar_size, "entries", (json_int_t)res.n_entries);
    char *s = json_dumps(j, JSON_SORT_KEYS);
    fprintf(o, "%s\n", s);
    free(s);
    json_decref(j);
  } else {
    fprintf(o, "diffID: %s\ndigest: %s\nsize: %" PRIu64 "\nmediaType: %s\n", res.diff_id,
            res.digest, res.size, res.media_type);
  }
  rc = EXIT_OK;
out:
  for (size_t i = 0; i < n_maps; i++) {
    free((char *)maps[i].src);
    free((char *)maps[i].dest);
  }
  return rc;
}

static int layer_run(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? EXIT_USAGE : EXIT_OK;
  }
  if (strcmp(argv[1], "create") == 0) {
    argv[1] = hoist_asprintf("hoist layer %s", argv[1]); /* getopt's messages name it so */
    return layer_create(argc - 1, argv + 1);
  }
  return cli_usage(VERB, "unknown subcommand '%s'", argv[1]);
}

HOIST_VERB(layer, "layer", "write a layer blob from a directory tree", layer_run);
