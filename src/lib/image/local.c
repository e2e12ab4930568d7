/* The image store's contents: the images its layouts hold, and tags made
 * within and between layouts. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hoist/image.h"
#include "hoist/limits.h"
#include "hoist/store.h"

/* How deep below the store a repository's layout may be (HOST/PATH: a
 * reference has at most a few path components). */
#define STORE_MAX_DEPTH 16
/* Guards against a hostile chain of indexes. */
#define INDEX_MAX_DEPTH 8

char *hoist_image_store_repository(const char *store, const char *dir) {
  size_t sl = strlen(store);
  while (sl > 1 && store[sl - 1] == '/')
    sl--;
  if (strncmp(dir, store, sl) != 0 || dir[sl] != '/' || !dir[sl + 1])
    return NULL;
  _cleanup_free_ char *repo = hoist_strdup(dir + sl + 1);
  size_t n = strlen(repo);
  while (n && repo[n - 1] == '/')
    repo[--n] = '\0';
  /* the host's ':' was written '_' (a host name has no '_') */
  for (char *p = repo; *p && *p != '/'; p++)
    if (*p == '_')
      *p = ':';
  /* only a path hoist_image_store_location makes: the repository of a
   * reference that names it exactly */
  _cleanup_ref_ hoist_ref *ref = NULL;
  _cleanup_err_ hoist_err *e = NULL;
  if (!strchr(repo, '/') || hoist_ref_parse(repo, &ref, &e) < 0)
    return NULL;
  _cleanup_free_ char *norm = hoist_ref_repository(ref);
  return strcmp(norm, repo) == 0 ? steal_pointer(&repo) : NULL;
}

/* Appends to *dirs the layouts at and below path (depth levels below the
 * store), not looking inside a layout's blobs nor in hidden directories. A
 * path that vanished meanwhile is skipped. */
HOIST_WUR static int find_layouts(const char *path, int depth, hoist_strv *dirs, hoist_err **err) {
  DIR *d = opendir(path);
  if (!d) {
    if (errno == ENOENT || (errno == ENOTDIR && depth > 0))
      return 0;
    return hoist_err_errno(err, errno, "image store: open %s", path);
  }
  bool layout = depth > 0 && faccessat(dirfd(d), "oci-layout", F_OK, AT_SYMLINK_NOFOLLOW) == 0;
  if (layout)
    hoist_strv_add(dirs, path);
  int r = 0;
  struct dirent *de;
  while (r == 0 && (de = readdir(d))) {
    struct stat st;
    if (de->d_name[0] == '.' || (layout && strcmp(de->d_name, "blobs") == 0) ||
        fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
      continue;
    if (depth + 1 > STORE_MAX_DEPTH)
      continue;
    _cleanup_free_ char *sub = hoist_asprintf("%s/%s", path, de->d_name);
    r = find_layouts(sub, depth + 1, dirs, err);
  }
  closedir(d);
  return r;
}

/* Adds to *size what the document desc names holds in s: its own bytes
 * and, for a manifest, its config's and layers'; for an index, those of its
 * manifests s holds. *created (when created is not NULL) gets a manifest's
 * config's "created". */
HOIST_WUR static int measure(hoist_store *s, const hoist_descriptor *desc, int depth,
                             uint64_t *size, char **created, hoist_err **err) {
  if (depth > INDEX_MAX_DEPTH)
    return hoist_err_set(err, HOIST_E_LIMIT, "indexes nested more than %d deep", INDEX_MAX_DEPTH);
  *size += (uint64_t)desc->size;
  hoist_media_kind kind = hoist_media_kind_of(desc->media_type);
  if (kind != HOIST_MEDIA_INDEX && kind != HOIST_MEDIA_MANIFEST)
    return 0;
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  if (hoist_store_read_blob(s, desc->digest, HOIST_MANIFEST_MAX, &data, &len, err) < 0)
    return -1;
  if (kind == HOIST_MEDIA_INDEX) {
    _cleanup_index_ hoist_index *ix = NULL;
    if (hoist_index_parse(data, len, &ix, err) < 0)
      return hoist_err_wrap(err, "index %s", desc->digest);
    for (size_t i = 0; i < ix->n_manifests; i++)
      if (hoist_store_has_blob(s, ix->manifests[i].digest) &&
          measure(s, &ix->manifests[i], depth + 1, size, NULL, err) < 0)
        return -1;
    return 0;
  }
  _cleanup_manifest_ hoist_manifest *m = NULL;
  if (hoist_manifest_parse(data, len, &m, err) < 0)
    return hoist_err_wrap(err, "manifest %s", desc->digest);
  *size += (uint64_t)m->config.size;
  for (size_t i = 0; i < m->n_layers; i++)
    *size += (uint64_t)m->layers[i].size;
  if (!created || hoist_media_kind_of(m->config.media_type) != HOIST_MEDIA_CONFIG ||
      !hoist_store_has_blob(s, m->config.digest))
    return 0;
  _cleanup_free_ char *cdata = NULL;
  size_t clen = 0;
  _cleanup_config_ hoist_config *c = NULL;
  if (hoist_store_read_blob(s, m->config.digest, HOIST_MANIFEST_MAX, &cdata, &clen, err) < 0 ||
      hoist_config_parse(cdata, clen, &c, err) < 0)
    return hoist_err_wrap(err, "config %s", m->config.digest);
  const char *when = json_string_value(json_object_get(c->root, "created"));
  *created = when ? hoist_strdup(when) : NULL;
  return 0;
}

/* Appends the entries of the layout at dir (repository repo) to *v. */
HOIST_WUR static int list_layout(const char *dir, const char *repo, hoist_image_store_entry **v,
                                 size_t *n, hoist_err **err) {
  _cleanup_store_ hoist_store *s = NULL;
  _cleanup_index_ hoist_index *ix = NULL;
  if (hoist_store_open(dir, false, &s, err) < 0 || hoist_store_index(s, &ix, err) < 0)
    return -1;
  for (size_t i = 0; i < ix->n_manifests; i++) {
    const hoist_descriptor *d = &ix->manifests[i];
    hoist_image_store_entry e = {0};
    if (measure(s, d, 0, &e.size, &e.created, err) < 0)
      return hoist_err_wrap(err, "layout %s", dir);
    const char *tag = hoist_descriptor_annotation(d, HOIST_ANNOTATION_REF_NAME);
    e.repository = hoist_strdup(repo);
    e.tag = tag ? hoist_strdup(tag) : NULL;
    e.layout = hoist_strdup(dir);
    hoist_descriptor_copy(&e.desc, d);
    hoist_image_store_entry *nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
      abort();
    nv[(*n)++] = e;
    *v = nv;
  }
  return 0;
}

static int compare_entries(const void *pa, const void *pb) {
  const hoist_image_store_entry *a = pa, *b = pb;
  int c = strcmp(a->repository, b->repository);
  if (c || (!a->tag && !b->tag))
    return c;
  if (!a->tag || !b->tag)
    return a->tag ? -1 : 1; /* untagged entries last */
  return strcmp(a->tag, b->tag);
}

static int compare_strings(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int hoist_image_store_layouts(const char *store, char ***dirs, size_t *n, hoist_err **err) {
  *dirs = NULL;
  *n = 0;
  _cleanup_strv_ hoist_strv found = HOIST_STRV_INIT;
  _cleanup_strv_ hoist_strv repos = HOIST_STRV_INIT;
  if (find_layouts(store, 0, &found, err) < 0)
    return hoist_err_wrap(err, "image store %s", store);
  for (size_t i = 0; i < found.n; i++) {
    _cleanup_free_ char *repo = hoist_image_store_repository(store, found.v[i]);
    if (repo)
      hoist_strv_add(&repos, found.v[i]);
  }
  if (repos.n)
    qsort(repos.v, repos.n, sizeof *repos.v, compare_strings);
  *n = repos.n;
  *dirs = hoist_strv_steal(&repos);
  return 0;
}

int hoist_image_store_list(const char *store, hoist_image_store_entry **out, size_t *n,
                           hoist_err **err) {
  *out = NULL;
  *n = 0;
  _cleanup_strfreev_ char **dirs = NULL;
  size_t nd = 0;
  if (hoist_image_store_layouts(store, &dirs, &nd, err) < 0)
    return -1;
  hoist_image_store_entry *v = NULL;
  size_t nv = 0;
  for (size_t i = 0; i < nd; i++) {
    _cleanup_free_ char *repo = hoist_image_store_repository(store, dirs[i]);
    if (list_layout(dirs[i], repo, &v, &nv, err) < 0) {
      hoist_image_store_entries_free(v, nv);
      return hoist_err_wrap(err, "image store %s", store);
    }
  }
  if (nv)
    qsort(v, nv, sizeof *v, compare_entries);
  *out = v;
  *n = nv;
  return 0;
}

void hoist_image_store_entries_free(hoist_image_store_entry *e, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(e[i].repository);
    free(e[i].tag);
    free(e[i].layout);
    free(e[i].created);
    hoist_descriptor_clear(&e[i].desc);
  }
  free(e);
}

/* True when a and b are one directory (b may not exist yet). */
static bool same_dir(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int hoist_image_tag(const hoist_loc *src, const hoist_loc *dst, hoist_image_tag_result *res,
                    hoist_err **err) {
  memset(res, 0, sizeof *res);
  if (src->kind != HOIST_LOC_LAYOUT || dst->kind != HOIST_LOC_LAYOUT || !dst->tag)
    return hoist_err_set(err, EINVAL, "tag: expected two layout locations, the second with a tag");
  _cleanup_free_ char *name = hoist_loc_string(dst);
  if (!hoist_store_tag_valid(dst->tag))
    return hoist_err_set(err, HOIST_E_FORMAT, "tag %s: invalid tag \"%.80s\"", name, dst->tag);
  if (!same_dir(src->dir, dst->dir)) {
    hoist_image_copy_opts co = {.all_platforms = true};
    hoist_image_copy_result cr;
    int r = hoist_image_copy(NULL, src, dst, &co, &cr, err);
    if (r == 0) {
      memcpy(res->digest, cr.digest, sizeof res->digest);
      res->copied = true;
      res->blobs_copied = cr.blobs_uploaded;
    }
    hoist_image_copy_result_clear(&cr);
    return r < 0 ? hoist_err_wrap(err, "tag %s", name) : 0;
  }
  _cleanup_store_ hoist_store *s = NULL;
  hoist_descriptor d = {0};
  int r = hoist_store_open(src->dir, false, &s, err);
  if (r == 0)
    r = hoist_store_resolve(s, src->tag, &d, err);
  if (r == 0) {
    /* the entry's own tag goes; its other annotations stay */
    r = hoist_descriptor_set_annotation(&d, HOIST_ANNOTATION_REF_NAME, NULL, err);
    if (r == 0)
      r = hoist_store_tag(s, dst->tag, &d, err);
    if (r == 0)
      snprintf(res->digest, sizeof res->digest, "%s", d.digest);
  }
  hoist_descriptor_clear(&d);
  return r < 0 ? hoist_err_wrap(err, "tag %s", name) : 0;
}
