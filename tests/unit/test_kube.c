/* The Kubernetes module (kube.h): kubeconfigs and in-cluster configuration as
 * they resolve, a table of bad kubeconfigs each refused with a message saying
 * why, and the Job and Secret hoist sends. */
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "hoist/kube.h"
#include "test_util.h"

/* "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" */
#define CA_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="

static hoist_kube_config *parse(const char *text, const char *context) {
  hoist_err *err = NULL;
  hoist_kube_config *c = NULL;
  assert_ok(hoist_kube_config_parse(text, strlen(text), "t", "/home/u/.kube", context, &c, &err),
            &err);
  assert_non_null(c);
  return c;
}

static const char GOOD[] = "apiVersion: v1\n"
                           "kind: Config\n"
                           "current-context: dev\n"
                           "clusters:\n"
                           "- name: c1\n"
                           "  cluster:\n"
                           "    server: https://10.0.0.1:6443/\n"
                           "    certificate-authority-data: " CA_B64 "\n"
                           "- name: c2\n"
                           "  cluster:\n"
                           "    server: https://[::1]:6443\n"
                           "    certificate-authority: ca.crt\n"
                           "users:\n"
                           "- name: alice\n"
                           "  user:\n"
                           "    token: abc.def\n"
                           "- name: bob\n"
                           "  user:\n"
                           "    client-certificate: /etc/bob.crt\n"
                           "    client-key: bob.key\n"
                           "- name: plug\n"
                           "  user:\n"
                           "    exec:\n"
                           "      apiVersion: client.authentication.k8s.io/v1\n"
                           "      command: ./bin/cred\n"
                           "      args: [get, --json]\n"
                           "      env:\n"
                           "      - {name: REGION, value: eu}\n"
                           "      interactiveMode: Never\n"
                           "contexts:\n"
                           "- name: dev\n"
                           "  context: {cluster: c1, user: alice, namespace: builds}\n"
                           "- name: ops\n"
                           "  context: {cluster: c2, user: bob}\n"
                           "- name: sso\n"
                           "  context: {cluster: c2, user: plug}\n";

static void test_kubeconfig_current_context(void **state) {
  (void)state;
  hoist_kube_config *c = parse(GOOD, NULL);
  assert_string_equal(c->server, "https://10.0.0.1:6443");
  assert_string_equal(c->namespace, "builds");
  assert_string_equal(c->token, "abc.def");
  assert_string_equal(c->ca_pem, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  assert_null(c->ca_file);
  assert_null(c->exec_argv);
  hoist_kube_config_free(c);
}

static void test_kubeconfig_named_contexts(void **state) {
  (void)state;
  hoist_kube_config *c = parse(GOOD, "ops");
  assert_string_equal(c->server, "https://[::1]:6443");
  assert_string_equal(c->namespace, "default");
  assert_string_equal(c->ca_file, "/home/u/.kube/ca.crt"); /* relative to the file */
  assert_string_equal(c->cert_file, "/etc/bob.crt");
  assert_string_equal(c->key_file, "/home/u/.kube/bob.key");
  assert_null(c->token);
  hoist_kube_config_free(c);

  c = parse(GOOD, "sso");
  assert_non_null(c->exec_argv);
  assert_string_equal(c->exec_argv[0], "/home/u/.kube/./bin/cred");
  assert_string_equal(c->exec_argv[1], "get");
  assert_string_equal(c->exec_argv[2], "--json");
  assert_null(c->exec_argv[3]);
  assert_string_equal(c->exec_env[0], "REGION=eu");
  assert_null(c->exec_env[1]);
  assert_string_equal(c->exec_api_version, "client.authentication.k8s.io/v1");
  hoist_kube_config_free(c);
}

static void test_kubeconfig_anchors_and_flow_style(void **state) {
  (void)state;
  const char *text = "{kind: Config, current-context: a,\n"
                     " clusters: [{name: k, cluster: &cl {server: 'http://127.0.0.1:8080',\n"
                     "   insecure-skip-tls-verify: false}}],\n"
                     " users: [{name: u, user: {tokenFile: /var/run/t}}],\n"
                     " contexts: [{name: a, context: {cluster: k, user: u}}]}\n";
  hoist_kube_config *c = parse(text, NULL);
  assert_string_equal(c->server, "http://127.0.0.1:8080");
  assert_string_equal(c->token_file, "/var/run/t");
  assert_false(c->insecure);
  hoist_kube_config_free(c);
}

/* Each bad kubeconfig, and what its message must say. */
static const struct {
  const char *text, *context, *why;
} bad[] = {
    {"", NULL, "empty"},
    {"kind: Config\ncurrent-context: [\n", NULL, "line"},
    {"- a\n- b\n", NULL, "not a mapping"},
    {"kind: Pod\n", NULL, "not Config"},
    {"kind: Config\n", NULL, "no current-context"},
    {"kind: Config\ncurrent-context: x\n", NULL, "no context named \"x\""},
    {"kind: Config\ncurrent-context: x\ncontexts: {x: 1}\n", NULL, "contexts is not a list"},
    {"kind: Config\ncurrent-context: x\ncontexts:\n- context: {cluster: c}\n", NULL, "no name"},
    {"kind: Config\ncurrent-context: x\ncontexts:\n- name: x\n", NULL, "has no context mapping"},
    {"kind: Config\ncurrent-context: x\ncontexts:\n- {name: x, context: {user: u}}\n", NULL,
     "names no cluster"},
    {"kind: Config\ncurrent-context: x\ncontexts:\n- {name: x, context: {cluster: c}}\n", NULL,
     "no cluster named \"c\""},
    {"kind: Config\ncurrent-context: x\ncontexts:\n- {name: x, context: {cluster: c}}\n"
     "clusters:\n- {name: c, cluster: {}}\n",
     NULL, "has no server"},
    {"kind: Config\ncurrent-context: x\ncontexts:\n- {name: x, context: {cluster: c}}\n"
     "clusters:\n- {name: c, cluster: {server: ftp://h}}\n",
     NULL, "not an https:// URL"},
    {"kind: Config\ncurrent-context: x\ncontexts:\n- {name: x, context: {cluster: c}}\n"
     "clusters:\n- {name: c, cluster: {server: 'https://u@h'}}\n",
     NULL, "not a URL hoist can use"},
    {"kind: Config\ncurrent-context: x\ncontexts:\n- {name: x, context: {cluster: c}}\n"
     "clusters:\n- {name: c, cluster: {server: 'https://h', certificate-authority-data: '!!'}}\n",
     NULL, "certificate-authority-data"},
    {"kind: Config\ncurrent-context: x\ncontexts:\n- {name: x, context: {cluster: c}}\n"
     "clusters:\n- {name: c, cluster: {server: 'https://h', certificate-authority: a,\n"
     "  certificate-authority-data: " CA_B64 "}}\n",
     NULL, "both certificate-authority and"},
    {"kind: Config\ncurrent-context: x\ncontexts:\n- {name: x, context: {cluster: c}}\n"
     "clusters:\n- {name: c, cluster: {server: 'https://h', insecure-skip-tls-verify: maybe}}\n",
     NULL, "not true or false"},
    {"kind: Config\ncurrent-context: x\ncontexts:\n- {name: x, context: {cluster: c, user: u}}\n"
     "clusters:\n- {name: c, cluster: {server: 'https://h'}}\n",
     NULL, "no user named \"u\""},
    {"kind: Config\ncurrent-context: x\ncontexts:\n- {name: x, context: {cluster: c, user: u}}\n"
     "clusters:\n- {name: c, cluster: {server: 'https://h'}}\n"
     "users:\n- {name: u, user: {client-certificate: a.crt}}\n",
     NULL, "without its key"},
    {"kind: Config\ncurrent-context: x\ncontexts:\n- {name: x, context: {cluster: c, user: u}}\n"
     "clusters:\n- {name: c, cluster: {server: 'https://h'}}\n"
     "users:\n- {name: u, user: {username: a, password: b}}\n",
     NULL, "basic auth"},
    {"kind: Config\ncurrent-context: x\ncontexts:\n- {name: x, context: {cluster: c, user: u}}\n"
     "clusters:\n- {name: c, cluster: {server: 'https://h'}}\n"
     "users:\n- {name: u, user: {auth-provider: {name: gcp}}}\n",
     NULL, "auth-provider is not supported"},
    {"kind: Config\ncurrent-context: x\ncontexts:\n- {name: x, context: {cluster: c, user: u}}\n"
     "clusters:\n- {name: c, cluster: {server: 'https://h'}}\n"
     "users:\n- {name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1alpha1,\n"
     "  command: x}}}\n",
     NULL, "v1alpha1\" is not client.authentication.k8s.io/v1"},
    {"kind: Config\ncurrent-context: x\ncontexts:\n- {name: x, context: {cluster: c, user: u}}\n"
     "clusters:\n- {name: c, cluster: {server: 'https://h'}}\n"
     "users:\n- {name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1}}}\n",
     NULL, "exec has no command"},
    {"kind: Config\ncurrent-context: x\ncontexts:\n- {name: x, context: {cluster: c, user: u}}\n"
     "clusters:\n- {name: c, cluster: {server: 'https://h'}}\n"
     "users:\n- {name: u, user: {token: t, exec: {apiVersion: client.authentication.k8s.io/v1,\n"
     "  command: x}}}\n",
     NULL, "both a token and an exec plugin"},
    {"kind: Config\ncurrent-context: x\ncontexts:\n- {name: x, context: {cluster: c, user: u}}\n"
     "clusters:\n- {name: c, cluster: {server: 'https://h'}}\n"
     "users:\n- {name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1,\n"
     "  command: x, env: [{name: 'A=B', value: c}]}}}\n",
     NULL, "exec env[0]"},
    {"kind: Config\ncurrent-context: x\ncontexts:\n- {name: x, context: {cluster: c,\n"
     "  namespace: Not_A_Name}}\nclusters:\n- {name: c, cluster: {server: 'https://h'}}\n",
     NULL, "is not a DNS label"},
    {"kind: Config\ncurrent-context: x\ncontexts:\n- {name: x, context: {cluster: c, user: u}}\n"
     "clusters:\n- {name: c, cluster: {server: 'https://h'}}\n"
     "users:\n- {name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1,\n"
     "  command: x, interactiveMode: Always}}}\n",
     NULL, "interactiveMode Always needs a terminal"},
    {"kind: Config\nkind: Config\n", NULL, "given twice"},
    {"kind: Config\ncurrent-context: [a]\n", NULL, "current-context is not a string"},
    {"a: &a [*a, *a]\n", NULL, "nested deeper than 64"},
    {"a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
     NULL, "more than 100000 YAML nodes"},
    {"kind: Config\ncurrent-context: dev\ncontexts:\n- {name: dev, context: {cluster: c}}\n"
     "clusters:\n- {name: c, cluster: {server: 'https://h'}}\n",
     "prod", "no context named \"prod\""},
};

static void test_kubeconfig_bad(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    hoist_err *err = NULL;
    hoist_kube_config *c = NULL;
    int r = hoist_kube_config_parse(bad[i].text, strlen(bad[i].text), "t", "/d", bad[i].context, &c,
                                    &err);
    if (r == 0)
      fail_msg("bad kubeconfig %zu accepted", i);
    assert_null(c);
    char *t = hoist_err_text(err);
    if (!strstr(t, bad[i].why))
      fail_msg("bad kubeconfig %zu: \"%s\" does not say \"%s\"", i, t, bad[i].why);
    assert_non_null(strstr(t, "kubeconfig t"));
    free(t);
    hoist_err_free(err);
  }
}

static void write_file(const char *dir, const char *name, const char *text) {
  char *p = hoist_asprintf("%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  free(p);
}

static void test_in_cluster(void **state) {
  (void)state;
  char *dir = test_mkdtemp();
  hoist_err *err = NULL;
  hoist_kube_config *c = NULL;
  assert_int_equal(hoist_kube_config_in_cluster(NULL, NULL, dir, &c, &err), -EINVAL);
  assert_err_contains(&err, "not running in a pod");
  assert_int_equal(hoist_kube_config_in_cluster("10.0.0.1", "443", dir, &c, &err), -ENOENT);
  assert_err_contains(&err, "service-account token");
  write_file(dir, "token", "tok\n");
  write_file(dir, "ca.crt", "pem");
  assert_int_equal(hoist_kube_config_in_cluster("10.0.0.1", "443", dir, &c, &err), -ENOENT);
  assert_err_contains(&err, "namespace");
  write_file(dir, "namespace", "Bad_NS");
  assert_true(hoist_kube_config_in_cluster("10.0.0.1", "443", dir, &c, &err) < 0);
  assert_err_contains(&err, "is not a namespace");
  write_file(dir, "namespace", "builds\n");
  assert_ok(hoist_kube_config_in_cluster("fd00::1", "6443", dir, &c, &err), &err);
  assert_string_equal(c->server, "https://[fd00::1]:6443");
  assert_string_equal(c->namespace, "builds");
  char *tf = hoist_asprintf("%s/token", dir);
  assert_string_equal(c->token_file, tf);
  assert_null(c->token); /* read per request, as it rotates */
  free(tf);
  hoist_kube_config_free(c);
  free(dir);
}

static void test_job_name(void **state) {
  (void)state;
  hoist_err *err = NULL;
  char *name = NULL;
  assert_ok(hoist_kube_job_name("7f3a-01", &name, &err), &err);
  assert_string_equal(name, "hoist-build-7f3a-01");
  free(name);
  /* 51 characters fit (12 + 51 = 63), 52 do not */
  char id[53];
  memset(id, 'a', 52);
  id[52] = '\0';
  assert_true(hoist_kube_job_name(id, &name, &err) < 0);
  assert_err_contains(&err, "at most 51");
  id[51] = '\0';
  assert_ok(hoist_kube_job_name(id, &name, &err), &err);
  assert_int_equal(strlen(name), 63);
  free(name);
  const char *bad_ids[] = {"", "-a", "a-", "A1", "a_b", "a.b", "a/b", NULL};
  for (size_t i = 0; bad_ids[i]; i++) {
    assert_true(hoist_kube_job_name(bad_ids[i], &name, &err) < 0);
    assert_null(name);
    assert_err_contains(&err, "a Job name needs");
  }
}

static json_t *path(json_t *j, const char *p) {
  char *copy = hoist_strdup(p), *save = NULL;
  for (char *t = strtok_r(copy, ".", &save); t && j; t = strtok_r(NULL, ".", &save))
    j = json_is_array(j) ? json_array_get(j, (size_t)atoi(t)) : json_object_get(j, t);
  free(copy);
  return j;
}

static const char *spath(json_t *j, const char *p) { return json_string_value(path(j, p)); }

static void test_job_build(void **state) {
  (void)state;
  hoist_err *err = NULL;
  const char *args[] = {"build", "--source", "base:1", "--json", NULL};
  const char *nodes[] = {"kubernetes.io/arch=amd64", "pool=builds", NULL};
  json_t *tol = json_loads(
      "[{\"key\":\"builds\",\"operator\":\"Exists\",\"effect\":\"NoSchedule\"}]", 0, NULL);
  hoist_kube_job_spec s = {.id = "j42",
                           .namespace = "ci",
                           .image = "registry.local/hoist:0.1.0",
                           .args = args,
                           .deadline_s = 900,
                           .ttl_s = 3600,
                           .cpu_request = "500m",
                           .cpu_limit = "2",
                           .memory_request = "512Mi",
                           .memory_limit = "2Gi",
                           .node_selector = nodes,
                           .tolerations = tol,
                           .service_account = "hoist-build",
                           .secret_name = "hoist-build-j42"};
  json_t *job = NULL;
  assert_ok(hoist_kube_job_build(&s, &job, &err), &err);
  assert_string_equal(spath(job, "apiVersion"), "batch/v1");
  assert_string_equal(spath(job, "kind"), "Job");
  assert_string_equal(spath(job, "metadata.name"), "hoist-build-j42");
  assert_string_equal(spath(job, "metadata.namespace"), "ci");
  assert_string_equal(json_string_value(json_object_get(path(job, "metadata.labels"),
                                                        "app.kubernetes.io/managed-by")),
                      "hoist");
  assert_string_equal(
      json_string_value(json_object_get(path(job, "metadata.labels"), "hoist.dev/job-id")), "j42");
  assert_int_equal(json_integer_value(path(job, "spec.backoffLimit")), 0);
  assert_int_equal(json_integer_value(path(job, "spec.activeDeadlineSeconds")), 900);
  assert_int_equal(json_integer_value(path(job, "spec.ttlSecondsAfterFinished")), 3600);
  assert_true(json_equal(path(job, "metadata.labels"), path(job, "spec.template.metadata.labels")));
  json_t *pod = path(job, "spec.template.spec");
  assert_string_equal(spath(pod, "restartPolicy"), "Never");
  assert_true(json_is_false(path(pod, "hostUsers")));
  assert_string_equal(spath(pod, "serviceAccountName"), "hoist-build");
  assert_string_equal(spath(pod, "nodeSelector.pool"), "builds");
  assert_true(json_equal(path(pod, "tolerations"), tol));
  json_t *c = path(pod, "containers.0");
  assert_string_equal(spath(c, "image"), "registry.local/hoist:0.1.0");
  assert_string_equal(spath(c, "args.1"), "--source");
  assert_string_equal(spath(c, "resources.requests.cpu"), "500m");
  assert_string_equal(spath(c, "resources.limits.memory"), "2Gi");
  assert_string_equal(spath(c, "securityContext.procMount"), "Unmasked");
  assert_true(json_is_false(path(c, "securityContext.privileged")));
  assert_string_equal(spath(c, "securityContext.seccompProfile.type"), "Unconfined");
  assert_string_equal(spath(c, "securityContext.appArmorProfile.type"), "Unconfined");
  assert_string_equal(spath(c, "terminationMessagePolicy"), "File");
  assert_string_equal(spath(c, "volumeMounts.0.mountPath"), "/run/hoist/secret");
  assert_string_equal(spath(pod, "volumes.0.secret.secretName"), "hoist-build-j42");
  assert_ok(hoist_kube_job_check(job, &err), &err);
  json_decref(job);

  /* the fallback profile: no user namespace, so no Unmasked /proc */
  s.profile = HOIST_KUBE_PROFILE_NO_USERNS;
  assert_ok(hoist_kube_job_build(&s, &job, &err), &err);
  pod = path(job, "spec.template.spec");
  assert_null(path(pod, "hostUsers"));
  assert_null(path(pod, "containers.0.securityContext.procMount"));
  json_decref(job);

  /* what is refused */
  hoist_kube_job_spec b = s;
  b.memory_limit = "2 GB";
  assert_true(hoist_kube_job_build(&b, &job, &err) < 0);
  assert_err_contains(&err, "not a resource quantity");
  b = s;
  b.deadline_s = 0;
  assert_true(hoist_kube_job_build(&b, &job, &err) < 0);
  assert_err_contains(&err, "activeDeadlineSeconds");
  b = s;
  const char *bad_nodes[] = {"=x", NULL};
  b.node_selector = bad_nodes;
  assert_true(hoist_kube_job_build(&b, &job, &err) < 0);
  assert_err_contains(&err, "not KEY=VALUE");
  b = s;
  b.image = NULL;
  assert_true(hoist_kube_job_build(&b, &job, &err) < 0);
  assert_err_contains(&err, "no image");
  json_decref(tol);
}

static void test_job_check(void **state) {
  (void)state;
  hoist_err *err = NULL;
  static const struct {
    const char *json, *why;
  } cases[] = {
      {"{\"metadata\":{\"name\":\"x\"},\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":"
       "\"b\",\"securityContext\":{\"procMount\":\"Unmasked\"}}]}}}}",
       "procMount Unmasked without hostUsers: false"},
      {"{\"metadata\":{\"name\":\"x\"},\"spec\":{\"template\":{\"spec\":{\"hostUsers\":true,"
       "\"containers\":[{\"name\":\"b\",\"securityContext\":{\"procMount\":\"Unmasked\"}}]}}}}",
       "procMount Unmasked without"},
      {"{\"metadata\":{\"name\":\"x\"},\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":"
       "\"b\",\"securityContext\":{\"privileged\":true}}]}}}}",
       "is privileged"},
      {"{\"metadata\":{\"name\":\"hoist-build-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
       "a\"}}",
       "at most 63"},
      {"{\"metadata\":{\"name\":\"x\",\"labels\":{\"a\":\"-bad\"}}}", "label a"},
      {"{\"metadata\":{\"name\":\"x\"},\"spec\":{\"template\":{\"metadata\":{\"labels\":{\"a\":"
       "\"0123456789012345678901234567890123456789012345678901234567890123\"}}}}}",
       "label a"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *j = json_loads(cases[i].json, 0, NULL);
    assert_non_null(j);
    assert_true(hoist_kube_job_check(j, &err) < 0);
    assert_err_contains(&err, cases[i].why);
    json_decref(j);
  }
}

static void test_secret_build(void **state) {
  (void)state;
  hoist_err *err = NULL;
  const char *data[] = {"config.json", "{\"auths\":{}}", "requirements.txt", "flask\n", NULL};
  json_t *s = NULL;
  assert_ok(hoist_kube_secret_build("hoist-build-j42", "ci", "j42", "hoist-build-j42", "uid-1",
                                    data, &s, &err),
            &err);
  assert_string_equal(spath(s, "kind"), "Secret");
  assert_string_equal(spath(s, "metadata.ownerReferences.0.kind"), "Job");
  assert_string_equal(spath(s, "metadata.ownerReferences.0.apiVersion"), "batch/v1");
  assert_string_equal(spath(s, "metadata.ownerReferences.0.name"), "hoist-build-j42");
  assert_string_equal(spath(s, "metadata.ownerReferences.0.uid"), "uid-1");
  assert_true(json_is_true(path(s, "metadata.ownerReferences.0.controller")));
  assert_string_equal(json_string_value(json_object_get(path(s, "data"), "config.json")),
                      "eyJhdXRocyI6e319");
  assert_string_equal(json_string_value(json_object_get(path(s, "data"), "requirements.txt")),
                      "Zmxhc2sK");
  json_decref(s);
  assert_true(hoist_kube_secret_build("x", "ci", "j42", "hoist-build-j42", "", data, &s, &err) < 0);
  assert_err_contains(&err, "uid is needed");
  const char *bad_key[] = {"a/b", "v", NULL};
  assert_true(hoist_kube_secret_build("x", "ci", "j42", "hoist-build-j42", "u", bad_key, &s, &err) <
              0);
  assert_err_contains(&err, "not a key");
}

typedef struct {
  hoist_kube *k;
  int r;
  hoist_err *err;
} get_call;

static void *do_get(void *arg) {
  get_call *g = arg;
  json_t *out = NULL;
  g->r = hoist_kube_get(g->k, &HOIST_KUBE_JOBS, NULL, "hoist-build-x", &out, &g->err);
  json_decref(out);
  return NULL;
}

/* A request waiting on a server that never answers ends when the client is
 * interrupted; later ones are refused at once. Paths are checked before
 * anything is sent. */
static void test_client_interrupt_and_paths(void **state) {
  (void)state;
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(ls, 4), 0);
  assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &alen), 0);
  hoist_kube_config cfg = {.server = hoist_asprintf("http://127.0.0.1:%d", ntohs(a.sin_port)),
                           .namespace = "builds",
                           .token = "t"};
  hoist_kube *k = NULL;
  hoist_err *err = NULL;
  assert_ok(hoist_kube_new(&cfg, NULL, &k, &err), &err);
  assert_string_equal(hoist_kube_namespace(k), "builds");
  json_t *out = NULL;
  const char *bad_names[] = {"", "a/b", "..", "A", "a?b", NULL};
  for (size_t i = 0; bad_names[i]; i++) {
    assert_int_equal(hoist_kube_get(k, &HOIST_KUBE_JOBS, NULL, bad_names[i], &out, &err), -EINVAL);
    assert_err_contains(&err, "is not an object name");
    assert_int_equal(hoist_kube_get(k, &HOIST_KUBE_JOBS, bad_names[i], "x", &out, &err), -EINVAL);
    assert_err_contains(&err, "is not a namespace");
  }
  assert_int_equal(
      hoist_kube_watch(k, &HOIST_KUBE_JOBS, NULL, NULL, "12&x=1", 0, NULL, NULL, NULL, &err),
      -EINVAL);
  assert_err_contains(&err, "is not a number");

  get_call g = {.k = k};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, do_get, &g), 0);
  int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC); /* the request is on its way */
  assert_true(c >= 0);
  hoist_kube_interrupt(k);
  pthread_join(t, NULL);
  assert_int_equal(g.r, -ECANCELED);
  assert_err_contains(&g.err, "interrupted");
  assert_int_equal(hoist_kube_get(k, &HOIST_KUBE_JOBS, NULL, "x", &out, &err), -ECANCELED);
  assert_err_contains(&err, "interrupted");
  close(c);
  close(ls);
  hoist_kube_free(k);
  free(cfg.server);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kubeconfig_current_context),
      cmocka_unit_test(test_kubeconfig_named_contexts),
      cmocka_unit_test(test_kubeconfig_anchors_and_flow_style),
      cmocka_unit_test(test_kubeconfig_bad),
      cmocka_unit_test(test_in_cluster),
      cmocka_unit_test(test_job_name),
      cmocka_unit_test(test_job_build),
      cmocka_unit_test(test_job_check),
      cmocka_unit_test(test_secret_build),
      cmocka_unit_test(test_client_interrupt_and_paths),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
