#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "hoist/fs.h"
#include "image_util.h"
#include "test_util.h"

typedef struct fixture {
  char *dir;
  hoist_store *s;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = test_mkdtemp();
  hoist_err *err = NULL;
  _cleanup_free_ char *layout = hoist_asprintf("%s/layout", f->dir);
  if (hoist_store_open(layout, true, &f->s, &err) < 0)
    return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  hoist_store_close(f->s);
  assert_int_equal(hoist_fs_rm_rf_at(AT_FDCWD, f->dir, NULL), 0);
  free(f->dir);
  free(f);
  return 0;
}

static char *blob_path(fixture *f, const char *name) {
  return hoist_asprintf("%s/blobs/sha256/%s", hoist_store_dir(f->s), name);
}

/* Names in blobs/sha256, counted by kind. */
static void count_blob_files(fixture *f, int *blobs, int *temps) {
  *blobs = *temps = 0;
  _cleanup_free_ char *p = blob_path(f, "");
  DIR *d = opendir(p);
  assert_non_null(d);
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.' && strncmp(de->d_name, ".tmp-", 5) != 0)
      continue;
    if (strncmp(de->d_name, ".tmp-", 5) == 0)
      (*temps)++;
    else
      (*blobs)++;
  }
  closedir(d);
}

static void write_file(const char *path, const char *content) {
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(content, fp);
  fclose(fp);
}

static void test_open_creates_layout(void **state) {
  fixture *f = *state;
  _cleanup_free_ char *p = hoist_asprintf("%s/oci-layout", hoist_store_dir(f->s));
  _cleanup_free_ char *data = NULL;
  hoist_err *err = NULL;
  assert_ok(hoist_fs_read_file(AT_FDCWD, p, 4096, &data, NULL, &err), &err);
  assert_string_equal(data, "{\"imageLayoutVersion\":\"1.0.0\"}");
  _cleanup_index_ hoist_index *ix = NULL;
  assert_ok(hoist_store_index(f->s, &ix, &err), &err);
  assert_int_equal(ix->schema_version, 2);
  assert_string_equal(ix->media_type, HOIST_MT_OCI_INDEX);
  assert_int_equal(ix->n_manifests, 0);

  /* an existing directory that is not a layout is refused without create */
  hoist_store *s = NULL;
  assert_true(hoist_store_open(f->dir, false, &s, &err) < 0);
  assert_err_contains(&err, "not an OCI image layout");
  /* nor is one that is not empty with create */
  assert_true(hoist_store_open(f->dir, true, &s, &err) < 0);
  assert_err_contains(&err, "not empty");
  assert_int_equal(faccessat(AT_FDCWD, f->dir, F_OK, 0), 0);
  _cleanup_free_ char *stray = hoist_asprintf("%s/oci-layout", f->dir);
  assert_int_equal(access(stray, F_OK), -1);
  /* an empty directory becomes a layout */
  _cleanup_free_ char *empty = hoist_asprintf("%s/empty", f->dir);
  assert_int_equal(mkdir(empty, 0755), 0);
  assert_ok(hoist_store_open(empty, true, &s, &err), &err);
  hoist_store_close(s);
  s = NULL;
  /* a wrong oci-layout file is refused even with create */
  write_file(p, "{\"imageLayoutVersion\":\"2.0.0\"}");
  assert_true(hoist_store_open(hoist_store_dir(f->s), true, &s, &err) < 0);
  assert_err_contains(&err, "unsupported imageLayoutVersion");
}

static void test_put_get_has(void **state) {
  fixture *f = *state;
  hoist_err *err = NULL;
  const char *content = "some blob content";
  char want[HOIST_DIGEST_STR_LEN], got[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of(content, strlen(content), want);
  assert_false(hoist_store_has_blob(f->s, want));
  assert_ok(hoist_store_put_blob(f->s, content, strlen(content), want, got, &err), &err);
  assert_string_equal(got, want);
  assert_true(hoist_store_has_blob(f->s, want));
  /* putting it again is fine and changes nothing */
  assert_ok(hoist_store_put_blob(f->s, content, strlen(content), NULL, got, &err), &err);

  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  assert_ok(hoist_store_read_blob(f->s, want, 1024, &data, &len, &err), &err);
  assert_int_equal(len, strlen(content));
  assert_memory_equal(data, content, len);
  int fd = -1;
  uint64_t size = 0;
  assert_ok(hoist_store_open_blob(f->s, want, &fd, &size, &err), &err);
  assert_int_equal(size, strlen(content));
  close(fd);
  /* limit */
  char *small = NULL;
  assert_true(hoist_store_read_blob(f->s, want, 4, &small, &len, &err) < 0);
  assert_err_contains(&err, "over the limit");
  /* a missing blob and a malformed digest */
  assert_true(
      hoist_store_read_blob(f->s,
                            "sha256:"
                            "0000000000000000000000000000000000000000000000000000000000000000",
                            1024, &small, &len, &err) < 0);
  assert_err_contains(&err, "not in layout");
  assert_false(hoist_store_has_blob(f->s, "sha256:../../oci-layout"));
  assert_true(hoist_store_open_blob(f->s, "sha256:../../oci-layout", &fd, &size, &err) < 0);
  assert_err_contains(&err, "64 hex digits");

  /* a blob corrupted on disk is caught by read_blob */
  const char *hex = want + 7;
  _cleanup_free_ char *p = blob_path(f, hex);
  chmod(p, 0644);
  write_file(p, "tampered content!");
  assert_true(hoist_store_read_blob(f->s, want, 1024, &small, &len, &err) < 0);
  assert_err_contains(&err, "digest mismatch");
}

static void test_mismatch_stores_nothing(void **state) {
  fixture *f = *state;
  hoist_err *err = NULL;
  const char *content = "the real content";
  char other[HOIST_DIGEST_STR_LEN], real[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of("something else", 14, other);
  hoist_sha256_of(content, strlen(content), real);
  assert_true(hoist_store_put_blob(f->s, content, strlen(content), other, NULL, &err) < 0);
  assert_int_equal(hoist_err_root_code(err), HOIST_E_DIGEST);
  assert_err_contains(&err, "digest mismatch");
  assert_false(hoist_store_has_blob(f->s, real));
  assert_false(hoist_store_has_blob(f->s, other));

  /* size: too few bytes fail at commit, too many at write */
  hoist_writer *w = NULL;
  assert_ok(hoist_store_blob_writer(f->s, NULL, 100, &w, &err), &err);
  assert_ok(hoist_writer_write(w, content, strlen(content), &err), &err);
  assert_true(hoist_writer_commit(w, NULL, NULL, &err) < 0);
  assert_err_contains(&err, "expected 100");
  hoist_writer_free(w);
  assert_ok(hoist_store_blob_writer(f->s, real, 3, &w, &err), &err);
  assert_true(hoist_writer_write(w, content, strlen(content), &err) < 0);
  assert_err_contains(&err, "more than the expected 3 bytes");
  hoist_writer_free(w);
  /* a writer freed without commit discards its content */
  assert_ok(hoist_store_blob_writer(f->s, NULL, -1, &w, &err), &err);
  assert_ok(hoist_writer_write(w, content, strlen(content), &err), &err);
  hoist_writer_free(w);

  int blobs, temps;
  count_blob_files(f, &blobs, &temps);
  assert_int_equal(blobs, 0);
  assert_int_equal(temps, 0);
  assert_false(hoist_store_has_blob(f->s, real));
}

static void test_crash_before_commit(void **state) {
  fixture *f = *state;
  hoist_err *err = NULL;
  const char *content = "written by a process that dies";
  char d[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of(content, strlen(content), d);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    hoist_writer *w = NULL;
    if (hoist_store_blob_writer(f->s, d, (int64_t)strlen(content), &w, NULL) < 0 ||
        hoist_writer_write(w, content, strlen(content), NULL) < 0)
      _exit(1);
    _exit(0); /* dies between the temp write and the commit */
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_false(hoist_store_has_blob(f->s, d));
  int blobs, temps;
  count_blob_files(f, &blobs, &temps);
  assert_int_equal(blobs, 0);
  assert_int_equal(temps, 1);

  /* a young temp file may belong to a live writer: gc keeps it */
  uint64_t removed = 0, freed = 0;
  assert_ok(hoist_store_gc(f->s, 0, &removed, &freed, &err), &err);
  assert_int_equal(removed, 0);
  count_blob_files(f, &blobs, &temps);
  assert_int_equal(temps, 1);
  /* once it is old, gc removes it */
  _cleanup_free_ char *dir = blob_path(f, "");
  DIR *dp = opendir(dir);
  struct dirent *de;
  while ((de = readdir(dp)))
    if (strncmp(de->d_name, ".tmp-", 5) == 0) {
      struct timespec old[2] = {{.tv_sec = time(NULL) - 3600}, {.tv_sec = time(NULL) - 3600}};
      assert_int_equal(utimensat(dirfd(dp), de->d_name, old, 0), 0);
    }
  closedir(dp);
  assert_ok(hoist_store_gc(f->s, 0, &removed, &freed, &err), &err);
  assert_int_equal(removed, 1);
  assert_int_equal(freed, strlen(content));
  count_blob_files(f, &blobs, &temps);
  assert_int_equal(temps, 0);
  /* the layout still works */
  assert_ok(hoist_store_put_blob(f->s, content, strlen(content), d, NULL, &err), &err);
  assert_true(hoist_store_has_blob(f->s, d));
}

static void test_concurrent_puts(void **state) {
  fixture *f = *state;
  hoist_err *err = NULL;
  enum { N = 8, SIZE = 1 << 20 };
  char *content = malloc(SIZE);
  for (size_t i = 0; i < SIZE; i++)
    content[i] = (char)(i * 7 + i / 4096);
  char d[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of(content, SIZE, d);
  pid_t pids[N];
  for (int i = 0; i < N; i++) {
    pids[i] = fork();
    assert_true(pids[i] >= 0);
    if (pids[i] == 0) {
      /* each child opens its own store and streams in 64 KiB pieces */
      hoist_store *s = NULL;
      hoist_writer *w = NULL;
      if (hoist_store_open(hoist_store_dir(f->s), false, &s, NULL) < 0 ||
          hoist_store_blob_writer(s, d, SIZE, &w, NULL) < 0)
        _exit(1);
      for (size_t off = 0; off < SIZE; off += 65536)
        if (hoist_writer_write(w, content + off, 65536, NULL) < 0)
          _exit(1);
      if (hoist_writer_commit(w, NULL, NULL, NULL) < 0)
        _exit(1);
      _exit(0);
    }
  }
  for (int i = 0; i < N; i++) {
    int status;
    assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  int blobs, temps;
  count_blob_files(f, &blobs, &temps);
  assert_int_equal(blobs, 1);
  assert_int_equal(temps, 0);
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  assert_ok(hoist_store_read_blob(f->s, d, SIZE, &data, &len, &err), &err);
  assert_int_equal(len, SIZE);
  free(content);
}

static void test_concurrent_tags(void **state) {
  fixture *f = *state;
  hoist_err *err = NULL;
  hoist_descriptor d = {0};
  assert_ok(test_make_image(f->s, NULL, "tagged concurrently\n", &d, &err), &err);
  enum { N = 8 };
  pid_t pids[N];
  for (int i = 0; i < N; i++) {
    pids[i] = fork();
    assert_true(pids[i] >= 0);
    if (pids[i] == 0) {
      hoist_store *s = NULL;
      char tag[16];
      snprintf(tag, sizeof tag, "t%d", i);
      for (int k = 0; k < 5; k++) /* retag a few times to widen the race */
        if (hoist_store_open(hoist_store_dir(f->s), false, &s, NULL) < 0 ||
            hoist_store_tag(s, tag, &d, NULL) < 0)
          _exit(1);
        else
          hoist_store_close(s);
      _exit(0);
    }
  }
  for (int i = 0; i < N; i++) {
    int status;
    assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  _cleanup_index_ hoist_index *ix = NULL;
  assert_ok(hoist_store_index(f->s, &ix, &err), &err);
  assert_int_equal(ix->n_manifests, N);
  for (int i = 0; i < N; i++) {
    char tag[16];
    snprintf(tag, sizeof tag, "t%d", i);
    hoist_descriptor got = {0};
    assert_ok(hoist_store_resolve(f->s, tag, &got, &err), &err);
    assert_string_equal(got.digest, d.digest);
    assert_string_equal(hoist_descriptor_annotation(&got, HOIST_ANNOTATION_REF_NAME), tag);
    hoist_descriptor_clear(&got);
  }
  hoist_descriptor_clear(&d);
}

static void test_tag_untag_resolve(void **state) {
  fixture *f = *state;
  hoist_err *err = NULL;
  hoist_descriptor a = {0}, b = {0}, got = {0};
  assert_ok(test_make_image(f->s, "v1", "a\n", &a, &err), &err);
  /* the only entry resolves without a tag */
  assert_ok(hoist_store_resolve(f->s, NULL, &got, &err), &err);
  assert_string_equal(got.digest, a.digest);
  hoist_descriptor_clear(&got);
  assert_ok(test_make_image(f->s, "v2", "b\n", &b, &err), &err);
  assert_true(hoist_store_resolve(f->s, NULL, &got, &err) < 0);
  assert_err_contains(&err, "name a tag");
  /* retagging replaces the entry */
  assert_ok(hoist_store_tag(f->s, "v1", &b, &err), &err);
  assert_ok(hoist_store_resolve(f->s, "v1", &got, &err), &err);
  assert_string_equal(got.digest, b.digest);
  hoist_descriptor_clear(&got);
  _cleanup_index_ hoist_index *ix = NULL;
  assert_ok(hoist_store_index(f->s, &ix, &err), &err);
  assert_int_equal(ix->n_manifests, 2);
  assert_ok(hoist_store_untag(f->s, "v1", &err), &err);
  assert_true(hoist_store_resolve(f->s, "v1", &got, &err) < 0);
  assert_err_contains(&err, "tag v1 not found");
  assert_true(hoist_store_untag(f->s, "v1", &err) < 0);
  assert_err_contains(&err, "not found");

  /* tag names */
  static const struct {
    const char *tag;
    bool ok;
  } tags[] = {
      {"latest", true}, {"1.0", true},   {"a/b:c", true},     {"v1.2-rc+meta", true},
      {"", false},      {"../x", false}, {"-x", false},       {"x-", false},
      {"a b", false},   {"a\nb", false}, {"\xc3\xa9", false}, {".hidden", false},
  };
  for (size_t i = 0; i < sizeof tags / sizeof *tags; i++) {
    int r = hoist_store_tag(f->s, tags[i].tag, &a, &err);
    if (tags[i].ok) {
      assert_ok(r, &err);
    } else {
      assert_true(r < 0);
      assert_err_contains(&err, "invalid tag");
    }
  }
  /* a descriptor whose size is not the blob's is refused */
  hoist_descriptor wrong = {0};
  hoist_descriptor_copy(&wrong, &a);
  wrong.size++;
  assert_true(hoist_store_tag(f->s, "wrong", &wrong, &err) < 0);
  assert_err_contains(&err, "descriptor says");
  hoist_descriptor_clear(&wrong);
  /* a blob the layout does not have cannot be tagged */
  hoist_descriptor missing = {0};
  hoist_descriptor_of_bytes(&missing, HOIST_MT_OCI_MANIFEST, "nope", 4);
  assert_true(hoist_store_tag(f->s, "missing", &missing, &err) < 0);
  assert_err_contains(&err, "is not in the layout");
  hoist_descriptor_clear(&missing);
  hoist_descriptor_clear(&a);
  hoist_descriptor_clear(&b);
}

static void test_hostile_index(void **state) {
  fixture *f = *state;
  hoist_err *err = NULL;
  hoist_descriptor a = {0};
  assert_ok(test_make_image(f->s, "v1", "victim\n", &a, &err), &err);
  /* a file outside blobs/ that a traversal would reach */
  _cleanup_free_ char *victim = hoist_asprintf("%s/victim", f->dir);
  write_file(victim, "do not delete");
  static const char *bad_digests[] = {
      "sha256:../../../victim",
      "sha256:../../index.json",
      "../../victim",
      "sha256:/etc/passwd",
      "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce",
      "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
      "",
  };
  _cleanup_free_ char *index_path = hoist_asprintf("%s/index.json", hoist_store_dir(f->s));
  for (size_t i = 0; i < sizeof bad_digests / sizeof *bad_digests; i++) {
    _cleanup_free_ char *doc = hoist_asprintf(
        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":1,"
        "\"annotations\":{\"org.opencontainers.image.ref.name\":\"evil\"}}]}",
        HOIST_MT_OCI_MANIFEST, bad_digests[i]);
    write_file(index_path, doc);
    hoist_descriptor got = {0};
    assert_true(hoist_store_resolve(f->s, "evil", &got, &err) < 0);
    assert_err_contains(&err, "digest");
    uint64_t removed = 0;
    assert_true(hoist_store_gc(f->s, 0, &removed, NULL, &err) < 0);
    assert_err_contains(&err, "digest");
    assert_int_equal(removed, 0);
    assert_true(hoist_store_has_blob(f->s, a.digest));
    assert_int_equal(access(victim, F_OK), 0);
  }
  /* a manifest whose layer digest is hostile: gc refuses to delete anything */
  char garbage[HOIST_DIGEST_STR_LEN];
  assert_ok(hoist_store_put_blob(f->s, "garbage", 7, NULL, garbage, &err), &err);
  _cleanup_free_ char *m = hoist_asprintf(
      "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\",\"digest\":\"%"
      "s\","
      "\"size\":7},\"layers\":[{\"mediaType\":\"%s\",\"digest\":\"sha256:../../../victim\","
      "\"size\":1}]}",
      HOIST_MT_OCI_MANIFEST, HOIST_MT_OCI_CONFIG, garbage, HOIST_MT_OCI_LAYER);
  char md[HOIST_DIGEST_STR_LEN];
  assert_ok(hoist_store_put_blob(f->s, m, strlen(m), NULL, md, &err), &err);
  _cleanup_free_ char *doc = hoist_asprintf(
      "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}]}",
      HOIST_MT_OCI_MANIFEST, md, strlen(m));
  write_file(index_path, doc);
  uint64_t removed = 0;
  assert_true(hoist_store_gc(f->s, 0, &removed, NULL, &err) < 0);
  assert_err_contains(&err, "refusing to collect");
  assert_int_equal(removed, 0);
  assert_true(hoist_store_has_blob(f->s, a.digest));
  assert_int_equal(access(victim, F_OK), 0);
  hoist_descriptor_clear(&a);
}

static void test_gc(void **state) {
  fixture *f = *state;
  hoist_err *err = NULL;
  hoist_descriptor a = {0}, b = {0};
  assert_ok(test_make_image(f->s, "keep", "kept\n", &a, &err), &err);
  assert_ok(test_make_image(f->s, "drop", "dropped\n", &b, &err), &err);
  char garbage[HOIST_DIGEST_STR_LEN];
  assert_ok(hoist_store_put_blob(f->s, "unreferenced", 12, NULL, garbage, &err), &err);
  /* a file that is neither a blob nor a temp file is not gc's to judge */
  _cleanup_free_ char *stranger = blob_path(f, "README");
  write_file(stranger, "x");
  int blobs_before, temps;
  count_blob_files(f, &blobs_before, &temps);

  uint64_t removed = 0, freed = 0;
  assert_ok(hoist_store_gc(f->s, 0, &removed, &freed, &err), &err);
  assert_int_equal(removed, 1);
  assert_int_equal(freed, 12);
  assert_false(hoist_store_has_blob(f->s, garbage));

  /* untagging b makes its manifest, config and layer garbage */
  assert_ok(hoist_store_untag(f->s, "drop", &err), &err);
  assert_ok(hoist_store_gc(f->s, 0, &removed, &freed, &err), &err);
  assert_int_equal(removed, 3);
  assert_false(hoist_store_has_blob(f->s, b.digest));
  int blobs_after;
  count_blob_files(f, &blobs_after, &temps);
  assert_int_equal(blobs_after, blobs_before - 4);
  assert_int_equal(access(stranger, F_OK), 0);

  /* a reachable image keeps everything: manifest, config, layer */
  _cleanup_free_ char *mdata = NULL;
  size_t mlen = 0;
  assert_ok(hoist_store_read_blob(f->s, a.digest, HOIST_MANIFEST_MAX, &mdata, &mlen, &err), &err);
  _cleanup_manifest_ hoist_manifest *m = NULL;
  assert_ok(hoist_manifest_parse(mdata, mlen, &m, &err), &err);
  assert_true(hoist_store_has_blob(f->s, m->config.digest));
  assert_true(hoist_store_has_blob(f->s, m->layers[0].digest));

  /* through an image index: untag the manifest, tag an index that holds it */
  _cleanup_index_ hoist_index *ix = hoist_index_new(HOIST_MT_OCI_INDEX);
  hoist_index_add(ix, &a);
  _cleanup_free_ char *ij = NULL;
  size_t ij_len = 0;
  assert_ok(hoist_index_to_json(ix, &ij, &ij_len, &err), &err);
  hoist_descriptor id = {0};
  hoist_descriptor_of_bytes(&id, HOIST_MT_OCI_INDEX, ij, ij_len);
  assert_ok(hoist_store_put_blob(f->s, ij, ij_len, id.digest, NULL, &err), &err);
  assert_ok(hoist_store_tag(f->s, "multi", &id, &err), &err);
  assert_ok(hoist_store_untag(f->s, "keep", &err), &err);
  assert_ok(hoist_store_gc(f->s, 0, &removed, &freed, &err), &err);
  assert_int_equal(removed, 0);
  assert_true(hoist_store_has_blob(f->s, a.digest));
  assert_true(hoist_store_has_blob(f->s, m->config.digest));
  assert_true(hoist_store_has_blob(f->s, m->layers[0].digest));
  /* and with nothing tagged, everything goes */
  assert_ok(hoist_store_untag(f->s, "multi", &err), &err);
  assert_ok(hoist_store_gc(f->s, 0, &removed, &freed, &err), &err);
  assert_int_equal(removed, 4);
  count_blob_files(f, &blobs_after, &temps);
  assert_int_equal(blobs_after, 1); /* the stranger */
  hoist_descriptor_clear(&id);
  hoist_descriptor_clear(&a);
  hoist_descriptor_clear(&b);
}

/* Puts doc as a blob; desc receives its descriptor. */
static void put_doc(fixture *f, hoist_descriptor *desc, const char *media_type, const char *doc) {
  hoist_err *err = NULL;
  assert_ok(hoist_store_put_blob(f->s, doc, strlen(doc), NULL, NULL, &err), &err);
  hoist_descriptor_of_bytes(desc, media_type, doc, strlen(doc));
}

/* gc walks raw JSON, so documents the model refuses (artifact manifests with
 * foreign config and layer types, referrers through "subject", entries of an
 * unknown media type inside an index) keep everything they reference. */
static void test_gc_keeps_artifacts_and_referrers(void **state) {
  fixture *f = *state;
  hoist_err *err = NULL;
  hoist_descriptor image = {0}, empty = {0}, sbom = {0}, artifact = {0}, ix = {0};
  assert_ok(test_make_image(f->s, NULL, "the subject\n", &image, &err), &err);
  put_doc(f, &empty, "application/vnd.oci.empty.v1+json", "{}");
  put_doc(f, &sbom, "application/vnd.example.sbom.v1+json", "{\"packages\":[]}");
  _cleanup_free_ char *am = hoist_asprintf(
      "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"artifactType\":\"application/vnd.example.sbom\","
      "\"config\":{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":2},"
      "\"layers\":[{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%lld}],"
      "\"subject\":{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%lld}}",
      HOIST_MT_OCI_MANIFEST, empty.media_type, empty.digest, sbom.media_type, sbom.digest,
      (long long)sbom.size, HOIST_MT_OCI_MANIFEST, image.digest, (long long)image.size);
  /* a manifest, but not an image: gc must follow it all the same */
  _cleanup_manifest_ hoist_manifest *m = NULL;
  assert_ok(hoist_manifest_parse(am, strlen(am), &m, &err), &err);
  assert_true(hoist_manifest_check_image(m, &err) < 0);
  assert_err_contains(&err, "an artifact of type application/vnd.example.sbom, not an image");
  put_doc(f, &artifact, HOIST_MT_OCI_MANIFEST, am);

  /* tagged directly: artifact, its config and layer, and the subject image */
  assert_ok(hoist_store_tag(f->s, "sbom", &artifact, &err), &err);
  char garbage[HOIST_DIGEST_STR_LEN];
  assert_ok(hoist_store_put_blob(f->s, "unreferenced", 12, NULL, garbage, &err), &err);
  int before, after, temps;
  count_blob_files(f, &before, &temps);
  uint64_t removed = 0, freed = 0;
  assert_ok(hoist_store_gc(f->s, 0, &removed, &freed, &err), &err);
  assert_int_equal(removed, 1);
  assert_false(hoist_store_has_blob(f->s, garbage));
  count_blob_files(f, &after, &temps);
  assert_int_equal(after, before - 1);
  const char *kept[] = {image.digest, empty.digest, sbom.digest, artifact.digest};
  for (size_t i = 0; i < sizeof kept / sizeof *kept; i++)
    assert_true(hoist_store_has_blob(f->s, kept[i]));

  /* reached through an index entry whose media type hoist does not know */
  _cleanup_free_ char *id =
      hoist_asprintf("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[{\"mediaType\":"
                     "\"application/vnd.example.custom+json\",\"digest\":\"%s\",\"size\":%lld}]}",
                     HOIST_MT_OCI_INDEX, artifact.digest, (long long)artifact.size);
  put_doc(f, &ix, HOIST_MT_OCI_INDEX, id);
  assert_ok(hoist_store_tag(f->s, "all", &ix, &err), &err);
  assert_ok(hoist_store_untag(f->s, "sbom", &err), &err);
  assert_ok(hoist_store_gc(f->s, 0, &removed, &freed, &err), &err);
  assert_int_equal(removed, 0);
  for (size_t i = 0; i < sizeof kept / sizeof *kept; i++)
    assert_true(hoist_store_has_blob(f->s, kept[i]));

  /* untagged, all of it is garbage: index, artifact, empty, sbom, and the
   * image's manifest, config and layer */
  assert_ok(hoist_store_untag(f->s, "all", &err), &err);
  assert_ok(hoist_store_gc(f->s, 0, &removed, &freed, &err), &err);
  assert_int_equal(removed, 7);
  count_blob_files(f, &after, &temps);
  assert_int_equal(after, 0);
  hoist_descriptor *all[] = {&image, &empty, &sbom, &artifact, &ix};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    hoist_descriptor_clear(all[i]);
}

/* The grace period: an unreachable blob younger than min_age stays (a
 * writer may not have tagged it yet), and writing content that is already
 * stored makes the blob young again. */
static void test_gc_grace_period(void **state) {
  fixture *f = *state;
  hoist_err *err = NULL;
  char d[HOIST_DIGEST_STR_LEN];
  assert_ok(hoist_store_put_blob(f->s, "untagged", 8, NULL, d, &err), &err);
  uint64_t removed = 0, freed = 0;
  assert_ok(hoist_store_gc(f->s, 3600, &removed, &freed, &err), &err);
  assert_int_equal(removed, 0);
  assert_true(hoist_store_has_blob(f->s, d));

  _cleanup_free_ char *path = blob_path(f, d + strlen("sha256:"));
  struct timespec old[2] = {{.tv_sec = time(NULL) - 7200}, {.tv_sec = time(NULL) - 7200}};
  assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
  /* a second writer of the same content refreshes it */
  assert_ok(hoist_store_put_blob(f->s, "untagged", 8, d, NULL, &err), &err);
  assert_ok(hoist_store_gc(f->s, 3600, &removed, &freed, &err), &err);
  assert_int_equal(removed, 0);
  /* so does a reuse check */
  assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
  assert_true(hoist_store_touch_blob(f->s, d));
  assert_ok(hoist_store_gc(f->s, 3600, &removed, &freed, &err), &err);
  assert_int_equal(removed, 0);
  /* left old, it goes */
  assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
  assert_ok(hoist_store_gc(f->s, 3600, &removed, &freed, &err), &err);
  assert_int_equal(removed, 1);
  assert_int_equal(freed, 8);
  assert_false(hoist_store_touch_blob(f->s, d));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_open_creates_layout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_put_get_has, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mismatch_stores_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crash_before_commit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_puts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_tags, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tag_untag_resolve, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hostile_index, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gc, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gc_grace_period, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gc_keeps_artifacts_and_referrers, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
