/* hoist sbom: the packages an image (or a directory tree) holds, as SPDX. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cli.h"
#include "hoist/attest.h"
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
  if (hoist_sbom_scan_image(out, store, m, layer, &err) < 0) {
    hoist_err_wrap(&err, "%s", operand);
    return cli_fail(VERB, err);
  }
  /* one document per image (its config) and choice of layers */
  long n = (long)m->n_layers;
  if (layer)
    snprintf(id, ID_LEN, "%s-layer-%ld", m->config.digest, layer > 0 ? layer : n + layer + 1);
  else
    snprintf(id, ID_LEN, "%s", m->config.digest);
  return -1;
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
  if (ro.json && strcmp(format, "table") == 0)
    return cli_usage(VERB, "--json and --format table exclude each other");
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
