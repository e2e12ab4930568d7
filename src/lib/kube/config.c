/* kube: configuration, from a kubeconfig (YAML, read with libyaml) or from the
 * service account's files in a pod. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "hoist/core.h"
#include "hoist/kube.h"
#include "kube-private.h"

#define YAML_DEPTH_MAX 64
#define YAML_NODES_MAX 100000 /* aliases can make a small text a huge tree */

void hoist_kube_config_free(hoist_kube_config *c) {
  if (!c)
    return;
  free(c->server);
  free(c->namespace);
  free(c->ca_file);
  free(c->ca_pem);
  free(c->tls_server_name);
  free(c->token);
  free(c->token_file);
  free(c->cert_file);
  free(c->key_file);
  free(c->cert_pem);
  free(c->key_pem);
  hoist_strfreev(c->exec_argv);
  hoist_strfreev(c->exec_env);
  free(c->exec_api_version);
  free(c);
}

static inline void kube_config_freep(hoist_kube_config **c) { hoist_kube_config_free(*c); }
#define _cleanup_kube_config_ __attribute__((cleanup(kube_config_freep)))

/* ----------------------------------------------------------- YAML -> JSON */

typedef struct {
  yaml_document_t *doc;
  size_t nodes;
  const char *name;
} yconv;

/* A YAML node as JSON: mappings become objects (keys must be scalars),
 * sequences arrays, scalars strings; a plain null, ~ or empty scalar is null.
 * Bounded in depth and in the nodes visited (aliases are followed). */
HOIST_WUR static int node_to_json(yconv *c, yaml_node_t *n, int depth, json_t **out,
                                  hoist_err **err) {
  if (!n)
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: a YAML node is missing", c->name);
  if (depth > YAML_DEPTH_MAX)
    return hoist_err_set(err, HOIST_E_LIMIT, "%s: nested deeper than %d levels", c->name,
                         YAML_DEPTH_MAX);
  if (++c->nodes > YAML_NODES_MAX)
    return hoist_err_set(err, HOIST_E_LIMIT, "%s: more than %d YAML nodes (aliases?)", c->name,
                         YAML_NODES_MAX);
  unsigned long line = n->start_mark.line + 1;
  switch (n->type) {
  case YAML_SCALAR_NODE: {
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        (len == 0 || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
         !strcmp(v, "NULL"))) {
      *out = json_null();
      return 0;
    }
    if (memchr(v, '\0', len))
      return hoist_err_set(err, HOIST_E_FORMAT, "%s: line %lu: a NUL in a string", c->name, line);
    *out = json_stringn(v, len);
    if (!*out)
      return hoist_err_set(err, HOIST_E_FORMAT, "%s: line %lu: not UTF-8", c->name, line);
    return 0;
  }
  case YAML_SEQUENCE_NODE: {
    json_t *a = json_array();
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
      json_t *v = NULL;
      int r = node_to_json(c, yaml_document_get_node(c->doc, *it), depth + 1, &v, err);
      if (r < 0) {
        json_decref(a);
        return r;
      }
      json_array_append_new(a, v);
    }
    *out = a;
    return 0;
  }
  case YAML_MAPPING_NODE: {
    json_t *o = json_object();
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
      yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
      if (!kn || kn->type != YAML_SCALAR_NODE) {
        json_decref(o);
        return hoist_err_set(err, HOIST_E_FORMAT, "%s: line %lu: a key that is not a string",
                             c->name, line);
      }
      _cleanup_free_ char *key =
          strndup((const char *)kn->data.scalar.value, kn->data.scalar.length);
      if (!key)
        abort();
      if (json_object_get(o, key)) {
        json_decref(o);
        return hoist_err_set(err, HOIST_E_FORMAT, "%s: line %lu: key \"%s\" given twice", c->name,
                             (unsigned long)kn->start_mark.line + 1, key);
      }
      json_t *v = NULL;
      int r = node_to_json(c, yaml_document_get_node(c->doc, p->value), depth + 1, &v, err);
      if (r < 0) {
        json_decref(o);
        return r;
      }
      json_object_set_new(o, key, v);
    }
    *out = o;
    return 0;
  }
  default:
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: line %lu: an empty YAML node", c->name, line);
  }
}

int kube_yaml_to_json(const char *text, size_t len, const char *name, json_t **out,
                      hoist_err **err) {
  *out = NULL;
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p))
    abort();
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  yaml_document_t doc;
  if (!yaml_parser_load(&p, &doc)) {
    int r = hoist_err_set(err, HOIST_E_FORMAT, "%s: line %lu: %s %s", name,
                          (unsigned long)p.problem_mark.line + 1,
                          p.problem ? p.problem : "not YAML", p.context ? p.context : "");
    yaml_parser_delete(&p);
    return r;
  }
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  int r;
  if (!root) {
    r = hoist_err_set(err, HOIST_E_FORMAT, "%s: empty", name);
  } else {
    yconv c = {.doc = &doc, .name = name};
    r = node_to_json(&c, root, 0, out, err);
  }
  yaml_document_delete(&doc);
  yaml_parser_delete(&p);
  return r;
}

/* ------------------------------------------------------------- kubeconfig */

/* The string member key of o: NULL when absent or null; an error (-1 with
 * *err set) when present and not a string. */
HOIST_WUR static int get_str(json_t *o, const char *key, const char *what, const char **out,
                             hoist_err **err) {
  json_t *v = json_object_get(o, key);
  *out = NULL;
  if (!v || json_is_null(v))
    return 0;
  if (!json_is_string(v))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: %s is not a string", what, key);
  *out = json_string_value(v);
  return 0;
}

/* The entry of list `key` (clusters, users, contexts) named name: its member
 * `inner` (cluster, user, context). */
HOIST_WUR static int named(json_t *root, const char *key, const char *inner, const char *name,
                           const char *cfgname, json_t **out, hoist_err **err) {
  json_t *list = json_object_get(root, key);
  if (list && !json_is_null(list) && !json_is_array(list))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: %s is not a list", cfgname, key);
  size_t i;
  json_t *e;
  json_array_foreach(list, i, e) {
    if (!json_is_object(e))
      return hoist_err_set(err, HOIST_E_FORMAT, "%s: %s[%zu] is not a mapping", cfgname, key, i);
    json_t *n = json_object_get(e, "name");
    if (!json_is_string(n))
      return hoist_err_set(err, HOIST_E_FORMAT, "%s: %s[%zu] has no name", cfgname, key, i);
    if (strcmp(json_string_value(n), name))
      continue;
    json_t *v = json_object_get(e, inner);
    if (!json_is_object(v))
      return hoist_err_set(err, HOIST_E_FORMAT, "%s: %s \"%s\" has no %s mapping", cfgname, key,
                           name, inner);
    *out = v;
    return 0;
  }
  return hoist_err_set(err, HOIST_E_FORMAT, "%s: no %s named \"%s\"", cfgname, inner, name);
}

/* A path from the kubeconfig, relative to its directory unless absolute. */
static char *resolve_path(const char *base_dir, const char *p) {
  if (p[0] == '/' || !base_dir || !base_dir[0])
    return hoist_strdup(p);
  return hoist_asprintf("%s/%s", base_dir, p);
}

/* base64 PEM data (certificate-authority-data and the like) decoded. */
HOIST_WUR static int pem_data(const char *b64, const char *what, char **out, hoist_err **err) {
  _cleanup_free_ unsigned char *raw = NULL;
  size_t n = 0;
  if (hoist_base64_decode(b64, strlen(b64), HOIST_KUBE_CONFIG_MAX, HOIST_BASE64_PAD_OPTIONAL, &raw,
                          &n, err) < 0)
    return hoist_err_wrap(err, "%s", what);
  if (n == 0 || memchr(raw, '\0', n))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: not PEM text", what);
  *out = strndup((const char *)raw, n);
  if (!*out)
    abort();
  return 0;
}

/* true/false as YAML writes them (a string here). */
HOIST_WUR static int get_bool(json_t *o, const char *key, const char *what, bool *out,
                              hoist_err **err) {
  const char *s;
  if (get_str(o, key, what, &s, err) < 0)
    return -HOIST_E_FORMAT;
  *out = false;
  if (!s)
    return 0;
  if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
    *out = true;
  else if (strcmp(s, "false") && strcmp(s, "False") && strcmp(s, "FALSE"))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: %s is \"%s\", not true or false", what, key, s);
  return 0;
}

HOIST_WUR static int parse_cluster(json_t *cl, const char *what, const char *base_dir,
                                   hoist_kube_config *c, hoist_err **err) {
  const char *server, *ca, *ca_data, *sni;
  if (get_str(cl, "server", what, &server, err) < 0 ||
      get_str(cl, "certificate-authority", what, &ca, err) < 0 ||
      get_str(cl, "certificate-authority-data", what, &ca_data, err) < 0 ||
      get_str(cl, "tls-server-name", what, &sni, err) < 0 ||
      get_bool(cl, "insecure-skip-tls-verify", what, &c->insecure, err) < 0)
    return -HOIST_E_FORMAT;
  if (!server || !server[0])
    return hoist_err_set(err, HOIST_E_FORMAT, "%s has no server", what);
  if (strncmp(server, "https://", 8) && strncmp(server, "http://", 7))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: server \"%s\" is not an https:// URL", what,
                         server);
  const char *host = strstr(server, "://") + 3;
  if (!host[0] || host[0] == '/' || strpbrk(server, " \t\r\n?#@"))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: server \"%s\" is not a URL hoist can use", what,
                         server);
  c->server = hoist_strdup(server);
  size_t n = strlen(c->server);
  while (n > 0 && c->server[n - 1] == '/')
    c->server[--n] = '\0';
  if (ca && ca_data)
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "%s: both certificate-authority and certificate-authority-data", what);
  if (c->insecure && (ca || ca_data))
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "%s: insecure-skip-tls-verify with a certificate authority", what);
  if (ca)
    c->ca_file = resolve_path(base_dir, ca);
  if (ca_data) {
    _cleanup_free_ char *w = hoist_asprintf("%s: certificate-authority-data", what);
    if (pem_data(ca_data, w, &c->ca_pem, err) < 0)
      return -HOIST_E_FORMAT;
  }
  if (sni)
    c->tls_server_name = hoist_strdup(sni);
  return 0;
}

HOIST_WUR static int parse_exec(json_t *ex, const char *what, const char *base_dir,
                                hoist_kube_config *c, hoist_err **err) {
  if (!json_is_object(ex))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: exec is not a mapping", what);
  const char *api, *cmd;
  if (get_str(ex, "apiVersion", what, &api, err) < 0 || get_str(ex, "command", what, &cmd, err) < 0)
    return -HOIST_E_FORMAT;
  if (!api)
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: exec has no apiVersion", what);
  if (strcmp(api, "client.authentication.k8s.io/v1") &&
      strcmp(api, "client.authentication.k8s.io/v1beta1"))
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "%s: exec apiVersion \"%s\" is not client.authentication.k8s.io/v1 "
                         "(or v1beta1)",
                         what, api);
  if (!cmd || !cmd[0])
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: exec has no command", what);
  const char *mode;
  if (get_str(ex, "interactiveMode", what, &mode, err) < 0)
    return -HOIST_E_FORMAT;
  if (mode && !strcmp(mode, "Always"))
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "%s: exec interactiveMode Always needs a terminal, and hoist runs the "
                         "plugin without one",
                         what);
  _cleanup_strv_ hoist_strv argv = HOIST_STRV_INIT;
  /* a command with a slash is a path relative to the kubeconfig; a bare name
   * is looked up in PATH */
  hoist_strv_push(&argv, strchr(cmd, '/') ? resolve_path(base_dir, cmd) : hoist_strdup(cmd));
  json_t *args = json_object_get(ex, "args");
  if (args && !json_is_null(args) && !json_is_array(args))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: exec args is not a list", what);
  size_t i;
  json_t *v;
  json_array_foreach(args, i, v) {
    if (!json_is_string(v))
      return hoist_err_set(err, HOIST_E_FORMAT, "%s: exec args[%zu] is not a string", what, i);
    hoist_strv_add(&argv, json_string_value(v));
  }
  _cleanup_strv_ hoist_strv env = HOIST_STRV_INIT;
  json_t *envl = json_object_get(ex, "env");
  if (envl && !json_is_null(envl) && !json_is_array(envl))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: exec env is not a list", what);
  json_array_foreach(envl, i, v) {
    const char *name = NULL, *value = NULL;
    if (!json_is_object(v) || get_str(v, "name", what, &name, err) < 0 ||
        get_str(v, "value", what, &value, err) < 0 || !name || !value || !name[0] ||
        strchr(name, '='))
      return hoist_err_set(err, HOIST_E_FORMAT,
                           "%s: exec env[%zu] is not a name (without '=') and a value", what, i);
    hoist_strv_push(&env, hoist_asprintf("%s=%s", name, value));
  }
  c->exec_argv = hoist_strv_steal(&argv);
  c->exec_env = hoist_strv_steal(&env);
  c->exec_api_version = hoist_strdup(api);
  return 0;
}

HOIST_WUR static int parse_user(json_t *u, const char *what, const char *base_dir,
                                hoist_kube_config *c, hoist_err **err) {
  const char *token, *token_file, *cert, *cert_data, *key, *key_data, *user, *pass;
  if (get_str(u, "token", what, &token, err) < 0 ||
      get_str(u, "tokenFile", what, &token_file, err) < 0 ||
      get_str(u, "client-certificate", what, &cert, err) < 0 ||
      get_str(u, "client-certificate-data", what, &cert_data, err) < 0 ||
      get_str(u, "client-key", what, &key, err) < 0 ||
      get_str(u, "client-key-data", what, &key_data, err) < 0 ||
      get_str(u, "username", what, &user, err) < 0 || get_str(u, "password", what, &pass, err) < 0)
    return -HOIST_E_FORMAT;
  json_t *ap = json_object_get(u, "auth-provider");
  if (ap && !json_is_null(ap))
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "%s: auth-provider is not supported (removed from Kubernetes); use an "
                         "exec credential plugin",
                         what);
  if (user || pass)
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "%s: username/password (basic auth) is not supported; use a token, a "
                         "client certificate or an exec plugin",
                         what);
  json_t *ex = json_object_get(u, "exec");
  bool has_exec = ex && !json_is_null(ex);
  if ((token || token_file) && has_exec)
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: both a token and an exec plugin", what);
  if ((cert && cert_data) || (key && key_data))
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "%s: a client certificate or key given both as a file and as data", what);
  if (!(cert || cert_data) != !(key || key_data))
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "%s: a client certificate without its key, or a "
                         "key without its certificate",
                         what);
  if (token) {
    if (!token[0] || strpbrk(token, "\r\n"))
      return hoist_err_set(err, HOIST_E_FORMAT, "%s: the token is empty or has a line break", what);
    c->token = hoist_strdup(token);
  }
  if (token_file)
    c->token_file = resolve_path(base_dir, token_file);
  if (cert)
    c->cert_file = resolve_path(base_dir, cert);
  if (key)
    c->key_file = resolve_path(base_dir, key);
  if (cert_data) {
    _cleanup_free_ char *w = hoist_asprintf("%s: client-certificate-data", what);
    if (pem_data(cert_data, w, &c->cert_pem, err) < 0)
      return -HOIST_E_FORMAT;
  }
  if (key_data) {
    _cleanup_free_ char *w = hoist_asprintf("%s: client-key-data", what);
    if (pem_data(key_data, w, &c->key_pem, err) < 0)
      return -HOIST_E_FORMAT;
  }
  if (has_exec && parse_exec(ex, what, base_dir, c, err) < 0)
    return -HOIST_E_FORMAT;
  return 0;
}

/* The context's cluster and user of root, into c. */
HOIST_WUR static int resolve(json_t *root, const char *what, const char *base_dir,
                             const char *context, hoist_kube_config *c, hoist_err **err) {
  const char *kind, *current;
  json_t *ctx = NULL, *cl = NULL, *u = NULL;
  if (!json_is_object(root))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: not a mapping", what);
  if (get_str(root, "kind", what, &kind, err) < 0 ||
      get_str(root, "current-context", what, &current, err) < 0)
    return -HOIST_E_FORMAT;
  if (kind && strcmp(kind, "Config"))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: kind is \"%s\", not Config", what, kind);
  if (!context || !context[0])
    context = current;
  if (!context || !context[0])
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: no current-context, and no context was named",
                         what);
  if (named(root, "contexts", "context", context, what, &ctx, err) < 0)
    return -HOIST_E_FORMAT;
  const char *cluster, *user, *ns;
  _cleanup_free_ char *cwhat = hoist_asprintf("%s: context \"%s\"", what, context);
  if (get_str(ctx, "cluster", cwhat, &cluster, err) < 0 ||
      get_str(ctx, "user", cwhat, &user, err) < 0 || get_str(ctx, "namespace", cwhat, &ns, err) < 0)
    return -HOIST_E_FORMAT;
  if (!cluster)
    return hoist_err_set(err, HOIST_E_FORMAT, "%s names no cluster", cwhat);
  if (named(root, "clusters", "cluster", cluster, what, &cl, err) < 0)
    return hoist_err_wrap(err, "%s", cwhat);
  _cleanup_free_ char *clwhat = hoist_asprintf("%s: cluster \"%s\"", what, cluster);
  if (parse_cluster(cl, clwhat, base_dir, c, err) < 0)
    return -HOIST_E_FORMAT;
  if (user) {
    if (named(root, "users", "user", user, what, &u, err) < 0)
      return hoist_err_wrap(err, "%s", cwhat);
    _cleanup_free_ char *uwhat = hoist_asprintf("%s: user \"%s\"", what, user);
    if (parse_user(u, uwhat, base_dir, c, err) < 0)
      return -HOIST_E_FORMAT;
  }
  if (ns && !kube_name_ok(ns, HOIST_KUBE_NAME_MAX))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: namespace \"%s\" is not a DNS label", cwhat, ns);
  c->namespace = hoist_strdup(ns ? ns : "default");
  return 0;
}

int hoist_kube_config_parse(const char *text, size_t len, const char *name, const char *base_dir,
                            const char *context, hoist_kube_config **out, hoist_err **err) {
  *out = NULL;
  if (len > HOIST_KUBE_CONFIG_MAX)
    return hoist_err_set(err, HOIST_E_LIMIT, "kubeconfig %s: larger than %u bytes", name,
                         HOIST_KUBE_CONFIG_MAX);
  _cleanup_free_ char *what = hoist_asprintf("kubeconfig %s", name);
  json_t *root = NULL;
  if (kube_yaml_to_json(text, len, what, &root, err) < 0)
    return -HOIST_E_FORMAT;
  _cleanup_kube_config_ hoist_kube_config *c = hoist_malloc0(sizeof *c);
  int r = resolve(root, what, base_dir, context, c, err);
  json_decref(root);
  if (r < 0)
    return r;
  *out = steal_pointer(&c);
  return 0;
}

/* A whole small file into *out (NUL-terminated; caller frees). */
int kube_read_file(const char *path, size_t max, char **out, size_t *len, hoist_err **err) {
  _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return hoist_err_errno(err, errno, "%s", path);
  hoist_buf b = HOIST_BUF_INIT(max);
  char chunk[8192];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      hoist_buf_free(&b);
      return hoist_err_errno(err, errno, "read %s", path);
    }
    if (n == 0)
      break;
    if (hoist_buf_append(&b, chunk, (size_t)n, err) < 0) {
      hoist_buf_free(&b);
      return hoist_err_wrap(err, "%s", path);
    }
  }
  if (len)
    *len = b.len;
  *out = hoist_buf_steal(&b);
  return 0;
}

int hoist_kube_config_load(const char *path, const char *context, hoist_kube_config **out,
                           hoist_err **err) {
  _cleanup_free_ char *text = NULL;
  size_t len = 0;
  if (kube_read_file(path, HOIST_KUBE_CONFIG_MAX, &text, &len, err) < 0)
    return hoist_err_wrap(err, "kubeconfig");
  _cleanup_free_ char *dir = hoist_strdup(path);
  char *slash = strrchr(dir, '/');
  if (slash)
    *slash = '\0';
  else
    strcpy(dir, ".");
  return hoist_kube_config_parse(text, len, path, dir[0] ? dir : "/", context, out, err);
}

/* ------------------------------------------------------------- in-cluster */

int hoist_kube_config_in_cluster(const char *host, const char *port, const char *dir,
                                 hoist_kube_config **out, hoist_err **err) {
  *out = NULL;
  if (!dir)
    dir = HOIST_KUBE_SA_DIR;
  if (!host || !host[0] || !port || !port[0])
    return hoist_err_set(err, EINVAL,
                         "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are "
                         "not set: hoist is not running in a pod");
  if (strpbrk(host, "/ @?#") || strspn(port, "0123456789") != strlen(port))
    return hoist_err_set(err, EINVAL, "in-cluster: \"%s\" port \"%s\" is not a host and port", host,
                         port);
  _cleanup_kube_config_ hoist_kube_config *c = hoist_malloc0(sizeof *c);
  bool v6 = strchr(host, ':') && host[0] != '[';
  c->server = hoist_asprintf("https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
  c->token_file = hoist_asprintf("%s/token", dir);
  c->ca_file = hoist_asprintf("%s/ca.crt", dir);
  if (access(c->token_file, R_OK) < 0)
    return hoist_err_errno(err, errno, "in-cluster: service-account token %s", c->token_file);
  if (access(c->ca_file, R_OK) < 0)
    return hoist_err_errno(err, errno, "in-cluster: CA %s", c->ca_file);
  _cleanup_free_ char *nsfile = hoist_asprintf("%s/namespace", dir), *ns = NULL;
  if (kube_read_file(nsfile, 4096, &ns, NULL, err) < 0)
    return hoist_err_wrap(err, "in-cluster: namespace");
  ns[strcspn(ns, "\r\n")] = '\0';
  if (!kube_name_ok(ns, HOIST_KUBE_NAME_MAX))
    return hoist_err_set(err, HOIST_E_FORMAT, "in-cluster: %s: \"%s\" is not a namespace", nsfile,
                         ns);
  c->namespace = steal_pointer(&ns);
  *out = steal_pointer(&c);
  return 0;
}
