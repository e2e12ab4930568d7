/* The deploy state file: `key=value` lines, written atomically. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "deploy-private.h"
#include "hoist/fs.h"

enum { MAX_STATE = 1 << 20, MAX_KEYS = 8192, MAX_VALUE = 4096 };

static bool key_valid(const char *k, size_t n) {
  if (n == 0 || n > 256)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = k[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-' || c == '.'))
      return false;
  }
  return true;
}

static bool value_valid(const char *v, size_t n) {
  if (n > MAX_VALUE)
    return false;
  for (size_t i = 0; i < n; i++)
    if (v[i] == '\n' || v[i] == '\r' || v[i] == '\0')
      return false;
  return true;
}

hoist_deploy_state *hoist_deploy_state_new(void) {
  return hoist_malloc0(sizeof(hoist_deploy_state));
}

void hoist_deploy_state_free(hoist_deploy_state *s) {
  if (!s)
    return;
  for (size_t i = 0; i < s->n; i++) {
    free(s->keys[i]);
    free(s->values[i]);
  }
  free(s->keys);
  free(s->values);
  free(s);
}

const char *hoist_deploy_state_get(const hoist_deploy_state *s, const char *key) {
  for (size_t i = 0; s && i < s->n; i++)
    if (strcmp(s->keys[i], key) == 0)
      return s->values[i];
  return NULL;
}

static void append(hoist_deploy_state *s, char *key, char *value) {
  char **k = hoist_reallocarray(s->keys, s->n + 1, sizeof *k);
  s->keys = k;
  char **v = hoist_reallocarray(s->values, s->n + 1, sizeof *v);
  s->values = v;
  s->keys[s->n] = key;
  s->values[s->n] = value;
  s->n++;
}

int hoist_deploy_state_set(hoist_deploy_state *s, const char *key, const char *value,
                           hoist_err **err) {
  if (!key_valid(key, strlen(key)))
    return hoist_err_set(err, EINVAL, "state key '%s': not [A-Za-z0-9_.-]+", key);
  if (!value_valid(value, strlen(value)))
    return hoist_err_set(err, EINVAL, "state value of %s: a line break or longer than %d bytes",
                         key, MAX_VALUE);
  for (size_t i = 0; i < s->n; i++)
    if (strcmp(s->keys[i], key) == 0) {
      free(s->values[i]);
      s->values[i] = hoist_strdup(value);
      return 0;
    }
  if (s->n >= MAX_KEYS)
    return hoist_err_set(err, HOIST_E_LIMIT, "state: more than %d keys", MAX_KEYS);
  append(s, hoist_strdup(key), hoist_strdup(value));
  return 0;
}

int hoist_deploy_state_parse(const char *text, size_t len, hoist_deploy_state **out,
                             hoist_err **err) {
  if (len > MAX_STATE)
    return hoist_err_set(err, HOIST_E_LIMIT, "state: larger than %d bytes", MAX_STATE);
  hoist_deploy_state *s = hoist_deploy_state_new();
  const char *p = text, *end = text + len;
  int line = 0;
  int r = 0;
  while (p < end) {
    line++;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *e = nl ? nl : end;
    const char *le = e > p && e[-1] == '\r' ? e - 1 : e;
    const char *q = p;
    p = nl ? nl + 1 : end;
    while (q < le && (*q == ' ' || *q == '\t'))
      q++;
    if (q == le || *q == '#')
      continue;
    const char *eq = memchr(q, '=', (size_t)(le - q));
    if (!eq) {
      r = hoist_err_set(err, HOIST_E_FORMAT, "state: line %d: expected key=value", line);
      break;
    }
    if (!key_valid(q, (size_t)(eq - q))) {
      r = hoist_err_set(err, HOIST_E_FORMAT, "state: line %d: invalid key", line);
      break;
    }
    if (!value_valid(eq + 1, (size_t)(le - eq - 1))) {
      r = hoist_err_set(err, HOIST_E_FORMAT, "state: line %d: invalid value", line);
      break;
    }
    char *key = strndup(q, (size_t)(eq - q));
    char *value = strndup(eq + 1, (size_t)(le - eq - 1));
    if (!key || !value)
      abort();
    if (hoist_deploy_state_get(s, key)) {
      r = hoist_err_set(err, HOIST_E_FORMAT, "state: line %d: duplicate key %s", line, key);
      free(key);
      free(value);
      break;
    }
    if (s->n >= MAX_KEYS) {
      r = hoist_err_set(err, HOIST_E_LIMIT, "state: more than %d keys", MAX_KEYS);
      free(key);
      free(value);
      break;
    }
    append(s, key, value);
  }
  if (r < 0) {
    hoist_deploy_state_free(s);
    return r;
  }
  *out = s;
  return 0;
}

int hoist_deploy_state_load(int dirfd, const char *path, hoist_deploy_state **out, bool *existed,
                            hoist_err **err) {
  _cleanup_free_ char *text = NULL;
  size_t len = 0;
  hoist_err *e = NULL;
  if (existed)
    *existed = false;
  int r = hoist_fs_read_file(dirfd, path, MAX_STATE, &text, &len, &e);
  if (r < 0 && hoist_err_root_code(e) == ENOENT) {
    hoist_err_free(e);
    *out = hoist_deploy_state_new();
    return 0;
  }
  if (r < 0) {
    if (err && !*err)
      *err = e;
    else
      hoist_err_free(e);
    return hoist_err_wrap(err, "state file %s", path);
  }
  if (existed)
    *existed = true;
  if (hoist_deploy_state_parse(text, len, out, err) < 0)
    return hoist_err_wrap(err, "%s", path);
  return 0;
}

char *hoist_deploy_state_format(const hoist_deploy_state *s) {
  hoist_buf b = HOIST_BUF_INIT(0);
  for (size_t i = 0; i < s->n; i++)
    if (hoist_buf_appendf(&b, NULL, "%s=%s\n", s->keys[i], s->values[i]) < 0)
      abort();
  return hoist_buf_steal(&b);
}

int hoist_deploy_state_save(int dirfd, const char *path, const hoist_deploy_state *s,
                            hoist_err **err) {
  const char *slash = strrchr(path, '/');
  if (slash && slash != path) {
    _cleanup_free_ char *dir = strndup(path, (size_t)(slash - path));
    if (!dir)
      abort();
    /* mkdir -p of the parent, component by component */
    for (char *c = dir + 1;; c++) {
      if (*c == '/' || *c == '\0') {
        char saved = *c;
        *c = '\0';
        if (mkdirat(dirfd, dir, 0755) < 0 && errno != EEXIST)
          return hoist_err_errno(err, errno, "state file %s: mkdir %s", path, dir);
        *c = saved;
        if (!saved)
          break;
      }
    }
  }
  _cleanup_free_ char *text = hoist_deploy_state_format(s);
  if (hoist_fs_write_atomic(dirfd, path, text, strlen(text), 0644, err) < 0)
    return hoist_err_wrap(err, "state file");
  return 0;
}
