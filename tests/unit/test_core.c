#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <signal.h>

#include "hoist/digest.h"
#include "hoist/fs.h"
#include "hoist/map.h"
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

/* ------------------------------------------------------------- toolbox */

/* Runs fn in a child; true when the child was killed by SIGABRT. */
static bool aborts(void (*fn)(void)) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    signal(SIGABRT, SIG_DFL);
    fn();
    _exit(0);
  }
  int st = 0;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void calloc_overflow(void) { free(hoist_calloc(SIZE_MAX / 2 + 1, 2)); }
static void reallocarray_overflow(void) { free(hoist_reallocarray(NULL, 3, SIZE_MAX / 3 + 1)); }
static void calloc_fits(void) { free(hoist_calloc(1 << 10, 1 << 10)); }

static void test_alloc_checks_overflow(void **state) {
  (void)state;
  unsigned char *p = hoist_calloc(16, 4);
  for (size_t i = 0; i < 64; i++)
    assert_int_equal(p[i], 0);
  p = hoist_reallocarray(p, 32, 4);
  p[127] = 1;
  free(p);
  free(hoist_calloc(0, 8)); /* never NULL, even empty */
  assert_false(aborts(calloc_fits));
  /* n * size past SIZE_MAX is out of memory, never a short block */
  assert_true(aborts(calloc_overflow));
  assert_true(aborts(reallocarray_overflow));
}

static void test_strv(void **state) {
  (void)state;
  _cleanup_strv_ hoist_strv sv = HOIST_STRV_INIT;
  assert_null(sv.v);
  for (int i = 0; i < 100; i++) {
    if (i % 2)
      hoist_strv_push(&sv, hoist_asprintf("s%d", i));
    else
      hoist_strv_add(&sv, i ? "even" : "");
    assert_int_equal(sv.n, (size_t)i + 1);
    assert_null(sv.v[sv.n]); /* NULL-terminated at every length */
  }
  assert_string_equal(sv.v[0], "");
  assert_string_equal(sv.v[99], "s99");
  char **v = hoist_strv_steal(&sv);
  assert_null(sv.v);
  assert_int_equal(sv.n, 0);
  size_t n = 0;
  while (v[n])
    n++;
  assert_int_equal(n, 100);
  hoist_strfreev(v);
  /* an empty vector steals as an empty array, never NULL */
  v = hoist_strv_steal(&sv);
  assert_non_null(v);
  assert_null(v[0]);
  hoist_strfreev(v);
  hoist_strfreev(NULL);
  hoist_strv_add(&sv, "again");
  hoist_strv_clear(&sv);
  assert_int_equal(sv.n, 0);
  hoist_strv_add(&sv, "reused"); /* freed by the cleanup attribute */
}

static void test_base64(void **state) {
  (void)state;
  static const struct {
    const char *in;
    unsigned flags;
    size_t max;
    const char *out;   /* NULL: refused */
    const char *error; /* when refused */
  } cases[] = {
      {"", 0, 10, "", NULL},
      {"YQ==", 0, 10, "a", NULL},
      {"YWI=", 0, 10, "ab", NULL},
      {"YWJj", 0, 10, "abc", NULL},
      {"YWxpY2U6azE=", 0, 10, "alice:k1", NULL},
      {"+/+/", 0, 10, "\xfb\xff\xbf", NULL},
      {"YQ", 0, 10, NULL, "padding"},
      {"YQ=", 0, 10, NULL, "padding"},
      {"YQ===", 0, 10, NULL, "padding"},
      {"YWJj====", 0, 10, NULL, "padding"},
      {"=", 0, 10, NULL, "padding"},
      {"====", 0, 10, NULL, "padding"},
      {"Y", 0, 10, NULL, "length"},
      {"YW=j", 0, 10, NULL, "character 4"},
      {" YWJj", 0, 10, NULL, "character 1"},
      {"YWJj\n", 0, 10, NULL, "character 5"},
      {"YW Jj", 0, 10, NULL, "character 3"},
      {"YW-j", 0, 10, NULL, "character 3"},
      {"YW\xc3\xa9", 0, 10, NULL, "character 3"},
      {"YWJj", 0, 2, NULL, "more than 2 bytes"},
      {"YWJj", 0, 3, "abc", NULL},
      {"YQ", HOIST_BASE64_PAD_OPTIONAL, 10, "a", NULL},
      {"YWI", HOIST_BASE64_PAD_OPTIONAL, 10, "ab", NULL},
      {"YWI=", HOIST_BASE64_PAD_OPTIONAL, 10, "ab", NULL},
      {"YQ=", HOIST_BASE64_PAD_OPTIONAL, 10, NULL, "padding"},
      {"Y", HOIST_BASE64_PAD_OPTIONAL, 10, NULL, "length"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    hoist_err *err = NULL;
    unsigned char *out = NULL;
    size_t len = 0;
    int r = hoist_base64_decode(cases[i].in, strlen(cases[i].in), cases[i].max, cases[i].flags,
                                &out, &len, &err);
    if (cases[i].out) {
      assert_ok(r, &err);
      assert_int_equal(len, strlen(cases[i].out));
      assert_memory_equal(out, cases[i].out, len);
      assert_int_equal(out[len], 0);
      free(out);
    } else {
      if (r == 0)
        fail_msg("case %zu (%s): accepted", i, cases[i].in);
      assert_int_equal(r, strstr(cases[i].error, "more than") ? -HOIST_E_LIMIT : -HOIST_E_FORMAT);
      assert_null(out);
      assert_err_contains(&err, cases[i].error);
    }
  }
  /* round trips, across the encoder's chunk (3 MiB) too */
  static const size_t sizes[] = {0, 1, 2, 3, 4, 5, 100, (3u << 20) - 1, 3u << 20, (3u << 20) + 2};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    unsigned char *data = hoist_malloc0(sizes[i] + 1);
    for (size_t k = 0; k < sizes[i]; k++)
      data[k] = (unsigned char)(k * 131 + i);
    char *text = hoist_base64_encode(data, sizes[i]);
    assert_int_equal(strlen(text), (sizes[i] + 2) / 3 * 4);
    unsigned char *back = NULL;
    size_t len = 0;
    hoist_err *err = NULL;
    assert_ok(hoist_base64_decode(text, strlen(text), sizes[i], 0, &back, &len, &err), &err);
    assert_int_equal(len, sizes[i]);
    assert_memory_equal(back, data, len);
    free(back);
    free(text);
    free(data);
  }
  char *t = hoist_base64_encode("alice:k1", 8);
  assert_string_equal(t, "YWxpY2U6azE=");
  free(t);
}

/* SipHash-2-4 of the reference's key (00 01 .. 0f) and messages 00 01 .. (n-1),
 * against OpenSSL's SIPHASH MAC (8-byte output). */
static void test_siphash_vectors(void **state) {
  (void)state;
  uint8_t key[16], msg[64];
  for (int i = 0; i < 16; i++)
    key[i] = (uint8_t)i;
  for (int i = 0; i < 64; i++)
    msg[i] = (uint8_t)i;
  /* the reference's first vector: the empty message */
  assert_true(hoist_siphash24(key, msg, 0) == 0x726fdb47dd0e0e31ull);
  assert_true(hoist_siphash24(key, msg, 1) == 0x74f839c593dc67fdull);
  EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
  assert_non_null(mac);
  for (size_t n = 0; n <= 64; n++) {
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    size_t size = 8;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
                           OSSL_PARAM_construct_end()};
    unsigned char out[8];
    size_t outl = 0;
    assert_int_equal(EVP_MAC_init(ctx, key, sizeof key, params), 1);
    assert_int_equal(EVP_MAC_update(ctx, msg, n), 1);
    assert_int_equal(EVP_MAC_final(ctx, out, &outl, sizeof out), 1);
    assert_int_equal(outl, 8);
    uint64_t want = 0;
    for (int i = 7; i >= 0; i--)
      want = want << 8 | out[i];
    if (hoist_siphash24(key, msg, n) != want)
      fail_msg("siphash of %zu bytes differs from OpenSSL's", n);
    EVP_MAC_CTX_free(ctx);
  }
  EVP_MAC_free(mac);
}

/* Home slot of key in m as it is now. */
static size_t home_of(const hoist_map *m, const char *key) {
  return (size_t)hoist_siphash24(m->seed, key, strlen(key)) & (m->cap - 1);
}

static void test_map_table(void **state) {
  (void)state;
  enum { ADD, SET, GET, DEL };
  /* one map, the steps in order: op, key, value, expected result (for GET
   * and a refused ADD the value found; -1: absent) */
  static const struct {
    int op;
    const char *key;
    int64_t val, want;
  } steps[] = {
      {GET, "a", 0, -1}, {DEL, "a", 0, -1},  {ADD, "a", 1, 1},   {GET, "a", 0, 1},
      {ADD, "a", 2, 1},  {GET, "a", 0, 1},   {SET, "a", 3, 0},   {GET, "a", 0, 3},
      {ADD, "", 4, 4},   {GET, "", 0, 4},    {ADD, "ab", 5, 5},  {GET, "ab", 0, 5},
      {GET, "b", 0, -1}, {DEL, "a", 0, 1},   {GET, "a", 0, -1},  {GET, "ab", 0, 5},
      {DEL, "a", 0, -1}, {SET, "new", 6, 0}, {GET, "new", 0, 6}, {DEL, "", 0, 1},
      {GET, "", 0, -1},  {ADD, "a", 7, 7},   {GET, "a", 0, 7},
  };
  _cleanup_map_ hoist_map m = HOIST_MAP_INIT;
  for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
    const char *k = steps[i].key;
    uint64_t v = 99;
    bool found;
    switch (steps[i].op) {
    case ADD:
      if (hoist_map_add(&m, k, strlen(k), (uint64_t)steps[i].val, &v))
        v = (uint64_t)steps[i].val;
      found = true;
      break;
    case SET:
      hoist_map_set(&m, k, strlen(k), (uint64_t)steps[i].val);
      found = true;
      v = 0;
      break;
    case GET:
      found = hoist_map_get(&m, k, strlen(k), &v);
      break;
    default:
      found = hoist_map_del(&m, k, strlen(k));
      v = 1;
      break;
    }
    int64_t got = found ? (int64_t)v : -1;
    if (got != steps[i].want)
      fail_msg("step %zu (op %d, \"%s\"): got %lld, want %lld", i, steps[i].op, k, (long long)got,
               (long long)steps[i].want);
  }
  assert_int_equal(m.n, 3);
  /* keys are bytes, NUL included, and copied */
  char bin[] = {'x', 0, 'y'};
  assert_true(hoist_map_add(&m, bin, 3, 8, NULL));
  assert_true(hoist_map_add(&m, bin, 1, 9, NULL));
  bin[0] = 'z';
  uint64_t v = 0;
  assert_true(hoist_map_get(&m, "x\0y", 3, &v));
  assert_int_equal(v, 8);
  assert_true(hoist_map_get(&m, "x", 1, &v));
  assert_int_equal(v, 9);
}

static void test_map_collisions(void **state) {
  (void)state;
  _cleanup_map_ hoist_map m = HOIST_MAP_INIT;
  assert_true(hoist_map_add(&m, "seed", 4, 0, NULL)); /* seeds it: cap 16 */
  assert_int_equal(m.cap, 16);
  assert_false(hoist_map_del(&m, "other", 5));
  assert_true(hoist_map_del(&m, "seed", 4));
  /* six keys with one home slot, the last one of the table: the run wraps */
  char keys[6][16];
  int found = 0;
  for (int i = 0; found < 6; i++) {
    snprintf(keys[found], sizeof keys[found], "c%d", i);
    if (home_of(&m, keys[found]) == 15)
      found++;
  }
  for (int i = 0; i < 6; i++)
    assert_true(hoist_map_add(&m, keys[i], strlen(keys[i]), (uint64_t)i, NULL));
  assert_int_equal(m.cap, 16);                  /* no growth: the collisions stay */
  assert_true(hoist_map_mean_probe(&m) == 3.5); /* 1 + 2 + .. + 6 over 6 */
  /* removing from the middle of the run keeps the rest reachable */
  static const int order[] = {2, 0, 5, 3, 1, 4};
  for (int d = 0; d < 6; d++) {
    const char *k = keys[order[d]];
    assert_true(hoist_map_del(&m, k, strlen(k)));
    assert_false(hoist_map_get(&m, k, strlen(k), NULL));
    for (int j = d + 1; j < 6; j++) {
      uint64_t v = 0;
      const char *o = keys[order[j]];
      if (!hoist_map_get(&m, o, strlen(o), &v) || v != (uint64_t)order[j])
        fail_msg("after deleting %s, %s is lost", k, o);
    }
  }
  assert_int_equal(m.n, 0);
  for (size_t i = 0; i < m.cap; i++)
    assert_null(m.slots[i].key);
}

static void test_map_growth(void **state) {
  (void)state;
  _cleanup_map_ hoist_map m = HOIST_MAP_INIT;
  enum { N = 100000 };
  char k[32];
  for (int i = 0; i < N; i++) {
    snprintf(k, sizeof k, "key-%d", i);
    assert_true(hoist_map_add(&m, k, strlen(k), (uint64_t)i, NULL));
  }
  assert_int_equal(m.n, N);
  assert_true(m.cap >= 2 * N);
  for (int i = 0; i < N; i += 2) {
    snprintf(k, sizeof k, "key-%d", i);
    assert_true(hoist_map_del(&m, k, strlen(k)));
  }
  for (int i = 0; i < N; i++) {
    snprintf(k, sizeof k, "key-%d", i);
    uint64_t v = 0;
    bool there = hoist_map_get(&m, k, strlen(k), &v);
    if (there != (i % 2 == 1) || (there && v != (uint64_t)i))
      fail_msg("key-%d: %s", i, there ? "wrong value" : "missing");
  }
  hoist_map_clear(&m);
  assert_int_equal(m.n, 0);
  assert_false(hoist_map_get(&m, "key-1", 5, NULL));
}

/* Digests' hex shares its alphabet and often a prefix: the keys store/gc.c
 * marks. Hashed by their first bytes (as gc did) they cluster; seeded
 * SipHash keeps probes near 1. Two maps never share a seed. */
static void test_map_spreads_digests(void **state) {
  (void)state;
  _cleanup_map_ hoist_map a = HOIST_MAP_INIT;
  _cleanup_map_ hoist_map b = HOIST_MAP_INIT;
  char d[HOIST_DIGEST_STR_LEN];
  for (int i = 0; i < 100000; i++) {
    char in[16];
    int n = snprintf(in, sizeof in, "%d", i);
    hoist_sha256_of(in, (size_t)n, d);
    memcpy(d + 7, "0000", 4); /* a shared prefix, as a crafted layout may have */
    assert_true(hoist_map_add(&a, d + 7, HOIST_DIGEST_HEX_LEN, 0, NULL));
  }
  double mean = hoist_map_mean_probe(&a);
  if (mean > 2.0)
    fail_msg("mean probe length %.2f for 100,000 digests", mean);
  assert_true(hoist_map_add(&b, "x", 1, 0, NULL));
  assert_memory_not_equal(a.seed, b.seed, sizeof a.seed);
}

/* root/{a/, file, link_abs -> /etc, link_up -> ../../.., a/inner -> ../a,
 * dangle -> missing, loop1 <-> loop2} for hoist_fs_mkdir_p beneath it. */
static void check_mkdir_p(bool fallback) {
  hoist_fs_force_fallback(fallback);
  char *dir = test_mkdtemp();
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  assert_int_equal(mkdirat(dfd, "a", 0755), 0);
  assert_int_equal(symlinkat("/etc", dfd, "link_abs"), 0);
  assert_int_equal(symlinkat("../../..", dfd, "link_up"), 0);
  assert_int_equal(symlinkat("../a", dfd, "a/inner"), 0);
  assert_int_equal(symlinkat("missing", dfd, "dangle"), 0);
  assert_int_equal(symlinkat("loop2", dfd, "loop1"), 0);
  assert_int_equal(symlinkat("loop1", dfd, "loop2"), 0);
  close(openat(dfd, "file", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  static const struct {
    const char *path;
    int code;          /* 0: made */
    const char *made;  /* a directory that must exist afterwards */
    const char *never; /* a path that must not exist afterwards, absolute or in root */
  } cases[] = {
      {"x/y/z", 0, "x/y/z", NULL},
      {"x/y/z", 0, "x/y/z", NULL}, /* again: all there */
      {"x//y/./w/", 0, "x/y/w", NULL},
      {"a/inner/b", 0, "a/b", NULL},
      {"a/../c", 0, "c", NULL},
      {"link_abs/hoist-mkdir-probe", -EXDEV, NULL, "/etc/hoist-mkdir-probe"},
      {"link_up/hoist-mkdir-probe", -EXDEV, NULL, "/hoist-mkdir-probe"},
      {"../hoist-mkdir-probe", -EXDEV, NULL, "../hoist-mkdir-probe"},
      {"a/../../hoist-mkdir-probe", -EXDEV, NULL, "../hoist-mkdir-probe"},
      {"/tmp/hoist-mkdir-probe", -EXDEV, NULL, "/tmp/hoist-mkdir-probe"},
      {"loop1/x", -ELOOP, NULL, NULL},
      {"file/x", -ENOTDIR, NULL, NULL},
      {"file", -ENOTDIR, NULL, NULL},
      {"dangle/x", -EEXIST, NULL, "missing"},
      {"", -EINVAL, NULL, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    hoist_err *err = NULL;
    int fd = -1;
    int r = hoist_fs_mkdir_p(dfd, cases[i].path, 0755, &fd, &err);
    if (r != cases[i].code) {
      char *t = err ? hoist_err_text(err) : NULL;
      fail_msg("%s case %zu (%s): got %d (%s), want %d", fallback ? "fallback" : "openat2", i,
               cases[i].path, r, t ? t : "", cases[i].code);
    }
    if (r == 0) {
      /* the fd is the directory made, readable */
      struct stat a, b;
      assert_int_equal(fstat(fd, &a), 0);
      assert_int_equal(fstatat(dfd, cases[i].made, &b, AT_SYMLINK_NOFOLLOW), 0);
      assert_true(S_ISDIR(b.st_mode) && a.st_ino == b.st_ino);
      close(fd);
    } else {
      assert_int_equal(fd, -1);
      assert_err_contains(&err, "mkdir");
    }
    const char *never = cases[i].never;
    if (never) {
      _cleanup_free_ char *p =
          never[0] == '/' ? hoist_strdup(never) : hoist_asprintf("%s/%s", dir, never);
      if (access(p, F_OK) == 0)
        fail_msg("case %zu (%s): %s was made", i, cases[i].path, p);
    }
  }
  /* AT_FDCWD: the caller's own path, absolute, symlinks followed */
  _cleanup_free_ char *through = hoist_asprintf("%s/a/inner/deep/er", dir);
  hoist_err *err = NULL;
  assert_ok(hoist_fs_mkdir_p(AT_FDCWD, through, 0700, NULL, &err), &err);
  struct stat st;
  assert_int_equal(fstatat(dfd, "a/deep/er", &st, AT_SYMLINK_NOFOLLOW), 0);
  assert_int_equal(st.st_mode & 0777, 0700 & ~(mode_t)umask(umask(0)));
  assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, dir, &err), &err);
  close(dfd);
  free(dir);
  hoist_fs_force_fallback(false);
}

static void test_mkdir_p_openat2(void **state) {
  (void)state;
  if (!hoist_fs_have_openat2())
    skip();
  check_mkdir_p(false);
}

static void test_mkdir_p_fallback(void **state) {
  (void)state;
  check_mkdir_p(true);
}

static void test_check_owned(void **state) {
  (void)state;
  char *dir = test_mkdtemp();
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  hoist_err *err = NULL;
  assert_ok(hoist_fs_check_owned(fd, "cache", &err), &err);
  static const mode_t writable[] = {0770, 0707, 0777, 01777};
  for (size_t i = 0; i < sizeof writable / sizeof *writable; i++) {
    assert_int_equal(fchmod(fd, writable[i]), 0);
    assert_int_equal(hoist_fs_check_owned(fd, "cache", &err), -HOIST_E_UNSAFE);
    assert_err_contains(&err, "cache may be written by other users");
  }
  assert_int_equal(fchmod(fd, 0755), 0);
  assert_ok(hoist_fs_check_owned(fd, "cache", &err), &err);
  if (geteuid() == 0) {
    assert_int_equal(fchown(fd, 65534, 65534), 0);
    assert_int_equal(hoist_fs_check_owned(fd, "cache", &err), -HOIST_E_UNSAFE);
    assert_err_contains(&err, "cache belongs to uid 65534, not to this user");
  }
  close(fd);
  assert_int_equal(rmdir(dir), 0);
  free(dir);
}

typedef struct {
  size_t entries, dirs;
  const char *inner; /* a tree walked from inside each visit of this one */
  size_t inner_entries;
  const char *stop_at;
} walk_count;

static int count_entry(void *ctx, int dirfd, const char *name, const struct stat *st) {
  (void)dirfd;
  walk_count *c = ctx;
  c->entries++;
  c->dirs += S_ISDIR(st->st_mode);
  if (c->inner) {
    walk_count in = {0};
    assert_int_equal(hoist_fs_walk(c->inner, count_entry, &in), 0);
    c->inner_entries += in.entries;
  }
  return c->stop_at && strcmp(name, c->stop_at) == 0 ? 7 : 0;
}

/* hoist_fs_walk: every entry once, the root included, symlinks not followed;
 * its state is its context, so a walk inside a walk counts on its own; a
 * visit's answer stops it; a tree too deep is ELOOP. */
static void test_fs_walk(void **state) {
  (void)state;
  char *dir = test_mkdtemp();
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  assert_int_equal(mkdirat(fd, "sub", 0755), 0);
  assert_int_equal(close(openat(fd, "sub/f", O_WRONLY | O_CREAT | O_CLOEXEC, 0644)), 0);
  assert_int_equal(close(openat(fd, "g", O_WRONLY | O_CREAT | O_CLOEXEC, 0644)), 0);
  assert_int_equal(symlinkat("/", fd, "root"), 0);
  walk_count c = {0};
  assert_int_equal(hoist_fs_walk(dir, count_entry, &c), 0);
  assert_int_equal(c.entries, 5); /* dir, sub, sub/f, g, root */
  assert_int_equal(c.dirs, 2);
  char *sub = hoist_asprintf("%s/sub", dir);
  walk_count outer = {.inner = sub};
  assert_int_equal(hoist_fs_walk(dir, count_entry, &outer), 0);
  assert_int_equal(outer.entries, 5);
  assert_int_equal(outer.inner_entries, 5 * 2);
  walk_count stop = {.stop_at = "sub"};
  assert_int_equal(hoist_fs_walk(dir, count_entry, &stop), 7);
  int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  for (int i = 0; i <= HOIST_FS_WALK_DEPTH; i++) {
    assert_int_equal(mkdirat(d, "d", 0755), 0);
    int n = openat(d, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    close(d);
    d = n;
  }
  close(d);
  walk_count deep = {0};
  errno = 0;
  assert_int_equal(hoist_fs_walk(dir, count_entry, &deep), -1);
  assert_int_equal(errno, ELOOP);
  hoist_err *err = NULL;
  assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, dir, &err), &err);
  close(fd);
  free(sub);
  free(dir);
}

static void test_path_clean(void **state) {
  (void)state;
  static const struct {
    const char *in;
    size_t max; /* longest component, 0: any */
    const char *out;
    int why; /* when out is NULL */
  } cases[] = {
      {"", 0, "", 0},
      {"/", 0, "", 0},
      {"a", 0, "a", 0},
      {"/a//b/", 0, "a/b", 0},
      {"./a/./b/.", 0, "a/b", 0},
      {"a/.b/..c/...", 0, "a/.b/..c/...", 0},
      {"a/../b", 0, NULL, HOIST_FS_PATH_DOTDOT},
      {"..", 0, NULL, HOIST_FS_PATH_DOTDOT},
      {"abc/de", 3, "abc/de", 0},
      {"abcd/..", 3, NULL, HOIST_FS_PATH_LONG},
      {"../abcd", 3, NULL, HOIST_FS_PATH_DOTDOT},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int why = 0;
    char *out = hoist_fs_path_clean(cases[i].in, cases[i].max, &why);
    if (cases[i].out) {
      if (!out)
        fail_msg("case %zu (%s): refused", i, cases[i].in);
      assert_string_equal(out, cases[i].out);
    } else {
      assert_null(out);
      assert_int_equal(why, cases[i].why);
    }
    free(out);
  }
}

static void test_read_fd(void **state) {
  (void)state;
  int p[2];
  assert_int_equal(pipe(p), 0);
  assert_int_equal(write(p[1], "hello", 5), 5);
  close(p[1]);
  hoist_err *err = NULL;
  char *data = NULL;
  size_t len = 0;
  assert_int_equal(hoist_fs_read_fd(p[0], 4, "the pipe", &data, &len, &err), -HOIST_E_LIMIT);
  assert_err_contains(&err, "read the pipe: ");
  close(p[0]);
  assert_int_equal(pipe(p), 0);
  assert_int_equal(write(p[1], "hello", 5), 5);
  close(p[1]);
  assert_ok(hoist_fs_read_fd(p[0], 5, "the pipe", &data, &len, &err), &err);
  assert_int_equal(len, 5);
  assert_string_equal(data, "hello");
  free(data);
  close(p[0]);
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
      cmocka_unit_test(test_alloc_checks_overflow),
      cmocka_unit_test(test_strv),
      cmocka_unit_test(test_base64),
      cmocka_unit_test(test_siphash_vectors),
      cmocka_unit_test(test_map_table),
      cmocka_unit_test(test_map_collisions),
      cmocka_unit_test(test_map_growth),
      cmocka_unit_test(test_map_spreads_digests),
      cmocka_unit_test(test_mkdir_p_openat2),
      cmocka_unit_test(test_mkdir_p_fallback),
      cmocka_unit_test(test_check_owned),
      cmocka_unit_test(test_fs_walk),
      cmocka_unit_test(test_path_clean),
      cmocka_unit_test(test_read_fd),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
