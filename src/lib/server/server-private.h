/* server: what its files share. */
#ifndef HOIST_SERVER_PRIVATE_H
#define HOIST_SERVER_PRIVATE_H

#include <pthread.h>
#include <sys/types.h>

#include "hoist/kube.h"
#include "hoist/sandbox.h"
#include "hoist/server.h"
#include "hoist/sign.h"

/* doc/api/openapi.json, its bytes as shipped (a NUL after them, not counted):
 * made at build time by scripts/embed.py. */
extern const unsigned char server_openapi_json[];
extern const size_t server_openapi_json_len;

/* UTF-8 without NUL, overlong forms or surrogates. */
bool server_utf8_text(const unsigned char *s, size_t n);

/* ------------------------------------------------------------ auth */

/* Who a request is: login and the user's env (REGISTRY_HOST, ...). */
typedef struct server_user {
  char login[128];
  json_t *env; /* owned reference, may be NULL */
} server_user;

void server_user_clear(server_user *u);

/* An authenticator: checks uuid and key, fills *user. Returns 1 accepted,
 * 0 refused, negative on an internal failure (reported in err). */
typedef struct server_auth {
  int (*check)(struct server_auth *a, const char *uuid, const char *key, server_user *user,
               hoist_err **err);
  void (*free)(struct server_auth *a);
} server_auth;

/* The `file` authenticator over DATA/tokens.json, reloaded on change. */
int server_auth_file_new(const char *data_dir, server_auth **out, hoist_err **err) HOIST_WUR;

/* The `couchdb` authenticator: subjects and users_metadata databases under
 * url with the name prefix ("nuvolaris_"), read as user:password. */
int server_auth_couchdb_new(const char *url, const char *prefix, const char *user,
                            const char *password, server_auth **out, hoist_err **err) HOIST_WUR;

/* ------------------------------------------------------------ jobs */

/* The config's `executor` section: where builds run. */
typedef struct server_exec_config {
  bool kube;                                                     /* kind kubernetes (else local) */
  char *namespace;                                               /* NULL: the kubeconfig's/pod's */
  char *image;                                                   /* hoist's image (kubernetes) */
  char *kubeconfig, *context;                                    /* NULL: in-cluster */
  char *cpu_request, *cpu_limit, *memory_request, *memory_limit; /* NULL: none */
  char **node_selector;                                          /* KEY=VALUE, NULL-terminated */
  json_t *tolerations;                                           /* a list, or NULL */
  char *service_account;
  int profile;     /* hoist_kube_profile */
  long ttl_s;      /* ttlSecondsAfterFinished */
  long deadline_s; /* activeDeadlineSeconds; 0: build_timeout + the transfers' 600 s */
} server_exec_config;

/* The config's `openserverless` section: the drop-in for the OpenServerless
 * deployer (openserverless.c). */
typedef enum { SERVER_OPS_DETECT = 0, SERVER_OPS_ON, SERVER_OPS_OFF } server_ops_mode;
typedef struct server_ops_config {
  server_ops_mode mode; /* the key absent: detected in a cluster */
  char *namespace;      /* the platform's: ConfigMap config, the registry Secrets */
  char *registry;       /* the last resort push host */
  char *pull_secret;    /* the Secret of the push credentials users do not name */
  bool user_secrets;    /* users may name a Secret in REGISTRY_SECRET */
} server_ops_config;

typedef struct server_config {
  char *registry_host;          /* push host, or NULL: embedded layout */
  char *registry_host_override; /* hoist_server_opts.registry_host: over the users' too */
  char *registry_pull_host;     /* host the status names; NULL: registry_host */
  char *registry_creds;         /* user:pass */
  char *registry_secret;        /* dockerconfigjson file */
  char **insecure;              /* NULL-terminated */
  /* sign_key (and sign_key_password_file): every image a build pushes is
   * signed with it once the build succeeded (sign.h); NULL: none. */
  hoist_sign_key *sign_key;
  /* The service's registry client options, for the client a signature is
   * pushed with (the push host's credentials put in). */
  const hoist_registry_opts *registry_opts;
  bool strict_user;
  int per_user_limit;
  hoist_restart_policy restart;
  unsigned build_timeout; /* seconds a build's install may take */
  /* What every build's sandbox is told: a user namespace on a subordinate
   * range, the network, the limits (a cgroup required), the loopback ports
   * of allowed mirrors, the ranges and cgroup parent when configured. */
  hoist_sandbox_opts sandbox;
  hoist_sandbox_subids subids;
  uint16_t *allow_ports;
  char *cgroup_parent;
  uint64_t max_log_bytes;  /* a job's log; past it lines are dropped (the cut marked) */
  bool log_overflow_fails; /* ...or the build is stopped and fails */
  char **allowed_sources;  /* repository patterns users may extend, NULL-terminated */
  int per_user_queue;      /* queued builds per user */
  char *auth;              /* "file" (default) or "couchdb" */
  char *couchdb_url;       /* couchdb: http://HOST:PORT */
  char *couchdb_prefix;    /* couchdb: database name prefix */
  char *couchdb_user, *couchdb_password;
  char *db;             /* the job store: NULL (DATA/jobs.db), sqlite:PATH, postgres://... */
  double lease_seconds; /* a shared store's claim lease, renewed every third of it */
  double poll_seconds;  /* an idle worker's look at a shared store, behind notifications */
  int registry_cache;   /* builds share a cache in the user's registry namespace: 1 yes, 0 no,
                         * -1 unset (yes with the Kubernetes executor) */
  /* every build's image gets its SLSA provenance (naming the requesting
   * user) and its SBOM, attached as attest_mode says ("index" or
   * "referrer") */
  bool attestations;
  char *attest_mode;
  server_exec_config exec;
  server_ops_config ops;
  const char *kube_host, *kube_port;    /* in-cluster (hoist_server_opts) */
  const char *const *kube_exec_environ; /* (hoist_server_opts) */
} server_config;

/* A client of the Kubernetes API server the config names: the executor's
 * kubeconfig (and context), else the pod's service account (in-cluster). */
int server_kube_connect(const server_config *cfg, hoist_kube **out, hoist_err **err) HOIST_WUR;

/* Reads the `openserverless` section of config object o (NULL: none) into c:
 * true, false, or {namespace, registry, pull_secret, user_secrets}. An error
 * names the setting. */
int server_config_ops(json_t *o, server_config *c, hoist_err **err) HOIST_WUR;
void server_config_ops_clear(server_config *c);

typedef struct server_ops server_ops;
/* The drop-in, or *out NULL when it is off (or, undecided by the config,
 * not detected: no API server at hand, in a cluster or the executor's
 * kubeconfig, or no ConfigMap config in the platform's namespace). */
int server_ops_open(const server_config *cfg, server_ops **out, hoist_err **err) HOIST_WUR;
void server_ops_free(server_ops *o);
/* The push host after the process's, the user's and the config's: the
 * registry_host annotation of ConfigMap config, else the configured last
 * resort. An API server out of reach fails with EHOSTDOWN. */
int server_ops_registry_host(server_ops *o, char **host, hoist_err **err) HOIST_WUR;
/* configmap's registry_host annotation, trimmed, else fallback (malloc'd). */
char *server_ops_host_of(json_t *configmap, const char *fallback);
/* The decoded .dockerconfigjson of Secret name (NULL: the pull secret) of
 * the platform's namespace; refused for a name when user_secrets is false,
 * or a Secret of another type. */
int server_ops_dockerconfig(server_ops *o, const char *name, char **data, size_t *len,
                            hoist_err **err) HOIST_WUR;

/* Reads the `executor` section of config object o (NULL: none) into c:
 * kind ("local" | "kubernetes"), namespace, image, kubeconfig, context,
 * resources {requests, limits: {cpu, memory}}, node_selector {KEY: VALUE},
 * tolerations, service_account, pod_security ("userns" | "no-userns"),
 * ttl_seconds_after_finished, active_deadline_seconds; an unknown key is refused. An error names
 * the setting. */
int server_config_executor(json_t *o, server_config *c, hoist_err **err) HOIST_WUR;
void server_config_executor_clear(server_config *c);

/* Reads allowed_sources and per_user_queue of config object o (NULL: none)
 * into c. An error names the setting. */
int server_config_admit(json_t *o, server_config *c, hoist_err **err) HOIST_WUR;
void server_config_admit_clear(server_config *c);
/* The caller's namespace: the repository named as the login (lowercased) or
 * below it. */
bool server_in_namespace(const char *login, const char *repo);
/* The repository of login's registry build cache on the push host:
 * <login, lowercased>/SERVER_CACHE_REPO (malloc'd). */
#define SERVER_CACHE_REPO "hoist-build-cache"

char *server_cache_repo(const char *login);
/* Whether repo is login's build cache: its entries are not images, so the
 * catalog leaves it out. */
bool server_is_cache_repo(const char *login, const char *repo);
/* Whether login may extend source: an image of their own namespace on the
 * push host (NULL: none), or one of a repository an allowed_sources pattern
 * matches (a glob whose '*' stays within a path component). Otherwise false
 * and the refusal (403, naming the rule; 400 for a source that does not
 * parse) in *why. */
bool server_source_allowed(const server_config *c, const char *login, const char *push_host,
                           const char *source, hoist_refusal *why);

/* Reads the builds' sandbox settings of config object o (NULL: none) into c:
 * build_timeout, build_memory, build_pids, build_cpus, max_layer_bytes,
 * build_tmp_size, build_network, build_allow, subuid, subgid, cgroup_parent,
 * build_process_sandbox (false: --no-process-sandbox),
 * and max_log_bytes, log_overflow ("continue" | "fail").
 * An error names the setting. */
int server_config_sandbox(json_t *o, server_config *c, hoist_err **err) HOIST_WUR;
void server_config_sandbox_clear(server_config *c);
/* The `hoist build` options that give a build c's sandbox, NULL-terminated;
 * the caller frees with hoist_strfreev. */
char **server_sandbox_args(const server_config *c);

typedef struct server_jobs server_jobs;

int server_jobs_open(const char *data_dir, const server_config *cfg, int workers,
                     const char *hoist_bin, server_jobs **out, hoist_err **err) HOIST_WUR;
void server_jobs_close(server_jobs *j);

/* User u's registry: the push host by the precedence (the process's
 * REGISTRY_HOST, the user's, the config's registry_host, with the
 * OpenServerless drop-in its ConfigMap's, else none: *host NULL) and the
 * host the status names (*pull, NULL: the push host's). */
int server_jobs_registry(server_jobs *j, const server_user *u, char **host, char **pull,
                         hoist_err **err) HOIST_WUR;
/* Whether the OpenServerless drop-in is on. */
bool server_jobs_openserverless(const server_jobs *j);
/* The user:password for host from u's REGISTRY_SECRET or the service's
 * (*userpass NULL: none, or a token the registry client takes otherwise). */
int server_jobs_registry_auth(server_jobs *j, const server_user *u, const char *host,
                              char **userpass, hoist_err **err) HOIST_WUR;

/* Queues a build (or finds an identical one in flight). *id, *job_name are
 * caller-freed; *shared tells an existing job was returned. Returns 1 with
 * *why filled when the build is refused: a source the user may not extend
 * (403), or per_user_queue builds of the user already queued (429). */
int server_jobs_submit(server_jobs *j, const server_user *u, const hoist_build_request *req,
                       char **id, char **job_name, bool *shared, hoist_refusal *why,
                       hoist_err **err) HOIST_WUR;

/* Status of one of user's jobs as a JSON object; *found false when the id is
 * unknown or not user's. */
int server_jobs_status(server_jobs *j, const char *user, const char *id, json_t **out, bool *found,
                       hoist_err **err) HOIST_WUR;
/* user's jobs, newest first. */
int server_jobs_list(server_jobs *j, const char *user, json_t **out, hoist_err **err) HOIST_WUR;
/* Removes user's finished jobs older than hours; *n removed. */
int server_jobs_cleanup(server_jobs *j, const char *user, double hours, int *n,
                        hoist_err **err) HOIST_WUR;
/* Cancels a queued or running job: 1 canceled, 0 not found, 2 already done. */
int server_jobs_cancel(server_jobs *j, const char *user, const char *id, hoist_err **err) HOIST_WUR;
/* *found: whether job id is user's. */
int server_jobs_log_check(server_jobs *j, const char *user, const char *id, bool *found,
                          hoist_err **err) HOIST_WUR;
/* A reader of the log of a job already checked to be the caller's; reads
 * from off, at most max bytes into buf, *n 0 at its end (so far). */
typedef struct store_log store_log;
int server_jobs_log_open(server_jobs *j, const char *id, store_log **out,
                         hoist_err **err) HOIST_WUR;
int server_jobs_log_read(server_jobs *j, store_log *l, uint64_t off, char *buf, size_t max,
                         size_t *n, hoist_err **err) HOIST_WUR;
void server_jobs_log_close(server_jobs *j, store_log *l);
/* Whether job id has ended (or cannot be read: a follower stops). */
bool server_jobs_done(server_jobs *j, const char *id);
/* Whether the job store answers (/healthz). */
bool server_jobs_healthy(server_jobs *j);
/* Whether what runs the builds answers (the Kubernetes API server). */
bool server_jobs_executor_healthy(server_jobs *j);
/* "sqlite" or "postgres". */
const char *server_jobs_driver(server_jobs *j);
/* Prometheus text of the job metrics, appended to b; per_user adds the
 * jobs by user and state (hoist_builds_by_user). */
int server_jobs_metrics(server_jobs *j, bool per_user, hoist_buf *b, hoist_err **err) HOIST_WUR;

/* ------------------------------------------------------------ followed logs */

/* Followers of jobs' logs (logs?follow=1) wait suspended, holding no thread:
 * one watcher thread resumes them when their job's log changes, and every
 * second anyway. The daemon must allow suspend and resume. */
typedef struct server_logwatch server_logwatch;
/* A follower's registration with the watcher. */
typedef struct server_logwait server_logwait;
struct MHD_Connection;

/* Starts the watcher of the job directories under jobs_dir. */
int server_logwatch_start(const char *jobs_dir, server_logwatch **out, hoist_err **err) HOIST_WUR;

/* For a follower's content reader, in the daemon's thread of c, when the log
 * of job id has nothing more to read and the job runs. *slot is the
 * follower's registration: NULL at first, made here, ended by
 * server_logwatch_leave. Returns 1: read again (the log may have grown since
 * the last read); 0: c is suspended, the reader returns 0 and is called again
 * when the log changes; -1: end the answer (the client went away, or the
 * server stops). */
int server_logwatch_wait(server_logwatch *w, struct MHD_Connection *c, const char *id,
                         server_logwait **slot);

/* Forgets a follower (NULL: none), from its answer's free callback: it is
 * never resumed after. */
void server_logwatch_leave(server_logwatch *w, server_logwait *wait);

/* Ends the watcher thread, resumes every suspended follower and makes every
 * later wait end its answer: call before MHD_stop_daemon (which must find no
 * connection suspended). NULL: nothing. */
void server_logwatch_stop(server_logwatch *w);

/* Stops (if not yet) and frees the watcher, after MHD_stop_daemon. */
void server_logwatch_free(server_logwatch *w);

#endif
