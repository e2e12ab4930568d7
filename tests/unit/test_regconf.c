/* registries.conf (regconf.h): what each setting does to the references a
 * user writes, as tables. */
#include <sys/stat.h>

#include "hoist/regconf.h"
#include "test_util.h"

static void conf_add(hoist_regconf *c, const char *name, const char *text) {
  hoist_err *err = NULL;
  assert_ok(hoist_regconf_parse(c, text, strlen(text), name, &err), &err);
}

static char *ref_text(const char *s) {
  hoist_ref *r = NULL;
  hoist_err *err = NULL;
  assert_ok(hoist_ref_parse(s, &r, &err), &err);
  char *t = hoist_ref_string(r);
  hoist_ref_free(r);
  return t;
}

static const char main_conf[] = "unqualified-search-registries = [\"127.0.0.1:5000\"]\n"
                                "[[registry]]\n"
                                "prefix = \"example.com/foo\"\n"
                                "location = \"internal.example.com/bar\"\n"
                                "[[registry]]\n"
                                "prefix = \"example.com/foo/deep\"\n"
                                "location = \"deep.example.com\"\n"
                                "[[registry]]\n"
                                "location = \"example.com\"\n"
                                "[[registry.mirror]]\n"
                                "location = \"m1.local:5000/ex\"\n"
                                "[[registry.mirror]]\n"
                                "location = \"m2.local\"\n"
                                "pull-from-mirror = \"digest-only\"\n"
                                "[[registry.mirror]]\n"
                                "location = \"m3.local\"\n"
                                "pull-from-mirror = \"tag-only\"\n"
                                "[[registry]]\n"
                                "prefix = \"evil.example\"\n"
                                "blocked = true\n"
                                "[[registry]]\n"
                                "prefix = \"*.blocked.test\"\n"
                                "blocked = true\n";

#define D "@sha256:0123456789012345678901234567890123456789012345678901234567890123"

static void test_regconf_pull_and_push(void **state) {
  (void)state;
  _cleanup_regconf_ hoist_regconf *c = hoist_regconf_new();
  conf_add(c, "main.conf", main_conf);
  static const struct {
    const char *ref;
    const char *pull; /* sources joined by " ", or the error */
    const char *push;
  } cases[] = {
      /* longest prefix wins; a prefix ends at '/', ':' or '@' */
      {"example.com/foo/app:1", "internal.example.com/bar/app:1", "internal.example.com/bar/app:1"},
      {"example.com/foo:1", "internal.example.com/bar:1", "internal.example.com/bar:1"},
      {"example.com/foo/deep/x", "deep.example.com/x:latest", "deep.example.com/x:latest"},
      {"example.com/foobar/x:1",
       "m1.local:5000/ex/foobar/x:1 m3.local/foobar/x:1 example.com/foobar/x:1",
       "example.com/foobar/x:1"},
      {"example.com/x" D, "m1.local:5000/ex/x" D " m2.local/x" D " example.com/x" D,
       "example.com/x" D},
      {"other.example/x:1", "other.example/x:1", "other.example/x:1"},
      /* a port makes another host */
      {"example.com:5000/x:1", "example.com:5000/x:1", "example.com:5000/x:1"},
      {"evil.example/x:1",
       "!blocked by the [[registry]] of prefix \"evil.example\" at main.conf:18",
       "!push evil.example/x:1: blocked"},
      {"a.blocked.test/x", "!pull a.blocked.test/x:latest: blocked", "!blocked"},
      {"blocked.test/x", "blocked.test/x:latest", "blocked.test/x:latest"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hoist_ref *ref = NULL;
    hoist_err *err = NULL;
    assert_ok(hoist_ref_parse(cases[i].ref, &ref, &err), &err);
    hoist_ref **src = NULL;
    int r = hoist_regconf_pull_sources(c, ref, &src, &err);
    if (cases[i].pull[0] == '!') {
      if (r == 0)
        fail_msg("case %zu: pull not refused", i);
      assert_int_equal(hoist_err_root_code(err), HOIST_E_UNSAFE);
      assert_err_contains(&err, cases[i].pull + 1);
    } else {
      assert_ok(r, &err);
      hoist_buf b = HOIST_BUF_INIT(4096);
      for (size_t k = 0; src[k]; k++) {
        _cleanup_free_ char *t = hoist_ref_string(src[k]);
        assert_ok(hoist_buf_appendf(&b, &err, "%s%s", k ? " " : "", t), &err);
      }
      if (strcmp(b.data, cases[i].pull) != 0)
        fail_msg("case %zu: pull from \"%s\", expected \"%s\"", i, b.data, cases[i].pull);
      hoist_buf_free(&b);
      hoist_regconf_refs_free(src);
    }
    hoist_ref *dst = NULL;
    r = hoist_regconf_push_target(c, ref, &dst, &err);
    if (cases[i].push[0] == '!') {
      if (r == 0)
        fail_msg("case %zu: push not refused", i);
      assert_err_contains(&err, cases[i].push + 1);
    } else {
      assert_ok(r, &err);
      _cleanup_free_ char *t = hoist_ref_string(dst);
      assert_string_equal(t, cases[i].push);
      hoist_ref_free(dst);
    }
    hoist_ref_free(ref);
  }
}

static void test_regconf_short_names(void **state) {
  (void)state;
  static const struct {
    const char *conf; /* NULL: no configuration at all */
    const char *name;
    const char *want; /* the reference, or "!" and the error */
    const char *how;  /* NULL: none */
  } cases[] = {
      {NULL, "busybox", "docker.io/library/busybox:latest", NULL},
      {"", "busybox:1", "docker.io/library/busybox:1", NULL},
      {"", "quay.io/x/y", "quay.io/x/y:latest", NULL},
      /* aliases: tag and digest kept */
      {"[aliases]\nbase = \"ghcr.io/o/base\"\n", "base", "ghcr.io/o/base:latest",
       "alias \"base\" at c.conf:2"},
      {"[aliases]\nbase = \"ghcr.io/o/base\"\n", "base:2", "ghcr.io/o/base:2", "alias"},
      {"[aliases]\n\"o/base\" = \"ghcr.io/o/base\"\n", "o/base" D, "ghcr.io/o/base" D, "alias"},
      /* a qualified name is never looked up */
      {"[aliases]\nx = \"ghcr.io/o/x\"\n", "localhost/x", "localhost/x:latest", NULL},
      /* the community prefix: names without '/' */
      {"[hoist]\nshort-name-prefix = \"ghcr.io/nvidia/openshell-community/sandboxes\"\n", "base",
       "ghcr.io/nvidia/openshell-community/sandboxes/base:latest", "short-name-prefix at c.conf:2"},
      {"[hoist]\nshort-name-prefix = \"127.0.0.1:5000/sb/\"\n", "base:v2",
       "127.0.0.1:5000/sb/base:v2", "short-name-prefix"},
      {"[hoist]\nshort-name-prefix = \"127.0.0.1:5000/sb\"\n", "team/base",
       "docker.io/team/base:latest", NULL},
      /* aliases before the prefix, the prefix before the search list */
      {"unqualified-search-registries = [\"a.io\"]\n[hoist]\nshort-name-prefix = \"p.io/s\"\n"
       "[aliases]\nbase = \"q.io/base\"\n",
       "base", "q.io/base:latest", "alias"},
      {"unqualified-search-registries = [\"a.io\"]\n[hoist]\nshort-name-prefix = \"p.io/s\"\n",
       "base", "p.io/s/base:latest", "short-name-prefix"},
      /* the search list: one candidate is the answer, several an error */
      {"unqualified-search-registries = [\"127.0.0.1:5000\"]\n", "team/x:1",
       "127.0.0.1:5000/team/x:1", "unqualified-search-registries at c.conf:1"},
      {"unqualified-search-registries = [\"docker.io\"]\n", "busybox",
       "docker.io/library/busybox:latest", "unqualified-search-registries"},
      {"unqualified-search-registries = [\"a.io\", \"docker.io\"]\nshort-name-mode = "
       "\"permissive\"\n",
       "x",
       "!short name \"x\" is ambiguous: it could be a.io/x:latest, "
       "docker.io/library/x:latest (unqualified-search-registries at c.conf:1)",
       NULL},
      {"unqualified-search-registries = []\n", "x", "docker.io/library/x:latest", NULL},
      /* the name is checked as written */
      {"[hoist]\nshort-name-prefix = \"p.io/s\"\n", "Base", "!must be lowercase", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    _cleanup_regconf_ hoist_regconf *c = NULL;
    if (cases[i].conf) {
      c = hoist_regconf_new();
      conf_add(c, "c.conf", cases[i].conf);
    }
    hoist_ref *ref = NULL;
    hoist_err *err = NULL;
    char *how = NULL;
    int r = hoist_regconf_resolve(c, cases[i].name, &ref, &how, &err);
    if (cases[i].want[0] == '!') {
      if (r == 0)
        fail_msg("case %zu: %s resolved", i, cases[i].name);
      assert_err_contains(&err, cases[i].want + 1);
      continue;
    }
    assert_ok(r, &err);
    _cleanup_free_ char *got = hoist_ref_string(ref);
    _cleanup_free_ char *want = ref_text(cases[i].want);
    if (strcmp(got, want) != 0)
      fail_msg("case %zu: %s resolved to %s, expected %s", i, cases[i].name, got, want);
    if (cases[i].how ? !how || !strstr(how, cases[i].how) : how != NULL)
      fail_msg("case %zu: how \"%s\"", i, how ? how : "(null)");
    free(how);
    hoist_ref_free(ref);
  }
  assert_true(hoist_regconf_is_short("base"));
  assert_true(hoist_regconf_is_short("a/b:1"));
  assert_false(hoist_regconf_is_short("localhost/b"));
  assert_false(hoist_regconf_is_short("127.0.0.1:5000/b"));
}

static void write_text(const char *dir, const char *name, const char *text) {
  _cleanup_free_ char *p = hoist_asprintf("%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* Drop-ins are read in lexical order after the main file, each overriding
 * what the ones before set; other files of the directory are ignored. */
static void test_regconf_dropins(void **state) {
  (void)state;
  _cleanup_free_ char *dir = test_mkdtemp();
  _cleanup_free_ char *d1 = hoist_asprintf("%s/sys.d", dir);
  _cleanup_free_ char *d2 = hoist_asprintf("%s/user.d", dir);
  assert_int_equal(mkdir(d1, 0700), 0);
  assert_int_equal(mkdir(d2, 0700), 0);
  write_text(dir, "main.conf",
             "unqualified-search-registries = [\"a.io\", \"b.io\"]\n"
             "[aliases]\nbase = \"main.io/base\"\nkeep = \"main.io/keep\"\n"
             "[[registry]]\nprefix = \"x.io\"\nlocation = \"main.io\"\n");
  write_text(d1, "20-b.conf", "[aliases]\nbase = \"b.io/base\"\n");
  write_text(d1, "10-a.conf", "[aliases]\nbase = \"a.io/base\"\nnew = \"a.io/new\"\n");
  write_text(d1, "30-search.conf", "unqualified-search-registries = [\"only.io\"]\n");
  write_text(d1, "notes.txt", "not toml [\n");
  write_text(d2, "00-user.conf",
             "[[registry]]\nprefix = \"x.io\"\nlocation = \"user.io\"\n"
             "[hoist]\nshort-name-prefix = \"127.0.0.1:1/sb\"\n");
  _cleanup_free_ char *main_file = hoist_asprintf("%s/main.conf", dir);
  _cleanup_free_ char *missing = hoist_asprintf("%s/missing.d", dir);
  const char *dirs[] = {d1, missing, d2, NULL};
  hoist_regconf *c = NULL;
  hoist_err *err = NULL;
  assert_ok(hoist_regconf_load(main_file, true, dirs, &c, &err), &err);
  static const struct {
    const char *name, *want;
  } cases[] = {
      {"base", "b.io/base:latest"},          {"new", "a.io/new:latest"},
      {"keep", "main.io/keep:latest"},       {"other", "127.0.0.1:1/sb/other:latest"},
      {"t/other", "only.io/t/other:latest"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hoist_ref *ref = NULL;
    assert_ok(hoist_regconf_resolve(c, cases[i].name, &ref, NULL, &err), &err);
    _cleanup_free_ char *got = hoist_ref_string(ref);
    assert_string_equal(got, cases[i].want);
    hoist_ref_free(ref);
  }
  hoist_ref *ref = NULL, *dst = NULL;
  assert_ok(hoist_ref_parse("x.io/app", &ref, &err), &err);
  assert_ok(hoist_regconf_push_target(c, ref, &dst, &err), &err);
  assert_string_equal(dst->domain, "user.io");
  hoist_ref_free(ref);
  hoist_ref_free(dst);
  hoist_regconf_free(c);
  /* a missing main file: skipped unless required */
  assert_ok(hoist_regconf_load(missing, false, NULL, &c, &err), &err);
  hoist_regconf_free(c);
  assert_true(hoist_regconf_load(missing, true, NULL, &c, &err) < 0);
  assert_err_contains(&err, "missing.d");
  /* a bad drop-in names itself */
  write_text(d2, "50-bad.conf", "\n[[registry]]\nlocation = 5\n");
  assert_true(hoist_regconf_load(main_file, true, dirs, &c, &err) < 0);
  assert_err_contains(&err, "user.d/50-bad.conf:3: location must be a string, not a integer");
}

static void test_regconf_bad_files(void **state) {
  (void)state;
  static const struct {
    const char *text, *msg;
  } cases[] = {
      {"[registries.search]\nregistries = []\n", "c.conf:1: this is a version 1 file"},
      {"unqualified-search-registries = \"a.io\"\n",
       "c.conf:1: unqualified-search-registries must be a array, not a string"},
      {"unqualified-search-registries = [\"a.io/x\"]\n", "c.conf:1: unqualified-search-registries"},
      {"short-name-mode = \"loose\"\n", "c.conf:1: short-name-mode is enforcing"},
      {"[[registry]]\ninsecure = true\n", "c.conf:1: a [[registry]] needs a prefix or a location"},
      {"[[registry]]\nlocation = \"nohost/x\"\n", "c.conf:1: location \"nohost/x\" is not HOST"},
      {"[[registry]]\nlocation = \"a.io/x:1\"\n", "location \"a.io/x:1\" is not HOST"},
      {"[[registry]]\nprefix = \"*.a.io\"\nlocation = \"b.io\"\n", "is a wildcard"},
      {"[[registry]]\nprefix = \"*.a.io/x\"\n", "wildcard prefix \"*.a.io/x\" is not *.DOMAIN"},
      {"[[registry]]\nlocation = \"a.io\"\n[[registry]]\nprefix = \"a.io\"\n",
       "c.conf:3: a [[registry]] of prefix \"a.io\" is at c.conf:1 already"},
      {"[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\ninsecure = true\n",
       "c.conf:3: a [[registry.mirror]] needs a location"},
      {"[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"m.io\"\n"
       "pull-from-mirror = \"sometimes\"\n",
       "pull-from-mirror is all, digest-only or tag-only"},
      {"[[registry]]\nlocation = \"a.io\"\nblocked = \"yes\"\n",
       "c.conf:3: blocked must be a boolean, not a string"},
      {"registry = 1\n", "c.conf:1: registry must be a array"},
      {"registry = [1]\n", "c.conf:1: registry must be an array of tables"},
      {"[aliases]\nbase = \"base2\"\n", "c.conf:2: alias base: \"base2\" is not a qualified name"},
      {"[aliases]\nbase = \"a.io/base:1\"\n", "alias base: \"a.io/base:1\" is not a qualified"},
      {"[aliases]\n\"a.io/base\" = \"a.io/base\"\n",
       "alias name \"a.io/base\" is not a short name"},
      {"[aliases]\nbase = 1\n", "c.conf:2: alias base must be a string"},
      {"[hoist]\nshort-name-prefix = \"sandboxes\"\n", "c.conf:2: short-name-prefix"},
      {"a = [\n", "c.conf:2: unterminated array"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    _cleanup_regconf_ hoist_regconf *c = hoist_regconf_new();
    conf_add(c, "before.conf", "[aliases]\nkept = \"k.io/kept\"\n");
    hoist_err *err = NULL;
    if (hoist_regconf_parse(c, cases[i].text, strlen(cases[i].text), "c.conf", &err) == 0)
      fail_msg("case %zu parsed: %s", i, cases[i].text);
    assert_err_contains(&err, cases[i].msg);
    /* what was there before stays */
    hoist_ref *ref = NULL;
    assert_ok(hoist_regconf_resolve(c, "kept", &ref, NULL, &err), &err);
    assert_string_equal(ref->domain, "k.io");
    hoist_ref_free(ref);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_regconf_pull_and_push),
      cmocka_unit_test(test_regconf_short_names),
      cmocka_unit_test(test_regconf_dropins),
      cmocka_unit_test(test_regconf_bad_files),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
