/* The registry image source and target of hoist_append (see append.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "hoist/append.h"
#include "hoist/fs.h"
#include "hoist/registry.h"

/* ------------------------------------------------------- memory writer */

typedef struct mem_writer {
  hoist_writer base;
  hoist_buf buf;
  hoist_sha256 *h;
} mem_writer;

static int mw_write(hoist_writer *w, const void *d, size_t n, hoist_err **err) {
  mem_writer *m = (mem_writer *)w;
  hoist_sha256_update(m->h, d, n);
  return hoist_buf_append(&m->buf, d, n, err);
}
static int mw_commit(hoist_writer *w, char out[HOIST_DIGEST_STR_LEN], uint64_t *size,
                     hoist_err **err) {
  (void)err;
  mem_writer *m = (mem_writer *)w;
  hoist_sha256_final(m->h, out);
  if (size)
    *size = m->buf.len;
  return 0;
}
static void mw_free(hoist_writer *w) {
  mem_writer *m = (mem_writer *)w;
  hoist_buf_free(&m->buf);
  hoist_sha256_free(m->h);
  free(m);
}
static const hoist_writer_ops mem_ops = {mw_write, mw_commit, mw_free};

/* ------------------------------------------------------ registry source */

typedef struct registry_source {
  hoist_image_source base;
  hoist_registry *r;
  hoist_ref *ref;
} registry_source;

static int rs_manifest(hoist_image_source *s, char **data, size_t *len, hoist_err **err) {
  registry_source *rs = (registry_source *)s;
  _cleanup_free_ char *mt = NULL;
  char digest[HOIST_DIGEST_STR_LEN];
  return hoist_registry_get_manifest(rs->r, rs->ref->domain, rs->ref->path,
                                     hoist_ref_reference(rs->ref), data, len, &mt, digest, err);
}

static int rs_blob(hoist_image_source *s, const char *digest, size_t max, char **data, size_t *len,
                   hoist_err **err) {
  registry_source *rs = (registry_source *)s;
  mem_writer *m = hoist_malloc0(sizeof *m);
  m->base.ops = &mem_ops;
  hoist_buf_init(&m->buf, max);
  m->h = hoist_sha256_new();
  /* a config comes from /blobs/; a manifest named by an index from /manifests/ */
  hoist_err *e1 = NULL;
  int r = hoist_registry_get_blob(rs->r, rs->ref->domain, rs->ref->path, digest, -1, &m->base, &e1);
  if (r < 0) {
    _cleanup_free_ char *mt = NULL;
    char got[HOIST_DIGEST_STR_LEN];
    mw_free(&m->base);
    if (hoist_registry_get_manifest(rs->r, rs->ref->domain, rs->ref->path, digest, data, len, &mt,
                                    got, err) == 0) {
      hoist_err_free(e1);
      return 0;
    }
    hoist_err_free(e1);
    return -EIO;
  }
  *len = m->buf.len;
  *data = hoist_buf_steal(&m->buf);
  mw_free(&m->base);
  return 0;
}

static int rs_copy_blob(hoist_image_source *s, const hoist_descriptor *d, hoist_writer *w,
                        hoist_err **err) {
  registry_source *rs = (registry_source *)s;
  return hoist_registry_get_blob(rs->r, rs->ref->domain, rs->ref->path, d->digest, d->size, w, err);
}

static void rs_free(hoist_image_source *s) {
  registry_source *rs = (registry_source *)s;
  hoist_ref_free(rs->ref);
  free(rs);
}

static const hoist_image_source_ops registry_source_ops = {rs_manifest, rs_blob, rs_copy_blob,
                                                           rs_free};

int hoist_append_registry_source(hoist_registry *r, const hoist_ref *ref, hoist_image_source **out,
                                 hoist_err **err) {
  (void)err;
  registry_source *rs = hoist_malloc0(sizeof *rs);
  rs->base.ops = &registry_source_ops;
  rs->r = r;
  rs->ref = hoist_ref_dup(ref);
  *out = &rs->base;
  return 0;
}

/* ------------------------------------------------------ registry target */

typedef struct registry_target {
  hoist_image_target base;
  hoist_registry *r;
  hoist_ref *ref;
  char *mount_from; /* a repository of the same registry, or NULL */
} registry_target;

/* A missing base blob is mounted from mount_from when the registry allows
 * it, so a base layer of the same registry never travels. */
static int rt_has_blob(hoist_image_target *t, const hoist_descriptor *d, bool from_base, bool *has,
                       hoist_err **err) {
  registry_target *rt = (registry_target *)t;
  if (hoist_registry_blob_exists(rt->r, rt->ref->domain, rt->ref->path, d->digest, has, NULL, err) <
      0)
    return -1;
  if (*has || !rt->mount_from || !from_base)
    return 0;
  return hoist_registry_mount_blob(rt->r, rt->ref->domain, rt->ref->path, d->digest, rt->mount_from,
                                   has, err);
}

/* Blobs stream straight into an upload session: nothing is spooled. */
static int rt_blob_writer(hoist_image_target *t, const char *digest, int64_t size,
                          hoist_writer **out, hoist_err **err) {
  (void)size;
  registry_target *rt = (registry_target *)t;
  return hoist_registry_blob_upload(rt->r, rt->ref->domain, rt->ref->path, digest, out, err);
}

static int rt_put_manifest(hoist_image_target *t, const char *data, size_t len,
                           const char *media_type, hoist_err **err) {
  registry_target *rt = (registry_target *)t;
  return hoist_registry_put_manifest(rt->r, rt->ref->domain, rt->ref->path,
                                     hoist_ref_reference(rt->ref), data, len, media_type, err);
}

static void rt_free(hoist_image_target *t) {
  registry_target *rt = (registry_target *)t;
  hoist_ref_free(rt->ref);
  free(rt->mount_from);
  free(rt);
}

static const hoist_image_target_ops registry_target_ops = {rt_has_blob, rt_blob_writer,
                                                           rt_put_manifest, rt_free};

int hoist_append_registry_target(hoist_registry *r, const hoist_ref *ref, const hoist_ref *base,
                                 hoist_image_target **out, hoist_err **err) {
  if (!ref->tag)
    return hoist_err_set(err, EINVAL, "target %s needs a tag", ref->path);
  registry_target *rt = hoist_malloc0(sizeof *rt);
  rt->base.ops = &registry_target_ops;
  rt->r = r;
  rt->ref = hoist_ref_dup(ref);
  if (base && strcmp(base->domain, ref->domain) == 0 && strcmp(base->path, ref->path) != 0)
    rt->mount_from = hoist_strdup(base->path);
  *out = &rt->base;
  return 0;
}
