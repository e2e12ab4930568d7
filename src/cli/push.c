/* hoist push oci:DIR:TAG REF: an image from an OCI layout to a registry. */
#include <string.h>

#include "regopts.h"

static const char usage[] =
    "Usage: hoist push [OPTIONS] oci:DIR[:TAG] REF\n\n"
    "Push an image (or a whole index) from an OCI layout to a registry. Blobs the\n"
    "registry has are skipped; the manifest is pushed last.\n\n"
    "Options:\n" QUIET_HELP SIGN_KEY_HELP
    "  -h, --help                    show this help\n\n" REGOPTS_HELP;

static int push_run(int argc, char **argv) {
  _cleanup_regopts_ cli_regopts ro = {0};
  const cli_opt opts[] = {
      CLI_FLAG("quiet", &ro.quiet, .letter = 'q'),
      CLI_GROUP(cli_regopts_opts, &ro),
      CLI_GROUP(cli_sign_key_opts, &ro),
      CLI_END,
  };
  int rc = cli_parse_opts("push", usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (argc - optind != 2)
    return cli_usage("push", "expected oci:DIR[:TAG] and REF");
  char **operands = argv + optind;
  if (strncmp(operands[0], "oci:", 4) != 0 || strncmp(operands[1], "oci:", 4) == 0)
    return cli_usage("push", "push goes from oci:DIR[:TAG] to a registry reference");
  hoist_image_copy_opts copy = {.all_platforms = true};
  return cli_transfer("push", &ro, operands[0], operands[1], &copy);
}

HOIST_VERB(push, "push", "push an image from an OCI layout to a registry", push_run);
