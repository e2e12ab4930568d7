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
  bool oci; /* write Docker manifests and lists with OCI types */
  atomic_uint_fast64_t uploaded, skipped, mounted, bytes, manifests;
} copy_ctx;

static size_t jobs_of(const hoist_transport_opts *t, int jobs) {
  if (jobs > 0)
    return (size_t)jobs;
  return t && t->registry ? (size_t)hoist_registry_jobs(t->registry) : 4;
}

/* A Docker foreign or OCI non-distributable layer with urls: not copied
 * (registries refuse or lack it), kept in the manifest as it is. */
static bool is_foreign(const hoist_descriptor *d) {
  return d->urls && d->urls[0] && hoist_media_is_nondistributable(d->media_type);
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

/* ------------------------------------------------------ OCI types */

/* The OCI media type standing for Docker type mt, or NULL (an OCI type
 * already, or one with no OCI counterpart: kept as it is). */
static const char *oci_type_of(const char *mt) {
  static const char *const map[][2] = {
      {HOIST_MT_DOCKER_MANIFEST, HOIST_MT_OCI_MANIFEST},
      {HOIST_MT_DOCKER_LIST, HOIST_MT_OCI_INDEX},
      {HOIST_MT_DOCKER_CONFIG, HOIST_MT_OCI_CONFIG},
      {HOIST_MT_DOCKER_LAYER_GZIP, HOIST_MT_OCI_LAYER_GZIP},
      {HOIST_MT_DOCKER_LAYER, HOIST_MT_OCI_LAYER},
      {HOIST_MT_DOCKER_FOREIGN_GZIP, HOIST_MT_OCI_LAYER_ND_GZIP},
      {HOIST_MT_DOCKER_FOREIGN, HOIST_MT_OCI_LAYER_ND},
  };
  for (size_t i = 0; mt && i < sizeof map / sizeof map[0]; i++)
    if (strcmp(mt, map[i][0]) == 0)
      return map[i][1];
  return NULL;
}

/* Gives JSON object o the OCI counterpart of its Docker mediaType. */
HOIST_WUR static int retype(json_t *o, hoist_err **err) {
  const char *oci = oci_type_of(json_string_value(json_object_get(o, "mediaType")));
  if (oci && json_object_set_new(o, "mediaType", json_string(oci)) < 0)
    return hoist_err_set(err, ENOMEM, "set mediaType %s", oci);
  return 0;
}

/* The document (a Docker manifest or list, or an OCI index whose children
 * were rewritten) with OCI media types: its own, its config's and its
 * layers'; in an index, manifests[i] becomes children[i] when that has a
 * digest (the child as written), else keeps its type. Every other member
 * stays. *out (caller frees) is new bytes with a new digest. */
HOIST_WUR static int to_oci(const char *data, size_t len, const hoist_descriptor *children,
                            size_t n_children, char **out, size_t *out_len, hoist_err **err) {
  json_error_t jerr;
  _cleanup_json_ json_t *root = json_loadb(data, len, 0, &jerr);
  if (!json_is_object(root))
    return hoist_err_set(err, HOIST_E_FORMAT, "not a JSON object");
  if (retype(root, err) < 0)
    return -1;
  json_t *config = json_object_get(root, "config");
  if (json_is_object(config) && retype(config, err) < 0)
    return -1;
  size_t i;
  json_t *el;
  json_array_foreach(json_object_get(root, "layers"), i, el) {
    if (json_is_object(el) && retype(el, err) < 0)
      return -1;
  }
  json_array_foreach(json_object_get(root, "manifests"), i, el) {
    if (!json_is_object(el) || i >= n_children || !children[i].digest)
      continue;
    if (json_object_set_new(el, "mediaType", json_string(children[i].media_type)) < 0 ||
        json_object_set_new(el, "digest", json_string(children[i].digest)) < 0 ||
        json_object_set_new(el, "size", json_integer(children[i].size)) < 0)
      return hoist_err_set(err, ENOMEM, "manifests[%zu]", i);
  }
  char *text = json_dumps(root, JSON_COMPACT);
  if (!text)
    return hoist_err_set(err, ENOMEM, "serialize the OCI document");
  *out_len = strlen(text);
  *out = text;
  return 0;
}

/* Copies one image manifest (data, of type mt and digest) and its blobs;
 * the manifest goes last, under reference, or with by_digest under the
 * digest of what is written. With c->oci a Docker manifest is written as an
 * OCI manifest (same config and layers, a new digest). written (caller
 * clears) receives the descriptor of the document written. */
HOIST_WUR static int copy_manifest(copy_ctx *c, const char *data, size_t len, const char *mt,
                                   const char *digest, const char *reference, bool by_digest,
                                   hoist_descriptor *written, hoist_err **err) {
  _cleanup_manifest_ hoist_manifest *m = NULL;
  if (hoist_manifest_parse(data, len, &m, err) < 0)
    return hoist_err_wrap(err, "manifest %s", digest);
  _cleanup_free_ char *conv = NULL;
  if (c->oci && strcmp(mt, HOIST_MT_DOCKER_MANIFEST) == 0) {
    if (to_oci(data, len, NULL, 0, &conv, &len, err) < 0)
      return hoist_err_wrap(err, "manifest %s: OCI types", digest);
    data = conv;
    mt = HOIST_MT_OCI_MANIFEST;
  }
  hoist_descriptor_of_bytes(written, mt, data, len);
  if (by_digest)
    reference = written->digest;
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
    if (c->dst->ops->has_manifest(c->dst, reference, written->digest, &has, &ignored) == 0 && has) {
      atomic_fetch_add(&c->skipped, n);
      return 0;
    }
    hoist_err_free(ignored);
  }
  if (copy_blobs(c, blobs, n, err) < 0)
    return -1;
  return put_manifest(c, reference, data, len, mt, err);
}

/* *mt and digest become those of w (cleared). */
static void take_written(hoist_descriptor *w, char **mt, char digest[HOIST_DIGEST_STR_LEN]) {
  free(*mt);
  *mt = steal_pointer(&w->media_type);
  snprintf(digest, HOIST_DIGEST_STR_LEN, "%s", w->digest);
  hoist_descriptor_clear(w);
}

/* Copies every image of index ix (read from *data, of type *mt and digest)
 * by digest, then the index under reference. With c->oci a Docker list, or
 * an index whose children were rewritten with OCI types, is itself
 * rewritten (*data, *len, *mt and digest then describe the new bytes). */
HOIST_WUR static int copy_index(copy_ctx *c, const hoist_index *ix, char **data, size_t *len,
                                char **mt, char digest[HOIST_DIGEST_STR_LEN], const char *reference,
                                hoist_err **err) {
  size_t n = ix->n_manifests;
  hoist_descriptor *written = hoist_malloc0((n ? n : 1) * sizeof *written);
  bool rewritten = false;
  int r = 0;
  for (size_t i = 0; r == 0 && i < n; i++) {
    const hoist_descriptor *d = &ix->manifests[i];
    _cleanup_free_ char *cdata = NULL;
    _cleanup_free_ char *cmt = NULL;
    size_t clen = 0;
    char cdigest[HOIST_DIGEST_STR_LEN];
    if ((r = c->src->ops->manifest(c->src, d->digest, &cdata, &clen, &cmt, cdigest, err)) < 0)
      break;
    const char *t = d->media_type ? d->media_type : cmt;
    if (hoist_media_kind_of(t) == HOIST_MEDIA_MANIFEST) {
      r = copy_manifest(c, cdata, clen, t, cdigest, NULL, true, &written[i], err);
      rewritten = rewritten || (r == 0 && strcmp(written[i].digest, cdigest) != 0);
    } else {
      r = put_manifest(c, cdigest, cdata, clen, t, err); /* a nested index: as it is */
    }
  }
  _cleanup_free_ char *conv = NULL;
  size_t conv_len = 0;
  if (r == 0 && c->oci && (rewritten || strcmp(*mt, HOIST_MT_DOCKER_LIST) == 0)) {
    r = to_oci(*data, *len, written, n, &conv, &conv_len, err);
    if (r < 0)
      hoist_err_wrap(err, "index %s: OCI types", digest);
  }
  for (size_t i = 0; i < n; i++)
    hoist_descriptor_clear(&written[i]);
  free(written);
  if (r < 0)
    return -1;
  if (conv) {
    free(*data);
    *data = steal_pointer(&conv);
    *len = conv_len;
    hoist_descriptor w = {0};
    hoist_descriptor_of_bytes(&w, HOIST_MT_OCI_INDEX, *data, *len);
    take_written(&w, mt, digest);
  }
  return put_manifest(c, reference, *data, *len, *mt, err);
}

/* Copies the document the source names (already read: *data, *mt, digest)
 * to c->dst under reference. On return *mt and digest describe what was
 * written at the top (the platform's manifest, when one was picked from an
 * index; the rewritten document with c->oci). */
HOIST_WUR static int copy_document(copy_ctx *c, char **data, size_t *len, char **mt,
                                   char digest[HOIST_DIGEST_STR_LEN], const char *reference,
                                   const hoist_image_copy_opts *opts, hoist_err **err) {
  hoist_media_kind kind = hoist_media_kind_of(*mt);
  if (kind != HOIST_MEDIA_MANIFEST && kind != HOIST_MEDIA_INDEX)
    return hoist_err_set(err, HOIST_E_FORMAT, "unsupported manifest media type %s", *mt);
  if (kind == HOIST_MEDIA_INDEX) {
    _cleanup_index_ hoist_index *ix = NULL;
    if (hoist_index_parse(*data, *len, &ix, err) < 0)
      return hoist_err_wrap(err, "index %s", digest);
    if (opts->all_platforms)
      return copy_index(c, ix, data, len, mt, digest, reference, err);
    _cleanup_platform_ hoist_platform *host = opts->platform ? NULL : hoist_platform_host();
    const hoist_platform *want = opts->platform ? opts->platform : host;
    const hoist_descriptor *d = hoist_index_find_platform(ix, want);
    if (!d) {
      _cleanup_free_ char *w = hoist_platform_string(want);
      _cleanup_free_ char *have = hoist_index_platforms(ix, NULL);
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
  }
  hoist_descriptor w = {0};
  int r = copy_manifest(c, *data, *len, *mt, digest, reference, false, &w, err);
  if (r == 0)
    take_written(&w, mt, digest);
  hoist_descriptor_clear(&w);
  return r;
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
  copy_ctx c = {.src = src, .dst = dst, .jobs = jobs_of(NULL, opts->jobs), .oci = opts->oci};
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
  copy_ctx c = {.jobs = jobs_of(t, opts->jobs), .oci = opts->oci};
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
  if ((dst->kind == HOIST_LOC_LAYOUT || dst->kind == HOIST_LOC_OCI_ARCHIVE) && !dst->tag)
    where.tag = hoist_loc_tag(src) ? (char *)hoist_loc_tag(src) : "latest";
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
