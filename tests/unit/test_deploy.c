#include <fcntl.h>
#include <sys/stat.h>

#include "../../src/lib/deploy/deploy-private.h"
#include "hoist/deploy.h"
#include "hoist/fs.h"
#include "test_util.h"

static const char good_file[] = "# OpenShell-like\n"
                                "state = \".cache/deploy.state\"\n"
                                "\n"
                                "[component.gateway]\n"
                                "paths = [\"Cargo.toml\", 'proto/*',\n"
                                "         \"crates/server/*\", # trailing comma and comment\n"
                                "]\n"
                                "steps = [\"echo \\\"build\\\"\", \"echo \\u00e9\"]\n"
                                "triggers = [\"chart\"]  # an alias works too\n"
                                "\n"
                                "[ component . supervisor ]\n"
                                "paths = [\"proto/\"]\n"
                                "steps = []\n"
                                "aliases = [\"sandbox\"]\n"
                                "\n"
                                "[component.helm]\r\n"
                                "paths = [\"deploy/helm/*\"]\r\n"
                                "steps = [\"echo helm\"]\r\n"
                                "aliases = [\"chart\"]\r\n"
                                "\n"
                                "[scope.cluster_name]\n"
                                "command = \"echo dev\"\n"
                                "invalidates = [\"gateway\", \"supervisor\", \"helm\"]\n";

static void test_file_parse_good(void **state) {
  (void)state;
  hoist_err *err = NULL;
  hoist_deploy_file *f = NULL;
  int r = hoist_deploy_file_parse(good_file, strlen(good_file), "t.toml", &f, &err);
  assert_ok(r, &err);
  assert_string_equal(f->state, ".cache/deploy.state");
  assert_int_equal(f->n_components, 3);
  const hoist_deploy_component *g = &f->components[0];
  assert_string_equal(g->name, "gateway");
  assert_int_equal(g->n_paths, 3);
  assert_string_equal(g->paths[1], "proto/*");
  assert_int_equal(g->n_steps, 2);
  assert_string_equal(g->steps[0], "echo \"build\"");
  assert_string_equal(g->steps[1], "echo \xc3\xa9");
  assert_int_equal(g->n_triggers, 1);
  assert_int_equal(g->triggers[0], 2);
  assert_string_equal(f->components[1].paths[0], "proto"); /* trailing '/' dropped */
  assert_int_equal(f->components[1].n_steps, 0);
  assert_int_equal(hoist_deploy_file_find(f, "sandbox"), 1);
  assert_int_equal(hoist_deploy_file_find(f, "helm"), 2);
  assert_int_equal(hoist_deploy_file_find(f, "nope"), -1);
  assert_int_equal(f->n_scopes, 1);
  assert_string_equal(f->scopes[0].name, "cluster_name");
  assert_string_equal(f->scopes[0].command, "echo dev");
  assert_int_equal(f->scopes[0].n_invalidates, 3);
  hoist_deploy_file_free(f);
}

static void test_file_parse_bad(void **state) {
  (void)state;
  static const struct {
    const char *in;
    const char *error;
  } cases[] = {
      {"", "no [component.NAME] table"},
      {"# only a comment\n", "no [component.NAME] table"},
      {"[component.a]\nsteps = []\n", "t:1: component a: needs paths"},
      {"[component.a]\npaths = []\n", "needs paths"},
      {"[component.a]\npaths = [\"x\"]\npath = [\"y\"]\n", "t:3: component a: unknown key 'path'"},
      {"[component.a]\npaths = [\"x\"]\npaths = [\"y\"]\n", "duplicate key 'paths'"},
      {"[component.a]\npaths = [\"x\"]\n[component.a]\npaths = [\"y\"]\n",
       "t:3: duplicate table [component.a] (first at line 1)"},
      {"[widget.a]\n", "unknown table [widget]"},
      {"[component]\n", "expected [component.NAME]"},
      {"[component.a.b]\n", "nested tables are not supported"},
      {"[[component.a]]\n", "arrays of tables are not supported"},
      {"[component.\"a\"]\n", "quoted keys are not supported"},
      {"[component.a\n", "expected ']'"},
      {"[component.a] x\n", "unexpected 'x' after the value"},
      {"name = \"x\"\n", "unknown top-level key 'name'"},
      {"state = 3\n", "expected a string"},
      {"state = \"\"\n[component.a]\npaths = [\"x\"]\n", "empty state path"},
      {"[component.a]\npaths = \"x\"\n", "expected an array of strings"},
      {"[component.a]\npaths = [\"x\" \"y\"]\n", "expected ',' or ']'"},
      {"[component.a]\npaths = [\"x\",\n", "unterminated array"},
      {"[component.a]\npaths = [1]\n", "expected a string in the array"},
      {"[component.a]\npaths = [\"x]\n", "unterminated string"},
      {"[component.a]\npaths = [\"\"\"x\"\"\"]\n", "multi-line strings are not supported"},
      {"[component.a]\npaths = [\"\\q\"]\n", "invalid escape '\\q'"},
      {"[component.a]\npaths = [\"\\ud800\"]\n", "invalid unicode escape"},
      {"[component.a]\npaths = [\"\\u00\"]\n", "invalid unicode escape"},
      {"[component.a]\npaths = [\"a\tb\x01\"]\n", "control character in a string"},
      {"[component.a]\npaths = [\"x\"]\nsteps = [\"\"]\n", "component a: empty step"},
      {"[component.a]\npaths = [\"/etc\"]\n", "unsafe path pattern '/etc'"},
      {"[component.a]\npaths = [\"../x\"]\n", "unsafe path pattern '../x'"},
      {"[component.a]\npaths = [\"a//b\"]\n", "unsafe path pattern"},
      {"[component.a]\npaths = [\"a/./b\"]\n", "unsafe path pattern"},
      {"[component.a]\npaths = [\"x\"]\ntriggers = [\"b\"]\n",
       "t:1: component a: triggers unknown component 'b'"},
      {"[component.a]\npaths = [\"x\"]\ntriggers = [\"a\"]\n", "component a: triggers itself"},
      {"[component.a]\npaths = [\"x\"]\naliases = [\"a\"]\n", "alias 'a' is already used"},
      {"[component.a]\npaths = [\"x\"]\naliases = [\"b c\"]\n", "invalid alias 'b c'"},
      {"[component.a]\npaths = [\"x\"]\n[component.b]\npaths = [\"x\"]\naliases = [\"a\"]\n",
       "alias 'a' is already used"},
      {"[component.a]\npaths = [\"x\"]\n[scope.k]\ninvalidates = [\"a\"]\n",
       "scope k: needs a command"},
      {"[component.a]\npaths = [\"x\"]\n[scope.k]\ncommand = \"true\"\ninvalidates = [\"z\"]\n",
       "scope k: invalidates unknown component 'z'"},
      {"[component.a]\npaths = [\"x\"]\n[scope.a]\ncommand = \"true\"\n",
       "scope a: name is already used"},
      {"[scope.k]\ncommand = \"x\"\nextra = \"y\"\n", "scope k: unknown key 'extra'"},
      {"[component.a]\npaths.x = [\"x\"]\n", "dotted keys are not supported"},
      {"[component.a]\npaths [\"x\"]\n", "expected '=' after paths"},
      {"[component.a]\r\r\n", "stray carriage return"},
      {"[component.a]\n= [\"x\"]\n", "t:2: expected a name"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hoist_err *err = NULL;
    hoist_deploy_file *f = NULL;
    int r = hoist_deploy_file_parse(cases[i].in, strlen(cases[i].in), "t", &f, &err);
    if (r == 0)
      fail_msg("case %zu parsed: %s", i, cases[i].in);
    assert_null(f);
    assert_err_contains(&err, cases[i].error);
  }
  /* a NUL byte anywhere */
  hoist_err *err = NULL;
  hoist_deploy_file *f = NULL;
  assert_true(hoist_deploy_file_parse("[component.a]\0", 14, "t", &f, &err) < 0);
  assert_err_contains(&err, "NUL byte");
}

static void test_path_match(void **state) {
  (void)state;
  static const struct {
    const char *pattern, *path;
    bool match;
  } cases[] = {
      {"Cargo.toml", "Cargo.toml", true},
      {"Cargo.toml", "Cargo.toml.orig", false},
      {"Cargo.toml", "sub/Cargo.toml", false},
      {"proto", "proto/a.proto", true},
      {"proto", "protocol/a", false},
      {"proto/*", "proto/a.proto", true},
      {"proto/*", "proto/deep/er/a.proto", true},
      {"proto/*", "proto", false},
      {"proto/*", "protox/a", false},
      {"crates/openshell-*", "crates/openshell-core/src/lib.rs", true},
      {"crates/openshell-*", "crates/other/src/lib.rs", false},
      {"*.md", "docs/guide/intro.md", true},
      {"*", "anything/at/all", true},
      {"deploy/docker/Dockerfile.?ateway", "deploy/docker/Dockerfile.gateway", true},
      {"src/[ab]/*", "src/a/x.c", true},
      {"src/[ab]/*", "src/c/x.c", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (hoist_deploy_path_match(cases[i].pattern, cases[i].path) != cases[i].match)
      fail_msg("case %zu: %s vs %s: expected %d", i, cases[i].pattern, cases[i].path,
               cases[i].match);
}

static void test_state_parse(void **state) {
  (void)state;
  static const char text[] = "# comment\n"
                             "cluster_name=dev\r\n"
                             "\n"
                             "  gateway=abc\n"
                             "helm=\n"
                             "container_id=a=b";
  hoist_err *err = NULL;
  hoist_deploy_state *s = NULL;
  assert_ok(hoist_deploy_state_parse(text, strlen(text), &s, &err), &err);
  assert_int_equal(s->n, 4);
  assert_string_equal(hoist_deploy_state_get(s, "cluster_name"), "dev");
  assert_string_equal(hoist_deploy_state_get(s, "gateway"), "abc");
  assert_string_equal(hoist_deploy_state_get(s, "helm"), "");
  assert_string_equal(hoist_deploy_state_get(s, "container_id"), "a=b");
  assert_null(hoist_deploy_state_get(s, "supervisor"));
  assert_ok(hoist_deploy_state_set(s, "gateway", "def", &err), &err);
  assert_ok(hoist_deploy_state_set(s, "supervisor", "123", &err), &err);
  char *out = hoist_deploy_state_format(s);
  assert_string_equal(out, "cluster_name=dev\ngateway=def\nhelm=\ncontainer_id=a=b\n"
                           "supervisor=123\n");
  free(out);
  assert_true(hoist_deploy_state_set(s, "bad key", "x", &err) < 0);
  assert_err_contains(&err, "state key 'bad key'");
  assert_true(hoist_deploy_state_set(s, "k", "two\nlines", &err) < 0);
  assert_err_contains(&err, "line break");
  hoist_deploy_state_free(s);
}

static void test_state_parse_bad(void **state) {
  (void)state;
  static const struct {
    const char *in;
    const char *error;
  } cases[] = {
      {"novalue\n", "line 1: expected key=value"}, {"a=1\n=2\n", "line 2: invalid key"},
      {"a b=1\n", "line 1: invalid key"},          {"a=1\na=2\n", "line 2: duplicate key a"},
      {"a=x\ry\n", "line 1: invalid value"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hoist_err *err = NULL;
    hoist_deploy_state *s = NULL;
    if (hoist_deploy_state_parse(cases[i].in, strlen(cases[i].in), &s, &err) == 0)
      fail_msg("case %zu parsed: %s", i, cases[i].in);
    assert_err_contains(&err, cases[i].error);
  }
  hoist_err *err = NULL;
  hoist_deploy_state *s = NULL;
  assert_true(hoist_deploy_state_parse("a=\0b\n", 5, &s, &err) < 0);
  assert_err_contains(&err, "invalid value");
}

static void test_state_save_load(void **state) {
  (void)state;
  _cleanup_free_ char *dir = test_mkdtemp();
  _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  hoist_err *err = NULL;
  hoist_deploy_state *s = NULL;
  bool existed = true;
  assert_ok(hoist_deploy_state_load(dfd, "sub/dir/state", &s, &existed, &err), &err);
  assert_false(existed);
  assert_int_equal(s->n, 0);
  assert_ok(hoist_deploy_state_set(s, "gateway", "abc", &err), &err);
  assert_ok(hoist_deploy_state_save(dfd, "sub/dir/state", s, &err), &err);
  hoist_deploy_state_free(s);
  assert_ok(hoist_deploy_state_load(dfd, "sub/dir/state", &s, &existed, &err), &err);
  assert_true(existed);
  assert_string_equal(hoist_deploy_state_get(s, "gateway"), "abc");
  hoist_deploy_state_free(s);
  assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, dir, &err), &err);
}

/* a b c, a triggers b, b triggers c; scope k invalidates a. */
static hoist_deploy_file *chain_file(const char *scope_cmd) {
  char *text = hoist_asprintf("[component.a]\npaths = [\"a\"]\nsteps = [\"true\"]\n"
                              "triggers = [\"b\"]\n"
                              "[component.b]\npaths = [\"b\"]\ntriggers = [\"c\"]\n"
                              "[component.c]\npaths = [\"c\"]\n"
                              "[component.d]\npaths = [\"d\"]\n"
                              "[scope.k]\ncommand = \"%s\"\ninvalidates = [\"d\"]\n",
                              scope_cmd);
  hoist_err *err = NULL;
  hoist_deploy_file *f = NULL;
  int r = hoist_deploy_file_parse(text, strlen(text), "chain", &f, &err);
  free(text);
  assert_ok(r, &err);
  return f;
}

static hoist_deploy_state *state_of(const char *text) {
  hoist_err *err = NULL;
  hoist_deploy_state *s = NULL;
  assert_ok(hoist_deploy_state_parse(text, strlen(text), &s, &err), &err);
  return s;
}

static void test_plan_table(void **state) {
  (void)state;
  static const struct {
    const char *old;
    const char *targets[2];
    bool all;
    const char *runs; /* one letter per component: r(un) or - */
    hoist_deploy_reason reasons[4];
    bool write_state;
  } cases[] = {
      /* nothing changed */
      {"k=v\na=1\nb=2\nc=3\nd=4\n", {0}, false, "----", {0}, false},
      /* a changed: triggers b, which triggers c */
      {"k=v\na=0\nb=2\nc=3\nd=4\n",
       {0},
       false,
       "rrr-",
       {HOIST_DEPLOY_CHANGED, HOIST_DEPLOY_TRIGGERED, HOIST_DEPLOY_TRIGGERED, 0},
       true},
      /* c has no fingerprint yet */
      {"k=v\na=1\nb=2\nd=4\n", {0}, false, "--r-", {0, 0, HOIST_DEPLOY_NEW, 0}, true},
      /* the scope value changed: only d */
      {"k=old\na=1\nb=2\nc=3\nd=4\n", {0}, false, "---r", {0, 0, 0, HOIST_DEPLOY_SCOPE}, true},
      /* explicit target b: b and what it triggers, state untouched */
      {"k=v\na=1\nb=2\nc=3\nd=4\n",
       {"b"},
       false,
       "-rr-",
       {0, HOIST_DEPLOY_EXPLICIT, HOIST_DEPLOY_TRIGGERED, 0},
       false},
      {"", {"d", "c"}, false, "--rr", {0, 0, HOIST_DEPLOY_EXPLICIT, HOIST_DEPLOY_EXPLICIT}, false},
      /* --all */
      {"k=v\na=1\nb=2\nc=3\nd=4\n",
       {0},
       true,
       "rrrr",
       {HOIST_DEPLOY_ALL, HOIST_DEPLOY_ALL, HOIST_DEPLOY_ALL, HOIST_DEPLOY_ALL},
       true},
  };
  hoist_deploy_file *f = chain_file("echo v");
  hoist_deploy_fingerprint fp[4] = {{.hex = "1"}, {.hex = "2"}, {.hex = "3"}, {.hex = "4"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hoist_deploy_state *old = state_of(cases[i].old);
    size_t nt = cases[i].targets[1] ? 2 : cases[i].targets[0] ? 1 : 0;
    hoist_deploy_opts opts = {.targets = cases[i].targets, .n_targets = nt, .all = cases[i].all};
    hoist_err *err = NULL;
    hoist_deploy_plan *p = NULL;
    assert_ok(hoist_deploy_plan_make(f, "/", fp, old, &opts, &p, &err), &err);
    for (size_t c = 0; c < 4; c++) {
      if (p->items[c].run != (cases[i].runs[c] == 'r'))
        fail_msg("case %zu component %zu: run %d", i, c, p->items[c].run);
      if (p->items[c].reason != cases[i].reasons[c])
        fail_msg("case %zu component %zu: reason %d", i, c, p->items[c].reason);
    }
    assert_int_equal(p->write_state, cases[i].write_state);
    if (p->write_state) {
      char *text = hoist_deploy_state_format(p->new_state);
      assert_string_equal(text, "k=v\na=1\nb=2\nc=3\nd=4\n");
      free(text);
    }
    hoist_deploy_plan_free(p);
    hoist_deploy_state_free(old);
  }
  hoist_deploy_file_free(f);
}

static void test_plan_errors(void **state) {
  (void)state;
  hoist_deploy_file *f = chain_file("echo v");
  hoist_deploy_fingerprint fp[4] = {{.hex = "1"}, {.hex = "2"}, {.hex = "3"}, {.hex = "4"}};
  const char *targets[] = {"a", "zz"};
  hoist_deploy_opts opts = {.targets = targets, .n_targets = 2};
  hoist_err *err = NULL;
  hoist_deploy_plan *p = NULL;
  assert_true(hoist_deploy_plan_make(f, "/", fp, NULL, &opts, &p, &err) < 0);
  assert_err_contains(&err, "unknown target 'zz' (valid: a, b, c, d)");
  hoist_deploy_file_free(f);

  static const struct {
    const char *cmd, *error;
  } scopes[] = {
      {"exit 3", "scope k: command exited with status 3"},
      {"printf 'a\\\\nb'", "scope k: output has more than one line"},
      {"head -c 5000 /dev/zero | tr -c x x", "scope k: output longer than 4096 bytes"},
  };
  for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++) {
    f = chain_file(scopes[i].cmd);
    assert_true(hoist_deploy_plan_make(f, "/", fp, NULL, NULL, &p, &err) < 0);
    assert_err_contains(&err, scopes[i].error);
    hoist_deploy_file_free(f);
  }
}

static void test_run_steps(void **state) {
  (void)state;
  _cleanup_free_ char *dir = test_mkdtemp();
  _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  static const char text[] =
      "[component.one]\npaths = [\"x\"]\n"
      "steps = [\"echo $HOIST_COMPONENT $HOIST_FINGERPRINT $HOIST_SCOPE_k >> log\", "
      "\"echo second >> log\"]\n"
      "[component.two]\npaths = [\"y\"]\nsteps = [\"echo two >> log\", \"exit 7\", "
      "\"echo never >> log\"]\n"
      "[scope.k]\ncommand = \"echo val\"\ninvalidates = [\"one\"]\n";
  hoist_err *err = NULL;
  hoist_deploy_file *f = NULL;
  assert_ok(hoist_deploy_file_parse(text, strlen(text), "run", &f, &err), &err);
  hoist_deploy_fingerprint fp[2] = {{.hex = "f1"}, {.hex = "f2"}};
  hoist_deploy_state *old = state_of("k=val\none=f1\ntwo=old\n");
  hoist_deploy_plan *p = NULL;
  assert_ok(hoist_deploy_plan_make(f, dir, fp, old, NULL, &p, &err), &err);
  assert_false(p->items[0].run);
  assert_true(p->items[1].run);
  /* two fails at its second step: the state stays as it was */
  assert_ok(hoist_fs_write_atomic(dfd, "state", "k=val\n", 6, 0644, &err), &err);
  assert_true(hoist_deploy_run(f, dir, fp, p, dfd, "state", NULL, NULL, &err) < 0);
  assert_err_contains(&err, "two: step 2 (exit 7) exited with status 7");
  char *content = NULL;
  size_t len = 0;
  assert_ok(hoist_fs_read_file(dfd, "state", 4096, &content, &len, &err), &err);
  assert_string_equal(content, "k=val\n");
  free(content);
  assert_ok(hoist_fs_read_file(dfd, "log", 4096, &content, &len, &err), &err);
  assert_string_equal(content, "two\n");
  free(content);
  hoist_deploy_plan_free(p);
  hoist_deploy_state_free(old);

  /* the scope changed: one runs with its environment; the state is written */
  old = state_of("k=other\none=f1\ntwo=f2\n");
  assert_ok(hoist_deploy_plan_make(f, dir, fp, old, NULL, &p, &err), &err);
  assert_true(p->items[0].run);
  assert_int_equal(p->items[0].reason, HOIST_DEPLOY_SCOPE);
  assert_false(p->items[1].run);
  unlinkat(dfd, "log", 0);
  assert_ok(hoist_deploy_run(f, dir, fp, p, dfd, "state", NULL, NULL, &err), &err);
  assert_ok(hoist_fs_read_file(dfd, "log", 4096, &content, &len, &err), &err);
  assert_string_equal(content, "one f1 val\nsecond\n");
  free(content);
  assert_ok(hoist_fs_read_file(dfd, "state", 4096, &content, &len, &err), &err);
  assert_string_equal(content, "k=val\none=f1\ntwo=f2\n");
  free(content);
  hoist_deploy_plan_free(p);
  hoist_deploy_state_free(old);
  hoist_deploy_file_free(f);
  assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, dir, &err), &err);
}

/* A cache of root's "" and "sub/" directories and the files a, sub/b, with
 * one component's fingerprint; written as if the walk started at since. */
static int write_cache(int rootfd, const char *cache, const struct timespec *since, const char *hex,
                       const char *const *dir_names, hoist_err **err) {
  hoist_deploy_cache_dir dirs[2];
  hoist_deploy_cstat fst[2];
  const char *file_names[2] = {"a", "sub/b"};
  struct stat st;
  for (int i = 0; i < 2; i++) {
    assert_int_equal(fstatat(rootfd, i ? "sub" : ".", &st, 0), 0);
    dirs[i].path = (char *)dir_names[i];
    hoist_deploy_cstat_from(&dirs[i].st, &st);
    assert_int_equal(fstatat(rootfd, file_names[i], &st, AT_SYMLINK_NOFOLLOW), 0);
    hoist_deploy_cstat_from(&fst[i], &st);
  }
  hoist_deploy_cache_file files[2] = {{file_names[1], &fst[1]}, {file_names[0], &fst[0]}};
  char *changed[] = {"sub/b"};
  hoist_deploy_fingerprint fp = {.changed = changed, .n_changed = 1};
  snprintf(fp.hex, sizeof fp.hex, "%s", hex);
  return hoist_deploy_cache_write(cache,
                                  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
                                  "abcdef",
                                  since, &fp, 1, dirs, 2, files, 2, err);
}

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char *data = malloc(1 << 16);
  *len = fread(data, 1, 1 << 16, f);
  fclose(f);
  return data;
}

static void test_stat_cache(void **state) {
  (void)state;
  hoist_err *err = NULL;
  char *dir = test_mkdtemp();
  char *root = hoist_asprintf("%s/root", dir), *cache = hoist_asprintf("%s/cache", dir);
  assert_int_equal(mkdir(root, 0755), 0);
  int rootfd = open(root, O_RDONLY | O_DIRECTORY);
  assert_int_equal(mkdirat(rootfd, "sub", 0755), 0);
  assert_ok(hoist_fs_write_atomic(rootfd, "a", "a\n", 2, 0644, &err), &err);
  assert_ok(hoist_fs_write_atomic(rootfd, "sub/b", "b\n", 2, 0644, &err), &err);
  const char *names[2] = {"", "sub/"};
  const char *key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  const char *hex = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

  /* entries as new as the walk: racy, nothing written */
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  assert_true(write_cache(rootfd, cache, &now, hex, names, &err) < 0);
  assert_err_contains(&err, "changed during the walk");
  assert_int_equal(access(cache, F_OK), -1);

  /* a walk that started well after the last change: written, and a hit */
  struct timespec later = {now.tv_sec + 5, now.tv_nsec};
  assert_ok(write_cache(rootfd, cache, &later, hex, names, &err), &err);
  hoist_deploy_fingerprint *out = hoist_malloc0(sizeof *out);
  assert_int_equal(hoist_deploy_cache_check(cache, rootfd, key, 1, out), 1);
  assert_string_equal(out[0].hex, hex);
  assert_int_equal(out[0].n_changed, 1);
  assert_string_equal(out[0].changed[0], "sub/b");
  hoist_deploy_fingerprints_free(out, 1);
  /* another key or component count: not used */
  hoist_deploy_fingerprint miss[2] = {0};
  assert_int_equal(hoist_deploy_cache_check(cache, rootfd, hex, 1, miss), 0);
  assert_int_equal(hoist_deploy_cache_check(cache, rootfd, key, 2, miss), 0);

  /* the parser's table of bad files, each a patch of the good one */
  size_t len;
  char *good = read_all(cache, &len);
  hoist_deploy_cache_view v;
  assert_int_equal(hoist_deploy_cache_parse(good, len, &v), 0);
  assert_int_equal(v.n_dirs, 2);
  assert_int_equal(v.n_files, 2);
  size_t dir0 = (size_t)((const char *)v.dirs - good);
  size_t file0 = (size_t)((const char *)v.files - good);
  size_t comp0 = (size_t)((const char *)v.comps - good);
  size_t dir_size = (file0 - dir0) / 2, strings = len - v.strings_len;
  size_t name_sub = (size_t)((char *)memmem(good + strings, v.strings_len, "sub/", 5) - good);
  size_t name_b = (size_t)((char *)memmem(good + strings, v.strings_len, "b", 2) - good);
  struct {
    const char *what;
    size_t at; /* where patch goes, if any */
    const char *patch;
    size_t patch_len;
    size_t len;
  } bad[] = {
      {"empty", 0, NULL, 0, 0},
      {"header only", 0, NULL, 0, dir0},
      {"truncated", 0, NULL, 0, len - 1},
      {"one byte too many", 0, NULL, 0, len + 1},
      {"magic", 0, "X", 1, len},
      {"n_comp", 72, "\2", 1, len},
      {"n_dirs", 76, "\3", 1, len},
      {"n_files", 80, "\1", 1, len},
      {"strings_len", 84, "\1", 1, len},
      {"dir name offset", dir0, "\xff\xff", 2, len},
      {"dir first file", dir0 + 4, "\1", 1, len},
      {"dir file count", dir0 + 8, "\3", 1, len},
      {"second dir overlapping", dir0 + dir_size + 4, "\0", 1, len},
      {"file name offset", file0, "\xff\xff", 2, len},
      {"fingerprint not hex", comp0, "Z", 1, len},
      {"fingerprint too short", comp0 + 10, "", 1, len},
      {"changed list out of bounds", comp0 + 72, "\xff\xff", 2, len},
      {"no final NUL", len - 1, "x", 1, len},
      {"directory ../", name_sub, "../", 4, len},
      {"directory without its slash", name_sub + 3, "", 1, len},
      {"file name with a slash", name_b, "/", 1, len},
      {"file name .", name_b, ".", 1, len},
  };
  char *copy = malloc(len + 1);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memcpy(copy, good, len);
    copy[len] = 0;
    if (bad[i].patch)
      memcpy(copy + bad[i].at, bad[i].patch, bad[i].patch_len);
    if (hoist_deploy_cache_parse(copy, bad[i].len, &v) == 0)
      fail_msg("bad cache accepted: %s", bad[i].what);
  }
  free(copy);
  free(good);

  /* a file rewritten in place, same size, mtime put back: the ctime tells */
  assert_ok(write_cache(rootfd, cache, &later, hex, names, &err), &err);
  struct timespec pause = {0, 20 * 1000 * 1000};
  nanosleep(&pause, NULL);
  struct stat before;
  assert_int_equal(fstatat(rootfd, "sub/b", &before, 0), 0);
  int fd = openat(rootfd, "sub/b", O_WRONLY);
  assert_int_equal(pwrite(fd, "c", 1, 0), 1);
  struct timespec times[2] = {before.st_atim, before.st_mtim}; /* mtime put back */
  assert_int_equal(futimens(fd, times), 0);
  close(fd);
  assert_int_equal(hoist_deploy_cache_check(cache, rootfd, key, 1, miss), 0);
  /* and a new name in a directory: its mtime tells */
  assert_ok(write_cache(rootfd, cache, &later, hex, names, &err), &err);
  nanosleep(&pause, NULL);
  assert_ok(hoist_fs_write_atomic(rootfd, "new", "n\n", 2, 0644, &err), &err);
  assert_int_equal(hoist_deploy_cache_check(cache, rootfd, key, 1, miss), 0);

  close(rootfd);
  assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, dir, &err), &err);
  free(root);
  free(cache);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_file_parse_good), cmocka_unit_test(test_file_parse_bad),
      cmocka_unit_test(test_path_match),      cmocka_unit_test(test_state_parse),
      cmocka_unit_test(test_state_parse_bad), cmocka_unit_test(test_state_save_load),
      cmocka_unit_test(test_plan_table),      cmocka_unit_test(test_plan_errors),
      cmocka_unit_test(test_run_steps),       cmocka_unit_test(test_stat_cache),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
