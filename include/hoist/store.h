/*
 * store: an OCI image layout directory (`oci:DIR`) as a content-addressed
 * store: `oci-layout`, `index.json` (tags as org.opencontainers.image.ref.name
 * annotations) and `blobs/sha256/<hex>`.
 *
 * Blobs are written to a temp file in blobs/sha256, hashed as they stream in,
 * fsync'd and renamed to their digest only when digest and size check out, so
 * a reader never sees a partial blob, a crash leaves at most a stray temp
 * file, and two writers of one digest end with one good file. index.json
 * changes happen under a lock file and are written atomically.
 */
#ifndef HOIST_STORE_H
#define HOIST_STORE_H

#include "hoist/core.h"
#include "hoist/oci.h"
#include "hoist/stream.h"

#define HOIST_ANNOTATION_REF_NAME "org.opencontainers.image.ref.name"

typedef struct hoist_store hoist_store;

/* Opens the layout at dir; with create, makes it (and dir) when missing. A
 * directory that exists but is not a layout is refused. */
HOIST_EXPORT int hoist_store_open(const char *dir, bool create, hoist_store **out,
                                  hoist_err **err) HOIST_WUR;
HOIST_EXPORT void hoist_store_close(hoist_store *s);
HOIST_EXPORT const char *hoist_store_dir(const hoist_store *s);

HOIST_EXPORT bool hoist_store_has_blob(hoist_store *s, const char *digest);
/* Opens a blob for reading; *size receives its size. */
HOIST_EXPORT int hoist_store_open_blob(hoist_store *s, const char *digest, int *fd, uint64_t *size,
                                       hoist_err **err) HOIST_WUR;
/* Reads a whole blob (at most max bytes) and checks it against its digest. */
HOIST_EXPORT int hoist_store_read_blob(hoist_store *s, const char *digest, size_t max, char **data,
                                       size_t *len, hoist_err **err) HOIST_WUR;
/* Streams a new blob in. expected_digest (or NULL) and expected_size (or -1)
 * are checked at commit; a mismatch discards the content. */
HOIST_EXPORT int hoist_store_blob_writer(hoist_store *s, const char *expected_digest,
                                         int64_t expected_size, hoist_writer **out,
                                         hoist_err **err) HOIST_WUR;
/* Stores bytes as a blob; digest_out receives its digest. */
HOIST_EXPORT int hoist_store_put_blob(hoist_store *s, const void *data, size_t len,
                                      const char *expected_digest,
                                      char digest_out[HOIST_DIGEST_STR_LEN],
                                      hoist_err **err) HOIST_WUR;

/* True when tag is a valid org.opencontainers.image.ref.name: alphanumerics
 * and "-._:@+/", starting and ending with an alphanumeric, at most 255. */
HOIST_EXPORT bool hoist_store_tag_valid(const char *tag);
/* Points tag at desc in index.json (replacing that tag's previous entry). */
HOIST_EXPORT int hoist_store_tag(hoist_store *s, const char *tag, const hoist_descriptor *desc,
                                 hoist_err **err) HOIST_WUR;
HOIST_EXPORT int hoist_store_untag(hoist_store *s, const char *tag, hoist_err **err) HOIST_WUR;
/* Removes from index.json every entry whose digest is digest, tagged or
 * not; *tags (caller frees, hoist_strfreev) the tags they had. ENOENT when
 * no entry has that digest. Blobs stay until hoist_store_gc. */
HOIST_EXPORT int hoist_store_untag_digest(hoist_store *s, const char *digest, char ***tags,
                                          hoist_err **err) HOIST_WUR;
/* The descriptor tagged tag; NULL tag means the only entry of index.json. */
HOIST_EXPORT int hoist_store_resolve(hoist_store *s, const char *tag, hoist_descriptor *out,
                                     hoist_err **err) HOIST_WUR;
/* index.json as a model (its entries, tags in their annotations). */
HOIST_EXPORT int hoist_store_index(hoist_store *s, hoist_index **out, hoist_err **err) HOIST_WUR;

/* Removes blobs not reachable from index.json (through indexes, manifests,
 * configs and layers) whose file is at least min_age_seconds old, and stray
 * temp files older than a minute; *removed counts the files removed,
 * *freed_bytes their sizes. Removes nothing when a reachable manifest or
 * index cannot be read or names an invalid digest. The age is the grace a
 * concurrent writer needs between writing blobs and tagging them: a blob
 * writer whose content is already stored refreshes the file's mtime, and so
 * does hoist_store_touch_blob. With 0, collect only when nothing else writes
 * to the layout. */
HOIST_EXPORT int hoist_store_gc(hoist_store *s, int64_t min_age_seconds, uint64_t *removed,
                                uint64_t *freed_bytes, hoist_err **err) HOIST_WUR;

/* hoist_store_has_blob, and marks the blob as just used (its mtime) so
 * gc's grace period covers a writer that reuses it. */
HOIST_EXPORT bool hoist_store_touch_blob(hoist_store *s, const char *digest);

static inline void hoist_store_closep(hoist_store **s) { hoist_store_close(*s); }
#define _cleanup_store_ __attribute__((cleanup(hoist_store_closep)))

#endif
