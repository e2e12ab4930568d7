/* hoist push oci:DIR:TAG REF: an image from an OCI layout to a registry. */
#include <string.h>

#include "regopts.h"

static const char usage[] =
    "Usage: hoist push [OPTIONS] oci:DIR[:TAG] REF\n\n"
    "Push an image (or a whole index) from an OCI layout to a registry. Blobs the\n"
    "registry has are skipped; the manifest is pushed last.\n\n"
    "Options:\n"
    "  -h, --help  show this help\n\n" REGOPTS_HELP;

static int push(cli_regopts *ro, char **operands) {
  if (strncmp(operands[0], "oci:", 4) != 0 || strncmp(operands[1], "oci:", 4) == 0)
    return cli_usage("push", "push goes from oci:DIR[:TAG] to a registry reference");
  hoist_image_copy_opts copy = {.all_platforms = true};
  return cli_transfer("push", ro, operands[0], operands[1], &copy);
}

static int push_run(int argc, char **argv) {
  return cli_regopts_run("push", usage, 2, "expected oci:DIR[:TAG] and REF", push, argc, argv);
}

HOIST_VERB(push, "push", "push an image from an OCI layout to a registry", push_run);
