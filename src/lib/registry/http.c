/* The request layer: libcurl easy handles over one share handle, the retry
 * policy, response headers, streaming bodies and registry error bodies.
 *
 * Parallel blob transfers run one request at a time per worker thread
 * (image.c), all over the share handle's connection pool, DNS cache and TLS
 * sessions. A single curl multi loop would run every write callback, and so
 * the SHA-256 of every blob and the writes to the store, on one thread;
 * threads keep hashing on all cores and let a registry->registry copy pipe a
 * download into an upload without a loop that could stall on itself. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "internal.h"

#define MAX_ATTEMPTS 3
#define RETRY_BASE_MS 1000
#define RETRY_AFTER_MAX_S 60
/* A host found unreachable is not asked again for this long: the transfer
 * threads that wait for it take the same error at once. */
#define PROBE_FAILED_TTL_S 10

/* ------------------------------------------------------------ client */

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud) {
  (void)h;
  (void)access;
  hoist_registry *r = ud;
  pthread_mutex_lock(&r->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud) {
  (void)h;
  hoist_registry *r = ud;
  pthread_mutex_unlock(&r->share_locks[data]);
}

static char *dup_or_null(const char *s) { return s ? hoist_strdup(s) : NULL; }

static void global_init(void) {
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    abort();
}

/* A seed for the client's jitter: random bytes, or when the kernel has none
 * to give yet, the time, the pid and the client's address. */
static uint64_t jitter_seed(const hoist_registry *r) {
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) == (ssize_t)sizeof seed)
    return seed;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 16) ^
         (uint64_t)(uintptr_t)r;
}

/* The next number of the client's jitter sequence (splitmix64): each thread
 * takes its own step, no lock, no libc state. */
static uint64_t jitter_next(hoist_registry *r) {
  uint64_t z = atomic_fetch_add(&r->jitter, 0x9e3779b97f4a7c15ULL) + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

int hoist_registry_new(const hoist_registry_opts *opts, hoist_registry **out, hoist_err **err) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, global_init);
  hoist_registry_opts none = {0};
  if (!opts)
    opts = &none;
  hoist_registry *r = hoist_malloc0(sizeof *r);
  pthread_mutex_init(&r->lock, NULL);
  pthread_mutex_init(&r->probe_lock, NULL);
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_init(&r->share_locks[i], NULL);
  atomic_init(&r->jitter, jitter_seed(r));
  r->share = curl_share_init();
  if (!r->share)
    abort();
  curl_share_setopt(r->share, CURLSHOPT_LOCKFUNC, share_lock);
  curl_share_setopt(r->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
  curl_share_setopt(r->share, CURLSHOPT_USERDATA, r);
  curl_share_setopt(r->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(r->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_share_setopt(r->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  r->creds = dup_or_null(opts->creds);
  r->auth_file = dup_or_null(opts->auth_file);
  for (size_t i = 0; opts->auth_files && opts->auth_files[i]; i++)
    hoist_strv_add(&r->auth_files, opts->auth_files[i]);
  r->secret_file = dup_or_null(opts->secret_file);
  r->ca_file = dup_or_null(opts->ca_file);
  r->cert_file = dup_or_null(opts->cert_file);
  r->key_file = dup_or_null(opts->key_file);
  r->cert_dir = dup_or_null(opts->cert_dir);
  for (size_t i = 0; opts->certs_d && opts->certs_d[i]; i++)
    hoist_strv_add(&r->certs_d, opts->certs_d[i]);
  r->tls_skip_verify = opts->tls_skip_verify;
  r->tls_always = opts->tls_always;
  r->jobs = opts->jobs > 0 ? opts->jobs : 4;
  r->tmp_dir = dup_or_null(opts->tmp_dir);
  r->loc_path = dup_or_null(opts->blob_locations);
  pthread_mutex_init(&r->loc_lock, NULL);
  r->chunk_size = opts->chunk_size;
  r->page_size = opts->page_size ? opts->page_size : 1000;
  r->progress = opts->progress;
  r->progress_userdata = opts->progress_userdata;
  for (size_t i = 0; opts->insecure && opts->insecure[i]; i++)
    hoist_strv_add(&r->insecure, opts->insecure[i]);
  if (r->creds && !strchr(r->creds, ':')) {
    hoist_registry_free(r);
    return hoist_err_set(err, EINVAL, "creds must be USER:PASSWORD");
  }
  r->regconf = opts->regconf;
  hoist_regconf_insecure_hosts(r->regconf, &r->insecure);
  *out = r;
  return 0;
}

void hoist_registry_free(hoist_registry *r) {
  if (!r)
    return;
  /* the connections go before the hosts' TLS settings they were made with */
  if (r->share)
    curl_share_cleanup(r->share);
  reg_auth_free(r);
  reg_loc_close(r);
  pthread_mutex_destroy(&r->loc_lock);
  free(r->loc_path);
  free(r->tmp_dir);
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_destroy(&r->share_locks[i]);
  pthread_mutex_destroy(&r->lock);
  pthread_mutex_destroy(&r->probe_lock);
  free(r->creds);
  free(r->auth_file);
  hoist_strv_clear(&r->auth_files);
  free(r->secret_file);
  free(r->ca_file);
  free(r->cert_file);
  free(r->key_file);
  free(r->cert_dir);
  hoist_strv_clear(&r->certs_d);
  hoist_strv_clear(&r->insecure);
  free(r);
}

/* The host part of "host[:port]" / "[v6]:port" into buf. */
static void host_only(const char *host, char *buf, size_t size) {
  if (host[0] == '[') {
    const char *end = strchr(host, ']');
    size_t n = end ? (size_t)(end - host - 1) : strlen(host + 1);
    snprintf(buf, size, "%.*s", (int)n, host + 1);
    return;
  }
  const char *colon = strchr(host, ':');
  size_t n = colon ? (size_t)(colon - host) : strlen(host);
  snprintf(buf, size, "%.*s", (int)n, host);
}

int hoist_registry_jobs(const hoist_registry *r) { return r->jobs; }

const hoist_regconf *hoist_registry_regconf(const hoist_registry *r) { return r->regconf; }

bool reg_insecure_listed(hoist_registry *r, const char *host) {
  char h[256];
  host_only(host, h, sizeof h);
  for (size_t i = 0; i < r->insecure.n; i++)
    if (strcmp(r->insecure.v[i], host) == 0 || strcmp(r->insecure.v[i], h) == 0)
      return true;
  return false;
}

bool hoist_registry_is_insecure(hoist_registry *r, const char *host) {
  if (r->tls_always)
    return false;
  if (reg_insecure_listed(r, host))
    return true;
  char h[256];
  host_only(host, h, sizeof h);
  if (strcmp(h, "localhost") == 0 || strcmp(h, "::1") == 0)
    return true;
  struct in_addr a;
  return inet_pton(AF_INET, h, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

void reg_curl_setup(hoist_registry *r, CURL *c, const char *host, const char *url) {
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_SHARE, r->share);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  /* a transfer slower than 1 KiB/s for 60 s is dead */
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_USERAGENT, "hoist/" HOIST_VERSION);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  /* large buffers: fewer callbacks and writes per blob */
  curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 1024L * 1024);
  reg_tls_apply(r, c, host);
}

/* ------------------------------------------------------------ scheme */

/* What one GET /v2/ said: the curl code, its text, the errno of a connect
 * that failed. */
typedef struct probe {
  CURLcode rc;
  long os_errno;
  char errbuf[CURL_ERROR_SIZE];
} probe;

/* A /v2/ answer is small: more is not read (the connection is then not
 * reused, nothing else is lost). */
static size_t probe_body(char *buf, size_t size, size_t n, void *ud) {
  (void)buf;
  size_t *seen = ud;
  *seen += size * n;
  return *seen > 65536 ? 0 : size * n;
}

static const char *probe_text(const probe *p) {
  return p->errbuf[0] ? p->errbuf : curl_easy_strerror(p->rc);
}

static void probe_once(hoist_registry *r, const char *host, const char *base, probe *p) {
  CURL *c = curl_easy_init();
  if (!c)
    abort();
  _cleanup_free_ char *url = hoist_asprintf("%s/v2/", base);
  size_t seen = 0;
  reg_curl_setup(r, c, host, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, probe_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &seen);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, p->errbuf);
  p->errbuf[0] = '\0';
  p->rc = curl_easy_perform(c);
  long status = 0;
  p->os_errno = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &p->os_errno);
  if (p->rc == CURLE_WRITE_ERROR && status > 0)
    p->rc = CURLE_OK; /* it answered, at length */
  hoist_debug("GET %s -> %s", url, p->rc == CURLE_OK ? "answered" : probe_text(p));
  curl_easy_cleanup(c);
}

static bool refused(CURLcode rc, long os_errno) {
  return rc == CURLE_COULDNT_CONNECT && os_errno == ECONNREFUSED;
}

/* The peer ended the TLS session with an alert (a client certificate it
 * wants or refuses, a protocol it will not speak): asking again changes
 * nothing. */
static bool tls_alert(const probe *p) { return strstr(p->errbuf, " alert ") != NULL; }

/* A failure that may pass: worth asking again after a while. */
static bool probe_transient(const probe *p) {
  CURLcode rc = p->rc;
  if (tls_alert(p))
    return false;
  return rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR ||
         rc == CURLE_GOT_NOTHING || rc == CURLE_HTTP2 || rc == CURLE_HTTP2_STREAM;
}

/* The error for host when https (p) and, when tried, http (q) failed. */
HOIST_WUR static int probe_error(hoist_registry *r, const char *host, const char *base,
                                 const probe *p, const probe *q, hoist_err **err) {
  if (refused(p->rc, p->os_errno))
    return hoist_err_set(err, ECONNREFUSED, "%s: connection refused (nothing listens at %s)", host,
                         base);
  if (p->rc == CURLE_PEER_FAILED_VERIFICATION) {
    _cleanup_free_ char *hint = reg_tls_hint(r, host);
    return hoist_err_set(err, EPROTO, "%s: TLS certificate not trusted (%s): %s", host,
                         probe_text(p), hint);
  }
  if (tls_alert(p) && strstr(p->errbuf, "certificate"))
    return hoist_err_set(err, EPROTO,
                         "%s: the registry ended the TLS handshake (%s): it may want a client "
                         "certificate (--cert FILE --key FILE, or NAME.cert and NAME.key in its "
                         "certs.d directory)",
                         host, probe_text(p));
  if (q)
    return hoist_err_set(err, ECONNRESET, "%s: https: %s; http: %s", host, probe_text(p),
                         probe_text(q));
  if (p->rc == CURLE_SSL_CONNECT_ERROR && r->tls_always)
    return hoist_err_set(err, EPROTO,
                         "%s: TLS handshake failed (%s); --tls-verify=true allows "
                         "no plain http",
                         host, probe_text(p));
  if (p->rc == CURLE_SSL_CONNECT_ERROR)
    return hoist_err_set(err, EPROTO,
                         "%s: TLS handshake failed (%s); a registry that speaks plain http "
                         "needs --insecure-registry %s",
                         host, probe_text(p), host);
  return hoist_err_set(err, p->rc == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT : ECONNRESET, "%s: %s",
                       host, probe_text(p));
}

static void backoff(hoist_registry *r, int attempt, const char *retry_after);

/* Decides host's base URL (caller holds r->probe_lock). */
HOIST_WUR static int decide_base(hoist_registry *r, const char *host, char **base,
                                 hoist_err **err) {
  pthread_mutex_lock(&r->lock);
  reg_host *h = reg_host_get(r, host);
  *base = h->base_url ? hoist_strdup(h->base_url) : NULL;
  pthread_mutex_unlock(&r->lock);
  if (*base)
    return 0;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  pthread_mutex_lock(&r->lock);
  h = reg_host_get(r, host);
  _cleanup_free_ char *failed =
      h->probe_failed && now.tv_sec - h->probe_failed_at < PROBE_FAILED_TTL_S
          ? hoist_strdup(h->probe_failed)
          : NULL;
  int failed_code = h->probe_failed_code;
  pthread_mutex_unlock(&r->lock);
  if (failed)
    return hoist_err_set(err, failed_code, "%s", failed);
  if (reg_tls_load(r, host, err) < 0)
    return -1;
  const char *api = strcmp(host, "docker.io") == 0 ? "registry-1.docker.io" : host;
  _cleanup_free_ char *https = hoist_asprintf("https://%s", api);
  _cleanup_free_ char *http = hoist_asprintf("http://%s", api);
  bool plain_ok = hoist_registry_is_insecure(r, host);
  const char *chosen = NULL;
  for (int attempt = 1; !chosen; attempt++) {
    probe p, q;
    probe_once(r, host, https, &p);
    if (p.rc == CURLE_OK) {
      chosen = https;
      break;
    }
    /* a refused connection or a certificate not trusted: http would not help */
    bool tried_http =
        plain_ok && !refused(p.rc, p.os_errno) && p.rc != CURLE_PEER_FAILED_VERIFICATION;
    if (tried_http) {
      probe_once(r, host, http, &q);
      if (q.rc == CURLE_OK) {
        chosen = http;
        break;
      }
    }
    bool again = probe_transient(&p) && (!tried_http || probe_transient(&q));
    if (!again || attempt >= MAX_ATTEMPTS) {
      hoist_err *e = NULL;
      int ret = probe_error(r, host, https, &p, tried_http ? &q : NULL, &e);
      pthread_mutex_lock(&r->lock);
      h = reg_host_get(r, host);
      free(h->probe_failed);
      h->probe_failed = hoist_strdup(e->msg);
      h->probe_failed_code = e->code;
      h->probe_failed_at = now.tv_sec;
      pthread_mutex_unlock(&r->lock);
      if (err && !*err)
        *err = e;
      else
        hoist_err_free(e);
      return ret;
    }
    hoist_debug("%s: %s; retrying", host, probe_text(&p));
    backoff(r, attempt, NULL);
  }
  pthread_mutex_lock(&r->lock);
  h = reg_host_get(r, host);
  free(h->base_url);
  h->base_url = hoist_strdup(chosen);
  pthread_mutex_unlock(&r->lock);
  *base = hoist_strdup(chosen);
  return 0;
}

int reg_host_base(hoist_registry *r, const char *host, char **base, hoist_err **err) {
  pthread_mutex_lock(&r->lock);
  reg_host *h = reg_host_get(r, host);
  *base = h->base_url ? hoist_strdup(h->base_url) : NULL;
  pthread_mutex_unlock(&r->lock);
  if (*base)
    return 0;
  pthread_mutex_lock(&r->probe_lock);
  int ret = decide_base(r, host, base, err);
  pthread_mutex_unlock(&r->probe_lock);
  return ret;
}

/* ---------------------------------------------------------- transfer */

void reg_resp_clear(reg_resp *r) {
  hoist_buf_free(&r->body);
  free(r->location);
  free(r->docker_digest);
  free(r->content_type);
  free(r->www_auth);
  free(r->range);
  free(r->link);
  free(r->retry_after);
  free(r->chunk_min);
  memset(r, 0, sizeof *r);
}

typedef struct xfer {
  hoist_registry *reg;
  reg_req *req;
  reg_resp *resp;
  CURL *curl;
  uint64_t read_pos; /* request body bytes sent */
  uint64_t skip;     /* response bytes to drop (a 200 to a Range request) */
  bool status_known;
  bool to_sink;
  hoist_err *sink_err; /* the sink refused: not retried */
} xfer;

static size_t on_header(char *buf, size_t size, size_t n, void *ud) {
  xfer *x = ud;
  size_t len = size * n;
  if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
    /* a new response (after a redirect or 100): forget the previous one's headers
     * and body, and decide again where the body goes */
    reg_resp *keep = x->resp;
    hoist_buf body = keep->body;
    keep->body = (hoist_buf){0};
    reg_resp_clear(keep);
    hoist_buf_reset(&body);
    keep->body = body;
    keep->content_length = -1;
    x->status_known = false;
    x->skip = 0;
    return len;
  }
  const char *colon = memchr(buf, ':', len);
  if (!colon)
    return len;
  size_t nlen = (size_t)(colon - buf);
  const char *v = colon + 1;
  const char *end = buf + len;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
    end--;
  char *value = strndup(v, (size_t)(end - v));
  if (!value)
    abort();
  static const struct {
    const char *name;
    size_t off;
  } known[] = {
      {"location", offsetof(reg_resp, location)},
      {"docker-content-digest", offsetof(reg_resp, docker_digest)},
      {"content-type", offsetof(reg_resp, content_type)},
      {"www-authenticate", offsetof(reg_resp, www_auth)},
      {"range", offsetof(reg_resp, range)},
      {"link", offsetof(reg_resp, link)},
      {"retry-after", offsetof(reg_resp, retry_after)},
      {"oci-chunk-min-length", offsetof(reg_resp, chunk_min)},
  };
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
    if (strlen(known[i].name) == nlen && strncasecmp(buf, known[i].name, nlen) == 0) {
      char **slot = (char **)((char *)x->resp + known[i].off);
      if (*slot && strcmp(known[i].name, "www-authenticate") == 0) {
        /* several challenges: keep them all, comma separated */
        char *joined = hoist_asprintf("%s, %s", *slot, value);
        free(*slot);
        free(value);
        *slot = joined;
      } else {
        free(*slot);
        *slot = value;
      }
      return len;
    }
  }
  if (nlen == 14 && strncasecmp(buf, "content-length", 14) == 0)
    x->resp->content_length = strtoll(value, NULL, 10);
  free(value);
  return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *ud) {
  xfer *x = ud;
  size_t len = size * n;
  if (!x->status_known) {
    long code = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
    x->status_known = true;
    x->to_sink = x->req->sink && code >= 200 && code < 300;
    if (x->to_sink && code == 200 && x->req->sink_written > 0)
      x->skip = x->req->sink_written; /* the server ignored Range: drop what we have */
  }
  if (!x->to_sink) {
    if (hoist_buf_append(&x->resp->body, buf, len, NULL) < 0)
      return 0;
    return len;
  }
  const char *p = buf;
  size_t left = len;
  if (x->skip) {
    size_t k = left < x->skip ? left : (size_t)x->skip;
    x->skip -= k;
    p += k;
    left -= k;
  }
  if (left && hoist_writer_write(x->req->sink, p, left, &x->sink_err) < 0)
    return 0;
  x->req->sink_written += left;
  return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *ud) {
  xfer *x = ud;
  reg_req *q = x->req;
  size_t want = size * n;
  if (q->body_stream) {
    for (;;) {
      ssize_t got = read(q->body_fd, buf, want);
      if (got < 0 && errno == EINTR)
        continue;
      if (got < 0)
        return CURL_READFUNC_ABORT;
      x->read_pos += (uint64_t)got;
      return (size_t)got;
    }
  }
  if (q->body) {
    size_t left = q->body_len - (size_t)x->read_pos;
    size_t k = left < want ? left : want;
    memcpy(buf, (const char *)q->body + x->read_pos, k);
    x->read_pos += k;
    return k;
  }
  uint64_t left = q->body_size - x->read_pos;
  size_t k = left < want ? (size_t)left : want;
  if (k == 0)
    return 0;
  for (;;) {
    ssize_t got = pread(q->body_fd, buf, k, (off_t)(q->body_off + x->read_pos));
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return CURL_READFUNC_ABORT;
    x->read_pos += (uint64_t)got;
    return (size_t)got;
  }
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
  (void)dltotal;
  (void)ultotal;
  xfer *x = ud;
  hoist_registry *r = x->reg;
  if (r->progress && x->req->progress_id) {
    uint64_t done = x->req->sink ? x->req->sink_written : x->req->body_off + (uint64_t)ulnow;
    (void)dlnow;
    r->progress(r->progress_userdata, x->req->progress_id, done, x->req->progress_total, false);
  }
  return 0;
}

static char *absolute_url(const char *base, const char *url) {
  if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0)
    return hoist_strdup(url);
  return hoist_asprintf("%s%s%s", base, url[0] == '/' ? "" : "/", url);
}

/* One HTTP exchange with the host at base. Returns the curl code, and in
 * *os_errno the errno of a connect that failed; *sink_err is set when the
 * sink refused the bytes. */
static CURLcode perform_once(hoist_registry *r, const char *base, reg_req *q, reg_resp *resp,
                             const char *auth, char errbuf[CURL_ERROR_SIZE], long *os_errno,
                             hoist_err **sink_err) {
  reg_resp_clear(resp);
  resp->content_length = -1;
  hoist_buf_init(&resp->body, REG_BODY_MAX);
  CURL *c = curl_easy_init();
  if (!c)
    abort();
  _cleanup_free_ char *url = absolute_url(base, q->url);
  reg_curl_setup(r, c, q->host, url);
  xfer x = {.reg = r, .req = q, .resp = resp, .curl = c};
  struct curl_slist *h = NULL;
  _cleanup_free_ char *ah = auth ? hoist_asprintf("Authorization: %s", auth) : NULL;
  _cleanup_free_ char *acc = q->accept ? hoist_asprintf("Accept: %s", q->accept) : NULL;
  _cleanup_free_ char *ct =
      q->content_type ? hoist_asprintf("Content-Type: %s", q->content_type) : NULL;
  _cleanup_free_ char *cr =
      q->content_range ? hoist_asprintf("Content-Range: %s", q->content_range) : NULL;
  _cleanup_free_ char *rg =
      q->sink && q->sink_written
          ? hoist_asprintf("Range: bytes=%llu-", (unsigned long long)q->sink_written)
          : NULL;
  if (ah)
    h = curl_slist_append(h, ah);
  if (acc)
    h = curl_slist_append(h, acc);
  if (ct)
    h = curl_slist_append(h, ct);
  if (cr)
    h = curl_slist_append(h, cr);
  if (rg)
    h = curl_slist_append(h, rg);
  bool has_body = q->body || q->body_size > 0 || q->body_stream;
  bool bodiless_post = !has_body && strcmp(q->method, "GET") != 0 &&
                       strcmp(q->method, "HEAD") != 0 && strcmp(q->method, "DELETE") != 0;
  if (bodiless_post && !ct) {
    /* an empty body is sent as POST fields, which libcurl would label
     * application/x-www-form-urlencoded: it has no type at all */
    h = curl_slist_append(h, "Content-Type:");
  }
  h = curl_slist_append(h, "Expect:");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  errbuf[0] = '\0';
  if (r->progress && q->progress_id) {
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
  }
  if (strcmp(q->method, "HEAD") == 0) {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (has_body) {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &x);
    curl_off_t size = q->body_stream ? -1
                      : q->body      ? (curl_off_t)q->body_len
                                     : (curl_off_t)q->body_size;
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, size);
  } else if (strcmp(q->method, "GET") != 0) {
    /* POST, PUT, PATCH, DELETE without a body */
    if (bodiless_post) {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    }
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
  }
  CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
  *os_errno = 0;
  curl_easy_getinfo(c, CURLINFO_OS_ERRNO, os_errno);
  if (hoist_log_get_level() >= HOIST_LOG_DEBUG) {
    long version = 0;
    curl_easy_getinfo(c, CURLINFO_HTTP_VERSION, &version);
    hoist_debug("%s %s -> %ld (%s)", q->method, url, resp->status,
                version == CURL_HTTP_VERSION_2_0 ? "HTTP/2"
                : version == CURL_HTTP_VERSION_3 ? "HTTP/3"
                                                 : "HTTP/1.1");
  }
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  if (x.sink_err)
    *sink_err = x.sink_err;
  return rc;
}

static bool curl_retryable(CURLcode rc) {
  switch (rc) {
  case CURLE_COULDNT_CONNECT:
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_PARTIAL_FILE:
  case CURLE_OPERATION_TIMEDOUT:
  case CURLE_GOT_NOTHING:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_SSL_CONNECT_ERROR:
    return true;
  default:
    return false;
  }
}

static bool status_retryable(long s) {
  return s == 408 || s == 429 || (s >= 500 && s != 501 && s != 505);
}

static void backoff(hoist_registry *r, int attempt, const char *retry_after) {
  long ms = RETRY_BASE_MS << (attempt - 1);
  ms += (long)(jitter_next(r) % (uint64_t)(ms / 2 + 1)); /* jitter */
  if (retry_after) {
    char *end = NULL;
    long s = strtol(retry_after, &end, 10);
    if (end != retry_after && s >= 0)
      ms = (s > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : s) * 1000L;
  }
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}

int reg_do(hoist_registry *r, reg_req *q, reg_resp *resp, hoist_err **err) {
  bool reauthed = false;
  bool replayable = !q->body_stream && !q->no_retry;
  _cleanup_free_ char *base = NULL;
  /* a layer's url (no_auth, absolute) names no registry: no scheme to probe */
  bool foreign =
      q->no_auth && (strncmp(q->url, "http://", 7) == 0 || strncmp(q->url, "https://", 8) == 0);
  if (!foreign && reg_host_base(r, q->host, &base, err) < 0)
    return -1;
  for (int attempt = 1;;) {
    _cleanup_free_ char *auth = q->no_auth ? NULL : reg_auth_header(r, q->host, q->scope);
    char errbuf[CURL_ERROR_SIZE];
    hoist_err *sink_err = NULL;
    uint64_t had = q->sink_written;
    long os_errno = 0;
    CURLcode rc = perform_once(r, base, q, resp, auth, errbuf, &os_errno, &sink_err);
    if (sink_err) {
      if (err && !*err)
        *err = sink_err;
      else
        hoist_err_free(sink_err);
      return -(err && *err ? (*err)->code : EIO);
    }
    if (rc != CURLE_OK) {
      bool progressed = q->sink && q->sink_written > had;
      /* the host answered before (reg_host_base): a refused connection now
       * is a restart, worth the retries */
      if (replayable && curl_retryable(rc) && attempt < MAX_ATTEMPTS + (progressed ? 1 : 0)) {
        hoist_debug("%s %s: %s; retrying", q->method, q->url,
                    errbuf[0] ? errbuf : curl_easy_strerror(rc));
        backoff(r, attempt++, NULL);
        continue;
      }
      if (refused(rc, os_errno))
        return hoist_err_set(err, ECONNREFUSED, "%s %s: connection refused", q->method, q->host);
      return hoist_err_set(err, rc == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT : ECONNRESET,
                           "%s %s: %s", q->method, q->host,
                           errbuf[0] ? errbuf : curl_easy_strerror(rc));
    }
    if (resp->status == 401 && !q->no_auth) {
      if (reauthed || !resp->www_auth) {
        if (!resp->www_auth)
          return reg_status_error(resp, err, "%s: authentication required", q->host);
        hoist_creds c = {0};
        bool found = false;
        hoist_best_effort(reg_creds_lookup(r, q->host, &c, &found, NULL)); /* for the message */
        hoist_creds_clear(&c);
        /* one clear error: retrying refused credentials would only loop */
        reg_status_error(resp, err, "%s: authentication failed (%s)", q->host,
                         found ? "credentials were refused"
                               : "no credentials found: none were given and no auth file knows "
                                 "the host");
        return -HOIST_E_AUTH;
      }
      reauthed = true;
      if (reg_auth_challenge(r, q->host, q->scope, resp->www_auth, err) < 0)
        return -HOIST_E_AUTH;
      continue;
    }
    if (status_retryable(resp->status) && replayable && attempt < MAX_ATTEMPTS) {
      hoist_debug("%s %s: HTTP %ld; retrying", q->method, q->url, resp->status);
      backoff(r, attempt++, resp->status == 429 || resp->status == 503 ? resp->retry_after : NULL);
      continue;
    }
    return 0;
  }
}

int reg_status_error(const reg_resp *resp, hoist_err **err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  _cleanup_free_ char *what = NULL;
  if (vasprintf(&what, fmt, ap) < 0)
    abort();
  va_end(ap);
  _cleanup_buf_ hoist_buf b = HOIST_BUF_INIT(0);
  if (resp->body.len) {
    _cleanup_json_ json_t *j = json_loadb(resp->body.data, resp->body.len, 0, NULL);
    json_t *errors = j ? json_object_get(j, "errors") : NULL;
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e) {
      const char *code = json_string_value(json_object_get(e, "code"));
      const char *msg = json_string_value(json_object_get(e, "message"));
      if ((b.len && hoist_buf_append(&b, "; ", 2, NULL) < 0) ||
          hoist_buf_appendf(&b, NULL, "%s%s%s", code ? code : "", code && msg ? ": " : "",
                            msg ? msg : "") < 0)
        break; /* a message: the errors that fit */
    }
  }
  int code = resp->status == 401 || resp->status == 403 ? HOIST_E_AUTH : HOIST_E_REGISTRY;
  if (b.len)
    return hoist_err_set(err, code, "%s: HTTP %ld: %s", what, resp->status, b.data);
  return hoist_err_set(err, code, "%s: HTTP %ld", what, resp->status);
}
