/*
 * stream: a byte sink that content flows into once. Blob stores, files and
 * registry uploads implement it; the layer writer and the registry pull write
 * into it without knowing which.
 *
 * Contract: write() any number of times, then exactly one of commit() or
 * hoist_writer_free() without commit (which discards everything written, so a
 * failure leaves nothing visible). A writer created with an expected digest
 * and size refuses, at commit, content that does not match them.
 */
#ifndef HOIST_STREAM_H
#define HOIST_STREAM_H

#include "hoist/core.h"
#include "hoist/digest.h"

typedef struct hoist_writer hoist_writer;

typedef struct hoist_writer_ops {
  int (*write)(hoist_writer *w, const void *data, size_t len, hoist_err **err);
  /* Makes the content visible. digest_out receives the content's digest. */
  int (*commit)(hoist_writer *w, char digest_out[HOIST_DIGEST_STR_LEN], uint64_t *size_out,
                hoist_err **err);
  /* Releases w; discards the content unless commit succeeded. */
  void (*free)(hoist_writer *w);
} hoist_writer_ops;

struct hoist_writer {
  const hoist_writer_ops *ops;
};

static inline int hoist_writer_write(hoist_writer *w, const void *data, size_t len,
                                     hoist_err **err) {
  return w->ops->write(w, data, len, err);
}
static inline int hoist_writer_commit(hoist_writer *w, char digest_out[HOIST_DIGEST_STR_LEN],
                                      uint64_t *size_out, hoist_err **err) {
  return w->ops->commit(w, digest_out, size_out, err);
}
static inline void hoist_writer_free(hoist_writer *w) {
  if (w)
    w->ops->free(w);
}
static inline void hoist_writer_freep(hoist_writer **w) { hoist_writer_free(*w); }
#define _cleanup_writer_ __attribute__((cleanup(hoist_writer_freep)))

#endif
