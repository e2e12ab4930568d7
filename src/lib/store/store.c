/* The OCI image layout store: layout files, blobs, and index.json tags. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "hoist/fs.h"
#include "store-private.h"

#define LAYOUT_FILE "oci-layout"
#define LAYOUT_JSON "{\"imageLayoutVersion\":\"1.0.0\"}"
#define INDEX_FILE "index.json"
#define LOCK_FILE ".index.json.lock"

HOIST_WUR static int check_layout_file(hoist_store *s, hoist_err **err) {
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  int r = hoist_fs_read_file(s->dirfd, LAYOUT_FILE, 4096, &data, &len, err);
  if (r < 0)
    return r;
  json_error_t jerr;
  _cleanup_json_ json_t *j = json_loadb(data, len, 0, &jerr);
  const char *v = json_string_value(json_object_get(j, "imageLayoutVersion"));
  if (!v)
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: not an oci-layout file", LAYOUT_FILE);
  if (strncmp(v, "1.", 2) != 0)
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: unsupported imageLayoutVersion %.40s",
                         LAYOUT_FILE, v);
  return 0;
}

int store_lock(hoist_store *s, int *lockfd, hoist_err **err) {
  int fd = openat(s->dirfd, LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0)
    return hoist_err_errno(err, errno, "open %s", LOCK_FILE);
  while (flock(fd, LOCK_EX) < 0) {
    if (errno == EINTR)
      continue;
    int e = errno;
    close(fd);
    return hoist_err_errno(err, e, "lock %s", LOCK_FILE);
  }
  *lockfd = fd;
  return 0;
}

/* A layout is only created in an empty directory (the lock file aside):
 * anything else there is someone else's. */
HOIST_WUR static int check_empty(hoist_store *s, hoist_err **err) {
  int fd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (!d) {
    if (fd >= 0)
      close(fd);
    return hoist_err_errno(err, errno, "open directory");
  }
  struct dirent *de;
  const char *other = NULL;
  while ((de = readdir(d)) && !other)
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
        strcmp(de->d_name, LOCK_FILE) != 0)
      other = de->d_name;
  int r = other
              ? hoist_err_set(err, EEXIST,
                              "directory is not empty and has no %s file: not an OCI image layout",
                              LAYOUT_FILE)
              : 0;
  closedir(d);
  return r;
}

/* Writes a fresh layout into s->dirfd. Runs under the lock, so of two
 * processes creating one layout only the first writes index.json. */
HOIST_WUR static int create_layout(hoist_store *s, hoist_err **err) {
  _cleanup_close_ int lockfd = -1;
  int r = store_lock(s, &lockfd, err);
  if (r < 0)
    return r;
  if (faccessat(s->dirfd, LAYOUT_FILE, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
    return check_layout_file(s, err);
  if ((r = check_empty(s, err)) < 0)
    return r;
  if (mkdirat(s->dirfd, "blobs", 0755) < 0 && errno != EEXIST)
    return hoist_err_errno(err, errno, "mkdir blobs");
  if (mkdirat(s->dirfd, "blobs/sha256", 0755) < 0 && errno != EEXIST)
    return hoist_err_errno(err, errno, "mkdir blobs/sha256");
  if (faccessat(s->dirfd, INDEX_FILE, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
    _cleanup_index_ hoist_index *ix = hoist_index_new(HOIST_MT_OCI_INDEX);
    if ((r = store_write_index(s, ix, err)) < 0)
      return r;
  }
  return hoist_fs_write_atomic(s->dirfd, LAYOUT_FILE, LAYOUT_JSON, strlen(LAYOUT_JSON), 0644, err);
}

int hoist_store_open(const char *dir, bool create, hoist_store **out, hoist_err **err) {
  *out = NULL;
  int r;
  if (!dir || !*dir)
    return hoist_err_set(err, EINVAL, "layout: empty directory name");
  /* dir and its parents are a user-given path */
  if (create && (r = hoist_fs_mkdir_p(AT_FDCWD, dir, 0755, NULL, err)) < 0)
    return hoist_err_wrap(err, "layout %s", dir);
  _cleanup_store_ hoist_store *s = hoist_malloc0(sizeof *s);
  s->dir = hoist_strdup(dir);
  s->blobsfd = -1;
  s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s->dirfd < 0)
    return hoist_err_errno(err, errno, "layout %s", dir);
  if (faccessat(s->dirfd, LAYOUT_FILE, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
    r = check_layout_file(s, err);
  else if (create)
    r = create_layout(s, err);
  else
    r = hoist_err_set(err, ENOENT, "no %s file: not an OCI image layout", LAYOUT_FILE);
  if (r < 0)
    return hoist_err_wrap(err, "layout %s", dir);
  /* blobs/sha256 may be missing in a layout with no blobs yet */
  s->blobsfd = hoist_fs_open_beneath(s->dirfd, "blobs/sha256", O_RDONLY | O_DIRECTORY, 0, NULL);
  *out = steal_pointer(&s);
  return 0;
}

void hoist_store_close(hoist_store *s) {
  if (!s)
    return;
  if (s->dirfd >= 0)
    close(s->dirfd);
  if (s->blobsfd >= 0)
    close(s->blobsfd);
  free(s->dir);
  free(s);
}

const char *hoist_store_dir(const hoist_store *s) { return s->dir; }

int store_blobs_dir(hoist_store *s, hoist_err **err) {
  if (s->blobsfd >= 0)
    return s->blobsfd;
  if (mkdirat(s->dirfd, "blobs", 0755) < 0 && errno != EEXIST)
    return hoist_err_errno(err, errno, "mkdir blobs");
  if (mkdirat(s->dirfd, "blobs/sha256", 0755) < 0 && errno != EEXIST)
    return hoist_err_errno(err, errno, "mkdir blobs/sha256");
  int fd = hoist_fs_open_beneath(s->dirfd, "blobs/sha256", O_RDONLY | O_DIRECTORY, 0, err);
  if (fd < 0)
    return fd;
  s->blobsfd = fd;
  return fd;
}

/* ---------------------------------------------------------------- blobs */

bool hoist_store_has_blob(hoist_store *s, const char *digest) {
  const char *hex;
  struct stat st;
  if (!digest || hoist_digest_parse(digest, &hex, NULL) < 0 || s->blobsfd < 0)
    return false;
  return fstatat(s->blobsfd, hex, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

bool hoist_store_touch_blob(hoist_store *s, const char *digest) {
  if (!hoist_store_has_blob(s, digest))
    return false;
  /* best effort: a read-only layout still has the blob */
  (void)utimensat(s->blobsfd, digest + strlen("sha256:"), NULL, AT_SYMLINK_NOFOLLOW);
  return true;
}

int hoist_store_open_blob(hoist_store *s, const char *digest, int *fd, uint64_t *size,
                          hoist_err **err) {
  *fd = -1;
  const char *hex;
  int r = hoist_digest_parse(digest, &hex, err);
  if (r < 0)
    return hoist_err_wrap(err, "blob");
  if (s->blobsfd < 0)
    return hoist_err_set(err, ENOENT, "blob %s: not in layout %s", digest, s->dir);
  _cleanup_close_ int f = openat(s->blobsfd, hex, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (f < 0) {
    if (errno == ENOENT)
      return hoist_err_set(err, ENOENT, "blob %s: not in layout %s", digest, s->dir);
    return hoist_err_errno(err, errno, "blob %s", digest);
  }
  struct stat st;
  if (fstat(f, &st) < 0)
    return hoist_err_errno(err, errno, "blob %s", digest);
  if (!S_ISREG(st.st_mode))
    return hoist_err_set(err, HOIST_E_UNSAFE, "blob %s: not a regular file", digest);
  if (size)
    *size = (uint64_t)st.st_size;
  *fd = steal_fd(&f);
  return 0;
}

int hoist_store_read_blob(hoist_store *s, const char *digest, size_t max, char **data, size_t *len,
                          hoist_err **err) {
  *data = NULL;
  _cleanup_close_ int fd = -1;
  uint64_t size = 0;
  int r = hoist_store_open_blob(s, digest, &fd, &size, err);
  if (r < 0)
    return r;
  if (size > max)
    return hoist_err_set(err, HOIST_E_LIMIT, "blob %s: %llu bytes is over the limit of %zu", digest,
                         (unsigned long long)size, max);
  _cleanup_free_ char *name = hoist_asprintf("blob %s", digest);
  _cleanup_free_ char *content = NULL;
  size_t n = 0;
  if ((r = hoist_fs_read_fd(fd, max ? max : 1, name, &content, &n, err)) < 0)
    return r;
  char got[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of(content, n, got);
  if (strcmp(got, digest) != 0)
    return hoist_err_set(err, HOIST_E_DIGEST, "blob %s: content has digest %s: digest mismatch",
                         digest, got);
  if (len)
    *len = n;
  *data = steal_pointer(&content);
  return 0;
}

typedef struct store_writer {
  hoist_writer base;
  hoist_store *s;
  int fd;
  char *tmpname;
  hoist_sha256 *sha;
  uint64_t written;
  char *expected_digest;
  int64_t expected_size;
  bool done;
} store_writer;

HOIST_WUR static int sw_write(hoist_writer *w, const void *data, size_t len, hoist_err **err) {
  store_writer *sw = (store_writer *)w;
  if (sw->done || sw->fd < 0)
    return hoist_err_set(err, EINVAL, "blob writer: already committed or failed");
  if (sw->expected_size >= 0 && sw->written + len > (uint64_t)sw->expected_size)
    return hoist_err_set(err, HOIST_E_DIGEST, "blob %s: more than the expected %lld bytes",
                         sw->expected_digest ? sw->expected_digest : "",
                         (long long)sw->expected_size);
  int r = hoist_fs_write_all(sw->fd, data, len, err);
  if (r < 0)
    return hoist_err_wrap(err, "blob: write %s", sw->tmpname);
  hoist_sha256_update(sw->sha, data, len);
  sw->written += len;
  return 0;
}

HOIST_WUR static int sw_commit(hoist_writer *w, char digest_out[HOIST_DIGEST_STR_LEN],
                               uint64_t *size_out, hoist_err **err) {
  store_writer *sw = (store_writer *)w;
  if (sw->done || sw->fd < 0)
    return hoist_err_set(err, EINVAL, "blob writer: already committed or failed");
  char got[HOIST_DIGEST_STR_LEN];
  hoist_sha256_final(sw->sha, got);
  sw->done = true; /* one commit attempt; failure discards the content in free() */
  if (sw->expected_size >= 0 && sw->written != (uint64_t)sw->expected_size)
    return hoist_err_set(err, HOIST_E_DIGEST, "blob %s: got %llu bytes, expected %lld",
                         sw->expected_digest ? sw->expected_digest : got,
                         (unsigned long long)sw->written, (long long)sw->expected_size);
  if (sw->expected_digest && strcmp(got, sw->expected_digest) != 0)
    return hoist_err_set(err, HOIST_E_DIGEST, "blob %s: content has digest %s: digest mismatch",
                         sw->expected_digest, got);
  if (fsync(sw->fd) < 0)
    return hoist_err_errno(err, errno, "blob %s: fsync", got);
  int bfd = sw->s->blobsfd;
  const char *hex = got + strlen("sha256:");
  /* link, not rename: of two writers of one digest the first file stays,
   * and a reader never sees the name swap under it */
  if (linkat(bfd, sw->tmpname, bfd, hex, 0) < 0) {
    if (errno != EEXIST)
      return hoist_err_errno(err, errno, "blob %s: link", got);
    (void)utimensat(bfd, hex, NULL, AT_SYMLINK_NOFOLLOW); /* reused: restart gc's grace */
  }
  unlinkat(bfd, sw->tmpname, 0);
  free(sw->tmpname);
  sw->tmpname = NULL;
  fsync(bfd);
  if (digest_out)
    memcpy(digest_out, got, HOIST_DIGEST_STR_LEN);
  if (size_out)
    *size_out = sw->written;
  return 0;
}

static void sw_free(hoist_writer *w) {
  store_writer *sw = (store_writer *)w;
  if (!sw)
    return;
  if (sw->tmpname)
    unlinkat(sw->s->blobsfd, sw->tmpname, 0);
  if (sw->fd >= 0)
    close(sw->fd);
  hoist_sha256_free(sw->sha);
  free(sw->tmpname);
  free(sw->expected_digest);
  free(sw);
}

static const hoist_writer_ops store_writer_ops = {
    .write = sw_write,
    .commit = sw_commit,
    .free = sw_free,
};

int hoist_store_blob_writer(hoist_store *s, const char *expected_digest, int64_t expected_size,
                            hoist_writer **out, hoist_err **err) {
  *out = NULL;
  int r;
  if (expected_digest && (r = hoist_digest_parse(expected_digest, NULL, err)) < 0)
    return hoist_err_wrap(err, "blob writer");
  int bfd = store_blobs_dir(s, err);
  if (bfd < 0)
    return hoist_err_wrap(err, "layout %s", s->dir);
  static unsigned long counter;
  store_writer *sw = hoist_malloc0(sizeof *sw);
  sw->base.ops = &store_writer_ops;
  sw->s = s;
  sw->expected_digest = expected_digest ? hoist_strdup(expected_digest) : NULL;
  sw->expected_size = expected_size;
  sw->sha = hoist_sha256_new();
  sw->tmpname = hoist_asprintf("%s%d-%lu", STORE_TMP_PREFIX, (int)getpid(),
                               __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
  sw->fd = openat(bfd, sw->tmpname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (sw->fd < 0) {
    r = hoist_err_errno(err, errno, "layout %s: create blob temp file", s->dir);
    free(sw->tmpname);
    sw->tmpname = NULL;
    sw_free(&sw->base);
    return r;
  }
  *out = &sw->base;
  return 0;
}

int hoist_store_put_blob(hoist_store *s, const void *data, size_t len, const char *expected_digest,
                         char digest_out[HOIST_DIGEST_STR_LEN], hoist_err **err) {
  _cleanup_writer_ hoist_writer *w = NULL;
  int r = hoist_store_blob_writer(s, expected_digest, (int64_t)len, &w, err);
  if (r < 0)
    return r;
  if ((r = hoist_writer_write(w, data, len, err)) < 0 ||
      (r = hoist_writer_commit(w, digest_out, NULL, err)) < 0)
    return r;
  return 0;
}

/* ----------------------------------------------------------------- tags */

int store_read_index(hoist_store *s, hoist_index **out, hoist_err **err) {
  *out = NULL;
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  int r = hoist_fs_read_file(s->dirfd, INDEX_FILE, HOIST_INDEX_JSON_MAX, &data, &len, err);
  if (r < 0 || (r = hoist_index_parse(data, len, out, err)) < 0)
    return hoist_err_wrap(err, "layout %s: %s", s->dir, INDEX_FILE);
  return 0;
}

int store_write_index(hoist_store *s, hoist_index *ix, hoist_err **err) {
  if (!ix->media_type)
    ix->media_type = hoist_strdup(HOIST_MT_OCI_INDEX);
  _cleanup_free_ char *json = NULL;
  size_t len = 0;
  int r = hoist_index_to_json(ix, &json, &len, err);
  if (r < 0 || (r = hoist_fs_write_atomic(s->dirfd, INDEX_FILE, json, len, 0644, err)) < 0)
    return hoist_err_wrap(err, "layout %s: write %s", s->dir, INDEX_FILE);
  return 0;
}

int hoist_store_index(hoist_store *s, hoist_index **out, hoist_err **err) {
  return store_read_index(s, out, err);
}

static bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool hoist_store_tag_valid(const char *tag) {
  size_t n = tag ? strlen(tag) : 0;
  if (n == 0 || n > 255 || !is_alnum(tag[0]) || !is_alnum(tag[n - 1]))
    return false;
  for (size_t i = 0; i < n; i++)
    if (!is_alnum(tag[i]) && !strchr("-._:@+/", tag[i]))
      return false;
  return true;
}

static ssize_t find_tag(const hoist_index *ix, const char *tag) {
  for (size_t i = 0; i < ix->n_manifests; i++) {
    const char *name = hoist_descriptor_annotation(&ix->manifests[i], HOIST_ANNOTATION_REF_NAME);
    if (name && strcmp(name, tag) == 0)
      return (ssize_t)i;
  }
  return -1;
}

int hoist_store_tag(hoist_store *s, const char *tag, const hoist_descriptor *desc,
                    hoist_err **err) {
  int r;
  if (!hoist_store_tag_valid(tag))
    return hoist_err_set(err, HOIST_E_FORMAT, "layout %s: invalid tag \"%.80s\"", s->dir,
                         tag ? tag : "");
  if (!desc || !desc->media_type || (r = hoist_digest_parse(desc->digest, NULL, err)) < 0)
    return hoist_err_set(err, EINVAL, "layout %s: tag %s: invalid descriptor", s->dir, tag);
  if (!hoist_store_has_blob(s, desc->digest))
    return hoist_err_set(err, ENOENT, "layout %s: tag %s: blob %s is not in the layout", s->dir,
                         tag, desc->digest);
  {
    _cleanup_close_ int fd = -1;
    uint64_t size = 0;
    if ((r = hoist_store_open_blob(s, desc->digest, &fd, &size, err)) < 0)
      return hoist_err_wrap(err, "layout %s: tag %s", s->dir, tag);
    if (size != (uint64_t)desc->size)
      return hoist_err_set(err, HOIST_E_DIGEST,
                           "layout %s: tag %s: blob %s is %llu bytes, descriptor says %lld", s->dir,
                           tag, desc->digest, (unsigned long long)size, (long long)desc->size);
  }
  _cleanup_close_ int lockfd = -1;
  if ((r = store_lock(s, &lockfd, err)) < 0)
    return hoist_err_wrap(err, "layout %s", s->dir);
  _cleanup_index_ hoist_index *ix = NULL;
  if ((r = store_read_index(s, &ix, err)) < 0)
    return r;
  for (ssize_t i; (i = find_tag(ix, tag)) >= 0;)
    hoist_index_remove(ix, (size_t)i);
  hoist_descriptor d;
  hoist_descriptor_copy(&d, desc);
  if ((r = hoist_descriptor_set_annotation(&d, HOIST_ANNOTATION_REF_NAME, tag, err)) < 0) {
    hoist_descriptor_clear(&d);
    return hoist_err_wrap(err, "layout %s: tag %s", s->dir, tag);
  }
  hoist_index_add(ix, &d);
  hoist_descriptor_clear(&d);
  return store_write_index(s, ix, err);
}

int hoist_store_untag(hoist_store *s, const char *tag, hoist_err **err) {
  _cleanup_close_ int lockfd = -1;
  int r;
  if ((r = store_lock(s, &lockfd, err)) < 0)
    return hoist_err_wrap(err, "layout %s", s->dir);
  _cleanup_index_ hoist_index *ix = NULL;
  if ((r = store_read_index(s, &ix, err)) < 0)
    return r;
  if (find_tag(ix, tag) < 0)
    return hoist_err_set(err, ENOENT, "layout %s: tag %s not found", s->dir, tag);
  for (ssize_t i; (i = find_tag(ix, tag)) >= 0;)
    hoist_index_remove(ix, (size_t)i);
  return store_write_index(s, ix, err);
}

int hoist_store_untag_digest(hoist_store *s, const char *digest, char ***tags, hoist_err **err) {
  *tags = NULL;
  _cleanup_close_ int lockfd = -1;
  int r;
  if ((r = hoist_digest_parse(digest, NULL, err)) < 0)
    return hoist_err_wrap(err, "layout %s: untag", s->dir);
  if ((r = store_lock(s, &lockfd, err)) < 0)
    return hoist_err_wrap(err, "layout %s", s->dir);
  _cleanup_index_ hoist_index *ix = NULL;
  if ((r = store_read_index(s, &ix, err)) < 0)
    return r;
  _cleanup_strv_ hoist_strv removed = HOIST_STRV_INIT;
  bool found = false;
  for (size_t i = ix->n_manifests; i-- > 0;) {
    const hoist_descriptor *d = &ix->manifests[i];
    if (strcmp(d->digest, digest) != 0)
      continue;
    const char *name = hoist_descriptor_annotation(d, HOIST_ANNOTATION_REF_NAME);
    if (name)
      hoist_strv_add(&removed, name);
    hoist_index_remove(ix, i);
    found = true;
  }
  if (!found)
    return hoist_err_set(err, ENOENT, "layout %s: no entry with digest %s", s->dir, digest);
  if ((r = store_write_index(s, ix, err)) < 0)
    return r;
  *tags = hoist_strv_steal(&removed);
  return 0;
}

int hoist_store_resolve(hoist_store *s, const char *tag, hoist_descriptor *out, hoist_err **err) {
  memset(out, 0, sizeof *out);
  _cleanup_index_ hoist_index *ix = NULL;
  int r = store_read_index(s, &ix, err);
  if (r < 0)
    return r;
  if (!tag) {
    if (ix->n_manifests != 1)
      return hoist_err_set(err, ENOENT, "layout %s: index.json has %zu entries: name a tag", s->dir,
                           ix->n_manifests);
    hoist_descriptor_copy(out, &ix->manifests[0]);
    return 0;
  }
  ssize_t i = find_tag(ix, tag);
  if (i < 0)
    return hoist_err_set(err, ENOENT, "layout %s: tag %s not found", s->dir, tag);
  hoist_descriptor_copy(out, &ix->manifests[i]);
  return 0;
}
