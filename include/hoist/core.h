/*
 * core: the pieces every other module of libhoist stands on.
 *
 * - hoist_err: an error with a code, a message naming what failed, and the
 *   error that caused it. Every fallible function returns 0 or a negative
 *   code and takes `hoist_err **err` as its last argument.
 * - cleanup attributes (_cleanup_free_, ...) and steal_pointer/steal_fd.
 * - hoist_buf: a growable byte buffer with a hard size cap.
 * - logging to stderr with levels chosen by HOIST_LOG (error, warn, info, debug).
 * - the toolbox every module shares instead of writing its own: overflow-checked
 *   allocation, a string vector (hoist_strv), base64. The others live beside
 *   this header: mkdir -p on a dirfd in fs.h, the seeded hash map in map.h, the
 *   size caps in limits.h.
 */
#ifndef HOIST_CORE_H
#define HOIST_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define HOIST_EXPORT __attribute__((visibility("default")))
/* A result the caller must look at: an error code, or a value it would leak. */
#define HOIST_WUR __attribute__((warn_unused_result))
/* A fallible call whose failure is deliberately not acted on: a best-effort
 * cleanup on a path that is failing already, a file that may be absent, a
 * log line. The reason stands beside it. */
#define hoist_best_effort(call) ((void)!(call))

/* ---------------------------------------------------------------- errors */

/* Codes beyond errno for failures errno has no name for. */
enum {
  HOIST_E_BASE = 10000,
  HOIST_E_DIGEST,   /* content does not match its digest or size */
  HOIST_E_REGISTRY, /* registry answered with an error */
  HOIST_E_AUTH,     /* authentication refused */
  HOIST_E_FORMAT,   /* malformed input (JSON, tar, manifest, reference) */
  HOIST_E_UNSAFE,   /* input tried to escape a root or break a rule of safety */
  HOIST_E_LIMIT,    /* input exceeds a configured limit */
};

typedef struct hoist_err {
  int code; /* positive: an errno value or a HOIST_E_* code */
  char *msg;
  struct hoist_err *cause;
} hoist_err;

/* Sets *err (when err is not NULL and *err is NULL) to a new error with code
 * and a printf-style message. Returns -code, so callers write
 * `return hoist_err_set(err, EINVAL, "...")`. An existing *err is kept as the
 * cause of the new one. */
HOIST_EXPORT int hoist_err_set(hoist_err **err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like hoist_err_set with strerror(errno_value) appended to the message. */
HOIST_EXPORT int hoist_err_errno(hoist_err **err, int errno_value, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Wraps *err in a new error that adds context ("pull x: " + cause). The new
 * error keeps the cause's code. Returns -code. When *err is NULL it creates an
 * error with code EIO. */
HOIST_EXPORT int hoist_err_wrap(hoist_err **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

HOIST_EXPORT void hoist_err_free(hoist_err *err);

/* Full message: "outer: inner: innermost". Caller frees. */
HOIST_EXPORT char *hoist_err_text(const hoist_err *err);

/* Code of the innermost error (the root cause). */
HOIST_EXPORT int hoist_err_root_code(const hoist_err *err);

/* -------------------------------------------------------------- cleanup */

static inline void hoist_freep(void *p) { free(*(void **)p); }
static inline void hoist_closep(int *fd) {
  if (*fd >= 0)
    close(*fd);
}
static inline void hoist_fclosep(FILE **f) {
  if (*f)
    fclose(*f);
}
static inline void hoist_err_freep(hoist_err **e) { hoist_err_free(*e); }

#define _cleanup_free_ __attribute__((cleanup(hoist_freep)))
#define _cleanup_close_ __attribute__((cleanup(hoist_closep)))
#define _cleanup_fclose_ __attribute__((cleanup(hoist_fclosep)))
#define _cleanup_err_ __attribute__((cleanup(hoist_err_freep)))

/* Moves ownership out of a variable that has a cleanup attribute. */
#define steal_pointer(pp)                                                                          \
  ({                                                                                               \
    __typeof__(*(pp)) _stolen = *(pp);                                                             \
    *(pp) = NULL;                                                                                  \
    _stolen;                                                                                       \
  })

static inline int steal_fd(int *fd) {
  int r = *fd;
  *fd = -1;
  return r;
}

/* ---------------------------------------------------------------- buffer */

/* A growable byte buffer, always NUL-terminated, that refuses to grow past
 * max bytes (0 means 1 GiB). */
typedef struct hoist_buf {
  char *data;
  size_t len;
  size_t cap;
  size_t max;
} hoist_buf;

#define HOIST_BUF_INIT(maxbytes)                                                                   \
  { NULL, 0, 0, (maxbytes) }

HOIST_EXPORT void hoist_buf_init(hoist_buf *b, size_t max);
/* Appends len bytes, or nothing at all: past the cap it returns -HOIST_E_LIMIT
 * and leaves b as it was. A caller that goes on regardless would work on a
 * shorter string than it meant (a path resolving elsewhere), hence HOIST_WUR. */
HOIST_EXPORT int hoist_buf_append(hoist_buf *b, const void *data, size_t len,
                                  hoist_err **err) HOIST_WUR;
HOIST_EXPORT int hoist_buf_appendf(hoist_buf *b, hoist_err **err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4))) HOIST_WUR;
HOIST_EXPORT void hoist_buf_reset(hoist_buf *b);
HOIST_EXPORT void hoist_buf_free(hoist_buf *b);
/* Returns the data (caller frees; never NULL) and leaves b empty. */
HOIST_EXPORT char *hoist_buf_steal(hoist_buf *b);

static inline void hoist_buf_freep(hoist_buf *b) { hoist_buf_free(b); }
#define _cleanup_buf_ __attribute__((cleanup(hoist_buf_freep)))

/* --------------------------------------------------------------- logging */

typedef enum {
  HOIST_LOG_ERROR = 0,
  HOIST_LOG_WARN = 1,
  HOIST_LOG_INFO = 2,
  HOIST_LOG_DEBUG = 3,
} hoist_log_level;

typedef void (*hoist_log_sink)(hoist_log_level level, const char *msg, void *userdata);

/* The level messages are kept from: warn until the caller sets another
 * (hoist: $HOIST_LOG). */
HOIST_EXPORT hoist_log_level hoist_log_get_level(void);
HOIST_EXPORT void hoist_log_set_level(hoist_log_level level);
/* Replaces the stderr sink; NULL restores it. */
HOIST_EXPORT void hoist_log_set_sink(hoist_log_sink sink, void *userdata);
HOIST_EXPORT void hoist_log(hoist_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define hoist_debug(...) hoist_log(HOIST_LOG_DEBUG, __VA_ARGS__)
#define hoist_info(...) hoist_log(HOIST_LOG_INFO, __VA_ARGS__)
#define hoist_warn(...) hoist_log(HOIST_LOG_WARN, __VA_ARGS__)

/* ----------------------------------------------------------------- misc */

/* What pruning a cache removed (or, dry, would remove). */
typedef struct hoist_prune_report {
  uint64_t removed; /* trees or entries */
  uint64_t bytes;   /* disk space they took */
  uint64_t in_use;  /* old enough, but kept: a build or run holds them */
} hoist_prune_report;

/* Library version, "MAJOR.MINOR.PATCH". */
HOIST_EXPORT const char *hoist_version(void);

/* strdup that aborts on out-of-memory, as every allocation in libhoist does. */
HOIST_EXPORT char *hoist_strdup(const char *s);
HOIST_EXPORT void *hoist_malloc0(size_t n);
HOIST_EXPORT void *hoist_realloc(void *p, size_t n);
/* An array of n elements of size bytes, zeroed (hoist_calloc) or resized
 * (hoist_reallocarray, new elements not zeroed). n * size is checked: a
 * product that overflows is a request no allocator can meet, and aborts as
 * out-of-memory does, instead of returning a short block. Never NULL. */
HOIST_EXPORT void *hoist_calloc(size_t n, size_t size) __attribute__((malloc)) HOIST_WUR;
HOIST_EXPORT void *hoist_reallocarray(void *p, size_t n, size_t size) HOIST_WUR;
HOIST_EXPORT char *hoist_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "123", "64K", "500M", "4G", "4GiB", "1T" (binary multiples) -> bytes, above 0; false on
 * anything else. */
HOIST_EXPORT bool hoist_size_parse(const char *text, uint64_t *out);

/* Makes the calling thread, and only it, see UTF-8 as its character set
 * (C.UTF-8) until hoist_utf8_thread_leave(previous): libarchive converts
 * names through the locale, and in the C locale writes a non-ASCII name as
 * hdrcharset=BINARY and cannot read a UTF-8 one back. Returns what to pass
 * to leave; (void *)0 when C.UTF-8 is missing (the names stay bytes). */
HOIST_EXPORT void *hoist_utf8_thread_enter(void);
HOIST_EXPORT void hoist_utf8_thread_leave(void *previous);

/* ---------------------------------------------------------- string vector */

/* A growable vector of owned strings; v is NULL-terminated once it holds a
 * string (v[n] == NULL) and NULL before. HOIST_STRV_INIT or {0} is empty. */
typedef struct hoist_strv {
  char **v;
  size_t n;
  size_t cap;
} hoist_strv;

#define HOIST_STRV_INIT                                                                            \
  { NULL, 0, 0 }

/* Appends s and takes ownership of it. */
HOIST_EXPORT void hoist_strv_push(hoist_strv *sv, char *s);
/* Appends a copy of s. */
HOIST_EXPORT void hoist_strv_add(hoist_strv *sv, const char *s);
/* Returns the NULL-terminated array (never NULL, even when empty; the caller
 * frees it with hoist_strfreev) and leaves sv empty. */
HOIST_EXPORT char **hoist_strv_steal(hoist_strv *sv) HOIST_WUR;
/* Frees the strings and the array; sv is empty and usable again. */
HOIST_EXPORT void hoist_strv_clear(hoist_strv *sv);
/* Frees a NULL-terminated array of strings and its strings; NULL is fine. */
HOIST_EXPORT void hoist_strfreev(char **v);

static inline void hoist_strv_clearp(hoist_strv *sv) { hoist_strv_clear(sv); }
static inline void hoist_strfreevp(char ***v) { hoist_strfreev(*v); }
#define _cleanup_strv_ __attribute__((cleanup(hoist_strv_clearp)))
#define _cleanup_strfreev_ __attribute__((cleanup(hoist_strfreevp)))

/* ---------------------------------------------------------------- base64 */

/* Standard base64 (RFC 4648 alphabet, "=" padding) of len bytes, as a
 * NUL-terminated string the caller frees. */
HOIST_EXPORT char *hoist_base64_encode(const void *data, size_t len) HOIST_WUR;

/* Padding may be left out (as in ~/.docker/config.json "auth" values). */
#define HOIST_BASE64_PAD_OPTIONAL 1u

/* Decodes len characters of standard base64 into a NUL-terminated buffer the
 * caller frees (*out_len excludes the NUL). Strict: only the alphabet, no
 * whitespace or line breaks, "=" only as the last one or two characters of a
 * length that is a multiple of 4 (HOIST_BASE64_PAD_OPTIONAL: or no padding).
 * Anything else is HOIST_E_FORMAT; a result longer than max bytes is
 * HOIST_E_LIMIT, refused before anything is allocated. With err NULL a
 * refusal allocates nothing at all. "" decodes to "". */
HOIST_EXPORT int hoist_base64_decode(const char *s, size_t len, size_t max, unsigned flags,
                                     unsigned char **out, size_t *out_len,
                                     hoist_err **err) HOIST_WUR;

#endif
