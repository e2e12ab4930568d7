/* hoist copy SRC DST: an image between registries and OCI layouts. */
#include "regopts.h"

static const char usage[] =
    "Usage: hoist copy [OPTIONS] SRC DST\n\n"
    "Copy an image. SRC and DST are registry references (REF or docker://REF), OCI\n"
    "layouts (oci:DIR[:TAG]) or archives (oci-archive:PATH[:TAG], docker-archive:PATH[:REF],\n"
    "as skopeo and docker save write them). Within one registry blobs are mounted, not\n"
    "copied.\n\n"
    "Options:\n"
    "  --platform OS/ARCH[/VARIANT]  image to take from an index (default: this host's)\n"
    "  --all-platforms               copy the whole index and every image in it\n"
    "  --oci                         write OCI media types (Docker manifests and lists\n"
    "                                rewritten, so their digests change), as umoci needs\n"
    "  -h, --help                    show this help\n" QUIET_HELP "\n" REGOPTS_HELP "\n" SIDES_HELP;

static int copy_run(int argc, char **argv) {
  _cleanup_transfer_args_ cli_transfer_args t = {0};
  cli_sides sides = {0};
  const cli_opt opts[] = {CLI_GROUP(cli_transfer_opts, &t), CLI_GROUP(cli_sides_opts, &sides),
                          CLI_END};
  int rc = cli_parse_opts("copy", usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (argc - optind != 2)
    return cli_usage("copy", "expected SRC and DST");
  return cli_transfer_sides("copy", &t.ro, &sides, argv[optind], argv[optind + 1], &t.copy);
}

HOIST_VERB(copy, "copy", "copy an image between registries and OCI layouts", copy_run);
