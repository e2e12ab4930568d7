/* Garbage collection of a layout: mark every blob reachable from index.json,
 * sweep the rest and stray temp files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "hoist/fs.h"
#include "hoist/map.h"
#include "store-private.h"

/* Temp files younger than this may belong to a writer still running. */
#define TMP_MAX_AGE_SECONDS 60
/* Guards against a hostile chain of indexes. */
#define MAX_DEPTH 32

/* The marked blobs: the set of their digests' hex, on the seeded map (the
 * names of a layout's blobs are chosen by whoever wrote its index). */
static int mark(hoist_store *s, hoist_map *set, json_t *desc, int depth, hoist_err **err);

/* Marks the descriptors a manifest or index document points to. */
HOIST_WUR static int mark_children(hoist_store *s, hoist_map *set, json_t *doc, int depth,
                                   hoist_err **err) {
  int r;
  json_t *arr, *item;
  size_t i;
  static const char *const lists[] = {"manifests", "layers"};
  for (size_t k = 0; k < sizeof lists / sizeof *lists; k++) {
    arr = json_object_get(doc, lists[k]);
    if (!json_is_array(arr))
      continue;
    json_array_foreach(arr, i, item) {
      if ((r = mark(s, set, item, depth + 1, err)) < 0)
        return r;
    }
  }
  if ((item = json_object_get(doc, "config")) && (r = mark(s, set, item, depth + 1, err)) < 0)
    return r;
  if ((item = json_object_get(doc, "subject")) && (r = mark(s, set, item, depth + 1, err)) < 0)
    return r;
  return 0;
}

/* Marks desc's blob and, for a manifest or index, everything it references.
 * A digest that is not a valid sha256 digest fails the whole collection:
 * deleting on the word of a document that cannot be understood is unsafe. */
HOIST_WUR static int mark(hoist_store *s, hoist_map *set, json_t *desc, int depth,
                          hoist_err **err) {
  if (depth > MAX_DEPTH)
    return hoist_err_set(err, HOIST_E_LIMIT, "references nested more than %d deep", MAX_DEPTH);
  if (!json_is_object(desc))
    return hoist_err_set(err, HOIST_E_FORMAT, "descriptor is not an object");
  const char *digest = json_string_value(json_object_get(desc, "digest"));
  const char *hex;
  int r = hoist_digest_parse(digest ? digest : "", &hex, err);
  if (r < 0)
    return hoist_err_wrap(err, "descriptor");
  if (!hoist_map_add(set, hex, HOIST_DIGEST_HEX_LEN, 0, NULL))
    return 0; /* marked already */
  const char *mt = json_string_value(json_object_get(desc, "mediaType"));
  hoist_media_kind kind = hoist_media_kind_of(mt ? mt : "");
  if (kind == HOIST_MEDIA_LAYER || kind == HOIST_MEDIA_CONFIG || !hoist_store_has_blob(s, digest))
    return 0;
  if (kind == HOIST_MEDIA_UNKNOWN) {
    /* an artifact manifest or an unlabelled document: follow it if it is a
     * JSON document of manifest shape, else it is a leaf */
    json_t *size = json_object_get(desc, "size");
    if (!json_is_integer(size) || json_integer_value(size) > (json_int_t)HOIST_MANIFEST_MAX)
      return 0;
  }
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  if ((r = hoist_store_read_blob(s, digest, HOIST_MANIFEST_MAX, &data, &len, err)) < 0) {
    if (kind == HOIST_MEDIA_UNKNOWN) {
      hoist_err_free(*err);
      *err = NULL;
      return 0;
    }
    return r;
  }
  json_error_t jerr;
  _cleanup_json_ json_t *doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!json_is_object(doc)) {
    if (kind == HOIST_MEDIA_UNKNOWN)
      return 0;
    return hoist_err_set(err, HOIST_E_FORMAT, "%s %s: not a JSON object", mt, digest);
  }
  if ((r = mark_children(s, set, doc, depth, err)) < 0)
    return hoist_err_wrap(err, "%s", digest);
  return 0;
}

int hoist_store_gc(hoist_store *s, int64_t min_age_seconds, uint64_t *removed,
                   uint64_t *freed_bytes, hoist_err **err) {
  if (removed)
    *removed = 0;
  if (freed_bytes)
    *freed_bytes = 0;
  _cleanup_close_ int lockfd = -1;
  int r;
  if ((r = store_lock(s, &lockfd, err)) < 0)
    return hoist_err_wrap(err, "gc %s", s->dir);
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  _cleanup_index_ hoist_index *ix = NULL;
  /* validate index.json with the model first, then walk its raw JSON */
  if ((r = store_read_index(s, &ix, err)) < 0)
    return hoist_err_wrap(err, "gc");
  if ((r = hoist_fs_read_file(s->dirfd, "index.json", HOIST_INDEX_JSON_MAX, &data, &len, err)) < 0)
    return hoist_err_wrap(err, "gc %s", s->dir);
  json_error_t jerr;
  _cleanup_json_ json_t *root = json_loadb(data, len, 0, &jerr);
  if (!root)
    return hoist_err_set(err, HOIST_E_FORMAT, "gc %s: index.json: %s", s->dir, jerr.text);

  _cleanup_map_ hoist_map set = HOIST_MAP_INIT;
  r = mark_children(s, &set, root, 0, err);
  if (r < 0)
    return hoist_err_wrap(err, "gc %s: refusing to collect", s->dir);
  if (s->blobsfd < 0)
    return 0;
  int dfd = fcntl(s->blobsfd, F_DUPFD_CLOEXEC, 3);
  DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
  if (!d) {
    if (dfd >= 0)
      close(dfd);
    return hoist_err_errno(err, errno, "gc %s: open blobs/sha256", s->dir);
  }
  rewinddir(d);
  time_t now = time(NULL);
  struct dirent *de;
  while ((de = readdir(d))) {
    const char *name = de->d_name;
    struct stat st;
    if (fstatat(s->blobsfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISDIR(st.st_mode))
      continue;
    bool is_tmp = strncmp(name, STORE_TMP_PREFIX, strlen(STORE_TMP_PREFIX)) == 0;
    if (is_tmp) {
      if (now - st.st_mtime < TMP_MAX_AGE_SECONDS)
        continue;
    } else {
      _cleanup_free_ char *digest = hoist_asprintf("sha256:%s", name);
      if (!hoist_digest_valid(digest) || hoist_map_get(&set, name, strlen(name), NULL))
        continue; /* reachable, or a file that is not ours to judge */
      if (now - st.st_mtime < min_age_seconds)
        continue; /* may belong to a writer that has not tagged yet */
    }
    if (unlinkat(s->blobsfd, name, 0) < 0) {
      if (errno == ENOENT)
        continue;
      r = hoist_err_errno(err, errno, "gc %s: remove blobs/sha256/%s", s->dir, name);
      break;
    }
    hoist_debug("gc %s: removed %s%s", s->dir, is_tmp ? "temp file " : "blob sha256:", name);
    if (removed)
      (*removed)++;
    if (freed_bytes)
      *freed_bytes += (uint64_t)st.st_size;
  }
  closedir(d);
  if (r == 0)
    fsync(s->blobsfd);
  return r;
}
