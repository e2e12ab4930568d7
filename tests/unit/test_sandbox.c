#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>

#include "../../src/lib/sandbox/sandbox-private.h"
#include "hoist/fs.h"
#include "hoist/oci.h"
#include "hoist/sandbox.h"
#include "test_util.h"

/* ------------------------------------------------------------------ users */

static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\n"
                             "# a comment\n"
                             "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
                             "app:x:1000:1000::/home/app:/bin/sh\n"
                             "broken:x:notanumber:1::/:\n"
                             "nobody:x:65534:65534:nobody:/nonexistent:/bin/false";
static const char group[] = "root:x:0:\n"
                            "daemon:x:1:\n"
                            "users:x:100:app,daemon\n"
                            "staff:x:50:app\n"
                            "app:x:1000:\n";

static void test_user_resolve_table(void **state) {
  (void)state;
  static const struct {
    const char *spec;
    int ok;
    unsigned uid, gid;
    const char *groups; /* gids, space-separated */
  } cases[] = {
      {NULL, 1, 0, 0, "0"},
      {"", 1, 0, 0, "0"},
      {"root", 1, 0, 0, "0"},
      {"0", 1, 0, 0, "0"},
      {"daemon", 1, 1, 1, "1 100"},
      {"app", 1, 1000, 1000, "1000 100 50"},
      {"app:staff", 1, 1000, 50, "50"},
      {"app:7", 1, 1000, 7, "7"},
      {"1000", 1, 1000, 1000, "1000 100 50"},
      {"4242", 1, 4242, 0, "0"},
      {"4242:4343", 1, 4242, 4343, "4343"},
      {"nobody", 1, 65534, 65534, "65534"},
      {"ghost", 0, 0, 0, NULL},
      {"app:ghosts", 0, 0, 0, NULL},
      {"broken", 0, 0, 0, NULL},
      {":1", 0, 0, 0, NULL},
      {"app:", 0, 0, 0, NULL},
      {"-1", 0, 0, 0, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sandbox_user u;
    hoist_err *err = NULL;
    int r = sandbox_user_resolve(cases[i].spec, passwd, group, &u, &err);
    if (!cases[i].ok) {
      if (r == 0)
        fail_msg("%s: expected an error", cases[i].spec);
      hoist_err_free(err);
      continue;
    }
    assert_ok(r, &err);
    char got[256] = "";
    for (size_t k = 0; k < u.n_groups; k++)
      snprintf(got + strlen(got), sizeof got - strlen(got), "%s%u", k ? " " : "",
               (unsigned)u.groups[k]);
    if (u.uid != cases[i].uid || u.gid != cases[i].gid || strcmp(got, cases[i].groups) != 0)
      fail_msg("%s: got %u:%u [%s]", cases[i].spec ? cases[i].spec : "(null)", (unsigned)u.uid,
               (unsigned)u.gid, got);
  }
  /* HOME: passwd's entry, else /root for root and / for other ids */
  static const char *const homes[][2] = {
      {"app", "/home/app"}, {"daemon", "/usr/sbin"}, {"4242", "/"}, {"0", "/root"}, {"", "/root"}};
  for (size_t i = 0; i < sizeof homes / sizeof homes[0]; i++) {
    sandbox_user h;
    hoist_err *e = NULL;
    assert_ok(sandbox_user_resolve(homes[i][0], passwd, group, &h, &e), &e);
    assert_string_equal(h.home, homes[i][1]);
  }
  /* an image without passwd: numeric ids still work, names do not */
  sandbox_user u;
  hoist_err *err = NULL;
  assert_ok(sandbox_user_resolve("12:34", NULL, NULL, &u, &err), &err);
  assert_int_equal(u.uid, 12);
  assert_int_equal(u.gid, 34);
  assert_int_equal(sandbox_user_resolve("app", NULL, NULL, &u, &err), -ENOENT);
  assert_err_contains(&err, "app");
}

static void test_subid_table(void **state) {
  (void)state;
  static const char text[] = "alice:100000:65536\n"
                             "1001:200000:1000\n"
                             "bob:notanumber:5\n"
                             "carol:300000:0\n"
                             "bob:400000:10\n";
  static const struct {
    const char *name;
    unsigned uid;
    int found;
    unsigned long start, count;
  } cases[] = {
      {"alice", 1000, 1, 100000, 65536},
      {NULL, 1001, 1, 200000, 1000},
      {"dave", 1001, 1, 200000, 1000},
      {"bob", 5, 1, 400000, 10},
      {"carol", 7, 0, 0, 0},
      {"eve", 9, 0, 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    unsigned long s = 0, c = 0;
    bool f = sandbox_subid_range(text, cases[i].name, cases[i].uid, &s, &c);
    if (f != (bool)cases[i].found || (f && (s != cases[i].start || c != cases[i].count)))
      fail_msg("case %zu: found=%d %lu+%lu", i, f, s, c);
  }
  unsigned long s, c;
  assert_false(sandbox_subid_range(NULL, "alice", 1, &s, &c));
}

static void test_id_maps_table(void **state) {
  (void)state;
  static const char subuid[] = "alice:100000:65536\nroot:500000:65536\n";
  static const char subgid[] = "alice:200000:65536\n1001:300000:10\n0:600000:1000\n";
  static const struct {
    unsigned uid, gid;
    const char *name;
    bool tools;
    bool want_tools;
    const char *want; /* "inside:outside:count" for uid maps, then '/' and gid maps */
  } cases[] = {
      /* root: its range, by name or uid, never host 0; none: no user namespace */
      {0, 0, "root", true, false, "0:500000:65536 / 0:600000:1000"},
      {0, 0, NULL, false, false, " /"},
      {1000, 1000, "alice", true, true, "0:1000:1 1:100000:65536 / 0:1000:1 1:200000:65536"},
      {1000, 1000, "alice", false, false, "0:1000:1 / 0:1000:1"},
      {1001, 1001, "bob", true, false, "0:1001:1 / 0:1001:1"}, /* subgid only: not enough */
      {1002, 50, NULL, true, false, "0:1002:1 / 0:50:1"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hoist_idmap u[2], g[2];
    size_t nu = 9, ng = 9;
    bool tools = sandbox_id_maps(cases[i].uid, cases[i].gid, cases[i].name, subuid, subgid,
                                 cases[i].tools, u, &nu, g, &ng);
    char got[256] = "";
    for (size_t k = 0; k < nu; k++)
      snprintf(got + strlen(got), sizeof got - strlen(got), "%s%u:%u:%u", k ? " " : "", u[k].inside,
               u[k].outside, u[k].count);
    snprintf(got + strlen(got), sizeof got - strlen(got), " /");
    for (size_t k = 0; k < ng; k++)
      snprintf(got + strlen(got), sizeof got - strlen(got), " %u:%u:%u", g[k].inside, g[k].outside,
               g[k].count);
    if (tools != cases[i].want_tools || strcmp(got, cases[i].want) != 0)
      fail_msg("case %zu: tools=%d maps %s", i, tools, got);
  }
}

static void test_overlay_escape(void **state) {
  (void)state;
  static const char *const cases[][2] = {
      {"/plain/path", "/plain/path"}, {"/a,b", "/a\\,b"}, {"/c:d", "/c\\:d"},
      {"/e\\f", "/e\\\\f"},           {"", ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *e = sandbox_overlay_escape(cases[i][0]);
    assert_string_equal(e, cases[i][1]);
    free(e);
  }
}

/* ------------------------------------------------------------------ lines */

typedef struct {
  char out[4096];
  size_t n;
  size_t longest;
} collected;

static void collect(void *ctx, const char *line, size_t len) {
  collected *c = ctx;
  size_t room = c->n + 2 < sizeof c->out ? sizeof c->out - c->n - 2 : 0;
  size_t k = len < room ? len : room;
  if (c->n + k + 2 > sizeof c->out)
    return;
  memcpy(c->out + c->n, line, k);
  c->n += k;
  c->out[c->n++] = '|';
  c->out[c->n] = '\0';
  if (len > c->longest)
    c->longest = len;
}

static void test_lines_split_feeds(void **state) {
  (void)state;
  static const struct {
    const char *chunks[4];
    const char *want; /* lines joined by '|' (after flush) */
  } cases[] = {
      {{"one\ntwo\n"}, "one|two|"},    {{"par", "tial\nrest"}, "partial|rest|"},
      {{"\n\n", "x"}, "||x|"},         {{"no newline at all"}, "no newline at all|"},
      {{"a", "b", "c\n", ""}, "abc|"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    collected c = {0};
    sandbox_lines l = {0};
    for (int k = 0; k < 4 && cases[i].chunks[k]; k++)
      sandbox_lines_feed(&l, cases[i].chunks[k], strlen(cases[i].chunks[k]), collect, &c);
    sandbox_lines_flush(&l, collect, &c);
    sandbox_lines_free(&l);
    assert_string_equal(c.out, cases[i].want);
  }
  /* a line longer than the cap arrives in pieces of at most the cap */
  size_t n = SANDBOX_LINE_MAX * 2 + 10;
  char *big = malloc(n + 1);
  memset(big, 'x', n);
  big[n] = '\n';
  collected c = {0};
  sandbox_lines l = {0};
  sandbox_lines_feed(&l, big, n + 1, collect, &c);
  sandbox_lines_flush(&l, collect, &c);
  sandbox_lines_free(&l);
  free(big);
  assert_int_equal(c.longest, SANDBOX_LINE_MAX);
}

/* -------------------------------------------------------------------- env */

static void test_env_from_config(void **state) {
  (void)state;
  hoist_err *err = NULL;
  hoist_config *cfg = hoist_config_new(NULL);
  assert_ok(hoist_config_set_env(cfg, "PATH", "/opt/bin:/bin", &err), &err);
  assert_ok(hoist_config_set_env(cfg, "LANG", "C.UTF-8", &err), &err);
  char *extra[] = {"LANG=en_US.UTF-8", "PIP_INDEX_URL=http://127.0.0.1:1/simple", NULL};
  char **env = NULL;
  assert_ok(hoist_sandbox_env(cfg, extra, &env, &err), &err);
  assert_string_equal(env[0], "PATH=/opt/bin:/bin");
  assert_string_equal(env[1], "LANG=en_US.UTF-8");
  assert_string_equal(env[2], "PIP_INDEX_URL=http://127.0.0.1:1/simple");
  assert_null(env[3]);
  hoist_sandbox_strv_free(env);

  /* no config, no PATH: the usual default */
  assert_ok(hoist_sandbox_env(NULL, NULL, &env, &err), &err);
  assert_non_null(strstr(env[0], "PATH=/usr/local/sbin:"));
  assert_null(env[1]);
  hoist_sandbox_strv_free(env);

  char *bad[] = {"NOEQUALS", NULL};
  assert_int_equal(hoist_sandbox_env(cfg, bad, &env, &err), -EINVAL);
  assert_err_contains(&err, "NOEQUALS");
  hoist_config_free(cfg);
}

/* ------------------------------------------------------------- copy, diff */

static void put(const char *root, const char *rel, const char *data) {
  char *p = hoist_asprintf("%s/%s", root, rel);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(data, f);
  fclose(f);
  free(p);
}

static void mk(const char *root, const char *rel) {
  char *p = hoist_asprintf("%s/%s", root, rel);
  assert_int_equal(mkdir(p, 0755), 0);
  free(p);
}

static bool whiteout_at(const char *root, const char *rel) {
  char *p = hoist_asprintf("%s/%s", root, rel);
  struct stat st;
  bool w = lstat(p, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
  free(p);
  return w;
}

static bool exists_at(const char *root, const char *rel) {
  char *p = hoist_asprintf("%s/%s", root, rel);
  struct stat st;
  bool e = lstat(p, &st) == 0;
  free(p);
  return e;
}

static void test_copy_then_diff_is_overlay_shaped(void **state) {
  (void)state;
  char *dir = test_mkdtemp();
  char *lower = hoist_asprintf("%s/lower", dir), *copy = hoist_asprintf("%s/copy", dir),
       *upper = hoist_asprintf("%s/upper", dir);
  assert_int_equal(mkdir(lower, 0755), 0);
  mk(lower, "etc");
  mk(lower, "gone");
  mk(lower, "keep");
  mk(lower, "keep/sub");
  put(lower, "etc/a", "a\n");
  put(lower, "etc/same", "same\n");
  put(lower, "etc/edit", "before\n");
  put(lower, "gone/f", "f\n");
  put(lower, "keep/sub/x", "x\n");
  put(lower, "file-to-dir", "f\n");
  put(lower, "etc/capped", "binary\n");
  put(lower, "etc/linked", "one inode\n");
  put(lower, "etc/pair1", "two names\n");
  char *p = hoist_asprintf("%s/etc/pair1", lower), *p2 = hoist_asprintf("%s/etc/pair2", lower);
  assert_int_equal(link(p, p2), 0);
  free(p);
  free(p2);
  p = hoist_asprintf("%s/etc/link", lower);
  assert_int_equal(symlink("a", p), 0);
  free(p);
  p = hoist_asprintf("%s/etc/relink", lower);
  assert_int_equal(symlink("a", p), 0);
  free(p);

  hoist_err *err = NULL;
  bool reflinked;
  assert_ok(sandbox_copy_tree(lower, copy, &reflinked, &err), &err);
  assert_true(exists_at(copy, "keep/sub/x"));

  /* what a command does in the copy */
  p = hoist_asprintf("%s/etc/relink", copy);
  assert_int_equal(unlink(p), 0);
  assert_int_equal(symlink("same", p), 0);
  free(p);
  p = hoist_asprintf("%s/etc/a", copy);
  assert_int_equal(unlink(p), 0);
  free(p);
  put(copy, "etc/edit", "after!\n");
  p = hoist_asprintf("%s/etc/capped", copy);
  bool xattrs = setxattr(p, "user.hoist.test", "1", 1, 0) == 0; /* as setcap would */
  free(p);
  put(copy, "etc/new", "new\n");
  /* a new hardlink to a base file; one name of a pair removed */
  p = hoist_asprintf("%s/etc/linked", copy);
  p2 = hoist_asprintf("%s/usr-linked", copy);
  assert_int_equal(link(p, p2), 0);
  free(p);
  free(p2);
  p = hoist_asprintf("%s/etc/pair2", copy);
  assert_int_equal(unlink(p), 0);
  free(p);
  p = hoist_asprintf("%s/gone", copy);
  assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, p, &err), &err);
  free(p);
  p = hoist_asprintf("%s/file-to-dir", copy);
  assert_int_equal(unlink(p), 0);
  free(p);
  mk(copy, "file-to-dir");
  put(copy, "file-to-dir/inside", "i\n");

  assert_int_equal(mkdir(upper, 0755), 0);
  assert_ok(sandbox_diff_tree(lower, copy, upper, &err), &err);
  assert_true(whiteout_at(upper, "etc/a"));
  assert_true(whiteout_at(upper, "gone"));
  assert_true(exists_at(upper, "etc/edit"));
  assert_true(exists_at(upper, "etc/new"));
  assert_false(exists_at(upper, "etc/same"));
  assert_false(exists_at(upper, "etc/link"));
  assert_true(exists_at(upper, "etc/relink"));
  assert_false(exists_at(upper, "keep")); /* untouched subtree: not in upper */
  assert_true(exists_at(upper, "file-to-dir/inside"));
  assert_true(exists_at(upper, "etc/capped") || !xattrs); /* only its xattrs changed */
  /* as overlayfs: the linked file copied up, the new name a link to it */
  struct stat s1, s2;
  p = hoist_asprintf("%s/etc/linked", upper);
  p2 = hoist_asprintf("%s/usr-linked", upper);
  assert_int_equal(lstat(p, &s1), 0);
  assert_int_equal(lstat(p2, &s2), 0);
  assert_int_equal(s1.st_ino, s2.st_ino);
  free(p);
  free(p2);
  assert_true(whiteout_at(upper, "etc/pair2"));
  assert_false(exists_at(upper, "etc/pair1")); /* one name fewer: not copied up */
  char v[4];
  p = hoist_asprintf("%s/file-to-dir", upper);
  bool opaque = getxattr(p, "trusted.overlay.opaque", v, sizeof v) == 1 ||
                getxattr(p, "user.overlay.opaque", v, sizeof v) == 1;
  free(p);
  assert_true(opaque);

  assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, dir, &err), &err);
  free(lower);
  free(copy);
  free(upper);
  free(dir);
}

/* ------------------------------------------------------------ a real run */

typedef struct {
  char out[8192];
  size_t n;
  int lines[2];
} run_lines;

static void on_line(void *ctx, bool is_stderr, const char *line, size_t len) {
  run_lines *r = ctx;
  r->lines[is_stderr]++;
  int k = snprintf(r->out + r->n, sizeof r->out - r->n, "%c:%.*s\n", is_stderr ? 'E' : 'O',
                   (int)len, line);
  if (k > 0 && (size_t)k < sizeof r->out - r->n)
    r->n += (size_t)k;
}

/* A lower tree with busybox as /bin/sh (the unit test's own tiny base). */
static char *busybox_lower(const char *dir) {
  char *lower = hoist_asprintf("%s/lower", dir);
  assert_int_equal(mkdir(lower, 0755), 0);
  mk(lower, "bin");
  mk(lower, "etc");
  put(lower, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
  put(lower, "etc/base-file", "base\n");
  char *cmd = hoist_asprintf("cp /bin/busybox %s/bin/busybox", lower);
  assert_int_equal(system(cmd), 0);
  free(cmd);
  static const char *const applets[] = {"sh",   "cat",   "rm", "echo", "ls",
                                        "test", "sleep", "dd", "mkdir"};
  for (size_t i = 0; i < sizeof applets / sizeof applets[0]; i++) {
    char *p = hoist_asprintf("%s/bin/%s", lower, applets[i]);
    assert_int_equal(symlink("busybox", p), 0);
    free(p);
  }
  return lower;
}

static void test_run_delivers_lines_binds_and_whiteouts(void **state) {
  (void)state;
  if (access("/bin/busybox", X_OK) != 0)
    skip();
  if (geteuid() != 0) {
    /* rootless needs unprivileged user namespaces */
    pid_t pid = fork();
    if (pid == 0)
      _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : 1);
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
      skip();
  }
  char *dir = test_mkdtemp();
  char *lower = busybox_lower(dir);
  char *upper = hoist_asprintf("%s/upper", dir);
  char *req = hoist_asprintf("%s/requirements.txt", dir);
  char *log = hoist_asprintf("%s/log", dir);
  put(dir, "requirements.txt", "flask==3.0\n");
  int log_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  assert_true(log_fd >= 0);

  hoist_sandbox_bind binds[] = {{req, "/tmp/requirements.txt", false},
                                {req, "/opt/req/r.txt", false}};
  char *argv[] = {"sh", "-c",
                  "cat /tmp/requirements.txt /opt/req/r.txt; echo to-stderr >&2; "
                  "rm /etc/base-file; echo new > /etc/added; "
                  "(echo nope > /opt/req/r.txt) 2>/dev/null || echo read-only >&2; exit 3",
                  NULL};
  char *env[] = {"PATH=/bin", NULL};
  run_lines got = {0};
  hoist_sandbox_opts o = {
      .lower = lower,
      .upper = upper,
      .argv = argv,
      .env = env,
      .network = HOIST_SANDBOX_NET_NONE,
      .userns = HOIST_SANDBOX_USERNS_HOST, /* lower holds host ids */
      .on_line = on_line,
      .on_line_ctx = &got,
      .log_fd = log_fd,
      .binds = binds,
      .n_binds = 2,
  };
  hoist_sandbox_result res;
  hoist_err *err = NULL;
  assert_ok(hoist_sandbox_run(&o, &res, &err), &err);
  close(log_fd);
  assert_int_equal(res.end, HOIST_SANDBOX_EXITED);
  assert_true(WIFEXITED(res.status));
  assert_int_equal(WEXITSTATUS(res.status), 3);
  assert_int_equal(got.lines[0], 2);
  assert_int_equal(got.lines[1], 2);
  assert_non_null(strstr(got.out, "O:flask==3.0\nO:flask==3.0\n"));
  assert_non_null(strstr(got.out, "E:to-stderr\n"));
  assert_non_null(strstr(got.out, "E:read-only\n"));

  char *text = NULL;
  assert_ok(hoist_fs_read_file(AT_FDCWD, log, 1 << 20, &text, NULL, &err), &err);
  assert_non_null(strstr(text, "flask==3.0\nflask==3.0\n"));
  assert_non_null(strstr(text, "to-stderr\n"));
  free(text);

  assert_true(whiteout_at(upper, "etc/base-file"));
  assert_true(exists_at(upper, "etc/added"));
  assert_false(exists_at(upper, "tmp"));
  assert_false(exists_at(upper, "opt")); /* the bind's mount points are gone */
  assert_false(exists_at(upper, "proc"));
  assert_false(exists_at(upper, "dev"));
  assert_true(exists_at(lower, "etc/base-file"));
  assert_false(exists_at(dir, "upper.work")); /* the default work dir is removed */

  /* upper must be empty for the next run */
  assert_int_equal(hoist_sandbox_run(&o, &res, &err), -EEXIST);
  assert_err_contains(&err, "not empty");

  assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, dir, &err), &err);
  free(lower);
  free(upper);
  free(req);
  free(log);
  free(dir);
}

/* A temporary directory holding busybox_lower's tree (*lower), for a test
 * that runs as root: skipped otherwise, or without /bin/busybox. */
static char *root_run_dir(char **lower) {
  if (access("/bin/busybox", X_OK) != 0 || geteuid() != 0)
    skip();
  char *dir = test_mkdtemp();
  *lower = busybox_lower(dir);
  return dir;
}

/* The whole of what fd (a file) holds, from its start. Caller frees. */
static char *file_text(int fd, size_t *len) {
  char *buf = hoist_malloc0(1 << 16);
  ssize_t n = pread(fd, buf, (1 << 16) - 1, 0);
  assert_true(n >= 0);
  *len = (size_t)n;
  return buf;
}

/* One run with the caller's streams (hoist run): stdin from a pipe to its
 * end, stdout and stderr byte for byte into files, a writable bind; then a
 * command that cannot start, then a reader that went away. */
static void test_run_passes_streams_through(void **state) {
  (void)state;
  char *lower;
  char *dir = root_run_dir(&lower);
  char *upper = hoist_asprintf("%s/upper", dir);
  char *rw = hoist_asprintf("%s/rw", dir);
  assert_int_equal(mkdir(rw, 0755), 0);
  char *out_path = hoist_asprintf("%s/out", dir), *err_path = hoist_asprintf("%s/err", dir);
  int out = open(out_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int errf = open(err_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int in[2];
  assert_int_equal(pipe2(in, O_CLOEXEC), 0);
  static const char input[] = "line one\nno newline\0binary";
  assert_int_equal(write(in[1], input, sizeof input - 1), (ssize_t)(sizeof input - 1));
  close(in[1]);

  hoist_sandbox_bind binds[] = {{rw, "/rw", true}};
  char *argv[] = {"sh", "-c", "cat; echo -n e >&2; echo -n written > /rw/f", NULL};
  char *env[] = {"PATH=/bin", NULL};
  hoist_sandbox_stdio io = {.in = in[0], .out = out, .err = errf, .size_fd = -1, .winch_fd = -1};
  /* host ids: lower holds them */
  hoist_sandbox_opts o = {.lower = lower, .upper = upper, .argv = argv, .env = env, .log_fd = -1};
  o.network = HOIST_SANDBOX_NET_NONE;
  o.userns = HOIST_SANDBOX_USERNS_HOST;
  o.stdio = &io;
  o.binds = binds;
  o.n_binds = 1;
  hoist_sandbox_result res;
  hoist_err *err = NULL;
  assert_ok(hoist_sandbox_run(&o, &res, &err), &err);
  close(in[0]);
  assert_true(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0);
  size_t n;
  char *text = file_text(out, &n);
  assert_int_equal(n, sizeof input - 1);
  assert_memory_equal(text, input, n);
  free(text);
  text = file_text(errf, &n);
  assert_int_equal(n, 1);
  assert_memory_equal(text, "e", 1);
  free(text);
  char *f = hoist_asprintf("%s/f", rw);
  assert_ok(hoist_fs_read_file(AT_FDCWD, f, 1 << 10, &text, NULL, &err), &err);
  assert_string_equal(text, "written");
  free(text);
  free(f);
  assert_false(exists_at(upper, "rw"));

  /* stdin absent: /dev/null; a command that cannot start says so on err */
  assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, upper, &err), &err);
  assert_int_equal(ftruncate(errf, 0), 0);
  assert_int_equal(lseek(errf, 0, SEEK_SET), 0);
  io.in = -1;
  char *missing[] = {"no-such-command", NULL};
  o.argv = missing;
  assert_ok(hoist_sandbox_run(&o, &res, &err), &err);
  assert_int_equal(WEXITSTATUS(res.status), 127);
  text = file_text(errf, &n);
  assert_non_null(strstr(text, "hoist: exec no-such-command: No such file or directory\n"));
  free(text);

  /* a reader that went away: the command's writes fail as if it wrote there
   * (it ends), and no SIGPIPE reaches this process */
  assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, upper, &err), &err);
  int gone[2];
  assert_int_equal(pipe2(gone, O_CLOEXEC), 0);
  close(gone[0]);
  io.out = gone[1];
  char *yes[] = {"sh", "-c", "while echo y; do :; done; echo ended >&2", NULL};
  o.argv = yes;
  o.timeout_s = 60;
  assert_int_equal(ftruncate(errf, 0), 0);
  assert_int_equal(lseek(errf, 0, SEEK_SET), 0);
  assert_ok(hoist_sandbox_run(&o, &res, &err), &err);
  assert_int_equal(res.end, HOIST_SANDBOX_EXITED);
  close(gone[1]);

  close(out);
  close(errf);
  assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, dir, &err), &err);
  free(lower);
  free(upper);
  free(rw);
  free(out_path);
  free(err_path);
  free(dir);
}

typedef struct {
  const char *lower;
  char *upper;
  char *script;
  int status;
  int ret;
  double seconds;
} concurrent_run;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run_thread(void *arg) {
  concurrent_run *r = arg;
  char *argv[] = {"sh", "-c", r->script, NULL};
  hoist_sandbox_opts o = {.lower = r->lower,
                          .upper = r->upper,
                          .argv = argv,
                          .log_fd = -1,
                          .network = HOIST_SANDBOX_NET_NONE,
                          .userns = HOIST_SANDBOX_USERNS_HOST};
  hoist_sandbox_result res;
  hoist_err *err = NULL;
  double start = now_s();
  r->ret = hoist_sandbox_run(&o, &res, &err);
  r->status = res.status;
  r->seconds = now_s() - start;
  hoist_err_free(err);
  return NULL;
}

/* Two runs at once on one lower from two threads of one process: each gets
 * its own overlay and neither waits for the other. */
static void test_concurrent_runs_share_lower(void **state) {
  (void)state;
  char *lower;
  char *dir = root_run_dir(&lower);
  concurrent_run slow = {lower, hoist_asprintf("%s/u1", dir), "echo slow > /etc/who; sleep 3", 0, 0,
                         0};
  concurrent_run fast = {lower, hoist_asprintf("%s/u2", dir), "echo fast > /etc/who", 0, 0, 0};
  pthread_t a, b;
  assert_int_equal(pthread_create(&a, NULL, run_thread, &slow), 0);
  usleep(300000);
  assert_int_equal(pthread_create(&b, NULL, run_thread, &fast), 0);
  pthread_join(b, NULL);
  pthread_join(a, NULL);
  assert_int_equal(slow.ret, 0);
  assert_int_equal(fast.ret, 0);
  assert_int_equal(slow.status, 0);
  assert_int_equal(fast.status, 0);
  if (fast.seconds > 2.0)
    fail_msg("the fast run took %.1fs: held by the slow one", fast.seconds);
  hoist_err *err = NULL;
  char *text = NULL;
  char *p = hoist_asprintf("%s/etc/who", slow.upper);
  assert_ok(hoist_fs_read_file(AT_FDCWD, p, 100, &text, NULL, &err), &err);
  assert_string_equal(text, "slow\n");
  free(text);
  free(p);
  p = hoist_asprintf("%s/etc/who", fast.upper);
  assert_ok(hoist_fs_read_file(AT_FDCWD, p, 100, &text, NULL, &err), &err);
  assert_string_equal(text, "fast\n");
  free(text);
  free(p);
  assert_false(exists_at(lower, "etc/who"));
  assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, dir, &err), &err);
  free(slow.upper);
  free(fast.upper);
  free(lower);
  free(dir);
}

/* A run that reaches a limit is killed whole and says which limit; a full
 * /tmp is told apart. Root: the limits need a cgroup. */
static void test_run_ends_on_limits(void **state) {
  (void)state;
  if (access("/bin/busybox", X_OK) != 0 || geteuid() != 0)
    return; /* the cgroup limits need root; the service's tests run as root */
  static const struct {
    const char *script;
    uint64_t pids, memory, upper, tmp;
    unsigned timeout;
    hoist_sandbox_end end;
    uint64_t limit;
    const char *text;
    bool tmp_full;
  } cases[] = {
      {"while true; do sleep 100 & done", 16, 0, 0, 0, 0, HOIST_SANDBOX_PIDS_EXHAUSTED, 16,
       "process limit reached (16 pids)", false},
      {"dd if=/dev/zero of=/dev/null bs=256M count=1", 0, 32 << 20, 0, 0, 0,
       HOIST_SANDBOX_OUT_OF_MEMORY, 32 << 20, "out of memory (limit 32 MiB)", false},
      {"dd if=/dev/zero of=/big bs=1M count=64", 0, 0, 4 << 20, 0, 0, HOIST_SANDBOX_DISK_FULL,
       4 << 20, "changes reached max_layer_bytes (4 MiB)", false},
      {"sleep 30", 0, 0, 0, 0, 1, HOIST_SANDBOX_TIMED_OUT, 0, "timed out after 1 s", false},
      {"dd if=/dev/zero of=/tmp/f bs=1M count=8", 0, 0, 0, 1 << 20, 0, HOIST_SANDBOX_EXITED, 0,
       NULL, true},
      {"i=0; while [ $i -lt 300 ]; do mkdir d; cd d; i=$((i+1)); done", 0, 0, 0, 0, 0,
       HOIST_SANDBOX_TOO_DEEP, 256,
       "changes nested more than 256 directories deep (too deep to measure against "
       "max_layer_bytes)",
       false},
      {"echo fine", 0, 0, 0, 0, 0, HOIST_SANDBOX_EXITED, 0, NULL, false},
  };
  char *dir = test_mkdtemp();
  char *lower = busybox_lower(dir);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *upper = hoist_asprintf("%s/upper%zu", dir, i);
    char *argv[] = {"sh", "-c", (char *)cases[i].script, NULL};
    hoist_sandbox_opts o = {
        .lower = lower,
        .upper = upper,
        .argv = argv,
        .log_fd = -1,
        .network = HOIST_SANDBOX_NET_NONE,
        .userns = HOIST_SANDBOX_USERNS_HOST,
        .pids = cases[i].pids,
        .memory = cases[i].memory,
        .upper_bytes = cases[i].upper,
        .tmp_bytes = cases[i].tmp,
        .timeout_s = cases[i].timeout,
        .require_limits = true,
    };
    hoist_sandbox_result res;
    hoist_err *err = NULL;
    assert_ok(hoist_sandbox_run(&o, &res, &err), &err);
    char *text = hoist_sandbox_end_text(&o, &res);
    if (res.end != cases[i].end || res.limit != cases[i].limit ||
        res.tmp_full != cases[i].tmp_full || (text == NULL) != (cases[i].text == NULL) ||
        (text && strcmp(text, cases[i].text) != 0))
      fail_msg("case %zu (%s): end %d limit %llu tmp_full %d text %s", i, cases[i].script,
               (int)res.end, (unsigned long long)res.limit, res.tmp_full, text ? text : "(none)");
    assert_true(res.limits);
    free(text);
    free(upper);
  }
  hoist_err *err = NULL;
  assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, dir, &err), &err);
  free(lower);
  free(dir);
}

/* Root's range given explicitly: root inside is the range's first id, never
 * host 0; a range holding host 0 is refused; a lower not owned as the range
 * says is refused before anything runs. */
static void test_run_with_given_subids(void **state) {
  (void)state;
  if (access("/bin/busybox", X_OK) != 0 || geteuid() != 0)
    return; /* root's own ranges; unprivileged callers map themselves */
  hoist_sandbox_subids bad = {0, 65536, 0, 65536};
  hoist_sandbox_opts o = {.subids = &bad};
  hoist_idmap u[2], g[2];
  size_t nu, ng;
  hoist_err *err = NULL;
  assert_int_not_equal(hoist_sandbox_id_maps(&o, u, &nu, g, &ng, &err), 0);
  assert_err_contains(&err, "includes host uid 0");
  hoist_sandbox_subids ids = {300000, 65536, 400000, 65536};
  o.subids = &ids;
  assert_ok(hoist_sandbox_id_maps(&o, u, &nu, g, &ng, &err), &err);
  assert_true(nu == 1 && ng == 1 && u[0].inside == 0 && u[0].outside == 300000 &&
              u[0].count == 65536 && g[0].outside == 400000);

  char *dir = test_mkdtemp();
  char *lower = busybox_lower(dir);
  char *upper = hoist_asprintf("%s/upper", dir);
  char *argv[] = {"sh", "-c", "cat /proc/self/uid_map; echo made > /etc/made", NULL};
  run_lines got = {0};
  hoist_sandbox_opts r = {.lower = lower,
                          .upper = upper,
                          .argv = argv,
                          .log_fd = -1,
                          .network = HOIST_SANDBOX_NET_NONE,
                          .subids = &ids,
                          .on_line = on_line,
                          .on_line_ctx = &got};
  hoist_sandbox_result res;
  assert_int_not_equal(hoist_sandbox_run(&r, &res, &err), 0);
  assert_err_contains(&err, "unpack the image with the run's id maps");
  /* owned as the maps say (what hoist_unpack does with them) */
  hoist_err *e2 = NULL;
  assert_ok(hoist_sandbox_unshift(lower, u, 0, g, 0, &e2), &e2); /* no maps: nothing to do */
  char *cmd = hoist_asprintf("chown -R 300000:400000 %s", lower);
  assert_int_equal(system(cmd), 0);
  free(cmd);
  assert_ok(hoist_sandbox_run(&r, &res, &err), &err);
  assert_true(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0);
  assert_non_null(strstr(got.out, "O:         0     300000      65536"));
  struct stat st;
  char *made = hoist_asprintf("%s/etc/made", upper);
  assert_int_equal(lstat(made, &st), 0);
  assert_true(st.st_uid == 300000 && st.st_gid == 400000);
  /* and back to the image's owners */
  assert_ok(hoist_sandbox_unshift(upper, u, nu, g, ng, &err), &err);
  assert_int_equal(lstat(made, &st), 0);
  assert_true(st.st_uid == 0 && st.st_gid == 0);
  free(made);
  assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, dir, &err), &err);
  free(upper);
  free(lower);
  free(dir);
}

/* Threads of the caller busy in malloc while runs start: the sandbox's init
 * and the command must not need a lock one of them held at clone time (a
 * glibc fork() there would wait for the malloc locks forever). */
static atomic_bool churning;

static void *churn(void *arg) {
  (void)arg;
  while (atomic_load(&churning)) {
    void *p[64];
    for (int i = 0; i < 64; i++)
      p[i] = malloc((size_t)(16 + i * 97));
    for (int i = 0; i < 64; i++)
      free(p[i]);
  }
  return NULL;
}

static void test_runs_beside_threads_in_malloc(void **state) {
  (void)state;
  if (access("/bin/busybox", X_OK) != 0 || geteuid() != 0)
    return; /* root runs without a user namespace here: the quickest runs */
  char *dir = test_mkdtemp();
  char *lower = busybox_lower(dir);
  atomic_store(&churning, true);
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&t[i], NULL, churn, NULL), 0);
  for (int i = 0; i < 30; i++) {
    char *upper = hoist_asprintf("%s/upper%d", dir, i);
    char *argv[] = {"sh", "-c", "echo ok", NULL};
    hoist_sandbox_opts o = {.lower = lower,
                            .upper = upper,
                            .argv = argv,
                            .log_fd = -1,
                            .network = HOIST_SANDBOX_NET_NONE,
                            .userns = HOIST_SANDBOX_USERNS_HOST,
                            .timeout_s = 20};
    hoist_sandbox_result res;
    hoist_err *err = NULL;
    assert_ok(hoist_sandbox_run(&o, &res, &err), &err);
    if (res.end != HOIST_SANDBOX_EXITED || !WIFEXITED(res.status) || WEXITSTATUS(res.status))
      fail_msg("run %d: end %d, status %d: its command hung or failed", i, (int)res.end,
               res.status);
    free(upper);
  }
  atomic_store(&churning, false);
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  hoist_err *err = NULL;
  assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, dir, &err), &err);
  free(lower);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_user_resolve_table),
      cmocka_unit_test(test_subid_table),
      cmocka_unit_test(test_id_maps_table),
      cmocka_unit_test(test_overlay_escape),
      cmocka_unit_test(test_lines_split_feeds),
      cmocka_unit_test(test_env_from_config),
      cmocka_unit_test(test_copy_then_diff_is_overlay_shaped),
      cmocka_unit_test(test_run_delivers_lines_binds_and_whiteouts),
      cmocka_unit_test(test_run_passes_streams_through),
      cmocka_unit_test(test_concurrent_runs_share_lower),
      cmocka_unit_test(test_run_ends_on_limits),
      cmocka_unit_test(test_run_with_given_subids),
      cmocka_unit_test(test_runs_beside_threads_in_malloc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
