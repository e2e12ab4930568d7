#include <math.h>
#include <time.h>

#include "../../src/lib/server/server-private.h"
#include "hoist/build.h"
#include "hoist/digest.h"
#include "hoist/server.h"
#include "test_util.h"

/* YWxpY2U6azE= is base64("alice:k1") */
static const struct {
  const char *header;
  const char *uuid; /* NULL: refused */
  const char *key;
} auth_cases[] = {
    {"u1:k1", "u1", "k1"},
    {"  u1:k1  ", "u1", "k1"},
    {"YWxpY2U6azE=", "alice", "k1"},
    {"Basic YWxpY2U6azE=", "alice", "k1"},
    {"basic   YWxpY2U6azE=", "alice", "k1"},
    {"", NULL, NULL},
    {":", NULL, NULL},
    {"u1:", NULL, NULL},
    {":k1", NULL, NULL},
    {"u1:k1:k2", NULL, NULL},
    {"u 1:k1", NULL, NULL},
    {"u1:k\t1", NULL, NULL},
    {"Basic", NULL, NULL},
    {"Basic !!!!", NULL, NULL},
    {"Basic YWxpY2U=", NULL, NULL}, /* "alice": no colon */
    {"YWxpY2U6azE", NULL, NULL},    /* unpadded */
    {"Bearer abc", NULL, NULL},
    {"AAAA", NULL, NULL}, /* NUL bytes */
};

static void test_authorization(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof auth_cases / sizeof auth_cases[0]; i++) {
    char *u = NULL, *k = NULL;
    hoist_err *err = NULL;
    int r = hoist_server_parse_authorization(auth_cases[i].header, &u, &k, &err);
    if (auth_cases[i].uuid) {
      if (r != 0)
        fail_msg("\"%s\": refused", auth_cases[i].header);
      assert_string_equal(u, auth_cases[i].uuid);
      assert_string_equal(k, auth_cases[i].key);
    } else {
      if (r == 0)
        fail_msg("\"%s\": accepted", auth_cases[i].header);
      assert_int_equal(err->code, HOIST_E_AUTH);
    }
    free(u);
    free(k);
    hoist_err_free(err);
  }
  char *long_header = malloc(HOIST_SERVER_MAX_AUTH + 10);
  memset(long_header, 'a', HOIST_SERVER_MAX_AUTH + 9);
  long_header[3] = ':';
  long_header[HOIST_SERVER_MAX_AUTH + 9] = '\0';
  char *u = NULL, *k = NULL;
  assert_int_not_equal(hoist_server_parse_authorization(long_header, &u, &k, NULL), 0);
  free(long_header);
}

static const struct {
  const char *body;
  int status; /* 0: accepted */
  const char *message;
} start_cases[] = {
    {"{\"source\":\"busybox\",\"target\":\"alice:v1\",\"kind\":\"python\"}", 0, NULL},
    {"{\"source\":\"busybox\",\"target\":\"alice:v1\",\"kind\":\"go\",\"file\":\"Zm9v\"}", 0, NULL},
    {"{\"source\":\"busybox\",\"target\":\"alice:v1\",\"kind\":\"go\",\"file\":null}", 0, NULL},
    {"", 400, "No JSON payload provided for build."},
    {"{", 400, "No JSON payload provided for build."},
    {"\"x\"", 400, "No JSON payload provided for build."},
    {"{\"target\":\"alice:v1\",\"kind\":\"python\"}", 400, "No source provided for build."},
    {"{\"source\":\"\",\"target\":\"alice:v1\",\"kind\":\"python\"}", 400,
     "No source provided for build."},
    {"{\"source\":\"b\",\"kind\":\"python\"}", 400, "No target provided for build."},
    {"{\"source\":\"b\",\"target\":\"alice:v1\"}", 400, "No kind provided for build."},
    {"{\"source\":\"b\",\"target\":\"bob:v1\",\"kind\":\"python\"}", 400,
     "Invalid target for the build."},
    {"{\"source\":\"b\",\"target\":\"alice:-v\",\"kind\":\"python\"}", 400,
     "Invalid target for the build."},
    {"{\"source\":\"b\",\"target\":\"alice/x:v\",\"kind\":\"python\"}", 400,
     "Invalid target for the build."},
    /* \\u0000 inside a string: the field holding it is refused */
    {"{\"source\":\"b\\u0000c\",\"target\":\"alice:v\",\"kind\":\"python\"}", 400,
     "Invalid source for the build."},
    {"{\"source\":\"\\u0000\",\"target\":\"alice:v\",\"kind\":\"python\"}", 400,
     "Invalid source for the build."},
    {"{\"source\":\"b\",\"target\":\"alice:v\\u0000\",\"kind\":\"python\"}", 400,
     "Invalid target for the build."},
    {"{\"source\":\"b\",\"target\":\"alice:v\",\"kind\":\"python\\u0000x\"}", 400,
     "Invalid kind for the build."},
    {"{\"source\":\"b\",\"target\":\"alice:v\",\"kind\":\"go\",\"file\":\"Zm9v\\u0000\"}", 400,
     "Requirements file must be valid base64-encoded data"},
    {"{\"source\":\"b\",\"target\":\"alice:v\",\"kind\":\"go\",\"x\\u0000\":1}", 400,
     "No JSON payload provided for build."}, /* a key with NUL does not load */
    {"{\"source\":\"b c\",\"target\":\"alice:v\",\"kind\":\"python\"}", 400,
     "Invalid source for the build."},
    {"{\"source\":\"b\",\"target\":\"alice:v\",\"kind\":\"Python\"}", 400, "Unknown kind"},
    {"{\"source\":\"b\",\"target\":\"alice:v\",\"kind\":\"go\",\"file\":\"Zm9\"}", 400,
     "valid base64"},
    {"{\"source\":\"b\",\"target\":\"alice:v\",\"kind\":\"go\",\"file\":\"Zm=v\"}", 400,
     "valid base64"},
    {"{\"source\":\"b\",\"target\":\"alice:v\",\"kind\":\"go\",\"file\":\"wMA=\"}", 400,
     "UTF-8"}, /* overlong NUL */
    {"{\"source\":\"b\",\"target\":\"alice:v\",\"kind\":\"go\",\"file\":\"7aCA\"}", 400,
     "UTF-8"}, /* a surrogate */
};

static void test_start(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof start_cases / sizeof start_cases[0]; i++) {
    hoist_build_request req;
    hoist_refusal why;
    const char *b = start_cases[i].body;
    int r = hoist_server_parse_start(b, strlen(b), "Alice", hoist_server_kinds(), true, &req, &why);
    if (start_cases[i].status == 0) {
      if (r != 0)
        fail_msg("%s: refused: %s", b, why.message);
      assert_string_equal(req.target_user, "alice");
      hoist_build_request_clear(&req);
    } else {
      if (r == 0)
        fail_msg("%s: accepted", b);
      assert_int_equal(why.status, start_cases[i].status);
      if (!strstr(why.message, start_cases[i].message))
        fail_msg("%s: message \"%s\"", b, why.message);
    }
  }
}

static void test_cleanup(void **state) {
  (void)state;
  static const struct {
    const char *body;
    double hours; /* < 0: refused */
  } cases[] = {
      {"", 24},
      {"{}", 24},
      {"{\"max_age_hours\":null}", 24},
      {"{\"max_age_hours\":0}", 0},
      {"{\"max_age_hours\":1.5}", 1.5},
      {"{\"max_age_hours\":\"48\"}", 48},
      {"{\"max_age_hours\":\" 2 \"}", 2},
      {"{\"max_age_hours\":-1}", -1},
      {"{\"max_age_hours\":\"abc\"}", -1},
      {"{\"max_age_hours\":\"\"}", -1},
      {"{\"max_age_hours\":\"nan\"}", -1},
      {"{\"max_age_hours\":\"inf\"}", -1},
      {"{\"max_age_hours\":true}", -1},
      {"{\"max_age_hours\":[1]}", -1},
      {"{\"max_age_hours\":\"1\\u00002\"}", -1},
      {"{\"max_age_hours\":\"\\u0000\"}", -1},
      {"[", -1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    double h = -7;
    hoist_refusal why;
    int r = hoist_server_parse_cleanup(cases[i].body, strlen(cases[i].body), &h, &why);
    if (cases[i].hours >= 0) {
      if (r != 0)
        fail_msg("%s: refused", cases[i].body);
      assert_true(fabs(h - cases[i].hours) < 1e-9);
    } else {
      if (r == 0)
        fail_msg("%s: accepted", cases[i].body);
      assert_int_equal(why.status, 400);
    }
  }
}

/* The `file` authenticator: a uuid and the key whose SHA-256 is stored for
 * it, nothing else; an unknown uuid, a uuid's prefix or extension, a wrong
 * key, a malformed digest or a token without login is refused. */
static void test_file_auth(void **state) {
  (void)state;
  char ka[HOIST_DIGEST_STR_LEN], kc[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of("ka", 2, ka);
  hoist_sha256_of("kc", 2, kc);
  char *dir = test_mkdtemp();
  char *path = hoist_asprintf("%s/tokens.json", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f,
          "{\"tokens\": [{\"login\": \"alice\", \"uuid\": \"u-alice\", \"key_sha256\": \"%s\"},"
          " {\"login\": \"bob\", \"uuid\": \"u-bob\", \"key_sha256\": \"%s\"},"
          " {\"uuid\": \"u-carol\", \"key_sha256\": \"%s\"},"
          " {\"login\": \"dave\", \"uuid\": \"u-dave\", \"key_sha256\": "
          "\"----------------------------------------------------------------\"}]}",
          ka + 7, "not-a-digest", kc + 7);
  fclose(f);
  static const struct {
    const char *uuid, *key, *login; /* login NULL: refused */
  } cases[] = {
      {"u-alice", "ka", "alice"}, {"u-alice", "kb", NULL},  {"u-alice", "ka ", NULL},
      {"u-alic", "ka", NULL},     {"u-alicex", "ka", NULL}, {"nobody", "ka", NULL},
      {"", "ka", NULL},           {"u-bob", "ka", NULL},    {"u-carol", "kc", NULL},
      {"u-dave", "ka", NULL},     {"u-dave", "----", NULL},
  };
  server_auth *a = NULL;
  hoist_err *err = NULL;
  assert_ok(server_auth_file_new(dir, &a, &err), &err);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    server_user u = {0};
    int r = a->check(a, cases[i].uuid, cases[i].key, &u, &err);
    assert_null(err);
    if (cases[i].login) {
      if (r != 1)
        fail_msg("%s:%s refused", cases[i].uuid, cases[i].key);
      assert_string_equal(u.login, cases[i].login);
    } else if (r != 0) {
      fail_msg("%s:%s accepted as \"%s\"", cases[i].uuid, cases[i].key, u.login);
    }
    server_user_clear(&u);
  }
  a->free(a);
  unlink(path);
  rmdir(dir);
  free(path);
  free(dir);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* An unknown uuid costs what a known one with a wrong key does: with 1000
 * tokens and the known uuid first, the median times of the two refusals
 * are within a factor of 2 (a lookup that stops at the match is ~10x
 * apart). */
static void test_file_auth_equal_work(void **state) {
  (void)state;
  char *dir = test_mkdtemp();
  char *path = hoist_asprintf("%s/tokens.json", dir);
  hoist_buf b = HOIST_BUF_INIT(0);
  assert_int_equal(hoist_buf_appendf(&b, NULL, "{\"tokens\": ["), 0);
  for (int i = 0; i < 1000; i++) {
    char k[16], d[HOIST_DIGEST_STR_LEN];
    snprintf(k, sizeof k, "k%d", i);
    hoist_sha256_of(k, strlen(k), d);
    assert_int_equal(hoist_buf_appendf(&b, NULL,
                                       "%s{\"login\": \"user%d\", \"uuid\": "
                                       "\"00000000-0000-0000-0000-%012d\", \"key_sha256\": \"%s\"}",
                                       i ? ", " : "", i, i, d + 7),
                     0);
  }
  assert_int_equal(hoist_buf_appendf(&b, NULL, "]}"), 0);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fwrite(b.data, 1, b.len, f);
  fclose(f);
  hoist_buf_free(&b);
  server_auth *a = NULL;
  hoist_err *err = NULL;
  assert_ok(server_auth_file_new(dir, &a, &err), &err);
  enum { N = 301 };
  uint64_t known[N], unknown[N];
  for (int i = 0; i < N; i++) {
    server_user u = {0};
    uint64_t t0 = now_ns();
    assert_int_equal(a->check(a, "00000000-0000-0000-0000-000000000000", "wrong", &u, &err), 0);
    uint64_t t1 = now_ns();
    assert_int_equal(a->check(a, "00000000-0000-0000-0000-999999999999", "wrong", &u, &err), 0);
    uint64_t t2 = now_ns();
    known[i] = t1 - t0;
    unknown[i] = t2 - t1;
  }
  qsort(known, N, sizeof known[0], cmp_u64);
  qsort(unknown, N, sizeof unknown[0], cmp_u64);
  double ratio = (double)known[N / 2] / (double)unknown[N / 2];
  if (ratio < 0.5 || ratio > 2)
    fail_msg("known uuid, wrong key: %llu ns; unknown uuid: %llu ns (medians)",
             (unsigned long long)known[N / 2], (unsigned long long)unknown[N / 2]);
  a->free(a);
  unlink(path);
  rmdir(dir);
  free(path);
  free(dir);
}

/* The service takes exactly the kinds the build knows. */
static void test_kinds(void **state) {
  (void)state;
  size_t n, m = 0;
  const hoist_build_kind *kinds = hoist_build_kinds(&n);
  for (const char *const *k = hoist_server_kinds(); *k; k++, m++)
    assert_non_null(hoist_build_kind_find(*k));
  assert_int_equal(m, n);
  (void)kinds;
}

/* The builds' sandbox from the service config: each setting, and the
 * `hoist build` options that carry it; a bad value names its setting. */
static void test_config_sandbox(void **state) {
  (void)state;
  static const struct {
    const char *json;
    const char *args; /* the options, space-separated; NULL: refused */
    const char *error;
  } cases[] = {
      {"{}", "--userns=private --require-limits --network private --timeout 1800", NULL},
      {"{\"build_timeout\": 60, \"build_memory\": \"512M\", \"build_pids\": 256, "
       "\"build_cpus\": 1.5, \"max_layer_bytes\": 1073741824, \"build_tmp_size\": \"64M\"}",
       "--userns=private --require-limits --network private --timeout 60 --memory 536870912 "
       "--pids-limit 256 --max-layer-bytes 1073741824 --tmp-size 67108864 --cpus 1.500",
       NULL},
      {"{\"build_network\": \"none\"}",
       "--userns=private --require-limits --network none --timeout 1800", NULL},
      {"{\"build_allow\": [\"127.0.0.1:3141\", \"mirror.internal:8080\", \"localhost:4873\"]}",
       "--userns=private --require-limits --network private --timeout 1800 --allow-port 3141 "
       "--allow-port 4873",
       NULL},
      {"{\"subuid\": \"200000:65536\", \"subgid\": \"300000:1000\", \"cgroup_parent\": \"/b\"}",
       "--userns=private --require-limits --network private --timeout 1800 "
       "--subuid=200000:65536 --subgid=300000:1000 --cgroup-parent /b",
       NULL},
      {"{\"build_process_sandbox\": false}",
       "--userns=private --require-limits --network private --timeout 1800 --no-process-sandbox",
       NULL},
      {"{\"build_process_sandbox\": true}",
       "--userns=private --require-limits --network private --timeout 1800", NULL},
      {"{\"build_process_sandbox\": \"no\"}", NULL, "build_process_sandbox"},
      {"{\"build_timeout\": 0}", NULL, "build_timeout"},
      {"{\"build_timeout\": \"60\"}", NULL, "build_timeout"},
      {"{\"build_memory\": \"lots\"}", NULL, "build_memory"},
      {"{\"build_memory\": -1}", NULL, "build_memory"},
      {"{\"max_layer_bytes\": \"10Q\"}", NULL, "max_layer_bytes"},
      {"{\"build_tmp_size\": true}", NULL, "build_tmp_size"},
      {"{\"build_pids\": 2}", NULL, "build_pids"},
      {"{\"build_cpus\": 0}", NULL, "build_cpus"},
      {"{\"build_network\": \"host\"}", NULL, "build_network"},
      {"{\"build_allow\": \"127.0.0.1:1\"}", NULL, "build_allow"},
      {"{\"build_allow\": [\"127.0.0.1\"]}", NULL, "build_allow"},
      {"{\"build_allow\": [\"127.0.0.1:99999\"]}", NULL, "build_allow"},
      {"{\"subuid\": \"100000:65536\"}", NULL, "subuid and subgid"},
      {"{\"subuid\": \"100000\", \"subgid\": \"100000:1\"}", NULL, "subuid"},
      {"{\"subuid\": \"1:0\", \"subgid\": \"1:1\"}", NULL, "subuid"},
      {"{\"cgroup_parent\": \"hoist\"}", NULL, "cgroup_parent"},
      {"{\"cgroup_parent\": \"/a/../b\"}", NULL, "cgroup_parent"},
      {"{\"max_log_bytes\": \"big\"}", NULL, "max_log_bytes"},
      {"{\"log_overflow\": \"explode\"}", NULL, "log_overflow"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *o = json_loads(cases[i].json, 0, NULL);
    assert_non_null(o);
    server_config c = {0};
    hoist_err *err = NULL;
    int r = server_config_sandbox(o, &c, &err);
    json_decref(o);
    if (!cases[i].args) {
      if (r == 0)
        fail_msg("case %zu: %s accepted", i, cases[i].json);
      assert_err_contains(&err, cases[i].error);
      server_config_sandbox_clear(&c);
      continue;
    }
    assert_ok(r, &err);
    char **args = server_sandbox_args(&c);
    hoist_buf b = HOIST_BUF_INIT(0);
    for (char **a = args; *a; a++)
      assert_int_equal(hoist_buf_appendf(&b, NULL, "%s%s", a == args ? "" : " ", *a), 0);
    if (strcmp(b.data, cases[i].args) != 0)
      fail_msg("case %zu: %s\n got: %s\nwant: %s", i, cases[i].json, b.data, cases[i].args);
    hoist_buf_free(&b);
    hoist_strv_free(args);
    server_config_sandbox_clear(&c);
  }
}

/* The service config's executor section: each setting, and a bad one named. */
static void test_config_executor(void **state) {
  (void)state;
  static const struct {
    const char *json;
    const char
        *want; /* kube image ns cpu_req mem_lim selector profile ttl deadline; NULL: refused */
    const char *error;
  } cases[] = {
      {"{}", "0 - - - - - 0 600 0", NULL},
      {"{\"executor\": {\"kind\": \"local\"}}", "0 - - - - - 0 600 0", NULL},
      {"{\"executor\": {\"kind\": \"kubernetes\", \"image\": \"r/hoist:1\", \"namespace\": "
       "\"b\", \"resources\": {\"requests\": {\"cpu\": \"500m\"}, \"limits\": {\"memory\": "
       "\"4Gi\"}}, \"node_selector\": {\"kubernetes.io/arch\": \"amd64\"}, \"tolerations\": [], "
       "\"pod_security\": \"no-userns\", \"ttl_seconds_after_finished\": 0, "
       "\"active_deadline_seconds\": 90}}",
       "1 r/hoist:1 b 500m 4Gi kubernetes.io/arch=amd64 1 0 90", NULL},
      {"{\"executor\": []}", NULL, "executor: expected an object"},
      {"{\"executor\": {\"kind\": \"docker\"}}", NULL, "executor.kind"},
      {"{\"executor\": {\"imgae\": \"x\"}}", NULL, "executor.imgae"},
      {"{\"executor\": {\"resources\": \"big\"}}", NULL, "executor.resources"},
      {"{\"executor\": {\"node_selector\": [\"a=b\"]}}", NULL, "executor.node_selector"},
      {"{\"executor\": {\"node_selector\": {\"a\": 1}}}", NULL, "executor.node_selector.a"},
      {"{\"executor\": {\"tolerations\": {}}}", NULL, "executor.tolerations"},
      {"{\"executor\": {\"pod_security\": \"privileged\"}}", NULL, "executor.pod_security"},
      {"{\"executor\": {\"ttl_seconds_after_finished\": -1}}", NULL,
       "executor.ttl_seconds_after_finished"},
      {"{\"executor\": {\"active_deadline_seconds\": 0}}", NULL,
       "executor.active_deadline_seconds"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *o = json_loads(cases[i].json, 0, NULL);
    assert_non_null(o);
    server_config c = {0};
    hoist_err *err = NULL;
    int r = server_config_executor(o, &c, &err);
    json_decref(o);
    if (!cases[i].want) {
      if (r == 0)
        fail_msg("case %zu: %s accepted", i, cases[i].json);
      assert_err_contains(&err, cases[i].error);
      server_config_executor_clear(&c);
      continue;
    }
    assert_ok(r, &err);
    const server_exec_config *e = &c.exec;
    char got[512];
    snprintf(got, sizeof got, "%d %s %s %s %s %s %d %ld %ld", e->kube, e->image ? e->image : "-",
             e->namespace ? e->namespace : "-", e->cpu_request ? e->cpu_request : "-",
             e->memory_limit ? e->memory_limit : "-",
             e->node_selector && e->node_selector[0] ? e->node_selector[0] : "-", e->profile,
             e->ttl_s, e->deadline_s);
    if (strcmp(got, cases[i].want) != 0)
      fail_msg("case %zu: %s\n got: %s\nwant: %s", i, cases[i].json, got, cases[i].want);
    server_config_executor_clear(&c);
  }
}

/* The openserverless section: on, off or detected, its names and their
 * defaults; and the registry host read from ConfigMap config. */
static void test_config_openserverless(void **state) {
  (void)state;
  static const struct {
    const char *json;
    const char *want; /* mode namespace registry pull_secret user_secrets; NULL: refused */
    const char *error;
  } cases[] = {
      {"{}", "0 nuvolaris nuvolaris-registry-svc:5000 registry-pull-secret 1", NULL},
      {"{\"openserverless\": true}",
       "1 nuvolaris nuvolaris-registry-svc:5000 registry-pull-secret 1", NULL},
      {"{\"openserverless\": false}",
       "2 nuvolaris nuvolaris-registry-svc:5000 registry-pull-secret 1", NULL},
      {"{\"openserverless\": {\"namespace\": \"openserverless\", \"registry\": "
       "\"openserverless-registry-svc:5000\", \"pull_secret\": \"push\", "
       "\"user_secrets\": false}}",
       "1 openserverless openserverless-registry-svc:5000 push 0", NULL},
      {"{\"openserverless\": \"yes\"}", NULL, "openserverless: expected true, false"},
      {"{\"openserverless\": {\"namespce\": \"x\"}}", NULL, "openserverless.namespce"},
      {"{\"openserverless\": {\"namespace\": 7}}", NULL, "openserverless.namespace"},
      {"{\"openserverless\": {\"user_secrets\": \"no\"}}", NULL,
       "openserverless.user_secrets: expected a boolean"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *o = json_loads(cases[i].json, 0, NULL);
    assert_non_null(o);
    server_config c = {0};
    hoist_err *err = NULL;
    int r = server_config_ops(o, &c, &err);
    json_decref(o);
    if (!cases[i].want) {
      if (r == 0)
        fail_msg("case %zu: %s accepted", i, cases[i].json);
      assert_err_contains(&err, cases[i].error);
      server_config_ops_clear(&c);
      continue;
    }
    assert_ok(r, &err);
    char got[512];
    snprintf(got, sizeof got, "%d %s %s %s %d", (int)c.ops.mode, c.ops.namespace, c.ops.registry,
             c.ops.pull_secret, c.ops.user_secrets);
    if (strcmp(got, cases[i].want) != 0)
      fail_msg("case %zu: %s\n got: %s\nwant: %s", i, cases[i].json, got, cases[i].want);
    server_config_ops_clear(&c);
  }
  static const struct {
    const char *configmap, *want;
  } hosts[] = {
      {"null", "fallback:5000"},
      {"{\"metadata\": {\"name\": \"config\"}}", "fallback:5000"},
      {"{\"metadata\": {\"annotations\": {\"apihost\": \"x\"}}}", "fallback:5000"},
      {"{\"metadata\": {\"annotations\": {\"registry_host\": \"\"}}}", "fallback:5000"},
      {"{\"metadata\": {\"annotations\": {\"registry_host\": \" \\t\"}}}", "fallback:5000"},
      {"{\"metadata\": {\"annotations\": {\"registry_host\": 5000}}}", "fallback:5000"},
      {"{\"metadata\": {\"annotations\": {\"registry_host\": \" reg.example:443\\n\"}}}",
       "reg.example:443"},
  };
  for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
    json_t *cm = json_loads(hosts[i].configmap, JSON_DECODE_ANY, NULL);
    char *h = server_ops_host_of(cm, "fallback:5000");
    if (strcmp(h, hosts[i].want) != 0)
      fail_msg("host %zu: %s: got %s, want %s", i, hosts[i].configmap, h, hosts[i].want);
    free(h);
    json_decref(cm);
  }
}

/* Which sources a user may extend: their namespace on the push host, or a
 * repository an allowed_sources pattern matches; the refusal names the rule. */
static void test_source_allowed(void **state) {
  (void)state;
  json_t *o = json_loads("{\"allowed_sources\": [\"reg.example:5000/base/*\", "
                         "\"apache/openserverless-runtime-*\", \"busybox\", "
                         "\"ghcr.io/org/?ool\"]}",
                         0, NULL);
  server_config c = {0};
  hoist_err *err = NULL;
  assert_ok(server_config_admit(o, &c, &err), &err);
  json_decref(o);
  assert_int_equal(c.per_user_queue, 20);
  static const struct {
    const char *login, *push, *source;
    int status; /* 0: allowed */
  } cases[] = {
      {"alice", "reg.example:5000", "reg.example:5000/alice:1", 0},
      {"Alice", "reg.example:5000", "reg.example:5000/alice/app:1", 0},
      {"alice", "reg.example:5000", "reg.example:5000/alice-x:1", 403},
      {"alice", "reg.example:5000", "reg.example:5000/bob:private", 403},
      {"alice", "reg.example:5000", "reg.example:5000/bob/alice:1", 403},
      {"alice", "other:5000", "reg.example:5000/alice:1", 403}, /* not the push host */
      {"alice", NULL, "reg.example:5000/alice:1", 403},         /* no registry: layout */
      {"alice", "reg.example:5000", "reg.example:5000/base/python:3.12", 0},
      {"alice", "reg.example:5000", "reg.example:5000/base/x/y:1", 403}, /* '*' stays put */
      {"alice", "reg.example:5000", "reg.example:5001/base/python:1", 403},
      {"alice", "reg.example:5000", "apache/openserverless-runtime-python:v3", 0},
      {"alice", "reg.example:5000",
       "docker.io/apache/openserverless-runtime-go@sha256:"
       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
       0},
      {"alice", "reg.example:5000", "apache/other:1", 403},
      {"alice", "reg.example:5000", "busybox:1.36", 0},
      {"alice", "reg.example:5000", "library/busybox", 0},
      {"alice", "reg.example:5000", "evil/busybox", 403},
      {"alice", "reg.example:5000", "ghcr.io/org/tool:1", 0},
      {"alice", "reg.example:5000", "ghcr.io/org/tools:1", 403},
      {"alice", "reg.example:5000", "Not A Reference", 400},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hoist_refusal why = {0};
    bool ok = server_source_allowed(&c, cases[i].login, cases[i].push, cases[i].source, &why);
    if (ok != (cases[i].status == 0) || (!ok && why.status != cases[i].status))
      fail_msg("case %zu: %s by %s: allowed %d status %d (%s)", i, cases[i].source, cases[i].login,
               ok, why.status, why.message);
    if (why.status == 403 && !strstr(why.message, "allowed_sources"))
      fail_msg("case %zu: the refusal does not name the rule: %s", i, why.message);
  }
  server_config_admit_clear(&c);

  static const char *const bad[] = {
      "{\"allowed_sources\": \"base/*\"}", "{\"allowed_sources\": [7]}",
      "{\"allowed_sources\": [\"\"]}",     "{\"allowed_sources\": [\"Base/*\"]}",
      "{\"allowed_sources\": [\"a//b\"]}", "{\"allowed_sources\": [\"/a\"]}",
      "{\"per_user_queue\": 0}",           "{\"per_user_queue\": \"5\"}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    o = json_loads(bad[i], 0, NULL);
    server_config b = {0};
    if (server_config_admit(o, &b, &err) == 0)
      fail_msg("%s accepted", bad[i]);
    assert_err_contains(&err, strstr(bad[i], "queue") ? "per_user_queue" : "allowed_sources");
    server_config_admit_clear(&b);
    json_decref(o);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_authorization),   cmocka_unit_test(test_start),
      cmocka_unit_test(test_cleanup),         cmocka_unit_test(test_kinds),
      cmocka_unit_test(test_config_sandbox),  cmocka_unit_test(test_source_allowed),
      cmocka_unit_test(test_file_auth),       cmocka_unit_test(test_file_auth_equal_work),
      cmocka_unit_test(test_config_executor), cmocka_unit_test(test_config_openserverless),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
