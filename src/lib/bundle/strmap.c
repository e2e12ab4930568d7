#include <string.h>

#include "bundle-internal.h"

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return h;
}

bool hoist_strmap_get(const hoist_strmap *m, const char *key, size_t *val) {
  if (!m->cap)
    return false;
  for (size_t i = hash_str(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    if (!m->keys[i])
      return false;
    if (strcmp(m->keys[i], key) == 0) {
      if (val)
        *val = m->vals[i];
      return true;
    }
  }
}

static void grow(hoist_strmap *m) {
  size_t ncap = m->cap ? m->cap * 2 : 64;
  const char **keys = hoist_malloc0(ncap * sizeof *keys);
  size_t *vals = hoist_malloc0(ncap * sizeof *vals);
  for (size_t j = 0; j < m->cap; j++) {
    if (!m->keys[j])
      continue;
    size_t i = hash_str(m->keys[j]) & (ncap - 1);
    while (keys[i])
      i = (i + 1) & (ncap - 1);
    keys[i] = m->keys[j];
    vals[i] = m->vals[j];
  }
  free(m->keys);
  free(m->vals);
  m->keys = keys;
  m->vals = vals;
  m->cap = ncap;
}

bool hoist_strmap_put(hoist_strmap *m, const char *key, size_t val) {
  if ((m->n + 1) * 2 > m->cap)
    grow(m);
  size_t i = hash_str(key) & (m->cap - 1);
  for (; m->keys[i]; i = (i + 1) & (m->cap - 1))
    if (strcmp(m->keys[i], key) == 0)
      return false;
  m->keys[i] = key;
  m->vals[i] = val;
  m->n++;
  return true;
}

void hoist_strmap_free(hoist_strmap *m) {
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}
