/* Internal to the image module: what append, config edits and copies share. */
#ifndef HOIST_IMAGE_INTERNAL_H
#define HOIST_IMAGE_INTERNAL_H

#include "hoist/image.h"

/* The single-platform image manifest src names: the document itself, or the
 * entry of an index matching want (the host's platform when want is NULL).
 * what names src in errors ("base"). Caller frees *out. */
int image_manifest_of(hoist_transport_source *src, const char *what, const hoist_platform *want,
                      hoist_manifest **out, hoist_err **err) HOIST_WUR;

/* A writer is given the content this many times at most. */
#define IMAGE_WRITER_ATTEMPTS 3

/* Whether the content a writer failed on (e) is to be given again to a new
 * one: the registry refused the way it went up (EAGAIN,
 * hoist_registry_blob_upload) and attempt (from 1) is not the last. */
bool image_give_again(const hoist_err *e, int attempt);

/* Puts e in *err (or frees it when *err is taken); returns -code. */
int image_err_take(hoist_err **err, hoist_err *e);

/* Stores data (a config) in t under digest, unless t has it already. */
int image_put_blob(hoist_transport_target *t, const char *media_type, const char *data, size_t len,
                   const char digest[HOIST_DIGEST_STR_LEN], hoist_err **err) HOIST_WUR;

/* How the blobs of image_copy_blobs reached the target. */
typedef struct image_blob_counts {
  uint64_t copied, skipped, mounted, bytes;
} image_blob_counts;

/* Moves the n blobs from src into dst, up to jobs (0: 4) at a time, each
 * the cheapest way dst knows (skipped when present, mounted, streamed);
 * foreign layers stay where their urls point. */
int image_copy_blobs(hoist_transport_source *src, hoist_transport_target *dst,
                     const hoist_descriptor *const *blobs, size_t n, int jobs,
                     image_blob_counts *counts, hoist_err **err) HOIST_WUR;

#endif
