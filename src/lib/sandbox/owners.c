/* sandbox: a tree written in a user namespace given back the owners the
 * namespace saw (for a kept upper directory). */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "hoist/fs.h"
#include "hoist/sandbox.h"
#include "sandbox-private.h"

typedef struct {
  const hoist_idmap *u, *g;
  size_t nu, ng;
} unshift_ctx;

/* The inside id of host id id, or id itself when the maps lack it. */
static uint32_t inside_of(uint32_t id, const hoist_idmap *m, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (id >= m[i].outside && id - m[i].outside < m[i].count)
      return m[i].inside + (id - m[i].outside);
  return id;
}

static int unshift_entry(void *ctx, int dirfd, const char *name, const struct stat *st) {
  const unshift_ctx *c = ctx;
  uid_t u = inside_of((uint32_t)st->st_uid, c->u, c->nu);
  gid_t g = inside_of((uint32_t)st->st_gid, c->g, c->ng);
  if ((u != st->st_uid || g != st->st_gid) && fchownat(dirfd, name, u, g, AT_SYMLINK_NOFOLLOW) < 0)
    return -1;
  return 0;
}

int hoist_sandbox_unshift(const char *dir, const hoist_idmap *uid_map, size_t n_uid,
                          const hoist_idmap *gid_map, size_t n_gid, hoist_err **err) {
  if (!n_uid && !n_gid)
    return 0;
  unshift_ctx c = {uid_map, gid_map, n_uid, n_gid};
  if (hoist_fs_walk(dir, unshift_entry, &c) != 0)
    return hoist_err_errno(err, errno, "owners of %s", dir);
  return 0;
}
