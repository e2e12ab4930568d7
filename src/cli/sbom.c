/* hoist sbom: the packages an image (or a directory tree) holds, as SPDX. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cli.h"
#include "hoist/attest.h"
#include "hoist/map.h"
#include "hoist/oci.h"
#include "hoist/ref.h"
#include "hoist/store.h"
#include "hoist/unpack.h"
#include "regopts.h"

#define VERB "sbom"

static const char usage[] =
    "Usage: hoist sbom [OPTIONS] REF|oci:DIR[:TAG]|docker-archive:PATH[:REF]|"
    "oci-archive:PATH[:TAG]\n"
    "       hoist sbom --dir DIR [OPTIONS]\n"
    "\n"
    "Print an SPDX 2.3 JSON document of the packages an image holds, read from the\n"
    "package managers' own records: pip's *.dist-info, npm's lock files and\n"
    "node_modules, Go's go.sum and module cache, Maven's repository and jars,\n"
    "composer's installed.json, bundler's Gemfile.lock and gem specifications, and\n"
    "the system's dpkg or apk database. Every layer is read, the last one holding a\n"
    "dpkg or apk database giving the system's packages; packages of the last layer\n"
    "are said to be of the layer a build added, the others of the base.\n"
    "A registry reference is pulled first into the image store, as `hoist pull REF`\n"
    "does.\n"
    "\n"
    "Options:\n"
    "  --layer N            read only layer N (1 the first, -1 the last)\n"
    "  --last-layer         read only the last layer (what a build added)\n"
    "  --dir DIR            read the directory tree DIR instead of an image\n"
    "  --format FORMAT      spdx-json (default) or table (type, name, version, where)\n"
    "  --name NAME          the document's name (default: the image or directory)\n"
    "  --platform OS/ARCH[/VARIANT]  image of a multi-platform index (default: host)\n"
    "  -h, --help           show this help\n"
    "\n" REGOPTS_HELP;

/* The unique part of the document's namespace: the image's config digest
 * (and the layer read), or a random one for a tree. */
#define ID_LEN (HOIST_DIGEST_STR_LEN + 32)

static int parse_layer(const char *verb, const char *arg, void *dest) {
  char *end;
  errno = 0;
  long v = strtol(arg, &end, 10);
  if (errno || *end || end == arg || v == 0 || v > 100000 || v < -100000)
    return cli_usage(verb, "bad layer %s (1 is the first, -1 the last)", arg), -1;
  *(long *)dest = v;
  return 0;
}

/* The database files whose last copy alone counts. */
static const char *const databases[] = {"var/lib/dpkg/status", "lib/apk/db/installed"};

/* The packages of every layer merged into out: everything found, except
 * that of each system database only the last layer's copy is read (what an
 * earlier copy held and the last still holds is of the base). */
static int merge_layers(hoist_sbom **layers, size_t n, hoist_sbom *out, hoist_err **err) {
  size_t last[2] = {SIZE_MAX, SIZE_MAX};
  for (size_t l = 0; l < n; l++)
    for (size_t i = 0; i < hoist_sbom_count(layers[l]); i++)
      for (size_t d = 0; d < 2; d++)
        if (strcmp(hoist_sbom_get(layers[l], i)->path, databases[d]) == 0)
          last[d] = l;
  __attribute__((cleanup(hoist_map_clear))) hoist_map earlier = HOIST_MAP_INIT;
  for (size_t l = 0; l < n; l++)
    for (size_t i = 0; i < hoist_sbom_count(layers[l]); i++) {
      hoist_sbom_package p = *hoist_sbom_get(layers[l], i);
      int db = strcmp(p.path, databases[0]) == 0 ? 0 : strcmp(p.path, databases[1]) == 0 ? 1 : -1;
      if (db >= 0 && l != last[db]) {
        hoist_map_set(&earlier, p.purl, strlen(p.purl), 1);
        continue;
      }
      if (db >= 0 && hoist_map_get(&earlier, p.purl, strlen(p.purl), NULL))
        p.origin = HOIST_SBOM_BASE;
      if (hoist_sbom_add_package(out, &p, err) < 0)
        return -1;
    }
  return 0;
}

static int scan_image(cli_regopts *ro, const char *operand, const char *platform_s, long layer,
                      hoist_sbom *out, char id[ID_LEN]) {
  _cleanup_loc_ hoist_loc *loc = NULL;
  _cleanup_platform_ hoist_platform *platform = NULL;
  int rc = cli_image_layout(ro, VERB, "image", operand, platform_s, &loc, &platform);
  if (rc >= 0)
    return rc;
  hoist_err *err = NULL;
  _cleanup_store_ hoist_store *store = NULL;
  _cleanup_manifest_ hoist_manifest *m = NULL;
  if (hoist_store_open(loc->dir, false, &store, &err) < 0 ||
      hoist_unpack_resolve(store, loc->tag, platform, &m, &err) < 0)
    return cli_fail(VERB, err);
  size_t first = 0, end = m->n_layers;
  if (layer) {
    long i = layer > 0 ? layer - 1 : (long)m->n_layers + layer;
    if (i < 0 || i >= (long)m->n_layers) {
      err = NULL;
      hoist_err_set(&err, ERANGE, "%s has %zu layer(s), no layer %ld", operand, m->n_layers, layer);
      return cli_fail(VERB, err);
    }
    first = (size_t)i, end = first + 1;
  }
  /* one document per image (its config) and choice of layers */
  if (layer)
    snprintf(id, ID_LEN, "%s-layer-%zu", m->config.digest, first + 1);
  else
    snprintf(id, ID_LEN, "%s", m->config.digest);
  hoist_sbom **layers = hoist_calloc(m->n_layers, sizeof *layers);
  int r = 0;
  for (size_t i = first; i < end && r == 0; i++) {
    const hoist_descriptor *d = &m->layers[i];
    if (hoist_media_kind_of(d->media_type) != HOIST_MEDIA_LAYER)
      continue;
    _cleanup_close_ int fd = -1;
    uint64_t size;
    layers[i] = hoist_sbom_new();
    hoist_sbom_origin origin = i + 1 == m->n_layers || layer ? HOIST_SBOM_LAYER : HOIST_SBOM_BASE;
    if ((r = hoist_store_open_blob(store, d->digest, &fd, &size, &err)) < 0 ||
        (r = hoist_sbom_scan_layer(layers[i], fd, origin, &err)) < 0)
      hoist_err_wrap(&err, "layer %zu (%s)", i + 1, d->digest);
  }
  if (r == 0)
    r = merge_layers(layers, m->n_layers, out, &err);
  for (size_t i = 0; i < m->n_layers; i++)
    hoist_sbom_free(layers[i]);
  free(layers);
  return r < 0 ? cli_fail(VERB, err) : -1;
}

static void print_table(const hoist_sbom *s) {
  printf("%-8s  %-40s  %-24s  %s\n", "TYPE", "NAME", "VERSION", "WHERE");
  for (size_t i = 0; i < hoist_sbom_count(s); i++) {
    const hoist_sbom_package *p = hoist_sbom_get(s, i);
    printf("%-8s  %-40s  %-24s  %s\n", p->purl_type, p->name, p->version ? p->version : "-",
           p->origin == HOIST_SBOM_BASE ? "base" : "layer");
  }
}

static int run(int argc, char **argv) {
  const char *dir = NULL, *format = "spdx-json", *name = NULL, *platform_s = NULL;
  long layer = 0;
  bool last = false;
  _cleanup_regopts_ cli_regopts ro = {0};
  const cli_opt opts[] = {
      CLI_CALL("layer", parse_layer, &layer),
      CLI_FLAG("last-layer", &last),
      CLI_STRING("dir", &dir),
      CLI_STRING("format", &format),
      CLI_STRING("name", &name),
      CLI_STRING("platform", &platform_s),
      CLI_GROUP(cli_regopts_opts, &ro),
      CLI_END,
  };
  int rc = cli_parse_opts(VERB, usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (strcmp(format, "spdx-json") != 0 && strcmp(format, "table") != 0)
    return cli_usage(VERB, "bad format %s (spdx-json or table)", format);
  if (last && layer)
    return cli_usage(VERB, "--layer and --last-layer exclude each other");
  if (last)
    layer = -1;
  if (dir ? argc != optind : argc - optind != 1)
    return cli_usage(VERB, dir ? "--dir takes no image" : "expected one image");
  if (dir && (layer || platform_s))
    return cli_usage(VERB, "--layer, --last-layer and --platform are for an image");

  hoist_err *err = NULL;
  _cleanup_sbom_ hoist_sbom *s = hoist_sbom_new();
  char id[ID_LEN] = "";
  if (dir) {
    if (hoist_sbom_scan_tree(s, dir, HOIST_SBOM_LAYER, &err) < 0)
      return cli_fail(VERB, err);
    /* a tree has no digest: the document's namespace is made unique by chance */
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
      return cli_fail(VERB, NULL);
    for (size_t i = 0; i < sizeof rnd; i++)
      snprintf(id + 2 * i, 3, "%02x", rnd[i]);
  } else if ((rc = scan_image(&ro, argv[optind], platform_s, layer, s, id)) >= 0) {
    return rc;
  }
  if (strcmp(format, "table") == 0) {
    print_table(s);
    return EXIT_OK;
  }
  hoist_sbom_doc_info info = {.name = name ? name : dir ? dir : argv[optind], .namespace_id = id};
  _cleanup_free_ char *text = NULL;
  size_t len;
  if (hoist_sbom_to_spdx(s, &info, &text, &len, &err) < 0)
    return cli_fail(VERB, err);
  printf("%s\n", text);
  return EXIT_OK;
}

HOIST_VERB(sbom, VERB, "list the packages an image holds, as an SPDX 2.3 document", run);
