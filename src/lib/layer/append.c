/* hoist_append and the OCI-layout image source and target. See append.h. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "hoist/append.h"
#include "hoist/store.h"

#define COPY_BUF_SIZE (1u << 20)

/* ------------------------------------------------------- layout source */

typedef struct layout_source {
  hoist_image_source base;
  hoist_store *store;
  char *tag;
} layout_source;

static int ls_manifest(hoist_image_source *s, char **data, size_t *len, hoist_err **err) {
  layout_source *ls = (layout_source *)s;
  hoist_descriptor d = {0};
  int r = hoist_store_resolve(ls->store, ls->tag, &d, err);
  if (r < 0)
    return r;
  r = hoist_store_read_blob(ls->store, d.digest, HOIST_MANIFEST_MAX, data, len, err);
  hoist_descriptor_clear(&d);
  return r;
}

static int ls_blob(hoist_image_source *s, const char *digest, size_t max, char **data, size_t *len,
                   hoist_err **err) {
  return hoist_store_read_blob(((layout_source *)s)->store, digest, max, data, len, err);
}

static int ls_copy_blob(hoist_image_source *s, const hoist_descriptor *d, hoist_writer *w,
                        hoist_err **err) {
  layout_source *ls = (layout_source *)s;
  _cleanup_close_ int fd = -1;
  uint64_t size = 0;
  int r = hoist_store_open_blob(ls->store, d->digest, &fd, &size, err);
  if (r < 0)
    return r;
  _cleanup_free_ char *buf = malloc(COPY_BUF_SIZE);
  if (!buf)
    abort();
  for (;;) {
    ssize_t n = read(fd, buf, COPY_BUF_SIZE);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return hoist_err_errno(err, errno, "read blob %s", d->digest);
    }
    if (n == 0)
      return 0;
    r = hoist_writer_write(w, buf, (size_t)n, err);
    if (r < 0)
      return r;
  }
}

static void ls_free(hoist_image_source *s) {
  layout_source *ls = (layout_source *)s;
  hoist_store_close(ls->store);
  free(ls->tag);
  free(ls);
}

static const hoist_image_source_ops layout_source_ops = {ls_manifest, ls_blob, ls_copy_blob,
                                                         ls_free};

int hoist_append_layout_source(const char *dir, const char *tag, hoist_image_source **out,
                               hoist_err **err) {
  hoist_store *st = NULL;
  int r = hoist_store_open(dir, false, &st, err);
  if (r < 0)
    return r;
  layout_source *ls = hoist_malloc0(sizeof *ls);
  ls->base.ops = &layout_source_ops;
  ls->store = st;
  ls->tag = tag ? hoist_strdup(tag) : NULL;
  *out = &ls->base;
  return 0;
}

/* ------------------------------------------------------- layout target */

typedef struct layout_target {
  hoist_image_target base;
  hoist_store *store;
  char *tag;
} layout_target;

static int lt_has_blob(hoist_image_target *t, const hoist_descriptor *d, bool *has,
                       hoist_err **err) {
  (void)err;
  *has = hoist_store_has_blob(((layout_target *)t)->store, d->digest);
  return 0;
}

static int lt_blob_writer(hoist_image_target *t, const char *digest, int64_t size,
                          hoist_writer **out, hoist_err **err) {
  return hoist_store_blob_writer(((layout_target *)t)->store, digest, size, out, err);
}

static int lt_put_manifest(hoist_image_target *t, const char *data, size_t len,
                           const char *media_type, hoist_err **err) {
  layout_target *lt = (layout_target *)t;
  char digest[HOIST_DIGEST_STR_LEN];
  int r = hoist_store_put_blob(lt->store, data, len, NULL, digest, err);
  if (r < 0)
    return r;
  hoist_descriptor d = {.media_type = (char *)media_type, .digest = digest, .size = (int64_t)len};
  return hoist_store_tag(lt->store, lt->tag, &d, err);
}

static void lt_free(hoist_image_target *t) {
  layout_target *lt = (layout_target *)t;
  hoist_store_close(lt->store);
  free(lt->tag);
  free(lt);
}

static const hoist_image_target_ops layout_target_ops = {lt_has_blob, lt_blob_writer,
                                                         lt_put_manifest, lt_free};

int hoist_append_layout_target(const char *dir, const char *tag, hoist_image_target **out,
                               hoist_err **err) {
  if (!tag || !*tag)
    return hoist_err_set(err, EINVAL, "oci:%s: a target needs a tag (oci:DIR:TAG)", dir);
  hoist_store *st = NULL;
  int r = hoist_store_open(dir, true, &st, err);
  if (r < 0)
    return r;
  layout_target *lt = hoist_malloc0(sizeof *lt);
  lt->base.ops = &layout_target_ops;
  lt->store = st;
  lt->tag = hoist_strdup(tag);
  *out = &lt->base;
  return 0;
}

/* --------------------------------------------------------------- append */

/* The base's single-platform manifest: the document itself, or the entry of
 * an index matching want (the host's platform when want is NULL). */
static int base_manifest(hoist_image_source *base, const hoist_platform *want, hoist_manifest **out,
                         hoist_err **err) {
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  int r = base->ops->manifest(base, &data, &len, err);
  if (r < 0)
    return hoist_err_wrap(err, "base manifest");
  const char *mt = hoist_manifest_detect(data, len);
  if (mt && hoist_media_kind_of(mt) == HOIST_MEDIA_INDEX) {
    _cleanup_index_ hoist_index *ix = NULL;
    if ((r = hoist_index_parse(data, len, &ix, err)) < 0)
      return hoist_err_wrap(err, "base index");
    _cleanup_platform_ hoist_platform *host = want ? NULL : hoist_platform_host();
    const hoist_descriptor *d = hoist_index_find_platform(ix, want ? want : host);
    if (!d) {
      _cleanup_free_ char *p = hoist_platform_string(want ? want : host);
      return hoist_err_set(err, ENOENT, "base index has no manifest for %s", p);
    }
    free(steal_pointer(&data));
    if ((r = base->ops->blob(base, d->digest, HOIST_MANIFEST_MAX, &data, &len, err)) < 0)
      return hoist_err_wrap(err, "base manifest %s", d->digest);
  }
  if ((r = hoist_manifest_parse(data, len, out, err)) < 0)
    return hoist_err_wrap(err, "base manifest");
  return 0;
}

/* Media type of the new layer in a manifest of the base's kind. */
static int new_layer_media_type(const hoist_manifest *m, hoist_compression c, const char **out,
                                hoist_err **err) {
  if (strcmp(m->media_type, HOIST_MT_DOCKER_MANIFEST) != 0) {
    *out = hoist_layer_media_type(c);
    return 0;
  }
  switch (c) {
  case HOIST_COMPRESS_GZIP:
    *out = HOIST_MT_DOCKER_LAYER_GZIP;
    return 0;
  case HOIST_COMPRESS_NONE:
    *out = "application/vnd.docker.image.rootfs.diff.tar";
    return 0;
  default:
    return hoist_err_set(err, EINVAL,
                         "a Docker schema 2 base cannot carry a zstd layer; use gzip or an OCI "
                         "base");
  }
}

static int copy_base_layers(hoist_image_source *base, hoist_image_target *target,
                            const hoist_manifest *m, hoist_append_result *out, hoist_err **err) {
  for (size_t i = 0; i < m->n_layers; i++) {
    const hoist_descriptor *d = &m->layers[i];
    bool has = false;
    int r = target->ops->has_blob(target, d, &has, err);
    if (r < 0)
      return hoist_err_wrap(err, "layer %s", d->digest);
    if (has) {
      out->blobs_skipped++;
      continue;
    }
    _cleanup_writer_ hoist_writer *w = NULL;
    if ((r = target->ops->blob_writer(target, d->digest, d->size, &w, err)) < 0 ||
        (r = base->ops->copy_blob(base, d, w, err)) < 0) {
      return hoist_err_wrap(err, "copy layer %s", d->digest);
    }
    char got[HOIST_DIGEST_STR_LEN];
    uint64_t size = 0;
    if ((r = hoist_writer_commit(w, got, &size, err)) < 0)
      return hoist_err_wrap(err, "copy layer %s", d->digest);
    out->blobs_copied++;
  }
  return 0;
}

int hoist_append(hoist_image_source *base, hoist_image_target *target,
                 const hoist_layer_source *layer, const hoist_append_options *opts,
                 hoist_append_result *out, hoist_err **err) {
  memset(out, 0, sizeof *out);
  _cleanup_manifest_ hoist_manifest *m = NULL;
  _cleanup_config_ hoist_config *cfg = NULL;
  int r = 0;
  if (base) {
    if ((r = base_manifest(base, opts->platform, &m, err)) < 0)
      return hoist_err_wrap(err, "append");
  } else {
    m = hoist_manifest_new(HOIST_MT_OCI_MANIFEST);
    cfg = hoist_config_new(opts->platform);
  }
  const char *layer_mt = NULL;
  if ((r = new_layer_media_type(m, opts->layer.compression, &layer_mt, err)) < 0)
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

  if (base && (r = copy_base_layers(base, target, m, out, err)) < 0)
    return hoist_err_wrap(err, "append");

  /* the new layer, streamed from disk into the target */
  {
    _cleanup_writer_ hoist_writer *w = NULL;
    if ((r = target->ops->blob_writer(target, NULL, -1, &w, err)) < 0 ||
        (r = hoist_layer_write(layer, &opts->layer, w, &out->layer, err)) < 0)
      return hoist_err_wrap(err, "append");
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
  {
    _cleanup_writer_ hoist_writer *w = NULL;
    char got[HOIST_DIGEST_STR_LEN];
    if ((r = target->ops->blob_writer(target, out->config_digest, (int64_t)cjson_len, &w, err)) <
            0 ||
        (r = hoist_writer_write(w, cjson, cjson_len, err)) < 0 ||
        (r = hoist_writer_commit(w, got, NULL, err)) < 0)
      return hoist_err_wrap(err, "append: store config");
  }

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
  if ((r = target->ops->put_manifest(target, mjson, mjson_len, m->media_type, err)) < 0)
    return hoist_err_wrap(err, "append: store manifest");
  return 0;
}
