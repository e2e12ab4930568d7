/* hoist images: the images of the local image store. */
#include <fnmatch.h>
#include <string.h>

#include "cli.h"
#include "env.h"
#include "hoist/image.h"

#define VERB "images"

static const char usage[] =
    "Usage: hoist images [OPTIONS] [PATTERN]\n"
    "\n"
    "List the images of the image store ($HOIST_IMAGES, default\n"
    "${HOIST_CACHE:-~/.cache/hoist}/images), where `hoist pull`, `run`, `unpack` and\n"
    "`build` keep registry images: repository, tag, digest, size (the manifest, config\n"
    "and layers, as stored) and when the image was created (its config's \"created\").\n"
    "PATTERN (shell wildcards) keeps the images whose REPOSITORY or REPOSITORY:TAG\n"
    "it matches.\n"
    "\n"
    "Options:\n"
    "  -q, --quiet  print the digests only, each once\n"
    "  --no-trunc   print whole digests\n"
    "  --json       print a JSON array of {repository, tag, digest, mediaType, size,\n"
    "               created, layout}\n"
    "  -h, --help   show this help\n"
    "\n"
    "The build service's registry housekeeping is `hoist service images`.\n";

static bool matches(const hoist_image_store_entry *e, const char *pattern) {
  if (!pattern || fnmatch(pattern, e->repository, 0) == 0)
    return true;
  _cleanup_free_ char *full = hoist_asprintf("%s:%s", e->repository, e->tag ? e->tag : "");
  return fnmatch(pattern, full, 0) == 0;
}

static void print_json(const hoist_image_store_entry *v, size_t n, const char *pattern) {
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++) {
    const hoist_image_store_entry *e = &v[i];
    if (!matches(e, pattern))
      continue;
    json_array_append_new(
        arr, json_pack("{s:s, s:o, s:s, s:s, s:I, s:o, s:s}", "repository", e->repository, "tag",
                       e->tag ? json_string(e->tag) : json_null(), "digest", e->desc.digest,
                       "mediaType", e->desc.media_type, "size", (json_int_t)e->size, "created",
                       e->created ? json_string(e->created) : json_null(), "layout", e->layout));
  }
  cli_json_print(stdout, arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
}

/* Each digest once, in the order of the list. */
static void print_digests(const hoist_image_store_entry *v, size_t n, const char *pattern) {
  for (size_t i = 0; i < n; i++) {
    bool seen = !matches(&v[i], pattern);
    for (size_t k = 0; k < i && !seen; k++)
      seen = matches(&v[k], pattern) && strcmp(v[k].desc.digest, v[i].desc.digest) == 0;
    if (!seen)
      printf("%s\n", v[i].desc.digest);
  }
}

/* "2024-05-01T12:34:56.789Z" -> "2024-05-01 12:34:56" (the zone dropped when it
 * is UTC's); anything else as it is. */
static void short_time(const char *t, char out[40]) {
  if (!t) {
    snprintf(out, 40, "-");
    return;
  }
  size_t n = strlen(t);
  if (n >= 20 && t[10] == 'T' && t[n - 1] == 'Z')
    snprintf(out, 40, "%.10s %.8s", t, t + 11);
  else
    snprintf(out, 40, "%.39s", t);
}

static void print_table(const hoist_image_store_entry *v, size_t n, const char *pattern,
                        bool no_trunc) {
  int rw = (int)strlen("REPOSITORY"), tw = (int)strlen("TAG");
  for (size_t i = 0; i < n; i++) {
    if (!matches(&v[i], pattern))
      continue;
    int r = (int)strlen(v[i].repository), t = (int)strlen(v[i].tag ? v[i].tag : "<none>");
    rw = r > rw ? r : rw;
    tw = t > tw ? t : tw;
  }
  int dw = no_trunc ? HOIST_DIGEST_STR_LEN - 1 : 19;
  printf("%-*s  %-*s  %-*s  %10s  %s\n", rw, "REPOSITORY", tw, "TAG", dw, "DIGEST", "SIZE",
         "CREATED");
  for (size_t i = 0; i < n; i++) {
    const hoist_image_store_entry *e = &v[i];
    if (!matches(e, pattern))
      continue;
    char size[32], created[40];
    cli_human_size((double)e->size, size);
    short_time(e->created, created);
    printf("%-*s  %-*s  %-*.*s  %10s  %s\n", rw, e->repository, tw, e->tag ? e->tag : "<none>", dw,
           dw, e->desc.digest, size, created);
  }
}

static int run(int argc, char **argv) {
  bool json = false, quiet = false, no_trunc = false;
  const cli_opt opts[] = {
      CLI_FLAG("json", &json),
      CLI_FLAG("quiet", &quiet, .letter = 'q'),
      CLI_FLAG("no-trunc", &no_trunc),
      CLI_END,
  };
  int rc = cli_parse_opts(VERB, usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (argc - optind > 1)
    return cli_usage(VERB, "expected at most one pattern");
  const char *pattern = optind < argc ? argv[optind] : NULL;
  static const char *const service_cmds[] = {"list-catalogs", "list-images", "get-image",
                                             "delete-image"};
  for (size_t i = 0; pattern && i < sizeof service_cmds / sizeof *service_cmds; i++)
    if (strcmp(pattern, service_cmds[i]) == 0)
      return cli_usage(VERB,
                       "%s is a command of the build service's images: use "
                       "'hoist service images %s'",
                       pattern, pattern);
  if (json && quiet)
    return cli_usage(VERB, "--json and --quiet exclude each other");
  hoist_err *err = NULL;
  _cleanup_free_ char *store = cli_env_image_store();
  hoist_image_store_entry *v = NULL;
  size_t n = 0;
  if (hoist_image_store_list(store, &v, &n, &err) < 0)
    return cli_fail(VERB, err);
  if (json)
    print_json(v, n, pattern);
  else if (quiet)
    print_digests(v, n, pattern);
  else
    print_table(v, n, pattern, no_trunc);
  hoist_image_store_entries_free(v, n);
  return EXIT_OK;
}

HOIST_VERB(images, VERB, "list the images of the local image store", run);
