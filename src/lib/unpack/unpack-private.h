/* Internal pieces of the unpack module shared by its files. */
#ifndef HOIST_UNPACK_PRIVATE_H
#define HOIST_UNPACK_PRIVATE_H

#include <sys/types.h>

#include "hoist/digest.h"
#include "hoist/unpack.h"

/* Size of the compressed-input and decompressed-output buffers. */
#define UNPACK_BUF_SIZE (1u << 20)

/* A layer blob read once from fd: hashed as it is read (blob digest),
 * decompressed, and hashed again (diffID) as the tar reader consumes it. */
typedef struct layer_stream layer_stream;

int layer_stream_new(int fd, hoist_compression comp, layer_stream **out, hoist_err **err) HOIST_WUR;
/* Points *data at the next uncompressed bytes; returns their count, 0 at the
 * end of the stream, or a negative code. */
ssize_t layer_stream_read(layer_stream *s, const void **data, hoist_err **err);
/* Reads and hashes whatever the tar reader left (end-of-archive padding)
 * and checks both digests (either may be NULL). */
int layer_stream_finish(layer_stream *s, const char *expected_digest, const char *expected_diff_id,
                        hoist_err **err) HOIST_WUR;
void layer_stream_free(layer_stream *s);

#endif
