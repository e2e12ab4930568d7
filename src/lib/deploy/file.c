/* The deploy file: a small, strict subset of TOML (see include/hoist/deploy.h
 * and the README's "Incremental deploy"). */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <string.h>

#include "deploy-private.h"
#include "hoist/fs.h"

enum {
  MAX_FILE = 1 << 20,
  MAX_TABLES = 1024,
  MAX_ITEMS = 4096,
  MAX_NAME = 128,
};

/* A component or scope as written, before names are resolved to indexes. */
typedef struct raw_table {
  bool scope;
  int line;
  char *name;
  hoist_strv paths, steps, triggers, aliases, invalidates;
  char *command;
  unsigned seen; /* bit per key */
} raw_table;

typedef struct parser {
  const char *p, *end;
  const char *name;
  int line;
  hoist_err **err;
  raw_table *tables;
  size_t n_tables;
  char *state;
} parser;

static void raw_table_free(raw_table *t) {
  free(t->name);
  free(t->command);
  hoist_strv_clear(&t->paths);
  hoist_strv_clear(&t->steps);
  hoist_strv_clear(&t->triggers);
  hoist_strv_clear(&t->aliases);
  hoist_strv_clear(&t->invalidates);
}

__attribute__((format(printf, 2, 3))) static int fail(parser *ps, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0)
    abort();
  va_end(ap);
  int r = hoist_err_set(ps->err, HOIST_E_FORMAT, "%s:%d: %s", ps->name, ps->line, msg);
  free(msg);
  return r;
}

static void skip_ws(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t'))
    ps->p++;
}

static void skip_comment(parser *ps) {
  if (ps->p < ps->end && *ps->p == '#')
    while (ps->p < ps->end && *ps->p != '\n')
      ps->p++;
}

/* Consumes a line end ("\n", "\r\n") or the end of input; false otherwise. */
static bool eat_newline(parser *ps) {
  if (ps->p >= ps->end)
    return true;
  if (*ps->p == '\r' && ps->p + 1 < ps->end && ps->p[1] == '\n')
    ps->p++;
  if (*ps->p != '\n')
    return false;
  ps->p++;
  ps->line++;
  return true;
}

/* Skips whitespace, comments and line ends (inside arrays). */
static int skip_space_lines(parser *ps) {
  for (;;) {
    skip_ws(ps);
    skip_comment(ps);
    if (ps->p >= ps->end || (*ps->p != '\n' && *ps->p != '\r'))
      return 0;
    if (!eat_newline(ps))
      return fail(ps, "stray carriage return");
  }
}

/* After a value or header: only whitespace and a comment may follow. */
static int end_of_line(parser *ps) {
  skip_ws(ps);
  skip_comment(ps);
  if (!eat_newline(ps)) {
    if (*ps->p == '\r')
      return fail(ps, "stray carriage return");
    if ((unsigned char)*ps->p < 0x20 || *ps->p == 0x7f)
      return fail(ps, "unexpected control character after the value");
    return fail(ps, "unexpected '%c' after the value", *ps->p);
  }
  return 0;
}

static bool bare_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

static int bare_key(parser *ps, char **out) {
  const char *s = ps->p;
  while (ps->p < ps->end && bare_char(*ps->p))
    ps->p++;
  size_t n = (size_t)(ps->p - s);
  if (n == 0)
    return fail(ps, ps->p < ps->end && *ps->p == '"' ? "quoted keys are not supported"
                                                     : "expected a name");
  if (n > MAX_NAME)
    return fail(ps, "name longer than %d characters", MAX_NAME);
  *out = strndup(s, n);
  if (!*out)
    abort();
  return 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static int put_utf8(parser *ps, hoist_buf *b, unsigned long cp) {
  char u[4];
  size_t n;
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0)
    return fail(ps, "invalid unicode escape");
  if (cp < 0x80) {
    u[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    u[0] = (char)(0xC0 | (cp >> 6));
    u[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | (cp >> 12));
    u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    u[0] = (char)(0xF0 | (cp >> 18));
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  return hoist_buf_append(b, u, n, ps->err);
}

/* A "basic" string with escapes or a 'literal' one, on one line. */
static int string(parser *ps, char **out) {
  char q = *ps->p;
  if (ps->end - ps->p >= 3 && ps->p[1] == q && ps->p[2] == q)
    return fail(ps, "multi-line strings are not supported");
  ps->p++;
  _cleanup_buf_ hoist_buf b = HOIST_BUF_INIT(HOIST_DEPLOY_STRING_MAX);
  for (;;) {
    if (ps->p >= ps->end || *ps->p == '\n' || *ps->p == '\r')
      return fail(ps, "unterminated string");
    char c = *ps->p++;
    if (c == q)
      break;
    if ((unsigned char)c < 0x20 && c != '\t')
      return fail(ps, "control character in a string");
    if (c == 0x7f)
      return fail(ps, "control character in a string");
    if (c != '\\' || q == '\'') {
      if (hoist_buf_append(&b, &c, 1, ps->err) < 0)
        return fail(ps, "string too long");
      continue;
    }
    if (ps->p >= ps->end)
      return fail(ps, "unterminated string");
    char e = *ps->p++;
    const char *rep = NULL;
    switch (e) {
    case '"':
      rep = "\"";
      break;
    case '\\':
      rep = "\\";
      break;
    case 'n':
      rep = "\n";
      break;
    case 't':
      rep = "\t";
      break;
    case 'r':
      rep = "\r";
      break;
    case 'b':
      rep = "\b";
      break;
    case 'f':
      rep = "\f";
      break;
    case 'u':
    case 'U': {
      int digits = e == 'u' ? 4 : 8;
      unsigned long cp = 0;
      for (int i = 0; i < digits; i++) {
        int h = ps->p < ps->end ? hexval(*ps->p) : -1;
        if (h < 0)
          return fail(ps, "invalid unicode escape");
        cp = cp * 16 + (unsigned long)h;
        ps->p++;
      }
      if (put_utf8(ps, &b, cp) < 0)
        return fail(ps, "string too long");
      continue;
    }
    default:
      return fail(ps, "invalid escape '\\%c'", e);
    }
    if (hoist_buf_append(&b, rep, 1, ps->err) < 0)
      return fail(ps, "string too long");
  }
  *out = hoist_buf_steal(&b);
  return 0;
}

static int string_value(parser *ps, char **out) {
  if (ps->p < ps->end && (*ps->p == '"' || *ps->p == '\''))
    return string(ps, out);
  return fail(ps, "expected a string");
}

static int array_value(parser *ps, hoist_strv *out) {
  if (ps->p >= ps->end || *ps->p != '[')
    return fail(ps, "expected an array of strings");
  ps->p++;
  for (;;) {
    if (skip_space_lines(ps) < 0)
      return -HOIST_E_FORMAT;
    if (ps->p >= ps->end)
      return fail(ps, "unterminated array");
    if (*ps->p == ']') {
      ps->p++;
      return 0;
    }
    if (out->n >= MAX_ITEMS)
      return fail(ps, "more than %d items in an array", MAX_ITEMS);
    char *s = NULL;
    if (*ps->p != '"' && *ps->p != '\'')
      return fail(ps, "expected a string in the array");
    if (string(ps, &s) < 0)
      return -HOIST_E_FORMAT;
    hoist_strv_push(out, s);
    if (skip_space_lines(ps) < 0)
      return -HOIST_E_FORMAT;
    if (ps->p < ps->end && *ps->p == ',') {
      ps->p++;
      continue;
    }
    if (ps->p < ps->end && *ps->p == ']') {
      ps->p++;
      return 0;
    }
    return fail(ps, "expected ',' or ']' in the array");
  }
}

static int header(parser *ps) {
  ps->p++;
  if (ps->p < ps->end && *ps->p == '[')
    return fail(ps, "arrays of tables are not supported");
  skip_ws(ps);
  _cleanup_free_ char *kind = NULL;
  _cleanup_free_ char *name = NULL;
  if (bare_key(ps, &kind) < 0)
    return -HOIST_E_FORMAT;
  bool scope = strcmp(kind, "scope") == 0;
  if (!scope && strcmp(kind, "component") != 0)
    return fail(ps, "unknown table [%s] (component.NAME or scope.NAME)", kind);
  skip_ws(ps);
  if (ps->p >= ps->end || *ps->p != '.')
    return fail(ps, "expected [%s.NAME]", kind);
  ps->p++;
  skip_ws(ps);
  if (bare_key(ps, &name) < 0)
    return -HOIST_E_FORMAT;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == '.')
    return fail(ps, "nested tables are not supported");
  if (ps->p >= ps->end || *ps->p != ']')
    return fail(ps, "expected ']'");
  ps->p++;
  for (size_t i = 0; i < ps->n_tables; i++)
    if (ps->tables[i].scope == scope && strcmp(ps->tables[i].name, name) == 0)
      return fail(ps, "duplicate table [%s.%s] (first at line %d)", kind, name, ps->tables[i].line);
  if (ps->n_tables >= MAX_TABLES)
    return fail(ps, "more than %d tables", MAX_TABLES);
  raw_table *nt = hoist_reallocarray(ps->tables, ps->n_tables + 1, sizeof *nt);
  ps->tables = nt;
  nt[ps->n_tables++] = (raw_table){.scope = scope, .line = ps->line, .name = steal_pointer(&name)};
  return end_of_line(ps);
}

static int key_value(parser *ps) {
  _cleanup_free_ char *key = NULL;
  if (bare_key(ps, &key) < 0)
    return -HOIST_E_FORMAT;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == '.')
    return fail(ps, "dotted keys are not supported");
  if (ps->p >= ps->end || *ps->p != '=')
    return fail(ps, "expected '=' after %s", key);
  ps->p++;
  skip_ws(ps);
  raw_table *t = ps->n_tables ? &ps->tables[ps->n_tables - 1] : NULL;
  int r;
  if (!t) {
    if (strcmp(key, "state") != 0)
      return fail(ps, "unknown top-level key '%s' (state)", key);
    if (ps->state)
      return fail(ps, "duplicate key 'state'");
    r = string_value(ps, &ps->state);
  } else {
    static const char *const component_keys[] = {"paths", "steps", "triggers", "aliases", NULL};
    static const char *const scope_keys[] = {"command", "invalidates", NULL};
    const char *const *keys = t->scope ? scope_keys : component_keys;
    int k = -1;
    for (int i = 0; keys[i]; i++)
      if (strcmp(keys[i], key) == 0)
        k = i;
    if (k < 0)
      return fail(ps, "%s %s: unknown key '%s' (%s)", t->scope ? "scope" : "component", t->name,
                  key, t->scope ? "command, invalidates" : "paths, steps, triggers, aliases");
    if (t->seen & (1u << k))
      return fail(ps, "%s %s: duplicate key '%s'", t->scope ? "scope" : "component", t->name, key);
    t->seen |= 1u << k;
    if (t->scope)
      r = k == 0 ? string_value(ps, &t->command) : array_value(ps, &t->invalidates);
    else {
      hoist_strv *v[] = {&t->paths, &t->steps, &t->triggers, &t->aliases};
      r = array_value(ps, v[k]);
    }
  }
  if (r < 0)
    return r;
  return end_of_line(ps);
}

/* A pattern is relative, '/'-separated, without empty, "." or ".."
 * components. */
static bool pattern_safe(const char *p) {
  if (!*p || *p == '/')
    return false;
  for (const char *s = p; *s;) {
    const char *e = strchrnul(s, '/');
    size_t n = (size_t)(e - s);
    if (n == 0 && *e)
      return false;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
      return false;
    s = *e ? e + 1 : e;
  }
  return true;
}

long hoist_deploy_file_find(const hoist_deploy_file *f, const char *name) {
  for (size_t i = 0; i < f->n_components; i++) {
    const hoist_deploy_component *c = &f->components[i];
    if (strcmp(c->name, name) == 0)
      return (long)i;
    for (size_t j = 0; j < c->n_aliases; j++)
      if (strcmp(c->aliases[j], name) == 0)
        return (long)i;
  }
  return -1;
}

static int resolve(parser *ps, const hoist_deploy_file *f, const raw_table *t,
                   const hoist_strv *names, const char *what, size_t **out, size_t *n) {
  *out = hoist_malloc0((names->n ? names->n : 1) * sizeof **out);
  *n = 0;
  for (size_t i = 0; i < names->n; i++) {
    long k = hoist_deploy_file_find(f, names->v[i]);
    ps->line = t->line;
    if (k < 0)
      return fail(ps, "%s %s: %s unknown component '%s'", t->scope ? "scope" : "component", t->name,
                  what, names->v[i]);
    bool dup = false;
    for (size_t j = 0; j < *n; j++)
      dup |= (*out)[j] == (size_t)k;
    if (!dup)
      (*out)[(*n)++] = (size_t)k;
  }
  return 0;
}

/* Moves v's array (NULL when empty) and count out; v is left empty. */
static void steal_strv(hoist_strv *v, char ***out, size_t *n) {
  *out = v->v;
  *n = v->n;
  *v = (hoist_strv)HOIST_STRV_INIT;
}

/* Builds the file from the raw tables: names checked, references
 * resolved. */
static int build(parser *ps, hoist_deploy_file *f) {
  size_t nc = 0, ns = 0, n_aliases = 0;
  for (size_t i = 0; i < ps->n_tables; i++)
    ps->tables[i].scope ? ns++ : nc++;
  f->components = hoist_calloc(nc ? nc : 1, sizeof *f->components);
  f->scopes = hoist_calloc(ns ? ns : 1, sizeof *f->scopes);
  /* names first, so triggers may name a component declared later */
  for (size_t i = 0; i < ps->n_tables; i++) {
    raw_table *t = &ps->tables[i];
    ps->line = t->line;
    if (t->scope)
      continue;
    if (!(t->seen & 1) || t->paths.n == 0)
      return fail(ps, "component %s: needs paths", t->name);
    for (size_t j = 0; j < t->paths.n; j++) {
      char *p = t->paths.v[j];
      size_t n = strlen(p);
      while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
      if (!pattern_safe(p))
        return fail(ps, "component %s: unsafe path pattern '%s'", t->name, p);
    }
    for (size_t j = 0; j < t->steps.n; j++)
      if (!*t->steps.v[j])
        return fail(ps, "component %s: empty step", t->name);
    if (hoist_deploy_file_find(f, t->name) >= 0)
      return fail(ps, "component %s: name is already used", t->name);
    hoist_deploy_component *c = &f->components[f->n_components++];
    c->name = hoist_strdup(t->name);
    steal_strv(&t->paths, &c->paths, &c->n_paths);
    steal_strv(&t->steps, &c->steps, &c->n_steps);
    n_aliases += t->aliases.n;
    if (n_aliases > MAX_ITEMS)
      return fail(ps, "more than %d aliases", MAX_ITEMS);
    c->aliases = hoist_calloc(t->aliases.n ? t->aliases.n : 1, sizeof *c->aliases);
    for (size_t j = 0; j < t->aliases.n; j++) {
      const char *a = t->aliases.v[j];
      if (!*a || strlen(a) > MAX_NAME)
        return fail(ps, "component %s: invalid alias '%s'", t->name, a);
      for (const char *s = a; *s; s++)
        if (!bare_char(*s))
          return fail(ps, "component %s: invalid alias '%s'", t->name, a);
      if (hoist_deploy_file_find(f, a) >= 0)
        return fail(ps, "component %s: alias '%s' is already used", t->name, a);
      c->aliases[c->n_aliases++] = steal_pointer(&t->aliases.v[j]);
    }
  }
  size_t ci = 0;
  for (size_t i = 0; i < ps->n_tables; i++) {
    raw_table *t = &ps->tables[i];
    if (t->scope) {
      ps->line = t->line;
      if (!t->command || !*t->command)
        return fail(ps, "scope %s: needs a command", t->name);
      if (hoist_deploy_file_find(f, t->name) >= 0)
        return fail(ps, "scope %s: name is already used by a component", t->name);
      hoist_deploy_scope *s = &f->scopes[f->n_scopes++];
      s->name = hoist_strdup(t->name);
      s->command = steal_pointer(&t->command);
      if (resolve(ps, f, t, &t->invalidates, "invalidates", &s->invalidates, &s->n_invalidates) < 0)
        return -HOIST_E_FORMAT;
      continue;
    }
    hoist_deploy_component *c = &f->components[ci];
    if (resolve(ps, f, t, &t->triggers, "triggers", &c->triggers, &c->n_triggers) < 0)
      return -HOIST_E_FORMAT;
    for (size_t j = 0; j < c->n_triggers; j++)
      if (c->triggers[j] == ci)
        return fail(ps, "component %s: triggers itself", c->name);
    ci++;
  }
  if (f->n_components == 0) {
    ps->line = 1;
    return fail(ps, "no [component.NAME] table");
  }
  if (ps->state && !*ps->state)
    return fail(ps, "empty state path");
  f->state = steal_pointer(&ps->state);
  return 0;
}

int hoist_deploy_file_parse(const char *text, size_t len, const char *name, hoist_deploy_file **out,
                            hoist_err **err) {
  parser ps = {
      .p = text, .end = text + len, .name = name ? name : "deploy file", .line = 1, .err = err};
  int r = 0;
  if (len > MAX_FILE)
    r = fail(&ps, "larger than %d bytes", MAX_FILE);
  else if (memchr(text, '\0', len))
    r = fail(&ps, "NUL byte in the file");
  while (r == 0 && ps.p < ps.end) {
    skip_ws(&ps);
    skip_comment(&ps);
    if (ps.p >= ps.end)
      break;
    if (*ps.p == '\n' || *ps.p == '\r') {
      if (!eat_newline(&ps))
        r = fail(&ps, "stray carriage return");
      continue;
    }
    r = *ps.p == '[' ? header(&ps) : key_value(&ps);
  }
  hoist_deploy_file *f = hoist_malloc0(sizeof *f);
  if (r == 0)
    r = build(&ps, f);
  for (size_t i = 0; i < ps.n_tables; i++)
    raw_table_free(&ps.tables[i]);
  free(ps.tables);
  free(ps.state);
  if (r < 0) {
    hoist_deploy_file_free(f);
    return r;
  }
  *out = f;
  return 0;
}

int hoist_deploy_file_load(int dirfd, const char *path, hoist_deploy_file **out, hoist_err **err) {
  _cleanup_free_ char *text = NULL;
  size_t len = 0;
  int r = hoist_fs_read_file(dirfd, path, MAX_FILE, &text, &len, err);
  if (r < 0)
    return hoist_err_wrap(err, "deploy file %s", path);
  return hoist_deploy_file_parse(text, len, path, out, err);
}

void hoist_deploy_file_free(hoist_deploy_file *f) {
  if (!f)
    return;
  for (size_t i = 0; i < f->n_components; i++) {
    hoist_deploy_component *c = &f->components[i];
    free(c->name);
    /* arrays of n strings (aliases has no NULL after them) */
    hoist_strv v = {c->aliases, c->n_aliases, 0};
    hoist_strv_clear(&v);
    v = (hoist_strv){c->paths, c->n_paths, 0};
    hoist_strv_clear(&v);
    v = (hoist_strv){c->steps, c->n_steps, 0};
    hoist_strv_clear(&v);
    free(c->triggers);
  }
  for (size_t i = 0; i < f->n_scopes; i++) {
    free(f->scopes[i].name);
    free(f->scopes[i].command);
    free(f->scopes[i].invalidates);
  }
  free(f->components);
  free(f->scopes);
  free(f->state);
  free(f);
}

bool hoist_deploy_path_match(const char *pattern, const char *path) {
  if (!strpbrk(pattern, "*?[")) {
    size_t n = strlen(pattern);
    return strncmp(path, pattern, n) == 0 && (path[n] == '\0' || path[n] == '/');
  }
  return fnmatch(pattern, path, 0) == 0;
}
