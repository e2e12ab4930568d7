/* Unit tests of the registry client's parsers: WWW-Authenticate challenges,
 * credential files, Link headers; and of the blob-location record. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "../../src/lib/registry/internal.h"
#include "hoist/fs.h"
#include "hoist/registry.h"
#include "test_util.h"

static void test_challenge_table(void **state) {
  (void)state;
  static const struct {
    const char *in;
    const char *scheme, *realm, *service, *scope, *error; /* expected; scheme NULL: error */
    const char *err;                                      /* expected error text */
  } cases[] = {
      {"Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
       "scope=\"repository:library/busybox:pull\"",
       "bearer", "https://auth.docker.io/token", "registry.docker.io",
       "repository:library/busybox:pull", NULL, NULL},
      {"Basic realm=\"Registry Realm\"", "basic", "Registry Realm", NULL, NULL, NULL, NULL},
      {"basic realm=x", "basic", "x", NULL, NULL, NULL, NULL},
      {"BEARER REALM=\"http://h/t\" , Service=svc", "bearer", "http://h/t", "svc", NULL, NULL,
       NULL},
      /* several challenges: Bearer wins over Basic, in either order */
      {"Basic realm=\"b\", Bearer realm=\"https://a/t\",service=\"s\"", "bearer", "https://a/t",
       "s", NULL, NULL, NULL},
      {"Bearer realm=\"https://a/t\", Basic realm=\"b\"", "bearer", "https://a/t", NULL, NULL, NULL,
       NULL},
      {"Negotiate abc==, Basic realm=\"r\"", "basic", "r", NULL, NULL, NULL, NULL},
      {"Bearer realm=\"https://a/t\",error=\"insufficient_scope\",scope=\"a:b:c d:e:f\"", "bearer",
       "https://a/t", NULL, "a:b:c d:e:f", "insufficient_scope", NULL},
      {"Bearer realm=\"https://a/t?x=\\\"q\\\"\"", "bearer", "https://a/t?x=\"q\"", NULL, NULL,
       NULL, NULL},
      {"Bearer realm=\"https://a/t\",,  service=s", "bearer", "https://a/t", "s", NULL, NULL, NULL},
      /* bad inputs */
      {"", NULL, NULL, NULL, NULL, NULL, "empty"},
      {"   ", NULL, NULL, NULL, NULL, NULL, "empty"},
      {"Bearer", NULL, NULL, NULL, NULL, NULL, "without a realm"},
      {"Bearer service=x", NULL, NULL, NULL, NULL, NULL, "without a realm"},
      {"Bearer realm=\"file:///etc/passwd\"", NULL, NULL, NULL, NULL, NULL, "not an http(s) URL"},
      {"Bearer realm=\"https://a/t", NULL, NULL, NULL, NULL, NULL, "unterminated"},
      {"Bearer realm=\"x\\", NULL, NULL, NULL, NULL, NULL, "unterminated"},
      {"Digest realm=\"x\", nonce=\"y\"", NULL, NULL, NULL, NULL, NULL,
       "unsupported authentication scheme digest"},
      {"Bearer realm=\"https://a\" junk", NULL, NULL, NULL, NULL, NULL, "expected ','"},
      {"\"quoted\"", NULL, NULL, NULL, NULL, NULL, "bad character"},
      {"Bearer realm=\"a\x01\"", NULL, NULL, NULL, NULL, NULL, "control character"},
      {"Bearer@ realm=x", NULL, NULL, NULL, NULL, NULL, "bad character"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hoist_err *err = NULL;
    hoist_challenge c;
    int r = hoist_challenge_parse(cases[i].in, &c, &err);
    if (!cases[i].scheme) {
      if (r == 0)
        fail_msg("case %zu \"%s\": expected an error", i, cases[i].in);
      assert_err_contains(&err, cases[i].err);
      continue;
    }
    assert_ok(r, &err);
    assert_string_equal(c.scheme, cases[i].scheme);
#define CHECK(field)                                                                               \
  do {                                                                                             \
    if (cases[i].field)                                                                            \
      assert_string_equal(c.field ? c.field : "(null)", cases[i].field);                           \
    else if (c.field)                                                                              \
      fail_msg("case %zu: unexpected " #field " \"%s\"", i, c.field);                              \
  } while (0)
    CHECK(realm);
    CHECK(service);
    CHECK(scope);
    CHECK(error);
#undef CHECK
    hoist_challenge_clear(&c);
  }
  hoist_err *err = NULL;
  hoist_challenge c;
  assert_true(hoist_challenge_parse(NULL, &c, &err) < 0);
  assert_err_contains(&err, "missing");
  char *huge = malloc(20000);
  memset(huge, 'a', 19999);
  huge[19999] = '\0';
  assert_true(hoist_challenge_parse(huge, &c, &err) < 0);
  assert_err_contains(&err, "too long");
  free(huge);
}

static void test_creds_table(void **state) {
  (void)state;
  /* YWxpY2U6czNjcmV0 = alice:s3cret; Ym9iOnA6dzo= = bob:p:w: */
  static const struct {
    const char *json;
    const char *host, *repo;
    bool found;
    const char *user, *pass, *idtoken, *helper;
    const char *err;
  } cases[] = {
      {"{\"auths\":{\"reg:5000\":{\"auth\":\"YWxpY2U6czNjcmV0\"}}}", "reg:5000", NULL, true,
       "alice", "s3cret", NULL, NULL, NULL},
      {"{\"auths\":{\"https://reg:5000/v2/\":{\"auth\":\"YWxpY2U6czNjcmV0\"}}}", "reg:5000", NULL,
       true, "alice", "s3cret", NULL, NULL, NULL},
      {"{\"auths\":{\"http://reg:5000\":{\"auth\":\"Ym9iOnA6dzo=\"}}}", "reg:5000", NULL, true,
       "bob", "p:w:", NULL, NULL, NULL},
      /* padding may be missing */
      {"{\"auths\":{\"reg\":{\"auth\":\"Ym9iOnA6dzo\"}}}", "reg", NULL, true, "bob", "p:w:", NULL,
       NULL, NULL},
      {"{\"auths\":{\"reg\":{\"username\":\"u\",\"password\":\"p\"}}}", "reg", NULL, true, "u", "p",
       NULL, NULL, NULL},
      {"{\"auths\":{\"reg\":{\"identitytoken\":\"tok\"}}}", "reg", NULL, true, NULL, NULL, "tok",
       NULL, NULL},
      {"{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"YWxpY2U6czNjcmV0\"}}}", "docker.io",
       NULL, true, "alice", "s3cret", NULL, NULL, NULL},
      /* the longest matching per-repository entry wins */
      {"{\"auths\":{\"reg\":{\"username\":\"a\",\"password\":\"1\"},"
       "\"reg/team\":{\"username\":\"b\",\"password\":\"2\"},"
       "\"reg/te\":{\"username\":\"c\",\"password\":\"3\"}}}",
       "reg", "team/app", true, "b", "2", NULL, NULL, NULL},
      {"{\"auths\":{\"other\":{\"auth\":\"YWxpY2U6czNjcmV0\"}}}", "reg", NULL, false, NULL, NULL,
       NULL, NULL, NULL},
      {"{\"auths\":{\"reg:5000\":{\"auth\":\"YWxpY2U6czNjcmV0\"}}}", "reg", NULL, false, NULL, NULL,
       NULL, NULL, NULL},
      {"{}", "reg", NULL, false, NULL, NULL, NULL, NULL, NULL},
      {"{\"credHelpers\":{\"reg\":\"ecr-login\"}}", "reg", NULL, true, NULL, NULL, NULL,
       "ecr-login", NULL},
      {"{\"auths\":{\"reg\":{}},\"credsStore\":\"desktop\"}", "reg", NULL, true, NULL, NULL, NULL,
       "desktop", NULL},
      /* a Kubernetes Secret object around .dockerconfigjson */
      {"{\"kind\":\"Secret\",\"data\":{\".dockerconfigjson\":"
       "\"eyJhdXRocyI6eyJyZWciOnsiYXV0aCI6IllXeHBZMlU2Y3pOamNtVjAifX19\"}}",
       "reg", NULL, true, "alice", "s3cret", NULL, NULL, NULL},
      /* bad inputs */
      {"", "reg", NULL, false, NULL, NULL, NULL, NULL, "invalid JSON"},
      {"[]", "reg", NULL, false, NULL, NULL, NULL, NULL, "not a JSON object"},
      {"{\"auths\":[]}", "reg", NULL, false, NULL, NULL, NULL, NULL, "\"auths\" is not an object"},
      {"{\"auths\":{\"reg\":\"x\"}}", "reg", NULL, false, NULL, NULL, NULL, NULL,
       "is not an object"},
      {"{\"auths\":{\"reg\":{\"auth\":\"!!!\"}}}", "reg", NULL, false, NULL, NULL, NULL, NULL,
       "invalid base64"},
      {"{\"auths\":{\"reg\":{\"auth\":\"YWxpY2U=\"}}}", "reg", NULL, false, NULL, NULL, NULL, NULL,
       "not base64 of user:password"},
      {"{\"auths\":{\"reg\":{\"auth\":\"YQ\"}}}", "reg", NULL, false, NULL, NULL, NULL, NULL,
       "not base64 of user:password"},
      {"{\"auths\":{\"reg\":{\"auth\":\"A\"}}}", "reg", NULL, false, NULL, NULL, NULL, NULL,
       "invalid base64"},
      {"{\"auths\":{\"reg\":{\"auth\":\"YQBiOmM=\"}}}", "reg", NULL, false, NULL, NULL, NULL, NULL,
       "NUL"},
      {"{\"auths\":{\"reg\":{\"username\":1}}}", "reg", NULL, false, NULL, NULL, NULL, NULL,
       "must be strings"},
      {"{\"credHelpers\":{\"reg\":\"\"}}", "reg", NULL, false, NULL, NULL, NULL, NULL,
       "is not a name"},
      {"{\"credHelpers\":[]}", "reg", NULL, false, NULL, NULL, NULL, NULL, "not an object"},
      {"{\"credsStore\":5}", "reg", NULL, false, NULL, NULL, NULL, NULL, "not a string"},
      {"{\"auths\":{},\"auths\":{}}", "reg", NULL, false, NULL, NULL, NULL, NULL, "invalid JSON"},
      {"{\"data\":{\".dockerconfigjson\":\"%%%\"}}", "reg", NULL, false, NULL, NULL, NULL, NULL,
       "invalid base64"},
      {"{\"data\":{\".dockerconfigjson\":7}}", "reg", NULL, false, NULL, NULL, NULL, NULL,
       "not a string"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hoist_err *err = NULL;
    hoist_creds c;
    bool found = false;
    int r = hoist_creds_from_json(cases[i].json, strlen(cases[i].json), cases[i].host,
                                  cases[i].repo, &c, &found, &err);
    if (cases[i].err) {
      if (r == 0)
        fail_msg("case %zu: expected an error", i);
      assert_err_contains(&err, cases[i].err);
      hoist_creds_clear(&c);
      continue;
    }
    assert_ok(r, &err);
    if (found != cases[i].found)
      fail_msg("case %zu: found %d, expected %d", i, found, cases[i].found);
#define CHECK(field, want)                                                                         \
  do {                                                                                             \
    if (want)                                                                                      \
      assert_string_equal(c.field ? c.field : "(null)", want);                                     \
    else if (c.field)                                                                              \
      fail_msg("case %zu: unexpected " #field " \"%s\"", i, c.field);                              \
  } while (0)
    CHECK(username, cases[i].user);
    CHECK(password, cases[i].pass);
    CHECK(identity_token, cases[i].idtoken);
    CHECK(helper, cases[i].helper);
#undef CHECK
    hoist_creds_clear(&c);
  }
}

/* An auth value decodes as it always did: padding optional, a lone "=" of
 * two and a trailing line break ignored; anything else base64 refuses. */
static void test_creds_auth_base64(void **state) {
  (void)state;
  static const struct {
    const char *auth;
    const char *user; /* NULL: an error */
  } cases[] = {
      {"YTpi", "a"},        /* a:b */
      {"YTpiYw==", "a"},    /* a:bc */
      {"YTpiYw", "a"},      /* padding left out */
      {"YTpiYw=", "a"},     /* a lone "=" of two */
      {"YTpiYw==\\n", "a"}, /* a trailing line break (JSON \\n) */
      {"YTpiYw===", NULL},  {"YTpi=", NULL}, {"YTp=iYw", NULL}, {"YTpiY", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    _cleanup_free_ char *json =
        hoist_asprintf("{\"auths\":{\"reg\":{\"auth\":\"%s\"}}}", cases[i].auth);
    hoist_err *err = NULL;
    hoist_creds c;
    bool found = false;
    int r = hoist_creds_from_json(json, strlen(json), "reg", NULL, &c, &found, &err);
    if (!cases[i].user) {
      if (r == 0)
        fail_msg("case %zu (%s): expected an error", i, cases[i].auth);
      assert_err_contains(&err, "invalid base64");
    } else {
      assert_ok(r, &err);
      assert_true(found);
      assert_string_equal(c.username, cases[i].user);
    }
    hoist_creds_clear(&c);
  }
}

static void test_link_table(void **state) {
  (void)state;
  static const struct {
    const char *in;
    const char *next; /* NULL: none */
    const char *err;
  } cases[] = {
      {"</v2/_catalog?last=b&n=2>; rel=\"next\"", "/v2/_catalog?last=b&n=2", NULL},
      {"</v2/x/tags/list?n=1&last=a>; rel=next", "/v2/x/tags/list?n=1&last=a", NULL},
      {"<https://r/v2/_catalog?last=c>;rel=\"next\"", "https://r/v2/_catalog?last=c", NULL},
      {"</a>; rel=\"prev\", </b>; rel=\"next\"", "/b", NULL},
      {"</a>; rel=\"prev next\"", "/a", NULL},
      {"</a>; title=\"x, y\"; rel=\"next\"", "/a", NULL},
      {"</a>; rel=\"prev\"", NULL, NULL},
      {"", NULL, NULL},
      {"/v2/_catalog; rel=next", NULL, "expected '<'"},
      {"</v2/_catalog; rel=next", NULL, "missing '>'"},
      {"</a>; rel=\"next", NULL, "unterminated quote"},
      {"</a> junk", NULL, "unexpected"},
      {"<>; rel=next", NULL, "empty target"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hoist_err *err = NULL;
    char *next = NULL;
    int r = hoist_link_next(cases[i].in, &next, &err);
    if (cases[i].err) {
      if (r == 0)
        fail_msg("case %zu \"%s\": expected an error", i, cases[i].in);
      assert_err_contains(&err, cases[i].err);
      continue;
    }
    assert_ok(r, &err);
    if (cases[i].next)
      assert_string_equal(next ? next : "(null)", cases[i].next);
    else
      assert_null(next);
    free(next);
  }
  char *next = (char *)"x";
  assert_int_equal(hoist_link_next(NULL, &next, NULL), 0);
  assert_null(next);
}

static void test_insecure_hosts(void **state) {
  (void)state;
  const char *insecure[] = {"reg.internal:5000", "plain.example", NULL};
  hoist_registry_opts o = {.insecure = insecure};
  hoist_registry *r = NULL;
  hoist_err *err = NULL;
  /* the library reads no environment: a variable naming a missing config
   * file is the CLI's business, not the client's */
  setenv("CONTAINERS_REGISTRIES_CONF", "/dev/null/none", 1);
  assert_ok(hoist_registry_new(&o, &r, &err), &err);
  unsetenv("CONTAINERS_REGISTRIES_CONF");
  static const struct {
    const char *host;
    bool insecure;
  } cases[] = {
      {"localhost", true},          {"localhost:5000", true},      {"127.0.0.1:5000", true},
      {"127.1.2.3", true},          {"[::1]:5000", true},          {"reg.internal:5000", true},
      {"reg.internal:5001", false}, {"plain.example:443", true},   {"docker.io", false},
      {"128.0.0.1", false},         {"localhost.evil.com", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (hoist_registry_is_insecure(r, cases[i].host) != cases[i].insecure)
      fail_msg("%s: expected insecure=%d", cases[i].host, cases[i].insecure);
  hoist_registry_free(r);
  /* --tls-verify=true: verified https for every host, loopback and the
   * listed ones too (as podman's --tls-verify=true overrides
   * registries.conf) */
  o.tls_always = true;
  assert_ok(hoist_registry_new(&o, &r, &err), &err);
  assert_false(hoist_registry_is_insecure(r, "127.0.0.1:5000"));
  assert_false(hoist_registry_is_insecure(r, "reg.internal:5000"));
  hoist_registry_free(r);
  hoist_registry_opts bad = {.creds = "nocolon"};
  assert_true(hoist_registry_new(&bad, &r, &err) < 0);
  assert_err_contains(&err, "USER:PASSWORD");
}

/* insecure = true of a registries.conf (its registries' and mirrors'
 * locations) joins the client's insecure hosts. */
static void test_registries_config(void **state) {
  (void)state;
  static const char conf[] = "[[registry]]\n"
                             "prefix = \"example.com/team\"\n"
                             "location = \"conf.example:5000/team\"\n"
                             "insecure = true\n"
                             "[[registry.mirror]]\n"
                             "location = \"mirror.example/team\"\n"
                             "insecure = true\n"
                             "[[registry]]\n"
                             "location = \"secure.example\"\n";
  hoist_err *err = NULL;
  _cleanup_regconf_ hoist_regconf *c = hoist_regconf_new();
  assert_ok(hoist_regconf_parse(c, conf, sizeof conf - 1, "r.conf", &err), &err);
  hoist_registry_opts o = {.regconf = c};
  hoist_registry *r = NULL;
  assert_ok(hoist_registry_new(&o, &r, &err), &err);
  assert_ptr_equal(hoist_registry_regconf(r), c);
  assert_true(hoist_registry_is_insecure(r, "conf.example:5000"));
  assert_true(hoist_registry_is_insecure(r, "mirror.example"));
  assert_false(hoist_registry_is_insecure(r, "example.com"));
  assert_false(hoist_registry_is_insecure(r, "secure.example"));
  hoist_registry_free(r);
}

static volatile sig_atomic_t pipes_seen;
static void count_pipe(int sig) {
  (void)sig;
  pipes_seen++;
}

static void write_file(const char *dir, const char *name, const char *text, mode_t mode) {
  _cleanup_free_ char *path = hoist_asprintf("%s/%s", dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
}

/* A credential helper starts with every signal at its default and none
 * blocked (but glibc's own), whatever its caller's are. One that leaves without reading what
 * it was sent costs the caller no SIGPIPE, and the caller's handler and
 * signal mask are as they were. */
static void test_creds_helper_signals(void **state) {
  (void)state;
  _cleanup_free_ char *dir = test_mkdtemp();
  write_file(dir, "docker-credential-sigs",
             "#!/bin/sh\nread host\n"
             "while read k v; do case \"$k\" in SigIgn:) i=$v;; SigBlk:) b=$v;; esac; done "
             "</proc/self/status\n"
             "echo \"{\\\"Username\\\":\\\"$i/$b\\\",\\\"Secret\\\":\\\"s\\\"}\"\n",
             0755);
  write_file(dir, "docker-credential-deaf", "#!/bin/sh\nexit 3\n", 0755);
  /* more than a pipe holds: the write is still going when the helper leaves */
  size_t long_len = 256 * 1024;
  _cleanup_free_ char *long_host = hoist_malloc0(long_len + 1);
  memset(long_host, 'h', long_len);
  _cleanup_free_ char *auth =
      hoist_asprintf("{\"credHelpers\":{\"reg.test\":\"sigs\",\"%s\":\"deaf\"}}", long_host);
  write_file(dir, "auth.json", auth, 0600);
  _cleanup_free_ char *old_path = hoist_strdup(getenv("PATH"));
  _cleanup_free_ char *path = hoist_asprintf("%s:%s", dir, old_path);
  setenv("PATH", path, 1);

  struct sigaction handler = {.sa_handler = count_pipe}, got;
  sigaction(SIGPIPE, &handler, NULL);
  signal(SIGTERM, SIG_IGN);
  sigset_t usr1, mask, pending;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, NULL);

  _cleanup_free_ char *auth_file = hoist_asprintf("%s/auth.json", dir);
  hoist_registry_opts o = {.auth_file = auth_file};
  hoist_registry *r = NULL;
  hoist_err *err = NULL;
  assert_ok(hoist_registry_new(&o, &r, &err), &err);
  hoist_creds c = {0};
  bool found = false;
  assert_ok(reg_creds_lookup(r, "reg.test", &c, &found, &err), &err);
  assert_true(found);
  /* SigIgn/SigBlk: bit n-1 for signal n. glibc keeps 32 and 33, below
   * SIGRTMIN, for itself: posix_spawn leaves them ignored, and a program
   * of glibc's handles them anew */
  char *slash = strchr(c.username, '/');
  assert_non_null(slash);
  unsigned long long ign = strtoull(c.username, NULL, 16), blk = strtoull(slash + 1, NULL, 16);
  for (int sig = 32; sig < SIGRTMIN; sig++)
    ign &= ~(1ULL << (sig - 1));
  assert_int_equal(ign, 0);
  assert_int_equal(blk, 0);
  hoist_creds_clear(&c);

  assert_true(reg_creds_lookup(r, long_host, &c, &found, &err) < 0);
  assert_err_contains(&err, "credential helper docker-credential-deaf failed");
  hoist_creds_clear(&c);
  assert_int_equal(pipes_seen, 0);
  sigaction(SIGPIPE, NULL, &got);
  assert_ptr_equal(got.sa_handler, count_pipe);
  pthread_sigmask(SIG_SETMASK, NULL, &mask);
  assert_false(sigismember(&mask, SIGPIPE));
  assert_true(sigismember(&mask, SIGUSR1));
  sigpending(&pending);
  assert_false(sigismember(&pending, SIGPIPE));
  hoist_registry_free(r);

  pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGPIPE, SIG_DFL);
  setenv("PATH", old_path, 1);
  assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, dir, &err), &err);
}

/* What a certs.d directory holds, per podman's rules: *.crt are CAs,
 * *.cert pairs with the *.key of its name, and one without the other is an
 * error naming both. */
static void test_certs_dir_table(void **state) {
  (void)state;
  static const struct {
    const char *files; /* space separated */
    const char *cas;   /* the CA names read, space separated */
    const char *cert;  /* the client certificate, or NULL */
    const char *err;   /* NULL: reads */
  } cases[] = {
      {"ca.crt", "ca.crt", NULL, NULL},
      {"b.crt a.crt", "a.crt b.crt", NULL, NULL},
      {"", "", NULL, NULL},
      {"client.cert client.key ca.crt", "ca.crt", "client.cert", NULL},
      {"z.cert z.key a.cert a.key", "", "a.cert", NULL},
      {"README ca.pem", "", NULL, NULL},
      {".hidden.crt", "", NULL, NULL},
      {"client.cert", NULL, NULL, "client certificate client.cert has no key client.key"},
      {"ca.crt client.key", NULL, NULL, "key client.key has no client certificate client.cert"},
      {"x.crt.key", NULL, NULL, "has no client certificate x.crt.cert"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    _cleanup_free_ char *dir = test_mkdtemp();
    _cleanup_free_ char *files = hoist_strdup(cases[i].files);
    char *save = NULL;
    for (char *f = strtok_r(files, " ", &save); f; f = strtok_r(NULL, " ", &save))
      write_file(dir, f, "x\n", 0600);
    hoist_certs_dir d;
    bool found = false;
    hoist_err *err = NULL;
    int ret = hoist_certs_dir_read(dir, &d, &found, &err);
    if (cases[i].err) {
      if (ret == 0)
        fail_msg("case %zu: expected an error", i);
      assert_err_contains(&err, cases[i].err);
    } else {
      assert_ok(ret, &err);
      assert_true(found);
      hoist_buf names = HOIST_BUF_INIT(0);
      for (size_t k = 0; d.cas[k]; k++)
        assert_ok(hoist_buf_appendf(&names, &err, "%s%s", k ? " " : "", strrchr(d.cas[k], '/') + 1),
                  &err);
      assert_string_equal(names.data ? names.data : "", cases[i].cas);
      hoist_buf_free(&names);
      if (cases[i].cert) {
        assert_non_null(d.cert);
        assert_string_equal(strrchr(d.cert, '/') + 1, cases[i].cert);
        assert_int_equal(strlen(d.key), strlen(d.cert) - 1); /* x.cert -> x.key */
      } else {
        assert_null(d.cert);
      }
      hoist_certs_dir_clear(&d);
    }
    assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, dir, &err), &err);
  }
  hoist_certs_dir d;
  bool found = true;
  hoist_err *err = NULL;
  assert_ok(hoist_certs_dir_read("/nonexistent/certs.d/h:1", &d, &found, &err), &err);
  assert_false(found);
  hoist_certs_dir_clear(&d);
}

static char *read_text(const char *path) {
  char *data = NULL;
  size_t len = 0;
  hoist_err *err = NULL;
  assert_ok(hoist_fs_read_file(AT_FDCWD, path, 1 << 20, &data, &len, &err), &err);
  return data;
}

/* login and logout on an auth file: entries of other hosts, other keys and
 * the forms of one host's key, the file's mode, refusals. */
static void test_creds_store_erase(void **state) {
  (void)state;
  _cleanup_free_ char *dir = test_mkdtemp();
  _cleanup_free_ char *path = hoist_asprintf("%s/sub/containers/auth.json", dir);
  hoist_err *err = NULL;
  /* a missing file and directories: made, 0600 and 0700 */
  assert_ok(hoist_creds_store(path, "reg.test:5000", "alice", "pw:with:colons", &err), &err);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  _cleanup_free_ char *parent = hoist_asprintf("%s/sub/containers", dir);
  assert_int_equal(stat(parent, &st), 0);
  assert_int_equal(st.st_mode & 0077, 0);
  _cleanup_free_ char *text = read_text(path);
  hoist_creds c;
  bool found = false;
  assert_ok(hoist_creds_from_json(text, strlen(text), "reg.test:5000", NULL, &c, &found, &err),
            &err);
  assert_true(found);
  assert_string_equal(c.username, "alice");
  assert_string_equal(c.password, "pw:with:colons");
  hoist_creds_clear(&c);
  /* other content is kept; other forms of the same host are replaced */
  write_file(dir, "sub/containers/auth.json",
             "{\"auths\":{\"https://reg.test:5000/v2/\":{\"auth\":\"b2xkOm9sZA==\"},"
             "\"other.test\":{\"auth\":\"bzpw\"},\"reg.test:5000/ns\":{\"auth\":\"bjpw\"}},"
             "\"credHelpers\":{\"helped.test\":\"x\"},\"extra\":[1,2]}",
             0600);
  assert_ok(hoist_creds_store(path, "reg.test:5000", "bob", "new", &err), &err);
  free(text);
  text = read_text(path);
  assert_null(strstr(text, "https://reg.test:5000/v2/"));
  assert_non_null(strstr(text, "\"other.test\""));
  assert_non_null(strstr(text, "\"reg.test:5000/ns\""));
  assert_non_null(strstr(text, "\"extra\""));
  assert_non_null(strstr(text, "helped.test"));
  assert_ok(hoist_creds_from_json(text, strlen(text), "reg.test:5000", NULL, &c, &found, &err),
            &err);
  assert_string_equal(c.username, "bob");
  hoist_creds_clear(&c);
  /* refusals leave the file as it was */
  static const struct {
    const char *host, *user, *err;
  } bad[] = {
      {"helped.test", "u", "docker-credential-x keeps the credentials of helped.test"},
      {"reg.test:5000", "a:b", "has no ':'"},
      {"reg.test:5000", "", "has no ':'"},
      {"", "u", "no registry host"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_true(hoist_creds_store(path, bad[i].host, bad[i].user, "p", &err) < 0);
    assert_err_contains(&err, bad[i].err);
    _cleanup_free_ char *now = read_text(path);
    assert_string_equal(now, text);
  }
  /* logout: one host in any form, then nothing more to remove */
  bool removed = false;
  assert_ok(hoist_creds_erase(path, "https://reg.test:5000/", &removed, &err), &err);
  assert_true(removed);
  free(text);
  text = read_text(path);
  assert_ok(hoist_creds_from_json(text, strlen(text), "reg.test:5000", NULL, &c, &found, &err),
            &err);
  assert_false(found);
  assert_non_null(strstr(text, "\"reg.test:5000/ns\""));
  assert_ok(hoist_creds_erase(path, "reg.test:5000", &removed, &err), &err);
  assert_false(removed);
  /* --all: every auths entry, the rest kept */
  assert_ok(hoist_creds_erase(path, NULL, &removed, &err), &err);
  assert_true(removed);
  free(text);
  text = read_text(path);
  assert_null(strstr(text, "other.test"));
  assert_non_null(strstr(text, "helped.test"));
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  /* a missing file has nothing to remove; a malformed one is an error */
  _cleanup_free_ char *none = hoist_asprintf("%s/none.json", dir);
  assert_ok(hoist_creds_erase(none, "x", &removed, &err), &err);
  assert_false(removed);
  assert_int_equal(access(none, F_OK), -1);
  write_file(dir, "bad.json", "{\"auths\":[]}", 0600);
  _cleanup_free_ char *badf = hoist_asprintf("%s/bad.json", dir);
  assert_true(hoist_creds_store(badf, "x", "u", "p", &err) < 0);
  assert_err_contains(&err, "\"auths\" is not an object");
  assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, dir, &err), &err);
}

/* ------------------------------------------------- blob-location record */

/* A digest of its own for each i. */
static const char *digest_of(int i, char out[HOIST_DIGEST_STR_LEN]) {
  char text[32];
  snprintf(text, sizeof text, "blob %d", i);
  hoist_sha256_of(text, strlen(text), out);
  return out;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Asserts that find(registry, digest, except, max) gives want (a
 * NULL-terminated list) in that order. */
static void assert_found(hoist_blob_locations *b, const char *registry, const char *digest,
                         const char *except, size_t max, const char *const *want) {
  hoist_err *err = NULL;
  _cleanup_strfreev_ char **got = NULL;
  size_t n = 99;
  assert_ok(hoist_blob_locations_find(b, registry, digest, except, max, &got, &n, &err), &err);
  assert_non_null(got);
  size_t i = 0;
  for (; want[i]; i++) {
    if (!got[i])
      fail_msg("found %zu repositories, expected %s at %zu", i, want[i], i);
    assert_string_equal(got[i], want[i]);
  }
  assert_null(got[i]);
  assert_int_equal(n, i);
}

/* Runs sql on the file at path with SQLite itself (the user may). */
static void sql_on(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
    fail_msg("%s: %s", sql, msg);
  sqlite3_close(db);
}

static size_t count_of(hoist_blob_locations *b) {
  hoist_err *err = NULL;
  size_t n = 0;
  assert_ok(hoist_blob_locations_count(b, &n, &err), &err);
  return n;
}

static void test_blob_locations(void **state) {
  (void)state;
  hoist_err *err = NULL;
  _cleanup_free_ char *dir = test_mkdtemp();
  _cleanup_free_ char *path = hoist_asprintf("%s/cache/hoist/blob-locations.db", dir);
  char d1[HOIST_DIGEST_STR_LEN], d2[HOIST_DIGEST_STR_LEN], d3[HOIST_DIGEST_STR_LEN];
  digest_of(1, d1);
  digest_of(2, d2);
  digest_of(3, d3);
  int64_t t = now_ms() - 60000;
  {
    _cleanup_blob_locations_ hoist_blob_locations *b = NULL;
    assert_ok(hoist_blob_locations_open(path, 0, &b, &err), &err); /* its directory made */
    assert_int_equal(count_of(b), 0);
    assert_ok(hoist_blob_locations_add(b, "reg:5000", "a/b", d1, t + 1000, &err), &err);
    assert_ok(hoist_blob_locations_add(b, "reg:5000", "c", d1, t + 3000, &err), &err);
    assert_ok(hoist_blob_locations_add(b, "reg:5000", "d/e-f", d1, t + 2000, &err), &err);
    assert_ok(hoist_blob_locations_add(b, "other.test", "a/b", d1, t + 4000, &err), &err);
    assert_ok(hoist_blob_locations_add(b, "reg:5000", "a/b", d2, t + 5000, &err), &err);
    /* the most recently seen first; per registry; except one; at most max */
    assert_found(b, "reg:5000", d1, NULL, 10, (const char *[]){"c", "d/e-f", "a/b", NULL});
    assert_found(b, "reg:5000", d1, "c", 1, (const char *[]){"d/e-f", NULL});
    assert_found(b, "reg:5000", d1, "c", 0, (const char *[]){NULL});
    assert_found(b, "other.test", d1, NULL, 10, (const char *[]){"a/b", NULL});
    assert_found(b, "reg:5000", d2, "a/b", 10, (const char *[]){NULL});
    assert_found(b, "reg:5000", d3, NULL, 10, (const char *[]){NULL});
    assert_found(b, "nowhere", d1, NULL, 10, (const char *[]){NULL});
    bool has = false;
    assert_ok(hoist_blob_locations_has(b, "reg:5000", "a/b", d2, &has, &err), &err);
    assert_true(has);
    assert_ok(hoist_blob_locations_has(b, "reg:5000", "c", d2, &has, &err), &err);
    assert_false(has);
    /* a row keeps its latest time; a later sighting moves it first */
    assert_ok(hoist_blob_locations_add(b, "reg:5000", "a/b", d1, t + 500, &err), &err);
    assert_found(b, "reg:5000", d1, NULL, 10, (const char *[]){"c", "d/e-f", "a/b", NULL});
    assert_ok(hoist_blob_locations_add(b, "reg:5000", "a/b", d1, 0, &err), &err); /* now */
    assert_found(b, "reg:5000", d1, NULL, 10, (const char *[]){"a/b", "c", "d/e-f", NULL});
    assert_ok(hoist_blob_locations_forget(b, "reg:5000", "c", d1, &err), &err);
    assert_ok(hoist_blob_locations_forget(b, "reg:5000", "c", d1, &err), &err); /* none: fine */
    assert_found(b, "reg:5000", d1, NULL, 10, (const char *[]){"a/b", "d/e-f", NULL});
    assert_int_equal(count_of(b), 4);
  }
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  /* another handle (process) finds the rows */
  _cleanup_blob_locations_ hoist_blob_locations *b = NULL;
  assert_ok(hoist_blob_locations_open(path, 0, &b, &err), &err);
  assert_found(b, "reg:5000", d1, NULL, 10, (const char *[]){"a/b", "d/e-f", NULL});
  assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, dir, &err), &err);
}

static void test_blob_locations_bad_input(void **state) {
  (void)state;
  hoist_err *err = NULL;
  _cleanup_free_ char *dir = test_mkdtemp();
  _cleanup_free_ char *path = hoist_asprintf("%s/b.db", dir);
  _cleanup_blob_locations_ hoist_blob_locations *b = NULL;
  assert_ok(hoist_blob_locations_open(path, 0, &b, &err), &err);
  char d1[HOIST_DIGEST_STR_LEN];
  digest_of(1, d1);
  char long_repo[300];
  memset(long_repo, 'a', sizeof long_repo - 1);
  long_repo[sizeof long_repo - 1] = '\0';
  const char *const bad_repos[] = {
      "",    "A/b", "a//b",        "/a",    "a/", "../x", "a/../b", "a b",   "a&from=x", "a?b",
      "a#b", "a:1", "a@sha256:00", "a%2fb", "-a", "a/-b", "a\nb",   "a__b_", long_repo,
  };
  for (size_t i = 0; i < sizeof bad_repos / sizeof bad_repos[0]; i++) {
    bool has = true;
    assert_true(hoist_blob_locations_add(b, "reg:5000", bad_repos[i], d1, 0, &err) < 0);
    assert_err_contains(&err, "invalid repository");
    assert_true(hoist_blob_locations_forget(b, "reg:5000", bad_repos[i], d1, &err) < 0);
    assert_err_contains(&err, "invalid repository");
    assert_true(hoist_blob_locations_has(b, "reg:5000", bad_repos[i], d1, &has, &err) < 0);
    assert_err_contains(&err, "invalid repository");
    assert_false(has);
  }
  static const char *const bad_registries[] = {"", "reg/x", "REG IS BAD", "a b:5000"};
  for (size_t i = 0; i < sizeof bad_registries / sizeof bad_registries[0]; i++) {
    assert_true(hoist_blob_locations_add(b, bad_registries[i], "a", d1, 0, &err) < 0);
    assert_err_contains(&err, "invalid repository");
  }
  static const char *const bad_digests[] = {
      "",
      "sha256:",
      "sha256:xyz",
      "md5:d41d8cd98f00b204e9800998ecf8427e",
      "sha256:" /* short */
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
      "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
      "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef' OR 1=1",
  };
  for (size_t i = 0; i < sizeof bad_digests / sizeof bad_digests[0]; i++) {
    char **found = NULL;
    assert_true(hoist_blob_locations_add(b, "reg:5000", "a", bad_digests[i], 0, &err) < 0);
    assert_err_contains(&err, "invalid digest");
    assert_true(
        hoist_blob_locations_find(b, "reg:5000", bad_digests[i], NULL, 3, &found, NULL, &err) < 0);
    assert_err_contains(&err, "invalid digest");
    assert_null(found);
  }
  assert_int_equal(count_of(b), 0);
  /* rows written by someone else that name no repository are never
   * given out (they would go into a URL) */
  assert_ok(hoist_blob_locations_add(b, "reg:5000", "good/one", d1, 1, &err), &err);
  _cleanup_free_ char *sql =
      hoist_asprintf("INSERT INTO blobs VALUES ('reg:5000', '%s', 'x&mount=y', 9e12),"
                     " ('reg:5000', '%s', 'UPPER', 9e12), ('reg:5000', '%s', '', 9e12),"
                     " ('reg:5000', '%s', 'a/../b', 9e12), ('reg:5000', '%s', 'ok/too', 8e12)",
                     d1, d1, d1, d1, d1);
  sql_on(path, sql);
  assert_found(b, "reg:5000", d1, NULL, 10, (const char *[]){"ok/too", "good/one", NULL});
  assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, dir, &err), &err);
}

static void test_blob_locations_prune(void **state) {
  (void)state;
  hoist_err *err = NULL;
  _cleanup_free_ char *dir = test_mkdtemp();
  _cleanup_free_ char *path = hoist_asprintf("%s/b.db", dir);
  char d[HOIST_DIGEST_STR_LEN];
  digest_of(7, d);
  int64_t t = now_ms();
  {
    _cleanup_blob_locations_ hoist_blob_locations *b = NULL;
    assert_ok(hoist_blob_locations_open(path, 0, &b, &err), &err);
    for (int i = 1; i <= 10; i++) {
      char repo[16];
      snprintf(repo, sizeof repo, "r%d", i);
      assert_ok(hoist_blob_locations_add(b, "reg.test", repo, d, t - 100000 + i * 1000, &err),
                &err);
    }
    /* beyond 8 rows: the least recently seen go */
    size_t removed = 0;
    assert_ok(hoist_blob_locations_prune(b, 8, 0, &removed, &err), &err);
    assert_int_equal(removed, 2);
    assert_found(b, "reg.test", d, NULL, 3, (const char *[]){"r10", "r9", "r8", NULL});
    bool has = true;
    assert_ok(hoist_blob_locations_has(b, "reg.test", "r2", d, &has, &err), &err);
    assert_false(has);
    /* seen before a time */
    assert_ok(hoist_blob_locations_prune(b, 100, t - 100000 + 5500, &removed, &err), &err);
    assert_int_equal(removed, 3); /* r3, r4, r5 */
    assert_int_equal(count_of(b), 5);
    assert_ok(hoist_blob_locations_prune(b, 100, 0, &removed, &err), &err);
    assert_int_equal(removed, 0);
    /* rows unseen for over 90 days go when the record is opened */
    assert_ok(hoist_blob_locations_add(b, "reg.test", "old", d, t - 91LL * 24 * 3600 * 1000, &err),
              &err);
    assert_int_equal(count_of(b), 6);
  }
  {
    _cleanup_blob_locations_ hoist_blob_locations *b = NULL;
    assert_ok(hoist_blob_locations_open(path, 0, &b, &err), &err);
    assert_int_equal(count_of(b), 5);
  }
  /* and beyond the bound it was opened with, the oldest */
  _cleanup_blob_locations_ hoist_blob_locations *b = NULL;
  assert_ok(hoist_blob_locations_open(path, 2, &b, &err), &err);
  assert_int_equal(count_of(b), 2);
  assert_found(b, "reg.test", d, NULL, 10, (const char *[]){"r10", "r9", NULL});
  assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, dir, &err), &err);
}

/* Replaces path with len bytes of data. */
static void put_bytes(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  fclose(f);
}

static void test_blob_locations_unreadable(void **state) {
  (void)state;
  hoist_err *err = NULL;
  _cleanup_free_ char *dir = test_mkdtemp();
  _cleanup_free_ char *path = hoist_asprintf("%s/b.db", dir);
  char d[HOIST_DIGEST_STR_LEN];
  digest_of(9, d);
  /* a good record, to damage below */
  {
    _cleanup_blob_locations_ hoist_blob_locations *b = NULL;
    assert_ok(hoist_blob_locations_open(path, 0, &b, &err), &err);
    for (int i = 0; i < 300; i++) {
      char repo[16];
      snprintf(repo, sizeof repo, "repo%d", i);
      assert_ok(hoist_blob_locations_add(b, "reg.test", repo, d, 0, &err), &err);
    }
  }
  sql_on(path, "PRAGMA wal_checkpoint(TRUNCATE)");
  char *good = NULL;
  size_t good_len = 0;
  assert_ok(hoist_fs_read_file(AT_FDCWD, path, 1 << 24, &good, &good_len, &err), &err);
  assert_true(good_len > 8192);
  static const char garbage[] = "this is not an SQLite database, not even close";
  static const struct {
    const char *what;
    int kind; /* 0 garbage, 1 empty, 2 truncated, 3 header damaged, 4 other schema */
  } cases[] = {
      {"garbage", 0}, {"empty", 1}, {"truncated", 2}, {"header", 3}, {"other schema", 4},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    unlink(path);
    _cleanup_free_ char *wal = hoist_asprintf("%s-wal", path);
    unlink(wal);
    switch (cases[i].kind) {
    case 0:
      put_bytes(path, garbage, sizeof garbage);
      break;
    case 1:
      put_bytes(path, "", 0);
      break;
    case 2:
      put_bytes(path, good, 4096 + 100);
      break;
    case 3: {
      char *copy = malloc(good_len);
      memcpy(copy, good, good_len);
      memset(copy, 0x5a, 100);
      put_bytes(path, copy, good_len);
      free(copy);
      break;
    }
    default:
      sql_on(path, "CREATE TABLE blobs (x TEXT); PRAGMA user_version = 1");
    }
    _cleanup_blob_locations_ hoist_blob_locations *b = NULL;
    hoist_err *e = NULL;
    if (hoist_blob_locations_open(path, 0, &b, &e) < 0) {
      _cleanup_free_ char *t = hoist_err_text(e);
      fail_msg("%s: %s", cases[i].what, t);
    }
    /* whatever could be read of it, the record works */
    assert_ok(hoist_blob_locations_add(b, "reg.test", "after", d, 0, &err), &err);
    assert_found(b, "reg.test", d, "repo0", 1, (const char *[]){"after", NULL});
  }
  /* a newer hoist's record is not touched */
  unlink(path);
  sql_on(path, "CREATE TABLE blobs (future BLOB); PRAGMA user_version = 7");
  struct stat before, after;
  assert_int_equal(stat(path, &before), 0);
  hoist_blob_locations *b = NULL;
  assert_true(hoist_blob_locations_open(path, 0, &b, &err) < 0);
  assert_null(b);
  assert_err_contains(&err, "schema version 7 is newer");
  assert_int_equal(stat(path, &after), 0);
  assert_int_equal(before.st_ino, after.st_ino);
  assert_int_equal(before.st_size, after.st_size);
  /* a directory in its place is an error */
  _cleanup_free_ char *sub = hoist_asprintf("%s/dir.db", dir);
  assert_int_equal(mkdir(sub, 0700), 0);
  assert_true(hoist_blob_locations_open(sub, 0, &b, &err) < 0);
  assert_err_contains(&err, "dir.db");
  free(good);
  assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, dir, &err), &err);
}

typedef struct adder {
  hoist_blob_locations *b; /* shared, or NULL: open path */
  const char *path;
  int id;
  int n;
  bool ok;
} adder;

static void *add_many(void *arg) {
  adder *a = arg;
  hoist_err *err = NULL;
  hoist_blob_locations *own = NULL;
  hoist_blob_locations *b = a->b;
  if (!b && hoist_blob_locations_open(a->path, 0, &own, &err) < 0)
    goto out;
  b = b ? b : own;
  for (int i = 0; i < a->n; i++) {
    char repo[32], d[HOIST_DIGEST_STR_LEN];
    snprintf(repo, sizeof repo, "w%d/r%d", a->id, i);
    char **found = NULL;
    if (hoist_blob_locations_add(b, "reg.test", repo, digest_of(i, d), 0, &err) < 0 ||
        hoist_blob_locations_find(b, "reg.test", d, NULL, 3, &found, NULL, &err) < 0)
      goto out;
    hoist_strfreev(found);
  }
  a->ok = true;
out:
  if (err) {
    char *t = hoist_err_text(err);
    fprintf(stderr, "adder %d: %s\n", a->id, t);
    free(t);
    hoist_err_free(err);
  }
  hoist_blob_locations_free(own);
  return NULL;
}

static void test_blob_locations_concurrent(void **state) {
  (void)state;
  hoist_err *err = NULL;
  _cleanup_free_ char *dir = test_mkdtemp();
  _cleanup_free_ char *path = hoist_asprintf("%s/b.db", dir);
  enum { PROCS = 4, THREADS = 4, ROWS = 100 };
  /* processes, each with its own handle, the file made by whichever comes first */
  pid_t pids[PROCS];
  for (int p = 0; p < PROCS; p++) {
    pids[p] = fork();
    assert_true(pids[p] >= 0);
    if (pids[p] == 0) {
      adder a = {.path = path, .id = p, .n = ROWS};
      add_many(&a);
      _exit(a.ok ? 0 : 1);
    }
  }
  for (int p = 0; p < PROCS; p++) {
    int status = 0;
    assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  /* threads sharing one handle */
  _cleanup_blob_locations_ hoist_blob_locations *b = NULL;
  assert_ok(hoist_blob_locations_open(path, 0, &b, &err), &err);
  pthread_t th[THREADS];
  adder as[THREADS];
  for (int t = 0; t < THREADS; t++) {
    as[t] = (adder){.b = b, .id = PROCS + t, .n = ROWS};
    assert_int_equal(pthread_create(&th[t], NULL, add_many, &as[t]), 0);
  }
  for (int t = 0; t < THREADS; t++) {
    pthread_join(th[t], NULL);
    assert_true(as[t].ok);
  }
  assert_int_equal(count_of(b), (PROCS + THREADS) * ROWS);
  assert_ok(hoist_fs_rm_rf_at(AT_FDCWD, dir, &err), &err);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_challenge_table),
      cmocka_unit_test(test_creds_table),
      cmocka_unit_test(test_link_table),
      cmocka_unit_test(test_insecure_hosts),
      cmocka_unit_test(test_registries_config),
      cmocka_unit_test(test_creds_helper_signals),
      cmocka_unit_test(test_creds_auth_base64),
      cmocka_unit_test(test_certs_dir_table),
      cmocka_unit_test(test_creds_store_erase),
      cmocka_unit_test(test_blob_locations),
      cmocka_unit_test(test_blob_locations_bad_input),
      cmocka_unit_test(test_blob_locations_prune),
      cmocka_unit_test(test_blob_locations_unreadable),
      cmocka_unit_test(test_blob_locations_concurrent),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
