/* Image manifests: OCI image manifest and Docker image manifest schema 2. */
#include <errno.h>
#include <string.h>

#include "oci-private.h"

int oci_schema_version(const json_t *root, hoist_err **err) {
  json_t *sv = json_object_get(root, "schemaVersion");
  if (!sv)
    return hoist_err_set(err, HOIST_E_FORMAT, "schemaVersion is missing");
  if (!json_is_integer(sv) || json_integer_value(sv) != 2)
    return hoist_err_set(err, HOIST_E_FORMAT, "schemaVersion must be 2");
  return 0;
}

int oci_annotations(const json_t *root, json_t **out, hoist_err **err) {
  *out = NULL;
  json_t *ann = json_object_get(root, "annotations");
  if (!ann || json_is_null(ann))
    return 0;
  int r = oci_check_string_map(ann, "annotations", err);
  if (r < 0)
    return r;
  *out = json_deep_copy(ann);
  if (!*out)
    abort();
  return 0;
}

HOIST_WUR static int manifest_from_json(json_t *root, hoist_manifest **out, hoist_err **err) {
  int r;
  if ((r = oci_schema_version(root, err)) < 0)
    return r;
  const char *mt;
  if ((r = oci_document_media_type(root, HOIST_MEDIA_MANIFEST, &mt, err)) < 0)
    return r;
  if (!mt && json_object_get(root, "manifests") && !json_object_get(root, "config"))
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "document has \"manifests\": an image index, not a manifest");

  _cleanup_manifest_ hoist_manifest *m = hoist_manifest_new(mt);
  json_t *config = json_object_get(root, "config");
  if (!config || json_is_null(config))
    return hoist_err_set(err, HOIST_E_FORMAT, "config is missing");
  if ((r = hoist_descriptor_from_json(config, &m->config, err)) < 0)
    return hoist_err_wrap(err, "config");

  if ((r = oci_descriptors_from_json(root, "layers", &m->layers, &m->n_layers, err)) < 0)
    return r;

  if ((r = oci_annotations(root, &m->annotations, err)) < 0)
    return r;
  json_t *subject = json_object_get(root, "subject");
  if (subject && !json_is_null(subject)) {
    m->subject = hoist_malloc0(sizeof *m->subject);
    if ((r = hoist_descriptor_from_json(subject, m->subject, err)) < 0)
      return hoist_err_wrap(err, "subject");
  }
  const char *at;
  if ((r = oci_opt_string(root, "artifactType", &at, err)) < 0)
    return r;
  if (at && !oci_media_type_valid(at))
    return hoist_err_set(err, HOIST_E_FORMAT, "artifactType \"%.80s\" is not a valid media type",
                         at);
  m->artifact_type = at ? hoist_strdup(at) : NULL;
  *out = steal_pointer(&m);
  return 0;
}

int hoist_manifest_check_image(const hoist_manifest *m, hoist_err **err) {
  if (hoist_media_kind_of(m->config.media_type) != HOIST_MEDIA_CONFIG) {
    if (m->artifact_type)
      return hoist_err_set(err, HOIST_E_FORMAT, "an artifact of type %.100s, not an image",
                           m->artifact_type);
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "config: mediaType \"%.100s\" is not an image config (hoist handles %s "
                         "and %s)",
                         m->config.media_type, HOIST_MT_OCI_CONFIG, HOIST_MT_DOCKER_CONFIG);
  }
  for (size_t i = 0; i < m->n_layers; i++)
    if (hoist_media_kind_of(m->layers[i].media_type) != HOIST_MEDIA_LAYER)
      return hoist_err_set(
          err, HOIST_E_FORMAT,
          "layers[%zu]: unsupported layer media type \"%.100s\" (hoist handles OCI "
          "tar, tar+gzip and tar+zstd layers, their nondistributable forms, and "
          "Docker rootfs and foreign layers)",
          i, m->layers[i].media_type);
  return 0;
}

int hoist_manifest_parse_image(const char *data, size_t len, hoist_manifest **out,
                               hoist_err **err) {
  int r = hoist_manifest_parse(data, len, out, err);
  if (r < 0 || (r = hoist_manifest_check_image(*out, err)) == 0)
    return r;
  hoist_manifest_free(steal_pointer(out));
  return hoist_err_wrap(err, "manifest");
}

int hoist_manifest_parse(const char *data, size_t len, hoist_manifest **out, hoist_err **err) {
  *out = NULL;
  _cleanup_json_ json_t *root = NULL;
  int r = oci_json_load(data, len, &root, err);
  if (r < 0 || (r = manifest_from_json(root, out, err)) < 0)
    return hoist_err_wrap(err, "manifest");
  return 0;
}

static json_t *manifest_to_json(const hoist_manifest *m, hoist_err **err) {
  _cleanup_json_ json_t *o = oci_document_new();
  if (!oci_set_string(o, "mediaType", m->media_type ? m->media_type : HOIST_MT_OCI_MANIFEST))
    return hoist_err_set(err, HOIST_E_FORMAT, "mediaType cannot be encoded"), NULL;
  if (!oci_set_new(o, "config", hoist_descriptor_to_json(&m->config)))
    return hoist_err_set(err, HOIST_E_FORMAT, "config: incomplete or not encodable"), NULL;
  if (oci_descriptors_to_json(o, "layers", m->layers, m->n_layers, err) < 0)
    return NULL;
  if (m->annotations && !oci_set_new(o, "annotations", json_deep_copy(m->annotations)))
    abort();
  if (m->subject && !oci_set_new(o, "subject", hoist_descriptor_to_json(m->subject)))
    return hoist_err_set(err, HOIST_E_FORMAT, "subject: incomplete or not encodable"), NULL;
  if (m->artifact_type && !oci_set_string(o, "artifactType", m->artifact_type))
    return hoist_err_set(err, HOIST_E_FORMAT, "artifactType cannot be encoded"), NULL;
  return steal_pointer(&o);
}

/* hoist writes images only: what it emits must parse as one. */
HOIST_WUR static int manifest_check(const char *data, size_t len, hoist_err **err) {
  _cleanup_manifest_ hoist_manifest *m = NULL;
  return hoist_manifest_parse_image(data, len, &m, err);
}

int hoist_manifest_to_json(const hoist_manifest *m, char **out, size_t *len, hoist_err **err) {
  return oci_document_emit(manifest_to_json(m, err), "manifest", manifest_check, out, len, err);
}

void hoist_manifest_add_layer(hoist_manifest *m, const hoist_descriptor *layer) {
  hoist_descriptor *l = hoist_reallocarray(m->layers, m->n_layers + 1, sizeof *l);
  m->layers = l;
  hoist_descriptor_copy(&m->layers[m->n_layers++], layer);
}

hoist_manifest *hoist_manifest_new(const char *media_type) {
  hoist_manifest *m = hoist_malloc0(sizeof *m);
  m->schema_version = 2;
  m->media_type = hoist_strdup(media_type ? media_type : HOIST_MT_OCI_MANIFEST);
  return m;
}

void hoist_manifest_free(hoist_manifest *m) {
  if (!m)
    return;
  free(m->media_type);
  hoist_descriptor_clear(&m->config);
  for (size_t i = 0; i < m->n_layers; i++)
    hoist_descriptor_clear(&m->layers[i]);
  free(m->layers);
  json_decref(m->annotations);
  if (m->subject) {
    hoist_descriptor_clear(m->subject);
    free(m->subject);
  }
  free(m->artifact_type);
  free(m);
}

const char *hoist_manifest_detect(const char *data, size_t len) {
  _cleanup_json_ json_t *root = NULL;
  if (oci_json_load(data, len, &root, NULL) < 0)
    return NULL;
  json_t *mt = json_object_get(root, "mediaType");
  if (mt) {
    static const char *const known[] = {HOIST_MT_OCI_MANIFEST, HOIST_MT_DOCKER_MANIFEST,
                                        HOIST_MT_OCI_INDEX, HOIST_MT_DOCKER_LIST};
    const char *s = json_string_value(mt);
    for (size_t i = 0; s && i < sizeof known / sizeof known[0]; i++)
      if (strcmp(s, known[i]) == 0)
        return known[i];
    return NULL;
  }
  if (json_object_get(root, "manifests"))
    return HOIST_MT_OCI_INDEX;
  if (json_object_get(root, "config"))
    return HOIST_MT_OCI_MANIFEST;
  return NULL;
}
