#include <errno.h>
#include <isa-l/igzip_lib.h>
#include <string.h>
#include <zstd.h>

#include "unpack-private.h"

struct layer_stream {
  int fd;
  hoist_compression comp;
  hoist_sha256 *blob_hash;
  hoist_sha256 *tar_hash; /* NULL for an uncompressed layer: one hash serves both */
  uint8_t *in;
  size_t in_len, in_pos;
  bool in_eof;
  uint8_t *out;
  bool frame_done; /* the last gzip member or zstd frame ended cleanly */
  bool eof;
  struct inflate_state *gz;
  ZSTD_DStream *zs;
};

int layer_stream_new(int fd, hoist_compression comp, layer_stream **out, hoist_err **err) {
  if (comp != HOIST_COMPRESS_NONE && comp != HOIST_COMPRESS_GZIP && comp != HOIST_COMPRESS_ZSTD)
    return hoist_err_set(err, EINVAL, "unsupported layer compression %d", (int)comp);
  layer_stream *s = hoist_malloc0(sizeof *s);
  s->fd = fd;
  s->comp = comp;
  s->blob_hash = hoist_sha256_new();
  s->in = malloc(UNPACK_BUF_SIZE);
  if (!s->in)
    abort();
  if (comp != HOIST_COMPRESS_NONE) {
    s->tar_hash = hoist_sha256_new();
    s->out = malloc(UNPACK_BUF_SIZE);
    if (!s->out)
      abort();
  }
  if (comp == HOIST_COMPRESS_GZIP) {
    s->gz = hoist_malloc0(sizeof *s->gz);
    isal_inflate_init(s->gz);
    s->gz->crc_flag = ISAL_GZIP;
  } else if (comp == HOIST_COMPRESS_ZSTD) {
    s->zs = ZSTD_createDStream();
    if (!s->zs)
      abort();
    ZSTD_initDStream(s->zs);
  }
  *out = s;
  return 0;
}

void layer_stream_free(layer_stream *s) {
  if (!s)
    return;
  hoist_sha256_free(s->blob_hash);
  hoist_sha256_free(s->tar_hash);
  free(s->in);
  free(s->out);
  free(s->gz);
  if (s->zs)
    ZSTD_freeDStream(s->zs);
  free(s);
}

/* Refills the input buffer when it is used up. Returns bytes available. */
static ssize_t fill(layer_stream *s, hoist_err **err) {
  if (s->in_pos < s->in_len || s->in_eof)
    return (ssize_t)(s->in_len - s->in_pos);
  for (;;) {
    ssize_t n = read(s->fd, s->in, UNPACK_BUF_SIZE);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return hoist_err_errno(err, errno, "read layer");
    s->in_pos = 0;
    s->in_len = (size_t)n;
    if (n == 0)
      s->in_eof = true;
    else
      hoist_sha256_update(s->blob_hash, s->in, (size_t)n);
    return n;
  }
}

static ssize_t read_gzip(layer_stream *s, const void **data, hoist_err **err) {
  for (;;) {
    ssize_t avail = fill(s, err);
    if (avail < 0)
      return avail;
    if (avail == 0) {
      if (!s->frame_done)
        return hoist_err_set(err, HOIST_E_FORMAT, "gzip: unexpected end of data");
      return 0;
    }
    if (s->frame_done) {
      /* another gzip member follows */
      isal_inflate_reset(s->gz);
      s->gz->crc_flag = ISAL_GZIP;
      s->frame_done = false;
    }
    s->gz->next_in = s->in + s->in_pos;
    s->gz->avail_in = (uint32_t)avail;
    s->gz->next_out = s->out;
    s->gz->avail_out = UNPACK_BUF_SIZE;
    int r = isal_inflate(s->gz);
    if (r < 0)
      return hoist_err_set(err, HOIST_E_FORMAT, "gzip: corrupt data (igzip error %d)", r);
    s->in_pos += (size_t)avail - s->gz->avail_in;
    if (s->gz->block_state == ISAL_BLOCK_FINISH)
      s->frame_done = true;
    size_t produced = UNPACK_BUF_SIZE - s->gz->avail_out;
    if (produced > 0) {
      *data = s->out;
      return (ssize_t)produced;
    }
  }
}

static ssize_t read_zstd(layer_stream *s, const void **data, hoist_err **err) {
  for (;;) {
    ssize_t avail = fill(s, err);
    if (avail < 0)
      return avail;
    if (avail == 0) {
      if (!s->frame_done)
        return hoist_err_set(err, HOIST_E_FORMAT, "zstd: unexpected end of data");
      return 0;
    }
    ZSTD_inBuffer in = {s->in + s->in_pos, (size_t)avail, 0};
    ZSTD_outBuffer out = {s->out, UNPACK_BUF_SIZE, 0};
    size_t r = ZSTD_decompressStream(s->zs, &out, &in);
    if (ZSTD_isError(r))
      return hoist_err_set(err, HOIST_E_FORMAT, "zstd: %s", ZSTD_getErrorName(r));
    s->in_pos += in.pos;
    s->frame_done = r == 0;
    if (out.pos > 0) {
      *data = s->out;
      return (ssize_t)out.pos;
    }
  }
}

ssize_t layer_stream_read(layer_stream *s, const void **data, hoist_err **err) {
  if (s->eof)
    return 0;
  ssize_t n;
  switch (s->comp) {
  case HOIST_COMPRESS_GZIP:
    n = read_gzip(s, data, err);
    break;
  case HOIST_COMPRESS_ZSTD:
    n = read_zstd(s, data, err);
    break;
  default:
    n = fill(s, err);
    if (n > 0) {
      *data = s->in + s->in_pos;
      s->in_pos = s->in_len;
    }
    break;
  }
  if (n > 0 && s->tar_hash)
    hoist_sha256_update(s->tar_hash, *data, (size_t)n);
  if (n == 0)
    s->eof = true;
  return n;
}

int layer_stream_finish(layer_stream *s, const char *expected_digest, const char *expected_diff_id,
                        hoist_err **err) {
  const void *data;
  ssize_t n;
  while ((n = layer_stream_read(s, &data, err)) > 0)
    ;
  if (n < 0)
    return (int)n;
  char digest[HOIST_DIGEST_STR_LEN], diff_id[HOIST_DIGEST_STR_LEN];
  hoist_sha256_final(s->blob_hash, digest);
  if (s->tar_hash)
    hoist_sha256_final(s->tar_hash, diff_id);
  else
    memcpy(diff_id, digest, sizeof digest);
  if (expected_digest && strcmp(expected_digest, digest) != 0)
    return hoist_err_set(err, HOIST_E_DIGEST, "blob digest mismatch: expected %s, got %s",
                         expected_digest, digest);
  if (expected_diff_id && strcmp(expected_diff_id, diff_id) != 0)
    return hoist_err_set(err, HOIST_E_DIGEST, "diffID mismatch: expected %s, got %s",
                         expected_diff_id, diff_id);
  return 0;
}
