/* sandbox: the fallback when overlayfs cannot be mounted: a copy of the base, then a tree diff
 * written as an overlayfs upper dir. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "hoist/fs.h"
#include "sandbox-private.h"

typedef struct {
  dev_t dev;
  ino_t ino;
  char *path; /* relative to the destination root */
} link_seen;

typedef struct {
  int dst_root;
  bool root;       /* running as uid 0: owners are applied */
  bool reflinked;  /* at least one FICLONE worked */
  bool no_reflink; /* FICLONE refused once: do not try again */
  link_seen *links;
  size_t n_links, cap_links;
} copier;

static void copier_free(copier *c) {
  for (size_t i = 0; i < c->n_links; i++)
    free(c->links[i].path);
  free(c->links);
}

/* Copies the xattrs of src to dst (fds; O_PATH not allowed). Refusals are
 * skipped: the copy is a best effort of what the kernel lets us set. */
static void copy_xattrs(int src, int dst) {
  char names[65536];
  ssize_t n = flistxattr(src, names, sizeof names);
  for (ssize_t off = 0; n > 0 && off < n; off += (ssize_t)strlen(names + off) + 1) {
    const char *name = names + off;
    char val[65536];
    ssize_t vl = fgetxattr(src, name, val, sizeof val);
    if (vl >= 0 && fsetxattr(dst, name, val, (size_t)vl, 0) < 0)
      hoist_debug("sandbox copy: xattr %s not set: %s", name, strerror(errno));
  }
}

HOIST_WUR static int set_meta(copier *c, int fd, const struct stat *st, const char *name,
                              hoist_err **err) {
  if (fchown(fd, st->st_uid, st->st_gid) < 0 && (c->root || errno != EPERM))
    return hoist_err_errno(err, errno, "chown %s", name);
  if (fchmod(fd, st->st_mode & 07777) < 0)
    return hoist_err_errno(err, errno, "chmod %s", name);
  struct timespec ts[2] = {st->st_atim, st->st_mtim};
  if (futimens(fd, ts) < 0)
    return hoist_err_errno(err, errno, "utimes %s", name);
  return 0;
}

HOIST_WUR static int copy_data(copier *c, int in, int out, const char *name, hoist_err **err) {
  if (!c->no_reflink) {
    if (ioctl(out, FICLONE, in) == 0) {
      c->reflinked = true;
      return 0;
    }
    c->no_reflink = true;
  }
  for (;;) {
    ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
    if (n == 0)
      return 0;
    if (n > 0)
      continue;
    if (errno == EINTR)
      continue;
    if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
      return hoist_err_errno(err, errno, "copy %s", name);
    break;
  }
  char buf[65536];
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n == 0)
      return 0;
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return hoist_err_errno(err, errno, "read %s", name);
    }
    if (hoist_fs_write_all(out, buf, (size_t)n, err) < 0)
      return hoist_err_wrap(err, "write %s", name);
  }
}

static int copy_entry(copier *c, int sdir, int ddir, const char *name, const char *rel,
                      hoist_err **err);

HOIST_WUR static int copy_dir_contents(copier *c, int sfd, int dfd, const char *rel,
                                       hoist_err **err) {
  int dup_fd = fcntl(sfd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0)
    return hoist_err_errno(err, errno, "dup");
  DIR *d = fdopendir(dup_fd);
  if (!d) {
    close(dup_fd);
    return hoist_err_errno(err, errno, "opendir %s", rel);
  }
  int r = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    _cleanup_free_ char *crel =
        *rel ? hoist_asprintf("%s/%s", rel, de->d_name) : hoist_strdup(de->d_name);
    r = copy_entry(c, sfd, dfd, de->d_name, crel, err);
    if (r < 0)
      break;
  }
  closedir(d);
  return r;
}

/* Copies sdir/name to ddir/name (rel: its path from the destination root). */
HOIST_WUR static int copy_entry(copier *c, int sdir, int ddir, const char *name, const char *rel,
                                hoist_err **err) {
  struct stat st;
  if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return hoist_err_errno(err, errno, "stat %s", rel);
  if (S_ISDIR(st.st_mode)) {
    if (mkdirat(ddir, name, 0700) < 0)
      return hoist_err_errno(err, errno, "mkdir %s", rel);
    _cleanup_close_ int s = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    _cleanup_close_ int d = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (s < 0 || d < 0)
      return hoist_err_errno(err, errno, "open %s", rel);
    if (copy_dir_contents(c, s, d, rel, err) < 0)
      return -1;
    copy_xattrs(s, d);
    return set_meta(c, d, &st, rel, err);
  }
  if (S_ISREG(st.st_mode)) {
    if (st.st_nlink > 1) {
      for (size_t i = 0; i < c->n_links; i++)
        if (c->links[i].dev == st.st_dev && c->links[i].ino == st.st_ino) {
          if (linkat(c->dst_root, c->links[i].path, ddir, name, 0) < 0)
            return hoist_err_errno(err, errno, "link %s", rel);
          return 0;
        }
      if (c->n_links == c->cap_links) {
        c->cap_links = c->cap_links ? 2 * c->cap_links : 64;
        c->links = realloc(c->links, c->cap_links * sizeof(link_seen));
        if (!c->links)
          abort();
      }
      c->links[c->n_links++] = (link_seen){st.st_dev, st.st_ino, hoist_strdup(rel)};
    }
    _cleanup_close_ int in = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0)
      return hoist_err_errno(err, errno, "open %s", rel);
    _cleanup_close_ int out =
        openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0)
      return hoist_err_errno(err, errno, "create %s", rel);
    if (copy_data(c, in, out, rel, err) < 0)
      return -1;
    copy_xattrs(in, out);
    return set_meta(c, out, &st, rel, err);
  }
  if (S_ISLNK(st.st_mode)) {
    char target[PATH_MAX + 1];
    ssize_t n = readlinkat(sdir, name, target, PATH_MAX);
    if (n < 0)
      return hoist_err_errno(err, errno, "readlink %s", rel);
    target[n] = '\0';
    if (symlinkat(target, ddir, name) < 0)
      return hoist_err_errno(err, errno, "symlink %s", rel);
    if (fchownat(ddir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 &&
        (c->root || errno != EPERM))
      return hoist_err_errno(err, errno, "chown %s", rel);
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    utimensat(ddir, name, ts, AT_SYMLINK_NOFOLLOW);
    return 0;
  }
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
    if (mknodat(ddir, name, st.st_mode, st.st_rdev) < 0) {
      if (errno == EPERM && !S_ISFIFO(st.st_mode)) {
        hoist_debug("sandbox copy: device %s not created: %s", rel, strerror(errno));
        return 0;
      }
      return hoist_err_errno(err, errno, "mknod %s", rel);
    }
    if (fchownat(ddir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 &&
        (c->root || errno != EPERM))
      return hoist_err_errno(err, errno, "chown %s", rel);
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    utimensat(ddir, name, ts, AT_SYMLINK_NOFOLLOW);
    return 0;
  }
  hoist_debug("sandbox copy: socket %s skipped", rel);
  return 0;
}

int sandbox_copy_tree(const char *src, const char *dst, bool *reflinked, hoist_err **err) {
  _cleanup_close_ int s = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s < 0)
    return hoist_err_errno(err, errno, "open %s", src);
  struct stat st;
  if (fstat(s, &st) < 0)
    return hoist_err_errno(err, errno, "stat %s", src);
  if (mkdir(dst, 0700) < 0)
    return hoist_err_errno(err, errno, "mkdir %s", dst);
  _cleanup_close_ int d = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d < 0)
    return hoist_err_errno(err, errno, "open %s", dst);
  copier c = {.dst_root = d, .root = geteuid() == 0};
  int r = copy_dir_contents(&c, s, d, "", err);
  if (r == 0)
    r = set_meta(&c, d, &st, dst, err);
  if (reflinked)
    *reflinked = c.reflinked;
  copier_free(&c);
  return r;
}

/* ----------------------------------------------------------------- diff */

/* A directory of the changed tree whose counterpart in upper is made on
 * first need (with the changed dir's metadata, applied when the walk leaves). */
typedef struct dnode {
  struct dnode *parent;
  const char *name;
  int cfd;   /* the directory in the changed tree */
  int ufd;   /* in upper, -1 until made */
  bool made; /* made by the diff: metadata to apply */
} dnode;

HOIST_WUR static int upper_dir(dnode *n, hoist_err **err) {
  if (n->ufd >= 0)
    return n->ufd;
  int pfd = upper_dir(n->parent, err);
  if (pfd < 0)
    return -1;
  if (mkdirat(pfd, n->name, 0700) < 0 && errno != EEXIST)
    return hoist_err_errno(err, errno, "mkdir %s", n->name);
  n->ufd = openat(pfd, n->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (n->ufd < 0)
    return hoist_err_errno(err, errno, "open %s", n->name);
  n->made = true;
  return n->ufd;
}

static bool same_content(int ldir, int cdir, const char *name) {
  _cleanup_close_ int a = openat(ldir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  _cleanup_close_ int b = openat(cdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (a < 0 || b < 0)
    return false;
  char x[65536], y[65536];
  for (;;) {
    ssize_t n = read(a, x, sizeof x);
    if (n < 0)
      return false;
    ssize_t m = 0;
    while (m < n) {
      ssize_t k = read(b, y + m, (size_t)(n - m));
      if (k <= 0)
        return false;
      m += k;
    }
    if (n == 0)
      return read(b, y, 1) == 0;
    if (memcmp(x, y, (size_t)n) != 0)
      return false;
  }
}

/* The xattrs of dir/name (not followed), as "name=value\0..." sorted by
 * listing order; len 0 when none. */
static size_t xattr_blob(int dir, const char *name, char *out, size_t cap) {
  char path[PATH_MAX], names[8192];
  snprintf(path, sizeof path, "/proc/self/fd/%d/%s", dir, name);
  ssize_t n = llistxattr(path, names, sizeof names);
  size_t len = 0;
  for (ssize_t off = 0; n > 0 && off < n; off += (ssize_t)strlen(names + off) + 1) {
    size_t nl = strlen(names + off) + 1;
    if (len + nl >= cap)
      return cap; /* too many to compare: treated as changed */
    memcpy(out + len, names + off, nl);
    len += nl;
    ssize_t vl = lgetxattr(path, names + off, out + len, cap - len);
    if (vl < 0)
      return cap;
    len += (size_t)vl;
  }
  return len;
}

static bool same_xattrs(int ldir, int cdir, const char *name) {
  static __thread char a[16384], b[16384];
  size_t n = xattr_blob(ldir, name, a, sizeof a), m = xattr_blob(cdir, name, b, sizeof b);
  return n < sizeof a && n == m && memcmp(a, b, n) == 0;
}

/* True when the entry is unchanged between lower and the changed tree
 * (directories: only their own metadata). */
static bool unchanged(int ldir, int cdir, const char *name, const struct stat *l,
                      const struct stat *c) {
  if ((l->st_mode & S_IFMT) != (c->st_mode & S_IFMT) || l->st_mode != c->st_mode ||
      l->st_uid != c->st_uid || l->st_gid != c->st_gid)
    return false;
  if (!S_ISLNK(l->st_mode) && !same_xattrs(ldir, cdir, name))
    return false;
  if (S_ISDIR(l->st_mode))
    return true;
  if (S_ISLNK(l->st_mode)) {
    char a[PATH_MAX + 1], b[PATH_MAX + 1];
    ssize_t n = readlinkat(ldir, name, a, PATH_MAX), m = readlinkat(cdir, name, b, PATH_MAX);
    return n >= 0 && n == m && memcmp(a, b, (size_t)n) == 0;
  }
  if (S_ISCHR(l->st_mode) || S_ISBLK(l->st_mode))
    return l->st_rdev == c->st_rdev;
  if (!S_ISREG(l->st_mode))
    return true;
  /* a new hardlink to it: overlayfs copies the file up and links the new
   * name to it there, and so does the diff (copy_entry's link map) */
  if (l->st_size != c->st_size || c->st_nlink > l->st_nlink)
    return false;
  if (l->st_mtim.tv_sec == c->st_mtim.tv_sec && l->st_mtim.tv_nsec == c->st_mtim.tv_nsec)
    return true;
  return same_content(ldir, cdir, name);
}

/* Some filesystems (overlayfs itself, as the upper of a container's root)
 * refuse 0:0 character devices and overlay xattrs: there whiteouts and opaque
 * markers are written in their OCI layer form, empty ".wh.<name>" and
 * ".wh..wh..opq" files, which the layer writer passes through unchanged. */
HOIST_WUR static int make_whiteout(int dir, const char *name, const char *rel, hoist_err **err) {
  if (mknodat(dir, name, S_IFCHR | 0, makedev(0, 0)) == 0)
    return 0;
  if (errno != EPERM && errno != EOPNOTSUPP && errno != EINVAL)
    return hoist_err_errno(err, errno, "whiteout %s", rel);
  char wh[NAME_MAX + 8];
  snprintf(wh, sizeof wh, ".wh.%s", name);
  int fd = openat(dir, wh, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return hoist_err_errno(err, errno, "whiteout %s", rel);
  close(fd);
  return 0;
}

HOIST_WUR static int mark_opaque(int fd, const char *rel, hoist_err **err) {
  if (fsetxattr(fd, "trusted.overlay.opaque", "y", 1, 0) == 0 ||
      fsetxattr(fd, "user.overlay.opaque", "y", 1, 0) == 0)
    return 0;
  int m = openat(fd, ".wh..wh..opq", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (m < 0)
    return hoist_err_errno(err, errno, "opaque marker in %s", rel);
  close(m);
  return 0;
}

static int diff_dir(copier *cp, dnode *n, int ldir, const char *rel, hoist_err **err);

HOIST_WUR static int diff_entry(copier *cp, dnode *n, int ldir, const char *name, const char *rel,
                                hoist_err **err) {
  struct stat cst, lst;
  if (fstatat(n->cfd, name, &cst, AT_SYMLINK_NOFOLLOW) < 0)
    return hoist_err_errno(err, errno, "stat %s", rel);
  bool in_lower = ldir >= 0 && fstatat(ldir, name, &lst, AT_SYMLINK_NOFOLLOW) == 0;
  if (in_lower && S_ISDIR(cst.st_mode) && S_ISDIR(lst.st_mode)) {
    _cleanup_close_ int cfd = openat(n->cfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    _cleanup_close_ int lfd = openat(ldir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (cfd < 0 || lfd < 0)
      return hoist_err_errno(err, errno, "open %s", rel);
    dnode child = {.parent = n, .name = name, .cfd = cfd, .ufd = -1};
    int r = 0;
    if (!unchanged(ldir, n->cfd, name, &lst, &cst) && upper_dir(&child, err) < 0)
      r = -1;
    if (r == 0)
      r = diff_dir(cp, &child, lfd, rel, err);
    if (r == 0 && child.made) {
      copy_xattrs(cfd, child.ufd);
      r = set_meta(cp, child.ufd, &cst, rel, err);
    }
    if (child.ufd >= 0)
      close(child.ufd);
    return r;
  }
  if (in_lower && unchanged(ldir, n->cfd, name, &lst, &cst))
    return 0;
  int ufd = upper_dir(n, err);
  if (ufd < 0)
    return -1;
  if (copy_entry(cp, n->cfd, ufd, name, rel, err) < 0)
    return -1;
  if (in_lower && S_ISDIR(cst.st_mode)) {
    _cleanup_close_ int d = openat(ufd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (d < 0 || mark_opaque(d, rel, err) < 0)
      return d < 0 ? hoist_err_errno(err, errno, "open %s", rel) : -1;
  }
  return 0;
}

HOIST_WUR static int diff_dir(copier *cp, dnode *n, int ldir, const char *rel, hoist_err **err) {
  int r = 0;
  int dfd = fcntl(n->cfd, F_DUPFD_CLOEXEC, 0);
  DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
  if (!d) {
    if (dfd >= 0)
      close(dfd);
    return hoist_err_errno(err, errno, "opendir %s", rel);
  }
  struct dirent *de;
  while (r == 0 && (de = readdir(d))) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    _cleanup_free_ char *crel =
        *rel ? hoist_asprintf("%s/%s", rel, de->d_name) : hoist_strdup(de->d_name);
    r = diff_entry(cp, n, ldir, de->d_name, crel, err);
  }
  closedir(d);
  if (r < 0)
    return r;
  /* what lower has and the changed tree lost: whiteouts */
  dfd = fcntl(ldir, F_DUPFD_CLOEXEC, 0);
  d = dfd >= 0 ? fdopendir(dfd) : NULL;
  if (!d) {
    if (dfd >= 0)
      close(dfd);
    return hoist_err_errno(err, errno, "opendir lower %s", rel);
  }
  while (r == 0 && (de = readdir(d))) {
    struct stat st;
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
        fstatat(n->cfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
      continue;
    int ufd = upper_dir(n, err);
    if (ufd < 0) {
      r = -1;
      break;
    }
    _cleanup_free_ char *wrel =
        *rel ? hoist_asprintf("%s/%s", rel, de->d_name) : hoist_strdup(de->d_name);
    r = make_whiteout(ufd, de->d_name, wrel, err);
  }
  closedir(d);
  return r;
}

int sandbox_diff_tree(const char *lower, const char *changed, const char *upper, hoist_err **err) {
  _cleanup_close_ int l = open(lower, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  _cleanup_close_ int c = open(changed, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  _cleanup_close_ int u = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (l < 0 || c < 0 || u < 0)
    return hoist_err_errno(err, errno, "open %s, %s or %s", lower, changed, upper);
  copier cp = {.dst_root = u, .root = geteuid() == 0};
  dnode root = {.name = ".", .cfd = c, .ufd = u};
  int r = diff_dir(&cp, &root, l, "", err);
  struct stat ls, cs;
  if (r == 0 && fstat(l, &ls) == 0 && fstat(c, &cs) == 0 &&
      (ls.st_mode != cs.st_mode || ls.st_uid != cs.st_uid || ls.st_gid != cs.st_gid))
    r = set_meta(&cp, u, &cs, upper, err);
  copier_free(&cp);
  return r;
}
