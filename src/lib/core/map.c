/* The seeded hash map (see include/hoist/map.h). */
#include <errno.h>
#include <openssl/rand.h>
#include <string.h>
#include <sys/random.h>

#include "hoist/map.h"

/* ---------------------------------------------------------- SipHash-2-4 */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
  do {                                                                                             \
    v0 += v1;                                                                                      \
    v1 = ROTL(v1, 13);                                                                             \
    v1 ^= v0;                                                                                      \
    v0 = ROTL(v0, 32);                                                                             \
    v2 += v3;                                                                                      \
    v3 = ROTL(v3, 16);                                                                             \
    v3 ^= v2;                                                                                      \
    v0 += v3;                                                                                      \
    v3 = ROTL(v3, 21);                                                                             \
    v3 ^= v0;                                                                                      \
    v2 += v1;                                                                                      \
    v1 = ROTL(v1, 17);                                                                             \
    v1 ^= v2;                                                                                      \
    v2 = ROTL(v2, 32);                                                                             \
  } while (0)

static uint64_t le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

uint64_t hoist_siphash24(const uint8_t key[16], const void *data, size_t len) {
  const uint8_t *in = data;
  uint64_t k0 = le64(key), k1 = le64(key + 8);
  uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
  uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
  const uint8_t *end = in + (len & ~(size_t)7);
  for (; in != end; in += 8) {
    uint64_t m = le64(in);
    v3 ^= m;
    SIPROUND;
    SIPROUND;
    v0 ^= m;
  }
  uint64_t b = (uint64_t)len << 56;
  for (size_t i = 0; i < (len & 7); i++)
    b |= (uint64_t)in[i] << (8 * i);
  v3 ^= b;
  SIPROUND;
  SIPROUND;
  v0 ^= b;
  v2 ^= 0xff;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}

/* ------------------------------------------------------------------ map */

#define MIN_CAP 16

/* The map's own SipHash key, from the kernel's generator (OpenSSL's when
 * getrandom is missing). Without either there is no safe hash: abort, as
 * when memory runs out. */
static void draw_seed(uint8_t seed[16]) {
  ssize_t n;
  do
    n = getrandom(seed, 16, 0);
  while (n < 0 && errno == EINTR);
  if (n == 16)
    return;
  if (RAND_bytes(seed, 16) != 1)
    abort();
}

static uint64_t hash_of(const hoist_map *m, const void *key, size_t len) {
  return hoist_siphash24(m->seed, key, len);
}

/* The slot holding key, or the empty slot where it would go. */
static size_t find(const hoist_map *m, const void *key, size_t len, uint64_t h) {
  size_t mask = m->cap - 1;
  for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
    const hoist_map_slot *s = &m->slots[i];
    if (!s->key || (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0))
      return i;
  }
}

static void grow(hoist_map *m) {
  if (!m->cap)
    draw_seed(m->seed);
  size_t ncap = m->cap ? m->cap * 2 : MIN_CAP;
  hoist_map_slot *old = m->slots;
  size_t ocap = m->cap;
  m->slots = hoist_calloc(ncap, sizeof *m->slots);
  m->cap = ncap;
  for (size_t i = 0; i < ocap; i++)
    if (old[i].key)
      m->slots[find(m, old[i].key, old[i].len, old[i].hash)] = old[i];
  free(old);
}

bool hoist_map_get(const hoist_map *m, const void *key, size_t len, uint64_t *val) {
  if (!m->n)
    return false;
  const hoist_map_slot *s = &m->slots[find(m, key, len, hash_of(m, key, len))];
  if (!s->key)
    return false;
  if (val)
    *val = s->val;
  return true;
}

/* The slot of key, made (empty of a value) when missing; *made says which. */
static hoist_map_slot *slot_for(hoist_map *m, const void *key, size_t len, bool *made) {
  /* at most half full: probes stay short even at the worst load */
  if ((m->n + 1) * 2 > m->cap)
    grow(m);
  uint64_t h = hash_of(m, key, len);
  hoist_map_slot *s = &m->slots[find(m, key, len, h)];
  *made = !s->key;
  if (*made) {
    s->key = hoist_malloc0(len + 1);
    if (len)
      memcpy(s->key, key, len);
    s->len = len;
    s->hash = h;
    m->n++;
  }
  return s;
}

bool hoist_map_add(hoist_map *m, const void *key, size_t len, uint64_t val, uint64_t *old) {
  bool made;
  hoist_map_slot *s = slot_for(m, key, len, &made);
  if (made)
    s->val = val;
  else if (old)
    *old = s->val;
  return made;
}

void hoist_map_set(hoist_map *m, const void *key, size_t len, uint64_t val) {
  bool made;
  slot_for(m, key, len, &made)->val = val;
}

bool hoist_map_del(hoist_map *m, const void *key, size_t len) {
  if (!m->n)
    return false;
  size_t mask = m->cap - 1;
  size_t i = find(m, key, len, hash_of(m, key, len));
  if (!m->slots[i].key)
    return false;
  free(m->slots[i].key);
  m->n--;
  /* backward shift: pull later members of the run into the hole when their
   * home slot is at or before it, so no lookup meets an empty slot early */
  for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
    size_t home = (size_t)m->slots[j].hash & mask;
    if (((j - home) & mask) >= ((j - i) & mask)) {
      m->slots[i] = m->slots[j];
      i = j;
    }
  }
  m->slots[i] = (hoist_map_slot){0};
  return true;
}

void hoist_map_clear(hoist_map *m) {
  for (size_t i = 0; i < m->cap; i++)
    free(m->slots[i].key);
  free(m->slots);
  *m = (hoist_map)HOIST_MAP_INIT;
}

double hoist_map_mean_probe(const hoist_map *m) {
  if (!m->n)
    return 0;
  size_t mask = m->cap - 1, total = 0;
  for (size_t i = 0; i < m->cap; i++)
    if (m->slots[i].key)
      total += ((i - (size_t)m->slots[i].hash) & mask) + 1;
  return (double)total / (double)m->n;
}
