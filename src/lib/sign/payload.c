/* sign formats: cosign's simple-signing payload and the signature manifest,
 * made and parsed (the parsers take untrusted bytes, bounded). */
#include <errno.h>
#include <string.h>

#include "hoist/limits.h"
#include "hoist/sign.h"

int hoist_sign_payload_make(const char *docker_reference, const char *digest,
                            const json_t *annotations, char **out, size_t *len, hoist_err **err) {
  *out = NULL;
  if (!hoist_digest_valid(digest))
    return hoist_err_set(err, EINVAL, "payload: %s is not a digest", digest);
  if (annotations && !json_is_object(annotations))
    return hoist_err_set(err, EINVAL, "payload: annotations must be an object");
  _cleanup_json_ json_t *p = json_pack(
      "{s:{s:{s:s}, s:{s:s}, s:s}, s:O}", "critical", "identity", "docker-reference",
      docker_reference, "image", "docker-manifest-digest", digest, "type", HOIST_SIGN_PAYLOAD_TYPE,
      "optional", annotations ? (json_t *)annotations : json_null());
  if (!p)
    return hoist_err_set(err, HOIST_E_FORMAT, "payload: reference is not valid UTF-8");
  if (hoist_json_canonical(p, out, len, err) < 0)
    return hoist_err_wrap(err, "payload");
  return 0;
}

/* The string member key of object o, or NULL (when absent or another type). */
static const char *str_at(const json_t *o, const char *key) {
  return json_string_value(json_object_get(o, key));
}

int hoist_sign_payload_parse(const char *data, size_t len, hoist_sign_payload *out,
                             hoist_err **err) {
  memset(out, 0, sizeof *out);
  if (len > HOIST_SIGN_PAYLOAD_MAX)
    return hoist_err_set(err, HOIST_E_LIMIT,
                         "malformed payload: longer than HOIST_SIGN_PAYLOAD_MAX (%u bytes)",
                         HOIST_SIGN_PAYLOAD_MAX);
  json_error_t je;
  _cleanup_json_ json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
  if (!j)
    return hoist_err_set(err, HOIST_E_FORMAT, "malformed payload: %s (offset %d)", je.text,
                         je.position);
  if (!json_is_object(j))
    return hoist_err_set(err, HOIST_E_FORMAT, "malformed payload: not a JSON object");
  json_t *critical = json_object_get(j, "critical");
  if (!json_is_object(critical))
    return hoist_err_set(err, HOIST_E_FORMAT, "malformed payload: no \"critical\" object");
  const char *type = str_at(critical, "type");
  if (!type)
    return hoist_err_set(err, HOIST_E_FORMAT, "malformed payload: no critical.type");
  if (strcmp(type, HOIST_SIGN_PAYLOAD_TYPE) != 0)
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "malformed payload: critical.type is not \"" HOIST_SIGN_PAYLOAD_TYPE "\"");
  json_t *image = json_object_get(critical, "image");
  const char *digest = json_is_object(image) ? str_at(image, "docker-manifest-digest") : NULL;
  if (!digest)
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "malformed payload: no critical.image.docker-manifest-digest");
  if (!hoist_digest_valid(digest))
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "malformed payload: critical.image.docker-manifest-digest is not a "
                         "sha256 digest");
  json_t *identity = json_object_get(critical, "identity");
  const char *dref = json_is_object(identity) ? str_at(identity, "docker-reference") : NULL;
  if (!dref)
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "malformed payload: no critical.identity.docker-reference");
  json_t *optional = json_object_get(j, "optional");
  if (optional && !json_is_null(optional) && !json_is_object(optional))
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "malformed payload: \"optional\" is neither null nor an object");
  out->docker_reference = hoist_strdup(dref);
  out->digest = hoist_strdup(digest);
  out->optional = json_is_object(optional) ? json_incref(optional) : NULL;
  return 0;
}

void hoist_sign_payload_clear(hoist_sign_payload *p) {
  free(p->docker_reference);
  free(p->digest);
  json_decref(p->optional);
  memset(p, 0, sizeof *p);
}

int hoist_sign_manifest_parse(const char *data, size_t len, hoist_sign_entry **out, size_t *n,
                              hoist_err **err) {
  *out = NULL;
  *n = 0;
  _cleanup_manifest_ hoist_manifest *m = NULL;
  if (hoist_manifest_parse(data, len, &m, err) < 0)
    return hoist_err_wrap(err, "malformed signature manifest");
  if (strcmp(m->media_type, HOIST_MT_OCI_MANIFEST) != 0)
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "malformed signature manifest: media type %s, not an OCI manifest",
                         m->media_type);
  if (m->n_layers > HOIST_SIGN_LAYERS_MAX)
    return hoist_err_set(err, HOIST_E_LIMIT,
                         "signature manifest: %zu layers, more than HOIST_SIGN_LAYERS_MAX (%u)",
                         m->n_layers, HOIST_SIGN_LAYERS_MAX);
  if (m->n_layers == 0)
    return hoist_err_set(err, HOIST_E_FORMAT, "malformed signature manifest: no layers");
  hoist_sign_entry *e = hoist_calloc(m->n_layers, sizeof *e);
  size_t i = 0;
  int r = 0;
  for (; i < m->n_layers; i++) {
    const hoist_descriptor *l = &m->layers[i];
    const char *sig = hoist_descriptor_annotation(l, HOIST_SIGN_ANNOTATION);
    if (strcmp(l->media_type, HOIST_SIGN_PAYLOAD_MT) != 0)
      r = hoist_err_set(
          err, HOIST_E_FORMAT,
          "malformed signature manifest: layer %zu is a %s, not a payload (" HOIST_SIGN_PAYLOAD_MT
          ")",
          i, l->media_type);
    else if (l->size > (int64_t)HOIST_SIGN_PAYLOAD_MAX)
      r = hoist_err_set(err, HOIST_E_LIMIT,
                        "signature manifest: layer %zu is %lld bytes, more than "
                        "HOIST_SIGN_PAYLOAD_MAX (%u)",
                        i, (long long)l->size, HOIST_SIGN_PAYLOAD_MAX);
    else if (!sig || !sig[0])
      r = hoist_err_set(
          err, HOIST_E_FORMAT,
          "malformed signature manifest: layer %zu has no " HOIST_SIGN_ANNOTATION " annotation", i);
    else if (strlen(sig) > HOIST_SIGN_SIGNATURE_MAX)
      r = hoist_err_set(err, HOIST_E_LIMIT,
                        "signature manifest: layer %zu's signature is longer than "
                        "HOIST_SIGN_SIGNATURE_MAX (%u characters)",
                        i, HOIST_SIGN_SIGNATURE_MAX);
    if (r < 0)
      break;
    hoist_descriptor_copy(&e[i].layer, l);
    e[i].signature = hoist_strdup(sig);
  }
  if (r < 0) {
    hoist_sign_entries_free(e, i);
    return r;
  }
  *out = e;
  *n = m->n_layers;
  return 0;
}

void hoist_sign_entries_free(hoist_sign_entry *e, size_t n) {
  if (!e)
    return;
  for (size_t i = 0; i < n; i++) {
    hoist_descriptor_clear(&e[i].layer);
    free(e[i].signature);
  }
  free(e);
}
