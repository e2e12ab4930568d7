/* kube: the objects hoist sends, a build's Job and the Secret it owns, and
 * hoist's own checks of what the schemas cannot say. */
#include <string.h>

#include "hoist/core.h"
#include "hoist/kube.h"
#include "kube-private.h"

#define JOB_PREFIX "hoist-build-"
#define CONTAINER "build"
#define SECRET_MOUNT "/run/hoist/secret"

bool kube_name_ok(const char *s, size_t max) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > max || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") != n)
    return false;
  return s[0] != '-' && s[n - 1] != '-';
}

int hoist_kube_job_name(const char *id, char **out, hoist_err **err) {
  *out = NULL;
  size_t room = HOIST_KUBE_NAME_MAX - strlen(JOB_PREFIX);
  if (!id || !kube_name_ok(id, room))
    return hoist_err_set(err, EINVAL,
                         "job id \"%s\": a Job name needs lowercase letters, digits and '-' "
                         "(not first or last), at most %zu of them",
                         id ? id : "", room);
  *out = hoist_asprintf(JOB_PREFIX "%s", id);
  return 0;
}

static json_t *labels(const char *id) {
  return json_pack("{s:s, s:s}", HOIST_KUBE_MANAGED_BY, "hoist", HOIST_KUBE_JOB_ID_LABEL, id);
}

/* {requests: {...}, limits: {...}} from the spec, empty members left out. */
static json_t *resources(const hoist_kube_job_spec *s) {
  json_t *req = json_object(), *lim = json_object(), *res = json_object();
  if (s->cpu_request)
    json_object_set_new(req, "cpu", json_string(s->cpu_request));
  if (s->memory_request)
    json_object_set_new(req, "memory", json_string(s->memory_request));
  if (s->cpu_limit)
    json_object_set_new(lim, "cpu", json_string(s->cpu_limit));
  if (s->memory_limit)
    json_object_set_new(lim, "memory", json_string(s->memory_limit));
  if (json_object_size(req))
    json_object_set(res, "requests", req);
  if (json_object_size(lim))
    json_object_set(res, "limits", lim);
  json_decref(req);
  json_decref(lim);
  return res;
}

/* A resource quantity as Kubernetes writes them ("500m", "2", "1Gi", "1.5"). */
static bool quantity_ok(const char *q) {
  if (!q)
    return true;
  size_t digits = strspn(q, "0123456789.");
  if (digits == 0 || digits > 32)
    return false;
  static const char *const suffixes[] = {"",   "m",  "k",  "M",  "G",  "T",  "P", "E",
                                         "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", NULL};
  for (size_t i = 0; suffixes[i]; i++)
    if (!strcmp(q + digits, suffixes[i]))
      return true;
  return false;
}

int hoist_kube_job_build(const hoist_kube_job_spec *s, json_t **out, hoist_err **err) {
  *out = NULL;
  _cleanup_free_ char *name = NULL;
  if (hoist_kube_job_name(s->id, &name, err) < 0)
    return -EINVAL;
  if (!s->image || !s->image[0])
    return hoist_err_set(err, EINVAL, "job %s: no image", name);
  if (s->deadline_s <= 0 || s->ttl_s < 0)
    return hoist_err_set(err, EINVAL,
                         "job %s: activeDeadlineSeconds must be > 0 and ttlSecondsAfterFinished "
                         ">= 0",
                         name);
  const char *quantities[] = {s->cpu_request, s->cpu_limit, s->memory_request, s->memory_limit};
  for (size_t i = 0; i < 4; i++)
    if (!quantity_ok(quantities[i]))
      return hoist_err_set(err, EINVAL, "job %s: \"%s\" is not a resource quantity", name,
                           quantities[i]);
  if (s->tolerations && !json_is_array(s->tolerations))
    return hoist_err_set(err, EINVAL, "job %s: tolerations is not a list", name);
  if (s->service_account && !kube_name_ok(s->service_account, 253))
    return hoist_err_set(err, EINVAL, "job %s: \"%s\" is not a service account name", name,
                         s->service_account);
  if (s->secret_name && !kube_name_ok(s->secret_name, 253))
    return hoist_err_set(err, EINVAL, "job %s: \"%s\" is not a Secret name", name, s->secret_name);

  json_t *args = json_array();
  for (const char *const *a = s->args; a && *a; a++)
    json_array_append_new(args, json_string(*a));

  bool userns = s->profile == HOIST_KUBE_PROFILE_USERNS;
  json_t *sc =
      json_pack("{s:b, s:b, s:{s:s}, s:{s:s}}", "privileged", 0, "allowPrivilegeEscalation", 1,
                "seccompProfile", "type", "Unconfined", "appArmorProfile", "type", "Unconfined");
  if (userns)
    json_object_set_new(sc, "procMount", json_string("Unmasked"));
  /* newuidmap/newgidmap need their setuid bit and the capabilities to write
   * id maps: the container runs as the user namespace's root */
  json_object_set_new(sc, "runAsUser", json_integer(0));

  json_t *container =
      json_pack("{s:s, s:s, s:o, s:o, s:o, s:s, s:s}", "name", CONTAINER, "image", s->image, "args",
                args, "resources", resources(s), "securityContext", sc, "terminationMessagePolicy",
                "File", "imagePullPolicy", "IfNotPresent");
  json_t *pod = json_pack("{s:s, s:b, s:[o]}", "restartPolicy", "Never",
                          "automountServiceAccountToken", 0, "containers", container);
  if (userns)
    json_object_set_new(pod, "hostUsers", json_false());
  if (s->service_account)
    json_object_set_new(pod, "serviceAccountName", json_string(s->service_account));
  if (s->node_selector && s->node_selector[0]) {
    json_t *ns = json_object();
    for (const char *const *kv = s->node_selector; *kv; kv++) {
      const char *eq = strchr(*kv, '=');
      if (!eq || eq == *kv) {
        json_decref(ns);
        json_decref(pod);
        return hoist_err_set(err, EINVAL, "job %s: node selector \"%s\" is not KEY=VALUE", name,
                             *kv);
      }
      _cleanup_free_ char *key = strndup(*kv, (size_t)(eq - *kv));
      if (!key)
        abort();
      json_object_set_new(ns, key, json_string(eq + 1));
    }
    json_object_set_new(pod, "nodeSelector", ns);
  }
  if (s->tolerations && json_array_size(s->tolerations))
    json_object_set_new(pod, "tolerations", json_deep_copy(s->tolerations));
  if (s->secret_name) {
    json_object_set_new(pod, "volumes",
                        json_pack("[{s:s, s:{s:s, s:i}}]", "name", "hoist-secret", "secret",
                                  "secretName", s->secret_name, "defaultMode", 0400));
    json_object_set_new(container, "volumeMounts",
                        json_pack("[{s:s, s:s, s:b}]", "name", "hoist-secret", "mountPath",
                                  s->secret_mount ? s->secret_mount : SECRET_MOUNT, "readOnly", 1));
  }

  json_t *meta = json_pack("{s:s, s:o}", "name", name, "labels", labels(s->id));
  if (s->namespace)
    json_object_set_new(meta, "namespace", json_string(s->namespace));
  json_t *job =
      json_pack("{s:s, s:s, s:o, s:{s:i, s:I, s:I, s:{s:{s:o}, s:o}}}", "apiVersion", "batch/v1",
                "kind", "Job", "metadata", meta, "spec", "backoffLimit", 0, "activeDeadlineSeconds",
                (json_int_t)s->deadline_s, "ttlSecondsAfterFinished", (json_int_t)s->ttl_s,
                "template", "metadata", "labels", labels(s->id), "spec", pod);
  if (!job)
    abort();
  if (hoist_kube_job_check(job, err) < 0) {
    json_decref(job);
    return -EINVAL;
  }
  *out = job;
  return 0;
}

int hoist_kube_secret_build(const char *name, const char *namespace, const char *job_id,
                            const char *job_name, const char *job_uid, const char *const *data,
                            json_t **out, hoist_err **err) {
  *out = NULL;
  if (!kube_name_ok(name, 253) || !kube_name_ok(job_name, HOIST_KUBE_NAME_MAX) ||
      !kube_name_ok(job_id, HOIST_KUBE_NAME_MAX))
    return hoist_err_set(err, EINVAL, "secret \"%s\" of job \"%s\": not DNS names",
                         name ? name : "", job_name ? job_name : "");
  if (!job_uid || !job_uid[0])
    return hoist_err_set(err, EINVAL, "secret %s: the Job's uid is needed for its owner", name);
  json_t *d = json_object();
  for (const char *const *kv = data; kv && kv[0]; kv += 2) {
    if (!kv[1] || !kv[0][0] ||
        strspn(kv[0], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789-_.") != strlen(kv[0])) {
      json_decref(d);
      return hoist_err_set(err, EINVAL, "secret %s: \"%s\" is not a key with a value", name, kv[0]);
    }
    char *b64 = hoist_base64_encode(kv[1], strlen(kv[1]));
    json_object_set_new(d, kv[0], json_string(b64));
    free(b64);
  }
  json_t *meta =
      json_pack("{s:s, s:o, s:[{s:s, s:s, s:s, s:s, s:b, s:b}]}", "name", name, "labels",
                labels(job_id), "ownerReferences", "apiVersion", "batch/v1", "kind", "Job", "name",
                job_name, "uid", job_uid, "controller", 1, "blockOwnerDeletion", 1);
  if (namespace)
    json_object_set_new(meta, "namespace", json_string(namespace));
  *out = json_pack("{s:s, s:s, s:o, s:s, s:b, s:o}", "apiVersion", "v1", "kind", "Secret",
                   "metadata", meta, "type", "Opaque", "immutable", 1, "data", d);
  if (!*out)
    abort();
  return 0;
}

/* A label value: at most 63 characters of [A-Za-z0-9._-], alphanumeric at
 * both ends, or empty. */
static bool label_value_ok(const char *v) {
  size_t n = strlen(v);
  if (n == 0)
    return true;
  if (n > HOIST_KUBE_NAME_MAX ||
      strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != n)
    return false;
  const char *alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  return strchr(alnum, v[0]) && strchr(alnum, v[n - 1]);
}

HOIST_WUR static int check_labels(json_t *meta, const char *what, hoist_err **err) {
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(meta, "labels"), k, v) {
    if (!json_is_string(v) || !label_value_ok(json_string_value(v)))
      return hoist_err_set(err, EINVAL, "%s: label %s: not a label value of at most 63 characters",
                           what, k);
  }
  return 0;
}

int hoist_kube_job_check(json_t *job, hoist_err **err) {
  json_t *meta = json_object_get(job, "metadata");
  const char *name = json_string_value(json_object_get(meta, "name"));
  if (!name || !kube_name_ok(name, HOIST_KUBE_NAME_MAX))
    return hoist_err_set(err, EINVAL,
                         "Job \"%s\": the name must be a DNS label of at most 63 characters (the "
                         "job-name label of its pods carries it)",
                         name ? name : "");
  if (check_labels(meta, name, err) < 0)
    return -EINVAL;
  json_t *tmpl = json_object_get(json_object_get(job, "spec"), "template");
  if (check_labels(json_object_get(tmpl, "metadata"), name, err) < 0)
    return -EINVAL;
  json_t *pod = json_object_get(tmpl, "spec");
  json_t *host_users = json_object_get(pod, "hostUsers");
  bool userns = json_is_false(host_users);
  const char *lists[] = {"initContainers", "containers"};
  for (size_t l = 0; l < 2; l++) {
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(pod, lists[l]), i, c) {
      json_t *sc = json_object_get(c, "securityContext");
      const char *cname = json_string_value(json_object_get(c, "name"));
      const char *pm = json_string_value(json_object_get(sc, "procMount"));
      if (pm && !strcmp(pm, "Unmasked") && !userns)
        return hoist_err_set(err, EINVAL,
                             "Job %s: container %s: procMount Unmasked without hostUsers: false "
                             "would show the host's /proc unmasked",
                             name, cname ? cname : "?");
      if (json_is_true(json_object_get(sc, "privileged")))
        return hoist_err_set(err, EINVAL, "Job %s: container %s is privileged", name,
                             cname ? cname : "?");
    }
  }
  return 0;
}
