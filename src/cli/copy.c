/* hoist copy SRC DST: an image between registries and OCI layouts. */
#include <string.h>

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
    "  -h, --help                    show this help\n\n" REGOPTS_HELP;

enum { OPT_PLATFORM = 1, OPT_ALL };

static int copy_run(int argc, char **argv) {
  static const struct option longopts[] = {{"help", no_argument, NULL, 'h'},
                                           {"platform", required_argument, NULL, OPT_PLATFORM},
                                           {"all-platforms", no_argument, NULL, OPT_ALL},
                                           REGOPTS_LONG,
                                           {NULL, 0, NULL, 0}};
  cli_regopts ro = {0};
  hoist_image_copy_opts opts = {0};
  _cleanup_platform_ hoist_platform *plat = NULL;
  int c, ret;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'h':
      fputs(usage, stdout);
      cli_regopts_free(&ro);
      return EXIT_OK;
    case OPT_PLATFORM: {
      hoist_err *err = NULL;
      hoist_platform_free(plat);
      plat = NULL;
      if (hoist_platform_parse(optarg, &plat, &err) < 0) {
        hoist_err_free(err);
        cli_regopts_free(&ro);
        return cli_usage("copy", "invalid platform \"%s\"", optarg);
      }
      break;
    }
    case OPT_ALL:
      opts.all_platforms = true;
      break;
    default:
      ret = cli_regopts_handle(&ro, "copy", c, optarg);
      if (ret == 1)
        break;
      cli_regopts_free(&ro);
      return ret < 0 ? EXIT_USAGE : cli_usage("copy", "unknown option");
    }
  }
  if (argc - optind != 2) {
    cli_regopts_free(&ro);
    return cli_usage("copy", "expected SRC and DST");
  }
  opts.platform = plat;
  ret = cli_transfer("copy", &ro, argv[optind], argv[optind + 1], &opts);
  cli_regopts_free(&ro);
  return ret;
}

HOIST_VERB(copy, "copy", "copy an image between registries and OCI layouts", copy_run);
