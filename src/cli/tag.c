/* hoist tag SRC DEST: one more tag for a local image. */
#include "cli.h"
#include "hoist/image.h"

#define VERB "tag"

static const char usage[] =
    "Usage: hoist tag [OPTIONS] SRC DEST\n\n"
    "Give the local image SRC the name DEST. Each is an image of the image store\n"
    "(a reference, as `hoist images` lists it) or a layout (oci:DIR[:TAG]; DEST needs\n"
    "its TAG). Within one layout (a new tag of the same repository in the store) only\n"
    "index.json changes: DEST points at SRC's manifest, and no blob is copied. Into\n"
    "another layout (another repository) the image is copied first, the blobs that\n"
    "layout holds skipped.\n\n"
    "Options:\n"
    "  --json      print {\"source\", \"target\", \"digest\", \"copied\", \"blobsCopied\"}\n"
    "  -h, --help  show this help\n";

static int run(int argc, char **argv) {
  bool json = false;
  const cli_opt opts[] = {
      CLI_FLAG("json", &json),
      CLI_END,
  };
  int rc = cli_parse_opts(VERB, usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (argc - optind != 2)
    return cli_usage(VERB, "expected SRC and DEST");
  _cleanup_loc_ hoist_loc *src = NULL;
  _cleanup_loc_ hoist_loc *dst = NULL;
  _cleanup_free_ char *src_digest = NULL;
  _cleanup_free_ char *dst_digest = NULL;
  if ((rc = cli_local_image(VERB, argv[optind], &src, &src_digest)) >= 0 ||
      (rc = cli_local_image(VERB, argv[optind + 1], &dst, &dst_digest)) >= 0)
    return rc;
  if (dst_digest || !dst->tag)
    return cli_usage(VERB, "%s: DEST needs a tag", argv[optind + 1]);
  hoist_err *err = NULL;
  hoist_image_tag_result res;
  if (hoist_image_tag(src, dst, &res, &err) < 0)
    return cli_fail(VERB, err);
  if (json)
    cli_print_json(json_pack("{s:s, s:s, s:s, s:b, s:I}", "source", argv[optind], "target",
                             argv[optind + 1], "digest", res.digest, "copied", res.copied,
                             "blobsCopied", (json_int_t)res.blobs_copied));
  else if (res.copied)
    printf("tagged %s %s (copied into %s: %llu blobs)\n", argv[optind + 1], res.digest, dst->dir,
           (unsigned long long)res.blobs_copied);
  else
    printf("tagged %s %s\n", argv[optind + 1], res.digest);
  return EXIT_OK;
}

HOIST_VERB(tag, VERB, "give a local image (image store or layout) another tag", run);
