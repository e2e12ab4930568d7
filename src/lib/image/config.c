/* hoist_image_config_edit: an image with a changed config, on the transport;
 * only the config and the manifest are new. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "image-internal.h"

/* The config src's manifest m names, changed by edit (and opts' history
 * entry), as canonical JSON in *out (caller frees). */
HOIST_WUR static int edited_config(hoist_transport_source *src, const hoist_manifest *m,
                                   const hoist_config_edit *edit,
                                   const hoist_image_config_opts *opts, char **out, size_t *len,
                                   hoist_err **err) {
  _cleanup_free_ char *data = NULL;
  size_t n = 0;
  _cleanup_config_ hoist_config *cfg = NULL;
  int r;
  if ((r = src->ops->blob(src, m->config.digest, HOIST_MANIFEST_MAX, &data, &n, err)) < 0 ||
      (r = hoist_config_parse(data, n, &cfg, err)) < 0)
    return hoist_err_wrap(err, "config %s", m->config.digest);
  if (hoist_config_n_diff_ids(cfg) != m->n_layers)
    return hoist_err_set(err, HOIST_E_FORMAT, "config %s lists %zu diff_ids for %zu layers",
                         m->config.digest, hoist_config_n_diff_ids(cfg), m->n_layers);
  if (edit && (r = hoist_config_edit_apply(edit, cfg, err)) < 0)
    return r;
  if (opts->comment) {
    time_t when = opts->created >= 0 ? (time_t)opts->created : time(NULL);
    const char *by = opts->created_by ? opts->created_by : "hoist config";
    if ((r = hoist_config_add_history(cfg, by, opts->comment, when, err)) < 0)
      return r;
  }
  return hoist_config_to_json(cfg, out, len, err);
}

int hoist_image_config_edit(hoist_transport_source *src, hoist_transport_target *dst,
                            const hoist_config_edit *edit, const hoist_image_config_opts *opts,
                            hoist_image_config_result *out, hoist_err **err) {
  hoist_image_config_opts none = {.created = -1};
  if (!opts)
    opts = &none;
  memset(out, 0, sizeof *out);
  _cleanup_manifest_ hoist_manifest *m = NULL;
  _cleanup_free_ char *cjson = NULL;
  _cleanup_free_ char *mjson = NULL;
  size_t clen = 0, mlen = 0;
  int r;
  /* everything is read, changed and checked before anything is written */
  if ((r = image_manifest_of(src, "image", opts->platform, &m, err)) < 0 ||
      (r = edited_config(src, m, edit, opts, &cjson, &clen, err)) < 0 ||
      (edit && (r = hoist_config_edit_annotate(edit, m, err)) < 0))
    return hoist_err_wrap(err, "config edit");
  hoist_sha256_of(cjson, clen, out->config_digest);
  free(m->config.digest);
  m->config.digest = hoist_strdup(out->config_digest);
  m->config.size = (int64_t)clen;
  if ((r = hoist_manifest_to_json(m, &mjson, &mlen, err)) < 0)
    return hoist_err_wrap(err, "config edit");
  hoist_sha256_of(mjson, mlen, out->manifest_digest);
  out->n_layers = m->n_layers;

  _cleanup_free_ const hoist_descriptor **layers =
      hoist_calloc(m->n_layers ? m->n_layers : 1, sizeof *layers);
  for (size_t i = 0; i < m->n_layers; i++)
    layers[i] = &m->layers[i];
  image_blob_counts counts = {0};
  r = image_copy_blobs(src, dst, layers, m->n_layers, opts->jobs, &counts, err);
  out->blobs_copied = counts.copied;
  out->blobs_mounted = counts.mounted;
  out->blobs_skipped = counts.skipped;
  if (r < 0 ||
      (r = image_put_blob(dst, m->config.media_type, cjson, clen, out->config_digest, err)) < 0 ||
      (r = dst->ops->put_manifest(dst, NULL, mjson, mlen, m->media_type, err)) < 0)
    return hoist_err_wrap(err, "config edit");
  return 0;
}
