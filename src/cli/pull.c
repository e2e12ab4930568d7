/* hoist pull REF: an image from a registry into an OCI layout. */
#include <string.h>

#include "hoist/ref.h"
#include "regopts.h"

static const char usage[] =
    "Usage: hoist pull [OPTIONS] REF\n\n"
    "Pull an image from a registry into an OCI layout. Without --to it goes to the\n"
    "image store $HOIST_IMAGES (default ${HOIST_CACHE:-~/.cache/hoist}/images): one layout\n"
    "per repository, STORE/HOST/PATH (':' in HOST written '_'), tagged with REF's tag\n"
    "(or sha256-HEX for a digest reference).\n\n"
    "Options:\n"
    "  --to oci:DIR[:TAG]            destination layout (TAG defaults to REF's tag)\n"
    "  --platform OS/ARCH[/VARIANT]  image to take from an index (default: this host's)\n"
    "  --all-platforms               pull the whole index\n"
    "  --oci                         write OCI media types (Docker manifests and lists\n"
    "                                rewritten, so their digests change), as umoci needs\n"
    "  -h, --help                    show this help\n" QUIET_HELP VERIFY_KEY_HELP "\n" REGOPTS_HELP;

static int pull_run(int argc, char **argv) {
  _cleanup_transfer_args_ cli_transfer_args t = {0};
  const char *to = NULL;
  const cli_opt opts[] = {
      CLI_STRING("to", &to),
      CLI_GROUP(cli_transfer_opts, &t),
      CLI_GROUP(cli_verify_key_opts, &t.ro),
      CLI_END,
  };
  int rc = cli_parse_opts("pull", usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (argc - optind != 1)
    return cli_usage("pull", "expected one image reference");
  const char *src = argv[optind];
  _cleanup_loc_ hoist_loc *srcloc = NULL;
  hoist_err *perr = NULL;
  if (hoist_loc_parse(src, &srcloc, &perr) == 0 && srcloc->kind != HOIST_LOC_REGISTRY)
    return cli_usage("pull", "pull takes a registry reference; use copy for layouts and archives");
  hoist_err_free(perr);
  if (to && strncmp(to, "oci:", 4) != 0)
    return cli_usage("pull", "--to takes oci:DIR[:TAG]");
  _cleanup_free_ char *dst = NULL;
  if (to) {
    dst = hoist_strdup(to);
  } else {
    hoist_err *err = NULL;
    _cleanup_loc_ hoist_loc *l = NULL;
    if (cli_loc_parse(&t.ro, src, &l, &err) < 0)
      return cli_fail("pull", err);
    dst = cli_image_store_location(l->ref);
  }
  return cli_transfer("pull", &t.ro, src, dst, &t.copy);
}

HOIST_VERB(pull, "pull", "pull an image from a registry into an OCI layout", pull_run);
