/* Private to src/lib/registry: the client's state and the request layer. */
#ifndef HOIST_REGISTRY_INTERNAL_H
#define HOIST_REGISTRY_INTERNAL_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>

#include "hoist/registry.h"

/* Largest JSON answer (tags, catalog pages, tokens, errors) kept in memory. */
#define REG_BODY_MAX (16u << 20)

/* A host's TLS settings (tls.c), gathered once. */
typedef struct reg_tls {
  bool loaded;
  char *ca; /* PEM bundle: the system's and the extra CAs; NULL: curl's default */
  size_t ca_len;
  char *cert; /* client certificate, or NULL */
  char *key;
  char *dir; /* the certs directory read for the host, or NULL */
} reg_tls;

/* What the client knows about one registry host: how it is spoken to, how
 * it authenticates and with which credentials. */
typedef struct reg_host {
  struct reg_host *next;
  char *host;
  bool creds_loaded;
  bool have_creds;
  hoist_creds creds;
  char *scheme; /* "basic" or "bearer" once a challenge was seen */
  char *realm;
  char *service;
  char *base_url; /* "https://host" or "http://host" once decided (reg_host_base) */
  /* why it could not be decided, when (CLOCK_MONOTONIC seconds), its code */
  char *probe_failed;
  time_t probe_failed_at;
  int probe_failed_code;
  reg_tls tls;
  /* how blobs go up to the host, learned from its answers (r->lock) */
  int single_post; /* POST ?digest= with the body: 0 untried, 1 taken, -1 not taken */
  int upload_way;  /* REG_WAY_*: the first the host did not refuse */
} reg_host;

/* The ways of an upload too large to hold in memory, in the order they are
 * tried: one streamed PATCH; PATCH chunks with Content-Range; the whole
 * blob spooled and sent in one PUT. */
enum { REG_WAY_STREAM = 0, REG_WAY_CHUNKS, REG_WAY_WHOLE };

typedef struct reg_token {
  struct reg_token *next;
  char *host;
  char *scope;
  char *token;
  time_t expires;
} reg_token;

struct hoist_registry {
  CURLSH *share;
  pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
  pthread_mutex_t lock;       /* hosts and tokens */
  pthread_mutex_t probe_lock; /* one host's scheme decided at a time */
  reg_host *hosts;
  reg_token *tokens;
  char *creds;
  char *auth_file;
  hoist_strv auth_files; /* searched in order when auth_file is NULL */
  char *secret_file;
  hoist_strv insecure;
  const hoist_regconf *regconf; /* borrowed */
  char *ca_file;
  char *cert_file;
  char *key_file;
  char *cert_dir;
  hoist_strv certs_d;
  bool tls_skip_verify;
  bool tls_always;
  int jobs;
  char *tmp_dir;  /* spool files of REG_WAY_WHOLE; NULL: /var/tmp */
  char *loc_path; /* the blob-location record's file, or NULL */
  pthread_mutex_t loc_lock;
  bool loc_tried; /* opening it was tried (loc_lock) */
  hoist_blob_locations *locs;
  uint64_t chunk_size; /* 0: CHUNK_DEFAULT */
  unsigned page_size;
  hoist_progress_fn progress;
  void *progress_userdata;
  /* the retries' jitter: a splitmix64 sequence of the client's own, seeded
   * from getrandom, stepped atomically by the transfer threads */
  _Atomic uint64_t jitter;
};

typedef struct reg_req {
  const char *method; /* GET, HEAD, PUT, POST, PATCH, DELETE */
  const char *host;   /* registry host as written in references */
  const char *url;    /* "/v2/..." or an absolute URL (upload locations) */
  const char *scope;  /* token scope(s), space separated; NULL: the challenge's */
  const char *accept;
  const char *content_type;
  char *content_range; /* "start-end" for a chunk, or NULL */
  /* request body: memory, or a range of a seekable fd, or a pipe (no retry) */
  const void *body;
  size_t body_len;
  int body_fd;
  uint64_t body_off;
  uint64_t body_size;
  bool body_stream; /* body_fd is a pipe: chunked transfer, not replayable */
  /* response body sink for 2xx answers (else the body goes to resp.body) */
  hoist_writer *sink;
  uint64_t sink_written; /* bytes already in sink; a retry asks Range from here */
  const char *progress_id;
  uint64_t progress_total;
  bool no_retry;
  bool no_auth; /* not a registry (a layer's urls): no credentials, a 401 is an answer */
} reg_req;

typedef struct reg_resp {
  long status;
  hoist_buf body;
  char *location;
  char *docker_digest;
  char *content_type;
  char *www_auth;
  char *range;
  char *link;
  char *retry_after;
  char *chunk_min;
  int64_t content_length;
} reg_resp;

void reg_resp_clear(reg_resp *r);
static inline void reg_resp_clearp(reg_resp *r) { reg_resp_clear(r); }
#define _cleanup_resp_ __attribute__((cleanup(reg_resp_clearp)))

/* Performs req with authentication and the retry policy. Any HTTP status
 * comes back in resp (the caller decides what it means); transport failures
 * that outlive the retries, and authentication failures, are errors. */
int reg_do(hoist_registry *r, reg_req *req, reg_resp *resp, hoist_err **err) HOIST_WUR;

/* An error from a registry answer: "HTTP 404: MANIFEST_UNKNOWN: manifest
 * unknown" with the JSON error body's codes and messages when present. */
int reg_status_error(const reg_resp *resp, hoist_err **err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "https://host" or "http://host" (docker.io maps to registry-1.docker.io)
 * in *base (caller frees): decided by the first call for host, which
 * loads its TLS settings and asks GET /v2/ over https, then over http when
 * that failed and the host may be insecure. The error of a host that cannot
 * be reached says why and, for a certificate not trusted, what to give. */
int reg_host_base(hoist_registry *r, const char *host, char **base, hoist_err **err) HOIST_WUR;

/* host is on the client's insecure list (options, config file). */
bool reg_insecure_listed(hoist_registry *r, const char *host);

/* auth.c: the state of host, made on first use (caller holds r->lock). */
reg_host *reg_host_get(hoist_registry *r, const char *host);

/* auth.c: the Authorization header value for host and scope, or NULL. */
char *reg_auth_header(hoist_registry *r, const char *host, const char *scope);
/* Handles a 401: learns the challenge and obtains a token. */
int reg_auth_challenge(hoist_registry *r, const char *host, const char *scope, const char *www_auth,
                       hoist_err **err) HOIST_WUR;
void reg_auth_free(hoist_registry *r);

/* creds.c: credentials for host (and repo) from options, files and helpers.
 * *found false when there are none. */
int reg_creds_lookup(hoist_registry *r, const char *host, hoist_creds *out, bool *found,
                     hoist_err **err) HOIST_WUR;

/* blobloc.c: the client's use of its blob-location record, opened at the
 * first call (a record that cannot be opened is warned about once and not
 * used). Best effort: a failure is logged at debug level and otherwise
 * ignored. */
void reg_loc_seen(hoist_registry *r, const char *host, const char *repo, const char *digest);
void reg_loc_forget(hoist_registry *r, const char *host, const char *repo, const char *digest);
/* Whether the record says repo holds digest. */
bool reg_loc_has(hoist_registry *r, const char *host, const char *repo, const char *digest);
/* The repositories to try a mount of digest into repo from: from (when not
 * NULL and not repo), then the record's, most recently seen first, at most
 * max in all, added to out. */
void reg_loc_candidates(hoist_registry *r, const char *host, const char *repo, const char *digest,
                        const char *from, size_t max, hoist_strv *out);
void reg_loc_close(hoist_registry *r);

/* Applies host's TLS settings, timeouts and the share handle to an easy
 * handle for url. */
void reg_curl_setup(hoist_registry *r, CURL *c, const char *host, const char *url);

/* tls.c: loads host's TLS settings once (its certs directory read, its CA
 * bundle made); an unreadable file is an error. */
int reg_tls_load(hoist_registry *r, const char *host, hoist_err **err) HOIST_WUR;
/* Sets host's TLS settings on c (reg_tls_load first). */
void reg_tls_apply(hoist_registry *r, CURL *c, const char *host);
/* Whether certificates of host are verified. */
bool reg_tls_verifies(hoist_registry *r, const char *host);
/* What to do about a certificate of host not trusted (caller frees). */
char *reg_tls_hint(hoist_registry *r, const char *host);
void reg_tls_clear(reg_tls *t);

#endif
