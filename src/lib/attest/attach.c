/* attest: statements stored beside an image (BuildKit's attestation manifest
 * in the image's index, or OCI 1.1 referrers) and read back. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "hoist/attest.h"

/* The empty descriptor's content (OCI 1.1). */
static const char empty_json[] = "{}";

int hoist_attest_mode_parse(const char *s, hoist_attest_mode *out, hoist_err **err) {
  if (s && strcmp(s, "index") == 0)
    *out = HOIST_ATTEST_INDEX;
  else if (s && strcmp(s, "referrer") == 0)
    *out = HOIST_ATTEST_REFERRER;
  else
    return hoist_err_set(err, EINVAL, "attestation mode '%s': want index or referrer", s ? s : "");
  return 0;
}

bool hoist_attest_is_attestation(const hoist_descriptor *d) {
  const char *t = hoist_descriptor_annotation(d, HOIST_ANNOT_REFERENCE_TYPE);
  return t && strcmp(t, HOIST_REFERENCE_TYPE_ATTESTATION) == 0;
}

int hoist_attest_index_entries(const hoist_index *ix, const char *image_digest, size_t **idx,
                               size_t *n, hoist_err **err) {
  *idx = NULL;
  *n = 0;
  _cleanup_free_ size_t *v = hoist_calloc(ix->n_manifests ? ix->n_manifests : 1, sizeof *v);
  size_t k = 0;
  for (size_t i = 0; i < ix->n_manifests; i++) {
    const hoist_descriptor *d = &ix->manifests[i];
    if (!hoist_attest_is_attestation(d))
      continue;
    const char *ref = hoist_descriptor_annotation(d, HOIST_ANNOT_REFERENCE_DIGEST);
    if (!ref || !hoist_digest_valid(ref))
      return hoist_err_set(
          err, HOIST_E_FORMAT,
          "index entry %zu: an attestation manifest whose " HOIST_ANNOT_REFERENCE_DIGEST
          " is not a digest",
          i);
    if (hoist_media_kind_of(d->media_type) != HOIST_MEDIA_MANIFEST)
      return hoist_err_set(err, HOIST_E_FORMAT,
                           "index entry %zu: an attestation that is not a manifest (%s)", i,
                           d->media_type);
    if (!image_digest || strcmp(ref, image_digest) == 0)
      v[k++] = i;
  }
  *idx = steal_pointer(&v);
  *n = k;
  return 0;
}

/* The image the location names: its descriptor with its platform (from its
 * config when the index gives none). A location naming an index must hold
 * one image beside attestation manifests, unless whole is set: an index of
 * several images is then the subject itself. */
static int find_image(hoist_transport_source *src, const char *name, bool whole,
                      hoist_descriptor *image, hoist_err **err) {
  _cleanup_free_ char *data = NULL;
  _cleanup_free_ char *mt = NULL;
  size_t len = 0;
  char digest[HOIST_DIGEST_STR_LEN];
  if (src->ops->manifest(src, NULL, &data, &len, &mt, digest, err) < 0)
    return hoist_err_wrap(err, "%s", name);
  if (hoist_media_kind_of(mt) == HOIST_MEDIA_INDEX) {
    _cleanup_index_ hoist_index *ix = NULL;
    if (hoist_index_parse(data, len, &ix, err) < 0)
      return hoist_err_wrap(err, "%s", name);
    const hoist_descriptor *only = NULL;
    for (size_t i = 0; i < ix->n_manifests; i++) {
      if (hoist_attest_is_attestation(&ix->manifests[i]))
        continue;
      if (only && whole) {
        hoist_descriptor_of_bytes(image, mt, data, len);
        return 0;
      }
      if (only)
        return hoist_err_set(err, EINVAL,
                             "%s is an index of several images: attest each image, then join them "
                             "(hoist index create carries their attestations), or attest the "
                             "index as a referrer",
                             name);
      only = &ix->manifests[i];
    }
    if (!only || hoist_media_kind_of(only->media_type) != HOIST_MEDIA_MANIFEST)
      return hoist_err_set(err, EINVAL, "%s: an index without an image", name);
    hoist_descriptor_copy(image, only);
    if (image->platform)
      return 0;
    hoist_descriptor_clear(image);
    /* no platform: read it from the image below */
    free(data);
    data = NULL;
    free(mt);
    mt = NULL;
    char want[HOIST_DIGEST_STR_LEN];
    memcpy(want, only->digest, sizeof want);
    ix = (hoist_index_free(ix), NULL);
    if (src->ops->manifest(src, want, &data, &len, &mt, digest, err) < 0)
      return hoist_err_wrap(err, "%s", name);
  }
  _cleanup_manifest_ hoist_manifest *m = NULL;
  if (hoist_manifest_parse_image(data, len, &m, err) < 0)
    return hoist_err_wrap(err, "%s", name);
  _cleanup_free_ char *cfg = NULL;
  size_t cfg_len = 0;
  _cleanup_config_ hoist_config *c = NULL;
  if (src->ops->blob(src, m->config.digest, HOIST_MANIFEST_MAX, &cfg, &cfg_len, err) < 0 ||
      hoist_config_parse(cfg, cfg_len, &c, err) < 0)
    return hoist_err_wrap(err, "%s: config", name);
  hoist_descriptor_of_bytes(image, mt, data, len);
  image->platform = hoist_config_platform(c);
  return 0;
}

/* Emits the descriptor JSON of d or fails. */
static json_t *desc_json(const hoist_descriptor *d) {
  json_t *j = hoist_descriptor_to_json(d);
  if (!j)
    abort(); /* built here from valid digests and ASCII types */
  return j;
}

/* Stores statement st as a blob of dst; d (cleared on failure) is its
 * layer descriptor, annotated with its predicate type. */
static int put_statement(hoist_transport_target *dst, const hoist_attest_statement_blob *st,
                         hoist_descriptor *d, hoist_err **err) {
  int r = hoist_image_put_bytes(dst, HOIST_INTOTO_MEDIA_TYPE, st->data, st->len, d, err);
  if (r == 0)
    r = hoist_descriptor_set_annotation(d, HOIST_ANNOT_PREDICATE_TYPE, st->predicate_type, err);
  if (r < 0)
    hoist_descriptor_clear(d);
  return r;
}

/* Index mode: the statements as layers of one attestation manifest, and the
 * index of the image and it, under the location's tag. */
static int attach_index(hoist_transport_target *dst, const hoist_descriptor *image,
                        const hoist_attest_statement_blob *st, size_t n, hoist_attest_result *out,
                        hoist_err **err) {
  _cleanup_json_ json_t *layers = json_array();
  _cleanup_json_ json_t *diff_ids = json_array();
  for (size_t i = 0; i < n; i++) {
    hoist_descriptor d = {0};
    if (put_statement(dst, &st[i], &d, err) < 0)
      return hoist_err_wrap(err, "statement %zu", i);
    json_array_append_new(layers, desc_json(&d));
    json_array_append_new(diff_ids, json_string(d.digest));
    hoist_descriptor_clear(&d);
  }
  /* BuildKit's config: only there for tools that want one */
  _cleanup_json_ json_t *cfg_j =
      json_pack("{s:s, s:s, s:{}, s:{s:s, s:O}}", "architecture", "unknown", "os", "unknown",
                "config", "rootfs", "type", "layers", "diff_ids", diff_ids);
  _cleanup_free_ char *cfg = NULL;
  size_t cfg_len = 0;
  hoist_descriptor cfg_d = {0};
  if (hoist_json_canonical(cfg_j, &cfg, &cfg_len, err) < 0 ||
      hoist_image_put_bytes(dst, HOIST_MT_OCI_CONFIG, cfg, cfg_len, &cfg_d, err) < 0) {
    hoist_descriptor_clear(&cfg_d);
    return hoist_err_wrap(err, "attestation config");
  }
  _cleanup_json_ json_t *m =
      json_pack("{s:i, s:s, s:o, s:O}", "schemaVersion", 2, "mediaType", HOIST_MT_OCI_MANIFEST,
                "config", desc_json(&cfg_d), "layers", layers);
  hoist_descriptor_clear(&cfg_d);
  _cleanup_free_ char *mdata = NULL;
  size_t mlen = 0;
  if (hoist_json_canonical(m, &mdata, &mlen, err) < 0)
    return hoist_err_wrap(err, "attestation manifest");
  hoist_descriptor att = {0};
  hoist_descriptor_of_bytes(&att, HOIST_MT_OCI_MANIFEST, mdata, mlen);
  int r = dst->ops->put_manifest(dst, att.digest, mdata, mlen, HOIST_MT_OCI_MANIFEST, err);
  if (r == 0)
    r = hoist_descriptor_set_annotation(&att, HOIST_ANNOT_REFERENCE_TYPE,
                                        HOIST_REFERENCE_TYPE_ATTESTATION, err);
  if (r == 0)
    r = hoist_descriptor_set_annotation(&att, HOIST_ANNOT_REFERENCE_DIGEST, image->digest, err);
  if (r < 0) {
    hoist_descriptor_clear(&att);
    return hoist_err_wrap(err, "attestation manifest");
  }
  att.platform = hoist_calloc(1, sizeof *att.platform);
  att.platform->os = hoist_strdup("unknown");
  att.platform->architecture = hoist_strdup("unknown");
  memcpy(out->attestation, att.digest, HOIST_DIGEST_STR_LEN);
  _cleanup_index_ hoist_index *ix = hoist_index_new(HOIST_MT_OCI_INDEX);
  hoist_index_add(ix, image);
  hoist_index_add(ix, &att);
  hoist_descriptor_clear(&att);
  _cleanup_free_ char *idata = NULL;
  size_t ilen = 0;
  if (hoist_index_to_json(ix, &idata, &ilen, err) < 0 ||
      dst->ops->put_manifest(dst, NULL, idata, ilen, HOIST_MT_OCI_INDEX, err) < 0)
    return hoist_err_wrap(err, "index");
  hoist_sha256_of(idata, ilen, out->digest);
  return 0;
}

/* Referrer mode: one artifact per statement, the image its subject. */
static int attach_referrers(const hoist_transport_opts *t, const hoist_loc *loc,
                            hoist_transport_target *dst, const hoist_descriptor *image,
                            const hoist_attest_statement_blob *st, size_t n,
                            hoist_attest_result *out, hoist_err **err) {
  hoist_descriptor empty = {0};
  if (hoist_image_put_bytes(dst, HOIST_MT_OCI_EMPTY, empty_json, strlen(empty_json), &empty, err) <
      0) {
    hoist_descriptor_clear(&empty);
    return hoist_err_wrap(err, "empty config");
  }
  _cleanup_json_ json_t *empty_j = desc_json(&empty);
  hoist_descriptor_clear(&empty);
  hoist_descriptor subject = {
      .media_type = image->media_type, .digest = image->digest, .size = image->size};
  _cleanup_json_ json_t *subject_j = desc_json(&subject);
  for (size_t i = 0; i < n; i++) {
    hoist_descriptor d = {0};
    if (put_statement(dst, &st[i], &d, err) < 0)
      return hoist_err_wrap(err, "statement %zu", i);
    _cleanup_json_ json_t *m =
        json_pack("{s:i, s:s, s:s, s:O, s:[o], s:O, s:{s:s}}", "schemaVersion", 2, "mediaType",
                  HOIST_MT_OCI_MANIFEST, "artifactType", HOIST_INTOTO_MEDIA_TYPE, "config", empty_j,
                  "layers", desc_json(&d), "subject", subject_j, "annotations",
                  HOIST_ANNOT_PREDICATE_TYPE, st[i].predicate_type);
    hoist_descriptor_clear(&d);
    _cleanup_free_ char *mdata = NULL;
    size_t mlen = 0;
    if (!m)
      return hoist_err_set(err, HOIST_E_FORMAT, "statement %zu: predicate type not UTF-8", i);
    if (hoist_json_canonical(m, &mdata, &mlen, err) < 0 ||
        hoist_image_referrer_put(t, loc, mdata, mlen, out->attestation, err) < 0)
      return hoist_err_wrap(err, "statement %zu: referrer", i);
  }
  memcpy(out->digest, image->digest, HOIST_DIGEST_STR_LEN);
  return 0;
}

int hoist_attest_attach(const hoist_transport_opts *t, const hoist_loc *loc, hoist_attest_mode mode,
                        const hoist_attest_statement_blob *st, size_t n, hoist_attest_result *out,
                        hoist_err **err) {
  memset(out, 0, sizeof *out);
  _cleanup_free_ char *name = hoist_loc_string(loc);
  if (n == 0)
    return hoist_err_set(err, EINVAL, "%s: no statement to attach", name);
  /* an archive is written whole from what its target is given: it would
   * lose the image */
  if (loc->kind != HOIST_LOC_REGISTRY && loc->kind != HOIST_LOC_LAYOUT)
    return hoist_err_set(err, EINVAL,
                         "%s: attestations are stored in a registry or an oci: layout, not in an "
                         "archive",
                         name);
  if (n > HOIST_ATTEST_LAYERS_MAX)
    return hoist_err_set(err, HOIST_E_LIMIT, "%s: %zu statements exceed the limit of %d", name, n,
                         HOIST_ATTEST_LAYERS_MAX);
  _cleanup_transport_source_ hoist_transport_source *src = NULL;
  hoist_descriptor image = {0};
  if (hoist_transport_open_source(t, loc, &src, err) < 0 ||
      find_image(src, name, mode == HOIST_ATTEST_REFERRER, &image, err) < 0) {
    hoist_descriptor_clear(&image);
    return hoist_err_wrap(err, "attach attestations");
  }
  memcpy(out->image_digest, image.digest, HOIST_DIGEST_STR_LEN);
  _cleanup_transport_target_ hoist_transport_target *dst = NULL;
  int r = hoist_transport_open_target(t, loc, &dst, err);
  if (r == 0)
    r = mode == HOIST_ATTEST_INDEX ? attach_index(dst, &image, st, n, out, err)
                                   : attach_referrers(t, loc, dst, &image, st, n, out, err);
  if (r == 0)
    r = hoist_transport_commit(dst, err);
  hoist_descriptor_clear(&image);
  if (r < 0)
    return hoist_err_wrap(err, "%s: attach attestations", name);
  return 0;
}

/* The predicates of predicate_type in the statements of the attestation
 * manifest (or referrer artifact) digest, appended to out. */
static int read_statements(hoist_transport_source *src, const char *digest,
                           const char *predicate_type, hoist_strv *out, hoist_err **err) {
  _cleanup_free_ char *data = NULL;
  _cleanup_free_ char *mt = NULL;
  size_t len = 0;
  char got[HOIST_DIGEST_STR_LEN];
  _cleanup_manifest_ hoist_manifest *m = NULL;
  if (src->ops->manifest(src, digest, &data, &len, &mt, got, err) < 0 ||
      hoist_manifest_parse(data, len, &m, err) < 0)
    return hoist_err_wrap(err, "attestation manifest %s", digest);
  if (m->n_layers > HOIST_ATTEST_LAYERS_MAX)
    return hoist_err_set(err, HOIST_E_LIMIT,
                         "attestation manifest %s: %zu statements exceed the limit of %d", digest,
                         m->n_layers, HOIST_ATTEST_LAYERS_MAX);
  for (size_t i = 0; i < m->n_layers; i++) {
    const hoist_descriptor *l = &m->layers[i];
    if (strcmp(l->media_type, HOIST_INTOTO_MEDIA_TYPE) != 0)
      continue; /* BuildKit: unknown types are ignored */
    const char *pt = hoist_descriptor_annotation(l, HOIST_ANNOT_PREDICATE_TYPE);
    if (pt && strcmp(pt, predicate_type) != 0)
      continue;
    if (l->size > (int64_t)HOIST_ATTEST_STATEMENT_MAX)
      return hoist_err_set(err, HOIST_E_LIMIT,
                           "statement %s: %" PRId64 " bytes exceeds the statement limit of %u",
                           l->digest, l->size, HOIST_ATTEST_STATEMENT_MAX);
    _cleanup_free_ char *st = NULL;
    size_t st_len = 0;
    _cleanup_free_ char *ptype = NULL;
    _cleanup_free_ char *pred = NULL;
    if (src->ops->blob(src, l->digest, HOIST_ATTEST_STATEMENT_MAX, &st, &st_len, err) < 0 ||
        hoist_attest_statement_parse(st, st_len, &ptype, &pred, err) < 0)
      return hoist_err_wrap(err, "statement %s", l->digest);
    if (strcmp(ptype, predicate_type) == 0)
      hoist_strv_push(out, steal_pointer(&pred));
  }
  return 0;
}

int hoist_attest_read(const hoist_transport_opts *t, const hoist_loc *loc,
                      const hoist_platform *platform, const char *predicate_type, char ***out,
                      hoist_err **err) {
  *out = NULL;
  _cleanup_free_ char *name = hoist_loc_string(loc);
  _cleanup_transport_source_ hoist_transport_source *src = NULL;
  _cleanup_free_ char *data = NULL;
  _cleanup_free_ char *mt = NULL;
  size_t len = 0;
  char top[HOIST_DIGEST_STR_LEN];
  if (hoist_transport_open_source(t, loc, &src, err) < 0 ||
      src->ops->manifest(src, NULL, &data, &len, &mt, top, err) < 0)
    return hoist_err_wrap(err, "%s", name);
  _cleanup_strv_ hoist_strv found = HOIST_STRV_INIT;
  char image[HOIST_DIGEST_STR_LEN];
  memcpy(image, top, sizeof image);
  if (hoist_media_kind_of(mt) == HOIST_MEDIA_INDEX) {
    _cleanup_index_ hoist_index *ix = NULL;
    if (hoist_index_parse(data, len, &ix, err) < 0)
      return hoist_err_wrap(err, "%s", name);
    /* the image: the platform's among the entries that are not attestations
     * (the only one, whatever its platform) */
    _cleanup_index_ hoist_index *images = hoist_index_new(HOIST_MT_OCI_INDEX);
    for (size_t i = 0; i < ix->n_manifests; i++)
      if (!hoist_attest_is_attestation(&ix->manifests[i]))
        hoist_index_add(images, &ix->manifests[i]);
    _cleanup_platform_ hoist_platform *host = platform ? NULL : hoist_platform_host();
    const hoist_descriptor *d = hoist_index_find_platform(images, platform ? platform : host);
    if (!d && images->n_manifests == 1)
      d = &images->manifests[0];
    if (!d) {
      _cleanup_free_ char *want = hoist_platform_string(platform ? platform : host);
      _cleanup_free_ char *have = hoist_index_platforms(images, "unknown");
      return hoist_err_set(err, ENOENT, "%s: no image for %s (the index has %s)", name, want, have);
    }
    memcpy(image, d->digest, sizeof image);
    _cleanup_free_ size_t *idx = NULL;
    size_t n = 0;
    if (hoist_attest_index_entries(ix, image, &idx, &n, err) < 0)
      return hoist_err_wrap(err, "%s", name);
    for (size_t i = 0; i < n; i++)
      if (read_statements(src, ix->manifests[idx[i]].digest, predicate_type, &found, err) < 0)
        return hoist_err_wrap(err, "%s", name);
  }
  /* then the image's referrers; then the index's own (an index create's) */
  bool referrers = loc->kind == HOIST_LOC_REGISTRY || loc->kind == HOIST_LOC_LAYOUT;
  for (int pass = 0; referrers && found.n == 0 && pass < 2; pass++) {
    const char *subject = pass == 0 ? image : top;
    if (pass == 1 && strcmp(image, top) == 0)
      break;
    _cleanup_index_ hoist_index *refs = NULL;
    if (hoist_image_referrers(t, loc, subject, HOIST_INTOTO_MEDIA_TYPE, &refs, err) < 0)
      return hoist_err_wrap(err, "%s: referrers", name);
    if (refs->n_manifests > HOIST_ATTEST_LAYERS_MAX)
      return hoist_err_set(err, HOIST_E_LIMIT, "%s: %zu referrers exceed the limit of %d", name,
                           refs->n_manifests, HOIST_ATTEST_LAYERS_MAX);
    for (size_t i = 0; i < refs->n_manifests; i++)
      if (read_statements(src, refs->manifests[i].digest, predicate_type, &found, err) < 0)
        return hoist_err_wrap(err, "%s", name);
  }
  if (found.n == 0)
    return hoist_err_set(err, ENOENT, "%s (image %s) has no attestation of type %s", name, image,
                         predicate_type);
  *out = hoist_strv_steal(&found);
  return 0;
}

/* A writer into a file descriptor (a temporary file). */
typedef struct fd_writer {
  hoist_writer base;
  int fd;
} fd_writer;

static int fdw_write(hoist_writer *w, const void *data, size_t len, hoist_err **err) {
  const char *p = data;
  while (len) {
    ssize_t n = write(((fd_writer *)w)->fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return hoist_err_errno(err, n < 0 ? errno : EIO, "temporary file");
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int fdw_commit(hoist_writer *w, char digest_out[HOIST_DIGEST_STR_LEN], uint64_t *size_out,
                      hoist_err **err) {
  (void)w;
  (void)err;
  if (digest_out)
    digest_out[0] = '\0';
  if (size_out)
    *size_out = 0;
  return 0;
}

static void fdw_free(hoist_writer *w) { (void)w; }

static const hoist_writer_ops fd_writer_ops = {fdw_write, fdw_commit, fdw_free};

int hoist_sbom_scan_blob(hoist_sbom *s, hoist_transport_source *src, const hoist_descriptor *d,
                         hoist_sbom_origin origin, const char *tmp_dir, hoist_err **err) {
  _cleanup_close_ int fd = -1;
  uint64_t size = 0;
  if (src->ops->open_blob) {
    if (src->ops->open_blob(src, d->digest, &fd, &size, err) < 0)
      return hoist_err_wrap(err, "layer %s", d->digest);
  } else {
    fd = open(tmp_dir ? tmp_dir : "/var/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
      return hoist_err_errno(err, errno, "layer %s: temporary file in %s", d->digest,
                             tmp_dir ? tmp_dir : "/var/tmp");
    fd_writer w = {.base = {&fd_writer_ops}, .fd = fd};
    if (src->ops->copy_blob(src, d, &w.base, err) < 0)
      return hoist_err_wrap(err, "layer %s", d->digest);
    if (lseek(fd, 0, SEEK_SET) < 0)
      return hoist_err_errno(err, errno, "layer %s", d->digest);
  }
  if (hoist_sbom_scan_layer(s, fd, origin, err) < 0)
    return hoist_err_wrap(err, "layer %s", d->digest);
  return 0;
}
