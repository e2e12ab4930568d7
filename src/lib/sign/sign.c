/* sign images: signatures stored for an image (the .sig tag, or a
 * referrer) and their verification, on the transport. */
#include <errno.h>
#include <string.h>

#include "hoist/limits.h"
#include "hoist/sign.h"

/* The empty JSON object, the config of an OCI 1.1 artifact. */
#define EMPTY_DIGEST "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

/* A copy of loc naming tag in the same repository or layout. Archives hold
 * no signatures. */
static int loc_at_tag(const hoist_loc *loc, const char *tag, hoist_loc **out, hoist_err **err) {
  *out = NULL;
  if (loc->kind != HOIST_LOC_REGISTRY && loc->kind != HOIST_LOC_LAYOUT)
    return hoist_err_set(err, EINVAL,
                         "signatures live in a registry repository or an OCI layout, not in an "
                         "archive");
  hoist_loc *l = hoist_loc_dup(loc);
  if (l->kind == HOIST_LOC_REGISTRY) {
    free(l->ref->tag);
    free(l->ref->digest);
    l->ref->digest = NULL;
    l->ref->tag = hoist_strdup(tag);
  } else {
    free(l->tag);
    l->tag = hoist_strdup(tag);
  }
  *out = l;
  return 0;
}

/* The .sig tag of digest: sha256-<hex>.sig. */
static char *sig_tag(const char *digest) {
  const char *colon = strchr(digest, ':');
  return hoist_asprintf("sha256-%s.sig", colon ? colon + 1 : digest);
}

/* The payload's docker-reference: a registry image's repository, a
 * layout's directory. Caller frees. */
static char *docker_reference(const hoist_loc *loc) {
  if (loc->kind == HOIST_LOC_REGISTRY)
    return hoist_ref_repository(loc->ref);
  return hoist_strdup(loc->dir ? loc->dir : "");
}

/* The document loc names: its bytes' descriptor (caller clears). */
static int resolve(hoist_transport_source *src, hoist_descriptor *out, hoist_err **err) {
  _cleanup_free_ char *data = NULL;
  _cleanup_free_ char *mt = NULL;
  size_t len = 0;
  char digest[HOIST_DIGEST_STR_LEN];
  if (src->ops->manifest(src, NULL, &data, &len, &mt, digest, err) < 0)
    return -1;
  memset(out, 0, sizeof *out);
  out->media_type = steal_pointer(&mt);
  out->digest = hoist_strdup(digest);
  out->size = (int64_t)len;
  return 0;
}

/* Stores data in t as a blob, unless t has it. */
static int store_bytes(hoist_transport_target *t, const char *media_type, const char *data,
                       size_t len, hoist_err **err) {
  hoist_descriptor d;
  if (hoist_image_put_bytes(t, media_type, data, len, &d, err) < 0)
    return -1;
  hoist_descriptor_clear(&d);
  return 0;
}

/* The image config cosign writes for a signature manifest: empty but for
 * the layers' digests as diff_ids. Caller frees *out. */
static int sig_config(const json_t *layers, char **out, size_t *len, hoist_err **err) {
  json_t *diff_ids = json_array();
  size_t i;
  json_t *l;
  json_array_foreach(layers, i, l) json_array_append(diff_ids, json_object_get(l, "digest"));
  _cleanup_json_ json_t *c =
      json_pack("{s:s, s:s, s:[{s:s}], s:s, s:{s:s, s:o}, s:{}}", "architecture", "", "created",
                "0001-01-01T00:00:00Z", "history", "created", "0001-01-01T00:00:00Z", "os", "",
                "rootfs", "type", "layers", "diff_ids", diff_ids, "config");
  if (!c)
    return hoist_err_set(err, ENOMEM, "signature config");
  return hoist_json_canonical(c, out, len, err);
}

/* The layers of the manifest at the .sig tag sig_loc names, as JSON (a new
 * array when there is none). */
static int existing_layers(const hoist_transport_opts *t, const hoist_loc *sig_loc, json_t **out,
                           hoist_err **err) {
  *out = NULL;
  _cleanup_transport_source_ hoist_transport_source *src = NULL;
  _cleanup_free_ char *data = NULL;
  _cleanup_free_ char *mt = NULL;
  size_t len = 0;
  char digest[HOIST_DIGEST_STR_LEN];
  hoist_err *e = NULL;
  if (hoist_transport_open_source(t, sig_loc, &src, &e) < 0 ||
      src->ops->manifest(src, NULL, &data, &len, &mt, digest, &e) < 0) {
    if (hoist_err_root_code(e) == ENOENT) {
      hoist_err_free(e);
      *out = json_array();
      return 0;
    }
    if (err && !*err)
      *err = e;
    else
      hoist_err_free(e);
    return -1;
  }
  hoist_sign_entry *entries = NULL;
  size_t n = 0;
  if (hoist_sign_manifest_parse(data, len, &entries, &n, err) < 0)
    return hoist_err_wrap(err, "the signatures already there");
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(a, hoist_descriptor_to_json(&entries[i].layer));
  hoist_sign_entries_free(entries, n);
  *out = a;
  return 0;
}

/* Signs the document subject (in the repository or layout loc names). */
static int sign_one(const hoist_transport_opts *t, const hoist_loc *loc,
                    const hoist_descriptor *subject, const hoist_sign_key *k,
                    const hoist_sign_opts *opts, hoist_sign_result *res, hoist_err **err) {
  _cleanup_free_ char *dref = docker_reference(loc);
  _cleanup_free_ char *payload = NULL;
  _cleanup_free_ char *sig = NULL;
  size_t payload_len = 0;
  if (hoist_sign_payload_make(dref, subject->digest, opts->annotations, &payload, &payload_len,
                              err) < 0 ||
      hoist_sign_bytes(k, payload, payload_len, &sig, err) < 0)
    return -1;
  char payload_digest[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of(payload, payload_len, payload_digest);
  _cleanup_json_ json_t *layer = json_pack(
      "{s:s, s:s, s:I, s:{s:s}}", "mediaType", HOIST_SIGN_PAYLOAD_MT, "digest", payload_digest,
      "size", (json_int_t)payload_len, "annotations", HOIST_SIGN_ANNOTATION, sig);
  _cleanup_json_ json_t *layers = NULL;
  _cleanup_loc_ hoist_loc *at = NULL;
  _cleanup_free_ char *tag = sig_tag(subject->digest);
  if (opts->attach == HOIST_SIGN_ATTACH_TAG) {
    if (loc_at_tag(loc, tag, &at, err) < 0 || existing_layers(t, at, &layers, err) < 0)
      return -1;
    bool dup = false;
    size_t i;
    json_t *l;
    json_array_foreach(layers, i, l) dup = dup || json_equal(l, layer);
    if (!dup)
      json_array_append(layers, layer);
  } else {
    /* The blobs go where the image is; the manifest by digest. */
    if (loc_at_tag(loc, tag, &at, err) < 0)
      return -1;
    layers = json_pack("[O]", layer);
  }

  _cleanup_transport_target_ hoist_transport_target *dst = NULL;
  if (hoist_transport_open_target(t, at, &dst, err) < 0)
    return -1;
  if (store_bytes(dst, HOIST_SIGN_PAYLOAD_MT, payload, payload_len, err) < 0)
    return -1;
  _cleanup_json_ json_t *m = NULL;
  if (opts->attach == HOIST_SIGN_ATTACH_TAG) {
    _cleanup_free_ char *cfg = NULL;
    size_t cfg_len = 0;
    char cfg_digest[HOIST_DIGEST_STR_LEN];
    if (sig_config(layers, &cfg, &cfg_len, err) < 0)
      return -1;
    hoist_sha256_of(cfg, cfg_len, cfg_digest);
    if (store_bytes(dst, HOIST_MT_OCI_CONFIG, cfg, cfg_len, err) < 0)
      return -1;
    m = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:O}", "schemaVersion", 2, "mediaType",
                  HOIST_MT_OCI_MANIFEST, "config", "mediaType", HOIST_MT_OCI_CONFIG, "digest",
                  cfg_digest, "size", (json_int_t)cfg_len, "layers", layers);
  } else {
    if (store_bytes(dst, HOIST_MT_OCI_EMPTY, "{}", 2, err) < 0)
      return -1;
    m = json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:i}, s:O, s:{s:s, s:s, s:I}}", "schemaVersion", 2,
                  "mediaType", HOIST_MT_OCI_MANIFEST, "artifactType", HOIST_SIGN_ARTIFACT_TYPE,
                  "config", "mediaType", HOIST_MT_OCI_EMPTY, "digest", EMPTY_DIGEST, "size", 2,
                  "layers", layers, "subject", "mediaType", subject->media_type, "digest",
                  subject->digest, "size", (json_int_t)subject->size);
  }
  _cleanup_free_ char *doc = NULL;
  size_t doc_len = 0;
  if (!m || hoist_json_canonical(m, &doc, &doc_len, err) < 0)
    return hoist_err_set(err, HOIST_E_FORMAT, "signature manifest cannot be written");
  if (opts->attach == HOIST_SIGN_ATTACH_TAG) {
    if (dst->ops->put_manifest(dst, NULL, doc, doc_len, HOIST_MT_OCI_MANIFEST, err) < 0 ||
        hoist_transport_commit(dst, err) < 0)
      return hoist_err_wrap(err, "store signature manifest");
    hoist_sha256_of(doc, doc_len, res->manifest);
    free(res->stored);
    res->stored = hoist_loc_string(at);
  } else {
    if (hoist_transport_commit(dst, err) < 0)
      return -1;
    hoist_transport_target_free(steal_pointer(&dst));
    if (hoist_image_referrer_put(t, loc, doc, doc_len, res->manifest, err) < 0)
      return hoist_err_wrap(err, "store signature referrer");
    free(res->stored);
    _cleanup_free_ char *where = hoist_loc_string(loc);
    res->stored = hoist_asprintf("referrer %s of %s", res->manifest, where);
  }
  res->signatures = json_array_size(layers);
  res->images++;
  return 0;
}

int hoist_sign_image(const hoist_transport_opts *t, const hoist_loc *loc, const hoist_sign_key *k,
                     const hoist_sign_opts *opts, hoist_sign_result *res, hoist_err **err) {
  memset(res, 0, sizeof *res);
  hoist_sign_opts none = {0};
  if (!opts)
    opts = &none;
  _cleanup_free_ char *where = hoist_loc_string(loc);
  if (loc->kind != HOIST_LOC_REGISTRY && loc->kind != HOIST_LOC_LAYOUT)
    return hoist_err_set(
        err, EINVAL, "sign %s: signatures live in a registry repository or an OCI layout", where);
  if (loc->kind == HOIST_LOC_LAYOUT && !loc->tag)
    return hoist_err_set(err, EINVAL, "sign %s: name the layout's image with a tag (oci:DIR:TAG)",
                         where);
  _cleanup_transport_source_ hoist_transport_source *src = NULL;
  hoist_descriptor subject = {0};
  if (hoist_transport_open_source(t, loc, &src, err) < 0 || resolve(src, &subject, err) < 0)
    return hoist_err_wrap(err, "sign %s", where);
  memcpy(res->digest, subject.digest, sizeof res->digest);
  res->docker_reference = docker_reference(loc);
  int r = sign_one(t, loc, &subject, k, opts, res, err);
  if (r == 0 && opts->recursive && hoist_media_kind_of(subject.media_type) == HOIST_MEDIA_INDEX) {
    _cleanup_free_ char *data = NULL;
    _cleanup_free_ char *mt = NULL;
    size_t len = 0;
    char d[HOIST_DIGEST_STR_LEN];
    _cleanup_index_ hoist_index *ix = NULL;
    hoist_sign_result child = {0};
    r = src->ops->manifest(src, subject.digest, &data, &len, &mt, d, err);
    if (r == 0)
      r = hoist_index_parse(data, len, &ix, err);
    for (size_t i = 0; r == 0 && i < ix->n_manifests; i++) {
      /* BuildKit's attestation manifests are covered by the index's own */
      const char *type =
          hoist_descriptor_annotation(&ix->manifests[i], "vnd.docker.reference.type");
      if (type && strcmp(type, "attestation-manifest") == 0)
        continue;
      child.images = 0;
      r = sign_one(t, loc, &ix->manifests[i], k, opts, &child, err);
      res->images += child.images;
    }
    hoist_sign_result_clear(&child);
  }
  hoist_descriptor_clear(&subject);
  if (r < 0)
    return hoist_err_wrap(err, "sign %s", where);
  return 0;
}

void hoist_sign_result_clear(hoist_sign_result *res) {
  free(res->docker_reference);
  free(res->stored);
  res->docker_reference = res->stored = NULL;
}

/* ---------------------------------------------------------------- verify */

/* Puts e in *err (or frees it when *err is taken); returns -code. */
static int take_err(hoist_err **err, hoist_err *e) {
  int code = e ? e->code : EIO;
  if (err && !*err)
    *err = e;
  else
    hoist_err_free(e);
  return -code;
}

/* Why no signature verified so far, the worst-ranked kept. */
typedef enum {
  WHY_NONE = 0,   /* no signature found */
  WHY_MALFORMED,  /* a signature manifest or payload that does not parse */
  WHY_BAD_SIG,    /* a signature that does not verify with the key */
  WHY_OTHER_IMAGE /* a good signature of another digest */
} why_rank;

typedef struct verify_state {
  const hoist_sign_key *k;
  const char *digest; /* the image's */
  why_rank rank;
  char *why; /* the message of the best-ranked failure */
  hoist_sign_verified *res;
} verify_state;

static void note(verify_state *st, why_rank rank, char *msg) {
  if (rank >= st->rank) {
    free(st->why);
    st->why = msg;
    st->rank = rank;
  } else {
    free(msg);
  }
}

static void note_err(verify_state *st, why_rank rank, const char *where, hoist_err *e) {
  _cleanup_free_ char *text = hoist_err_text(e);
  hoist_err_free(e);
  note(st, rank, hoist_asprintf("%s: %s", where, text));
}

/* Checks the signatures of the manifest data (read at where), their
 * payloads read from src. Returns 1 when one verified (res filled), 0 when
 * none did (st says why), -1 on an error that is not the signature's (a
 * registry out of reach). */
static int check_manifest(verify_state *st, hoist_transport_source *src, const char *data,
                          size_t len, const char *where, hoist_err **err) {
  hoist_sign_entry *entries = NULL;
  size_t n = 0;
  hoist_err *e = NULL;
  if (hoist_sign_manifest_parse(data, len, &entries, &n, &e) < 0) {
    note_err(st, WHY_MALFORMED, where, e);
    return 0;
  }
  int found = 0;
  for (size_t i = 0; i < n && !found; i++) {
    st->res->checked++;
    _cleanup_free_ char *payload = NULL;
    size_t plen = 0;
    const hoist_descriptor *l = &entries[i].layer;
    if (src->ops->blob(src, l->digest, HOIST_SIGN_PAYLOAD_MAX, &payload, &plen, &e) < 0) {
      int code = hoist_err_root_code(e);
      if (code != HOIST_E_DIGEST && code != HOIST_E_LIMIT && code != ENOENT) {
        hoist_err_free(e);
        found = hoist_err_set(err, code, "%s: payload %s cannot be read", where, l->digest);
        break;
      }
      note_err(st, WHY_MALFORMED, where, e);
      continue;
    }
    if ((int64_t)plen != l->size) {
      note(st, WHY_MALFORMED,
           hoist_asprintf("%s: payload %s is %zu bytes, its layer says %lld", where, l->digest,
                          plen, (long long)l->size));
      continue;
    }
    if (hoist_sign_verify_bytes(st->k, payload, plen, entries[i].signature, &e) < 0) {
      note_err(st, WHY_BAD_SIG, where, e);
      continue;
    }
    hoist_sign_payload p = {0};
    if (hoist_sign_payload_parse(payload, plen, &p, &e) < 0) {
      note_err(st, WHY_MALFORMED, where, e);
      continue;
    }
    if (strcmp(p.digest, st->digest) != 0) {
      note(st, WHY_OTHER_IMAGE,
           hoist_asprintf("%s: the signature verifies with this key but signs %s, another "
                          "image's digest, not %s",
                          where, p.digest, st->digest));
      hoist_sign_payload_clear(&p);
      continue;
    }
    memcpy(st->res->digest, st->digest, sizeof st->res->digest);
    st->res->docker_reference = steal_pointer(&p.docker_reference);
    st->res->optional = steal_pointer(&p.optional);
    st->res->where = hoist_strdup(where);
    hoist_sign_payload_clear(&p);
    found = 1;
  }
  hoist_sign_entries_free(entries, n);
  return found;
}

int hoist_sign_verify_image(const hoist_transport_opts *t, const hoist_loc *loc,
                            const hoist_sign_key *k, hoist_sign_verified *res, hoist_err **err) {
  memset(res, 0, sizeof *res);
  _cleanup_free_ char *where = hoist_loc_string(loc);
  if (loc->kind != HOIST_LOC_REGISTRY && loc->kind != HOIST_LOC_LAYOUT)
    return hoist_err_set(
        err, EINVAL, "verify %s: signatures live in a registry repository or an OCI layout", where);
  _cleanup_transport_source_ hoist_transport_source *src = NULL;
  hoist_descriptor subject = {0};
  if (hoist_transport_open_source(t, loc, &src, err) < 0 || resolve(src, &subject, err) < 0)
    return hoist_err_wrap(err, "verify %s", where);
  verify_state st = {.k = k, .digest = subject.digest, .res = res};
  int r = 0;

  /* The .sig tag. */
  _cleanup_free_ char *tag = sig_tag(subject.digest);
  _cleanup_loc_ hoist_loc *at = NULL;
  _cleanup_transport_source_ hoist_transport_source *sig_src = NULL;
  _cleanup_free_ char *data = NULL;
  _cleanup_free_ char *mt = NULL;
  size_t len = 0;
  char d[HOIST_DIGEST_STR_LEN];
  hoist_err *e = NULL;
  if ((r = loc_at_tag(loc, tag, &at, err)) == 0) {
    _cleanup_free_ char *at_s = hoist_loc_string(at);
    _cleanup_free_ char *at_where = hoist_asprintf("tag %s", at_s);
    if (hoist_transport_open_source(t, at, &sig_src, &e) < 0 ||
        sig_src->ops->manifest(sig_src, NULL, &data, &len, &mt, d, &e) < 0) {
      if (hoist_err_root_code(e) == ENOENT)
        hoist_err_free(e);
      else
        r = take_err(err, e);
    } else {
      r = check_manifest(&st, sig_src, data, len, at_where, err);
    }
  }

  /* The referrers. */
  if (r == 0) {
    _cleanup_index_ hoist_index *ix = NULL;
    if (hoist_image_referrers(t, loc, subject.digest, HOIST_SIGN_ARTIFACT_TYPE, &ix, &e) < 0) {
      note_err(&st, WHY_NONE, "referrers", e);
    } else {
      for (size_t i = 0; r == 0 && i < ix->n_manifests; i++) {
        _cleanup_free_ char *rdata = NULL;
        _cleanup_free_ char *rmt = NULL;
        size_t rlen = 0;
        _cleanup_free_ char *rwhere = hoist_asprintf("referrer %s", ix->manifests[i].digest);
        if (src->ops->manifest(src, ix->manifests[i].digest, &rdata, &rlen, &rmt, d, &e) < 0) {
          note_err(&st, WHY_MALFORMED, rwhere, e);
          continue;
        }
        r = check_manifest(&st, src, rdata, rlen, rwhere, err);
      }
    }
  }

  int ret = 0;
  if (r < 0) {
    ret = hoist_err_wrap(err, "verify %s", where);
  } else if (r == 0) {
    if (st.rank == WHY_NONE)
      ret = hoist_err_set(err, HOIST_E_DIGEST,
                          "verify %s: no signature found for %s (looked at the tag %s and the "
                          "image's referrers)",
                          where, subject.digest, tag);
    else
      ret = hoist_err_set(err, HOIST_E_DIGEST, "verify %s: %s (%zu signature%s checked)", where,
                          st.why, res->checked, res->checked == 1 ? "" : "s");
    hoist_sign_verified_clear(res);
  }
  free(st.why);
  hoist_descriptor_clear(&subject);
  return ret;
}

void hoist_sign_verified_clear(hoist_sign_verified *v) {
  free(v->docker_reference);
  free(v->where);
  json_decref(v->optional);
  size_t checked = v->checked;
  memset(v, 0, sizeof *v);
  v->checked = checked;
}
