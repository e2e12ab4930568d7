/* sandbox: a tree written in a user namespace given back the owners the
 * namespace saw (for a kept upper directory). */
#include <errno.h>
#include <ftw.h>
#include <unistd.h>

#include "hoist/sandbox.h"

/* nftw takes no context: the maps of the walk in progress, per thread */
static __thread const hoist_idmap *walk_u, *walk_g;
static __thread size_t walk_nu, walk_ng;
static __thread int walk_errno;

/* The inside id of host id id, or id itself when the maps lack it. */
static uint32_t inside_of(uint32_t id, const hoist_idmap *m, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (id >= m[i].outside && id - m[i].outside < m[i].count)
      return m[i].inside + (id - m[i].outside);
  return id;
}

static int unshift_entry(const char *path, const struct stat *st, int flag, struct FTW *f) {
  (void)f;
  if (flag == FTW_NS)
    return 0;
  uid_t u = inside_of((uint32_t)st->st_uid, walk_u, walk_nu);
  gid_t g = inside_of((uint32_t)st->st_gid, walk_g, walk_ng);
  if ((u != st->st_uid || g != st->st_gid) && lchown(path, u, g) < 0) {
    walk_errno = errno;
    return 1;
  }
  return 0;
}

int hoist_sandbox_unshift(const char *dir, const hoist_idmap *uid_map, size_t n_uid,
                          const hoist_idmap *gid_map, size_t n_gid, hoist_err **err) {
  if (!n_uid && !n_gid)
    return 0;
  walk_u = uid_map;
  walk_nu = n_uid;
  walk_g = gid_map;
  walk_ng = n_gid;
  walk_errno = 0;
  int r = nftw(dir, unshift_entry, 32, FTW_PHYS | FTW_MOUNT);
  if (r != 0)
    return hoist_err_errno(err, walk_errno ? walk_errno : errno, "owners of %s", dir);
  return 0;
}
