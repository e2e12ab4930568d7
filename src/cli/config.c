/* hoist config: an image with a changed config (crane mutate, buildah config). */
#include <inttypes.h>

#include "configopts.h"
#include "hoist/image.h"
#include "layeropts.h"
#include "regopts.h"

#define VERB "config"

static const char usage[] =
    "Usage: hoist config IMAGE --target DEST [OPTIONS]\n\n"
    "Makes a new image: IMAGE with its config changed as the options say (and the\n"
    "manifest's annotations). Only the config and the manifest are new: layers DEST\n"
    "already has (the same layout or repository) are not touched, others are mounted\n"
    "within one registry or streamed. IMAGE and DEST are registry references or\n"
    "oci:DIR[:TAG] layouts (DEST needs a tag; it may be IMAGE itself).\n\n"
    "Options:\n"
    "  --target DEST              where the new image goes\n"
    "  --platform OS/ARCH[/VAR]   which image of a multi-platform IMAGE (default: host)\n"
    "  --history-comment TEXT     add a history entry (empty_layer) with this comment,\n"
    "                             and set created to its time\n"
    "  --created-by TEXT          that entry's created_by (default \"hoist config\")\n"
    "  --source-date-epoch N      that entry's time (default: $SOURCE_DATE_EPOCH, or now)\n"
    "  -h, --help                 show this help\n\n" CONFIGOPTS_HELP "\n" REGOPTS_HELP;

static int config_run(int argc, char **argv) {
  const char *target_s = NULL;
  _cleanup_config_edit_ hoist_config_edit edit = {0};
  _cleanup_platform_ hoist_platform *platform = NULL;
  hoist_image_config_opts co = {.created = -1};
  _cleanup_regopts_ cli_regopts ro = {0};
  const cli_opt opts[] = {
      CLI_STRING("target", &target_s),
      CLI_CALL("platform", cli_opt_platform, &platform),
      CLI_STRING("history-comment", &co.comment),
      CLI_STRING("created-by", &co.created_by),
      CLI_CALL("source-date-epoch", cli_opt_epoch, &co.created),
      CLI_GROUP(cli_config_opts, &edit),
      CLI_GROUP(cli_regopts_opts, &ro),
      CLI_END,
  };
  int rc = cli_parse_opts(VERB, usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (co.created_by && !co.comment)
    return cli_usage(VERB, "--created-by goes with --history-comment");
  hoist_err *err = NULL;
  if (co.comment && cli_layer_epoch_default(&co.created, &err) < 0)
    return cli_fail(VERB, err);
  _cleanup_image_ends_ cli_image_ends ends = {0};
  if ((rc = cli_image_ends_open(VERB, "IMAGE", false, argc, argv, target_s, &ro, &ends)) >= 0)
    return rc;
  co.platform = platform;
  co.jobs = ro.o.jobs;
  hoist_image_config_result res;
  if (hoist_image_config_edit(ends.src, ends.dst, &edit, &co, &res, &err) < 0 ||
      hoist_transport_commit(ends.dst, &err) < 0)
    return cli_fail(VERB, err);
  if (ro.json)
    cli_json_print(stdout,
                   json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "manifest", res.manifest_digest,
                             "config", res.config_digest, "layers", (json_int_t)res.n_layers,
                             "copied", (json_int_t)res.blobs_copied, "mounted",
                             (json_int_t)res.blobs_mounted, "skipped",
                             (json_int_t)res.blobs_skipped),
                   JSON_SORT_KEYS);
  else
    printf("manifest: %s\nconfig: %s\nlayers: %zu (%" PRIu64 " copied, %" PRIu64
           " mounted, %" PRIu64 " already there)\n",
           res.manifest_digest, res.config_digest, res.n_layers, res.blobs_copied,
           res.blobs_mounted, res.blobs_skipped);
  return EXIT_OK;
}

HOIST_VERB(config, "config", "change an image's config: cmd, entrypoint, env, labels, ...",
           config_run);
