/* server: the PostgreSQL job store (libpq), shared by several `hoist serve`
 * replicas: jobs, requirement files and logs (chunks at their offsets) in
 * the database; claims with FOR UPDATE SKIP LOCKED and a lease their owner
 * renews; per-user limits checked under an advisory lock per user inside the
 * claim's (and the enqueue's) transaction; identical in-flight builds meet on
 * a partial unique index; NOTIFY hoist_jobs (new work, a freed slot) and
 * hoist_cancel (a job id) wake the replicas. Connections come from a small
 * pool; a lost connection is made again with backoff (100 ms doubling to
 * 5 s), and the store says it is down meanwhile (healthy). */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "jobstore.h"

#define NOW_SQL "extract(epoch from clock_timestamp())::float8"
/* the advisory lock space of a user's jobs: pg_advisory_xact_lock(USER_LOCK, hashtext(user)) */
#define USER_LOCK "1752133748"
#define POOL_MAX 32

typedef struct pg_store {
  server_store base;
  char *conninfo;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  PGconn *idle[POOL_MAX];
  size_t nidle, open;
  atomic_bool up;
  double retry_at;     /* no new connection before (monotonic), while down */
  unsigned backoff_ms; /* the next wait after a failed connection */
  PGconn *listen;      /* the keeper's, LISTENing */
  bool schema_ready;   /* migrated: new connections prepare the statements */
  double listen_retry_at;
} pg_store;

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* libpq's message, without its trailing newline. */
static const char *pq_msg(PGconn *c) {
  static __thread char buf[512];
  snprintf(buf, sizeof buf, "%s", c ? PQerrorMessage(c) : "out of memory");
  size_t n = strlen(buf);
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
    buf[--n] = '\0';
  /* one line: libpq's second lines ("\n\tIs the server running...") joined */
  for (char *p = buf; *p; p++)
    if (*p == '\n' || *p == '\t')
      *p = ' ';
  return buf;
}

static void went_down(pg_store *q) {
  pthread_mutex_lock(&q->lock);
  if (atomic_exchange(&q->up, false))
    q->backoff_ms = 100;
  q->retry_at = mono_s() + q->backoff_ms / 1000.0;
  q->backoff_ms = q->backoff_ms * 2 > 5000 ? 5000 : q->backoff_ms * 2;
  pthread_mutex_unlock(&q->lock);
}

/* A new connection: conninfo over hoist's defaults, which bound how long a
 * lost server can hold a request (connect, keepalives, unacknowledged
 * writes). */
static PGconn *pg_connect(const char *conninfo) {
  static const char *const keys[] = {"connect_timeout",
                                     "keepalives_idle",
                                     "keepalives_interval",
                                     "keepalives_count",
                                     "tcp_user_timeout",
                                     "application_name",
                                     "dbname",
                                     NULL};
  const char *vals[] = {"5", "10", "5", "3", "20000", "hoist-serve", conninfo, NULL};
  return PQconnectdbParams(keys, vals, 1);
}

/* The server's notices (NOTICE: relation exists, skipping) are not printed. */
static void no_notice(void *arg, const char *message) {
  (void)arg;
  hoist_debug("job store: PostgreSQL: %s", message);
}

/* The statements of the hot paths, prepared on every connection. */
#define ROW_COLS                                                                                   \
  "id, \"user\", source, target, kind, state, created, started, finished, image, image_digest, "   \
  "error"

static const struct {
  const char *name, *sql;
} prepared[] = {
    {"status", "SELECT " ROW_COLS " FROM jobs WHERE id = $1 AND \"user\" = $2"},
    {"done", "SELECT state FROM jobs WHERE id = $1"},
    {"log_read", "SELECT off, data FROM job_logs WHERE id = $1 AND off + length(data) > "
                 "$2::bigint ORDER BY off LIMIT 64"},
    {"log_append", "WITH j AS (UPDATE jobs SET log_len = log_len + length($2::bytea) WHERE id = "
                   "$1 RETURNING log_len - length($2::bytea) AS off) INSERT INTO job_logs (id, "
                   "off, data) SELECT $1, off, $2 FROM j"},
};

/* A connection: one of the pool's, or a new one. ENOTCONN while the
 * database is out of reach (a new connection is tried after a backoff).
 * fresh: a new one at once, the idle ones closed: one of them was found
 * broken (the server restarted), the others likely are too. */
HOIST_WUR static int conn_get(pg_store *q, bool fresh, PGconn **out, hoist_err **err) {
  pthread_mutex_lock(&q->lock);
  if (fresh) {
    while (q->nidle) {
      PQfinish(q->idle[--q->nidle]);
      q->open--;
    }
  }
  for (;;) {
    if (q->nidle) {
      *out = q->idle[--q->nidle];
      pthread_mutex_unlock(&q->lock);
      return 0;
    }
    if (q->open < POOL_MAX)
      break;
    pthread_cond_wait(&q->cond, &q->lock);
  }
  if (!fresh && !atomic_load(&q->up) && mono_s() < q->retry_at) {
    pthread_mutex_unlock(&q->lock);
    return hoist_err_set(err, ENOTCONN, "job store: PostgreSQL is unreachable (retrying)");
  }
  q->open++;
  pthread_mutex_unlock(&q->lock);
  PGconn *c = pg_connect(q->conninfo);
  if (!c || PQstatus(c) != CONNECTION_OK) {
    int r = hoist_err_set(err, ENOTCONN, "job store: connect to PostgreSQL: %s", pq_msg(c));
    PQfinish(c);
    pthread_mutex_lock(&q->lock);
    q->open--;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
    went_down(q);
    return r;
  }
  PQsetNoticeProcessor(c, no_notice, NULL);
  for (size_t i = 0; i < sizeof prepared / sizeof prepared[0] && q->schema_ready; i++) {
    PGresult *r = PQprepare(c, prepared[i].name, prepared[i].sql, 0, NULL);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
      int ret = hoist_err_set(err, EIO, "job store: prepare %s: %s", prepared[i].name, pq_msg(c));
      PQfinish(c);
      pthread_mutex_lock(&q->lock);
      q->open--;
      pthread_cond_signal(&q->cond);
      pthread_mutex_unlock(&q->lock);
      return ret;
    }
  }
  atomic_store(&q->up, true);
  *out = c;
  return 0;
}

/* Gives c back: a broken one, or one left inside a transaction, is closed. */
static void conn_put(pg_store *q, PGconn *c) {
  bool keep = PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) == PQTRANS_IDLE;
  if (!keep)
    PQfinish(c);
  pthread_mutex_lock(&q->lock);
  if (keep)
    q->idle[q->nidle++] = c;
  else
    q->open--;
  pthread_cond_signal(&q->cond);
  pthread_mutex_unlock(&q->lock);
}

/* Runs sql with text parameters (NULL: null); *res (caller clears) on
 * success. A lost connection is ENOTCONN, a unique violation EEXIST. */
HOIST_WUR static int q_exec(pg_store *q, PGconn *c, const char *what, const char *sql, int n,
                            const char *const *args, PGresult **res, hoist_err **err) {
  (void)q; /* a lost connection is found out by the next connect, not here */
  PGresult *r = PQexecParams(c, sql, n, NULL, args, NULL, NULL, 0);
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
    if (res)
      *res = r;
    else
      PQclear(r);
    return 0;
  }
  const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  int code = PQstatus(c) != CONNECTION_OK           ? ENOTCONN
             : state && strcmp(state, "23505") == 0 ? EEXIST
             : state && strcmp(state, "53100") == 0 ? ENOSPC
                                                    : EIO;
  int ret = hoist_err_set(err, code, "job store: %s: %s", what, pq_msg(c));
  PQclear(r);
  return ret;
}

/* As q_exec, for a statement of prepared[]. */
HOIST_WUR static int q_exec_prepared(pg_store *q, PGconn *c, const char *name, int n,
                                     const char *const *args, const int *lens, const int *fmts,
                                     int binary, PGresult **res, hoist_err **err) {
  (void)q;
  PGresult *r = PQexecPrepared(c, name, n, args, lens, fmts, binary);
  if (PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK) {
    *res = r;
    return 0;
  }
  int code = PQstatus(c) != CONNECTION_OK ? ENOTCONN : EIO;
  int ret = hoist_err_set(err, code, "job store: %s: %s", name, pq_msg(c));
  PQclear(r);
  return ret;
}

static void rollback(PGconn *c) {
  if (PQtransactionStatus(c) != PQTRANS_IDLE)
    PQclear(PQexec(c, "ROLLBACK"));
}

/* Runs op on a connection; once more on a new one when the first was found
 * broken (a pooled connection to a server that restarted). */
typedef int (*pg_op)(pg_store *q, PGconn *c, void *ctx, hoist_err **err);

HOIST_WUR static int pg_run(pg_store *q, pg_op op, void *ctx, hoist_err **err) {
  for (int attempt = 0;; attempt++) {
    PGconn *c = NULL;
    if (conn_get(q, attempt > 0, &c, err) < 0)
      return -1;
    hoist_err *e = NULL;
    int r = op(q, c, ctx, &e);
    if (r < 0)
      rollback(c);
    bool lost = r < 0 && PQstatus(c) != CONNECTION_OK;
    conn_put(q, c);
    if (r >= 0)
      return r;
    if (lost && attempt == 0) {
      hoist_err_free(e);
      continue;
    }
    if (err && !*err)
      *err = e;
    else
      hoist_err_free(e);
    return -1;
  }
}

static char *val(PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? NULL : hoist_strdup(PQgetvalue(r, row, col));
}

static double tval(PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? -1 : strtod(PQgetvalue(r, row, col), NULL);
}

/* ------------------------------------------------------------ jobs */

typedef struct enqueue_ctx {
  const store_new *n;
  int per_user_queue;
  char **id;
  bool *shared, *full;
} enqueue_ctx;

static int op_enqueue(pg_store *q, PGconn *c, void *vctx, hoist_err **err) {
  enqueue_ctx *x = vctx;
  const store_new *n = x->n;
  PGresult *r = NULL;
  *x->shared = *x->full = false;
  if (q_exec(q, c, "enqueue", "BEGIN", 0, NULL, NULL, err) < 0 ||
      q_exec(q, c, "enqueue", "SELECT pg_advisory_xact_lock(" USER_LOCK ", hashtext($1))", 1,
             &n->user, NULL, err) < 0 ||
      q_exec(q, c, "enqueue",
             "SELECT id FROM jobs WHERE key = $1 AND state IN ('queued', 'running')", 1, &n->key,
             &r, err) < 0)
    return -1;
  if (PQntuples(r) > 0) {
    *x->id = val(r, 0, 0);
    *x->shared = true;
    PQclear(r);
    return q_exec(q, c, "enqueue", "COMMIT", 0, NULL, NULL, err);
  }
  PQclear(r);
  /* counted up to the limit only, on the index of queued jobs */
  char limit[24];
  snprintf(limit, sizeof limit, "%d", x->per_user_queue);
  const char *count_args[] = {n->user, limit};
  if (q_exec(q, c, "enqueue",
             "SELECT count(*) FROM (SELECT 1 FROM jobs WHERE \"user\" = $1 AND state = 'queued' "
             "LIMIT $2) AS q",
             2, count_args, &r, err) < 0)
    return -1;
  long queued = strtol(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  if (queued >= x->per_user_queue) {
    *x->full = true;
    return q_exec(q, c, "enqueue", "COMMIT", 0, NULL, NULL, err);
  }
  const char *args[] = {n->id,   n->user,  n->source, n->target, n->kind, n->file_digest,
                        n->dest, n->image, n->secret, n->key,    NULL};
  int lens[11] = {0};
  int fmts[11] = {0};
  fmts[10] = 1;
  lens[10] = (int)n->file_len;
  args[10] = n->file ? (const char *)n->file : NULL;
  r = PQexecParams(c,
                   "INSERT INTO jobs (id, \"user\", source, target, kind, file_digest, dest, image,"
                   " secret, key, file, state, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
                   " $9, $10, $11, 'queued', " NOW_SQL ")",
                   11, NULL, args, lens, fmts, 0);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    int code = PQstatus(c) != CONNECTION_OK ? ENOTCONN : EIO;
    int ret = hoist_err_set(err, code, "job store: enqueue: %s", pq_msg(c));
    PQclear(r);
    return ret;
  }
  PQclear(r);
  if (q_exec(q, c, "enqueue", "SELECT pg_notify('hoist_jobs', '')", 0, NULL, NULL, err) < 0 ||
      q_exec(q, c, "enqueue", "COMMIT", 0, NULL, NULL, err) < 0)
    return -1;
  *x->id = hoist_strdup(n->id);
  return 0;
}

static int pg_enqueue(server_store *s, const store_new *n, int per_user_queue, char **id,
                      bool *shared, bool *full, hoist_err **err) {
  enqueue_ctx x = {n, per_user_queue, id, shared, full};
  return pg_run((pg_store *)s, op_enqueue, &x, err);
}

typedef struct claim_ctx {
  const char *owner;
  int limit;
  double lease;
  store_job *out;
} claim_ctx;

static int op_claim(pg_store *q, PGconn *c, void *vctx, hoist_err **err) {
  claim_ctx *x = vctx;
  char limit[16], lease[32];
  snprintf(limit, sizeof limit, "%d", x->limit);
  snprintf(lease, sizeof lease, "%.3f", x->lease);
  PGresult *cand = NULL;
  /* candidates: the turn of the user whose last build started longest ago,
   * that user's oldest job, users at their limit left out (checked again
   * below, under the user's lock) */
  if (q_exec(q, c, "claim", "BEGIN", 0, NULL, NULL, err) < 0 ||
      q_exec(q, c, "claim",
             "SELECT id, \"user\" FROM jobs q WHERE state = 'queued' AND (SELECT count(*) FROM "
             "jobs r WHERE r.\"user\" = q.\"user\" AND r.state = 'running') < $1::int ORDER BY "
             "coalesce((SELECT max(started) FROM jobs s WHERE s.\"user\" = q.\"user\"), 0), seq "
             "LIMIT 4 FOR UPDATE SKIP LOCKED",
             1, (const char *[]){limit}, &cand, err) < 0)
    return -1;
  int got = 0;
  for (int i = 0; i < PQntuples(cand) && !got; i++) {
    const char *id = PQgetvalue(cand, i, 0);
    const char *user = PQgetvalue(cand, i, 1);
    PGresult *r = NULL;
    if (q_exec(q, c, "claim", "SELECT pg_advisory_xact_lock(" USER_LOCK ", hashtext($1))", 1, &user,
               NULL, err) < 0 ||
        q_exec(q, c, "claim", "SELECT count(*) FROM jobs WHERE \"user\" = $1 AND state = 'running'",
               1, &user, &r, err) < 0) {
      PQclear(cand);
      return -1;
    }
    long running = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (running >= x->limit)
      continue;
    const char *args[] = {id, x->owner, lease};
    r = PQexecParams(c,
                     "UPDATE jobs SET state = 'running', started = " NOW_SQL ", owner = $2, "
                     "lease_until = " NOW_SQL " + $3::float8, cancel = false WHERE id = $1 "
                     "RETURNING \"user\", source, kind, dest, file_digest, secret, file",
                     3, NULL, args, NULL, NULL, 1);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
      int code = PQstatus(c) != CONNECTION_OK ? ENOTCONN : EIO;
      int ret = hoist_err_set(err, code, "job store: claim: %s", pq_msg(c));
      PQclear(r);
      PQclear(cand);
      return ret;
    }
    store_job *o = x->out;
    snprintf(o->id, sizeof o->id, "%s", id);
    /* binary results: text columns are their bytes */
    char **cols[] = {&o->user, &o->source, &o->kind, &o->dest, &o->file_digest, &o->secret};
    for (int k = 0; k < 6; k++)
      *cols[k] = PQgetisnull(r, 0, k)
                     ? NULL
                     : hoist_asprintf("%.*s", PQgetlength(r, 0, k), PQgetvalue(r, 0, k));
    if (!PQgetisnull(r, 0, 6)) {
      o->file_len = (size_t)PQgetlength(r, 0, 6);
      o->file = hoist_malloc0(o->file_len + 1);
      memcpy(o->file, PQgetvalue(r, 0, 6), o->file_len);
    }
    PQclear(r);
    got = 1;
  }
  PQclear(cand);
  if (q_exec(q, c, "claim", "COMMIT", 0, NULL, NULL, err) < 0) {
    if (got)
      store_job_clear(x->out);
    return -1;
  }
  return got;
}

static int pg_claim(server_store *s, const char *owner, int per_user_limit, double lease_s,
                    store_job *out, hoist_err **err) {
  claim_ctx x = {owner, per_user_limit, lease_s, out};
  return pg_run((pg_store *)s, op_claim, &x, err);
}

typedef struct ids_ctx {
  const char *a, *b, *c;
  double d;
  char ***ids;
} ids_ctx;

static char **ids_of(PGresult *r) {
  hoist_strv v = {0};
  for (int i = 0; i < PQntuples(r); i++)
    hoist_strv_add(&v, PQgetvalue(r, i, 0));
  return hoist_strv_steal(&v);
}

static int op_heartbeat(pg_store *q, PGconn *c, void *vctx, hoist_err **err) {
  ids_ctx *x = vctx;
  char lease[32];
  snprintf(lease, sizeof lease, "%.3f", x->d);
  PGresult *r = NULL;
  if (x->d > 0 &&
      q_exec(q, c, "renew leases",
             "UPDATE jobs SET lease_until = " NOW_SQL " + $2::float8 WHERE owner = $1 AND state "
             "= 'running'",
             2, (const char *[]){x->a, lease}, NULL, err) < 0)
    return -1;
  if (!x->b) { /* nothing runs here */
    *x->ids = NULL;
    return 0;
  }
  if (q_exec(q, c, "cancels",
             "SELECT unnest($2::text[]) EXCEPT SELECT id FROM jobs WHERE owner = $1 AND state = "
             "'running' AND NOT cancel",
             2, (const char *[]){x->a, x->b}, &r, err) < 0)
    return -1;
  *x->ids = PQntuples(r) ? ids_of(r) : NULL;
  PQclear(r);
  return 0;
}

static int pg_heartbeat(server_store *s, const char *owner, double lease_s, char *const *running,
                        char ***cancel, hoist_err **err) {
  *cancel = NULL;
  /* the ids as an array literal: they are hex */
  hoist_buf b = HOIST_BUF_INIT(1 << 20);
  int r = 0;
  for (size_t i = 0; running && running[i] && r == 0; i++)
    r = hoist_buf_appendf(&b, err, "%s%s", i ? "," : "{", running[i]);
  if (r == 0 && b.len)
    r = hoist_buf_append(&b, "}", 2, err);
  if (r < 0) {
    hoist_buf_free(&b);
    return r;
  }
  ids_ctx x = {.a = owner, .b = b.len ? b.data : NULL, .d = lease_s, .ids = cancel};
  r = pg_run((pg_store *)s, op_heartbeat, &x, err);
  hoist_buf_free(&b);
  return r;
}

typedef struct finish_ctx {
  const char *id, *owner, *state, *digest, *error;
} finish_ctx;

static int op_finish(pg_store *q, PGconn *c, void *vctx, hoist_err **err) {
  finish_ctx *x = vctx;
  const char *args[] = {x->id, x->owner, x->state, x->digest, x->error};
  /* a freed slot may let another replica's worker claim */
  return q_exec(q, c, "finish",
                "WITH u AS (UPDATE jobs SET state = $3, finished = " NOW_SQL
                ", image_digest = $4, error = $5, secret = NULL, file = NULL, owner = NULL, "
                "lease_until = NULL WHERE id = $1 AND owner = $2 AND state = 'running' "
                "RETURNING 1) SELECT pg_notify('hoist_jobs', '') FROM u",
                5, args, NULL, err);
}

static int pg_finish(server_store *s, const char *id, const char *owner, const char *state,
                     const char *digest, const char *error, hoist_err **err) {
  finish_ctx x = {id, owner, state, digest, error};
  return pg_run((pg_store *)s, op_finish, &x, err);
}

typedef struct cancel_ctx {
  const char *user, *id;
  bool *running;
} cancel_ctx;

static int op_cancel(pg_store *q, PGconn *c, void *vctx, hoist_err **err) {
  cancel_ctx *x = vctx;
  const char *args[] = {x->id, x->user};
  PGresult *r = NULL;
  *x->running = false;
  if (q_exec(q, c, "cancel",
             "UPDATE jobs SET state = 'canceled', error = 'canceled', secret = NULL, file = NULL,"
             " finished = " NOW_SQL " WHERE id = $1 AND \"user\" = $2 AND state = 'queued' "
             "RETURNING id",
             2, args, &r, err) < 0)
    return -1;
  int n = PQntuples(r);
  PQclear(r);
  if (n)
    return 1;
  /* a running build stops on its replica: told at once, or at its next look */
  if (q_exec(q, c, "cancel",
             "WITH u AS (UPDATE jobs SET cancel = true WHERE id = $1 AND \"user\" = $2 AND "
             "state = 'running' RETURNING id) SELECT pg_notify('hoist_cancel', id) FROM u",
             2, args, &r, err) < 0)
    return -1;
  n = PQntuples(r);
  PQclear(r);
  if (n) {
    *x->running = true;
    return 1;
  }
  if (q_exec(q, c, "cancel", "SELECT 1 FROM jobs WHERE id = $1 AND \"user\" = $2", 2, args, &r,
             err) < 0)
    return -1;
  n = PQntuples(r);
  PQclear(r);
  return n ? 2 : 0;
}

static int pg_cancel(server_store *s, const char *user, const char *id, bool *running,
                     hoist_err **err) {
  cancel_ctx x = {user, id, running};
  return pg_run((pg_store *)s, op_cancel, &x, err);
}

static void row_of(PGresult *r, int i, store_row *o) {
  o->id = val(r, i, 0);
  o->user = val(r, i, 1);
  o->source = val(r, i, 2);
  o->target = val(r, i, 3);
  o->kind = val(r, i, 4);
  o->state = val(r, i, 5);
  o->created = tval(r, i, 6);
  o->started = tval(r, i, 7);
  o->finished = tval(r, i, 8);
  o->image = val(r, i, 9);
  o->digest = val(r, i, 10);
  o->error = val(r, i, 11);
}

typedef struct rows_ctx {
  const char *user, *id;
  store_row *one;
  store_row **rows;
  size_t *n;
} rows_ctx;

static int op_status(pg_store *q, PGconn *c, void *vctx, hoist_err **err) {
  rows_ctx *x = vctx;
  PGresult *r = NULL;
  if (q_exec_prepared(q, c, "status", 2, (const char *[]){x->id, x->user}, NULL, NULL, 0, &r, err) <
      0)
    return -1;
  int found = PQntuples(r) > 0;
  if (found)
    row_of(r, 0, x->one);
  PQclear(r);
  return found;
}

static int pg_status(server_store *s, const char *user, const char *id, store_row *out,
                     hoist_err **err) {
  rows_ctx x = {.user = user, .id = id, .one = out};
  return pg_run((pg_store *)s, op_status, &x, err);
}

static int op_list(pg_store *q, PGconn *c, void *vctx, hoist_err **err) {
  rows_ctx *x = vctx;
  PGresult *r = NULL;
  if (q_exec(q, c, "list",
             "SELECT " ROW_COLS " FROM jobs WHERE \"user\" = $1 ORDER BY seq DESC LIMIT 1000", 1,
             &x->user, &r, err) < 0)
    return -1;
  *x->n = (size_t)PQntuples(r);
  *x->rows = hoist_calloc(*x->n + 1, sizeof **x->rows);
  for (int i = 0; i < PQntuples(r); i++)
    row_of(r, i, &(*x->rows)[i]);
  PQclear(r);
  return 0;
}

static int pg_list(server_store *s, const char *user, store_row **rows, size_t *n,
                   hoist_err **err) {
  *rows = NULL;
  *n = 0;
  rows_ctx x = {.user = user, .rows = rows, .n = n};
  return pg_run((pg_store *)s, op_list, &x, err);
}

static int op_cleanup(pg_store *q, PGconn *c, void *vctx, hoist_err **err) {
  ids_ctx *x = vctx;
  char cutoff[32];
  snprintf(cutoff, sizeof cutoff, "%.3f", x->d);
  PGresult *r = NULL;
  /* the job's log chunks go with it (ON DELETE CASCADE) */
  if (q_exec(q, c, "cleanup",
             "DELETE FROM jobs WHERE \"user\" = $1 AND state IN ('succeeded', 'failed', "
             "'canceled') AND created <= $2::float8 RETURNING id",
             2, (const char *[]){x->a, cutoff}, &r, err) < 0)
    return -1;
  *x->ids = ids_of(r);
  PQclear(r);
  return 0;
}

static int pg_cleanup(server_store *s, const char *user, double cutoff, char ***ids,
                      hoist_err **err) {
  *ids = NULL;
  ids_ctx x = {.a = user, .d = cutoff, .ids = ids};
  return pg_run((pg_store *)s, op_cleanup, &x, err);
}

/* ------------------------------------------------------------ logs */

typedef struct log_ctx {
  const char *id;
  const void *data;
  size_t n;
  uint64_t off;
  char *buf;
  size_t max, *got;
} log_ctx;

static int op_log_append(pg_store *q, PGconn *c, void *vctx, hoist_err **err) {
  (void)q;
  log_ctx *x = vctx;
  const char *args[] = {x->id, x->data};
  int lens[] = {0, (int)x->n};
  int fmts[] = {0, 1};
  /* the chunk's offset taken on the job's row: appends of several writers
   * (the build's replica, a cancel's note) line up */
  PGresult *r = PQexecPrepared(c, "log_append", 2, args, lens, fmts, 0);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    int code = PQstatus(c) != CONNECTION_OK ? ENOTCONN : EIO;
    int ret = hoist_err_set(err, code, "job store: log of %s: %s", x->id, pq_msg(c));
    PQclear(r);
    return ret;
  }
  PQclear(r);
  return 0;
}

static int pg_log_append(server_store *s, const char *id, const void *data, size_t n,
                         hoist_err **err) {
  if (n == 0)
    return 0;
  if (n > (1u << 30))
    return hoist_err_set(err, EFBIG, "job store: log of %s: a chunk of %zu bytes", id, n);
  log_ctx x = {.id = id, .data = data, .n = n};
  return pg_run((pg_store *)s, op_log_append, &x, err);
}

static uint64_t be64(const char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | (unsigned char)p[i];
  return v;
}

static int op_log_read(pg_store *q, PGconn *c, void *vctx, hoist_err **err) {
  (void)q;
  log_ctx *x = vctx;
  char off[32];
  snprintf(off, sizeof off, "%" PRIu64, x->off);
  const char *args[] = {x->id, off};
  PGresult *r = PQexecPrepared(c, "log_read", 2, args, NULL, NULL, 1);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    int code = PQstatus(c) != CONNECTION_OK ? ENOTCONN : EIO;
    int ret = hoist_err_set(err, code, "job store: log of %s: %s", x->id, pq_msg(c));
    PQclear(r);
    return ret;
  }
  size_t n = 0;
  uint64_t at = x->off;
  for (int i = 0; i < PQntuples(r) && n < x->max; i++) {
    uint64_t start = be64(PQgetvalue(r, i, 0));
    size_t len = (size_t)PQgetlength(r, i, 1);
    if (start > at) /* a chunk not yet committed before this one: stop at the gap */
      break;
    size_t skip = (size_t)(at - start);
    size_t take = len - skip < x->max - n ? len - skip : x->max - n;
    memcpy(x->buf + n, PQgetvalue(r, i, 1) + skip, take);
    n += take;
    at += take;
  }
  PQclear(r);
  *x->got = n;
  return 0;
}

struct store_log {
  char id[STORE_ID_HEX + 1];
};

static int pg_log_open(server_store *s, const char *id, store_log **out, hoist_err **err) {
  (void)s, (void)err;
  store_log *l = hoist_malloc0(sizeof *l);
  snprintf(l->id, sizeof l->id, "%s", id);
  *out = l;
  return 0;
}

static void pg_log_close(server_store *s, store_log *l) {
  (void)s;
  free(l);
}

static int pg_log_read(server_store *s, store_log *l, uint64_t off, char *buf, size_t max,
                       size_t *n, hoist_err **err) {
  *n = 0;
  log_ctx x = {.id = l->id, .off = off, .buf = buf, .max = max, .got = n};
  return pg_run((pg_store *)s, op_log_read, &x, err);
}

static int op_done(pg_store *q, PGconn *c, void *vctx, hoist_err **err) {
  ids_ctx *x = vctx;
  PGresult *r = NULL;
  if (q_exec_prepared(q, c, "done", 1, &x->a, NULL, NULL, 0, &r, err) < 0)
    return -1;
  int done = 1;
  if (PQntuples(r)) {
    const char *t = PQgetvalue(r, 0, 0);
    done = strcmp(t, "queued") != 0 && strcmp(t, "running") != 0;
  }
  PQclear(r);
  return done;
}

static int pg_done(server_store *s, const char *id, hoist_err **err) {
  ids_ctx x = {.a = id};
  return pg_run((pg_store *)s, op_done, &x, err);
}

typedef struct counts_ctx {
  store_counts *c;
  store_user_count **uc;
  size_t *n;
} counts_ctx;

static int op_counts(pg_store *q, PGconn *c, void *vctx, hoist_err **err) {
  counts_ctx *x = vctx;
  PGresult *r = NULL;
  if (q_exec(q, c, "metrics", "SELECT state, count(*) FROM jobs GROUP BY state", 0, NULL, &r, err) <
      0)
    return -1;
  for (int i = 0; i < PQntuples(r); i++)
    for (int k = 0; k < STORE_NSTATES; k++)
      if (strcmp(PQgetvalue(r, i, 0), store_states[k]) == 0)
        x->c->by_state[k] = strtoll(PQgetvalue(r, i, 1), NULL, 10);
  PQclear(r);
  if (q_exec(q, c, "metrics",
             "SELECT coalesce(sum(finished - started), 0), count(*) FROM jobs WHERE started IS "
             "NOT NULL AND finished IS NOT NULL",
             0, NULL, &r, err) < 0)
    return -1;
  x->c->duration_sum = strtod(PQgetvalue(r, 0, 0), NULL);
  x->c->duration_count = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
  PQclear(r);
  return 0;
}

static int pg_counts(server_store *s, store_counts *c, hoist_err **err) {
  memset(c, 0, sizeof *c);
  counts_ctx x = {.c = c};
  return pg_run((pg_store *)s, op_counts, &x, err);
}

static int op_user_counts(pg_store *q, PGconn *c, void *vctx, hoist_err **err) {
  counts_ctx *x = vctx;
  PGresult *r = NULL;
  if (q_exec(q, c, "metrics",
             "SELECT \"user\", state, count(*) FROM jobs GROUP BY \"user\", state ORDER BY "
             "\"user\", state",
             0, NULL, &r, err) < 0)
    return -1;
  *x->n = (size_t)PQntuples(r);
  *x->uc = hoist_calloc(*x->n + 1, sizeof **x->uc);
  for (int i = 0; i < PQntuples(r); i++) {
    (*x->uc)[i].user = val(r, i, 0);
    (*x->uc)[i].state = val(r, i, 1);
    (*x->uc)[i].n = strtoll(PQgetvalue(r, i, 2), NULL, 10);
  }
  PQclear(r);
  return 0;
}

static int pg_user_counts(server_store *s, store_user_count **out, size_t *n, hoist_err **err) {
  *out = NULL;
  *n = 0;
  counts_ctx x = {.uc = out, .n = n};
  return pg_run((pg_store *)s, op_user_counts, &x, err);
}

static int op_recover(pg_store *q, PGconn *c, void *vctx, hoist_err **err) {
  ids_ctx *x = vctx;
  PGresult *r = NULL;
  /* a canceled build whose replica is gone is canceled; the others follow
   * the policy */
  if (q_exec(q, c, "expired leases",
             "WITH r AS (UPDATE jobs SET state = CASE WHEN cancel THEN 'canceled' WHEN $1 = "
             "'requeue' THEN 'queued' ELSE 'failed' END, error = CASE WHEN cancel THEN "
             "'canceled' WHEN $1 = 'requeue' THEN NULL ELSE 'server restarted' END, started = "
             "CASE WHEN NOT cancel AND $1 = 'requeue' THEN NULL ELSE started END, finished = "
             "CASE WHEN NOT cancel AND $1 = 'requeue' THEN NULL ELSE " NOW_SQL " END, owner = "
             "NULL, lease_until = NULL, cancel = false WHERE state = 'running' AND lease_until "
             "< " NOW_SQL " RETURNING id) SELECT id, pg_notify('hoist_jobs', '') FROM r",
             1, (const char *[]){x->a}, &r, err) < 0)
    return -1;
  *x->ids = PQntuples(r) ? ids_of(r) : NULL;
  PQclear(r);
  return 0;
}

static int pg_recover(server_store *s, hoist_restart_policy policy, char ***ids, hoist_err **err) {
  *ids = NULL;
  ids_ctx x = {.a = policy == HOIST_RESTART_REQUEUE ? "requeue" : "fail", .ids = ids};
  return pg_run((pg_store *)s, op_recover, &x, err);
}

/* ------------------------------------------------------------ wake-ups */

static int pg_wait(server_store *s, int timeout_ms, char ***cancel) {
  pg_store *q = (pg_store *)s;
  *cancel = NULL;
  if (q->listen && PQstatus(q->listen) != CONNECTION_OK) {
    PQfinish(q->listen);
    q->listen = NULL;
  }
  if (!q->listen) {
    if (mono_s() < q->listen_retry_at) {
      poll(NULL, 0, timeout_ms);
      return 0;
    }
    PGconn *c = pg_connect(q->conninfo);
    PGresult *r = c && PQstatus(c) == CONNECTION_OK
                      ? PQexec(c, "LISTEN hoist_jobs; LISTEN hoist_cancel")
                      : NULL;
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
      PQclear(r);
      PQfinish(c);
      went_down(q);
      pthread_mutex_lock(&q->lock);
      q->listen_retry_at = q->retry_at;
      pthread_mutex_unlock(&q->lock);
      poll(NULL, 0, timeout_ms);
      return 0;
    }
    PQclear(r);
    PQsetNoticeProcessor(c, no_notice, NULL);
    atomic_store(&q->up, true);
    q->listen = c;
    return 1; /* news may have come while nobody listened */
  }
  struct pollfd pfd = {PQsocket(q->listen), POLLIN, 0};
  int ret = 0;
  if (poll(&pfd, 1, timeout_ms) > 0 && !PQconsumeInput(q->listen)) {
    PQfinish(q->listen); /* made again at the next call */
    q->listen = NULL;
    return 0;
  }
  hoist_strv v = {0};
  PGnotify *n;
  while ((n = PQnotifies(q->listen))) {
    if (strcmp(n->relname, "hoist_cancel") == 0)
      hoist_strv_add(&v, n->extra);
    else
      ret = 1;
    PQfreemem(n);
  }
  *cancel = v.n ? hoist_strv_steal(&v) : NULL;
  hoist_strv_clear(&v);
  return ret;
}

static bool pg_healthy(server_store *s) { return atomic_load(&((pg_store *)s)->up); }

static void pg_close(server_store *s) {
  pg_store *q = (pg_store *)s;
  if (!q)
    return;
  for (size_t i = 0; i < q->nidle; i++)
    PQfinish(q->idle[i]);
  PQfinish(q->listen);
  pthread_mutex_destroy(&q->lock);
  pthread_cond_destroy(&q->cond);
  free(q->conninfo);
  free(q);
}

/* ------------------------------------------------------------ schema */

/* The schema's versions; a database at version v runs migrations[v..], each
 * in its transaction, under an advisory lock (replicas starting together
 * migrate once). */
static const char *const migrations[] = {
    /* 1: jobs, their logs */
    "CREATE TABLE jobs ("
    " seq bigserial PRIMARY KEY, id text UNIQUE NOT NULL, \"user\" text NOT NULL,"
    " source text NOT NULL, target text NOT NULL, kind text NOT NULL,"
    " file_digest text NOT NULL, dest text NOT NULL, image text NOT NULL, secret text,"
    " file bytea, key text NOT NULL, state text NOT NULL, created float8 NOT NULL,"
    " started float8, finished float8, image_digest text, error text, owner text,"
    " lease_until float8, cancel boolean NOT NULL DEFAULT false,"
    " log_len bigint NOT NULL DEFAULT 0);"
    "CREATE INDEX jobs_user ON jobs (\"user\", created);"
    "CREATE INDEX jobs_user_started ON jobs (\"user\", started);"
    "CREATE INDEX jobs_queued ON jobs (seq) WHERE state = 'queued';"
    "CREATE INDEX jobs_running ON jobs (\"user\") WHERE state = 'running';"
    "CREATE INDEX jobs_owner ON jobs (owner) WHERE state = 'running';"
    "CREATE UNIQUE INDEX jobs_inflight ON jobs (key) WHERE state IN ('queued', 'running');"
    "CREATE TABLE job_logs (id text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,"
    " off bigint NOT NULL, data bytea NOT NULL, PRIMARY KEY (id, off));",
    /* 2: a user's queued jobs, counted at every enqueue */
    "CREATE INDEX jobs_user_queued ON jobs (\"user\") WHERE state = 'queued';",
};

HOIST_WUR static int migrate(pg_store *q, PGconn *c, hoist_err **err) {
  PGresult *r = NULL;
  if (q_exec(q, c, "migrate", "BEGIN", 0, NULL, NULL, err) < 0 ||
      q_exec(q, c, "migrate", "SELECT pg_advisory_xact_lock(" USER_LOCK ", 0)", 0, NULL, NULL,
             err) < 0 ||
      q_exec(q, c, "migrate", "CREATE TABLE IF NOT EXISTS hoist_schema (version integer NOT NULL)",
             0, NULL, NULL, err) < 0 ||
      q_exec(q, c, "migrate", "SELECT coalesce(max(version), 0) FROM hoist_schema", 0, NULL, &r,
             err) < 0)
    goto fail;
  int version = atoi(PQgetvalue(r, 0, 0));
  PQclear(r);
  int latest = (int)(sizeof migrations / sizeof migrations[0]);
  if (version > latest) {
    hoist_err_set(err, EPROTO, "job store: schema version %d is newer than this hoist's (%d)",
                  version, latest);
    goto fail;
  }
  for (int v = version; v < latest; v++) {
    char set[96];
    snprintf(set, sizeof set, "DELETE FROM hoist_schema; INSERT INTO hoist_schema VALUES (%d)",
             v + 1);
    r = PQexec(c, migrations[v]);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (ok) {
      r = PQexec(c, set);
      ok = PQresultStatus(r) == PGRES_COMMAND_OK;
      PQclear(r);
    }
    if (!ok) {
      hoist_err_set(err, EIO, "job store: migration to schema version %d: %s", v + 1, pq_msg(c));
      goto fail;
    }
  }
  return q_exec(q, c, "migrate", "COMMIT", 0, NULL, NULL, err);
fail:
  rollback(c);
  return -1;
}

int store_pg_open(const char *conninfo, server_store **out, hoist_err **err) {
  pg_store *q = hoist_malloc0(sizeof *q);
  q->base = (server_store){
      .driver = "postgres",
      .shared = true,
      .enqueue = pg_enqueue,
      .claim = pg_claim,
      .heartbeat = pg_heartbeat,
      .finish = pg_finish,
      .cancel = pg_cancel,
      .status = pg_status,
      .list = pg_list,
      .cleanup = pg_cleanup,
      .log_append = pg_log_append,
      .log_open = pg_log_open,
      .log_read = pg_log_read,
      .log_close = pg_log_close,
      .done = pg_done,
      .counts = pg_counts,
      .user_counts = pg_user_counts,
      .recover = pg_recover,
      .wait = pg_wait,
      .healthy = pg_healthy,
      .close = pg_close,
  };
  pthread_mutex_init(&q->lock, NULL);
  pthread_cond_init(&q->cond, NULL);
  q->conninfo = hoist_strdup(conninfo);
  q->backoff_ms = 100;
  atomic_store(&q->up, true);
  PGconn *c = NULL;
  if (conn_get(q, true, &c, err) < 0)
    goto fail;
  int r = migrate(q, c, err);
  PQfinish(c); /* the pool's connections prepare the statements */
  pthread_mutex_lock(&q->lock);
  q->open--;
  q->schema_ready = r == 0;
  pthread_mutex_unlock(&q->lock);
  if (r < 0)
    goto fail;
  *out = &q->base;
  return 0;
fail:
  pg_close(&q->base);
  return -1;
}
