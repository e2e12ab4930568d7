/* The OCI-layout image source and target of hoist_append (see append.h). */
#include <errno.h>
#include <string.h>

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

static int lt_has_blob(hoist_image_target *t, const hoist_descriptor *d, bool from_base, bool *has,
                       hoist_err **err) {
  (void)from_base, (void)err;
  *has = hoist_store_touch_blob(((layout_target *)t)->store, d->digest); /* gc grace */
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
