/* What a staged runtime bundle puts into an image (the contract's "use of a
 * staged bundle"). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <string.h>
#include <sys/stat.h>

#include "bundle-internal.h"
#include "hoist/fs.h"

typedef struct list {
  hoist_bundle_mapping *v;
  size_t n, cap;
} list;

HOIST_WUR static int add(list *l, int dirfd, const char *src, const char *dst, hoist_err **err) {
  struct stat st;
  if (fstatat(dirfd, src, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return hoist_err_errno(err, errno, "staged bundle: %s", src);
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
    return hoist_err_set(err, HOIST_E_UNSAFE, "staged bundle: %s: not a file, directory or symlink",
                         src);
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 32;
    l->v = hoist_reallocarray(l->v, l->cap, sizeof *l->v);
  }
  hoist_bundle_mapping *m = &l->v[l->n];
  memset(m, 0, sizeof *m);
  m->src = hoist_strdup(src);
  m->dst = hoist_strdup(dst);
  m->mode = st.st_mode & (S_IFMT | 0777);
  m->size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
  l->n++;
  if (S_ISLNK(st.st_mode)) {
    char buf[4096];
    ssize_t n = readlinkat(dirfd, src, buf, sizeof buf - 1);
    if (n < 0)
      return hoist_err_errno(err, errno, "readlink %s", src);
    buf[n] = '\0';
    m->target = hoist_strdup(buf);
  }
  return 0;
}

/* Adds src (a directory) and everything below it, mapped under dst. */
HOIST_WUR static int add_tree(list *l, int rootfd, const char *src, const char *dst, int depth,
                              hoist_err **err) {
  if (depth > 64)
    return hoist_err_set(err, ELOOP, "staged bundle: %s: too deep", src);
  int r = add(l, rootfd, src, dst, err);
  if (r < 0)
    return r;
  if (!S_ISDIR(l->v[l->n - 1].mode))
    return hoist_err_set(err, ENOTDIR, "staged bundle: %s: not a directory", src);
  int fd = hoist_fs_open_beneath(rootfd, src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, err);
  if (fd < 0)
    return fd;
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return hoist_err_errno(err, errno, "opendir %s", src);
  }
  struct dirent *de;
  while (r == 0 && (de = readdir(d))) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    _cleanup_free_ char *s = hoist_asprintf("%s/%s", src, de->d_name);
    _cleanup_free_ char *t = hoist_asprintf("%s/%s", dst, de->d_name);
    struct stat st;
    if (fstatat(rootfd, s, &st, AT_SYMLINK_NOFOLLOW) < 0)
      r = hoist_err_errno(err, errno, "stat %s", s);
    else if (S_ISDIR(st.st_mode))
      r = add_tree(l, rootfd, s, t, depth + 1, err);
    else
      r = add(l, rootfd, s, t, err);
  }
  closedir(d);
  return r;
}

static int by_dst(const void *a, const void *b) {
  return strcmp(((const hoist_bundle_mapping *)a)->dst, ((const hoist_bundle_mapping *)b)->dst);
}

void hoist_bundle_mappings_free(hoist_bundle_mapping *m, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(m[i].src);
    free(m[i].dst);
    free(m[i].target);
  }
  free(m);
}

int hoist_bundle_mappings(const char *staged_dir, const char *arch, const char *image_libdir,
                          hoist_bundle_mapping **out, size_t *n, hoist_err **err) {
  static const char *const binaries[] = {
      "nvidia-cdi-hook",
      "nvidia-container-runtime",
      "nvidia-container-runtime-hook",
      "nvidia-container-cli",
      "nvidia-ctk",
  };
  _cleanup_close_ int dirfd = open(staged_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0)
    return hoist_err_errno(err, errno, "staged bundle %s", staged_dir);
  hoist_bundle_manifest *m = NULL;
  if (!arch) {
    _cleanup_free_ char *json = NULL;
    size_t len = 0;
    if (hoist_fs_read_file(dirfd, "manifest.json", HOIST_BUNDLE_MANIFEST_MAX, &json, &len, err) <
            0 ||
        hoist_bundle_manifest_parse(json, len, &m, err) < 0)
      return hoist_err_wrap(err, "staged bundle %s", staged_dir);
    arch = m->architecture;
  }
  const char *libdir = hoist_bundle_libdir(arch);
  if (!libdir) {
    int r = hoist_err_set(err, EINVAL, "staged bundle %s: unsupported architecture %s", staged_dir,
                          arch);
    hoist_bundle_manifest_free(m);
    return r;
  }
  _cleanup_free_ char *imglib =
      image_libdir ? hoist_strdup(image_libdir) : hoist_asprintf("/usr/lib/%s", libdir);
  _cleanup_free_ char *srclib = hoist_asprintf("usr/lib/%s", libdir);
  hoist_bundle_manifest_free(m);

  list l = {0};
  int r = 0;
  for (size_t i = 0; r == 0 && i < sizeof binaries / sizeof *binaries; i++) {
    _cleanup_free_ char *src = hoist_asprintf("usr/bin/%s", binaries[i]);
    _cleanup_free_ char *dst = hoist_asprintf("/usr/bin/%s", binaries[i]);
    r = add(&l, dirfd, src, dst, err);
    if (r == 0 && !S_ISREG(l.v[l.n - 1].mode))
      r = hoist_err_set(err, HOIST_E_FORMAT, "staged bundle: %s is not a regular file", src);
  }
  if (r == 0)
    r = add_tree(&l, dirfd, "etc/nvidia-container-runtime", "/etc/nvidia-container-runtime", 0,
                 err);
  size_t libs = 0;
  if (r == 0) {
    int fd = hoist_fs_open_beneath(dirfd, srclib, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, err);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
      if (fd >= 0)
        close(fd);
      r = hoist_err_wrap(err, "staged bundle: %s", srclib);
    }
    struct dirent *de;
    while (r == 0 && d && (de = readdir(d))) {
      if (fnmatch("libnvidia-container*.so*", de->d_name, FNM_PERIOD) != 0)
        continue;
      _cleanup_free_ char *src = hoist_asprintf("%s/%s", srclib, de->d_name);
      _cleanup_free_ char *dst = hoist_asprintf("%s/%s", imglib, de->d_name);
      r = add(&l, dirfd, src, dst, err);
      if (r == 0 && S_ISDIR(l.v[l.n - 1].mode))
        r = hoist_err_set(err, HOIST_E_FORMAT, "staged bundle: %s is a directory", src);
      libs++;
    }
    if (d)
      closedir(d);
  }
  if (r == 0 && libs == 0)
    r = hoist_err_set(err, HOIST_E_FORMAT, "staged bundle: no %s/libnvidia-container*.so*", srclib);
  if (r < 0) {
    hoist_bundle_mappings_free(l.v, l.n);
    return hoist_err_wrap(err, "staged bundle %s", staged_dir);
  }
  qsort(l.v, l.n, sizeof *l.v, by_dst);
  *out = l.v;
  *n = l.n;
  return 0;
}
