/* JSON helpers of the oci module: bounded loading, typed field access,
 * canonical output. */
#include <errno.h>
#include <string.h>

#include "oci-private.h"

int hoist_json_canonical(const json_t *j, char **out, size_t *len, hoist_err **err) {
  *out = NULL;
  if (len)
    *len = 0;
  if (!j)
    return hoist_err_set(err, EINVAL, "canonical JSON: no value");
  /* jansson keeps insertion order; JSON_SORT_KEYS makes the output depend on
   * the content alone. No JSON_ESCAPE_SLASH, no ASCII escaping: bytes as given. */
  char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
  if (!s)
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "canonical JSON: value cannot be encoded (invalid UTF-8?)");
  if (len)
    *len = strlen(s);
  *out = s;
  return 0;
}

json_t *oci_document_new(void) {
  json_t *o = json_object();
  if (!o || !oci_set_new(o, "schemaVersion", json_integer(2)))
    abort();
  return o;
}

int oci_document_emit(json_t *o, const char *what,
                      int (*check)(const char *data, size_t len, hoist_err **err), char **out,
                      size_t *len, hoist_err **err) {
  _cleanup_json_ json_t *doc = o;
  *out = NULL;
  if (len)
    *len = 0;
  if (!doc)
    return hoist_err_wrap(err, "%s", what);
  _cleanup_free_ char *s = NULL;
  size_t n = 0;
  if (hoist_json_canonical(doc, &s, &n, err) < 0)
    return hoist_err_wrap(err, "%s", what);
  /* never hand out a document hoist itself would refuse */
  if (check(s, n, err) < 0)
    return hoist_err_wrap(err, "refusing to emit an invalid %s", what);
  *out = steal_pointer(&s);
  if (len)
    *len = n;
  return 0;
}

int oci_json_load(const char *data, size_t len, json_t **out, hoist_err **err) {
  *out = NULL;
  if (!data && len)
    return hoist_err_set(err, EINVAL, "no data");
  if (len > HOIST_MANIFEST_MAX)
    return hoist_err_set(err, HOIST_E_LIMIT, "%zu bytes exceeds the limit of %u bytes", len,
                         HOIST_MANIFEST_MAX);
  if (len == 0)
    return hoist_err_set(err, HOIST_E_FORMAT, "empty document");
  json_error_t jerr;
  json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root)
    return hoist_err_set(err, HOIST_E_FORMAT, "invalid JSON at line %d column %d: %s", jerr.line,
                         jerr.column, jerr.text);
  if (!json_is_object(root)) {
    json_decref(root);
    return hoist_err_set(err, HOIST_E_FORMAT, "not a JSON object");
  }
  *out = root;
  return 0;
}

int oci_opt_string(const json_t *obj, const char *key, const char **out, hoist_err **err) {
  *out = NULL;
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v))
    return 0;
  if (!json_is_string(v))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s must be a string", key);
  *out = json_string_value(v);
  return 0;
}

int oci_req_string(const json_t *obj, const char *key, const char **out, hoist_err **err) {
  *out = NULL;
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s is missing", key);
  if (!json_is_string(v) || json_string_length(v) == 0)
    return hoist_err_set(err, HOIST_E_FORMAT, "%s must be a non-empty string", key);
  if (strlen(json_string_value(v)) != json_string_length(v))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s contains a NUL byte", key);
  *out = json_string_value(v);
  return 0;
}

int oci_check_string_map(const json_t *j, const char *field, hoist_err **err) {
  if (!json_is_object(j))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s must be an object of strings", field);
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)j, k, v) {
    if (!json_is_string(v))
      return hoist_err_set(err, HOIST_E_FORMAT, "%s[\"%.80s\"] must be a string", field, k);
  }
  return 0;
}

int oci_check_string_array(const json_t *j, const char *field, hoist_err **err) {
  if (!json_is_array(j))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s must be an array of strings", field);
  size_t i;
  json_t *v;
  json_array_foreach(j, i, v) {
    if (!json_is_string(v))
      return hoist_err_set(err, HOIST_E_FORMAT, "%s[%zu] must be a string", field, i);
  }
  return 0;
}

static bool media_char(char c, bool first) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
    return true;
  return !first && strchr("!#$&-^_.+", c) != NULL;
}

bool oci_media_type_valid(const char *s) {
  if (!s)
    return false;
  const char *slash = strchr(s, '/');
  if (!slash)
    return false;
  size_t tl = (size_t)(slash - s), sl = strlen(slash + 1);
  if (tl == 0 || tl > 127 || sl == 0 || sl > 127)
    return false;
  for (size_t i = 0; i < tl; i++)
    if (!media_char(s[i], i == 0))
      return false;
  for (size_t i = 0; i < sl; i++)
    if (!media_char(slash[1 + i], i == 0))
      return false;
  return true;
}

int oci_strv_from_json(const json_t *j, const char *field, char ***out, hoist_err **err) {
  *out = NULL;
  int r = oci_check_string_array(j, field, err);
  if (r < 0)
    return r;
  size_t n = json_array_size(j);
  char **v = hoist_calloc(n + 1, sizeof *v);
  for (size_t i = 0; i < n; i++)
    v[i] = hoist_strdup(json_string_value(json_array_get(j, i)));
  *out = v;
  return 0;
}

json_t *oci_strv_to_json(char *const *v) {
  json_t *a = json_array();
  if (!a)
    abort();
  for (size_t i = 0; v && v[i]; i++) {
    if (json_array_append_new(a, json_string(v[i])) < 0) {
      json_decref(a);
      return NULL;
    }
  }
  return a;
}

char **oci_strv_dup(char *const *v) {
  if (!v)
    return NULL;
  size_t n = 0;
  while (v[n])
    n++;
  char **c = hoist_calloc(n + 1, sizeof *c);
  for (size_t i = 0; i < n; i++)
    c[i] = hoist_strdup(v[i]);
  return c;
}

bool oci_set_string(json_t *obj, const char *key, const char *value) {
  return json_object_set_new(obj, key, json_string(value)) == 0;
}

bool oci_set_new(json_t *obj, const char *key, json_t *value) {
  return value && json_object_set_new(obj, key, value) == 0;
}
