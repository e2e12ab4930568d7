/* hoist layer create: a layer blob from a tree, an overlay upper dir or mappings. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>

#include "layeropts.h"

#define VERB "layer"

static const char usage[] =
    "Usage: hoist layer create TREE -o FILE [OPTIONS]\n"
    "       hoist layer create --map SRC:DEST [--map ...] -o FILE [OPTIONS]\n\n"
    "Writes a layer blob (tar, compressed) from a directory in one pass and prints its\n"
    "diffID (sha256 of the tar) and digest (sha256 of the blob).\n\n"
    "Options:\n"
    "  -o, --output FILE          where to write the blob (\"-\" for stdout)\n"
    "  --compress gzip|zstd|none  compression (default gzip)\n"
    "  --level N                  compression level (gzip 0-9, 0-3 igzip; zstd 1-19)\n"
    "  --compress-threads N       threads compressing the layer (default: one per CPU;\n"
    "                             the blob is the same whatever N)\n"
    "  --source-date-epoch N      clamp mtimes to N (default: $SOURCE_DATE_EPOCH)\n"
    "  --overlay                  TREE is an overlayfs upper dir: convert whiteouts\n"
    "  --map SRC:DEST             put host path SRC at DEST in the layer (repeatable)\n"
    "  --uid-map IN:OUT:COUNT     host uids OUT.. become IN.. (repeatable)\n"
    "  --gid-map IN:OUT:COUNT     host gids OUT.. become IN.. (repeatable)\n"
    "  --sparse                   keep holes as GNU sparse entries (not portable:\n"
    "                             podman and Go readers mishandle them)\n"
    "  --json                     print a JSON object\n"
    "  -h, --help                 show this help\n";

/* The --uid-map or --gid-map options of layer create. */
typedef struct idmaps {
  hoist_idmap v[16];
  size_t n;
} idmaps;

/* --uid-map/--gid-map INSIDE:OUTSIDE:COUNT, COUNT > 0, into an idmaps. */
static int opt_idmap(const char *verb, const char *arg, void *dest) {
  idmaps *m = dest;
  unsigned a, b, c;
  char tail;
  if (m->n == sizeof m->v / sizeof *m->v || sscanf(arg, "%u:%u:%u%c", &a, &b, &c, &tail) != 3 ||
      c == 0)
    return cli_usage(verb, "bad id map '%s' (want INSIDE:OUTSIDE:COUNT)", arg), -1;
  m->v[m->n++] = (hoist_idmap){a, b, c};
  return 0;
}

static int layer_create(int argc, char **argv) {
  hoist_layer_options lo = HOIST_LAYER_OPTIONS_INIT;
  const char *output = NULL;
  bool json = false, overlay = false;
  _cleanup_maps_ cli_maps maps = {.n = 0};
  idmaps uids = {.n = 0}, gids = {.n = 0};
  const cli_opt opts[] = {
      CLI_STRING("output", &output, .letter = 'o'),
      CLI_CALL("compress", cli_opt_compression, &lo.compression),
      CLI_CALL("level", cli_opt_level, &lo.level),
      CLI_CALL("compress-threads", cli_opt_compress_threads, &lo.threads),
      CLI_CALL("source-date-epoch", cli_opt_epoch, &lo.source_date_epoch),
      CLI_FLAG("overlay", &overlay),
      CLI_CALL("map", cli_opt_map, &maps),
      CLI_CALL("uid-map", opt_idmap, &uids),
      CLI_CALL("gid-map", opt_idmap, &gids),
      CLI_FLAG("json", &json),
      CLI_FLAG("sparse", &lo.sparse),
      CLI_END,
  };
  int rc = cli_parse_opts(VERB, usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  lo.uid_map = uids.v;
  lo.n_uid_map = uids.n;
  lo.gid_map = gids.v;
  lo.n_gid_map = gids.n;

  int rest = argc - optind;
  if (!output)
    return cli_usage(VERB, "create needs -o FILE");
  if ((maps.n > 0) == (rest == 1) || rest > 1)
    return cli_usage(VERB, "create needs one TREE or --map SRC:DEST options");
  if (maps.n && overlay)
    return cli_usage(VERB, "--overlay takes a TREE, not --map");
  hoist_err *err = NULL;
  if (cli_layer_epoch_default(&lo.source_date_epoch, &err) < 0)
    return cli_fail(VERB, err);

  hoist_layer_source src = {0};
  if (maps.n) {
    src.kind = HOIST_LAYER_MAP;
    src.maps = maps.v;
    src.n_maps = maps.n;
  } else {
    src.kind = overlay ? HOIST_LAYER_OVERLAY : HOIST_LAYER_TREE;
    src.dir = argv[optind];
  }

  _cleanup_writer_ hoist_writer *sink = NULL;
  hoist_layer_result res;
  if (hoist_layer_file_writer(AT_FDCWD, output, 0644, &sink, &err) < 0 ||
      hoist_layer_write(&src, &lo, sink, &res, &err) < 0)
    return cli_fail(VERB, err);
  FILE *o = strcmp(output, "-") == 0 ? stderr : stdout;
  if (json)
    cli_json_print(o,
                   json_pack("{s:s, s:s, s:I, s:s, s:I, s:I}", "diffID", res.diff_id, "digest",
                             res.digest, "size", (json_int_t)res.size, "mediaType", res.media_type,
                             "tarSize", (json_int_t)res.tar_size, "entries",
                             (json_int_t)res.n_entries),
                   JSON_SORT_KEYS);
  else
    fprintf(o, "diffID: %s\ndigest: %s\nsize: %" PRIu64 "\nmediaType: %s\n", res.diff_id,
            res.digest, res.size, res.media_type);
  return EXIT_OK;
}

static int layer_run(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? EXIT_USAGE : EXIT_OK;
  }
  if (strcmp(argv[1], "create") == 0) {
    argv[1] = hoist_asprintf("hoist layer %s", argv[1]); /* getopt's messages name it so */
    return layer_create(argc - 1, argv + 1);
  }
  return cli_usage(VERB, "unknown subcommand '%s'", argv[1]);
}

HOIST_VERB(layer, "layer", "write a layer blob from a directory tree", layer_run);
