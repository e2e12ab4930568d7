/* kube_tool: the kube module's client on the command line, for the
 * integration tests against the contract fake (tests/integration/kubefake.py).
 *
 *   kube_tool (--kubeconfig FILE [--context NAME] | --in-cluster DIR HOST PORT) CMD ...
 *
 *   create RES FILE           POST the JSON object in FILE; print the stored object
 *   get RES NAME              print the object
 *   list RES [SELECTOR]       print the List
 *   delete RES NAME           delete with propagationPolicy=Background
 *   watch RES SELECTOR RV TIMEOUT N
 *                             print "TYPE NAME RV" per event until N events that are
 *                             not bookmarks (0: until the server ends the stream), then
 *                             "last RV"
 *   log POD (follow|once)     the pod's log, as it comes
 *   gets RES NAME             a get for each line read on stdin, on one client
 *                             ("ok NAME" or "error TEXT" per line)
 *   job ID IMAGE [SECRET]     print the Job hoist_kube_job_build makes
 *   secret ID JOBUID          print the Secret hoist_kube_secret_build makes
 *   check FILE                hoist_kube_job_check on the JSON object in FILE (a Job, or
 *                             a Deployment: its spec.template is a pod template too)
 *
 * RES is jobs, pods, secrets or configmaps. Exit status: 0 done, 1 failed (the
 * error on stderr), 2 usage, 3 exists (409), 4 gone (410), 5 not found (404). */
#include <string.h>

#include "hoist/kube.h"

extern char **environ;

static int fail(hoist_err *err) {
  char *t = hoist_err_text(err);
  fprintf(stderr, "kube_tool: %s\n", t);
  free(t);
  int code = hoist_err_root_code(err);
  hoist_err_free(err);
  return code == HOIST_KUBE_EXISTS      ? 3
         : code == HOIST_KUBE_GONE      ? 4
         : code == HOIST_KUBE_NOT_FOUND ? 5
                                        : 1;
}

static int usage(void) {
  fprintf(stderr, "usage: kube_tool (--kubeconfig FILE [--context NAME] | --in-cluster DIR HOST "
                  "PORT) CMD ...\n       kube_tool check FILE\n");
  return 2;
}

static const hoist_kube_res *res(const char *name) {
  if (!strcmp(name, "jobs"))
    return &HOIST_KUBE_JOBS;
  if (!strcmp(name, "pods"))
    return &HOIST_KUBE_PODS;
  if (!strcmp(name, "secrets"))
    return &HOIST_KUBE_SECRETS;
  if (!strcmp(name, "configmaps"))
    return &HOIST_KUBE_CONFIGMAPS;
  return NULL;
}

static void print_json(json_t *j) {
  char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  puts(s);
  free(s);
  fflush(stdout);
}

typedef struct {
  long want, seen;
} watch_state;

static int on_event(void *arg, const char *type, json_t *obj) {
  watch_state *w = arg;
  json_t *meta = json_object_get(obj, "metadata");
  const char *name = json_string_value(json_object_get(meta, "name"));
  const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
  printf("%s %s %s\n", type, name ? name : "-", rv ? rv : "-");
  fflush(stdout);
  if (strcmp(type, "BOOKMARK"))
    w->seen++;
  return w->want > 0 && w->seen >= w->want;
}

static int on_log(void *arg, const char *data, size_t n) {
  (void)arg;
  fwrite(data, 1, n, stdout);
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv) {
  hoist_err *err = NULL;
  hoist_kube_config *cfg = NULL;
  int i = 1;
  if (argc < 3)
    return usage();
  if (!strcmp(argv[i], "check") && argc == 3) {
    json_t *obj = json_load_file(argv[2], 0, NULL);
    if (!obj) {
      fprintf(stderr, "kube_tool: %s: not JSON\n", argv[2]);
      return 1;
    }
    int r = hoist_kube_job_check(obj, &err);
    json_decref(obj);
    return r < 0 ? fail(err) : 0;
  }
  if (!strcmp(argv[i], "--kubeconfig")) {
    const char *path = argv[i + 1], *context = NULL;
    i += 2;
    if (i + 1 < argc && !strcmp(argv[i], "--context")) {
      context = argv[i + 1];
      i += 2;
    }
    if (hoist_kube_config_load(path, context, &cfg, &err) < 0)
      return fail(err);
  } else if (!strcmp(argv[i], "--in-cluster") && argc > i + 3) {
    if (hoist_kube_config_in_cluster(argv[i + 2], argv[i + 3], argv[i + 1], &cfg, &err) < 0)
      return fail(err);
    i += 4;
  } else {
    return usage();
  }
  if (i >= argc)
    return usage();
  const char *cmd = argv[i++];
  int nargs = argc - i;
  char **a = argv + i;

  if (!strcmp(cmd, "job") && nargs >= 2) {
    const char *args[] = {"build", "--json", NULL};
    hoist_kube_job_spec s = {.id = a[0],
                             .image = a[1],
                             .args = args,
                             .deadline_s = 600,
                             .ttl_s = 3600,
                             .cpu_request = "250m",
                             .memory_limit = "1Gi",
                             .secret_name = nargs > 2 ? a[2] : NULL};
    json_t *job = NULL;
    if (hoist_kube_job_build(&s, &job, &err) < 0)
      return fail(err);
    print_json(job);
    json_decref(job);
    hoist_kube_config_free(cfg);
    return 0;
  }
  if (!strcmp(cmd, "secret") && nargs >= 2) {
    char *name = NULL;
    if (hoist_kube_job_name(a[0], &name, &err) < 0)
      return fail(err);
    const char *data[] = {"config.json", "{\"auths\":{}}", NULL};
    json_t *sec = NULL;
    int r = hoist_kube_secret_build(name, NULL, a[0], name, a[1], data, &sec, &err);
    free(name);
    if (r < 0)
      return fail(err);
    print_json(sec);
    json_decref(sec);
    hoist_kube_config_free(cfg);
    return 0;
  }

  hoist_kube *k = NULL;
  hoist_kube_options opts = {.exec_environ = (const char *const *)environ,
                             .connect_timeout_ms = 3000};
  int r = hoist_kube_new(cfg, &opts, &k, &err);
  hoist_kube_config_free(cfg);
  if (r < 0)
    return fail(err);
  json_t *out = NULL;
  const hoist_kube_res *rr = nargs >= 1 ? res(a[0]) : NULL;
  if (!strcmp(cmd, "create") && nargs == 2 && rr) {
    json_t *obj = json_load_file(a[1], 0, NULL);
    if (!obj) {
      fprintf(stderr, "kube_tool: %s: not JSON\n", a[1]);
      return 1;
    }
    r = hoist_kube_create(k, rr, NULL, obj, &out, &err);
    json_decref(obj);
  } else if (!strcmp(cmd, "get") && nargs == 2 && rr) {
    r = hoist_kube_get(k, rr, NULL, a[1], &out, &err);
  } else if (!strcmp(cmd, "list") && nargs >= 1 && rr) {
    r = hoist_kube_list(k, rr, NULL, nargs > 1 ? a[1] : NULL, &out, &err);
  } else if (!strcmp(cmd, "delete") && nargs == 2 && rr) {
    r = hoist_kube_delete(k, rr, NULL, a[1], &err);
  } else if (!strcmp(cmd, "watch") && nargs == 5 && rr) {
    watch_state w = {.want = atol(a[4])};
    char *last = NULL;
    r = hoist_kube_watch(k, rr, NULL, a[1][0] ? a[1] : NULL, a[2], atoi(a[3]), on_event, &w, &last,
                         &err);
    printf("last %s\n", last ? last : "-");
    free(last);
  } else if (!strcmp(cmd, "log") && nargs == 2) {
    r = hoist_kube_pod_log(k, NULL, a[0], NULL, !strcmp(a[1], "follow"), on_log, NULL, &err);
  } else if (!strcmp(cmd, "gets") && nargs == 2 && rr) {
    char line[256];
    while (fgets(line, sizeof line, stdin)) {
      if (hoist_kube_get(k, rr, NULL, a[1], &out, &err) < 0) {
        char *t = hoist_err_text(err);
        printf("error %s\n", t);
        free(t);
        hoist_err_free(err);
        err = NULL;
      } else {
        printf("ok %s\n",
               json_string_value(json_object_get(json_object_get(out, "metadata"), "name")));
        json_decref(out);
        out = NULL;
      }
      fflush(stdout);
    }
  } else {
    hoist_kube_free(k);
    return usage();
  }
  hoist_kube_free(k);
  if (r < 0)
    return fail(err);
  if (out)
    print_json(out);
  json_decref(out);
  return 0;
}
