/* server: the drop-in for the OpenServerless deployer (config
 * `openserverless`). What the deployer it replaces reads from the cluster,
 * read the same way through the Kubernetes API:
 *
 * - the registry host, after the process's and the user's REGISTRY_HOST:
 *   the `registry_host` annotation of ConfigMap `config` in the platform's
 *   namespace (`nuvolaris`), else `nuvolaris-registry-svc:5000`;
 * - the push credentials: the user's REGISTRY_SECRET, the name of a
 *   dockerconfigjson Secret of that namespace (or `user:password`), else the
 *   Secret `registry-pull-secret`.
 *
 * Absent from the config, the drop-in turns itself on when the API server
 * the service reaches (in a cluster, or the executor's kubeconfig) has
 * ConfigMap `config` in the platform's namespace. */
#include <string.h>

#include "hoist/kube.h"
#include "server-private.h"

#define OPS_NAMESPACE "nuvolaris"
#define OPS_REGISTRY "nuvolaris-registry-svc:5000"
#define OPS_PULL_SECRET "registry-pull-secret"
#define OPS_CONFIGMAP "config"
#define OPS_ANNOTATION "registry_host"
#define DOCKERCONFIG_TYPE "kubernetes.io/dockerconfigjson"
#define DOCKERCONFIG_KEY ".dockerconfigjson"

struct server_ops {
  hoist_kube *k;
  const server_ops_config *cfg;
};

static char *dup_string(json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s && *s ? hoist_strdup(s) : NULL;
}

int server_config_ops(json_t *o, server_config *c, hoist_err **err) {
  server_ops_config *p = &c->ops;
  p->mode = SERVER_OPS_DETECT;
  json_t *x = json_object_get(o, "openserverless");
  if (json_is_boolean(x)) {
    p->mode = json_is_true(x) ? SERVER_OPS_ON : SERVER_OPS_OFF;
  } else if (json_is_object(x)) {
    static const char *const known[] = {"namespace", "registry", "pull_secret", "user_secrets"};
    const char *key;
    json_t *val;
    json_object_foreach(x, key, val) {
      bool ok = false;
      for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        ok = ok || strcmp(key, known[i]) == 0;
      if (!ok)
        return hoist_err_set(err, EINVAL, "openserverless.%s: not a setting (a misspelling?)", key);
      if (strcmp(key, "user_secrets") == 0 ? !json_is_boolean(val) : !json_is_string(val))
        return hoist_err_set(err, EINVAL, "openserverless.%s: expected a %s", key,
                             strcmp(key, "user_secrets") == 0 ? "boolean" : "string");
    }
    p->mode = SERVER_OPS_ON;
  } else if (x) {
    return hoist_err_set(err, EINVAL, "openserverless: expected true, false or an object");
  }
  p->namespace = dup_string(x, "namespace");
  p->registry = dup_string(x, "registry");
  p->pull_secret = dup_string(x, "pull_secret");
  p->user_secrets = !json_is_false(json_object_get(x, "user_secrets"));
  if (!p->namespace)
    p->namespace = hoist_strdup(OPS_NAMESPACE);
  if (!p->registry)
    p->registry = hoist_strdup(OPS_REGISTRY);
  if (!p->pull_secret)
    p->pull_secret = hoist_strdup(OPS_PULL_SECRET);
  return 0;
}

void server_config_ops_clear(server_config *c) {
  free(c->ops.namespace);
  free(c->ops.registry);
  free(c->ops.pull_secret);
  memset(&c->ops, 0, sizeof c->ops);
}

char *server_ops_host_of(json_t *configmap, const char *fallback) {
  json_t *ann = json_object_get(json_object_get(configmap, "metadata"), "annotations");
  const char *h = json_string_value(json_object_get(ann, OPS_ANNOTATION));
  if (h) {
    h += strspn(h, " \t\r\n");
    size_t n = strlen(h);
    while (n && strchr(" \t\r\n", h[n - 1]))
      n--;
    if (n)
      return hoist_asprintf("%.*s", (int)n, h);
  }
  return hoist_strdup(fallback);
}

/* An answer of the API server other than the object or a 404: its reason,
 * as unreachable (EHOSTDOWN: the service says 503) or refused. */
HOIST_WUR static int api_failed(hoist_err **err, const char *what) {
  int code = hoist_err_root_code(*err);
  if (code == HOIST_E_AUTH)
    return hoist_err_wrap(err, "%s: the service account may not read it", what);
  hoist_err *cause = *err;
  *err = NULL;
  _cleanup_free_ char *text = hoist_err_text(cause);
  hoist_err_free(cause);
  return hoist_err_set(err, EHOSTDOWN, "%s: the Kubernetes API server: %s", what, text);
}

int server_ops_registry_host(server_ops *o, char **host, hoist_err **err) {
  json_t *cm = NULL;
  *host = NULL;
  if (hoist_kube_get(o->k, &HOIST_KUBE_CONFIGMAPS, o->cfg->namespace, OPS_CONFIGMAP, &cm, err) <
      0) {
    if (hoist_err_root_code(*err) != HOIST_KUBE_NOT_FOUND)
      return api_failed(err, "ConfigMap " OPS_NAMESPACE "/" OPS_CONFIGMAP);
    hoist_err_free(*err);
    *err = NULL;
  }
  *host = server_ops_host_of(cm, o->cfg->registry);
  json_decref(cm);
  return 0;
}

int server_ops_dockerconfig(server_ops *o, const char *name, char **data, size_t *len,
                            hoist_err **err) {
  const char *what = name ? name : o->cfg->pull_secret;
  *data = NULL;
  *len = 0;
  if (name && !o->cfg->user_secrets)
    return hoist_err_set(err, HOIST_E_AUTH,
                         "registry Secret %s: users may not name Secrets here "
                         "(openserverless.user_secrets is false); give user:password",
                         name);
  json_t *s = NULL;
  if (hoist_kube_get(o->k, &HOIST_KUBE_SECRETS, o->cfg->namespace, what, &s, err) < 0) {
    if (hoist_err_root_code(*err) == HOIST_KUBE_NOT_FOUND)
      return hoist_err_wrap(err, "registry Secret %s/%s is not configured", o->cfg->namespace,
                            what);
    _cleanup_free_ char *label = hoist_asprintf("registry Secret %s", what);
    return api_failed(err, label);
  }
  const char *type = json_string_value(json_object_get(s, "type"));
  const char *b64 =
      json_string_value(json_object_get(json_object_get(s, "data"), DOCKERCONFIG_KEY));
  int rc = 0;
  if (!type || strcmp(type, DOCKERCONFIG_TYPE) != 0 || !b64)
    rc = hoist_err_set(err, HOIST_E_FORMAT,
                       "registry Secret %s: not of type " DOCKERCONFIG_TYPE
                       " with a " DOCKERCONFIG_KEY " key",
                       what);
  else if (hoist_base64_decode(b64, strlen(b64), 1 << 20, 0, (unsigned char **)data, len, err) < 0)
    rc = hoist_err_wrap(err, "registry Secret %s: " DOCKERCONFIG_KEY, what);
  json_decref(s);
  return rc;
}

int server_ops_open(const server_config *cfg, server_ops **out, hoist_err **err) {
  *out = NULL;
  const server_ops_config *p = &cfg->ops;
  if (p->mode == SERVER_OPS_OFF)
    return 0;
  /* detected where an API server is at hand: in a cluster, or the
   * executor's kubeconfig */
  if (p->mode == SERVER_OPS_DETECT && !(cfg->kube_host && cfg->kube_port) && !cfg->exec.kubeconfig)
    return 0;
  hoist_kube *k = NULL;
  if (server_kube_connect(cfg, &k, err) < 0) {
    if (p->mode == SERVER_OPS_ON)
      return hoist_err_wrap(err, "openserverless");
    hoist_err_free(*err);
    *err = NULL;
    return 0;
  }
  if (p->mode == SERVER_OPS_DETECT) {
    json_t *cm = NULL;
    hoist_err *e = NULL;
    int rc = hoist_kube_get(k, &HOIST_KUBE_CONFIGMAPS, p->namespace, OPS_CONFIGMAP, &cm, &e);
    json_decref(cm);
    if (rc < 0 && hoist_err_root_code(e) != HOIST_KUBE_NOT_FOUND)
      hoist_warn("serve: OpenServerless not detected, the API server did not say (%s); "
                 "\"openserverless\": true or false in the config decides",
                 e->msg);
    hoist_err_free(e);
    if (rc < 0) {
      hoist_kube_free(k);
      return 0;
    }
    hoist_info("serve: OpenServerless detected (ConfigMap %s/%s): its registry and Secrets "
               "are used",
               p->namespace, OPS_CONFIGMAP);
  }
  server_ops *o = hoist_malloc0(sizeof *o);
  o->k = k;
  o->cfg = p;
  *out = o;
  return 0;
}

void server_ops_free(server_ops *o) {
  if (!o)
    return;
  hoist_kube_free(o->k);
  free(o);
}
