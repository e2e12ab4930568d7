/* attest: the parsers of the package managers' records. Each reads
 * untrusted bytes, bounded by HOIST_SBOM_RECORD_MAX before it is called;
 * every refusal names the record's path. */
#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <jansson.h>
#include <string.h>

#include "hoist/oci.h"
#include "sbom-private.h"

typedef struct rec {
  hoist_sbom *s;
  const char *path;
  hoist_sbom_origin origin;
  hoist_err **err;
} rec;

#define BAD(rc, ...) hoist_err_set((rc)->err, HOIST_E_FORMAT, __VA_ARGS__)

static int add(rec *rc, const sbom_found *f) {
  return sbom_add_found(rc->s, f, rc->path, rc->origin, rc->err);
}

/* A line of text: [start, start + len) without its line break. */
typedef struct line {
  const char *start;
  size_t len;
} line;

/* The next line of *p (up to end), false at the end; "\r\n" counts as one
 * break. */
static bool next_line(const char **p, const char *end, line *out) {
  if (*p >= end)
    return false;
  const char *nl = memchr(*p, '\n', (size_t)(end - *p));
  const char *stop = nl ? nl : end;
  out->start = *p;
  out->len = (size_t)(stop - *p);
  if (out->len && out->start[out->len - 1] == '\r')
    out->len--;
  *p = nl ? nl + 1 : end;
  return true;
}

static bool blank(const line *l) {
  for (size_t i = 0; i < l->len; i++)
    if (l->start[i] != ' ' && l->start[i] != '\t')
      return false;
  return true;
}

/* The value of a "Key: value" line whose key is key, trimmed, or NULL. */
static char *header_value(const line *l, const char *key) {
  size_t k = strlen(key);
  if (l->len <= k || strncasecmp(l->start, key, k) != 0 || l->start[k] != ':')
    return NULL;
  const char *v = l->start + k + 1, *e = l->start + l->len;
  while (v < e && (*v == ' ' || *v == '\t'))
    v++;
  while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
    e--;
  return strndup(v, (size_t)(e - v));
}

static void set_once(char **slot, char *v) {
  if (!v)
    return;
  if (*slot)
    free(v);
  else
    *slot = v;
}

static int text_only(rec *rc, const char *data, size_t len) {
  return memchr(data, '\0', len) ? BAD(rc, "%s: a NUL byte in a text record", rc->path) : 0;
}

/* ----------------------------------------------------------------- pip */

/* PEP 503: lowercase, runs of "-_." as one "-". */
static char *pep503(const char *name) {
  char *out = hoist_malloc0(strlen(name) + 1), *o = out;
  for (const char *p = name; *p; p++) {
    if (*p == '-' || *p == '_' || *p == '.') {
      if (o == out || o[-1] != '-')
        *o++ = '-';
    } else {
      *o++ = (char)tolower((unsigned char)*p);
    }
  }
  *o = '\0';
  return out;
}

static int pip_metadata(rec *rc, const char *data, size_t len) {
  if (text_only(rc, data, len) < 0)
    return -1;
  _cleanup_free_ char *name = NULL, *version = NULL, *expr = NULL, *license = NULL;
  const char *p = data, *end = data + len;
  line l;
  unsigned n = 0;
  while (next_line(&p, end, &l)) {
    n++;
    if (blank(&l))
      break; /* the body (the description) follows */
    if (l.start[0] == ' ' || l.start[0] == '\t')
      continue; /* a folded header's continuation */
    if (!memchr(l.start, ':', l.len))
      return BAD(rc, "%s: line %u is not a header", rc->path, n);
    set_once(&name, header_value(&l, "Name"));
    set_once(&version, header_value(&l, "Version"));
    set_once(&expr, header_value(&l, "License-Expression"));
    set_once(&license, header_value(&l, "License"));
  }
  if (!name || !*name || !version || !*version)
    return BAD(rc, "%s: no Name or no Version header", rc->path);
  _cleanup_free_ char *norm = pep503(name);
  return add(rc, &(sbom_found){.type = "pypi",
                               .name = norm,
                               .version = version,
                               .display = name,
                               .license = expr ? expr : license});
}

/* ----------------------------------------------------------------- npm */

static const char *json_type_name(const json_t *j) {
  switch (json_typeof(j)) {
  case JSON_OBJECT:
    return "an object";
  case JSON_ARRAY:
    return "an array";
  case JSON_STRING:
    return "a string";
  case JSON_INTEGER:
  case JSON_REAL:
    return "a number";
  case JSON_TRUE:
  case JSON_FALSE:
    return "a boolean";
  default:
    return "null";
  }
}

static json_t *load_json(rec *rc, const char *data, size_t len) {
  json_error_t je;
  json_t *j = json_loadb(data, len, 0, &je);
  if (!j)
    BAD(rc, "%s: line %d: %s", rc->path, je.line, je.text);
  return j;
}

/* member key of o as a string: *out NULL when absent; another type is
 * refused. */
static int opt_string(rec *rc, const json_t *o, const char *where, const char *key,
                      const char **out) {
  json_t *v = json_object_get(o, key);
  *out = NULL;
  if (!v)
    return 0;
  if (!json_is_string(v))
    return BAD(rc, "%s: %s%s\"%s\" is %s, not a string", rc->path, where, *where ? ": " : "", key,
               json_type_name(v));
  *out = json_string_value(v);
  return 0;
}

static int npm_add(rec *rc, const char *name, const char *version, const char *license) {
  const char *slash = strchr(name, '/');
  if (name[0] == '@' ? !slash || slash == name + 1 || !slash[1] || strchr(slash + 1, '/') : !!slash)
    return BAD(rc, "%s: \"%.200s\" is not an npm package name", rc->path, name);
  if (name[0] != '@')
    return add(rc,
               &(sbom_found){.type = "npm", .name = name, .version = version, .license = license});
  _cleanup_free_ char *scope = strndup(name, (size_t)(slash - name));
  return add(rc, &(sbom_found){.type = "npm",
                               .ns = scope,
                               .name = slash + 1,
                               .version = version,
                               .display = name,
                               .license = license});
}

/* A lock file's "license": a string, else nothing ({"type": ...} of old
 * packages is not an expression). */
static const char *npm_license(const json_t *o) {
  json_t *l = json_object_get(o, "license");
  return json_is_string(l) ? json_string_value(l) : NULL;
}

static bool flag(const json_t *o, const char *key) { return json_is_true(json_object_get(o, key)); }

/* lockfileVersion 1: "dependencies", each with its own, recursively. */
static int npm_lock_v1(rec *rc, const json_t *deps, bool hidden, unsigned depth) {
  if (!deps)
    return 0;
  if (!json_is_object(deps))
    return BAD(rc, "%s: \"dependencies\" is %s, not an object", rc->path, json_type_name(deps));
  if (depth >= SBOM_DEPTH_MAX)
    return hoist_err_set(rc->err, HOIST_E_LIMIT,
                         "%s: dependencies nested deeper than %d levels (the SBOM depth limit)",
                         rc->path, SBOM_DEPTH_MAX);
  const char *name;
  json_t *d;
  json_object_foreach((json_t *)deps, name, d) {
    if (!json_is_object(d))
      return BAD(rc, "%s: dependency \"%.200s\" is %s, not an object", rc->path, name,
                 json_type_name(d));
    const char *version;
    if (opt_string(rc, d, name, "version", &version) < 0)
      return -1;
    if (version && !(!hidden && (flag(d, "dev") || flag(d, "optional"))) &&
        npm_add(rc, name, version, npm_license(d)) < 0)
      return -1;
    if (npm_lock_v1(rc, json_object_get(d, "dependencies"), hidden, depth + 1) < 0)
      return -1;
  }
  return 0;
}

/* lockfileVersion 2 and 3: "packages" keyed by their place
 * ("node_modules/a/node_modules/@s/b"); the root ("") and workspaces (no
 * node_modules) are the project, not its dependencies. A package-lock.json
 * also names what --omit=dev left out (dev) and what was not for this
 * platform (optional): those are left to node_modules to say. */
static int npm_lock_packages(rec *rc, const json_t *pkgs, bool hidden) {
  if (!json_is_object(pkgs))
    return BAD(rc, "%s: \"packages\" is %s, not an object", rc->path, json_type_name(pkgs));
  const char *key;
  json_t *d;
  json_object_foreach((json_t *)pkgs, key, d) {
    if (!json_is_object(d))
      return BAD(rc, "%s: package \"%.200s\" is %s, not an object", rc->path, key,
                 json_type_name(d));
    const char *at = NULL;
    for (const char *p = key; (p = strstr(p, "node_modules/")); p++)
      if (p == key || p[-1] == '/')
        at = p + strlen("node_modules/");
    const char *name, *version;
    if (opt_string(rc, d, key, "name", &name) < 0 ||
        opt_string(rc, d, key, "version", &version) < 0)
      return -1;
    if (!*key || !at || !version || flag(d, "link"))
      continue;
    if (!hidden && (flag(d, "dev") || flag(d, "optional") || flag(d, "devOptional")))
      continue;
    if (npm_add(rc, name ? name : at, version, npm_license(d)) < 0)
      return -1;
  }
  return 0;
}

static int npm_lock(rec *rc, const char *data, size_t len, bool hidden) {
  _cleanup_json_ json_t *j = load_json(rc, data, len);
  if (!j)
    return -1;
  if (!json_is_object(j))
    return BAD(rc, "%s: %s, not an object", rc->path, json_type_name(j));
  json_t *v = json_object_get(j, "lockfileVersion");
  if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 3)
    return BAD(rc, "%s: \"lockfileVersion\" is not 1, 2 or 3", rc->path);
  if (json_integer_value(v) == 1)
    return npm_lock_v1(rc, json_object_get(j, "dependencies"), hidden, 0);
  json_t *pkgs = json_object_get(j, "packages");
  return pkgs ? npm_lock_packages(rc, pkgs, hidden) : 0;
}

/* node_modules/[@scope/]name/package.json: the installed package itself. */
static int npm_package(rec *rc, const char *data, size_t len) {
  _cleanup_json_ json_t *j = load_json(rc, data, len);
  if (!j)
    return -1;
  if (!json_is_object(j))
    return BAD(rc, "%s: %s, not an object", rc->path, json_type_name(j));
  const char *name, *version;
  if (opt_string(rc, j, "", "name", &name) < 0 || opt_string(rc, j, "", "version", &version) < 0)
    return -1;
  if (!version)
    return 0; /* not a published package (a test fixture's package.json) */
  _cleanup_free_ char *from_path = NULL;
  if (!name) {
    /* the directory names it: node_modules/NAME/ or node_modules/@S/NAME/ */
    const char *end = strrchr(rc->path, '/'), *start = end;
    while (start > rc->path && start[-1] != '/')
      start--;
    if (*start != '@' && start > rc->path + 1) {
      const char *scope = start - 1;
      while (scope > rc->path && scope[-1] != '/')
        scope--;
      if (*scope == '@')
        start = scope;
    }
    name = from_path = strndup(start, (size_t)(end - start));
  }
  return npm_add(rc, name, version, npm_license(j));
}

/* ------------------------------------------------------------------ Go */

static int go_add(rec *rc, const char *module, const char *version) {
  const char *slash = strrchr(module, '/');
  if (!*module || module[0] == '/' || (slash && !slash[1]))
    return BAD(rc, "%s: \"%.200s\" is not a Go module path", rc->path, module);
  _cleanup_free_ char *ns = slash ? strndup(module, (size_t)(slash - module)) : NULL;
  return add(rc, &(sbom_found){.type = "golang",
                               .ns = ns,
                               .name = slash ? slash + 1 : module,
                               .version = version,
                               .display = module});
}

/* go.sum: "MODULE VERSION[/go.mod] HASH" lines. A module whose tree has a
 * hash was fetched whole (its code is in the build); one with only a
 * "/go.mod" line had its go.mod read while the module graph was pruned, at
 * a version no build uses: it is not listed. */
static int go_sum(rec *rc, const char *data, size_t len) {
  if (text_only(rc, data, len) < 0)
    return -1;
  const char *p = data, *end = data + len;
  line l;
  unsigned n = 0;
  while (next_line(&p, end, &l)) {
    n++;
    if (blank(&l))
      continue;
    _cleanup_free_ char *text = strndup(l.start, l.len);
    char *f[4] = {0}, *save = NULL;
    int k = 0;
    for (char *t = strtok_r(text, " \t", &save); t; t = strtok_r(NULL, " \t", &save))
      f[k < 4 ? k++ : 3] = t;
    if (k != 3)
      return BAD(rc, "%s: line %u is not \"module version hash\"", rc->path, n);
    size_t vl = strlen(f[1]);
    if (vl > 7 && strcmp(f[1] + vl - 7, "/go.mod") == 0)
      continue;
    if (go_add(rc, f[0], f[1]) < 0)
      return -1;
  }
  return 0;
}

/* The module cache's case encoding: "!x" for "X". */
static char *go_unescape(const char *s, size_t len) {
  char *out = hoist_malloc0(len + 1), *o = out;
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '!') {
      if (i + 1 >= len || s[i + 1] < 'a' || s[i + 1] > 'z') {
        free(out);
        return NULL;
      }
      *o++ = (char)(s[++i] - 'a' + 'A');
    } else if (s[i] >= 'A' && s[i] <= 'Z') {
      free(out);
      return NULL;
    } else {
      *o++ = s[i];
    }
  }
  return out;
}

/* cache/download/<module>/@v/<version>.zip, from its path alone: the
 * module's code, fetched (a .info or .mod alone is a version the module
 * graph consulted, not one a build uses). */
static int go_cache(rec *rc) {
  const char *start = strstr(rc->path, "cache/download/") + strlen("cache/download/");
  const char *at = strstr(start, "/@v/");
  const char *file = at + 4, *dot = strrchr(file, '.');
  _cleanup_free_ char *module = go_unescape(start, (size_t)(at - start));
  _cleanup_free_ char *version = go_unescape(file, (size_t)(dot - file));
  if (!module || !version)
    return BAD(rc, "%s: not a module cache path (bad case encoding)", rc->path);
  return go_add(rc, module, version);
}

/* --------------------------------------------------------------- Maven */

static int maven_add(rec *rc, const char *group, const char *artifact, const char *version) {
  _cleanup_free_ char *display = hoist_asprintf("%s:%s", group, artifact);
  return add(
      rc,
      &(sbom_found){
          .type = "maven", .ns = group, .name = artifact, .version = version, .display = display});
}

/* repository/<g/r/o/u/p>/<artifact>/<version>/<artifact>-<version>.<ext>:
 * all from the path. */
static int maven_repo(rec *rc) {
  const char *g = strstr(rc->path, "repository/");
  while (g && g != rc->path && g[-1] != '/')
    g = strstr(g + 1, "repository/");
  g += strlen("repository/");
  const char *file = strrchr(rc->path, '/');
  const char *ver = file - 1, *art;
  while (ver[-1] != '/')
    ver--;
  art = ver - 2;
  while (art[-1] != '/')
    art--;
  _cleanup_free_ char *group = strndup(g, (size_t)(art - 1 - g));
  for (char *c = group; *c; c++)
    if (*c == '/')
      *c = '.';
  _cleanup_free_ char *artifact = strndup(art, (size_t)(ver - 1 - art));
  _cleanup_free_ char *version = strndup(ver, (size_t)(file - ver));
  return maven_add(rc, group, artifact, version);
}

/* The groupId, artifactId and version of a pom.properties. */
static int pom_properties(rec *rc, const char *member, const char *data, size_t len) {
  _cleanup_free_ char *group = NULL, *artifact = NULL, *version = NULL;
  const char *p = data, *end = data + len;
  line l;
  while (next_line(&p, end, &l)) {
    if (l.len == 0 || l.start[0] == '#' || l.start[0] == '!')
      continue;
    const char *eq = memchr(l.start, '=', l.len);
    if (!eq)
      continue;
    size_t k = (size_t)(eq - l.start);
    char **slot = k == 7 && !memcmp(l.start, "groupId", 7)        ? &group
                  : k == 10 && !memcmp(l.start, "artifactId", 10) ? &artifact
                  : k == 7 && !memcmp(l.start, "version", 7)      ? &version
                                                                  : NULL;
    if (slot)
      set_once(slot, strndup(eq + 1, (size_t)(l.start + l.len - eq - 1)));
  }
  if (!group || !*group || !artifact || !*artifact || !version || !*version)
    return BAD(rc, "%s: %s has no groupId, artifactId or version", rc->path, member);
  return maven_add(rc, group, artifact, version);
}

static bool ends_with_props(const char *name) {
  size_t n = strlen(name);
  return n > 15 && strcmp(name + n - 15, "/pom.properties") == 0;
}

/* A jar: the Maven coordinates its META-INF/maven/<g>/<a>/pom.properties
 * give (a shaded jar has several); a jar without any names nothing. */
static int jar(rec *rc, const char *data, size_t len) {
  struct archive *a = archive_read_new();
  if (!a)
    abort();
  int r = 0;
  if (archive_read_support_format_zip(a) != ARCHIVE_OK ||
      archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
    r = BAD(rc, "%s: not a jar: %s", rc->path, archive_error_string(a));
    goto out;
  }
  struct archive_entry *e;
  while (r == 0) {
    int h = archive_read_next_header(a, &e);
    if (h == ARCHIVE_EOF)
      break;
    if (h < ARCHIVE_WARN) {
      r = BAD(rc, "%s: not a jar: %s", rc->path, archive_error_string(a));
      break;
    }
    const char *name = archive_entry_pathname(e);
    if (!name || strncmp(name, "META-INF/maven/", 15) != 0 || !ends_with_props(name))
      continue;
    char buf[65536];
    size_t got = 0;
    for (;;) {
      la_ssize_t n = archive_read_data(a, buf + got, sizeof buf - 1 - got);
      if (n < 0) {
        r = BAD(rc, "%s: %s: %s", rc->path, name, archive_error_string(a));
        break;
      }
      if (n == 0)
        break;
      got += (size_t)n;
      if (got == sizeof buf - 1) {
        r = hoist_err_set(rc->err, HOIST_E_LIMIT, "%s: %s is over %zu bytes", rc->path, name,
                          sizeof buf - 1);
        break;
      }
    }
    buf[got] = '\0';
    if (r == 0)
      r = pom_properties(rc, name, buf, got);
  }
out:
  archive_read_free(a);
  return r;
}

/* ------------------------------------------------------------ composer */

/* vendor/composer/installed.json: an array of packages (Composer 1) or
 * {"packages": [...]} (Composer 2); "license" a list of alternatives. */
static int composer(rec *rc, const char *data, size_t len) {
  _cleanup_json_ json_t *j = load_json(rc, data, len);
  if (!j)
    return -1;
  json_t *pkgs = json_is_object(j) ? json_object_get(j, "packages") : j;
  if (!json_is_array(pkgs))
    return BAD(rc, "%s: neither an array nor an object with a \"packages\" array", rc->path);
  size_t i;
  json_t *d;
  json_array_foreach(pkgs, i, d) {
    char where[32];
    snprintf(where, sizeof where, "package %zu", i);
    if (!json_is_object(d))
      return BAD(rc, "%s: %s is %s, not an object", rc->path, where, json_type_name(d));
    const char *name, *version;
    if (opt_string(rc, d, where, "name", &name) < 0 ||
        opt_string(rc, d, where, "version", &version) < 0)
      return -1;
    const char *slash = name ? strchr(name, '/') : NULL;
    if (!slash || slash == name || !slash[1] || strchr(slash + 1, '/'))
      return BAD(rc, "%s: %s: \"name\" is not vendor/name", rc->path, where);
    if (!version)
      return BAD(rc, "%s: %s: no \"version\"", rc->path, where);
    _cleanup_buf_ hoist_buf lic = HOIST_BUF_INIT(SBOM_FIELD_MAX + 1);
    json_t *l = json_object_get(d, "license"), *e;
    size_t k;
    bool ok = true;
    if (json_is_string(l))
      ok = hoist_buf_appendf(&lic, NULL, "%s", json_string_value(l)) == 0;
    else if (json_is_array(l))
      json_array_foreach(l, k, e) {
        const char *t = json_string_value(e);
        bool compound = t && strchr(t, ' ');
        ok = ok && t &&
             hoist_buf_appendf(&lic, NULL, "%s%s%s%s", k ? " OR " : "", compound ? "(" : "", t,
                               compound ? ")" : "") == 0;
      }
    _cleanup_free_ char *vendor = strndup(name, (size_t)(slash - name));
    if (add(rc, &(sbom_found){.type = "composer",
                              .ns = vendor,
                              .name = slash + 1,
                              .version = version,
                              .display = name,
                              .license = ok && lic.len ? lic.data : NULL}) < 0)
      return -1;
  }
  return 0;
}

/* ------------------------------------------------------------- bundler */

static int gem_add(rec *rc, const char *name, size_t nlen, const char *version, size_t vlen) {
  /* a platform gem's version carries its platform: "1.15.4-x86_64-linux" */
  const char *dash = memchr(version, '-', vlen);
  if (dash)
    vlen = (size_t)(dash - version);
  _cleanup_free_ char *n = strndup(name, nlen), *v = strndup(version, vlen);
  return add(rc, &(sbom_found){.type = "gem", .name = n, .version = v});
}

/* Gemfile.lock: the GEM section's specs, "    name (version)" (four
 * spaces; six are a spec's own dependencies). */
static int gemfile_lock(rec *rc, const char *data, size_t len) {
  if (text_only(rc, data, len) < 0)
    return -1;
  const char *p = data, *end = data + len;
  line l;
  unsigned n = 0;
  bool gem = false, specs = false;
  while (next_line(&p, end, &l)) {
    n++;
    if (l.len == 0)
      continue;
    if (l.start[0] != ' ') {
      gem = l.len == 3 && memcmp(l.start, "GEM", 3) == 0;
      specs = false;
      continue;
    }
    if (!gem)
      continue;
    if (l.len == 8 && memcmp(l.start, "  specs:", 8) == 0) {
      specs = true;
      continue;
    }
    if (!specs || l.len < 5 || memcmp(l.start, "    ", 4) != 0 || l.start[4] == ' ')
      continue;
    const char *name = l.start + 4, *stop = l.start + l.len;
    const char *open = memchr(name, ' ', (size_t)(stop - name));
    if (!open || open == name || open + 2 >= stop || open[1] != '(' || stop[-1] != ')')
      return BAD(rc, "%s: line %u is not \"name (version)\"", rc->path, n);
    if (gem_add(rc, name, (size_t)(open - name), open + 2, (size_t)(stop - 1 - open - 2)) < 0)
      return -1;
  }
  return 0;
}

/* specifications/<name>-<version>.gemspec: the version starts at the first
 * "-" followed by a digit. */
static int gemspec(rec *rc) {
  const char *base = strrchr(rc->path, '/') + 1;
  size_t n = strlen(base) - strlen(".gemspec");
  for (size_t i = 1; i + 1 < n; i++)
    if (base[i] == '-' && isdigit((unsigned char)base[i + 1]))
      return gem_add(rc, base, i, base + i + 1, n - i - 1);
  return BAD(rc, "%s: not <name>-<version>.gemspec", rc->path);
}

/* ------------------------------------------------------------ dpkg, apk */

/* dpkg's status database (or one of status.d's files): paragraphs of
 * "Field: value"; only what is installed ("install ok installed"; a
 * status.d file may not say). */
static int dpkg_status(rec *rc, const char *data, size_t len, bool status_d) {
  if (text_only(rc, data, len) < 0)
    return -1;
  const char *p = data, *end = data + len;
  line l;
  unsigned n = 0, first = 1;
  for (bool more = true; more;) {
    _cleanup_free_ char *pkg = NULL, *version = NULL, *arch = NULL, *status = NULL;
    bool any = false;
    while ((more = next_line(&p, end, &l))) {
      n++;
      if (blank(&l)) {
        if (any)
          break;
        continue;
      }
      if (!any)
        first = n;
      any = true;
      if (l.start[0] == ' ' || l.start[0] == '\t')
        continue;
      if (!memchr(l.start, ':', l.len))
        return BAD(rc, "%s: line %u is not a field", rc->path, n);
      set_once(&pkg, header_value(&l, "Package"));
      set_once(&version, header_value(&l, "Version"));
      set_once(&arch, header_value(&l, "Architecture"));
      set_once(&status, header_value(&l, "Status"));
    }
    if (!any)
      continue;
    if (status ? strcmp(status, "install ok installed") != 0 : !status_d)
      continue;
    if (!pkg || !*pkg || !version || !*version)
      return BAD(rc, "%s: the paragraph at line %u has no Package or no Version", rc->path, first);
    if (add(rc, &(sbom_found){.type = "deb",
                              .ns = "debian",
                              .name = pkg,
                              .version = version,
                              .qual_key = "arch",
                              .qual_value = arch && *arch ? arch : NULL}) < 0)
      return -1;
  }
  return 0;
}

/* apk's lib/apk/db/installed: paragraphs of "K:value" lines (P name,
 * V version, A arch, L license). */
static int apk_installed(rec *rc, const char *data, size_t len) {
  if (text_only(rc, data, len) < 0)
    return -1;
  const char *p = data, *end = data + len;
  line l;
  unsigned n = 0, first = 1;
  for (bool more = true; more;) {
    _cleanup_free_ char *pkg = NULL, *version = NULL, *arch = NULL, *license = NULL;
    bool any = false;
    while ((more = next_line(&p, end, &l))) {
      n++;
      if (l.len == 0) {
        if (any)
          break;
        continue;
      }
      if (!any)
        first = n;
      any = true;
      if (l.len < 2 || l.start[1] != ':')
        return BAD(rc, "%s: line %u is not \"K:value\"", rc->path, n);
      char **slot = l.start[0] == 'P'   ? &pkg
                    : l.start[0] == 'V' ? &version
                    : l.start[0] == 'A' ? &arch
                    : l.start[0] == 'L' ? &license
                                        : NULL;
      if (slot)
        set_once(slot, strndup(l.start + 2, l.len - 2));
    }
    if (!any)
      continue;
    if (!pkg || !*pkg || !version || !*version)
      return BAD(rc, "%s: the package at line %u has no P: or no V:", rc->path, first);
    if (add(rc, &(sbom_found){.type = "apk",
                              .ns = "alpine",
                              .name = pkg,
                              .version = version,
                              .qual_key = "arch",
                              .qual_value = arch && *arch ? arch : NULL,
                              .license = license}) < 0)
      return -1;
  }
  return 0;
}

/* ------------------------------------------------------------ dispatch */

int sbom_parse_record(hoist_sbom *s, sbom_record kind, const char *path, const char *data,
                      size_t len, hoist_sbom_origin origin, hoist_err **err) {
  rec rc = {.s = s, .path = path, .origin = origin, .err = err};
  switch (kind) {
  case REC_PIP_METADATA:
    return pip_metadata(&rc, data, len);
  case REC_NPM_LOCK:
    return npm_lock(&rc, data, len, false);
  case REC_NPM_HIDDEN:
    return npm_lock(&rc, data, len, true);
  case REC_NPM_PACKAGE:
    return npm_package(&rc, data, len);
  case REC_GO_SUM:
    return go_sum(&rc, data, len);
  case REC_GO_CACHE:
    return go_cache(&rc);
  case REC_MAVEN_REPO:
    return maven_repo(&rc);
  case REC_JAR:
    return jar(&rc, data, len);
  case REC_COMPOSER:
    return composer(&rc, data, len);
  case REC_GEMFILE_LOCK:
    return gemfile_lock(&rc, data, len);
  case REC_GEMSPEC:
    return gemspec(&rc);
  case REC_DPKG_STATUS:
    return dpkg_status(&rc, data, len, false);
  case REC_DPKG_STATUS_D:
    return dpkg_status(&rc, data, len, true);
  case REC_APK_INSTALLED:
    return apk_installed(&rc, data, len);
  case REC_NONE:
    break;
  }
  return 0;
}
