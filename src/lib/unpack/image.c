#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "hoist/fs.h"
#include "unpack-private.h"

int hoist_unpack_resolve(hoist_store *s, const char *tag, const hoist_platform *platform,
                         hoist_manifest **manifest, hoist_err **err) {
  hoist_descriptor desc = {0};
  if (hoist_store_resolve(s, tag, &desc, err) < 0)
    return hoist_err_wrap(err, "resolve %s", tag ? tag : "(only entry)");
  _cleanup_platform_ hoist_platform *host = NULL;
  if (!platform)
    platform = host = hoist_platform_host();
  int r = 0;
  for (int depth = 0; depth < 4; depth++) {
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    r = hoist_store_read_blob(s, desc.digest, HOIST_MANIFEST_MAX, &data, &len, err);
    if (r < 0)
      break;
    const char *mt = desc.media_type ? desc.media_type : hoist_manifest_detect(data, len);
    hoist_media_kind kind = hoist_media_kind_of(mt);
    if (kind == HOIST_MEDIA_MANIFEST) {
      r = hoist_manifest_parse(data, len, manifest, err);
      break;
    }
    if (kind != HOIST_MEDIA_INDEX) {
      r = hoist_err_set(err, HOIST_E_FORMAT, "%s: not an image manifest or index (%s)", desc.digest,
                        mt ? mt : "unknown type");
      break;
    }
    _cleanup_index_ hoist_index *ix = NULL;
    r = hoist_index_parse(data, len, &ix, err);
    if (r < 0)
      break;
    const hoist_descriptor *pick = hoist_index_find_platform(ix, platform);
    if (!pick) {
      _cleanup_free_ char *ps = hoist_platform_string(platform);
      r = hoist_err_set(err, ENOENT, "no manifest for platform %s in index %s", ps, desc.digest);
      break;
    }
    hoist_descriptor next;
    hoist_descriptor_copy(&next, pick);
    hoist_descriptor_clear(&desc);
    desc = next;
    r = -1;
  }
  if (r == -1 && !*err)
    r = hoist_err_set(err, HOIST_E_FORMAT, "indexes nested too deeply");
  hoist_descriptor_clear(&desc);
  return r < 0 ? hoist_err_wrap(err, "resolve %s", tag ? tag : "(only entry)") : 0;
}

/* Removes what a failed unpack left: dest itself when it was created here,
 * its content otherwise. */
static void discard(const char *dest, bool created) {
  if (created) {
    hoist_fs_rm_rf_at(AT_FDCWD, dest, NULL);
    return;
  }
  hoist_fs_rm_rf_at(AT_FDCWD, dest, NULL);
  mkdir(dest, 0755);
}

int hoist_unpack_image(hoist_store *s, const hoist_manifest *m, const char *dest,
                       const hoist_unpack_opts *opts, hoist_unpack_report *report,
                       hoist_err **err) {
  _cleanup_free_ char *cdata = NULL;
  size_t clen = 0;
  if (hoist_store_read_blob(s, m->config.digest, HOIST_MANIFEST_MAX, &cdata, &clen, err) < 0)
    return hoist_err_wrap(err, "unpack: config");
  _cleanup_config_ hoist_config *cfg = NULL;
  if (hoist_config_parse(cdata, clen, &cfg, err) < 0)
    return hoist_err_wrap(err, "unpack: config %s", m->config.digest);
  if (hoist_config_n_diff_ids(cfg) != m->n_layers)
    return hoist_err_set(err, HOIST_E_FORMAT, "unpack: config %s lists %zu diff_ids for %zu layers",
                         m->config.digest, hoist_config_n_diff_ids(cfg), m->n_layers);
  for (size_t i = 0; i < m->n_layers; i++)
    if (hoist_media_layer_compression(m->layers[i].media_type) < 0)
      return hoist_err_set(err, HOIST_E_FORMAT, "unpack: layer %s: unsupported media type %s",
                           m->layers[i].digest, m->layers[i].media_type);

  bool created = false;
  if (mkdir(dest, 0755) == 0) {
    created = true;
  } else if (errno != EEXIST) {
    return hoist_err_errno(err, errno, "unpack: create %s", dest);
  }
  _cleanup_close_ int rootfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return hoist_err_errno(err, errno, "unpack: open %s", dest);
  if (!created) {
    int dfd = dup(rootfd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    bool empty = true;
    struct dirent *de;
    while (d && (de = readdir(d)))
      if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
        empty = false;
    if (d)
      closedir(d);
    if (!empty)
      return hoist_err_set(err, EEXIST, "unpack: %s exists and is not empty", dest);
  }

  for (size_t i = 0; i < m->n_layers; i++) {
    const hoist_descriptor *l = &m->layers[i];
    _cleanup_close_ int fd = -1;
    uint64_t size = 0;
    int r = hoist_store_open_blob(s, l->digest, &fd, &size, err);
    if (r == 0 && l->size >= 0 && size != (uint64_t)l->size)
      r = hoist_err_set(err, HOIST_E_DIGEST, "size %" PRIu64 ", manifest says %" PRId64, size,
                        l->size);
    if (r == 0)
      r = hoist_unpack_layer(rootfd, fd,
                             (hoist_compression)hoist_media_layer_compression(l->media_type),
                             l->digest, hoist_config_diff_id(cfg, i), opts, report, err);
    if (r < 0) {
      discard(dest, created);
      return hoist_err_wrap(err, "unpack: layer %zu (%s)", i + 1, l->digest);
    }
  }
  return 0;
}

static int mkdir_p(const char *path, hoist_err **err) {
  _cleanup_free_ char *p = hoist_strdup(path);
  for (char *q = p + 1;; q++) {
    if (*q == '/' || *q == '\0') {
      char c = *q;
      *q = '\0';
      if (mkdir(p, 0755) < 0 && errno != EEXIST)
        return hoist_err_errno(err, errno, "mkdir %s", p);
      *q = c;
      if (!c)
        return 0;
    }
  }
}

/* Removes temp trees of unpacks that died more than an hour ago. */
static void sweep_stale(const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return;
  time_t now = time(NULL);
  struct dirent *de;
  while ((de = readdir(d))) {
    struct stat st;
    if (strncmp(de->d_name, ".tmp-", 5) == 0 &&
        fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_mtime < now - 3600)
      hoist_fs_rm_rf_at(dirfd(d), de->d_name, NULL);
  }
  closedir(d);
}

char *hoist_unpack_cache_dir(void) {
  const char *c = getenv("HOIST_CACHE");
  if (c && *c)
    return hoist_asprintf("%s/rootfs", c);
  const char *x = getenv("XDG_CACHE_HOME");
  if (x && *x)
    return hoist_asprintf("%s/hoist/rootfs", x);
  const char *h = getenv("HOME");
  return hoist_asprintf("%s/.cache/hoist/rootfs", h && *h ? h : "/tmp");
}

int hoist_unpack_cached(hoist_store *s, const hoist_manifest *m, const char *cache_dir,
                        const hoist_unpack_opts *opts, char **path, bool *hit,
                        hoist_unpack_report *report, hoist_err **err) {
  _cleanup_free_ char *dir = cache_dir ? hoist_strdup(cache_dir) : hoist_unpack_cache_dir();
  const char *hex = NULL;
  if (hoist_digest_parse(m->config.digest, &hex, err) < 0)
    return hoist_err_wrap(err, "rootfs cache");
  _cleanup_free_ char *final = hoist_asprintf("%s/%s", dir, hex);
  struct stat st;
  if (stat(final, &st) == 0 && S_ISDIR(st.st_mode)) {
    if (hit)
      *hit = true;
    *path = steal_pointer(&final);
    return 0;
  }
  if (mkdir_p(dir, err) < 0)
    return hoist_err_wrap(err, "rootfs cache");
  sweep_stale(dir);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  _cleanup_free_ char *tmp =
      hoist_asprintf("%s/.tmp-%.12s-%d-%ld", dir, hex, (int)getpid(), (long)now.tv_nsec);
  if (hoist_unpack_image(s, m, tmp, opts, report, err) < 0)
    return hoist_err_wrap(err, "rootfs cache");
  if (rename(tmp, final) < 0) {
    int e = errno;
    hoist_fs_rm_rf_at(AT_FDCWD, tmp, NULL);
    /* another unpack of the same image finished first: use its tree */
    if (!((e == ENOTEMPTY || e == EEXIST) && stat(final, &st) == 0 && S_ISDIR(st.st_mode)))
      return hoist_err_errno(err, e, "rootfs cache: rename into %s", final);
  }
  if (hit)
    *hit = false;
  *path = steal_pointer(&final);
  return 0;
}
