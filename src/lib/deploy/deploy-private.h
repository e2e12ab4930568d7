/* Shared inside the deploy module. */
#ifndef HOIST_DEPLOY_PRIVATE_H
#define HOIST_DEPLOY_PRIVATE_H

#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "hoist/deploy.h"
#include "hoist/limits.h"

/* ------------------------------------------------------- the stat cache
 *
 * A no-op deploy on a large tree is bound by reading the index, HEAD's tree
 * and every directory. The last full computation's fingerprints are kept in
 * <gitdir>/hoist-deploy.cache with the stat data of every directory walked
 * and every file read, under a key naming everything else they depend on
 * (HEAD's tree, the index, the deploy file's patterns, the ignore rules and
 * git config). When the key matches and not one of those directories or
 * files has changed (mtime, ctime, inode, size, mode), neither has any
 * fingerprint: the set of names in a directory cannot change without its
 * mtime and ctime changing, nor a file's content without its own. */

/* Its file name inside the git directory. */
#define HOIST_DEPLOY_CACHE_NAME "hoist-deploy.cache"

/* The stat data the cache compares. */
typedef struct hoist_deploy_cstat {
  int64_t mtime_s, mtime_ns, ctime_s, ctime_ns;
  uint64_t ino, size;
  uint32_t mode, valid;
} hoist_deploy_cstat;

void hoist_deploy_cstat_from(hoist_deploy_cstat *c, const struct stat *st);

typedef struct hoist_deploy_cache_dir {
  char *path; /* "" or "a/b/" */
  hoist_deploy_cstat st;
} hoist_deploy_cache_dir;

typedef struct hoist_deploy_cache_file {
  const char *path; /* "a/b/c", in a walked directory */
  const hoist_deploy_cstat *st;
} hoist_deploy_cache_file;

/* A parsed cache file, pointing into its bytes. */
typedef struct hoist_deploy_cache_view {
  char key[65];
  const void *dirs, *files, *comps;
  const char *strings;
  uint32_t n_comp, n_dirs, n_files, strings_len;
} hoist_deploy_cache_view;

/* Parses a cache file's bytes; -1 unless every record and name is in
 * bounds and well formed. */
HOIST_EXPORT int hoist_deploy_cache_parse(const void *data, size_t len, hoist_deploy_cache_view *v);

/* Fills fp (its changed list allocated) from component i of a parsed view. */
HOIST_EXPORT void hoist_deploy_cache_comp(const hoist_deploy_cache_view *v, size_t i,
                                          hoist_deploy_fingerprint *fp);

/* 1 and out[0..n_comp) filled when cache_path holds a cache for key and
 * every directory and file in it, statted under rootfd, is as recorded;
 * 0 otherwise (no cache, another key, a change, a malformed file). */
int hoist_deploy_cache_check(const char *cache_path, int rootfd, const char *key, size_t n_comp,
                             hoist_deploy_fingerprint *out);

/* Writes the cache atomically: fp for n_comp components, the walked dirs
 * (sorted in place) and the files read. Fails (EAGAIN) without writing
 * when an entry changed at or after since (less a tick), as it could change
 * again unseen. */
int hoist_deploy_cache_write(const char *cache_path, const char *key, const struct timespec *since,
                             const hoist_deploy_fingerprint *fp, size_t n_comp,
                             hoist_deploy_cache_dir *dirs, size_t n_dirs,
                             const hoist_deploy_cache_file *files, size_t n_files,
                             hoist_err **err) HOIST_WUR;

#endif
