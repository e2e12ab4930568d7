/* The registry driver of the transport (see transport.h), on top of the
 * distribution client (registry.h). */
#include <errno.h>
#include <string.h>

#include "hoist/transport.h"

/* Streams between two registries start over this many times: an upload
 * session cannot resume a stream. */
#define STREAM_ATTEMPTS 3

/* ------------------------------------------------------- memory writer */

typedef struct mem_writer {
  hoist_writer base;
  hoist_buf buf;
} mem_writer;

HOIST_WUR static int mw_write(hoist_writer *w, const void *d, size_t n, hoist_err **err) {
  return hoist_buf_append(&((mem_writer *)w)->buf, d, n, err);
}
static const hoist_writer_ops mem_ops = {.write = mw_write};

/* What a registry source and a registry target both hold: the client
 * (borrowed) and the repository's reference (owned). */
typedef struct registry_at {
  hoist_registry *r;
  hoist_ref *ref;
} registry_at;

/* The first of sources (NULL-terminated, the last the registry's own
 * location) that has the image: each mirror is asked for the manifest
 * (HEAD), the first that has it answers; else the last, unasked. A mirror
 * that fails is skipped, as podman skips it. */
static const hoist_ref *pick_source(hoist_registry *r, hoist_ref *const *sources) {
  size_t i = 0;
  for (; sources[i + 1]; i++) {
    const hoist_ref *m = sources[i];
    bool found = false;
    char digest[HOIST_DIGEST_STR_LEN];
    _cleanup_free_ char *mt = NULL;
    hoist_err *e = NULL;
    if (hoist_registry_head_manifest(r, m->domain, m->path, hoist_ref_reference(m), &found, digest,
                                     &mt, &e) == 0 &&
        found) {
      _cleanup_free_ char *text = hoist_ref_string(m);
      hoist_info("pulling from the mirror %s", text);
      return m;
    }
    _cleanup_free_ char *why = e ? hoist_err_text(e) : hoist_strdup("manifest unknown");
    hoist_info("mirror %s/%s skipped: %s", m->domain, m->path, why);
    hoist_err_free(e);
  }
  return sources[i];
}

/* what: "source" or "target", for the message when r is missing. A
 * registries configuration of r decides where ref really is: a target its
 * location, a source its mirrors first (pick_source); a blocked registry is
 * an error. */
HOIST_WUR static int at_open(registry_at *at, hoist_registry *r, const hoist_ref *ref,
                             const char *what, hoist_err **err) {
  if (!r)
    return hoist_err_set(err, EINVAL, "a registry %s needs a registry client", what);
  at->r = r;
  const hoist_regconf *conf = hoist_registry_regconf(r);
  if (!conf) {
    at->ref = hoist_ref_dup(ref);
    return 0;
  }
  if (strcmp(what, "target") == 0)
    return hoist_regconf_push_target(conf, ref, &at->ref, err);
  hoist_ref **sources = NULL;
  if (hoist_regconf_pull_sources(conf, ref, &sources, err) < 0)
    return -1;
  at->ref = hoist_ref_dup(pick_source(r, sources));
  hoist_regconf_refs_free(sources);
  return 0;
}

/* ------------------------------------------------------ registry source */

typedef struct registry_source {
  hoist_transport_source base;
  registry_at at;
} registry_source;

HOIST_WUR static int rs_resolve(hoist_transport_source *s, char digest[HOIST_DIGEST_STR_LEN],
                                char **media_type, hoist_err **err) {
  registry_source *rs = (registry_source *)s;
  const hoist_ref *ref = rs->at.ref;
  bool found = false;
  if (hoist_registry_head_manifest(rs->at.r, ref->domain, ref->path, hoist_ref_reference(ref),
                                   &found, digest, media_type, err) < 0)
    return -1;
  if (!found)
    return hoist_err_set(err, ENOENT, "%s/%s:%s: manifest unknown (no such tag)", ref->domain,
                         ref->path, hoist_ref_reference(ref));
  return 0;
}

HOIST_WUR static int rs_manifest(hoist_transport_source *s, const char *digest, char **data,
                                 size_t *len, char **media_type,
                                 char digest_out[HOIST_DIGEST_STR_LEN], hoist_err **err) {
  registry_source *rs = (registry_source *)s;
  const hoist_ref *ref = rs->at.ref;
  char resolved[HOIST_DIGEST_STR_LEN];
  if (!digest && hoist_digest_valid(hoist_ref_reference(ref))) {
    digest = hoist_ref_reference(ref);
  } else if (!digest) {
    /* a tag: resolved with HEAD, the content fetched by digest (verified) */
    _cleanup_free_ char *mt = NULL;
    if (rs_resolve(s, resolved, &mt, err) < 0)
      return -1;
    digest = resolved;
  }
  return hoist_registry_get_manifest(rs->at.r, ref->domain, ref->path, digest, data, len,
                                     media_type, digest_out, err);
}

HOIST_WUR static int rs_blob(hoist_transport_source *s, const char *digest, size_t max, char **data,
                             size_t *len, hoist_err **err) {
  registry_source *rs = (registry_source *)s;
  mem_writer m = {.base = {&mem_ops}, .buf = HOIST_BUF_INIT(max)};
  if (hoist_registry_get_blob(rs->at.r, rs->at.ref->domain, rs->at.ref->path, digest, -1, &m.base,
                              err) < 0) {
    hoist_buf_free(&m.buf);
    return -1;
  }
  *len = m.buf.len;
  *data = hoist_buf_steal(&m.buf);
  return 0;
}

HOIST_WUR static int rs_copy_blob(hoist_transport_source *s, const hoist_descriptor *d,
                                  hoist_writer *w, hoist_err **err) {
  registry_source *rs = (registry_source *)s;
  return hoist_registry_get_blob(rs->at.r, rs->at.ref->domain, rs->at.ref->path, d->digest, d->size,
                                 w, err);
}

static void rs_free(hoist_transport_source *s) {
  hoist_ref_free(((registry_source *)s)->at.ref);
  free(s);
}

static const hoist_transport_source_ops registry_source_ops = {
    .manifest = rs_manifest,
    .resolve = rs_resolve,
    .blob = rs_blob,
    .copy_blob = rs_copy_blob,
    .free = rs_free,
};

/* ------------------------------------------------------ registry target */

typedef struct registry_target {
  hoist_transport_target base;
  registry_at at;
} registry_target;

/* The repository of this registry that from's blobs also live in, other
 * than the target's own, or NULL. */
static const char *mount_source(const registry_target *rt, const hoist_transport_source *from) {
  const hoist_loc *o = from ? from->origin : NULL;
  if (!o || o->kind != HOIST_LOC_REGISTRY || strcmp(o->ref->domain, rt->at.ref->domain) != 0 ||
      strcmp(o->ref->path, rt->at.ref->path) == 0)
    return NULL;
  return o->ref->path;
}

HOIST_WUR static int rt_has_blob(hoist_transport_target *t, const hoist_descriptor *d, bool *has,
                                 hoist_err **err) {
  registry_target *rt = (registry_target *)t;
  return hoist_registry_blob_exists_for_push(rt->at.r, rt->at.ref->domain, rt->at.ref->path,
                                             d->digest, has, NULL, err);
}

/* Blobs stream straight into an upload session: nothing is spooled. */
HOIST_WUR static int rt_blob_writer(hoist_transport_target *t, const char *digest, int64_t size,
                                    hoist_writer **out, hoist_err **err) {
  (void)size;
  registry_target *rt = (registry_target *)t;
  return hoist_registry_blob_upload(rt->at.r, rt->at.ref->domain, rt->at.ref->path, digest, out,
                                    err);
}

/* One attempt at streaming d from `from` into an upload session; the upload
 * is finished only once the source's content checked out. */
HOIST_WUR static int stream_blob(registry_target *rt, const hoist_descriptor *d,
                                 hoist_transport_source *from, hoist_err **err) {
  _cleanup_writer_ hoist_writer *w = NULL;
  if (hoist_registry_blob_upload(rt->at.r, rt->at.ref->domain, rt->at.ref->path, d->digest, &w,
                                 err) < 0)
    return -1;
  if (from->ops->copy_blob(from, d, w, err) < 0)
    return -1;
  char got[HOIST_DIGEST_STR_LEN];
  return hoist_writer_commit(w, got, NULL, err);
}

/* A file goes up with put_blob (HEAD, mount or monolithic or chunked
 * upload with resumption); a stream is checked for, mounted, or streamed,
 * and started over when it broke for a reason another try may not meet. */
HOIST_WUR static int rt_copy_blob(hoist_transport_target *t, const hoist_descriptor *d,
                                  hoist_transport_source *from, hoist_transport_how *how,
                                  uint64_t *bytes, hoist_err **err) {
  registry_target *rt = (registry_target *)t;
  const char *host = rt->at.ref->domain, *repo = rt->at.ref->path;
  const char *mount_from = mount_source(rt, from);
  *bytes = 0;
  if (from->ops->open_blob) {
    _cleanup_close_ int fd = -1;
    uint64_t size = 0;
    if (from->ops->open_blob(from, d->digest, &fd, &size, err) < 0)
      return -1;
    if ((int64_t)size != d->size)
      return hoist_err_set(err, HOIST_E_DIGEST, "blob %s: %llu bytes in the layout, %lld expected",
                           d->digest, (unsigned long long)size, (long long)d->size);
    const char *what = NULL;
    if (hoist_registry_put_blob(rt->at.r, host, repo, d->digest, size, fd, mount_from, &what, err) <
        0)
      return -1;
    *how = strcmp(what, "exists") == 0    ? HOIST_TRANSPORT_PRESENT
           : strcmp(what, "mounted") == 0 ? HOIST_TRANSPORT_MOUNTED
                                          : HOIST_TRANSPORT_COPIED;
    if (*how == HOIST_TRANSPORT_COPIED)
      *bytes = size;
    return 0;
  }
  bool exists = false;
  if (hoist_registry_blob_exists_for_push(rt->at.r, host, repo, d->digest, &exists, NULL, err) < 0)
    return -1;
  if (exists) {
    *how = HOIST_TRANSPORT_PRESENT;
    return 0;
  }
  /* from the source's repository, else from those the client's
   * blob-location record names */
  bool mounted = false;
  if (hoist_registry_mount_known(rt->at.r, host, repo, d->digest, mount_from, &mounted, err) < 0)
    return -1;
  if (mounted) {
    *how = HOIST_TRANSPORT_MOUNTED;
    return 0;
  }
  for (int attempt = 1;; attempt++) {
    hoist_err *e = NULL;
    if (stream_blob(rt, d, from, &e) == 0)
      break;
    int code = e ? e->code : EIO;
    if (attempt >= STREAM_ATTEMPTS || code == HOIST_E_DIGEST || code == HOIST_E_AUTH ||
        code == HOIST_E_FORMAT) {
      if (err && !*err)
        *err = e;
      else
        hoist_err_free(e);
      return -1;
    }
    _cleanup_free_ char *why = hoist_err_text(e);
    hoist_err_free(e);
    /* EAGAIN: the registry refused the way of uploading, the next goes
     * another way at once */
    if (code != EAGAIN)
      sleep((unsigned)attempt);
    hoist_info("blob %s: %s; starting over", d->digest, why);
  }
  *how = HOIST_TRANSPORT_COPIED;
  *bytes = (uint64_t)d->size;
  return 0;
}

HOIST_WUR static int rt_has_manifest(hoist_transport_target *t, const char *reference,
                                     const char *digest, bool *has, hoist_err **err) {
  registry_target *rt = (registry_target *)t;
  bool found = false;
  char have[HOIST_DIGEST_STR_LEN];
  if (hoist_registry_head_manifest(rt->at.r, rt->at.ref->domain, rt->at.ref->path,
                                   reference ? reference : hoist_ref_reference(rt->at.ref), &found,
                                   have, NULL, err) < 0)
    return -1;
  *has = found && strcmp(have, digest) == 0;
  return 0;
}

HOIST_WUR static int rt_put_manifest(hoist_transport_target *t, const char *reference,
                                     const char *data, size_t len, const char *media_type,
                                     hoist_err **err) {
  registry_target *rt = (registry_target *)t;
  return hoist_registry_put_manifest(rt->at.r, rt->at.ref->domain, rt->at.ref->path,
                                     reference ? reference : hoist_ref_reference(rt->at.ref), data,
                                     len, media_type, err);
}

static void rt_free(hoist_transport_target *t) {
  hoist_ref_free(((registry_target *)t)->at.ref);
  free(t);
}

static const hoist_transport_target_ops registry_target_ops = {
    .has_blob = rt_has_blob,
    .blob_writer = rt_blob_writer,
    .copy_blob = rt_copy_blob,
    .has_manifest = rt_has_manifest,
    .put_manifest = rt_put_manifest,
    .free = rt_free,
};

/* ------------------------------------------------------------- opening */

int hoist_transport_registry_source(hoist_registry *r, const hoist_ref *ref,
                                    hoist_transport_source **out, hoist_err **err) {
  registry_at at;
  int ret = at_open(&at, r, ref, "source", err);
  if (ret < 0)
    return ret;
  registry_source *rs = hoist_malloc0(sizeof *rs);
  rs->base.ops = &registry_source_ops;
  rs->at = at;
  /* a target on this registry mounts the blobs from the source's repository */
  hoist_loc self = {.kind = HOIST_LOC_REGISTRY, .ref = at.ref};
  hoist_transport_source_set_origin(&rs->base, &self);
  *out = &rs->base;
  return 0;
}

int hoist_transport_registry_target(hoist_registry *r, const hoist_ref *ref,
                                    hoist_transport_target **out, hoist_err **err) {
  registry_at at;
  int ret = at_open(&at, r, ref, "target", err);
  if (ret < 0)
    return ret;
  registry_target *rt = hoist_malloc0(sizeof *rt);
  rt->base.ops = &registry_target_ops;
  rt->at = at;
  *out = &rt->base;
  return 0;
}
