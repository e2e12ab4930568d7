/*
 * gzip on every core, in pigz's shape. The input is cut by offset into
 * blocks of HOIST_LAYER_GZIP_BLOCK bytes. Each block becomes a raw deflate
 * stream of its own (ISA-L igzip for levels 0-3, zlib for 4-9), primed with
 * the 32 KiB of input before it as dictionary and ended by a sync flush (an
 * empty stored block: the stream ends on a byte boundary and the next one
 * can follow it); the last block ends with BFINAL instead. One gzip header
 * before the blocks and one trailer after them (the blocks' CRC-32s combined,
 * the length mod 2^32) make the whole one ordinary gzip member.
 *
 * The bytes depend on the input and the level only: boundaries are offsets
 * and dictionaries are content, so the thread count and the way the input is
 * cut into write() calls never show in the blob (its digest).
 *
 * Threads: write() and commit() run on the caller's thread, which copies the
 * input into blocks and writes compressed blocks to next in order (next sees
 * one thread); workers only compress and checksum. A block is queued once the
 * byte after it arrives (or at commit, as the last one), so a block is known
 * to be last when it is compressed. At most n_slots blocks exist at once; a
 * writer with one thread has no workers and compresses in write() itself.
 */
#include <errno.h>
#include <inttypes.h>
#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include "layer-private.h"

#define BLOCK HOIST_LAYER_GZIP_BLOCK
#define DICT_SIZE 32768u
/* how far below the caller's thread a worker runs (see yield_to_caller) */
#define WORKER_NICE 10
/* Room for a block's deflate stream: more than any block of either engine
 * takes (both fall back to stored blocks, 5 bytes per 64 KiB, on data that
 * does not compress). Every block starts with this much output space, so the
 * engine's choices cannot depend on what a slot held before. */
#define OUT_ROOM (BLOCK + BLOCK / 8 + 65536)

/* mtime 0, no name, no extra flags, OS 255 (unknown): igzip's own header */
static const uint8_t gzip_header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};

typedef enum { SLOT_FREE, SLOT_FILLING, SLOT_QUEUED, SLOT_DONE } slot_state;

/* One block in flight. in, in_len, dict and last are the caller thread's
 * until the block is queued, then read-only; out, out_len, crc and rc are the
 * worker's until state is SLOT_DONE (state is under the writer's mutex). */
typedef struct slot {
  uint8_t *in;
  size_t in_len;
  uint8_t *dict;
  size_t dict_len;
  bool last;
  uint8_t *out;
  size_t out_cap, out_len;
  uint32_t crc;
  int rc; /* the engine's error, 0 when fine */
  slot_state state;
} slot;

/* One compressor: a worker's, or the caller's when there are no workers. */
typedef struct engine {
  bool zlib;
  struct isal_zstream isal;
  uint8_t *level_buf;
  z_stream z;
  bool z_init;
} engine;

typedef struct gzip_writer gzip_writer;

typedef struct worker {
  gzip_writer *g;
  engine e;
  pthread_t tid;
  bool started;
} worker;

struct gzip_writer {
  hoist_writer base;
  hoist_writer *next;
  slot *slots;
  size_t n_slots;
  uint64_t filling;     /* the block being filled; its slot is slots[filling % n_slots] */
  uint64_t written;     /* blocks [0, written) are in next */
  bool zlib;            /* the engine: zlib (levels 4-9) or igzip */
  engine inline_engine; /* when no worker runs */
  worker *workers;
  size_t n_workers; /* started ones */
  pthread_mutex_t mu;
  pthread_cond_t work; /* a block was queued, or stop */
  pthread_cond_t done; /* a block was compressed */
  uint64_t queued;     /* under mu: blocks [0, queued) were queued */
  uint64_t taken;      /* under mu: blocks [0, taken) went to workers */
  bool stop;           /* under mu: workers end */
  uint32_t crc;
  uint64_t isize;
  bool failed; /* next refused bytes or a block failed: the stream is lost */
};

/* level 1 with ISA-L's largest buffer: about 4% less CPU than its default on
 * a tree of libraries, for a blob 0.5% larger */
static const uint32_t isal_level_buf_size[] = {ISAL_DEF_LVL0_DEFAULT, ISAL_DEF_LVL1_EXTRA_LARGE,
                                               ISAL_DEF_LVL2_DEFAULT, ISAL_DEF_LVL3_DEFAULT};

/* Prepares e for raw deflate at level (0-3 igzip, 4-9 zlib). Fails only when
 * zlib cannot start. */
static int engine_init(engine *e, int level) {
  memset(e, 0, sizeof *e);
  if (level <= ISAL_DEF_MAX_LEVEL) {
    isal_deflate_init(&e->isal);
    e->isal.level = (uint32_t)level;
    e->isal.gzip_flag = IGZIP_DEFLATE;
    e->isal.level_buf_size = isal_level_buf_size[level];
    if (e->isal.level_buf_size) {
      e->level_buf = malloc(e->isal.level_buf_size);
      if (!e->level_buf)
        abort();
      e->isal.level_buf = e->level_buf;
    }
    return 0;
  }
  e->zlib = true;
  if (deflateInit2(&e->z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return -1;
  e->z_init = true;
  return 0;
}

static void engine_free(engine *e) {
  free(e->level_buf);
  if (e->z_init)
    deflateEnd(&e->z);
}

/* Makes room for OUT_ROOM more bytes of output after s->out_len. */
static void slot_out_room(slot *s) {
  if (s->out_cap - s->out_len >= OUT_ROOM)
    return;
  s->out_cap = s->out_len + OUT_ROOM;
  s->out = hoist_realloc(s->out, s->out_cap);
}

/* Compresses s->in into s->out as one raw deflate stream: primed with
 * s->dict, ended by a sync flush, or by a final block when s->last. Each
 * engine call gets OUT_ROOM bytes of space, so the output depends on the
 * input only. Sets s->crc, and s->rc on an engine error. */
static void compress_block(engine *e, slot *s) {
  s->out_len = 0;
  s->rc = 0;
  s->crc = crc32_gzip_refl(0, s->in, s->in_len);
  if (!e->zlib) {
    struct isal_zstream *z = &e->isal;
    isal_deflate_reset(z);
    z->end_of_stream = s->last;
    z->flush = s->last ? NO_FLUSH : SYNC_FLUSH;
    if (s->dict_len && (s->rc = isal_deflate_set_dict(z, s->dict, (uint32_t)s->dict_len)) != 0)
      return;
    z->next_in = s->in;
    z->avail_in = (uint32_t)s->in_len;
    for (int idle = 0;;) {
      slot_out_room(s);
      z->next_out = s->out + s->out_len;
      z->avail_out = OUT_ROOM;
      int rc = isal_deflate(z);
      s->out_len += OUT_ROOM - z->avail_out;
      if (rc != COMP_OK) {
        s->rc = rc;
        return;
      }
      bool flushed = z->avail_in == 0 && z->internal_state.state == ZSTATE_NEW_HDR;
      if (s->last ? z->internal_state.state == ZSTATE_END : flushed)
        return;
      /* with room left the engine is done; a few rounds without progress are a bug */
      if (z->avail_out > 0 && ++idle > 4) {
        s->rc = ISAL_INVALID_STATE;
        return;
      }
    }
  }
  z_stream *z = &e->z;
  if (deflateReset(z) != Z_OK ||
      (s->dict_len && deflateSetDictionary(z, s->dict, (uInt)s->dict_len) != Z_OK)) {
    s->rc = Z_STREAM_ERROR;
    return;
  }
  z->next_in = s->in;
  z->avail_in = (uInt)s->in_len;
  for (;;) {
    slot_out_room(s);
    z->next_out = s->out + s->out_len;
    z->avail_out = OUT_ROOM;
    int rc = deflate(z, s->last ? Z_FINISH : Z_SYNC_FLUSH);
    s->out_len += OUT_ROOM - z->avail_out;
    if (rc == Z_STREAM_ERROR) {
      s->rc = rc;
      return;
    }
    if (s->last ? rc == Z_STREAM_END : (z->avail_in == 0 && z->avail_out > 0))
      return;
  }
}

static inline slot *slot_of(gzip_writer *g, uint64_t block) {
  return &g->slots[block % g->n_slots];
}

/* Lowers the calling worker thread's priority (its own nice value, not the
 * process's) below the caller's thread, whose work is serial: hashing the
 * tar, filling blocks, writing the output. With more threads than cores the
 * caller's thread then runs whenever it can, and the workers take the rest;
 * at equal priority the caller gets a share and the whole waits for it. */
static void yield_to_caller(void) {
  id_t tid = (id_t)gettid();
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, tid);
  if (errno == 0)
    (void)setpriority(PRIO_PROCESS, tid, nice + WORKER_NICE > 19 ? 19 : nice + WORKER_NICE);
}

static void *worker_main(void *arg) {
  worker *w = arg;
  gzip_writer *g = w->g;
  yield_to_caller();
  pthread_mutex_lock(&g->mu);
  for (;;) {
    while (!g->stop && g->taken == g->queued)
      pthread_cond_wait(&g->work, &g->mu);
    if (g->stop)
      break;
    slot *s = slot_of(g, g->taken++);
    pthread_mutex_unlock(&g->mu);
    compress_block(&w->e, s);
    pthread_mutex_lock(&g->mu);
    s->state = SLOT_DONE;
    pthread_cond_signal(&g->done);
  }
  pthread_mutex_unlock(&g->mu);
  return NULL;
}

/* Hands the block being filled to a worker (or compresses it now, without
 * workers); last says no byte follows it. */
static void queue_block(gzip_writer *g, bool last) {
  slot *s = slot_of(g, g->filling);
  s->last = last;
  if (g->n_workers == 0) {
    compress_block(&g->inline_engine, s);
    s->state = SLOT_DONE;
    pthread_mutex_lock(&g->mu);
    g->queued++;
    pthread_mutex_unlock(&g->mu);
    return;
  }
  pthread_mutex_lock(&g->mu);
  s->state = SLOT_QUEUED;
  g->queued++;
  pthread_cond_signal(&g->work);
  pthread_mutex_unlock(&g->mu);
}

HOIST_WUR static int put(gzip_writer *g, const void *data, size_t len, hoist_err **err) {
  int r = hoist_writer_write(g->next, data, len, err);
  if (r < 0)
    g->failed = true;
  return r;
}

/* Writes compressed blocks to next in order, up to (not including) block
 * until, waiting for their workers; with wait false it stops at the first
 * block still being compressed instead. The header goes before block 0. */
HOIST_WUR static int write_blocks(gzip_writer *g, uint64_t until, bool wait, hoist_err **err) {
  while (g->written < until) {
    slot *s = slot_of(g, g->written);
    pthread_mutex_lock(&g->mu);
    if (!wait && s->state != SLOT_DONE) {
      pthread_mutex_unlock(&g->mu);
      return 0;
    }
    while (s->state != SLOT_DONE)
      pthread_cond_wait(&g->done, &g->mu);
    pthread_mutex_unlock(&g->mu);
    if (s->rc != 0) {
      g->failed = true;
      return hoist_err_set(err, EIO, "gzip: block %" PRIu64 " (offset %" PRIu64 "): %s failed (%d)",
                           g->written, g->written * (uint64_t)BLOCK,
                           g->zlib ? "zlib deflate" : "igzip deflate", s->rc);
    }
    if (g->written == 0 && put(g, gzip_header, sizeof gzip_header, err) < 0)
      return -EIO;
    if (put(g, s->out, s->out_len, err) < 0)
      return -EIO;
    g->crc = (uint32_t)crc32_combine(g->crc, s->crc, (z_off_t)s->in_len);
    g->isize += s->in_len;
    s->state = SLOT_FREE;
    if (s->out_cap > OUT_ROOM) {
      /* an outsized block grew it: back to the usual size */
      s->out_cap = OUT_ROOM;
      s->out = hoist_realloc(s->out, s->out_cap);
    }
    g->written++;
  }
  return 0;
}

/* The block being filled is full and more bytes follow: queues it and makes
 * the next one, primed with the queued block's last DICT_SIZE bytes (the
 * queued block's input is only read from here on, by its worker and by us). */
HOIST_WUR static int next_block(gzip_writer *g, hoist_err **err) {
  slot *full = slot_of(g, g->filling);
  queue_block(g, false);
  uint64_t b = g->filling + 1;
  /* the new block's slot held block b - n_slots: it must be written out */
  if (b >= g->n_slots && write_blocks(g, b - g->n_slots + 1, true, err) < 0)
    return -EIO;
  slot *s = slot_of(g, b);
  s->dict_len = DICT_SIZE;
  memcpy(s->dict, full->in + full->in_len - DICT_SIZE, DICT_SIZE);
  s->in_len = 0;
  s->state = SLOT_FILLING;
  g->filling = b;
  /* whatever is ready goes on now: next sees a steady stream */
  return write_blocks(g, b, false, err);
}

HOIST_WUR static int gz_write(hoist_writer *w, const void *data, size_t len, hoist_err **err) {
  gzip_writer *g = (gzip_writer *)w;
  if (g->failed)
    return hoist_err_set(err, EIO, "gzip: compressor already failed");
  while (len > 0) {
    slot *s = slot_of(g, g->filling);
    if (s->in_len == BLOCK) {
      if (next_block(g, err) < 0)
        return -EIO;
      s = slot_of(g, g->filling);
    }
    size_t n = BLOCK - s->in_len < len ? BLOCK - s->in_len : len;
    memcpy(s->in + s->in_len, data, n);
    s->in_len += n;
    data = (const uint8_t *)data + n;
    len -= n;
  }
  return 0;
}

HOIST_WUR static int gz_commit(hoist_writer *w, char digest_out[HOIST_DIGEST_STR_LEN],
                               uint64_t *size_out, hoist_err **err) {
  gzip_writer *g = (gzip_writer *)w;
  if (g->failed)
    return hoist_err_set(err, EIO, "gzip: compressor already failed");
  queue_block(g, true);
  if (write_blocks(g, g->filling + 1, true, err) < 0)
    return -EIO;
  uint8_t trailer[8];
  for (int i = 0; i < 4; i++) {
    trailer[i] = (uint8_t)(g->crc >> (8 * i));
    trailer[4 + i] = (uint8_t)(g->isize >> (8 * i)); /* ISIZE: the length mod 2^32 */
  }
  if (put(g, trailer, sizeof trailer, err) < 0)
    return -EIO;
  g->failed = true; /* ended: no more writes */
  return hoist_writer_commit(g->next, digest_out, size_out, err);
}

static void gz_free(hoist_writer *w) {
  gzip_writer *g = (gzip_writer *)w;
  pthread_mutex_lock(&g->mu);
  g->stop = true;
  pthread_cond_broadcast(&g->work);
  pthread_mutex_unlock(&g->mu);
  for (size_t i = 0; i < g->n_workers; i++) {
    pthread_join(g->workers[i].tid, NULL);
    engine_free(&g->workers[i].e);
  }
  free(g->workers);
  engine_free(&g->inline_engine);
  for (size_t i = 0; i < g->n_slots; i++) {
    free(g->slots[i].in);
    free(g->slots[i].dict);
    free(g->slots[i].out);
  }
  free(g->slots);
  pthread_mutex_destroy(&g->mu);
  pthread_cond_destroy(&g->work);
  pthread_cond_destroy(&g->done);
  hoist_writer_free(g->next);
  free(g);
}

static const hoist_writer_ops gzip_ops = {gz_write, gz_commit, gz_free};

int layer_gzip_writer(int level, int threads, hoist_writer *next, hoist_writer **out,
                      hoist_err **err) {
  gzip_writer *g = hoist_malloc0(sizeof *g);
  g->base.ops = &gzip_ops;
  g->next = next;
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->work, NULL);
  pthread_cond_init(&g->done, NULL);
  g->zlib = level > ISAL_DEF_MAX_LEVEL;
  threads = layer_threads(threads);
  if (threads > 1) {
    g->workers = hoist_calloc((size_t)threads, sizeof *g->workers);
    for (int i = 0; i < threads; i++) {
      worker *wk = &g->workers[g->n_workers];
      wk->g = g;
      if (engine_init(&wk->e, level) < 0) {
        gz_free(&g->base);
        return hoist_err_set(err, ENOMEM, "gzip: zlib deflateInit2 failed");
      }
      /* fewer workers than asked (no thread to be had) write the same bytes */
      if (pthread_create(&wk->tid, NULL, worker_main, wk) != 0) {
        engine_free(&wk->e);
        break;
      }
      g->n_workers++;
    }
  }
  if (g->n_workers == 0 && engine_init(&g->inline_engine, level) < 0) {
    gz_free(&g->base);
    return hoist_err_set(err, ENOMEM, "gzip: zlib deflateInit2 failed");
  }
  /* one block filling, one per worker compressing, a few done or waiting
   * for their turn to be written; two at least (filling and the one before,
   * whose tail primes it) */
  size_t nw = g->n_workers;
  g->n_slots = nw == 0 ? 2 : nw + (nw < 4 ? nw : 4) + 1;
  g->slots = hoist_calloc(g->n_slots, sizeof *g->slots);
  for (size_t i = 0; i < g->n_slots; i++) {
    slot *s = &g->slots[i];
    s->in = malloc(BLOCK);
    s->dict = malloc(DICT_SIZE);
    s->out_cap = OUT_ROOM;
    s->out = malloc(s->out_cap);
    if (!s->in || !s->dict || !s->out)
      abort();
  }
  g->slots[0].state = SLOT_FILLING;
  *out = &g->base;
  return 0;
}
