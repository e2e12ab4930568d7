/* Internal to the bundle module. */
#ifndef HOIST_BUNDLE_INTERNAL_H
#define HOIST_BUNDLE_INTERNAL_H

#include "hoist/bundle.h"

/* True when p is a canonical relative path: non-empty components, none "."
 * or "..", no leading or trailing slash. */
bool hoist_bundle_path_valid(const char *p);

/* A string -> index map (open addressing). Keys are borrowed: they must
 * outlive the map. */
typedef struct hoist_strmap {
  const char **keys;
  size_t *vals;
  size_t cap; /* power of two or 0 */
  size_t n;
} hoist_strmap;

bool hoist_strmap_get(const hoist_strmap *m, const char *key, size_t *val);
/* Inserts key unless present; returns false when it was present. */
bool hoist_strmap_put(hoist_strmap *m, const char *key, size_t val);
void hoist_strmap_free(hoist_strmap *m);

#endif
