/* build: what build.c and the registry cache (regcache.c) share. */
#ifndef HOIST_BUILD_PRIVATE_H
#define HOIST_BUILD_PRIVATE_H

#include "hoist/build.h"

/* Annotation of a build cache entry (a layer descriptor tagged by key). */
#define CACHE_DIFF_ID "io.hoist.build.diff-id"
/* Set to "true" when the layer came from the base's /bin/extend. */
#define CACHE_EXTEND "io.hoist.build.extend"
/* The SOURCE_DATE_EPOCH the layer's mtimes were clamped to, or "none". An entry
 * is reused only for the same epoch and compression (both shape the bytes but
 * are not inputs of the install, so not of the key). */
#define CACHE_EPOCH "io.hoist.build.epoch"
/* When the layer was built (seconds since the epoch): the created time of
 * every image made from the entry without SOURCE_DATE_EPOCH, so an identical
 * rebuild makes the identical image. */
#define CACHE_CREATED "io.hoist.build.created"

/* Whether a cache entry's layer descriptor serves o: a valid diff-id, the
 * same epoch and compression; fills diff_id and *extend. */
bool build_cache_entry_fits(const hoist_build_opts *o, const hoist_descriptor *layer,
                            char diff_id[], bool *extend);

/* The entry of key_hex in o->cache_from: 1 and the layer (a copy) with a
 * source to read its blob from (caller frees), 0 when there is none that
 * fits, -1 when the registry could not say. */
int build_regcache_lookup(const hoist_build_opts *o, const char *key_hex, hoist_descriptor *layer,
                          char diff_id[], bool *extend, hoist_transport_source **from,
                          hoist_err **err) HOIST_WUR;
/* Writes the local entry of key_hex (layer, its blob in the layout
 * cache_dir) to o->cache_to. */
int build_regcache_store(const hoist_build_opts *o, const char *cache_dir, const char *key_hex,
                         const hoist_descriptor *layer, hoist_err **err) HOIST_WUR;

#endif
