/* The distribution API operations: blobs (HEAD, streaming GET with on-the-fly
 * verification; uploads: mounts from the repositories the blob-location
 * record names, small blobs monolithic (a single POST, or POST then PUT),
 * larger ones in one PUT or PATCH chunks, the streaming writer),
 * manifests, tags, catalog and delete. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hoist/fs.h"
#include "internal.h"

/* Blobs up to this size go up in one PUT; larger ones in PATCH chunks of this
 * size (hoist_registry_opts.chunk_size overrides; the registry's
 * OCI-Chunk-Min-Length wins when larger). */
#define CHUNK_DEFAULT (64u << 20)
/* A registry's OCI-Chunk-Min-Length above this is not followed: a chunk may
 * be held in memory (hoist_registry_blob_upload). */
#define CHUNK_MIN_FOLLOWED (256u << 20)
#define UPLOAD_RESTARTS 3
#define PAGE_MAX 10000

static char *scope_pull(const char *repo) { return hoist_asprintf("repository:%s:pull", repo); }
static char *scope_push(const char *repo) {
  return hoist_asprintf("repository:%s:pull,push", repo);
}

static const char *short_digest(const char *digest, char buf[20]) {
  const char *hex = strchr(digest, ':');
  snprintf(buf, 20, "%.12s", hex ? hex + 1 : digest);
  return buf;
}

/* --------------------------------------------------------------- HEAD */

HOIST_WUR static int blob_head(hoist_registry *r, const char *host, const char *repo,
                               const char *digest, const char *scope, bool *exists, int64_t *size,
                               hoist_err **err) {
  _cleanup_free_ char *url = hoist_asprintf("/v2/%s/blobs/%s", repo, digest);
  reg_req q = {.method = "HEAD", .host = host, .url = url, .scope = scope};
  _cleanup_resp_ reg_resp resp = {0};
  if (reg_do(r, &q, &resp, err) < 0)
    return hoist_err_wrap(err, "blob %s", digest);
  if (resp.status == 200) {
    *exists = true;
    if (size)
      *size = resp.content_length;
    reg_loc_seen(r, host, repo, digest);
    return 0;
  }
  if (resp.status == 404) {
    *exists = false;
    return 0;
  }
  return reg_status_error(&resp, err, "HEAD blob %s", digest);
}

int hoist_registry_blob_exists(hoist_registry *r, const char *host, const char *repo,
                               const char *digest, bool *exists, int64_t *size, hoist_err **err) {
  _cleanup_free_ char *scope = scope_pull(repo);
  return blob_head(r, host, repo, digest, scope, exists, size, err);
}

int hoist_registry_blob_exists_for_push(hoist_registry *r, const char *host, const char *repo,
                                        const char *digest, bool *exists, int64_t *size,
                                        hoist_err **err) {
  _cleanup_free_ char *scope = scope_push(repo);
  return blob_head(r, host, repo, digest, scope, exists, size, err);
}

/* ---------------------------------------------------------------- GET */

typedef struct verify_writer {
  hoist_writer base;
  hoist_writer *inner;
  hoist_sha256 *h;
  uint64_t n;
  int64_t size;
  const char *digest;
} verify_writer;

HOIST_WUR static int verify_write(hoist_writer *w, const void *data, size_t len, hoist_err **err) {
  verify_writer *v = (verify_writer *)w;
  if (v->size >= 0 && v->n + len > (uint64_t)v->size)
    return hoist_err_set(err, HOIST_E_DIGEST, "blob %s: more than the %lld bytes announced",
                         v->digest, (long long)v->size);
  hoist_sha256_update(v->h, data, len);
  v->n += len;
  return hoist_writer_write(v->inner, data, len, err);
}

static const hoist_writer_ops verify_ops = {.write = verify_write};

int hoist_registry_get_blob(hoist_registry *r, const char *host, const char *repo,
                            const char *digest, int64_t size, hoist_writer *w, hoist_err **err) {
  if (hoist_digest_parse(digest, NULL, err) < 0)
    return -HOIST_E_FORMAT;
  _cleanup_free_ char *url = hoist_asprintf("/v2/%s/blobs/%s", repo, digest);
  _cleanup_free_ char *scope = scope_pull(repo);
  _cleanup_sha256_ hoist_sha256 *h = hoist_sha256_new();
  verify_writer v = {.base = {&verify_ops}, .inner = w, .h = h, .size = size, .digest = digest};
  char sid[20];
  reg_req q = {.method = "GET",
               .host = host,
               .url = url,
               .scope = scope,
               .sink = &v.base,
               .progress_id = short_digest(digest, sid),
               .progress_total = size > 0 ? (uint64_t)size : 0};
  _cleanup_resp_ reg_resp resp = {0};
  if (reg_do(r, &q, &resp, err) < 0)
    return hoist_err_wrap(err, "blob %s", digest);
  if (resp.status == 404)
    return reg_status_error(&resp, err, "blob %s: not found in %s/%s", digest, host, repo);
  if (resp.status != 200 && resp.status != 206)
    return reg_status_error(&resp, err, "GET blob %s", digest);
  char got[HOIST_DIGEST_STR_LEN];
  hoist_sha256_final(h, got);
  if (size >= 0 && v.n != (uint64_t)size)
    return hoist_err_set(err, HOIST_E_DIGEST, "blob %s: got %llu bytes, expected %lld", digest,
                         (unsigned long long)v.n, (long long)size);
  if (strcmp(got, digest) != 0)
    return hoist_err_set(err, HOIST_E_DIGEST, "blob %s: digest mismatch (content is %s)", digest,
                         got);
  reg_loc_seen(r, host, repo, digest);
  if (r->progress)
    r->progress(r->progress_userdata, sid, v.n, v.n, true);
  return 0;
}

int hoist_registry_fetch_url(hoist_registry *r, const char *url, const char *digest, int64_t size,
                             hoist_writer *w, hoist_err **err) {
  if (hoist_digest_parse(digest, NULL, err) < 0)
    return -HOIST_E_FORMAT;
  if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
    return hoist_err_set(err, HOIST_E_UNSAFE, "blob %s: url %s: only http and https are fetched",
                         digest, url);
  _cleanup_sha256_ hoist_sha256 *h = hoist_sha256_new();
  verify_writer v = {.base = {&verify_ops}, .inner = w, .h = h, .size = size, .digest = digest};
  char sid[20];
  reg_req q = {.method = "GET",
               .host = url,
               .url = url,
               .sink = &v.base,
               .no_auth = true,
               .progress_id = short_digest(digest, sid),
               .progress_total = size > 0 ? (uint64_t)size : 0};
  _cleanup_resp_ reg_resp resp = {0};
  if (reg_do(r, &q, &resp, err) < 0)
    return hoist_err_wrap(err, "blob %s from %s", digest, url);
  if (resp.status != 200 && resp.status != 206)
    return hoist_err_set(err, HOIST_E_REGISTRY, "blob %s: GET %s: HTTP %ld", digest, url,
                         resp.status);
  char got[HOIST_DIGEST_STR_LEN];
  hoist_sha256_final(h, got);
  if (size >= 0 && v.n != (uint64_t)size)
    return hoist_err_set(err, HOIST_E_DIGEST, "blob %s from %s: got %llu bytes, expected %lld",
                         digest, url, (unsigned long long)v.n, (long long)size);
  if (strcmp(got, digest) != 0)
    return hoist_err_set(err, HOIST_E_DIGEST, "blob %s from %s: digest mismatch (content is %s)",
                         digest, url, got);
  if (r->progress)
    r->progress(r->progress_userdata, sid, v.n, v.n, true);
  return 0;
}

/* ------------------------------------------------------------- upload */

/* A host not known to take a single POST is asked so only with a body this
 * small: a registry that does not read the body of a POST (it answers 202
 * and waits for the PUT) still drains one of this size (Go's servers drain
 * 256 KiB) rather than cut the connection under it. */
#define SINGLE_POST_PROBE_MAX (64u << 10)
/* Repositories a mount is tried from, per blob. */
#define MOUNT_CANDIDATES 3

static char *with_query(const char *location, const char *kv) {
  return hoist_asprintf("%s%c%s", location, strchr(location, '?') ? '&' : '?', kv);
}

static uint64_t chunk_size(const hoist_registry *r, const reg_resp *start) {
  uint64_t c = r->chunk_size ? r->chunk_size : CHUNK_DEFAULT;
  if (start && start->chunk_min) {
    unsigned long long m = strtoull(start->chunk_min, NULL, 10);
    if (m > c && m <= CHUNK_MIN_FOLLOWED)
      c = m;
  }
  return c;
}

/* What the client learned of how host takes uploads (reg_host). */
static int host_single_post(hoist_registry *r, const char *host) {
  pthread_mutex_lock(&r->lock);
  int v = reg_host_get(r, host)->single_post;
  pthread_mutex_unlock(&r->lock);
  return v;
}

static void host_set_single_post(hoist_registry *r, const char *host, int v) {
  pthread_mutex_lock(&r->lock);
  reg_host_get(r, host)->single_post = v;
  pthread_mutex_unlock(&r->lock);
}

static int host_upload_way(hoist_registry *r, const char *host) {
  pthread_mutex_lock(&r->lock);
  int v = reg_host_get(r, host)->upload_way;
  pthread_mutex_unlock(&r->lock);
  return v;
}

/* host refused way: its uploads go the next way from now on (several
 * writers may learn it at once: the way only moves forward). */
static int host_refused(hoist_registry *r, const char *host, int way) {
  pthread_mutex_lock(&r->lock);
  reg_host *h = reg_host_get(r, host);
  if (h->upload_way <= way)
    h->upload_way = way + 1;
  int next = h->upload_way;
  pthread_mutex_unlock(&r->lock);
  return next;
}

static const char *const way_names[] = {"a streamed PATCH", "PATCH chunks",
                                        "one PUT of the whole blob"};

/* Whether an answer to a PATCH sent way refuses that way of uploading (a
 * front that wants a length, a range, or no PATCH at all), rather than
 * this upload. */
static bool refuses_way(int way, long status) {
  if (status == 405 || status == 501)
    return true; /* no PATCH at all */
  return way == REG_WAY_STREAM &&
         (status == 400 || status == 411 || status == 413 || status == 416);
}

/* The error of a refused way: host's next upload goes the next way, the
 * caller gives the content again (EAGAIN). */
HOIST_WUR static int way_refused(hoist_registry *r, const char *host, int way, const reg_resp *resp,
                                 hoist_err **err) {
  int next =
      host_refused(r, host, resp->status == 405 || resp->status == 501 ? REG_WAY_CHUNKS : way);
  hoist_err *e = NULL;
  hoist_best_effort(reg_status_error(resp, &e, "PATCH")); /* its text goes in the message */
  _cleanup_free_ char *why = hoist_err_text(e);
  hoist_err_free(e);
  return hoist_err_set(
      err, EAGAIN, "the registry refused %s (%s); its next upload to %s goes as %s", way_names[way],
      why, host, way_names[next > REG_WAY_WHOLE ? REG_WAY_WHOLE : next]);
}

/* A blob's bytes for a request: in memory, else size bytes of fd read with
 * pread from offset 0. */
typedef struct blob_body {
  const void *mem;
  int fd;
  uint64_t size;
} blob_body;

static void body_into(reg_req *q, const blob_body *b) {
  q->content_type = "application/octet-stream";
  if (b->size == 0)
    return;
  if (b->mem) {
    q->body = b->mem;
    q->body_len = (size_t)b->size;
  } else {
    q->body_fd = b->fd;
    q->body_size = b->size;
  }
}

/* Opens an upload session: *location (caller frees) its URL, *chunk
 * (optional) the size of its PATCH chunks. */
HOIST_WUR static int upload_start(hoist_registry *r, const char *host, const char *repo,
                                  const char *scope, char **location, uint64_t *chunk,
                                  hoist_err **err) {
  _cleanup_free_ char *url = hoist_asprintf("/v2/%s/blobs/uploads/", repo);
  reg_req q = {.method = "POST", .host = host, .url = url, .scope = scope};
  _cleanup_resp_ reg_resp resp = {0};
  if (reg_do(r, &q, &resp, err) < 0)
    return -1;
  if (resp.status != 202 || !resp.location)
    return reg_status_error(&resp, err, "start upload");
  *location = hoist_strdup(resp.location);
  if (chunk)
    *chunk = chunk_size(r, &resp);
  return 0;
}

/* Cancels an upload session (best effort: the registry expires it anyway). */
static void session_cancel(hoist_registry *r, const char *host, const char *scope,
                           const char *location) {
  reg_req q = {.method = "DELETE", .host = host, .url = location, .scope = scope};
  _cleanup_resp_ reg_resp resp = {0};
  hoist_err *ignored = NULL;
  hoist_best_effort(reg_do(r, &q, &resp, &ignored));
  hoist_err_free(ignored);
}

/* Closes the session at location with PUT ?digest=, sending b (NULL: no
 * body) as its last bytes, range (or NULL) their Content-Range. *status is
 * the failing answer's HTTP status, 0 when the connection failed. */
HOIST_WUR static int upload_close(hoist_registry *r, const char *host, const char *scope,
                                  const char *location, const char *digest, const blob_body *b,
                                  const char *range, const char *pid, long *status,
                                  hoist_err **err) {
  *status = 0;
  _cleanup_free_ char *kv = hoist_asprintf("digest=%s", digest);
  _cleanup_free_ char *url = with_query(location, kv);
  reg_req q = {.method = "PUT", .host = host, .url = url, .scope = scope, .no_retry = true};
  if (b) {
    body_into(&q, b);
    q.content_range = (char *)range;
    q.progress_id = pid;
    q.progress_total = b->size;
  }
  _cleanup_resp_ reg_resp resp = {0};
  if (reg_do(r, &q, &resp, err) < 0)
    return -1;
  if (resp.status != 201) {
    *status = resp.status;
    if (resp.status == 400)
      return reg_status_error(&resp, err, "finish upload of %s", digest);
    return reg_status_error(&resp, err, "PUT blob %s", digest);
  }
  return 0;
}

/* The single-POST upload: POST ?digest= with the whole body. *done when the
 * registry took it (201). Otherwise the host is not asked so again, and
 * *location (caller frees) is the session its 202 opened (*chunk its chunk
 * size), or NULL when it answered otherwise. */
HOIST_WUR static int single_post(hoist_registry *r, const char *host, const char *repo,
                                 const char *digest, const char *scope, const blob_body *b,
                                 const char *pid, bool *done, char **location, uint64_t *chunk,
                                 hoist_err **err) {
  *done = false;
  *location = NULL;
  _cleanup_free_ char *url = hoist_asprintf("/v2/%s/blobs/uploads/?digest=%s", repo, digest);
  reg_req q = {.method = "POST",
               .host = host,
               .url = url,
               .scope = scope,
               .progress_id = pid,
               .progress_total = b->size};
  body_into(&q, b);
  _cleanup_resp_ reg_resp resp = {0};
  if (reg_do(r, &q, &resp, err) < 0)
    return -1;
  if (resp.status == 201) {
    host_set_single_post(r, host, 1);
    *done = true;
    return 0;
  }
  if (resp.status == 401 || resp.status == 403)
    return reg_status_error(&resp, err, "start upload");
  host_set_single_post(r, host, -1);
  hoist_debug("%s: a single POST with the blob answered HTTP %ld: POST then PUT from now on", host,
              resp.status);
  if (resp.status == 202 && resp.location) {
    *location = hoist_strdup(resp.location);
    *chunk = chunk_size(r, &resp);
  }
  return 0;
}

/* Whether a single POST is worth trying for size bytes to host. */
static bool try_single_post(hoist_registry *r, const char *host, uint64_t size) {
  int v = host_single_post(r, host);
  return v > 0 || (v == 0 && size <= SINGLE_POST_PROBE_MAX);
}

/* Tries mounts of digest into repo from the repositories of cands, in
 * order. *mounted when one worked (the record then has repo). A declined
 * mount's repository is forgotten by the record and the session it opened
 * cancelled, except the last one when location is not NULL: *location
 * (caller frees) and *chunk then describe it. A mount refused (401, 403:
 * no pull access there) is passed over. */
HOIST_WUR static int try_mounts(hoist_registry *r, const char *host, const char *repo,
                                const char *digest, const hoist_strv *cands, bool *mounted,
                                char **location, uint64_t *chunk, hoist_err **err) {
  *mounted = false;
  _cleanup_free_ char *scope = scope_push(repo);
  _cleanup_free_ char *held = NULL;
  uint64_t held_chunk = 0;
  for (size_t i = 0; i < cands->n && !*mounted; i++) {
    const char *from = cands->v[i];
    _cleanup_free_ char *mscope = hoist_asprintf("%s repository:%s:pull", scope, from);
    _cleanup_free_ char *url =
        hoist_asprintf("/v2/%s/blobs/uploads/?mount=%s&from=%s", repo, digest, from);
    reg_req q = {.method = "POST", .host = host, .url = url, .scope = mscope};
    _cleanup_resp_ reg_resp resp = {0};
    hoist_err *e = NULL;
    if (reg_do(r, &q, &resp, &e) < 0) {
      if (e && e->code == HOIST_E_AUTH) {
        _cleanup_free_ char *text = hoist_err_text(e);
        hoist_debug("mount of %s from %s refused: %s", digest, from, text);
        hoist_err_free(e);
        continue;
      }
      if (err && !*err)
        *err = e;
      else
        hoist_err_free(e);
      if (held)
        session_cancel(r, host, scope, held);
      return hoist_err_wrap(err, "mount blob %s from %s", digest, from);
    }
    if (resp.status == 201) {
      *mounted = true;
      hoist_debug("mounted %s from %s", digest, from);
      break;
    }
    hoist_debug("mount of %s from %s declined (HTTP %ld)", digest, from, resp.status);
    if (resp.status == 202 || resp.status == 404)
      reg_loc_forget(r, host, from, digest);
    if (resp.status == 202 && resp.location) {
      if (held)
        session_cancel(r, host, scope, held);
      free(held);
      held = hoist_strdup(resp.location);
      held_chunk = chunk_size(r, &resp);
    }
  }
  if (*mounted) {
    reg_loc_seen(r, host, repo, digest);
    if (held)
      session_cancel(r, host, scope, held);
  } else if (held && location) {
    *location = steal_pointer(&held);
    *chunk = held_chunk;
  } else if (held) {
    session_cancel(r, host, scope, held);
  }
  return 0;
}

/* Asks the upload session how much it has; *offset the next byte. */
HOIST_WUR static int upload_status(hoist_registry *r, const char *host, const char *scope,
                                   char **location, uint64_t *offset, hoist_err **err) {
  reg_req q = {.method = "GET", .host = host, .url = *location, .scope = scope};
  _cleanup_resp_ reg_resp resp = {0};
  if (reg_do(r, &q, &resp, err) < 0)
    return -1;
  if (resp.status != 204 || !resp.range)
    return reg_status_error(&resp, err, "upload status");
  const char *dash = strchr(resp.range, '-');
  if (!dash)
    return hoist_err_set(err, HOIST_E_REGISTRY, "upload status: bad Range \"%s\"", resp.range);
  long long end = strtoll(dash + 1, NULL, 10);
  *offset = end < 0 ? 0 : (uint64_t)end + 1;
  if (resp.location) {
    free(*location);
    *location = hoist_strdup(resp.location);
  }
  return 0;
}

/* Sends bytes [from, size) of fd to the session in chunks, then finishes it.
 * Returns 0, or -1 with *err; *status is the failing answer's HTTP status, 0
 * when the connection failed. */
HOIST_WUR static int upload_body(hoist_registry *r, const char *host, const char *digest,
                                 uint64_t size, int fd, const char *scope, char **location,
                                 uint64_t from, uint64_t chunk, const char *pid, long *status,
                                 hoist_err **err) {
  uint64_t off = from;
  *status = 0;
  if (from == 0 && size <= chunk) {
    /* monolithic: one PUT with the whole body */
    blob_body b = {.fd = fd, .size = size};
    return upload_close(r, host, scope, *location, digest, &b, NULL, pid, status, err);
  }
  while (off < size) {
    uint64_t n = size - off < chunk ? size - off : chunk;
    _cleanup_free_ char *range =
        hoist_asprintf("%llu-%llu", (unsigned long long)off, (unsigned long long)(off + n - 1));
    reg_req q = {.method = "PATCH",
                 .host = host,
                 .url = *location,
                 .scope = scope,
                 .content_type = "application/octet-stream",
                 .content_range = range,
                 .body_fd = fd,
                 .body_off = off,
                 .body_size = n,
                 .progress_id = pid,
                 .progress_total = size,
                 .no_retry = true};
    _cleanup_resp_ reg_resp resp = {0};
    if (reg_do(r, &q, &resp, err) < 0)
      return -1;
    if (resp.status != 202 || !resp.location) {
      *status = resp.status;
      return reg_status_error(&resp, err, "PATCH blob chunk %s", range);
    }
    free(*location);
    *location = hoist_strdup(resp.location);
    off += n;
  }
  return upload_close(r, host, scope, *location, digest, NULL, NULL, NULL, status, err);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}

/* Uploads size bytes of fd as digest into session *location (opened here
 * when NULL), monolithically up to chunk, else in chunks, with the restart
 * policy: a broken connection or an overloaded registry is tried again, the
 * session asked where it stands, or a new one started. */
HOIST_WUR static int upload_fd(hoist_registry *r, const char *host, const char *repo,
                               const char *digest, uint64_t size, int fd, const char *scope,
                               char **location, uint64_t chunk, const char *sid, hoist_err **err) {
  int ret = -1;
  for (int restart = 0; restart < UPLOAD_RESTARTS; restart++) {
    if (restart > 0 || !*location) {
      free(steal_pointer(location));
      if (upload_start(r, host, repo, scope, location, &chunk, err) < 0)
        return -1;
    }
    uint64_t off = 0;
    for (int resume = 0;; resume++) {
      hoist_err *e = NULL;
      long status = 0;
      ret = upload_body(r, host, digest, size, fd, scope, location, off, chunk, sid, &status, &e);
      if (ret == 0)
        break;
      if (!e)
        hoist_err_set(&e, EIO, "upload failed");
      /* the connection broke, the registry is overloaded (408, 429, 5xx) or
       * lost the session (404, 416): worth another try; any other answer
       * (DIGEST_INVALID, DENIED, ...) is final */
      bool transient = status == 0 || status == 408 || status == 429 || status >= 500;
      bool lost = status == 404 || status == 416;
      if (restart == UPLOAD_RESTARTS - 1 || (!transient && !lost)) {
        if (err && !*err)
          *err = e;
        else
          hoist_err_free(e);
        return -1;
      }
      char *t = hoist_err_text(e);
      hoist_info("push blob %s: %s; trying again", digest, t);
      free(t);
      hoist_err_free(e);
      sleep_ms(1000L << restart);
      /* the session may survive (a proxy or the network failed): ask it */
      hoist_err *se = NULL;
      if (transient && resume < 3 && upload_status(r, host, scope, location, &off, &se) == 0 &&
          off <= size)
        continue;
      hoist_err_free(se);
      break; /* start over with a new session */
    }
    if (ret == 0)
      return 0;
  }
  return hoist_err_set(err, ECONNRESET, "upload kept failing");
}

int hoist_registry_put_blob(hoist_registry *r, const char *host, const char *repo,
                            const char *digest, uint64_t size, int fd, const char *mount_from,
                            const char **how, hoist_err **err) {
  if (hoist_digest_parse(digest, NULL, err) < 0)
    return -HOIST_E_FORMAT;
  _cleanup_free_ char *scope = scope_push(repo);
  bool small = size <= HOIST_REGISTRY_SMALL_BLOB;
  char sid[20];
  short_digest(digest, sid);
  _cleanup_strv_ hoist_strv cands = HOIST_STRV_INIT;
  reg_loc_candidates(r, host, repo, digest, mount_from, MOUNT_CANDIDATES, &cands);
  /* repo is asked whether it has the blob when the record says so, and
   * before a large one is sent; a small one costs about as much to send as
   * to ask for, and a mount takes a blob repo has as well */
  bool recorded = reg_loc_has(r, host, repo, digest);
  bool asked = false;
  if (recorded || (!small && !cands.n)) {
    bool exists = false;
    if (blob_head(r, host, repo, digest, scope, &exists, NULL, err) < 0)
      return hoist_err_wrap(err, "push blob %s", digest);
    if (exists) {
      if (how)
        *how = "exists";
      return 0;
    }
    if (recorded)
      reg_loc_forget(r, host, repo, digest);
    asked = true;
  }
  _cleanup_free_ char *location = NULL;
  uint64_t chunk = chunk_size(r, NULL);
  bool mounted = false;
  if (cands.n && try_mounts(r, host, repo, digest, &cands, &mounted, &location, &chunk, err) < 0)
    return hoist_err_wrap(err, "push blob %s", digest);
  if (mounted) {
    if (how)
      *how = "mounted";
    return 0;
  }
  if (!small && !asked) {
    /* no mount: a large blob repo has is not sent again */
    bool exists = false;
    if (blob_head(r, host, repo, digest, scope, &exists, NULL, err) < 0) {
      if (location)
        session_cancel(r, host, scope, location);
      return hoist_err_wrap(err, "push blob %s", digest);
    }
    if (exists) {
      if (location)
        session_cancel(r, host, scope, location);
      if (how)
        *how = "exists";
      return 0;
    }
  }
  bool done = false;
  if (!location && small && try_single_post(r, host, size)) {
    blob_body b = {.fd = fd, .size = size};
    if (single_post(r, host, repo, digest, scope, &b, sid, &done, &location, &chunk, err) < 0)
      return hoist_err_wrap(err, "push blob %s", digest);
  }
  if (!done && upload_fd(r, host, repo, digest, size, fd, scope, &location, chunk, sid, err) < 0) {
    if (location)
      session_cancel(r, host, scope, location);
    return hoist_err_wrap(err, "push blob %s", digest);
  }
  /* the registry answered 201: it verified the digest */
  reg_loc_seen(r, host, repo, digest);
  if (r->progress)
    r->progress(r->progress_userdata, sid, size, size, true);
  if (how)
    *how = "uploaded";
  return 0;
}

int hoist_registry_mount_blob(hoist_registry *r, const char *host, const char *repo,
                              const char *digest, const char *from, bool *mounted,
                              hoist_err **err) {
  *mounted = false;
  if (hoist_digest_parse(digest, NULL, err) < 0)
    return -HOIST_E_FORMAT;
  _cleanup_strv_ hoist_strv cands = HOIST_STRV_INIT;
  hoist_strv_add(&cands, from);
  return try_mounts(r, host, repo, digest, &cands, mounted, NULL, NULL, err);
}

int hoist_registry_mount_known(hoist_registry *r, const char *host, const char *repo,
                               const char *digest, const char *from, bool *mounted,
                               hoist_err **err) {
  *mounted = false;
  if (hoist_digest_parse(digest, NULL, err) < 0)
    return -HOIST_E_FORMAT;
  _cleanup_strv_ hoist_strv cands = HOIST_STRV_INIT;
  reg_loc_candidates(r, host, repo, digest, from, MOUNT_CANDIDATES, &cands);
  return try_mounts(r, host, repo, digest, &cands, mounted, NULL, NULL, err);
}

/* ---------------------------------------------------- streaming writer */

/* The writer of hoist_registry_blob_upload. Its first bytes wait in memory;
 * once they outgrow HOIST_REGISTRY_SMALL_BLOB the blob goes the host's way:
 * REG_WAY_STREAM, the caller feeding one end of a socket pair (a socket, so
 * a dead reader is EPIPE rather than SIGPIPE) and a thread running the
 * PATCH that reads the other; REG_WAY_CHUNKS, a PATCH each time a chunk is
 * full; REG_WAY_WHOLE, an unlinked spool file sent at commit. */
typedef struct upload_writer {
  hoist_writer base;
  hoist_registry *r;
  char *host;
  char *repo;
  char *scope;
  char *expected;
  hoist_sha256 *h; /* NULL with expected: the registry checks that */
  uint64_t size;   /* bytes given */
  int way;         /* REG_WAY_* once the blob left memory, else -1 */
  char *buf;       /* the first bytes; with REG_WAY_CHUNKS the chunk being filled */
  size_t len;
  size_t cap;
  char *location; /* the upload session, once opened */
  uint64_t chunk; /* REG_WAY_CHUNKS: bytes per PATCH */
  uint64_t sent;  /* REG_WAY_CHUNKS: bytes the session has */
  int fd;         /* REG_WAY_STREAM: write end, -1 once closed */
  int rfd;
  pthread_t th;
  bool running;
  int patch_ret;
  reg_resp patch;
  hoist_err *patch_err;
  int spool;   /* REG_WAY_WHOLE: the spool file, else -1 */
  bool failed; /* a write failed: what the registry has is incomplete */
  bool committed;
} upload_writer;

static void *upload_thread(void *arg) {
  upload_writer *u = arg;
  reg_req q = {.method = "PATCH",
               .host = u->host,
               .url = u->location,
               .scope = u->scope,
               .content_type = "application/octet-stream",
               .body_fd = u->rfd,
               .body_stream = true};
  u->patch_ret = reg_do(u->r, &q, &u->patch, &u->patch_err);
  close(u->rfd); /* a writer still sending now gets EPIPE */
  return NULL;
}

/* Ends the streamed PATCH: closes the write end and waits; returns its
 * outcome (a refused way is EAGAIN, see hoist_registry_blob_upload). */
HOIST_WUR static int stream_finish(upload_writer *u, hoist_err **err) {
  if (u->fd >= 0) {
    close(u->fd);
    u->fd = -1;
  }
  if (u->running) {
    pthread_join(u->th, NULL);
    u->running = false;
  }
  if (u->patch_ret < 0) {
    if (err && !*err)
      *err = steal_pointer(&u->patch_err);
    return -1;
  }
  if (u->patch.status != 202) {
    if (refuses_way(REG_WAY_STREAM, u->patch.status))
      return way_refused(u->r, u->host, REG_WAY_STREAM, &u->patch, err);
    return reg_status_error(&u->patch, err, "PATCH blob");
  }
  return 0;
}

HOIST_WUR static int send_all(upload_writer *u, const void *data, size_t len, hoist_err **err) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = send(u->fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int e = errno;
      /* the PATCH ended early: its answer says why */
      if (stream_finish(u, err) < 0)
        return -1;
      return hoist_err_errno(err, e, "stream");
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static void buf_reserve(upload_writer *u, size_t need) {
  if (need <= u->cap)
    return;
  size_t cap = u->cap ? u->cap : 64u << 10;
  while (cap < need)
    cap *= 2;
  char *b = realloc(u->buf, cap);
  if (!b)
    abort();
  u->buf = b;
  u->cap = cap;
}

/* REG_WAY_WHOLE: an unlinked file under the client's tmp_dir, holding
 * what was given so far. */
HOIST_WUR static int spool_start(upload_writer *u, hoist_err **err) {
  const char *dir = u->r->tmp_dir ? u->r->tmp_dir : "/var/tmp";
  int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {
    _cleanup_free_ char *t = hoist_asprintf("%s/.hoist-upload-XXXXXX", dir);
    fd = mkostemp(t, O_CLOEXEC);
    if (fd >= 0)
      unlink(t);
  }
  if (fd < 0)
    return hoist_err_errno(err, errno, "upload to %s: spool file in %s", u->host, dir);
  u->spool = fd;
  u->way = REG_WAY_WHOLE;
  if (hoist_fs_write_all(fd, u->buf, u->len, err) < 0)
    return -1;
  u->len = 0;
  return 0;
}

/* REG_WAY_CHUNKS: PATCHes the full chunks of the buffer. A first PATCH
 * that the registry refuses as a way moves the writer to REG_WAY_WHOLE in
 * place (it still holds every byte); a later one is EAGAIN. */
HOIST_WUR static int chunks_flush(upload_writer *u, hoist_err **err) {
  size_t done = 0;
  while (u->len - done >= u->chunk) {
    _cleanup_free_ char *range = hoist_asprintf("%llu-%llu", (unsigned long long)u->sent,
                                                (unsigned long long)(u->sent + u->chunk - 1));
    reg_req q = {.method = "PATCH",
                 .host = u->host,
                 .url = u->location,
                 .scope = u->scope,
                 .content_type = "application/octet-stream",
                 .content_range = range,
                 .body = u->buf + done,
                 .body_len = (size_t)u->chunk,
                 .no_retry = true};
    _cleanup_resp_ reg_resp resp = {0};
    if (reg_do(u->r, &q, &resp, err) < 0)
      return -1;
    if (resp.status != 202 || !resp.location) {
      if (!refuses_way(REG_WAY_CHUNKS, resp.status))
        return reg_status_error(&resp, err, "PATCH blob chunk %s", range);
      if (u->sent > 0 || done > 0)
        return way_refused(u->r, u->host, REG_WAY_CHUNKS, &resp, err);
      host_refused(u->r, u->host, REG_WAY_CHUNKS);
      hoist_debug("%s: PATCH refused (HTTP %ld): the blob goes up whole", u->host, resp.status);
      session_cancel(u->r, u->host, u->scope, u->location);
      free(steal_pointer(&u->location));
      return spool_start(u, err);
    }
    free(u->location);
    u->location = hoist_strdup(resp.location);
    u->sent += u->chunk;
    done += (size_t)u->chunk;
  }
  memmove(u->buf, u->buf + done, u->len - done);
  u->len -= done;
  return 0;
}

/* The blob outgrew memory: from now on it goes the host's way. */
HOIST_WUR static int leave_memory(upload_writer *u, hoist_err **err) {
  int way = host_upload_way(u->r, u->host);
  if (way >= REG_WAY_WHOLE)
    return spool_start(u, err);
  if (upload_start(u->r, u->host, u->repo, u->scope, &u->location, &u->chunk, err) < 0)
    return -1;
  if (way == REG_WAY_CHUNKS) {
    u->way = REG_WAY_CHUNKS;
    buf_reserve(u, u->chunk > u->len ? (size_t)u->chunk : u->len);
    return chunks_flush(u, err);
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return hoist_err_errno(err, errno, "socketpair");
  int bufsize = 1 << 20; /* best effort */
  (void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize);
  (void)setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof bufsize);
  u->fd = sv[0];
  u->rfd = sv[1];
  if (pthread_create(&u->th, NULL, upload_thread, u) != 0) {
    close(u->rfd);
    return hoist_err_set(err, EAGAIN, "cannot start an upload thread");
  }
  u->running = true;
  u->way = REG_WAY_STREAM;
  int ret = send_all(u, u->buf, u->len, err);
  free(steal_pointer(&u->buf));
  u->len = u->cap = 0;
  return ret;
}

HOIST_WUR static int upload_write_to(upload_writer *u, const void *data, size_t len,
                                     hoist_err **err) {
  if (u->way < 0) {
    if (u->len + len <= HOIST_REGISTRY_SMALL_BLOB) {
      buf_reserve(u, u->len + len);
      memcpy(u->buf + u->len, data, len);
      u->len += len;
      return 0;
    }
    if (leave_memory(u, err) < 0)
      return -1;
  }
  switch (u->way) {
  case REG_WAY_STREAM:
    return send_all(u, data, len, err);
  case REG_WAY_CHUNKS: {
    const char *p = data;
    while (len > 0 && u->way == REG_WAY_CHUNKS) {
      size_t k = (size_t)u->chunk - u->len < len ? (size_t)u->chunk - u->len : len;
      memcpy(u->buf + u->len, p, k);
      u->len += k;
      p += k;
      len -= k;
      if (chunks_flush(u, err) < 0)
        return -1;
    }
    if (len > 0) /* moved to REG_WAY_WHOLE */
      return hoist_fs_write_all(u->spool, p, len, err);
    return 0;
  }
  default:
    return hoist_fs_write_all(u->spool, data, len, err);
  }
}

HOIST_WUR static int upload_write(hoist_writer *w, const void *data, size_t len, hoist_err **err) {
  upload_writer *u = (upload_writer *)w;
  if (u->failed)
    return hoist_err_set(err, EIO, "upload to %s/%s: an earlier write failed", u->host, u->repo);
  if (u->h)
    hoist_sha256_update(u->h, data, len);
  u->size += len;
  if (upload_write_to(u, data, len, err) < 0) {
    u->failed = true;
    return hoist_err_wrap(err, "upload to %s/%s", u->host, u->repo);
  }
  return 0;
}

/* Sends what the writer holds and closes the session under digest; *status
 * is the HTTP status of a PUT that failed. */
HOIST_WUR static int upload_finish(upload_writer *u, const char *digest, long *status,
                                   hoist_err **err) {
  switch (u->way) {
  case -1: {
    /* small: one request, or two (hoist_registry_put_blob) */
    blob_body b = {.mem = u->buf, .size = u->len};
    bool done = false;
    uint64_t chunk = 0;
    if (try_single_post(u->r, u->host, u->len) &&
        single_post(u->r, u->host, u->repo, digest, u->scope, &b, NULL, &done, &u->location, &chunk,
                    err) < 0)
      return -1;
    if (done)
      return 0;
    if (!u->location && upload_start(u->r, u->host, u->repo, u->scope, &u->location, NULL, err) < 0)
      return -1;
    return upload_close(u->r, u->host, u->scope, u->location, digest, &b, NULL, NULL, status, err);
  }
  case REG_WAY_STREAM: {
    if (stream_finish(u, err) < 0)
      return -1;
    const char *next = u->patch.location ? u->patch.location : u->location;
    return upload_close(u->r, u->host, u->scope, next, digest, NULL, NULL, NULL, status, err);
  }
  case REG_WAY_CHUNKS: {
    blob_body b = {.mem = u->buf, .size = u->len};
    _cleanup_free_ char *range = u->len ? hoist_asprintf("%llu-%llu", (unsigned long long)u->sent,
                                                         (unsigned long long)(u->sent + u->len - 1))
                                        : NULL;
    return upload_close(u->r, u->host, u->scope, u->location, digest, u->len ? &b : NULL, range,
                        NULL, status, err);
  }
  default: {
    if (upload_start(u->r, u->host, u->repo, u->scope, &u->location, NULL, err) < 0)
      return -1;
    blob_body b = {.fd = u->spool, .size = u->size};
    return upload_close(u->r, u->host, u->scope, u->location, digest, &b, NULL, NULL, status, err);
  }
  }
}

HOIST_WUR static int upload_commit(hoist_writer *w, char out[HOIST_DIGEST_STR_LEN], uint64_t *size,
                                   hoist_err **err) {
  upload_writer *u = (upload_writer *)w;
  if (u->failed)
    return hoist_err_set(err, EIO, "upload to %s/%s: an earlier write failed", u->host, u->repo);
  if (u->h)
    hoist_sha256_final(u->h, out);
  else
    snprintf(out, HOIST_DIGEST_STR_LEN, "%s", u->expected);
  long status = 0;
  if (upload_finish(u, out, &status, err) < 0) {
    u->failed = true;
    if (status == 400 && u->expected)
      return hoist_err_wrap(err, "upload to %s/%s (content does not match)", u->host, u->repo);
    return hoist_err_wrap(err, "upload to %s/%s", u->host, u->repo);
  }
  u->committed = true;
  reg_loc_seen(u->r, u->host, u->repo, out);
  if (size)
    *size = u->size;
  return 0;
}

static void upload_free(hoist_writer *w) {
  upload_writer *u = (upload_writer *)w;
  if (u->way == REG_WAY_STREAM) {
    hoist_err *ignored = NULL;
    hoist_best_effort(stream_finish(u, &ignored)); /* discarded below */
    hoist_err_free(ignored);
  }
  if (!u->committed && u->location) {
    const char *at = u->patch.location ? u->patch.location : u->location;
    session_cancel(u->r, u->host, u->scope, at);
  }
  if (u->spool >= 0)
    close(u->spool);
  reg_resp_clear(&u->patch);
  hoist_err_free(u->patch_err);
  hoist_sha256_free(u->h);
  free(u->buf);
  free(u->host);
  free(u->repo);
  free(u->scope);
  free(u->location);
  free(u->expected);
  free(u);
}

static const hoist_writer_ops upload_ops = {upload_write, upload_commit, upload_free};

int hoist_registry_blob_upload(hoist_registry *r, const char *host, const char *repo,
                               const char *expected, hoist_writer **out, hoist_err **err) {
  if (expected && hoist_digest_parse(expected, NULL, err) < 0)
    return -HOIST_E_FORMAT;
  upload_writer *u = hoist_malloc0(sizeof *u);
  u->base.ops = &upload_ops;
  u->r = r;
  u->host = hoist_strdup(host);
  u->repo = hoist_strdup(repo);
  u->scope = scope_push(repo);
  u->expected = expected ? hoist_strdup(expected) : NULL;
  u->h = expected ? NULL : hoist_sha256_new();
  u->way = -1;
  u->fd = u->rfd = u->spool = -1;
  *out = &u->base;
  return 0;
}

/* ----------------------------------------------------------- manifests */

const char *hoist_registry_manifest_accept(void) {
  return HOIST_MT_OCI_MANIFEST ", " HOIST_MT_OCI_INDEX ", " HOIST_MT_DOCKER_MANIFEST
                               ", " HOIST_MT_DOCKER_LIST;
}

/* The media type of a manifest document: its mediaType, else the
 * Content-Type, else its shape. */
static char *manifest_type(const char *data, size_t len, const char *content_type) {
  _cleanup_json_ json_t *j = json_loadb(data, len, 0, NULL);
  const char *mt = j ? json_string_value(json_object_get(j, "mediaType")) : NULL;
  if (mt && *mt)
    return hoist_strdup(mt);
  if (content_type && *content_type && strncmp(content_type, "application/json", 16) != 0 &&
      strncmp(content_type, "text/plain", 10) != 0) {
    size_t n = strcspn(content_type, "; ");
    return strndup(content_type, n);
  }
  if (j && json_object_get(j, "manifests"))
    return hoist_strdup(HOIST_MT_OCI_INDEX);
  return hoist_strdup(HOIST_MT_OCI_MANIFEST);
}

static bool is_digest_ref(const char *reference) { return strchr(reference, ':') != NULL; }

/* Where a manifest's bytes go: memory, up to HOIST_MANIFEST_MAX. More is an
 * error naming that limit, the transfer stops there (a manifest announced as
 * 100 MB, or one that never ends, costs 4 MiB). */
typedef struct manifest_sink {
  hoist_writer base;
  hoist_buf *buf;
} manifest_sink;

HOIST_WUR static int manifest_write(hoist_writer *w, const void *data, size_t len,
                                    hoist_err **err) {
  hoist_buf *b = ((manifest_sink *)w)->buf;
  if (len > HOIST_MANIFEST_MAX - b->len)
    return hoist_err_set(err, HOIST_E_LIMIT, "manifest larger than %u MiB",
                         HOIST_MANIFEST_MAX >> 20);
  return hoist_buf_append(b, data, len, err);
}

static const hoist_writer_ops manifest_ops = {.write = manifest_write};

int hoist_registry_get_manifest(hoist_registry *r, const char *host, const char *repo,
                                const char *reference, char **data, size_t *len, char **media_type,
                                char digest[HOIST_DIGEST_STR_LEN], hoist_err **err) {
  _cleanup_free_ char *url = hoist_asprintf("/v2/%s/manifests/%s", repo, reference);
  _cleanup_free_ char *scope = scope_pull(repo);
  _cleanup_buf_ hoist_buf body = HOIST_BUF_INIT(HOIST_MANIFEST_MAX);
  manifest_sink sink = {.base = {&manifest_ops}, .buf = &body};
  reg_req q = {.method = "GET",
               .host = host,
               .url = url,
               .scope = scope,
               .accept = hoist_registry_manifest_accept(),
               .sink = &sink.base};
  _cleanup_resp_ reg_resp resp = {0};
  if (reg_do(r, &q, &resp, err) < 0)
    return hoist_err_wrap(err, "manifest %s/%s:%s", host, repo, reference);
  if (resp.status == 404)
    return reg_status_error(&resp, err, "manifest %s/%s%c%s: not found", host, repo,
                            is_digest_ref(reference) ? '@' : ':', reference);
  if (resp.status != 200)
    return reg_status_error(&resp, err, "GET manifest %s", reference);
  const char *text = body.data ? body.data : "";
  hoist_sha256_of(text, body.len, digest);
  if (is_digest_ref(reference) && strcmp(digest, reference) != 0)
    return hoist_err_set(err, HOIST_E_DIGEST, "manifest %s: digest mismatch (content is %s)",
                         reference, digest);
  *media_type = manifest_type(text, body.len, resp.content_type);
  *len = body.len;
  *data = hoist_buf_steal(&body);
  return 0;
}

int hoist_registry_head_manifest(hoist_registry *r, const char *host, const char *repo,
                                 const char *reference, bool *found,
                                 char digest[HOIST_DIGEST_STR_LEN], char **media_type,
                                 hoist_err **err) {
  _cleanup_free_ char *url = hoist_asprintf("/v2/%s/manifests/%s", repo, reference);
  _cleanup_free_ char *scope = scope_pull(repo);
  reg_req q = {.method = "HEAD",
               .host = host,
               .url = url,
               .scope = scope,
               .accept = hoist_registry_manifest_accept()};
  _cleanup_resp_ reg_resp resp = {0};
  if (reg_do(r, &q, &resp, err) < 0)
    return hoist_err_wrap(err, "manifest %s", reference);
  *found = false;
  if (resp.status == 404)
    return 0;
  if (resp.status != 200)
    return reg_status_error(&resp, err, "HEAD manifest %s", reference);
  if (!resp.docker_digest || !hoist_digest_valid(resp.docker_digest)) {
    /* no digest header: fetch the bytes and hash them */
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    _cleanup_free_ char *mt = NULL;
    if (hoist_registry_get_manifest(r, host, repo, reference, &data, &len, &mt, digest, err) < 0)
      return -1;
    *found = true;
    if (media_type)
      *media_type = steal_pointer(&mt);
    return 0;
  }
  *found = true;
  snprintf(digest, HOIST_DIGEST_STR_LEN, "%s", resp.docker_digest);
  if (media_type)
    *media_type =
        resp.content_type ? strndup(resp.content_type, strcspn(resp.content_type, "; ")) : NULL;
  return 0;
}

int hoist_registry_put_manifest(hoist_registry *r, const char *host, const char *repo,
                                const char *reference, const char *data, size_t len,
                                const char *media_type, hoist_err **err) {
  _cleanup_free_ char *url = hoist_asprintf("/v2/%s/manifests/%s", repo, reference);
  _cleanup_free_ char *scope = scope_push(repo);
  reg_req q = {.method = "PUT",
               .host = host,
               .url = url,
               .scope = scope,
               .content_type = media_type,
               .body = data,
               .body_len = len};
  _cleanup_resp_ reg_resp resp = {0};
  if (reg_do(r, &q, &resp, err) < 0)
    return hoist_err_wrap(err, "push manifest %s", reference);
  if (resp.status != 201 && resp.status != 200)
    return reg_status_error(&resp, err, "push manifest %s/%s:%s", host, repo, reference);
  return 0;
}

int hoist_registry_delete_manifest(hoist_registry *r, const char *host, const char *repo,
                                   const char *digest, hoist_err **err) {
  if (hoist_digest_parse(digest, NULL, err) < 0)
    return -HOIST_E_FORMAT;
  _cleanup_free_ char *url = hoist_asprintf("/v2/%s/manifests/%s", repo, digest);
  _cleanup_free_ char *scope = hoist_asprintf("repository:%s:delete", repo);
  reg_req q = {.method = "DELETE", .host = host, .url = url, .scope = scope};
  _cleanup_resp_ reg_resp resp = {0};
  if (reg_do(r, &q, &resp, err) < 0)
    return hoist_err_wrap(err, "delete %s", digest);
  if (resp.status == 202 || resp.status == 200 || resp.status == 204)
    return 0;
  if (resp.status == 405)
    return hoist_err_set(err, HOIST_E_REGISTRY,
                         "delete %s/%s@%s: deletes are disabled on this registry", host, repo,
                         digest);
  if (resp.status == 404)
    return reg_status_error(&resp, err, "delete %s/%s@%s: not found", host, repo, digest);
  return reg_status_error(&resp, err, "delete %s/%s@%s", host, repo, digest);
}

/* ------------------------------------------------------------ referrers */

int hoist_registry_referrers(hoist_registry *r, const char *host, const char *repo,
                             const char *subject, const char *artifact_type, char **data,
                             size_t *len, bool *supported, hoist_err **err) {
  if (hoist_digest_parse(subject, NULL, err) < 0)
    return hoist_err_wrap(err, "referrers of %s", subject);
  *supported = false;
  *data = NULL;
  *len = 0;
  _cleanup_free_ char *scope = scope_pull(repo);
  _cleanup_free_ char *filter = NULL;
  if (artifact_type) {
    CURL *c = curl_easy_init();
    char *esc = c ? curl_easy_escape(c, artifact_type, 0) : NULL;
    if (c)
      curl_easy_cleanup(c);
    if (!esc)
      return hoist_err_set(err, ENOMEM, "referrers of %s: out of memory", subject);
    filter = hoist_asprintf("?artifactType=%s", esc);
    curl_free(esc);
  }
  _cleanup_free_ char *url =
      hoist_asprintf("/v2/%s/referrers/%s%s", repo, subject, filter ? filter : "");
  _cleanup_json_ json_t *all = json_array();
  for (int page = 0; url; page++) {
    if (page >= PAGE_MAX)
      return hoist_err_set(err, HOIST_E_LIMIT, "referrers of %s: more than %d pages", subject,
                           PAGE_MAX);
    reg_req q = {
        .method = "GET", .host = host, .url = url, .scope = scope, .accept = HOIST_MT_OCI_INDEX};
    _cleanup_resp_ reg_resp resp = {0};
    if (reg_do(r, &q, &resp, err) < 0)
      return hoist_err_wrap(err, "referrers of %s/%s@%s", host, repo, subject);
    /* A registry without the API answers 404 (the spec forbids it for a
     * registry that has it), or refuses the unknown route otherwise. */
    if (page == 0 &&
        (resp.status == 404 || resp.status == 400 || resp.status == 405 || resp.status == 501))
      return 0;
    if (resp.status != 200)
      return reg_status_error(&resp, err, "GET referrers of %s/%s@%s", host, repo, subject);
    json_error_t je;
    _cleanup_json_ json_t *j =
        json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, &je);
    json_t *m = j ? json_object_get(j, "manifests") : NULL;
    if (!json_is_object(j) || (m && !json_is_null(m) && !json_is_array(m)))
      return hoist_err_set(err, HOIST_E_FORMAT,
                           "referrers of %s/%s@%s: the answer is not an OCI index", host, repo,
                           subject);
    if (m && json_array_extend(all, m) < 0)
      return hoist_err_set(err, ENOMEM, "referrers of %s: out of memory", subject);
    char *next = NULL;
    if (hoist_link_next(resp.link, &next, err) < 0)
      return -1;
    if (next && strcmp(next, url) == 0) {
      free(next);
      next = NULL;
    }
    free(url);
    url = next;
  }
  _cleanup_json_ json_t *ix = json_pack("{s:i, s:s, s:O}", "schemaVersion", 2, "mediaType",
                                        HOIST_MT_OCI_INDEX, "manifests", all);
  char *text = ix ? json_dumps(ix, JSON_COMPACT) : NULL;
  if (!text)
    return hoist_err_set(err, ENOMEM, "referrers of %s: out of memory", subject);
  *supported = true;
  *data = text;
  *len = strlen(text);
  return 0;
}

/* ------------------------------------------------------ tags, catalog */

int hoist_link_next(const char *header, char **next, hoist_err **err) {
  *next = NULL;
  if (!header)
    return 0;
  if (strlen(header) > 8192)
    return hoist_err_set(err, HOIST_E_LIMIT, "Link header too long");
  const char *p = header;
  for (;;) {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    if (*p == '\0')
      return 0;
    if (*p != '<')
      return hoist_err_set(err, HOIST_E_FORMAT, "invalid Link header: expected '<'");
    const char *end = strchr(p + 1, '>');
    if (!end)
      return hoist_err_set(err, HOIST_E_FORMAT, "invalid Link header: missing '>'");
    const char *url = p + 1;
    size_t ulen = (size_t)(end - url);
    p = end + 1;
    bool is_next = false;
    /* params: ; name=value or ; name="value" */
    for (;;) {
      while (*p == ' ' || *p == '\t')
        p++;
      if (*p != ';')
        break;
      p++;
      while (*p == ' ' || *p == '\t')
        p++;
      const char *name = p;
      while (*p && *p != '=' && *p != ';' && *p != ',' && *p != ' ')
        p++;
      size_t nlen = (size_t)(p - name);
      const char *val = "";
      size_t vlen = 0;
      if (*p == '=') {
        p++;
        if (*p == '"') {
          val = ++p;
          const char *q = strchr(p, '"');
          if (!q)
            return hoist_err_set(err, HOIST_E_FORMAT, "invalid Link header: unterminated quote");
          vlen = (size_t)(q - p);
          p = q + 1;
        } else {
          val = p;
          while (*p && *p != ';' && *p != ',' && *p != ' ')
            p++;
          vlen = (size_t)(p - val);
        }
      }
      if (nlen == 3 && strncasecmp(name, "rel", 3) == 0) {
        /* rel may hold several space-separated relation types */
        const char *v = val, *vend = val + vlen;
        while (v < vend) {
          while (v < vend && *v == ' ')
            v++;
          const char *w = v;
          while (w < vend && *w != ' ')
            w++;
          if (w - v == 4 && strncasecmp(v, "next", 4) == 0)
            is_next = true;
          v = w;
        }
      }
    }
    if (*p != ',' && *p != '\0')
      return hoist_err_set(err, HOIST_E_FORMAT, "invalid Link header: unexpected '%c'", *p);
    if (is_next) {
      if (ulen == 0)
        return hoist_err_set(err, HOIST_E_FORMAT, "invalid Link header: empty target");
      *next = strndup(url, ulen);
      if (!*next)
        abort();
      return 0;
    }
  }
}

static void strv_push(char ***v, size_t *n, size_t *cap, const char *s) {
  if (*n + 2 > *cap) {
    *cap = *cap ? *cap * 2 : 64;
    char **nv = realloc(*v, *cap * sizeof *nv);
    if (!nv)
      abort();
    *v = nv;
  }
  (*v)[(*n)++] = hoist_strdup(s);
  (*v)[*n] = NULL;
}

/* Follows a paginated list: url is the first page; key the array's name. */
HOIST_WUR static int paginate(hoist_registry *r, const char *host, const char *first,
                              const char *scope, const char *key, char ***out, size_t *count,
                              hoist_err **err) {
  char **v = hoist_malloc0(sizeof *v);
  size_t n = 0, cap = 1;
  _cleanup_free_ char *url = hoist_strdup(first);
  for (int page = 0; url; page++) {
    if (page >= PAGE_MAX) {
      hoist_strfreev(v);
      return hoist_err_set(err, HOIST_E_LIMIT, "more than %d pages", PAGE_MAX);
    }
    reg_req q = {.method = "GET", .host = host, .url = url, .scope = scope};
    _cleanup_resp_ reg_resp resp = {0};
    if (reg_do(r, &q, &resp, err) < 0) {
      hoist_strfreev(v);
      return -1;
    }
    if (resp.status != 200) {
      hoist_strfreev(v);
      return reg_status_error(&resp, err, "GET %s", url);
    }
    json_error_t je;
    _cleanup_json_ json_t *j =
        json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, &je);
    json_t *arr = j ? json_object_get(j, key) : NULL;
    if (!json_is_object(j) || (arr && !json_is_null(arr) && !json_is_array(arr))) {
      hoist_strfreev(v);
      return hoist_err_set(err, HOIST_E_FORMAT, "GET %s: malformed answer", url);
    }
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
      if (json_is_string(e))
        strv_push(&v, &n, &cap, json_string_value(e));
    }
    char *next = NULL;
    if (hoist_link_next(resp.link, &next, err) < 0) {
      hoist_strfreev(v);
      return -1;
    }
    if (next && strcmp(next, url) == 0) {
      free(next);
      next = NULL;
    }
    free(url);
    url = next;
  }
  *out = v;
  if (count)
    *count = n;
  return 0;
}

int hoist_registry_tags(hoist_registry *r, const char *host, const char *repo, char ***out,
                        size_t *n, hoist_err **err) {
  _cleanup_free_ char *url = hoist_asprintf("/v2/%s/tags/list?n=%u", repo, r->page_size);
  _cleanup_free_ char *scope = scope_pull(repo);
  if (paginate(r, host, url, scope, "tags", out, n, err) < 0)
    return hoist_err_wrap(err, "tags of %s/%s", host, repo);
  return 0;
}

int hoist_registry_tags_of(hoist_registry *r, const char *host, const char *repo,
                           const char *digest, char ***out, size_t *n, hoist_err **err) {
  *out = NULL;
  *n = 0;
  _cleanup_strfreev_ char **tags = NULL;
  size_t nt = 0;
  if (hoist_registry_tags(r, host, repo, &tags, &nt, err) < 0)
    return -1;
  _cleanup_strv_ hoist_strv found = HOIST_STRV_INIT;
  for (size_t i = 0; i < nt; i++) {
    bool there = false;
    char d[HOIST_DIGEST_STR_LEN];
    if (hoist_registry_head_manifest(r, host, repo, tags[i], &there, d, NULL, err) < 0)
      return hoist_err_wrap(err, "tags of %s/%s pointing at %s", host, repo, digest);
    if (there && strcmp(d, digest) == 0)
      hoist_strv_add(&found, tags[i]);
  }
  *n = found.n;
  *out = hoist_strv_steal(&found);
  return 0;
}

int hoist_registry_catalog(hoist_registry *r, const char *host, char ***out, size_t *n,
                           hoist_err **err) {
  _cleanup_free_ char *url = hoist_asprintf("/v2/_catalog?n=%u", r->page_size);
  if (paginate(r, host, url, "registry:catalog:*", "repositories", out, n, err) < 0)
    return hoist_err_wrap(err, "catalog of %s", host);
  return 0;
}

/* --------------------------------------------------------------- ping */

int hoist_registry_ping(hoist_registry *r, const char *host, hoist_err **err) {
  reg_req q = {.method = "GET", .host = host, .url = "/v2/"};
  _cleanup_resp_ reg_resp resp = {0};
  if (reg_do(r, &q, &resp, err) < 0)
    return -1;
  if (resp.status / 100 != 2)
    return reg_status_error(&resp, err, "%s: GET /v2/", host);
  return 0;
}
