/* hoist delete REF: a manifest from a registry (a tag is resolved first). */
#include <errno.h>
#include <string.h>

#include "hoist/ref.h"
#include "regopts.h"

static const char usage[] =
    "Usage: hoist delete [OPTIONS] REF\n\n"
    "Delete an image from a registry. A tag is resolved to its digest first, and the\n"
    "manifest with that digest is deleted (with every tag pointing at it).\n\n"
    "Options:\n"
    "  -h, --help  show this help\n\n" REGOPTS_HELP;

static int delete_run(int argc, char **argv) {
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
    ret = cli_regopts_handle(&ro, "delete", c, optarg);
    if (ret != 1) {
      cli_regopts_free(&ro);
      return ret < 0 ? EXIT_USAGE : cli_usage("delete", "unknown option");
    }
  }
  if (argc - optind != 1) {
    cli_regopts_free(&ro);
    return cli_usage("delete", "expected one image reference");
  }
  const char *arg = argv[optind];
  if (strncmp(arg, "docker://", 9) == 0)
    arg += 9;
  hoist_err *err = NULL;
  _cleanup_ref_ hoist_ref *ref = NULL;
  _cleanup_registry_ hoist_registry *r = NULL;
  char digest[HOIST_DIGEST_STR_LEN];
  _cleanup_free_ char *repo = NULL;
  if (hoist_ref_parse(arg, &ref, &err) < 0 || cli_regopts_open(&ro, false, &r, &err) < 0)
    goto fail;
  if (ref->digest) {
    snprintf(digest, sizeof digest, "%s", ref->digest);
  } else {
    bool found = false;
    if (hoist_registry_head_manifest(r, ref->domain, ref->path, ref->tag, &found, digest, NULL,
                                     &err) < 0)
      goto fail;
    if (!found) {
      hoist_err_set(&err, ENOENT, "%s/%s:%s: no such tag", ref->domain, ref->path, ref->tag);
      goto fail;
    }
  }
  if (hoist_registry_delete_manifest(r, ref->domain, ref->path, digest, &err) < 0)
    goto fail;
  repo = hoist_ref_repository(ref);
  if (ro.json)
    cli_print_json(json_pack("{s:s, s:s}", "repository", repo, "digest", digest));
  else
    printf("deleted %s@%s\n", repo, digest);
  cli_regopts_free(&ro);
  return EXIT_OK;
fail:
  cli_regopts_free(&ro);
  return cli_fail("delete", err);
}

HOIST_VERB(delete, "delete", "delete an image from a registry", delete_run);
