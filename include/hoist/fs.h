/*
 * fs: filesystem helpers that are safe against hostile trees.
 *
 * - hoist_fs_write_atomic: a file appears whole or not at all (temp name in
 *   the same directory, fsync, rename, fsync of the directory).
 * - hoist_fs_open_in_root: open a path resolved as if dirfd were "/"
 *   (openat2 RESOLVE_IN_ROOT), with a component-by-component fallback for
 *   kernels without openat2 that never follows a symlink out of the root.
 * - hoist_fs_mkdir_p_in_root, hoist_fs_rm_rf_at: the same rule for
 *   directories.
 * - hoist_fs_mkdir_p: mkdir -p on a dirfd, the one copy for every module;
 *   beneath a dirfd it never leaves it.
 * - hoist_fs_check_owned: a directory hoist trusts is the caller's own.
 * - hoist_fs_walk: every entry of a tree, with a context, one fd per level.
 */
#ifndef HOIST_FS_H
#define HOIST_FS_H

#include <sys/stat.h>
#include <sys/types.h>

#include "hoist/core.h"

/* Writes len bytes to dirfd/name atomically with the given mode. */
HOIST_EXPORT int hoist_fs_write_atomic(int dirfd, const char *name, const void *data, size_t len,
                                       mode_t mode, hoist_err **err) HOIST_WUR;

/* As hoist_fs_write_atomic, without the fsyncs: readers see the old file or
 * the new one whole, but a crash may lose both. For caches. */
HOIST_EXPORT int hoist_fs_write_replace(int dirfd, const char *name, const void *data, size_t len,
                                        mode_t mode, hoist_err **err) HOIST_WUR;

/* Opens path (absolute or relative; both are taken relative to rootfd)
 * inside the tree rooted at rootfd: ".." never leaves it and symlinks,
 * absolute or relative, are resolved as if rootfd were "/". flags and mode as
 * for openat(2); O_NOFOLLOW applies to the last component. Returns the fd or
 * a negative code. */
HOIST_EXPORT int hoist_fs_open_in_root(int rootfd, const char *path, int flags, mode_t mode,
                                       hoist_err **err) HOIST_WUR;

/* Opens path beneath dirfd, refusing (EXDEV/ELOOP) any resolution that would
 * leave it: absolute paths, ".." above dirfd, or symlinks pointing out
 * (openat2 RESOLVE_BENEATH or an equivalent walk). */
HOIST_EXPORT int hoist_fs_open_beneath(int dirfd, const char *path, int flags, mode_t mode,
                                       hoist_err **err) HOIST_WUR;

/* Creates path and its missing parents as directories inside rootfd (as
 * hoist_fs_open_in_root resolves) and returns an O_DIRECTORY fd to it. */
HOIST_EXPORT int hoist_fs_mkdir_p_in_root(int rootfd, const char *path, mode_t mode,
                                          hoist_err **err) HOIST_WUR;

/* mkdir -p on a dirfd: makes path and its missing parents (mode, less the
 * umask, for the ones it makes) and returns 0, with an O_RDONLY|O_DIRECTORY
 * fd to path in *fd when fd is not NULL.
 * - dirfd AT_FDCWD: path is the caller's own (a directory a user named),
 *   absolute or relative, resolved as open(2) does, symlinks followed.
 * - any other dirfd: path stays beneath it, as hoist_fs_open_beneath
 *   resolves: an absolute path, ".." above dirfd, or a symlink leading out
 *   is refused (EXDEV), a symlink loop is ELOOP.
 * Either way a file on the way is ENOTDIR and a dangling symlink EEXIST
 * (nothing is made at its target). */
HOIST_EXPORT int hoist_fs_mkdir_p(int dirfd, const char *path, mode_t mode, int *fd,
                                  hoist_err **err) HOIST_WUR;

/* Refuses (HOIST_E_UNSAFE, naming what and why) the directory open at fd
 * unless it belongs to the caller (the effective uid) and neither its group
 * nor others may write to it: a directory hoist trusts the content of (a
 * cache of root filesystems) must not be one another local user made or can
 * plant a tree in. what names it in the message. */
HOIST_EXPORT int hoist_fs_check_owned(int fd, const char *what, hoist_err **err) HOIST_WUR;

/* Removes dirfd/name and everything below it without following symlinks.
 * A missing name is not an error. */
HOIST_EXPORT int hoist_fs_rm_rf_at(int dirfd, const char *name, hoist_err **err) HOIST_WUR;

/* Why hoist_fs_path_clean refused a path. */
enum { HOIST_FS_PATH_DOTDOT = 1, HOIST_FS_PATH_LONG };

/* path as a clean relative path: leading, trailing and doubled '/' and "."
 * components dropped ("" for the root), in a new string the caller frees.
 * The first ".." component, or one longer than max_component bytes (0: any
 * length), is refused: NULL, and *why says which. */
HOIST_EXPORT char *hoist_fs_path_clean(const char *path, size_t max_component, int *why) HOIST_WUR;

/* Reads fd to its end (at most max bytes; more is HOIST_E_LIMIT) into a
 * NUL-terminated buffer the caller frees. name is what fd is, for the
 * messages ("read NAME: ..."). */
HOIST_EXPORT int hoist_fs_read_fd(int fd, size_t max, const char *name, char **out, size_t *len,
                                  hoist_err **err) HOIST_WUR;

/* Reads a whole file (at most max bytes) into a NUL-terminated buffer the
 * caller frees. */
HOIST_EXPORT int hoist_fs_read_file(int dirfd, const char *path, size_t max, char **out,
                                    size_t *len, hoist_err **err) HOIST_WUR;

/* Writes all len bytes to fd, retrying on EINTR and short writes. */
HOIST_EXPORT int hoist_fs_write_all(int fd, const void *data, size_t len,
                                    hoist_err **err) HOIST_WUR;

#define HOIST_FS_WALK_DEPTH 256 /* directories below a walked tree's root */

/* Called for each entry of a walk: its parent directory's fd and its name
 * (the root: AT_FDCWD and the path given), its lstat. 0 goes on; anything
 * else stops the walk and is returned. */
typedef int (*hoist_fs_walk_fn)(void *ctx, int dirfd, const char *name, const struct stat *st);

/* Visits dir and every entry below it, depth first, without following
 * symlinks or entering another file system, with one fd per level and no
 * state but ctx (so walks may run at once, in any thread). Entries that
 * vanish meanwhile are skipped. Returns 0, fn's non-zero answer, or -1 with
 * errno (ELOOP: deeper than HOIST_FS_WALK_DEPTH directories). */
HOIST_EXPORT int hoist_fs_walk(const char *dir, hoist_fs_walk_fn fn, void *ctx);

/* True when the running kernel supports openat2. Exposed for tests. */
HOIST_EXPORT bool hoist_fs_have_openat2(void);
/* Forces the fallback path (tests only). */
HOIST_EXPORT void hoist_fs_force_fallback(bool force);

#endif
