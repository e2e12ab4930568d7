/* hoist_image_append: base image + one new layer, on the transport. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "image-internal.h"

/* --------------------------------------------------------------- append */

int image_manifest_of(hoist_transport_source *src, const char *what, const hoist_platform *want,
                      hoist_manifest **out, hoist_err **err) {
  _cleanup_free_ char *data = NULL;
  _cleanup_free_ char *got_mt = NULL;
  char got[HOIST_DIGEST_STR_LEN];
  size_t len = 0;
  int r = src->ops->manifest(src, NULL, &data, &len, &got_mt, got, err);
  if (r < 0)
    return hoist_err_wrap(err, "%s manifest", what);
  const char *mt = hoist_manifest_detect(data, len);
  if (mt && hoist_media_kind_of(mt) == HOIST_MEDIA_INDEX) {
    _cleanup_index_ hoist_index *ix = NULL;
    if ((r = hoist_index_parse(data, len, &ix, err)) < 0)
      return hoist_err_wrap(err, "%s index", what);
    _cleanup_platform_ hoist_platform *host = want ? NULL : hoist_platform_host();
    const hoist_descriptor *d = hoist_index_find_platform(ix, want ? want : host);
    if (!d) {
      _cleanup_free_ char *p = hoist_platform_string(want ? want : host);
      return hoist_err_set(err, ENOENT, "%s index has no manifest for %s", what, p);
    }
    free(steal_pointer(&data));
    free(steal_pointer(&got_mt));
    if ((r = src->ops->manifest(src, d->digest, &data, &len, &got_mt, got, err)) < 0)
      return hoist_err_wrap(err, "%s manifest %s", what, d->digest);
  }
  if ((r = hoist_manifest_parse_image(data, len, out, err)) < 0)
    return hoist_err_wrap(err, "%s manifest", what);
  return 0;
}

int image_put_blob(hoist_transport_target *t, const char *media_type, const char *data, size_t len,
                   const char digest[HOIST_DIGEST_STR_LEN], hoist_err **err) {
  hoist_descriptor d = {
      .media_type = (char *)media_type, .digest = (char *)digest, .size = (int64_t)len};
  bool has = false;
  if (t->ops->has_blob(t, &d, &has, err) < 0)
    return -1;
  if (has)
    return 0;
  for (int attempt = 1;; attempt++) {
    _cleanup_writer_ hoist_writer *w = NULL;
    char got[HOIST_DIGEST_STR_LEN];
    hoist_err *e = NULL;
    if (t->ops->blob_writer(t, digest, (int64_t)len, &w, &e) == 0 &&
        hoist_writer_write(w, data, len, &e) == 0 && hoist_writer_commit(w, got, NULL, &e) == 0)
      return 0;
    if (!image_give_again(e, attempt))
      return image_err_take(err, e);
    hoist_err_free(e);
  }
}

int hoist_image_put_bytes(hoist_transport_target *t, const char *media_type, const char *data,
                          size_t len, hoist_descriptor *out, hoist_err **err) {
  hoist_descriptor_of_bytes(out, media_type, data, len);
  if (image_put_blob(t, media_type, data, len, out->digest, err) < 0) {
    hoist_descriptor_clear(out);
    return hoist_err_wrap(err, "store blob %s", media_type);
  }
  return 0;
}

bool image_give_again(const hoist_err *e, int attempt) {
  if (!e || e->code != EAGAIN || attempt >= IMAGE_WRITER_ATTEMPTS)
    return false;
  _cleanup_free_ char *why = hoist_err_text(e);
  hoist_info("%s; giving the content again", why);
  return true;
}

int image_err_take(hoist_err **err, hoist_err *e) {
  int code = e ? e->code : EIO;
  if (err && !*err)
    *err = e;
  else
    hoist_err_free(e);
  return -code;
}

/* Media type of the new layer in a manifest of the base's kind. */
HOIST_WUR static int new_layer_media_type(const hoist_manifest *m, hoist_compression c,
                                          const char **out, hoist_err **err) {
  if (strcmp(m->media_type, HOIST_MT_DOCKER_MANIFEST) != 0) {
    *out = hoist_layer_media_type(c);
    return 0;
  }
  switch (c) {
  case HOIST_COMPRESS_GZIP:
    *out = HOIST_MT_DOCKER_LAYER_GZIP;
    return 0;
  case HOIST_COMPRESS_NONE:
    *out = HOIST_MT_DOCKER_LAYER;
    return 0;
  default:
    return hoist_err_set(err, EINVAL,
                         "a Docker schema 2 base cannot carry a zstd layer; use gzip or an OCI "
                         "base");
  }
}

HOIST_WUR static int copy_prebuilt(hoist_transport_target *target,
                                   const hoist_image_append_prebuilt *pre, hoist_layer_result *res,
                                   hoist_transport_how *how, hoist_err **err) {
  if (hoist_transport_copy_blob(target, pre->from, &pre->desc, how, NULL, err) < 0)
    return hoist_err_wrap(err, "copy layer %s", pre->desc.digest);
  memset(res, 0, sizeof *res);
  snprintf(res->diff_id, sizeof res->diff_id, "%s", pre->diff_id);
  snprintf(res->digest, sizeof res->digest, "%s", pre->desc.digest);
  res->size = (uint64_t)pre->desc.size;
  res->media_type = hoist_layer_media_type(
      (hoist_compression)hoist_media_layer_compression(pre->desc.media_type));
  return 0;
}

/* The base layers the target lacks, from the base (mounted when the target
 * can take them from the base's origin). */
HOIST_WUR static int copy_base_layers(hoist_transport_source *base, hoist_transport_target *target,
                                      const hoist_manifest *m, hoist_image_append_result *out,
                                      hoist_err **err) {
  for (size_t i = 0; i < m->n_layers; i++) {
    const hoist_descriptor *d = &m->layers[i];
    hoist_transport_how how = HOIST_TRANSPORT_PRESENT;
    if (hoist_transport_copy_blob(target, base, d, &how, NULL, err) < 0)
      return hoist_err_wrap(err, "copy layer %s", d->digest);
    if (how == HOIST_TRANSPORT_COPIED)
      out->blobs_copied++;
    else
      out->blobs_skipped++;
  }
  return 0;
}

int hoist_image_append(hoist_transport_source *base, hoist_transport_target *target,
                       const hoist_layer_source *layer, const hoist_image_append_options *opts,
                       hoist_image_append_result *out, hoist_err **err) {
  memset(out, 0, sizeof *out);
  _cleanup_manifest_ hoist_manifest *m = NULL;
  _cleanup_config_ hoist_config *cfg = NULL;
  int r = 0;
  if (base) {
    if ((r = image_manifest_of(base, "base", opts->platform, &m, err)) < 0)
      return hoist_err_wrap(err, "append");
  } else {
    m = hoist_manifest_new(HOIST_MT_OCI_MANIFEST);
    cfg = hoist_config_new(opts->platform);
  }
  const hoist_image_append_prebuilt *pre = opts->prebuilt;
  hoist_compression comp = opts->layer.compression;
  if (pre) {
    int c = hoist_media_layer_compression(pre->desc.media_type);
    if (c < 0 || !pre->diff_id || !hoist_digest_valid(pre->diff_id))
      return hoist_err_set(err, EINVAL, "append: prebuilt layer %s: not a layer with a diffID",
                           pre->desc.digest);
    comp = (hoist_compression)c;
  }
  const char *layer_mt = NULL;
  if ((r = new_layer_media_type(m, comp, &layer_mt, err)) < 0)
    return hoist_err_wrap(err, "append");

  _cleanup_free_ char *cdata = NULL;
  size_t clen = 0;
  if (base &&
      ((r = base->ops->blob(base, m->config.digest, HOIST_MANIFEST_MAX, &cdata, &clen, err)) < 0 ||
       (r = hoist_config_parse(cdata, clen, &cfg, err)) < 0))
    return hoist_err_wrap(err, "append: base config %s", m->config.digest);
  if (hoist_config_n_diff_ids(cfg) != m->n_layers)
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "append: base config lists %zu diff_ids for %zu layers",
                         hoist_config_n_diff_ids(cfg), m->n_layers);

  if (opts->config_edit && ((r = hoist_config_edit_apply(opts->config_edit, cfg, err)) < 0 ||
                            (r = hoist_config_edit_annotate(opts->config_edit, m, err)) < 0))
    return hoist_err_wrap(err, "append");

  if (base && (r = copy_base_layers(base, target, m, out, err)) < 0)
    return hoist_err_wrap(err, "append");

  if (opts->edit_config && (r = opts->edit_config(opts->edit_ctx, cfg, err)) < 0)
    return hoist_err_wrap(err, "append: config");

  if (pre) {
    if ((r = copy_prebuilt(target, pre, &out->layer, &out->layer_how, err)) < 0)
      return hoist_err_wrap(err, "append");
  } else {
    /* the new layer, streamed from disk into the target as it is made; a
     * registry that refused the way it went up gets it again another way */
    for (int attempt = 1;; attempt++) {
      _cleanup_writer_ hoist_writer *w = NULL;
      hoist_err *e = NULL;
      if (target->ops->blob_writer(target, NULL, -1, &w, &e) == 0 &&
          hoist_layer_write(layer, &opts->layer, w, &out->layer, &e) == 0)
        break;
      if (!image_give_again(e, attempt)) {
        image_err_take(err, e);
        return hoist_err_wrap(err, "append");
      }
      hoist_err_free(e);
    }
  }

  time_t created =
      opts->layer.source_date_epoch >= 0 ? (time_t)opts->layer.source_date_epoch : time(NULL);
  if ((r = hoist_config_add_layer(cfg, out->layer.diff_id,
                                  opts->created_by ? opts->created_by : "hoist append",
                                  opts->comment, created, err)) < 0)
    return hoist_err_wrap(err, "append");
  _cleanup_free_ char *cjson = NULL;
  size_t cjson_len = 0;
  if ((r = hoist_config_to_json(cfg, &cjson, &cjson_len, err)) < 0)
    return hoist_err_wrap(err, "append: config");
  hoist_sha256_of(cjson, cjson_len, out->config_digest);
  if ((r = image_put_blob(target, HOIST_MT_OCI_CONFIG, cjson, cjson_len, out->config_digest, err)) <
      0)
    return hoist_err_wrap(err, "append: store config");

  free(m->config.digest);
  m->config.digest = hoist_strdup(out->config_digest);
  if (!m->config.media_type)
    m->config.media_type = hoist_strdup(HOIST_MT_OCI_CONFIG);
  m->config.size = (int64_t)cjson_len;
  hoist_descriptor nl = {.media_type = (char *)layer_mt,
                         .digest = out->layer.digest,
                         .size = (int64_t)out->layer.size};
  hoist_manifest_add_layer(m, &nl);
  out->n_layers = m->n_layers;
  _cleanup_free_ char *mjson = NULL;
  size_t mjson_len = 0;
  if ((r = hoist_manifest_to_json(m, &mjson, &mjson_len, err)) < 0)
    return hoist_err_wrap(err, "append: manifest");
  hoist_sha256_of(mjson, mjson_len, out->manifest_digest);
  if ((r = target->ops->put_manifest(target, NULL, mjson, mjson_len, m->media_type, err)) < 0)
    return hoist_err_wrap(err, "append: store manifest");
  return 0;
}
