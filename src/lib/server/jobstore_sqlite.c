/* server: the SQLite job store (WAL), for one `hoist serve`: the jobs in
 * PATH, the logs as files JOBS/<id>/log. Schema versions in user_version. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hoist/fs.h"
#include "jobstore.h"

typedef struct sq_store {
  server_store base;
  sqlite3 *db;
  pthread_mutex_t lock; /* one writer: a read-then-write is one step */
  char *path;
  char *jobs_dir;
  uint64_t generation; /* tells this store's per-thread readers from others' */
} sq_store;

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

HOIST_WUR static int db_err(sqlite3 *db, hoist_err **err, const char *what) {
  /* a full volume is said as such (the service answers 507) */
  int code = sqlite3_errcode(db) == SQLITE_FULL ? ENOSPC : EIO;
  return hoist_err_set(err, code, "job store: %s: %s", what, sqlite3_errmsg(db));
}

HOIST_WUR static int exec_sql(sq_store *q, const char *sql, hoist_err **err) {
  char *msg = NULL;
  if (sqlite3_exec(q->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    int code = sqlite3_errcode(q->db) == SQLITE_FULL ? ENOSPC : EIO;
    int r = hoist_err_set(err, code, "job store: %s", msg ? msg : "failed");
    sqlite3_free(msg);
    return r;
  }
  return 0;
}

/* Prepares sql and binds the text arguments in order (NULL binds null). */
static sqlite3_stmt *prep(sqlite3 *db, const char *sql, int n, const char *const *args) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    return NULL;
  for (int i = 0; i < n; i++)
    sqlite3_bind_text(st, i + 1, args[i], -1, SQLITE_TRANSIENT);
  return st;
}

static char *col_dup(sqlite3_stmt *st, int i) {
  const unsigned char *t = sqlite3_column_text(st, i);
  return t ? hoist_strdup((const char *)t) : NULL;
}

static double col_time(sqlite3_stmt *st, int i) {
  return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : sqlite3_column_double(st, i);
}

#define ROW_COLS                                                                                   \
  "id, user, source, target, kind, state, created, started, finished, image, image_digest, error"

static void row_of(sqlite3_stmt *st, store_row *r) {
  r->id = col_dup(st, 0);
  r->user = col_dup(st, 1);
  r->source = col_dup(st, 2);
  r->target = col_dup(st, 3);
  r->kind = col_dup(st, 4);
  r->state = col_dup(st, 5);
  r->created = col_time(st, 6);
  r->started = col_time(st, 7);
  r->finished = col_time(st, 8);
  r->image = col_dup(st, 9);
  r->digest = col_dup(st, 10);
  r->error = col_dup(st, 11);
}

/* ------------------------------------------------------------ jobs */

static int sq_enqueue(server_store *s, const store_new *n, int per_user_queue, char **id,
                      bool *shared, bool *full, hoist_err **err) {
  sq_store *q = (sq_store *)s;
  *shared = *full = false;
  pthread_mutex_lock(&q->lock);
  sqlite3_stmt *st = prep(q->db,
                          "SELECT id FROM jobs WHERE key = ? AND state IN ('queued', 'running') "
                          "LIMIT 1",
                          1, &n->key);
  int ret = 0;
  if (!st) {
    ret = db_err(q->db, err, "find");
    goto out;
  }
  if (sqlite3_step(st) == SQLITE_ROW) {
    *id = col_dup(st, 0);
    *shared = true;
    sqlite3_finalize(st);
    goto out;
  }
  sqlite3_finalize(st);
  /* one user's queue cannot fill the service; counted up to the limit only,
   * on the index of queued jobs, so a long queue or history costs nothing */
  st = prep(q->db,
            "SELECT count(*) FROM (SELECT 1 FROM jobs WHERE user = ? AND state = 'queued' LIMIT ?)",
            1, &n->user);
  if (st)
    sqlite3_bind_int(st, 2, per_user_queue);
  int64_t queued = st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  if (queued >= per_user_queue) {
    *full = true;
    goto out;
  }
  const char *args[] = {n->id,          n->user, n->source, n->target, n->kind,
                        n->file_digest, n->dest, n->image,  n->secret, n->key};
  st = prep(q->db,
            "INSERT INTO jobs (id, user, source, target, kind, file_digest, dest, image, secret,"
            " key, state, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?)",
            10, args);
  if (!st) {
    ret = db_err(q->db, err, "insert");
    goto out;
  }
  sqlite3_bind_double(st, 11, now_s());
  if (sqlite3_step(st) != SQLITE_DONE)
    ret = db_err(q->db, err, "insert");
  sqlite3_finalize(st);
  if (ret == 0)
    *id = hoist_strdup(n->id);
out:
  pthread_mutex_unlock(&q->lock);
  return ret;
}

static int sq_claim(server_store *s, const char *owner, int per_user_limit, double lease_s,
                    store_job *row, hoist_err **err) {
  (void)lease_s;
  sq_store *q = (sq_store *)s;
  pthread_mutex_lock(&q->lock);
  sqlite3_stmt *st = NULL;
  /* the turn of the user whose last build started longest ago (never:
   * first), that user's oldest job */
  if (sqlite3_prepare_v2(q->db,
                         "SELECT id, user, source, kind, dest, file_digest, secret FROM jobs q "
                         "WHERE state = 'queued' AND (SELECT count(*) FROM jobs r WHERE "
                         "r.user = q.user AND r.state = 'running') < ? ORDER BY coalesce("
                         "(SELECT max(started) FROM jobs s WHERE s.user = q.user), 0), seq "
                         "LIMIT 1",
                         -1, &st, NULL) != SQLITE_OK) {
    int r = db_err(q->db, err, "claim");
    pthread_mutex_unlock(&q->lock);
    return r;
  }
  sqlite3_bind_int(st, 1, per_user_limit);
  int ret = 0;
  int sr = sqlite3_step(st);
  if (sr == SQLITE_ROW) {
    snprintf(row->id, sizeof row->id, "%s", sqlite3_column_text(st, 0));
    row->user = col_dup(st, 1);
    row->source = col_dup(st, 2);
    row->kind = col_dup(st, 3);
    row->dest = col_dup(st, 4);
    row->file_digest = col_dup(st, 5);
    row->secret = col_dup(st, 6);
    ret = 1;
  } else if (sr != SQLITE_DONE) {
    ret = db_err(q->db, err, "claim");
  }
  sqlite3_finalize(st);
  if (ret == 1) {
    sqlite3_stmt *up = prep(
        q->db, "UPDATE jobs SET state = 'running', started = ?, owner = ? WHERE id = ?", 0, NULL);
    if (up) {
      sqlite3_bind_double(up, 1, now_s());
      sqlite3_bind_text(up, 2, owner, -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(up, 3, row->id, -1, SQLITE_TRANSIENT);
    }
    if (!up || sqlite3_step(up) != SQLITE_DONE) {
      ret = db_err(q->db, err, "claim");
      store_job_clear(row);
    }
    sqlite3_finalize(up);
  }
  pthread_mutex_unlock(&q->lock);
  return ret;
}

static int sq_heartbeat(server_store *s, const char *owner, double lease_s, char *const *running,
                        char ***cancel, hoist_err **err) {
  (void)s, (void)owner, (void)lease_s, (void)running, (void)err;
  *cancel = NULL; /* one process: its cancels reach its builds directly */
  return 0;
}

static int sq_finish(server_store *s, const char *id, const char *owner, const char *state,
                     const char *digest, const char *error, hoist_err **err) {
  sq_store *q = (sq_store *)s;
  pthread_mutex_lock(&q->lock);
  sqlite3_stmt *st = prep(q->db,
                          "UPDATE jobs SET state = ?, finished = ?, image_digest = ?, error = ?, "
                          "secret = NULL, owner = NULL WHERE id = ? AND owner = ? AND state = "
                          "'running'",
                          0, NULL);
  int ret = 0;
  if (st) {
    sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 2, now_s());
    sqlite3_bind_text(st, 3, digest, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, error, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, owner, -1, SQLITE_STATIC);
  }
  if (!st || sqlite3_step(st) != SQLITE_DONE)
    ret = db_err(q->db, err, "finish");
  sqlite3_finalize(st);
  pthread_mutex_unlock(&q->lock);
  return ret;
}

static int sq_cancel(server_store *s, const char *user, const char *id, bool *running,
                     hoist_err **err) {
  sq_store *q = (sq_store *)s;
  const char *args[] = {id, user};
  *running = false;
  pthread_mutex_lock(&q->lock);
  sqlite3_stmt *st = prep(q->db, "SELECT state FROM jobs WHERE id = ? AND user = ?", 2, args);
  int ret = 0;
  if (!st) {
    ret = db_err(q->db, err, "cancel");
    goto out;
  }
  if (sqlite3_step(st) == SQLITE_ROW) {
    const char *state = (const char *)sqlite3_column_text(st, 0);
    if (strcmp(state, "queued") == 0) {
      ret = 1;
    } else if (strcmp(state, "running") == 0) {
      ret = 1;
      *running = true;
    } else {
      ret = 2;
    }
  }
  sqlite3_finalize(st);
  if (ret == 1) {
    st = prep(q->db,
              *running ? "UPDATE jobs SET cancel = 1 WHERE id = ?"
                       : "UPDATE jobs SET state = 'canceled', error = 'canceled', secret = NULL, "
                         "finished = ? WHERE id = ? AND state = 'queued'",
              0, NULL);
    if (st && *running) {
      sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    } else if (st) {
      sqlite3_bind_double(st, 1, now_s());
      sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    }
    if (!st || sqlite3_step(st) != SQLITE_DONE)
      ret = db_err(q->db, err, "cancel");
    sqlite3_finalize(st);
  }
out:
  pthread_mutex_unlock(&q->lock);
  return ret;
}

#define STATUS_SQL "SELECT " ROW_COLS " FROM jobs WHERE id = ? AND user = ?"

/* This thread's reader of q, opened on first use; NULL when it cannot be. */
static reader *thread_reader(sq_store *q) {
  pthread_once(&reader_once, reader_key_init);
  reader *r = pthread_getspecific(reader_key);
  if (r && r->generation == q->generation)
    return r;
  reader_free(r);
  pthread_setspecific(reader_key, NULL);
  r = hoist_malloc0(sizeof *r);
  r->generation = q->generation;
  if (sqlite3_open_v2(q->path, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
          SQLITE_OK ||
      sqlite3_busy_timeout(r->db, 5000) != SQLITE_OK ||
      sqlite3_prepare_v2(r->db, STATUS_SQL, -1, &r->status, NULL) != SQLITE_OK) {
    reader_free(r);
    return NULL;
  }
  pthread_setspecific(reader_key, r);
  return r;
}

/* The connection for a read from any thread: the thread's read-only one
 * (beside the writer, on WAL's snapshot), or the writer's under its lock
 * (*locked) when that cannot be opened. */
static sqlite3 *read_db(sq_store *q, bool *locked) {
  reader *r = thread_reader(q);
  *locked = !r;
  if (!r)
    pthread_mutex_lock(&q->lock);
  return r ? r->db : q->db;
}

static void read_end(sq_store *q, bool locked) {
  if (locked)
    pthread_mutex_unlock(&q->lock);
}

static int sq_status(server_store *s, const char *user, const char *id, store_row *out,
                     hoist_err **err) {
  sq_store *q = (sq_store *)s;
  reader *rd = thread_reader(q);
  sqlite3_stmt *st = NULL;
  if (rd) {
    st = rd->status;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, user, -1, SQLITE_TRANSIENT);
  } else {
    const char *args[] = {id, user};
    st = prep(q->db, STATUS_SQL, 2, args);
    if (!st)
      return db_err(q->db, err, "status");
  }
  int r = sqlite3_step(st);
  if (r == SQLITE_ROW)
    row_of(st, out);
  if (rd) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
  } else {
    sqlite3_finalize(st);
  }
  if (r == SQLITE_ROW)
    return 1;
  if (r == SQLITE_DONE)
    return 0;
  return hoist_err_set(err, EIO, "job store: status: %s", sqlite3_errmsg(rd ? rd->db : q->db));
}

static int sq_list(server_store *s, const char *user, store_row **rows, size_t *n,
                   hoist_err **err) {
  sq_store *q = (sq_store *)s;
  *rows = NULL;
  *n = 0;
  bool locked;
  sqlite3 *db = read_db(q, &locked);
  sqlite3_stmt *st = prep(
      db, "SELECT " ROW_COLS " FROM jobs WHERE user = ? ORDER BY seq DESC LIMIT 1000", 1, &user);
  if (!st) {
    int ret = db_err(db, err, "list");
    read_end(q, locked);
    return ret;
  }
  int r;
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    *rows = hoist_reallocarray(*rows, *n + 1, sizeof **rows);
    memset(&(*rows)[*n], 0, sizeof **rows);
    row_of(st, &(*rows)[(*n)++]);
  }
  sqlite3_finalize(st);
  if (r != SQLITE_DONE) {
    int ret = db_err(db, err, "list");
    read_end(q, locked);
    for (size_t i = 0; i < *n; i++)
      store_row_clear(&(*rows)[i]);
    free(*rows);
    *rows = NULL;
    *n = 0;
    return ret;
  }
  read_end(q, locked);
  return 0;
}

static int sq_cleanup(server_store *s, const char *user, double cutoff, char ***ids_out,
                      hoist_err **err) {
  sq_store *q = (sq_store *)s;
  *ids_out = NULL;
  pthread_mutex_lock(&q->lock);
  sqlite3_stmt *st = prep(q->db,
                          "SELECT id FROM jobs WHERE user = ? AND state IN ('succeeded', "
                          "'failed', 'canceled') AND created <= ?",
                          1, &user);
  if (!st) {
    pthread_mutex_unlock(&q->lock);
    return db_err(q->db, err, "cleanup");
  }
  sqlite3_bind_double(st, 2, cutoff);
  hoist_strv ids = {0};
  while (sqlite3_step(st) == SQLITE_ROW)
    hoist_strv_push(&ids, col_dup(st, 0));
  sqlite3_finalize(st);
  char **v = hoist_strv_steal(&ids);
  int ret = exec_sql(q, "BEGIN", err);
  for (size_t i = 0; v[i] && ret == 0; i++) {
    sqlite3_stmt *d = prep(q->db, "DELETE FROM jobs WHERE id = ?", 1, (const char **)&v[i]);
    if (!d || sqlite3_step(d) != SQLITE_DONE)
      ret = db_err(q->db, err, "cleanup");
    sqlite3_finalize(d);
  }
  /* the logs go only when the rows are gone for good */
  if (ret == 0)
    ret = exec_sql(q, "COMMIT", err);
  if (ret < 0)
    hoist_best_effort(exec_sql(q, "ROLLBACK", NULL)); /* the error above is the one */
  pthread_mutex_unlock(&q->lock);
  if (ret < 0) {
    hoist_strfreev(v);
    return ret;
  }
  *ids_out = v;
  return 0;
}

/* ------------------------------------------------------------ logs */

static int sq_log_append(server_store *s, const char *id, const void *data, size_t n,
                         hoist_err **err) {
  sq_store *q = (sq_store *)s;
  _cleanup_free_ char *path = hoist_asprintf("%s/%s/log", q->jobs_dir, id);
  _cleanup_close_ int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return hoist_err_errno(err, errno, "open %s", path);
  return hoist_fs_write_all(fd, data, n, err);
}

struct store_log {
  char *path;
  int fd; /* opened when the log is there */
};

static int sq_log_open(server_store *s, const char *id, store_log **out, hoist_err **err) {
  (void)err;
  sq_store *q = (sq_store *)s;
  store_log *l = hoist_malloc0(sizeof *l);
  l->path = hoist_asprintf("%s/%s/log", q->jobs_dir, id);
  l->fd = open(l->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  *out = l;
  return 0;
}

static int sq_log_read(server_store *s, store_log *l, uint64_t off, char *buf, size_t max,
                       size_t *n, hoist_err **err) {
  (void)s;
  *n = 0;
  if (l->fd < 0)
    l->fd = open(l->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (l->fd < 0)
    return errno == ENOENT ? 0 : hoist_err_errno(err, errno, "open %s", l->path);
  ssize_t r;
  do
    r = pread(l->fd, buf, max, (off_t)off);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    return hoist_err_errno(err, errno, "read %s", l->path);
  *n = (size_t)r;
  return 0;
}

static void sq_log_close(server_store *s, store_log *l) {
  (void)s;
  if (!l)
    return;
  if (l->fd >= 0)
    close(l->fd);
  free(l->path);
  free(l);
}

static int sq_done(server_store *s, const char *id, hoist_err **err) {
  sq_store *q = (sq_store *)s;
  bool locked;
  sqlite3 *db = read_db(q, &locked);
  sqlite3_stmt *st = prep(db, "SELECT state FROM jobs WHERE id = ?", 1, &id);
  int done = 1;
  if (!st) {
    done = db_err(db, err, "state");
  } else if (sqlite3_step(st) == SQLITE_ROW) {
    const char *t = (const char *)sqlite3_column_text(st, 0);
    done = !t || (strcmp(t, "queued") != 0 && strcmp(t, "running") != 0);
  }
  sqlite3_finalize(st);
  read_end(q, locked);
  return done;
}

static int sq_counts(server_store *s, store_counts *c, hoist_err **err) {
  sq_store *q = (sq_store *)s;
  memset(c, 0, sizeof *c);
  bool locked;
  sqlite3 *db = read_db(q, &locked);
  sqlite3_stmt *st = prep(db, "SELECT state, count(*) FROM jobs GROUP BY state", 0, NULL);
  if (!st) {
    int ret = db_err(db, err, "metrics");
    read_end(q, locked);
    return ret;
  }
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *state = (const char *)sqlite3_column_text(st, 0);
    for (int i = 0; state && i < STORE_NSTATES; i++)
      if (strcmp(state, store_states[i]) == 0)
        c->by_state[i] = sqlite3_column_int64(st, 1);
  }
  sqlite3_finalize(st);
  st = prep(db,
            "SELECT coalesce(sum(finished - started), 0), count(*) FROM jobs WHERE started IS "
            "NOT NULL AND finished IS NOT NULL",
            0, NULL);
  if (st && sqlite3_step(st) == SQLITE_ROW) {
    c->duration_sum = sqlite3_column_double(st, 0);
    c->duration_count = sqlite3_column_int64(st, 1);
  }
  sqlite3_finalize(st);
  read_end(q, locked);
  return 0;
}

static int sq_user_counts(server_store *s, store_user_count **out, size_t *n, hoist_err **err) {
  sq_store *q = (sq_store *)s;
  *out = NULL;
  *n = 0;
  bool locked;
  sqlite3 *db = read_db(q, &locked);
  sqlite3_stmt *st =
      prep(db, "SELECT user, state, count(*) FROM jobs GROUP BY user, state ORDER BY user, state",
           0, NULL);
  if (!st) {
    int ret = db_err(db, err, "metrics");
    read_end(q, locked);
    return ret;
  }
  while (sqlite3_step(st) == SQLITE_ROW) {
    *out = hoist_reallocarray(*out, *n + 1, sizeof **out);
    store_user_count *u = &(*out)[(*n)++];
    u->user = col_dup(st, 0);
    u->state = col_dup(st, 1);
    u->n = sqlite3_column_int64(st, 2);
  }
  sqlite3_finalize(st);
  read_end(q, locked);
  return 0;
}

static int sq_recover(server_store *s, hoist_restart_policy policy, char ***ids_out,
                      hoist_err **err) {
  sq_store *q = (sq_store *)s;
  *ids_out = NULL;
  pthread_mutex_lock(&q->lock);
  hoist_strv ids = {0};
  sqlite3_stmt *st = prep(q->db, "SELECT id FROM jobs WHERE state = 'running'", 0, NULL);
  while (st && sqlite3_step(st) == SQLITE_ROW)
    hoist_strv_push(&ids, col_dup(st, 0));
  sqlite3_finalize(st);
  char sql[256];
  if (policy == HOIST_RESTART_REQUEUE)
    snprintf(sql, sizeof sql,
             "UPDATE jobs SET state = 'queued', started = NULL, cancel = 0, owner = NULL WHERE "
             "state = 'running'");
  else
    snprintf(sql, sizeof sql,
             "UPDATE jobs SET state = 'failed', error = 'server restarted', finished = %.3f, "
             "secret = NULL, owner = NULL WHERE state = 'running'",
             now_s());
  int ret = exec_sql(q, sql, err);
  pthread_mutex_unlock(&q->lock);
  char **v = hoist_strv_steal(&ids);
  if (ret < 0) {
    hoist_strfreev(v);
    return ret;
  }
  *ids_out = v;
  return 0;
}

static bool sq_healthy(server_store *s) {
  (void)s;
  return true;
}

static void sq_close(server_store *s) {
  sq_store *q = (sq_store *)s;
  if (!q)
    return;
  if (q->db)
    sqlite3_close(q->db);
  pthread_mutex_destroy(&q->lock);
  free(q->path);
  free(q->jobs_dir);
  free(q);
}

/* ------------------------------------------------------------ open */

/* PATH and its WAL files readable by the service only (SQLite gives the
 * WAL files the database's mode): they hold queued builds' secrets. */
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

/* The schema's versions; a database at version v runs migrations[v..]. */
static const char *const migrations[] = {
    /* 1: the jobs */
    "CREATE TABLE IF NOT EXISTS jobs ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,"
    " user TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL,"
    " kind TEXT NOT NULL, file_digest TEXT NOT NULL, dest TEXT NOT NULL,"
    " image TEXT NOT NULL, secret TEXT, state TEXT NOT NULL, created REAL NOT NULL,"
    " started REAL, finished REAL, image_digest TEXT, error TEXT);"
    "CREATE INDEX IF NOT EXISTS jobs_user ON jobs (user, created);"
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);",
    /* 2: the build key (one in-flight job per key) and cancel requests */
    "ALTER TABLE jobs ADD COLUMN key TEXT;"
    "ALTER TABLE jobs ADD COLUMN cancel INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN owner TEXT;"
    "CREATE UNIQUE INDEX jobs_inflight ON jobs (key) WHERE state IN ('queued', 'running');",
    /* 3: a user's queued jobs, counted at every enqueue */
    "CREATE INDEX jobs_user_queued ON jobs (user) WHERE state = 'queued';",
};

HOIST_WUR static int migrate(sq_store *q, hoist_err **err) {
  sqlite3_stmt *st = prep(q->db, "PRAGMA user_version", 0, NULL);
  int version = st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
  sqlite3_finalize(st);
  if (version < 0)
    return db_err(q->db, err, "schema version");
  int latest = (int)(sizeof migrations / sizeof migrations[0]);
  if (version > latest)
    return hoist_err_set(err, EPROTO,
                         "job store %s: schema version %d is newer than this hoist's (%d)", q->path,
                         version, latest);
  for (int v = version; v < latest; v++) {
    char set[64];
    snprintf(set, sizeof set, "PRAGMA user_version = %d;", v + 1);
    if (exec_sql(q, "BEGIN IMMEDIATE", err) < 0)
      return -1;
    if (exec_sql(q, migrations[v], err) < 0 || exec_sql(q, set, err) < 0 ||
        exec_sql(q, "COMMIT", err) < 0) {
      hoist_best_effort(exec_sql(q, "ROLLBACK", NULL)); /* the error above is the one */
      return hoist_err_wrap(err, "job store %s: migration to schema version %d", q->path, v + 1);
    }
  }
  return 0;
}

int store_sqlite_open(const char *path, const char *jobs_dir, server_store **out, hoist_err **err) {
  sq_store *q = hoist_malloc0(sizeof *q);
  q->base = (server_store){
      .driver = "sqlite",
      .enqueue = sq_enqueue,
      .claim = sq_claim,
      .heartbeat = sq_heartbeat,
      .finish = sq_finish,
      .cancel = sq_cancel,
      .status = sq_status,
      .list = sq_list,
      .cleanup = sq_cleanup,
      .log_append = sq_log_append,
      .log_open = sq_log_open,
      .log_read = sq_log_read,
      .log_close = sq_log_close,
      .done = sq_done,
      .counts = sq_counts,
      .user_counts = sq_user_counts,
      .recover = sq_recover,
      .healthy = sq_healthy,
      .close = sq_close,
  };
  pthread_mutex_init(&q->lock, NULL);
  q->path = hoist_strdup(path);
  q->jobs_dir = hoist_strdup(jobs_dir);
  q->generation = atomic_fetch_add(&generations, 1) + 1;
  if (private_db(path, err) < 0)
    goto fail;
  if (sqlite3_open_v2(path, &q->db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      NULL) != SQLITE_OK) {
    hoist_err_set(err, EIO, "open %s: %s", path, q->db ? sqlite3_errmsg(q->db) : "no memory");
    goto fail;
  }
  sqlite3_busy_timeout(q->db, 5000);
  if (exec_sql(q, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;", err) < 0 ||
      migrate(q, err) < 0)
    goto fail;
  if (sqlite3_exec(q->db, "PRAGMA integrity_check", NULL, NULL, NULL) != SQLITE_OK) {
    hoist_err_set(err, EIO, "job store %s: integrity check: %s", path, sqlite3_errmsg(q->db));
    goto fail;
  }
  *out = &q->base;
  return 0;
fail:
  sq_close(&q->base);
  return -1;
}
