/* hoist delete REF: a manifest from a registry (a tag is resolved first). */
#include <errno.h>

#include "hoist/ref.h"
#include "regopts.h"

static const char usage[] =
    "Usage: hoist delete [OPTIONS] REF\n\n"
    "Delete an image from a registry. A tag is resolved to its digest first, and the\n"
    "manifest with that digest is deleted, with every tag pointing at it: each is\n"
    "named (\"untagged REPO:TAG\"), then \"deleted REPO@DIGEST\". With --json:\n"
    "{\"repository\", \"digest\", \"tags\"}.\n\n"
    "Options:\n"
    "  -h, --help  show this help\n\n" REGOPTS_HELP;

/* The digest ref names: its own, or the one its tag points at on r. */
static int resolve(hoist_registry *r, const hoist_ref *ref, char digest[HOIST_DIGEST_STR_LEN],
                   hoist_err **err) {
  if (ref->digest) {
    snprintf(digest, HOIST_DIGEST_STR_LEN, "%s", ref->digest);
    return 0;
  }
  bool found = false;
  if (hoist_registry_head_manifest(r, ref->domain, ref->path, ref->tag, &found, digest, NULL, err) <
      0)
    return -1;
  if (!found)
    return hoist_err_set(err, ENOENT, "%s/%s:%s: no such tag", ref->domain, ref->path, ref->tag);
  return 0;
}

/* The tags of ref's repository on r that point at digest, found before the
 * delete takes them: a registry that does not list tags leaves them unknown
 * (NULL, with a note on stderr), which does not stop the delete. */
static char **tags_of(hoist_registry *r, const hoist_ref *ref, const char *digest) {
  hoist_err *err = NULL;
  char **tags = NULL;
  size_t n = 0;
  if (hoist_registry_tags_of(r, ref->domain, ref->path, digest, &tags, &n, &err) < 0) {
    _cleanup_free_ char *text = hoist_err_text(err);
    hoist_err_free(err);
    fprintf(stderr, "hoist delete: the tags it takes are unknown: %s\n", text);
    return NULL;
  }
  return tags;
}

static int delete (cli_regopts *ro, char **operands) {
  hoist_err *err = NULL;
  _cleanup_ref_ hoist_ref *ref = NULL;
  _cleanup_registry_ hoist_registry *r = NULL;
  _cleanup_strfreev_ char **tags = NULL;
  char digest[HOIST_DIGEST_STR_LEN];
  if (cli_ref_located(ro, operands[0], &ref, &err) < 0 ||
      cli_regopts_open(ro, false, &r, &err) < 0 || resolve(r, ref, digest, &err) < 0)
    return cli_fail("delete", err);
  tags = tags_of(r, ref, digest);
  if (hoist_registry_delete_manifest(r, ref->domain, ref->path, digest, &err) < 0)
    return cli_fail("delete", err);
  _cleanup_free_ char *repo = hoist_ref_repository(ref);
  if (ro->json) {
    json_t *jt = tags ? json_array() : json_null();
    for (size_t i = 0; tags && tags[i]; i++)
      json_array_append_new(jt, json_string(tags[i]));
    cli_print_json(json_pack("{s:s, s:s, s:o}", "repository", repo, "digest", digest, "tags", jt));
    return EXIT_OK;
  }
  for (size_t i = 0; tags && tags[i]; i++)
    printf("untagged %s:%s\n", repo, tags[i]);
  printf("deleted %s@%s\n", repo, digest);
  return EXIT_OK;
}

static int delete_run(int argc, char **argv) {
  return cli_regopts_run("delete", usage, 1, "expected one image reference", delete, argc, argv);
}

HOIST_VERB(delete, "delete", "delete an image from a registry", delete_run);
