/*
 * server: the deployer service behind `hoist serve`.
 *
 * An HTTP API (libmicrohttpd, thread pool) that accepts build requests, runs
 * each as a child `hoist build` process in its own process group with its
 * output in the job's log, and keeps the jobs in a job store: SQLite (WAL)
 * under the data directory, or PostgreSQL shared by several replicas. It owns:
 *
 * - the data directory: jobs.db (job records), jobs/<id>/ (the job's
 *   requirement file, log and build output), tokens.json (the `file`
 *   authenticator's tokens), images/ (the embedded OCI layout target);
 * - authentication: the `authorization` header as `Basic base64(uuid:key)`,
 *   bare `base64(uuid:key)` or raw `uuid:key`, checked against the tokens
 *   file (reloaded when it changes; keys stored as SHA-256, compared in
 *   constant time);
 * - request validation: every limit and grammar of the wire protocol is
 *   checked before anything is queued or written;
 * - the worker pool: N workers, at most per_user_limit running builds per
 *   user, identical in-flight requests sharing one job; on start, jobs left
 *   `running` by a previous process become failed ("server restarted") or
 *   are queued again.
 *
 * The parsers of untrusted input (authorization header, start and cleanup
 * bodies) are exposed for tests and fuzzing.
 */
#ifndef HOIST_SERVER_H
#define HOIST_SERVER_H

#include <jansson.h>

#include "hoist/core.h"
#include "hoist/limits.h"
#include "hoist/registry.h"

/* The size caps of requests (HOIST_SERVER_MAX_*) are in hoist/limits.h. */
#define HOIST_SERVER_JOB_NAME_MAX 63 /* a Kubernetes object name */

/* ------------------------------------------------------------ parsers */

/* Splits an authorization header value into the OpenWhisk key's uuid and
 * key. Accepts `Basic base64(uuid:key)`, bare `base64(uuid:key)` and raw
 * `uuid:key`. Any other form (empty parts, control characters, bad base64,
 * over HOIST_SERVER_MAX_AUTH) is an error of code HOIST_E_AUTH. The caller
 * frees *uuid and *key. */
HOIST_EXPORT int hoist_server_parse_authorization(const char *header, char **uuid, char **key,
                                                  hoist_err **err) HOIST_WUR;

/* A build request, validated. */
typedef struct hoist_build_request {
  char *source; /* as given, a valid image reference */
  char *target; /* "user:tag" */
  char *target_user;
  char *target_tag;
  char *kind;
  unsigned char *file; /* decoded requirement file, or NULL */
  size_t file_len;
  char file_digest[72]; /* "sha256:<hex>" of file, or "" */
} hoist_build_request;

/* A refusal: the HTTP status and the wire message. */
typedef struct hoist_refusal {
  int status;
  char message[512];
} hoist_refusal;

/* Validates a build/start body for the caller login. kinds is a
 * NULL-terminated list of known kinds; strict_user requires the target's
 * user to equal the login (lowercased). On refusal returns -1 and fills
 * *why; never allocates on refusal. */
HOIST_EXPORT int hoist_server_parse_start(const char *body, size_t len, const char *login,
                                          const char *const *kinds, bool strict_user,
                                          hoist_build_request *out, hoist_refusal *why);
HOIST_EXPORT void hoist_build_request_clear(hoist_build_request *r);

/* Validates a build/cleanup body (may be empty: 24 hours). max_age_hours is
 * a non-negative number or numeric string. */
HOIST_EXPORT int hoist_server_parse_cleanup(const char *body, size_t len, double *hours,
                                            hoist_refusal *why);

/* The kinds a build accepts, NULL-terminated. */
HOIST_EXPORT const char *const *hoist_server_kinds(void);

/* ---------------------------------------------------------- tokens */

/* Adds login to the tokens file DATA/tokens.json (created 0600 if absent)
 * with a new random uuid and key; *uuid_key (caller frees) is "uuid:key",
 * the only time the key exists in clear. */
HOIST_EXPORT int hoist_server_token_add(const char *data_dir, const char *login, char **uuid_key,
                                        hoist_err **err) HOIST_WUR;

/* ---------------------------------------------------------- server */

typedef enum {
  HOIST_RESTART_FAIL = 0, /* running jobs of a dead server become failed */
  HOIST_RESTART_REQUEUE = 1,
} hoist_restart_policy;

typedef struct hoist_server_opts {
  const char *listen;      /* "ADDR:PORT"; default 127.0.0.1:8080 */
  int listen_fd;           /* > 0: a listening TCP socket to serve on instead of binding
                            * listen (socket activation: systemd's start at fd 3). The
                            * caller keeps it; the server serves on a duplicate of it */
  const char *data_dir;    /* required */
  const char *config_file; /* optional JSON, see README */
  int workers;             /* builds at once; 0: number of cores */
  int threads;             /* HTTP threads; 0: 4 */
  const char *hoist_bin;   /* the hoist binary for builds; NULL: /proc/self/exe */
  const char *tls_cert, *tls_key, *tls_client_ca;
  /* What the caller's environment says (the library reads none; hoist
   * serve fills these as README "Deployer service" describes): */
  const char *registry_host;    /* push host over the users' and the config's ($REGISTRY_HOST) */
  bool no_strict_user_check;    /* the config's strict_user_check off ($STRICT_USER_CHECK=false) */
  hoist_registry_opts registry; /* the service's own registry client; the config's
                                 * insecure_registries and registry_secret replace its */
  const char *tool_path;        /* hoist_sandbox_opts.tool_path of the start check */
  const char *db;               /* the job store over the config's `db`: sqlite:PATH or
                                 * postgres://... (README "Running several replicas") */
  const char *executor;         /* "local" | "kubernetes" over the config's executor.kind */
  const char *kube_host;        /* in-cluster: KUBERNETES_SERVICE_HOST, _PORT */
  const char *kube_port;
  const char *const *exec_environ; /* what a kubeconfig's exec plugin inherits */
} hoist_server_opts;

typedef struct hoist_server hoist_server;

/* Opens the job store, recovers jobs of a previous process, starts the
 * workers and the HTTP listener (on opts->listen_fd when given, else bound to
 * opts->listen). *port (optional) receives the port it listens on. */
HOIST_EXPORT int hoist_server_start(const hoist_server_opts *opts, hoist_server **out, int *port,
                                    hoist_err **err) HOIST_WUR;
/* Stops accepting, cancels running builds, waits for the workers. */
HOIST_EXPORT void hoist_server_stop(hoist_server *s);

/* Brings the job store db (NULL: DATA_DIR/jobs.db; sqlite:PATH,
 * postgres://...) to this hoist's schema version and closes it: what
 * hoist_server_start does first, as a step of its own. */
HOIST_EXPORT int hoist_server_migrate(const char *db, const char *data_dir,
                                      hoist_err **err) HOIST_WUR;

#endif
