/* What the archive drivers share (archive-private.h): staging, reading and
 * writing tars with libarchive, decompression. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "archive-private.h"
#include "hoist/fs.h"

#define ARC_BUF_SIZE (1u << 20)

/* ---------------------------------------------------------------- staging */

int arc_stage_open(const char *tmp_dir, arc_stage *st, hoist_err **err) {
  memset(st, 0, sizeof *st);
  char *dir = hoist_asprintf("%s/hoist-archive-XXXXXX", tmp_dir ? tmp_dir : "/var/tmp");
  if (!mkdtemp(dir)) {
    int e = errno;
    free(dir);
    return hoist_err_errno(err, e, "make a staging directory in %s",
                           tmp_dir ? tmp_dir : "/var/tmp");
  }
  st->dir = dir;
  if (hoist_store_open(dir, true, &st->store, err) < 0) {
    arc_stage_close(st);
    return -1;
  }
  return 0;
}

void arc_stage_close(arc_stage *st) {
  hoist_store_close(st->store);
  st->store = NULL;
  if (st->dir) {
    _cleanup_err_ hoist_err *e = NULL;
    if (hoist_fs_rm_rf_at(AT_FDCWD, st->dir, &e) < 0) {
      _cleanup_free_ char *t = hoist_err_text(e);
      hoist_warn("staging directory %s left behind: %s", st->dir, t);
    }
  }
  free(st->dir);
  st->dir = NULL;
}

int arc_stage_copy_blob(arc_stage *st, const char *digest, hoist_writer *w, hoist_err **err) {
  _cleanup_close_ int fd = -1;
  uint64_t size = 0;
  if (hoist_store_open_blob(st->store, digest, &fd, &size, err) < 0)
    return -1;
  _cleanup_free_ char *buf = hoist_malloc0(ARC_BUF_SIZE);
  for (;;) {
    ssize_t n = read(fd, buf, ARC_BUF_SIZE);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return hoist_err_errno(err, errno, "read blob %s", digest);
    if (n == 0)
      return 0;
    if (hoist_writer_write(w, buf, (size_t)n, err) < 0)
      return -1;
  }
}

/* ------------------------------------------------------------------ names */

char *arc_name_clean(const char *name, const char *what, hoist_err **err) {
  size_t n = strlen(name);
  if (n == 0) {
    hoist_err_set(err, HOIST_E_FORMAT, "%s: empty name", what);
    return NULL;
  }
  if (n > HOIST_ARCHIVE_NAME_MAX) {
    hoist_err_set(err, HOIST_E_LIMIT, "%s: name longer than %u bytes (HOIST_ARCHIVE_NAME_MAX)",
                  what, HOIST_ARCHIVE_NAME_MAX);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) {
      hoist_err_set(err, HOIST_E_FORMAT, "%s %.64s: control character in the name", what, name);
      return NULL;
    }
  }
  if (name[0] == '/') {
    hoist_err_set(err, HOIST_E_UNSAFE, "%s %.256s: absolute name", what, name);
    return NULL;
  }
  int why = 0;
  char *clean = hoist_fs_path_clean(name, 255, &why);
  if (!clean) {
    hoist_err_set(err, why == HOIST_FS_PATH_DOTDOT ? HOIST_E_UNSAFE : HOIST_E_LIMIT,
                  "%s %.256s: %s", what, name,
                  why == HOIST_FS_PATH_DOTDOT ? "\"..\" in the name"
                                              : "a component longer than 255 bytes");
    return NULL;
  }
  if (!*clean) {
    free(clean);
    hoist_err_set(err, HOIST_E_FORMAT, "%s %.256s: names the archive's root", what, name);
    return NULL;
  }
  return clean;
}

int arc_name_resolve(const char *link, const char *target, char **out, hoist_err **err) {
  *out = NULL;
  if (!*target || target[0] == '/')
    return hoist_err_set(err, HOIST_E_UNSAFE, "symlink %.256s -> %.256s: %s target", link, target,
                         *target ? "absolute" : "empty");
  if (strlen(link) + strlen(target) + 2 > HOIST_ARCHIVE_NAME_MAX)
    return hoist_err_set(err, HOIST_E_LIMIT, "symlink %.256s: target longer than %u bytes", link,
                         HOIST_ARCHIVE_NAME_MAX);
  /* components of link's directory, then target's, with ".." popping */
  const char *slash = strrchr(link, '/');
  _cleanup_free_ char *joined =
      slash ? hoist_asprintf("%.*s/%s", (int)(slash - link), link, target) : hoist_strdup(target);
  _cleanup_free_ char *res = hoist_malloc0(strlen(joined) + 1);
  size_t len = 0;
  for (char *save = NULL, *c = strtok_r(joined, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
    if (strcmp(c, ".") == 0)
      continue;
    if (strcmp(c, "..") == 0) {
      if (len == 0)
        return hoist_err_set(err, HOIST_E_UNSAFE, "symlink %.256s -> %.256s leaves the archive",
                             link, target);
      char *p = memrchr(res, '/', len);
      len = p ? (size_t)(p - res) : 0;
      res[len] = '\0';
      continue;
    }
    if (len)
      res[len++] = '/';
    size_t cn = strlen(c);
    memcpy(res + len, c, cn);
    len += cn;
    res[len] = '\0';
  }
  if (len == 0)
    return hoist_err_set(err, HOIST_E_FORMAT, "symlink %.256s -> %.256s names the archive's root",
                         link, target);
  *out = steal_pointer(&res);
  return 0;
}

/* ---------------------------------------------------------------- reading */

int arc_reader_open(const char *path, arc_reader *r, hoist_err **err) {
  memset(r, 0, sizeof *r);
  r->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (r->fd < 0)
    return hoist_err_errno(err, errno, "open %s", path);
  struct stat st;
  if (fstat(r->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    int e = errno;
    close(r->fd);
    r->fd = -1;
    return S_ISREG(st.st_mode) || e ? hoist_err_errno(err, e, "stat %s", path)
                                    : hoist_err_set(err, EINVAL, "%s is not a file", path);
  }
  r->path = hoist_strdup(path);
  r->a = archive_read_new();
  if (!r->a)
    abort();
  if (archive_read_support_format_tar(r->a) != ARCHIVE_OK ||
      archive_read_support_filter_gzip(r->a) != ARCHIVE_OK ||
      archive_read_support_filter_zstd(r->a) != ARCHIVE_OK ||
      archive_read_open_fd(r->a, r->fd, 64 << 10) != ARCHIVE_OK) {
    int ret = hoist_err_set(err, HOIST_E_FORMAT, "%s: not a tar archive: %s", path,
                            archive_error_string(r->a) ? archive_error_string(r->a) : "?");
    arc_reader_close(r);
    return ret;
  }
  return 0;
}

void arc_reader_close(arc_reader *r) {
  if (r->a)
    archive_read_free(r->a);
  r->a = NULL;
  if (r->fd >= 0)
    close(r->fd);
  r->fd = -1;
  free(r->path);
  r->path = NULL;
}

void arc_member_clear(arc_member *m) {
  free(m->name);
  free(m->target);
  memset(m, 0, sizeof *m);
}

int arc_reader_next(arc_reader *r, arc_member *m, hoist_err **err) {
  arc_member_clear(m);
  struct archive_entry *e = NULL;
  int ar = archive_read_next_header(r->a, &e);
  if (ar == ARCHIVE_EOF)
    return 0;
  if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN)
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: %s", r->path,
                         archive_error_string(r->a) ? archive_error_string(r->a) : "corrupt tar");
  if (++r->entries > HOIST_ARCHIVE_ENTRIES_MAX)
    return hoist_err_set(err, HOIST_E_LIMIT, "%s: more than %u members (HOIST_ARCHIVE_ENTRIES_MAX)",
                         r->path, HOIST_ARCHIVE_ENTRIES_MAX);
  const char *raw = archive_entry_pathname(e);
  if (!raw)
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: a member without a name", r->path);
  m->name = arc_name_clean(raw, "member", err);
  if (!m->name)
    return hoist_err_wrap(err, "%s", r->path);
  if (archive_entry_hardlink(e))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: member %.256s: hardlinks are not supported",
                         r->path, m->name);
  switch (archive_entry_filetype(e)) {
  case AE_IFREG:
    m->type = ARC_FILE;
    if (archive_entry_sparse_count(e) > 0)
      return hoist_err_set(err, HOIST_E_FORMAT, "%s: member %.256s: sparse files are not supported",
                           r->path, m->name);
    if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0)
      return hoist_err_set(err, HOIST_E_FORMAT, "%s: member %.256s: no size", r->path, m->name);
    m->size = archive_entry_size(e);
    break;
  case AE_IFDIR:
    m->type = ARC_DIR;
    break;
  case AE_IFLNK: {
    m->type = ARC_SYMLINK;
    const char *t = archive_entry_symlink(e);
    if (arc_name_resolve(m->name, t ? t : "", &m->target, err) < 0)
      return hoist_err_wrap(err, "%s", r->path);
    break;
  }
  default:
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "%s: member %.256s: only files, directories and symlinks belong in an "
                         "image archive",
                         r->path, m->name);
  }
  return 1;
}

int arc_reader_copy(arc_reader *r, hoist_writer *w, hoist_err **err) {
  _cleanup_free_ char *buf = hoist_malloc0(ARC_BUF_SIZE);
  for (;;) {
    la_ssize_t n = archive_read_data(r->a, buf, ARC_BUF_SIZE);
    if (n < 0)
      return hoist_err_set(err, HOIST_E_FORMAT, "%s: %s", r->path,
                           archive_error_string(r->a) ? archive_error_string(r->a) : "read error");
    if (n == 0)
      return 0;
    r->bytes += (uint64_t)n;
    if (r->bytes > HOIST_ARCHIVE_DATA_MAX)
      return hoist_err_set(err, HOIST_E_LIMIT,
                           "%s: more than %llu bytes of members (HOIST_ARCHIVE_DATA_MAX)", r->path,
                           (unsigned long long)HOIST_ARCHIVE_DATA_MAX);
    if (hoist_writer_write(w, buf, (size_t)n, err) < 0)
      return -1;
  }
}

typedef struct buf_writer {
  hoist_writer base;
  hoist_buf buf;
} buf_writer;

HOIST_WUR static int bw_write(hoist_writer *w, const void *d, size_t n, hoist_err **err) {
  return hoist_buf_append(&((buf_writer *)w)->buf, d, n, err);
}
static const hoist_writer_ops buf_ops = {.write = bw_write};

int arc_reader_read_all(arc_reader *r, size_t max, const char *what, char **data, size_t *len,
                        hoist_err **err) {
  buf_writer w = {.base = {&buf_ops}, .buf = HOIST_BUF_INIT(max)};
  hoist_err *e = NULL;
  if (arc_reader_copy(r, &w.base, &e) < 0) {
    hoist_buf_free(&w.buf);
    if (hoist_err_root_code(e) == HOIST_E_LIMIT && !strstr(e->msg, "HOIST_ARCHIVE_DATA_MAX")) {
      hoist_err_free(e);
      return hoist_err_set(err, HOIST_E_LIMIT, "%s: %s larger than %zu bytes", r->path, what, max);
    }
    if (err && !*err)
      *err = e;
    else
      hoist_err_free(e);
    return -1;
  }
  if (hoist_buf_append(&w.buf, "", 1, err) < 0) {
    hoist_buf_free(&w.buf);
    return hoist_err_set(err, HOIST_E_LIMIT, "%s: %s larger than %zu bytes", r->path, what, max);
  }
  *len = w.buf.len - 1;
  *data = hoist_buf_steal(&w.buf);
  return 0;
}

/* ---------------------------------------------------------------- writing */

int arc_writer_open(const char *path, arc_writer *w, hoist_err **err) {
  memset(w, 0, sizeof *w);
  w->fd = -1;
  _cleanup_free_ char *d = hoist_strdup(path);
  _cleanup_free_ char *b = hoist_strdup(path);
  w->path = hoist_strdup(path);
  w->tmp = hoist_asprintf("%s/.%s.hoist-XXXXXX", dirname(d), basename(b));
  w->fd = mkostemp(w->tmp, O_CLOEXEC);
  if (w->fd < 0) {
    int e = errno;
    free(w->tmp);
    w->tmp = NULL;
    return hoist_err_errno(err, e, "write %s", path);
  }
  if (fchmod(w->fd, 0644) < 0)
    hoist_debug("chmod %s: %s", w->tmp, strerror(errno)); /* mkostemp's 0600 stays */
  w->a = archive_write_new();
  if (!w->a)
    abort();
  if (archive_write_set_format_pax_restricted(w->a) != ARCHIVE_OK ||
      archive_write_set_bytes_in_last_block(w->a, 1) != ARCHIVE_OK ||
      archive_write_open_fd(w->a, w->fd) != ARCHIVE_OK)
    return hoist_err_set(err, EIO, "write %s: %s", path,
                         archive_error_string(w->a) ? archive_error_string(w->a) : "libarchive");
  return 0;
}

HOIST_WUR static int write_header(arc_writer *w, const char *name, mode_t type, mode_t perm,
                                  uint64_t size, hoist_err **err) {
  struct archive_entry *e = archive_entry_new();
  if (!e)
    abort();
  archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, type);
  archive_entry_set_perm(e, perm);
  archive_entry_set_uid(e, 0);
  archive_entry_set_gid(e, 0);
  archive_entry_set_mtime(e, 0, 0);
  if (type == AE_IFREG)
    archive_entry_set_size(e, (la_int64_t)size);
  int r = archive_write_header(w->a, e);
  archive_entry_free(e);
  if (r != ARCHIVE_OK)
    return hoist_err_set(err, EIO, "write %s: member %s: %s", w->path, name,
                         archive_error_string(w->a) ? archive_error_string(w->a) : "libarchive");
  return 0;
}

HOIST_WUR static int write_data(arc_writer *w, const char *name, const void *data, size_t len,
                                hoist_err **err) {
  const char *p = data;
  while (len > 0) {
    la_ssize_t n = archive_write_data(w->a, p, len);
    if (n <= 0)
      return hoist_err_set(err, EIO, "write %s: member %s: %s", w->path, name,
                           archive_error_string(w->a) ? archive_error_string(w->a) : "libarchive");
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int arc_writer_add_fd(arc_writer *w, const char *name, int fd, uint64_t size, hoist_err **err) {
  if (write_header(w, name, AE_IFREG, 0444, size, err) < 0)
    return -1;
  _cleanup_free_ char *buf = hoist_malloc0(ARC_BUF_SIZE);
  uint64_t left = size;
  while (left > 0) {
    ssize_t n = read(fd, buf, left < ARC_BUF_SIZE ? (size_t)left : ARC_BUF_SIZE);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return hoist_err_errno(err, errno, "write %s: member %s: read", w->path, name);
    if (n == 0)
      return hoist_err_set(err, EIO, "write %s: member %s: its file ended early", w->path, name);
    if (write_data(w, name, buf, (size_t)n, err) < 0)
      return -1;
    left -= (uint64_t)n;
  }
  return 0;
}

int arc_writer_add_bytes(arc_writer *w, const char *name, const void *data, size_t len,
                         hoist_err **err) {
  if (write_header(w, name, AE_IFREG, 0444, len, err) < 0)
    return -1;
  return write_data(w, name, data, len, err);
}

int arc_writer_add_dir(arc_writer *w, const char *name, hoist_err **err) {
  return write_header(w, name, AE_IFDIR, 0755, 0, err);
}

int arc_writer_commit(arc_writer *w, hoist_err **err) {
  if (archive_write_close(w->a) != ARCHIVE_OK)
    return hoist_err_set(err, EIO, "write %s: %s", w->path,
                         archive_error_string(w->a) ? archive_error_string(w->a) : "libarchive");
  if (fsync(w->fd) < 0)
    return hoist_err_errno(err, errno, "write %s: fsync", w->path);
  if (rename(w->tmp, w->path) < 0)
    return hoist_err_errno(err, errno, "write %s: rename", w->path);
  free(w->tmp);
  w->tmp = NULL;
  return 0;
}

void arc_writer_close(arc_writer *w) {
  if (w->a)
    archive_write_free(w->a);
  w->a = NULL;
  if (w->fd >= 0)
    close(w->fd);
  w->fd = -1;
  if (w->tmp && unlink(w->tmp) < 0 && errno != ENOENT)
    hoist_warn("%s left behind: %s", w->tmp, strerror(errno));
  free(w->tmp);
  w->tmp = NULL;
  free(w->path);
  w->path = NULL;
}

/* ---------------------------------------------------------- decompression */

typedef enum { DEC_SNIFF, DEC_PLAIN, DEC_GZIP, DEC_ZSTD } dec_mode;

typedef struct dec_writer {
  hoist_writer base;
  hoist_writer *inner;
  dec_mode mode;
  uint8_t head[4]; /* the first bytes, until the format is known */
  size_t head_len;
  z_stream z;
  bool z_init, z_end; /* the current gzip member ended */
  ZSTD_DStream *zs;
  bool zs_end; /* the last zstd frame ended */
  uint64_t out, max;
  uint8_t *buf;
} dec_writer;

HOIST_WUR static int dec_emit(dec_writer *d, const void *p, size_t n, hoist_err **err) {
  d->out += n;
  if (d->out > d->max)
    return hoist_err_set(err, HOIST_E_LIMIT,
                         "decompressed layer larger than %llu bytes (HOIST_ARCHIVE_DATA_MAX)",
                         (unsigned long long)d->max);
  return n ? hoist_writer_write(d->inner, p, n, err) : 0;
}

HOIST_WUR static int dec_gzip(dec_writer *d, const uint8_t *p, size_t n, hoist_err **err) {
  d->z.next_in = (Bytef *)p;
  d->z.avail_in = (uInt)n;
  while (d->z.avail_in > 0) {
    if (d->z_end) { /* another gzip member follows */
      if (inflateReset(&d->z) != Z_OK)
        return hoist_err_set(err, HOIST_E_FORMAT, "gzip: cannot start the next member");
      d->z_end = false;
    }
    d->z.next_out = d->buf;
    d->z.avail_out = ARC_BUF_SIZE;
    uInt before = d->z.avail_in;
    int zr = inflate(&d->z, Z_NO_FLUSH);
    if ((zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) ||
        (zr == Z_BUF_ERROR && d->z.avail_in == before && d->z.avail_out == ARC_BUF_SIZE))
      return hoist_err_set(err, HOIST_E_FORMAT, "gzip: corrupt data (%s)",
                           d->z.msg ? d->z.msg : "zlib error");
    if (dec_emit(d, d->buf, ARC_BUF_SIZE - d->z.avail_out, err) < 0)
      return -1;
    if (zr == Z_STREAM_END)
      d->z_end = true;
  }
  return 0;
}

HOIST_WUR static int dec_zstd(dec_writer *d, const uint8_t *p, size_t n, hoist_err **err) {
  ZSTD_inBuffer in = {p, n, 0};
  while (in.pos < in.size) {
    ZSTD_outBuffer out = {d->buf, ARC_BUF_SIZE, 0};
    size_t zr = ZSTD_decompressStream(d->zs, &out, &in);
    if (ZSTD_isError(zr))
      return hoist_err_set(err, HOIST_E_FORMAT, "zstd: %s", ZSTD_getErrorName(zr));
    if (dec_emit(d, d->buf, out.pos, err) < 0)
      return -1;
    d->zs_end = zr == 0;
  }
  return 0;
}

HOIST_WUR static int dec_feed(dec_writer *d, const uint8_t *p, size_t n, hoist_err **err) {
  switch (d->mode) {
  case DEC_GZIP:
    return dec_gzip(d, p, n, err);
  case DEC_ZSTD:
    return dec_zstd(d, p, n, err);
  default:
    return dec_emit(d, p, n, err);
  }
}

/* Decides the format from the first bytes (all of them when fewer come). */
HOIST_WUR static int dec_start(dec_writer *d, hoist_err **err) {
  static const uint8_t gz[2] = {0x1f, 0x8b}, zst[4] = {0x28, 0xb5, 0x2f, 0xfd};
  if (d->head_len >= 2 && memcmp(d->head, gz, 2) == 0) {
    d->mode = DEC_GZIP;
    if (inflateInit2(&d->z, 16 + MAX_WBITS) != Z_OK)
      return hoist_err_set(err, ENOMEM, "gzip: cannot start");
    d->z_init = true;
  } else if (d->head_len == 4 && memcmp(d->head, zst, 4) == 0) {
    d->mode = DEC_ZSTD;
    d->zs = ZSTD_createDStream();
    if (!d->zs || ZSTD_isError(ZSTD_initDStream(d->zs)))
      return hoist_err_set(err, ENOMEM, "zstd: cannot start");
  } else {
    d->mode = DEC_PLAIN;
  }
  if (d->mode != DEC_PLAIN)
    d->buf = hoist_malloc0(ARC_BUF_SIZE);
  return dec_feed(d, d->head, d->head_len, err);
}

HOIST_WUR static int dec_write(hoist_writer *w, const void *data, size_t len, hoist_err **err) {
  dec_writer *d = (dec_writer *)w;
  const uint8_t *p = data;
  if (d->mode == DEC_SNIFF) {
    size_t take = sizeof d->head - d->head_len < len ? sizeof d->head - d->head_len : len;
    memcpy(d->head + d->head_len, p, take);
    d->head_len += take;
    p += take;
    len -= take;
    if (d->head_len < sizeof d->head)
      return 0;
    if (dec_start(d, err) < 0)
      return -1;
  }
  return len ? dec_feed(d, p, len, err) : 0;
}

HOIST_WUR static int dec_commit(hoist_writer *w, char digest_out[HOIST_DIGEST_STR_LEN],
                                uint64_t *size_out, hoist_err **err) {
  dec_writer *d = (dec_writer *)w;
  if (d->mode == DEC_SNIFF && dec_start(d, err) < 0)
    return -1;
  if (d->mode == DEC_GZIP && !d->z_end)
    return hoist_err_set(err, HOIST_E_FORMAT, "gzip: unexpected end of data");
  if (d->mode == DEC_ZSTD && !d->zs_end)
    return hoist_err_set(err, HOIST_E_FORMAT, "zstd: unexpected end of data");
  return hoist_writer_commit(d->inner, digest_out, size_out, err);
}

static void dec_free(hoist_writer *w) {
  dec_writer *d = (dec_writer *)w;
  if (d->z_init)
    inflateEnd(&d->z);
  ZSTD_freeDStream(d->zs);
  hoist_writer_free(d->inner);
  free(d->buf);
  free(d);
}

static const hoist_writer_ops dec_ops = {
    .write = dec_write, .commit = dec_commit, .free = dec_free};

hoist_writer *arc_decompress_writer(hoist_writer *inner, uint64_t max) {
  dec_writer *d = hoist_malloc0(sizeof *d);
  d->base.ops = &dec_ops;
  d->inner = inner;
  d->max = max;
  return &d->base;
}

/* ------------------------------------------------------ a staged source */

typedef struct staged_source {
  hoist_transport_source base;
  hoist_transport_source *inner; /* a layout source on the stage */
  arc_stage st;
  char *name;
} staged_source;

#define INNER(s) (((staged_source *)(s))->inner)

HOIST_WUR static int ss_manifest(hoist_transport_source *s, const char *digest, char **data,
                                 size_t *len, char **media_type,
                                 char digest_out[HOIST_DIGEST_STR_LEN], hoist_err **err) {
  if (INNER(s)->ops->manifest(INNER(s), digest, data, len, media_type, digest_out, err) < 0)
    return hoist_err_wrap(err, "%s", ((staged_source *)s)->name);
  return 0;
}

HOIST_WUR static int ss_resolve(hoist_transport_source *s, char digest[HOIST_DIGEST_STR_LEN],
                                char **media_type, hoist_err **err) {
  if (INNER(s)->ops->resolve(INNER(s), digest, media_type, err) < 0)
    return hoist_err_wrap(err, "%s", ((staged_source *)s)->name);
  return 0;
}

HOIST_WUR static int ss_blob(hoist_transport_source *s, const char *digest, size_t max, char **data,
                             size_t *len, hoist_err **err) {
  if (INNER(s)->ops->blob(INNER(s), digest, max, data, len, err) < 0)
    return hoist_err_wrap(err, "%s", ((staged_source *)s)->name);
  return 0;
}

HOIST_WUR static int ss_copy_blob(hoist_transport_source *s, const hoist_descriptor *d,
                                  hoist_writer *w, hoist_err **err) {
  if (INNER(s)->ops->copy_blob(INNER(s), d, w, err) < 0)
    return hoist_err_wrap(err, "%s", ((staged_source *)s)->name);
  return 0;
}

HOIST_WUR static int ss_open_blob(hoist_transport_source *s, const char *digest, int *fd,
                                  uint64_t *size, hoist_err **err) {
  if (INNER(s)->ops->open_blob(INNER(s), digest, fd, size, err) < 0)
    return hoist_err_wrap(err, "%s", ((staged_source *)s)->name);
  return 0;
}

static void ss_free(hoist_transport_source *s) {
  staged_source *ss = (staged_source *)s;
  hoist_transport_source_free(ss->inner);
  arc_stage_close(&ss->st);
  free(ss->name);
  free(ss);
}

static const hoist_transport_source_ops staged_source_ops = {
    .manifest = ss_manifest,
    .resolve = ss_resolve,
    .blob = ss_blob,
    .copy_blob = ss_copy_blob,
    .open_blob = ss_open_blob,
    .free = ss_free,
};

int arc_staged_source(arc_stage *st, const char *tag, const char *name,
                      hoist_transport_source **out, hoist_err **err) {
  hoist_transport_source *inner = NULL;
  char digest[HOIST_DIGEST_STR_LEN];
  _cleanup_free_ char *mt = NULL;
  /* the image is resolved now, so that a missing tag fails the opening */
  if (hoist_transport_layout_source(st->dir, tag, &inner, err) < 0 ||
      inner->ops->resolve(inner, digest, &mt, err) < 0) {
    hoist_transport_source_free(inner);
    arc_stage_close(st);
    return hoist_err_wrap(err, "%s", name);
  }
  staged_source *ss = hoist_malloc0(sizeof *ss);
  ss->base.ops = &staged_source_ops;
  ss->inner = inner;
  ss->st = *st;
  memset(st, 0, sizeof *st);
  ss->name = hoist_strdup(name);
  *out = &ss->base;
  return 0;
}
