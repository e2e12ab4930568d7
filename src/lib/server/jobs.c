/* server: the job store (SQLite, WAL) and the workers that run builds as
 * child `hoist build` processes, each in its own process group with its
 * output in DATA/jobs/<id>/log. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "hoist/build.h"
#include "hoist/digest.h"
#include "hoist/fs.h"
#include "hoist/registry.h"
#include "server-private.h"

extern char **environ;

#define ID_HEX 16

typedef struct running_slot {
  char id[ID_HEX + 1];
  pid_t pid;
  bool cancel;
} running_slot;

struct server_jobs {
  sqlite3 *db;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool stopping;
  char *data_dir;
  int jobs_fd; /* DATA/jobs */
  int lock_fd; /* DATA/serve.lock, locked while the store is open */
  const server_config *cfg;
  char *hoist_bin;
  int nworkers;
  pthread_t *threads;
  running_slot *slots;
  uint64_t shared_total;           /* starts answered by an in-flight job */
  atomic_uint_fast64_t cache_hits; /* builds whose layer came from the build cache */
  char *db_path;
  uint64_t generation; /* tells this store's per-thread readers from others' */
};

/* Each HTTP thread reads through its own read-only connection (WAL lets
 * readers run beside the writer), with the status query prepared once. */
typedef struct reader {
  uint64_t generation;
  sqlite3 *db;
  sqlite3_stmt *status;
} reader;

static pthread_key_t reader_key;
static pthread_once_t reader_once = PTHREAD_ONCE_INIT;
static atomic_uint_fast64_t generations;

static void reader_free(void *p) {
  reader *r = p;
  if (!r)
    return;
  sqlite3_finalize(r->status);
  sqlite3_close(r->db);
  free(r);
}

static void reader_key_init(void) { pthread_key_create(&reader_key, reader_free); }

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

HOIST_WUR static int db_err(server_jobs *j, hoist_err **err, const char *what) {
  /* a full volume is said as such (the service answers 507) */
  int code = sqlite3_errcode(j->db) == SQLITE_FULL ? ENOSPC : EIO;
  return hoist_err_set(err, code, "job store: %s: %s", what, sqlite3_errmsg(j->db));
}

HOIST_WUR static int exec_sql(server_jobs *j, const char *sql, hoist_err **err) {
  char *msg = NULL;
  if (sqlite3_exec(j->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    int r = hoist_err_set(err, EIO, "job store: %s", msg ? msg : "failed");
    sqlite3_free(msg);
    return r;
  }
  return 0;
}

/* Prepares sql and binds the text arguments in order (NULL binds null). */
static sqlite3_stmt *prep(server_jobs *j, const char *sql, int n, const char *const *args) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(j->db, sql, -1, &st, NULL) != SQLITE_OK)
    return NULL;
  for (int i = 0; i < n; i++)
    sqlite3_bind_text(st, i + 1, args[i], -1, SQLITE_TRANSIENT);
  return st;
}

/* The requirement file's name: the build recipe table's, so the file the
 * build places at /tmp/<file> keeps the name the kind expects. */
static const char *reqfile_of(const char *kind) {
  const hoist_build_kind *k = hoist_build_kind_find(kind);
  return k ? k->file : "requirements";
}

/* "build-<user>-<id>", the user shortened so the name fits 63 characters and
 * made of [a-z0-9-] only. */
static char *job_name(const char *user, const char *id) {
  size_t room = HOIST_SERVER_JOB_NAME_MAX - 6 - 1 - strlen(id);
  char u[64];
  size_t n = 0;
  for (; user[n] && n < room && n < sizeof u - 1; n++) {
    char c = user[n];
    u[n] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ? c : '-';
  }
  u[n] = '\0';
  return hoist_asprintf("build-%s-%s", u, id);
}

static void iso_time(double t, char out[32]) {
  time_t s = (time_t)t;
  struct tm tm;
  gmtime_r(&s, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *phase_of(const char *state) {
  if (strcmp(state, "queued") == 0)
    return "Pending";
  if (strcmp(state, "running") == 0)
    return "Running";
  if (strcmp(state, "succeeded") == 0)
    return "Succeeded";
  return "Failed";
}

/* Appends a line to a job's log (best effort: the log is for people). */
static void log_note(server_jobs *j, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void log_note(server_jobs *j, const char *id, const char *fmt, ...) {
  char path[64];
  snprintf(path, sizeof path, "%s/log", id);
  int fd = openat(j->jobs_fd, path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof line - 2)
    n = (int)sizeof line - 2;
  line[n++] = '\n';
  hoist_best_effort(hoist_fs_write_all(fd, line, (size_t)n, NULL)); /* a log line */
  close(fd);
}

/* ------------------------------------------------------------ running */

typedef struct job_row {
  char id[ID_HEX + 1];
  char *user, *source, *kind, *dest, *file_digest, *secret;
} job_row;

static void job_row_clear(job_row *r) {
  free(r->user);
  free(r->source);
  free(r->kind);
  free(r->dest);
  free(r->file_digest);
  free(r->secret);
  memset(r, 0, sizeof *r);
}

static char *col_dup(sqlite3_stmt *st, int i) {
  const unsigned char *t = sqlite3_column_text(st, i);
  return t ? hoist_strdup((const char *)t) : NULL;
}

/* Takes a queued job whose user is below the per-user limit, users taking
 * turns, and marks it running. Called with the lock held; 1 taken, 0 none. */
static int take_job(server_jobs *j, job_row *row) {
  sqlite3_stmt *st = NULL;
  /* the turn of the user whose last build started longest ago (never:
   * first), that user's oldest job */
  if (sqlite3_prepare_v2(j->db,
                         "SELECT id, user, source, kind, dest, file_digest, secret FROM jobs q "
                         "WHERE state = 'queued' AND (SELECT count(*) FROM jobs r WHERE "
                         "r.user = q.user AND r.state = 'running') < ? ORDER BY coalesce("
                         "(SELECT max(started) FROM jobs s WHERE s.user = q.user), 0), seq "
                         "LIMIT 1",
                         -1, &st, NULL) != SQLITE_OK)
    return 0;
  sqlite3_bind_int(st, 1, j->cfg->per_user_limit);
  int ret = 0;
  if (sqlite3_step(st) == SQLITE_ROW) {
    snprintf(row->id, sizeof row->id, "%s", sqlite3_column_text(st, 0));
    row->user = col_dup(st, 1);
    row->source = col_dup(st, 2);
    row->kind = col_dup(st, 3);
    row->dest = col_dup(st, 4);
    row->file_digest = col_dup(st, 5);
    row->secret = col_dup(st, 6);
    ret = 1;
  }
  sqlite3_finalize(st);
  if (ret) {
    sqlite3_stmt *up = NULL;
    sqlite3_prepare_v2(j->db, "UPDATE jobs SET state = 'running', started = ? WHERE id = ?", -1,
                       &up, NULL);
    sqlite3_bind_double(up, 1, now_s());
    sqlite3_bind_text(up, 2, row->id, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(up) != SQLITE_DONE)
      ret = 0;
    sqlite3_finalize(up);
  }
  return ret;
}

/* The last non-empty line of the log, as the job's error. */
static char *last_log_line(server_jobs *j, const char *id) {
  char path[64];
  snprintf(path, sizeof path, "%s/log", id);
  int fd = openat(j->jobs_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return NULL;
  char buf[2048];
  off_t size = lseek(fd, 0, SEEK_END);
  off_t from = size > (off_t)sizeof buf - 1 ? size - (off_t)sizeof buf + 1 : 0;
  ssize_t n = pread(fd, buf, sizeof buf - 1, from);
  close(fd);
  if (n <= 0)
    return NULL;
  buf[n] = '\0';
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
    buf[--n] = '\0';
  char *nl = strrchr(buf, '\n');
  return hoist_strdup(nl ? nl + 1 : buf);
}

/* The image digest from the build's stdout (its --json answer: "manifest"
 * of a build, "digest" of a re-tag); counts cache hits. */
static char *image_digest_of(server_jobs *j, const char *id) {
  char path[64];
  snprintf(path, sizeof path, "%s/out", id);
  _cleanup_free_ char *data = NULL;
  size_t len;
  if (hoist_fs_read_file(j->jobs_fd, path, 1 << 20, &data, &len, NULL) < 0)
    return NULL;
  json_t *o = json_loadb(data, len, JSON_DISABLE_EOF_CHECK, NULL);
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

/* Writes DATA/jobs/<id>/registry-auth.json for the build: the credentials of
 * the push host only (from the user's "user:password", or that host's entry
 * of a dockerconfigjson secret file), so a pull from any other host goes
 * without them; an empty document when there are none. */
HOIST_WUR static int write_push_auth(server_jobs *j, const job_row *row, hoist_err **err) {
  _cleanup_free_ char *host =
      strncmp(row->dest, "oci:", 4) == 0 ? NULL : strndup(row->dest, strcspn(row->dest, "/"));
  _cleanup_free_ char *userpass = NULL;
  json_t *auths = json_object();
  if (host && row->secret && strchr(row->secret, ':')) {
    userpass = hoist_strdup(row->secret);
  } else if (host && row->secret && *row->secret) {
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    hoist_creds cr = {0};
    bool found = false;
    if (hoist_fs_read_file(AT_FDCWD, row->secret, 1 << 20, &data, &len, err) < 0 ||
        hoist_creds_from_json(data, len, host, NULL, &cr, &found, err) < 0) {
      json_decref(auths);
      return hoist_err_wrap(err, "registry secret %s", row->secret);
    }
    if (found && cr.identity_token)
      json_object_set_new(auths, host, json_pack("{s:s}", "identitytoken", cr.identity_token));
    else if (found && cr.username && cr.password)
      userpass = hoist_asprintf("%s:%s", cr.username, cr.password);
    else if (found)
      hoist_warn("serve: registry secret %s: the entry for %s names a credential helper, which "
                 "builds do not run",
                 row->secret, host);
    hoist_creds_clear(&cr);
  }
  if (userpass) {
    size_t sl = strlen(userpass);
    _cleanup_free_ char *b64 = hoist_base64_encode(userpass, sl);
    OPENSSL_cleanse(userpass, sl);
    json_object_set_new(auths, host, json_pack("{s:s}", "auth", b64));
  }
  json_t *doc = json_pack("{s:o}", "auths", auths);
  _cleanup_free_ char *text = json_dumps(doc, JSON_COMPACT);
  json_decref(doc);
  _cleanup_close_ int dfd = openat(j->jobs_fd, row->id, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (dfd < 0)
    return hoist_err_errno(err, errno, "open jobs/%s", row->id);
  return hoist_fs_write_atomic(dfd, "registry-auth.json", text, strlen(text), 0600, err);
}

/* The build's environment: ours without the variables that would hand it
 * credentials for every registry. Caller frees the array, not the strings. */
static char **build_env(void) {
  static const char *const drop[] = {
      "REGISTRY_SECRET=", "REGISTRY_AUTH_FILE=", "DOCKER_CONFIG=", "REGISTRY_HOST="};
  size_t n = 0;
  while (environ[n])
    n++;
  char **v = hoist_calloc(n + 1, sizeof *v);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    bool keep = true;
    for (size_t d = 0; d < sizeof drop / sizeof drop[0]; d++)
      keep = keep && strncmp(environ[i], drop[d], strlen(drop[d])) != 0;
    if (keep)
      v[k++] = environ[i];
  }
  return v;
}

/* Copies the build's output into its log, at most max_log_bytes of it: past
 * that it is dropped, the cut marked once, and the last line kept so the
 * job's error is still the build's own. */
typedef struct log_pump {
  int fd;
  uint64_t written, cap;
  bool cut;
  char line[1024]; /* the line being read (its first bytes) */
  size_t line_len;
  char last[1024]; /* the last complete line */
  size_t last_len;
} log_pump;

static void pump(server_jobs *j, const job_row *row, log_pump *p, const char *data, size_t n) {
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
  if (take && hoist_fs_write_all(p->fd, data, take, NULL) == 0)
    p->written += take;
  if (take < n) {
    p->cut = true;
    log_note(j, row->id, "\nhoist serve: log cut at %" PRIu64 " bytes (max_log_bytes)%s", p->cap,
             j->cfg->log_overflow_fails ? "; the build is stopped"
                                        : "; the build goes on, its output is dropped");
  }
}

/* After the build: what a cut log lacks, its last line. */
static void pump_end(server_jobs *j, const job_row *row, log_pump *p) {
  if (p->line_len) { /* a last line without its newline */
    memcpy(p->last, p->line, p->line_len);
    p->last_len = p->line_len;
  }
  if (p->cut && p->last_len)
    log_note(j, row->id, "%.*s", (int)p->last_len, p->last);
}

static int run_child(server_jobs *j, const job_row *row, int slot, int *status) {
  _cleanup_free_ char *jobdir = hoist_asprintf("%s/jobs/%s", j->data_dir, row->id);
  _cleanup_free_ char *logp = hoist_asprintf("%s/log", jobdir);
  _cleanup_free_ char *outp = hoist_asprintf("%s/out", jobdir);
  _cleanup_free_ char *filep = hoist_asprintf("%s/%s", jobdir, reqfile_of(row->kind));
  _cleanup_free_ char *authp = hoist_asprintf("%s/registry-auth.json", jobdir);
  hoist_err *e = NULL;
  if (write_push_auth(j, row, &e) < 0) {
    _cleanup_free_ char *t = hoist_err_text(e);
    log_note(j, row->id, "hoist serve: %s", t);
    int code = hoist_err_root_code(e);
    hoist_err_free(e);
    return code > 0 && code < HOIST_E_BASE ? -code : -EIO;
  }
  _cleanup_strfreev_ char **sandbox = server_sandbox_args(j->cfg);
  size_t n_sandbox = 0;
  while (sandbox[n_sandbox])
    n_sandbox++;
  size_t n_insecure = 0;
  for (char **h = j->cfg->insecure; h && *h; h++)
    n_insecure++;
  _cleanup_free_ const char **argv = hoist_calloc(24 + 2 * n_insecure + n_sandbox, sizeof *argv);
  size_t n = 0;
  argv[n++] = j->hoist_bin;
  argv[n++] = "build";
  argv[n++] = "--source";
  argv[n++] = row->source;
  argv[n++] = "--kind";
  argv[n++] = row->kind;
  if (row->file_digest && *row->file_digest) { /* without a file: the source re-tagged */
    argv[n++] = "--file";
    argv[n++] = filep;
  }
  argv[n++] = "--target";
  argv[n++] = row->dest;
  argv[n++] = "--json";
  argv[n++] = "--authfile"; /* only this: no default file, no secret */
  argv[n++] = authp;
  for (char **h = j->cfg->insecure; h && *h; h++) {
    argv[n++] = "--insecure-registry";
    argv[n++] = *h;
  }
  for (size_t i = 0; i < n_sandbox; i++)
    argv[n++] = sandbox[i];
  argv[n] = NULL;
  _cleanup_free_ char **envp = build_env();

  log_pump lp = {.fd = -1, .cap = j->cfg->max_log_bytes};
  _cleanup_close_ int logfd =
      open(logp, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  _cleanup_close_ int outfd =
      open(outp, O_WRONLY | O_TRUNC | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  _cleanup_close_ int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int errp[2] = {-1, -1};
  if (logfd < 0 || outfd < 0 || nullfd < 0 || pipe2(errp, O_CLOEXEC) < 0) {
    int e2 = errno;
    unlink(authp);
    return -e2;
  }
  _cleanup_close_ int err_r = errp[0];
  lp.fd = logfd;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  /* every signal blocked across the fork; the child makes only async-signal-safe calls.
   * checksrc-allow: fork PR_SET_PDEATHSIG (the build dies with us), which posix_spawn cannot set */
  pid_t pid = fork();
  if (pid == 0) {
    /* only async-signal-safe calls from here to exec */
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(nullfd, 0);
    dup2(outfd, 1);
    dup2(errp[1], 2);
    if (chdir(jobdir) < 0)
      _exit(127);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int s = 1; s < NSIG; s++)
      sigaction(s, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(j->hoist_bin, (char *const *)argv, envp);
    _exit(127);
  }
  int fe = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  close(errp[1]);
  if (pid < 0) {
    unlink(authp);
    return -fe;
  }
  setpgid(pid, pid);

  pthread_mutex_lock(&j->lock);
  j->slots[slot].pid = pid;
  bool cancel_now = j->slots[slot].cancel;
  pthread_mutex_unlock(&j->lock);
  if (cancel_now)
    kill(-pid, SIGTERM);

  double term_at = 0, deadline = now_s() + j->cfg->build_timeout + TRANSFER_GRACE;
  bool overdue = false, output = true;
  for (;;) {
    pid_t w = waitpid(pid, status, WNOHANG);
    if (w == pid)
      break;
    if (w < 0 && errno != EINTR) {
      *status = 0x7f00;
      break;
    }
    /* the install's own timeout ends most builds; this one a stuck transfer */
    if (!overdue && now_s() > deadline) {
      overdue = true;
      log_note(j, row->id, "hoist serve: build timed out after %u s: killed",
               j->cfg->build_timeout + TRANSFER_GRACE);
    }
    pthread_mutex_lock(&j->lock);
    bool cancel =
        j->slots[slot].cancel || j->stopping || overdue || (lp.cut && j->cfg->log_overflow_fails);
    pthread_mutex_unlock(&j->lock);
    if (cancel) {
      if (term_at == 0) {
        term_at = now_s();
        kill(-pid, SIGTERM);
      } else if (now_s() - term_at > 5) {
        kill(-pid, SIGKILL);
      }
    }
    /* the build's output as it comes, or a pause of 50 ms */
    struct pollfd pfd = {output ? err_r : -1, POLLIN, 0};
    if (poll(&pfd, 1, 50) > 0) {
      char buf[65536];
      ssize_t r = read(err_r, buf, sizeof buf);
      if (r > 0)
        pump(j, row, &lp, buf, (size_t)r);
      else if (r == 0 || (errno != EINTR && errno != EAGAIN))
        output = false;
    }
  }
  /* whatever the build left in its group goes with it */
  kill(-pid, SIGKILL);
  unlink(authp);
  /* what it wrote before it ended (without waiting for a writer that is
   * not the build's) */
  fcntl(err_r, F_SETFL, O_NONBLOCK);
  char buf[65536];
  ssize_t r;
  while (output && (r = read(err_r, buf, sizeof buf)) != 0) {
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      break;
    pump(j, row, &lp, buf, (size_t)r);
  }
  pump_end(j, row, &lp);
  if (lp.cut && j->cfg->log_overflow_fails) {
    log_note(j, row->id,
             "hoist serve: build stopped: its log exceeded max_log_bytes (%" PRIu64 " bytes)",
             lp.cap);
    *status = 1 << 8;
  }
  return 0;
}

static void finish(server_jobs *j, const char *id, const char *state, const char *digest,
                   const char *error) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(j->db,
                         "UPDATE jobs SET state = ?, finished = ?, image_digest = ?, error = ?, "
                         "secret = NULL WHERE id = ?",
                         -1, &st, NULL) != SQLITE_OK)
    return;
  sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
  sqlite3_bind_double(st, 2, now_s());
  sqlite3_bind_text(st, 3, digest, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, error, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, id, -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_DONE)
    hoist_warn("serve: job %s: %s", id, sqlite3_errmsg(j->db));
  sqlite3_finalize(st);
}

static void *worker(void *arg) {
  server_jobs *j = ((void **)arg)[0];
  int slot = (int)(intptr_t)((void **)arg)[1];
  free(arg);
  pthread_mutex_lock(&j->lock);
  while (!j->stopping) {
    job_row row = {0};
    if (!take_job(j, &row)) {
      pthread_cond_wait(&j->cond, &j->lock);
      continue;
    }
    snprintf(j->slots[slot].id, sizeof j->slots[slot].id, "%s", row.id);
    j->slots[slot].pid = 0;
    j->slots[slot].cancel = false;
    pthread_mutex_unlock(&j->lock);

    log_note(j, row.id, "hoist serve: job %s: %s -> %s", row.id, row.source, row.dest);
    int status = 0;
    int r = run_child(j, &row, slot, &status);
    _cleanup_free_ char *digest = NULL;
    _cleanup_free_ char *error = NULL;
    const char *state;

    pthread_mutex_lock(&j->lock);
    bool canceled = j->slots[slot].cancel;
    bool stopping = j->stopping;
    pthread_mutex_unlock(&j->lock);
    if (r < 0) {
      state = "failed";
      error = hoist_asprintf("cannot start the build: %s", strerror(-r));
    } else if (canceled) {
      state = "canceled";
      error = hoist_strdup("canceled");
    } else if (stopping) {
      state = "failed";
      error = hoist_strdup("server stopped");
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      state = "succeeded";
      digest = image_digest_of(j, row.id);
    } else {
      state = "failed";
      error = last_log_line(j, row.id);
      if (!error || !*error) {
        free(error);
        error = WIFSIGNALED(status) ? hoist_asprintf("build killed by signal %d", WTERMSIG(status))
                                    : hoist_asprintf("build exited %d", WEXITSTATUS(status));
      }
    }
    log_note(j, row.id, "hoist serve: job %s %s", row.id, state);
    pthread_mutex_lock(&j->lock);
    finish(j, row.id, state, digest, error);
    memset(&j->slots[slot], 0, sizeof j->slots[slot]);
    pthread_cond_broadcast(&j->cond);
    job_row_clear(&row);
  }
  pthread_mutex_unlock(&j->lock);
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

/* jobs.db and its WAL files readable by the service only (SQLite gives the
 * WAL files the database's mode). */
HOIST_WUR static int private_db(const char *dbp, hoist_err **err) {
  _cleanup_close_ int fd = open(dbp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 || fchmod(fd, 0600) < 0)
    return hoist_err_errno(err, errno, "%s", dbp);
  static const char *const suffix[] = {"-wal", "-shm"};
  for (size_t i = 0; i < 2; i++) {
    _cleanup_free_ char *p = hoist_asprintf("%s%s", dbp, suffix[i]);
    if (chmod(p, 0600) < 0 && errno != ENOENT)
      return hoist_err_errno(err, errno, "chmod %s", p);
  }
  return 0;
}

int server_jobs_open(const char *data_dir, const server_config *cfg, int workers,
                     const char *hoist_bin, server_jobs **out, hoist_err **err) {
  server_jobs *j = hoist_malloc0(sizeof *j);
  j->data_dir = hoist_strdup(data_dir);
  j->cfg = cfg;
  j->hoist_bin = hoist_strdup(hoist_bin);
  j->jobs_fd = -1;
  j->generation = atomic_fetch_add(&generations, 1) + 1;
  j->db_path = hoist_asprintf("%s/jobs.db", data_dir);
  pthread_mutex_init(&j->lock, NULL);
  pthread_cond_init(&j->cond, NULL);
  _cleanup_free_ char *jobs = hoist_asprintf("%s/jobs", data_dir);
  _cleanup_free_ char *dbp = hoist_asprintf("%s/jobs.db", data_dir);
  j->lock_fd = -1;
  if (own_data_dir(j, err) < 0 || private_db(dbp, err) < 0)
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
  if (sqlite3_open_v2(dbp, &j->db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      NULL) != SQLITE_OK) {
    hoist_err_set(err, EIO, "open %s: %s", dbp, j->db ? sqlite3_errmsg(j->db) : "no memory");
    goto fail;
  }
  sqlite3_busy_timeout(j->db, 5000);
  if (exec_sql(j,
               "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
               "CREATE TABLE IF NOT EXISTS jobs ("
               " seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,"
               " user TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL,"
               " kind TEXT NOT NULL, file_digest TEXT NOT NULL, dest TEXT NOT NULL,"
               " image TEXT NOT NULL, secret TEXT, state TEXT NOT NULL, created REAL NOT NULL,"
               " started REAL, finished REAL, image_digest TEXT, error TEXT);"
               "CREATE INDEX IF NOT EXISTS jobs_user ON jobs (user, created);"
               "CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);",
               err) < 0 ||
      sqlite3_exec(j->db, "PRAGMA integrity_check", NULL, NULL, NULL) != SQLITE_OK)
    goto fail;

  /* jobs a previous process left running: never lost, never stuck */
  sqlite3_stmt *st = prep(j, "SELECT id FROM jobs WHERE state = 'running'", 0, NULL);
  while (st && sqlite3_step(st) == SQLITE_ROW)
    log_note(j, (const char *)sqlite3_column_text(st, 0), "hoist serve: server restarted%s",
             cfg->restart == HOIST_RESTART_REQUEUE ? "; queued again" : "");
  sqlite3_finalize(st);
  char sql[256];
  if (cfg->restart == HOIST_RESTART_REQUEUE)
    snprintf(sql, sizeof sql,
             "UPDATE jobs SET state = 'queued', started = NULL WHERE state = 'running'");
  else
    snprintf(sql, sizeof sql,
             "UPDATE jobs SET state = 'failed', error = 'server restarted', finished = %.3f "
             "WHERE state = 'running'",
             now_s());
  if (exec_sql(j, sql, err) < 0)
    goto fail;

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
  if (j->db)
    sqlite3_close(j->db);
  if (j->jobs_fd >= 0)
    close(j->jobs_fd);
  if (j->lock_fd >= 0)
    close(j->lock_fd); /* the next server may take the data directory */
  pthread_mutex_destroy(&j->lock);
  pthread_cond_destroy(&j->cond);
  free(j->threads);
  free(j->slots);
  free(j->data_dir);
  free(j->db_path);
  free(j->hoist_bin);
  free(j);
}

/* Where the image goes and what the status calls it, per the registry
 * precedence: process env, the user's env, the config file, else the
 * embedded layout under DATA/images. */
static void destination(server_jobs *j, const server_user *u, const hoist_build_request *req,
                        char **dest, char **image, char **secret) {
  const char *host = j->cfg->registry_host_override;
  const char *uhost = json_string_value(json_object_get(u->env, "REGISTRY_HOST"));
  const char *pull = NULL;
  if (!host || !*host)
    host = uhost;
  if (!host || !*host) {
    host = j->cfg->registry_host;
    pull = j->cfg->registry_pull_host;
  }
  *secret = NULL;
  const char *usecret = json_string_value(json_object_get(u->env, "REGISTRY_SECRET"));
  if (usecret && *usecret)
    *secret = hoist_strdup(usecret);
  else if (j->cfg->registry_secret)
    *secret = hoist_strdup(j->cfg->registry_secret);
  if (host && *host) {
    *dest = hoist_asprintf("%s/%s:%s", host, req->target_user, req->target_tag);
    *image = hoist_asprintf("%s/%s:%s", pull ? pull : host, req->target_user, req->target_tag);
  } else {
    *dest = hoist_asprintf("oci:%s/images/%s:%s", j->data_dir, req->target_user, req->target_tag);
    *image = hoist_strdup(*dest);
  }
}

int server_jobs_submit(server_jobs *j, const server_user *u, const hoist_build_request *req,
                       char **id_out, char **name_out, bool *shared, hoist_refusal *why,
                       hoist_err **err) {
  _cleanup_free_ char *dest = NULL;
  _cleanup_free_ char *image = NULL;
  _cleanup_free_ char *secret = NULL;
  destination(j, u, req, &dest, &image, &secret);
  *shared = false;
  _cleanup_free_ char *push_host =
      strncmp(dest, "oci:", 4) == 0 ? NULL : strndup(dest, strcspn(dest, "/"));
  if (!server_source_allowed(j->cfg, u->login, push_host, req->source, why))
    return 1;

  pthread_mutex_lock(&j->lock);
  const char *key[] = {u->login, req->source, req->kind, req->file_digest, req->target, dest};
  sqlite3_stmt *st = prep(j,
                          "SELECT id FROM jobs WHERE user = ? AND source = ? AND kind = ? AND "
                          "file_digest = ? AND target = ? AND dest = ? AND state IN "
                          "('queued', 'running') LIMIT 1",
                          6, key);
  if (!st) {
    pthread_mutex_unlock(&j->lock);
    return db_err(j, err, "find");
  }
  if (sqlite3_step(st) == SQLITE_ROW) {
    *id_out = col_dup(st, 0);
    *name_out = job_name(u->login, *id_out);
    *shared = true;
    j->shared_total++;
    sqlite3_finalize(st);
    pthread_mutex_unlock(&j->lock);
    return 0;
  }
  sqlite3_finalize(st);

  /* one user's queue cannot fill the service */
  const char *who[] = {u->login};
  st = prep(j, "SELECT count(*) FROM jobs WHERE user = ? AND state = 'queued'", 1, who);
  int64_t queued = st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  if (queued >= j->cfg->per_user_queue) {
    pthread_mutex_unlock(&j->lock);
    why->status = 429;
    snprintf(why->message, sizeof why->message,
             "Too many queued builds (per_user_queue: at most %d per user); retry later.",
             j->cfg->per_user_queue);
    return 1;
  }

  unsigned char rnd[ID_HEX / 2];
  char id[ID_HEX + 1];
  if (RAND_bytes(rnd, sizeof rnd) != 1) {
    pthread_mutex_unlock(&j->lock);
    return hoist_err_set(err, EIO, "no random bytes");
  }
  for (size_t i = 0; i < sizeof rnd; i++)
    sprintf(id + 2 * i, "%02x", rnd[i]);

  if (mkdirat(j->jobs_fd, id, 0700) < 0) {
    pthread_mutex_unlock(&j->lock);
    return hoist_err_errno(err, errno, "mkdir jobs/%s", id);
  }
  int ret = 0;
  if (req->file) {
    _cleanup_close_ int dfd = openat(j->jobs_fd, id, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (dfd < 0 ||
        hoist_fs_write_atomic(dfd, reqfile_of(req->kind), req->file, req->file_len, 0644, err) < 0)
      ret = dfd < 0 ? hoist_err_errno(err, errno, "open jobs/%s", id) : -1;
  }
  if (ret == 0) {
    const char *args[] = {id,   u->login, req->source, req->target, req->kind, req->file_digest,
                          dest, image,    secret};
    st = prep(j,
              "INSERT INTO jobs (id, user, source, target, kind, file_digest, dest, image, secret,"
              " state, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?)",
              9, args);
    if (st) {
      sqlite3_bind_double(st, 10, now_s());
      if (sqlite3_step(st) != SQLITE_DONE)
        ret = db_err(j, err, "insert");
      sqlite3_finalize(st);
    } else {
      ret = db_err(j, err, "insert");
    }
  }
  if (ret < 0) {
    hoist_best_effort(hoist_fs_rm_rf_at(j->jobs_fd, id, NULL)); /* the job was not stored */
    pthread_mutex_unlock(&j->lock);
    return ret;
  }
  pthread_cond_broadcast(&j->cond);
  pthread_mutex_unlock(&j->lock);
  *id_out = hoist_strdup(id);
  *name_out = job_name(u->login, id);
  return 0;
}

static void set_time(json_t *o, const char *name, sqlite3_stmt *st, int col) {
  if (sqlite3_column_type(st, col) == SQLITE_NULL) {
    json_object_set_new(o, name, json_null());
    return;
  }
  char t[32];
  iso_time(sqlite3_column_double(st, col), t);
  json_object_set_new(o, name, json_string(t));
}

static void set_text(json_t *o, const char *name, sqlite3_stmt *st, int col) {
  const unsigned char *t = sqlite3_column_text(st, col);
  json_object_set_new(o, name, t ? json_string((const char *)t) : json_null());
}

#define JOB_COLS                                                                                   \
  "id, user, source, target, kind, state, created, started, finished, image, image_digest, "       \
  "error, file_digest"

static json_t *row_json(sqlite3_stmt *st) {
  json_t *o = json_object();
  const char *id = (const char *)sqlite3_column_text(st, 0);
  const char *user = (const char *)sqlite3_column_text(st, 1);
  const char *state = (const char *)sqlite3_column_text(st, 5);
  json_object_set_new(o, "id", json_string(id));
  char *name = job_name(user, id);
  json_object_set_new(o, "job_name", json_string(name));
  free(name);
  json_object_set_new(o, "phase", json_string(phase_of(state)));
  json_object_set_new(o, "state", json_string(state));
  set_time(o, "creationTime", st, 6);
  set_time(o, "startTime", st, 7);
  set_time(o, "completionTime", st, 8);
  set_text(o, "source", st, 2);
  set_text(o, "target", st, 3);
  set_text(o, "kind", st, 4);
  set_text(o, "image", st, 9);
  set_text(o, "digest", st, 10);
  set_text(o, "error", st, 11);
  return o;
}

#define STATUS_SQL "SELECT " JOB_COLS " FROM jobs WHERE id = ? AND user = ?"

/* This thread's reader of j, opened on first use; NULL when it cannot be. */
static reader *thread_reader(server_jobs *j) {
  pthread_once(&reader_once, reader_key_init);
  reader *r = pthread_getspecific(reader_key);
  if (r && r->generation == j->generation)
    return r;
  reader_free(r);
  pthread_setspecific(reader_key, NULL);
  r = hoist_malloc0(sizeof *r);
  r->generation = j->generation;
  if (sqlite3_open_v2(j->db_path, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
          SQLITE_OK ||
      sqlite3_busy_timeout(r->db, 5000) != SQLITE_OK ||
      sqlite3_prepare_v2(r->db, STATUS_SQL, -1, &r->status, NULL) != SQLITE_OK) {
    reader_free(r);
    return NULL;
  }
  pthread_setspecific(reader_key, r);
  return r;
}

int server_jobs_status(server_jobs *j, const char *user, const char *id, json_t **out, bool *found,
                       hoist_err **err) {
  *found = false;
  reader *rd = thread_reader(j);
  sqlite3_stmt *st = NULL;
  if (rd) {
    st = rd->status;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, user, -1, SQLITE_TRANSIENT);
  } else {
    const char *args[] = {id, user};
    st = prep(j, STATUS_SQL, 2, args);
    if (!st)
      return db_err(j, err, "status");
  }
  int r = sqlite3_step(st);
  if (r == SQLITE_ROW) {
    *out = row_json(st);
    *found = true;
  }
  if (rd) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
  } else {
    sqlite3_finalize(st);
  }
  if (r == SQLITE_ROW || r == SQLITE_DONE)
    return 0;
  return hoist_err_set(err, EIO, "job store: status: %s", sqlite3_errmsg(rd ? rd->db : j->db));
}

int server_jobs_list(server_jobs *j, const char *user, json_t **out, hoist_err **err) {
  sqlite3_stmt *st = prep(
      j, "SELECT " JOB_COLS " FROM jobs WHERE user = ? ORDER BY seq DESC LIMIT 1000", 1, &user);
  if (!st)
    return db_err(j, err, "list");
  json_t *a = json_array();
  int r;
  while ((r = sqlite3_step(st)) == SQLITE_ROW)
    json_array_append_new(a, row_json(st));
  sqlite3_finalize(st);
  if (r != SQLITE_DONE) {
    json_decref(a);
    return db_err(j, err, "list");
  }
  *out = a;
  return 0;
}

int server_jobs_cleanup(server_jobs *j, const char *user, double hours, int *n, hoist_err **err) {
  *n = 0;
  pthread_mutex_lock(&j->lock);
  sqlite3_stmt *st = prep(j,
                          "SELECT id FROM jobs WHERE user = ? AND state IN ('succeeded', "
                          "'failed', 'canceled') AND created <= ?",
                          1, &user);
  if (!st) {
    pthread_mutex_unlock(&j->lock);
    return db_err(j, err, "cleanup");
  }
  sqlite3_bind_double(st, 2, now_s() - hours * 3600.0);
  char **ids = NULL;
  size_t count = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    ids = hoist_reallocarray(ids, count + 1, sizeof *ids);
    ids[count++] = col_dup(st, 0);
  }
  sqlite3_finalize(st);
  int ret = exec_sql(j, "BEGIN", err);
  for (size_t i = 0; i < count && ret == 0; i++) {
    sqlite3_stmt *d = prep(j, "DELETE FROM jobs WHERE id = ?", 1, (const char **)&ids[i]);
    if (!d || sqlite3_step(d) != SQLITE_DONE)
      ret = db_err(j, err, "cleanup");
    sqlite3_finalize(d);
  }
  /* the logs go only when the rows are gone for good */
  if (ret == 0)
    ret = exec_sql(j, "COMMIT", err);
  if (ret < 0)
    hoist_best_effort(exec_sql(j, "ROLLBACK", NULL)); /* the error above is the one */
  pthread_mutex_unlock(&j->lock);
  for (size_t i = 0; i < count; i++) {
    if (ret == 0) {
      hoist_err *e = NULL;
      if (hoist_fs_rm_rf_at(j->jobs_fd, ids[i], &e) < 0) {
        hoist_warn("serve: cleanup jobs/%s: %s", ids[i], e->msg);
        hoist_err_free(e);
      }
    }
    free(ids[i]);
  }
  free(ids);
  if (ret == 0)
    *n = (int)count;
  return ret;
}

int server_jobs_cancel(server_jobs *j, const char *user, const char *id, hoist_err **err) {
  const char *args[] = {id, user};
  pthread_mutex_lock(&j->lock);
  sqlite3_stmt *st = prep(j, "SELECT state FROM jobs WHERE id = ? AND user = ?", 2, args);
  if (!st) {
    pthread_mutex_unlock(&j->lock);
    return db_err(j, err, "cancel");
  }
  int ret = 0;
  if (sqlite3_step(st) == SQLITE_ROW) {
    const char *state = (const char *)sqlite3_column_text(st, 0);
    if (strcmp(state, "queued") == 0) {
      finish(j, id, "canceled", NULL, "canceled");
      ret = 1;
    } else if (strcmp(state, "running") == 0) {
      for (int i = 0; i < j->nworkers; i++)
        if (strcmp(j->slots[i].id, id) == 0) {
          j->slots[i].cancel = true;
          if (j->slots[i].pid > 0)
            kill(-j->slots[i].pid, SIGTERM);
        }
      ret = 1;
    } else {
      ret = 2;
    }
  }
  sqlite3_finalize(st);
  pthread_mutex_unlock(&j->lock);
  if (ret == 1)
    log_note(j, id, "hoist serve: cancel requested");
  return ret;
}

int server_jobs_log_open(server_jobs *j, const char *user, const char *id, int *fd, bool *found,
                         hoist_err **err) {
  const char *args[] = {id, user};
  *found = false;
  *fd = -1;
  sqlite3_stmt *st = prep(j, "SELECT 1 FROM jobs WHERE id = ? AND user = ?", 2, args);
  if (!st)
    return db_err(j, err, "logs");
  *found = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  if (!*found)
    return 0;
  char path[64];
  snprintf(path, sizeof path, "%s/log", id);
  *fd = openat(j->jobs_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (*fd < 0 && errno != ENOENT)
    return hoist_err_errno(err, errno, "open log of %s", id);
  return 0;
}

int server_jobs_log_fd(server_jobs *j, const char *id) {
  char path[64];
  snprintf(path, sizeof path, "%s/log", id);
  return openat(j->jobs_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
}

bool server_jobs_done(server_jobs *j, const char *id) {
  sqlite3_stmt *st = prep(j, "SELECT state FROM jobs WHERE id = ?", 1, &id);
  bool done = true;
  if (st && sqlite3_step(st) == SQLITE_ROW) {
    const char *s = (const char *)sqlite3_column_text(st, 0);
    done = strcmp(s, "queued") != 0 && strcmp(s, "running") != 0;
  }
  sqlite3_finalize(st);
  return done;
}

int server_jobs_metrics(server_jobs *j, bool per_user, hoist_buf *b, hoist_err **err) {
  static const char *const states[] = {"queued", "running", "succeeded", "failed", "canceled"};
  int64_t counts[5] = {0};
  sqlite3_stmt *st = prep(j, "SELECT state, count(*) FROM jobs GROUP BY state", 0, NULL);
  if (!st)
    return db_err(j, err, "metrics");
  while (sqlite3_step(st) == SQLITE_ROW)
    for (int i = 0; i < 5; i++)
      if (strcmp((const char *)sqlite3_column_text(st, 0), states[i]) == 0)
        counts[i] = sqlite3_column_int64(st, 1);
  sqlite3_finalize(st);
  double sum = 0;
  int64_t cnt = 0;
  st = prep(j,
            "SELECT coalesce(sum(finished - started), 0), count(*) FROM jobs WHERE started IS "
            "NOT NULL AND finished IS NOT NULL",
            0, NULL);
  if (st && sqlite3_step(st) == SQLITE_ROW) {
    sum = sqlite3_column_double(st, 0);
    cnt = sqlite3_column_int64(st, 1);
  }
  sqlite3_finalize(st);
  pthread_mutex_lock(&j->lock);
  uint64_t shared = j->shared_total;
  pthread_mutex_unlock(&j->lock);
  if (hoist_buf_appendf(b, err,
                        "# HELP hoist_builds Build jobs in the store by state.\n"
                        "# TYPE hoist_builds gauge\n") < 0)
    return -1;
  for (int i = 0; i < 5; i++)
    if (hoist_buf_appendf(b, err, "hoist_builds{state=\"%s\"} %" PRId64 "\n", states[i],
                          counts[i]) < 0)
      return -1;
  if (per_user) {
    st = prep(j, "SELECT user, state, count(*) FROM jobs GROUP BY user, state ORDER BY user, state",
              0, NULL);
    if (!st)
      return db_err(j, err, "metrics");
    int r = hoist_buf_appendf(b, err,
                              "# HELP hoist_builds_by_user Build jobs in the store by user and "
                              "state.\n# TYPE hoist_builds_by_user gauge\n");
    while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
      const char *user = (const char *)sqlite3_column_text(st, 0);
      const char *state = (const char *)sqlite3_column_text(st, 1);
      r = hoist_buf_appendf(b, err, "hoist_builds_by_user{user=\"");
      /* the label value escaped as the text format says: \\, \" and \n */
      for (const char *p = user ? user : ""; r == 0 && *p; p++)
        r = *p == '\\'   ? hoist_buf_append(b, "\\\\", 2, err)
            : *p == '"'  ? hoist_buf_append(b, "\\\"", 2, err)
            : *p == '\n' ? hoist_buf_append(b, "\\n", 2, err)
                         : hoist_buf_append(b, p, 1, err);
      if (r == 0)
        r = hoist_buf_appendf(b, err, "\",state=\"%s\"} %" PRId64 "\n", state ? state : "",
                              (int64_t)sqlite3_column_int64(st, 2));
    }
    sqlite3_finalize(st);
    if (r < 0)
      return -1;
  }
  return hoist_buf_appendf(
      b, err,
      "# HELP hoist_build_queue_depth Builds waiting for a worker.\n"
      "# TYPE hoist_build_queue_depth gauge\nhoist_build_queue_depth %" PRId64 "\n"
      "# HELP hoist_build_duration_seconds Run time of finished builds.\n"
      "# TYPE hoist_build_duration_seconds summary\n"
      "hoist_build_duration_seconds_sum %.3f\nhoist_build_duration_seconds_count %" PRId64 "\n"
      "# HELP hoist_build_shared_total Starts answered with an identical in-flight job.\n"
      "# TYPE hoist_build_shared_total counter\nhoist_build_shared_total %" PRIu64 "\n"
      "# HELP hoist_build_workers Build workers.\n# TYPE hoist_build_workers gauge\n"
      "hoist_build_workers %d\n"
      "# HELP hoist_build_cache_hits_total Builds whose new layer came from the build cache.\n"
      "# TYPE hoist_build_cache_hits_total counter\nhoist_build_cache_hits_total %" PRIu64 "\n",
      counts[0], sum, cnt, shared, j->nworkers, (uint64_t)atomic_load(&j->cache_hits));
}
