#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hoist/fs.h"
#include "hoist/limits.h"

#define MAX_SYMLINKS 40

static bool force_fallback;

void hoist_fs_force_fallback(bool force) { force_fallback = force; }

bool hoist_fs_have_openat2(void) {
  static int have = -1;
  if (have < 0) {
    struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT};
    int fd = (int)syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how);
    have = fd >= 0;
    if (fd >= 0)
      close(fd);
  }
  return have && !force_fallback;
}

int hoist_fs_write_all(int fd, const void *data, size_t len, hoist_err **err) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return hoist_err_errno(err, errno, "write");
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

HOIST_WUR static int write_atomic(int dirfd, const char *name, const void *data, size_t len,
                                  mode_t mode, bool durable, hoist_err **err) {
  const char *slash = strrchr(name, '/');
  _cleanup_free_ char *dir = slash ? strndup(name, (size_t)(slash - name + 1)) : hoist_strdup(".");
  const char *base = slash ? slash + 1 : name;
  _cleanup_close_ int dfd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return hoist_err_errno(err, errno, "write %s: open directory", name);
  static unsigned long counter;
  _cleanup_free_ char *tmpbase = hoist_asprintf(".%s.tmp-%d-%lu", base, (int)getpid(),
                                                __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
  _cleanup_close_ int fd =
      openat(dfd, tmpbase, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode ? mode : 0644);
  if (fd < 0)
    return hoist_err_errno(err, errno, "write %s: create temp file", name);
  int r = hoist_fs_write_all(fd, data, len, err);
  if (r == 0 && fchmod(fd, mode ? mode : 0644) < 0)
    r = hoist_err_errno(err, errno, "chmod");
  if (r == 0 && durable && fsync(fd) < 0)
    r = hoist_err_errno(err, errno, "fsync");
  if (r == 0 && renameat(dfd, tmpbase, dfd, base) < 0)
    r = hoist_err_errno(err, errno, "rename");
  if (r < 0) {
    unlinkat(dfd, tmpbase, 0);
    return hoist_err_wrap(err, "write %s", name);
  }
  if (durable)
    fsync(dfd);
  return 0;
}

int hoist_fs_write_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                          hoist_err **err) {
  return write_atomic(dirfd, name, data, len, mode, true, err);
}

int hoist_fs_write_replace(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                           hoist_err **err) {
  return write_atomic(dirfd, name, data, len, mode, false, err);
}

/* Walks path component by component from rootfd without ever following a
 * symlink out of it. in_root: ".." at the root stays at the root and
 * absolute symlinks restart at rootfd; otherwise (beneath) both are refused
 * with EXDEV. Returns an fd opened with flags on the final component. */
HOIST_WUR static int walk_open(int rootfd, const char *path, int flags, mode_t mode, bool in_root,
                               hoist_err **err) {
  enum { MAX_DEPTH = 256 };
  int stack[MAX_DEPTH];
  int depth = 0;
  int links = 0;
  int result = -1;
  hoist_buf rest = HOIST_BUF_INIT(HOIST_PATH_BUF_MAX);

  stack[0] = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
  if (stack[0] < 0) {
    result = hoist_err_errno(err, errno, "dup root fd");
    goto out;
  }
  if (!in_root && path[0] == '/') {
    result = hoist_err_set(err, EXDEV, "%s: absolute path not allowed", path);
    goto out;
  }
  /* what is left to resolve: a path cut short at the cap would resolve
   * somewhere else, so a full buffer ends the walk */
  if ((result = hoist_buf_append(&rest, path, strlen(path), NULL)) < 0)
    goto too_long;

  for (;;) {
    char *p = rest.data ? rest.data : (char *)"";
    while (*p == '/')
      p++;
    if (!*p) {
      /* the path names the current directory itself */
      int fd =
          openat(stack[depth], ".", (flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC, mode);
      result = fd < 0 ? hoist_err_errno(err, errno, "open %s", path) : fd;
      goto out;
    }
    char *end = strchr(p, '/');
    size_t clen = end ? (size_t)(end - p) : strlen(p);
    char comp[NAME_MAX + 1];
    if (clen > NAME_MAX) {
      result = hoist_err_set(err, ENAMETOOLONG, "%s: name too long", path);
      goto out;
    }
    memcpy(comp, p, clen);
    comp[clen] = '\0';
    const char *after = p + clen;
    while (*after == '/')
      after++;
    bool last = *after == '\0';
    bool trailing_slash = end != NULL;
    _cleanup_free_ char *after_copy = hoist_strdup(after);
    hoist_buf_reset(&rest);
    if ((result = hoist_buf_append(&rest, after_copy, strlen(after_copy), NULL)) < 0)
      goto too_long;

    if (strcmp(comp, ".") == 0) {
      if (last) {
        hoist_buf_reset(&rest);
      }
      continue;
    }
    if (strcmp(comp, "..") == 0) {
      if (depth == 0) {
        if (!in_root) {
          result = hoist_err_set(err, EXDEV, "%s: path escapes its root", path);
          goto out;
        }
      } else {
        close(stack[depth--]);
      }
      continue;
    }

    struct stat st;
    int have = fstatat(stack[depth], comp, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (!have && errno != ENOENT) {
      result = hoist_err_errno(err, errno, "stat %s in %s", comp, path);
      goto out;
    }
    if (have && S_ISLNK(st.st_mode) && (!last || trailing_slash || !(flags & O_NOFOLLOW))) {
      if (++links > MAX_SYMLINKS) {
        result = hoist_err_set(err, ELOOP, "%s: too many symlinks", path);
        goto out;
      }
      char target[PATH_MAX];
      ssize_t n = readlinkat(stack[depth], comp, target, sizeof target - 1);
      if (n < 0) {
        result = hoist_err_errno(err, errno, "readlink %s", comp);
        goto out;
      }
      target[n] = '\0';
      if (target[0] == '/') {
        if (!in_root) {
          result = hoist_err_set(err, EXDEV, "%s: symlink %s points outside", path, comp);
          goto out;
        }
        while (depth > 0)
          close(stack[depth--]);
      }
      hoist_buf nb = HOIST_BUF_INIT(HOIST_PATH_BUF_MAX);
      result = hoist_buf_append(&nb, target, (size_t)n, NULL);
      if (result == 0 && (rest.len || trailing_slash))
        result = hoist_buf_append(&nb, "/", 1, NULL);
      if (result == 0 && rest.len)
        result = hoist_buf_append(&nb, rest.data, rest.len, NULL);
      hoist_buf_free(&rest);
      rest = nb;
      if (result < 0)
        goto too_long;
      continue;
    }
    if (last) {
      int fd = openat(stack[depth], comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
      if (fd < 0 && errno == ELOOP && (flags & O_NOFOLLOW) && !(flags & O_PATH))
        result = hoist_err_errno(err, ELOOP, "open %s", path);
      else
        result = fd < 0 ? hoist_err_errno(err, errno, "open %s", path) : fd;
      goto out;
    }
    if (!have) {
      result = hoist_err_errno(err, ENOENT, "open %s: %s", path, comp);
      goto out;
    }
    if (!S_ISDIR(st.st_mode)) {
      result = hoist_err_errno(err, ENOTDIR, "open %s: %s", path, comp);
      goto out;
    }
    if (depth + 1 >= MAX_DEPTH) {
      result = hoist_err_set(err, ENAMETOOLONG, "%s: too deep", path);
      goto out;
    }
    int dfd = openat(stack[depth], comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
      result = hoist_err_errno(err, errno, "open %s: %s", path, comp);
      goto out;
    }
    stack[++depth] = dfd;
  }
too_long:
  result = hoist_err_set(err, ENAMETOOLONG, "%.200s: longer than %zu bytes with its symlinks", path,
                         (size_t)HOIST_PATH_BUF_MAX);
out:
  for (int i = 0; i <= depth; i++)
    if (stack[i] >= 0)
      close(stack[i]);
  hoist_buf_free(&rest);
  return result;
}

HOIST_WUR static int open_resolve(int dirfd, const char *path, int flags, mode_t mode,
                                  uint64_t resolve, hoist_err **err) {
  if (hoist_fs_have_openat2()) {
    struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
                           .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
                           .resolve = resolve | RESOLVE_NO_MAGICLINKS};
    for (;;) {
      int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
      if (fd >= 0)
        return fd;
      if (errno == EAGAIN || errno == EINTR)
        continue;
      return hoist_err_errno(err, errno, "open %s", path);
    }
  }
  return walk_open(dirfd, path, flags, mode, resolve == RESOLVE_IN_ROOT, err);
}

int hoist_fs_open_in_root(int rootfd, const char *path, int flags, mode_t mode, hoist_err **err) {
  return open_resolve(rootfd, path, flags, mode, RESOLVE_IN_ROOT, err);
}

int hoist_fs_open_beneath(int dirfd, const char *path, int flags, mode_t mode, hoist_err **err) {
  return open_resolve(dirfd, path, flags, mode, RESOLVE_BENEATH, err);
}

/* How many dangling symlinks one mkdir -p makes the targets of: the
 * kernel's own limit on links in a path walk. */
#define MKDIR_P_MAX_LINKS 40

/* mkdir -p inside rootfd; links: dangling symlinks it may still follow. */
HOIST_WUR static int mkdir_p_in_root(int rootfd, const char *path, mode_t mode, int links,
                                     hoist_err **err) {
  int cur = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
  if (cur < 0)
    return hoist_err_errno(err, errno, "dup root fd");
  size_t pos = 0;
  for (;;) {
    while (path[pos] == '/')
      pos++;
    if (!path[pos])
      return cur;
    size_t start = pos;
    pos += strcspn(path + pos, "/");
    _cleanup_free_ char *prefix = hoist_asprintf("%.*s", (int)pos, path);
    _cleanup_free_ char *comp = hoist_asprintf("%.*s", (int)(pos - start), path + start);
    /* each prefix from the root: a symlink, absolute or relative, or ".."
     * resolves as it would for a process chrooted there */
    int next = hoist_fs_open_in_root(rootfd, prefix, O_PATH | O_DIRECTORY, 0, NULL);
    if (next < 0) {
      if (mkdirat(cur, comp, mode) == 0) {
        next = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0)
          next = -errno;
      } else if (errno != EEXIST) {
        next = -errno;
      } else if ((next = hoist_fs_open_in_root(rootfd, prefix, O_PATH | O_DIRECTORY, 0, NULL)) <
                 0) {
        /* there, yet not made meanwhile by another process: a symlink to a
         * missing place gets that place made, relative to the link's own
         * directory; anything else is not a directory */
        char target[PATH_MAX];
        ssize_t n = readlinkat(cur, comp, target, sizeof target - 1);
        if (n < 0)
          next = -ENOTDIR;
        else if (links == 0)
          next = -ELOOP;
        else {
          target[n] = '\0';
          _cleanup_free_ char *dest =
              hoist_asprintf("%.*s%s", target[0] == '/' ? 0 : (int)start, path, target);
          int made = mkdir_p_in_root(rootfd, dest, mode, links - 1, err);
          if (made < 0) {
            close(cur);
            return hoist_err_wrap(err, "mkdir %s", path);
          }
          close(made);
          next = hoist_fs_open_in_root(rootfd, prefix, O_PATH | O_DIRECTORY, 0, NULL);
        }
      }
    }
    close(cur);
    if (next < 0)
      return hoist_err_errno(err, -next, "mkdir %s", path);
    cur = next;
  }
}

int hoist_fs_mkdir_p_in_root(int rootfd, const char *path, mode_t mode, hoist_err **err) {
  return mkdir_p_in_root(rootfd, path, mode, MKDIR_P_MAX_LINKS, err);
}

/* dirfd/prefix as an O_PATH directory fd, resolved as hoist_fs_mkdir_p
 * says; a negative errno when it cannot be opened. */
static int open_prefix(int dirfd, const char *prefix) {
  if (dirfd == AT_FDCWD) {
    int fd = openat(AT_FDCWD, prefix, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
  }
  return hoist_fs_open_beneath(dirfd, prefix, O_PATH | O_DIRECTORY, 0, NULL);
}

int hoist_fs_mkdir_p(int dirfd, const char *path, mode_t mode, int *fd, hoist_err **err) {
  if (fd)
    *fd = -1;
  if (!path || !*path)
    return hoist_err_set(err, EINVAL, "mkdir: empty path");
  if (dirfd != AT_FDCWD && path[0] == '/')
    return hoist_err_set(err, EXDEV, "mkdir %s: absolute path not allowed", path);
  /* cur: the directory the next component is made in */
  _cleanup_close_ int cur = dirfd == AT_FDCWD
                                ? open(path[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC)
                                : fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
  if (cur < 0)
    return hoist_err_errno(err, errno, "mkdir %s", path);
  size_t pos = 0;
  for (;;) {
    while (path[pos] == '/')
      pos++;
    if (!path[pos])
      break;
    size_t start = pos;
    pos += strcspn(path + pos, "/");
    _cleanup_free_ char *prefix = strndup(path, pos);
    _cleanup_free_ char *comp = strndup(path + start, pos - start);
    if (!prefix || !comp)
      abort();
    /* each prefix resolved whole from dirfd: ".." and symlinks on the way
     * are judged by the one rule of hoist_fs_open_beneath */
    int next = open_prefix(dirfd, prefix);
    if (next == -ENOENT) {
      if (mkdirat(cur, comp, mode) == 0)
        next = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      else if (errno == EEXIST)
        /* made meanwhile by another process, or a dangling symlink */
        next = open_prefix(dirfd, prefix);
      else
        next = -errno;
      if (next == -1)
        next = -errno;
      if (next == -ENOENT)
        next = -EEXIST;
    }
    if (next < 0)
      return hoist_err_errno(err, -next, "mkdir %s", prefix);
    close(cur);
    cur = next;
  }
  if (fd) {
    *fd = openat(cur, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*fd < 0)
      return hoist_err_errno(err, errno, "open %s", path);
  }
  return 0;
}

int hoist_fs_check_owned(int fd, const char *what, hoist_err **err) {
  struct stat st;
  if (fstat(fd, &st) < 0)
    return hoist_err_errno(err, errno, "%s", what);
  if (st.st_uid != geteuid())
    return hoist_err_set(err, HOIST_E_UNSAFE,
                         "%s belongs to uid %u, not to this user (uid %u): not trusted", what,
                         (unsigned)st.st_uid, (unsigned)geteuid());
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return hoist_err_set(err, HOIST_E_UNSAFE,
                         "%s may be written by other users (mode %04o): not trusted", what,
                         (unsigned)(st.st_mode & 07777));
  return 0;
}

HOIST_WUR static int rm_rf_fd(int dfd, hoist_err **err) {
  DIR *d = fdopendir(dfd);
  if (!d) {
    close(dfd);
    return hoist_err_errno(err, errno, "opendir");
  }
  int r = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    r = hoist_fs_rm_rf_at(dirfd(d), de->d_name, err);
    if (r < 0)
      break;
  }
  closedir(d);
  return r;
}

int hoist_fs_rm_rf_at(int dirfd, const char *name, hoist_err **err) {
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : hoist_err_errno(err, errno, "stat %s", name);
  if (S_ISDIR(st.st_mode)) {
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      /* an unreadable directory we own: make it readable, then retry */
      if (errno == EACCES && fchmodat(dirfd, name, 0700, 0) == 0)
        fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0)
        return hoist_err_errno(err, errno, "open %s", name);
    }
    int r = rm_rf_fd(fd, err);
    if (r < 0)
      return hoist_err_wrap(err, "remove %s", name);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
      return hoist_err_errno(err, errno, "rmdir %s", name);
    return 0;
  }
  if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
    return hoist_err_errno(err, errno, "unlink %s", name);
  return 0;
}

char *hoist_fs_path_clean(const char *path, size_t max_component, int *why) {
  char *res = hoist_malloc0(strlen(path) + 1);
  size_t o = 0;
  for (const char *p = path; *p;) {
    while (*p == '/')
      p++;
    if (!*p)
      break;
    const char *end = strchrnul(p, '/');
    size_t n = (size_t)(end - p);
    bool dotdot = n == 2 && p[0] == '.' && p[1] == '.';
    if (dotdot || (max_component && n > max_component)) {
      *why = dotdot ? HOIST_FS_PATH_DOTDOT : HOIST_FS_PATH_LONG;
      free(res);
      return NULL;
    }
    if (!(n == 1 && p[0] == '.')) {
      if (o)
        res[o++] = '/';
      memcpy(res + o, p, n);
      o += n;
    }
    p = end;
  }
  res[o] = '\0';
  return res;
}

int hoist_fs_read_fd(int fd, size_t max, const char *name, char **out, size_t *len,
                     hoist_err **err) {
  _cleanup_buf_ hoist_buf b = HOIST_BUF_INIT(max);
  char chunk[65536];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return hoist_err_errno(err, errno, "read %s", name);
    }
    if (n == 0)
      break;
    if (hoist_buf_append(&b, chunk, (size_t)n, err) < 0)
      return hoist_err_wrap(err, "read %s", name);
  }
  if (len)
    *len = b.len;
  *out = hoist_buf_steal(&b);
  return 0;
}

/* Visits the entries of the directory at fd (depth levels down from the
 * root), then descends into each subdirectory on dev. */
static int walk_dir(int fd, dev_t dev, unsigned depth, hoist_fs_walk_fn fn, void *ctx) {
  if (depth >= HOIST_FS_WALK_DEPTH) {
    close(fd);
    errno = ELOOP;
    return -1;
  }
  DIR *d = fdopendir(fd);
  if (!d) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  int r = 0;
  struct dirent *de;
  while (r == 0 && (errno = 0, de = readdir(d))) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    struct stat st;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
      continue; /* gone while we looked */
    r = fn(ctx, dirfd(d), de->d_name, &st);
    if (r == 0 && S_ISDIR(st.st_mode) && st.st_dev == dev) {
      int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0)
        r = walk_dir(sub, dev, depth + 1, fn, ctx);
    }
  }
  int e = errno;
  closedir(d);
  errno = e;
  return r;
}

int hoist_fs_walk(const char *dir, hoist_fs_walk_fn fn, void *ctx) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0) {
    int e = errno;
    if (fd >= 0)
      close(fd);
    errno = e;
    return -1;
  }
  int r = fn(ctx, AT_FDCWD, dir, &st);
  if (r != 0) {
    close(fd);
    return r;
  }
  return walk_dir(fd, st.st_dev, 0, fn, ctx);
}

int hoist_fs_read_file(int dirfd, const char *path, size_t max, char **out, size_t *len,
                       hoist_err **err) {
  _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return hoist_err_errno(err, errno, "open %s", path);
  return hoist_fs_read_fd(fd, max, path, out, len, err);
}
