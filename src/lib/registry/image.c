/* Image transport: copies an image (a manifest and its blobs, or a whole
 * index) between registries and OCI layouts. Blobs move in parallel; a
 * manifest is written only after every blob it references is in place. */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>

#include <fcntl.h>

#include "hoist/fs.h"
#include "hoist/store.h"
#include "internal.h"

typedef struct endpoint {
  hoist_loc_kind kind;
  const char *host; /* registry */
  char *repo;       /* registry */
  hoist_store *store;
} endpoint;

typedef struct copy_ctx {
  hoist_registry *r;
  endpoint src;
  endpoint dst;
  atomic_uint_fast64_t uploaded, skipped, mounted, bytes, manifests;
} copy_ctx;

static void endpoint_clear(endpoint *e) {
  free(e->repo);
  if (e->store)
    hoist_store_close(e->store);
  memset(e, 0, sizeof *e);
}

/* Creates the missing parents of dir (not dir itself: the store makes it). */
static int mkdir_parents(const char *dir, hoist_err **err) {
  _cleanup_free_ char *p = hoist_strdup(dir);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/')
      continue;
    *s = '\0';
    if (mkdir(p, 0755) < 0 && errno != EEXIST)
      return hoist_err_errno(err, errno, "create %s", p);
    *s = '/';
  }
  return 0;
}

static int endpoint_open(const hoist_loc *l, bool create, endpoint *e, hoist_err **err) {
  memset(e, 0, sizeof *e);
  e->kind = l->kind;
  if (l->kind == HOIST_LOC_REGISTRY) {
    e->host = l->ref->domain;
    e->repo = hoist_strdup(l->ref->path);
    return 0;
  }
  if (create && mkdir_parents(l->dir, err) < 0)
    return -1;
  return hoist_store_open(l->dir, create, &e->store, err);
}

/* Reads a manifest or index by tag (NULL: the layout's only one) or digest. */
static int get_manifest(copy_ctx *c, endpoint *e, const char *reference, char **data, size_t *len,
                        char **mt, char digest[HOIST_DIGEST_STR_LEN], hoist_err **err) {
  if (e->kind == HOIST_LOC_REGISTRY) {
    if (hoist_digest_valid(reference))
      return hoist_registry_get_manifest(c->r, e->host, e->repo, reference, data, len, mt, digest,
                                         err);
    /* a tag: resolve it with HEAD, then GET the content by digest (verified) */
    bool found = false;
    char resolved[HOIST_DIGEST_STR_LEN];
    if (hoist_registry_head_manifest(c->r, e->host, e->repo, reference, &found, resolved, NULL,
                                     err) < 0)
      return -1;
    if (!found)
      return hoist_err_set(err, ENOENT, "%s/%s:%s: manifest unknown (no such tag)", e->host,
                           e->repo, reference);
    return hoist_registry_get_manifest(c->r, e->host, e->repo, resolved, data, len, mt, digest,
                                       err);
  }
  hoist_descriptor d = {0};
  if (reference && hoist_digest_valid(reference)) {
    snprintf(digest, HOIST_DIGEST_STR_LEN, "%s", reference);
  } else {
    if (hoist_store_resolve(e->store, reference, &d, err) < 0)
      return -1;
    snprintf(digest, HOIST_DIGEST_STR_LEN, "%s", d.digest);
  }
  int ret = hoist_store_read_blob(e->store, digest, HOIST_MANIFEST_MAX, data, len, err);
  if (ret == 0) {
    const char *m = d.media_type ? d.media_type : hoist_manifest_detect(*data, *len);
    *mt = hoist_strdup(m ? m : HOIST_MT_OCI_MANIFEST);
  }
  hoist_descriptor_clear(&d);
  return ret;
}

/* --------------------------------------------------- blob streaming */

/* registry -> registry without a mount: the GET streams into an upload
 * writer; the upload is finished only when the GET verified the content. */
static int stream_blob(copy_ctx *c, const hoist_descriptor *d, hoist_err **err) {
  _cleanup_writer_ hoist_writer *w = NULL;
  if (hoist_registry_blob_upload(c->r, c->dst.host, c->dst.repo, d->digest, &w, err) < 0)
    return -1;
  if (hoist_registry_get_blob(c->r, c->src.host, c->src.repo, d->digest, d->size, w, err) < 0)
    return -1;
  char got[HOIST_DIGEST_STR_LEN];
  return hoist_writer_commit(w, got, NULL, err);
}

static bool is_foreign(const hoist_descriptor *d) {
  return d->urls && d->urls[0] && d->media_type && strstr(d->media_type, "foreign");
}

/* Moves one blob from c->src to c->dst. */
static int copy_blob(copy_ctx *c, const hoist_descriptor *d, hoist_err **err) {
  hoist_registry *r = c->r;
  if (is_foreign(d))
    return 0; /* non-distributable: stays where its urls point */
  if (c->dst.kind == HOIST_LOC_LAYOUT) {
    if (hoist_store_touch_blob(c->dst.store, d->digest)) {
      atomic_fetch_add(&c->skipped, 1);
      return 0;
    }
    _cleanup_writer_ hoist_writer *w = NULL;
    if (hoist_store_blob_writer(c->dst.store, d->digest, d->size, &w, err) < 0)
      return -1;
    if (c->src.kind == HOIST_LOC_REGISTRY) {
      if (hoist_registry_get_blob(r, c->src.host, c->src.repo, d->digest, d->size, w, err) < 0)
        return -1;
    } else {
      _cleanup_close_ int fd = -1;
      uint64_t size = 0;
      if (hoist_store_open_blob(c->src.store, d->digest, &fd, &size, err) < 0)
        return -1;
      _cleanup_free_ char *buf = hoist_malloc0(1 << 20);
      for (;;) {
        ssize_t n = read(fd, buf, 1 << 20);
        if (n < 0 && errno == EINTR)
          continue;
        if (n < 0)
          return hoist_err_errno(err, errno, "read blob %s", d->digest);
        if (n == 0)
          break;
        if (hoist_writer_write(w, buf, (size_t)n, err) < 0)
          return -1;
      }
    }
    char got[HOIST_DIGEST_STR_LEN];
    uint64_t n = 0;
    if (hoist_writer_commit(w, got, &n, err) < 0)
      return -1;
    atomic_fetch_add(&c->uploaded, 1);
    atomic_fetch_add(&c->bytes, n);
    return 0;
  }
  /* destination is a registry */
  if (c->src.kind == HOIST_LOC_LAYOUT) {
    _cleanup_close_ int fd = -1;
    uint64_t size = 0;
    if (hoist_store_open_blob(c->src.store, d->digest, &fd, &size, err) < 0)
      return -1;
    if ((int64_t)size != d->size)
      return hoist_err_set(err, HOIST_E_DIGEST, "blob %s: %llu bytes in the layout, %lld expected",
                           d->digest, (unsigned long long)size, (long long)d->size);
    const char *how = NULL;
    if (hoist_registry_put_blob(r, c->dst.host, c->dst.repo, d->digest, size, fd, NULL, &how, err) <
        0)
      return -1;
    if (strcmp(how, "exists") == 0) {
      atomic_fetch_add(&c->skipped, 1);
    } else {
      atomic_fetch_add(&c->uploaded, 1);
      atomic_fetch_add(&c->bytes, size);
    }
    return 0;
  }
  /* registry -> registry */
  _cleanup_free_ char *scope = hoist_asprintf("repository:%s:pull,push", c->dst.repo);
  bool exists = false;
  _cleanup_free_ char *head = hoist_asprintf("/v2/%s/blobs/%s", c->dst.repo, d->digest);
  {
    reg_req q = {.method = "HEAD", .host = c->dst.host, .url = head, .scope = scope};
    _cleanup_resp_ reg_resp resp = {0};
    if (reg_do(r, &q, &resp, err) < 0)
      return -1;
    exists = resp.status == 200;
  }
  if (exists) {
    atomic_fetch_add(&c->skipped, 1);
    return 0;
  }
  if (strcmp(c->src.host, c->dst.host) == 0 && strcmp(c->src.repo, c->dst.repo) != 0) {
    bool mounted = false;
    if (hoist_registry_mount_blob(r, c->dst.host, c->dst.repo, d->digest, c->src.repo, &mounted,
                                  err) < 0)
      return -1;
    if (mounted) {
      atomic_fetch_add(&c->mounted, 1);
      return 0;
    }
  }
  for (int attempt = 1;; attempt++) {
    hoist_err *e = NULL;
    if (stream_blob(c, d, &e) == 0)
      break;
    int code = e ? e->code : EIO;
    if (attempt >= 3 || code == HOIST_E_DIGEST || code == HOIST_E_AUTH || code == HOIST_E_FORMAT) {
      if (err && !*err)
        *err = e;
      else
        hoist_err_free(e);
      return -1;
    }
    hoist_err_free(e);
    sleep((unsigned)attempt);
  }
  atomic_fetch_add(&c->uploaded, 1);
  atomic_fetch_add(&c->bytes, (uint64_t)d->size);
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

static int copy_blobs(copy_ctx *c, const hoist_descriptor *const *blobs, size_t n,
                      hoist_err **err) {
  pool p = {.c = c, .blobs = blobs, .n = n};
  pthread_mutex_init(&p.lock, NULL);
  size_t nt = (size_t)c->r->jobs < n ? (size_t)c->r->jobs : n;
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

/* ------------------------------------------------------------ images */

/* Writes a manifest document to dst: by reference (tag or digest) in a
 * registry; as a blob (tagged when tag is given) in a layout. */
static int put_manifest(copy_ctx *c, const char *reference, const char *tag, const char *data,
                        size_t len, const char *mt, const char *digest, hoist_err **err) {
  atomic_fetch_add(&c->manifests, 1);
  if (c->dst.kind == HOIST_LOC_REGISTRY)
    return hoist_registry_put_manifest(c->r, c->dst.host, c->dst.repo, reference, data, len, mt,
                                       err);
  char got[HOIST_DIGEST_STR_LEN];
  if (hoist_store_put_blob(c->dst.store, data, len, digest, got, err) < 0)
    return -1;
  if (!tag)
    return 0;
  hoist_descriptor d = {.media_type = (char *)mt, .digest = got, .size = (int64_t)len};
  return hoist_store_tag(c->dst.store, tag, &d, err);
}

/* Copies one image manifest and its blobs; the manifest goes last. */
static int copy_manifest(copy_ctx *c, const char *data, size_t len, const char *mt,
                         const char *digest, const char *reference, const char *tag,
                         hoist_err **err) {
  _cleanup_manifest_ hoist_manifest *m = NULL;
  if (hoist_manifest_parse(data, len, &m, err) < 0)
    return hoist_err_wrap(err, "manifest %s", digest);
  size_t n = 0;
  _cleanup_free_ const hoist_descriptor **blobs = hoist_malloc0((m->n_layers + 1) * sizeof *blobs);
  blobs[n++] = &m->config;
  for (size_t i = 0; i < m->n_layers; i++)
    blobs[n++] = &m->layers[i];
  if (c->dst.kind == HOIST_LOC_REGISTRY) {
    /* the registry holds this very manifest under that reference: a registry
     * accepts a manifest only when it has every blob, so nothing is missing */
    bool found = false;
    char have[HOIST_DIGEST_STR_LEN];
    hoist_err *ignored = NULL;
    if (hoist_registry_head_manifest(c->r, c->dst.host, c->dst.repo, reference, &found, have, NULL,
                                     &ignored) == 0 &&
        found && strcmp(have, digest) == 0) {
      atomic_fetch_add(&c->skipped, n);
      return 0;
    }
    hoist_err_free(ignored);
  }
  if (copy_blobs(c, blobs, n, err) < 0)
    return -1;
  return put_manifest(c, reference, tag, data, len, mt, digest, err);
}

static char *platforms_of(const hoist_index *ix) {
  _cleanup_buf_ hoist_buf b = HOIST_BUF_INIT(0);
  for (size_t i = 0; i < ix->n_manifests; i++) {
    if (!ix->manifests[i].platform)
      continue;
    _cleanup_free_ char *s = hoist_platform_string(ix->manifests[i].platform);
    hoist_buf_appendf(&b, NULL, "%s%s", b.len ? ", " : "", s);
  }
  return hoist_buf_steal(&b);
}

int hoist_registry_copy(hoist_registry *r, const hoist_loc *src, const hoist_loc *dst,
                        const hoist_copy_opts *opts, hoist_copy_result *res, hoist_err **err) {
  hoist_copy_opts none = {0};
  if (!opts)
    opts = &none;
  copy_ctx c = {.r = r};
  memset(res, 0, sizeof *res);
  _cleanup_free_ char *srcname = hoist_loc_string(src);
  _cleanup_free_ char *dstname = hoist_loc_string(dst);
  int ret = -1;
  _cleanup_free_ char *data = NULL;
  _cleanup_free_ char *mt = NULL;
  size_t len = 0;
  char digest[HOIST_DIGEST_STR_LEN];
  if (endpoint_open(src, false, &c.src, err) < 0)
    goto out;
  const char *src_reference =
      src->kind == HOIST_LOC_REGISTRY ? hoist_ref_reference(src->ref) : src->tag;
  if (get_manifest(&c, &c.src, src_reference, &data, &len, &mt, digest, err) < 0)
    goto out;
  /* the destination is opened (a layout created) only once the source is known */
  if (endpoint_open(dst, true, &c.dst, err) < 0)
    goto out;
  /* where it goes: a registry reference, or a layout tag */
  const char *dst_reference = NULL;
  const char *tag = NULL;
  if (dst->kind == HOIST_LOC_REGISTRY) {
    dst_reference = hoist_ref_reference(dst->ref);
  } else {
    tag = dst->tag                                             ? dst->tag
          : (src->kind == HOIST_LOC_REGISTRY && src->ref->tag) ? src->ref->tag
          : src->kind == HOIST_LOC_LAYOUT && src->tag          ? src->tag
                                                               : "latest";
  }
  hoist_media_kind kind = hoist_media_kind_of(mt);
  if (kind == HOIST_MEDIA_INDEX) {
    _cleanup_index_ hoist_index *ix = NULL;
    if (hoist_index_parse(data, len, &ix, err) < 0) {
      hoist_err_wrap(err, "index %s", digest);
      goto out;
    }
    if (opts->all_platforms) {
      for (size_t i = 0; i < ix->n_manifests; i++) {
        const hoist_descriptor *d = &ix->manifests[i];
        _cleanup_free_ char *cdata = NULL;
        _cleanup_free_ char *cmt = NULL;
        size_t clen = 0;
        char cdigest[HOIST_DIGEST_STR_LEN];
        if (get_manifest(&c, &c.src, d->digest, &cdata, &clen, &cmt, cdigest, err) < 0)
          goto out;
        const char *t = d->media_type ? d->media_type : cmt;
        int rr = hoist_media_kind_of(t) == HOIST_MEDIA_MANIFEST
                     ? copy_manifest(&c, cdata, clen, t, cdigest, cdigest, NULL, err)
                     : put_manifest(&c, cdigest, NULL, cdata, clen, t, cdigest, err);
        if (rr < 0)
          goto out;
      }
      if (put_manifest(&c, dst_reference, tag, data, len, mt, digest, err) < 0)
        goto out;
    } else {
      _cleanup_platform_ hoist_platform *host = opts->platform ? NULL : hoist_platform_host();
      const hoist_platform *want = opts->platform ? opts->platform : host;
      const hoist_descriptor *d = hoist_index_find_platform(ix, want);
      if (!d) {
        _cleanup_free_ char *w = hoist_platform_string(want);
        _cleanup_free_ char *have = platforms_of(ix);
        hoist_err_set(err, ENOENT, "no image for platform %s in the index (it has: %s)", w,
                      *have ? have : "no platforms");
        goto out;
      }
      free(data);
      free(mt);
      data = mt = NULL;
      if (get_manifest(&c, &c.src, d->digest, &data, &len, &mt, digest, err) < 0)
        goto out;
      if (d->media_type) {
        free(mt);
        mt = hoist_strdup(d->media_type);
      }
      if (copy_manifest(&c, data, len, mt, digest, dst_reference, tag, err) < 0)
        goto out;
    }
  } else if (kind == HOIST_MEDIA_MANIFEST) {
    if (copy_manifest(&c, data, len, mt, digest, dst_reference, tag, err) < 0)
      goto out;
  } else {
    hoist_err_set(err, HOIST_E_FORMAT, "unsupported manifest media type %s", mt);
    goto out;
  }
  snprintf(res->digest, sizeof res->digest, "%s", digest);
  res->media_type = steal_pointer(&mt);
  ret = 0;
out:
  res->manifests = atomic_load(&c.manifests);
  res->blobs_uploaded = atomic_load(&c.uploaded);
  res->blobs_skipped = atomic_load(&c.skipped);
  res->blobs_mounted = atomic_load(&c.mounted);
  res->bytes = atomic_load(&c.bytes);
  endpoint_clear(&c.src);
  endpoint_clear(&c.dst);
  if (ret < 0)
    hoist_err_wrap(err, "copy %s to %s", srcname, dstname);
  return ret;
}

void hoist_copy_result_clear(hoist_copy_result *res) {
  free(res->media_type);
  res->media_type = NULL;
}
