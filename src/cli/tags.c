/* hoist tags REPO: the tags of a repository. */
#include "hoist/ref.h"
#include "regopts.h"

static const char usage[] = "Usage: hoist tags [OPTIONS] REPOSITORY\n\n"
                            "List the tags of a repository (host/path), one per line.\n\n"
                            "Options:\n"
                            "  -h, --help  show this help\n\n" REGOPTS_HELP;

static int tags(cli_regopts *ro, char **operands) {
  hoist_err *err = NULL;
  _cleanup_ref_ hoist_ref *ref = NULL;
  _cleanup_registry_ hoist_registry *r = NULL;
  _cleanup_strfreev_ char **tags = NULL;
  size_t n = 0;
  if (cli_ref_located(ro, operands[0], &ref, &err) < 0 ||
      cli_regopts_open(ro, false, &r, &err) < 0 ||
      hoist_registry_tags(r, ref->domain, ref->path, &tags, &n, &err) < 0)
    return cli_fail("tags", err);
  if (ro->json) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
      json_array_append_new(a, json_string(tags[i]));
    _cleanup_free_ char *repo = hoist_ref_repository(ref);
    cli_print_json(json_pack("{s:s, s:o}", "repository", repo, "tags", a));
  } else {
    for (size_t i = 0; i < n; i++)
      printf("%s\n", tags[i]);
  }
  return EXIT_OK;
}

static int tags_run(int argc, char **argv) {
  return cli_regopts_run("tags", usage, 1, "expected one repository", tags, argc, argv);
}

HOIST_VERB(tags, "tags", "list the tags of a repository", tags_run);
