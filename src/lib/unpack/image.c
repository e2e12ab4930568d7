#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/file.h>
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
      r = hoist_manifest_parse_image(data, len, manifest, err);
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
  /* best effort: the unpack's own error is the one that matters */
  hoist_best_effort(hoist_fs_rm_rf_at(AT_FDCWD, dest, NULL));
  if (!created)
    mkdir(dest, 0755);
}

/* How layer l is compressed: as its media type says, except that a blob
 * whose digest is its diffID is the tar itself. Docker archives are read
 * that way (skopeo's manifest of one names its plain tars
 * ...rootfs.diff.tar.gzip, and hoist makes the same, byte for byte). */
static hoist_compression layer_compression(const hoist_descriptor *l, const char *diff_id) {
  if (diff_id && strcmp(l->digest, diff_id) == 0)
    return HOIST_COMPRESS_NONE;
  return (hoist_compression)hoist_media_layer_compression(l->media_type);
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
  for (size_t i = 0; i < m->n_layers; i++) {
    const hoist_descriptor *l = &m->layers[i];
    if (hoist_media_layer_compression(l->media_type) < 0)
      return hoist_err_set(err, HOIST_E_FORMAT, "unpack: layer %s: unsupported media type %s",
                           l->digest, l->media_type);
    if (hoist_media_is_nondistributable(l->media_type) && !hoist_store_has_blob(s, l->digest))
      return hoist_err_set(err, ENOENT,
                           "unpack: layer %s is non-distributable (%s) and not in the layout: "
                           "it was not fetched from its urls (%s)",
                           l->digest, l->media_type,
                           l->urls && l->urls[0] ? l->urls[0] : "none given");
  }

  bool created = false;
  if (mkdir(dest, 0755) == 0) {
    created = true;
  } else if (errno != EEXIST) {
    return hoist_err_errno(err, errno, "unpack: create %s", dest);
  }
  _cleanup_close_ int rootfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return hoist_err_errno(err, errno, "unpack: open %s", dest);
  if (opts && opts->n_uid_map && geteuid() == 0 &&
      fchown(rootfd, hoist_unpack_map_id(0, opts->uid_map, opts->n_uid_map),
             hoist_unpack_map_id(0, opts->gid_map, opts->n_gid_map)) < 0) {
    int e = errno;
    if (created)
      rmdir(dest);
    return hoist_err_errno(err, e, "unpack: chown %s", dest);
  }
  if (!created) {
    int dfd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
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
      r = hoist_unpack_layer(rootfd, fd, layer_compression(l, hoist_config_diff_id(cfg, i)),
                             l->digest, hoist_config_diff_id(cfg, i), opts, report, err);
    if (r < 0) {
      discard(dest, created);
      return hoist_err_wrap(err, "unpack: layer %zu (%s)", i + 1, l->digest);
    }
  }
  return 0;
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
      hoist_best_effort(hoist_fs_rm_rf_at(dirfd(d), de->d_name, NULL)); /* the next sweep */
  }
  closedir(d);
}

/* A tree's last use is the mtime of <tree>.used beside it: a cache hit
 * touches it (the tree itself is never written once made). A caller that
 * holds a tree holds a shared lock on that marker, and prune takes an
 * exclusive one before it removes a tree. */
#define USED_SUFFIX ".used"

/* Marks tree used now; with hold, returns in *hold an fd with a shared lock
 * on its marker (-1 when the cache is not writable). False when the tree went
 * away first (a prune took it). */
static bool use_tree(const char *tree, int *hold) {
  _cleanup_free_ char *marker = hoist_asprintf("%s" USED_SUFFIX, tree);
  /* a prune may unlink the marker while we wait for it: lock the current one */
  for (int attempt = 0; attempt < 8; attempt++) {
    _cleanup_close_ int fd = open(marker, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
      return true;
    if (hold && flock(fd, LOCK_SH) < 0)
      return true;
    struct stat t, locked, now;
    if (stat(tree, &t) < 0 || !S_ISDIR(t.st_mode))
      return false;
    if (fstat(fd, &locked) < 0 || stat(marker, &now) < 0 || locked.st_ino != now.st_ino ||
        locked.st_dev != now.st_dev)
      continue;
    futimens(fd, NULL);
    if (hold)
      *hold = steal_fd(&fd);
    return true;
  }
  return true;
}

/* Hashes one id-map line, "<kind> <inside> <outside> <count>\n". */
static void hash_id_line(hoist_sha256 *h, char kind, const hoist_idmap *m) {
  char line[64];
  int n = snprintf(line, sizeof line, "%c %u %u %u\n", kind, m->inside, m->outside, m->count);
  hoist_sha256_update(h, line, (size_t)n);
}

/* "-ids<12 hex>" naming the id maps of opts (a digest of them), or "".
 * Every line is hashed, however many: two maps must never share a name. */
static void ids_suffix(const hoist_unpack_opts *opts, char out[24]) {
  out[0] = '\0';
  if (!opts || !opts->n_uid_map)
    return;
  _cleanup_sha256_ hoist_sha256 *h = hoist_sha256_new();
  for (size_t i = 0; i < opts->n_uid_map; i++)
    hash_id_line(h, 'u', &opts->uid_map[i]);
  for (size_t i = 0; i < opts->n_gid_map; i++)
    hash_id_line(h, 'g', &opts->gid_map[i]);
  char d[HOIST_DIGEST_STR_LEN];
  hoist_sha256_final(h, d);
  snprintf(out, 24, "-ids%.12s", d + 7);
}

int hoist_unpack_cached(hoist_store *s, const hoist_manifest *m, const char *cache_dir,
                        const hoist_unpack_opts *opts, char **path, bool *hit, int *hold,
                        hoist_unpack_report *report, hoist_err **err) {
  if (hold)
    *hold = -1;
  if (!cache_dir)
    return hoist_err_set(err, EINVAL, "rootfs cache: no cache directory given");
  const char *dir = cache_dir;
  const char *hex = NULL;
  if (hoist_digest_parse(m->config.digest, &hex, err) < 0)
    return hoist_err_wrap(err, "rootfs cache");
  char ids[24] = "";
  ids_suffix(opts, ids);
  _cleanup_free_ char *final = hoist_asprintf("%s/%s%s", dir, hex, ids);
  /* the trees are trusted as unpacked here: a directory another user made
   * (in a shared directory) or may write to could hold a planted one */
  _cleanup_close_ int dirfd = -1;
  if (hoist_fs_mkdir_p(AT_FDCWD, dir, 0755, &dirfd, err) < 0 ||
      hoist_fs_check_owned(dirfd, dir, err) < 0)
    return hoist_err_wrap(err, "rootfs cache");
  struct stat st;
  if (stat(final, &st) == 0 && S_ISDIR(st.st_mode) && use_tree(final, hold)) {
    if (hit)
      *hit = true;
    *path = steal_pointer(&final);
    return 0;
  }
  sweep_stale(dir);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  _cleanup_free_ char *tmp =
      hoist_asprintf("%s/.tmp-%.12s-%d-%ld", dir, hex, (int)getpid(), (long)now.tv_nsec);
  if (hoist_unpack_image(s, m, tmp, opts, report, err) < 0)
    return hoist_err_wrap(err, "rootfs cache");
  if (rename(tmp, final) < 0) {
    int e = errno;
    hoist_best_effort(hoist_fs_rm_rf_at(AT_FDCWD, tmp, NULL)); /* a sweep takes what is left */
    /* another unpack of the same image finished first: use its tree */
    if (!((e == ENOTEMPTY || e == EEXIST) && stat(final, &st) == 0 && S_ISDIR(st.st_mode)))
      return hoist_err_errno(err, e, "rootfs cache: rename into %s", final);
  }
  if (!use_tree(final, hold))
    return hoist_err_set(err, ENOENT, "rootfs cache: %s was pruned as it was made", final);
  if (hit)
    *hit = false;
  *path = steal_pointer(&final);
  return 0;
}

/* ------------------------------------------------------------- pruning */

static int add_bytes(void *ctx, int dirfd, const char *name, const struct stat *st) {
  (void)dirfd, (void)name;
  *(uint64_t *)ctx += (uint64_t)st->st_blocks * 512;
  return 0;
}

/* Last use of the tree dir/name: its marker's mtime, else its own. */
static time_t last_used(int dfd, const char *name, const struct stat *tree) {
  _cleanup_free_ char *marker = hoist_asprintf("%s" USED_SUFFIX, name);
  struct stat st;
  if (fstatat(dfd, marker, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_mtime > tree->st_mtime)
    return st.st_mtime;
  return tree->st_mtime;
}

static bool is_hex(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
      return false;
  return true;
}

/* <config-hex> or <config-hex>-ids<12 hex> */
static bool is_tree_name(const char *name) {
  size_t n = strlen(name);
  if (n == HOIST_DIGEST_HEX_LEN)
    return is_hex(name, n);
  return n == HOIST_DIGEST_HEX_LEN + 16 && is_hex(name, HOIST_DIGEST_HEX_LEN) &&
         strncmp(name + HOIST_DIGEST_HEX_LEN, "-ids", 4) == 0 &&
         is_hex(name + HOIST_DIGEST_HEX_LEN + 4, 12);
}

int hoist_unpack_cache_prune(const char *dir, int64_t max_age, bool dry_run,
                             hoist_prune_report *report, hoist_err **err) {
  memset(report, 0, sizeof *report);
  if (!dir)
    return hoist_err_set(err, EINVAL, "rootfs cache prune: no cache directory given");
  const char *d = dir;
  DIR *dp = opendir(d);
  if (!dp) {
    if (errno == ENOENT)
      return 0;
    return hoist_err_errno(err, errno, "rootfs cache %s", d);
  }
  time_t now = time(NULL);
  int r = 0;
  struct dirent *de;
  while (r == 0 && (de = readdir(dp))) {
    struct stat st;
    if (!is_tree_name(de->d_name) || fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        !S_ISDIR(st.st_mode) || now - last_used(dirfd(dp), de->d_name, &st) < max_age)
      continue;
    /* held by a build or a run: kept, however old its last use */
    _cleanup_free_ char *marker = hoist_asprintf("%s" USED_SUFFIX, de->d_name);
    _cleanup_close_ int mfd =
        openat(dirfd(dp), marker, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (dry_run ? 0 : O_CREAT), 0644);
    if (mfd >= 0 && flock(mfd, LOCK_EX | LOCK_NB) < 0) {
      report->in_use++;
      continue;
    }
    _cleanup_free_ char *path = hoist_asprintf("%s/%s", d, de->d_name);
    uint64_t tree_bytes = 0; /* what it takes on disk; a tree too deep counts its top */
    hoist_fs_walk(path, add_bytes, &tree_bytes);
    report->removed++;
    report->bytes += tree_bytes;
    hoist_info("%s %s (%" PRIu64 " bytes)", dry_run ? "would remove" : "removing", path,
               tree_bytes);
    if (dry_run)
      continue;
    /* out of sight at once, so a reader never meets half a tree */
    _cleanup_free_ char *doomed = hoist_asprintf(".tmp-prune-%s-%d", de->d_name, (int)getpid());
    if (renameat(dirfd(dp), de->d_name, dirfd(dp), doomed) < 0) {
      r = hoist_err_errno(err, errno, "rootfs cache: rename %s", path);
      continue;
    }
    unlinkat(dirfd(dp), marker, 0);
    /* out of sight and unlocked: a new reader unpacks afresh */
    close(steal_fd(&mfd));
    if (hoist_fs_rm_rf_at(dirfd(dp), doomed, err) < 0)
      r = hoist_err_wrap(err, "rootfs cache: remove %s", path);
  }
  closedir(dp);
  return r;
}
