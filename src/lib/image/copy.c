/* hoist_image_copy: an image (a manifest and its blobs, or a whole index)
 * from a transport source to a transport target. Blobs move in parallel; a
 * manifest is written only after every blob it references is in place. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "image-internal.h"

typedef struct copy_ctx {
  hoist_transport_source *src;
  hoist_transport_target *dst;
  size_t jobs;
  atomic_uint_fast64_t uploaded, skipped, mounted, bytes, manifests;
} copy_ctx;

static size_t jobs_of(const hoist_transport_opts *t, int jobs) {
  if (jobs > 0)
    return (size_t)jobs;
  return t && t->registry ? (size_t)hoist_registry_jobs(t->registry) : 4;
}

static bool is_foreign(const hoist_descriptor *d) {
  return d->urls && d->urls[0] && d->media_type && strstr(d->media_type, "foreign");
}

/* Moves one blob from c->src to c->dst, counting how it went. */
HOIST_WUR static int copy_blob(copy_ctx *c, const hoist_descriptor *d, hoist_err **err) {
  if (is_foreign(d))
    return 0; /* non-distributable: stays where its urls point */
  hoist_transport_how how = HOIST_TRANSPORT_PRESENT;
  uint64_t n = 0;
  if (hoist_transport_copy_blob(c->dst, c->src, d, &how, &n, err) < 0)
    return -1;
  switch (how) {
  case HOIST_TRANSPORT_PRESENT:
    atomic_fetch_add(&c->skipped, 1);
    break;
  case HOIST_TRANSPORT_MOUNTED:
    atomic_fetch_add(&c->mounted, 1);
    break;
  case HOIST_TRANSPORT_COPIED:
    atomic_fetch_add(&c->uploaded, 1);
    atomic_fetch_add(&c->bytes, n);
    break;
  }
  return 0;
}

/* ------------------------------------------------------- parallelism */

typedef struct pool {
  copy_ctx *c;
  const hoist_descriptor *const *blobs;
  size_t n;
  atomic_size_t next;
  atomic_bool failed;
  pthread_mutex_t lock;
  hoist_err *err;
} pool;

static void *pool_worker(void *arg) {
  pool *p = arg;
  for (;;) {
    if (atomic_load(&p->failed))
      break;
    size_t i = atomic_fetch_add(&p->next, 1);
    if (i >= p->n)
      break;
    hoist_err *e = NULL;
    if (copy_blob(p->c, p->blobs[i], &e) < 0) {
      _cleanup_free_ char *text = hoist_err_text(e);
      if (!strstr(text, p->blobs[i]->digest))
        hoist_err_wrap(&e, "blob %s", p->blobs[i]->digest);
      pthread_mutex_lock(&p->lock);
      if (!p->err)
        p->err = e;
      else
        hoist_err_free(e);
      pthread_mutex_unlock(&p->lock);
      atomic_store(&p->failed, true);
    }
  }
  return NULL;
}

/* Copies the blobs with up to c->jobs threads (this one included). */
HOIST_WUR static int copy_blobs(copy_ctx *c, const hoist_descriptor *const *blobs, size_t n,
                                hoist_err **err) {
  pool p = {.c = c, .blobs = blobs, .n = n};
  pthread_mutex_init(&p.lock, NULL);
  size_t nt = c->jobs < n ? c->jobs : n;
  pthread_t *th = hoist_malloc0((nt ? nt : 1) * sizeof *th);
  size_t started = 0;
  for (size_t i = 1; i < nt; i++)
    if (pthread_create(&th[i], NULL, pool_worker, &p) == 0)
      started = i;
    else
      break;
  pool_worker(&p);
  for (size_t i = 1; i <= started; i++)
    pthread_join(th[i], NULL);
  free(th);
  pthread_mutex_destroy(&p.lock);
  if (p.err) {
    if (err && !*err)
      *err = p.err;
    else
      hoist_err_free(p.err);
    return -1;
  }
  return 0;
}

int image_copy_blobs(hoist_transport_source *src, hoist_transport_target *dst,
                     const hoist_descriptor *const *blobs, size_t n, int jobs,
                     image_blob_counts *counts, hoist_err **err) {
  copy_ctx c = {.src = src, .dst = dst, .jobs = jobs_of(NULL, jobs)};
  int r = copy_blobs(&c, blobs, n, err);
  *counts = (image_blob_counts){.copied = atomic_load(&c.uploaded),
                                .skipped = atomic_load(&c.skipped),
                                .mounted = atomic_load(&c.mounted),
                                .bytes = atomic_load(&c.bytes)};
  return r;
}

/* ------------------------------------------------------------ images */

HOIST_WUR static int put_manifest(copy_ctx *c, const char *reference, const char *data, size_t len,
                                  const char *mt, hoist_err **err) {
  atomic_fetch_add(&c->manifests, 1);
  return c->dst->ops->put_manifest(c->dst, reference, data, len, mt, err);
}

/* Copies one image manifest and its blobs; the manifest goes last. */
HOIST_WUR static int copy_manifest(copy_ctx *c, const char *data, size_t len, const char *mt,
                                   const char *digest, const char *reference, hoist_err **err) {
  _cleanup_manifest_ hoist_manifest *m = NULL;
  if (hoist_manifest_parse(data, len, &m, err) < 0)
    return hoist_err_wrap(err, "manifest %s", digest);
  size_t n = 0;
  _cleanup_free_ const hoist_descriptor **blobs = hoist_malloc0((m->n_layers + 1) * sizeof *blobs);
  blobs[n++] = &m->config;
  for (size_t i = 0; i < m->n_layers; i++)
    blobs[n++] = &m->layers[i];
  if (c->dst->ops->has_manifest) {
    /* the target holds this very manifest under that reference, and so
     * every blob it needs: nothing is missing (a failed check is no answer) */
    bool has = false;
    hoist_err *ignored = NULL;
    if (c->dst->ops->has_manifest(c->dst, reference, digest, &has, &ignored) == 0 && has) {
      atomic_fetch_add(&c->skipped, n);
      return 0;
    }
    hoist_err_free(ignored);
  }
  if (copy_blobs(c, blobs, n, err) < 0)
    return -1;
  return put_manifest(c, reference, data, len, mt, err);
}

static char *platforms_of(const hoist_index *ix) {
  _cleanup_buf_ hoist_buf b = HOIST_BUF_INIT(0);
  for (size_t i = 0; i < ix->n_manifests; i++) {
    if (!ix->manifests[i].platform)
      continue;
    _cleanup_free_ char *s = hoist_platform_string(ix->manifests[i].platform);
    if (hoist_buf_appendf(&b, NULL, "%s%s", b.len ? ", " : "", s) < 0)
      break; /* a message: the platforms that fit */
  }
  return hoist_buf_steal(&b);
}

/* Copies the document the source names (already read: *data, *mt, digest)
 * to c->dst under reference. On return *mt and digest describe what was
 * written at the top (the platform's manifest, when one was picked from an
 * index). */
HOIST_WUR static int copy_document(copy_ctx *c, char **data, size_t *len, char **mt,
                                   char digest[HOIST_DIGEST_STR_LEN], const char *reference,
                                   const hoist_image_copy_opts *opts, hoist_err **err) {
  hoist_media_kind kind = hoist_media_kind_of(*mt);
  if (kind == HOIST_MEDIA_MANIFEST)
    return copy_manifest(c, *data, *len, *mt, digest, reference, err);
  if (kind != HOIST_MEDIA_INDEX)
    return hoist_err_set(err, HOIST_E_FORMAT, "unsupported manifest media type %s", *mt);
  _cleanup_index_ hoist_index *ix = NULL;
  if (hoist_index_parse(*data, *len, &ix, err) < 0)
    return hoist_err_wrap(err, "index %s", digest);
  if (opts->all_platforms) {
    for (size_t i = 0; i < ix->n_manifests; i++) {
      const hoist_descriptor *d = &ix->manifests[i];
      _cleanup_free_ char *cdata = NULL;
      _cleanup_free_ char *cmt = NULL;
      size_t clen = 0;
      char cdigest[HOIST_DIGEST_STR_LEN];
      if (c->src->ops->manifest(c->src, d->digest, &cdata, &clen, &cmt, cdigest, err) < 0)
        return -1;
      const char *t = d->media_type ? d->media_type : cmt;
      int r = hoist_media_kind_of(t) == HOIST_MEDIA_MANIFEST
                  ? copy_manifest(c, cdata, clen, t, cdigest, cdigest, err)
                  : put_manifest(c, cdigest, cdata, clen, t, err);
      if (r < 0)
        return -1;
    }
    return put_manifest(c, reference, *data, *len, *mt, err);
  }
  _cleanup_platform_ hoist_platform *host = opts->platform ? NULL : hoist_platform_host();
  const hoist_platform *want = opts->platform ? opts->platform : host;
  const hoist_descriptor *d = hoist_index_find_platform(ix, want);
  if (!d) {
    _cleanup_free_ char *w = hoist_platform_string(want);
    _cleanup_free_ char *have = platforms_of(ix);
    return hoist_err_set(err, ENOENT, "no image for platform %s in the index (it has: %s)", w,
                         *have ? have : "no platforms");
  }
  free(steal_pointer(data));
  free(steal_pointer(mt));
  if (c->src->ops->manifest(c->src, d->digest, data, len, mt, digest, err) < 0)
    return -1;
  if (d->media_type) {
    free(*mt);
    *mt = hoist_strdup(d->media_type);
  }
  return copy_manifest(c, *data, *len, *mt, digest, reference, err);
}

static void copy_finish(copy_ctx *c, hoist_image_copy_result *res) {
  res->manifests = atomic_load(&c->manifests);
  res->blobs_uploaded = atomic_load(&c->uploaded);
  res->blobs_skipped = atomic_load(&c->skipped);
  res->blobs_mounted = atomic_load(&c->mounted);
  res->bytes = atomic_load(&c->bytes);
}

/* Copies the document (already read from c->src), then commits c->dst when
 * commit is true, and fills res. */
HOIST_WUR static int copy_all(copy_ctx *c, char **data, size_t *len, char **mt,
                              char digest[HOIST_DIGEST_STR_LEN], const char *reference,
                              const hoist_image_copy_opts *opts, bool commit,
                              hoist_image_copy_result *res, hoist_err **err) {
  int ret = copy_document(c, data, len, mt, digest, reference, opts, err);
  if (ret == 0 && commit)
    ret = hoist_transport_commit(c->dst, err);
  if (ret == 0) {
    snprintf(res->digest, sizeof res->digest, "%s", digest);
    res->media_type = steal_pointer(mt);
  }
  copy_finish(c, res);
  return ret;
}

int hoist_image_transfer(hoist_transport_source *src, hoist_transport_target *dst,
                         const char *reference, const hoist_image_copy_opts *opts,
                         hoist_image_copy_result *res, hoist_err **err) {
  hoist_image_copy_opts none = {0};
  if (!opts)
    opts = &none;
  memset(res, 0, sizeof *res);
  copy_ctx c = {.src = src, .dst = dst, .jobs = jobs_of(NULL, opts->jobs)};
  _cleanup_free_ char *data = NULL;
  _cleanup_free_ char *mt = NULL;
  size_t len = 0;
  char digest[HOIST_DIGEST_STR_LEN];
  if (src->ops->manifest(src, NULL, &data, &len, &mt, digest, err) < 0)
    return -1;
  return copy_all(&c, &data, &len, &mt, digest, reference, opts, false, res, err);
}

int hoist_image_copy(const hoist_transport_opts *t, const hoist_loc *src, const hoist_loc *dst,
                     const hoist_image_copy_opts *opts, hoist_image_copy_result *res,
                     hoist_err **err) {
  hoist_image_copy_opts none = {0};
  if (!opts)
    opts = &none;
  memset(res, 0, sizeof *res);
  copy_ctx c = {.jobs = jobs_of(t, opts->jobs)};
  _cleanup_free_ char *srcname = hoist_loc_string(src);
  _cleanup_free_ char *dstname = hoist_loc_string(dst);
  _cleanup_transport_source_ hoist_transport_source *s = NULL;
  _cleanup_transport_target_ hoist_transport_target *d = NULL;
  _cleanup_free_ char *data = NULL;
  _cleanup_free_ char *mt = NULL;
  size_t len = 0;
  char digest[HOIST_DIGEST_STR_LEN];
  int ret = -1;
  if (hoist_transport_open_source(t, src, &s, err) < 0 ||
      s->ops->manifest(s, NULL, &data, &len, &mt, digest, err) < 0)
    goto out;
  /* the destination is opened (a layout created) only once the source is
   * known; a layout without a tag gets the source's, or "latest" */
  hoist_loc where = *dst;
  if (dst->kind == HOIST_LOC_LAYOUT && !dst->tag)
    where.tag = src->kind == HOIST_LOC_REGISTRY && src->ref->tag ? src->ref->tag
                : src->kind == HOIST_LOC_LAYOUT && src->tag      ? src->tag
                                                                 : "latest";
  if (hoist_transport_open_target(t, &where, &d, err) < 0)
    goto out;
  c.src = s;
  c.dst = d;
  ret = copy_all(&c, &data, &len, &mt, digest, NULL, opts, true, res, err);
out:
  if (ret < 0)
    hoist_err_wrap(err, "copy %s to %s", srcname, dstname);
  return ret;
}

void hoist_image_copy_result_clear(hoist_image_copy_result *res) {
  free(res->media_type);
  res->media_type = NULL;
}
