/* Image configs: the JSON document stays the source of truth so fields hoist
 * does not model survive; these helpers validate, read and edit it. */
#include <errno.h>
#include <string.h>

#include "oci-private.h"

/* Optional member of obj that must be of a JSON type checked by is, or null. */
HOIST_WUR static int check_opt(const json_t *obj, const char *key, int (*is)(const json_t *),
                               const char *what, hoist_err **err) {
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v) || is(v))
    return 0;
  return hoist_err_set(err, HOIST_E_FORMAT, "%s must be %s", key, what);
}

static int is_string(const json_t *v) { return json_is_string(v); }
static int is_object(const json_t *v) { return json_is_object(v); }
static int is_bool(const json_t *v) { return json_is_boolean(v); }

HOIST_WUR static int check_opt_strings(const json_t *obj, const char *key, hoist_err **err) {
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v))
    return 0;
  return oci_check_string_array(v, key, err);
}

HOIST_WUR static int check_section(const json_t *cfg, hoist_err **err) {
  if (!json_is_object(cfg))
    return hoist_err_set(err, HOIST_E_FORMAT, "must be an object");
  int r;
  if ((r = check_opt_strings(cfg, "Env", err)) < 0 ||
      (r = check_opt_strings(cfg, "Cmd", err)) < 0 ||
      (r = check_opt_strings(cfg, "Entrypoint", err)) < 0 ||
      (r = check_opt(cfg, "WorkingDir", is_string, "a string", err)) < 0 ||
      (r = check_opt(cfg, "User", is_string, "a string", err)) < 0 ||
      (r = check_opt(cfg, "StopSignal", is_string, "a string", err)) < 0 ||
      (r = check_opt(cfg, "ExposedPorts", is_object, "an object", err)) < 0 ||
      (r = check_opt(cfg, "Volumes", is_object, "an object", err)) < 0)
    return r;
  json_t *labels = json_object_get(cfg, "Labels");
  if (labels && !json_is_null(labels) && (r = oci_check_string_map(labels, "Labels", err)) < 0)
    return r;
  return 0;
}

HOIST_WUR static int check_history(const json_t *h, hoist_err **err) {
  if (!json_is_array(h))
    return hoist_err_set(err, HOIST_E_FORMAT, "history must be an array");
  size_t i;
  json_t *e;
  json_array_foreach(h, i, e) {
    int r;
    if (!json_is_object(e))
      return hoist_err_set(err, HOIST_E_FORMAT, "history[%zu] must be an object", i);
    if ((r = check_opt(e, "created", is_string, "a string", err)) < 0 ||
        (r = check_opt(e, "created_by", is_string, "a string", err)) < 0 ||
        (r = check_opt(e, "author", is_string, "a string", err)) < 0 ||
        (r = check_opt(e, "comment", is_string, "a string", err)) < 0 ||
        (r = check_opt(e, "empty_layer", is_bool, "a boolean", err)) < 0)
      return hoist_err_wrap(err, "history[%zu]", i);
  }
  return 0;
}

HOIST_WUR static int config_validate(const json_t *root, hoist_err **err) {
  const char *s;
  int r;
  if ((r = oci_req_string(root, "architecture", &s, err)) < 0 ||
      (r = oci_req_string(root, "os", &s, err)) < 0 ||
      (r = oci_opt_string(root, "variant", &s, err)) < 0 ||
      (r = oci_opt_string(root, "os.version", &s, err)) < 0 ||
      (r = oci_opt_string(root, "created", &s, err)) < 0 ||
      (r = oci_opt_string(root, "author", &s, err)) < 0)
    return r;
  json_t *rootfs = json_object_get(root, "rootfs");
  if (!rootfs || json_is_null(rootfs))
    return hoist_err_set(err, HOIST_E_FORMAT, "rootfs is missing");
  if (!json_is_object(rootfs))
    return hoist_err_set(err, HOIST_E_FORMAT, "rootfs must be an object");
  const char *type = json_string_value(json_object_get(rootfs, "type"));
  if (!type || strcmp(type, "layers") != 0)
    return hoist_err_set(err, HOIST_E_FORMAT, "rootfs.type must be \"layers\"");
  json_t *ids = json_object_get(rootfs, "diff_ids");
  if (!ids || json_is_null(ids))
    return hoist_err_set(err, HOIST_E_FORMAT, "rootfs.diff_ids is missing");
  if (!json_is_array(ids))
    return hoist_err_set(err, HOIST_E_FORMAT, "rootfs.diff_ids must be an array");
  size_t i;
  json_t *id;
  json_array_foreach(ids, i, id) {
    if (!json_is_string(id))
      return hoist_err_set(err, HOIST_E_FORMAT, "rootfs.diff_ids[%zu] must be a string", i);
    if ((r = hoist_digest_parse(json_string_value(id), NULL, err)) < 0)
      return hoist_err_wrap(err, "rootfs.diff_ids[%zu]", i);
  }
  json_t *cfg = json_object_get(root, "config");
  if (cfg && !json_is_null(cfg) && (r = check_section(cfg, err)) < 0)
    return hoist_err_wrap(err, "config");
  json_t *h = json_object_get(root, "history");
  if (h && !json_is_null(h) && (r = check_history(h, err)) < 0)
    return r;
  return 0;
}

int hoist_config_parse(const char *data, size_t len, hoist_config **out, hoist_err **err) {
  *out = NULL;
  _cleanup_json_ json_t *root = NULL;
  int r = oci_json_load(data, len, &root, err);
  if (r < 0 || (r = config_validate(root, err)) < 0)
    return hoist_err_wrap(err, "image config");
  hoist_config *c = hoist_malloc0(sizeof *c);
  c->root = steal_pointer(&root);
  *out = c;
  return 0;
}

int hoist_config_to_json(const hoist_config *c, char **out, size_t *len, hoist_err **err) {
  int r = hoist_json_canonical(c->root, out, len, err);
  if (r < 0)
    return hoist_err_wrap(err, "image config");
  return 0;
}

hoist_config *hoist_config_new(const hoist_platform *p) {
  hoist_config *c = hoist_malloc0(sizeof *c);
  c->root =
      json_pack("{s:s, s:s, s:{s:s, s:[]}, s:{}}", "architecture",
                p && p->architecture ? p->architecture : "amd64", "os",
                p && p->os ? p->os : "linux", "rootfs", "type", "layers", "diff_ids", "config");
  if (!c->root)
    abort();
  if (p && p->variant)
    oci_set_string(c->root, "variant", p->variant);
  return c;
}

const char *hoist_config_os(const hoist_config *c) {
  return json_string_value(json_object_get(c->root, "os"));
}

const char *hoist_config_architecture(const hoist_config *c) {
  return json_string_value(json_object_get(c->root, "architecture"));
}

const char *hoist_config_variant(const hoist_config *c) {
  const char *v = json_string_value(json_object_get(c->root, "variant"));
  return v && *v ? v : NULL;
}

hoist_platform *hoist_config_platform(const hoist_config *c) {
  hoist_platform *p = hoist_malloc0(sizeof *p);
  p->os = hoist_strdup(hoist_config_os(c));
  p->architecture = hoist_strdup(hoist_config_architecture(c));
  const char *v = hoist_config_variant(c);
  p->variant = v ? hoist_strdup(v) : NULL;
  const char *osv = json_string_value(json_object_get(c->root, "os.version"));
  p->os_version = osv && *osv ? hoist_strdup(osv) : NULL;
  json_t *f = json_object_get(c->root, "os.features");
  if (json_is_array(f))
    hoist_best_effort(/* a malformed list: no features */
                      oci_strv_from_json(f, "os.features", &p->os_features, NULL));
  return p;
}

static json_t *diff_ids(const hoist_config *c) {
  return json_object_get(json_object_get(c->root, "rootfs"), "diff_ids");
}

size_t hoist_config_n_diff_ids(const hoist_config *c) { return json_array_size(diff_ids(c)); }

const char *hoist_config_diff_id(const hoist_config *c, size_t i) {
  return json_string_value(json_array_get(diff_ids(c), i));
}

json_t *hoist_config_section(hoist_config *c) {
  json_t *cfg = json_object_get(c->root, "config");
  if (json_is_object(cfg))
    return cfg;
  cfg = json_object();
  if (!cfg || json_object_set_new(c->root, "config", cfg) < 0)
    abort();
  return cfg;
}

const char *hoist_config_get_string(const hoist_config *c, const char *field) {
  return json_string_value(json_object_get(json_object_get(c->root, "config"), field));
}

/* Sets obj[key] to a new empty array or object unless it already is one. */
static json_t *ensure(json_t *obj, const char *key, bool array) {
  json_t *v = json_object_get(obj, key);
  if (array ? json_is_array(v) : json_is_object(v))
    return v;
  v = array ? json_array() : json_object();
  if (!v || json_object_set_new(obj, key, v) < 0)
    abort();
  return v;
}

int hoist_config_format_time(time_t t, char out[32], hoist_err **err) {
  struct tm tm;
  if (!gmtime_r(&t, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    return hoist_err_set(err, EOVERFLOW, "time %lld cannot be written as RFC 3339", (long long)t);
  return 0;
}

/* A new history entry {created, created_by, comment} in *out, for what
 * (an error's context). */
HOIST_WUR static int history_entry(const char *what, const char *created_by, const char *comment,
                                   time_t created, json_t **out, hoist_err **err) {
  char when[32];
  int r = hoist_config_format_time(created, when, err);
  if (r < 0)
    return hoist_err_wrap(err, "%s", what);
  _cleanup_json_ json_t *h = json_object();
  if (!h)
    abort();
  oci_set_string(h, "created", when);
  if (created_by && !oci_set_string(h, "created_by", created_by))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: created_by is not valid UTF-8", what);
  if (comment && !oci_set_string(h, "comment", comment))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: comment is not valid UTF-8", what);
  *out = steal_pointer(&h);
  return 0;
}

/* Appends history entry h (consumed) and sets "created" to its time. */
static void add_history(hoist_config *c, json_t *h) {
  if (!oci_set_new(c->root, "created", json_deep_copy(json_object_get(h, "created"))) ||
      json_array_append_new(ensure(c->root, "history", true), h) < 0)
    abort();
}

int hoist_config_add_layer(hoist_config *c, const char *diff_id, const char *created_by,
                           const char *comment, time_t created, hoist_err **err) {
  int r = hoist_digest_parse(diff_id, NULL, err);
  if (r < 0)
    return hoist_err_wrap(err, "add layer: diff_id");
  json_t *h = NULL;
  if ((r = history_entry("add layer", created_by, comment, created, &h, err)) < 0)
    return r;
  json_t *rootfs = ensure(c->root, "rootfs", false);
  if (!json_is_string(json_object_get(rootfs, "type")))
    oci_set_string(rootfs, "type", "layers");
  if (json_array_append_new(ensure(rootfs, "diff_ids", true), json_string(diff_id)) < 0)
    abort();
  add_history(c, h);
  return 0;
}

int hoist_config_add_history(hoist_config *c, const char *created_by, const char *comment,
                             time_t created, hoist_err **err) {
  json_t *h = NULL;
  int r = history_entry("history", created_by, comment, created, &h, err);
  if (r < 0)
    return r;
  if (json_object_set_new(h, "empty_layer", json_true()) < 0)
    abort();
  add_history(c, h);
  return 0;
}

int hoist_config_set_env(hoist_config *c, const char *name, const char *value, hoist_err **err) {
  if (!name || !*name || strchr(name, '='))
    return hoist_err_set(err, EINVAL, "env: invalid variable name \"%s\"", name ? name : "");
  _cleanup_free_ char *entry = hoist_asprintf("%s=%s", name, value ? value : "");
  json_t *s = json_string(entry);
  if (!s)
    return hoist_err_set(err, HOIST_E_FORMAT, "env %s: not valid UTF-8", name);
  json_t *env = ensure(hoist_config_section(c), "Env", true);
  size_t n = strlen(name), i;
  json_t *e;
  json_array_foreach(env, i, e) {
    const char *v = json_string_value(e);
    if (v && strncmp(v, name, n) == 0 && v[n] == '=') {
      if (json_array_set_new(env, i, s) < 0)
        abort();
      return 0;
    }
  }
  if (json_array_append_new(env, s) < 0)
    abort();
  return 0;
}

int hoist_config_set_label(hoist_config *c, const char *key, const char *value, hoist_err **err) {
  if (!key || !*key)
    return hoist_err_set(err, EINVAL, "label: empty key");
  json_t *labels = ensure(hoist_config_section(c), "Labels", false);
  if (!value) {
    json_object_del(labels, key);
    return 0;
  }
  json_t *s = json_string(value);
  if (!s)
    return hoist_err_set(err, HOIST_E_FORMAT, "label %s: value is not valid UTF-8", key);
  if (json_object_set_new(labels, key, s) < 0)
    return hoist_err_set(err, HOIST_E_FORMAT, "label: key is not valid UTF-8");
  return 0;
}

void hoist_config_free(hoist_config *c) {
  if (!c)
    return;
  json_decref(c->root);
  free(c);
}
