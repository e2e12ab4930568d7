/* hoist rmi IMAGE...: remove tags of local images. */
#include <errno.h>

#include "cli.h"
#include "env.h"
#include "hoist/image.h"
#include "hoist/store.h"

#define VERB "rmi"

static const char usage[] =
    "Usage: hoist rmi [OPTIONS] IMAGE...\n"
    "\n"
    "Remove local images: IMAGE is an image of the image store (a reference as\n"
    "`hoist images` lists it; REPOSITORY@DIGEST removes every tag of the repository\n"
    "that points at DIGEST) or a layout's tag (oci:DIR:TAG). Only the tags go: the\n"
    "blobs stay until `hoist gc` collects them (`hoist gc` for every layout of the\n"
    "image store, `hoist gc oci:DIR` for a layout), since another tag or a write\n"
    "under way may still use them. Each IMAGE is tried; the exit code is 1 when\n"
    "one failed.\n"
    "\n"
    "Options:\n"
    "  --json      print a JSON array of {\"image\", \"digest\", \"tags\"}\n"
    "  -h, --help  show this help\n";

/* Removes the tags operand names, and prints them (or adds them to out for
 * --json). Returns the exit code. */
static int remove_one(const char *operand, json_t *out, bool json) {
  _cleanup_loc_ hoist_loc *loc = NULL;
  _cleanup_free_ char *by_digest = NULL;
  int rc = cli_local_image(VERB, operand, &loc, &by_digest);
  if (rc >= 0)
    return rc;
  if (!by_digest && !loc->tag)
    return cli_usage(VERB, "%s: name a tag (oci:DIR:TAG)", operand);
  hoist_err *err = NULL;
  _cleanup_store_ hoist_store *s = NULL;
  _cleanup_strfreev_ char **tags = NULL;
  hoist_descriptor d = {0};
  const char *digest = by_digest;
  if (hoist_store_open(loc->dir, false, &s, &err) < 0) {
    hoist_err_wrap(&err, "%s", operand);
    return cli_fail(VERB, err);
  }
  if (by_digest) {
    if (hoist_store_untag_digest(s, by_digest, &tags, &err) < 0)
      return cli_fail(VERB, err);
  } else {
    if (hoist_store_resolve(s, loc->tag, &d, &err) < 0 ||
        hoist_store_untag(s, loc->tag, &err) < 0) {
      hoist_descriptor_clear(&d);
      return cli_fail(VERB, err);
    }
    digest = d.digest;
    tags = hoist_malloc0(2 * sizeof *tags);
    tags[0] = hoist_strdup(loc->tag);
  }
  json_t *jt = json_array();
  for (size_t i = 0; tags[i]; i++)
    json_array_append_new(jt, json_string(tags[i]));
  if (json) {
    json_array_append_new(
        out, json_pack("{s:s, s:s, s:o}", "image", operand, "digest", digest, "tags", jt));
  } else {
    /* NAME:TAG as `hoist images` shows it, or oci:DIR:TAG */
    _cleanup_free_ char *store = cli_env_image_store();
    _cleanup_free_ char *repo = hoist_image_store_repository(store, loc->dir);
    _cleanup_free_ char *name = repo ? steal_pointer(&repo) : hoist_asprintf("oci:%s", loc->dir);
    for (size_t i = 0; tags[i]; i++)
      printf("untagged %s:%s %s\n", name, tags[i], digest);
    if (!tags[0])
      printf("untagged %s@%s\n", name, digest);
    json_decref(jt);
  }
  hoist_descriptor_clear(&d);
  return EXIT_OK;
}

static int run(int argc, char **argv) {
  bool json = false;
  const cli_opt opts[] = {CLI_FLAG("json", &json), CLI_END};
  int rc = cli_parse_opts(VERB, usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (optind == argc)
    return cli_usage(VERB, "expected one or more images");
  json_t *out = json_array();
  int worst = EXIT_OK;
  for (int i = optind; i < argc; i++) {
    int r = remove_one(argv[i], out, json);
    if (r > worst)
      worst = r;
  }
  if (json)
    cli_print_json(out);
  else
    json_decref(out);
  return worst;
}

HOIST_VERB(rmi, VERB, "remove local images' tags (image store or layout)", run);
