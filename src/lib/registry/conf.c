/* containers-registries.conf(5), version 2, and hoist's [hoist] table: see
 * include/hoist/regconf.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "hoist/fs.h"
#include "hoist/regconf.h"
#include "hoist/toml.h"

#define CONF_FILE_MAX (4u << 20)
#define CONF_DIR_MAX 1024 /* drop-ins read from one directory */

enum { PULL_ALL, PULL_DIGEST_ONLY, PULL_TAG_ONLY };

typedef struct mirror {
  char *location;
  bool insecure;
  int pull;
} mirror;

typedef struct reg {
  char *prefix;   /* first, the key slot() finds: as written, or the location */
  char *location; /* NULL: the prefix is where the images are */
  bool insecure, blocked;
  char *verify_key; /* hoist-verify-key: a public key file, or NULL */
  mirror *mirrors;
  size_t n_mirrors;
  char *where; /* "FILE:LINE" of its [[registry]] */
} reg;

typedef struct alias {
  char *name, *value, *where; /* name first, the key slot() finds */
} alias;

struct hoist_regconf {
  bool search_set;
  hoist_strv search;
  char *search_where;
  char *mode; /* short-name-mode, NULL when not set */
  char *prefix, *prefix_where;
  reg *regs;
  size_t n_regs;
  alias *aliases;
  size_t n_aliases;
};

hoist_regconf *hoist_regconf_new(void) { return hoist_malloc0(sizeof(hoist_regconf)); }

static void reg_clear(reg *r) {
  free(r->prefix);
  free(r->location);
  free(r->verify_key);
  free(r->where);
  for (size_t i = 0; i < r->n_mirrors; i++)
    free(r->mirrors[i].location);
  free(r->mirrors);
}

static void alias_clear(alias *a) {
  free(a->name);
  free(a->value);
  free(a->where);
}

void hoist_regconf_free(hoist_regconf *c) {
  if (!c)
    return;
  hoist_strv_clear(&c->search);
  free(c->search_where);
  free(c->mode);
  free(c->prefix);
  free(c->prefix_where);
  for (size_t i = 0; i < c->n_regs; i++)
    reg_clear(&c->regs[i]);
  free(c->regs);
  for (size_t i = 0; i < c->n_aliases; i++)
    alias_clear(&c->aliases[i]);
  free(c->aliases);
  free(c);
}

/* ----------------------------------------------------------- reading */

/* What parse_* share: the file's name for messages. */
typedef struct src {
  const char *name;
  hoist_err **err;
} src;

/* An error at the line of the value at (0 without one). */
#define bad(s, at, ...) hoist_toml_error((s)->err, (s)->name, (at) ? (at)->line : 0, __VA_ARGS__)

/* t's key of kind, or NULL when missing; *out NULL too then. A value of
 * another kind is an error. */
HOIST_WUR static int get(const src *s, const hoist_toml *t, const char *key, hoist_toml_kind kind,
                         const hoist_toml **out) {
  *out = hoist_toml_get(t, key);
  if (*out && (*out)->kind != kind)
    return bad(s, *out, "%s must be a %s, not a %s", key, hoist_toml_kind_name(kind),
               hoist_toml_kind_name((*out)->kind));
  return 0;
}

HOIST_WUR static int get_bool(const src *s, const hoist_toml *t, const char *key, bool *out) {
  const hoist_toml *v = NULL;
  if (get(s, t, key, HOIST_TOML_BOOL, &v) < 0)
    return -HOIST_E_FORMAT;
  *out = v && v->boolean;
  return 0;
}

/* A copy of t's string key, NULL when missing. */
HOIST_WUR static int get_str(const src *s, const hoist_toml *t, const char *key, char **out) {
  const hoist_toml *v = NULL;
  *out = NULL;
  if (get(s, t, key, HOIST_TOML_STRING, &v) < 0)
    return -HOIST_E_FORMAT;
  if (v)
    *out = hoist_strdup(v->str);
  return 0;
}

/* True when the n bytes at p are a registry host: a '.' or ':' in them, or
 * "localhost", as Docker tells a host from a path component. */
static bool host_like(const char *p, size_t n) {
  return memchr(p, '.', n) || memchr(p, ':', n) || (n == 9 && memcmp(p, "localhost", 9) == 0);
}

bool hoist_regconf_is_short(const char *s) {
  const char *slash = strchr(s, '/');
  return !slash || !host_like(s, (size_t)(slash - s));
}

/* A location or prefix: HOST[/PATH], a reference without tag or digest. */
HOIST_WUR static int check_location(const src *s, const hoist_toml *at, const char *what,
                                    const char *loc) {
  size_t host = strcspn(loc, "/");
  _cleanup_free_ char *probe = hoist_asprintf("%s/x", loc);
  _cleanup_ref_ hoist_ref *ref = NULL;
  hoist_err *e = NULL;
  if (!host_like(loc, host) || strchr(loc + host, ':') || strchr(loc, '@') ||
      hoist_ref_parse(probe, &ref, &e) < 0) {
    hoist_err_free(e);
    return bad(s, at, "%s \"%.200s\" is not HOST[/PATH]", what, loc);
  }
  return 0;
}

HOIST_WUR static int parse_mirror(const src *s, const hoist_toml *t, bool digest_only, mirror *m) {
  _cleanup_free_ char *pull = NULL;
  if (get_str(s, t, "location", &m->location) < 0 || get_bool(s, t, "insecure", &m->insecure) < 0 ||
      get_str(s, t, "pull-from-mirror", &pull) < 0)
    return -HOIST_E_FORMAT;
  if (!m->location)
    return bad(s, t, "a [[registry.mirror]] needs a location");
  if (check_location(s, t, "mirror location", m->location) < 0)
    return -HOIST_E_FORMAT;
  m->pull = digest_only ? PULL_DIGEST_ONLY : PULL_ALL;
  if (!pull || strcmp(pull, "all") == 0)
    return 0;
  if (strcmp(pull, "digest-only") == 0)
    m->pull = PULL_DIGEST_ONLY;
  else if (strcmp(pull, "tag-only") == 0)
    m->pull = PULL_TAG_ONLY;
  else
    return bad(s, t, "pull-from-mirror is all, digest-only or tag-only, not \"%.40s\"", pull);
  return 0;
}

HOIST_WUR static int parse_registry(const src *s, const hoist_toml *t, reg *r) {
  r->where = hoist_asprintf("%s:%d", s->name, t->line);
  if (t->kind != HOIST_TOML_TABLE)
    return bad(s, t, "registry must be an array of tables ([[registry]])");
  bool digest_only = false;
  const hoist_toml *mirrors = NULL;
  if (get_str(s, t, "prefix", &r->prefix) < 0 || get_str(s, t, "location", &r->location) < 0 ||
      get_bool(s, t, "insecure", &r->insecure) < 0 || get_bool(s, t, "blocked", &r->blocked) < 0 ||
      get_bool(s, t, "mirror-by-digest-only", &digest_only) < 0 ||
      get_str(s, t, "hoist-verify-key", &r->verify_key) < 0 ||
      get(s, t, "mirror", HOIST_TOML_ARRAY, &mirrors) < 0)
    return -HOIST_E_FORMAT;
  if (!r->prefix && !r->location)
    return bad(s, t, "a [[registry]] needs a prefix or a location");
  if (r->verify_key && r->verify_key[0] != '/')
    return bad(s, t, "hoist-verify-key \"%.200s\" must be an absolute path", r->verify_key);
  if (r->location && check_location(s, t, "location", r->location) < 0)
    return -HOIST_E_FORMAT;
  if (r->prefix && strncmp(r->prefix, "*.", 2) == 0) {
    if (r->location)
      return bad(s, t, "prefix \"%.200s\" is a wildcard: it cannot have a location", r->prefix);
    if (!host_like(r->prefix + 2, strlen(r->prefix + 2)) || strpbrk(r->prefix + 2, "/*@"))
      return bad(s, t, "wildcard prefix \"%.200s\" is not *.DOMAIN", r->prefix);
  } else if (r->prefix && check_location(s, t, "prefix", r->prefix) < 0) {
    return -HOIST_E_FORMAT;
  }
  if (!r->prefix)
    r->prefix = hoist_strdup(r->location);
  if (r->location && strcmp(r->location, r->prefix) == 0)
    free(steal_pointer(&r->location));
  for (size_t i = 0; mirrors && i < mirrors->n; i++) {
    if (mirrors->items[i]->kind != HOIST_TOML_TABLE)
      return bad(s, mirrors, "mirror must be an array of tables ([[registry.mirror]])");
    r->mirrors = hoist_reallocarray(r->mirrors, r->n_mirrors + 1, sizeof *r->mirrors);
    mirror *m = &r->mirrors[r->n_mirrors++];
    *m = (mirror){0};
    if (parse_mirror(s, mirrors->items[i], digest_only, m) < 0)
      return -HOIST_E_FORMAT;
  }
  return 0;
}

HOIST_WUR static int parse_aliases(const src *s, const hoist_toml *t, hoist_regconf *c) {
  for (size_t i = 0; i < t->n; i++) {
    const hoist_toml *v = t->items[i];
    if (v->kind != HOIST_TOML_STRING)
      return bad(s, v, "alias %s must be a string", v->key);
    if (!*v->key || strpbrk(v->key, ":@") || !hoist_regconf_is_short(v->key))
      return bad(s, v, "alias name \"%.200s\" is not a short name without tag", v->key);
    if (hoist_regconf_is_short(v->str) || strchr(v->str, '@') ||
        strchr(v->str + strcspn(v->str, "/"), ':'))
      return bad(s, v, "alias %s: \"%.200s\" is not a qualified name without tag (HOST/PATH)",
                 v->key, v->str);
    if (check_location(s, v, "alias value", v->str) < 0)
      return -HOIST_E_FORMAT;
    c->aliases = hoist_reallocarray(c->aliases, c->n_aliases + 1, sizeof *c->aliases);
    c->aliases[c->n_aliases++] = (alias){hoist_strdup(v->key), hoist_strdup(v->str),
                                         hoist_asprintf("%s:%d", s->name, v->line)};
  }
  return 0;
}

/* The file's own settings into c (empty before). */
HOIST_WUR static int parse_file(const src *s, const hoist_toml *root, hoist_regconf *c) {
  const hoist_toml *search = NULL, *regs = NULL, *aliases = NULL, *own = NULL;
  if (hoist_toml_get(root, "registries"))
    return bad(s, hoist_toml_get(root, "registries"),
               "this is a version 1 file ([registries.search]); hoist reads version 2 "
               "(containers-registries.conf(5))");
  if (get(s, root, "unqualified-search-registries", HOIST_TOML_ARRAY, &search) < 0 ||
      get_str(s, root, "short-name-mode", &c->mode) < 0 ||
      get(s, root, "registry", HOIST_TOML_ARRAY, &regs) < 0 ||
      get(s, root, "aliases", HOIST_TOML_TABLE, &aliases) < 0 ||
      get(s, root, "hoist", HOIST_TOML_TABLE, &own) < 0 ||
      get_str(s, own, "short-name-prefix", &c->prefix) < 0)
    return -HOIST_E_FORMAT;
  if (c->mode && strcmp(c->mode, "enforcing") != 0 && strcmp(c->mode, "permissive") != 0 &&
      strcmp(c->mode, "disabled") != 0)
    return bad(s, hoist_toml_get(root, "short-name-mode"),
               "short-name-mode is enforcing, permissive or disabled, not \"%.40s\"", c->mode);
  if (c->prefix) {
    const hoist_toml *p = hoist_toml_get(own, "short-name-prefix");
    c->prefix_where = hoist_asprintf("%s:%d", s->name, p->line);
    size_t n = strlen(c->prefix);
    while (n > 1 && c->prefix[n - 1] == '/')
      c->prefix[--n] = '\0'; /* "HOST/PATH/" as "HOST/PATH" */
    if (check_location(s, p, "short-name-prefix", c->prefix) < 0)
      return -HOIST_E_FORMAT;
  }
  if (search) {
    c->search_set = true;
    c->search_where = hoist_asprintf("%s:%d", s->name, search->line);
    for (size_t i = 0; i < search->n; i++) {
      const hoist_toml *v = search->items[i];
      if (v->kind != HOIST_TOML_STRING || strchr(v->str, '/') || !host_like(v->str, strlen(v->str)))
        return bad(s, v, "unqualified-search-registries holds hosts (\"quay.io\")");
      hoist_strv_add(&c->search, v->str);
    }
  }
  for (size_t i = 0; regs && i < regs->n; i++) {
    c->regs = hoist_reallocarray(c->regs, c->n_regs + 1, sizeof *c->regs);
    reg *r = &c->regs[c->n_regs++];
    *r = (reg){0};
    if (parse_registry(s, regs->items[i], r) < 0)
      return -HOIST_E_FORMAT;
    for (size_t j = 0; j + 1 < c->n_regs; j++)
      if (strcmp(c->regs[j].prefix, r->prefix) == 0)
        return bad(s, regs->items[i], "a [[registry]] of prefix \"%.200s\" is at %s already",
                   r->prefix, c->regs[j].where);
  }
  return aliases ? parse_aliases(s, aliases, c) : 0;
}

/* The index of key in *arr, an array of *n elements of size bytes whose
 * first member is their char *key; a new last element (not initialized)
 * when no element has it. *old tells which. */
static size_t slot(void **arr, size_t *n, size_t size, const char *key, bool *old) {
  for (size_t j = 0; j < *n; j++)
    if (strcmp(*(char **)((char *)*arr + j * size), key) == 0)
      return *old = true, j;
  *arr = hoist_reallocarray(*arr, *n + 1, size);
  *old = false;
  return (*n)++;
}

/* Moves what add sets into c, over what c had. */
static void merge(hoist_regconf *c, hoist_regconf *add) {
  if (add->search_set) {
    hoist_strv_clear(&c->search);
    c->search = add->search;
    add->search = (hoist_strv)HOIST_STRV_INIT;
    free(c->search_where);
    c->search_where = steal_pointer(&add->search_where);
    c->search_set = true;
  }
  if (add->mode) {
    free(c->mode);
    c->mode = steal_pointer(&add->mode);
  }
  if (add->prefix) {
    free(c->prefix);
    free(c->prefix_where);
    c->prefix = steal_pointer(&add->prefix);
    c->prefix_where = steal_pointer(&add->prefix_where);
  }
  for (size_t i = 0; i < add->n_regs; i++) {
    bool old = false;
    size_t j = slot((void **)&c->regs, &c->n_regs, sizeof *c->regs, add->regs[i].prefix, &old);
    if (old)
      reg_clear(&c->regs[j]);
    c->regs[j] = add->regs[i];
  }
  add->n_regs = 0;
  for (size_t i = 0; i < add->n_aliases; i++) {
    bool old = false;
    size_t j =
        slot((void **)&c->aliases, &c->n_aliases, sizeof *c->aliases, add->aliases[i].name, &old);
    if (old)
      alias_clear(&c->aliases[j]);
    c->aliases[j] = add->aliases[i];
  }
  add->n_aliases = 0;
}

int hoist_regconf_parse(hoist_regconf *c, const char *data, size_t len, const char *name,
                        hoist_err **err) {
  _cleanup_toml_ hoist_toml *root = NULL;
  if (hoist_toml_parse(data, len, name, &root, err) < 0)
    return -HOIST_E_FORMAT;
  _cleanup_regconf_ hoist_regconf *add = hoist_regconf_new();
  src s = {name, err};
  if (parse_file(&s, root, add) < 0)
    return -HOIST_E_FORMAT;
  merge(c, add);
  return 0;
}

/* Reads and merges one file; a missing one is skipped unless required. */
HOIST_WUR static int load_file(hoist_regconf *c, const char *path, bool required, hoist_err **err) {
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  hoist_err *e = NULL;
  if (hoist_fs_read_file(AT_FDCWD, path, CONF_FILE_MAX, &data, &len, &e) < 0) {
    if (!required && (hoist_err_root_code(e) == ENOENT || hoist_err_root_code(e) == ENOTDIR)) {
      hoist_err_free(e);
      return 0;
    }
    if (err && !*err)
      *err = e;
    else
      hoist_err_free(e);
    return hoist_err_wrap(err, "registries configuration %s", path);
  }
  return hoist_regconf_parse(c, data, len, path, err);
}

static int name_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.conf files of dir, in lexical order; a missing dir has none. */
HOIST_WUR static int load_dir(hoist_regconf *c, const char *dir, hoist_err **err) {
  DIR *d = opendir(dir);
  if (!d)
    return errno == ENOENT || errno == ENOTDIR
               ? 0
               : hoist_err_errno(err, errno, "registries configuration directory %s", dir);
  _cleanup_strv_ hoist_strv names = HOIST_STRV_INIT;
  struct dirent *de;
  while ((de = readdir(d)) && names.n < CONF_DIR_MAX) {
    size_t n = strlen(de->d_name);
    if (de->d_name[0] != '.' && n > 5 && strcmp(de->d_name + n - 5, ".conf") == 0)
      hoist_strv_add(&names, de->d_name);
  }
  closedir(d);
  if (names.n)
    qsort(names.v, names.n, sizeof *names.v, name_cmp);
  for (size_t i = 0; i < names.n; i++) {
    _cleanup_free_ char *path = hoist_asprintf("%s/%s", dir, names.v[i]);
    if (load_file(c, path, true, err) < 0)
      return -1;
  }
  return 0;
}

int hoist_regconf_load(const char *file, bool required, const char *const *dirs,
                       hoist_regconf **out, hoist_err **err) {
  _cleanup_regconf_ hoist_regconf *c = hoist_regconf_new();
  if (file && load_file(c, file, required, err) < 0)
    return -1;
  for (size_t i = 0; dirs && dirs[i]; i++)
    if (load_dir(c, dirs[i], err) < 0)
      return -1;
  *out = steal_pointer(&c);
  return 0;
}

/* ------------------------------------------------------- short names */

/* base joined to the tail of a short name ("/base:1" or ":1"), parsed. */
HOIST_WUR static int joined(const char *base, const char *tail, hoist_ref **out, hoist_err **err) {
  size_t n = strlen(base);
  while (n && base[n - 1] == '/')
    n--;
  _cleanup_free_ char *full = hoist_asprintf("%.*s%s", (int)n, base, tail);
  return hoist_ref_parse(full, out, err);
}

int hoist_regconf_resolve(const hoist_regconf *c, const char *s, hoist_ref **out, char **how,
                          hoist_err **err) {
  if (how)
    *how = NULL;
  _cleanup_ref_ hoist_ref *docker = NULL;
  /* the text is checked as a reference first, so messages quote it */
  if (hoist_ref_parse(s, &docker, err) < 0 || !hoist_regconf_is_short(s)) {
    *out = steal_pointer(&docker);
    return *out ? 0 : -HOIST_E_FORMAT;
  }
  size_t name_len = strcspn(s, ":@");
  _cleanup_free_ char *slash_s = hoist_asprintf("/%s", s);
  for (size_t i = c ? c->n_aliases : 0; i-- > 0;) {
    const alias *a = &c->aliases[i];
    if (strlen(a->name) != name_len || strncmp(a->name, s, name_len) != 0)
      continue;
    if (joined(a->value, s + name_len, out, err) < 0)
      return hoist_err_wrap(err, "short name \"%.200s\": alias at %s", s, a->where);
    if (how)
      *how = hoist_asprintf("alias \"%s\" at %s", a->name, a->where);
    return 0;
  }
  if (c && c->prefix && !memchr(s, '/', name_len)) {
    int r = s[name_len] ? joined(c->prefix, slash_s, out, err)
                        : hoist_ref_parse_short(s, c->prefix, out, err);
    if (r < 0)
      return hoist_err_wrap(err, "short name \"%.200s\": short-name-prefix at %s", s,
                            c->prefix_where);
    if (how)
      *how = hoist_asprintf("short-name-prefix at %s", c->prefix_where);
    return 0;
  }
  if (!c || c->search.n == 0) {
    *out = steal_pointer(&docker);
    return 0;
  }
  if (c->search.n == 1) {
    if (joined(c->search.v[0], slash_s, out, err) < 0)
      return hoist_err_wrap(err, "short name \"%.200s\"", s);
    if (how)
      *how = hoist_asprintf("unqualified-search-registries at %s", c->search_where);
    return 0;
  }
  _cleanup_buf_ hoist_buf list = HOIST_BUF_INIT(1u << 16);
  for (size_t i = 0; i < c->search.n; i++) {
    _cleanup_ref_ hoist_ref *cand = NULL;
    if (joined(c->search.v[i], slash_s, &cand, err) < 0)
      return hoist_err_wrap(err, "short name \"%.200s\"", s);
    _cleanup_free_ char *text = hoist_ref_string(cand);
    if (hoist_buf_appendf(&list, err, "%s%s", i ? ", " : "", text) < 0)
      return -1;
  }
  return hoist_err_set(err, EINVAL,
                       "short name \"%.200s\" is ambiguous: it could be %s "
                       "(unqualified-search-registries at %s); give the whole name, or an "
                       "[aliases] entry for it",
                       s, list.data, c->search_where);
}

/* ------------------------------------------------- prefixes, mirrors */

/* The [[registry]] matching text (a normalized reference) best, and how
 * many bytes of text its prefix matched; NULL when none does. */
static const reg *match(const hoist_regconf *c, const hoist_ref *ref, const char *text,
                        size_t *matched) {
  const reg *best = NULL;
  size_t best_len = 0;
  for (size_t i = 0; c && i < c->n_regs; i++) {
    const reg *r = &c->regs[i];
    size_t n = strlen(r->prefix);
    size_t m = 0;
    if (r->prefix[0] == '*') {
      size_t dl = strlen(ref->domain);
      if (dl > n - 1 && strcmp(ref->domain + dl - (n - 1), r->prefix + 1) == 0)
        m = dl;
    } else if (strncmp(text, r->prefix, n) == 0 && strchr("/:@", text[n]) &&
               !(text[n] == ':' && !strchr(r->prefix, '/'))) {
      /* strchr finds the terminating NUL too: the whole text. A ':' right
       * after a host is its port: "example.com" is not "example.com:5000"
       * (containers/image matches it, and says not to rely on that) */
      m = n;
    }
    if (m > best_len) {
      best = r;
      best_len = m;
    }
  }
  *matched = best_len;
  return best;
}

/* text with its first matched bytes replaced by location, parsed. */
HOIST_WUR static int rewrite(const reg *r, const char *location, const char *text, size_t matched,
                             hoist_ref **out, hoist_err **err) {
  _cleanup_free_ char *full = hoist_asprintf("%s%s", location, text + matched);
  if (hoist_ref_parse(full, out, err) < 0)
    return hoist_err_wrap(err, "[[registry]] at %s rewrites %s", r->where, text);
  return 0;
}

/* The registry rule for ref and the text it matched against; blocked is an
 * error. */
HOIST_WUR static int rule(const hoist_regconf *c, const hoist_ref *ref, const char *verb,
                          char **text, size_t *matched, const reg **out, hoist_err **err) {
  *text = hoist_ref_string(ref);
  *out = match(c, ref, *text, matched);
  if (*out && (*out)->blocked)
    return hoist_err_set(err, HOIST_E_UNSAFE,
                         "%s %s: blocked by the [[registry]] of prefix \"%s\" at %s", verb, *text,
                         (*out)->prefix, (*out)->where);
  return 0;
}

void hoist_regconf_refs_free(hoist_ref **refs) {
  for (size_t i = 0; refs && refs[i]; i++)
    hoist_ref_free(refs[i]);
  free(refs);
}

int hoist_regconf_pull_sources(const hoist_regconf *c, const hoist_ref *ref, hoist_ref ***out,
                               hoist_err **err) {
  *out = NULL;
  _cleanup_free_ char *text = NULL;
  size_t matched = 0;
  const reg *r = NULL;
  if (rule(c, ref, "pull", &text, &matched, &r, err) < 0)
    return -1;
  size_t n_m = r ? r->n_mirrors : 0, n = 0;
  hoist_ref **v = hoist_calloc(n_m + 2, sizeof *v);
  for (size_t i = 0; i < n_m; i++) {
    const mirror *m = &r->mirrors[i];
    if ((m->pull == PULL_DIGEST_ONLY && !ref->digest) || (m->pull == PULL_TAG_ONLY && ref->digest))
      continue;
    if (rewrite(r, m->location, text, matched, &v[n], err) < 0) {
      hoist_regconf_refs_free(v);
      return -1;
    }
    n++;
  }
  int ret = r && r->location ? rewrite(r, r->location, text, matched, &v[n], err) : 0;
  if (ret == 0 && !v[n])
    v[n] = hoist_ref_dup(ref);
  if (ret < 0) {
    hoist_regconf_refs_free(v);
    return -1;
  }
  *out = v;
  return 0;
}

int hoist_regconf_push_target(const hoist_regconf *c, const hoist_ref *ref, hoist_ref **out,
                              hoist_err **err) {
  *out = NULL;
  _cleanup_free_ char *text = NULL;
  size_t matched = 0;
  const reg *r = NULL;
  if (rule(c, ref, "push", &text, &matched, &r, err) < 0)
    return -1;
  if (r && r->location)
    return rewrite(r, r->location, text, matched, out, err);
  *out = hoist_ref_dup(ref);
  return 0;
}

const char *hoist_regconf_verify_key(const hoist_regconf *c, const hoist_ref *ref,
                                     const char **where) {
  _cleanup_free_ char *text = hoist_ref_string(ref);
  size_t matched = 0;
  const reg *r = match(c, ref, text, &matched);
  if (where)
    *where = r ? r->where : NULL;
  return r ? r->verify_key : NULL;
}

/* The host of a location (HOST[/PATH]) onto out. */
static void add_host(hoist_strv *out, const char *location) {
  char *h = strndup(location, strcspn(location, "/"));
  if (!h)
    abort();
  hoist_strv_push(out, h);
}

void hoist_regconf_insecure_hosts(const hoist_regconf *c, hoist_strv *out) {
  for (size_t i = 0; c && i < c->n_regs; i++) {
    const reg *r = &c->regs[i];
    if (r->insecure && r->prefix[0] != '*')
      add_host(out, r->location ? r->location : r->prefix);
    for (size_t j = 0; j < r->n_mirrors; j++)
      if (r->mirrors[j].insecure)
        add_host(out, r->mirrors[j].location);
  }
}
