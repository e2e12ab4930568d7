/* hoist index create: single-platform images joined into one multi-arch
 * index. */
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "hoist/image.h"
#include "regopts.h"

#define VERB "index create"

static const char index_usage[] = "Usage: hoist index COMMAND [OPTIONS]\n"
                                  "\n"
                                  "Multi-platform image indexes.\n"
                                  "\n"
                                  "Commands:\n"
                                  "  create TARGET SRC...   join single-platform images into "
                                  "one index\n"
                                  "\n"
                                  "Run 'hoist index COMMAND --help' for a command's options.\n";

static const char create_usage[] =
    "Usage: hoist index create TARGET SRC... [--oci] [--tag T]... [OPTIONS]\n"
    "\n"
    "Joins single-platform images into one multi-arch index at TARGET: a Docker\n"
    "manifest list, or an OCI index with --oci (always in an oci: layout, where OCI\n"
    "tools look for nothing else). Each SRC must be one image (or an\n"
    "index of exactly one); its platform is its config's, and the platforms must be\n"
    "distinct. Sources in another repository (or layout) are copied into TARGET's,\n"
    "mounted when the registry allows. TARGET and SRC are registry references or\n"
    "oci:DIR[:TAG] layouts; TARGET needs a tag.\n"
    "\n"
    "Options:\n"
    "  --oci        write an OCI image index instead of a Docker manifest list\n"
    "  --tag T      also tag the index T (repeatable)\n"
    "  -h, --help   show this help\n\n" REGOPTS_HELP;

static int index_create(int argc, char **argv) {
  enum { OPT_OCI = 256, OPT_TAG };
  static const struct option opts[] = {
      {"help", no_argument, NULL, 'h'},
      {"oci", no_argument, NULL, OPT_OCI},
      {"tag", required_argument, NULL, OPT_TAG},
      REGOPTS_LONG,
      {NULL, 0, NULL, 0},
  };
  cli_regopts ro = {0};
  hoist_image_index_opts io = {0};
  const char *tags[33];
  size_t n_tags = 0;
  int rc = -1;
  optind = 1;
  int c;
  while (rc < 0 && (c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'h':
      fputs(create_usage, stdout);
      rc = EXIT_OK;
      break;
    case OPT_OCI:
      io.oci = true;
      break;
    case OPT_TAG:
      if (n_tags == 32)
        rc = cli_usage(VERB, "too many --tag");
      else
        tags[n_tags++] = optarg;
      break;
    default: {
      int h = cli_regopts_handle(&ro, VERB, c, optarg);
      if (h != 1)
        rc = h < 0 ? EXIT_USAGE : cli_usage(VERB, "unknown option");
    }
    }
  }
  if (rc < 0 && argc - optind < 2)
    rc = cli_usage(VERB, "needs TARGET and at least one SRC");
  size_t n = rc < 0 ? (size_t)(argc - optind - 1) : 0;
  hoist_loc **locs = hoist_malloc0((n + 1) * sizeof *locs);
  hoist_err *err = NULL;
  for (size_t i = 0; rc < 0 && i <= n; i++) {
    if (hoist_loc_parse(argv[optind + i], &locs[i], &err) < 0) {
      _cleanup_free_ char *t = hoist_err_text(err);
      hoist_err_free(err);
      rc = cli_usage(VERB, "%s", t);
    }
  }
  if (rc < 0) {
    const hoist_loc *t = locs[0];
    if (!hoist_loc_tag(t))
      rc = cli_usage(VERB, "TARGET needs a tag (REPO:TAG or oci:DIR:TAG)");
  }
  hoist_registry *reg = NULL;
  if (rc < 0 && cli_regopts_open(&ro, true, &reg, &err) < 0)
    rc = cli_fail(VERB, err);
  if (rc < 0) {
    tags[n_tags] = NULL;
    io.tags = n_tags ? tags : NULL;
    hoist_image_index_result res;
    hoist_transport_opts to = {.registry = reg};
    if (hoist_image_index_create(&to, locs[0], (const hoist_loc *const *)locs + 1, n, &io, &res,
                                 &err) < 0) {
      cli_progress_end();
      rc = cli_fail(VERB, err);
    } else {
      cli_progress_end();
      _cleanup_free_ char *tname = hoist_loc_string(locs[0]);
      if (ro.json)
        cli_print_json(json_pack("{s:s, s:s, s:s, s:I, s:I}", "target", tname, "digest", res.digest,
                                 "mediaType", res.media_type, "manifests",
                                 (json_int_t)res.n_manifests, "copied",
                                 (json_int_t)res.images_copied));
      else
        printf("%s %s (%s, %zu manifests, %llu copied)\n", tname, res.digest, res.media_type,
               res.n_manifests, (unsigned long long)res.images_copied);
      rc = EXIT_OK;
    }
  }
  hoist_registry_free(reg);
  for (size_t i = 0; i <= n; i++)
    hoist_loc_free(locs[i]);
  free(locs);
  cli_regopts_free(&ro);
  return rc;
}

static int run_index(int argc, char **argv) {
  if (argc < 2) {
    fputs(index_usage, stderr);
    return EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    fputs(index_usage, stdout);
    return EXIT_OK;
  }
  if (strcmp(cmd, "create") == 0) {
    argv[1] = hoist_asprintf("hoist index %s", cmd); /* getopt's messages name it so */
    return index_create(argc - 1, argv + 1);
  }
  return cli_usage("index", "unknown command '%s'", cmd);
}

HOIST_VERB(index, "index", "join single-platform images into a multi-arch index", run_index);
