/* The build cache in a registry: an entry per key, an OCI artifact
 * (artifactType application/vnd.hoist.build-cache.v1, the empty config) whose
 * one layer is the install's layer with the local entry's annotations,
 * tagged by the key's hex in the cache repository. */
#include <errno.h>
#include <string.h>

#include "build-private.h"
#include "hoist/transport.h"

#define EMPTY_MT "application/vnd.oci.empty.v1+json"
#define EMPTY_JSON "{}"

/* The entry of key_hex in repository repo (its tag or digest ignored). */
HOIST_WUR static int entry_ref(const hoist_ref *repo, const char *key_hex, hoist_ref **out,
                               hoist_err **err) {
  _cleanup_free_ char *s = hoist_asprintf("%s/%s:%s", repo->domain, repo->path, key_hex);
  return hoist_ref_parse(s, out, err);
}

int build_regcache_lookup(const hoist_build_opts *o, const char *key_hex, hoist_descriptor *layer,
                          char diff_id[], bool *extend, hoist_transport_source **from,
                          hoist_err **err) {
  *from = NULL;
  hoist_ref *ref = NULL;
  if (entry_ref(o->cache_from, key_hex, &ref, err) < 0)
    return -1;
  hoist_transport_source *src = NULL;
  _cleanup_free_ char *data = NULL;
  _cleanup_free_ char *mt = NULL;
  size_t len = 0;
  char digest[HOIST_DIGEST_STR_LEN];
  int r = hoist_transport_registry_source(o->cache_registry, ref, &src, err);
  hoist_ref_free(ref);
  if (r < 0)
    return -1;
  if (src->ops->manifest(src, NULL, &data, &len, &mt, digest, err) < 0) {
    hoist_transport_source_free(src);
    if (hoist_err_root_code(*err) != ENOENT)
      return -1;
    hoist_err_free(*err);
    *err = NULL;
    return 0; /* no such entry */
  }
  _cleanup_manifest_ hoist_manifest *m = NULL;
  if (hoist_manifest_parse(data, len, &m, err) < 0) {
    hoist_transport_source_free(src);
    return hoist_err_wrap(err, "build cache entry %s", key_hex);
  }
  if (!m->artifact_type || strcmp(m->artifact_type, HOIST_BUILD_CACHE_ARTIFACT) != 0 ||
      m->n_layers != 1) {
    hoist_transport_source_free(src);
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "build cache entry %s: not a hoist build cache artifact", key_hex);
  }
  hoist_descriptor_copy(layer, &m->layers[0]);
  if (!build_cache_entry_fits(o, layer, diff_id, extend)) {
    hoist_descriptor_clear(layer);
    hoist_transport_source_free(src);
    return 0; /* made with another epoch or compression */
  }
  *from = src;
  return 1;
}

int build_regcache_store(const hoist_build_opts *o, const char *cache_dir, const char *key_hex,
                         const hoist_descriptor *layer, hoist_err **err) {
  hoist_ref *ref = NULL;
  if (entry_ref(o->cache_to, key_hex, &ref, err) < 0)
    return -1;
  _cleanup_transport_target_ hoist_transport_target *t = NULL;
  _cleanup_transport_source_ hoist_transport_source *from = NULL;
  int r = hoist_transport_registry_target(o->cache_registry, ref, &t, err);
  hoist_ref_free(ref);
  if (r < 0 || hoist_transport_layout_source(cache_dir, NULL, &from, err) < 0 ||
      hoist_transport_copy_blob(t, from, layer, NULL, NULL, err) < 0)
    return -1;
  hoist_descriptor empty = {0};
  hoist_descriptor_of_bytes(&empty, EMPTY_MT, EMPTY_JSON, strlen(EMPTY_JSON));
  bool has = false;
  if (t->ops->has_blob(t, &empty, &has, err) < 0) {
    hoist_descriptor_clear(&empty);
    return -1;
  }
  if (!has) {
    _cleanup_writer_ hoist_writer *w = NULL;
    char written[HOIST_DIGEST_STR_LEN];
    if (t->ops->blob_writer(t, empty.digest, empty.size, &w, err) < 0 ||
        hoist_writer_write(w, EMPTY_JSON, strlen(EMPTY_JSON), err) < 0 ||
        hoist_writer_commit(w, written, NULL, err) < 0) {
      hoist_descriptor_clear(&empty);
      return -1;
    }
  }
  json_t *doc =
      json_pack("{s:i, s:s, s:s, s:o, s:[o]}", "schemaVersion", 2, "mediaType",
                HOIST_MT_OCI_MANIFEST, "artifactType", HOIST_BUILD_CACHE_ARTIFACT, "config",
                hoist_descriptor_to_json(&empty), "layers", hoist_descriptor_to_json(layer));
  hoist_descriptor_clear(&empty);
  if (!doc)
    return hoist_err_set(err, EINVAL, "build cache entry %s: cannot describe the layer", key_hex);
  _cleanup_free_ char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(doc);
  if (t->ops->put_manifest(t, NULL, text, strlen(text), HOIST_MT_OCI_MANIFEST, err) < 0 ||
      hoist_transport_commit(t, err) < 0)
    return -1;
  return 0;
}
