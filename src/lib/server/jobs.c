/* server: the jobs, on the job store (jobstore.h) and the executor
 * (executor.h): submissions, the workers that claim queued jobs and run
 * their builds, the job logs, cancels, and, with a shared store, the keeper
 * thread (leases, cancels from other replicas, expired leases, wake-ups). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "executor.h"
#include "hoist/build.h"
#include "hoist/digest.h"
#include "hoist/fs.h"
#include "hoist/registry.h"
#include "jobstore.h"
#include "server-private.h"

#define ID_HEX STORE_ID_HEX

typedef struct running_slot {
  char id[ID_HEX + 1];
  bool cancel;
} running_slot;

struct server_jobs {
  server_store *store;
  server_executor *exec;
  server_ops *ops; /* the OpenServerless drop-in, or NULL */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  uint64_t wake; /* counts the news a waiting worker must not miss */
  bool stopping;
  char *data_dir;
  int jobs_fd; /* DATA/jobs */
  int lock_fd; /* DATA/serve.lock, locked while the jobs are open */
  const server_config *cfg;
  int nworkers;
  pthread_t *threads;
  running_slot *slots;
  pthread_t keeper; /* a shared store's: leases, cancels, expired leases, wake-ups */
  bool keeper_started;
  char owner[64];                  /* this replica in the store: host, pid, random */
  uint64_t shared_total;           /* starts answered by an in-flight job */
  atomic_uint_fast64_t cache_hits; /* builds whose layer came from the build cache */
  atomic_uint_fast64_t started;    /* builds this replica started */
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The requirement file's name: the build recipe table's, so the file the
 * build places at /tmp/<file> keeps the name the kind expects. */
static const char *reqfile_of(const char *kind) {
  const hoist_build_kind *k = hoist_build_kind_find(kind);
  return k ? k->file : "requirements";
}

static void wake_workers(server_jobs *j) {
  pthread_mutex_lock(&j->lock);
  j->wake++;
  pthread_cond_broadcast(&j->cond);
  pthread_mutex_unlock(&j->lock);
}

/* Appends a line to a job's log (best effort: the log is for people). */
static void log_note(server_jobs *j, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void log_note(server_jobs *j, const char *id, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof line - 2)
    n = (int)sizeof line - 2;
  line[n++] = '\n';
  hoist_best_effort(j->store->log_append(j->store, id, line, (size_t)n, NULL)); /* a log line */
}

/* ------------------------------------------------------------ a running job's log */

/* The log of a running job: what the store could not take yet (a shared
 * store out of reach) waits here, in order, and the last line written is the
 * job's error if the build fails. */
typedef struct job_log {
  server_jobs *j;
  const char *id;
  hoist_buf pending;
  char line[1024]; /* the line being written (its first bytes) */
  size_t line_len;
  char last[1024]; /* the last non-empty line */
  size_t last_len;
} job_log;

/* Sends what waits; 0 when nothing is left. */
static int job_log_flush(job_log *l) {
  if (!l->pending.len)
    return 0;
  if (l->j->store->log_append(l->j->store, l->id, l->pending.data, l->pending.len, NULL) < 0)
    return -1;
  hoist_buf_reset(&l->pending);
  return 0;
}

static void job_log_write(job_log *l, const char *data, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (data[i] == '\n') {
      size_t k = l->line_len;
      while (k > 0 && (l->line[k - 1] == '\r' || l->line[k - 1] == ' '))
        k--;
      if (k) {
        memcpy(l->last, l->line, k);
        l->last_len = k;
      }
      l->line_len = 0;
    } else if (l->line_len < sizeof l->line) {
      l->line[l->line_len++] = data[i];
    }
  }
  if (l->pending.len == 0 && l->j->store->log_append(l->j->store, l->id, data, n, NULL) == 0)
    return;
  /* kept for later, up to the buffer's cap (past it, dropped) */
  hoist_best_effort(hoist_buf_append(&l->pending, data, n, NULL));
  hoist_best_effort(job_log_flush(l)); /* retried at the next write and at the end */
}

static void job_log_note(job_log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void job_log_note(job_log *l, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof line - 2)
    n = (int)sizeof line - 2;
  line[n++] = '\n';
  job_log_write(l, line, (size_t)n);
}

/* The last line: a partial one counts. */
static char *job_log_last(job_log *l) {
  if (l->line_len) {
    memcpy(l->last, l->line, l->line_len);
    l->last_len = l->line_len;
  }
  return l->last_len ? hoist_asprintf("%.*s", (int)l->last_len, l->last) : NULL;
}

/* Copies the build's output into its log, at most max_log_bytes of it: past
 * that it is dropped, the cut marked once, and the last line kept so the
 * job's error is still the build's own. */
typedef struct log_pump {
  job_log *log;
  const server_config *cfg;
  uint64_t written, cap;
  bool cut;
  char line[1024]; /* the line being read (its first bytes) */
  size_t line_len;
  char last[1024]; /* the last complete line */
  size_t last_len;
} log_pump;

static void pump(void *arg, const char *data, size_t n) {
  log_pump *p = arg;
  for (size_t i = 0; i < n; i++) {
    if (data[i] == '\n') {
      memcpy(p->last, p->line, p->line_len);
      p->last_len = p->line_len;
      p->line_len = 0;
    } else if (p->line_len < sizeof p->line) {
      p->line[p->line_len++] = data[i];
    }
  }
  if (p->cut)
    return;
  size_t take = p->written + n > p->cap ? (size_t)(p->cap - p->written) : n;
  if (take) {
    job_log_write(p->log, data, take);
    p->written += take;
  }
  if (take < n) {
    p->cut = true;
    job_log_note(p->log, "\nhoist serve: log cut at %" PRIu64 " bytes (max_log_bytes)%s", p->cap,
                 p->cfg->log_overflow_fails ? "; the build is stopped"
                                            : "; the build goes on, its output is dropped");
  }
}

/* After the build: what a cut log lacks, its last line. */
static void pump_end(log_pump *p) {
  if (p->line_len) { /* a last line without its newline */
    memcpy(p->last, p->line, p->line_len);
    p->last_len = p->line_len;
  }
  if (p->cut && p->last_len)
    job_log_note(p->log, "%.*s", (int)p->last_len, p->last);
}

/* ------------------------------------------------------------ running */

/* The image digest from the build's --json answer ("manifest" of a build,
 * "digest" of a re-tag); counts cache hits. */
static char *image_digest_of(server_jobs *j, const char *answer) {
  if (!answer)
    return NULL;
  json_t *o = json_loadb(answer, strlen(answer), JSON_DISABLE_EOF_CHECK, NULL);
  const char *d = json_string_value(json_object_get(o, "manifest"));
  if (!d)
    d = json_string_value(json_object_get(o, "digest"));
  char *ret = d && hoist_digest_valid(d) ? hoist_strdup(d) : NULL;
  if (json_is_true(json_object_get(o, "cacheHit")))
    atomic_fetch_add(&j->cache_hits, 1);
  json_decref(o);
  return ret;
}

/* Time a build may take beyond its install's timeout: its pull and push. */
#define TRANSFER_GRACE 600

/* The auths entry of the push host from a user's or the service's secret:
 * "user:password"; with the OpenServerless drop-in, the name of a
 * dockerconfigjson Secret (NULL: its pull secret, unless the config names a
 * secret file); else a dockerconfigjson file. NULL: no credentials. */
HOIST_WUR static int push_creds(server_jobs *j, const char *host, const char *secret,
                                json_t **entry, hoist_err **err) {
  *entry = NULL;
  _cleanup_free_ char *userpass = NULL;
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  const char *from = secret;
  if (secret && strchr(secret, ':')) {
    userpass = hoist_strdup(secret);
  } else if (j->ops && (secret && *secret ? true : !j->cfg->registry_secret)) {
    if (server_ops_dockerconfig(j->ops, secret && *secret ? secret : NULL, &data, &len, err) < 0)
      return -1;
    from = secret && *secret ? secret : j->cfg->ops.pull_secret;
  } else {
    from = secret && *secret ? secret : j->cfg->registry_secret;
    if (!from)
      return 0;
    if (hoist_fs_read_file(AT_FDCWD, from, 1 << 20, &data, &len, err) < 0)
      return hoist_err_wrap(err, "registry secret %s", from);
  }
  if (data) {
    hoist_creds cr = {0};
    bool found = false;
    if (hoist_creds_from_json(data, len, host, NULL, &cr, &found, err) < 0) {
      OPENSSL_cleanse(data, len);
      return hoist_err_wrap(err, "registry secret %s", from);
    }
    OPENSSL_cleanse(data, len);
    if (found && cr.identity_token)
      *entry = json_pack("{s:s}", "identitytoken", cr.identity_token);
    else if (found && cr.username && cr.password)
      userpass = hoist_asprintf("%s:%s", cr.username, cr.password);
    else if (found)
      hoist_warn("serve: registry secret %s: the entry for %s names a credential helper, which "
                 "builds do not run",
                 from, host);
    hoist_creds_clear(&cr);
  }
  if (userpass) {
    size_t sl = strlen(userpass);
    _cleanup_free_ char *b64 = hoist_base64_encode(userpass, sl);
    OPENSSL_cleanse(userpass, sl);
    *entry = json_pack("{s:s}", "auth", b64);
  }
  return 0;
}

int server_jobs_registry_auth(server_jobs *j, const server_user *u, const char *host,
                              char **userpass, hoist_err **err) {
  *userpass = NULL;
  const char *usecret = json_string_value(json_object_get(u->env, "REGISTRY_SECRET"));
  json_t *entry = NULL;
  if (push_creds(j, host, usecret && *usecret ? usecret : NULL, &entry, err) < 0)
    return -1;
  const char *b64 = json_string_value(json_object_get(entry, "auth"));
  unsigned char *dec = NULL;
  size_t n = 0;
  if (b64 && hoist_base64_decode(b64, strlen(b64), 4096, 0, &dec, &n, NULL) == 0)
    *userpass = (char *)dec;
  json_decref(entry);
  return 0;
}

/* Writes DATA/jobs/<id>/registry-auth.json for the build: the credentials of
 * the push host only (push_creds), so a pull from any other host goes
 * without them; an empty document when there are none. */
HOIST_WUR static int write_push_auth(server_jobs *j, const store_job *row, hoist_err **err) {
  _cleanup_free_ char *host =
      strncmp(row->dest, "oci:", 4) == 0 ? NULL : strndup(row->dest, strcspn(row->dest, "/"));
  json_t *auths = json_object();
  json_t *entry = NULL;
  if (host && push_creds(j, host, row->secret, &entry, err) < 0) {
    json_decref(auths);
    return -1;
  }
  if (entry)
    json_object_set_new(auths, host, entry);
  json_t *doc = json_pack("{s:o}", "auths", auths);
  _cleanup_free_ char *text = json_dumps(doc, JSON_COMPACT);
  json_decref(doc);
  _cleanup_close_ int dfd = openat(j->jobs_fd, row->id, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (dfd < 0)
    return hoist_err_errno(err, errno, "open jobs/%s", row->id);
  return hoist_fs_write_atomic(dfd, "registry-auth.json", text, strlen(text), 0600, err);
}

/* A shared store's job gets its directory here, with the requirement file
 * the store kept. */
HOIST_WUR static int job_dir(server_jobs *j, const store_job *row, hoist_err **err) {
  if (!j->store->shared)
    return 0;
  if (mkdirat(j->jobs_fd, row->id, 0700) < 0 && errno != EEXIST)
    return hoist_err_errno(err, errno, "mkdir jobs/%s", row->id);
  if (!row->file_digest || !*row->file_digest)
    return 0;
  _cleanup_close_ int dfd = openat(j->jobs_fd, row->id, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (dfd < 0)
    return hoist_err_errno(err, errno, "open jobs/%s", row->id);
  return hoist_fs_write_atomic(dfd, reqfile_of(row->kind), row->file ? (char *)row->file : "",
                               row->file_len, 0644, err);
}

/* Signs the image a build pushed (row->dest at digest) with the config's
 * sign_key, through a client holding the push host's credentials. */
HOIST_WUR static int sign_built(server_jobs *j, const store_job *row, const char *digest,
                                job_log *lg, hoist_err **err) {
  _cleanup_ref_ hoist_ref *ref = NULL;
  if (hoist_ref_parse(row->dest, &ref, err) < 0)
    return -1;
  json_t *entry = NULL;
  if (push_creds(j, ref->domain, row->secret, &entry, err) < 0)
    return -1;
  const char *b64 = json_string_value(json_object_get(entry, "auth"));
  unsigned char *userpass = NULL;
  size_t n = 0;
  if (b64 && hoist_base64_decode(b64, strlen(b64), 4096, 0, &userpass, &n, NULL) < 0)
    userpass = NULL;
  json_decref(entry);
  hoist_registry_opts ro = *j->cfg->registry_opts;
  if (userpass) {
    ro.creds = (const char *)userpass;
    ro.secret_file = NULL;
  }
  hoist_registry *r = NULL;
  int rc = hoist_registry_new(&ro, &r, err);
  if (userpass) {
    OPENSSL_cleanse(userpass, n);
    free(userpass);
  }
  if (rc < 0)
    return -1;
  /* In index mode the tag names an index holding the image and its
   * attestations: that is signed (what --verify-key on the tag checks),
   * and with it each image (what the job's digest names). */
  bool index_mode = j->cfg->attestations && strcmp(j->cfg->attest_mode, "index") == 0;
  hoist_sign_opts so = {.recursive = index_mode};
  if (!index_mode) {
    free(ref->digest);
    ref->digest = hoist_strdup(digest);
  }
  hoist_loc loc = {.kind = HOIST_LOC_REGISTRY, .ref = ref, .index = -1};
  hoist_transport_opts to = {.registry = r};
  hoist_sign_result res;
  rc = hoist_sign_image(&to, &loc, j->cfg->sign_key, &so, &res, err);
  hoist_registry_free(r);
  if (rc < 0)
    return -1;
  job_log_note(lg, "hoist serve: signed %s %s: %s", res.docker_reference, res.digest, res.stored);
  hoist_sign_result_clear(&res);
  return 0;
}

/* Runs a claimed job's build to its end; *state, *digest, *error what the
 * store is told. */
static void run_job(server_jobs *j, int slot, const store_job *row, job_log *lg, const char **state,
                    char **digest, char **error) {
  _cleanup_free_ char *jobdir = hoist_asprintf("%s/jobs/%s", j->data_dir, row->id);
  _cleanup_free_ char *filep = hoist_asprintf("%s/%s", jobdir, reqfile_of(row->kind));
  _cleanup_free_ char *authp = hoist_asprintf("%s/registry-auth.json", jobdir);
  hoist_err *e = NULL;
  exec_run *run = NULL;
  /* the user's registry build cache: on the target's registry, in their
   * namespace (<host>/<user>/hoist-build-cache) */
  bool cache_on = j->cfg->registry_cache < 0 ? j->cfg->exec.kube : j->cfg->registry_cache;
  _cleanup_free_ char *cache = NULL;
  const char *host_end = strchr(row->dest, '/');
  if (cache_on && strncmp(row->dest, "oci:", 4) != 0 && host_end) {
    _cleanup_free_ char *repo = server_cache_repo(row->user);
    cache = hoist_asprintf("%.*s/%s", (int)(host_end - row->dest), row->dest, repo);
  }
  exec_spec spec = {
      .cache = cache,
      .id = row->id,
      .source = row->source,
      .kind = row->kind,
      .dest = row->dest,
      .file = row->file_digest && *row->file_digest ? filep : NULL,
      .authfile = authp,
      .workdir = jobdir,
      .user = row->user,
      .attest_mode = j->cfg->attestations ? j->cfg->attest_mode : NULL,
  };
  if (job_dir(j, row, &e) < 0 || write_push_auth(j, row, &e) < 0 ||
      j->exec->start(j->exec, &spec, &run, &e) < 0) {
    _cleanup_free_ char *t = hoist_err_text(e);
    job_log_note(lg, "hoist serve: %s", t);
    int code = hoist_err_root_code(e);
    hoist_err_free(e);
    unlink(authp);
    *state = "failed";
    *error = hoist_asprintf("cannot start the build: %s",
                            strerror(code > 0 && code < HOIST_E_BASE ? code : EIO));
    return;
  }
  atomic_fetch_add(&j->started, 1);
  log_pump lp = {.log = lg, .cfg = j->cfg, .cap = j->cfg->max_log_bytes};
  double term_at = 0, deadline = mono_s() + j->cfg->build_timeout + TRANSFER_GRACE;
  bool overdue = false;
  while (!j->exec->wait(run, 50, pump, &lp)) {
    /* the install's own timeout ends most builds; this one a stuck transfer */
    if (!overdue && mono_s() > deadline) {
      overdue = true;
      job_log_note(lg, "hoist serve: build timed out after %u s: killed",
                   j->cfg->build_timeout + TRANSFER_GRACE);
    }
    pthread_mutex_lock(&j->lock);
    bool cancel =
        j->slots[slot].cancel || j->stopping || overdue || (lp.cut && j->cfg->log_overflow_fails);
    pthread_mutex_unlock(&j->lock);
    if (cancel) {
      if (term_at == 0) {
        term_at = mono_s();
        j->exec->cancel(run, false);
      } else if (mono_s() - term_at > 5) {
        j->exec->cancel(run, true);
      }
    }
    hoist_best_effort(job_log_flush(lg)); /* retried at the next turn */
  }
  unlink(authp);
  pump_end(&lp);
  int code = 0;
  _cleanup_free_ char *answer = NULL;
  j->exec->result(run, &code, &answer);
  j->exec->release(run);
  if (lp.cut && j->cfg->log_overflow_fails) {
    job_log_note(lg,
                 "hoist serve: build stopped: its log exceeded max_log_bytes (%" PRIu64 " bytes)",
                 lp.cap);
    code = 1;
  }
  pthread_mutex_lock(&j->lock);
  bool canceled = j->slots[slot].cancel;
  bool stopping = j->stopping;
  pthread_mutex_unlock(&j->lock);
  if (canceled) {
    *state = "canceled";
    *error = hoist_strdup("canceled");
  } else if (stopping) {
    *state = "failed";
    *error = hoist_strdup("server stopped");
  } else if (code == 0) {
    *state = "succeeded";
    *digest = image_digest_of(j, answer);
    if (j->cfg->sign_key && *digest && strncmp(row->dest, "oci:", 4) != 0 &&
        sign_built(j, row, *digest, lg, &e) < 0) {
      _cleanup_free_ char *t = hoist_err_text(e);
      hoist_err_free(e);
      job_log_note(lg, "hoist serve: %s", t);
      *state = "failed";
      *error = hoist_asprintf("the image was pushed but not signed: %s", t);
    }
  } else {
    *state = "failed";
    *error = job_log_last(lg);
    if (!*error) {
      *error = code > 128 ? hoist_asprintf("build killed by signal %d", code - 128)
                          : hoist_asprintf("build exited %d", code);
    }
  }
}

/* Tells the store a job's end, again and again while the store is out of
 * reach (the build's result is not lost), until the service stops. */
static void finish_job(server_jobs *j, job_log *lg, const char *id, const char *state,
                       const char *digest, const char *error) {
  unsigned delay_ms = 100;
  for (;;) {
    hoist_err *e = NULL;
    if (job_log_flush(lg) == 0 &&
        j->store->finish(j->store, id, j->owner, state, digest, error, &e) == 0)
      return;
    pthread_mutex_lock(&j->lock);
    bool stopping = j->stopping;
    pthread_mutex_unlock(&j->lock);
    if (e) {
      hoist_warn("serve: job %s: %s%s", id, e->msg, stopping ? "" : "; retrying");
      hoist_err_free(e);
    }
    if (stopping)
      return;
    struct timespec ts = {delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    delay_ms = delay_ms * 2 > 5000 ? 5000 : delay_ms * 2;
  }
}

static void *worker(void *arg) {
  server_jobs *j = ((void **)arg)[0];
  int slot = (int)(intptr_t)((void **)arg)[1];
  free(arg);
  double lease = j->cfg->lease_seconds;
  pthread_mutex_lock(&j->lock);
  while (!j->stopping) {
    uint64_t seen = j->wake;
    pthread_mutex_unlock(&j->lock);
    store_job row = {0};
    hoist_err *e = NULL;
    int r = j->store->claim(j->store, j->owner, j->cfg->per_user_limit, lease, &row, &e);
    if (r < 0) {
      hoist_debug("serve: claim: %s", e->msg);
      hoist_err_free(e);
    }
    pthread_mutex_lock(&j->lock);
    if (r != 1) {
      if (j->wake == seen && !j->stopping) {
        /* a shared store's slow poll, behind its notifications */
        double wait = r < 0 ? 1 : j->store->shared ? j->cfg->poll_seconds : 10;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)wait;
        ts.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
        if (ts.tv_nsec >= 1000000000L) {
          ts.tv_sec++;
          ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&j->cond, &j->lock, &ts);
      }
      continue;
    }
    snprintf(j->slots[slot].id, sizeof j->slots[slot].id, "%s", row.id);
    j->slots[slot].cancel = false;
    pthread_mutex_unlock(&j->lock);

    job_log lg = {.j = j, .id = row.id};
    hoist_buf_init(&lg.pending, j->cfg->max_log_bytes + (1 << 20));
    job_log_note(&lg, "hoist serve: job %s: %s -> %s", row.id, row.source, row.dest);
    const char *state = NULL;
    _cleanup_free_ char *digest = NULL;
    _cleanup_free_ char *error = NULL;
    run_job(j, slot, &row, &lg, &state, &digest, &error);
    job_log_note(&lg, "hoist serve: job %s %s", row.id, state);
    finish_job(j, &lg, row.id, state, digest, error);
    hoist_buf_free(&lg.pending);
    if (j->store->shared) /* its log and result are in the store */
      hoist_best_effort(hoist_fs_rm_rf_at(j->jobs_fd, row.id, NULL));
    pthread_mutex_lock(&j->lock);
    memset(&j->slots[slot], 0, sizeof j->slots[slot]);
    j->wake++;
    pthread_cond_broadcast(&j->cond);
    store_job_clear(&row);
  }
  pthread_mutex_unlock(&j->lock);
  return NULL;
}

/* Marks the builds of these jobs running here to be stopped. */
static void cancel_here(server_jobs *j, char **ids) {
  pthread_mutex_lock(&j->lock);
  for (size_t k = 0; ids && ids[k]; k++)
    for (int i = 0; i < j->nworkers; i++)
      if (strcmp(j->slots[i].id, ids[k]) == 0)
        j->slots[i].cancel = true;
  pthread_mutex_unlock(&j->lock);
}

/* Notes the jobs recover gave back to the queue or failed. */
static void recovered(server_jobs *j, char **ids, const char *why) {
  for (size_t k = 0; ids && ids[k]; k++)
    log_note(j, ids[k], "hoist serve: %s%s", why,
             j->cfg->restart == HOIST_RESTART_REQUEUE ? "; queued again" : "");
  if (ids && ids[0] && j->cfg->restart == HOIST_RESTART_REQUEUE)
    wake_workers(j);
}

/* A shared store's keeper: wakes the workers on news (another replica's
 * queued job or freed slot), passes cancels on to the builds, renews this
 * replica's leases (every third of a lease), stops the builds whose lease
 * it lost (the job is another replica's business now), and gives back the
 * jobs of replicas whose leases expired. */
static void *keeper(void *arg) {
  server_jobs *j = arg;
  double lease = j->cfg->lease_seconds;
  double renewed = mono_s(), reaped = 0;
  for (;;) {
    pthread_mutex_lock(&j->lock);
    bool stopping = j->stopping;
    pthread_mutex_unlock(&j->lock);
    if (stopping)
      break;
    char **cancel = NULL;
    int r = j->store->wait(j->store, 500, &cancel);
    if (r == 1)
      wake_workers(j);
    cancel_here(j, cancel);
    hoist_strfreev(cancel);
    cancel = NULL;
    hoist_err *e = NULL;
    double t = mono_s();
    bool renew = t - renewed >= lease / 3;
    /* the builds running here now: each one's claim is in the store */
    hoist_strv here = {0};
    pthread_mutex_lock(&j->lock);
    for (int i = 0; i < j->nworkers; i++)
      if (j->slots[i].id[0])
        hoist_strv_add(&here, j->slots[i].id);
    pthread_mutex_unlock(&j->lock);
    _cleanup_strfreev_ char **running = hoist_strv_steal(&here);
    if (j->store->heartbeat(j->store, j->owner, renew ? lease : 0, running, &cancel, &e) < 0) {
      hoist_debug("serve: heartbeat: %s", e->msg);
      hoist_err_free(e);
      e = NULL;
    } else if (renew) {
      renewed = t;
    }
    cancel_here(j, cancel);
    hoist_strfreev(cancel);
    if (t - reaped >= 1) {
      reaped = t;
      char **ids = NULL;
      if (j->store->recover(j->store, j->cfg->restart, &ids, &e) < 0) {
        hoist_debug("serve: expired leases: %s", e->msg);
        hoist_err_free(e);
      } else {
        recovered(j, ids, "the replica running this build stopped renewing its lease");
        hoist_strfreev(ids);
      }
    }
  }
  return NULL;
}

/* ------------------------------------------------------------ store */

/* One server per data directory: an exclusive lock on DATA/serve.lock,
 * which names its holder's pid, for as long as the store is open. A data
 * directory others may read is made private (0700): it holds the users'
 * registry secrets while their builds wait. */
HOIST_WUR static int own_data_dir(server_jobs *j, hoist_err **err) {
  _cleanup_free_ char *path = hoist_asprintf("%s/serve.lock", j->data_dir);
  j->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (j->lock_fd < 0)
    return hoist_err_errno(err, errno, "open %s", path);
  if (flock(j->lock_fd, LOCK_EX | LOCK_NB) < 0) {
    char pid[32] = "";
    ssize_t n = pread(j->lock_fd, pid, sizeof pid - 1, 0);
    pid[n > 0 ? n : 0] = '\0';
    pid[strcspn(pid, "\n")] = '\0';
    return hoist_err_set(err, EBUSY, "data directory %s is in use by another hoist serve (pid %s)",
                         j->data_dir, *pid ? pid : "unknown");
  }
  char pid[32];
  int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  if (ftruncate(j->lock_fd, 0) < 0 || pwrite(j->lock_fd, pid, (size_t)len, 0) != len)
    return hoist_err_errno(err, errno, "write %s", path);
  struct stat st;
  if (stat(j->data_dir, &st) == 0 && (st.st_mode & 077)) {
    if (chmod(j->data_dir, 0700) < 0)
      return hoist_err_errno(err, errno, "chmod %s 0700", j->data_dir);
    hoist_info("serve: %s was readable by others (mode %o): made private (0700)", j->data_dir,
               (unsigned)(st.st_mode & 07777));
  }
  return 0;
}

int server_jobs_open(const char *data_dir, const server_config *cfg, int workers,
                     const char *hoist_bin, server_jobs **out, hoist_err **err) {
  server_jobs *j = hoist_malloc0(sizeof *j);
  j->data_dir = hoist_strdup(data_dir);
  j->cfg = cfg;
  j->jobs_fd = -1;
  j->lock_fd = -1;
  pthread_mutex_init(&j->lock, NULL);
  pthread_cond_init(&j->cond, NULL);
  _cleanup_free_ char *jobs = hoist_asprintf("%s/jobs", data_dir);
  if (own_data_dir(j, err) < 0)
    goto fail;
  if (mkdir(jobs, 0700) < 0 && errno != EEXIST) {
    hoist_err_errno(err, errno, "mkdir %s", jobs);
    goto fail;
  }
  j->jobs_fd = open(jobs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (j->jobs_fd < 0) {
    hoist_err_errno(err, errno, "open %s", jobs);
    goto fail;
  }
  if (server_store_open(cfg->db, data_dir, &j->store, err) < 0)
    goto fail;
  {
    unsigned char rnd[4];
    char host[32] = "";
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
      hoist_err_set(err, EIO, "no random bytes");
      goto fail;
    }
    gethostname(host, sizeof host - 1);
    snprintf(j->owner, sizeof j->owner, "%.31s:%d:%02x%02x%02x%02x", host, (int)getpid(), rnd[0],
             rnd[1], rnd[2], rnd[3]);
  }
  {
    _cleanup_strfreev_ char **sandbox = server_sandbox_args(cfg);
    hoist_strv extra = {0};
    for (char **h = cfg->insecure; h && *h; h++) {
      hoist_strv_add(&extra, "--insecure-registry");
      hoist_strv_add(&extra, *h);
    }
    for (char **a = sandbox; *a; a++)
      hoist_strv_add(&extra, *a);
    _cleanup_strfreev_ char **args = hoist_strv_steal(&extra);
    if (!cfg->exec.kube)
      j->exec = server_executor_local(hoist_bin, (const char *const *)args);
    else if (server_executor_kube(cfg, (const char *const *)args, &j->exec, err) < 0)
      goto fail;
  }
  if (server_ops_open(cfg, &j->ops, err) < 0)
    goto fail;

  /* jobs a previous process (or a lost replica) left running: never lost,
   * never stuck */
  {
    char **ids = NULL;
    if (j->store->recover(j->store, cfg->restart, &ids, err) < 0)
      goto fail;
    recovered(j, ids,
              j->store->shared ? "the replica running this build stopped renewing its lease"
                               : "server restarted");
    hoist_strfreev(ids);
  }

  j->nworkers = workers > 0 ? workers : 1;
  j->slots = hoist_calloc((size_t)j->nworkers, sizeof *j->slots);
  j->threads = hoist_calloc((size_t)j->nworkers, sizeof *j->threads);
  for (int i = 0; i < j->nworkers; i++) {
    void **arg = hoist_calloc(2, sizeof *arg);
    arg[0] = j;
    arg[1] = (void *)(intptr_t)i;
    int e = pthread_create(&j->threads[i], NULL, worker, arg);
    if (e) {
      free(arg);
      j->nworkers = i;
      hoist_err_errno(err, e, "start worker");
      goto fail;
    }
  }
  if (j->store->wait) {
    int e = pthread_create(&j->keeper, NULL, keeper, j);
    if (e) {
      hoist_err_errno(err, e, "start the lease keeper");
      goto fail;
    }
    j->keeper_started = true;
  }
  *out = j;
  return 0;
fail:
  server_jobs_close(j);
  return -1;
}

void server_jobs_close(server_jobs *j) {
  if (!j)
    return;
  pthread_mutex_lock(&j->lock);
  j->stopping = true;
  pthread_cond_broadcast(&j->cond);
  pthread_mutex_unlock(&j->lock);
  for (int i = 0; i < j->nworkers; i++)
    pthread_join(j->threads[i], NULL);
  if (j->keeper_started)
    pthread_join(j->keeper, NULL);
  if (j->store)
    j->store->close(j->store);
  if (j->exec)
    j->exec->close(j->exec);
  server_ops_free(j->ops);
  if (j->jobs_fd >= 0)
    close(j->jobs_fd);
  if (j->lock_fd >= 0)
    close(j->lock_fd); /* the next server may take the data directory */
  pthread_mutex_destroy(&j->lock);
  pthread_cond_destroy(&j->cond);
  free(j->threads);
  free(j->slots);
  free(j->data_dir);
  free(j);
}

int hoist_server_migrate(const char *db, const char *data_dir, hoist_err **err) {
  server_store *s = NULL;
  if (server_store_open(db, data_dir, &s, err) < 0)
    return -1;
  s->close(s);
  return 0;
}

bool server_jobs_openserverless(const server_jobs *j) { return j->ops != NULL; }

int server_jobs_registry(server_jobs *j, const server_user *u, char **host, char **pull,
                         hoist_err **err) {
  const char *h = j->cfg->registry_host_override;
  const char *p = NULL;
  if (!h || !*h)
    h = json_string_value(json_object_get(u->env, "REGISTRY_HOST"));
  if (!h || !*h) {
    h = j->cfg->registry_host;
    p = j->cfg->registry_pull_host;
  }
  *host = h && *h ? hoist_strdup(h) : NULL;
  *pull = p && *p && *host ? hoist_strdup(p) : NULL;
  if (!*host && j->ops && server_ops_registry_host(j->ops, host, err) < 0)
    return -1;
  return 0;
}

/* Where the image goes and what the status calls it (server_jobs_registry,
 * else the embedded layout under DATA/images), and the secret its push
 * uses: the user's REGISTRY_SECRET, else the config's (with the
 * OpenServerless drop-in: NULL, its pull secret). */
HOIST_WUR static int destination(server_jobs *j, const server_user *u,
                                 const hoist_build_request *req, char **dest, char **image,
                                 char **secret, hoist_err **err) {
  _cleanup_free_ char *host = NULL;
  _cleanup_free_ char *pull = NULL;
  if (server_jobs_registry(j, u, &host, &pull, err) < 0)
    return -1;
  *secret = NULL;
  const char *usecret = json_string_value(json_object_get(u->env, "REGISTRY_SECRET"));
  if (usecret && *usecret)
    *secret = hoist_strdup(usecret);
  else if (j->cfg->registry_secret && !j->ops)
    *secret = hoist_strdup(j->cfg->registry_secret);
  if (host) {
    *dest = hoist_asprintf("%s/%s:%s", host, req->target_user, req->target_tag);
    *image = hoist_asprintf("%s/%s:%s", pull ? pull : host, req->target_user, req->target_tag);
  } else {
    *dest = hoist_asprintf("oci:%s/images/%s:%s", j->data_dir, req->target_user, req->target_tag);
    *image = hoist_strdup(*dest);
  }
  return 0;
}

/* The build's identity: SHA-256 of its fields, each ended by a NUL. */
static void build_key(const char *const *fields, size_t n, char out[HOIST_DIGEST_STR_LEN]) {
  hoist_sha256 *h = hoist_sha256_new();
  for (size_t i = 0; i < n; i++) {
    const char *f = fields[i] ? fields[i] : "";
    hoist_sha256_update(h, f, strlen(f) + 1);
  }
  hoist_sha256_final(h, out);
  hoist_sha256_free(h);
}

int server_jobs_submit(server_jobs *j, const server_user *u, const hoist_build_request *req,
                       char **id_out, char **name_out, bool *shared, hoist_refusal *why,
                       hoist_err **err) {
  _cleanup_free_ char *dest = NULL;
  _cleanup_free_ char *image = NULL;
  _cleanup_free_ char *secret = NULL;
  if (destination(j, u, req, &dest, &image, &secret, err) < 0)
    return -1;
  *shared = false;
  _cleanup_free_ char *push_host =
      strncmp(dest, "oci:", 4) == 0 ? NULL : strndup(dest, strcspn(dest, "/"));
  if (!server_source_allowed(j->cfg, u->login, push_host, req->source, why))
    return 1;

  unsigned char rnd[ID_HEX / 2];
  char id[ID_HEX + 1];
  if (RAND_bytes(rnd, sizeof rnd) != 1)
    return hoist_err_set(err, EIO, "no random bytes");
  for (size_t i = 0; i < sizeof rnd; i++)
    sprintf(id + 2 * i, "%02x", rnd[i]);
  const char *fields[] = {u->login, req->source, req->kind, req->file_digest, req->target, dest};
  char key[HOIST_DIGEST_STR_LEN];
  build_key(fields, sizeof fields / sizeof fields[0], key);

  /* an unshared store's job directory holds its requirement file from now */
  bool local_dir = !j->store->shared;
  if (local_dir) {
    if (mkdirat(j->jobs_fd, id, 0700) < 0)
      return hoist_err_errno(err, errno, "mkdir jobs/%s", id);
    if (req->file) {
      _cleanup_close_ int dfd = openat(j->jobs_fd, id, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
      if (dfd < 0 || hoist_fs_write_atomic(dfd, reqfile_of(req->kind), req->file, req->file_len,
                                           0644, err) < 0) {
        int r = dfd < 0 ? hoist_err_errno(err, errno, "open jobs/%s", id) : -1;
        hoist_best_effort(hoist_fs_rm_rf_at(j->jobs_fd, id, NULL)); /* the job was not stored */
        return r;
      }
    }
  }
  store_new n = {
      .id = id,
      .user = u->login,
      .source = req->source,
      .target = req->target,
      .kind = req->kind,
      .file_digest = req->file_digest,
      .dest = dest,
      .image = image,
      .secret = secret,
      .key = key,
      .file = req->file,
      .file_len = req->file_len,
  };
  bool full = false;
  char *got = NULL;
  int r = j->store->enqueue(j->store, &n, j->cfg->per_user_queue, &got, shared, &full, err);
  if (local_dir && (r < 0 || full || *shared))
    hoist_best_effort(hoist_fs_rm_rf_at(j->jobs_fd, id, NULL)); /* not this job's */
  if (r < 0)
    return r;
  if (full) {
    why->status = 429;
    snprintf(why->message, sizeof why->message,
             "Too many queued builds (per_user_queue: at most %d per user); retry later.",
             j->cfg->per_user_queue);
    return 1;
  }
  pthread_mutex_lock(&j->lock);
  if (*shared)
    j->shared_total++;
  j->wake++;
  pthread_cond_broadcast(&j->cond);
  pthread_mutex_unlock(&j->lock);
  *id_out = got;
  *name_out = store_job_name(u->login, got);
  return 0;
}

int server_jobs_status(server_jobs *j, const char *user, const char *id, json_t **out, bool *found,
                       hoist_err **err) {
  store_row row = {0};
  int r = j->store->status(j->store, user, id, &row, err);
  *found = r == 1;
  if (r == 1)
    *out = store_row_json(&row);
  store_row_clear(&row);
  return r < 0 ? r : 0;
}

int server_jobs_list(server_jobs *j, const char *user, json_t **out, hoist_err **err) {
  store_row *rows = NULL;
  size_t n = 0;
  if (j->store->list(j->store, user, &rows, &n, err) < 0)
    return -1;
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) {
    json_array_append_new(a, store_row_json(&rows[i]));
    store_row_clear(&rows[i]);
  }
  free(rows);
  *out = a;
  return 0;
}

int server_jobs_cleanup(server_jobs *j, const char *user, double hours, int *n, hoist_err **err) {
  *n = 0;
  char **ids = NULL;
  if (j->store->cleanup(j->store, user, now_s() - hours * 3600.0, &ids, err) < 0)
    return -1;
  for (size_t i = 0; ids && ids[i]; i++) {
    hoist_err *e = NULL;
    if (hoist_fs_rm_rf_at(j->jobs_fd, ids[i], &e) < 0) {
      hoist_warn("serve: cleanup jobs/%s: %s", ids[i], e->msg);
      hoist_err_free(e);
    }
    (*n)++;
  }
  hoist_strfreev(ids);
  return 0;
}

int server_jobs_cancel(server_jobs *j, const char *user, const char *id, hoist_err **err) {
  bool running = false;
  int r = j->store->cancel(j->store, user, id, &running, err);
  if (r < 0)
    return r;
  if (r == 1)
    log_note(j, id, "hoist serve: cancel requested");
  if (r == 1 && running) {
    char *ids[] = {(char *)id, NULL};
    cancel_here(j, ids);
  }
  return r;
}

int server_jobs_log_check(server_jobs *j, const char *user, const char *id, bool *found,
                          hoist_err **err) {
  store_row row = {0};
  int r = j->store->status(j->store, user, id, &row, err);
  store_row_clear(&row);
  *found = r == 1;
  return r < 0 ? r : 0;
}

int server_jobs_log_open(server_jobs *j, const char *id, store_log **out, hoist_err **err) {
  return j->store->log_open(j->store, id, out, err);
}

int server_jobs_log_read(server_jobs *j, store_log *l, uint64_t off, char *buf, size_t max,
                         size_t *n, hoist_err **err) {
  return j->store->log_read(j->store, l, off, buf, max, n, err);
}

void server_jobs_log_close(server_jobs *j, store_log *l) {
  if (l)
    j->store->log_close(j->store, l);
}

bool server_jobs_done(server_jobs *j, const char *id) {
  return j->store->done(j->store, id, NULL) != 0; /* an error ends a follower too */
}

bool server_jobs_healthy(server_jobs *j) { return j->store->healthy(j->store); }

bool server_jobs_executor_healthy(server_jobs *j) {
  return !j->exec->healthy || j->exec->healthy(j->exec);
}

const char *server_jobs_driver(server_jobs *j) { return j->store->driver; }

int server_jobs_metrics(server_jobs *j, bool per_user, hoist_buf *b, hoist_err **err) {
  store_counts c;
  if (j->store->counts(j->store, &c, err) < 0)
    return -1;
  pthread_mutex_lock(&j->lock);
  uint64_t shared = j->shared_total;
  int running_here = 0;
  for (int i = 0; i < j->nworkers; i++)
    running_here += j->slots[i].id[0] != '\0';
  pthread_mutex_unlock(&j->lock);
  if (hoist_buf_appendf(b, err,
                        "# HELP hoist_builds Build jobs in the store by state.\n"
                        "# TYPE hoist_builds gauge\n") < 0)
    return -1;
  for (int i = 0; i < STORE_NSTATES; i++)
    if (hoist_buf_appendf(b, err, "hoist_builds{state=\"%s\"} %" PRId64 "\n", store_states[i],
                          c.by_state[i]) < 0)
      return -1;
  if (per_user) {
    store_user_count *uc = NULL;
    size_t n = 0;
    if (j->store->user_counts(j->store, &uc, &n, err) < 0)
      return -1;
    int r = hoist_buf_appendf(b, err,
                              "# HELP hoist_builds_by_user Build jobs in the store by user and "
                              "state.\n# TYPE hoist_builds_by_user gauge\n");
    for (size_t i = 0; i < n; i++) {
      const char *user = uc[i].user;
      if (r == 0)
        r = hoist_buf_appendf(b, err, "hoist_builds_by_user{user=\"");
      /* the label value escaped as the text format says: \\, \" and \n */
      for (const char *p = user ? user : ""; r == 0 && *p; p++)
        r = *p == '\\'   ? hoist_buf_append(b, "\\\\", 2, err)
            : *p == '"'  ? hoist_buf_append(b, "\\\"", 2, err)
            : *p == '\n' ? hoist_buf_append(b, "\\n", 2, err)
                         : hoist_buf_append(b, p, 1, err);
      if (r == 0)
        r = hoist_buf_appendf(b, err, "\",state=\"%s\"} %" PRId64 "\n",
                              uc[i].state ? uc[i].state : "", uc[i].n);
      free(uc[i].user);
      free(uc[i].state);
    }
    free(uc);
    if (r < 0)
      return -1;
  }
  return hoist_buf_appendf(
      b, err,
      "# HELP hoist_build_queue_depth Builds waiting for a worker (in the store: every "
      "replica's).\n"
      "# TYPE hoist_build_queue_depth gauge\nhoist_build_queue_depth %" PRId64 "\n"
      "# HELP hoist_build_duration_seconds Run time of finished builds.\n"
      "# TYPE hoist_build_duration_seconds summary\n"
      "hoist_build_duration_seconds_sum %.3f\nhoist_build_duration_seconds_count %" PRId64 "\n"
      "# HELP hoist_build_shared_total Starts answered with an identical in-flight job.\n"
      "# TYPE hoist_build_shared_total counter\nhoist_build_shared_total %" PRIu64 "\n"
      "# HELP hoist_build_workers Build workers.\n# TYPE hoist_build_workers gauge\n"
      "hoist_build_workers %d\n"
      "# HELP hoist_replica_builds_running Builds this replica runs.\n"
      "# TYPE hoist_replica_builds_running gauge\nhoist_replica_builds_running %d\n"
      "# HELP hoist_replica_builds_started_total Builds this replica started.\n"
      "# TYPE hoist_replica_builds_started_total counter\n"
      "hoist_replica_builds_started_total %" PRIu64 "\n"
      "# HELP hoist_job_store_up Whether the job store answers.\n"
      "# TYPE hoist_job_store_up gauge\nhoist_job_store_up %d\n"
      "# HELP hoist_build_cache_hits_total Builds whose new layer came from the build cache.\n"
      "# TYPE hoist_build_cache_hits_total counter\nhoist_build_cache_hits_total %" PRIu64 "\n",
      c.by_state[0], c.duration_sum, c.duration_count, shared, j->nworkers, running_here,
      (uint64_t)atomic_load(&j->started), j->store->healthy(j->store) ? 1 : 0,
      (uint64_t)atomic_load(&j->cache_hits));
}
