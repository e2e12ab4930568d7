/* Internal pieces of the unpack module shared by its files. */
#ifndef HOIST_UNPACK_PRIVATE_H
#define HOIST_UNPACK_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "hoist/digest.h"
#include "hoist/unpack.h"

/* Size of the compressed-input and decompressed-output buffers. */
#define UNPACK_BUF_SIZE (1u << 20)

/* A layer blob read once from fd: hashed as it is read (blob digest),
 * decompressed, and hashed again (diffID) as the tar reader consumes it. */
typedef struct layer_stream layer_stream;

int layer_stream_new(int fd, hoist_compression comp, layer_stream **out, hoist_err **err) HOIST_WUR;
/* Points *data at the next uncompressed bytes; returns their count, 0 at the
 * end of the stream, or a negative code. */
ssize_t layer_stream_read(layer_stream *s, const void **data, hoist_err **err);
/* Reads and hashes whatever the tar reader left (end-of-archive padding)
 * and checks both digests (either may be NULL). */
int layer_stream_finish(layer_stream *s, const char *expected_digest, const char *expected_diff_id,
                        hoist_err **err) HOIST_WUR;
void layer_stream_free(layer_stream *s);

/* A member's data is written in pieces aligned on this in the file; pieces
 * of zeros are skipped, so long zero runs become holes again (layers carry
 * sparse files as plain data). */
#define UNPACK_HOLE_MIN (64u << 10)

/* Writes len bytes of p at offset at of fd (a new file whose offset is *pos,
 * updated): all-zero pieces are left as holes. path names fd in errors. */
int unpack_write_at(int fd, const uint8_t *p, size_t len, int64_t at, int64_t *pos,
                    const char *path, hoist_err **err) HOIST_WUR;

/* A directory fd inside the root shared by the applier and the file jobs
 * created in it; the last reference closes it. unpack_dir_new takes fd. */
typedef struct unpack_dir unpack_dir;
unpack_dir *unpack_dir_new(int fd);
int unpack_dir_fd(const unpack_dir *d);
unpack_dir *unpack_dir_ref(unpack_dir *d);
void unpack_dir_unref(unpack_dir *d);

/* A regular file for a writer thread: created with O_EXCL (never through a
 * symlink) in dir as base, data written (zero runs as holes), extended to
 * size, then chown (when chown), fchmod (when chmod; else the create's mode
 * is the wanted one) and the mtime (tv_nsec UTIME_OMIT: none). */
typedef struct unpack_file_job {
  struct unpack_file_job *next;
  unpack_dir *dir;  /* a reference */
  char *path;       /* the member's clean path, for errors (owned) */
  const char *base; /* its last component, in path */
  uint8_t *data;    /* owned */
  size_t len;
  int64_t size;
  mode_t mode;
  bool chmod, chown;
  uid_t uid;
  gid_t gid;
  struct timespec mtime;
} unpack_file_job;

void unpack_file_job_free(unpack_file_job *j);

/* Writer threads and their bounded queue of file jobs. */
typedef struct unpack_pool unpack_pool;

/* Tests only: writers used by the next layers (0: unpack_pool_threads(),
 * 1: none), and a pause before each job, widening the time a queued file
 * is not there yet. Set while no unpack runs. */
extern int unpack_test_threads;
extern unsigned unpack_test_delay_us;

/* How many writers this process should run: its CPUs, at most 8. */
int unpack_pool_threads(void);
/* Starts threads writers; owner failures that owners tolerates are counted
 * in rep (which must outlive the pool). */
int unpack_pool_new(int threads, hoist_owner_mode owners, hoist_unpack_report *rep,
                    unpack_pool **out, hoist_err **err) HOIST_WUR;
/* Queues j (taken, freed on failure too), waiting while the queue is full.
 * Fails with the first failure of an earlier job; jobs after a failure are
 * dropped. */
int unpack_pool_submit(unpack_pool *p, unpack_file_job *j, hoist_err **err) HOIST_WUR;
/* Waits until every queued job has ended; returns the first failure. p may
 * be NULL. */
int unpack_pool_drain(unpack_pool *p, hoist_err **err) HOIST_WUR;
/* Finishes the queued jobs, stops the threads, frees p (NULL: nothing). */
void unpack_pool_free(unpack_pool *p);

#endif
