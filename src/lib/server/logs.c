/* server: followed logs. A follower's answer waits for its build's log to
 * grow without holding one of libmicrohttpd's threads: when its content
 * reader has nothing to send, the connection is suspended; a watcher thread
 * resumes it when the job's log changes (inotify on the job's directory:
 * the log created, written, closed; at most every 20 ms, so a chatty build
 * is sent in pieces, not line by line), again 100 ms after the job's last
 * change (a job ends just after its last line), and every second anyway (an
 * end without a write, a client gone, a lost inotify event).
 *
 * Every state change of a follower is made under one lock: a follower is
 * resumed once per suspension, never after its answer was freed
 * (server_logwatch_leave, from the response's free callback, which
 * libmicrohttpd calls before it frees the connection), and a wake-up that
 * comes while it reads is kept for its next wait. The lock is taken before
 * libmicrohttpd's own (suspend and resume take it); libmicrohttpd calls none
 * of ours with its own held. */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "server-private.h"

#define TICK_MS 1000   /* every follower is woken this often */
#define WAKE_GAP_MS 20 /* a job's followers, at most this often for its changes */
#define RECHECK_MS 100 /* and once more this long after the job's last change */

/* A followed job: the watch on its directory, shared by its followers. */
typedef struct logjob {
  struct logjob *next;
  char id[17];
  int wd;             /* inotify watch on JOBS/<id>, or -1 */
  int64_t woken_at;   /* its followers were last woken then */
  int64_t wake_at;    /* wake them then (its log changed); 0: not due */
  int64_t recheck_at; /* and then; 0: not due */
  size_t refs;        /* followers */
} logjob;

struct server_logwait {
  struct server_logwait *prev, *next;
  struct MHD_Connection *c;
  logjob *job;
  bool suspended; /* by its reader; the one resume clears it */
  bool woken;     /* woken while not suspended: its next wait reads again */
};

struct server_logwatch {
  pthread_mutex_t lock;
  char *jobs_dir;
  int ino;    /* inotify, or -1: the tick only */
  int stopfd; /* eventfd: the thread ends */
  pthread_t thread;
  bool running;  /* the thread */
  bool stopping; /* no follower suspends any more */
  logjob *jobs;
  server_logwait *waits;
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* With the lock held: resumes a suspended follower, or tells a reading one
 * to read again before it suspends. */
static void wake(server_logwait *wt) {
  if (wt->suspended) {
    wt->suspended = false;
    MHD_resume_connection(wt->c);
  } else {
    wt->woken = true;
  }
}

static void wake_job(server_logwatch *w, const logjob *j) {
  for (server_logwait *wt = w->waits; wt; wt = wt->next)
    if (!j || wt->job == j)
      wake(wt);
}

/* With the lock held: the job's record, its directory watched (a watch that
 * cannot be made, as for a job already removed, leaves the tick). */
static logjob *job_ref(server_logwatch *w, const char *id) {
  for (logjob *j = w->jobs; j; j = j->next)
    if (strcmp(j->id, id) == 0) {
      j->refs++;
      return j;
    }
  logjob *j = hoist_malloc0(sizeof *j);
  snprintf(j->id, sizeof j->id, "%s", id);
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", w->jobs_dir, id);
  j->wd = w->ino < 0 ? -1
                     : inotify_add_watch(w->ino, path,
                                         IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO |
                                             IN_DELETE_SELF | IN_ONLYDIR);
  j->refs = 1;
  j->next = w->jobs;
  w->jobs = j;
  return j;
}

static void job_unref(server_logwatch *w, logjob *j) {
  if (--j->refs)
    return;
  for (logjob **p = &w->jobs; *p; p = &(*p)->next)
    if (*p == j) {
      *p = j->next;
      break;
    }
  if (j->wd >= 0)
    inotify_rm_watch(w->ino, j->wd);
  free(j);
}

static void job_changed(logjob *j, int64_t now) {
  j->recheck_at = now + RECHECK_MS;
  if (!j->wake_at)
    j->wake_at = j->woken_at + WAKE_GAP_MS > now ? j->woken_at + WAKE_GAP_MS : now;
}

/* With the lock held: what a buffer of inotify events changes. */
static void on_events(server_logwatch *w, const char *buf, size_t len, int64_t now) {
  for (size_t off = 0; off + sizeof(struct inotify_event) <= len;) {
    const struct inotify_event *ev = (const void *)(buf + off);
    off += sizeof *ev + ev->len;
    if (ev->mask & IN_Q_OVERFLOW) {
      for (logjob *j = w->jobs; j; j = j->next)
        job_changed(j, now);
      continue;
    }
    /* the log, or the directory itself (removed: the job ended) */
    if (ev->len && strcmp(ev->name, "log") != 0)
      continue;
    for (logjob *j = w->jobs; j; j = j->next)
      if (j->wd == ev->wd) {
        job_changed(j, now);
        if (ev->mask & IN_IGNORED)
          j->wd = -1;
      }
  }
}

/* With the lock held: wakes the followers of the jobs due by now; the time
 * of the next wake due. */
static int64_t wake_due(server_logwatch *w, int64_t now, int64_t tick) {
  int64_t next = tick;
  for (logjob *j = w->jobs; j; j = j->next) {
    bool due = (j->wake_at && j->wake_at <= now) || (j->recheck_at && j->recheck_at <= now);
    if (due) {
      wake_job(w, j);
      j->woken_at = now;
      j->wake_at = 0;
      if (j->recheck_at <= now)
        j->recheck_at = 0;
    }
    if (j->wake_at && j->wake_at < next)
      next = j->wake_at;
    if (j->recheck_at && j->recheck_at < next)
      next = j->recheck_at;
  }
  return next;
}

static void *watcher(void *arg) {
  server_logwatch *w = arg;
  char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
  int64_t tick = now_ms() + TICK_MS, next = tick;
  for (;;) {
    int64_t wait_ms = next - now_ms();
    /* ino < 0 is left out; on an error (no memory) the revents stay 0 */
    struct pollfd p[2] = {{.fd = w->ino, .events = POLLIN}, {.fd = w->stopfd, .events = POLLIN}};
    if (poll(p, 2, wait_ms > 0 ? (int)wait_ms : 0) < 0 && errno != EINTR) {
      struct timespec ts = {0, WAKE_GAP_MS * 1000000L};
      nanosleep(&ts, NULL);
    }
    if (p[1].revents)
      break;
    ssize_t n = p[0].revents & POLLIN ? read(w->ino, buf, sizeof buf) : 0;
    int64_t now = now_ms();
    pthread_mutex_lock(&w->lock);
    if (n > 0)
      on_events(w, buf, (size_t)n, now);
    if (now >= tick) {
      tick = now + TICK_MS;
      wake_job(w, NULL);
    }
    next = wake_due(w, now, tick);
    pthread_mutex_unlock(&w->lock);
  }
  return NULL;
}

int server_logwatch_start(const char *jobs_dir, server_logwatch **out, hoist_err **err) {
  server_logwatch *w = hoist_malloc0(sizeof *w);
  pthread_mutex_init(&w->lock, NULL);
  w->jobs_dir = hoist_strdup(jobs_dir);
  w->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (w->ino < 0) /* out of inotify instances: followers wake every second */
    hoist_warn("serve: followed logs: inotify: %s; a follower waits up to %d ms for each line",
               strerror(errno), TICK_MS);
  w->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (w->stopfd < 0) {
    int e = errno;
    server_logwatch_free(w);
    return hoist_err_errno(err, e, "serve: followed logs: eventfd");
  }
  int e = pthread_create(&w->thread, NULL, watcher, w);
  if (e) {
    server_logwatch_free(w);
    return hoist_err_errno(err, e, "serve: followed logs: thread");
  }
  w->running = true;
  *out = w;
  return 0;
}

/* The client closed its end or reset the connection (as nginx takes it: an
 * HTTP client does not half-close and then wait for its answer). */
static bool peer_gone(struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (!ci)
    return false;
  struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

int server_logwatch_wait(server_logwatch *w, struct MHD_Connection *c, const char *id,
                         server_logwait **slot) {
  if (peer_gone(c))
    return -1;
  pthread_mutex_lock(&w->lock);
  int ret = 0;
  server_logwait *wt = *slot;
  if (w->stopping) {
    ret = -1;
  } else if (!wt) {
    wt = hoist_malloc0(sizeof *wt);
    wt->c = c;
    wt->job = job_ref(w, id);
    wt->next = w->waits;
    if (w->waits)
      w->waits->prev = wt;
    w->waits = wt;
    *slot = wt;
    ret = 1; /* the log may have grown before the watch was made */
  } else if (wt->woken) {
    wt->woken = false;
    ret = 1;
  } else {
    wt->suspended = true;
    MHD_suspend_connection(c);
  }
  pthread_mutex_unlock(&w->lock);
  return ret;
}

void server_logwatch_leave(server_logwatch *w, server_logwait *wt) {
  if (!wt)
    return;
  pthread_mutex_lock(&w->lock);
  if (wt->prev)
    wt->prev->next = wt->next;
  else
    w->waits = wt->next;
  if (wt->next)
    wt->next->prev = wt->prev;
  job_unref(w, wt->job);
  pthread_mutex_unlock(&w->lock);
  free(wt);
}

void server_logwatch_stop(server_logwatch *w) {
  if (!w)
    return;
  if (w->running) {
    uint64_t one = 1;
    if (write(w->stopfd, &one, sizeof one) < 0) {
      /* an eventfd write fails only when its counter is full: it is set */
    }
    pthread_join(w->thread, NULL);
    w->running = false;
  }
  pthread_mutex_lock(&w->lock);
  w->stopping = true;
  for (server_logwait *wt = w->waits; wt; wt = wt->next)
    if (wt->suspended) {
      wt->suspended = false;
      MHD_resume_connection(wt->c);
    }
  pthread_mutex_unlock(&w->lock);
}

void server_logwatch_free(server_logwatch *w) {
  if (!w)
    return;
  server_logwatch_stop(w);
  /* the daemon freed every answer, so every follower left; in case not: */
  while (w->waits)
    server_logwatch_leave(w, w->waits);
  if (w->ino >= 0)
    close(w->ino);
  if (w->stopfd >= 0)
    close(w->stopfd);
  pthread_mutex_destroy(&w->lock);
  free(w->jobs_dir);
  free(w);
}
