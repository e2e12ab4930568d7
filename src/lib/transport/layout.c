/* The OCI-layout driver of the transport (see transport.h), on top of
 * store.h. */
#include <errno.h>
#include <string.h>

#include "hoist/store.h"
#include "hoist/transport.h"

#define COPY_BUF_SIZE (1u << 20)

/* What a layout source and a layout target both hold: the store open on the
 * layout's directory and the tag named (a source's may be NULL). */
typedef struct layout_at {
  hoist_store *store;
  char *tag;
} layout_at;

HOIST_WUR static int at_open(layout_at *at, const char *dir, const char *tag, bool create,
                             hoist_err **err) {
  int r = hoist_store_open(dir, create, &at->store, err);
  if (r == 0)
    at->tag = tag ? hoist_strdup(tag) : NULL;
  return r;
}

static void at_close(layout_at *at) {
  hoist_store_close(at->store);
  free(at->tag);
}

/* ------------------------------------------------------- layout source */

typedef struct layout_source {
  hoist_transport_source base;
  layout_at at;
} layout_source;

HOIST_WUR static int ls_manifest(hoist_transport_source *s, const char *digest, char **data,
                                 size_t *len, char **media_type,
                                 char digest_out[HOIST_DIGEST_STR_LEN], hoist_err **err) {
  layout_source *ls = (layout_source *)s;
  hoist_descriptor d = {0};
  if (digest) {
    snprintf(digest_out, HOIST_DIGEST_STR_LEN, "%s", digest);
  } else {
    if (hoist_store_resolve(ls->at.store, ls->at.tag, &d, err) < 0)
      return -1;
    snprintf(digest_out, HOIST_DIGEST_STR_LEN, "%s", d.digest);
  }
  int r = hoist_store_read_blob(ls->at.store, digest_out, HOIST_MANIFEST_MAX, data, len, err);
  if (r == 0) {
    /* the type index.json gives, else the document's own */
    const char *mt = d.media_type ? d.media_type : hoist_manifest_detect(*data, *len);
    *media_type = hoist_strdup(mt ? mt : HOIST_MT_OCI_MANIFEST);
  }
  hoist_descriptor_clear(&d);
  return r;
}

HOIST_WUR static int ls_resolve(hoist_transport_source *s, char digest[HOIST_DIGEST_STR_LEN],
                                char **media_type, hoist_err **err) {
  layout_source *ls = (layout_source *)s;
  hoist_descriptor d = {0};
  if (hoist_store_resolve(ls->at.store, ls->at.tag, &d, err) < 0)
    return -1;
  snprintf(digest, HOIST_DIGEST_STR_LEN, "%s", d.digest);
  *media_type = d.media_type ? hoist_strdup(d.media_type) : NULL;
  hoist_descriptor_clear(&d);
  return 0;
}

HOIST_WUR static int ls_blob(hoist_transport_source *s, const char *digest, size_t max, char **data,
                             size_t *len, hoist_err **err) {
  return hoist_store_read_blob(((layout_source *)s)->at.store, digest, max, data, len, err);
}

HOIST_WUR static int ls_open_blob(hoist_transport_source *s, const char *digest, int *fd,
                                  uint64_t *size, hoist_err **err) {
  return hoist_store_open_blob(((layout_source *)s)->at.store, digest, fd, size, err);
}

HOIST_WUR static int ls_copy_blob(hoist_transport_source *s, const hoist_descriptor *d,
                                  hoist_writer *w, hoist_err **err) {
  layout_source *ls = (layout_source *)s;
  _cleanup_close_ int fd = -1;
  uint64_t size = 0;
  int r = hoist_store_open_blob(ls->at.store, d->digest, &fd, &size, err);
  if (r < 0)
    return r;
  _cleanup_free_ char *buf = hoist_malloc0(COPY_BUF_SIZE);
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

static void ls_free(hoist_transport_source *s) {
  at_close(&((layout_source *)s)->at);
  free(s);
}

static const hoist_transport_source_ops layout_source_ops = {
    .manifest = ls_manifest,
    .resolve = ls_resolve,
    .blob = ls_blob,
    .copy_blob = ls_copy_blob,
    .open_blob = ls_open_blob,
    .free = ls_free,
};

int hoist_transport_layout_source(const char *dir, const char *tag, hoist_transport_source **out,
                                  hoist_err **err) {
  layout_source *ls = hoist_malloc0(sizeof *ls);
  int r = at_open(&ls->at, dir, tag, false, err);
  if (r < 0) {
    free(ls);
    return r;
  }
  ls->base.ops = &layout_source_ops;
  *out = &ls->base;
  return 0;
}

/* ------------------------------------------------------- layout target */

typedef struct layout_target {
  hoist_transport_target base;
  layout_at at;
} layout_target;

HOIST_WUR static int lt_has_blob(hoist_transport_target *t, const hoist_descriptor *d, bool *has,
                                 hoist_err **err) {
  (void)err;
  *has = hoist_store_touch_blob(((layout_target *)t)->at.store, d->digest); /* gc grace */
  return 0;
}

HOIST_WUR static int lt_blob_writer(hoist_transport_target *t, const char *digest, int64_t size,
                                    hoist_writer **out, hoist_err **err) {
  return hoist_store_blob_writer(((layout_target *)t)->at.store, digest, size, out, err);
}

/* The document as a blob; tagged unless reference is a digest. */
HOIST_WUR static int lt_put_manifest(hoist_transport_target *t, const char *reference,
                                     const char *data, size_t len, const char *media_type,
                                     hoist_err **err) {
  layout_target *lt = (layout_target *)t;
  const char *tag = reference ? reference : lt->at.tag;
  bool by_digest = hoist_digest_valid(tag);
  char digest[HOIST_DIGEST_STR_LEN];
  int r = hoist_store_put_blob(lt->at.store, data, len, by_digest ? tag : NULL, digest, err);
  if (r < 0 || by_digest)
    return r;
  hoist_descriptor d = {.media_type = (char *)media_type, .digest = digest, .size = (int64_t)len};
  return hoist_store_tag(lt->at.store, tag, &d, err);
}

static void lt_free(hoist_transport_target *t) {
  at_close(&((layout_target *)t)->at);
  free(t);
}

static const hoist_transport_target_ops layout_target_ops = {
    .has_blob = lt_has_blob,
    .blob_writer = lt_blob_writer,
    .put_manifest = lt_put_manifest,
    .free = lt_free,
};

int hoist_transport_layout_target(const char *dir, const char *tag, hoist_transport_target **out,
                                  hoist_err **err) {
  if (!tag || !*tag)
    return hoist_err_set(err, EINVAL, "oci:%s: a target needs a tag (oci:DIR:TAG)", dir);
  layout_target *lt = hoist_malloc0(sizeof *lt);
  int r = at_open(&lt->at, dir, tag, true, err);
  if (r < 0) {
    free(lt);
    return r;
  }
  lt->base.ops = &layout_target_ops;
  *out = &lt->base;
  return 0;
}
