/*
 * map: the one hash map of libhoist, from byte-string keys to 64-bit values.
 *
 * Keys often come from untrusted input (tar member names of a layer or a
 * bundle, digests named by a layout), so the hash is SipHash-2-4 under a
 * 128-bit key each map draws from getrandom(2) when it first stores
 * something: nobody outside the process can choose keys that collide, and no
 * state is shared between maps. Open addressing with linear probing, at most
 * half full, deletions by backward shift (no tombstones), so every operation
 * stays O(1) on average whatever the keys.
 *
 * The map owns copies of its keys. HOIST_MAP_INIT (or {0}) is an empty map
 * that allocates nothing until the first insert; hoist_map_clear frees it all.
 * Memory runs out as everywhere in libhoist: abort(). Not thread-safe.
 */
#ifndef HOIST_MAP_H
#define HOIST_MAP_H

#include "hoist/core.h"

typedef struct hoist_map_slot {
  char *key; /* owned, NUL-terminated copy; NULL: empty slot */
  size_t len;
  uint64_t hash;
  uint64_t val;
} hoist_map_slot;

typedef struct hoist_map {
  hoist_map_slot *slots;
  size_t cap; /* a power of two, or 0 before the first insert */
  size_t n;
  uint8_t seed[16];
} hoist_map;

#define HOIST_MAP_INIT                                                                             \
  {                                                                                                \
    NULL, 0, 0, { 0 }                                                                              \
  }

/* True when key (len bytes) is in m, with its value in *val when val is not
 * NULL. */
HOIST_EXPORT bool hoist_map_get(const hoist_map *m, const void *key, size_t len,
                                uint64_t *val) HOIST_WUR;

/* Adds key -> val unless key is there already: true when added; false when
 * present, with the value it has (left unchanged) in *old when old is not
 * NULL. One lookup for "insert unless seen". */
HOIST_EXPORT bool hoist_map_add(hoist_map *m, const void *key, size_t len, uint64_t val,
                                uint64_t *old) HOIST_WUR;

/* Sets key -> val, replacing the value key had. */
HOIST_EXPORT void hoist_map_set(hoist_map *m, const void *key, size_t len, uint64_t val);

/* Removes key: true when it was there. */
HOIST_EXPORT bool hoist_map_del(hoist_map *m, const void *key, size_t len) HOIST_WUR;

/* Frees every key and the table; m is empty (and is seeded afresh when used
 * again). */
HOIST_EXPORT void hoist_map_clear(hoist_map *m);

/* Mean number of slots a lookup of a present key reads (1.0 is ideal): how
 * well the hash spreads these keys. For tests and benchmarks. */
HOIST_EXPORT double hoist_map_mean_probe(const hoist_map *m) HOIST_WUR;

/* SipHash-2-4 of len bytes under a 16-byte key (the reference's byte order).
 * Exposed for its test vectors. */
HOIST_EXPORT uint64_t hoist_siphash24(const uint8_t key[16], const void *data,
                                      size_t len) HOIST_WUR;

static inline void hoist_map_clearp(hoist_map *m) { hoist_map_clear(m); }
#define _cleanup_map_ __attribute__((cleanup(hoist_map_clearp)))

#endif
