/* OCI 1.1 referrers: artifacts (signatures, attestations) stored beside the
 * manifest they name as their subject, found from it through the registry's
 * referrers API or, where there is none (and in a layout), the referrers
 * tag schema: an OCI index tagged sha256-<hex of the subject>. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hoist/image.h"
#include "hoist/store.h"

/* "sha256-<hex>": the referrers tag schema's tag for subject. */
static char *fallback_tag(const char *subject) {
  char *tag = hoist_strdup(subject);
  char *colon = strchr(tag, ':');
  if (colon)
    *colon = '-';
  return tag;
}

/* Hands e to the caller's err (or frees it when the caller has one). */
static void pass_err(hoist_err **err, hoist_err *e) {
  if (err && !*err)
    *err = e;
  else
    hoist_err_free(e);
}

static hoist_registry *registry_of(const hoist_transport_opts *t) {
  if (!t)
    return NULL;
  return t->target_registry ? t->target_registry : t->registry;
}

/* The descriptor of the referrer manifest m (bytes data) as an entry of a
 * referrers index: its artifactType, else its config's media type. */
static void referrer_descriptor(const hoist_manifest *m, const char *data, size_t len,
                                hoist_descriptor *out) {
  memset(out, 0, sizeof *out);
  hoist_descriptor_of_bytes(out, HOIST_MT_OCI_MANIFEST, data, len);
  out->artifact_type =
      hoist_strdup(m->artifact_type ? m->artifact_type : m->config.media_type);
  if (m->annotations)
    out->annotations = json_deep_copy(m->annotations);
}

/* Adds d to the referrers index held in data (NULL: none yet), unless an
 * entry already has its digest; *out (caller frees) is the new index's
 * JSON, NULL when nothing changed. */
HOIST_WUR static int index_with(const char *data, size_t len, const hoist_descriptor *d,
                                char **out, size_t *out_len, hoist_err **err) {
  hoist_index *ix = NULL;
  *out = NULL;
  if (data) {
    if (hoist_index_parse(data, len, &ix, err) < 0)
      return hoist_err_wrap(err, "the referrers index");
  } else {
    ix = hoist_index_new(HOIST_MT_OCI_INDEX);
  }
  for (size_t i = 0; i < ix->n_manifests; i++) {
    if (strcmp(ix->manifests[i].digest, d->digest) == 0) {
      hoist_index_free(ix);
      return 0;
    }
  }
  hoist_index_add(ix, d);
  int rc = hoist_index_to_json(ix, out, out_len, err);
  hoist_index_free(ix);
  return rc;
}

/* Keeps the entries of ix whose artifactType is artifact_type. */
static void index_filter(hoist_index *ix, const char *artifact_type) {
  if (!artifact_type)
    return;
  for (size_t i = ix->n_manifests; i-- > 0;) {
    const char *at = ix->manifests[i].artifact_type;
    if (!at || strcmp(at, artifact_type) != 0)
      hoist_index_remove(ix, i);
  }
}

HOIST_WUR static int put_registry(hoist_registry *r, const hoist_ref *ref, const hoist_manifest *m,
                                  const char *data, size_t len, const char *digest,
                                  hoist_err **err) {
  const char *host = ref->domain, *repo = ref->path;
  if (hoist_registry_put_manifest(r, host, repo, digest, data, len, HOIST_MT_OCI_MANIFEST, err) <
      0)
    return -1;
  _cleanup_free_ char *api = NULL;
  size_t api_len = 0;
  bool supported = false;
  if (hoist_registry_referrers(r, host, repo, m->subject->digest, NULL, &api, &api_len, &supported,
                               err) < 0)
    return -1;
  if (supported)
    return 0;
  _cleanup_free_ char *tag = fallback_tag(m->subject->digest);
  bool found = false;
  char old_digest[HOIST_DIGEST_STR_LEN];
  _cleanup_free_ char *old_mt = NULL;
  if (hoist_registry_head_manifest(r, host, repo, tag, &found, old_digest, &old_mt, err) < 0)
    return hoist_err_wrap(err, "the referrers tag %s", tag);
  _cleanup_free_ char *old = NULL;
  size_t old_len = 0;
  if (found) {
    free(old_mt);
    old_mt = NULL;
    if (hoist_registry_get_manifest(r, host, repo, tag, &old, &old_len, &old_mt, old_digest, err) <
        0)
      return hoist_err_wrap(err, "the referrers tag %s", tag);
  }
  hoist_descriptor d;
  referrer_descriptor(m, data, len, &d);
  _cleanup_free_ char *ix = NULL;
  size_t ix_len = 0;
  int rc = index_with(old, old_len, &d, &ix, &ix_len, err);
  hoist_descriptor_clear(&d);
  if (rc < 0)
    return hoist_err_wrap(err, "%s/%s:%s", host, repo, tag);
  if (!ix)
    return 0;
  return hoist_registry_put_manifest(r, host, repo, tag, ix, ix_len, HOIST_MT_OCI_INDEX, err);
}

HOIST_WUR static int put_layout(const char *dir, const hoist_manifest *m, const char *data,
                                size_t len, hoist_err **err) {
  hoist_store *s = NULL;
  if (hoist_store_open(dir, false, &s, err) < 0)
    return -1;
  int rc = -1;
  _cleanup_free_ char *tag = fallback_tag(m->subject->digest);
  _cleanup_free_ char *old = NULL, *ix = NULL;
  size_t old_len = 0, ix_len = 0;
  hoist_descriptor d, cur = {0};
  referrer_descriptor(m, data, len, &d);
  char got[HOIST_DIGEST_STR_LEN];
  if (hoist_store_put_blob(s, data, len, NULL, got, err) < 0)
    goto out;
  hoist_err *e = NULL;
  int found = hoist_store_resolve(s, tag, &cur, &e);
  if (found == 0) {
    if (hoist_store_read_blob(s, cur.digest, HOIST_MANIFEST_MAX, &old, &old_len, err) < 0)
      goto out;
  } else if (hoist_err_root_code(e) == ENOENT) {
    hoist_err_free(e);
  } else {
    pass_err(err, e);
    goto out;
  }
  if (index_with(old, old_len, &d, &ix, &ix_len, err) < 0)
    goto out;
  if (ix) {
    hoist_descriptor ixd;
    char ixdigest[HOIST_DIGEST_STR_LEN];
    if (hoist_store_put_blob(s, ix, ix_len, NULL, ixdigest, err) < 0)
      goto out;
    hoist_descriptor_of_bytes(&ixd, HOIST_MT_OCI_INDEX, ix, ix_len);
    rc = hoist_store_tag(s, tag, &ixd, err);
    hoist_descriptor_clear(&ixd);
    if (rc < 0)
      goto out;
  }
  rc = 0;
out:
  hoist_descriptor_clear(&d);
  hoist_descriptor_clear(&cur);
  hoist_store_close(s);
  if (rc < 0)
    return hoist_err_wrap(err, "oci:%s:%s", dir, tag);
  return 0;
}

int hoist_image_referrer_put(const hoist_transport_opts *t, const hoist_loc *loc, const char *data,
                             size_t len, char digest[HOIST_DIGEST_STR_LEN], hoist_err **err) {
  hoist_manifest *m = NULL;
  if (hoist_manifest_parse(data, len, &m, err) < 0)
    return hoist_err_wrap(err, "referrer");
  int rc = -1;
  char own[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of(data, len, own);
  if (!m->subject || strcmp(m->media_type, HOIST_MT_OCI_MANIFEST) != 0) {
    rc = hoist_err_set(err, EINVAL, "referrer %s: not an OCI manifest with a subject", own);
    goto out;
  }
  if (loc->kind == HOIST_LOC_REGISTRY) {
    hoist_registry *r = registry_of(t);
    if (!r) {
      rc = hoist_err_set(err, EINVAL, "no registry client for %s", loc->ref->domain);
      goto out;
    }
    rc = put_registry(r, loc->ref, m, data, len, own, err);
  } else if (loc->kind == HOIST_LOC_LAYOUT) {
    rc = put_layout(loc->dir, m, data, len, err);
  } else {
    _cleanup_free_ char *where = hoist_loc_string(loc);
    rc = hoist_err_set(err, ENOTSUP, "%s: referrers are kept in a registry or an OCI layout",
                       where);
  }
  if (rc == 0 && digest)
    memcpy(digest, own, HOIST_DIGEST_STR_LEN);
out:
  hoist_manifest_free(m);
  if (rc < 0)
    return hoist_err_wrap(err, "store referrer %s", own);
  return 0;
}

HOIST_WUR static int list_registry(hoist_registry *r, const hoist_ref *ref, const char *subject,
                                   const char *artifact_type, char **data, size_t *len,
                                   hoist_err **err) {
  const char *host = ref->domain, *repo = ref->path;
  bool supported = false;
  if (hoist_registry_referrers(r, host, repo, subject, artifact_type, data, len, &supported, err) <
      0)
    return -1;
  if (supported)
    return 0;
  _cleanup_free_ char *tag = fallback_tag(subject);
  bool found = false;
  char got[HOIST_DIGEST_STR_LEN];
  _cleanup_free_ char *mt = NULL;
  if (hoist_registry_head_manifest(r, host, repo, tag, &found, got, &mt, err) < 0)
    return hoist_err_wrap(err, "the referrers tag %s", tag);
  if (!found)
    return 0;
  free(mt);
  mt = NULL;
  if (hoist_registry_get_manifest(r, host, repo, tag, data, len, &mt, got, err) < 0)
    return hoist_err_wrap(err, "the referrers tag %s", tag);
  return 0;
}

HOIST_WUR static int list_layout(const char *dir, const char *subject, char **data, size_t *len,
                                 hoist_err **err) {
  hoist_store *s = NULL;
  if (hoist_store_open(dir, false, &s, err) < 0)
    return -1;
  _cleanup_free_ char *tag = fallback_tag(subject);
  hoist_descriptor cur = {0};
  hoist_err *e = NULL;
  int rc = 0;
  if (hoist_store_resolve(s, tag, &cur, &e) == 0) {
    rc = hoist_store_read_blob(s, cur.digest, HOIST_MANIFEST_MAX, data, len, err);
  } else if (hoist_err_root_code(e) == ENOENT) {
    hoist_err_free(e);
  } else {
    pass_err(err, e);
    rc = -1;
  }
  hoist_descriptor_clear(&cur);
  hoist_store_close(s);
  return rc;
}

int hoist_image_referrers(const hoist_transport_opts *t, const hoist_loc *loc, const char *subject,
                          const char *artifact_type, hoist_index **out, hoist_err **err) {
  if (hoist_digest_parse(subject, NULL, err) < 0)
    return hoist_err_wrap(err, "referrers");
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  int rc;
  if (loc->kind == HOIST_LOC_REGISTRY) {
    hoist_registry *r = registry_of(t);
    if (!r)
      return hoist_err_set(err, EINVAL, "no registry client for %s", loc->ref->domain);
    rc = list_registry(r, loc->ref, subject, artifact_type, &data, &len, err);
  } else if (loc->kind == HOIST_LOC_LAYOUT) {
    rc = list_layout(loc->dir, subject, &data, &len, err);
  } else {
    _cleanup_free_ char *where = hoist_loc_string(loc);
    return hoist_err_set(err, ENOTSUP, "%s: referrers are kept in a registry or an OCI layout",
                         where);
  }
  if (rc < 0)
    return hoist_err_wrap(err, "referrers of %s", subject);
  hoist_index *ix = NULL;
  if (!data) {
    ix = hoist_index_new(HOIST_MT_OCI_INDEX);
  } else if (hoist_index_parse(data, len, &ix, err) < 0) {
    return hoist_err_wrap(err, "referrers of %s", subject);
  }
  index_filter(ix, artifact_type);
  *out = ix;
  return 0;
}
