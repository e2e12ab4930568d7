#include <errno.h>
#include <isa-l/igzip_lib.h>
#include <pthread.h>
#include <string.h>
#include <zstd.h>

#include "unpack-private.h"

/* Decompressed chunks in flight between the thread that reads, hashes and
 * decompresses, the caller that parses the tar and writes files, and (for a
 * compressed layer) the thread that hashes the tar for the diffID. A slot is
 * free again once both the caller and the tar hasher are past it. */
#define NSLOTS 8

struct layer_stream {
  int fd;
  hoist_compression comp;
  hoist_sha256 *blob_hash;
  hoist_sha256 *tar_hash; /* NULL for an uncompressed layer: one hash serves both */
  uint8_t *in;
  size_t in_len, in_pos;
  bool in_eof;
  bool frame_done; /* the last gzip member or zstd frame ended cleanly */
  struct inflate_state *gz;
  ZSTD_DStream *zs;

  uint8_t *slot[NSLOTS];
  size_t slot_len[NSLOTS];
  /* chunks counted from the start; chunk k lives in slot k % NSLOTS */
  uint64_t produced, consumed, hashed;
  bool held; /* the caller still uses chunk consumed */
  bool done, stop;
  ssize_t result; /* the producer's last result: 0 at the end, or an error code */
  hoist_err *perr;
  pthread_t thread, hasher;
  bool started, hasher_started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
};

static void *producer(void *arg);
static void *tar_hasher(void *arg);

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
  if (comp != HOIST_COMPRESS_NONE)
    s->tar_hash = hoist_sha256_new();
  for (int i = 0; i < NSLOTS; i++) {
    s->slot[i] = malloc(UNPACK_BUF_SIZE);
    if (!s->slot[i])
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
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  if (pthread_create(&s->thread, NULL, producer, s) != 0) {
    int e = errno;
    layer_stream_free(s);
    return hoist_err_errno(err, e, "start decompression thread");
  }
  s->started = true;
  if (s->tar_hash) {
    if (pthread_create(&s->hasher, NULL, tar_hasher, s) != 0) {
      int e = errno;
      layer_stream_free(s);
      return hoist_err_errno(err, e, "start the diffID thread");
    }
    s->hasher_started = true;
  }
  *out = s;
  return 0;
}

void layer_stream_free(layer_stream *s) {
  if (!s)
    return;
  pthread_mutex_lock(&s->mu);
  s->stop = true;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  if (s->started)
    pthread_join(s->thread, NULL);
  if (s->hasher_started)
    pthread_join(s->hasher, NULL);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  hoist_err_free(s->perr);
  for (int i = 0; i < NSLOTS; i++)
    free(s->slot[i]);
  hoist_sha256_free(s->blob_hash);
  hoist_sha256_free(s->tar_hash);
  free(s->in);
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

static ssize_t read_gzip(layer_stream *s, uint8_t *outbuf, hoist_err **err) {
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
    s->gz->next_out = outbuf;
    s->gz->avail_out = UNPACK_BUF_SIZE;
    int r = isal_inflate(s->gz);
    if (r < 0)
      return hoist_err_set(err, HOIST_E_FORMAT, "gzip: corrupt data (igzip error %d)", r);
    s->in_pos += (size_t)avail - s->gz->avail_in;
    if (s->gz->block_state == ISAL_BLOCK_FINISH)
      s->frame_done = true;
    size_t produced = UNPACK_BUF_SIZE - s->gz->avail_out;
    if (produced > 0)
      return (ssize_t)produced;
  }
}

static ssize_t read_zstd(layer_stream *s, uint8_t *outbuf, hoist_err **err) {
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
    ZSTD_outBuffer out = {outbuf, UNPACK_BUF_SIZE, 0};
    size_t r = ZSTD_decompressStream(s->zs, &out, &in);
    if (ZSTD_isError(r))
      return hoist_err_set(err, HOIST_E_FORMAT, "zstd: %s", ZSTD_getErrorName(r));
    s->in_pos += in.pos;
    s->frame_done = r == 0;
    if (out.pos > 0)
      return (ssize_t)out.pos;
  }
}

/* Produces the next uncompressed chunk into outbuf (the producer thread). */
static ssize_t produce(layer_stream *s, uint8_t *outbuf, hoist_err **err) {
  ssize_t n;
  switch (s->comp) {
  case HOIST_COMPRESS_GZIP:
    n = read_gzip(s, outbuf, err);
    break;
  case HOIST_COMPRESS_ZSTD:
    n = read_zstd(s, outbuf, err);
    break;
  default:
    do
      n = read(s->fd, outbuf, UNPACK_BUF_SIZE);
    while (n < 0 && errno == EINTR);
    if (n < 0)
      return hoist_err_errno(err, errno, "read layer");
    hoist_sha256_update(s->blob_hash, outbuf, (size_t)n);
    return n;
  }
  return n;
}

/* The chunks the caller and the tar hasher are both past. */
static uint64_t released(const layer_stream *s) {
  return s->tar_hash && s->hashed < s->consumed ? s->hashed : s->consumed;
}

static void *producer(void *arg) {
  layer_stream *s = arg;
  for (;;) {
    pthread_mutex_lock(&s->mu);
    while (s->produced - released(s) == NSLOTS && !s->stop)
      pthread_cond_wait(&s->cv, &s->mu);
    bool stop = s->stop;
    int h = (int)(s->produced % NSLOTS);
    pthread_mutex_unlock(&s->mu);
    if (stop)
      return NULL;
    hoist_err *e = NULL;
    ssize_t n = produce(s, s->slot[h], &e);
    pthread_mutex_lock(&s->mu);
    if (n <= 0) {
      s->done = true;
      s->result = n;
      s->perr = e;
    } else {
      s->slot_len[h] = (size_t)n;
      s->produced++;
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (n <= 0)
      return NULL;
  }
}

/* Hashes every chunk into tar_hash, in order, beside the caller. */
static void *tar_hasher(void *arg) {
  layer_stream *s = arg;
  for (;;) {
    pthread_mutex_lock(&s->mu);
    while (s->hashed == s->produced && !s->done && !s->stop)
      pthread_cond_wait(&s->cv, &s->mu);
    if (s->stop || s->hashed == s->produced) {
      pthread_mutex_unlock(&s->mu);
      return NULL;
    }
    int i = (int)(s->hashed % NSLOTS);
    pthread_mutex_unlock(&s->mu);
    hoist_sha256_update(s->tar_hash, s->slot[i], s->slot_len[i]);
    pthread_mutex_lock(&s->mu);
    s->hashed++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
  }
}

ssize_t layer_stream_read(layer_stream *s, const void **data, hoist_err **err) {
  pthread_mutex_lock(&s->mu);
  if (s->held) {
    s->consumed++;
    s->held = false;
    pthread_cond_broadcast(&s->cv);
  }
  while (s->consumed == s->produced && !s->done)
    pthread_cond_wait(&s->cv, &s->mu);
  ssize_t n;
  if (s->consumed == s->produced) {
    n = s->result;
    if (n < 0 && s->perr) {
      if (err && !*err)
        *err = s->perr;
      else
        hoist_err_free(s->perr);
      s->perr = NULL;
    } else if (n < 0) {
      n = hoist_err_set(err, EIO, "layer stream failed");
    }
  } else {
    int i = (int)(s->consumed % NSLOTS);
    *data = s->slot[i];
    n = (ssize_t)s->slot_len[i];
    s->held = true;
  }
  pthread_mutex_unlock(&s->mu);
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
  /* the producer has finished, and the hasher once it has hashed every chunk */
  pthread_join(s->thread, NULL);
  s->started = false;
  if (s->hasher_started) {
    pthread_join(s->hasher, NULL);
    s->hasher_started = false;
  }
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
