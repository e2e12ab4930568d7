/* Media types hoist knows: what kind of document or blob each one names. */
#include <string.h>

#include "oci-private.h"

static const struct {
  const char *type;
  hoist_media_kind kind;
  int compression; /* layers only */
} media_types[] = {
    {HOIST_MT_OCI_MANIFEST, HOIST_MEDIA_MANIFEST, -1},
    {HOIST_MT_DOCKER_MANIFEST, HOIST_MEDIA_MANIFEST, -1},
    {HOIST_MT_OCI_INDEX, HOIST_MEDIA_INDEX, -1},
    {HOIST_MT_DOCKER_LIST, HOIST_MEDIA_INDEX, -1},
    {HOIST_MT_OCI_CONFIG, HOIST_MEDIA_CONFIG, -1},
    {HOIST_MT_DOCKER_CONFIG, HOIST_MEDIA_CONFIG, -1},
    {HOIST_MT_OCI_LAYER, HOIST_MEDIA_LAYER, HOIST_COMPRESS_NONE},
    {HOIST_MT_OCI_LAYER_GZIP, HOIST_MEDIA_LAYER, HOIST_COMPRESS_GZIP},
    {HOIST_MT_OCI_LAYER_ZSTD, HOIST_MEDIA_LAYER, HOIST_COMPRESS_ZSTD},
    {HOIST_MT_OCI_LAYER_ND, HOIST_MEDIA_LAYER, HOIST_COMPRESS_NONE},
    {HOIST_MT_OCI_LAYER_ND_GZIP, HOIST_MEDIA_LAYER, HOIST_COMPRESS_GZIP},
    {HOIST_MT_OCI_LAYER_ND_ZSTD, HOIST_MEDIA_LAYER, HOIST_COMPRESS_ZSTD},
    {HOIST_MT_DOCKER_LAYER, HOIST_MEDIA_LAYER, HOIST_COMPRESS_NONE},
    {HOIST_MT_DOCKER_LAYER_GZIP, HOIST_MEDIA_LAYER, HOIST_COMPRESS_GZIP},
    {HOIST_MT_DOCKER_FOREIGN, HOIST_MEDIA_LAYER, HOIST_COMPRESS_NONE},
    {HOIST_MT_DOCKER_FOREIGN_GZIP, HOIST_MEDIA_LAYER, HOIST_COMPRESS_GZIP},
};

hoist_media_kind hoist_media_kind_of(const char *media_type) {
  if (!media_type)
    return HOIST_MEDIA_UNKNOWN;
  for (size_t i = 0; i < sizeof media_types / sizeof media_types[0]; i++)
    if (strcmp(media_types[i].type, media_type) == 0)
      return media_types[i].kind;
  return HOIST_MEDIA_UNKNOWN;
}

int hoist_media_layer_compression(const char *media_type) {
  if (!media_type)
    return -1;
  for (size_t i = 0; i < sizeof media_types / sizeof media_types[0]; i++)
    if (strcmp(media_types[i].type, media_type) == 0)
      return media_types[i].compression;
  return -1;
}

bool hoist_media_is_docker(const char *media_type) {
  return media_type && strncmp(media_type, "application/vnd.docker.", 23) == 0;
}

bool hoist_media_is_nondistributable(const char *media_type) {
  return media_type &&
         (strncmp(media_type, HOIST_MT_OCI_LAYER_ND, strlen(HOIST_MT_OCI_LAYER_ND)) == 0 ||
          strncmp(media_type, HOIST_MT_DOCKER_FOREIGN, strlen(HOIST_MT_DOCKER_FOREIGN)) == 0);
}

int oci_document_media_type(const json_t *root, hoist_media_kind want, const char **mt,
                            hoist_err **err) {
  int r = oci_opt_string(root, "mediaType", mt, err);
  if (r < 0 || !*mt)
    return r;
  bool index = want == HOIST_MEDIA_INDEX;
  hoist_media_kind kind = hoist_media_kind_of(*mt);
  if (kind == (index ? HOIST_MEDIA_MANIFEST : HOIST_MEDIA_INDEX))
    return hoist_err_set(err, HOIST_E_FORMAT, "mediaType %s is an image %s, not %s", *mt,
                         index ? "manifest" : "index", index ? "an index" : "a manifest");
  if (kind != want)
    return hoist_err_set(err, HOIST_E_FORMAT, "mediaType \"%.100s\" is not an image %s", *mt,
                         index ? "index" : "manifest");
  return 0;
}
