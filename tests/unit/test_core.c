#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "hoist/digest.h"
#include "hoist/fs.h"
#include "test_util.h"

static void test_error_wraps_cause(void **state) {
  (void)state;
  hoist_err *err = NULL;
  int r = hoist_err_set(&err, HOIST_E_DIGEST, "blob %s: digest mismatch", "sha256:ab");
  assert_int_equal(r, -HOIST_E_DIGEST);
  r = hoist_err_wrap(&err, "pull %s", "127.0.0.1:5000/x:1");
  assert_int_equal(r, -HOIST_E_DIGEST);
  char *t = hoist_err_text(err);
  assert_string_equal(t, "pull 127.0.0.1:5000/x:1: blob sha256:ab: digest mismatch");
  free(t);
  assert_int_equal(hoist_err_root_code(err), HOIST_E_DIGEST);
  hoist_err_free(err);
}

static void test_error_errno_and_null(void **state) {
  (void)state;
  hoist_err *err = NULL;
  assert_int_equal(hoist_err_errno(&err, ENOENT, "open %s", "x"), -ENOENT);
  char *t = hoist_err_text(err);
  assert_string_equal(t, "open x: No such file or directory");
  free(t);
  hoist_err_free(err);
  /* a NULL err pointer is allowed: only the code comes back */
  assert_int_equal(hoist_err_set(NULL, EINVAL, "ignored"), -EINVAL);
}

static void test_buf_cap(void **state) {
  (void)state;
  _cleanup_buf_ hoist_buf b = HOIST_BUF_INIT(10);
  hoist_err *err = NULL;
  assert_int_equal(hoist_buf_append(&b, "hello", 5, &err), 0);
  assert_int_equal(hoist_buf_appendf(&b, &err, "%d", 1234), 0);
  assert_string_equal(b.data, "hello1234");
  assert_true(hoist_buf_append(&b, "xy", 2, &err) < 0);
  assert_err_contains(&err, "limit");
  assert_string_equal(b.data, "hello1234");
}

static void test_sha256_known_vectors(void **state) {
  (void)state;
  char d[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of("", 0, d);
  assert_string_equal(d, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  _cleanup_sha256_ hoist_sha256 *h = hoist_sha256_new();
  hoist_sha256_update(h, "a", 1);
  hoist_sha256_update(h, "bc", 2);
  hoist_sha256_final(h, d);
  assert_string_equal(d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_digest_parse_table(void **state) {
  (void)state;
  static const struct {
    const char *in;
    const char *error; /* NULL: valid */
  } cases[] = {
      {"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", NULL},
      {"", "empty digest"},
      {"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "missing algorithm"},
      {"sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce",
       "unsupported digest algorithm sha512"},
      {"md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported digest algorithm md5"},
      {"sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
       "not lowercase hex"},
      {"sha256:e3b0", "64 hex digits"},
      {"sha256:", "64 hex digits"},
      {":abc", "empty algorithm"},
      {"SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "bad algorithm"},
      {"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g",
       "not lowercase hex"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    hoist_err *err = NULL;
    int r = hoist_digest_parse(cases[i].in, NULL, &err);
    if (!cases[i].error) {
      assert_ok(r, &err);
    } else {
      assert_true(r < 0);
      assert_err_contains(&err, cases[i].error);
    }
  }
}

static void test_write_atomic(void **state) {
  (void)state;
  char *dir = test_mkdtemp();
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  hoist_err *err = NULL;
  assert_ok(hoist_fs_write_atomic(dfd, "f", "one", 3, 0640, &err), &err);
  assert_ok(hoist_fs_write_atomic(dfd, "f", "two!", 4, 0640, &err), &err);
  char *data = NULL;
  size_t len = 0;
  assert_ok(hoist_fs_read_file(dfd, "f", 100, &data, &len, &err), &err);
  assert_int_equal(len, 4);
  assert_string_equal(data, "two!");
  free(data);
  struct stat st;
  assert_int_equal(fstatat(dfd, "f", &st, 0), 0);
  assert_int_equal(st.st_mode & 0777, 0640);
  /* no temp file is left behind */
  assert_int_equal(hoist_fs_rm_rf_at(dfd, "f", &err), 0);
  assert_int_equal(unlinkat(dfd, ".", AT_REMOVEDIR) < 0, 1);
  close(dfd);
  assert_int_equal(rmdir(dir), 0);
  free(dir);
}

/* Builds root/{a/, link_abs -> /etc, link_up -> ../../.., a/inner -> ../a} */
static int make_tree(char **dirp) {
  char *dir = test_mkdtemp();
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  assert_int_equal(mkdirat(dfd, "a", 0755), 0);
  assert_int_equal(mkdirat(dfd, "etc", 0755), 0);
  assert_int_equal(symlinkat("/etc", dfd, "link_abs"), 0);
  assert_int_equal(symlinkat("../../..", dfd, "link_up"), 0);
  assert_int_equal(symlinkat("../a", dfd, "a/inner"), 0);
  assert_int_equal(symlinkat("loop2", dfd, "loop1"), 0);
  assert_int_equal(symlinkat("loop1", dfd, "loop2"), 0);
  *dirp = dir;
  return dfd;
}

static void check_in_root(bool fallback) {
  hoist_fs_force_fallback(fallback);
  char *dir = NULL;
  int dfd = make_tree(&dir);
  hoist_err *err = NULL;
  /* "/etc/x" and symlinks to "/etc" land in root/etc, never the host's */
  static const char *const names[] = {"/etc/x1", "link_abs/x2", "link_up/etc/x3", "../../etc/x4",
                                      "a/inner/../../../etc/x5"};
  for (size_t i = 0; i < 5; i++) {
    int fd = hoist_fs_open_in_root(dfd, names[i], O_WRONLY | O_CREAT | O_EXCL, 0644, &err);
    assert_ok(fd < 0 ? fd : 0, &err);
    close(fd);
  }
  for (int i = 1; i <= 5; i++) {
    char p[32];
    snprintf(p, sizeof p, "etc/x%d", i);
    assert_int_equal(faccessat(dfd, p, F_OK, 0), 0);
    snprintf(p, sizeof p, "/etc/x%d", i);
    assert_int_not_equal(access(p, F_OK), 0);
  }
  int fd = hoist_fs_open_in_root(dfd, "loop1/x", O_RDONLY, 0, &err);
  assert_true(fd < 0);
  hoist_err_free(err);
  err = NULL;
  /* beneath: escapes are refused instead of contained */
  fd = hoist_fs_open_beneath(dfd, "link_abs/passwd", O_RDONLY, 0, &err);
  assert_true(fd < 0);
  hoist_err_free(err);
  err = NULL;
  fd = hoist_fs_open_beneath(dfd, "../x", O_RDONLY, 0, &err);
  assert_true(fd < 0);
  hoist_err_free(err);
  err = NULL;
  /* a/inner -> ../a stays inside, then "../.." climbs above the root */
  fd = hoist_fs_open_beneath(dfd, "a/inner/../../etc/x1", O_RDONLY, 0, &err);
  assert_true(fd < 0);
  hoist_err_free(err);
  err = NULL;
  fd = hoist_fs_open_beneath(dfd, "a/inner/../etc/x1", O_RDONLY, 0, &err);
  assert_ok(fd < 0 ? fd : 0, &err);
  close(fd);
  /* mkdir -p through a symlink to "/" stays inside */
  fd = hoist_fs_mkdir_p_in_root(dfd, "link_abs/new/deep", 0755, &err);
  assert_ok(fd < 0 ? fd : 0, &err);
  close(fd);
  assert_int_equal(faccessat(dfd, "etc/new/deep", F_OK, 0), 0);
  /* a dangling symlink gets its target made, inside the root; an absolute
   * one below the top resolves from the root too */
  assert_int_equal(symlinkat("/missing/dir", dfd, "dangle_abs"), 0);
  assert_int_equal(symlinkat("../made", dfd, "a/dangle_rel"), 0);
  assert_int_equal(symlinkat("../../../../outside", dfd, "dangle_up"), 0);
  assert_int_equal(mkdirat(dfd, "a/sub", 0755), 0);
  assert_int_equal(symlinkat("/etc", dfd, "a/sub/abs"), 0);
  static const char *const through[][2] = {{"dangle_abs/x", "missing/dir/x"},
                                           {"a/dangle_rel/y", "made/y"},
                                           {"dangle_up/w", "outside/w"},
                                           {"a/sub/abs/z", "etc/z"}};
  for (size_t i = 0; i < sizeof through / sizeof *through; i++) {
    fd = hoist_fs_mkdir_p_in_root(dfd, through[i][0], 0755, &err);
    assert_ok(fd < 0 ? fd : 0, &err);
    close(fd);
    struct stat st;
    assert_int_equal(fstatat(dfd, through[i][1], &st, AT_SYMLINK_NOFOLLOW), 0);
    assert_true(S_ISDIR(st.st_mode));
  }
  assert_int_not_equal(access("/missing", F_OK), 0);
  _cleanup_free_ char *outside = hoist_asprintf("%s/../outside", dir);
  assert_int_not_equal(access(outside, F_OK), 0);
  /* a symlink loop and a file on the way are errors */
  assert_int_equal(hoist_fs_mkdir_p_in_root(dfd, "loop1/x", 0755, &err), -ELOOP);
  hoist_err_free(err);
  err = NULL;
  close(openat(dfd, "file", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  assert_int_equal(hoist_fs_mkdir_p_in_root(dfd, "file/x", 0755, &err), -ENOTDIR);
  hoist_err_free(err);
  err = NULL;
  assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, dir, &err), &err);
  close(dfd);
  free(dir);
  hoist_fs_force_fallback(false);
}

static void test_open_in_root_openat2(void **state) {
  (void)state;
  if (!hoist_fs_have_openat2())
    skip();
  check_in_root(false);
}

static void test_open_in_root_fallback(void **state) {
  (void)state;
  check_in_root(true);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_wraps_cause),
      cmocka_unit_test(test_error_errno_and_null),
      cmocka_unit_test(test_buf_cap),
      cmocka_unit_test(test_sha256_known_vectors),
      cmocka_unit_test(test_digest_parse_table),
      cmocka_unit_test(test_write_atomic),
      cmocka_unit_test(test_open_in_root_openat2),
      cmocka_unit_test(test_open_in_root_fallback),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
