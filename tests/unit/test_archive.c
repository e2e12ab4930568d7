/* The archive drivers of the transport: tables of hostile and broken
 * docker and OCI archives, each refused with a message naming what is
 * wrong; the manifest.json parser; writes that fail leave nothing. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/sysmacros.h>
#include <zlib.h>

#include "hoist/fs.h"
#include "hoist/image.h"
#include "hoist/transport.h"
#include "image_util.h"
#include "test_util.h"

/* A member of a test archive. type: 'f' file, 'd' directory, 'l' symlink
 * (data is the target), 'h' hardlink (data is the target), 'c' character
 * device. In names and data, {L} is the good layer's hex, {C} the good
 * config's; data "=LAYER", "=LAYER2" (another tar) and "=CONFIG" stand for
 * those blobs. */
typedef struct member {
  const char *name;
  char type;
  const char *data;
} member;

typedef struct fixture {
  char *layer, *layer2, *layer_gz, *config;
  size_t layer_len, layer2_len, layer_gz_len, config_len;
  char layer_hex[HOIST_DIGEST_HEX_LEN + 1], config_hex[HOIST_DIGEST_HEX_LEN + 1];
} fixture;

static fixture fx;

static void make_fixture(void) {
  if (fx.layer)
    return;
  assert_int_equal(test_make_tar("archive test\n", &fx.layer, &fx.layer_len), 0);
  assert_int_equal(test_make_tar("another\n", &fx.layer2, &fx.layer2_len), 0);
  /* the layer gzip-compressed, as some tools store them */
  z_stream z = {0};
  assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  fx.layer_gz = hoist_malloc0(fx.layer_len + 1024);
  z.next_in = (Bytef *)fx.layer;
  z.avail_in = (uInt)fx.layer_len;
  z.next_out = (Bytef *)fx.layer_gz;
  z.avail_out = (uInt)fx.layer_len + 1024;
  assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
  fx.layer_gz_len = z.total_out;
  deflateEnd(&z);
  char d[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of(fx.layer, fx.layer_len, d);
  memcpy(fx.layer_hex, d + 7, HOIST_DIGEST_HEX_LEN + 1);
  fx.config = hoist_asprintf("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},"
                             "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
                             d);
  fx.config_len = strlen(fx.config);
  hoist_sha256_of(fx.config, fx.config_len, d);
  memcpy(fx.config_hex, d + 7, HOIST_DIGEST_HEX_LEN + 1);
}

/* s with {L} and {C} replaced. Caller frees. */
static char *expand(const char *s) {
  hoist_buf b = HOIST_BUF_INIT(0);
  for (const char *p = s; *p;) {
    if (strncmp(p, "{L}", 3) == 0 || strncmp(p, "{C}", 3) == 0) {
      const char *hex = p[1] == 'L' ? fx.layer_hex : fx.config_hex;
      assert_int_equal(hoist_buf_append(&b, hex, strlen(hex), NULL), 0);
      p += 3;
    } else {
      assert_int_equal(hoist_buf_append(&b, p, 1, NULL), 0);
      p++;
    }
  }
  assert_int_equal(hoist_buf_append(&b, "", 1, NULL), 0);
  return hoist_buf_steal(&b);
}

/* Writes the members as a tar at path. */
static void write_tar(const char *path, const member *ms) {
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
  struct archive_entry *e = archive_entry_new();
  for (const member *m = ms; m->name; m++) {
    _cleanup_free_ char *name = expand(m->name);
    _cleanup_free_ char *data = m->data ? expand(m->data) : hoist_strdup("");
    const char *bytes = data;
    size_t len = strlen(data);
    if (strcmp(data, "=LAYER") == 0)
      bytes = fx.layer, len = fx.layer_len;
    else if (strcmp(data, "=LAYER2") == 0)
      bytes = fx.layer2, len = fx.layer2_len;
    else if (strcmp(data, "=LAYERGZ") == 0)
      bytes = fx.layer_gz, len = fx.layer_gz_len;
    else if (strcmp(data, "=CONFIG") == 0)
      bytes = fx.config, len = fx.config_len;
    archive_entry_clear(e);
    archive_entry_set_pathname(e, name);
    archive_entry_set_perm(e, 0644);
    switch (m->type) {
    case 'd':
      archive_entry_set_filetype(e, AE_IFDIR);
      break;
    case 'l':
      archive_entry_set_filetype(e, AE_IFLNK);
      archive_entry_set_symlink(e, data);
      break;
    case 'h':
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_hardlink(e, data);
      break;
    case 'c':
      archive_entry_set_filetype(e, AE_IFCHR);
      archive_entry_set_rdev(e, makedev(1, 3));
      break;
    default:
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_size(e, (la_int64_t)len);
    }
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    if (m->type == 'f' && len)
      assert_int_equal(archive_write_data(a, bytes, len), (la_ssize_t)len);
  }
  archive_entry_free(e);
  assert_int_equal(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
}

/* True when dir has no entry. */
static bool dir_empty(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  bool empty = true;
  for (struct dirent *de; (de = readdir(d));)
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
      empty = false;
  closedir(d);
  return empty;
}

#define GOOD_MANIFEST "[{\"Config\":\"{C}.json\",\"RepoTags\":[\"a:1\"],\"Layers\":[\"{L}.tar\"]}]"
#define LAYER                                                                                      \
  { "{L}.tar", 'f', "=LAYER" }
#define CONFIG                                                                                     \
  { "{C}.json", 'f', "=CONFIG" }
#define MANIFEST(json)                                                                             \
  { "manifest.json", 'f', json }

static void test_docker_archive_table(void **state) {
  (void)state;
  make_fixture();
  static const struct {
    const char *what;
    const char *suffix; /* after docker-archive:PATH */
    member members[8];
    const char *error; /* NULL: read */
  } cases[] = {
      {"good", "", {LAYER, CONFIG, MANIFEST(GOOD_MANIFEST)}, NULL},
      {"good, by name", ":a:1", {LAYER, CONFIG, MANIFEST(GOOD_MANIFEST)}, NULL},
      {"good, by number", ":@0", {MANIFEST(GOOD_MANIFEST), CONFIG, LAYER}, NULL},
      {"good, ./ names and a directory",
       "",
       {{"./x/", 'd', NULL},
        {"./{L}.tar", 'f', "=LAYER"},
        {"./{C}.json", 'f', "=CONFIG"},
        MANIFEST(GOOD_MANIFEST)},
       NULL},
      {"good, legacy symlinked layer",
       "",
       {LAYER,
        {"id/", 'd', NULL},
        {"id/layer.tar", 'l', "../{L}.tar"},
        CONFIG,
        MANIFEST("[{\"Config\":\"{C}.json\",\"Layers\":[\"id/layer.tar\"]}]")},
       NULL},
      {"gzip layer", "", {{"{L}.tar", 'f', "=LAYERGZ"}, CONFIG, MANIFEST(GOOD_MANIFEST)}, NULL},
      {"no manifest.json", "", {LAYER, CONFIG}, "no manifest.json: not a docker archive"},
      {"manifest.json not JSON", "", {LAYER, CONFIG, MANIFEST("[{")}, "manifest.json: line 1"},
      {"manifest.json empty", "", {LAYER, CONFIG, MANIFEST("[]")}, "must be a non-empty array"},
      {"manifest.json an object", "", {MANIFEST("{}")}, "must be a non-empty array"},
      {"Layers not an array",
       "",
       {CONFIG, MANIFEST("[{\"Config\":\"{C}.json\",\"Layers\":\"x\"}]")},
       "Layers must be an array"},
      {"Config with ..",
       "",
       {MANIFEST("[{\"Config\":\"a/../../x.json\",\"Layers\":[]}]")},
       "\"..\" in the name"},
      {"Config absolute",
       "",
       {MANIFEST("[{\"Config\":\"/etc/passwd\",\"Layers\":[]}]")},
       "absolute name"},
      {"member with ..", "", {{"a/../../evil", 'f', "x"}, MANIFEST(GOOD_MANIFEST)}, "\"..\" in"},
      {"absolute member", "", {{"/evil", 'f', "x"}, MANIFEST(GOOD_MANIFEST)}, "absolute name"},
      {"symlink out of the archive",
       "",
       {{"{L}.tar", 'l', "../../etc/passwd"}, CONFIG, MANIFEST(GOOD_MANIFEST)},
       "leaves the archive"},
      {"symlink to an absolute path",
       "",
       {{"{L}.tar", 'l', "/etc/passwd"}, CONFIG, MANIFEST(GOOD_MANIFEST)},
       "absolute target"},
      {"symlink loop",
       "",
       {{"{L}.tar", 'l', "b"}, {"b", 'l', "{L}.tar"}, CONFIG, MANIFEST(GOOD_MANIFEST)},
       "HOIST_ARCHIVE_LINKS_MAX"},
      {"symlink to a directory",
       "",
       {{"d/", 'd', NULL}, {"{L}.tar", 'l', "d"}, CONFIG, MANIFEST(GOOD_MANIFEST)},
       "is a directory"},
      {"layer missing", "", {CONFIG, MANIFEST(GOOD_MANIFEST)}, "is not in the archive"},
      {"config missing", "", {LAYER, MANIFEST(GOOD_MANIFEST)}, "the config"},
      {"config not its name's digest",
       "",
       {LAYER,
        {"0000000000000000000000000000000000000000000000000000000000000000.json", 'f', "=CONFIG"},
        MANIFEST("[{\"Config\":\"0000000000000000000000000000000000000000000000000000000000000000."
                 "json\",\"Layers\":[\"{L}.tar\"]}]")},
       "its content is sha256:"},
      {"config not JSON",
       "",
       {LAYER, {"c.json", 'f', "nope"}, MANIFEST("[{\"Config\":\"c.json\",\"Layers\":[]}]")},
       "image config"},
      {"layer not the config's diffID",
       "",
       {{"{L}.tar", 'f', "=LAYER2"}, CONFIG, MANIFEST(GOOD_MANIFEST)},
       "the config's diff_ids[0]"},
      {"fewer layers than diff_ids",
       "",
       {CONFIG, MANIFEST("[{\"Config\":\"{C}.json\",\"Layers\":[]}]")},
       "lists 0 layers, the config 1"},
      {"hardlink",
       "",
       {LAYER, {"h", 'h', "{L}.tar"}, CONFIG, MANIFEST(GOOD_MANIFEST)},
       "hardlinks"},
      {"device", "", {{"dev", 'c', NULL}, MANIFEST(GOOD_MANIFEST)}, "only files, directories"},
      {"member twice", "", {LAYER, LAYER, CONFIG, MANIFEST(GOOD_MANIFEST)}, "appears twice"},
      {"two images, none named",
       "",
       {LAYER, CONFIG,
        MANIFEST("[{\"Config\":\"{C}.json\",\"RepoTags\":[\"a:1\"],\"Layers\":[\"{L}.tar\"]},"
                 "{\"Config\":\"{C}.json\",\"RepoTags\":[\"b:2\"],\"Layers\":[\"{L}.tar\"]}]")},
       "holds 2 images: @0 (a:1), @1 (b:2)"},
      {"named image missing",
       ":c:3",
       {LAYER, CONFIG, MANIFEST(GOOD_MANIFEST)},
       "no image tagged docker.io/library/c:3 in the archive (it holds: @0 (a:1))"},
      {"image number missing", ":@4", {LAYER, CONFIG, MANIFEST(GOOD_MANIFEST)}, "no image @4"},
      {"not a tar", "", {{NULL, 0, NULL}}, "not a tar archive"},
  };
  _cleanup_free_ char *dir = test_mkdtemp();
  _cleanup_free_ char *stage = test_mkdtemp();
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    _cleanup_free_ char *path = hoist_asprintf("%s/%zu.tar", dir, i);
    if (cases[i].members[0].name) {
      write_tar(path, cases[i].members);
    } else {
      int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      assert_true(fd >= 0);
      assert_int_equal(write(fd, "hello, not a tar", 16), 16);
      close(fd);
    }
    _cleanup_free_ char *s = hoist_asprintf("docker-archive:%s%s", path, cases[i].suffix);
    _cleanup_loc_ hoist_loc *loc = NULL;
    hoist_err *err = NULL;
    assert_ok(hoist_loc_parse(s, &loc, &err), &err);
    hoist_transport_opts to = {.tmp_dir = stage};
    _cleanup_transport_source_ hoist_transport_source *src = NULL;
    int r = hoist_transport_open_source(&to, loc, &src, &err);
    if (!cases[i].error) {
      if (r < 0) {
        char *t = hoist_err_text(err);
        fail_msg("%s: %s", cases[i].what, t);
      }
      _cleanup_free_ char *data = NULL;
      _cleanup_free_ char *mt = NULL;
      size_t len = 0;
      char digest[HOIST_DIGEST_STR_LEN];
      assert_ok(src->ops->manifest(src, NULL, &data, &len, &mt, digest, &err), &err);
      assert_string_equal(mt, HOIST_MT_DOCKER_MANIFEST);
      _cleanup_free_ char *want =
          hoist_asprintf("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":"
                         "\"%s\",\"size\":%zu,\"digest\":\"sha256:%s\"},\"layers\":[{"
                         "\"mediaType\":\"%s\",\"size\":%zu,\"digest\":\"sha256:%s\"}]}",
                         HOIST_MT_DOCKER_MANIFEST, HOIST_MT_DOCKER_CONFIG, fx.config_len,
                         fx.config_hex, HOIST_MT_DOCKER_LAYER_GZIP, fx.layer_len, fx.layer_hex);
      assert_string_equal(data, want);
      continue;
    }
    if (r == 0)
      fail_msg("%s: accepted", cases[i].what);
    char *t = hoist_err_text(err);
    if (!strstr(t, cases[i].error))
      fail_msg("%s: \"%s\" does not say \"%s\"", cases[i].what, t, cases[i].error);
    free(t);
    hoist_err_free(err);
    /* nothing staged stays behind */
    assert_true(dir_empty(stage));
  }
  hoist_best_effort(hoist_fs_rm_rf_at(AT_FDCWD, dir, NULL));
  hoist_best_effort(hoist_fs_rm_rf_at(AT_FDCWD, stage, NULL));
}

static void test_oci_archive_table(void **state) {
  (void)state;
  make_fixture();
  static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
  static const struct {
    const char *what;
    member members[6];
    const char *error;
  } cases[] = {
      {"no oci-layout", {{"index.json", 'f', "{}"}}, "no oci-layout file"},
      {"no index.json", {{"oci-layout", 'f', layout}}, "no index.json"},
      {"index.json not an index",
       {{"oci-layout", 'f', layout}, {"index.json", 'f', "[]"}},
       "index.json"},
      {"blob not its name's digest",
       {{"oci-layout", 'f', layout}, {"blobs/sha256/{C}", 'f', "=LAYER"}},
       "blobs/sha256/"},
      {"blob a symlink",
       {{"oci-layout", 'f', layout}, {"blobs/sha256/{C}", 'l', "../../../x"}},
       "leaves the archive"},
      {"blob a symlink inside",
       {{"x", 'f', "y"}, {"blobs/sha256/{C}", 'l', "../../x"}},
       "a symlink"},
      {"member with ..", {{"blobs/../../x", 'f', "y"}}, "\"..\" in the name"},
      {"empty index",
       {{"oci-layout", 'f', layout}, {"index.json", 'f', "{\"schemaVersion\":2,\"manifests\":[]}"}},
       "index.json"},
  };
  _cleanup_free_ char *dir = test_mkdtemp();
  _cleanup_free_ char *stage = test_mkdtemp();
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    _cleanup_free_ char *path = hoist_asprintf("%s/%zu.tar", dir, i);
    write_tar(path, cases[i].members);
    _cleanup_free_ char *s = hoist_asprintf("oci-archive:%s", path);
    _cleanup_loc_ hoist_loc *loc = NULL;
    hoist_err *err = NULL;
    assert_ok(hoist_loc_parse(s, &loc, &err), &err);
    hoist_transport_opts to = {.tmp_dir = stage};
    _cleanup_transport_source_ hoist_transport_source *src = NULL;
    if (hoist_transport_open_source(&to, loc, &src, &err) == 0)
      fail_msg("%s: accepted", cases[i].what);
    char *t = hoist_err_text(err);
    if (!strstr(t, cases[i].error))
      fail_msg("%s: \"%s\" does not say \"%s\"", cases[i].what, t, cases[i].error);
    free(t);
    hoist_err_free(err);
    assert_true(dir_empty(stage));
  }
  hoist_best_effort(hoist_fs_rm_rf_at(AT_FDCWD, dir, NULL));
  hoist_best_effort(hoist_fs_rm_rf_at(AT_FDCWD, stage, NULL));
}

static void test_manifest_json(void **state) {
  (void)state;
  static const struct {
    const char *in;
    const char *out; /* NULL: refused, with error */
    const char *error;
  } cases[] = {
      {"[{\"Config\":\"c.json\",\"RepoTags\":null,\"Layers\":[\"./a/"
       "layer.tar\"],\"Parent\":\"x\"}]",
       "[{\"Config\":\"c.json\",\"RepoTags\":[],\"Layers\":[\"a/layer.tar\"]}]", NULL},
      {"[{\"Layers\":[],\"RepoTags\":[\"b:1\",\"c:2\"],\"Config\":\"c\"}]",
       "[{\"Config\":\"c\",\"RepoTags\":[\"b:1\",\"c:2\"],\"Layers\":[]}]", NULL},
      {"[{\"Config\":\"c\",\"Config\":\"d\",\"Layers\":[]}]", NULL, "duplicate"},
      {"[{\"Config\":\"c\"}]", NULL, "Layers is missing"},
      {"[{\"Config\":\"c\",\"Layers\":[1]}]", NULL, "Layers[0] must be a string"},
      {"[{\"Config\":\"c\\u0000x\",\"Layers\":[]}]", NULL, "\\u0000 is not allowed"},
      {"[{\"Config\":\"c\",\"Layers\":[],\"RepoTags\":{}}]", NULL, "RepoTags must be an array"},
      {"[{\"Config\":\"\",\"Layers\":[]}]", NULL, "empty name"},
      {"[{\"Config\":\".\",\"Layers\":[]}]", NULL, "names the archive's root"},
      {"[{\"Config\":\"a\\nb\",\"Layers\":[]}]", NULL, "control character"},
      {"[1]", NULL, "image 0: must be an object"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    hoist_err *err = NULL;
    hoist_docker_archive_manifest *m = NULL;
    int r = hoist_docker_archive_manifest_parse(cases[i].in, strlen(cases[i].in), &m, &err);
    if (cases[i].out) {
      assert_ok(r, &err);
      char *j = hoist_docker_archive_manifest_json(m);
      assert_string_equal(j, cases[i].out);
      free(j);
      hoist_docker_archive_manifest_free(m);
      continue;
    }
    if (r == 0)
      fail_msg("%s accepted", cases[i].in);
    assert_err_contains(&err, cases[i].error);
  }
  /* the size cap is named */
  size_t big = HOIST_ARCHIVE_MANIFEST_MAX + 1;
  char *data = hoist_malloc0(big);
  memset(data, ' ', big);
  hoist_err *err = NULL;
  hoist_docker_archive_manifest *m = NULL;
  assert_true(hoist_docker_archive_manifest_parse(data, big, &m, &err) < 0);
  assert_err_contains(&err, "HOIST_ARCHIVE_MANIFEST_MAX");
  free(data);
}

/* A write that fails leaves neither the archive nor a temp file, and
 * nothing staged. */
static void test_write_failure_leaves_nothing(void **state) {
  (void)state;
  make_fixture();
  _cleanup_free_ char *dir = test_mkdtemp();
  _cleanup_free_ char *stage = test_mkdtemp();
  static const char *const kinds[] = {"docker-archive:%s/out.tar:x:1", "oci-archive:%s/out.tar:v1"};
  for (size_t k = 0; k < 2; k++) {
    _cleanup_free_ char *s = hoist_asprintf(kinds[k], dir);
    _cleanup_loc_ hoist_loc *loc = NULL;
    hoist_err *err = NULL;
    assert_ok(hoist_loc_parse(s, &loc, &err), &err);
    hoist_transport_opts to = {.tmp_dir = stage};
    hoist_transport_target *t = NULL;
    assert_ok(hoist_transport_open_target(&to, loc, &t, &err), &err);
    /* a manifest whose blobs were never given */
    _cleanup_manifest_ hoist_manifest *m = hoist_manifest_new(HOIST_MT_OCI_MANIFEST);
    hoist_descriptor_of_bytes(&m->config, HOIST_MT_OCI_CONFIG, fx.config, fx.config_len);
    hoist_descriptor l;
    hoist_descriptor_of_bytes(&l, HOIST_MT_OCI_LAYER, fx.layer, fx.layer_len);
    hoist_manifest_add_layer(m, &l);
    hoist_descriptor_clear(&l);
    _cleanup_free_ char *json = NULL;
    size_t len = 0;
    assert_ok(hoist_manifest_to_json(m, &json, &len, &err), &err);
    int r = t->ops->put_manifest(t, NULL, json, len, HOIST_MT_OCI_MANIFEST, &err);
    if (k == 0) {
      assert_ok(r, &err); /* blobs are checked when the archive is written */
      assert_true(hoist_transport_commit(t, &err) < 0);
      assert_err_contains(&err, "not in layout");
    } else {
      /* the layout put succeeds; give the archive a path it cannot take */
      assert_ok(r, &err);
      assert_int_equal(mkdir(loc->path, 0755), 0);
      assert_true(hoist_transport_commit(t, &err) < 0);
      assert_err_contains(&err, "rename");
      assert_int_equal(rmdir(loc->path), 0);
    }
    hoist_transport_target_free(t);
    assert_true(dir_empty(dir));
    assert_true(dir_empty(stage));
  }
  hoist_best_effort(hoist_fs_rm_rf_at(AT_FDCWD, dir, NULL));
  hoist_best_effort(hoist_fs_rm_rf_at(AT_FDCWD, stage, NULL));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_docker_archive_table),
      cmocka_unit_test(test_oci_archive_table),
      cmocka_unit_test(test_manifest_json),
      cmocka_unit_test(test_write_failure_leaves_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
