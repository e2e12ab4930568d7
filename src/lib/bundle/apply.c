/* A staged runtime bundle as one new layer on a base image, and the
 * multi-arch publish flow built on it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bundle-internal.h"
#include "hoist/fs.h"

/* ------------------------------------------------------------ base check */

int hoist_bundle_check_base(hoist_transport_source *base, const char *arch, hoist_err **err) {
  if (!hoist_bundle_libdir(arch))
    return hoist_err_set(err, EINVAL, "unsupported bundle architecture %s", arch);
  _cleanup_free_ char *want_s = hoist_asprintf("linux/%s", arch);
  _cleanup_platform_ hoist_platform *want = NULL;
  if (hoist_platform_parse(want_s, &want, err) < 0)
    return -1;
  _cleanup_free_ char *data = NULL;
  _cleanup_free_ char *got_mt = NULL;
  char got[HOIST_DIGEST_STR_LEN];
  size_t len = 0;
  if (base->ops->manifest(base, NULL, &data, &len, &got_mt, got, err) < 0)
    return hoist_err_wrap(err, "base image");
  const char *mt = hoist_manifest_detect(data, len);
  if (mt && hoist_media_kind_of(mt) == HOIST_MEDIA_INDEX) {
    _cleanup_index_ hoist_index *ix = NULL;
    if (hoist_index_parse(data, len, &ix, err) < 0)
      return hoist_err_wrap(err, "base index");
    const hoist_descriptor *d = hoist_index_find_platform(ix, want);
    if (!d) {
      _cleanup_free_ char *have = hoist_index_platforms(ix, NULL);
      return hoist_err_set(err, ENOENT, "base image has no %s image (it has: %s)", want_s,
                           *have ? have : "no platforms");
    }
    free(steal_pointer(&data));
    free(steal_pointer(&got_mt));
    if (base->ops->manifest(base, d->digest, &data, &len, &got_mt, got, err) < 0)
      return hoist_err_wrap(err, "base manifest %s", d->digest);
  }
  _cleanup_manifest_ hoist_manifest *m = NULL;
  _cleanup_free_ char *cdata = NULL;
  size_t clen = 0;
  _cleanup_config_ hoist_config *cfg = NULL;
  if (hoist_manifest_parse_image(data, len, &m, err) < 0)
    return hoist_err_wrap(err, "base manifest");
  if (base->ops->blob(base, m->config.digest, HOIST_MANIFEST_MAX, &cdata, &clen, err) < 0 ||
      hoist_config_parse(cdata, clen, &cfg, err) < 0)
    return hoist_err_wrap(err, "base config %s", m->config.digest);
  _cleanup_platform_ hoist_platform *have = hoist_config_platform(cfg);
  if (!hoist_platform_match(want, have)) {
    _cleanup_free_ char *h = hoist_platform_string(have);
    return hoist_err_set(
        err, EINVAL, "base image platform %s does not match the bundle architecture %s", h, arch);
  }
  return 0;
}

/* ----------------------------------------------------------------- apply */

int hoist_bundle_apply(hoist_transport_source *base, hoist_transport_target *target,
                       const char *staged_dir, const hoist_bundle_apply_opts *opts,
                       hoist_image_append_result *out, hoist_err **err) {
  memset(out, 0, sizeof *out);
  /* the staged manifest names the bundle and its architecture */
  hoist_bundle_manifest *man = NULL;
  {
    _cleanup_close_ int dirfd = open(staged_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
      return hoist_err_errno(err, errno, "staged bundle %s", staged_dir);
    _cleanup_free_ char *json = NULL;
    size_t len = 0;
    if (hoist_fs_read_file(dirfd, "manifest.json", HOIST_BUNDLE_MANIFEST_MAX, &json, &len, err) <
            0 ||
        hoist_bundle_manifest_parse(json, len, &man, err) < 0)
      return hoist_err_wrap(err, "staged bundle %s", staged_dir);
  }
  int r = 0;
  const char *arch = NULL;
  if (opts->arch) {
    r = hoist_bundle_manifest_check_arch(man, opts->arch, err);
    arch = opts->arch;
  } else if (!hoist_bundle_libdir(man->architecture)) {
    r = hoist_err_set(err, EINVAL, "unsupported bundle architecture %s", man->architecture);
  } else {
    arch = man->architecture;
  }
  _cleanup_free_ char *created_by =
      opts->created_by
          ? hoist_strdup(opts->created_by)
          : hoist_asprintf("hoist bundle apply %s %s", man->bundle_name, man->bundle_version);
  _cleanup_free_ char *arch_copy = arch ? hoist_strdup(arch) : NULL;
  hoist_bundle_manifest_free(man);
  if (r < 0)
    return hoist_err_wrap(err, "staged bundle %s", staged_dir);
  arch = arch_copy;

  if (base && hoist_bundle_check_base(base, arch, err) < 0)
    return -1;

  hoist_bundle_mapping *mp = NULL;
  size_t n = 0;
  if (hoist_bundle_mappings(staged_dir, arch, opts->image_libdir, &mp, &n, err) < 0)
    return -1;
  /* A directory mapping copies its tree: entries below a mapped directory
   * are not mapped again. The list is sorted by dst, so a directory comes
   * right before its entries. */
  hoist_layer_map *maps = hoist_calloc(n ? n : 1, sizeof *maps);
  size_t n_maps = 0;
  const char *dir = NULL;
  size_t dir_len = 0;
  for (size_t i = 0; i < n; i++) {
    if (dir && strncmp(mp[i].dst, dir, dir_len) == 0 && mp[i].dst[dir_len] == '/')
      continue;
    maps[n_maps].src = hoist_asprintf("%s/%s", staged_dir, mp[i].src);
    maps[n_maps].dest = mp[i].dst;
    n_maps++;
    if (S_ISDIR(mp[i].mode)) {
      dir = mp[i].dst;
      dir_len = strlen(dir);
    }
  }

  _cleanup_free_ char *plat_s = hoist_asprintf("linux/%s", arch);
  _cleanup_platform_ hoist_platform *plat = NULL;
  r = hoist_platform_parse(plat_s, &plat, err);
  if (r == 0) {
    /* the files belong to whoever staged them; in the image they are root's */
    hoist_idmap uid = {.inside = 0, .outside = (uint32_t)geteuid(), .count = 1};
    hoist_idmap gid = {.inside = 0, .outside = (uint32_t)getegid(), .count = 1};
    hoist_image_append_options ao = {
        .layer = opts->layer, .platform = plat, .created_by = created_by};
    if (!ao.layer.uid_map) {
      ao.layer.uid_map = &uid;
      ao.layer.n_uid_map = 1;
    }
    if (!ao.layer.gid_map) {
      ao.layer.gid_map = &gid;
      ao.layer.n_gid_map = 1;
    }
    hoist_layer_source ls = {.kind = HOIST_LAYER_MAP, .maps = maps, .n_maps = n_maps};
    r = hoist_image_append(base, target, &ls, &ao, out, err);
  }
  for (size_t i = 0; i < n_maps; i++)
    free((char *)maps[i].src);
  free(maps);
  hoist_bundle_mappings_free(mp, n);
  if (r < 0)
    return hoist_err_wrap(err, "apply runtime bundle (%s)", arch);
  return 0;
}

/* ---------------------------------------------------------------- publish */

int hoist_bundle_arch_target(const hoist_loc *target, const char *arch, hoist_loc **out,
                             hoist_err **err) {
  _cleanup_free_ char *name = hoist_loc_string(target);
  _cleanup_free_ char *s = NULL;
  if (target->kind == HOIST_LOC_REGISTRY) {
    if (!target->ref->tag || target->ref->digest)
      return hoist_err_set(err, EINVAL, "target %s needs a tag (not a digest)", name);
    s = hoist_asprintf("%s/%s:%s-%s", target->ref->domain, target->ref->path, target->ref->tag,
                       arch);
  } else if (target->kind != HOIST_LOC_LAYOUT) {
    return hoist_err_set(err, EINVAL,
                         "target %s: a publish writes one image per architecture and an index: "
                         "a registry reference or oci:DIR:TAG",
                         name);
  } else {
    if (!target->tag)
      return hoist_err_set(err, EINVAL, "target %s needs a tag (oci:DIR:TAG)", name);
    s = hoist_asprintf("oci:%s:%s-%s", target->dir, target->tag, arch);
  }
  if (hoist_loc_parse(s, out, err) < 0)
    return hoist_err_wrap(err, "target for %s", arch);
  return 0;
}

void hoist_bundle_publish_result_clear(hoist_bundle_publish_result *res) {
  for (size_t i = 0; i < res->n; i++) {
    free(res->images[i].target);
    res->images[i].target = NULL;
    free(res->images[i].bundle_name);
    free(res->images[i].bundle_version);
    res->images[i].bundle_name = res->images[i].bundle_version = NULL;
  }
  res->n = 0;
}

/* Everything before the first write: architectures, targets, stages and
 * the base. staged[i] and targets[i] receive bundle i's stage and target. */
HOIST_WUR static int publish_prepare(const hoist_transport_opts *t,
                                     const hoist_bundle_publish_opts *o, const char *stage_root,
                                     char **staged, hoist_loc **targets, const char **archs,
                                     hoist_err **err) {
  for (size_t i = 0; i < o->n_bundles; i++) {
    const hoist_bundle_publish_item *b = &o->bundles[i];
    if (hoist_bundle_arch_resolve(b->arch, NULL, &archs[i], err) < 0)
      return hoist_err_wrap(err, "bundle %s", b->arch ? b->arch : "(none)");
    for (size_t j = 0; j < i; j++)
      if (strcmp(archs[i], archs[j]) == 0)
        return hoist_err_set(err, EINVAL, "two bundles for %s", archs[i]);
    if (hoist_bundle_arch_target(o->target, archs[i], &targets[i], err) < 0)
      return -1;
  }
  for (size_t i = 0; i < o->n_bundles; i++) {
    hoist_bundle_opts bo = {
        .arch = archs[i], .max_size = o->max_size, .max_entries = o->max_entries};
    if (hoist_bundle_stage(o->bundles[i].tarball, stage_root, &bo, &staged[i], NULL, err) < 0)
      return hoist_err_wrap(err, "bundle %s (%s)", archs[i], o->bundles[i].tarball);
  }
  _cleanup_transport_source_ hoist_transport_source *base = NULL;
  if (hoist_transport_open_source(t, o->base, &base, err) < 0)
    return hoist_err_wrap(err, "base");
  for (size_t i = 0; i < o->n_bundles; i++)
    if (hoist_bundle_check_base(base, archs[i], err) < 0)
      return -1;
  return 0;
}

#define STAGE_PREFIX "hoist-publish-"

/* A publish holds an flock on its stage directory until it has removed it.
 * Removes the stages in parent that no process holds and that have not
 * changed for a minute (one just made is locked an instant later): those a
 * killed publish left behind. */
static void sweep_stale_stages(const char *parent) {
  DIR *d = opendir(parent);
  if (!d)
    return;
  time_t now = time(NULL);
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, STAGE_PREFIX, strlen(STAGE_PREFIX)) != 0)
      continue;
    _cleanup_close_ int fd =
        openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_uid != geteuid() || now - st.st_mtime < 60 ||
        flock(fd, LOCK_EX | LOCK_NB) < 0)
      continue;
    hoist_err *err = NULL;
    if (hoist_fs_rm_rf_at(dirfd(d), e->d_name, &err) == 0)
      hoist_info("removed %s/%s, left by an interrupted publish", parent, e->d_name);
    hoist_err_free(err);
  }
  closedir(d);
}

/* The staged bundle's manifest.json digest, bundle_name and bundle_version
 * (both the caller's). */
static int bundle_identity(const char *staged_dir, char digest[HOIST_DIGEST_STR_LEN], char **name,
                           char **version, hoist_err **err) {
  _cleanup_close_ int dirfd = open(staged_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0)
    return hoist_err_errno(err, errno, "staged bundle %s", staged_dir);
  _cleanup_free_ char *json = NULL;
  size_t len = 0;
  hoist_bundle_manifest *man = NULL;
  if (hoist_fs_read_file(dirfd, "manifest.json", HOIST_BUNDLE_MANIFEST_MAX, &json, &len, err) < 0 ||
      hoist_bundle_manifest_parse(json, len, &man, err) < 0)
    return hoist_err_wrap(err, "staged bundle %s", staged_dir);
  hoist_sha256_of(json, len, digest);
  *name = hoist_strdup(man->bundle_name);
  *version = hoist_strdup(man->bundle_version);
  hoist_bundle_manifest_free(man);
  return 0;
}

int hoist_bundle_publish(const hoist_transport_opts *t, const hoist_bundle_publish_opts *o,
                         hoist_bundle_publish_result *out, hoist_err **err) {
  memset(out, 0, sizeof *out);
  if (o->n_bundles == 0 || o->n_bundles > HOIST_BUNDLE_PUBLISH_MAX)
    return hoist_err_set(err, EINVAL, "publish takes 1 to %d bundles, one per architecture",
                         HOIST_BUNDLE_PUBLISH_MAX);
  const char *parent = o->stage_parent;
  if (!parent)
    parent = "/var/tmp";
  sweep_stale_stages(parent);
  _cleanup_free_ char *stage_root = hoist_asprintf("%s/" STAGE_PREFIX "XXXXXX", parent);
  if (!mkdtemp(stage_root))
    return hoist_err_errno(err, errno, "create a stage directory in %s", parent);
  /* held until the stage is removed, so no other publish sweeps it away */
  _cleanup_close_ int stage_lock = open(stage_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (stage_lock < 0 || flock(stage_lock, LOCK_EX) < 0) {
    int e = errno;
    rmdir(stage_root);
    return hoist_err_errno(err, e, "lock the stage directory %s", stage_root);
  }

  char *staged[HOIST_BUNDLE_PUBLISH_MAX] = {0};
  hoist_loc *targets[HOIST_BUNDLE_PUBLISH_MAX] = {0};
  const char *archs[HOIST_BUNDLE_PUBLISH_MAX] = {0};
  int ret = publish_prepare(t, o, stage_root, staged, targets, archs, err);
  if (ret == 0) {
    _cleanup_transport_source_ hoist_transport_source *base = NULL;
    ret = hoist_transport_open_source(t, o->base, &base, err);
    for (size_t i = 0; ret == 0 && i < o->n_bundles; i++) {
      _cleanup_transport_target_ hoist_transport_target *dst = NULL;
      hoist_bundle_apply_opts ao = {
          .arch = archs[i], .image_libdir = o->image_libdir, .layer = o->layer};
      hoist_image_append_result res;
      ret = hoist_transport_open_target(t, targets[i], &dst, err);
      if (ret == 0)
        ret = hoist_bundle_apply(base, dst, staged[i], &ao, &res, err);
      if (ret == 0)
        ret = hoist_transport_commit(dst, err);
      if (ret < 0) {
        _cleanup_free_ char *tn = hoist_loc_string(targets[i]);
        hoist_err_wrap(err, "push %s", tn);
        break;
      }
      out->images[i].arch = archs[i];
      out->images[i].target = hoist_loc_string(targets[i]);
      memcpy(out->images[i].digest, res.manifest_digest, sizeof res.manifest_digest);
      out->n = i + 1;
      ret = bundle_identity(staged[i], out->images[i].bundle_manifest, &out->images[i].bundle_name,
                            &out->images[i].bundle_version, err);
    }
  }
  if (ret == 0) {
    hoist_image_index_opts io = {.oci = o->oci_index, .tags = o->tags};
    hoist_image_index_result ir;
    ret = hoist_image_index_create(t, o->target, (const hoist_loc *const *)targets, o->n_bundles,
                                   &io, &ir, err);
    if (ret == 0) {
      memcpy(out->index_digest, ir.digest, sizeof ir.digest);
      out->index_media_type = ir.media_type;
    }
  }
  for (size_t i = 0; i < HOIST_BUNDLE_PUBLISH_MAX; i++) {
    free(staged[i]);
    hoist_loc_free(targets[i]);
  }
  hoist_err *e = NULL;
  if (hoist_fs_rm_rf_at(AT_FDCWD, stage_root, &e) < 0) {
    hoist_warn("cannot remove %s: %s", stage_root, e && e->msg ? e->msg : "?");
    hoist_err_free(e);
  }
  if (ret < 0) {
    hoist_bundle_publish_result_clear(out);
    return ret;
  }
  return 0;
}
