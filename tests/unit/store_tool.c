/* The job store's contract, run against a driver named by URL (sqlite:PATH
 * or postgres://...), and the store's side of the race tests
 * (tests/integration/test_serve_replicas.py):
 *
 *   store_tool suite URL DATA             the contract, as TAP
 *   store_tool enqueue URL DATA N USERS   N jobs of USERS users (u0, u1, ...)
 *   store_tool claim URL DATA OWNER LIMIT HOLD_MS
 *       claims until nothing is queued or running, prints each id claimed,
 *       holds each HOLD_MS, then finishes it
 *   store_tool sample URL DATA            samples the running builds per user
 *       until nothing is queued or running; prints the largest count seen
 *
 * claim and sample start together: each, its store open, makes
 * DATA/ready.NAME (NAME: the owner, or "sampler") and waits for DATA/go. */
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../src/lib/server/jobstore.h"

static int checks, failures;

#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    checks++;                                                                                      \
    if (cond) {                                                                                    \
      printf("ok %d - ", checks);                                                                  \
    } else {                                                                                       \
      failures++;                                                                                  \
      printf("not ok %d - %s:%d: ", checks, __FILE__, __LINE__);                                   \
    }                                                                                              \
    printf(__VA_ARGS__);                                                                           \
    printf("\n");                                                                                  \
    fflush(stdout);                                                                                \
  } while (0)

static server_store *open_store(const char *url, const char *data) {
  hoist_err *e = NULL;
  server_store *s = NULL;
  if (server_store_open(url, data, &s, &e) < 0) {
    char *t = hoist_err_text(e);
    fprintf(stderr, "store_tool: %s\n", t);
    exit(1);
  }
  return s;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A job of user with its id, key and (for a shared store) file. */
static int enqueue(server_store *s, const char *data, const char *user, const char *id,
                   const char *key, int queue, char **got, bool *shared, bool *full) {
  store_new n = {.id = id,
                 .user = user,
                 .source = "127.0.0.1:1/base/x:1",
                 .target = "t:1",
                 .kind = "python",
                 .file_digest = "sha256:00",
                 .dest = "127.0.0.1:1/t:1",
                 .image = "127.0.0.1:1/t:1",
                 .secret = "u:p",
                 .key = key,
                 .file = (const unsigned char *)"flask\n",
                 .file_len = 6};
  if (!s->shared) { /* the unshared store's log lives in DATA/jobs/<id> */
    char *d = hoist_asprintf("%s/jobs/%s", data, id);
    mkdir(d, 0700);
    free(d);
  }
  hoist_err *e = NULL;
  int r = s->enqueue(s, &n, queue, got, shared, full, &e);
  if (r < 0)
    fprintf(stderr, "enqueue: %s\n", e->msg);
  hoist_err_free(e);
  return r;
}

static int state_of(server_store *s, const char *user, const char *id, char *out, size_t n) {
  store_row row = {0};
  int r = s->status(s, user, id, &row, NULL);
  snprintf(out, n, "%s", r == 1 ? row.state : r == 0 ? "(none)" : "(error)");
  store_row_clear(&row);
  return r;
}

static int suite(const char *url, const char *data) {
  server_store *s = open_store(url, data);
  char id[8][17], st[32];
  for (int i = 0; i < 8; i++)
    snprintf(id[i], sizeof id[i], "%016x", (unsigned)(rand() ^ (i << 24)) + (unsigned)i);
  char *got = NULL;
  bool shared, full;
  CHECK(enqueue(s, data, "alice", id[0], "k0", 3, &got, &shared, &full) == 0 && !shared && !full &&
            strcmp(got, id[0]) == 0,
        "%s: enqueue", s->driver);
  free(got);
  CHECK(state_of(s, "alice", id[0], st, sizeof st) == 1 && strcmp(st, "queued") == 0,
        "%s: a new job is queued (%s)", s->driver, st);
  CHECK(state_of(s, "bob", id[0], st, sizeof st) == 0, "%s: another user does not see it",
        s->driver);
  got = NULL;
  CHECK(enqueue(s, data, "alice", id[1], "k0", 3, &got, &shared, &full) == 0 && shared &&
            strcmp(got, id[0]) == 0,
        "%s: the same key in flight is shared", s->driver);
  free(got);
  got = NULL;
  enqueue(s, data, "alice", id[1], "k1", 3, &got, &shared, &full);
  free(got);
  got = NULL;
  enqueue(s, data, "alice", id[2], "k2", 3, &got, &shared, &full);
  free(got);
  got = NULL;
  CHECK(enqueue(s, data, "alice", id[3], "k3", 3, &got, &shared, &full) == 0 && full && !got,
        "%s: per_user_queue refuses the fourth queued job", s->driver);
  got = NULL;
  enqueue(s, data, "bob", id[4], "k4", 3, &got, &shared, &full);
  free(got);

  /* claims: users by turns, the per-user limit */
  store_job j1 = {0}, j2 = {0}, j3 = {0};
  CHECK(s->claim(s, "A", 1, 30, &j1, NULL) == 1 && strcmp(j1.id, id[0]) == 0 &&
            strcmp(j1.user, "alice") == 0 && strcmp(j1.secret, "u:p") == 0,
        "%s: the oldest job is claimed first", s->driver);
  CHECK(!s->shared || (j1.file_len == 6 && memcmp(j1.file, "flask\n", 6) == 0),
        "%s: a shared store hands out the requirement file", s->driver);
  CHECK(s->claim(s, "B", 1, 30, &j2, NULL) == 1 && strcmp(j2.id, id[4]) == 0,
        "%s: alice at her limit, bob's job is next", s->driver);
  CHECK(s->claim(s, "B", 1, 30, &j3, NULL) == 0, "%s: nothing more under a limit of 1", s->driver);
  CHECK(state_of(s, "alice", id[0], st, sizeof st) == 1 && strcmp(st, "running") == 0,
        "%s: claimed is running", s->driver);

  /* logs: appends in order, reads from any offset */
  CHECK(s->log_append(s, id[0], "hello ", 6, NULL) == 0 &&
            s->log_append(s, id[0], "world\n", 6, NULL) == 0,
        "%s: log appends", s->driver);
  char buf[64];
  size_t n = 0;
  store_log *lg = NULL;
  CHECK(s->log_open(s, id[0], &lg, NULL) == 0, "%s: a log reader", s->driver);
  CHECK(s->log_read(s, lg, 0, buf, sizeof buf, &n, NULL) == 0 && n == 12 &&
            memcmp(buf, "hello world\n", 12) == 0,
        "%s: the log reads back whole", s->driver);
  CHECK(s->log_read(s, lg, 8, buf, 3, &n, NULL) == 0 && n == 3 && memcmp(buf, "rld", 3) == 0,
        "%s: the log reads from an offset, at most max", s->driver);
  CHECK(s->log_read(s, lg, 12, buf, sizeof buf, &n, NULL) == 0 && n == 0,
        "%s: at the log's end, nothing", s->driver);

  /* cancels */
  bool running = false;
  CHECK(s->cancel(s, "alice", id[1], &running, NULL) == 1 && !running,
        "%s: a queued job is canceled", s->driver);
  CHECK(state_of(s, "alice", id[1], st, sizeof st) == 1 && strcmp(st, "canceled") == 0,
        "%s: ... and says so", s->driver);
  CHECK(s->cancel(s, "alice", id[0], &running, NULL) == 1 && running,
        "%s: a running job's cancel is requested", s->driver);
  char **cancel = NULL;
  char *here[] = {id[0], id[4], NULL}; /* A runs id[0]; id[4] is B's */
  CHECK(s->heartbeat(s, "A", 30, here, &cancel, NULL) == 0, "%s: heartbeat", s->driver);
  CHECK(!s->shared || (cancel && cancel[0] && cancel[1] && !cancel[2] &&
                       (strcmp(cancel[0], id[0]) == 0 || strcmp(cancel[1], id[0]) == 0) &&
                       (strcmp(cancel[0], id[4]) == 0 || strcmp(cancel[1], id[4]) == 0)),
        "%s: the owner's heartbeat hears of the cancel, and of a job it does not hold", s->driver);
  hoist_strfreev(cancel);
  CHECK(s->cancel(s, "bob", id[0], &running, NULL) == 0, "%s: another user's job is not found",
        s->driver);
  CHECK(s->done(s, id[0], NULL) == 0 && s->done(s, id[1], NULL) == 1,
        "%s: done tells running from ended", s->driver);

  /* finish, counts */
  CHECK(s->finish(s, id[0], "A", "canceled", NULL, "canceled", NULL) == 0 &&
            s->finish(s, id[4], "B", "succeeded", "sha256:ab", NULL, NULL) == 0,
        "%s: finish", s->driver);
  CHECK(s->cancel(s, "alice", id[0], &running, NULL) == 2, "%s: an ended job cannot be canceled",
        s->driver);
  store_row row = {0};
  CHECK(s->status(s, "bob", id[4], &row, NULL) == 1 && strcmp(row.state, "succeeded") == 0 &&
            strcmp(row.digest, "sha256:ab") == 0 && row.started > 0 && row.finished >= row.started,
        "%s: a finished job's status", s->driver);
  store_row_clear(&row);
  store_counts c;
  CHECK(s->counts(s, &c, NULL) == 0 && c.by_state[0] == 1 && c.by_state[1] == 0 &&
            c.by_state[2] == 1 && c.by_state[4] == 2 && c.duration_count == 2,
        "%s: counts by state (%lld queued, %lld succeeded, %lld canceled)", s->driver,
        (long long)c.by_state[0], (long long)c.by_state[2], (long long)c.by_state[4]);
  store_user_count *uc = NULL;
  size_t nuc = 0;
  CHECK(s->user_counts(s, &uc, &nuc, NULL) == 0 && nuc == 3, "%s: counts by user and state",
        s->driver);
  for (size_t i = 0; i < nuc; i++) {
    free(uc[i].user);
    free(uc[i].state);
  }
  free(uc);
  store_row *rows = NULL;
  size_t nrows = 0;
  CHECK(s->list(s, "alice", &rows, &nrows, NULL) == 0 && nrows == 3 &&
            strcmp(rows[0].id, id[2]) == 0,
        "%s: list, newest first", s->driver);
  for (size_t i = 0; i < nrows; i++)
    store_row_clear(&rows[i]);
  free(rows);

  /* a finished key is free again */
  got = NULL;
  CHECK(enqueue(s, data, "alice", id[5], "k0", 3, &got, &shared, &full) == 0 && !shared &&
            strcmp(got, id[5]) == 0,
        "%s: an ended job's key is free", s->driver);
  free(got);

  /* the owner is gone: its lease runs out (a shared store), or the store is
   * opened again (SQLite) */
  store_job j4 = {0};
  CHECK(s->claim(s, "C", 5, 0.2, &j4, NULL) == 1, "%s: claim with a short lease", s->driver);
  sleep_ms(400);
  char **ids = NULL;
  CHECK(s->recover(s, HOIST_RESTART_REQUEUE, &ids, NULL) == 0 && ids && ids[0] && !ids[1] &&
            strcmp(ids[0], j4.id) == 0,
        "%s: the lost job is given back", s->driver);
  hoist_strfreev(ids);
  CHECK(state_of(s, "alice", j4.id, st, sizeof st) == 1 && strcmp(st, "queued") == 0,
        "%s: ... queued again (%s)", s->driver, st);
  CHECK(s->finish(s, j4.id, "C", "succeeded", NULL, NULL, NULL) == 0 &&
            state_of(s, "alice", j4.id, st, sizeof st) == 1 && strcmp(st, "queued") == 0,
        "%s: the lost owner's late finish changes nothing", s->driver);
  store_job_clear(&j4);

  /* cleanup: ended jobs before the cutoff, their logs with them */
  ids = NULL;
  CHECK(s->cleanup(s, "alice", now_s() + 10, &ids, NULL) == 0 && ids && ids[0] && ids[1] && !ids[2],
        "%s: cleanup removes alice's two ended jobs", s->driver);
  hoist_strfreev(ids);
  CHECK(state_of(s, "alice", id[0], st, sizeof st) == 0 &&
            state_of(s, "alice", id[2], st, sizeof st) == 1,
        "%s: ... and keeps the queued", s->driver);
  if (s->shared) {
    CHECK(s->log_read(s, lg, 0, buf, sizeof buf, &n, NULL) == 0 && n == 0,
          "%s: the log went with its job", s->driver);
  }
  s->log_close(s, lg);
  store_job_clear(&j1);
  store_job_clear(&j2);
  s->close(s);
  /* opened again: the schema is there, migrations do not run twice */
  s = open_store(url, data);
  CHECK(state_of(s, "alice", id[2], st, sizeof st) == 1, "%s: opened again, the jobs are there",
        s->driver);
  s->close(s);
  printf("1..%d\n", checks);
  return failures ? 1 : 0;
}

/* The race tests' start line: says this side is ready, waits for the go. */
static void start_line(const char *data, const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/ready.%s", data, name);
  FILE *f = fopen(path, "w");
  if (f)
    fclose(f);
  snprintf(path, sizeof path, "%s/go", data);
  while (access(path, F_OK) < 0)
    sleep_ms(2);
}

static int queued_or_running(server_store *s) {
  store_counts c;
  if (s->counts(s, &c, NULL) < 0)
    return 1;
  return c.by_state[0] + c.by_state[1] > 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: store_tool suite|enqueue|claim|sample URL DATA ...\n");
    return 2;
  }
  const char *cmd = argv[1], *url = argv[2], *data = argv[3];
  srand((unsigned)getpid() ^ (unsigned)time(NULL));
  if (strcmp(cmd, "suite") == 0)
    return suite(url, data);
  server_store *s = open_store(url, data);
  if (strcmp(cmd, "enqueue") == 0 && argc == 6) {
    int n = atoi(argv[4]), users = atoi(argv[5]);
    for (int i = 0; i < n; i++) {
      char id[17], key[32], user[16];
      snprintf(id, sizeof id, "%08x%08x", (unsigned)rand(), (unsigned)i);
      snprintf(key, sizeof key, "race-%s", id);
      snprintf(user, sizeof user, "u%d", i % users);
      char *got = NULL;
      bool shared, full;
      if (enqueue(s, data, user, id, key, 1 << 20, &got, &shared, &full) < 0 || !got)
        return 1;
      free(got);
    }
  } else if (strcmp(cmd, "claim") == 0 && argc == 7) {
    const char *owner = argv[4];
    int limit = atoi(argv[5]), hold = atoi(argv[6]);
    start_line(data, owner);
    for (;;) {
      store_job j = {0};
      hoist_err *e = NULL;
      int r = s->claim(s, owner, limit, 30, &j, &e);
      if (r < 0) {
        fprintf(stderr, "claim: %s\n", e->msg);
        return 1;
      }
      if (r == 1) {
        printf("%s\n", j.id);
        fflush(stdout);
        if (hold)
          sleep_ms(hold);
        if (s->finish(s, j.id, owner, "succeeded", NULL, NULL, NULL) < 0)
          return 1;
        store_job_clear(&j);
      } else if (!queued_or_running(s)) {
        break;
      } else {
        sleep_ms(2);
      }
    }
  } else if (strcmp(cmd, "sample") == 0) {
    int64_t most = 0;
    long samples = 0;
    start_line(data, "sampler");
    do {
      store_user_count *uc = NULL;
      size_t n = 0;
      if (s->user_counts(s, &uc, &n, NULL) < 0)
        return 1;
      for (size_t i = 0; i < n; i++) {
        if (uc[i].state && strcmp(uc[i].state, "running") == 0 && uc[i].n > most)
          most = uc[i].n;
        free(uc[i].user);
        free(uc[i].state);
      }
      free(uc);
      samples++;
    } while (queued_or_running(s));
    printf("%lld %ld\n", (long long)most, samples);
  } else {
    fprintf(stderr, "store_tool: bad arguments\n");
    return 2;
  }
  s->close(s);
  return 0;
}
