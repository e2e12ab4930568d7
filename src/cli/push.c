/* hoist push oci:DIR:TAG REF: an image from an OCI layout to a registry. */
#include <string.h>

#include "regopts.h"

static const char usage[] =
    "Usage: hoist push [OPTIONS] oci:DIR[:TAG] REF\n\n"
    "Push an image (or a whole index) from an OCI layout to a registry. Blobs the\n"
    "registry has are skipped; the manifest is pushed last.\n\n"
    "Options:\n"
    "  -h, --help  show this help\n\n" REGOPTS_HELP;

static int push_run(int argc, char **argv) {
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
    ret = cli_regopts_handle(&ro, "push", c, optarg);
    if (ret != 1) {
      cli_regopts_free(&ro);
      return ret < 0 ? EXIT_USAGE : cli_usage("push", "unknown option");
    }
  }
  if (argc - optind != 2) {
    cli_regopts_free(&ro);
    return cli_usage("push", "expected oci:DIR[:TAG] and REF");
  }
  if (strncmp(argv[optind], "oci:", 4) != 0 || strncmp(argv[optind + 1], "oci:", 4) == 0) {
    cli_regopts_free(&ro);
    return cli_usage("push", "push goes from oci:DIR[:TAG] to a registry reference");
  }
  hoist_image_copy_opts opts = {.all_platforms = true};
  ret = cli_transfer("push", &ro, argv[optind], argv[optind + 1], &opts);
  cli_regopts_free(&ro);
  return ret;
}

HOIST_VERB(push, "push", "push an image from an OCI layout to a registry", push_run);
