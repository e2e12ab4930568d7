/* The image store: where a registry image is kept locally, and bringing it
 * there unless it is there already. */
#include <errno.h>
#include <string.h>

#include "hoist/image.h"
#include "hoist/store.h"

char *hoist_image_store_location(const char *store, const hoist_ref *ref) {
  _cleanup_free_ char *host = hoist_strdup(ref->domain);
  for (char *p = host; *p; p++)
    if (*p == ':')
      *p = '_';
  _cleanup_free_ char *tag =
      ref->tag ? hoist_strdup(ref->tag) : hoist_asprintf("sha256-%s", ref->digest + 7);
  return hoist_asprintf("oci:%s/%s/%s:%s", store, host, ref->path, tag);
}

/* True when the layout at l already holds, under l's tag, the document the
 * source serves (for a registry one HEAD request): a pull would change
 * nothing. Any failure only means "not known to be current". */
static bool is_current(hoist_transport_source *src, const hoist_loc *l) {
  if (!src->ops->resolve)
    return false;
  char remote[HOIST_DIGEST_STR_LEN], local[HOIST_DIGEST_STR_LEN];
  _cleanup_free_ char *rmt = NULL;
  _cleanup_free_ char *lmt = NULL;
  _cleanup_transport_source_ hoist_transport_source *have = NULL;
  _cleanup_err_ hoist_err *e = NULL;
  return src->ops->resolve(src, remote, &rmt, &e) == 0 &&
         hoist_transport_layout_source(l->dir, l->tag, &have, &e) == 0 &&
         have->ops->resolve(have, local, &lmt, &e) == 0 && strcmp(local, remote) == 0;
}

/* An archive's image (read once: an archive source extracts it) copied
 * into the image store's "archives" layout, tagged by the digest of the
 * document the location names. */
HOIST_WUR static int pull_archive(const hoist_transport_opts *t, const char *store,
                                  const hoist_loc *src, const hoist_platform *platform,
                                  hoist_loc **out, hoist_err **err) {
  _cleanup_transport_source_ hoist_transport_source *s = NULL;
  _cleanup_transport_target_ hoist_transport_target *d = NULL;
  _cleanup_free_ char *mt = NULL;
  char digest[HOIST_DIGEST_STR_LEN];
  if (hoist_transport_open_source(t, src, &s, err) < 0 || s->ops->resolve(s, digest, &mt, err) < 0)
    return -1;
  hoist_loc l = {.kind = HOIST_LOC_LAYOUT,
                 .dir = hoist_asprintf("%s/archives", store),
                 .tag = hoist_asprintf("sha256-%s", digest + 7),
                 .index = -1};
  hoist_image_copy_opts co = {.platform = platform};
  hoist_image_copy_result res;
  int ret = hoist_transport_layout_target(l.dir, l.tag, &d, err);
  if (ret == 0)
    ret = hoist_image_transfer(s, d, NULL, &co, &res, err);
  if (ret == 0)
    hoist_image_copy_result_clear(&res);
  if (ret == 0)
    ret = hoist_transport_commit(d, err);
  if (ret == 0)
    *out = hoist_loc_dup(&l);
  free(l.dir);
  free(l.tag);
  return ret;
}

/* True when a failed pull may fall back on the store's copy: the registry
 * does not know the tag or cannot be reached; not refused credentials, bad
 * content or a broken rule. */
static bool store_may_serve(const hoist_err *e) {
  switch (hoist_err_root_code(e)) {
  case ENOENT: /* no such tag */
  case HOIST_E_REGISTRY:
  case ECONNRESET:
  case ECONNREFUSED:
  case ETIMEDOUT:
  case EHOSTUNREACH:
  case ENETUNREACH:
    return true;
  default:
    return false;
  }
}

/* True when the layout l names holds l's tag. */
static bool has_tag(const hoist_loc *l) {
  _cleanup_store_ hoist_store *st = NULL;
  _cleanup_err_ hoist_err *e = NULL;
  hoist_descriptor d = {0};
  bool found =
      hoist_store_open(l->dir, false, &st, &e) == 0 && hoist_store_resolve(st, l->tag, &d, &e) == 0;
  hoist_descriptor_clear(&d);
  return found;
}

int hoist_image_pull(const hoist_transport_opts *t, const char *store, const hoist_loc *src,
                     const hoist_platform *platform, hoist_loc **out, hoist_err **err) {
  *out = NULL;
  if (src->kind == HOIST_LOC_LAYOUT) {
    *out = hoist_loc_dup(src);
    return 0;
  }
  _cleanup_free_ char *name = hoist_loc_string(src);
  if (src->kind == HOIST_LOC_DOCKER_ARCHIVE || src->kind == HOIST_LOC_OCI_ARCHIVE)
    return pull_archive(t, store, src, platform, out, err) < 0
               ? hoist_err_wrap(err, "pull %s", name)
               : 0;
  if (src->kind != HOIST_LOC_REGISTRY)
    return hoist_err_set(err, EINVAL, "pull %s: not a registry image", name);
  _cleanup_free_ char *where = hoist_image_store_location(store, src->ref);
  _cleanup_loc_ hoist_loc *dst = NULL;
  if (hoist_loc_parse(where, &dst, err) < 0)
    return hoist_err_wrap(err, "pull %s", name);
  _cleanup_transport_source_ hoist_transport_source *s = NULL;
  if (hoist_transport_open_source(t, src, &s, err) < 0)
    return hoist_err_wrap(err, "pull %s", name);
  if (!is_current(s, dst)) {
    hoist_image_copy_opts co = {.platform = platform};
    hoist_image_copy_result res;
    hoist_err *e = NULL;
    int ret = hoist_image_copy(t, src, dst, &co, &res, &e);
    hoist_image_copy_result_clear(&res);
    if (ret < 0 && !(store_may_serve(e) && has_tag(dst))) {
      if (err && !*err)
        *err = steal_pointer(&e);
      hoist_err_free(e);
      return hoist_err_wrap(err, "pull %s", name);
    }
    if (ret < 0) {
      /* a tag made in the store (hoist_image_tag), or the registry out of
       * reach: the store's own copy serves */
      _cleanup_free_ char *text = hoist_err_text(e);
      hoist_warn("pull %s: %s; using the image store's copy", name, text);
      hoist_err_free(e);
    }
  }
  *out = steal_pointer(&dst);
  return 0;
}

/* Stores one layer from the first of its urls that gives the right bytes. */
HOIST_WUR static int fetch_one(hoist_registry *r, hoist_store *s, const hoist_descriptor *d,
                               hoist_err **err) {
  if (!d->urls || !d->urls[0])
    return hoist_err_set(err, ENOENT, "non-distributable layer %s: not in the layout and no urls",
                         d->digest);
  hoist_err *last = NULL;
  for (size_t i = 0; d->urls[i]; i++) {
    hoist_err_free(last);
    last = NULL;
    _cleanup_writer_ hoist_writer *w = NULL;
    char got[HOIST_DIGEST_STR_LEN];
    uint64_t n = 0;
    if (hoist_store_blob_writer(s, d->digest, d->size, &w, &last) == 0 &&
        hoist_registry_fetch_url(r, d->urls[i], d->digest, d->size, w, &last) == 0 &&
        hoist_writer_commit(w, got, &n, &last) == 0)
      return 0;
  }
  if (err && !*err)
    *err = last;
  else
    hoist_err_free(last);
  return hoist_err_wrap(err, "non-distributable layer %s", d->digest);
}

int hoist_image_fetch_foreign(hoist_registry *r, hoist_store *s, const hoist_manifest *m,
                              size_t *fetched, hoist_err **err) {
  if (fetched)
    *fetched = 0;
  for (size_t i = 0; i < m->n_layers; i++) {
    const hoist_descriptor *d = &m->layers[i];
    if (!hoist_media_is_nondistributable(d->media_type) || hoist_store_has_blob(s, d->digest))
      continue;
    if (fetch_one(r, s, d, err) < 0)
      return -1;
    if (fetched)
      (*fetched)++;
  }
  return 0;
}
