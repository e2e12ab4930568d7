/* Image indexes: OCI image index, Docker manifest list, and the index.json
 * of an OCI image layout (which may have no mediaType). */
#include <errno.h>
#include <string.h>

#include "oci-private.h"

HOIST_WUR static int index_from_json(json_t *root, hoist_index **out, hoist_err **err) {
  int r;
  if ((r = oci_schema_version(root, err)) < 0)
    return r;
  const char *mt;
  if ((r = oci_document_media_type(root, HOIST_MEDIA_INDEX, &mt, err)) < 0)
    return r;
  if (!mt && (json_object_get(root, "config") || json_object_get(root, "layers")))
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "document has \"config\" or \"layers\": an image manifest, not an index");
  _cleanup_index_ hoist_index *ix = hoist_index_new(mt);
  if ((r = oci_descriptors_from_json(root, "manifests", &ix->manifests, &ix->n_manifests, err)) < 0)
    return r;
  if ((r = oci_annotations(root, &ix->annotations, err)) < 0)
    return r;
  *out = steal_pointer(&ix);
  return 0;
}

int hoist_index_parse(const char *data, size_t len, hoist_index **out, hoist_err **err) {
  *out = NULL;
  _cleanup_json_ json_t *root = NULL;
  int r = oci_json_load(data, len, &root, err);
  if (r < 0 || (r = index_from_json(root, out, err)) < 0)
    return hoist_err_wrap(err, "index");
  return 0;
}

static json_t *index_to_json(const hoist_index *ix, hoist_err **err) {
  _cleanup_json_ json_t *o = oci_document_new();
  if (ix->media_type && !oci_set_string(o, "mediaType", ix->media_type))
    return hoist_err_set(err, HOIST_E_FORMAT, "mediaType cannot be encoded"), NULL;
  if (oci_descriptors_to_json(o, "manifests", ix->manifests, ix->n_manifests, err) < 0)
    return NULL;
  if (ix->annotations && !oci_set_new(o, "annotations", json_deep_copy(ix->annotations)))
    abort();
  return steal_pointer(&o);
}

HOIST_WUR static int index_check(const char *data, size_t len, hoist_err **err) {
  _cleanup_index_ hoist_index *ix = NULL;
  return hoist_index_parse(data, len, &ix, err);
}

int hoist_index_to_json(const hoist_index *ix, char **out, size_t *len, hoist_err **err) {
  return oci_document_emit(index_to_json(ix, err), "index", index_check, out, len, err);
}

hoist_index *hoist_index_new(const char *media_type) {
  hoist_index *ix = hoist_malloc0(sizeof *ix);
  ix->schema_version = 2;
  ix->media_type = media_type ? hoist_strdup(media_type) : NULL;
  return ix;
}

void hoist_index_add(hoist_index *ix, const hoist_descriptor *d) {
  hoist_descriptor *m = hoist_reallocarray(ix->manifests, ix->n_manifests + 1, sizeof *m);
  ix->manifests = m;
  hoist_descriptor_copy(&ix->manifests[ix->n_manifests++], d);
}

void hoist_index_remove(hoist_index *ix, size_t i) {
  if (i >= ix->n_manifests)
    return;
  hoist_descriptor_clear(&ix->manifests[i]);
  memmove(&ix->manifests[i], &ix->manifests[i + 1],
          (ix->n_manifests - i - 1) * sizeof *ix->manifests);
  ix->n_manifests--;
}

const hoist_descriptor *hoist_index_find_platform(const hoist_index *ix,
                                                  const hoist_platform *want) {
  for (size_t i = 0; ix && i < ix->n_manifests; i++)
    if (ix->manifests[i].platform && hoist_platform_match(want, ix->manifests[i].platform))
      return &ix->manifests[i];
  return NULL;
}

void hoist_index_free(hoist_index *ix) {
  if (!ix)
    return;
  free(ix->media_type);
  for (size_t i = 0; i < ix->n_manifests; i++)
    hoist_descriptor_clear(&ix->manifests[i]);
  free(ix->manifests);
  json_decref(ix->annotations);
  free(ix);
}
