/* attest: the SBOM of an image's layers in a layout, merged as the layers
 * stack. */
#include <errno.h>
#include <string.h>

#include "hoist/store.h"
#include "sbom-private.h"

/* The database files whose last copy alone counts (a later layer's copy
 * replaces an earlier one whole). */
static const char *const databases[] = {"var/lib/dpkg/status", "lib/apk/db/installed"};

static int database_of(const char *path) {
  for (int d = 0; d < 2; d++)
    if (strcmp(path, databases[d]) == 0)
      return d;
  return -1;
}

int hoist_sbom_merge_layers(hoist_sbom *const *layers, size_t n, hoist_sbom *out, hoist_err **err) {
  size_t last[2] = {SIZE_MAX, SIZE_MAX};
  for (size_t l = 0; l < n; l++)
    for (size_t i = 0; layers[l] && i < hoist_sbom_count(layers[l]); i++) {
      int db = database_of(hoist_sbom_get(layers[l], i)->path);
      if (db >= 0)
        last[db] = l;
    }
  __attribute__((cleanup(hoist_map_clear))) hoist_map earlier = HOIST_MAP_INIT;
  for (size_t l = 0; l < n; l++)
    for (size_t i = 0; layers[l] && i < hoist_sbom_count(layers[l]); i++) {
      hoist_sbom_package p = *hoist_sbom_get(layers[l], i);
      int db = database_of(p.path);
      if (db >= 0 && l != last[db]) {
        hoist_map_set(&earlier, p.purl, strlen(p.purl), 1);
        continue;
      }
      if (db >= 0 && hoist_map_get(&earlier, p.purl, strlen(p.purl), NULL))
        p.origin = HOIST_SBOM_BASE;
      if (hoist_sbom_add_package(out, &p, err) < 0)
        return -1;
    }
  return 0;
}

int hoist_sbom_scan_image(hoist_sbom *s, hoist_store *store, const hoist_manifest *m, long only,
                          hoist_err **err) {
  size_t first = 0, end = m->n_layers;
  if (only) {
    long i = only > 0 ? only - 1 : (long)m->n_layers + only;
    if (i < 0 || i >= (long)m->n_layers)
      return hoist_err_set(err, ERANGE, "the image has %zu layer(s), no layer %ld", m->n_layers,
                           only);
    first = (size_t)i, end = first + 1;
  }
  hoist_sbom **layers = hoist_calloc(m->n_layers ? m->n_layers : 1, sizeof *layers);
  int r = 0;
  for (size_t i = first; i < end && r == 0; i++) {
    const hoist_descriptor *d = &m->layers[i];
    if (hoist_media_kind_of(d->media_type) != HOIST_MEDIA_LAYER)
      continue;
    _cleanup_close_ int fd = -1;
    uint64_t size;
    layers[i] = hoist_sbom_new();
    hoist_sbom_origin origin = i + 1 == m->n_layers || only ? HOIST_SBOM_LAYER : HOIST_SBOM_BASE;
    if ((r = hoist_store_open_blob(store, d->digest, &fd, &size, err)) < 0 ||
        (r = hoist_sbom_scan_layer(layers[i], fd, origin, err)) < 0)
      hoist_err_wrap(err, "layer %zu (%s)", i + 1, d->digest);
  }
  if (r == 0)
    r = hoist_sbom_merge_layers(layers, m->n_layers, s, err);
  for (size_t i = 0; i < m->n_layers; i++)
    hoist_sbom_free(layers[i]);
  free(layers);
  return r < 0 ? r : 0;
}
