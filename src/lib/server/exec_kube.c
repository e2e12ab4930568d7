/* server: the Kubernetes executor, a build as a batch/v1 Job
 * `hoist-build-<id>` running `hoist build` in hoist's image.
 *
 * start creates the Job (a 409 adopts the one a previous claim made) and a
 * Secret of the same name owned by it, holding the push credentials and the
 * requirement file, mounted at /run/hoist/secret. Two threads per build: a
 * watcher (a watch on the job-id label with bookmarks, a relist on 410 Gone,
 * a resume from the last resourceVersion when the stream breaks) that ends
 * at the Job's Complete or Failed condition or its deletion, and a log
 * follower (pods/log?follow) whose bytes wait in a bounded buffer until
 * wait hands them to the sink. The answer is the container's termination
 * message (`hoist build --termination-log`). cancel and release delete the
 * Job with propagationPolicy=Background: its pod and Secret go with it. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "executor.h"
#include "hoist/fs.h"
#include "hoist/kube.h"
#include "server-private.h"

#define SECRET_MOUNT "/run/hoist/secret"
#define AUTH_KEY "auth.json"
#define TERM_LOG "/dev/termination-log"
#define LOG_BUF_MAX (4u << 20) /* bytes of log held between two waits */
#define LOG_GRACE_S 5.0        /* the log's end awaited after the Job's */
#define WATCH_S 5              /* one watch request's length: the threads' stop check */
#define PROBE_S 5              /* the API server's health probe */

typedef struct kube_exec {
  server_executor base;
  hoist_kube *k;
  const server_exec_config *cfg;
  char **extra;
  long deadline_s;
  atomic_bool up;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool stopping;
  pthread_t prober;
  bool prober_started;
} kube_exec;

struct exec_run {
  kube_exec *x;
  char *id, *name, *selector, *pod_selector;
  pthread_mutex_t lock;
  bool stop;     /* release: the threads end */
  bool deleted;  /* the Job is gone (or its deletion asked) */
  bool job_done; /* Complete, Failed or deleted */
  bool log_done;
  double done_at;
  bool ended;
  int exit_code;
  char *answer;
  char *note; /* a line for the log: why the Job failed */
  char *buf;  /* log bytes not yet handed over */
  size_t len;
  bool cut;
  pthread_t watcher, logger;
  bool watcher_started, logger_started;
};

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------ the config */

static char *dup_string(json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s && *s ? hoist_strdup(s) : NULL;
}

int server_config_executor(json_t *o, server_config *c, hoist_err **err) {
  server_exec_config *e = &c->exec;
  e->ttl_s = 600;
  json_t *x = json_object_get(o, "executor");
  if (!x)
    return 0;
  if (!json_is_object(x))
    return hoist_err_set(err, EINVAL, "executor: expected an object");
  static const char *const known[] = {"kind",
                                      "namespace",
                                      "image",
                                      "kubeconfig",
                                      "context",
                                      "resources",
                                      "node_selector",
                                      "tolerations",
                                      "service_account",
                                      "pod_security",
                                      "ttl_seconds_after_finished",
                                      "active_deadline_seconds"};
  const char *key;
  json_t *val;
  json_object_foreach(x, key, val) {
    bool ok = false;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
      ok = ok || strcmp(key, known[i]) == 0;
    if (!ok)
      return hoist_err_set(err, EINVAL, "executor.%s: not a setting (a misspelling?)", key);
  }
  const char *kind = json_string_value(json_object_get(x, "kind"));
  if (kind && strcmp(kind, "kubernetes") == 0)
    e->kube = true;
  else if (kind && strcmp(kind, "local") != 0)
    return hoist_err_set(err, EINVAL, "executor.kind: expected \"local\" or \"kubernetes\"");
  e->namespace = dup_string(x, "namespace");
  e->image = dup_string(x, "image");
  e->kubeconfig = dup_string(x, "kubeconfig");
  e->context = dup_string(x, "context");
  e->service_account = dup_string(x, "service_account");
  json_t *res = json_object_get(x, "resources");
  if (res && !json_is_object(res))
    return hoist_err_set(err, EINVAL, "executor.resources: expected {requests, limits}");
  json_t *rq = json_object_get(res, "requests"), *lm = json_object_get(res, "limits");
  e->cpu_request = dup_string(rq, "cpu");
  e->memory_request = dup_string(rq, "memory");
  e->cpu_limit = dup_string(lm, "cpu");
  e->memory_limit = dup_string(lm, "memory");
  json_t *ns = json_object_get(x, "node_selector");
  if (ns && !json_is_object(ns))
    return hoist_err_set(err, EINVAL, "executor.node_selector: expected {KEY: VALUE}");
  hoist_strv v = {0};
  json_object_foreach(ns, key, val) {
    if (!json_is_string(val)) {
      hoist_strfreev(hoist_strv_steal(&v));
      return hoist_err_set(err, EINVAL, "executor.node_selector.%s: expected a string", key);
    }
    _cleanup_free_ char *kv = hoist_asprintf("%s=%s", key, json_string_value(val));
    hoist_strv_add(&v, kv);
  }
  e->node_selector = hoist_strv_steal(&v);
  json_t *tol = json_object_get(x, "tolerations");
  if (tol && !json_is_array(tol))
    return hoist_err_set(err, EINVAL, "executor.tolerations: expected a list");
  e->tolerations = json_incref(tol);
  const char *ps = json_string_value(json_object_get(x, "pod_security"));
  if (!ps || strcmp(ps, "userns") == 0)
    e->profile = HOIST_KUBE_PROFILE_USERNS;
  else if (strcmp(ps, "no-userns") == 0)
    e->profile = HOIST_KUBE_PROFILE_NO_USERNS;
  else
    return hoist_err_set(err, EINVAL,
                         "executor.pod_security: expected \"userns\" or \"no-userns\"");
  json_t *dl = json_object_get(x, "active_deadline_seconds");
  if (dl && (!json_is_integer(dl) || json_integer_value(dl) <= 0))
    return hoist_err_set(err, EINVAL, "executor.active_deadline_seconds: expected seconds (> 0)");
  e->deadline_s = dl ? (long)json_integer_value(dl) : 0;
  json_t *ttl = json_object_get(x, "ttl_seconds_after_finished");
  if (ttl && (!json_is_integer(ttl) || json_integer_value(ttl) < 0))
    return hoist_err_set(err, EINVAL,
                         "executor.ttl_seconds_after_finished: expected seconds (0 or more)");
  if (ttl)
    e->ttl_s = (long)json_integer_value(ttl);
  return 0;
}

void server_config_executor_clear(server_config *c) {
  server_exec_config *e = &c->exec;
  free(e->namespace);
  free(e->image);
  free(e->kubeconfig);
  free(e->context);
  free(e->cpu_request);
  free(e->cpu_limit);
  free(e->memory_request);
  free(e->memory_limit);
  hoist_strfreev(e->node_selector);
  json_decref(e->tolerations);
  free(e->service_account);
  memset(e, 0, sizeof *e);
}

/* ------------------------------------------------------------ one build */

/* Appends log bytes for wait (a full buffer drops them, marking the cut). */
static void buf_add(exec_run *r, const char *data, size_t n) {
  pthread_mutex_lock(&r->lock);
  if (r->len + n > LOG_BUF_MAX) {
    r->cut = true;
  } else {
    r->buf = hoist_realloc(r->buf, r->len + n + 1);
    memcpy(r->buf + r->len, data, n);
    r->len += n;
  }
  pthread_mutex_unlock(&r->lock);
}

static bool run_stopping(exec_run *r) {
  pthread_mutex_lock(&r->lock);
  bool s = r->stop;
  pthread_mutex_unlock(&r->lock);
  return s;
}

/* The Job's end from its conditions: 1 ended (r updated), 0 not yet. */
static int job_state(exec_run *r, const char *type, json_t *job) {
  if (type && strcmp(type, "BOOKMARK") == 0)
    return 0;
  const char *name = json_string_value(json_object_get(json_object_get(job, "metadata"), "name"));
  if (!name || strcmp(name, r->name) != 0)
    return 0;
  int code = -1;
  _cleanup_free_ char *note = NULL;
  if (type && strcmp(type, "DELETED") == 0) {
    code = 128 + 15;
    note = hoist_asprintf("hoist serve: Job %s deleted", r->name);
  } else {
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(job, "status"), "conditions"), i, c) {
      const char *t = json_string_value(json_object_get(c, "type"));
      if (!t || strcmp(json_string_value(json_object_get(c, "status")) ?: "", "True") != 0)
        continue;
      if (strcmp(t, "Complete") == 0) {
        code = 0;
      } else if (strcmp(t, "Failed") == 0) {
        code = 1;
        const char *why = json_string_value(json_object_get(c, "reason"));
        const char *msg = json_string_value(json_object_get(c, "message"));
        note = hoist_asprintf("hoist serve: Job %s failed: %s%s%s", r->name, why ? why : "Failed",
                              msg ? ": " : "", msg ? msg : "");
      }
    }
  }
  if (code < 0)
    return 0;
  pthread_mutex_lock(&r->lock);
  if (!r->job_done) {
    r->job_done = true;
    r->done_at = mono_s();
    r->exit_code = code;
    r->note = steal_pointer(&note);
  }
  pthread_mutex_unlock(&r->lock);
  return 1;
}

static int on_event(void *arg, const char *type, json_t *obj) {
  exec_run *r = arg;
  return job_state(r, type, obj) || run_stopping(r);
}

/* The container's exit code and termination message, from the Job's pod. */
static void read_termination(exec_run *r) {
  json_t *list = NULL;
  hoist_err *e = NULL;
  if (hoist_kube_list(r->x->k, &HOIST_KUBE_PODS, r->x->cfg->namespace, r->pod_selector, &list, &e) <
      0) {
    _cleanup_free_ char *t = hoist_err_text(e);
    hoist_err_free(e);
    pthread_mutex_lock(&r->lock);
    if (!r->note)
      r->note = hoist_asprintf("hoist serve: the pod of Job %s: %s", r->name, t);
    pthread_mutex_unlock(&r->lock);
    return;
  }
  json_t *pod = json_array_get(json_object_get(list, "items"), 0);
  json_t *cs =
      json_array_get(json_object_get(json_object_get(pod, "status"), "containerStatuses"), 0);
  json_t *term = json_object_get(json_object_get(cs, "state"), "terminated");
  pthread_mutex_lock(&r->lock);
  if (term) {
    json_t *ec = json_object_get(term, "exitCode");
    const char *msg = json_string_value(json_object_get(term, "message"));
    /* a failed Job's container: its own exit code (a deadline's kill: 1) */
    if (json_is_integer(ec) && r->exit_code == 1 && json_integer_value(ec) > 0)
      r->exit_code = (int)json_integer_value(ec);
    if (msg && !r->answer)
      r->answer = hoist_strdup(msg);
  }
  pthread_mutex_unlock(&r->lock);
  json_decref(list);
}

/* The watcher: list, then watch from the list's resourceVersion; 410: list
 * again; a broken stream: resume from the last resourceVersion seen. */
static void *watcher(void *arg) {
  exec_run *r = arg;
  hoist_kube *k = r->x->k;
  const char *ns = r->x->cfg->namespace;
  _cleanup_free_ char *rv = NULL;
  unsigned fails = 0;
  while (!run_stopping(r)) {
    pthread_mutex_lock(&r->lock);
    bool ended = r->job_done; /* a hard cancel's */
    pthread_mutex_unlock(&r->lock);
    if (ended)
      break;
    hoist_err *e = NULL;
    if (!rv) {
      json_t *list = NULL;
      if (hoist_kube_list(k, &HOIST_KUBE_JOBS, ns, r->selector, &list, &e) < 0)
        goto failed;
      size_t i;
      json_t *job;
      bool done = false;
      json_array_foreach(json_object_get(list, "items"), i, job) {
        if (job_state(r, "MODIFIED", job))
          done = true;
      }
      const char *lrv =
          json_string_value(json_object_get(json_object_get(list, "metadata"), "resourceVersion"));
      rv = hoist_strdup(lrv ? lrv : "");
      if (!done && json_array_size(json_object_get(list, "items")) == 0) {
        /* the Job is gone without our seeing its end */
        json_t *gone = json_pack("{s:{s:s}}", "metadata", "name", r->name);
        done = job_state(r, "DELETED", gone);
        json_decref(gone);
      }
      json_decref(list);
      if (done)
        break;
    }
    char *last = NULL;
    int rc =
        hoist_kube_watch(k, &HOIST_KUBE_JOBS, ns, r->selector, rv, WATCH_S, on_event, r, &last, &e);
    if (last) {
      free(rv);
      rv = last;
    }
    if (rc == -HOIST_KUBE_GONE || (rc < 0 && hoist_err_root_code(e) == HOIST_KUBE_GONE)) {
      hoist_err_free(e);
      free(rv);
      rv = NULL; /* compacted away: list again */
      continue;
    }
    if (rc < 0)
      goto failed;
    fails = 0;
    pthread_mutex_lock(&r->lock);
    bool done = r->job_done;
    pthread_mutex_unlock(&r->lock);
    if (done)
      break;
    continue;
  failed:
    hoist_err_free(e);
    fails++;
    sleep_ms(fails < 10 ? 100L * fails : 1000);
  }
  pthread_mutex_lock(&r->lock);
  bool done = r->job_done;
  pthread_mutex_unlock(&r->lock);
  if (done)
    read_termination(r);
  return NULL;
}

static int log_sink(void *arg, const char *data, size_t n) {
  exec_run *r = arg;
  buf_add(r, data, n);
  return run_stopping(r);
}

/* The log follower: the pod once its container started, then its log as it
 * comes, until the container ends. */
static void *logger(void *arg) {
  exec_run *r = arg;
  hoist_kube *k = r->x->k;
  const char *ns = r->x->cfg->namespace;
  while (!run_stopping(r)) {
    pthread_mutex_lock(&r->lock);
    bool done = r->job_done, late = done && mono_s() - r->done_at > LOG_GRACE_S;
    size_t before = r->len;
    pthread_mutex_unlock(&r->lock);
    if (late)
      break;
    json_t *list = NULL;
    hoist_err *e = NULL;
    if (hoist_kube_list(k, &HOIST_KUBE_PODS, ns, r->pod_selector, &list, &e) < 0) {
      hoist_err_free(e);
      sleep_ms(200);
      continue;
    }
    const char *pod = json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(list, "items"), 0), "metadata"), "name"));
    _cleanup_free_ char *name = pod ? hoist_strdup(pod) : NULL;
    json_decref(list);
    if (!name) {
      if (done)
        break;
      sleep_ms(200);
      continue;
    }
    int rc = hoist_kube_pod_log(k, ns, name, NULL, true, log_sink, r, &e);
    hoist_err_free(e);
    pthread_mutex_lock(&r->lock);
    bool got = r->len > before || r->cut;
    pthread_mutex_unlock(&r->lock);
    /* a stream that gave bytes is not asked again (they would come twice) */
    if (rc == 0 || got)
      break;
    sleep_ms(200); /* the container has not started yet */
  }
  pthread_mutex_lock(&r->lock);
  r->log_done = true;
  pthread_mutex_unlock(&r->lock);
  return NULL;
}

/* Deletes the Job once (Background: its pod and Secret go with it). */
static void delete_job(exec_run *r) {
  pthread_mutex_lock(&r->lock);
  bool was = r->deleted;
  r->deleted = true;
  pthread_mutex_unlock(&r->lock);
  if (was)
    return;
  hoist_err *e = NULL;
  if (hoist_kube_delete(r->x->k, &HOIST_KUBE_JOBS, r->x->cfg->namespace, r->name, &e) < 0 &&
      hoist_err_root_code(e) != HOIST_KUBE_NOT_FOUND) {
    hoist_warn("serve: delete Job %s: %s", r->name, e->msg);
    pthread_mutex_lock(&r->lock);
    r->deleted = false; /* release tries again */
    pthread_mutex_unlock(&r->lock);
  }
  hoist_err_free(e);
}

/* ------------------------------------------------------------ the seam */

HOIST_WUR static int create_objects(kube_exec *x, exec_run *r, const exec_spec *sp,
                                    hoist_err **err) {
  const server_exec_config *c = x->cfg;
  _cleanup_free_ char *auth = NULL, *file = NULL, *file_arg = NULL, *auth_arg = NULL;
  size_t len;
  if (hoist_fs_read_file(AT_FDCWD, sp->authfile, 1 << 20, &auth, &len, err) < 0)
    return -1;
  _cleanup_free_ char *file_key = NULL;
  if (sp->file) {
    if (hoist_fs_read_file(AT_FDCWD, sp->file, 1 << 20, &file, &len, err) < 0)
      return -1;
    _cleanup_free_ char *copy = hoist_strdup(sp->file);
    file_key = hoist_strdup(basename(copy));
    file_arg = hoist_asprintf(SECRET_MOUNT "/%s", file_key);
  }
  auth_arg = hoist_strdup(SECRET_MOUNT "/" AUTH_KEY);

  size_t n_extra = 0;
  while (x->extra[n_extra])
    n_extra++;
  _cleanup_free_ const char **args = hoist_calloc(36 + n_extra, sizeof *args);
  size_t n = 0;
  args[n++] = "build";
  args[n++] = "--source";
  args[n++] = sp->source;
  args[n++] = "--kind";
  args[n++] = sp->kind;
  if (file_arg) {
    args[n++] = "--file";
    args[n++] = file_arg;
    /* attestations are of a build: the copy without a file has none */
    if (sp->attest_mode) {
      args[n++] = "--provenance";
      args[n++] = "--sbom";
      args[n++] = "--attest-mode";
      args[n++] = sp->attest_mode;
      if (sp->user) {
        args[n++] = "--requested-by";
        args[n++] = sp->user;
      }
    }
  }
  args[n++] = "--target";
  args[n++] = sp->dest;
  args[n++] = "--json";
  args[n++] = "--authfile";
  args[n++] = auth_arg;
  args[n++] = "--termination-log";
  args[n++] = TERM_LOG;
  if (sp->cache) {
    args[n++] = "--cache-from";
    args[n++] = sp->cache;
    args[n++] = "--cache-to";
    args[n++] = sp->cache;
  }
  for (size_t i = 0; i < n_extra; i++)
    args[n++] = x->extra[i];
  args[n] = NULL;

  hoist_kube_job_spec js = {
      .id = sp->id,
      .image = c->image,
      .args = args,
      .deadline_s = x->deadline_s,
      .ttl_s = c->ttl_s,
      .cpu_request = c->cpu_request,
      .cpu_limit = c->cpu_limit,
      .memory_request = c->memory_request,
      .memory_limit = c->memory_limit,
      .node_selector = (const char *const *)c->node_selector,
      .tolerations = c->tolerations,
      .service_account = c->service_account,
      .profile = (hoist_kube_profile)c->profile,
      .secret_name = r->name,
      .secret_mount = SECRET_MOUNT,
  };
  json_t *job = NULL, *stored = NULL;
  if (hoist_kube_job_build(&js, &job, err) < 0)
    return -1;
  int rc = hoist_kube_create(x->k, &HOIST_KUBE_JOBS, c->namespace, job, &stored, err);
  json_decref(job);
  if (rc < 0 && hoist_err_root_code(*err) == HOIST_KUBE_EXISTS) {
    /* a retried claim: the Job a previous attempt made is this build's */
    hoist_err_free(*err);
    *err = NULL;
    rc = hoist_kube_get(x->k, &HOIST_KUBE_JOBS, c->namespace, r->name, &stored, err);
  }
  if (rc < 0)
    return hoist_err_wrap(err, "Job %s", r->name);
  const char *uid = json_string_value(json_object_get(json_object_get(stored, "metadata"), "uid"));
  if (!uid) {
    json_decref(stored);
    return hoist_err_set(err, HOIST_E_FORMAT, "Job %s: the server's answer has no uid", r->name);
  }
  const char *data[] = {AUTH_KEY, auth, file_key, file, NULL};
  json_t *secret = NULL;
  rc = hoist_kube_secret_build(r->name, NULL, sp->id, r->name, uid, data, &secret, err);
  json_decref(stored);
  if (rc < 0)
    return -1;
  rc = hoist_kube_create(x->k, &HOIST_KUBE_SECRETS, c->namespace, secret, NULL, err);
  json_decref(secret);
  if (rc < 0 && hoist_err_root_code(*err) == HOIST_KUBE_EXISTS) {
    hoist_err_free(*err);
    *err = NULL;
    rc = 0;
  }
  if (rc < 0)
    return hoist_err_wrap(err, "Secret %s", r->name);
  return 0;
}

static void run_free(exec_run *r) {
  pthread_mutex_destroy(&r->lock);
  free(r->id);
  free(r->name);
  free(r->selector);
  free(r->pod_selector);
  free(r->answer);
  free(r->note);
  free(r->buf);
  free(r);
}

static void kube_release(exec_run *r);

static int kube_start(server_executor *bx, const exec_spec *sp, exec_run **out, hoist_err **err) {
  kube_exec *x = (kube_exec *)bx;
  exec_run *r = hoist_malloc0(sizeof *r);
  r->x = x;
  pthread_mutex_init(&r->lock, NULL);
  r->id = hoist_strdup(sp->id);
  if (hoist_kube_job_name(sp->id, &r->name, err) < 0) {
    run_free(r);
    return hoist_err_wrap(err, "start the build of job %s", sp->id);
  }
  r->selector = hoist_asprintf(HOIST_KUBE_JOB_ID_LABEL "=%s", sp->id);
  r->pod_selector = hoist_asprintf("job-name=%s", r->name);
  if (create_objects(x, r, sp, err) < 0) {
    /* a Job made before the failure goes (and its Secret, if any, with it) */
    hoist_err *e = NULL;
    if (hoist_kube_delete(x->k, &HOIST_KUBE_JOBS, x->cfg->namespace, r->name, &e) < 0)
      hoist_err_free(e);
    run_free(r);
    return hoist_err_wrap(err, "start the build of job %s", sp->id);
  }
  int e1 = pthread_create(&r->watcher, NULL, watcher, r);
  r->watcher_started = e1 == 0;
  int e2 = e1 ? e1 : pthread_create(&r->logger, NULL, logger, r);
  r->logger_started = e1 == 0 && e2 == 0;
  if (e1 || e2) {
    kube_release(r);
    return hoist_err_errno(err, e1 ? e1 : e2, "start the build of job %s: a thread", sp->id);
  }
  *out = r;
  return 0;
}

static int kube_wait(exec_run *r, int timeout_ms, exec_sink sink, void *arg) {
  if (r->ended)
    return 1;
  double until = mono_s() + timeout_ms / 1000.0;
  for (;;) {
    pthread_mutex_lock(&r->lock);
    char *data = steal_pointer(&r->buf);
    size_t n = r->len;
    r->len = 0;
    bool cut = r->cut;
    r->cut = false;
    bool end = r->job_done && (r->log_done || mono_s() - r->done_at > LOG_GRACE_S);
    pthread_mutex_unlock(&r->lock);
    if (n)
      sink(arg, data, n);
    free(data);
    if (cut) {
      static const char m[] = "\nhoist serve: the build's log came faster than it was kept: "
                              "part of it dropped\n";
      sink(arg, m, sizeof m - 1);
    }
    if (end) {
      /* the watcher read the pod's termination before it ended */
      if (r->watcher_started) {
        pthread_join(r->watcher, NULL);
        r->watcher_started = false;
      }
      pthread_mutex_lock(&r->lock);
      char *rest = steal_pointer(&r->buf);
      size_t rn = r->len;
      r->len = 0;
      pthread_mutex_unlock(&r->lock);
      if (rn)
        sink(arg, rest, rn);
      free(rest);
      if (r->note) {
        _cleanup_free_ char *line = hoist_asprintf("\n%s\n", r->note);
        sink(arg, line, strlen(line));
      }
      r->ended = true;
      return 1;
    }
    if (n || mono_s() >= until)
      return 0;
    sleep_ms(20);
  }
}

static void kube_cancel(exec_run *r, bool hard) {
  delete_job(r); /* the pod's grace period is the kubelet's */
  if (!hard)
    return;
  /* still running after the soft cancel (the API server out of reach, a Job
   * not deleted): the build ends here; release asks for the deletion again,
   * and ttlSecondsAfterFinished or the deadline end it in the cluster */
  pthread_mutex_lock(&r->lock);
  if (!r->job_done) {
    r->job_done = true;
    r->done_at = mono_s();
    r->exit_code = 128 + 9;
    r->note = hoist_asprintf("hoist serve: Job %s abandoned: its end not seen", r->name);
  }
  pthread_mutex_unlock(&r->lock);
}

static void kube_result(exec_run *r, int *exit_code, char **answer) {
  pthread_mutex_lock(&r->lock);
  *exit_code = r->job_done ? r->exit_code : 127;
  *answer = r->answer ? hoist_strdup(r->answer) : NULL;
  pthread_mutex_unlock(&r->lock);
}

static void kube_release(exec_run *r) {
  if (!r)
    return;
  delete_job(r); /* cleanup: the Job, its pod and its Secret */
  pthread_mutex_lock(&r->lock);
  r->stop = true;
  pthread_mutex_unlock(&r->lock);
  if (r->watcher_started)
    pthread_join(r->watcher, NULL);
  if (r->logger_started)
    pthread_join(r->logger, NULL);
  run_free(r);
}

static bool kube_healthy(server_executor *bx) { return atomic_load(&((kube_exec *)bx)->up); }

/* One request the API server must answer: the builds' Jobs, listed. */
static bool probe(kube_exec *x) {
  json_t *list = NULL;
  hoist_err *e = NULL;
  int rc = hoist_kube_list(x->k, &HOIST_KUBE_JOBS, x->cfg->namespace,
                           HOIST_KUBE_MANAGED_BY "=hoist", &list, &e);
  json_decref(list);
  if (rc < 0 && atomic_load(&x->up))
    hoist_warn("serve: the Kubernetes API server: %s", e->msg);
  hoist_err_free(e);
  atomic_store(&x->up, rc == 0);
  return rc == 0;
}

static void *prober(void *arg) {
  kube_exec *x = arg;
  pthread_mutex_lock(&x->lock);
  while (!x->stopping) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += PROBE_S;
    pthread_cond_timedwait(&x->cond, &x->lock, &ts);
    if (x->stopping)
      break;
    pthread_mutex_unlock(&x->lock);
    probe(x);
    pthread_mutex_lock(&x->lock);
  }
  pthread_mutex_unlock(&x->lock);
  return NULL;
}

static void kube_close(server_executor *bx) {
  kube_exec *x = (kube_exec *)bx;
  if (!x)
    return;
  if (x->prober_started) {
    pthread_mutex_lock(&x->lock);
    x->stopping = true;
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
    hoist_kube_interrupt(x->k);
    pthread_join(x->prober, NULL);
  }
  hoist_kube_free(x->k);
  hoist_strfreev(x->extra);
  pthread_mutex_destroy(&x->lock);
  pthread_cond_destroy(&x->cond);
  free(x);
}

int server_kube_connect(const server_config *cfg, hoist_kube **out, hoist_err **err) {
  const server_exec_config *c = &cfg->exec;
  hoist_kube_config *kc = NULL;
  if (c->kubeconfig) {
    if (hoist_kube_config_load(c->kubeconfig, c->context, &kc, err) < 0)
      return -1;
  } else if (!cfg->kube_host || !cfg->kube_port) {
    return hoist_err_set(err, EINVAL,
                         "no kubeconfig, and not in a cluster "
                         "(KUBERNETES_SERVICE_HOST and _PORT unset)");
  } else if (hoist_kube_config_in_cluster(cfg->kube_host, cfg->kube_port, NULL, &kc, err) < 0) {
    return -1;
  }
  hoist_kube_options ko = {.exec_environ = cfg->kube_exec_environ};
  int rc = hoist_kube_new(kc, &ko, out, err);
  hoist_kube_config_free(kc);
  return rc;
}

int server_executor_kube(const server_config *cfg, const char *const *extra_args,
                         server_executor **out, hoist_err **err) {
  const server_exec_config *c = &cfg->exec;
  if (!c->image)
    return hoist_err_set(err, EINVAL, "executor: kind kubernetes needs an image (hoist's)");
  kube_exec *x = hoist_malloc0(sizeof *x);
  x->base = (server_executor){
      .start = kube_start,
      .wait = kube_wait,
      .cancel = kube_cancel,
      .result = kube_result,
      .release = kube_release,
      .close = kube_close,
      .healthy = kube_healthy,
  };
  x->cfg = c;
  /* the install's timeout and the transfers, unless the config says */
  x->deadline_s = c->deadline_s ? c->deadline_s : (long)cfg->build_timeout + 600;
  pthread_mutex_init(&x->lock, NULL);
  pthread_cond_init(&x->cond, NULL);
  hoist_strv v = {0};
  for (const char *const *a = extra_args; a && *a; a++)
    hoist_strv_add(&v, *a);
  x->extra = hoist_strv_steal(&v);
  /* namespace NULL in the calls: the kubeconfig's or the pod's */
  if (server_kube_connect(cfg, &x->k, err) < 0) {
    kube_close(&x->base);
    return hoist_err_wrap(err, "executor");
  }
  probe(x); /* unreachable at start: /healthz says so until it answers */
  int e = pthread_create(&x->prober, NULL, prober, x);
  if (e) {
    kube_close(&x->base);
    return hoist_err_errno(err, e, "executor: start the API server's probe");
  }
  x->prober_started = true;
  *out = &x->base;
  return 0;
}
