/* build: the kinds table and the build cache key. */
#include <string.h>

#include "hoist/build.h"
#include "test_util.h"

/* The reference deployer's requirement file of each kind. */
static void test_build_kinds_table(void **state) {
  (void)state;
  static const struct {
    const char *kind;
    const char *file;
    const char *in_script; /* the tool the recipe runs */
    const char *config;    /* an Env entry the new image gets, or NULL */
  } cases[] = {
      {"go", "go.mod", "go mod download", "GOMODCACHE="},
      {"java", "pom.xml", "mvn ", "CLASSPATH="},
      {"nodejs", "package.json", "npm install", "NODE_PATH=/opt/hoist/nodejs/node_modules"},
      {"php", "composer.json", "composer install", NULL},
      {"python", "requirements.txt", "pip install -r /tmp/requirements.txt", NULL},
      {"ruby", "Gemfile", "bundle install", "BUNDLE_GEMFILE="},
      {"dotnet", "project.json", "dotnet restore", "NUGET_PACKAGES="},
  };
  size_t n = 0;
  hoist_build_kinds(&n);
  assert_int_equal(n, sizeof cases / sizeof cases[0]);
  for (size_t i = 0; i < n; i++) {
    const hoist_build_kind *k = hoist_build_kind_find(cases[i].kind);
    assert_non_null(k);
    assert_string_equal(k->file, cases[i].file);
    assert_non_null(strstr(k->script, cases[i].in_script));
    assert_true(k->version >= 1);
    assert_true(k->mirrors != 0 && k->mirrors < HOIST_MIRROR_BIT(HOIST_MIRROR_COUNT));
    if (cases[i].config) {
      assert_non_null(k->config);
      assert_true(strncmp(k->config[0], cases[i].config, strlen(cases[i].config)) == 0);
    }
    /* every variable is NAME=value */
    for (const char *const *e = k->env; e && *e; e++)
      assert_true(strchr(*e, '=') > *e);
    for (const char *const *e = k->config; e && *e; e++)
      assert_true(strchr(*e, '=') > *e);
  }
  static const char *const unknown[] = {"", "Python", "python3", "rust", NULL};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
    assert_null(hoist_build_kind_find(unknown[i]));
}

static void test_build_mirror_options(void **state) {
  (void)state;
  static const struct {
    hoist_mirror m;
    const char *option;
    const char *env;
  } cases[] = {
      {HOIST_MIRROR_PIP, "pip-index-url", "PIP_INDEX_URL"},
      {HOIST_MIRROR_NPM, "npm-registry", "npm_config_registry"},
      {HOIST_MIRROR_GO, "goproxy", "GOPROXY"},
      {HOIST_MIRROR_GONOSUMDB, "gonosumdb", "GONOSUMDB"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const hoist_mirror_info *mi = hoist_build_mirror_info(cases[i].m);
    assert_string_equal(mi->option, cases[i].option);
    assert_string_equal(mi->env, cases[i].env);
  }
  for (int m = 0; m < HOIST_MIRROR_COUNT; m++)
    assert_non_null(hoist_build_mirror_info((hoist_mirror)m)->host_env);
  assert_null(hoist_build_mirror_info(HOIST_MIRROR_COUNT));
}

/* Each input of the key changes it; a mirror of another ecosystem does not. */
static void test_build_cache_key(void **state) {
  (void)state;
  const hoist_build_kind *py = hoist_build_kind_find("python");
  const hoist_build_kind *js = hoist_build_kind_find("nodejs");
  static const char base1[] =
      "sha256:1111111111111111111111111111111111111111111111111111111111111111";
  static const char base2[] =
      "sha256:2222222222222222222222222222222222222222222222222222222222222222";
  hoist_platform *amd64 = NULL, *arm64 = NULL;
  hoist_err *err = NULL;
  assert_ok(hoist_platform_parse("linux/amd64", &amd64, &err), &err);
  assert_ok(hoist_platform_parse("linux/arm64", &arm64, &err), &err);
  const char *none[HOIST_MIRROR_COUNT] = {0};
  const char *pip[HOIST_MIRROR_COUNT] = {[HOIST_MIRROR_PIP] = "http://127.0.0.1:1/simple"};
  const char *npm[HOIST_MIRROR_COUNT] = {[HOIST_MIRROR_NPM] = "http://127.0.0.1:1/"};

  char ref[HOIST_DIGEST_STR_LEN], again[HOIST_DIGEST_STR_LEN];
  hoist_build_cache_key(py, base1, amd64, "flask\n", 6, none, ref);
  hoist_build_cache_key(py, base1, amd64, "flask\n", 6, none, again);
  assert_string_equal(ref, again);
  assert_true(hoist_digest_valid(ref));
  /* a mirror of another ecosystem is not an input of this kind */
  hoist_build_cache_key(py, base1, amd64, "flask\n", 6, npm, again);
  assert_string_equal(ref, again);

  struct {
    const hoist_build_kind *k;
    const char *base;
    const hoist_platform *p;
    const char *file;
    const char *const *mirrors;
  } differ[] = {
      {js, base1, amd64, "flask\n", none}, {py, base2, amd64, "flask\n", none},
      {py, base1, arm64, "flask\n", none}, {py, base1, amd64, "flask\r", none},
      {py, base1, amd64, "flask", none},   {py, base1, amd64, "flask\n", pip},
      {py, base1, NULL, "flask\n", none},
  };
  char seen[sizeof differ / sizeof differ[0]][HOIST_DIGEST_STR_LEN];
  for (size_t i = 0; i < sizeof differ / sizeof differ[0]; i++) {
    hoist_build_cache_key(differ[i].k, differ[i].base, differ[i].p, differ[i].file,
                          strlen(differ[i].file), differ[i].mirrors, seen[i]);
    assert_string_not_equal(seen[i], ref);
    for (size_t j = 0; j < i; j++)
      assert_string_not_equal(seen[i], seen[j]);
  }

  /* go reads two settings: both are inputs of its key, neither of python's */
  const hoist_build_kind *go = hoist_build_kind_find("go");
  const char *proxy[HOIST_MIRROR_COUNT] = {[HOIST_MIRROR_GO] = "http://127.0.0.1:1"};
  const char *nosum[HOIST_MIRROR_COUNT] = {
      [HOIST_MIRROR_GO] = "http://127.0.0.1:1", [HOIST_MIRROR_GONOSUMDB] = "example.com/*"};
  char g0[HOIST_DIGEST_STR_LEN], g1[HOIST_DIGEST_STR_LEN], g2[HOIST_DIGEST_STR_LEN];
  hoist_build_cache_key(go, base1, amd64, "module a\n", 9, none, g0);
  hoist_build_cache_key(go, base1, amd64, "module a\n", 9, proxy, g1);
  hoist_build_cache_key(go, base1, amd64, "module a\n", 9, nosum, g2);
  assert_string_not_equal(g0, g1);
  assert_string_not_equal(g1, g2);
  assert_string_not_equal(g0, g2);
  hoist_build_cache_key(py, base1, amd64, "flask\n", 6, nosum, again);
  assert_string_equal(ref, again);
  hoist_platform_free(amd64);
  hoist_platform_free(arm64);
}

/* Inputs hoist_build refuses before it touches the base or the sandbox. */
static void test_build_refuses_bad_options(void **state) {
  (void)state;
  static const char file[] = "flask\n";
  static const struct {
    const char *kind;
    size_t file_len;
    bool target;
    const char *base_dir;
    bool caches;
    const char *error;
  } cases[] = {
      {"cobol", 6, true, "/nonexistent", true, "unknown kind 'cobol' (known: python, nodejs, go,"},
      {NULL, 6, true, "/nonexistent", true, "unknown kind ''"},
      {"python", HOIST_BUILD_FILE_MAX + 1, true, "/nonexistent", true, "at most 5000000"},
      {"python", 6, false, "/nonexistent", true, "needs a base and a target"},
      {"python", 6, true, NULL, true, "needs a base and a target"},
      {"python", 6, true, "/nonexistent", false, "needs a build cache and a rootfs cache"},
      {"python", 6, true, "/nonexistent/layout", true, "/nonexistent/layout"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hoist_build_opts o;
    hoist_build_opts_init(&o);
    o.kind = cases[i].kind;
    o.file = file;
    o.file_len = cases[i].file_len;
    o.base_dir = cases[i].base_dir;
    o.cache_dir = cases[i].caches ? "/nonexistent/build-cache" : NULL;
    o.rootfs_dir = cases[i].caches ? "/nonexistent/rootfs" : NULL;
    o.target = cases[i].target ? (hoist_transport_target *)&o : NULL; /* never reached */
    hoist_build_result res;
    hoist_err *err = NULL;
    assert_true(hoist_build(&o, &res, &err) < 0);
    assert_err_contains(&err, cases[i].error);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_build_kinds_table),
      cmocka_unit_test(test_build_mirror_options),
      cmocka_unit_test(test_build_cache_key),
      cmocka_unit_test(test_build_refuses_bad_options),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
