/* The layer module's own pieces, shared between its files. */
#ifndef HOIST_LAYER_PRIVATE_H
#define HOIST_LAYER_PRIVATE_H

#include "hoist/layer.h"

/* The gzip compressor of hoist_layer_compress_writer (gzip.c): level 0-9
 * (checked by the caller), threads 0 for one per online CPU. Owns next from
 * the call on, also on failure. */
int layer_gzip_writer(int level, int threads, hoist_writer *next, hoist_writer **out,
                      hoist_err **err) HOIST_WUR;

/* threads as the compressors take it: 0 or less is one per online CPU, and
 * never more than HOIST_LAYER_MAX_THREADS. */
int layer_threads(int threads);

#endif
