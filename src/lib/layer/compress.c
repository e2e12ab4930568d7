/* Compressing writers (zstd, pass-through; gzip in gzip.c) and the file sink. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

#include "hoist/fs.h"
#include "layer-private.h"

#define OUT_BUF_SIZE (HOIST_LAYER_BUF_SIZE + 64 * 1024)

int hoist_layer_compression_parse(const char *name, hoist_compression *out, hoist_err **err) {
  if (strcmp(name, "gzip") == 0)
    *out = HOIST_COMPRESS_GZIP;
  else if (strcmp(name, "zstd") == 0)
    *out = HOIST_COMPRESS_ZSTD;
  else if (strcmp(name, "none") == 0 || strcmp(name, "uncompressed") == 0)
    *out = HOIST_COMPRESS_NONE;
  else
    return hoist_err_set(err, EINVAL, "unknown compression \"%s\" (gzip, zstd or none)", name);
  return 0;
}

const char *hoist_layer_media_type(hoist_compression c) {
  switch (c) {
  case HOIST_COMPRESS_GZIP:
    return HOIST_MT_OCI_LAYER_GZIP;
  case HOIST_COMPRESS_ZSTD:
    return HOIST_MT_OCI_LAYER_ZSTD;
  default:
    return HOIST_MT_OCI_LAYER;
  }
}

/* ------------------------------------------------------------ compressor */

int layer_threads(int threads) {
  if (threads <= 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    threads = n > 0 ? (int)(n < HOIST_LAYER_MAX_THREADS ? n : HOIST_LAYER_MAX_THREADS) : 1;
  }
  return threads < HOIST_LAYER_MAX_THREADS ? threads : HOIST_LAYER_MAX_THREADS;
}

/* zstd and pass-through; gzip has its own writer (gzip.c). */
typedef struct compress_writer {
  hoist_writer base;
  hoist_writer *next;
  ZSTD_CCtx *zstd; /* NULL: pass-through */
  uint8_t *out;
  bool failed;
} compress_writer;

/* Feeds len bytes (finishing the stream when end) through zstd into next. */
HOIST_WUR static int cw_run(compress_writer *cw, const void *data, size_t len, bool end,
                            hoist_err **err) {
  if (cw->failed)
    return hoist_err_set(err, EIO, "compressor already failed");
  if (!cw->zstd)
    return len == 0 ? 0 : hoist_writer_write(cw->next, data, len, err);
  ZSTD_inBuffer in = {data, len, 0};
  for (;;) {
    ZSTD_outBuffer o = {cw->out, OUT_BUF_SIZE, 0};
    size_t rem = ZSTD_compressStream2(cw->zstd, &o, &in, end ? ZSTD_e_end : ZSTD_e_continue);
    if (ZSTD_isError(rem)) {
      cw->failed = true;
      return hoist_err_set(err, EIO, "zstd: %s", ZSTD_getErrorName(rem));
    }
    if (o.pos > 0 && hoist_writer_write(cw->next, cw->out, o.pos, err) < 0) {
      cw->failed = true;
      return -EIO;
    }
    if (end ? rem == 0 : in.pos == in.size)
      return 0;
  }
}

HOIST_WUR static int cw_write(hoist_writer *w, const void *data, size_t len, hoist_err **err) {
  return cw_run((compress_writer *)w, data, len, false, err);
}

HOIST_WUR static int cw_commit(hoist_writer *w, char digest_out[HOIST_DIGEST_STR_LEN],
                               uint64_t *size_out, hoist_err **err) {
  compress_writer *cw = (compress_writer *)w;
  int r = cw_run(cw, NULL, 0, true, err);
  if (r < 0)
    return r;
  return hoist_writer_commit(cw->next, digest_out, size_out, err);
}

static void cw_free(hoist_writer *w) {
  compress_writer *cw = (compress_writer *)w;
  hoist_writer_free(cw->next);
  ZSTD_freeCCtx(cw->zstd);
  free(cw->out);
  free(cw);
}

static const hoist_writer_ops compress_ops = {cw_write, cw_commit, cw_free};

int hoist_layer_compress_writer(hoist_compression c, int level, int threads, hoist_writer *next,
                                hoist_writer **out, hoist_err **err) {
  switch (c) {
  case HOIST_COMPRESS_NONE:
    break;
  case HOIST_COMPRESS_GZIP:
    if (level < 0)
      level = 1;
    if (level > 9) {
      hoist_writer_free(next);
      return hoist_err_set(err, EINVAL, "gzip level %d out of range 0-9", level);
    }
    return layer_gzip_writer(level, threads, next, out, err);
  case HOIST_COMPRESS_ZSTD:
    if (level < 0)
      level = 3;
    if (level < 1 || level > ZSTD_maxCLevel()) {
      hoist_writer_free(next);
      return hoist_err_set(err, EINVAL, "zstd level %d out of range 1-%d", level, ZSTD_maxCLevel());
    }
    break;
  default:
    hoist_writer_free(next);
    return hoist_err_set(err, EINVAL, "unknown compression %d", (int)c);
  }
  compress_writer *cw = hoist_malloc0(sizeof *cw);
  cw->base.ops = &compress_ops;
  cw->next = next;
  if (c == HOIST_COMPRESS_ZSTD) {
    cw->zstd = ZSTD_createCCtx();
    cw->out = malloc(OUT_BUF_SIZE);
    if (!cw->zstd || !cw->out)
      abort();
    ZSTD_CCtx_setParameter(cw->zstd, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(cw->zstd, ZSTD_c_checksumFlag, 1);
    /* a libzstd built without threads refuses nbWorkers; it then runs inline */
    if (ZSTD_isError(ZSTD_CCtx_setParameter(cw->zstd, ZSTD_c_nbWorkers, layer_threads(threads))))
      hoist_debug("zstd: no worker threads in this libzstd");
  }
  *out = &cw->base;
  return 0;
}

/* ------------------------------------------------------------- file sink */

typedef struct file_writer {
  hoist_writer base;
  int dirfd;
  int fd;
  char *path;
  char *tmp; /* NULL for stdout */
  hoist_sha256 *h;
  uint64_t size;
  bool committed;
} file_writer;

HOIST_WUR static int fw_write(hoist_writer *w, const void *data, size_t len, hoist_err **err) {
  file_writer *fw = (file_writer *)w;
  hoist_sha256_update(fw->h, data, len);
  fw->size += len;
  int r = hoist_fs_write_all(fw->fd, data, len, err);
  if (r < 0)
    return hoist_err_wrap(err, "write %s", fw->path);
  return 0;
}

HOIST_WUR static int fw_commit(hoist_writer *w, char digest_out[HOIST_DIGEST_STR_LEN],
                               uint64_t *size_out, hoist_err **err) {
  file_writer *fw = (file_writer *)w;
  /* atomic (rename) but not fsync'd: durable blobs are the store's job */
  if (fw->tmp) {
    if (renameat(fw->dirfd, fw->tmp, fw->dirfd, fw->path) < 0)
      return hoist_err_errno(err, errno, "rename %s to %s", fw->tmp, fw->path);
  }
  fw->committed = true;
  hoist_sha256_final(fw->h, digest_out);
  if (size_out)
    *size_out = fw->size;
  return 0;
}

static void fw_free(hoist_writer *w) {
  file_writer *fw = (file_writer *)w;
  if (fw->tmp) {
    close(fw->fd);
    if (!fw->committed)
      unlinkat(fw->dirfd, fw->tmp, 0);
  }
  hoist_sha256_free(fw->h);
  free(fw->path);
  free(fw->tmp);
  free(fw);
}

static const hoist_writer_ops file_ops = {fw_write, fw_commit, fw_free};

int hoist_layer_file_writer(int dirfd, const char *path, mode_t mode, hoist_writer **out,
                            hoist_err **err) {
  file_writer *fw = hoist_malloc0(sizeof *fw);
  fw->base.ops = &file_ops;
  fw->dirfd = dirfd;
  fw->path = hoist_strdup(path);
  fw->fd = -1;
  if (strcmp(path, "-") == 0) {
    fw->fd = STDOUT_FILENO;
  } else {
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path + 1) : 0;
    for (int i = 0; i < 100 && fw->fd < 0; i++) {
      free(fw->tmp);
      fw->tmp = hoist_asprintf("%.*s.%s.tmp%d-%d", dirlen, path, slash ? slash + 1 : path,
                               (int)getpid(), i);
      fw->fd = openat(dirfd, fw->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
      if (fw->fd < 0 && errno != EEXIST) {
        int e = errno;
        free(fw->tmp);
        fw->tmp = NULL;
        fw_free(&fw->base);
        return hoist_err_errno(err, e, "create %s", path);
      }
    }
    if (fw->fd < 0) {
      free(fw->tmp);
      fw->tmp = NULL;
      fw_free(&fw->base);
      return hoist_err_set(err, EEXIST, "create %s: no free temp name", path);
    }
  }
  fw->h = hoist_sha256_new();
  *out = &fw->base;
  return 0;
}
