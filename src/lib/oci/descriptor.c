/* Descriptors: a typed, sized, digested pointer to content. */
#include <errno.h>
#include <string.h>

#include "oci-private.h"

int hoist_descriptor_from_json(json_t *j, hoist_descriptor *out, hoist_err **err) {
  memset(out, 0, sizeof *out);
  if (!json_is_object(j))
    return hoist_err_set(err, HOIST_E_FORMAT, "descriptor must be an object");
  hoist_descriptor d = {0};
  const char *mt, *digest, *at;
  int r;
  if ((r = oci_req_string(j, "mediaType", &mt, err)) < 0)
    return r;
  if (!oci_media_type_valid(mt))
    return hoist_err_set(err, HOIST_E_FORMAT, "mediaType \"%.80s\" is not a valid media type", mt);
  if ((r = oci_req_string(j, "digest", &digest, err)) < 0)
    return r;
  if ((r = hoist_digest_parse(digest, NULL, err)) < 0)
    return hoist_err_wrap(err, "digest");
  json_t *size = json_object_get(j, "size");
  if (!size)
    return hoist_err_set(err, HOIST_E_FORMAT, "size is missing");
  if (!json_is_integer(size) || json_integer_value(size) < 0)
    return hoist_err_set(err, HOIST_E_FORMAT, "size must be a non-negative integer");
  if ((r = oci_opt_string(j, "artifactType", &at, err)) < 0)
    return r;
  if (at && !oci_media_type_valid(at))
    return hoist_err_set(err, HOIST_E_FORMAT, "artifactType \"%.80s\" is not a valid media type",
                         at);
  json_t *ann = json_object_get(j, "annotations");
  if (ann && !json_is_null(ann) && (r = oci_check_string_map(ann, "annotations", err)) < 0)
    return r;
  json_t *urls = json_object_get(j, "urls");
  json_t *platform = json_object_get(j, "platform");

  d.media_type = hoist_strdup(mt);
  d.digest = hoist_strdup(digest);
  d.size = json_integer_value(size);
  d.artifact_type = at ? hoist_strdup(at) : NULL;
  if (ann && !json_is_null(ann)) {
    d.annotations = json_deep_copy(ann);
    if (!d.annotations)
      abort();
  }
  if (urls && !json_is_null(urls) && (r = oci_strv_from_json(urls, "urls", &d.urls, err)) < 0)
    goto fail;
  if (platform && !json_is_null(platform) &&
      (r = hoist_platform_from_json(platform, &d.platform, err)) < 0)
    goto fail;
  *out = d;
  return 0;
fail:
  hoist_descriptor_clear(&d);
  return r;
}

json_t *hoist_descriptor_to_json(const hoist_descriptor *d) {
  if (!d || !d->media_type || !d->digest || d->size < 0)
    return NULL;
  json_t *o = json_object();
  if (!o)
    abort();
  bool ok = oci_set_string(o, "mediaType", d->media_type) &&
            oci_set_string(o, "digest", d->digest) &&
            oci_set_new(o, "size", json_integer(d->size)) &&
            (!d->urls || oci_set_new(o, "urls", oci_strv_to_json(d->urls))) &&
            (!d->annotations || oci_set_new(o, "annotations", json_deep_copy(d->annotations))) &&
            (!d->platform || oci_set_new(o, "platform", hoist_platform_to_json(d->platform))) &&
            (!d->artifact_type || oci_set_string(o, "artifactType", d->artifact_type));
  if (!ok) {
    json_decref(o);
    return NULL;
  }
  return o;
}

int oci_descriptors_from_json(const json_t *root, const char *key, hoist_descriptor **v, size_t *n,
                              hoist_err **err) {
  json_t *a = json_object_get(root, key);
  if (!a || json_is_null(a))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s is missing", key);
  if (!json_is_array(a))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s must be an array", key);
  size_t count = json_array_size(a);
  *v = hoist_calloc(count ? count : 1, sizeof **v);
  for (size_t i = 0; i < count; i++) {
    int r = hoist_descriptor_from_json(json_array_get(a, i), &(*v)[i], err);
    if (r < 0)
      return hoist_err_wrap(err, "%s[%zu]", key, i);
    *n = i + 1;
  }
  return 0;
}

int oci_descriptors_to_json(json_t *o, const char *key, const hoist_descriptor *v, size_t n,
                            hoist_err **err) {
  json_t *a = json_array();
  if (!a || json_object_set_new(o, key, a) < 0)
    abort();
  for (size_t i = 0; i < n; i++)
    if (json_array_append_new(a, hoist_descriptor_to_json(&v[i])) < 0)
      return hoist_err_set(err, HOIST_E_FORMAT, "%s[%zu]: incomplete or not encodable", key, i);
  return 0;
}

void hoist_descriptor_of_bytes(hoist_descriptor *out, const char *media_type, const void *data,
                               size_t len) {
  char digest[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of(data, len, digest);
  memset(out, 0, sizeof *out);
  out->media_type = hoist_strdup(media_type);
  out->digest = hoist_strdup(digest);
  out->size = (int64_t)len;
}

void hoist_descriptor_copy(hoist_descriptor *out, const hoist_descriptor *d) {
  memset(out, 0, sizeof *out);
  out->media_type = d->media_type ? hoist_strdup(d->media_type) : NULL;
  out->digest = d->digest ? hoist_strdup(d->digest) : NULL;
  out->size = d->size;
  out->urls = oci_strv_dup(d->urls);
  if (d->annotations) {
    out->annotations = json_deep_copy(d->annotations);
    if (!out->annotations)
      abort();
  }
  out->platform = hoist_platform_dup(d->platform);
  out->artifact_type = d->artifact_type ? hoist_strdup(d->artifact_type) : NULL;
}

void hoist_descriptor_clear(hoist_descriptor *d) {
  if (!d)
    return;
  free(d->media_type);
  free(d->digest);
  oci_strv_free(d->urls);
  json_decref(d->annotations);
  hoist_platform_free(d->platform);
  free(d->artifact_type);
  memset(d, 0, sizeof *d);
}

const char *hoist_descriptor_annotation(const hoist_descriptor *d, const char *key) {
  if (!d || !d->annotations || !key)
    return NULL;
  return json_string_value(json_object_get(d->annotations, key));
}

int hoist_descriptor_set_annotation(hoist_descriptor *d, const char *key, const char *value,
                                    hoist_err **err) {
  if (!key || !*key)
    return hoist_err_set(err, EINVAL, "annotation: empty key");
  if (!value) {
    if (d->annotations)
      json_object_del(d->annotations, key);
    return 0;
  }
  json_t *v = json_string(value);
  if (!v)
    return hoist_err_set(err, HOIST_E_FORMAT, "annotation %.80s: value is not valid UTF-8", key);
  if (!d->annotations) {
    d->annotations = json_object();
    if (!d->annotations)
      abort();
  }
  if (json_object_set_new(d->annotations, key, v) < 0)
    return hoist_err_set(err, HOIST_E_FORMAT, "annotation: key is not valid UTF-8");
  return 0;
}
