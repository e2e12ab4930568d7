/* hoist index create: single-platform images joined into one multi-arch
 * index. */
#include <string.h>

#include "attestopts.h"
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
    "index of exactly one, beside the attestation manifests of that image, as\n"
    "BuildKit and hoist --provenance push it: those are carried into the new index,\n"
    "which is then an OCI index); its platform is its config's, and the platforms must be\n"
    "distinct. Sources in another repository (or layout) are copied into TARGET's,\n"
    "mounted when the registry allows. TARGET and SRC are registry references or\n"
    "oci:DIR[:TAG] layouts; TARGET needs a tag.\n"
    "\n"
    "Options:\n"
    "  --oci        write an OCI image index instead of a Docker manifest list\n"
    "  --tag T      also tag the index T (repeatable)\n"
    "  -h, --help   show this help\n\n" ATTESTOPTS_HELP
    "  (the index's own provenance is always an OCI 1.1 referrer of the index:\n"
    "  --attest-mode referrer, the default here)\n\n" REGOPTS_HELP;

/* The --tag options of index create, room kept for a NULL. */
typedef struct index_tags {
  const char *v[33];
  size_t n;
} index_tags;

static int opt_tag(const char *verb, const char *arg, void *dest) {
  index_tags *t = dest;
  if (t->n == sizeof t->v / sizeof *t->v - 1)
    return cli_usage(verb, "too many --tag"), -1;
  t->v[t->n++] = arg;
  return 0;
}

/* Frees a NULL-terminated array of locations and its locations. */
static void locs_free(hoist_loc ***locs) {
  for (hoist_loc **l = *locs; *l; l++)
    hoist_loc_free(*l);
  free(*locs);
}

/* The provenance of an index: its sources (external) and each one's image
 * by digest, read back from the index written (its entries are in the
 * order of the sources). */
static int index_attest_job(cli_attest_job *job, const hoist_transport_opts *to, hoist_loc **locs,
                            size_t n, const char *tname, const index_tags *tags, hoist_err **err) {
  _cleanup_transport_source_ hoist_transport_source *src = NULL;
  _cleanup_free_ char *data = NULL;
  _cleanup_free_ char *mt = NULL;
  size_t len = 0;
  char digest[HOIST_DIGEST_STR_LEN];
  _cleanup_index_ hoist_index *ix = NULL;
  if (hoist_transport_open_source(to, locs[0], &src, err) < 0 ||
      src->ops->manifest(src, NULL, &data, &len, &mt, digest, err) < 0 ||
      hoist_index_parse(data, len, &ix, err) < 0)
    return hoist_err_wrap(err, "%s", tname);
  json_t *sources = json_array();
  for (size_t i = 0; i < n; i++) {
    _cleanup_free_ char *name = hoist_loc_string(locs[i + 1]);
    json_array_append_new(sources, json_string(name));
    if (i < ix->n_manifests)
      cli_attest_job_dep(job, name, ix->manifests[i].digest, NULL);
  }
  json_object_set_new(job->external, "sources", sources);
  json_object_set_new(job->external, "target", json_string(tname));
  json_t *more = json_array();
  for (size_t i = 0; i < tags->n; i++)
    json_array_append_new(more, json_string(tags->v[i]));
  json_object_set_new(job->external, "tags", more);
  return 0;
}

static int index_create(int argc, char **argv) {
  _cleanup_regopts_ cli_regopts ro = {0};
  hoist_image_index_opts io = {0};
  index_tags tags = {.n = 0};
  cli_attestopts ato = {0};
  const cli_opt opts[] = {
      CLI_FLAG("oci", &io.oci),
      CLI_CALL("tag", opt_tag, &tags),
      CLI_GROUP(cli_attestopts_opts, &ato),
      CLI_GROUP(cli_regopts_opts, &ro),
      CLI_END,
  };
  int rc = cli_parse_opts(VERB, create_usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (argc - optind < 2)
    return cli_usage(VERB, "needs TARGET and at least one SRC");
  if ((rc = cli_attestopts_check(VERB, &ato)) >= 0)
    return rc;
  if (ato.mode_s && ato.mode == HOIST_ATTEST_INDEX)
    return cli_usage(VERB, "an index's provenance is a referrer of it: --attest-mode referrer");
  ato.mode = HOIST_ATTEST_REFERRER;
  size_t n = (size_t)(argc - optind - 1);
  __attribute__((cleanup(locs_free))) hoist_loc **locs = hoist_malloc0((n + 2) * sizeof *locs);
  hoist_err *err = NULL;
  for (size_t i = 0; i <= n; i++)
    if (cli_loc_parse(&ro, argv[optind + (int)i], &locs[i], &err) < 0)
      return cli_usage_err(VERB, err);
  const hoist_loc *t = locs[0];
  if (!hoist_loc_tag(t))
    return cli_usage(VERB, "TARGET needs a tag (REPO:TAG or oci:DIR:TAG)");
  if ((rc = cli_attestopts_check_target(VERB, &ato, t)) >= 0)
    return rc;
  _cleanup_registry_ hoist_registry *reg = NULL;
  if (cli_regopts_open(&ro, true, &reg, &err) < 0)
    return cli_fail(VERB, err);
  tags.v[tags.n] = NULL;
  io.tags = tags.n ? tags.v : NULL;
  hoist_image_index_result res;
  hoist_transport_opts to = {.registry = reg};
  _cleanup_attest_job_ cli_attest_job job;
  cli_attest_job_init(&job, "index-create");
  rc = hoist_image_index_create(&to, locs[0], (const hoist_loc *const *)locs + 1, n, &io, &res,
                                &err);
  cli_progress_end();
  if (rc < 0)
    return cli_fail(VERB, err);
  _cleanup_free_ char *tname = hoist_loc_string(locs[0]);
  hoist_attest_result ares = {0};
  if (cli_attest_wanted(&ato) &&
      (index_attest_job(&job, &to, locs, n, tname, &tags, &err) < 0 ||
       cli_attest_finish(&ato, &to, locs[0], res.digest, &job, &ares, &err) < 0))
    return cli_fail(VERB, err);
  if (ro.json) {
    json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:I}", "target", tname, "digest", res.digest,
                          "mediaType", res.media_type, "manifests", (json_int_t)res.n_manifests,
                          "copied", (json_int_t)res.images_copied);
    if (cli_attest_wanted(&ato))
      json_object_set_new(
          j, "attestation",
          json_pack("{s:s, s:s}", "mode", "referrer", "manifest", ares.attestation));
    cli_print_json(j);
  } else {
    printf("%s %s (%s, %zu manifests, %llu copied)\n", tname, res.digest, res.media_type,
           res.n_manifests, (unsigned long long)res.images_copied);
    if (cli_attest_wanted(&ato))
      printf("attestations: %s (referrer)\n", ares.attestation);
  }
  return EXIT_OK;
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
