/* hoist delete REF: a manifest from a registry (a tag is resolved first). */
#include <errno.h>

#include "hoist/ref.h"
#include "regopts.h"

static const char usage[] =
    "Usage: hoist delete [OPTIONS] REF\n\n"
    "Delete an image from a registry. A tag is resolved to its digest first, and the\n"
    "manifest with that digest is deleted (with every tag pointing at it).\n\n"
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

static int delete (cli_regopts *ro, char **operands) {
  hoist_err *err = NULL;
  _cleanup_ref_ hoist_ref *ref = NULL;
  _cleanup_registry_ hoist_registry *r = NULL;
  char digest[HOIST_DIGEST_STR_LEN];
  if (hoist_ref_parse(cli_registry_operand(operands[0]), &ref, &err) < 0 ||
      cli_regopts_open(ro, false, &r, &err) < 0 || resolve(r, ref, digest, &err) < 0 ||
      hoist_registry_delete_manifest(r, ref->domain, ref->path, digest, &err) < 0)
    return cli_fail("delete", err);
  _cleanup_free_ char *repo = hoist_ref_repository(ref);
  if (ro->json)
    cli_print_json(json_pack("{s:s, s:s}", "repository", repo, "digest", digest));
  else
    printf("deleted %s@%s\n", repo, digest);
  return EXIT_OK;
}

static int delete_run(int argc, char **argv) {
  return cli_regopts_run("delete", usage, 1, "expected one image reference", delete, argc, argv);
}

HOIST_VERB(delete, "delete", "delete an image from a registry", delete_run);
