/* The deploy stat cache: the fingerprints of the last full computation and
 * the stat data of every directory and file they were read from.
 *
 * File layout (host byte order; a cache never leaves its machine):
 *   header   "HOISTDC1", key (64 hex), n_comp, n_dirs, n_files, strings_len
 *   dirs     n_dirs   x {name_off, first_file, n_files, pad, stat}
 *   files    n_files  x {name_off, pad, stat}      (grouped by directory)
 *   comps    n_comp   x {hex[72], changed_off, n_changed}
 *   strings  NUL-terminated names: directories "" or "a/b/", files a bare
 *            name inside their directory, changed files whole paths */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deploy-private.h"
#include "hoist/digest.h"
#include "hoist/fs.h"

#define CACHE_MAGIC "HOISTDC1"
/* an entry changed this close to the walk may change again unseen within
 * the same timestamp tick: such a tree is not cached */
#define RACY_NS (20 * 1000 * 1000LL)

typedef struct cache_header {
  char magic[8];
  char key[64];
  uint32_t n_comp, n_dirs, n_files, strings_len;
} cache_header;

typedef struct cache_dir {
  uint32_t name_off, first_file, n_files, pad;
  hoist_deploy_cstat st;
} cache_dir;

typedef struct cache_file {
  uint32_t name_off, pad;
  hoist_deploy_cstat st;
} cache_file;

typedef struct cache_comp {
  char hex[72];
  uint32_t changed_off, n_changed;
} cache_comp;

void hoist_deploy_cstat_from(hoist_deploy_cstat *c, const struct stat *st) {
  *c = (hoist_deploy_cstat){.mtime_s = st->st_mtim.tv_sec,
                            .mtime_ns = st->st_mtim.tv_nsec,
                            .ctime_s = st->st_ctim.tv_sec,
                            .ctime_ns = st->st_ctim.tv_nsec,
                            .ino = st->st_ino,
                            .size = (uint64_t)st->st_size,
                            .mode = st->st_mode,
                            .valid = 1};
}

static bool cstat_equal(const hoist_deploy_cstat *a, const struct stat *st) {
  hoist_deploy_cstat b;
  hoist_deploy_cstat_from(&b, st);
  return a->mtime_s == b.mtime_s && a->mtime_ns == b.mtime_ns && a->ctime_s == b.ctime_s &&
         a->ctime_ns == b.ctime_ns && a->ino == b.ino && a->size == b.size && a->mode == b.mode;
}

static bool cstat_racy(const hoist_deploy_cstat *c, const struct timespec *since) {
  long long limit = (long long)since->tv_sec * 1000000000LL + since->tv_nsec - RACY_NS;
  return c->mtime_s * 1000000000LL + c->mtime_ns >= limit ||
         c->ctime_s * 1000000000LL + c->ctime_ns >= limit;
}

/* ------------------------------------------------------------- parsing */

static const char *string_at(const hoist_deploy_cache_view *v, uint32_t off) {
  return off < v->strings_len ? v->strings + off : NULL;
}

/* A directory name: "" or relative components each followed by '/', none
 * of them empty, "." or "..". */
static bool dir_name_ok(const char *s) {
  if (*s == '\0')
    return true;
  while (*s) {
    const char *slash = strchr(s, '/');
    if (!slash || slash == s || (slash - s == 1 && s[0] == '.') ||
        (slash - s == 2 && s[0] == '.' && s[1] == '.'))
      return false;
    s = slash + 1;
  }
  return true;
}

static bool file_name_ok(const char *s) {
  return *s && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static bool hex_ok(const char *hex) {
  size_t n = strnlen(hex, 72);
  if (n == 72 || (n != 0 && n != HOIST_DIGEST_HEX_LEN))
    return false;
  for (size_t i = 0; i < n; i++)
    if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
      return false;
  return true;
}

int hoist_deploy_cache_parse(const void *data, size_t len, hoist_deploy_cache_view *v) {
  *v = (hoist_deploy_cache_view){0};
  cache_header h;
  if (len < sizeof h)
    return -1;
  memcpy(&h, data, sizeof h);
  if (memcmp(h.magic, CACHE_MAGIC, sizeof h.magic) != 0)
    return -1;
  size_t need = sizeof h + (size_t)h.n_dirs * sizeof(cache_dir) +
                (size_t)h.n_files * sizeof(cache_file) + (size_t)h.n_comp * sizeof(cache_comp) +
                h.strings_len;
  if (need != len || (h.strings_len && ((const char *)data)[len - 1] != '\0'))
    return -1;
  const char *p = (const char *)data + sizeof h;
  v->dirs = p;
  v->files = p + (size_t)h.n_dirs * sizeof(cache_dir);
  v->comps = (const char *)v->files + (size_t)h.n_files * sizeof(cache_file);
  v->strings = (const char *)v->comps + (size_t)h.n_comp * sizeof(cache_comp);
  v->n_comp = h.n_comp;
  v->n_dirs = h.n_dirs;
  v->n_files = h.n_files;
  v->strings_len = h.strings_len;
  memcpy(v->key, h.key, sizeof h.key);
  v->key[sizeof h.key] = '\0';
  /* every record in bounds and every name well formed, so the check never
   * has to ask again */
  uint64_t files_seen = 0;
  for (uint32_t i = 0; i < v->n_dirs; i++) {
    cache_dir d;
    memcpy(&d, (const char *)v->dirs + (size_t)i * sizeof d, sizeof d);
    const char *name = string_at(v, d.name_off);
    if (!name || !dir_name_ok(name) || d.first_file != files_seen ||
        (uint64_t)d.first_file + d.n_files > v->n_files)
      return -1;
    files_seen += d.n_files;
  }
  if (files_seen != v->n_files)
    return -1;
  for (uint32_t i = 0; i < v->n_files; i++) {
    cache_file f;
    memcpy(&f, (const char *)v->files + (size_t)i * sizeof f, sizeof f);
    const char *name = string_at(v, f.name_off);
    if (!name || !file_name_ok(name))
      return -1;
  }
  for (uint32_t i = 0; i < v->n_comp; i++) {
    cache_comp c;
    memcpy(&c, (const char *)v->comps + (size_t)i * sizeof c, sizeof c);
    if (!hex_ok(c.hex))
      return -1;
    uint32_t off = c.changed_off;
    for (uint32_t k = 0; k < c.n_changed; k++) {
      const char *s = string_at(v, off);
      if (!s || !*s)
        return -1;
      off += (uint32_t)strlen(s) + 1;
    }
  }
  return 0;
}

void hoist_deploy_cache_comp(const hoist_deploy_cache_view *v, size_t i,
                             hoist_deploy_fingerprint *fp) {
  cache_comp c;
  memcpy(&c, (const char *)v->comps + i * sizeof c, sizeof c);
  memcpy(fp->hex, c.hex, sizeof fp->hex - 1);
  fp->hex[sizeof fp->hex - 1] = '\0';
  fp->n_changed = c.n_changed;
  fp->changed = hoist_calloc(c.n_changed ? c.n_changed : 1, sizeof *fp->changed);
  uint32_t off = c.changed_off;
  for (uint32_t k = 0; k < c.n_changed; k++) {
    fp->changed[k] = hoist_strdup(v->strings + off);
    off += (uint32_t)strlen(fp->changed[k]) + 1;
  }
}

/* -------------------------------------------------------------- checking */

typedef struct check_shared {
  const hoist_deploy_cache_view *v;
  int rootfd;
  atomic_uint next;
  atomic_bool stale;
  pthread_mutex_t lock;
  char *why; /* the first path found changed */
} check_shared;

static void check_stale(check_shared *sh, const char *dir, const char *name) {
  atomic_store(&sh->stale, true);
  pthread_mutex_lock(&sh->lock);
  if (!sh->why)
    sh->why = hoist_asprintf("%s%s", dir, name);
  pthread_mutex_unlock(&sh->lock);
}

static void check_dir(check_shared *sh, uint32_t i) {
  const hoist_deploy_cache_view *v = sh->v;
  cache_dir d;
  memcpy(&d, (const char *)v->dirs + (size_t)i * sizeof d, sizeof d);
  const char *dir = v->strings + d.name_off;
  _cleanup_close_ int fd =
      openat(sh->rootfd, *dir ? dir : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0 || !cstat_equal(&d.st, &st)) {
    check_stale(sh, dir, "");
    return;
  }
  for (uint32_t k = 0; k < d.n_files && !atomic_load_explicit(&sh->stale, memory_order_relaxed);
       k++) {
    cache_file f;
    memcpy(&f, (const char *)v->files + (size_t)(d.first_file + k) * sizeof f, sizeof f);
    const char *name = v->strings + f.name_off;
    if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !cstat_equal(&f.st, &st))
      check_stale(sh, dir, name);
  }
}

static void *check_worker(void *arg) {
  check_shared *sh = arg;
  enum { CHUNK = 32 };
  for (;;) {
    unsigned first = atomic_fetch_add(&sh->next, CHUNK);
    if (first >= sh->v->n_dirs)
      break;
    unsigned end = first + CHUNK < sh->v->n_dirs ? first + CHUNK : sh->v->n_dirs;
    for (unsigned i = first; i < end && !atomic_load(&sh->stale); i++)
      check_dir(sh, i);
  }
  return NULL;
}

int hoist_deploy_cache_check(const char *cache_path, int rootfd, const char *key, size_t n_comp,
                             hoist_deploy_fingerprint *out) {
  _cleanup_close_ int fd = open(cache_path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
    hoist_debug("deploy: no stat cache at %s", cache_path);
    return 0;
  }
  size_t len = (size_t)st.st_size;
  void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  if (map == MAP_FAILED)
    return 0;
  hoist_deploy_cache_view v;
  int hit = 0;
  if (hoist_deploy_cache_parse(map, len, &v) < 0) {
    hoist_debug("deploy: stat cache %s is malformed; not used", cache_path);
  } else if (strcmp(v.key, key) != 0 || v.n_comp != n_comp) {
    hoist_debug("deploy: stat cache is for another HEAD, index or deploy file");
  } else {
    check_shared sh = {.v = &v, .rootfd = rootfd};
    pthread_mutex_init(&sh.lock, NULL);
    enum { MAX_THREADS = 4 };
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t nt = cpus > 1 ? (size_t)cpus : 1;
    if (nt > MAX_THREADS)
      nt = MAX_THREADS;
    pthread_t tids[MAX_THREADS];
    bool started[MAX_THREADS] = {false};
    for (size_t t = 1; t < nt; t++)
      started[t] = pthread_create(&tids[t], NULL, check_worker, &sh) == 0;
    check_worker(&sh);
    for (size_t t = 1; t < nt; t++)
      if (started[t])
        pthread_join(tids[t], NULL);
    pthread_mutex_destroy(&sh.lock);
    if (atomic_load(&sh.stale)) {
      hoist_debug("deploy: stat cache is stale: %s changed", sh.why ? sh.why : "a path");
    } else {
      for (size_t i = 0; i < n_comp; i++)
        hoist_deploy_cache_comp(&v, i, &out[i]);
      hoist_debug("deploy: stat cache hit: %u directories and %u files unchanged", v.n_dirs,
                  v.n_files);
      hit = 1;
    }
    free(sh.why);
  }
  munmap(map, len);
  return hit;
}

/* --------------------------------------------------------------- writing */

static int compare_dir(const void *a, const void *b) {
  return strcmp(((const hoist_deploy_cache_dir *)a)->path,
                ((const hoist_deploy_cache_dir *)b)->path);
}

/* Index in the sorted dirs of the directory "a/b/" holding path "a/b/c",
 * or -1. */
static long dir_of(const hoist_deploy_cache_dir *dirs, size_t n_dirs, const char *path,
                   size_t dlen) {
  size_t lo = 0, hi = n_dirs;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strncmp(dirs[mid].path, path, dlen);
    if (c == 0 && dirs[mid].path[dlen])
      c = 1; /* longer: sorts after */
    if (c == 0)
      return (long)mid;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

int hoist_deploy_cache_write(const char *cache_path, const char *key, const struct timespec *since,
                             const hoist_deploy_fingerprint *fp, size_t n_comp,
                             hoist_deploy_cache_dir *dirs, size_t n_dirs,
                             const hoist_deploy_cache_file *files, size_t n_files,
                             hoist_err **err) {
  if (n_dirs > UINT32_MAX / 4 || n_files > UINT32_MAX / 4 || n_comp > UINT32_MAX / 4)
    return hoist_err_set(err, EFBIG, "too many paths to cache");
  qsort(dirs, n_dirs, sizeof *dirs, compare_dir);
  size_t strings_len = 0;
  for (size_t i = 0; i < n_dirs; i++) {
    if (i && strcmp(dirs[i - 1].path, dirs[i].path) == 0)
      return hoist_err_set(err, EINVAL, "directory %s walked twice", dirs[i].path);
    if (cstat_racy(&dirs[i].st, since))
      return hoist_err_set(err, EAGAIN, "%s changed during the walk", dirs[i].path);
    strings_len += strlen(dirs[i].path) + 1;
  }
  /* each file's directory, then the files counted into place by it */
  _cleanup_free_ uint32_t *dir_of_file = hoist_calloc(n_files ? n_files : 1, sizeof(uint32_t));
  _cleanup_free_ uint32_t *first = hoist_calloc(n_dirs + 1, sizeof(uint32_t));
  for (size_t i = 0; i < n_files; i++) {
    const char *path = files[i].path;
    if (cstat_racy(files[i].st, since))
      return hoist_err_set(err, EAGAIN, "%s changed during the walk", path);
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
    long d = dir_of(dirs, n_dirs, path, dlen);
    if (d < 0)
      return hoist_err_set(err, ENOENT, "%s: its directory was not walked", path);
    dir_of_file[i] = (uint32_t)d;
    first[d + 1]++;
    strings_len += strlen(path + dlen) + 1;
  }
  for (size_t i = 0; i < n_dirs; i++)
    first[i + 1] += first[i];
  for (size_t i = 0; i < n_comp; i++)
    for (size_t k = 0; k < fp[i].n_changed; k++)
      strings_len += strlen(fp[i].changed[k]) + 1;
  if (strings_len > UINT32_MAX / 2)
    return hoist_err_set(err, EFBIG, "too many paths to cache");

  size_t body = sizeof(cache_header) + n_dirs * sizeof(cache_dir) + n_files * sizeof(cache_file) +
                n_comp * sizeof(cache_comp);
  _cleanup_free_ char *out = hoist_malloc0(body + strings_len);
  char *dp = out + sizeof(cache_header);
  char *fpp = dp + n_dirs * sizeof(cache_dir);
  char *cp = fpp + n_files * sizeof(cache_file);
  char *strings = out + body;
  uint32_t used = 0;
#define ADD_STRING(text)                                                                           \
  ({                                                                                               \
    size_t _n = strlen(text) + 1;                                                                  \
    memcpy(strings + used, (text), _n);                                                            \
    used += (uint32_t)_n;                                                                          \
    used - (uint32_t)_n;                                                                           \
  })
  for (size_t i = 0; i < n_dirs; i++) {
    cache_dir d = {.name_off = ADD_STRING(dirs[i].path),
                   .first_file = first[i],
                   .n_files = first[i + 1] - first[i],
                   .st = dirs[i].st};
    memcpy(dp + i * sizeof d, &d, sizeof d);
  }
  _cleanup_free_ uint32_t *next = hoist_calloc(n_dirs ? n_dirs : 1, sizeof(uint32_t));
  memcpy(next, first, n_dirs * sizeof(uint32_t));
  for (size_t i = 0; i < n_files; i++) {
    const char *slash = strrchr(files[i].path, '/');
    cache_file cf = {.name_off = ADD_STRING(slash ? slash + 1 : files[i].path), .st = *files[i].st};
    memcpy(fpp + (size_t)next[dir_of_file[i]]++ * sizeof cf, &cf, sizeof cf);
  }
  for (size_t i = 0; i < n_comp; i++) {
    cache_comp c = {.changed_off = used, .n_changed = (uint32_t)fp[i].n_changed};
    memcpy(c.hex, fp[i].hex, strnlen(fp[i].hex, sizeof fp[i].hex - 1));
    for (size_t k = 0; k < fp[i].n_changed; k++)
      ADD_STRING(fp[i].changed[k]);
    memcpy(cp + i * sizeof c, &c, sizeof c);
  }
#undef ADD_STRING
  cache_header h = {.n_comp = (uint32_t)n_comp,
                    .n_dirs = (uint32_t)n_dirs,
                    .n_files = (uint32_t)n_files,
                    .strings_len = (uint32_t)strings_len};
  memcpy(h.magic, CACHE_MAGIC, sizeof h.magic);
  memcpy(h.key, key, sizeof h.key);
  memcpy(out, &h, sizeof h);
  return hoist_fs_write_replace(AT_FDCWD, cache_path, out, body + strings_len, 0644, err);
}
