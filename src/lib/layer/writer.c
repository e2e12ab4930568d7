/*
 * The layer writer: walk -> sorted entry list -> tar (libarchive) on this
 * thread, hashed as it is produced; a second thread feeds the compressor
 * (gzip's workers compress blocks of the tar in parallel) and the sink. See
 * layer.h for the contract.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "hoist/fs.h"
#include "hoist/layer.h"
#include "hoist/limits.h"
#include "hoist/map.h"

#define QUEUE_BUFS 4
#define WHITEOUT_PREFIX ".wh."
#define OPAQUE_NAME ".wh..wh..opq"

/* ------------------------------------------------------------- entries */

typedef enum {
  ENTRY_FILE = 0, /* anything taken from disk as it is */
  ENTRY_WHITEOUT, /* overlay char device 0:0 -> empty regular .wh.<name> */
  ENTRY_OPAQUE,   /* overlay opaque dir -> empty regular .wh..wh..opq */
} entry_kind;

typedef struct entry {
  char *name; /* path in the image, no leading or trailing '/' */
  char *key;  /* sort key: name, except opaque markers sort right after their dir */
  char *src;  /* host path; for markers the path of the dir or device they stand for */
  struct stat st;
  entry_kind kind;
} entry;

typedef struct entry_list {
  entry *v;
  size_t n, cap;
} entry_list;

static void entries_free(entry_list *l) {
  for (size_t i = 0; i < l->n; i++) {
    if (l->v[i].key != l->v[i].name)
      free(l->v[i].key);
    free(l->v[i].name);
    free(l->v[i].src);
  }
  free(l->v);
  l->v = NULL;
  l->n = l->cap = 0;
}

static entry *entries_add(entry_list *l, char *name, char *src, const struct stat *st,
                          entry_kind kind) {
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 256;
    l->v = hoist_reallocarray(l->v, l->cap, sizeof *l->v);
  }
  entry *e = &l->v[l->n++];
  e->name = name;
  e->key = name;
  e->src = src;
  e->st = *st;
  e->kind = kind;
  return e;
}

static char *join(const char *a, const char *b) {
  if (!a || !*a)
    return hoist_strdup(b);
  return hoist_asprintf("%s/%s", a, b);
}

/* Reads one xattr of path into a malloc'd buffer; NULL when absent. */
static char *get_xattr(const char *path, const char *name, ssize_t *len) {
  ssize_t n = lgetxattr(path, name, NULL, 0);
  if (n < 0)
    return NULL;
  char *v = malloc((size_t)n + 1);
  if (!v)
    abort();
  n = lgetxattr(path, name, v, (size_t)n);
  if (n < 0) {
    free(v);
    return NULL;
  }
  v[n] = '\0';
  *len = n;
  return v;
}

static bool is_opaque(const char *path) {
  static const char *const names[] = {"trusted.overlay.opaque", "user.overlay.opaque"};
  for (size_t i = 0; i < 2; i++) {
    ssize_t n = 0;
    _cleanup_free_ char *v = get_xattr(path, names[i], &n);
    if (v && n >= 1 && v[0] == 'y')
      return true;
  }
  return false;
}

typedef struct walk_ctx {
  entry_list *list;
  bool overlay;
} walk_ctx;

/* Adds the children of directory src (named name in the image; "" for the
 * root), recursively. */
HOIST_WUR static int walk_dir(walk_ctx *c, const char *src, const char *name, hoist_err **err) {
  DIR *d = opendir(src);
  if (!d)
    return hoist_err_errno(err, errno, "open directory %s", src);
  int r = 0;
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(d);
    if (!de) {
      if (errno)
        r = hoist_err_errno(err, errno, "read directory %s", src);
      break;
    }
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    _cleanup_free_ char *csrc = join(src, de->d_name);
    struct stat st;
    if (lstat(csrc, &st) < 0) {
      r = hoist_err_errno(err, errno, "stat %s", csrc);
      break;
    }
    if (S_ISSOCK(st.st_mode)) {
      hoist_debug("layer: skipping socket %s", csrc);
      continue;
    }
    if (c->overlay && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
      _cleanup_free_ char *wh = hoist_asprintf(WHITEOUT_PREFIX "%s", de->d_name);
      entries_add(c->list, join(name, wh), steal_pointer(&csrc), &st, ENTRY_WHITEOUT);
      continue;
    }
    if (c->overlay) {
      ssize_t n = 0;
      _cleanup_free_ char *redirect = get_xattr(csrc, "trusted.overlay.redirect", &n);
      _cleanup_free_ char *metacopy = get_xattr(csrc, "trusted.overlay.metacopy", &n);
      if (redirect || metacopy) {
        r = hoist_err_set(err, ENOTSUP,
                          "%s: overlay %s entries are not supported (mount without "
                          "redirect_dir/metacopy)",
                          csrc, redirect ? "redirect_dir" : "metacopy");
        break;
      }
    }
    char *cname = join(name, de->d_name);
    entries_add(c->list, cname, hoist_strdup(csrc), &st, ENTRY_FILE);
    if (S_ISDIR(st.st_mode)) {
      if (c->overlay && is_opaque(csrc)) {
        entry *m =
            entries_add(c->list, join(cname, OPAQUE_NAME), hoist_strdup(csrc), &st, ENTRY_OPAQUE);
        m->key = hoist_asprintf("%s/\x01", cname);
      }
      r = walk_dir(c, csrc, cname, err);
      if (r < 0)
        break;
    }
  }
  closedir(d);
  return r;
}

/* Normalises an image path: no leading, trailing or doubled '/', no "." or
 * ".." components. Returns a new string ("" for the root) or NULL. */
static char *normalize_dest(const char *p, hoist_err **err) {
  int why = 0;
  char *dest = hoist_fs_path_clean(p, 0, &why);
  if (!dest)
    hoist_err_set(err, EINVAL, "destination %s: \"..\" is not allowed", p);
  return dest;
}

HOIST_WUR static int collect(const hoist_layer_source *src, entry_list *list, hoist_err **err) {
  walk_ctx c = {list, src->kind == HOIST_LAYER_OVERLAY};
  switch (src->kind) {
  case HOIST_LAYER_TREE:
  case HOIST_LAYER_OVERLAY: {
    if (!src->dir)
      return hoist_err_set(err, EINVAL, "no directory given");
    struct stat st;
    if (stat(src->dir, &st) < 0)
      return hoist_err_errno(err, errno, "%s", src->dir);
    if (!S_ISDIR(st.st_mode))
      return hoist_err_set(err, ENOTDIR, "%s: not a directory", src->dir);
    return walk_dir(&c, src->dir, "", err);
  }
  case HOIST_LAYER_MAP:
    for (size_t i = 0; i < src->n_maps; i++) {
      const hoist_layer_map *m = &src->maps[i];
      _cleanup_free_ char *dest = normalize_dest(m->dest, err);
      if (!dest)
        return -EINVAL;
      struct stat st;
      if (lstat(m->src, &st) < 0)
        return hoist_err_errno(err, errno, "map %s", m->src);
      if (S_ISDIR(st.st_mode)) {
        if (*dest)
          entries_add(list, hoist_strdup(dest), hoist_strdup(m->src), &st, ENTRY_FILE);
        int r = walk_dir(&c, m->src, dest, err);
        if (r < 0)
          return r;
      } else {
        if (!*dest)
          return hoist_err_set(err, EINVAL, "map %s: a file cannot be the image root", m->src);
        entries_add(list, steal_pointer(&dest), hoist_strdup(m->src), &st, ENTRY_FILE);
      }
    }
    return 0;
  }
  return hoist_err_set(err, EINVAL, "unknown layer source kind %d", (int)src->kind);
}

static int compare_entries(const void *a, const void *b) {
  return strcmp(((const entry *)a)->key, ((const entry *)b)->key);
}

/* ------------------------------------------------------------ hardlinks */

/* (dev, ino) -> index of the first entry seen with that inode, in the
 * seeded map. Returns that index, or stores idx and returns -1. */
static ssize_t inode_first(hoist_map *m, dev_t dev, ino_t ino, size_t idx) {
  const struct { uint64_t dev, ino; } key = {(uint64_t)dev, (uint64_t)ino};
  uint64_t first = 0;
  if (hoist_map_add(m, &key, sizeof key, idx, &first))
    return -1;
  return (ssize_t)first;
}

/* -------------------------------------------------------------- pipeline */

typedef struct pipeline {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint8_t *bufs[QUEUE_BUFS];
  size_t lens[QUEUE_BUFS];
  int filled[QUEUE_BUFS]; /* ring of buffer indices ready for the consumer */
  size_t f_head, f_count;
  int free_stack[QUEUE_BUFS];
  size_t n_free;
  bool eof;     /* producer is done */
  bool aborted; /* producer failed: consumer stops without committing */
  bool failed;  /* consumer failed: producer stops */
  hoist_err *consumer_err;

  /* producer side */
  int cur; /* buffer being filled, -1 none */
  size_t cur_len;
  hoist_sha256 *tar_hash;
  uint64_t tar_size;

  /* consumer side */
  hoist_writer *compressor;
  char digest[HOIST_DIGEST_STR_LEN];
  uint64_t size;
} pipeline;

/* Hands the buffer being filled to the consumer. False when it failed. */
static bool pipe_push(pipeline *p) {
  pthread_mutex_lock(&p->mu);
  bool ok = !p->failed;
  if (ok && p->cur >= 0) {
    p->lens[p->cur] = p->cur_len;
    p->filled[(p->f_head + p->f_count) % QUEUE_BUFS] = p->cur;
    p->f_count++;
    pthread_cond_broadcast(&p->cv);
  } else if (p->cur >= 0) {
    p->free_stack[p->n_free++] = p->cur;
  }
  p->cur = -1;
  p->cur_len = 0;
  pthread_mutex_unlock(&p->mu);
  return ok;
}

/* Gets an empty buffer to fill. False when the consumer failed. */
static bool pipe_take(pipeline *p) {
  pthread_mutex_lock(&p->mu);
  while (!p->failed && p->n_free == 0)
    pthread_cond_wait(&p->cv, &p->mu);
  bool ok = !p->failed;
  if (ok) {
    p->cur = p->free_stack[--p->n_free];
    p->cur_len = 0;
  }
  pthread_mutex_unlock(&p->mu);
  return ok;
}

/* Room at the end of the buffer being filled (taking one when none is), for
 * file data read in place: *room receives its size. NULL when the consumer
 * failed. */
static uint8_t *pipe_space(pipeline *p, size_t *room) {
  if (p->cur < 0 && !pipe_take(p))
    return NULL;
  *room = HOIST_LAYER_BUF_SIZE - p->cur_len;
  return p->bufs[p->cur] + p->cur_len;
}

static la_ssize_t tar_write_cb(struct archive *a, void *ud, const void *data, size_t len) {
  pipeline *p = ud;
  hoist_sha256_update(p->tar_hash, data, len);
  p->tar_size += len;
  /* file data read in place by copy_range (pipe_space): already there */
  if (p->cur >= 0 && data == p->bufs[p->cur] + p->cur_len &&
      len <= HOIST_LAYER_BUF_SIZE - p->cur_len) {
    p->cur_len += len;
    if (p->cur_len == HOIST_LAYER_BUF_SIZE && !pipe_push(p)) {
      archive_set_error(a, EPIPE, "compressor stopped");
      return -1;
    }
    return (la_ssize_t)len;
  }
  size_t done = 0;
  while (done < len) {
    if (p->cur < 0 && !pipe_take(p)) {
      archive_set_error(a, EPIPE, "compressor stopped");
      return -1;
    }
    size_t n = HOIST_LAYER_BUF_SIZE - p->cur_len;
    if (n > len - done)
      n = len - done;
    memcpy(p->bufs[p->cur] + p->cur_len, (const uint8_t *)data + done, n);
    p->cur_len += n;
    done += n;
    if (p->cur_len == HOIST_LAYER_BUF_SIZE && !pipe_push(p)) {
      archive_set_error(a, EPIPE, "compressor stopped");
      return -1;
    }
  }
  return (la_ssize_t)len;
}

static void *consumer_main(void *arg) {
  pipeline *p = arg;
  hoist_err *err = NULL;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    while (p->f_count == 0 && !p->eof && !p->aborted)
      pthread_cond_wait(&p->cv, &p->mu);
    if (p->aborted) {
      pthread_mutex_unlock(&p->mu);
      return NULL;
    }
    if (p->f_count == 0 && p->eof) {
      pthread_mutex_unlock(&p->mu);
      break;
    }
    int b = p->filled[p->f_head];
    p->f_head = (p->f_head + 1) % QUEUE_BUFS;
    p->f_count--;
    pthread_mutex_unlock(&p->mu);

    int r = hoist_writer_write(p->compressor, p->bufs[b], p->lens[b], &err);

    pthread_mutex_lock(&p->mu);
    p->free_stack[p->n_free++] = b;
    if (r < 0) {
      p->failed = true;
      p->consumer_err = err;
    }
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (r < 0)
      return NULL;
  }
  if (hoist_writer_commit(p->compressor, p->digest, &p->size, &err) < 0) {
    pthread_mutex_lock(&p->mu);
    p->failed = true;
    p->consumer_err = err;
    pthread_mutex_unlock(&p->mu);
  }
  return NULL;
}

/* A writer that forwards to the caller's sink without owning it. */
typedef struct borrowed_writer {
  hoist_writer base;
  hoist_writer *target;
} borrowed_writer;

HOIST_WUR static int bw_write(hoist_writer *w, const void *data, size_t len, hoist_err **err) {
  return hoist_writer_write(((borrowed_writer *)w)->target, data, len, err);
}
HOIST_WUR static int bw_commit(hoist_writer *w, char d[HOIST_DIGEST_STR_LEN], uint64_t *size,
                               hoist_err **err) {
  return hoist_writer_commit(((borrowed_writer *)w)->target, d, size, err);
}
static void bw_free(hoist_writer *w) { free(w); }
static const hoist_writer_ops borrowed_ops = {bw_write, bw_commit, bw_free};

/* ------------------------------------------------------------ tar writing */

typedef struct tar_ctx {
  struct archive *a;
  const hoist_layer_options *opts;
  pipeline *pipe; /* most file data is read into its buffers */
  uint8_t *rbuf;  /* HOIST_LAYER_BUF_SIZE, the reads of sparse files */
  uint8_t *zeros;
  hoist_err **err;
} tar_ctx;

static uint32_t map_id(uint32_t id, const hoist_idmap *m, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (id >= m[i].outside && id - m[i].outside < m[i].count)
      return m[i].inside + (id - m[i].outside);
  return id;
}

static bool is_acl_xattr(const char *name) {
  return strcmp(name, "system.posix_acl_access") == 0 ||
         strcmp(name, "system.posix_acl_default") == 0;
}

static bool keep_xattr(const char *name) {
  if (strncmp(name, "user.", 5) == 0)
    return strncmp(name, "user.overlay.", 13) != 0;
  return strcmp(name, "security.capability") == 0 || is_acl_xattr(name);
}

/* Maps the user and group ids named in a system.posix_acl_* value (version
 * 2, then 8-byte entries: tag, perm, id, little-endian) as owners are. A
 * value of another shape is left as the kernel gave it. */
static void map_acl_ids(char *v, size_t len, const hoist_layer_options *o) {
  uint32_t version;
  if (len < 4 || (len - 4) % 8 != 0)
    return;
  memcpy(&version, v, 4);
  if (le32toh(version) != 2)
    return;
  for (size_t off = 4; off < len; off += 8) {
    uint16_t tag;
    uint32_t id;
    memcpy(&tag, v + off, 2);
    memcpy(&id, v + off + 4, 4);
    tag = le16toh(tag);
    if (tag == 2) /* ACL_USER */
      id = htole32(map_id(le32toh(id), o->uid_map, o->n_uid_map));
    else if (tag == 8) /* ACL_GROUP */
      id = htole32(map_id(le32toh(id), o->gid_map, o->n_gid_map));
    memcpy(v + off + 4, &id, 4);
  }
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the xattrs of path to keep (keep_xattr), sorted by name; POSIX ACLs
 * go as their system.posix_acl_* values (containerd's form: the header's
 * mode stays the stat mode), their ids mapped as owners are. */
HOIST_WUR static int add_xattrs(struct archive_entry *ae, const char *path,
                                const hoist_layer_options *o, hoist_err **err) {
  ssize_t n = llistxattr(path, NULL, 0);
  if (n < 0) {
    if (errno == ENOTSUP)
      return 0;
    return hoist_err_errno(err, errno, "list xattrs of %s", path);
  }
  if (n == 0)
    return 0;
  _cleanup_free_ char *names = malloc((size_t)n);
  if (!names)
    abort();
  n = llistxattr(path, names, (size_t)n);
  if (n < 0)
    return hoist_err_errno(err, errno, "list xattrs of %s", path);
  const char *kept[HOIST_LAYER_XATTRS_MAX];
  size_t nk = 0;
  for (char *s = names; s < names + n; s += strlen(s) + 1) {
    if (!keep_xattr(s))
      continue;
    /* never a layer that silently lacks some of them */
    if (nk == HOIST_LAYER_XATTRS_MAX)
      return hoist_err_set(err, HOIST_E_LIMIT,
                           "%s: more than %d extended attributes to keep (user.*, "
                           "security.capability and ACLs; the limit is HOIST_LAYER_XATTRS_MAX)",
                           path, HOIST_LAYER_XATTRS_MAX);
    kept[nk++] = s;
  }
  qsort(kept, nk, sizeof kept[0], cmp_str);
  for (size_t i = 0; i < nk; i++) {
    ssize_t len = 0;
    _cleanup_free_ char *v = get_xattr(path, kept[i], &len);
    if (v && is_acl_xattr(kept[i]))
      map_acl_ids(v, (size_t)len, o);
    if (v)
      archive_entry_xattr_add_entry(ae, kept[i], v, (size_t)len);
  }
  return 0;
}

static int archive_fail(tar_ctx *t, const char *what) {
  int e = archive_errno(t->a);
  return hoist_err_set(t->err, e > 0 ? e : EIO, "%s: %s", what,
                       archive_error_string(t->a) ? archive_error_string(t->a) : "tar error");
}

static int write_data(tar_ctx *t, const void *buf, size_t len, const char *path) {
  while (len > 0) {
    la_ssize_t w = archive_write_data(t->a, buf, len);
    if (w <= 0)
      return archive_fail(t, path);
    buf = (const uint8_t *)buf + w;
    len -= (size_t)w;
  }
  return 0;
}

/* Streams [off, off+len) of fd. With in_place the data is read straight
 * into the compressor's queue (pipe_space), and tar_write_cb sees it is
 * already there: only for an entry whose data tar passes through unchanged
 * and with nothing of its own in between (not a sparse one, whose map tar
 * writes into the data). */
static int copy_range(tar_ctx *t, int fd, off_t off, off_t len, bool in_place, const char *path) {
  while (len > 0) {
    size_t room = HOIST_LAYER_BUF_SIZE;
    uint8_t *dst = t->rbuf;
    if (in_place && !(dst = pipe_space(t->pipe, &room)))
      return hoist_err_set(t->err, EPIPE, "read %s: compressor stopped", path);
    size_t want = len > (off_t)room ? room : (size_t)len;
    ssize_t n = pread(fd, dst, want, off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return hoist_err_errno(t->err, errno, "read %s", path);
    }
    if (n == 0)
      return hoist_err_set(t->err, EIO, "read %s: file shrank while being archived", path);
    uint64_t before = t->pipe->tar_size;
    int r = write_data(t, dst, (size_t)n, path);
    if (r < 0)
      return r;
    /* anything tar wrote of its own would have gone over the data */
    if (in_place && t->pipe->tar_size - before != (uint64_t)n)
      return hoist_err_set(t->err, EIO, "%s: tar wrote bytes of its own into file data", path);
    off += n;
    len -= n;
  }
  return 0;
}

typedef struct extent {
  off_t off, len;
} extent;

/* Data extents of a file that has fewer blocks than its size suggests, in
 * *out (malloc'd). Returns their count, 0 for a file that is one hole, or -1
 * when the file system cannot tell (or the file is dense after all): then it
 * is read whole. */
static ssize_t find_extents(int fd, off_t size, extent **out) {
  *out = NULL;
  size_t n = 0, cap = 0;
  off_t pos = 0;
  while (pos < size) {
    off_t d = lseek(fd, pos, SEEK_DATA);
    if (d < 0) {
      if (errno == ENXIO)
        break; /* only a hole remains */
      free(*out);
      *out = NULL;
      return -1;
    }
    off_t h = lseek(fd, d, SEEK_HOLE);
    if (h < 0 || h > size)
      h = size;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      *out = hoist_reallocarray(*out, cap, sizeof **out);
    }
    (*out)[n++] = (extent){d, h - d};
    pos = h;
  }
  if (n == 1 && (*out)[0].off == 0 && (*out)[0].len == size) {
    free(*out);
    *out = NULL;
    return -1;
  }
  return (ssize_t)n;
}

static int write_zeros(tar_ctx *t, off_t len, const char *path) {
  while (len > 0) {
    size_t n = len > (off_t)HOIST_LAYER_BUF_SIZE ? HOIST_LAYER_BUF_SIZE : (size_t)len;
    int r = write_data(t, t->zeros, n, path);
    if (r < 0)
      return r;
    len -= (off_t)n;
  }
  return 0;
}

static int write_entry(tar_ctx *t, const entry *e, const char *link_target) {
  const hoist_layer_options *o = t->opts;
  struct archive_entry *ae = archive_entry_new();
  if (!ae)
    abort();
  _cleanup_close_ int fd = -1;
  extent *ext = NULL;
  size_t n_ext = 0;
  bool sparse = false;
  int r = 0;

  time_t mtime = e->st.st_mtime;
  if (o->source_date_epoch >= 0 && mtime > o->source_date_epoch)
    mtime = (time_t)o->source_date_epoch;
  archive_entry_copy_pathname(ae, e->name);
  archive_entry_set_uid(ae, map_id((uint32_t)e->st.st_uid, o->uid_map, o->n_uid_map));
  archive_entry_set_gid(ae, map_id((uint32_t)e->st.st_gid, o->gid_map, o->n_gid_map));
  archive_entry_set_mtime(ae, mtime, 0);

  if (e->kind != ENTRY_FILE) {
    archive_entry_set_filetype(ae, AE_IFREG);
    archive_entry_set_perm(ae, e->st.st_mode & 07777);
    archive_entry_set_size(ae, 0);
  } else {
    mode_t m = e->st.st_mode;
    archive_entry_set_mode(ae, m);
    if (link_target) {
      archive_entry_copy_hardlink(ae, link_target);
      archive_entry_set_size(ae, 0);
    } else if (S_ISREG(m)) {
      fd = open(e->src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {
        r = hoist_err_errno(t->err, errno, "open %s", e->src);
        goto out;
      }
      archive_entry_set_size(ae, e->st.st_size);
      if (e->st.st_size > 0 && (off_t)e->st.st_blocks * 512 < e->st.st_size) {
        /* the holes are known either way: written as zeros without reading
         * them, or (o->sparse) described in a GNU sparse 1.0 map */
        ssize_t got = find_extents(fd, e->st.st_size, &ext);
        sparse = got >= 0;
        n_ext = got > 0 ? (size_t)got : 0;
        for (size_t i = 0; o->sparse && i < n_ext; i++)
          archive_entry_sparse_add_entry(ae, ext[i].off, ext[i].len);
        if (o->sparse && sparse && n_ext == 0) /* all hole: one empty extent at the end */
          archive_entry_sparse_add_entry(ae, e->st.st_size, 0);
      } else {
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
      }
    } else if (S_ISLNK(m)) {
      size_t cap = (size_t)e->st.st_size + 1;
      if (cap < 256)
        cap = 256;
      _cleanup_free_ char *target = malloc(cap);
      if (!target)
        abort();
      ssize_t n = readlink(e->src, target, cap);
      if (n < 0 || (size_t)n >= cap) {
        r = hoist_err_errno(t->err, n < 0 ? errno : ENAMETOOLONG, "readlink %s", e->src);
        goto out;
      }
      target[n] = '\0';
      archive_entry_copy_symlink(ae, target);
      archive_entry_set_size(ae, 0);
    } else if (S_ISCHR(m) || S_ISBLK(m)) {
      archive_entry_set_rdevmajor(ae, major(e->st.st_rdev));
      archive_entry_set_rdevminor(ae, minor(e->st.st_rdev));
      archive_entry_set_size(ae, 0);
    } else {
      archive_entry_set_size(ae, 0);
    }
    /* a hardlink shares its target's inode, xattrs included */
    r = link_target ? 0 : add_xattrs(ae, e->src, o, t->err);
    if (r < 0)
      goto out;
  }

  if (archive_write_header(t->a, ae) < ARCHIVE_WARN) {
    r = archive_fail(t, e->name);
    goto out;
  }
  if (fd >= 0) {
    if (sparse) {
      off_t pos = 0;
      for (size_t i = 0; i < n_ext && r == 0; i++) {
        r = write_zeros(t, ext[i].off - pos, e->src);
        if (r == 0)
          r = copy_range(t, fd, ext[i].off, ext[i].len, false, e->src);
        pos = ext[i].off + ext[i].len;
      }
      if (r == 0)
        r = write_zeros(t, e->st.st_size - pos, e->src);
    } else {
      r = copy_range(t, fd, 0, e->st.st_size, true, e->src);
    }
  }
out:
  free(ext);
  archive_entry_free(ae);
  return r;
}

/* ------------------------------------------------------------------ main */

int hoist_layer_epoch_parse(const char *s, int64_t *out, hoist_err **err) {
  *out = -1;
  if (!s || !*s)
    return 0;
  char *end = NULL;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end || v < 0)
    return hoist_err_set(err, EINVAL, "\"%s\" is not a number of seconds", s);
  *out = v;
  return 0;
}

static int write_all_entries(tar_ctx *t, entry_list *list) {
  _cleanup_map_ hoist_map inodes = HOIST_MAP_INIT;
  int r = 0;
  for (size_t i = 0; i < list->n && r == 0; i++) {
    entry *e = &list->v[i];
    const char *link = NULL;
    if (e->kind == ENTRY_FILE && !S_ISDIR(e->st.st_mode) && e->st.st_nlink > 1) {
      ssize_t first = inode_first(&inodes, e->st.st_dev, e->st.st_ino, i);
      if (first >= 0)
        link = list->v[first].name;
    }
    r = write_entry(t, e, link);
  }
  return r;
}

int hoist_layer_write(const hoist_layer_source *src, const hoist_layer_options *opts,
                      hoist_writer *sink, hoist_layer_result *out, hoist_err **err) {
  hoist_layer_options defaults = HOIST_LAYER_OPTIONS_INIT;
  if (!opts)
    opts = &defaults;
  memset(out, 0, sizeof *out);

  entry_list list = {0};
  int r = collect(src, &list, err);
  if (r < 0) {
    entries_free(&list);
    return hoist_err_wrap(err, "layer");
  }
  if (list.n) /* an empty tree has no list at all: qsort wants one */
    qsort(list.v, list.n, sizeof *list.v, compare_entries);
  for (size_t i = 1; i < list.n; i++)
    if (strcmp(list.v[i].key, list.v[i - 1].key) == 0) {
      r = hoist_err_set(err, EEXIST, "layer: %s is given twice (from %s and %s)", list.v[i].name,
                        list.v[i - 1].src, list.v[i].src);
      entries_free(&list);
      return r;
    }

  borrowed_writer *bw = hoist_malloc0(sizeof *bw);
  bw->base.ops = &borrowed_ops;
  bw->target = sink;
  hoist_writer *compressor = NULL;
  r = hoist_layer_compress_writer(opts->compression, opts->level, opts->threads, &bw->base,
                                  &compressor, err);
  if (r < 0) {
    entries_free(&list);
    return hoist_err_wrap(err, "layer");
  }

  pipeline p = {.cur = -1, .compressor = compressor};
  pthread_mutex_init(&p.mu, NULL);
  pthread_cond_init(&p.cv, NULL);
  for (int i = 0; i < QUEUE_BUFS; i++) {
    p.bufs[i] = malloc(HOIST_LAYER_BUF_SIZE);
    if (!p.bufs[i])
      abort();
    p.free_stack[p.n_free++] = i;
  }
  p.tar_hash = hoist_sha256_new();

  tar_ctx t = {.opts = opts, .err = err, .pipe = &p};
  t.rbuf = malloc(HOIST_LAYER_BUF_SIZE);
  t.zeros = calloc(1, HOIST_LAYER_BUF_SIZE);
  if (!t.rbuf || !t.zeros)
    abort();

  pthread_t th;
  bool started = pthread_create(&th, NULL, consumer_main, &p) == 0;
  if (!started) {
    r = hoist_err_set(err, EAGAIN, "layer: cannot start the compression thread");
    goto done;
  }

  /* names go into the pax header as UTF-8, never hdrcharset=BINARY */
  void *locale = hoist_utf8_thread_enter();
  t.a = archive_write_new();
  if (!t.a)
    abort();
  archive_write_set_format_pax_restricted(t.a);
  archive_write_set_bytes_per_block(t.a, 0);
  /* xattrs only as SCHILY.xattr.*, the form Go's archive/tar and GNU tar read */
  archive_write_set_format_option(t.a, "pax", "xattrheader", "SCHILY");
  if (archive_write_open2(t.a, &p, NULL, tar_write_cb, NULL, NULL) != ARCHIVE_OK) {
    r = archive_fail(&t, "layer: start tar");
  } else {
    r = write_all_entries(&t, &list);
    if (r == 0 && archive_write_close(t.a) != ARCHIVE_OK)
      r = archive_fail(&t, "layer: finish tar");
  }
  archive_write_free(t.a);
  hoist_utf8_thread_leave(locale);
  if (r == 0 && p.cur >= 0 && !pipe_push(&p))
    r = -EIO;

  pthread_mutex_lock(&p.mu);
  if (r == 0)
    p.eof = true;
  else
    p.aborted = true;
  pthread_cond_broadcast(&p.cv);
  pthread_mutex_unlock(&p.mu);
  pthread_join(th, NULL);

  if (p.consumer_err) {
    /* the consumer's error is the root cause of any tar error it provoked */
    if (err && *err) {
      hoist_err_free(*err);
      *err = NULL;
    }
    if (err)
      *err = p.consumer_err;
    else
      hoist_err_free(p.consumer_err);
    p.consumer_err = NULL;
    r = hoist_err_wrap(err, "layer");
  } else if (r < 0) {
    r = hoist_err_wrap(err, "layer");
  } else {
    hoist_sha256_final(p.tar_hash, out->diff_id);
    memcpy(out->digest, p.digest, sizeof out->digest);
    out->size = p.size;
    out->tar_size = p.tar_size;
    out->n_entries = list.n;
    out->media_type = hoist_layer_media_type(opts->compression);
  }

done:
  hoist_writer_free(compressor);
  hoist_sha256_free(p.tar_hash);
  for (int i = 0; i < QUEUE_BUFS; i++)
    free(p.bufs[i]);
  pthread_mutex_destroy(&p.mu);
  pthread_cond_destroy(&p.cv);
  free(t.rbuf);
  free(t.zeros);
  entries_free(&list);
  return r;
}
