#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "hoist/bundle.h"
#include "hoist/digest.h"
#include "hoist/fs.h"
#include "hoist/store.h"
#include "image_util.h"
#include "test_util.h"

#define COMPONENTS                                                                                 \
  "\"components\":{\"nvidia_container_toolkit\":{\"version\":\"1.17.8\",\"commit\":\"abc\"},"      \
  "\"libnvidia_container\":{\"version\":\"1.17.8\",\"commit\":\"def\"}}"
#define HEAD                                                                                       \
  "\"schema_version\":1,\"bundle_name\":\"b\",\"bundle_version\":\"0.1.0\","                       \
  "\"architecture\":\"amd64\",\"created_at\":\"2026-03-18T12:34:56Z\","
#define SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void test_manifest_parse_table(void **state) {
  (void)state;
  static const struct {
    const char *json;
    const char *error; /* NULL: parses */
  } cases[] = {
      {"{" HEAD COMPONENTS ",\"files\":[]}", NULL},
      {"{" HEAD COMPONENTS ",\"files\":[{\"path\":\"x\"}],\"extra\":true}", NULL},
      {"", "malformed manifest.json"},
      {"{", "malformed manifest.json"},
      {"[1,2]", "malformed manifest.json"},
      {"\"text\"", "malformed manifest.json"},
      {"{\"a\":1,\"a\":2}", "malformed manifest.json"},
      {"{}", "missing required manifest field: schema_version"},
      {"{\"schema_version\":\"1\"}", "missing required manifest field: schema_version"},
      {"{\"schema_version\":1.0}", "missing required manifest field: schema_version"},
      {"{\"schema_version\":true}", "missing required manifest field: schema_version"},
      {"{\"schema_version\":2}", "missing required manifest field: schema_version"},
      {"{\"schema_version\":1}", "missing required manifest field: bundle_name"},
      {"{\"schema_version\":1,\"bundle_name\":\"\"}",
       "missing required manifest field: bundle_name"},
      {"{\"schema_version\":1,\"bundle_name\":7}", "missing required manifest field: bundle_name"},
      {"{\"schema_version\":1,\"bundle_name\":\"b\"}",
       "missing required manifest field: bundle_version"},
      {"{\"schema_version\":1,\"bundle_name\":\"b\",\"bundle_version\":\"1\","
       "\"architecture\":\" \\t\"}",
       "missing required manifest field: architecture"},
      {"{\"schema_version\":1,\"bundle_name\":\"b\",\"bundle_version\":\"1\","
       "\"architecture\":\"amd64\"}",
       "missing required manifest field: created_at"},
      {"{" HEAD "\"files\":[]}", "missing required manifest field: components"},
      {"{" HEAD "\"components\":[],\"files\":[]}", "missing required manifest field: components"},
      {"{" HEAD "\"components\":{},\"files\":[]}",
       "missing required manifest field: components.nvidia_container_toolkit"},
      {"{" HEAD "\"components\":{\"nvidia_container_toolkit\":{\"version\":\"1\"}}}",
       "missing required manifest field: components.nvidia_container_toolkit.commit"},
      {"{" HEAD "\"components\":{\"nvidia_container_toolkit\":{\"version\":\"1\",\"commit\":\"c\"},"
       "\"libnvidia_container\":{\"version\":\"\",\"commit\":\"c\"}}}",
       "missing required manifest field: components.libnvidia_container.version"},
      {"{" HEAD COMPONENTS "}", "missing required manifest field: files"},
      {"{" HEAD COMPONENTS ",\"files\":{}}", "missing required manifest field: files"},
      {"{" HEAD COMPONENTS ",\"files\":[{},\"x\"]}", "missing required manifest field: files[1]"},
      {"{\"schema_version\":1,\"bundle_name\":\"b\",\"bundle_version\":\"0.1.0\","
       "\"architecture\":\"amd64\",\"created_at\":\"yesterday\"," COMPONENTS ",\"files\":[]}",
       "created_at: not an RFC 3339 timestamp"},
      {"{\"schema_version\":1,\"bundle_name\":\"a/b\",\"bundle_version\":\"0.1.0\","
       "\"architecture\":\"amd64\",\"created_at\":\"2026-03-18T12:34:56Z\"," COMPONENTS
       ",\"files\":[]}",
       "bundle_name: not a safe path component"},
      {"{\"schema_version\":1,\"bundle_name\":\"..\",\"bundle_version\":\"0.1.0\","
       "\"architecture\":\"amd64\",\"created_at\":\"2026-03-18T12:34:56Z\"," COMPONENTS
       ",\"files\":[]}",
       "bundle_name: not a safe path component"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    hoist_err *err = NULL;
    hoist_bundle_manifest *m = NULL;
    int r = hoist_bundle_manifest_parse(cases[i].json, strlen(cases[i].json), &m, &err);
    if (!cases[i].error) {
      assert_ok(r, &err);
      hoist_bundle_manifest_free(m);
      continue;
    }
    if (r == 0)
      fail_msg("case %zu (%s): parsed, expected \"%s\"", i, cases[i].json, cases[i].error);
    assert_null(m);
    assert_err_contains(&err, cases[i].error);
  }
}

static void test_manifest_entries_table(void **state) {
  (void)state;
  static const struct {
    const char *entry;
    const char *error;
  } cases[] = {
      {"{\"path\":\"usr/bin/x\",\"entry_type\":\"file\",\"sha256\":\"" SHA "\",\"size\":0}", NULL},
      {"{\"path\":\"usr/lib/l.so\",\"entry_type\":\"symlink\",\"target\":\"l.so.1\"}", NULL},
      {"{\"path\":\"usr/lib/l.so\",\"entry_type\":\"symlink\"}", NULL},
      {"{\"entry_type\":\"file\"}", "missing required manifest field: files[0].path"},
      {"{\"path\":\"  \",\"entry_type\":\"file\"}",
       "missing required manifest field: files[0].path"},
      {"{\"path\":3,\"entry_type\":\"file\"}", "missing required manifest field: files[0].path"},
      {"{\"path\":\"/usr/bin/x\"}", "invalid manifest-listed payload path: /usr/bin/x"},
      {"{\"path\":\"../x\"}", "invalid manifest-listed payload path: ../x"},
      {"{\"path\":\"usr/../../x\"}", "invalid manifest-listed payload path: usr/../../x"},
      {"{\"path\":\"usr//x\"}", "invalid manifest-listed payload path: usr//x"},
      {"{\"path\":\"usr/./x\"}", "invalid manifest-listed payload path: usr/./x"},
      {"{\"path\":\"usr/x/\"}", "invalid manifest-listed payload path: usr/x/"},
      {"{\"path\":\"usr/x\"}", "missing required manifest field: files[0].entry_type"},
      {"{\"path\":\"usr/x\",\"entry_type\":\"dir\"}", "unsupported manifest entry_type \"dir\""},
      {"{\"path\":\"usr/x\",\"entry_type\":\"file\",\"size\":1}",
       "missing required manifest field: files[0].sha256"},
      {"{\"path\":\"usr/x\",\"entry_type\":\"file\",\"sha256\":\"abc\",\"size\":1}",
       "invalid manifest sha256"},
      {"{\"path\":\"usr/x\",\"entry_type\":\"file\",\"sha256\":\"" SHA "\"}",
       "missing required manifest field: files[0].size"},
      {"{\"path\":\"usr/x\",\"entry_type\":\"file\",\"sha256\":\"" SHA "\",\"size\":true}",
       "invalid manifest size"},
      {"{\"path\":\"usr/x\",\"entry_type\":\"file\",\"sha256\":\"" SHA "\",\"size\":4.0}",
       "invalid manifest size"},
      {"{\"path\":\"usr/x\",\"entry_type\":\"file\",\"sha256\":\"" SHA "\",\"size\":-4}",
       "invalid manifest size"},
      {"{\"path\":\"usr/x\",\"entry_type\":\"file\",\"sha256\":\"" SHA "\",\"size\":\"4\"}",
       "invalid manifest size"},
      {"{\"path\":\"usr/x\",\"entry_type\":\"symlink\",\"target\":null}",
       "invalid manifest symlink target"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char *json = hoist_asprintf("{" HEAD COMPONENTS ",\"files\":[%s]}", cases[i].entry);
    hoist_err *err = NULL;
    hoist_bundle_manifest *m = NULL;
    assert_ok(hoist_bundle_manifest_parse(json, strlen(json), &m, &err), &err);
    int r = hoist_bundle_manifest_check_entry(m, 0, &err);
    if (!cases[i].error) {
      assert_ok(r, &err);
    } else {
      if (r == 0)
        fail_msg("case %zu (%s): accepted, expected \"%s\"", i, cases[i].entry, cases[i].error);
      assert_err_contains(&err, cases[i].error);
    }
    hoist_bundle_manifest_free(m);
    free(json);
  }
}

static void test_manifest_arch(void **state) {
  (void)state;
  const char *json =
      "{\"schema_version\":1,\"bundle_name\":\"b\",\"bundle_version\":\"1\","
      "\"architecture\":\"  arm64\\n\",\"created_at\":\"2026-03-18T12:34:56Z\"," COMPONENTS
      ",\"files\":[]}";
  hoist_err *err = NULL;
  hoist_bundle_manifest *m = NULL;
  assert_ok(hoist_bundle_manifest_parse(json, strlen(json), &m, &err), &err);
  assert_string_equal(m->architecture, "arm64");
  assert_ok(hoist_bundle_manifest_check_arch(m, "arm64", &err), &err);
  assert_true(hoist_bundle_manifest_check_arch(m, "amd64", &err) < 0);
  assert_err_contains(&err, "bundle architecture mismatch: expected amd64, got arm64");
  hoist_bundle_manifest_free(m);
}

static void test_rfc3339_and_names(void **state) {
  (void)state;
  static const struct {
    const char *s;
    bool ok;
  } times[] = {
      {"2026-03-18T12:34:56Z", true},
      {"2026-03-18t12:34:56z", true},
      {"2026-03-18T12:34:56.123Z", true},
      {"2026-03-18T12:34:56+01:00", true},
      {"2024-02-29T00:00:00Z", true},
      {"2016-12-31T23:59:60Z", true},
      {"2026-02-29T00:00:00Z", false},
      {"2026-13-01T00:00:00Z", false},
      {"2026-03-18 12:34:56Z", false},
      {"2026-03-18T12:34:56", false},
      {"2026-03-18T24:00:00Z", false},
      {"2026-03-18T12:34:56.Z", false},
      {"2026-03-18T12:34:56+0100", false},
      {"2026-03-18", false},
      {"", false},
      {"2026-03-18T12:34:56Zjunk", false},
  };
  for (size_t i = 0; i < sizeof times / sizeof *times; i++)
    if (hoist_bundle_rfc3339_valid(times[i].s) != times[i].ok)
      fail_msg("rfc3339 \"%s\": expected %d", times[i].s, times[i].ok);
  static const struct {
    const char *s;
    bool ok;
  } names[] = {
      {"openshell-gpu-runtime-bundle", true},
      {"b_1.0+x", true},
      {"", false},
      {".", false},
      {"..", false},
      {".hidden", false},
      {"a/b", false},
      {"a b", false},
      {"-rf", false},
      {"a\nb", false},
  };
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (hoist_bundle_name_valid(names[i].s) != names[i].ok)
      fail_msg("name \"%s\": expected %d", names[i].s, names[i].ok);
}

static void test_arch_resolve(void **state) {
  (void)state;
  static const struct {
    const char *arch, *platform, *want, *error;
  } cases[] = {
      {"amd64", NULL, "amd64", NULL},
      {"arm64", "linux/amd64", "arm64", NULL},
      {NULL, "linux/arm64", "arm64", NULL},
      {NULL, "linux/amd64", "amd64", NULL},
      {"x86_64", NULL, NULL, "unsupported architecture: x86_64"},
      {NULL, "linux/amd64,linux/arm64", NULL, "multi-platform builds are not supported"},
      {NULL, "linux/s390x", NULL, "unsupported docker platform: linux/s390x"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    hoist_err *err = NULL;
    const char *got = NULL;
    int r = hoist_bundle_arch_resolve(cases[i].arch, cases[i].platform, &got, &err);
    if (cases[i].want) {
      assert_ok(r, &err);
      assert_string_equal(got, cases[i].want);
    } else {
      assert_true(r < 0);
      assert_err_contains(&err, cases[i].error);
    }
  }
  assert_string_equal(hoist_bundle_libdir("amd64"), "x86_64-linux-gnu");
  assert_string_equal(hoist_bundle_libdir("arm64"), "aarch64-linux-gnu");
  assert_null(hoist_bundle_libdir("riscv64"));
}

static void put(int dfd, const char *path, const char *data, mode_t mode) {
  hoist_err *err = NULL;
  char *copy = strdup(path);
  char *slash = strrchr(copy, '/');
  if (slash) {
    *slash = '\0';
    int d = hoist_fs_mkdir_p_in_root(dfd, copy, 0755, &err);
    assert_true(d >= 0);
    close(d);
  }
  free(copy);
  if (mode == 0) {
    assert_int_equal(symlinkat(data, dfd, path), 0);
    return;
  }
  assert_ok(hoist_fs_write_atomic(dfd, path, data, strlen(data), mode, &err), &err);
}

static void test_mappings(void **state) {
  (void)state;
  char *dir = test_mkdtemp();
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  assert_true(dfd >= 0);
  const char *bins[] = {"nvidia-cdi-hook", "nvidia-container-runtime",
                        "nvidia-container-runtime-hook", "nvidia-container-cli", "nvidia-ctk"};
  for (size_t i = 0; i < 5; i++) {
    char *p = hoist_asprintf("usr/bin/%s", bins[i]);
    put(dfd, p, "bin", 0755);
    free(p);
  }
  put(dfd, "usr/bin/other-tool", "x", 0755);
  put(dfd, "etc/nvidia-container-runtime/config.toml", "[x]\n", 0644);
  put(dfd, "etc/nvidia-container-runtime/conf.d/extra.toml", "[y]\n", 0600);
  put(dfd, "etc/other.conf", "z", 0644);
  put(dfd, "usr/lib/aarch64-linux-gnu/libnvidia-container.so.1.17.8", "elf", 0755);
  put(dfd, "usr/lib/aarch64-linux-gnu/libnvidia-container.so.1", "libnvidia-container.so.1.17.8",
      0);
  put(dfd, "usr/lib/aarch64-linux-gnu/libnvidia-container-go.so.1", "elf", 0644);
  put(dfd, "usr/lib/aarch64-linux-gnu/libother.so.1", "elf", 0644);
  put(dfd, "manifest.json",
      "{"
      "\"schema_version\":1,\"bundle_name\":\"b\",\"bundle_version\":\"1\","
      "\"architecture\":\"arm64\",\"created_at\":\"2026-03-18T12:34:56Z\"," COMPONENTS
      ",\"files\":[]}",
      0644);

  hoist_err *err = NULL;
  hoist_bundle_mapping *m = NULL;
  size_t n = 0;
  assert_ok(hoist_bundle_mappings(dir, NULL, NULL, &m, &n, &err), &err);
  static const struct {
    const char *src, *dst;
    mode_t mode;
    const char *target;
  } want[] = {
      {"etc/nvidia-container-runtime", "/etc/nvidia-container-runtime", S_IFDIR | 0755, NULL},
      {"etc/nvidia-container-runtime/conf.d", "/etc/nvidia-container-runtime/conf.d",
       S_IFDIR | 0755, NULL},
      {"etc/nvidia-container-runtime/conf.d/extra.toml",
       "/etc/nvidia-container-runtime/conf.d/extra.toml", S_IFREG | 0600, NULL},
      {"etc/nvidia-container-runtime/config.toml", "/etc/nvidia-container-runtime/config.toml",
       S_IFREG | 0644, NULL},
      {"usr/bin/nvidia-cdi-hook", "/usr/bin/nvidia-cdi-hook", S_IFREG | 0755, NULL},
      {"usr/bin/nvidia-container-cli", "/usr/bin/nvidia-container-cli", S_IFREG | 0755, NULL},
      {"usr/bin/nvidia-container-runtime", "/usr/bin/nvidia-container-runtime", S_IFREG | 0755,
       NULL},
      {"usr/bin/nvidia-container-runtime-hook", "/usr/bin/nvidia-container-runtime-hook",
       S_IFREG | 0755, NULL},
      {"usr/bin/nvidia-ctk", "/usr/bin/nvidia-ctk", S_IFREG | 0755, NULL},
      {"usr/lib/aarch64-linux-gnu/libnvidia-container-go.so.1",
       "/usr/lib/aarch64-linux-gnu/libnvidia-container-go.so.1", S_IFREG | 0644, NULL},
      {"usr/lib/aarch64-linux-gnu/libnvidia-container.so.1",
       "/usr/lib/aarch64-linux-gnu/libnvidia-container.so.1", S_IFLNK | 0777,
       "libnvidia-container.so.1.17.8"},
      {"usr/lib/aarch64-linux-gnu/libnvidia-container.so.1.17.8",
       "/usr/lib/aarch64-linux-gnu/libnvidia-container.so.1.17.8", S_IFREG | 0755, NULL},
  };
  assert_int_equal(n, sizeof want / sizeof *want);
  for (size_t i = 0; i < n; i++) {
    assert_string_equal(m[i].src, want[i].src);
    assert_string_equal(m[i].dst, want[i].dst);
    if (m[i].mode != want[i].mode)
      fail_msg("%s: mode %o, want %o", m[i].src, m[i].mode, want[i].mode);
    if (want[i].target)
      assert_string_equal(m[i].target, want[i].target);
    else
      assert_null(m[i].target);
  }
  hoist_bundle_mappings_free(m, n);

  /* another image library directory; the arch given explicitly */
  assert_ok(hoist_bundle_mappings(dir, "arm64", "/usr/lib64", &m, &n, &err), &err);
  assert_string_equal(m[n - 1].dst, "/usr/lib64/libnvidia-container.so.1.17.8");
  hoist_bundle_mappings_free(m, n);
  /* the amd64 library directory is not there */
  assert_true(hoist_bundle_mappings(dir, "amd64", NULL, &m, &n, &err) < 0);
  assert_err_contains(&err, "usr/lib/x86_64-linux-gnu");
  /* a binary that is a symlink is refused */
  assert_int_equal(unlinkat(dfd, "usr/bin/nvidia-ctk", 0), 0);
  put(dfd, "usr/bin/nvidia-ctk", "nvidia-cdi-hook", 0);
  assert_true(hoist_bundle_mappings(dir, "arm64", NULL, &m, &n, &err) < 0);
  assert_err_contains(&err, "usr/bin/nvidia-ctk is not a regular file");

  close(dfd);
  assert_int_equal(hoist_fs_rm_rf_at(AT_FDCWD, dir, NULL), 0);
  free(dir);
}

static void test_cache_path(void **state) {
  (void)state;
  hoist_err *err = NULL;
  char *p = NULL;
  assert_ok(hoist_bundle_cache_path("https://example.com/r/b_0.1.0_amd64.tar.gz?x=1", "amd64", NULL,
                                    &p, &err),
            &err);
  assert_true(strncmp(p, "deploy/docker/.build/runtime-bundles/amd64-", 43) == 0);
  assert_int_equal(strlen(p), 43 + 64 + 1 + strlen("b_0.1.0_amd64.tar.gz"));
  assert_string_equal(p + 43 + 65, "b_0.1.0_amd64.tar.gz");
  free(p);
  /* a hostile basename is replaced */
  assert_ok(hoist_bundle_cache_path("https://example.com/..", "arm64", "/c", &p, &err), &err);
  assert_string_equal(p + strlen(p) - 14, "-bundle.tar.gz");
  free(p);
  assert_true(hoist_bundle_cache_path("https://x/y", "i386", NULL, &p, &err) < 0);
  assert_err_contains(&err, "unsupported architecture");
}

/* Adds a member to a tar being written: a file (target NULL) or a symlink. */
static void tar_add(struct archive *a, const char *path, const char *data, const char *target,
                    mode_t perm) {
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, path);
  archive_entry_set_perm(e, perm);
  archive_entry_set_mtime(e, 1773837296, 0);
  if (target) {
    archive_entry_set_filetype(e, AE_IFLNK);
    archive_entry_set_symlink(e, target);
  } else {
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_size(e, (la_int64_t)strlen(data));
  }
  assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
  if (!target)
    assert_int_equal(archive_write_data(a, data, strlen(data)), (la_ssize_t)strlen(data));
  archive_entry_free(e);
}

/* A bundle written with libarchive, staged by the library, then listed for
 * an image: the path from tarball to (source -> image path) mappings. */
static void test_stage_then_map(void **state) {
  (void)state;
  char *dir = test_mkdtemp();
  char *tarball = hoist_asprintf("%s/b.tar.gz", dir);
  static const char *const bins[] = {"nvidia-cdi-hook", "nvidia-container-runtime",
                                     "nvidia-container-runtime-hook", "nvidia-container-cli",
                                     "nvidia-ctk"};
  hoist_buf files = HOIST_BUF_INIT(0);
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter_gzip(a);
  assert_int_equal(archive_write_open_filename(a, tarball), ARCHIVE_OK);
  for (size_t i = 0; i < 6; i++) {
    char *path = i < 5 ? hoist_asprintf("usr/bin/%s", bins[i])
                       : hoist_strdup("etc/nvidia-container-runtime/config.toml");
    char *member = hoist_asprintf("top/%s", path);
    const char *data = i < 5 ? bins[i] : "[x]\n";
    char d[HOIST_DIGEST_STR_LEN];
    hoist_sha256_of(data, strlen(data), d);
    tar_add(a, member, data, NULL, i < 5 ? 0755 : 0644);
    assert_int_equal(
        hoist_buf_appendf(
            &files, NULL,
            "{\"path\":\"%s\",\"entry_type\":\"file\",\"sha256\":\"%s\",\"size\":%zu},", path,
            d + 7, strlen(data)),
        0);
    free(path);
    free(member);
  }
  char d[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of("elf", 3, d);
  tar_add(a, "top/usr/lib/x86_64-linux-gnu/libnvidia-container.so.1.17.8", "elf", NULL, 0755);
  tar_add(a, "top/usr/lib/x86_64-linux-gnu/libnvidia-container.so.1", NULL,
          "libnvidia-container.so.1.17.8", 0777);
  assert_int_equal(
      hoist_buf_appendf(&files, NULL,
                        "{\"path\":\"usr/lib/x86_64-linux-gnu/libnvidia-container.so.1.17.8\","
                        "\"entry_type\":\"file\",\"sha256\":\"%s\",\"size\":3},"
                        "{\"path\":\"usr/lib/x86_64-linux-gnu/libnvidia-container.so.1\","
                        "\"entry_type\":\"symlink\",\"target\":\"libnvidia-container.so.1.17.8\"}",
                        d + 7),
      0);
  char *manifest = hoist_asprintf("{" HEAD COMPONENTS ",\"files\":[%s]}", files.data);
  tar_add(a, "top/manifest.json", manifest, NULL, 0644);
  assert_int_equal(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
  free(manifest);
  hoist_buf_free(&files);

  hoist_err *err = NULL;
  hoist_bundle_opts o = {.arch = "amd64"};
  assert_ok(hoist_bundle_verify(tarball, &o, NULL, &err), &err);
  char *into = hoist_asprintf("%s/stage/", dir);
  char *staged = NULL;
  hoist_bundle_info *info = NULL;
  assert_ok(hoist_bundle_stage(tarball, into, &o, &staged, &info, &err), &err);
  char *want = hoist_asprintf("%s/stage/amd64/b", dir);
  assert_string_equal(staged, want);
  assert_string_equal(info->bundle_name, "b");
  assert_int_equal(info->n_files, 8);
  hoist_bundle_info_free(info);

  hoist_bundle_mapping *m = NULL;
  size_t n = 0;
  assert_ok(hoist_bundle_mappings(staged, NULL, NULL, &m, &n, &err), &err);
  assert_int_equal(n, 9); /* etc dir + config, 5 binaries, 2 libraries */
  assert_string_equal(m[0].dst, "/etc/nvidia-container-runtime");
  assert_string_equal(m[7].dst, "/usr/lib/x86_64-linux-gnu/libnvidia-container.so.1");
  assert_string_equal(m[7].target, "libnvidia-container.so.1.17.8");
  assert_int_equal(m[8].mode, S_IFREG | 0755);
  hoist_bundle_mappings_free(m, n);

  /* applied to an amd64 base in a layout: one more layer, tagged in the target */
  char *lay = hoist_asprintf("%s/layout", dir);
  {
    hoist_store *st = NULL;
    hoist_descriptor d = {0};
    assert_ok(hoist_store_open(lay, true, &st, &err), &err);
    assert_ok(test_make_image(st, "base", "hi\n", &d, &err), &err);
    hoist_descriptor_clear(&d);
    hoist_store_close(st);
  }
  {
    hoist_transport_source *base = NULL;
    hoist_transport_target *target = NULL;
    assert_ok(hoist_transport_layout_source(lay, "base", &base, &err), &err);
    assert_ok(hoist_transport_layout_target(lay, "cluster", &target, &err), &err);
    assert_true(hoist_bundle_check_base(base, "arm64", &err) < 0);
    assert_err_contains(&err,
                        "base image platform linux/amd64 does not match the bundle architecture "
                        "arm64");
    hoist_bundle_apply_opts ao = {.layer = HOIST_LAYER_OPTIONS_INIT};
    hoist_image_append_result res;
    assert_ok(hoist_bundle_apply(base, target, staged, &ao, &res, &err), &err);
    assert_int_equal(res.n_layers, 2);
    assert_int_equal(res.layer.n_entries, 9);
    ao.arch = "arm64";
    assert_true(hoist_bundle_apply(base, target, staged, &ao, &res, &err) < 0);
    assert_err_contains(&err, "bundle architecture mismatch: expected arm64, got amd64");
    hoist_transport_source_free(base);
    hoist_transport_target_free(target);
  }
  /* index create: a layout's images need no copy; platforms must differ */
  {
    hoist_loc *t = NULL, *a = NULL, *b = NULL, *ix = NULL;
    char *s = hoist_asprintf("oci:%s:multi", lay);
    assert_ok(hoist_loc_parse(s, &t, &err), &err);
    free(s);
    s = hoist_asprintf("oci:%s:base", lay);
    assert_ok(hoist_loc_parse(s, &a, &err), &err);
    free(s);
    s = hoist_asprintf("oci:%s:cluster", lay);
    assert_ok(hoist_loc_parse(s, &b, &err), &err);
    free(s);
    const hoist_loc *both[] = {a, b};
    hoist_image_index_result ir;
    assert_true(hoist_image_index_create(NULL, t, both, 2, NULL, &ir, &err) < 0);
    assert_err_contains(&err, ":cluster are both linux/amd64: platforms must be distinct");
    assert_ok(hoist_image_index_create(NULL, t, both + 1, 1, NULL, &ir, &err), &err);
    assert_string_equal(ir.media_type, HOIST_MT_OCI_INDEX);
    assert_int_equal(ir.images_copied, 0);
    /* an index of one image is a valid source; of two is not */
    const hoist_loc *one[] = {t};
    hoist_loc *t2 = NULL;
    s = hoist_asprintf("oci:%s:again", lay);
    assert_ok(hoist_loc_parse(s, &t2, &err), &err);
    free(s);
    const char *tags[] = {"also", NULL};
    hoist_image_index_opts io = {.tags = tags};
    assert_ok(hoist_image_index_create(NULL, t2, one, 1, &io, &ir, &err), &err);
    hoist_store *st = NULL;
    hoist_descriptor d = {0};
    assert_ok(hoist_store_open(lay, false, &st, &err), &err);
    assert_ok(hoist_store_resolve(st, "also", &d, &err), &err);
    assert_string_equal(d.digest, ir.digest);
    hoist_descriptor_clear(&d);
    hoist_store_close(st);
    /* the target needs a tag */
    s = hoist_asprintf("oci:%s", lay);
    assert_ok(hoist_loc_parse(s, &ix, &err), &err);
    free(s);
    assert_true(hoist_image_index_create(NULL, ix, one, 1, NULL, &ir, &err) < 0);
    assert_err_contains(&err, "the index target needs a tag");
    hoist_loc_free(t);
    hoist_loc_free(t2);
    hoist_loc_free(a);
    hoist_loc_free(b);
    hoist_loc_free(ix);
  }
  free(lay);

  /* the arm64 target refuses the amd64 bundle and removes nothing else */
  hoist_bundle_opts o2 = {.arch = "arm64"};
  assert_true(hoist_bundle_stage(tarball, into, &o2, NULL, NULL, &err) < 0);
  assert_err_contains(&err, "bundle architecture mismatch: expected arm64, got amd64");
  struct stat st;
  assert_int_equal(stat(want, &st), 0);

  free(want);
  free(staged);
  free(into);
  free(tarball);
  assert_int_equal(hoist_fs_rm_rf_at(AT_FDCWD, dir, NULL), 0);
  free(dir);
}

static void test_arch_target(void **state) {
  (void)state;
  static const struct {
    const char *target, *want; /* want NULL: refused */
  } cases[] = {
      {"127.0.0.1:5000/cluster:0.1.0", "127.0.0.1:5000/cluster:0.1.0-arm64"},
      {"busybox", "docker.io/library/busybox:latest-arm64"},
      {"oci:/tmp/lay:v1", "oci:/tmp/lay:v1-arm64"},
      {"oci:/tmp/lay", NULL},
      {"127.0.0.1:5000/x@sha256:" SHA, NULL},
      {"127.0.0.1:5000/x:1@sha256:" SHA, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    hoist_err *err = NULL;
    hoist_loc *l = NULL, *out = NULL;
    assert_ok(hoist_loc_parse(cases[i].target, &l, &err), &err);
    int r = hoist_bundle_arch_target(l, "arm64", &out, &err);
    if (!cases[i].want) {
      assert_true(r < 0);
      assert_err_contains(&err, "needs a tag");
    } else {
      assert_ok(r, &err);
      char *s = hoist_loc_string(out);
      assert_string_equal(s, cases[i].want);
      free(s);
    }
    hoist_loc_free(l);
    hoist_loc_free(out);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_manifest_parse_table), cmocka_unit_test(test_manifest_entries_table),
      cmocka_unit_test(test_manifest_arch),        cmocka_unit_test(test_rfc3339_and_names),
      cmocka_unit_test(test_arch_resolve),         cmocka_unit_test(test_mappings),
      cmocka_unit_test(test_cache_path),           cmocka_unit_test(test_stage_then_map),
      cmocka_unit_test(test_arch_target),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
