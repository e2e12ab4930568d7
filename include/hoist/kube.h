/*
 * kube: a client of the Kubernetes API, as much of it as hoist's builds in a
 * cluster need, and the objects hoist sends.
 *
 * - Configuration (hoist_kube_config): in-cluster (the service account's token,
 *   CA and namespace files, the API server's host and port that the caller read
 *   from KUBERNETES_SERVICE_HOST/PORT) or a kubeconfig file (its current or a
 *   named context: server, CA file or data, token or token file, client
 *   certificate and key as files or data, an `exec` credential plugin of
 *   client.authentication.k8s.io/v1 or v1beta1), parsed with libyaml.
 * - The client (hoist_kube): create, get, list by label selector, watch
 *   (newline-delimited JSON events, bookmarks, resourceVersion), delete with
 *   propagationPolicy=Background, and a pod's log followed as it is written.
 *   A token file is read again whenever it changes (bound service-account
 *   tokens rotate); an exec plugin's credential is kept until it expires or the
 *   server answers 401. One client may serve several threads: a request holds
 *   no lock while it waits on the network.
 * - The objects (hoist_kube_job_build, hoist_kube_secret_build): a build's
 *   batch/v1 Job and the Secret owned by it, as JSON.
 *
 * Errors carry what the API server said (its Status message). Codes a caller
 * acts on: HOIST_KUBE_EXISTS (409 on create: adopt the object),
 * HOIST_KUBE_NOT_FOUND (404), HOIST_KUBE_GONE (410: the watch's
 * resourceVersion is compacted away, list again), HOIST_E_AUTH (401, 403),
 * ECONNREFUSED/ETIMEDOUT/EHOSTUNREACH when the server cannot be reached.
 *
 * The module never reads the environment: the caller passes what it read
 * (the in-cluster host and port, the environment an exec plugin inherits).
 * It keeps no state of its own on disk; a crash leaves in the cluster what
 * was created there (Jobs, the Secrets they own), which the caller finds
 * again by the labels hoist puts on them (HOIST_KUBE_MANAGED_BY).
 */
#ifndef HOIST_KUBE_H
#define HOIST_KUBE_H

#include <errno.h>
#include <jansson.h>

#include "hoist/core.h"

#define HOIST_KUBE_EXISTS EEXIST    /* 409 AlreadyExists on create */
#define HOIST_KUBE_NOT_FOUND ENOENT /* 404 */
#define HOIST_KUBE_GONE ESTALE      /* 410 Gone: resourceVersion too old; relist */

/* Where the service account's files are in a pod. */
#define HOIST_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* A resolved configuration: where the API server is and how to prove who we
 * are. Every string is owned by the config (hoist_kube_config_free). */
typedef struct hoist_kube_config {
  char *server;    /* https://host:port (no trailing slash) */
  char *namespace; /* the context's or the pod's namespace; "default" if none */
  char *ca_file;   /* a PEM file to verify the server with, or NULL */
  char *ca_pem;    /* PEM bytes (certificate-authority-data), or NULL */
  bool insecure;   /* insecure-skip-tls-verify */
  char *tls_server_name;
  char *token;                /* a bearer token, or NULL */
  char *token_file;           /* a file holding it, read again as it changes, or NULL */
  char *cert_file, *key_file; /* client certificate and key files, or NULL */
  char *cert_pem, *key_pem;   /* or their PEM bytes */
  char **exec_argv;           /* an exec plugin: command and arguments, or NULL */
  char **exec_env;            /* NAME=VALUE added to its environment */
  char *exec_api_version;     /* client.authentication.k8s.io/v1 (or v1beta1) */
} hoist_kube_config;

HOIST_EXPORT void hoist_kube_config_free(hoist_kube_config *c);

/* In-cluster configuration. host and port are KUBERNETES_SERVICE_HOST and
 * KUBERNETES_SERVICE_PORT as the caller read them (an IPv6 host is bracketed
 * here); dir is where the token, ca.crt and namespace files are
 * (HOIST_KUBE_SA_DIR when NULL). The token file is only checked to be
 * readable: the client reads it per request as it changes. */
HOIST_EXPORT int hoist_kube_config_in_cluster(const char *host, const char *port, const char *dir,
                                              hoist_kube_config **out, hoist_err **err) HOIST_WUR;

/* A kubeconfig's text, resolved for context (its current-context when NULL).
 * name names it in messages; base_dir is what relative paths in it are
 * relative to (the file's directory). Untrusted input: the parser has a fuzz
 * target. The files it names are not read here. */
HOIST_EXPORT int hoist_kube_config_parse(const char *text, size_t len, const char *name,
                                         const char *base_dir, const char *context,
                                         hoist_kube_config **out, hoist_err **err) HOIST_WUR;

/* hoist_kube_config_parse on the file at path (at most HOIST_KUBE_CONFIG_MAX
 * bytes). */
HOIST_EXPORT int hoist_kube_config_load(const char *path, const char *context,
                                        hoist_kube_config **out, hoist_err **err) HOIST_WUR;
#define HOIST_KUBE_CONFIG_MAX (4u << 20)

/* ------------------------------------------------------------- the client */

typedef struct hoist_kube hoist_kube;

typedef struct hoist_kube_options {
  const char *const *exec_environ; /* the environment an exec plugin inherits (NULL: none) */
  long connect_timeout_ms;         /* 0: 10 s */
  long request_timeout_ms;         /* for requests that are not streams; 0: 60 s */
} hoist_kube_options;

/* A client for cfg (copied; cfg may be freed after). opts may be NULL. */
HOIST_EXPORT int hoist_kube_new(const hoist_kube_config *cfg, const hoist_kube_options *opts,
                                hoist_kube **out, hoist_err **err) HOIST_WUR;
HOIST_EXPORT void hoist_kube_free(hoist_kube *k);
/* Ends every request of k in flight (streams included) within a second, and
 * refuses later ones, with ECANCELED: for a service shutting down while
 * watches and log streams wait on the network. Safe from any thread. */
HOIST_EXPORT void hoist_kube_interrupt(hoist_kube *k);

/* The namespace objects go to when a call's ns is NULL. */
HOIST_EXPORT const char *hoist_kube_namespace(const hoist_kube *k);

/* A kind of object: its group/version and its plural resource name. */
typedef struct hoist_kube_res {
  const char *group_version; /* "v1" (the core group) or "batch/v1" */
  const char *plural;        /* "jobs", "pods", "secrets", "configmaps" */
} hoist_kube_res;

HOIST_EXPORT extern const hoist_kube_res HOIST_KUBE_JOBS, HOIST_KUBE_PODS, HOIST_KUBE_SECRETS,
    HOIST_KUBE_CONFIGMAPS;

/* POSTs obj into namespace ns (NULL: the client's). *out (may be NULL) gets
 * the object as the server stored it. A 409 fails with HOIST_KUBE_EXISTS. */
HOIST_EXPORT int hoist_kube_create(hoist_kube *k, const hoist_kube_res *r, const char *ns,
                                   json_t *obj, json_t **out, hoist_err **err) HOIST_WUR;
HOIST_EXPORT int hoist_kube_get(hoist_kube *k, const hoist_kube_res *r, const char *ns,
                                const char *name, json_t **out, hoist_err **err) HOIST_WUR;
/* The List (items, metadata.resourceVersion) of objects matching selector
 * (NULL: all). */
HOIST_EXPORT int hoist_kube_list(hoist_kube *k, const hoist_kube_res *r, const char *ns,
                                 const char *selector, json_t **out, hoist_err **err) HOIST_WUR;
/* Deletes with propagationPolicy=Background: the garbage collector removes
 * what the object owns (a Job's pods, Secrets owned by the Job). */
HOIST_EXPORT int hoist_kube_delete(hoist_kube *k, const hoist_kube_res *r, const char *ns,
                                   const char *name, hoist_err **err) HOIST_WUR;

/* One watch event: type is ADDED, MODIFIED, DELETED or BOOKMARK; object is
 * borrowed for the call. Returning non-zero ends the watch (hoist_kube_watch
 * then returns 0). */
typedef int (*hoist_kube_watch_fn)(void *arg, const char *type, json_t *object);

/* Watches objects matching selector from resource_version (NULL or "": from
 * now, after synthetic ADDED events for what exists), with bookmarks, for at
 * most timeout_s seconds (0: the server's default). Returns 0 when the server
 * ends the stream or fn asks to stop; -HOIST_KUBE_GONE when the
 * resourceVersion is too old (as the HTTP status or an ERROR event), so the
 * caller lists again and watches from the list's resourceVersion. *last_rv
 * (may be NULL; caller frees) gets the last resourceVersion seen, bookmarks
 * included, to resume from: also when the stream broke (the error then says
 * how), so a watch dropped mid-way resumes without losing an update. */
HOIST_EXPORT int hoist_kube_watch(hoist_kube *k, const hoist_kube_res *r, const char *ns,
                                  const char *selector, const char *resource_version, int timeout_s,
                                  hoist_kube_watch_fn fn, void *arg, char **last_rv,
                                  hoist_err **err) HOIST_WUR;

/* A pod's log (its container, or the only one when NULL), handed to sink as
 * it comes; with follow, until the container ends. sink returning non-zero
 * ends the stream (hoist_kube_pod_log then returns 0). */
typedef int (*hoist_kube_sink)(void *arg, const char *data, size_t n);
HOIST_EXPORT int hoist_kube_pod_log(hoist_kube *k, const char *ns, const char *pod,
                                    const char *container, bool follow, hoist_kube_sink sink,
                                    void *arg, hoist_err **err) HOIST_WUR;

/* ------------------------------------------------------------ the objects */

#define HOIST_KUBE_MANAGED_BY "app.kubernetes.io/managed-by"
#define HOIST_KUBE_JOB_ID_LABEL "hoist.dev/job-id"
#define HOIST_KUBE_NAME_MAX 63

/* The pod security profile of a build. */
typedef enum hoist_kube_profile {
  /* hostUsers: false (a user namespace per pod), procMount: Unmasked, seccomp
   * and AppArmor Unconfined (the sandbox sets up its own), not privileged. */
  HOIST_KUBE_PROFILE_USERNS = 0,
  /* Clusters without user namespaces: the pod keeps the host's users and the
   * runtime's masked /proc; the sandbox then runs without its PID namespace. */
  HOIST_KUBE_PROFILE_NO_USERNS,
} hoist_kube_profile;

/* A build's Job. */
typedef struct hoist_kube_job_spec {
  const char *id;          /* the job id: lowercase letters, digits, '-' */
  const char *namespace;   /* NULL: leave it to the request's */
  const char *image;       /* hoist's image */
  const char *const *args; /* the container's args (after the entrypoint), NULL-terminated */
  long deadline_s;         /* activeDeadlineSeconds (> 0) */
  long ttl_s;              /* ttlSecondsAfterFinished (>= 0) */
  const char *cpu_request, *cpu_limit, *memory_request, *memory_limit; /* NULL: none */
  const char *const *node_selector; /* KEY=VALUE, NULL-terminated, or NULL */
  json_t *tolerations;              /* a JSON array copied as is, or NULL */
  const char *service_account;      /* NULL: the namespace's default */
  hoist_kube_profile profile;
  const char *secret_name;  /* a Secret mounted read-only at secret_mount, or NULL */
  const char *secret_mount; /* NULL: /run/hoist/secret */
} hoist_kube_job_spec;

/* "hoist-build-<id>" into *out (caller frees); fails when id is not a DNS
 * label's characters or the name would pass HOIST_KUBE_NAME_MAX. */
HOIST_EXPORT int hoist_kube_job_name(const char *id, char **out, hoist_err **err) HOIST_WUR;

/* The Job as JSON (*out, a new reference). */
HOIST_EXPORT int hoist_kube_job_build(const hoist_kube_job_spec *spec, json_t **out,
                                      hoist_err **err) HOIST_WUR;

/* A Secret named name holding data (pairs of KEY, VALUE, NULL-terminated;
 * values are base64-encoded here), owned by the Job job_name/job_uid (the
 * garbage collector deletes it with the Job), labelled as the Job is. */
HOIST_EXPORT int hoist_kube_secret_build(const char *name, const char *namespace,
                                         const char *job_id, const char *job_name,
                                         const char *job_uid, const char *const *data, json_t **out,
                                         hoist_err **err) HOIST_WUR;

/* hoist's own checks of a Job or Pod template, for what the schemas miss:
 * names and label values of at most 63 characters, procMount Unmasked only
 * with hostUsers false, never privileged. */
HOIST_EXPORT int hoist_kube_job_check(json_t *job, hoist_err **err) HOIST_WUR;

#endif
