/* The deploy file: a small, strict subset of TOML (see include/hoist/deploy.h
 * and the README's "Incremental deploy"), read with the TOML reader
 * (toml.h) and held to the subset here. */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <string.h>

#include "deploy-private.h"
#include "hoist/fs.h"
#include "hoist/toml.h"

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

/* An error at ps->line. */
#define fail(ps, ...) hoist_toml_error((ps)->err, (ps)->name, (ps)->line, __VA_ARGS__)

static bool bare_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

/* What the subset leaves out of TOML, refused by name: v at its line. */
HOIST_WUR static int refuse_form(parser *ps, const hoist_toml *v) {
  ps->line = v->line;
  if (v->flags & HOIST_TOML_W_QUOTED_KEY)
    return fail(ps, "quoted keys are not supported");
  if (v->kind == HOIST_TOML_ARRAY && (v->flags & HOIST_TOML_W_TABLES))
    return fail(ps, "arrays of tables are not supported");
  if (v->flags & HOIST_TOML_W_DOTTED)
    return fail(ps, "dotted keys are not supported");
  if (v->flags & HOIST_TOML_W_MULTILINE)
    return fail(ps, "multi-line strings are not supported");
  return 0;
}

/* A string value into *out. */
HOIST_WUR static int string_value(parser *ps, const hoist_toml *v, char **out) {
  ps->line = v->line;
  if (v->kind != HOIST_TOML_STRING)
    return fail(ps, "expected a string");
  if (refuse_form(ps, v) < 0)
    return -HOIST_E_FORMAT;
  *out = hoist_strdup(v->str);
  return 0;
}

HOIST_WUR static int array_value(parser *ps, const hoist_toml *v, hoist_strv *out) {
  ps->line = v->line;
  if (v->kind != HOIST_TOML_ARRAY)
    return fail(ps, "expected an array of strings");
  if (v->n > MAX_ITEMS)
    return fail(ps, "more than %d items in an array", MAX_ITEMS);
  for (size_t i = 0; i < v->n; i++) {
    const hoist_toml *e = v->items[i];
    ps->line = e->line;
    if (e->kind != HOIST_TOML_STRING)
      return fail(ps, "expected a string in the array");
    if (refuse_form(ps, e) < 0)
      return -HOIST_E_FORMAT;
    hoist_strv_add(out, e->str);
  }
  return 0;
}

/* One key of a [component.NAME] or [scope.NAME] table. */
HOIST_WUR static int table_key(parser *ps, raw_table *t, const hoist_toml *v) {
  static const char *const component_keys[] = {"paths", "steps", "triggers", "aliases", NULL};
  static const char *const scope_keys[] = {"command", "invalidates", NULL};
  const char *const *keys = t->scope ? scope_keys : component_keys;
  ps->line = v->line;
  if (v->kind == HOIST_TOML_TABLE && !(v->flags & (HOIST_TOML_W_DOTTED | HOIST_TOML_W_INLINE)))
    return fail(ps, "nested tables are not supported");
  if (refuse_form(ps, v) < 0)
    return -HOIST_E_FORMAT;
  int k = -1;
  for (int i = 0; keys[i]; i++)
    if (strcmp(keys[i], v->key) == 0)
      k = i;
  if (k < 0)
    return fail(ps, "%s %s: unknown key '%s' (%s)", t->scope ? "scope" : "component", t->name,
                v->key, t->scope ? "command, invalidates" : "paths, steps, triggers, aliases");
  t->seen |= 1u << k;
  if (t->scope)
    return k == 0 ? string_value(ps, v, &t->command) : array_value(ps, v, &t->invalidates);
  hoist_strv *dest[] = {&t->paths, &t->steps, &t->triggers, &t->aliases};
  return array_value(ps, v, dest[k]);
}

/* The tables under [component] or [scope] (kind) into ps->tables. */
HOIST_WUR static int tables_of(parser *ps, const hoist_toml *group) {
  const char *kind = group->key;
  ps->line = group->line;
  if (refuse_form(ps, group) < 0)
    return -HOIST_E_FORMAT;
  if (group->kind != HOIST_TOML_TABLE || (group->flags & HOIST_TOML_W_HEADER) ||
      (group->flags & HOIST_TOML_W_INLINE))
    return fail(ps, "expected [%s.NAME]", kind);
  for (size_t i = 0; i < group->n; i++) {
    const hoist_toml *tv = group->items[i];
    ps->line = tv->line;
    if (refuse_form(ps, tv) < 0)
      return -HOIST_E_FORMAT;
    if (tv->kind != HOIST_TOML_TABLE || !(tv->flags & HOIST_TOML_W_HEADER))
      return fail(ps,
                  tv->kind == HOIST_TOML_TABLE ? "nested tables are not supported"
                                               : "expected [%s.NAME]",
                  kind);
    size_t n = strlen(tv->key);
    if (n == 0)
      return fail(ps, "expected a name");
    if (n > MAX_NAME)
      return fail(ps, "name longer than %d characters", MAX_NAME);
    for (size_t j = 0; j < n; j++)
      if (!bare_char(tv->key[j]))
        return fail(ps, "expected a name");
    if (ps->n_tables >= MAX_TABLES)
      return fail(ps, "more than %d tables", MAX_TABLES);
    ps->tables = hoist_reallocarray(ps->tables, ps->n_tables + 1, sizeof *ps->tables);
    raw_table *t = &ps->tables[ps->n_tables++];
    *t = (raw_table){.scope = kind[0] == 's', .line = tv->line, .name = hoist_strdup(tv->key)};
    for (size_t j = 0; j < tv->n; j++)
      if (table_key(ps, t, tv->items[j]) < 0)
        return -HOIST_E_FORMAT;
  }
  return 0;
}

/* The tree's top level: state, [component.NAME] and [scope.NAME] tables.
 * Components and scopes keep the order they were written in, each kind. */
HOIST_WUR static int read_tree(parser *ps, const hoist_toml *root) {
  for (size_t i = 0; i < root->n; i++) {
    const hoist_toml *v = root->items[i];
    ps->line = v->line;
    if (strcmp(v->key, "component") == 0 || strcmp(v->key, "scope") == 0) {
      if (tables_of(ps, v) < 0)
        return -HOIST_E_FORMAT;
    } else if (v->kind == HOIST_TOML_TABLE &&
               (v->flags & (HOIST_TOML_W_HEADER | HOIST_TOML_W_IMPLICIT))) {
      return fail(ps, "unknown table [%s] (component.NAME or scope.NAME)", v->key);
    } else if (strcmp(v->key, "state") != 0) {
      return fail(ps, "unknown top-level key '%s' (state)", v->key);
    } else if (string_value(ps, v, &ps->state) < 0) {
      return -HOIST_E_FORMAT;
    }
  }
  return 0;
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
  parser ps = {.name = name ? name : "deploy file", .line = 1, .err = err};
  _cleanup_toml_ hoist_toml *root = NULL;
  int r = 0;
  if (len > MAX_FILE)
    r = fail(&ps, "larger than %d bytes", MAX_FILE);
  else if (memchr(text, '\0', len))
    r = fail(&ps, "NUL byte in the file");
  else if (hoist_toml_parse(text, len, ps.name, &root, err) < 0)
    r = -HOIST_E_FORMAT;
  else
    r = read_tree(&ps, root);
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
