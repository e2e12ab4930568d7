/* The writers of an unpack: threads that create regular files whose data the
 * applier has read from the tar, write it and set the file's owner, mode and
 * times, while the applier goes on with the next members. What may be given
 * to them, and when the applier must wait for them, is the applier's rule
 * (apply.c); here: a bounded queue, and the first failure kept. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hoist/fs.h"
#include "unpack-private.h"

/* Bounds on what waits in the queue: the applier blocks beyond them. */
#define POOL_MAX_JOBS 4096
#define POOL_MAX_BYTES (64u << 20)
#define POOL_MAX_THREADS 8

unsigned unpack_test_delay_us;

struct unpack_dir {
  int fd;
  atomic_int refs;
};

unpack_dir *unpack_dir_new(int fd) {
  unpack_dir *d = hoist_malloc0(sizeof *d);
  d->fd = fd;
  atomic_init(&d->refs, 1);
  return d;
}

int unpack_dir_fd(const unpack_dir *d) { return d->fd; }

unpack_dir *unpack_dir_ref(unpack_dir *d) {
  atomic_fetch_add(&d->refs, 1);
  return d;
}

void unpack_dir_unref(unpack_dir *d) {
  if (d && atomic_fetch_sub(&d->refs, 1) == 1) {
    close(d->fd);
    free(d);
  }
}

void unpack_file_job_free(unpack_file_job *j) {
  if (!j)
    return;
  unpack_dir_unref(j->dir);
  free(j->path);
  free(j->data);
  free(j);
}

static bool all_zero(const uint8_t *p, size_t n) {
  return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

int unpack_write_at(int fd, const uint8_t *p, size_t len, int64_t at, int64_t *pos,
                    const char *path, hoist_err **err) {
  while (len > 0) {
    size_t n = UNPACK_HOLE_MIN - (size_t)((uint64_t)at % UNPACK_HOLE_MIN);
    if (n > len)
      n = len;
    /* a zero piece is not written: a new file reads zeros there (a piece
     * shorter than UNPACK_HOLE_MIN lies at a buffer's edge, in a run that
     * may continue in the next) */
    if (!all_zero(p, n)) {
      if (at != *pos && lseek(fd, at, SEEK_SET) < 0)
        return hoist_err_errno(err, errno, "seek in %s", path);
      if (hoist_fs_write_all(fd, p, n, err) < 0)
        return hoist_err_wrap(err, "write %s", path);
      *pos = at + (int64_t)n;
    }
    p += n;
    len -= n;
    at += (int64_t)n;
  }
  return 0;
}

struct unpack_pool {
  pthread_mutex_t mu;
  pthread_cond_t work; /* a job was queued, or stop */
  pthread_cond_t room; /* a job ended: room in the queue, maybe idle */
  unpack_file_job *head, *tail;
  size_t queued, queued_bytes, running;
  bool stop;
  hoist_err *failed; /* the first failure; later jobs are dropped */
  hoist_owner_mode owners;
  hoist_unpack_report *rep;
  int n_threads;
  pthread_t threads[POOL_MAX_THREADS];
};

/* Creates, writes and closes the file of job j. Owner failures that are
 * not errors are counted in the report (under the pool's lock). */
HOIST_WUR static int run_job(unpack_pool *p, unpack_file_job *j, hoist_err **err) {
  _cleanup_close_ int fd =
      openat(unpack_dir_fd(j->dir), j->base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
             j->mode & 0777);
  if (fd < 0)
    return hoist_err_errno(err, errno, "member %s: create", j->path);
  int64_t pos = 0;
  if (unpack_write_at(fd, j->data, j->len, 0, &pos, j->path, err) < 0)
    return -1;
  if (j->size > pos && ftruncate(fd, j->size) < 0)
    return hoist_err_errno(err, errno, "truncate %s", j->path);
  if (j->chown && fchown(fd, j->uid, j->gid) < 0) {
    if (p->owners == HOIST_OWNER_APPLY)
      return hoist_err_errno(err, errno, "chown %s to %u:%u", j->path, j->uid, j->gid);
    pthread_mutex_lock(&p->mu);
    p->rep->owners_recorded++;
    if (!p->rep->first_owner)
      p->rep->first_owner = hoist_strdup(j->path);
    pthread_mutex_unlock(&p->mu);
  }
  if (j->chmod && fchmod(fd, j->mode) < 0)
    return hoist_err_errno(err, errno, "chmod %s", j->path);
  struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, j->mtime};
  if (ts[1].tv_nsec != UTIME_OMIT && futimens(fd, ts) < 0)
    return hoist_err_errno(err, errno, "set times of %s", j->path);
  if (close(steal_fd(&fd)) < 0)
    return hoist_err_errno(err, errno, "close %s", j->path);
  return 0;
}

static void *worker(void *arg) {
  unpack_pool *p = arg;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->head && !p->stop)
      pthread_cond_wait(&p->work, &p->mu);
    if (!p->head)
      break;
    unpack_file_job *j = p->head;
    p->head = j->next;
    if (!p->head)
      p->tail = NULL;
    p->running++;
    bool skip = p->failed != NULL;
    pthread_mutex_unlock(&p->mu);
    hoist_err *e = NULL;
    if (unpack_test_delay_us)
      usleep(unpack_test_delay_us);
    if (!skip && run_job(p, j, &e) < 0 && !e)
      hoist_err_set(&e, EIO, "member %s: write failed", j->path);
    size_t len = j->len;
    unpack_file_job_free(j);
    pthread_mutex_lock(&p->mu);
    if (e && !p->failed)
      p->failed = e;
    else
      hoist_err_free(e);
    p->running--;
    p->queued--;
    p->queued_bytes -= len;
    pthread_cond_broadcast(&p->room);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

int unpack_pool_threads(void) {
  cpu_set_t set;
  int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
  return n > POOL_MAX_THREADS ? POOL_MAX_THREADS : n;
}

int unpack_pool_new(int threads, hoist_owner_mode owners, hoist_unpack_report *rep,
                    unpack_pool **out, hoist_err **err) {
  unpack_pool *p = hoist_malloc0(sizeof *p);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->work, NULL);
  pthread_cond_init(&p->room, NULL);
  p->owners = owners;
  p->rep = rep;
  if (threads > POOL_MAX_THREADS)
    threads = POOL_MAX_THREADS;
  for (; p->n_threads < threads; p->n_threads++) {
    int r = pthread_create(&p->threads[p->n_threads], NULL, worker, p);
    if (r != 0) {
      unpack_pool_free(p);
      return hoist_err_errno(err, r, "start file writer threads");
    }
  }
  *out = p;
  return 0;
}

/* The pool's first failure, moved to *err (the pool keeps failing). */
HOIST_WUR static int take_failure(unpack_pool *p, hoist_err **err) {
  hoist_err *e = p->failed;
  p->failed = NULL;
  if (err && !*err)
    *err = e;
  else
    hoist_err_free(e);
  /* later jobs stay dropped: a sentinel failure */
  hoist_err_set(&p->failed, HOIST_E_FORMAT, "an earlier member failed");
  return -1;
}

int unpack_pool_submit(unpack_pool *p, unpack_file_job *j, hoist_err **err) {
  pthread_mutex_lock(&p->mu);
  while (!p->failed && p->queued > 0 &&
         (p->queued >= POOL_MAX_JOBS || p->queued_bytes + j->len > POOL_MAX_BYTES))
    pthread_cond_wait(&p->room, &p->mu);
  if (p->failed) {
    int r = take_failure(p, err);
    pthread_mutex_unlock(&p->mu);
    unpack_file_job_free(j);
    return r;
  }
  j->next = NULL;
  if (p->tail)
    p->tail->next = j;
  else
    p->head = j;
  p->tail = j;
  p->queued++;
  p->queued_bytes += j->len;
  pthread_cond_signal(&p->work);
  pthread_mutex_unlock(&p->mu);
  return 0;
}

int unpack_pool_drain(unpack_pool *p, hoist_err **err) {
  if (!p)
    return 0;
  pthread_mutex_lock(&p->mu);
  while (p->queued > 0)
    pthread_cond_wait(&p->room, &p->mu);
  int r = p->failed ? take_failure(p, err) : 0;
  pthread_mutex_unlock(&p->mu);
  return r;
}

void unpack_pool_free(unpack_pool *p) {
  if (!p)
    return;
  pthread_mutex_lock(&p->mu);
  p->stop = true;
  pthread_cond_broadcast(&p->work);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->n_threads; i++)
    pthread_join(p->threads[i], NULL);
  /* with no threads (none started), jobs still queued are dropped */
  while (p->head) {
    unpack_file_job *j = p->head;
    p->head = j->next;
    unpack_file_job_free(j);
  }
  hoist_err_free(p->failed);
  pthread_cond_destroy(&p->work);
  pthread_cond_destroy(&p->room);
  pthread_mutex_destroy(&p->mu);
  free(p);
}
