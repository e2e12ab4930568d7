/* Runtime bundle verify and stage: one streaming pass over the tarball
 * (ISA-L inflate -> libarchive tar reader -> SHA-256 [-> stage files]),
 * then the contract's checks, in its order, on the in-memory model. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <isa-l/igzip_lib.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "bundle-internal.h"
#include "hoist/digest.h"
#include "hoist/fs.h"
#include "hoist/map.h"

#define IN_CHUNK (1U << 20)
#define OUT_CHUNK (1U << 20)
#define MAX_LINKS 40

/* ------------------------------------------------------------ gzip input */

/* A gzip file inflated by ISA-L on a second thread into a ring of NBUF
 * buffers, read by libarchive (through gz_read) on the calling thread, which
 * hashes and writes. The buffer gz_pull last returned stays the consumer's
 * until the next gz_pull (libarchive reads it in place). */
#define NBUF 4

typedef struct gz {
  int fd;
  struct inflate_state st;
  uint8_t *in;
  bool eof_in;
  bool done;
  uint64_t consumed;
  uint64_t file_size;
  uint64_t next_report;
  const hoist_bundle_opts *opts;

  pthread_t thread;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint8_t *bufs[NBUF];
  size_t lens[NBUF];
  unsigned head, count; /* filled slots: [head, head + count) */
  bool held;            /* the consumer holds slot head */
  bool finished;        /* the producer is done (end of data or error) */
  bool cancel;
  const char *error; /* the producer's failure, static text */
  char errbuf[128];
} gz;

/* Refills the input buffer when empty. Returns -1 on a read error. */
static int gz_fill(gz *g) {
  if (g->st.avail_in > 0 || g->eof_in)
    return 0;
  for (;;) {
    ssize_t n = read(g->fd, g->in, IN_CHUNK);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    if (n == 0)
      g->eof_in = true;
    g->st.next_in = g->in;
    g->st.avail_in = (uint32_t)n;
    g->consumed += (uint64_t)n;
    if (g->opts->progress && (g->consumed >= g->next_report || n == 0)) {
      g->opts->progress(g->consumed, g->file_size, g->opts->progress_userdata);
      g->next_report = g->consumed + (8U << 20);
    }
    return 0;
  }
}

/* Inflates the next chunk into out. Returns its length, 0 at the end of the
 * gzip data, or -1 with *msg set. Concatenated gzip members are read as one
 * stream; anything else after the last member is an error. */
static ssize_t gz_next(gz *g, uint8_t *out, const char **msg) {
  for (;;) {
    if (g->done)
      return 0;
    if (gz_fill(g) < 0) {
      snprintf(g->errbuf, sizeof g->errbuf, "read: %s", strerror(errno));
      *msg = g->errbuf;
      return -1;
    }
    if (g->st.block_state == ISAL_BLOCK_FINISH) {
      if (g->st.avail_in == 0 && g->eof_in) {
        g->done = true;
        return 0;
      }
      if (g->st.avail_in == 0)
        continue;
      if (g->st.next_in[0] != 0x1f) {
        *msg = "trailing garbage after gzip data";
        return -1;
      }
      uint8_t *next_in = g->st.next_in;
      uint32_t avail = g->st.avail_in;
      isal_inflate_reset(&g->st);
      g->st.crc_flag = ISAL_GZIP;
      g->st.next_in = next_in;
      g->st.avail_in = avail;
    }
    g->st.next_out = out;
    g->st.avail_out = OUT_CHUNK;
    int r = isal_inflate(&g->st);
    if (r < 0) {
      *msg = r == ISAL_INCORRECT_CHECKSUM ? "gzip checksum mismatch" : "invalid gzip data";
      return -1;
    }
    size_t produced = OUT_CHUNK - g->st.avail_out;
    if (produced > 0)
      return (ssize_t)produced;
    if (g->st.block_state != ISAL_BLOCK_FINISH && g->st.avail_in == 0 && g->eof_in) {
      *msg = "unexpected end of gzip data (truncated)";
      return -1;
    }
  }
}

static void *gz_producer(void *arg) {
  gz *g = arg;
  pthread_mutex_lock(&g->mu);
  for (;;) {
    while (g->count == NBUF && !g->cancel)
      pthread_cond_wait(&g->cv, &g->mu);
    if (g->cancel)
      break;
    unsigned slot = (g->head + g->count) % NBUF;
    pthread_mutex_unlock(&g->mu);
    const char *msg = NULL;
    ssize_t n = gz_next(g, g->bufs[slot], &msg);
    pthread_mutex_lock(&g->mu);
    if (n <= 0) {
      g->error = n < 0 ? msg : NULL;
      g->finished = true;
      pthread_cond_broadcast(&g->cv);
      break;
    }
    g->lens[slot] = (size_t)n;
    g->count++;
    pthread_cond_broadcast(&g->cv);
  }
  pthread_mutex_unlock(&g->mu);
  return NULL;
}

/* The next inflated chunk: its length (*buf set), 0 at the end, or -1 with
 * *msg set. */
static ssize_t gz_pull(gz *g, const void **buf, const char **msg) {
  pthread_mutex_lock(&g->mu);
  if (g->held) {
    g->head = (g->head + 1) % NBUF;
    g->count--;
    g->held = false;
    pthread_cond_broadcast(&g->cv);
  }
  while (g->count == 0 && !g->finished)
    pthread_cond_wait(&g->cv, &g->mu);
  ssize_t n;
  if (g->count > 0) {
    g->held = true;
    *buf = g->bufs[g->head];
    n = (ssize_t)g->lens[g->head];
  } else {
    *msg = g->error;
    n = g->error ? -1 : 0;
  }
  pthread_mutex_unlock(&g->mu);
  return n;
}

static la_ssize_t gz_read(struct archive *a, void *userdata, const void **buf) {
  const char *msg = NULL;
  ssize_t n = gz_pull(userdata, buf, &msg);
  if (n < 0) {
    archive_set_error(a, EIO, "%s", msg);
    return -1;
  }
  return n;
}

static gz *gz_open(int fd, uint64_t file_size, const hoist_bundle_opts *opts) {
  gz *g = hoist_malloc0(sizeof *g);
  g->fd = fd;
  g->file_size = file_size;
  g->opts = opts;
  g->in = malloc(IN_CHUNK);
  for (int i = 0; i < NBUF; i++)
    if (!(g->bufs[i] = malloc(OUT_CHUNK)))
      abort();
  if (!g->in)
    abort();
  isal_inflate_init(&g->st);
  g->st.crc_flag = ISAL_GZIP;
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->cv, NULL);
  g->started = pthread_create(&g->thread, NULL, gz_producer, g) == 0;
  if (!g->started) {
    g->finished = true;
    g->error = "cannot start the inflate thread";
  }
  return g;
}

static void gz_close(gz *g) {
  pthread_mutex_lock(&g->mu);
  g->cancel = true;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
  if (g->started)
    pthread_join(g->thread, NULL);
  pthread_mutex_destroy(&g->mu);
  pthread_cond_destroy(&g->cv);
  for (int i = 0; i < NBUF; i++)
    free(g->bufs[i]);
  free(g->in);
  free(g);
}

/* ------------------------------------------------------------ the model */

/* One tar member (or a directory it implies), by bundle-relative path. */
typedef struct entry {
  char *path;
  char type; /* 'f' file, 'd' directory, 'l' symlink */
  bool explicit_dir;
  bool written; /* exists in the stage */
  mode_t perm;
  struct timespec mtime;
  uint64_t size;
  char sha[HOIST_DIGEST_HEX_LEN + 1];
  char *target;
} entry;

typedef struct pass {
  const hoist_bundle_opts *o;
  uint64_t max_size, max_entries;
  const char *tarball;

  entry *ents;
  size_t n_ents, cap_ents;
  hoist_map idx; /* path -> index in ents (member names: the seeded map) */
  char *top;     /* the single top-level directory's name */
  mode_t top_perm;

  bool have_manifest;
  hoist_buf mbuf;
  hoist_bundle_manifest *man;
  hoist_map man_idx; /* files[].path -> first index */

  hoist_err *fail; /* the failure of the lowest check number so far */
  int fail_check;
  bool stop; /* an early stop: read no further */

  int payload_fd; /* -1: verify only */
  uint64_t total, n_members, payload_bytes;
  hoist_sha256 *sha;
} pass;

static void record(pass *p, int check, hoist_err *e) {
  if (!p->fail || check < p->fail_check) {
    hoist_err_free(p->fail);
    p->fail = e;
    p->fail_check = check;
  } else {
    hoist_err_free(e);
  }
}

static __attribute__((format(printf, 4, 5))) void failf(pass *p, int check, int code,
                                                        const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0)
    abort();
  va_end(ap);
  hoist_err *e = NULL;
  hoist_err_set(&e, code, "%s", msg);
  free(msg);
  record(p, check, e);
}

static entry *lookup(pass *p, const char *path) {
  uint64_t i;
  return hoist_map_get(&p->idx, path, strlen(path), &i) ? &p->ents[i] : NULL;
}

/* The first index of path among the manifest's files, in *i. */
static bool manifest_lookup(pass *p, const char *path, size_t *i) {
  uint64_t v;
  if (!hoist_map_get(&p->man_idx, path, strlen(path), &v))
    return false;
  if (i)
    *i = (size_t)v;
  return true;
}

/* Adds an entry for path, which lookup did not find. */
static entry *add_entry(pass *p, const char *path, char type) {
  if (p->n_ents == p->cap_ents) {
    p->cap_ents = p->cap_ents ? p->cap_ents * 2 : 64;
    p->ents = hoist_reallocarray(p->ents, p->cap_ents, sizeof *p->ents);
  }
  entry *e = &p->ents[p->n_ents];
  memset(e, 0, sizeof *e);
  e->path = hoist_strdup(path);
  e->type = type;
  e->perm = 0755;
  hoist_map_set(&p->idx, path, strlen(path), p->n_ents);
  p->n_ents++;
  return e;
}

static void pass_free(pass *p) {
  for (size_t i = 0; i < p->n_ents; i++) {
    free(p->ents[i].path);
    free(p->ents[i].target);
  }
  free(p->ents);
  hoist_map_clear(&p->idx);
  hoist_map_clear(&p->man_idx);
  hoist_bundle_manifest_free(p->man);
  hoist_buf_free(&p->mbuf);
  free(p->top);
  hoist_err_free(p->fail);
  hoist_sha256_free(p->sha);
}

/* Normalizes a member name: drops "." and empty components. Returns NULL
 * for an absolute name, one with a ".." component, or one too long to hold. */
static char *normalize_name(const char *name) {
  if (!name || name[0] == '/')
    return NULL;
  hoist_buf b = HOIST_BUF_INIT(0);
  const char *c = name;
  while (*c) {
    const char *end = strchrnul(c, '/');
    size_t len = (size_t)(end - c);
    if (len == 2 && c[0] == '.' && c[1] == '.') {
      hoist_buf_free(&b);
      return NULL;
    }
    if (len > 0 && !(len == 1 && c[0] == '.') &&
        ((b.len && hoist_buf_append(&b, "/", 1, NULL) < 0) ||
         hoist_buf_append(&b, c, len, NULL) < 0)) {
      hoist_buf_free(&b);
      return NULL;
    }
    c = *end ? end + 1 : end;
  }
  return hoist_buf_steal(&b);
}

/* ------------------------------------------------------------ staging */

/* Creates the directory path (and its missing parents) in the stage. */
HOIST_WUR static int stage_dir(pass *p, entry *e, hoist_err **err) {
  if (e->written)
    return 0;
  char *slash = strrchr(e->path, '/');
  const char *base = slash ? slash + 1 : e->path;
  _cleanup_close_ int pfd = -1;
  if (slash) {
    *slash = '\0';
    entry *parent = lookup(p, e->path);
    int r = parent ? stage_dir(p, parent, err) : 0;
    if (r == 0)
      pfd =
          hoist_fs_open_beneath(p->payload_fd, e->path, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0, err);
    *slash = '/';
    if (r < 0 || pfd < 0)
      return r < 0 ? r : pfd;
  }
  int dfd = slash ? pfd : p->payload_fd;
  if (mkdirat(dfd, base, 0755) < 0 && errno != EEXIST)
    return hoist_err_errno(err, errno, "stage %s", e->path);
  e->written = true;
  return 0;
}

/* Opens the parent directory of e in the stage, creating it when needed. */
HOIST_WUR static int stage_parent(pass *p, entry *e, const char **base, hoist_err **err) {
  char *slash = strrchr(e->path, '/');
  *base = slash ? slash + 1 : e->path;
  if (!slash)
    return fcntl(p->payload_fd, F_DUPFD_CLOEXEC, 3);
  *slash = '\0';
  entry *parent = lookup(p, e->path);
  int r = parent ? stage_dir(p, parent, err) : 0;
  int fd = r < 0 ? r
                 : hoist_fs_open_beneath(p->payload_fd, e->path, O_PATH | O_DIRECTORY | O_NOFOLLOW,
                                         0, err);
  *slash = '/';
  return fd;
}

/* Gives staged directories their modes and times, deepest first (a
 * directory's time changes when something is created in it). */
HOIST_WUR static int stage_finish_dirs(pass *p, hoist_err **err) {
  for (size_t i = p->n_ents; i-- > 0;) {
    entry *e = &p->ents[i];
    if (e->type != 'd' || !e->written)
      continue;
    _cleanup_close_ int fd =
        hoist_fs_open_beneath(p->payload_fd, e->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, err);
    if (fd < 0)
      return fd;
    if (fchmod(fd, e->perm | 0700) < 0)
      return hoist_err_errno(err, errno, "chmod %s", e->path);
    if (e->explicit_dir) {
      struct timespec ts[2] = {e->mtime, e->mtime};
      futimens(fd, ts);
    }
  }
  return fchmod(p->payload_fd, p->top_perm | 0700) < 0 ? hoist_err_errno(err, errno, "chmod") : 0;
}

/* ------------------------------------------------------------ the pass */

static void on_manifest(pass *p) {
  hoist_err *e = NULL;
  if (hoist_bundle_manifest_parse(p->mbuf.data, p->mbuf.len, &p->man, &e) < 0) {
    /* check 3 (JSON) or 4 (fields) */
    record(p, strstr(e->msg, "malformed") ? 3 : 4, e);
    return;
  }
  if (hoist_bundle_manifest_check_arch(p->man, p->o->arch, &e) < 0) {
    record(p, 5, e);
    return;
  }
  for (size_t i = 0; i < p->man->n_files; i++) {
    const char *path = p->man->files[i].path;
    if (path && !hoist_map_add(&p->man_idx, path, strlen(path), i, NULL))
      continue; /* listed again: the first index stays */
  }
}

/* manifest.json outgrew its buffer (more data than its header said): the
 * failure of check 3, and no parse of what the buffer holds. */
static void manifest_too_large(pass *p, bool *is_manifest) {
  failf(p, 3, HOIST_E_LIMIT, "malformed manifest.json: larger than %u bytes",
        HOIST_BUNDLE_MANIFEST_MAX);
  *is_manifest = false;
}

/* Reads a regular file's data: hashes it, writes it to fd when fd >= 0,
 * keeps it in p->mbuf while *is_manifest (which turns false, the failure
 * recorded, when it outgrows the buffer). Returns a negative code on a tar
 * error (already recorded). */
static int read_file_data(pass *p, struct archive *a, entry *e, uint64_t size, int fd,
                          bool *is_manifest) {
  uint64_t pos = 0;
  static const char zeros[65536];
  hoist_err *werr = NULL;
  for (;;) {
    const void *buf = NULL;
    size_t len = 0;
    la_int64_t off = 0;
    int r = archive_read_data_block(a, &buf, &len, &off);
    if (r == ARCHIVE_EOF) {
      /* a sparse member ending in a hole */
      if (pos >= size)
        break;
      off = (la_int64_t)size;
      len = 0;
    } else if (r != ARCHIVE_OK) {
      failf(p, 1, HOIST_E_FORMAT, "tar extraction reported warnings or errors: %s",
            archive_error_string(a) ? archive_error_string(a) : "read error");
      return -1;
    }
    /* a sparse member: the hole reads as zeros */
    while (off >= 0 && (uint64_t)off > pos) {
      size_t z = (uint64_t)off - pos > sizeof zeros ? sizeof zeros : (size_t)((uint64_t)off - pos);
      hoist_sha256_update(p->sha, zeros, z);
      if (*is_manifest && hoist_buf_append(&p->mbuf, zeros, z, NULL) < 0)
        manifest_too_large(p, is_manifest);
      if (fd >= 0 && hoist_fs_write_all(fd, zeros, z, &werr) < 0)
        goto write_failed;
      pos += z;
    }
    if (len == 0)
      continue;
    hoist_sha256_update(p->sha, buf, len);
    if (*is_manifest && hoist_buf_append(&p->mbuf, buf, len, NULL) < 0)
      manifest_too_large(p, is_manifest);
    if (fd >= 0 && hoist_fs_write_all(fd, buf, len, &werr) < 0)
      goto write_failed;
    pos += len;
  }
  hoist_sha256_final_hex(p->sha, e->sha);
  e->size = pos;
  return 0;
write_failed:
  hoist_err_wrap(&werr, "stage %s", e->path);
  record(p, 0, werr);
  p->stop = true;
  return -1;
}

static const char *kind_name(mode_t type) {
  switch (type) {
  case AE_IFCHR:
  case AE_IFBLK:
    return "device node";
  case AE_IFIFO:
    return "fifo";
  case AE_IFSOCK:
    return "socket";
  default:
    return "special file";
  }
}

/* Takes one tar member. Returns -1 when the pass must stop. */
static int on_member(pass *p, struct archive *a, struct archive_entry *ae) {
  static const char *const shape = "expected a single top-level bundle directory";
  if (++p->n_members > p->max_entries) {
    failf(p, 8, HOIST_E_LIMIT, "runtime bundle has more than %llu entries (--max-entries)",
          (unsigned long long)p->max_entries);
    p->stop = true;
    return -1;
  }
  _cleanup_free_ char *name = normalize_name(archive_entry_pathname(ae));
  mode_t type = archive_entry_filetype(ae);
  bool hardlink = archive_entry_hardlink(ae) != NULL;
  if (!name) {
    failf(p, 2, HOIST_E_UNSAFE, "%s", shape);
    return 0;
  }
  if (!*name) { /* "." or "./": the archive's root */
    if (type != AE_IFDIR || hardlink)
      failf(p, 2, HOIST_E_FORMAT, "%s", shape);
    return 0;
  }
  char *slash = strchr(name, '/');
  size_t toplen = slash ? (size_t)(slash - name) : strlen(name);
  if (!p->top) {
    p->top = strndup(name, toplen);
  } else if (strlen(p->top) != toplen || strncmp(p->top, name, toplen) != 0) {
    failf(p, 2, HOIST_E_FORMAT, "%s", shape);
    return 0;
  }
  if (!slash) { /* the top-level directory itself */
    if (type != AE_IFDIR || hardlink)
      failf(p, 2, HOIST_E_FORMAT, "%s", shape);
    else
      p->top_perm = archive_entry_perm(ae) & 0777;
    return 0;
  }
  const char *rel = slash + 1;

  if (hardlink) {
    failf(p, 8, HOIST_E_UNSAFE, "hardlink not allowed in a runtime bundle: %s", rel);
    return 0;
  }
  if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
    failf(p, 8, HOIST_E_UNSAFE, "%s not allowed in a runtime bundle: %s", kind_name(type), rel);
    return 0;
  }
  uint64_t size =
      type == AE_IFREG && archive_entry_size(ae) > 0 ? (uint64_t)archive_entry_size(ae) : 0;
  p->total += size;
  if (p->total > p->max_size) {
    failf(p, 8, HOIST_E_LIMIT, "runtime bundle exceeds the size limit of %llu bytes (--max-size)",
          (unsigned long long)p->max_size);
    p->stop = true;
    return -1;
  }

  /* every parent must be a directory (never a symlink or a file) */
  _cleanup_free_ char *prefix = hoist_strdup(rel);
  for (char *s = strchr(prefix, '/'); s; s = strchr(s + 1, '/')) {
    *s = '\0';
    entry *parent = lookup(p, prefix);
    if (!parent) {
      add_entry(p, prefix, 'd');
    } else if (parent->type != 'd') {
      *s = '/';
      failf(p, 2, HOIST_E_UNSAFE, "payload path below a non-directory: %s", rel);
      return 0;
    }
    *s = '/';
  }
  char t = type == AE_IFREG ? 'f' : type == AE_IFDIR ? 'd' : 'l';
  entry *e = lookup(p, rel);
  if (e) {
    if (e->type == 'd' && t == 'd' && !e->explicit_dir) {
      e->explicit_dir = true;
      e->perm = archive_entry_perm(ae) & 0777;
      e->mtime = (struct timespec){archive_entry_mtime(ae), archive_entry_mtime_nsec(ae)};
      return 0;
    }
    failf(p, 2, HOIST_E_FORMAT, "duplicate payload path in tarball: %s", rel);
    return 0;
  }
  e = add_entry(p, rel, t);
  e->perm = archive_entry_perm(ae) & 0777;
  e->mtime = (struct timespec){archive_entry_mtime(ae), archive_entry_mtime_nsec(ae)};
  e->explicit_dir = t == 'd';
  bool write = p->payload_fd >= 0 && !p->fail;
  hoist_err *werr = NULL;
  _cleanup_close_ int fd = -1;

  if (t == 'd') {
    if (write && stage_dir(p, e, &werr) < 0)
      goto write_failed;
    return 0;
  }
  if (t == 'l') {
    const char *target = archive_entry_symlink(ae);
    e->target = hoist_strdup(target ? target : "");
    if (write) {
      const char *base;
      _cleanup_close_ int pfd = stage_parent(p, e, &base, &werr);
      if (pfd < 0)
        goto write_failed;
      if (symlinkat(e->target, pfd, base) < 0) {
        hoist_err_errno(&werr, errno, "symlink");
        goto write_failed;
      }
      struct timespec ts[2] = {e->mtime, e->mtime};
      utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW);
      e->written = true;
    }
    return 0;
  }

  /* a regular file */
  bool is_manifest = strcmp(rel, "manifest.json") == 0;
  if (is_manifest) {
    p->have_manifest = true;
    if (size > HOIST_BUNDLE_MANIFEST_MAX) {
      failf(p, 3, HOIST_E_LIMIT, "malformed manifest.json: larger than %u bytes",
            HOIST_BUNDLE_MANIFEST_MAX);
      is_manifest = false;
    }
  }
  size_t mi;
  if (p->man && manifest_lookup(p, rel, &mi)) {
    const hoist_bundle_file *f = &p->man->files[mi];
    if (f->entry_type && strcmp(f->entry_type, "file") == 0 && f->size_valid && size > f->size) {
      failf(p, 8, HOIST_E_DIGEST, "size mismatch: %s", rel);
      p->stop = true;
      return -1;
    }
  }
  p->payload_bytes += size;
  if (write) {
    const char *base;
    _cleanup_close_ int pfd = stage_parent(p, e, &base, &werr);
    if (pfd < 0)
      goto write_failed;
    fd = hoist_fs_open_beneath(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600, &werr);
    if (fd < 0)
      goto write_failed;
  }
  if (read_file_data(p, a, e, size, fd, &is_manifest) < 0)
    return -1;
  if (fd >= 0) {
    struct timespec ts[2] = {e->mtime, e->mtime};
    if (fchmod(fd, e->perm) < 0 || futimens(fd, ts) < 0) {
      hoist_err_errno(&werr, errno, "chmod");
      goto write_failed;
    }
    e->written = true;
  }
  if (is_manifest)
    on_manifest(p);
  return 0;

write_failed:
  hoist_err_wrap(&werr, "stage %s", rel);
  record(p, 0, werr);
  p->stop = true;
  return -1;
}

/* ------------------------------------------------------- the final checks */

enum { R_FOUND, R_MISSING, R_OUTSIDE, R_LOOP };

/* Resolves path inside the bundle as the kernel would, following symlinks
 * (absolute targets and ".." above the bundle root count as outside). On
 * R_FOUND *out is the final entry, NULL for the bundle root. */
static int resolve(pass *p, const char *path, entry **out) {
  _cleanup_buf_ hoist_buf cur = HOIST_BUF_INIT(HOIST_PATH_BUF_MAX);
  _cleanup_free_ char *rest = hoist_strdup(path);
  int links = 0;
  bool missing = false;
  size_t pos = 0;
  /* a path that outgrows the buffer cannot be resolved inside: outside */
  if (hoist_buf_append(&cur, "", 0, NULL) < 0)
    return R_OUTSIDE;
  while (rest[pos]) {
    char *c = rest + pos;
    char *end = strchrnul(c, '/');
    size_t len = (size_t)(end - c);
    size_t next = *end ? (size_t)(end - rest) + 1 : (size_t)(end - rest);
    bool last = !*end || !rest[next];
    if (len == 0 || (len == 1 && c[0] == '.')) {
      pos = next;
      continue;
    }
    if (len == 2 && c[0] == '.' && c[1] == '.') {
      if (cur.len == 0)
        return R_OUTSIDE;
      char *s = strrchr(cur.data, '/');
      cur.len = s ? (size_t)(s - cur.data) : 0;
      cur.data[cur.len] = '\0';
      pos = next;
      continue;
    }
    size_t oldlen = cur.len;
    if ((cur.len && hoist_buf_append(&cur, "/", 1, NULL) < 0) ||
        hoist_buf_append(&cur, c, len, NULL) < 0)
      return R_OUTSIDE;
    pos = next;
    if (missing)
      continue;
    entry *e = lookup(p, cur.data);
    if (!e) {
      missing = true;
    } else if (e->type == 'l') {
      if (++links > MAX_LINKS)
        return R_LOOP;
      if (!e->target[0] || e->target[0] == '/')
        return R_OUTSIDE;
      char *nrest = hoist_asprintf("%s/%s", e->target, rest + pos);
      free(rest);
      rest = nrest;
      pos = 0;
      cur.len = oldlen;
      cur.data[oldlen] = '\0';
    } else if (e->type == 'f' && !last) {
      missing = true;
    }
  }
  if (missing)
    return R_MISSING;
  *out = cur.len ? lookup(p, cur.data) : NULL;
  return R_FOUND;
}

static int fail_now(hoist_err **err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
HOIST_WUR static int fail_now(hoist_err **err, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0)
    abort();
  va_end(ap);
  int r = hoist_err_set(err, code, "%s", msg);
  free(msg);
  return r;
}

/* Check 6: each files[] entry against the payload, in manifest order. */
HOIST_WUR static int check_files(pass *p, hoist_err **err) {
  const hoist_bundle_manifest *m = p->man;
  size_t n_regular = 0;
  for (size_t i = 0; i < m->n_files; i++) {
    const hoist_bundle_file *f = &m->files[i];
    if (hoist_bundle_manifest_check_entry(m, i, err) < 0)
      return -1;
    size_t first;
    if (manifest_lookup(p, f->path, &first) && first != i)
      return fail_now(err, HOIST_E_FORMAT, "duplicate manifest-listed payload path: %s", f->path);
    entry *e = lookup(p, f->path);
    if (strcmp(f->entry_type, "file") == 0) {
      n_regular++;
      if (!e || e->type != 'f')
        return fail_now(err, HOIST_E_FORMAT, "missing manifest-listed payload path: %s", f->path);
      if (strcmp(e->sha, f->sha256) != 0)
        return fail_now(err, HOIST_E_DIGEST, "checksum mismatch: %s", f->path);
      if (e->size != f->size)
        return fail_now(err, HOIST_E_DIGEST, "size mismatch: %s", f->path);
    } else {
      if (!e || e->type != 'l')
        return fail_now(err, HOIST_E_FORMAT, "missing manifest-listed payload path: %s", f->path);
      if (!e->target[0] || e->target[0] == '/')
        return fail_now(err, HOIST_E_UNSAFE, "symlink target is not relative: %s", f->path);
      entry *dst;
      int r = resolve(p, f->path, &dst);
      if (r == R_OUTSIDE)
        return fail_now(err, HOIST_E_UNSAFE, "symlink points outside the bundle: %s", f->path);
      if (r == R_LOOP)
        return fail_now(err, HOIST_E_UNSAFE, "symlink loop: %s", f->path);
      if (f->has_target && strcmp(f->target, e->target) != 0)
        return fail_now(err, HOIST_E_FORMAT, "symlink target mismatch: %s", f->path);
    }
  }
  if (n_regular == 0)
    return fail_now(err, HOIST_E_FORMAT, "manifest.json lists no regular files");
  return 0;
}

static const char *const required_binaries[] = {
    "usr/bin/nvidia-cdi-hook",
    "usr/bin/nvidia-container-runtime",
    "usr/bin/nvidia-container-runtime-hook",
    "usr/bin/nvidia-container-cli",
    "usr/bin/nvidia-ctk",
};

/* Check 7: the runtime assets the image needs. */
HOIST_WUR static int check_required(pass *p, hoist_err **err) {
  const hoist_bundle_manifest *m = p->man;
  size_t i;
  for (size_t b = 0; b < sizeof required_binaries / sizeof *required_binaries; b++) {
    if (!manifest_lookup(p, required_binaries[b], &i))
      return fail_now(err, HOIST_E_FORMAT, "required runtime asset missing from manifest.json: %s",
                      required_binaries[b]);
    if (strcmp(m->files[i].entry_type, "file") != 0)
      return fail_now(err, HOIST_E_FORMAT, "invalid required binary entry type: %s",
                      required_binaries[b]);
  }
  static const char config[] = "etc/nvidia-container-runtime/config.toml";
  if (!manifest_lookup(p, config, &i))
    return fail_now(err, HOIST_E_FORMAT, "required runtime asset missing from manifest.json: %s",
                    config);
  entry *d = lookup(p, "etc/nvidia-container-runtime");
  if (!d || d->type != 'd')
    return fail_now(err, HOIST_E_FORMAT,
                    "required path is not a directory: etc/nvidia-container-runtime");
  _cleanup_free_ char *pattern =
      hoist_asprintf("usr/lib/%s/libnvidia-container*.so*", hoist_bundle_libdir(p->o->arch));
  size_t n = 0;
  for (i = 0; i < m->n_files; i++) {
    const char *path = m->files[i].path;
    if (fnmatch(pattern, path, FNM_PATHNAME | FNM_PERIOD) != 0)
      continue;
    n++;
    entry *dst = NULL;
    if (resolve(p, path, &dst) != R_FOUND || !dst || dst->type != 'f')
      return fail_now(err, HOIST_E_FORMAT,
                      "required library does not resolve to a regular file: %s", path);
  }
  if (n == 0)
    return fail_now(err, HOIST_E_FORMAT, "missing required library subtree: %s", pattern);
  return 0;
}

/* Check 8: nothing on disk that the manifest does not list. */
HOIST_WUR static int check_unlisted(pass *p, hoist_err **err) {
  for (size_t i = 0; i < p->n_ents; i++) {
    entry *e = &p->ents[i];
    if (e->type == 'd' || strcmp(e->path, "manifest.json") == 0)
      continue;
    if (!manifest_lookup(p, e->path, NULL))
      return fail_now(err, HOIST_E_FORMAT, "unlisted payload path present on disk: %s", e->path);
  }
  return 0;
}

HOIST_WUR static int take_failure(pass *p, hoist_err **err) {
  int code = p->fail->code;
  if (err && !*err)
    *err = p->fail;
  else
    hoist_err_free(p->fail);
  p->fail = NULL;
  return -code;
}

/* Check 1 and the streaming pass; then checks 2-8 in order. */
HOIST_WUR static int run_pass(pass *p, const char *tarball, hoist_err **err) {
  struct stat st;
  if (stat(tarball, &st) < 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return hoist_err_set(err, ENOENT, "tarball not found: %s", tarball);
    return hoist_err_errno(err, errno, "tarball is not a readable file: %s", tarball);
  }
  if (!S_ISREG(st.st_mode))
    return hoist_err_set(err, EINVAL, "tarball is not a readable file: %s", tarball);
  _cleanup_close_ int fd = open(tarball, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return hoist_err_errno(err, errno, "tarball is not a readable file: %s", tarball);
  unsigned char magic[2];
  ssize_t n = pread(fd, magic, 2, 0);
  if (n != 2 || magic[0] != 0x1f || magic[1] != 0x8b)
    return hoist_err_set(err, HOIST_E_FORMAT, "tarball is not gzip-compressed: %s", tarball);

  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  gz *g = gz_open(fd, (uint64_t)st.st_size, p->o);

  struct archive *a = archive_read_new();
  archive_read_support_format_tar(a);
  if (archive_read_open(a, g, NULL, gz_read, NULL) != ARCHIVE_OK) {
    failf(p, 1, HOIST_E_FORMAT, "tar extraction reported warnings or errors: %s",
          archive_error_string(a) ? archive_error_string(a) : "open");
    goto done;
  }
  for (;;) {
    struct archive_entry *ae;
    int ar = archive_read_next_header(a, &ae);
    if (ar == ARCHIVE_EOF)
      break;
    if (ar != ARCHIVE_OK) {
      failf(p, 1, HOIST_E_FORMAT, "tar extraction reported warnings or errors: %s",
            archive_error_string(a) ? archive_error_string(a) : "bad header");
      goto done;
    }
    if (on_member(p, a, ae) < 0)
      goto done;
  }
  /* the rest of the gzip stream: its trailer (CRC, size) must check out */
  for (;;) {
    const char *msg = NULL;
    const void *buf;
    ssize_t got = gz_pull(g, &buf, &msg);
    if (got < 0) {
      failf(p, 1, HOIST_E_FORMAT, "tar extraction reported warnings or errors: %s", msg);
      goto done;
    }
    if (got == 0)
      break;
    p->total += (uint64_t)got;
    if (p->total > p->max_size + (1U << 20)) {
      failf(p, 8, HOIST_E_LIMIT, "runtime bundle exceeds the size limit of %llu bytes (--max-size)",
            (unsigned long long)p->max_size);
      goto done;
    }
  }
done:
  archive_read_free(a);
  gz_close(g);
  if (p->fail && (p->stop || p->fail_check <= 2))
    return take_failure(p, err);
  if (!p->top) {
    failf(p, 2, HOIST_E_FORMAT, "expected a single top-level bundle directory");
    return take_failure(p, err);
  }
  if (!p->have_manifest || !lookup(p, "manifest.json") || lookup(p, "manifest.json")->type != 'f') {
    failf(p, 3, HOIST_E_FORMAT, "missing bundle manifest.json");
    return take_failure(p, err);
  }
  if (p->fail && p->fail_check <= 5)
    return take_failure(p, err);
  if (check_files(p, err) < 0 || check_required(p, err) < 0)
    return -1;
  if (p->fail)
    return take_failure(p, err);
  return check_unlisted(p, err);
}

static void info_fill(pass *p, hoist_bundle_info **info) {
  if (!info)
    return;
  hoist_bundle_info *i = hoist_malloc0(sizeof *i);
  i->bundle_name = hoist_strdup(p->man->bundle_name);
  i->bundle_version = hoist_strdup(p->man->bundle_version);
  i->architecture = hoist_strdup(p->man->architecture);
  i->created_at = hoist_strdup(p->man->created_at);
  i->n_files = p->man->n_files;
  i->payload_bytes = p->payload_bytes;
  *info = i;
}

void hoist_bundle_info_free(hoist_bundle_info *info) {
  if (!info)
    return;
  free(info->bundle_name);
  free(info->bundle_version);
  free(info->architecture);
  free(info->created_at);
  free(info);
}

HOIST_WUR static int pass_init(pass *p, const hoist_bundle_opts *o, hoist_err **err) {
  memset(p, 0, sizeof *p);
  p->payload_fd = -1;
  if (!o || !hoist_bundle_libdir(o->arch))
    return hoist_err_set(err, EINVAL, "unsupported architecture: %s",
                         o && o->arch ? o->arch : "(none)");
  p->o = o;
  p->max_size = o->max_size ? o->max_size : HOIST_BUNDLE_DEFAULT_MAX_SIZE;
  p->max_entries = o->max_entries ? o->max_entries : HOIST_BUNDLE_DEFAULT_MAX_ENTRIES;
  hoist_buf_init(&p->mbuf, HOIST_BUNDLE_MANIFEST_MAX);
  p->sha = hoist_sha256_new();
  return 0;
}

int hoist_bundle_verify(const char *tarball, const hoist_bundle_opts *opts,
                        hoist_bundle_info **info, hoist_err **err) {
  if (!tarball || !*tarball)
    return hoist_err_set(err, EINVAL, "no runtime bundle tarball given");
  pass p;
  if (pass_init(&p, opts, err) < 0)
    return -EINVAL;
  int r = run_pass(&p, tarball, err);
  if (r == 0)
    info_fill(&p, info);
  pass_free(&p);
  return r < 0 ? hoist_err_wrap(err, "runtime bundle validation failed") : 0;
}

int hoist_bundle_stage(const char *tarball, const char *into, const hoist_bundle_opts *opts,
                       char **staged_dir, hoist_bundle_info **info, hoist_err **err) {
  if (!into || !*into)
    into = HOIST_BUNDLE_DEFAULT_STAGE_DIR;
  _cleanup_free_ char *into_copy = hoist_strdup(into);
  for (size_t n = strlen(into_copy); n > 1 && into_copy[n - 1] == '/'; n--)
    into_copy[n - 1] = '\0';
  into = into_copy;
  pass p;
  if (pass_init(&p, opts, err) < 0)
    return -EINVAL;
  const char *arch = opts->arch;
  /* a directory the user names (trusted, may be absolute) */
  _cleanup_close_ int intofd = -1;
  int r = hoist_fs_mkdir_p(AT_FDCWD, into, 0755, &intofd, err);
  /* the old stage goes first: a failed run never leaves a stale one */
  if (r == 0)
    r = hoist_fs_rm_rf_at(intofd, arch, err);
  if (r < 0) {
    pass_free(&p);
    return hoist_err_wrap(err, "stage into %s", into);
  }
  if (!tarball || !*tarball) {
    pass_free(&p);
    return hoist_err_set(err, EINVAL, "no runtime bundle tarball given");
  }

  char tmpname[64];
  for (unsigned attempt = 0;; attempt++) {
    snprintf(tmpname, sizeof tmpname, ".%s.tmp-%d-%u", arch, (int)getpid(), attempt);
    if (mkdirat(intofd, tmpname, 0700) == 0)
      break;
    if (errno != EEXIST || attempt > 1000) {
      r = hoist_err_errno(err, errno, "mkdir %s/%s", into, tmpname);
      pass_free(&p);
      return r;
    }
  }
  _cleanup_close_ int tmpfd = openat(intofd, tmpname, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (tmpfd < 0 || mkdirat(tmpfd, ".payload", 0700) < 0 ||
      (p.payload_fd = openat(tmpfd, ".payload", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
    r = hoist_err_errno(err, errno, "mkdir %s/%s", into, tmpname);
    goto out;
  }
  p.top_perm = 0755;
  r = run_pass(&p, tarball, err);
  if (r < 0) {
    hoist_err_wrap(err, "runtime bundle validation failed");
    goto out;
  }
  if ((r = stage_finish_dirs(&p, err)) < 0)
    goto out;
  if (renameat(tmpfd, ".payload", tmpfd, p.man->bundle_name) < 0 || fchmod(tmpfd, 0755) < 0) {
    r = hoist_err_errno(err, errno, "rename stage");
    goto out;
  }
  if ((r = hoist_fs_rm_rf_at(intofd, arch, err)) < 0)
    goto out;
  if (renameat(intofd, tmpname, intofd, arch) < 0) {
    r = hoist_err_errno(err, errno, "rename %s/%s to %s", into, tmpname, arch);
    goto out;
  }
  fsync(intofd);
  if (staged_dir)
    *staged_dir = hoist_asprintf("%s/%s/%s", into, arch, p.man->bundle_name);
  info_fill(&p, info);
out:
  if (p.payload_fd >= 0)
    close(p.payload_fd);
  if (r < 0)
    hoist_best_effort(hoist_fs_rm_rf_at(intofd, tmpname, NULL)); /* the stage's sweep */
  pass_free(&p);
  return r;
}
