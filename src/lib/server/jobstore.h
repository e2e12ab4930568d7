/* server: the job store, one interface with two drivers.
 *
 * - SQLite (`sqlite:PATH`, the default DATA/jobs.db): one `hoist serve` owns
 *   it; logs are files DATA/jobs/<id>/log, requirement files stay in
 *   DATA/jobs/<id>/ where the submit wrote them.
 * - PostgreSQL (`postgres://...`, libpq): several replicas share it; jobs,
 *   requirement files and logs (as chunks) live in the database, claims take
 *   a lease their owner renews, per-user limits are checked under an advisory
 *   lock per user inside the claim's transaction, identical in-flight builds
 *   meet on a partial unique index, and LISTEN/NOTIFY wakes the replicas.
 *
 * Both keep a versioned schema and migrate it when opened. Every call is
 * thread-safe. Times are seconds since the epoch (the database's clock for
 * leases). A crash leaves the store consistent: a job's state changes in one
 * statement or one transaction. */
#ifndef HOIST_SERVER_JOBSTORE_H
#define HOIST_SERVER_JOBSTORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "hoist/core.h"
#include "hoist/server.h"

#define STORE_ID_HEX 16

/* A job to queue. key is the build's identity (user, source, kind, file,
 * target, destination): while a job with it is queued or running, an
 * identical request gets that job. */
typedef struct store_new {
  const char *id, *user, *source, *target, *kind, *file_digest, *dest, *image, *secret, *key;
  const unsigned char *file; /* the requirement file, kept by a shared store only */
  size_t file_len;
} store_new;

/* A claimed job: what its build needs. */
typedef struct store_job {
  char id[STORE_ID_HEX + 1];
  char *user, *source, *kind, *dest, *file_digest, *secret;
  unsigned char *file; /* a shared store's copy of the requirement file, or NULL */
  size_t file_len;
} store_job;

void store_job_clear(store_job *j);

/* A job as status and list show it; times < 0 are unset. */
typedef struct store_row {
  char *id, *user, *source, *target, *kind, *state, *image, *digest, *error;
  double created, started, finished;
} store_row;

void store_row_clear(store_row *r);
/* The wire form of a job (status, list). */
json_t *store_row_json(const store_row *r);

/* How many jobs per state, and the run times of finished builds. */
#define STORE_NSTATES 5
extern const char *const store_states[STORE_NSTATES]; /* queued running succeeded failed canceled */

typedef struct store_counts {
  int64_t by_state[STORE_NSTATES];
  double duration_sum;
  int64_t duration_count;
} store_counts;

typedef struct store_user_count {
  char *user, *state;
  int64_t n;
} store_user_count;

/* "build-<user>-<id>", at most HOIST_SERVER_JOB_NAME_MAX characters of [a-z0-9-]. */
char *store_job_name(const char *user, const char *id);

typedef struct server_store server_store;
typedef struct store_log store_log;

struct server_store {
  const char *driver; /* "sqlite" | "postgres" */
  bool shared;        /* several replicas: logs and requirement files in the store */

  /* Queues n, unless a job with n->key is queued or running (*id is that
   * one, *shared true) or n->user has per_user_queue jobs queued (*full).
   * *id caller-freed. */
  int (*enqueue)(server_store *s, const store_new *n, int per_user_queue, char **id, bool *shared,
                 bool *full, hoist_err **err);
  /* Takes the next queued job (users by turns: the one whose last build
   * started longest ago) whose user runs fewer than per_user_limit builds,
   * marks it running with owner and a lease of lease_s seconds. 1 taken,
   * 0 none. */
  int (*claim)(server_store *s, const char *owner, int per_user_limit, double lease_s,
               store_job *out, hoist_err **err);
  /* Renews the leases of owner's running jobs (lease_s 0: none); *cancel
   * (NULL-terminated, caller frees with hoist_strfreev; NULL when none) are
   * those of the builds running here (ids, NULL-terminated) a cancel reached
   * or that owner no longer holds (its lease ran out and the job went back
   * to the queue or failed): their builds stop. */
  int (*heartbeat)(server_store *s, const char *owner, double lease_s, char *const *running,
                   char ***cancel, hoist_err **err);
  /* Ends owner's running (or a queued) job id. Not an error when the job is
   * no longer owner's (its lease was lost). */
  int (*finish)(server_store *s, const char *id, const char *owner, const char *state,
                const char *digest, const char *error, hoist_err **err);
  /* Cancels user's job: 1 canceled (queued) or cancel requested (running;
   * *running true), 0 not found, 2 already ended. */
  int (*cancel)(server_store *s, const char *user, const char *id, bool *running, hoist_err **err);
  /* 1 and *out filled, 0 when id is unknown or not user's. */
  int (*status)(server_store *s, const char *user, const char *id, store_row *out, hoist_err **err);
  /* user's jobs, newest first (at most 1000). */
  int (*list)(server_store *s, const char *user, store_row **rows, size_t *n, hoist_err **err);
  /* Removes user's ended jobs created before cutoff, with their logs; *ids
   * (NULL-terminated, caller frees) the removed. */
  int (*cleanup)(server_store *s, const char *user, double cutoff, char ***ids, hoist_err **err);
  /* Appends to job id's log. */
  int (*log_append)(server_store *s, const char *id, const void *data, size_t n, hoist_err **err);
  /* A reader of job id's log (a follower keeps one for its answer's life);
   * reads from off into buf (at most max), *n 0 at its end (so far). */
  int (*log_open)(server_store *s, const char *id, store_log **out, hoist_err **err);
  int (*log_read)(server_store *s, store_log *l, uint64_t off, char *buf, size_t max, size_t *n,
                  hoist_err **err);
  void (*log_close)(server_store *s, store_log *l);
  /* 1 when job id is no longer queued or running (or unknown), 0 when it is. */
  int (*done)(server_store *s, const char *id, hoist_err **err);
  int (*counts)(server_store *s, store_counts *c, hoist_err **err);
  int (*user_counts)(server_store *s, store_user_count **out, size_t *n, hoist_err **err);
  /* Running jobs whose owner is gone (SQLite: every running job, at start;
   * PostgreSQL: those whose lease expired) become failed "server restarted"
   * or queued again per policy; *ids (NULL-terminated, caller frees) are
   * those jobs. */
  int (*recover)(server_store *s, hoist_restart_policy policy, char ***ids, hoist_err **err);
  /* Waits up to timeout_ms for another replica's news: 1 new work may be
   * there, 0 nothing; *cancel as heartbeat's. NULL for an unshared store. */
  int (*wait)(server_store *s, int timeout_ms, char ***cancel);
  /* Whether the database answers. */
  bool (*healthy)(server_store *s);
  void (*close)(server_store *s);
};

/* Opens the store url names: "sqlite:PATH", "postgres://..." or
 * "postgresql://..." (libpq's URI, TLS by its sslmode and friends), or
 * "host=... dbname=..." (libpq's key=value form). NULL: sqlite:DATA/jobs.db.
 * data_dir holds the SQLite driver's logs (DATA/jobs). Migrates the schema. */
int server_store_open(const char *url, const char *data_dir, server_store **out,
                      hoist_err **err) HOIST_WUR;

int store_sqlite_open(const char *path, const char *jobs_dir, server_store **out,
                      hoist_err **err) HOIST_WUR;
int store_pg_open(const char *conninfo, server_store **out, hoist_err **err) HOIST_WUR;

static inline void store_ids_free(char **ids) { hoist_strfreev(ids); }

#endif
