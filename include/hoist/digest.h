/*
 * digest: SHA-256 content digests in the OCI form "sha256:<64 lowercase hex>".
 *
 * A hoist_sha256 hashes a stream incrementally (OpenSSL EVP, which uses the
 * CPU's SHA extensions where present). hoist_digest_parse validates a digest
 * string from untrusted input.
 */
#ifndef HOIST_DIGEST_H
#define HOIST_DIGEST_H

#include "hoist/core.h"

#define HOIST_DIGEST_HEX_LEN 64
/* "sha256:" + 64 hex + NUL */
#define HOIST_DIGEST_STR_LEN (7 + HOIST_DIGEST_HEX_LEN + 1)

typedef struct hoist_sha256 hoist_sha256;

/* Returns a new hashing context; aborts on out-of-memory. */
HOIST_EXPORT hoist_sha256 *hoist_sha256_new(void);
HOIST_EXPORT void hoist_sha256_update(hoist_sha256 *h, const void *data, size_t len);
/* Writes "sha256:<hex>" into out and resets h for reuse. */
HOIST_EXPORT void hoist_sha256_final(hoist_sha256 *h, char out[HOIST_DIGEST_STR_LEN]);
/* Writes the 64 hex digits only into out and resets h. */
HOIST_EXPORT void hoist_sha256_final_hex(hoist_sha256 *h, char out[HOIST_DIGEST_HEX_LEN + 1]);
HOIST_EXPORT void hoist_sha256_free(hoist_sha256 *h);

static inline void hoist_sha256_freep(hoist_sha256 **h) { hoist_sha256_free(*h); }
#define _cleanup_sha256_ __attribute__((cleanup(hoist_sha256_freep)))

/* One-shot digest of a memory region. */
HOIST_EXPORT void hoist_sha256_of(const void *data, size_t len, char out[HOIST_DIGEST_STR_LEN]);

/* Digest of a file's whole content, read once. */
HOIST_EXPORT int hoist_sha256_file(int dirfd, const char *path, char out[HOIST_DIGEST_STR_LEN],
                                   uint64_t *size, hoist_err **err) HOIST_WUR;

/* Validates "sha256:<64 lowercase hex>". Other algorithms are refused by
 * name ("unsupported digest algorithm sha512"); a malformed string gets a
 * message saying what is wrong. On success, *hex (optional) points into s. */
HOIST_EXPORT int hoist_digest_parse(const char *s, const char **hex, hoist_err **err) HOIST_WUR;

/* True when s is a valid sha256 digest string. */
HOIST_EXPORT bool hoist_digest_valid(const char *s);

#endif
