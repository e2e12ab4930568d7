/* server: the HTTP front (libmicrohttpd, internal thread pool): routing,
 * the JSON envelope, authentication, body limits, and the handlers. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "hoist/digest.h"
#include "hoist/fs.h"
#include "hoist/limits.h"
#include "hoist/registry.h"
#include "server-private.h"

#define API "/system/api/v1"

/* The HTTP front's settings of the config file (see load_config). */
typedef struct front_config {
  unsigned request_timeout;                  /* seconds a connection may stay idle */
  unsigned max_per_address;                  /* connections from one client address */
  bool metrics_token;                        /* /metrics needs `Bearer <metrics_token>` */
  char metrics_digest[HOIST_DIGEST_STR_LEN]; /* SHA-256 of the token */
  bool metrics_per_user;                     /* hoist_builds_by_user in /metrics */
} front_config;

#define DEFAULT_REQUEST_TIMEOUT 30u
#define DEFAULT_MAX_PER_ADDRESS 64u
#define MAX_CONNECTIONS 4096u

struct hoist_server {
  struct MHD_Daemon *d;
  server_jobs *jobs;
  server_auth *auth;
  server_config cfg;
  front_config front;
  hoist_registry *registry;
  hoist_registry_opts registry_opts; /* its options (borrowed strings): a user's own client */
  server_logwatch *logwatch;         /* followed logs */
  char *tls_cert, *tls_key, *tls_ca;
  atomic_uint_fast64_t requests[6]; /* by status class 1xx..5xx, [0] all */
  pthread_mutex_t log_lock;         /* MHD's last message, its time and repeats */
  char log_last[256];
  time_t log_when;
  unsigned long log_repeats;
};

typedef enum {
  R_HEALTHZ,
  R_METRICS,
  R_START,
  R_CLEANUP,
  R_STATUS,
  R_LOGS,
  R_LIST,
  R_CANCEL,
  R_REGISTRY,
  R_OPENAPI,
} route_id;

/* What the service answers: a path (under API unless it starts with '/'), a
 * method (NULL: any) and the body the request may carry. */
typedef struct route {
  const char *path;
  const char *method;
  route_id id;
  size_t max_body;
} route;

static const route routes[] = {
    {"/healthz", NULL, R_HEALTHZ, HOIST_SERVER_MAX_SMALL_BODY},
    {"/metrics", NULL, R_METRICS, HOIST_SERVER_MAX_SMALL_BODY},
    {"build/start", "POST", R_START, HOIST_SERVER_MAX_START_BODY},
    {"build/cleanup", "POST", R_CLEANUP, HOIST_SERVER_MAX_SMALL_BODY},
    {"build/status", "GET", R_STATUS, HOIST_SERVER_MAX_SMALL_BODY},
    {"build/logs", "GET", R_LOGS, HOIST_SERVER_MAX_SMALL_BODY},
    {"builds", "GET", R_LIST, HOIST_SERVER_MAX_SMALL_BODY},
    {"build", "DELETE", R_CANCEL, HOIST_SERVER_MAX_SMALL_BODY},
    {"build/cancel", "POST", R_CANCEL, HOIST_SERVER_MAX_SMALL_BODY},
    {"registry/catalog", "GET", R_REGISTRY, HOIST_SERVER_MAX_SMALL_BODY},
    {"registry/tags", "GET", R_REGISTRY, HOIST_SERVER_MAX_SMALL_BODY},
    {"registry/manifest", "GET", R_REGISTRY, HOIST_SERVER_MAX_SMALL_BODY},
    {"registry/manifest", "DELETE", R_REGISTRY, HOIST_SERVER_MAX_SMALL_BODY},
    {"/openapi.json", "GET", R_OPENAPI, HOIST_SERVER_MAX_SMALL_BODY},
};

/* One request, from its headers to its answer. */
typedef struct request {
  const route *rt;       /* NULL until the headers were accepted */
  server_user user;      /* the caller, authenticated from the headers */
  hoist_buf body;        /* at most rt->max_body bytes */
  hoist_refusal refusal; /* status 0, or decided at the headers, answered at the end */
  bool too_big;          /* a chunked body outgrew rt->max_body: read and dropped */
  bool answered;
  size_t discarded;
} request;

/* A chunked body over its limit is read and dropped up to this much, so the
 * client gets the 413; past it the connection is closed. */

/* ------------------------------------------------------------ responses */

static enum MHD_Result send_json(struct MHD_Connection *c, hoist_server *s, int status, json_t *o) {
  char *text = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  size_t len = strlen(text);
  struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
  MHD_destroy_response(r);
  atomic_fetch_add(&s->requests[0], 1);
  if (status >= 100 && status < 600)
    atomic_fetch_add(&s->requests[status / 100], 1);
  return ret;
}

/* {"status": "ok"|"ko", "message": msg} plus extra's members at the top level. */
static enum MHD_Result envelope(struct MHD_Connection *c, hoist_server *s, int status,
                                const char *msg, json_t *extra) {
  json_t *o = json_pack("{s:s, s:s}", "status", status < 400 ? "ok" : "ko", "message", msg);
  if (extra) {
    json_object_update_missing(o, extra);
    json_decref(extra);
  }
  return send_json(c, s, status, o);
}

/* A failure of the service, logged; the client learns only that the data
 * volume is full (507: ENOSPC or EDQUOT at the root), that the job store is
 * out of reach (503: ENOTCONN) or that it failed. */
static enum MHD_Result internal_error(struct MHD_Connection *c, hoist_server *s, hoist_err *err) {
  char *text = hoist_err_text(err);
  int code = hoist_err_root_code(err);
  hoist_log(HOIST_LOG_ERROR, "serve: %s", text ? text : "internal error");
  free(text);
  hoist_err_free(err);
  if (code == ENOSPC || code == EDQUOT)
    return envelope(c, s, 507, "No space left on the service's data volume.", NULL);
  if (code == ENOTCONN)
    return envelope(c, s, 503, "The job store is unreachable; retry later.", NULL);
  if (code == EHOSTDOWN)
    return envelope(c, s, 503, "The Kubernetes API server is unreachable; retry later.", NULL);
  return envelope(c, s, 500, "Internal server error.", NULL);
}

/* 429 with Retry-After: the queue is full for now. */
static enum MHD_Result too_many(struct MHD_Connection *c, hoist_server *s, const char *msg) {
  json_t *o = json_pack("{s:s, s:s}", "status", "ko", "message", msg);
  char *text = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "30");
  enum MHD_Result ret = MHD_queue_response(c, 429, r);
  MHD_destroy_response(r);
  atomic_fetch_add(&s->requests[0], 1);
  atomic_fetch_add(&s->requests[4], 1);
  return ret;
}

static int refuse(hoist_refusal *why, int status, const char *msg) {
  why->status = status;
  snprintf(why->message, sizeof why->message, "%s", msg);
  return 0;
}

static int refuse_too_large(hoist_refusal *why, const route *rt) {
  why->status = 413;
  snprintf(why->message, sizeof why->message,
           "Request body too large (max %zu bytes for this endpoint).", rt->max_body);
  return 0;
}

/* ------------------------------------------------------------ auth */

HOIST_WUR static int authenticate(hoist_server *s, struct MHD_Connection *c, server_user *u,
                                  hoist_refusal *why, hoist_err **err) {
  const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "authorization");
  if (!h || !*h) {
    why->status = 401;
    snprintf(why->message, sizeof why->message, "Missing authorization header");
    return 0;
  }
  char *uuid = NULL, *key = NULL;
  int ok = 0;
  if (hoist_server_parse_authorization(h, &uuid, &key, NULL) == 0)
    ok = s->auth->check(s->auth, uuid, key, u, err);
  if (key)
    OPENSSL_cleanse(key, strlen(key));
  free(uuid);
  free(key);
  if (ok < 0)
    return -1;
  if (ok == 0) {
    why->status = 401;
    snprintf(why->message, sizeof why->message, "Invalid authorization");
  }
  return ok;
}

/* ------------------------------------------------------------ handlers */

static bool id_ok(const char *id) {
  if (!id || strlen(id) != 16)
    return false;
  for (const char *p = id; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
      return false;
  return true;
}

static enum MHD_Result h_start(hoist_server *s, struct MHD_Connection *c, server_user *u,
                               request *rq) {
  hoist_build_request br;
  hoist_refusal why;
  if (hoist_server_parse_start(rq->body.data, rq->body.len, u->login, hoist_server_kinds(),
                               s->cfg.strict_user, &br, &why) < 0)
    return envelope(c, s, why.status, why.message, NULL);
  char *id = NULL, *name = NULL;
  bool shared;
  hoist_err *err = NULL;
  int r = server_jobs_submit(s->jobs, u, &br, &id, &name, &shared, &why, &err);
  hoist_build_request_clear(&br);
  if (r < 0)
    return internal_error(c, s, err);
  if (r > 0 && why.status == 429)
    return too_many(c, s, why.message);
  if (r > 0)
    return envelope(c, s, why.status, why.message, NULL);
  char msg[256];
  snprintf(msg, sizeof msg, "Build process initiated successfully. Job: %s", name);
  enum MHD_Result ret = envelope(
      c, s, 200, msg, json_pack("{s:s, s:s, s:b}", "id", id, "job_name", name, "shared", shared));
  free(id);
  free(name);
  return ret;
}

static enum MHD_Result h_cleanup(hoist_server *s, struct MHD_Connection *c, server_user *u,
                                 request *rq) {
  double hours;
  hoist_refusal why;
  if (hoist_server_parse_cleanup(rq->body.data, rq->body.len, &hours, &why) < 0)
    return envelope(c, s, why.status, why.message, NULL);
  int n;
  hoist_err *err = NULL;
  if (server_jobs_cleanup(s->jobs, u->login, hours, &n, &err) < 0)
    return internal_error(c, s, err);
  char msg[64];
  snprintf(msg, sizeof msg, "Cleaned up %d jobs successfully.", n);
  return envelope(c, s, 200, msg, json_pack("{s:i}", "deleted", n));
}

static enum MHD_Result h_status(hoist_server *s, struct MHD_Connection *c, server_user *u) {
  const char *id = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "id");
  if (!id || !*id)
    return envelope(c, s, 400, "No id provided for build status.", NULL);
  json_t *o = NULL;
  bool found = false;
  hoist_err *err = NULL;
  if (id_ok(id) && server_jobs_status(s->jobs, u->login, id, &o, &found, &err) < 0)
    return internal_error(c, s, err);
  if (!found)
    return envelope(c, s, 404, "Build job not found.", NULL);
  return envelope(c, s, 200, "Build job found.", o);
}

static enum MHD_Result h_list(hoist_server *s, struct MHD_Connection *c, server_user *u) {
  json_t *a = NULL;
  hoist_err *err = NULL;
  if (server_jobs_list(s->jobs, u->login, &a, &err) < 0)
    return internal_error(c, s, err);
  char msg[64];
  snprintf(msg, sizeof msg, "%zu build jobs.", json_array_size(a));
  return envelope(c, s, 200, msg, json_pack("{s:o}", "builds", a));
}

static enum MHD_Result h_cancel(hoist_server *s, struct MHD_Connection *c, server_user *u) {
  const char *id = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "id");
  if (!id || !*id)
    return envelope(c, s, 400, "No id provided for build cancel.", NULL);
  hoist_err *err = NULL;
  int r = id_ok(id) ? server_jobs_cancel(s->jobs, u->login, id, &err) : 0;
  if (r < 0)
    return internal_error(c, s, err);
  if (r == 0)
    return envelope(c, s, 404, "Build job not found.", NULL);
  if (r == 2)
    return envelope(c, s, 409, "Build job already finished.", NULL);
  return envelope(c, s, 200, "Build job canceled.", json_pack("{s:s}", "id", id));
}

typedef struct log_follow {
  hoist_server *s;
  struct MHD_Connection *c;
  char id[17];
  store_log *log;
  bool follow;
  bool final_pass;
  server_logwait *wait; /* with the watcher, from the first wait */
} log_follow;

/* The log from pos. A follower that has read all of a running job's log
 * waits for more without holding the thread: the connection is suspended
 * until the log changes (server_logwatch_wait; a log in a shared store is
 * looked at every second) and the reader called again. The answer ends
 * after one more read once the job has ended. */
static ssize_t log_reader(void *cls, uint64_t pos, char *buf, size_t max) {
  log_follow *f = cls;
  for (;;) {
    size_t n = 0;
    hoist_err *e = NULL;
    if (server_jobs_log_read(f->s->jobs, f->log, pos, buf, max, &n, &e) < 0) {
      hoist_warn("serve: log of %s: %s", f->id, e->msg);
      hoist_err_free(e);
      return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (n > 0)
      return (ssize_t)n;
    if (!f->follow || f->final_pass)
      return MHD_CONTENT_READER_END_OF_STREAM;
    if (server_jobs_done(f->s->jobs, f->id)) {
      f->final_pass = true; /* one more read for what came before the end */
      continue;
    }
    int r = server_logwatch_wait(f->s->logwatch, f->c, f->id, &f->wait);
    if (r < 0)
      return MHD_CONTENT_READER_END_WITH_ERROR; /* the client left, or the server stops */
    if (r == 0)
      return 0; /* suspended */
  }
}

static void log_free(void *cls) {
  log_follow *f = cls;
  server_logwatch_leave(f->s->logwatch, f->wait);
  server_jobs_log_close(f->s->jobs, f->log);
  free(f);
}

static enum MHD_Result h_logs(hoist_server *s, struct MHD_Connection *c, server_user *u) {
  const char *id = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "id");
  const char *follow = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "follow");
  if (!id || !*id)
    return envelope(c, s, 400, "No id provided for build logs.", NULL);
  bool found = false;
  hoist_err *err = NULL;
  if (id_ok(id) && server_jobs_log_check(s->jobs, u->login, id, &found, &err) < 0)
    return internal_error(c, s, err);
  if (!found)
    return envelope(c, s, 404, "Build job not found.", NULL);
  store_log *log = NULL;
  if (server_jobs_log_open(s->jobs, id, &log, &err) < 0)
    return internal_error(c, s, err);
  log_follow *f = hoist_malloc0(sizeof *f);
  f->s = s;
  f->c = c;
  snprintf(f->id, sizeof f->id, "%s", id);
  f->log = log;
  f->follow = follow && (strcmp(follow, "1") == 0 || strcmp(follow, "true") == 0);
  struct MHD_Response *r =
      MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, log_reader, f, log_free);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
  enum MHD_Result ret = MHD_queue_response(c, 200, r);
  MHD_destroy_response(r);
  atomic_fetch_add(&s->requests[0], 1);
  atomic_fetch_add(&s->requests[2], 1);
  return ret;
}

/* ------------------------------------------------------------ registry */

/* The user's registry and a client for it: the service's, or with the
 * OpenServerless drop-in one of the user's own, holding the credentials
 * its push would use (*own set: the caller frees it). */
HOIST_WUR static int user_registry(hoist_server *s, const server_user *u, char **host,
                                   hoist_registry **reg, hoist_registry **own, hoist_err **err) {
  _cleanup_free_ char *pull = NULL;
  *reg = s->registry;
  *own = NULL;
  if (server_jobs_registry(s->jobs, u, host, &pull, err) < 0)
    return -1;
  if (!*host || !server_jobs_openserverless(s->jobs))
    return 0;
  _cleanup_free_ char *userpass = NULL;
  if (server_jobs_registry_auth(s->jobs, u, *host, &userpass, err) < 0)
    return -1;
  hoist_registry_opts ro = s->registry_opts;
  ro.creds = userpass;
  ro.secret_file = NULL;
  int rc = hoist_registry_new(&ro, own, err);
  if (userpass)
    OPENSSL_cleanse(userpass, strlen(userpass));
  if (rc < 0)
    return -1;
  *reg = *own;
  return 0;
}

/* Splits "repo[:tag|@digest]" (repo checked by the reference grammar). */
static int split_image(const char *image, char **repo, char **ref) {
  hoist_ref *r = NULL;
  _cleanup_free_ char *full = hoist_asprintf("registry.invalid/%s", image);
  if (strlen(image) > HOIST_REF_MAX_LEN || hoist_ref_parse(full, &r, NULL) < 0)
    return -1;
  *repo = hoist_strdup(r->path);
  *ref = hoist_strdup(hoist_ref_reference(r));
  hoist_ref_free(r);
  return 0;
}

/* One housekeeping request (catalog, tags, manifest get or delete) on
 * host through reg, confined to the user's namespace. */
static enum MHD_Result registry_request(hoist_server *s, struct MHD_Connection *c,
                                        const server_user *u, hoist_registry *reg, const char *host,
                                        const char *what, const char *method) {
  hoist_err *err = NULL;
  _cleanup_free_ char *repo = NULL;
  _cleanup_free_ char *ref = NULL;
  if (strcmp(what, "catalog") == 0) {
    char **repos = NULL;
    size_t n = 0;
    if (hoist_registry_catalog(reg, host, &repos, &n, &err) < 0)
      goto registry_fail;
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
      if (server_in_namespace(u->login, repos[i]) && !server_is_cache_repo(u->login, repos[i]))
        json_array_append_new(a, json_string(repos[i]));
    hoist_strfreev(repos);
    return envelope(c, s, 200, "Catalog listed.", json_pack("{s:o}", "repositories", a));
  }
  const char *image = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "image");
  if (!image || !*image)
    return envelope(c, s, 400, "No image provided.", NULL);
  if (split_image(image, &repo, &ref) < 0)
    return envelope(c, s, 400, "Invalid image.", NULL);
  if (!server_in_namespace(u->login, repo))
    return envelope(c, s, 403, "Image outside the caller's namespace.", NULL);
  if (strcmp(what, "tags") == 0) {
    char **tags = NULL;
    size_t n = 0;
    if (hoist_registry_tags(reg, host, repo, &tags, &n, &err) < 0)
      goto registry_fail;
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
      json_array_append_new(a, json_string(tags[i]));
    hoist_strfreev(tags);
    return envelope(c, s, 200, "Tags listed.",
                    json_pack("{s:s, s:o}", "repository", repo, "tags", a));
  }
  /* manifest */
  if (strcmp(method, "DELETE") == 0) {
    bool found = false;
    char digest[HOIST_DIGEST_STR_LEN];
    _cleanup_free_ char *mt = NULL;
    if (hoist_registry_head_manifest(reg, host, repo, ref, &found, digest, &mt, &err) < 0)
      goto registry_fail;
    if (!found)
      return envelope(c, s, 404, "Image not found.", NULL);
    if (hoist_registry_delete_manifest(reg, host, repo, digest, &err) < 0)
      goto registry_fail;
    return envelope(c, s, 200, "Image deleted.", json_pack("{s:s}", "digest", digest));
  }
  char *data = NULL, *mt = NULL;
  size_t len;
  char digest[HOIST_DIGEST_STR_LEN];
  if (hoist_registry_get_manifest(reg, host, repo, ref, &data, &len, &mt, digest, &err) < 0)
    goto registry_fail;
  json_t *m = json_loadb(data, len, 0, NULL);
  free(data);
  enum MHD_Result ret = envelope(c, s, 200, "Manifest found.",
                                 json_pack("{s:s, s:s, s:o}", "digest", digest, "mediaType",
                                           mt ? mt : "", "manifest", m ? m : json_null()));
  free(mt);
  return ret;
registry_fail:;
  char *text = hoist_err_text(err);
  int code = hoist_err_root_code(err);
  hoist_err_free(err);
  bool missing = code == ENOENT || (text && strstr(text, "404"));
  enum MHD_Result r2 =
      envelope(c, s, missing ? 404 : 502,
               missing ? "Image not found." : (text ? text : "Registry failed."), NULL);
  free(text);
  return r2;
}

static enum MHD_Result h_registry(hoist_server *s, struct MHD_Connection *c, server_user *u,
                                  const char *what, const char *method) {
  _cleanup_free_ char *host = NULL;
  hoist_registry *reg = NULL, *own = NULL;
  hoist_err *err = NULL;
  if (user_registry(s, u, &host, &reg, &own, &err) < 0) {
    int code = hoist_err_root_code(err);
    if (code == EHOSTDOWN)
      return internal_error(c, s, err);
    /* the credentials the user's push would use are not there: say which */
    _cleanup_free_ char *text = hoist_err_text(err);
    hoist_err_free(err);
    return envelope(c, s, 502, text ? text : "Registry credentials unavailable.", NULL);
  }
  enum MHD_Result ret = host ? registry_request(s, c, u, reg, host, what, method)
                             : envelope(c, s, 400, "No registry configured.", NULL);
  hoist_registry_free(own);
  return ret;
}

/* ------------------------------------------------------------ dispatch */

/* Mutual TLS: the client presented a certificate the --tls-client-ca signed. */
static bool client_cert_ok(struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  if (!ci || !ci->tls_session)
    return false;
  gnutls_session_t tls = (gnutls_session_t)ci->tls_session;
  unsigned status = 0;
  unsigned n = 0;
  if (!gnutls_certificate_get_peers(tls, &n) || n == 0)
    return false;
  return gnutls_certificate_verify_peers2(tls, &status) == 0 && status == 0;
}

/* With metrics_token set, /metrics needs `authorization: Bearer TOKEN`. The
 * digests are compared, in constant time: a wrong token's length or prefix
 * tells nothing. Returns 1 accepted, 0 refused (*why). */
static int metrics_auth(hoist_server *s, struct MHD_Connection *c, hoist_refusal *why) {
  if (!s->front.metrics_token)
    return 1;
  const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "authorization");
  if (!h || !*h)
    return refuse(why, 401, "Missing authorization header");
  bool bearer = strncasecmp(h, "Bearer ", 7) == 0;
  const char *token = bearer ? h + 7 : "";
  while (*token == ' ')
    token++;
  char got[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of(token, strlen(token), got);
  if (CRYPTO_memcmp(got, s->front.metrics_digest, HOIST_DIGEST_STR_LEN) != 0 || !bearer)
    return refuse(why, 401, "Invalid authorization");
  return 1;
}

static enum MHD_Result h_metrics(hoist_server *s, struct MHD_Connection *c) {
  hoist_buf b = HOIST_BUF_INIT(1 << 20);
  hoist_err *err = NULL;
  if (server_jobs_metrics(s->jobs, s->front.metrics_per_user, &b, &err) < 0 ||
      hoist_buf_appendf(&b, &err,
                        "# HELP hoist_http_requests_total HTTP requests answered.\n"
                        "# TYPE hoist_http_requests_total counter\n") < 0) {
    hoist_buf_free(&b);
    return internal_error(c, s, err);
  }
  for (int i = 1; i < 6; i++) {
    if (hoist_buf_appendf(&b, &err, "hoist_http_requests_total{code=\"%dxx\"} %lu\n", i,
                          (unsigned long)atomic_load(&s->requests[i])) < 0) {
      hoist_buf_free(&b);
      return internal_error(c, s, err);
    }
  }
  size_t len = b.len;
  struct MHD_Response *r =
      MHD_create_response_from_buffer(len, hoist_buf_steal(&b), MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4");
  enum MHD_Result ret = MHD_queue_response(c, 200, r);
  MHD_destroy_response(r);
  return ret;
}

/* GET /openapi.json: the document of this API as shipped (doc/api/openapi.json,
 * built into the library), static memory the response only points at. */
static enum MHD_Result h_openapi(hoist_server *s, struct MHD_Connection *c) {
  struct MHD_Response *r = MHD_create_response_from_buffer(
      server_openapi_json_len, (void *)server_openapi_json, MHD_RESPMEM_PERSISTENT);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  enum MHD_Result ret = MHD_queue_response(c, 200, r);
  MHD_destroy_response(r);
  atomic_fetch_add(&s->requests[0], 1);
  atomic_fetch_add(&s->requests[2], 1);
  return ret;
}

/* Routes anyone may call: no client certificate, no authorization. */
static bool open_route(route_id id) { return id == R_HEALTHZ || id == R_OPENAPI; }

/* The route of url and method; 0, or the refusal's status (404, 405). */
static int find_route(const char *url, const char *method, const route **out) {
  bool api = strncmp(url, API "/", sizeof API) == 0;
  const char *p = api ? url + sizeof API : url;
  bool path_known = false;
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    const route *rt = &routes[i];
    if ((rt->path[0] == '/') == api || strcmp(p, rt->path) != 0)
      continue;
    path_known = true;
    if (!rt->method || strcmp(method, rt->method) == 0) {
      *out = rt;
      return 0;
    }
  }
  return path_known ? 405 : 404;
}

typedef struct length_scan {
  const char *first;
  bool differ;
} length_scan;

static enum MHD_Result scan_length(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value) {
  (void)kind;
  length_scan *l = cls;
  if (!key || strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0)
    return MHD_YES;
  if (!l->first)
    l->first = value ? value : "";
  else if (strcmp(l->first, value ? value : "") != 0)
    l->differ = true;
  return MHD_YES;
}

/* The declared body length: 0 without Content-Length (MHD checked its
 * digits), UINT64_MAX for a body of unknown length (Transfer-Encoding). */
static uint64_t declared_length(struct MHD_Connection *c) {
  if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
    return UINT64_MAX;
  const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  return cl ? strtoull(cl, NULL, 10) : 0;
}

/* What the headers alone decide, before any byte of the body is read: two
 * different Content-Length headers (400), the route (404, 405), a declared
 * body over the route's limit (413), the client certificate and the
 * authorization (401). Returns 1 accepted (rq->rt set, rq->user the caller
 * of an API route), 0 refused (*why), negative on an internal failure. */
HOIST_WUR static int check_headers(hoist_server *s, struct MHD_Connection *c, const char *url,
                                   const char *method, request *rq, hoist_refusal *why,
                                   hoist_err **err) {
  length_scan ls = {0};
  MHD_get_connection_values(c, MHD_HEADER_KIND, scan_length, &ls);
  if (ls.differ)
    return refuse(why, 400, "Duplicate Content-Length header");
  const route *rt = NULL;
  int status = find_route(url, method, &rt);
  if (status == 404)
    return refuse(why, 404, "Not found.");
  if (status == 405)
    return refuse(why, 405, "Method not allowed.");
  uint64_t declared = declared_length(c);
  if (declared != UINT64_MAX && declared > rt->max_body)
    return refuse_too_large(why, rt);
  int ok = 1;
  if (rt->id == R_METRICS)
    ok = metrics_auth(s, c, why);
  else if (!open_route(rt->id) && s->tls_ca && !client_cert_ok(c))
    ok = refuse(why, 401, "Client certificate required.");
  else if (!open_route(rt->id))
    ok = authenticate(s, c, &rq->user, why, err);
  if (ok == 1)
    rq->rt = rt;
  return ok;
}

static enum MHD_Result dispatch(hoist_server *s, struct MHD_Connection *c, const char *method,
                                request *rq) {
  const route *rt = rq->rt;
  server_user *u = &rq->user;
  switch (rt->id) {
  case R_HEALTHZ:
    if (!server_jobs_healthy(s->jobs))
      return envelope(c, s, 503, "The job store is unreachable; retrying.", NULL);
    if (!server_jobs_executor_healthy(s->jobs))
      return envelope(c, s, 503, "The Kubernetes API server is unreachable; retrying.", NULL);
    return envelope(c, s, 200, "healthy", NULL);
  case R_METRICS:
    return h_metrics(s, c);
  case R_START:
    return h_start(s, c, u, rq);
  case R_CLEANUP:
    return h_cleanup(s, c, u, rq);
  case R_STATUS:
    return h_status(s, c, u);
  case R_LOGS:
    return h_logs(s, c, u);
  case R_LIST:
    return h_list(s, c, u);
  case R_CANCEL:
    return h_cancel(s, c, u);
  case R_REGISTRY:
    return h_registry(s, c, u, rt->path + strlen("registry/"), method);
  case R_OPENAPI:
    return h_openapi(s, c);
  }
  return envelope(c, s, 404, "Not found.", NULL);
}

/* The first call, when the headers are in. A refusal of a request that
 * announces a body is answered at once: MHD then closes the connection
 * without reading the body. One without a body is answered in the final
 * call, on a connection that stays open. */
static enum MHD_Result on_headers(hoist_server *s, struct MHD_Connection *c, const char *url,
                                  const char *method, request *rq) {
  hoist_err *err = NULL;
  int ok = check_headers(s, c, url, method, rq, &rq->refusal, &err);
  if (ok < 0) {
    rq->answered = true;
    return internal_error(c, s, err);
  }
  if (ok == 1) {
    hoist_buf_init(&rq->body, rq->rt->max_body);
    return MHD_YES;
  }
  if (declared_length(c) == 0)
    return MHD_YES;
  rq->answered = true;
  return envelope(c, s, rq->refusal.status, rq->refusal.message, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  (void)version;
  hoist_server *s = cls;
  request *rq = *con_cls;
  if (!rq) {
    rq = hoist_malloc0(sizeof *rq);
    *con_cls = rq;
    return on_headers(s, c, url, method, rq);
  }
  if (*upload_data_size) {
    size_t n = *upload_data_size;
    *upload_data_size = 0;
    if (rq->rt && !rq->answered && !rq->too_big &&
        hoist_buf_append(&rq->body, upload_data, n, NULL) == 0)
      return MHD_YES;
    if (!rq->too_big) {
      rq->too_big = true;
      rq->discarded = rq->body.len;
      hoist_buf_free(&rq->body);
    }
    rq->discarded += n;
    /* close: nobody sends this much by mistake */
    return rq->discarded > HOIST_SERVER_DISCARD_MAX ? MHD_NO : MHD_YES;
  }
  if (rq->answered)
    return MHD_YES;
  rq->answered = true;
  if (rq->refusal.status)
    return envelope(c, s, rq->refusal.status, rq->refusal.message, NULL);
  if (rq->too_big) {
    refuse_too_large(&rq->refusal, rq->rt);
    return envelope(c, s, rq->refusal.status, rq->refusal.message, NULL);
  }
  return dispatch(s, c, method, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)c;
  (void)toe;
  request *rq = *con_cls;
  if (rq) {
    hoist_buf_free(&rq->body);
    server_user_clear(&rq->user);
    free(rq);
  }
  *con_cls = NULL;
}

/* ------------------------------------------------------------ lifecycle */

/* MHD's messages, to the log. One that repeats (a message for every
 * connection refused to an address over its limit) is logged once a
 * minute, with the number of repeats. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
  hoist_server *s = cls;
  char msg[sizeof s->log_last];
  vsnprintf(msg, sizeof msg, fmt, ap);
  msg[strcspn(msg, "\n")] = '\0';
  time_t now = time(NULL);
  pthread_mutex_lock(&s->log_lock);
  if (strcmp(msg, s->log_last) == 0 && now - s->log_when < 60) {
    s->log_repeats++;
    pthread_mutex_unlock(&s->log_lock);
    return;
  }
  unsigned long repeats = s->log_repeats;
  snprintf(s->log_last, sizeof s->log_last, "%s", msg);
  s->log_when = now;
  s->log_repeats = 0;
  pthread_mutex_unlock(&s->log_lock);
  if (repeats)
    hoist_warn("serve: (%lu more of the previous message)", repeats);
  hoist_warn("serve: %s", msg);
}

static void config_clear(server_config *c) {
  hoist_sign_key_free(c->sign_key);
  free(c->registry_host);
  free(c->registry_pull_host);
  free(c->registry_creds);
  free(c->registry_secret);
  free(c->registry_host_override);
  free(c->auth);
  free(c->couchdb_url);
  free(c->couchdb_prefix);
  free(c->couchdb_user);
  if (c->couchdb_password)
    OPENSSL_cleanse(c->couchdb_password, strlen(c->couchdb_password));
  free(c->couchdb_password);
  if (c->db) /* it may hold a password */
    OPENSSL_cleanse(c->db, strlen(c->db));
  free(c->db);
  free(c->attest_mode);
  hoist_strfreev(c->insecure);
  server_config_sandbox_clear(c);
  server_config_admit_clear(c);
  server_config_executor_clear(c);
  server_config_ops_clear(c);
  memset(c, 0, sizeof *c);
}

static char *opt_string(json_t *o, const char *k) {
  const char *v = json_string_value(json_object_get(o, k));
  return v && *v ? hoist_strdup(v) : NULL;
}

/* The HTTP front's settings of config object o (NULL: none):
 * request_timeout, max_connections_per_address, metrics_token,
 * metrics_per_user. An error names the setting. */
HOIST_WUR static int front_settings(json_t *o, front_config *f, hoist_err **err) {
  f->request_timeout = DEFAULT_REQUEST_TIMEOUT;
  f->max_per_address = DEFAULT_MAX_PER_ADDRESS;
  json_t *v = json_object_get(o, "request_timeout");
  if (v) {
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 86400)
      return hoist_err_set(err, EINVAL, "request_timeout: expected seconds, from 1 to 86400");
    f->request_timeout = (unsigned)json_integer_value(v);
  }
  v = json_object_get(o, "max_connections_per_address");
  if (v) {
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > MAX_CONNECTIONS)
      return hoist_err_set(err, EINVAL,
                           "max_connections_per_address: expected a number from 1 to %u",
                           MAX_CONNECTIONS);
    f->max_per_address = (unsigned)json_integer_value(v);
  }
  v = json_object_get(o, "metrics_token");
  if (v && !json_is_null(v)) {
    const char *tok = json_string_value(v);
    if (!tok || !*tok || strlen(tok) != json_string_length(v) || strlen(tok) > 1024)
      return hoist_err_set(err, EINVAL, "metrics_token: expected a string of 1 to 1024 characters");
    f->metrics_token = true;
    hoist_sha256_of(tok, strlen(tok), f->metrics_digest);
  }
  v = json_object_get(o, "metrics_per_user");
  if (v) {
    if (!json_is_boolean(v))
      return hoist_err_set(err, EINVAL, "metrics_per_user: expected true or false");
    f->metrics_per_user = json_is_true(v);
  }
  return 0;
}

/* The config's sign_key: a PEM private key file (sign.h), encrypted ones
 * with the password in sign_key_password_file (its first line). */
HOIST_WUR static int load_sign_key(json_t *o, server_config *c, hoist_err **err) {
  json_t *v = json_object_get(o, "sign_key");
  if (!v || json_is_null(v))
    return 0;
  const char *file = json_string_value(v);
  if (!file)
    return hoist_err_set(err, EINVAL, "sign_key must be a file name");
  const char *pwfile = json_string_value(json_object_get(o, "sign_key_password_file"));
  _cleanup_free_ char *pem = NULL;
  _cleanup_free_ char *pw = NULL;
  size_t len = 0;
  if (hoist_fs_read_file(AT_FDCWD, file, HOIST_SIGN_KEY_FILE_MAX, &pem, &len, err) < 0)
    return hoist_err_wrap(err, "sign_key");
  if (pwfile) {
    size_t pl = 0;
    if (hoist_fs_read_file(AT_FDCWD, pwfile, 4096, &pw, &pl, err) < 0)
      return hoist_err_wrap(err, "sign_key_password_file");
    pw[strcspn(pw, "\r\n")] = '\0';
  }
  int r = hoist_sign_key_private(pem, len, pw, file, &c->sign_key, err);
  if (pw)
    OPENSSL_cleanse(pw, strlen(pw));
  return r < 0 ? hoist_err_wrap(err, "sign_key") : 0;
}

/* The config file (JSON): registry_host, registry_pull_host,
 * registry_secret, insecure_registries, strict_user_check, per_user_limit,
 * on_restart ("fail" | "requeue"), the HTTP front (front_settings) and the
 * builds' sandbox (server_config_sandbox). */
HOIST_WUR static int load_config(const char *path, server_config *c, front_config *f,
                                 hoist_err **err) {
  c->strict_user = true;
  c->per_user_limit = 2;
  c->restart = HOIST_RESTART_FAIL;
  json_t *o = NULL;
  if (path) {
    _cleanup_free_ char *data = NULL;
    size_t len;
    if (hoist_fs_read_file(AT_FDCWD, path, 1 << 20, &data, &len, err) < 0)
      return hoist_err_wrap(err, "config %s", path);
    json_error_t je;
    o = json_loadb(data, len, 0, &je);
    if (!json_is_object(o)) {
      json_decref(o);
      return hoist_err_set(err, HOIST_E_FORMAT, "config %s: line %d: %s", path, je.line, je.text);
    }
  }
  c->registry_host = opt_string(o, "registry_host");
  c->registry_pull_host = opt_string(o, "registry_pull_host");
  c->registry_secret = opt_string(o, "registry_secret");
  c->auth = opt_string(o, "auth");
  c->couchdb_url = opt_string(o, "couchdb_url");
  c->couchdb_prefix = opt_string(o, "couchdb_prefix");
  c->couchdb_user = opt_string(o, "couchdb_user");
  c->couchdb_password = opt_string(o, "couchdb_password");
  const char *pwfile = json_string_value(json_object_get(o, "couchdb_password_file"));
  if (pwfile && !c->couchdb_password) {
    /* a mounted Secret's key: the password without its line end */
    size_t len = 0;
    if (hoist_fs_read_file(AT_FDCWD, pwfile, 4096, &c->couchdb_password, &len, err) < 0) {
      json_decref(o);
      return hoist_err_wrap(err, "config %s: couchdb_password_file", path);
    }
    c->couchdb_password[strcspn(c->couchdb_password, "\r\n")] = '\0';
  }
  if (c->auth && strcmp(c->auth, "file") != 0 && strcmp(c->auth, "couchdb") != 0) {
    json_decref(o);
    return hoist_err_set(err, EINVAL, "config %s: auth must be \"file\" or \"couchdb\"", path);
  }
  if (load_sign_key(o, c, err) < 0) {
    json_decref(o);
    return hoist_err_wrap(err, "config %s", path);
  }
  json_t *ins = json_object_get(o, "insecure_registries");
  size_t n = json_array_size(ins), k = 0;
  c->insecure = hoist_calloc(n + 1, sizeof *c->insecure);
  for (size_t i = 0; i < n; i++)
    if (json_is_string(json_array_get(ins, i)))
      c->insecure[k++] = hoist_strdup(json_string_value(json_array_get(ins, i)));
  json_t *strict = json_object_get(o, "strict_user_check");
  if (json_is_boolean(strict))
    c->strict_user = json_is_true(strict);
  json_t *lim = json_object_get(o, "per_user_limit");
  if (json_is_integer(lim) && json_integer_value(lim) > 0)
    c->per_user_limit = (int)json_integer_value(lim);
  if (front_settings(o, f, err) < 0 || server_config_sandbox(o, c, err) < 0 ||
      server_config_admit(o, c, err) < 0 || server_config_executor(o, c, err) < 0 ||
      server_config_ops(o, c, err) < 0) {
    json_decref(o);
    return hoist_err_wrap(err, "config %s", path ? path : "(defaults)");
  }
  c->db = opt_string(o, "db");
  /* a pod has no cache of its own to keep: the registry's is the default there */
  json_t *rc = json_object_get(o, "registry_cache");
  if (rc && !json_is_boolean(rc)) {
    json_decref(o);
    return hoist_err_set(err, EINVAL, "config %s: registry_cache must be true or false", path);
  }
  c->registry_cache = rc ? json_is_true(rc) : -1;
  json_t *att = json_object_get(o, "attestations");
  json_t *mode = json_object_get(o, "attest_mode");
  if ((att && !json_is_boolean(att)) ||
      (mode && (!json_is_string(mode) || (strcmp(json_string_value(mode), "index") != 0 &&
                                          strcmp(json_string_value(mode), "referrer") != 0)))) {
    json_decref(o);
    return hoist_err_set(err, EINVAL,
                         "config %s: attestations must be true or false, attest_mode \"index\" "
                         "or \"referrer\"",
                         path);
  }
  c->attestations = att && json_is_true(att);
  c->attest_mode = hoist_strdup(mode ? json_string_value(mode) : "index");
  c->lease_seconds = 30;
  json_t *lease = json_object_get(o, "lease_seconds");
  if (lease &&
      (!json_is_number(lease) || json_number_value(lease) < 1 || json_number_value(lease) > 3600)) {
    json_decref(o);
    return hoist_err_set(err, EINVAL, "config %s: lease_seconds must be a number from 1 to 3600",
                         path);
  }
  if (lease)
    c->lease_seconds = json_number_value(lease);
  c->poll_seconds = 2;
  json_t *poll = json_object_get(o, "poll_seconds");
  if (poll &&
      (!json_is_number(poll) || json_number_value(poll) < 0.1 || json_number_value(poll) > 3600)) {
    json_decref(o);
    return hoist_err_set(err, EINVAL, "config %s: poll_seconds must be a number from 0.1 to 3600",
                         path);
  }
  if (poll)
    c->poll_seconds = json_number_value(poll);
  const char *rp = json_string_value(json_object_get(o, "on_restart"));
  if (rp && strcmp(rp, "requeue") == 0)
    c->restart = HOIST_RESTART_REQUEUE;
  else if (rp && strcmp(rp, "fail") != 0) {
    json_decref(o);
    return hoist_err_set(err, EINVAL, "config %s: on_restart must be \"fail\" or \"requeue\"",
                         path);
  }
  json_decref(o);
  return 0;
}

HOIST_WUR static int parse_listen(const char *listen, struct sockaddr_storage *ss,
                                  hoist_err **err) {
  memset(ss, 0, sizeof *ss);
  _cleanup_free_ char *copy = hoist_strdup(listen);
  char *colon = strrchr(copy, ':');
  if (!colon)
    return hoist_err_set(err, EINVAL, "listen \"%s\": expected ADDR:PORT", listen);
  *colon = '\0';
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || port < 0 || port > 65535 || end == colon + 1)
    return hoist_err_set(err, EINVAL, "listen \"%s\": bad port", listen);
  char *addr = copy;
  if (*addr == '[' && addr[strlen(addr) - 1] == ']') {
    addr[strlen(addr) - 1] = '\0';
    addr++;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, addr, &a6->sin6_addr) != 1)
      return hoist_err_set(err, EINVAL, "listen \"%s\": bad address", listen);
    return 0;
  }
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  a4->sin_family = AF_INET;
  a4->sin_port = htons((uint16_t)port);
  if (!*addr)
    addr = "0.0.0.0";
  if (inet_pton(AF_INET, addr, &a4->sin_addr) != 1)
    return hoist_err_set(err, EINVAL, "listen \"%s\": bad address", listen);
  return 0;
}

int hoist_server_start(const hoist_server_opts *o, hoist_server **out, int *port, hoist_err **err) {
  if (!o->data_dir)
    return hoist_err_set(err, EINVAL, "serve: no data directory");
  if (hoist_fs_mkdir_p(AT_FDCWD, o->data_dir, 0700, NULL, err) < 0)
    return -1;
  /* builds run in their job's directory: every path they get is absolute */
  _cleanup_free_ char *data = realpath(o->data_dir, NULL);
  if (!data)
    return hoist_err_errno(err, errno, "%s", o->data_dir);
  struct sockaddr_storage ss;
  socklen_t sslen = sizeof ss;
  if (o->listen_fd > 0) {
    if (getsockname(o->listen_fd, (struct sockaddr *)&ss, &sslen) < 0)
      return hoist_err_errno(err, errno, "serve: the listening socket (fd %d)", o->listen_fd);
  } else if (parse_listen(o->listen ? o->listen : "127.0.0.1:8080", &ss, err) < 0) {
    return -1;
  }
  hoist_server *s = hoist_malloc0(sizeof *s);
  pthread_mutex_init(&s->log_lock, NULL);
  _cleanup_free_ char *bin = NULL;
  if (load_config(o->config_file, &s->cfg, &s->front, err) < 0)
    goto fail;
  if (s->cfg.auth && strcmp(s->cfg.auth, "couchdb") == 0) {
    if (server_auth_couchdb_new(s->cfg.couchdb_url, s->cfg.couchdb_prefix, s->cfg.couchdb_user,
                                s->cfg.couchdb_password, &s->auth, err) < 0)
      goto fail;
  } else if (server_auth_file_new(data, &s->auth, err) < 0) {
    goto fail;
  }
  s->cfg.registry_host_override = o->registry_host ? hoist_strdup(o->registry_host) : NULL;
  if (o->db) {
    free(s->cfg.db);
    s->cfg.db = hoist_strdup(o->db);
  }
  if (o->no_strict_user_check)
    s->cfg.strict_user = false;
  if (o->executor)
    s->cfg.exec.kube = strcmp(o->executor, "kubernetes") == 0;
  s->cfg.kube_host = o->kube_host;
  s->cfg.kube_port = o->kube_port;
  s->cfg.kube_exec_environ = o->exec_environ;
  hoist_registry_opts ro = o->registry;
  ro.insecure = (const char *const *)s->cfg.insecure;
  if (s->cfg.registry_secret)
    ro.secret_file = s->cfg.registry_secret;
  if (hoist_registry_new(&ro, &s->registry, err) < 0)
    goto fail;
  s->registry_opts = ro;
  s->cfg.registry_opts = &s->registry_opts;
  int workers = o->workers > 0 ? o->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (o->hoist_bin)
    bin = hoist_strdup(o->hoist_bin);
  else {
    char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n < 0) {
      hoist_err_errno(err, errno, "readlink /proc/self/exe");
      goto fail;
    }
    path[n] = '\0';
    bin = hoist_strdup(path);
  }
  /* each build gets its share of the cores unless the config says */
  if (!s->cfg.sandbox.cpu_millis) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    s->cfg.sandbox.cpu_millis = (uint64_t)(cores > 0 ? cores : 1) * 1000 / (uint64_t)workers;
    if (s->cfg.sandbox.cpu_millis < 100)
      s->cfg.sandbox.cpu_millis = 100;
  }
  /* refuse to start rather than fail every build */
  hoist_sandbox_opts check = s->cfg.sandbox;
  check.tool_path = o->tool_path;
  if (hoist_sandbox_check(&check, err) < 0) {
    hoist_err_wrap(err, "serve: builds cannot be sandboxed on this host");
    goto fail;
  }
  if (server_jobs_open(data, &s->cfg, workers, bin, &s->jobs, err) < 0)
    goto fail;
  char *jobs_dir = hoist_asprintf("%s/jobs", data);
  int wr = server_logwatch_start(jobs_dir, &s->logwatch, err);
  free(jobs_dir);
  if (wr < 0)
    goto fail;
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO |
                   MHD_USE_ERROR_LOG | MHD_USE_SUPPRESS_DATE_NO_CLOCK | MHD_ALLOW_SUSPEND_RESUME;
  if (ss.ss_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  if (o->tls_cert || o->tls_key) {
    size_t l1, l2;
    if (!o->tls_cert || !o->tls_key) {
      hoist_err_set(err, EINVAL, "serve: a TLS certificate and its key go together");
      goto fail;
    }
    if (hoist_fs_read_file(AT_FDCWD, o->tls_cert, 1 << 20, &s->tls_cert, &l1, err) < 0 ||
        hoist_fs_read_file(AT_FDCWD, o->tls_key, 1 << 20, &s->tls_key, &l2, err) < 0)
      goto fail;
    flags |= MHD_USE_TLS;
    if (o->tls_client_ca &&
        hoist_fs_read_file(AT_FDCWD, o->tls_client_ca, 1 << 20, &s->tls_ca, &l1, err) < 0)
      goto fail;
  } else if (o->tls_client_ca) {
    hoist_err_set(err, EINVAL, "serve: a client CA needs a TLS certificate and key");
    goto fail;
  }
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  unsigned threads = o->threads > 0 ? (unsigned)o->threads : cores > 2 ? (unsigned)cores : 2;
  /* a shared store's reads wait on the network: more threads keep the cores busy */
  if (o->threads <= 0 && strcmp(server_jobs_driver(s->jobs), "postgres") == 0)
    threads *= 4;
  /* a given socket: a duplicate for the daemon, which closes it when it stops
   * (and on some of its start's failures, not all: the duplicate may leak then) */
  int lfd = -1;
  if (o->listen_fd > 0 && (lfd = fcntl(o->listen_fd, F_DUPFD_CLOEXEC, 3)) < 0) {
    hoist_err_errno(err, errno, "serve: the listening socket (fd %d)", o->listen_fd);
    goto fail;
  }
  struct MHD_OptionItem where[] = {
      lfd >= 0 ? (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, lfd, NULL}
               : (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss},
      {MHD_OPTION_END, 0, NULL}};
  s->d = MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, MHD_OPTION_ARRAY,
      where, MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
      MHD_OPTION_CONNECTION_LIMIT, MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
      s->front.max_per_address, MHD_OPTION_CONNECTION_TIMEOUT, s->front.request_timeout,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16 * 1024,
      s->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, s->tls_cert,
      MHD_OPTION_HTTPS_MEM_KEY, s->tls_key, s->tls_ca ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END,
      s->tls_ca, MHD_OPTION_END);
  if (!s->d && lfd >= 0) {
    hoist_err_set(err, EIO, "serve: cannot serve on the listening socket (fd %d)", o->listen_fd);
    goto fail;
  }
  if (!s->d) {
    hoist_err_set(err, EADDRINUSE, "serve: cannot listen on %s",
                  o->listen ? o->listen : "127.0.0.1:8080");
    goto fail;
  }
  if (port) {
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    *port = di ? di->port : 0;
  }
  *out = s;
  return 0;
fail:
  hoist_server_stop(s);
  return -1;
}

void hoist_server_stop(hoist_server *s) {
  if (!s)
    return;
  /* followers are resumed and end: the daemon must find none suspended */
  server_logwatch_stop(s->logwatch);
  if (s->d)
    MHD_stop_daemon(s->d);
  server_logwatch_free(s->logwatch);
  server_jobs_close(s->jobs);
  if (s->auth)
    s->auth->free(s->auth);
  hoist_registry_free(s->registry);
  config_clear(&s->cfg);
  free(s->tls_cert);
  free(s->tls_key);
  free(s->tls_ca);
  pthread_mutex_destroy(&s->log_lock);
  free(s);
}
