/* The oci-archive driver of the transport (see transport.h): a tar of an
 * OCI image layout, as skopeo reads and writes it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "archive-private.h"
#include "hoist/fs.h"

#define LAYOUT_FILE_MAX 4096u /* oci-layout: {"imageLayoutVersion": "1.0.0"} */

/* ------------------------------------------------------------- reading */

/* "blobs/sha256/<hex>" as "sha256:<hex>", or false. */
static bool blob_name(const char *name, char digest[HOIST_DIGEST_STR_LEN]) {
  static const char prefix[] = "blobs/sha256/";
  const char *hex = name + sizeof prefix - 1;
  if (strncmp(name, prefix, sizeof prefix - 1) != 0 || strlen(hex) != HOIST_DIGEST_HEX_LEN)
    return false;
  snprintf(digest, HOIST_DIGEST_STR_LEN, "sha256:%s", hex);
  return hoist_digest_valid(digest);
}

/* One pass: blobs into the stage (each verified against its name),
 * index.json and oci-layout into memory; anything else is skipped. */
HOIST_WUR static int extract(const char *path, arc_stage *st, hoist_err **err) {
  arc_reader r;
  if (arc_reader_open(path, &r, err) < 0)
    return -1;
  arc_member m = {0};
  _cleanup_free_ char *index = NULL;
  _cleanup_free_ char *layout = NULL;
  size_t index_len = 0, layout_len = 0;
  int ret;
  char digest[HOIST_DIGEST_STR_LEN];
  while ((ret = arc_reader_next(&r, &m, err)) == 1) {
    bool blob = blob_name(m.name, digest);
    if (m.type == ARC_SYMLINK && (blob || strcmp(m.name, "index.json") == 0)) {
      ret = hoist_err_set(err, HOIST_E_FORMAT, "%s: member %.256s: a symlink", path, m.name);
      break;
    }
    if (m.type != ARC_FILE)
      continue;
    if (strcmp(m.name, "index.json") == 0 || strcmp(m.name, "oci-layout") == 0) {
      bool is_index = m.name[0] == 'i';
      if (is_index ? index != NULL : layout != NULL) {
        ret = hoist_err_set(err, HOIST_E_FORMAT, "%s: member %s appears twice", path, m.name);
        break;
      }
      ret = is_index
                ? arc_reader_read_all(&r, HOIST_INDEX_JSON_MAX, "index.json (HOIST_INDEX_JSON_MAX)",
                                      &index, &index_len, err)
                : arc_reader_read_all(&r, LAYOUT_FILE_MAX, "oci-layout", &layout, &layout_len, err);
    } else if (blob) {
      hoist_writer *w = NULL;
      ret = hoist_store_blob_writer(st->store, digest, m.size, &w, err);
      if (ret == 0) {
        char got[HOIST_DIGEST_STR_LEN];
        ret = arc_reader_copy(&r, w, err);
        if (ret == 0)
          ret = hoist_writer_commit(w, got, NULL, err);
        hoist_writer_free(w);
      }
      if (ret < 0)
        hoist_err_wrap(err, "%s: member %s", path, m.name);
    } else {
      hoist_debug("%s: member %.256s skipped: not part of an OCI layout", path, m.name);
    }
    if (ret < 0)
      break;
  }
  arc_member_clear(&m);
  arc_reader_close(&r);
  if (ret < 0)
    return -1;
  if (!layout || !strstr(layout, "\"imageLayoutVersion\""))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: no oci-layout file: not an OCI archive", path);
  if (!index)
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: no index.json: not an OCI archive", path);
  _cleanup_index_ hoist_index *ix = NULL;
  if (hoist_index_parse(index, index_len, &ix, err) < 0)
    return hoist_err_wrap(err, "%s: index.json", path);
  _cleanup_close_ int dfd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return hoist_err_errno(err, errno, "open %s", st->dir);
  return hoist_fs_write_atomic(dfd, "index.json", index, index_len, 0644, err);
}

int arc_oci_source(const hoist_transport_opts *o, const hoist_loc *loc,
                   hoist_transport_source **out, hoist_err **err) {
  _cleanup_free_ char *name = hoist_loc_string(loc);
  arc_stage st;
  if (arc_stage_open(o->tmp_dir, &st, err) < 0)
    return hoist_err_wrap(err, "%s", name);
  if (extract(loc->path, &st, err) < 0) {
    arc_stage_close(&st);
    return -1;
  }
  return arc_staged_source(&st, loc->tag, name, out, err);
}

/* ------------------------------------------------------------- writing */

typedef struct oci_target {
  hoist_transport_target base;
  hoist_transport_target *inner; /* a layout target on the stage */
  arc_stage st;
  char *path;
} oci_target;

#define INNER(t) (((oci_target *)(t))->inner)

HOIST_WUR static int ot_has_blob(hoist_transport_target *t, const hoist_descriptor *d, bool *has,
                                 hoist_err **err) {
  return INNER(t)->ops->has_blob(INNER(t), d, has, err);
}

HOIST_WUR static int ot_blob_writer(hoist_transport_target *t, const char *digest, int64_t size,
                                    hoist_writer **out, hoist_err **err) {
  return INNER(t)->ops->blob_writer(INNER(t), digest, size, out, err);
}

HOIST_WUR static int ot_put_manifest(hoist_transport_target *t, const char *reference,
                                     const char *data, size_t len, const char *media_type,
                                     hoist_err **err) {
  return INNER(t)->ops->put_manifest(INNER(t), reference, data, len, media_type, err);
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The stage's blobs/sha256 names, sorted. */
HOIST_WUR static int blob_names(const char *dir, hoist_strv *out, hoist_err **err) {
  _cleanup_free_ char *p = hoist_asprintf("%s/blobs/sha256", dir);
  int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (!d) {
    int e = errno;
    if (fd >= 0)
      close(fd);
    return hoist_err_errno(err, e, "open %s", p);
  }
  char digest[HOIST_DIGEST_STR_LEN];
  for (struct dirent *de; (de = readdir(d));) {
    _cleanup_free_ char *name = hoist_asprintf("blobs/sha256/%s", de->d_name);
    if (blob_name(name, digest)) /* not temp files */
      hoist_strv_add(out, de->d_name);
  }
  closedir(d);
  if (out->n)
    qsort(out->v, out->n, sizeof *out->v, cmp_names);
  return 0;
}

/* The stage tarred as skopeo lays it out: blobs/, blobs/sha256/, the blobs,
 * index.json, oci-layout. */
HOIST_WUR static int write_archive(oci_target *ot, arc_writer *aw, hoist_err **err) {
  _cleanup_strv_ hoist_strv names = HOIST_STRV_INIT;
  if (blob_names(ot->st.dir, &names, err) < 0 || arc_writer_add_dir(aw, "blobs/", err) < 0 ||
      arc_writer_add_dir(aw, "blobs/sha256/", err) < 0)
    return -1;
  for (size_t i = 0; i < names.n; i++) {
    _cleanup_free_ char *digest = hoist_asprintf("sha256:%s", names.v[i]);
    _cleanup_free_ char *member = hoist_asprintf("blobs/sha256/%s", names.v[i]);
    _cleanup_close_ int fd = -1;
    uint64_t size = 0;
    if (hoist_store_open_blob(ot->st.store, digest, &fd, &size, err) < 0 ||
        arc_writer_add_fd(aw, member, fd, size, err) < 0)
      return -1;
  }
  static const char *const files[] = {"index.json", "oci-layout"};
  for (size_t i = 0; i < 2; i++) {
    _cleanup_free_ char *p = hoist_asprintf("%s/%s", ot->st.dir, files[i]);
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    if (hoist_fs_read_file(AT_FDCWD, p, HOIST_INDEX_JSON_MAX, &data, &len, err) < 0 ||
        arc_writer_add_bytes(aw, files[i], data, len, err) < 0)
      return -1;
  }
  return 0;
}

HOIST_WUR static int ot_commit(hoist_transport_target *t, hoist_err **err) {
  oci_target *ot = (oci_target *)t;
  arc_writer aw;
  int ret = arc_writer_open(ot->path, &aw, err);
  if (ret == 0 && (ret = write_archive(ot, &aw, err)) == 0)
    ret = arc_writer_commit(&aw, err);
  arc_writer_close(&aw);
  if (ret < 0)
    return hoist_err_wrap(err, "oci-archive:%s", ot->path);
  return 0;
}

static void ot_free(hoist_transport_target *t) {
  oci_target *ot = (oci_target *)t;
  hoist_transport_target_free(ot->inner);
  arc_stage_close(&ot->st);
  free(ot->path);
  free(ot);
}

static const hoist_transport_target_ops oci_target_ops = {
    .has_blob = ot_has_blob,
    .blob_writer = ot_blob_writer,
    .put_manifest = ot_put_manifest,
    .commit = ot_commit,
    .free = ot_free,
};

int arc_oci_target(const hoist_transport_opts *o, const hoist_loc *loc,
                   hoist_transport_target **out, hoist_err **err) {
  if (!loc->tag)
    return hoist_err_set(err, EINVAL, "oci-archive:%s: a target needs a tag (oci-archive:PATH:TAG)",
                         loc->path);
  oci_target *ot = hoist_malloc0(sizeof *ot);
  if (arc_stage_open(o->tmp_dir, &ot->st, err) < 0 ||
      hoist_transport_layout_target(ot->st.dir, loc->tag, &ot->inner, err) < 0) {
    arc_stage_close(&ot->st);
    free(ot);
    return hoist_err_wrap(err, "oci-archive:%s", loc->path);
  }
  ot->base.ops = &oci_target_ops;
  ot->path = hoist_strdup(loc->path);
  *out = &ot->base;
  return 0;
}
