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
    "  -h, --help                    show this help\n\n" REGOPTS_HELP;

enum { OPT_TO = 1, OPT_PLATFORM, OPT_ALL };

static int pull_run(int argc, char **argv) {
  static const struct option longopts[] = {{"help", no_argument, NULL, 'h'},
                                           {"to", required_argument, NULL, OPT_TO},
                                           {"platform", required_argument, NULL, OPT_PLATFORM},
                                           {"all-platforms", no_argument, NULL, OPT_ALL},
                                           REGOPTS_LONG,
                                           {NULL, 0, NULL, 0}};
  cli_regopts ro = {0};
  hoist_image_copy_opts opts = {0};
  _cleanup_platform_ hoist_platform *plat = NULL;
  const char *to = NULL;
  int c, ret;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'h':
      fputs(usage, stdout);
      cli_regopts_free(&ro);
      return EXIT_OK;
    case OPT_TO:
      to = optarg;
      break;
    case OPT_PLATFORM: {
      hoist_err *err = NULL;
      hoist_platform_free(plat);
      plat = NULL;
      if (hoist_platform_parse(optarg, &plat, &err) < 0) {
        hoist_err_free(err);
        cli_regopts_free(&ro);
        return cli_usage("pull", "invalid platform \"%s\"", optarg);
      }
      break;
    }
    case OPT_ALL:
      opts.all_platforms = true;
      break;
    default:
      ret = cli_regopts_handle(&ro, "pull", c, optarg);
      if (ret == 1)
        break;
      cli_regopts_free(&ro);
      return ret < 0 ? EXIT_USAGE : cli_usage("pull", "unknown option");
    }
  }
  if (argc - optind != 1) {
    cli_regopts_free(&ro);
    return cli_usage("pull", "expected one image reference");
  }
  const char *src = argv[optind];
  _cleanup_loc_ hoist_loc *srcloc = NULL;
  hoist_err *perr = NULL;
  if (hoist_loc_parse(src, &srcloc, &perr) == 0 && srcloc->kind != HOIST_LOC_REGISTRY) {
    cli_regopts_free(&ro);
    return cli_usage("pull", "pull takes a registry reference; use copy for layouts and archives");
  }
  hoist_err_free(perr);
  if (to && strncmp(to, "oci:", 4) != 0) {
    cli_regopts_free(&ro);
    return cli_usage("pull", "--to takes oci:DIR[:TAG]");
  }
  _cleanup_free_ char *dst = NULL;
  if (to) {
    dst = hoist_strdup(to);
  } else {
    hoist_err *err = NULL;
    _cleanup_loc_ hoist_loc *l = NULL;
    if (hoist_loc_parse(src, &l, &err) < 0) {
      cli_regopts_free(&ro);
      return cli_fail("pull", err);
    }
    dst = cli_image_store_location(l->ref);
  }
  opts.platform = plat;
  ret = cli_transfer("pull", &ro, src, dst, &opts);
  cli_regopts_free(&ro);
  return ret;
}

HOIST_VERB(pull, "pull", "pull an image from a registry into an OCI layout", pull_run);
