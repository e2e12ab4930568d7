/* The blob-location record (registry.h, "blob locations"): which
 * repositories of which registry were seen holding which blob, in an SQLite
 * file shared by every hoist process of the user (WAL, busy timeout), so
 * that a push mounts what a registry holds elsewhere instead of uploading it
 * again. Schema versions in user_version; a file that is not a database of
 * ours is replaced. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hoist/fs.h"
#include "internal.h"

#define SCHEMA_VERSION 1
/* Readers and writers of other processes are waited for this long. */
#define BUSY_TIMEOUT_MS 2000
/* Rows unseen for this long go (a registry's garbage collection has likely
 * taken the blob, or the repository, by then). */
#define MAX_AGE_MS (90LL * 24 * 3600 * 1000)
/* Each lookup reads at most this many rows. */
#define FIND_ROWS_MAX 64

struct hoist_blob_locations {
  pthread_mutex_t lock; /* one handle, many transfer threads */
  sqlite3 *db;
  char *path;
  size_t max_rows;
  dev_t dev; /* the file opened: another process may replace it */
  ino_t ino;
};

static const char schema[] = "CREATE TABLE IF NOT EXISTS blobs ("
                             " registry TEXT NOT NULL, digest TEXT NOT NULL, repo TEXT NOT NULL,"
                             " seen INTEGER NOT NULL, UNIQUE (registry, digest, repo));"
                             "CREATE INDEX IF NOT EXISTS blobs_seen ON blobs (seen);";

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The file is not a database, or a damaged one. (One whose tables are not
 * those its schema version says is found by db_open's probes.) */
static bool damaged(int rc) {
  rc &= 0xff;
  return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB || rc == SQLITE_FORMAT;
}

HOIST_WUR static int db_fail(hoist_blob_locations *b, int rc, hoist_err **err, const char *what) {
  const char *msg = b->db ? sqlite3_errmsg(b->db) : sqlite3_errstr(rc);
  int code = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED ? EBUSY
             : (rc & 0xff) == SQLITE_FULL                               ? ENOSPC
             : damaged(rc)                                              ? HOIST_E_FORMAT
                                                                        : EIO;
  return hoist_err_set(err, code, "blob-location record %s: %s: %s", b->path, what, msg);
}

/* HOIST_E_FORMAT is what db_fail and db_open say of a file to replace. */
static bool is_unusable_err(const hoist_err *e) { return e && e->code == HOIST_E_FORMAT; }

HOIST_WUR static int exec(hoist_blob_locations *b, const char *sql, hoist_err **err) {
  int rc = sqlite3_exec(b->db, sql, NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    return db_fail(b, rc, err, "setup");
  return 0;
}

static void db_close(hoist_blob_locations *b) {
  if (b->db)
    sqlite3_close(b->db);
  b->db = NULL;
}

/* Opens b->path (made 0600 when new), a database of our schema: made when
 * the file is new, checked when not. A file of a newer schema is EPROTO. */
HOIST_WUR static int db_open(hoist_blob_locations *b, hoist_err **err) {
  {
    _cleanup_close_ int fd = open(b->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
      return hoist_err_errno(err, errno, "blob-location record %s", b->path);
    b->dev = st.st_dev;
    b->ino = st.st_ino;
  }
  int rc = sqlite3_open_v2(b->path, &b->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    int r = db_fail(b, rc, err, "open");
    db_close(b);
    return r;
  }
  sqlite3_busy_timeout(b->db, BUSY_TIMEOUT_MS);
  sqlite3_extended_result_codes(b->db, 1);
  if (exec(b, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;", err) < 0)
    return -1;
  sqlite3_stmt *st = NULL;
  rc = sqlite3_prepare_v2(b->db, "PRAGMA user_version", -1, &st, NULL);
  int version =
      rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
  sqlite3_finalize(st);
  if (version < 0)
    return db_fail(b, rc, err, "schema version");
  if (version > SCHEMA_VERSION)
    return hoist_err_set(err, EPROTO,
                         "blob-location record %s: schema version %d is newer than this hoist's "
                         "(%d)",
                         b->path, version, SCHEMA_VERSION);
  if (version < SCHEMA_VERSION) {
    if (exec(b, "BEGIN IMMEDIATE", err) < 0)
      return -1;
    if (exec(b, schema, err) < 0 || exec(b, "PRAGMA user_version = 1; COMMIT", err) < 0) {
      hoist_best_effort(sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL)); /* err says why */
      return -1;
    }
  }
  /* the statements below must compile against what the file holds */
  static const char *const probes[] = {
      "SELECT registry, digest, repo, seen FROM blobs LIMIT 0",
      "SELECT seen FROM blobs INDEXED BY blobs_seen LIMIT 0",
  };
  for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
    st = NULL;
    rc = sqlite3_prepare_v2(b->db, probes[i], -1, &st, NULL);
    if (rc == SQLITE_OK)
      rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_OK) {
      if (damaged(rc))
        return db_fail(b, rc, err, "schema");
      return hoist_err_set(err, HOIST_E_FORMAT, "blob-location record %s: schema: %s", b->path,
                           sqlite3_errmsg(b->db));
    }
  }
  return 0;
}

/* Puts a new, empty record in place of the unusable file b has open; why
 * says what was wrong with it. Another process may have replaced the file
 * already: then that one is opened. */
HOIST_WUR static int db_replace(hoist_blob_locations *b, const hoist_err *why, hoist_err **err) {
  db_close(b);
  struct stat st;
  if (stat(b->path, &st) == 0 && st.st_dev == b->dev && st.st_ino == b->ino) {
    _cleanup_free_ char *text = hoist_err_text(why);
    hoist_warn("%s: replaced by an empty record", text);
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
      _cleanup_free_ char *p = hoist_asprintf("%s%s", b->path, suffix[i]);
      if (unlink(p) < 0 && errno != ENOENT)
        return hoist_err_errno(err, errno, "blob-location record: remove %s", p);
    }
  }
  if (db_open(b, err) < 0) {
    db_close(b);
    return -1;
  }
  return 0;
}

/* Removes rows older than MAX_AGE_MS and, beyond b->max_rows, the least
 * recently seen; *removed (optional) counts them. */
HOIST_WUR static int prune_locked(hoist_blob_locations *b, size_t max_rows, int64_t older_than,
                                  size_t *removed, hoist_err **err) {
  size_t gone = 0;
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(b->db, "SELECT count(*), min(seen) FROM blobs", -1, &st, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    sqlite3_finalize(st);
    return db_fail(b, rc, err, "count");
  }
  int64_t count = sqlite3_column_int64(st, 0);
  int64_t oldest = sqlite3_column_int64(st, 1);
  sqlite3_finalize(st);
  if (count > 0 && oldest < older_than) {
    st = NULL;
    rc = sqlite3_prepare_v2(b->db, "DELETE FROM blobs WHERE seen < ?1", -1, &st, NULL);
    if (rc == SQLITE_OK) {
      sqlite3_bind_int64(st, 1, older_than);
      rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
      return db_fail(b, rc, err, "prune");
    int n = sqlite3_changes(b->db);
    gone += (size_t)n;
    count -= n;
  }
  if (count > (int64_t)max_rows) {
    st = NULL;
    rc = sqlite3_prepare_v2(b->db,
                            "DELETE FROM blobs WHERE rowid IN "
                            "(SELECT rowid FROM blobs ORDER BY seen LIMIT ?1)",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
      sqlite3_bind_int64(st, 1, count - (int64_t)max_rows);
      rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
      return db_fail(b, rc, err, "prune");
    gone += (size_t)sqlite3_changes(b->db);
  }
  if (removed)
    *removed = gone;
  return 0;
}

int hoist_blob_locations_open(const char *path, size_t max_rows, hoist_blob_locations **out,
                              hoist_err **err) {
  *out = NULL;
  hoist_blob_locations *b = hoist_malloc0(sizeof *b);
  pthread_mutex_init(&b->lock, NULL);
  b->path = hoist_strdup(path);
  b->max_rows = max_rows ? max_rows : HOIST_BLOB_LOCATIONS_ROWS;
  const char *slash = strrchr(path, '/');
  if (slash && slash != path) {
    _cleanup_free_ char *dir = strndup(path, (size_t)(slash - path));
    if (!dir)
      abort();
    if (hoist_fs_mkdir_p(AT_FDCWD, dir, 0700, NULL, err) < 0) {
      hoist_blob_locations_free(b);
      return hoist_err_wrap(err, "blob-location record %s", path);
    }
  }
  hoist_err *e = NULL;
  int ret = db_open(b, &e);
  if (ret < 0 && is_unusable_err(e)) {
    ret = db_replace(b, e, err);
    hoist_err_free(steal_pointer(&e));
  }
  if (ret == 0)
    ret = prune_locked(b, b->max_rows, now_ms() - MAX_AGE_MS, NULL, err);
  if (ret < 0) {
    if (e && err && !*err)
      *err = steal_pointer(&e);
    hoist_err_free(e);
    hoist_blob_locations_free(b);
    return -1;
  }
  *out = b;
  return 0;
}

void hoist_blob_locations_free(hoist_blob_locations *b) {
  if (!b)
    return;
  db_close(b);
  pthread_mutex_destroy(&b->lock);
  free(b->path);
  free(b);
}

/* registry/repo is a repository name as references spell it. */
static bool valid_repo(const char *registry, const char *repo) {
  if (!registry || !*registry || !repo || !*repo || strlen(registry) > 255 || strlen(repo) > 255 ||
      strchr(registry, '/') || strchr(repo, '@') || strchr(repo, ':'))
    return false;
  _cleanup_free_ char *text = hoist_asprintf("%s/%s", registry, repo);
  hoist_ref *ref = NULL;
  if (hoist_ref_parse(text, &ref, NULL) < 0)
    return false;
  bool ok = strcmp(ref->domain, registry) == 0 && strcmp(ref->path, repo) == 0;
  hoist_ref_free(ref);
  return ok;
}

HOIST_WUR static int check_args(const hoist_blob_locations *b, const char *registry,
                                const char *repo, const char *digest, hoist_err **err) {
  if (!hoist_digest_valid(digest))
    return hoist_err_set(err, EINVAL, "blob-location record %s: invalid digest \"%s\"", b->path,
                         digest);
  if (repo && !valid_repo(registry, repo))
    return hoist_err_set(err, EINVAL, "blob-location record %s: invalid repository \"%s/%s\"",
                         b->path, registry ? registry : "", repo);
  if (!registry || !*registry)
    return hoist_err_set(err, EINVAL, "blob-location record %s: no registry", b->path);
  return 0;
}

/* One statement with text arguments (NULL binds ''), then int64 ones,
 * stepped to its end; rows, when wanted, go to row(ud, stmt). */
typedef struct stmt_args {
  const char *text[4];
  size_t n_text;
  int64_t ints[2];
  size_t n_ints;
} stmt_args;

HOIST_WUR static int run_locked(hoist_blob_locations *b, const char *sql, const stmt_args *a,
                                void (*row)(void *ud, sqlite3_stmt *st), void *ud,
                                hoist_err **err) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(b->db, sql, -1, &st, NULL);
  if (rc == SQLITE_OK) {
    int i = 1;
    for (size_t k = 0; k < a->n_text; k++)
      sqlite3_bind_text(st, i++, a->text[k] ? a->text[k] : "", -1, SQLITE_STATIC);
    for (size_t k = 0; k < a->n_ints; k++)
      sqlite3_bind_int64(st, i++, a->ints[k]);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
      if (row)
        row(ud, st);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE && rc != SQLITE_OK)
    return db_fail(b, rc, err, "query");
  return 0;
}

/* run_locked under b's lock; a file found unusable is replaced once and the
 * statement run again on the new one. */
HOIST_WUR static int run(hoist_blob_locations *b, const char *sql, const stmt_args *a,
                         void (*row)(void *ud, sqlite3_stmt *st), void *ud, hoist_err **err) {
  pthread_mutex_lock(&b->lock);
  int ret = -1;
  hoist_err *e = NULL;
  if (!b->db) {
    ret = hoist_err_set(&e, EIO, "blob-location record %s: not open", b->path);
  } else if ((ret = run_locked(b, sql, a, row, ud, &e)) < 0 && is_unusable_err(e)) {
    if (db_replace(b, e, err) == 0)
      ret = run_locked(b, sql, a, row, ud, err);
    hoist_err_free(steal_pointer(&e));
  }
  pthread_mutex_unlock(&b->lock);
  if (e) {
    if (err && !*err)
      *err = e;
    else
      hoist_err_free(e);
  }
  return ret;
}

int hoist_blob_locations_add(hoist_blob_locations *b, const char *registry, const char *repo,
                             const char *digest, int64_t when_ms, hoist_err **err) {
  if (check_args(b, registry, repo, digest, err) < 0)
    return -1;
  stmt_args a = {.text = {registry, digest, repo},
                 .n_text = 3,
                 .ints = {when_ms > 0 ? when_ms : now_ms()},
                 .n_ints = 1};
  return run(b,
             "INSERT INTO blobs (registry, digest, repo, seen) VALUES (?1, ?2, ?3, ?4) "
             "ON CONFLICT (registry, digest, repo) DO UPDATE SET seen = max(seen, excluded.seen)",
             &a, NULL, NULL, err);
}

int hoist_blob_locations_forget(hoist_blob_locations *b, const char *registry, const char *repo,
                                const char *digest, hoist_err **err) {
  if (check_args(b, registry, repo, digest, err) < 0)
    return -1;
  stmt_args a = {.text = {registry, digest, repo}, .n_text = 3};
  return run(b, "DELETE FROM blobs WHERE registry = ?1 AND digest = ?2 AND repo = ?3", &a, NULL,
             NULL, err);
}

typedef struct find_ctx {
  const char *registry;
  size_t max;
  hoist_strv found;
} find_ctx;

static void find_row(void *ud, sqlite3_stmt *st) {
  find_ctx *f = ud;
  const char *repo = (const char *)sqlite3_column_text(st, 0);
  /* the file is the user's to write: a row that names no repository is
   * skipped, never put in a URL */
  if (f->found.n < f->max && repo && valid_repo(f->registry, repo))
    hoist_strv_add(&f->found, repo);
}

int hoist_blob_locations_find(hoist_blob_locations *b, const char *registry, const char *digest,
                              const char *except, size_t max, char ***out, size_t *n,
                              hoist_err **err) {
  *out = NULL;
  if (n)
    *n = 0;
  if (check_args(b, registry, NULL, digest, err) < 0)
    return -1;
  find_ctx f = {.registry = registry, .max = max, .found = HOIST_STRV_INIT};
  stmt_args a = {
      .text = {registry, digest, except}, .n_text = 3, .ints = {FIND_ROWS_MAX}, .n_ints = 1};
  if (max > 0 && run(b,
                     "SELECT repo FROM blobs WHERE registry = ?1 AND digest = ?2 AND repo <> ?3 "
                     "ORDER BY seen DESC LIMIT ?4",
                     &a, find_row, &f, err) < 0) {
    hoist_strv_clear(&f.found);
    return -1;
  }
  if (n)
    *n = f.found.n;
  *out = hoist_strv_steal(&f.found);
  return 0;
}

static void has_row(void *ud, sqlite3_stmt *st) {
  (void)st;
  *(bool *)ud = true;
}

int hoist_blob_locations_has(hoist_blob_locations *b, const char *registry, const char *repo,
                             const char *digest, bool *has, hoist_err **err) {
  *has = false;
  if (check_args(b, registry, repo, digest, err) < 0)
    return -1;
  stmt_args a = {.text = {registry, digest, repo}, .n_text = 3};
  return run(b, "SELECT 1 FROM blobs WHERE registry = ?1 AND digest = ?2 AND repo = ?3", &a,
             has_row, has, err);
}

int hoist_blob_locations_prune(hoist_blob_locations *b, size_t max_rows, int64_t older_than_ms,
                               size_t *removed, hoist_err **err) {
  if (removed)
    *removed = 0;
  pthread_mutex_lock(&b->lock);
  int ret = b->db ? prune_locked(b, max_rows, older_than_ms, removed, err)
                  : hoist_err_set(err, EIO, "blob-location record %s: not open", b->path);
  pthread_mutex_unlock(&b->lock);
  return ret;
}

static void count_row(void *ud, sqlite3_stmt *st) {
  *(size_t *)ud = (size_t)sqlite3_column_int64(st, 0);
}

int hoist_blob_locations_count(hoist_blob_locations *b, size_t *n, hoist_err **err) {
  *n = 0;
  stmt_args a = {0};
  return run(b, "SELECT count(*) FROM blobs", &a, count_row, n, err);
}

/* ---------------------------------------------------- the client's use */

/* The client's record, opened at the first call; NULL when it has none. */
static hoist_blob_locations *client_locs(hoist_registry *r) {
  if (!r->loc_path)
    return NULL;
  pthread_mutex_lock(&r->loc_lock);
  if (!r->loc_tried) {
    r->loc_tried = true;
    hoist_err *e = NULL;
    if (hoist_blob_locations_open(r->loc_path, 0, &r->locs, &e) < 0) {
      _cleanup_free_ char *text = hoist_err_text(e);
      hoist_warn("%s; pushes go without it (no mounts from repositories seen before)", text);
      hoist_err_free(e);
    }
  }
  pthread_mutex_unlock(&r->loc_lock);
  return r->locs;
}

void reg_loc_close(hoist_registry *r) {
  hoist_blob_locations_free(r->locs);
  r->locs = NULL;
}

/* Logs a failure of the record at debug level: it is a cache. */
static void loc_failed(hoist_err *e) {
  if (!e)
    return;
  _cleanup_free_ char *text = hoist_err_text(e);
  hoist_debug("%s", text);
  hoist_err_free(e);
}

void reg_loc_seen(hoist_registry *r, const char *host, const char *repo, const char *digest) {
  hoist_blob_locations *b = client_locs(r);
  hoist_err *e = NULL;
  if (b && hoist_blob_locations_add(b, host, repo, digest, 0, &e) < 0)
    loc_failed(e);
}

void reg_loc_forget(hoist_registry *r, const char *host, const char *repo, const char *digest) {
  hoist_blob_locations *b = client_locs(r);
  hoist_err *e = NULL;
  if (b && hoist_blob_locations_forget(b, host, repo, digest, &e) < 0)
    loc_failed(e);
}

bool reg_loc_has(hoist_registry *r, const char *host, const char *repo, const char *digest) {
  hoist_blob_locations *b = client_locs(r);
  bool has = false;
  hoist_err *e = NULL;
  if (b && hoist_blob_locations_has(b, host, repo, digest, &has, &e) < 0)
    loc_failed(e);
  return has;
}

void reg_loc_candidates(hoist_registry *r, const char *host, const char *repo, const char *digest,
                        const char *from, size_t max, hoist_strv *out) {
  size_t start = out->n;
  if (from && strcmp(from, repo) != 0 && max > 0)
    hoist_strv_add(out, from);
  hoist_blob_locations *b = client_locs(r);
  if (!b || out->n - start >= max)
    return;
  _cleanup_strfreev_ char **found = NULL;
  size_t n = 0;
  hoist_err *e = NULL;
  if (hoist_blob_locations_find(b, host, digest, repo, max + 1, &found, &n, &e) < 0) {
    loc_failed(e);
    return;
  }
  for (size_t i = 0; i < n && out->n - start < max; i++)
    if (!from || strcmp(found[i], from) != 0)
      hoist_strv_add(out, found[i]);
}
