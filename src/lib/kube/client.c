/* kube: the client. One libcurl easy handle per request (requests come from
 * several threads); credentials behind a mutex that is never held across the
 * network, except while an exec plugin runs (one run serves every thread). */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "hoist/core.h"
#include "hoist/kube.h"
#include "kube-private.h"

#define BODY_MAX (64u << 20)       /* a list answer */
#define LINE_MAX_BYTES (16u << 20) /* one watch event (etcd keeps objects below 1.5 MiB) */
#define TOKEN_MAX (64u << 10)      /* a bearer token file */
#define EXEC_OUT_MAX (1u << 20)    /* an exec plugin's ExecCredential */
#define EXEC_EARLY_S 10            /* a credential this close to expiring is renewed */

const hoist_kube_res HOIST_KUBE_JOBS = {"batch/v1", "jobs"};
const hoist_kube_res HOIST_KUBE_PODS = {"v1", "pods"};
const hoist_kube_res HOIST_KUBE_SECRETS = {"v1", "secrets"};
const hoist_kube_res HOIST_KUBE_CONFIGMAPS = {"v1", "configmaps"};

struct hoist_kube {
  hoist_kube_config cfg; /* a deep copy */
  char **exec_environ;
  long connect_timeout_ms, request_timeout_ms;
  atomic_bool interrupted;
  pthread_mutex_t lock; /* guards what follows */
  char *token;          /* the bearer token now in use (from token_file or exec) */
  struct stat token_st; /* the token file as it was when read */
  bool token_read;
  char *exec_cert, *exec_key; /* an exec plugin's client certificate */
  time_t exec_expiry;         /* 0: none stated */
  bool exec_valid;
};

static char *dup0(const char *s) { return s ? hoist_strdup(s) : NULL; }

static char **dupv(char *const *v) {
  if (!v)
    return NULL;
  hoist_strv sv = HOIST_STRV_INIT;
  for (; *v; v++)
    hoist_strv_add(&sv, *v);
  return hoist_strv_steal(&sv);
}

static void global_init(void) {
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    abort();
}

int hoist_kube_new(const hoist_kube_config *cfg, const hoist_kube_options *opts, hoist_kube **out,
                   hoist_err **err) {
  *out = NULL;
  if (!cfg->server)
    return hoist_err_set(err, EINVAL, "kubernetes client: no server");
  if (cfg->tls_server_name)
    return hoist_err_set(err, EINVAL, "kubernetes client %s: tls-server-name is not supported",
                         cfg->server);
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, global_init);
  hoist_kube *k = hoist_malloc0(sizeof *k);
  hoist_kube_config *c = &k->cfg;
  c->server = dup0(cfg->server);
  c->namespace = dup0(cfg->namespace ? cfg->namespace : "default");
  c->ca_file = dup0(cfg->ca_file);
  c->ca_pem = dup0(cfg->ca_pem);
  c->insecure = cfg->insecure;
  c->token = dup0(cfg->token);
  c->token_file = dup0(cfg->token_file);
  c->cert_file = dup0(cfg->cert_file);
  c->key_file = dup0(cfg->key_file);
  c->cert_pem = dup0(cfg->cert_pem);
  c->key_pem = dup0(cfg->key_pem);
  c->exec_argv = dupv(cfg->exec_argv);
  c->exec_env = dupv(cfg->exec_env);
  c->exec_api_version = dup0(cfg->exec_api_version);
  k->exec_environ = opts ? dupv((char *const *)opts->exec_environ) : NULL;
  k->connect_timeout_ms = opts && opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 10000;
  k->request_timeout_ms = opts && opts->request_timeout_ms > 0 ? opts->request_timeout_ms : 60000;
  pthread_mutex_init(&k->lock, NULL);
  *out = k;
  return 0;
}

void hoist_kube_free(hoist_kube *k) {
  if (!k)
    return;
  hoist_kube_config *c = &k->cfg;
  free(c->server);
  free(c->namespace);
  free(c->ca_file);
  free(c->ca_pem);
  free(c->token);
  free(c->token_file);
  free(c->cert_file);
  free(c->key_file);
  free(c->cert_pem);
  free(c->key_pem);
  hoist_strfreev(c->exec_argv);
  hoist_strfreev(c->exec_env);
  free(c->exec_api_version);
  hoist_strfreev(k->exec_environ);
  free(k->token);
  free(k->exec_cert);
  free(k->exec_key);
  pthread_mutex_destroy(&k->lock);
  free(k);
}

const char *hoist_kube_namespace(const hoist_kube *k) { return k->cfg.namespace; }

void hoist_kube_interrupt(hoist_kube *k) { atomic_store(&k->interrupted, true); }

/* libcurl calls this about once a second while a transfer waits: non-zero
 * aborts it. */
static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  (void)dt, (void)dn, (void)ut, (void)un;
  return atomic_load(&((hoist_kube *)ud)->interrupted) ? 1 : 0;
}

/* ------------------------------------------------------------ credentials */

/* Reads the token file again when it is not the file last read (bound
 * service-account tokens are replaced through a symlink swap: a new inode)
 * or was written since. Called with k->lock held. */
HOIST_WUR static int token_file_refresh(hoist_kube *k, hoist_err **err) {
  struct stat st;
  if (stat(k->cfg.token_file, &st) < 0)
    return hoist_err_errno(err, errno, "kubernetes token file %s", k->cfg.token_file);
  if (k->token_read && st.st_ino == k->token_st.st_ino && st.st_dev == k->token_st.st_dev &&
      st.st_size == k->token_st.st_size && st.st_mtim.tv_sec == k->token_st.st_mtim.tv_sec &&
      st.st_mtim.tv_nsec == k->token_st.st_mtim.tv_nsec)
    return 0;
  _cleanup_free_ char *t = NULL;
  if (kube_read_file(k->cfg.token_file, TOKEN_MAX, &t, NULL, err) < 0)
    return hoist_err_wrap(err, "kubernetes token file");
  size_t n = strlen(t);
  while (n > 0 && (t[n - 1] == '\n' || t[n - 1] == '\r' || t[n - 1] == ' '))
    t[--n] = '\0';
  if (n == 0 || strpbrk(t, "\r\n"))
    return hoist_err_set(err, HOIST_E_FORMAT, "kubernetes token file %s: empty or not one line",
                         k->cfg.token_file);
  free(k->token);
  k->token = steal_pointer(&t);
  k->token_st = st;
  k->token_read = true;
  return 0;
}

/* RFC 3339 in UTC ("2006-01-02T15:04:05Z", fractions allowed) as seconds. */
static bool parse_rfc3339(const char *s, time_t *out) {
  struct tm tm = {0};
  const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end)
    return false;
  if (*end == '.')
    for (end++; *end >= '0' && *end <= '9'; end++)
      ;
  if (strcmp(end, "Z"))
    return false;
  *out = timegm(&tm);
  return true;
}

/* Runs the exec plugin and keeps its credential. Called with k->lock held. */
HOIST_WUR static int exec_refresh(hoist_kube *k, hoist_err **err) {
  const char *cmd = k->cfg.exec_argv[0];
  _cleanup_strv_ hoist_strv env = HOIST_STRV_INIT;
  for (char **e = k->exec_environ; e && *e; e++)
    if (strncmp(*e, "KUBERNETES_EXEC_INFO=", 21))
      hoist_strv_add(&env, *e);
  for (char **e = k->cfg.exec_env; e && *e; e++)
    hoist_strv_add(&env, *e);
  hoist_strv_push(&env, hoist_asprintf("KUBERNETES_EXEC_INFO={\"apiVersion\":\"%s\",\"kind\":"
                                       "\"ExecCredential\",\"spec\":{\"interactive\":false}}",
                                       k->cfg.exec_api_version));
  _cleanup_strfreev_ char **envp = hoist_strv_steal(&env);
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    return hoist_err_errno(err, errno, "kubernetes exec plugin %s: pipe", cmd);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
  pid_t pid;
  int r = posix_spawnp(&pid, cmd, &fa, NULL, k->cfg.exec_argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  _cleanup_close_ int rfd = p[0];
  if (r != 0)
    return hoist_err_errno(err, r, "kubernetes exec plugin %s", cmd);
  hoist_buf b = HOIST_BUF_INIT(EXEC_OUT_MAX);
  char chunk[4096];
  int ret = 0;
  for (;;) {
    ssize_t n = read(rfd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    if (ret == 0 && hoist_buf_append(&b, chunk, (size_t)n, err) < 0)
      ret = hoist_err_wrap(err, "kubernetes exec plugin %s: its output", cmd);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (ret < 0) {
    hoist_buf_free(&b);
    return ret;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    hoist_buf_free(&b);
    return hoist_err_set(err, HOIST_E_AUTH, "kubernetes exec plugin %s: %s %d", cmd,
                         WIFEXITED(status) ? "exited" : "killed by signal",
                         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
  }
  json_t *j = json_loadb(b.data ? b.data : "", b.len, 0, NULL);
  hoist_buf_free(&b);
  json_t *st = json_object_get(j, "status");
  const char *api = json_string_value(json_object_get(j, "apiVersion"));
  const char *kind = json_string_value(json_object_get(j, "kind"));
  const char *tok = json_string_value(json_object_get(st, "token"));
  const char *cert = json_string_value(json_object_get(st, "clientCertificateData"));
  const char *key = json_string_value(json_object_get(st, "clientKeyData"));
  const char *exp = json_string_value(json_object_get(st, "expirationTimestamp"));
  time_t expiry = 0;
  if (!json_is_object(j) || !kind || strcmp(kind, "ExecCredential"))
    ret =
        hoist_err_set(err, HOIST_E_FORMAT, "kubernetes exec plugin %s: not an ExecCredential", cmd);
  else if (!api || strcmp(api, k->cfg.exec_api_version))
    ret = hoist_err_set(err, HOIST_E_FORMAT, "kubernetes exec plugin %s: apiVersion %s, not %s",
                        cmd, api ? api : "(none)", k->cfg.exec_api_version);
  else if (!tok && !(cert && key))
    ret =
        hoist_err_set(err, HOIST_E_FORMAT,
                      "kubernetes exec plugin %s: neither a token nor a certificate and key", cmd);
  else if ((tok && (!tok[0] || strpbrk(tok, "\r\n"))) || (!!cert != !!key))
    ret = hoist_err_set(err, HOIST_E_FORMAT,
                        "kubernetes exec plugin %s: an empty token, or a certificate without "
                        "its key",
                        cmd);
  else if (exp && !parse_rfc3339(exp, &expiry))
    ret = hoist_err_set(err, HOIST_E_FORMAT,
                        "kubernetes exec plugin %s: expirationTimestamp \"%s\" is not RFC 3339",
                        cmd, exp);
  if (ret == 0) {
    free(k->token);
    free(k->exec_cert);
    free(k->exec_key);
    k->token = dup0(tok);
    k->exec_cert = dup0(cert);
    k->exec_key = dup0(key);
    k->exec_expiry = expiry;
    k->exec_valid = true;
  }
  json_decref(j);
  return ret;
}

/* The credentials for one request, as copies the caller frees: the bearer
 * token (or NULL), an exec plugin's certificate and key (or NULL). */
HOIST_WUR static int credentials(hoist_kube *k, char **token, char **cert, char **key,
                                 hoist_err **err) {
  *token = *cert = *key = NULL;
  int r = 0;
  pthread_mutex_lock(&k->lock);
  if (k->cfg.token_file) {
    r = token_file_refresh(k, err);
  } else if (k->cfg.exec_argv) {
    if (!k->exec_valid || (k->exec_expiry && time(NULL) + EXEC_EARLY_S >= k->exec_expiry))
      r = exec_refresh(k, err);
  } else if (k->cfg.token && !k->token) {
    k->token = hoist_strdup(k->cfg.token);
  }
  if (r == 0) {
    *token = dup0(k->token);
    *cert = dup0(k->exec_cert);
    *key = dup0(k->exec_key);
  }
  pthread_mutex_unlock(&k->lock);
  return r;
}

/* After a 401: forget what can be had again. True when something was. */
static bool credentials_stale(hoist_kube *k) {
  pthread_mutex_lock(&k->lock);
  bool again = k->cfg.token_file || k->cfg.exec_argv;
  k->token_read = false;
  k->exec_valid = false;
  pthread_mutex_unlock(&k->lock);
  return again;
}

/* --------------------------------------------------------------- requests */

enum { MODE_BODY, MODE_WATCH, MODE_LOG };

typedef struct req {
  CURL *h;
  int mode;
  hoist_buf body; /* the answer (MODE_BODY, or any error answer) */
  hoist_buf line; /* MODE_WATCH: the event being read */
  hoist_kube_watch_fn fn;
  hoist_kube_sink sink;
  void *arg;
  bool stopped; /* the callback asked to stop */
  bool gone;    /* an ERROR event with code 410 */
  char *last_rv;
  hoist_err *cb_err; /* an event that could not be read */
} req;

/* One line of a watch: {"type": ..., "object": {...}}. Returns false to stop. */
static bool watch_event(req *q, const char *line, size_t len) {
  if (len == 0)
    return true;
  json_error_t je;
  json_t *ev = json_loadb(line, len, 0, &je);
  const char *type = json_string_value(json_object_get(ev, "type"));
  json_t *obj = json_object_get(ev, "object");
  if (!type || !json_is_object(obj)) {
    hoist_err_set(&q->cb_err, HOIST_E_FORMAT, "a watch event that is not {type, object}: %s",
                  ev ? "members missing" : je.text);
    json_decref(ev);
    return false;
  }
  if (!strcmp(type, "ERROR")) {
    json_int_t code = json_integer_value(json_object_get(obj, "code"));
    const char *msg = json_string_value(json_object_get(obj, "message"));
    if (code == 410)
      q->gone = true;
    else
      hoist_err_set(&q->cb_err, EIO, "watch ended by the server: %lld %s", (long long)code,
                    msg ? msg : "");
    json_decref(ev);
    return false;
  }
  const char *rv =
      json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
  if (rv) {
    free(q->last_rv);
    q->last_rv = hoist_strdup(rv);
  }
  bool go_on = q->fn(q->arg, type, obj) == 0;
  if (!go_on)
    q->stopped = true;
  json_decref(ev);
  return go_on;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *ud) {
  req *q = ud;
  size_t n = size * nmemb;
  long status = 0;
  curl_easy_getinfo(q->h, CURLINFO_RESPONSE_CODE, &status);
  if (q->mode == MODE_BODY || status != 200) {
    if (hoist_buf_append(&q->body, data, n, &q->cb_err) < 0)
      return 0;
    return n;
  }
  if (q->mode == MODE_LOG) {
    if (q->sink(q->arg, data, n) != 0) {
      q->stopped = true;
      return 0;
    }
    return n;
  }
  /* MODE_WATCH: split into lines, one event each */
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    if (data[i] != '\n')
      continue;
    bool go_on;
    if (q->line.len) {
      if (hoist_buf_append(&q->line, data + start, i - start, &q->cb_err) < 0)
        return 0;
      go_on = watch_event(q, q->line.data, q->line.len);
      hoist_buf_reset(&q->line);
    } else {
      go_on = watch_event(q, data + start, i - start);
    }
    if (!go_on)
      return 0;
    start = i + 1;
  }
  if (start < n && hoist_buf_append(&q->line, data + start, n - start, &q->cb_err) < 0) {
    hoist_err_wrap(&q->cb_err, "a watch event");
    return 0;
  }
  return n;
}

static int curl_code(CURLcode rc) {
  switch (rc) {
  case CURLE_COULDNT_CONNECT:
    return ECONNREFUSED;
  case CURLE_COULDNT_RESOLVE_HOST:
    return EHOSTUNREACH;
  case CURLE_OPERATION_TIMEDOUT:
    return ETIMEDOUT;
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CACERT_BADFILE:
    return EPROTO;
  default:
    return EIO;
  }
}

/* The error for a non-2xx answer: the Status object's reason and message. */
static int status_error(long status, const hoist_buf *body, const char *method, const char *what,
                        hoist_err **err) {
  json_t *j = body->len ? json_loadb(body->data, body->len, 0, NULL) : NULL;
  const char *reason = json_string_value(json_object_get(j, "reason"));
  const char *msg = json_string_value(json_object_get(j, "message"));
  int code = status == 409                    ? HOIST_KUBE_EXISTS
             : status == 404                  ? HOIST_KUBE_NOT_FOUND
             : status == 410                  ? HOIST_KUBE_GONE
             : status == 401 || status == 403 ? HOIST_E_AUTH
                                              : EIO;
  int r = hoist_err_set(err, code, "kubernetes %s %s: HTTP %ld%s%s%s%s", method, what, status,
                        reason ? " " : "", reason ? reason : "", msg ? ": " : "", msg ? msg : "");
  json_decref(j);
  return r;
}

/* One request: method on path?query, with a JSON body or none. MODE_BODY
 * answers go to *out (parsed; may be NULL); streams to q's callbacks. Retries
 * once after a 401 when the credentials can be had again. */
HOIST_WUR static int perform(hoist_kube *k, const char *method, const char *path, const char *query,
                             json_t *send, req *q, long stream_timeout_s, json_t **out,
                             hoist_err **err) {
  _cleanup_free_ char *url =
      hoist_asprintf("%s%s%s%s", k->cfg.server, path, query ? "?" : "", query ? query : "");
  _cleanup_free_ char *payload = send ? json_dumps(send, JSON_COMPACT) : NULL;
  for (int attempt = 0;; attempt++) {
    if (atomic_load(&k->interrupted))
      return hoist_err_set(err, ECANCELED, "kubernetes %s %s: the client was interrupted", method,
                           path);
    _cleanup_free_ char *token = NULL, *cert = NULL, *key = NULL;
    if (credentials(k, &token, &cert, &key, err) < 0)
      return hoist_err_wrap(err, "kubernetes %s %s", method, path);
    CURL *h = curl_easy_init();
    if (!h)
      abort();
    q->h = h;
    struct curl_slist *hdr = curl_slist_append(NULL, "Accept: application/json");
    if (payload)
      hdr = curl_slist_append(hdr, "Content-Type: application/json");
    _cleanup_free_ char *auth = token ? hoist_asprintf("Authorization: Bearer %s", token) : NULL;
    if (auth)
      hdr = curl_slist_append(hdr, auth);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (payload)
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, q);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, k->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, k);
    if (q->mode == MODE_BODY)
      curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, k->request_timeout_ms);
    else if (stream_timeout_s > 0)
      curl_easy_setopt(h, CURLOPT_TIMEOUT, stream_timeout_s);
    if (k->cfg.insecure) {
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    struct curl_blob ca = {0}, cb = {0}, kb = {0};
    if (k->cfg.ca_file)
      curl_easy_setopt(h, CURLOPT_CAINFO, k->cfg.ca_file);
    if (k->cfg.ca_pem) {
      ca = (struct curl_blob){k->cfg.ca_pem, strlen(k->cfg.ca_pem), CURL_BLOB_NOCOPY};
      curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca);
    }
    const char *cert_pem = cert ? cert : k->cfg.cert_pem, *key_pem = key ? key : k->cfg.key_pem;
    if (cert_pem && key_pem) {
      cb = (struct curl_blob){(void *)cert_pem, strlen(cert_pem), CURL_BLOB_COPY};
      kb = (struct curl_blob){(void *)key_pem, strlen(key_pem), CURL_BLOB_COPY};
      curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
      curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cb);
      curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
      curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &kb);
    } else if (k->cfg.cert_file && k->cfg.key_file) {
      curl_easy_setopt(h, CURLOPT_SSLCERT, k->cfg.cert_file);
      curl_easy_setopt(h, CURLOPT_SSLKEY, k->cfg.key_file);
    }
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdr);
    q->h = NULL;
    if (q->stopped)
      return 0;
    if (q->gone)
      return hoist_err_set(err, HOIST_KUBE_GONE,
                           "kubernetes %s %s: 410 Gone in the watch: the resourceVersion is too "
                           "old, list again",
                           method, path);
    if (q->cb_err) {
      hoist_err *e = steal_pointer(&q->cb_err);
      if (err && !*err)
        *err = e;
      else
        hoist_err_free(e);
      return hoist_err_wrap(err, "kubernetes %s %s", method, path);
    }
    if (rc == CURLE_ABORTED_BY_CALLBACK)
      return hoist_err_set(err, ECANCELED, "kubernetes %s %s: the client was interrupted", method,
                           path);
    if (rc != CURLE_OK)
      return hoist_err_set(err, curl_code(rc), "kubernetes %s %s: %s", method, url,
                           curl_easy_strerror(rc));
    if (status == 401 && attempt == 0 && credentials_stale(k)) {
      hoist_buf_reset(&q->body);
      continue;
    }
    if (status < 200 || status > 299)
      return status_error(status, &q->body, method, path, err);
    if (q->mode == MODE_BODY && out) {
      json_error_t je;
      *out = json_loadb(q->body.data ? q->body.data : "", q->body.len, 0, &je);
      if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return hoist_err_set(err, HOIST_E_FORMAT, "kubernetes %s %s: the answer is not an object",
                             method, path);
      }
    }
    return 0;
  }
}

/* A path segment (a namespace or an object's name): a DNS subdomain's
 * characters, so it needs no escaping. */
static bool segment_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  return n > 0 && n <= 253 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-.") == n &&
         strcmp(s, ".") && strcmp(s, "..");
}

/* /api/v1/namespaces/NS/PLURAL[/NAME] or /apis/GROUP/VERSION/... */
HOIST_WUR static int res_path(hoist_kube *k, const hoist_kube_res *r, const char *ns,
                              const char *name, char **out, hoist_err **err) {
  if (!ns)
    ns = k->cfg.namespace;
  if (!segment_ok(ns))
    return hoist_err_set(err, EINVAL, "kubernetes: \"%s\" is not a namespace", ns ? ns : "");
  if (name && !segment_ok(name))
    return hoist_err_set(err, EINVAL, "kubernetes: \"%s\" is not an object name", name);
  bool core = !strchr(r->group_version, '/');
  *out = hoist_asprintf("/%s/%s/namespaces/%s/%s%s%s", core ? "api" : "apis", r->group_version, ns,
                        r->plural, name ? "/" : "", name ? name : "");
  return 0;
}

static void req_free(req *q) {
  hoist_buf_free(&q->body);
  hoist_buf_free(&q->line);
  free(q->last_rv);
  hoist_err_free(q->cb_err);
}

#define REQ_INIT(m)                                                                                \
  { .mode = (m), .body = HOIST_BUF_INIT(BODY_MAX), .line = HOIST_BUF_INIT(LINE_MAX_BYTES) }

int hoist_kube_create(hoist_kube *k, const hoist_kube_res *r, const char *ns, json_t *obj,
                      json_t **out, hoist_err **err) {
  if (out)
    *out = NULL;
  _cleanup_free_ char *path = NULL;
  if (res_path(k, r, ns, NULL, &path, err) < 0)
    return -EINVAL;
  req q = REQ_INIT(MODE_BODY);
  int ret = perform(k, "POST", path, NULL, obj, &q, 0, out, err);
  req_free(&q);
  return ret;
}

int hoist_kube_get(hoist_kube *k, const hoist_kube_res *r, const char *ns, const char *name,
                   json_t **out, hoist_err **err) {
  *out = NULL;
  _cleanup_free_ char *path = NULL;
  if (res_path(k, r, ns, name, &path, err) < 0)
    return -EINVAL;
  req q = REQ_INIT(MODE_BODY);
  int ret = perform(k, "GET", path, NULL, NULL, &q, 0, out, err);
  req_free(&q);
  return ret;
}

/* "labelSelector=<escaped>" or NULL. */
static char *selector_query(const char *selector) {
  if (!selector || !selector[0])
    return NULL;
  char *esc = curl_easy_escape(NULL, selector, 0);
  if (!esc)
    abort();
  char *q = hoist_asprintf("labelSelector=%s", esc);
  curl_free(esc);
  return q;
}

int hoist_kube_list(hoist_kube *k, const hoist_kube_res *r, const char *ns, const char *selector,
                    json_t **out, hoist_err **err) {
  *out = NULL;
  _cleanup_free_ char *path = NULL, *query = selector_query(selector);
  if (res_path(k, r, ns, NULL, &path, err) < 0)
    return -EINVAL;
  req q = REQ_INIT(MODE_BODY);
  int ret = perform(k, "GET", path, query, NULL, &q, 0, out, err);
  req_free(&q);
  if (ret == 0 && !json_is_array(json_object_get(*out, "items"))) {
    json_decref(*out);
    *out = NULL;
    return hoist_err_set(err, HOIST_E_FORMAT, "kubernetes GET %s: not a list", path);
  }
  return ret;
}

int hoist_kube_delete(hoist_kube *k, const hoist_kube_res *r, const char *ns, const char *name,
                      hoist_err **err) {
  _cleanup_free_ char *path = NULL;
  if (res_path(k, r, ns, name, &path, err) < 0)
    return -EINVAL;
  json_t *opts = json_pack("{s:s, s:s, s:s}", "apiVersion", "v1", "kind", "DeleteOptions",
                           "propagationPolicy", "Background");
  req q = REQ_INIT(MODE_BODY);
  int ret = perform(k, "DELETE", path, "propagationPolicy=Background", opts, &q, 0, NULL, err);
  req_free(&q);
  json_decref(opts);
  return ret;
}

int hoist_kube_watch(hoist_kube *k, const hoist_kube_res *r, const char *ns, const char *selector,
                     const char *resource_version, int timeout_s, hoist_kube_watch_fn fn, void *arg,
                     char **last_rv, hoist_err **err) {
  if (last_rv)
    *last_rv = NULL;
  _cleanup_free_ char *path = NULL, *sel = selector_query(selector);
  if (res_path(k, r, ns, NULL, &path, err) < 0)
    return -EINVAL;
  if (resource_version && strspn(resource_version, "0123456789") != strlen(resource_version))
    return hoist_err_set(err, EINVAL, "kubernetes watch %s: resourceVersion \"%s\" is not a number",
                         path, resource_version);
  hoist_buf qs = HOIST_BUF_INIT(0);
  int ret = hoist_buf_appendf(&qs, err, "watch=1&allowWatchBookmarks=true");
  if (ret == 0 && sel)
    ret = hoist_buf_appendf(&qs, err, "&%s", sel);
  if (ret == 0 && resource_version && resource_version[0])
    ret = hoist_buf_appendf(&qs, err, "&resourceVersion=%s", resource_version);
  if (ret == 0 && timeout_s > 0)
    ret = hoist_buf_appendf(&qs, err, "&timeoutSeconds=%d", timeout_s);
  if (ret < 0) {
    hoist_buf_free(&qs);
    return ret;
  }
  req q = REQ_INIT(MODE_WATCH);
  q.fn = fn;
  q.arg = arg;
  ret = perform(k, "GET", path, qs.data, NULL, &q, timeout_s > 0 ? timeout_s + 30 : 0, NULL, err);
  if (last_rv)
    *last_rv = steal_pointer(&q.last_rv);
  req_free(&q);
  hoist_buf_free(&qs);
  return ret;
}

int hoist_kube_pod_log(hoist_kube *k, const char *ns, const char *pod, const char *container,
                       bool follow, hoist_kube_sink sink, void *arg, hoist_err **err) {
  _cleanup_free_ char *path = NULL, *full = NULL, *query = NULL;
  if (res_path(k, &HOIST_KUBE_PODS, ns, pod, &path, err) < 0)
    return -EINVAL;
  if (container && !segment_ok(container))
    return hoist_err_set(err, EINVAL, "kubernetes: \"%s\" is not a container name", container);
  full = hoist_asprintf("%s/log", path);
  query = hoist_asprintf("follow=%s%s%s", follow ? "true" : "false", container ? "&container=" : "",
                         container ? container : "");
  req q = REQ_INIT(MODE_LOG);
  q.sink = sink;
  q.arg = arg;
  int ret = perform(k, "GET", full, query, NULL, &q, 0, NULL, err);
  req_free(&q);
  return ret;
}
