/* Runtime bundle manifest.json: parsing and the checks that need no payload
 * (contract checks 3, 4, 5 and the manifest half of 6). */
#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <sys/utsname.h>

#include "bundle-internal.h"

int hoist_bundle_arch_resolve(const char *arch, const char *platform, const char **out,
                              hoist_err **err) {
  if (arch && *arch) {
    if (strcmp(arch, "amd64") == 0)
      *out = "amd64";
    else if (strcmp(arch, "arm64") == 0)
      *out = "arm64";
    else
      return hoist_err_set(err, EINVAL, "unsupported architecture: %s (amd64 or arm64)", arch);
    return 0;
  }
  if (platform && *platform) {
    if (strchr(platform, ','))
      return hoist_err_set(err, EINVAL, "multi-platform builds are not supported: %s", platform);
    if (strcmp(platform, "linux/amd64") == 0)
      *out = "amd64";
    else if (strcmp(platform, "linux/arm64") == 0 || strcmp(platform, "linux/arm64/v8") == 0)
      *out = "arm64";
    else
      return hoist_err_set(err, EINVAL, "unsupported docker platform: %s", platform);
    return 0;
  }
  struct utsname u;
  if (uname(&u) < 0)
    return hoist_err_errno(err, errno, "uname");
  if (strcmp(u.machine, "x86_64") == 0)
    *out = "amd64";
  else if (strcmp(u.machine, "aarch64") == 0 || strcmp(u.machine, "arm64") == 0)
    *out = "arm64";
  else
    return hoist_err_set(err, EINVAL, "unsupported host architecture: %s", u.machine);
  return 0;
}

const char *hoist_bundle_libdir(const char *arch) {
  if (!arch)
    return NULL;
  if (strcmp(arch, "amd64") == 0)
    return "x86_64-linux-gnu";
  if (strcmp(arch, "arm64") == 0)
    return "aarch64-linux-gnu";
  return NULL;
}

bool hoist_bundle_name_valid(const char *p) {
  size_t n = p ? strlen(p) : 0;
  if (n == 0 || n > 128)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (i == 0 ? !alnum : !(alnum || c == '.' || c == '_' || c == '+' || c == '-'))
      return false;
  }
  return true;
}

/* Reads exactly n digits at *s into *v. */
static bool digits(const char **s, int n, int *v) {
  int x = 0;
  for (int i = 0; i < n; i++) {
    char c = (*s)[i];
    if (c < '0' || c > '9')
      return false;
    x = x * 10 + (c - '0');
  }
  *s += n;
  *v = x;
  return true;
}

bool hoist_bundle_rfc3339_valid(const char *s) {
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int y, mo, d, h, mi, se;
  if (!s || !digits(&s, 4, &y) || *s++ != '-' || !digits(&s, 2, &mo) || *s++ != '-' ||
      !digits(&s, 2, &d))
    return false;
  if (*s != 'T' && *s != 't')
    return false;
  s++;
  if (!digits(&s, 2, &h) || *s++ != ':' || !digits(&s, 2, &mi) || *s++ != ':' ||
      !digits(&s, 2, &se))
    return false;
  if (mo < 1 || mo > 12 || h > 23 || mi > 59 || se > 60)
    return false;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  int maxd = mdays[mo - 1] + (mo == 2 && leap);
  if (d < 1 || d > maxd)
    return false;
  if (*s == '.') {
    s++;
    if (*s < '0' || *s > '9')
      return false;
    while (*s >= '0' && *s <= '9')
      s++;
  }
  if (*s == 'Z' || *s == 'z')
    return s[1] == '\0';
  if (*s != '+' && *s != '-')
    return false;
  s++;
  int oh, om;
  if (!digits(&s, 2, &oh) || *s++ != ':' || !digits(&s, 2, &om))
    return false;
  return *s == '\0' && oh <= 23 && om <= 59;
}

bool hoist_bundle_path_valid(const char *p) {
  size_t n = p ? strlen(p) : 0;
  if (n == 0 || n >= 4096 || p[0] == '/' || p[n - 1] == '/')
    return false;
  const char *c = p;
  for (;;) {
    const char *end = strchrnul(c, '/');
    size_t len = (size_t)(end - c);
    if (len == 0 || len > 255 || (len == 1 && c[0] == '.') ||
        (len == 2 && c[0] == '.' && c[1] == '.'))
      return false;
    if (!*end)
      return true;
    c = end + 1;
  }
}

void hoist_bundle_manifest_free(hoist_bundle_manifest *m) {
  if (!m)
    return;
  free(m->bundle_name);
  free(m->bundle_version);
  free(m->architecture);
  free(m->created_at);
  free(m->toolkit_version);
  free(m->toolkit_commit);
  free(m->libnvc_version);
  free(m->libnvc_commit);
  for (size_t i = 0; i < m->n_files; i++) {
    free(m->files[i].path);
    free(m->files[i].entry_type);
    free(m->files[i].sha256);
    free(m->files[i].target);
  }
  free(m->files);
  free(m);
}

static void manifest_freep(hoist_bundle_manifest **m) { hoist_bundle_manifest_free(*m); }

HOIST_WUR static int missing(hoist_err **err, const char *field) {
  return hoist_err_set(err, HOIST_E_FORMAT, "missing required manifest field: %s", field);
}

/* A non-empty (after trimming white space) string member, copied. */
static char *nonempty_string(json_t *obj, const char *key) {
  json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
  if (!json_is_string(v))
    return NULL;
  const char *s = json_string_value(v);
  if (!*(s + strspn(s, " \t\r\n\f\v")))
    return NULL;
  return hoist_strdup(s);
}

static char *trim_copy(const char *s) {
  s += strspn(s, " \t\r\n\f\v");
  size_t n = strlen(s);
  while (n && strchr(" \t\r\n\f\v", s[n - 1]))
    n--;
  char *r = hoist_malloc0(n + 1);
  memcpy(r, s, n);
  return r;
}

static char *string_or_null(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  return json_is_string(v) ? hoist_strdup(json_string_value(v)) : NULL;
}

int hoist_bundle_manifest_parse(const char *json, size_t len, hoist_bundle_manifest **out,
                                hoist_err **err) {
  json_error_t jerr;
  __attribute__((cleanup(json_decrefp))) json_t *root =
      json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root || !json_is_object(root))
    return hoist_err_set(err, HOIST_E_FORMAT, "malformed manifest.json");
  __attribute__((cleanup(manifest_freep))) hoist_bundle_manifest *m = hoist_malloc0(sizeof *m);

  json_t *sv = json_object_get(root, "schema_version");
  if (!json_is_integer(sv) || json_integer_value(sv) != 1)
    return missing(err, "schema_version");
  m->schema_version = 1;
  if (!(m->bundle_name = nonempty_string(root, "bundle_name")))
    return missing(err, "bundle_name");
  if (!(m->bundle_version = nonempty_string(root, "bundle_version")))
    return missing(err, "bundle_version");
  _cleanup_free_ char *arch = nonempty_string(root, "architecture");
  if (!arch)
    return missing(err, "architecture");
  m->architecture = trim_copy(arch);
  if (!(m->created_at = nonempty_string(root, "created_at")))
    return missing(err, "created_at");

  json_t *comps = json_object_get(root, "components");
  if (!json_is_object(comps))
    return missing(err, "components");
  static const char *const names[] = {"nvidia_container_toolkit", "libnvidia_container"};
  char **slots[2][2] = {{&m->toolkit_version, &m->toolkit_commit},
                        {&m->libnvc_version, &m->libnvc_commit}};
  for (int c = 0; c < 2; c++) {
    json_t *comp = json_object_get(comps, names[c]);
    if (!json_is_object(comp)) {
      char field[64];
      snprintf(field, sizeof field, "components.%s", names[c]);
      return missing(err, field);
    }
    static const char *const keys[] = {"version", "commit"};
    for (int k = 0; k < 2; k++) {
      if (!(*slots[c][k] = nonempty_string(comp, keys[k]))) {
        char field[96];
        snprintf(field, sizeof field, "components.%s.%s", names[c], keys[k]);
        return missing(err, field);
      }
    }
  }

  json_t *files = json_object_get(root, "files");
  if (!json_is_array(files))
    return missing(err, "files");
  m->n_files = json_array_size(files);
  m->files = hoist_calloc(m->n_files, sizeof *m->files);
  for (size_t i = 0; i < m->n_files; i++) {
    json_t *e = json_array_get(files, i);
    if (!json_is_object(e)) {
      char field[48];
      snprintf(field, sizeof field, "files[%zu]", i);
      return missing(err, field);
    }
    hoist_bundle_file *f = &m->files[i];
    f->path = string_or_null(e, "path");
    f->entry_type = string_or_null(e, "entry_type");
    f->sha256 = string_or_null(e, "sha256");
    f->target = string_or_null(e, "target");
    f->has_target = json_object_get(e, "target") != NULL;
    json_t *size = json_object_get(e, "size");
    f->has_size = size != NULL;
    if (json_is_integer(size) && json_integer_value(size) >= 0) {
      f->size_valid = true;
      f->size = (uint64_t)json_integer_value(size);
    }
  }

  if (!hoist_bundle_rfc3339_valid(m->created_at))
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "invalid manifest field created_at: not an RFC 3339 timestamp: %.64s",
                         m->created_at);
  if (!hoist_bundle_name_valid(m->bundle_name))
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "invalid manifest field bundle_name: not a safe path component: %.64s",
                         m->bundle_name);
  *out = steal_pointer(&m);
  return 0;
}

int hoist_bundle_manifest_check_arch(const hoist_bundle_manifest *m, const char *arch,
                                     hoist_err **err) {
  if ((strcmp(m->architecture, "amd64") != 0 && strcmp(m->architecture, "arm64") != 0) ||
      strcmp(m->architecture, arch) != 0)
    return hoist_err_set(err, HOIST_E_FORMAT, "bundle architecture mismatch: expected %s, got %s",
                         arch, m->architecture);
  return 0;
}

static bool lower_hex64(const char *s) {
  if (!s || strlen(s) != 64)
    return false;
  for (int i = 0; i < 64; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return true;
}

int hoist_bundle_manifest_check_entry(const hoist_bundle_manifest *m, size_t i, hoist_err **err) {
  const hoist_bundle_file *f = &m->files[i];
  char field[64];
  if (!f->path || !*(f->path + strspn(f->path, " \t\r\n\f\v"))) {
    snprintf(field, sizeof field, "files[%zu].path", i);
    return missing(err, field);
  }
  if (!hoist_bundle_path_valid(f->path))
    return hoist_err_set(err, HOIST_E_UNSAFE, "invalid manifest-listed payload path: %s", f->path);
  if (!f->entry_type) {
    snprintf(field, sizeof field, "files[%zu].entry_type", i);
    return missing(err, field);
  }
  if (strcmp(f->entry_type, "file") == 0) {
    if (!f->sha256) {
      snprintf(field, sizeof field, "files[%zu].sha256", i);
      return missing(err, field);
    }
    if (!lower_hex64(f->sha256))
      return hoist_err_set(err, HOIST_E_FORMAT, "invalid manifest sha256 (64 lowercase hex): %s",
                           f->path);
    if (!f->has_size) {
      snprintf(field, sizeof field, "files[%zu].size", i);
      return missing(err, field);
    }
    if (!f->size_valid)
      return hoist_err_set(err, HOIST_E_FORMAT,
                           "invalid manifest size (a non-negative integer): %s", f->path);
    return 0;
  }
  if (strcmp(f->entry_type, "symlink") == 0) {
    if (f->has_target && !f->target)
      return hoist_err_set(err, HOIST_E_FORMAT, "invalid manifest symlink target: %s", f->path);
    return 0;
  }
  return hoist_err_set(err, HOIST_E_FORMAT, "unsupported manifest entry_type \"%.32s\": %s",
                       f->entry_type, f->path);
}
