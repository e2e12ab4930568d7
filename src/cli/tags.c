/* hoist tags REPO: the tags of a repository. */
#include <string.h>

#include "hoist/ref.h"
#include "regopts.h"

static const char usage[] = "Usage: hoist tags [OPTIONS] REPOSITORY\n\n"
                            "List the tags of a repository (host/path), one per line.\n\n"
                            "Options:\n"
                            "  -h, --help  show this help\n\n" REGOPTS_HELP;

static int tags_run(int argc, char **argv) {
  static const struct option longopts[] = {
      {"help", no_argument, NULL, 'h'}, REGOPTS_LONG, {NULL, 0, NULL, 0}};
  cli_regopts ro = {0};
  int c, ret;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    if (c == 'h') {
      fputs(usage, stdout);
      cli_regopts_free(&ro);
      return EXIT_OK;
    }
    ret = cli_regopts_handle(&ro, "tags", c, optarg);
    if (ret != 1) {
      cli_regopts_free(&ro);
      return ret < 0 ? EXIT_USAGE : cli_usage("tags", "unknown option");
    }
  }
  if (argc - optind != 1) {
    cli_regopts_free(&ro);
    return cli_usage("tags", "expected one repository");
  }
  const char *arg = argv[optind];
  if (strncmp(arg, "docker://", 9) == 0)
    arg += 9;
  hoist_err *err = NULL;
  _cleanup_ref_ hoist_ref *ref = NULL;
  _cleanup_registry_ hoist_registry *r = NULL;
  char **tags = NULL;
  size_t n = 0;
  if (hoist_ref_parse(arg, &ref, &err) < 0 || cli_regopts_open(&ro, false, &r, &err) < 0 ||
      hoist_registry_tags(r, ref->domain, ref->path, &tags, &n, &err) < 0) {
    cli_regopts_free(&ro);
    return cli_fail("tags", err);
  }
  if (ro.json) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
      json_array_append_new(a, json_string(tags[i]));
    _cleanup_free_ char *repo = hoist_ref_repository(ref);
    cli_print_json(json_pack("{s:s, s:o}", "repository", repo, "tags", a));
  } else {
    for (size_t i = 0; i < n; i++)
      printf("%s\n", tags[i]);
  }
  hoist_strv_free(tags);
  cli_regopts_free(&ro);
  return EXIT_OK;
}

HOIST_VERB(tags, "tags", "list the tags of a repository", tags_run);
