/* The TOML subset of include/hoist/toml.h: a recursive-descent reader over a
 * byte range, building the tree as it goes. */
#include <errno.h>
#include <string.h>

#include "hoist/toml.h"

enum {
  F_HEADER = HOIST_TOML_W_HEADER,
  F_DOTTED = HOIST_TOML_W_DOTTED,
  F_FROZEN = HOIST_TOML_W_INLINE,
  F_TABLES = HOIST_TOML_W_TABLES,
  F_IMPLICIT = HOIST_TOML_W_IMPLICIT,
  F_QUOTED = HOIST_TOML_W_QUOTED_KEY,
};

typedef struct reader {
  const char *p, *end;
  const char *name;
  int line;
  int depth;
  hoist_err **err;
} reader;

int hoist_toml_error(hoist_err **err, const char *name, int line, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return hoist_err_set(err, HOIST_E_FORMAT, "%s:%d: %s", name, line, msg);
}

/* An error at the reader's line. */
#define bad(rd, ...) hoist_toml_error((rd)->err, (rd)->name, (rd)->line, __VA_ARGS__)

static int peek(const reader *rd) { return rd->p < rd->end ? (unsigned char)*rd->p : -1; }

static bool at(const reader *rd, const char *s) {
  size_t n = strlen(s);
  return (size_t)(rd->end - rd->p) >= n && memcmp(rd->p, s, n) == 0;
}

/* Blanks, then a comment up to (not over) the line end. */
static void blanks(reader *rd) {
  while (peek(rd) == ' ' || peek(rd) == '\t')
    rd->p++;
  if (peek(rd) != '#')
    return;
  while (rd->p < rd->end && *rd->p != '\n') {
    unsigned char c = (unsigned char)*rd->p;
    if ((c < 0x20 && c != '\t' && !at(rd, "\r\n")) || c == 0x7f)
      return; /* left for the caller to refuse */
    rd->p++;
  }
}

/* One line end, "\n" or "\r\n"; false when the input is not at one. */
static bool newline(reader *rd) {
  if (at(rd, "\r\n"))
    rd->p++;
  if (peek(rd) != '\n')
    return false;
  rd->p++;
  rd->line++;
  return true;
}

/* Blanks, comments and line ends (between array elements, between lines). */
static void space(reader *rd) {
  do
    blanks(rd);
  while (newline(rd));
}

/* What must end a header or a key/value line. */
HOIST_WUR static int line_end(reader *rd) {
  blanks(rd);
  if (rd->p >= rd->end || newline(rd))
    return 0;
  int c = peek(rd);
  if (c < 0x20 || c == 0x7f)
    return c == '\r' ? bad(rd, "stray carriage return")
                     : bad(rd, "unexpected control character 0x%02x", c);
  return bad(rd, "unexpected '%c' after the value", c);
}

/* ------------------------------------------------------------- nodes */

static hoist_toml *node(hoist_toml_kind kind, int line) {
  hoist_toml *t = hoist_malloc0(sizeof *t);
  t->kind = kind;
  t->line = line;
  return t;
}

void hoist_toml_free(hoist_toml *t) {
  if (!t)
    return;
  for (size_t i = 0; i < t->n; i++)
    hoist_toml_free(t->items[i]);
  free(t->items);
  free(t->key);
  free(t->str);
  free(t);
}

const char *hoist_toml_kind_name(hoist_toml_kind kind) {
  switch (kind) {
  case HOIST_TOML_TABLE:
    return "table";
  case HOIST_TOML_ARRAY:
    return "array";
  case HOIST_TOML_STRING:
    return "string";
  case HOIST_TOML_INT:
    return "integer";
  case HOIST_TOML_BOOL:
    return "boolean";
  }
  return "value";
}

const hoist_toml *hoist_toml_get(const hoist_toml *table, const char *key) {
  if (!table || table->kind != HOIST_TOML_TABLE)
    return NULL;
  for (size_t i = 0; i < table->n; i++)
    if (strcmp(table->items[i]->key, key) == 0)
      return table->items[i];
  return NULL;
}

/* Appends child to parent (a table or an array); takes child either way. */
HOIST_WUR static int adopt(reader *rd, hoist_toml *parent, hoist_toml *child) {
  if (parent->n >= HOIST_TOML_MAX_ITEMS) {
    hoist_toml_free(child);
    return bad(rd, "more than %d items in one %s", HOIST_TOML_MAX_ITEMS,
               hoist_toml_kind_name(parent->kind));
  }
  parent->items = hoist_reallocarray(parent->items, parent->n + 1, sizeof *parent->items);
  parent->items[parent->n++] = child;
  return 0;
}

static hoist_toml *member(hoist_toml *table, const char *key) {
  return (hoist_toml *)hoist_toml_get(table, key);
}

/* ----------------------------------------------------------- strings */

/* Appends code point cp as UTF-8. */
HOIST_WUR static int utf8(reader *rd, hoist_buf *b, uint32_t cp) {
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
    return bad(rd, "invalid unicode escape U+%04X", (unsigned)cp);
  unsigned char out[4];
  size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  static const unsigned char lead[5] = {0, 0x00, 0xC0, 0xE0, 0xF0};
  for (size_t i = n - 1; i > 0; i--, cp >>= 6)
    out[i] = (unsigned char)(0x80 | (cp & 0x3F));
  out[0] = (unsigned char)(lead[n] | cp);
  return hoist_buf_append(b, out, n, rd->err) < 0 ? bad(rd, "string too long") : 0;
}

/* An escape after the '\\' of a basic string. */
HOIST_WUR static int escape(reader *rd, hoist_buf *b) {
  static const char from[] = "btnfr\"\\", to[] = "\b\t\n\f\r\"\\";
  int c = peek(rd);
  const char *k = c > 0 ? strchr(from, c) : NULL;
  if (k && *k) {
    rd->p++;
    return hoist_buf_append(b, &to[k - from], 1, rd->err) < 0 ? bad(rd, "string too long") : 0;
  }
  if (c != 'u' && c != 'U')
    return c < 0x20 ? bad(rd, "unterminated escape") : bad(rd, "invalid escape '\\%c'", c);
  rd->p++;
  uint32_t cp = 0;
  for (int i = 0; i < (c == 'u' ? 4 : 8); i++) {
    int h = peek(rd);
    int v = h >= '0' && h <= '9'   ? h - '0'
            : h >= 'a' && h <= 'f' ? h - 'a' + 10
            : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                   : -1;
    if (v < 0)
      return bad(rd, "invalid unicode escape: \\%c needs %d hex digits", c, c == 'u' ? 4 : 8);
    if (cp > 0x10FFFF)
      return bad(rd, "\\U escape out of range");
    cp = cp * 16 + (uint32_t)v;
    rd->p++;
  }
  return utf8(rd, b, cp);
}

/* A string at rd->p: "basic", 'literal', """multi-line""" or '''multi-line'''.
 * Caller frees *out. */
HOIST_WUR static int string(reader *rd, char **out) {
  char q = *rd->p;
  bool multi = at(rd, q == '"' ? "\"\"\"" : "'''");
  rd->p += multi ? 3 : 1;
  if (multi && !newline(rd) && at(rd, "\r"))
    return bad(rd, "stray carriage return");
  _cleanup_buf_ hoist_buf b = HOIST_BUF_INIT(HOIST_TOML_MAX_STRING);
  for (;;) {
    int c = peek(rd);
    if (c < 0)
      return bad(rd, "unterminated string");
    if (c == q && (!multi || at(rd, q == '"' ? "\"\"\"" : "'''"))) {
      rd->p += multi ? 3 : 1;
      /* up to two more quotes right before the closing three are content */
      for (int extra = 0; multi && extra < 2 && peek(rd) == q; extra++, rd->p++)
        if (hoist_buf_append(&b, &q, 1, rd->err) < 0)
          return bad(rd, "string too long");
      break;
    }
    if (c == '\n' || c == '\r') {
      if (!multi)
        return bad(rd, "unterminated string");
      if (!newline(rd))
        return bad(rd, "stray carriage return");
      if (hoist_buf_append(&b, "\n", 1, rd->err) < 0)
        return bad(rd, "string too long");
      continue;
    }
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      return bad(rd, "control character in a string (0x%02x)", c);
    rd->p++;
    if (c == '\\' && q == '"') {
      if (multi && (peek(rd) == ' ' || peek(rd) == '\t' || peek(rd) == '\n' || peek(rd) == '\r')) {
        /* a line-ending backslash: the line end and the blanks after it go */
        const char *save = rd->p;
        while (peek(rd) == ' ' || peek(rd) == '\t')
          rd->p++;
        if (!newline(rd)) {
          rd->p = save;
          return bad(rd, "invalid escape '\\ '");
        }
        space(rd);
        continue;
      }
      if (escape(rd, &b) < 0)
        return -HOIST_E_FORMAT;
      continue;
    }
    char ch = (char)c;
    if (hoist_buf_append(&b, &ch, 1, rd->err) < 0)
      return bad(rd, "string too long");
  }
  if (b.len != strlen(b.data ? b.data : ""))
    return bad(rd, "NUL in a string");
  *out = b.data ? hoist_buf_steal(&b) : hoist_strdup("");
  return 0;
}

/* -------------------------------------------------------------- keys */

static bool bare(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

/* A dotted key "a.'b c'.d" into path (each part owned); bit i of *quoted
 * set when part i was quoted. */
HOIST_WUR static int key_path(reader *rd, hoist_strv *path, uint64_t *quoted) {
  *quoted = 0;
  for (;;) {
    while (peek(rd) == ' ' || peek(rd) == '\t')
      rd->p++;
    int c = peek(rd);
    if (c == '"' || c == '\'') {
      if (at(rd, c == '"' ? "\"\"\"" : "'''"))
        return bad(rd, "a key cannot be a multi-line string");
      char *k = NULL;
      if (string(rd, &k) < 0)
        return -HOIST_E_FORMAT;
      *quoted |= 1ull << (path->n & 63);
      hoist_strv_push(path, k);
    } else if (bare(c)) {
      const char *s = rd->p;
      while (bare(peek(rd)))
        rd->p++;
      if (rd->p - s > HOIST_TOML_MAX_STRING)
        return bad(rd, "key too long");
      char *k = strndup(s, (size_t)(rd->p - s));
      if (!k)
        abort();
      hoist_strv_push(path, k);
    } else {
      return c < 0 || c == '\n' || c == '\r' ? bad(rd, "expected a name (a key)")
                                             : bad(rd, "expected a name (a key), not '%c'", c);
    }
    if (path->n > HOIST_TOML_MAX_DEPTH)
      return bad(rd, "key of more than %d parts", HOIST_TOML_MAX_DEPTH);
    while (peek(rd) == ' ' || peek(rd) == '\t')
      rd->p++;
    if (peek(rd) != '.')
      return 0;
    rd->p++;
  }
}

/* The table key names in t, made when missing (with flag). An array of
 * tables yields its last table. what says in messages which key. */
HOIST_WUR static int descend(reader *rd, hoist_toml *t, const char *key, unsigned flag,
                             hoist_toml **out) {
  hoist_toml *m = member(t, key);
  if (!m) {
    m = node(HOIST_TOML_TABLE, rd->line);
    m->key = hoist_strdup(key);
    m->flags = flag;
    if (adopt(rd, t, m) < 0)
      return -HOIST_E_FORMAT;
  } else if (m->kind == HOIST_TOML_ARRAY && (m->flags & F_TABLES) && m->n) {
    m = m->items[m->n - 1];
  } else if (m->kind != HOIST_TOML_TABLE) {
    return bad(rd, "%s is a %s (line %d), not a table", key, hoist_toml_kind_name(m->kind),
               m->line);
  }
  if (m->flags & F_FROZEN)
    return bad(rd, "%s is an inline table (line %d): it cannot be extended", key, m->line);
  *out = m;
  return 0;
}

/* ------------------------------------------------------------ values */

HOIST_WUR static int value(reader *rd, hoist_toml **out);

/* F_QUOTED when part i of a key was quoted. */
static unsigned quoted_flag(uint64_t quoted, size_t i) {
  return (quoted >> (i & 63)) & 1 ? F_QUOTED : 0;
}

/* key = value into t (the key may be dotted); used by lines and inline tables. */
HOIST_WUR static int key_value(reader *rd, hoist_toml *t) {
  _cleanup_strv_ hoist_strv path = HOIST_STRV_INIT;
  uint64_t quoted = 0;
  if (key_path(rd, &path, &quoted) < 0)
    return -HOIST_E_FORMAT;
  for (size_t i = 0; i + 1 < path.n; i++) {
    hoist_toml *m = member(t, path.v[i]);
    if (m && m->kind == HOIST_TOML_TABLE && !(m->flags & F_DOTTED))
      return bad(rd, "%s is a table defined at line %d: dotted keys cannot extend it", path.v[i],
                 m->line);
    if (descend(rd, t, path.v[i], F_DOTTED | quoted_flag(quoted, i), &t) < 0)
      return -HOIST_E_FORMAT;
  }
  const char *key = path.v[path.n - 1];
  hoist_toml *old = member(t, key);
  if (old)
    return bad(rd, "duplicate key '%s' (first at line %d)", key, old->line);
  if (peek(rd) != '=')
    return bad(rd, "expected '=' after %s", key);
  rd->p++;
  while (peek(rd) == ' ' || peek(rd) == '\t')
    rd->p++;
  hoist_toml *v = NULL;
  if (value(rd, &v) < 0)
    return -HOIST_E_FORMAT;
  v->key = hoist_strdup(key);
  v->flags |= quoted_flag(quoted, path.n - 1);
  return adopt(rd, t, v);
}

HOIST_WUR static int array(reader *rd, hoist_toml *a) {
  rd->p++;
  for (;;) {
    space(rd);
    if (peek(rd) == ']')
      break;
    if (rd->p >= rd->end)
      return bad(rd, "unterminated array");
    hoist_toml *v = NULL;
    if (value(rd, &v) < 0 || adopt(rd, a, v) < 0)
      return -HOIST_E_FORMAT;
    space(rd);
    if (peek(rd) == ',') {
      rd->p++;
      continue;
    }
    if (peek(rd) != ']')
      return rd->p >= rd->end ? bad(rd, "unterminated array") : bad(rd, "expected ',' or ']'");
    break;
  }
  rd->p++;
  return 0;
}

HOIST_WUR static int inline_table(reader *rd, hoist_toml *t) {
  rd->p++;
  while (peek(rd) == ' ' || peek(rd) == '\t')
    rd->p++;
  if (peek(rd) == '}') {
    rd->p++;
    return 0;
  }
  for (;;) {
    if (key_value(rd, t) < 0)
      return -HOIST_E_FORMAT;
    while (peek(rd) == ' ' || peek(rd) == '\t')
      rd->p++;
    if (peek(rd) == '}') {
      rd->p++;
      return 0;
    }
    if (peek(rd) != ',')
      return bad(rd, "expected ',' or '}' in an inline table (it is on one line)");
    rd->p++;
  }
}

/* An integer (the token is all of [0-9A-Za-z_+-.:]); refuses floats and dates. */
HOIST_WUR static int number(reader *rd, int64_t *out) {
  const char *s = rd->p;
  while (rd->p < rd->end && (bare(*rd->p) || *rd->p == '+' || *rd->p == '.' || *rd->p == ':'))
    rd->p++;
  size_t n = (size_t)(rd->p - s);
  char tok[72];
  if (n == 0)
    return bad(rd, "expected a value");
  if (n >= sizeof tok)
    return bad(rd, "number too long");
  const char *d = s;
  bool neg = *d == '-';
  if (*d == '+' || *d == '-')
    d++;
  int base = 10;
  if (d == rd->p)
    return bad(rd, "%.*s is not an integer", (int)n, s);
  if (d[0] == '0' && d + 1 < rd->p && strchr("xob", d[1])) {
    if (d != s)
      return bad(rd, "a sign before %.2s is not allowed", d);
    base = d[1] == 'x' ? 16 : d[1] == 'o' ? 8 : 2;
    d += 2;
  } else if (d[0] == '0' && d + 1 < rd->p) {
    return bad(rd, "%.*s: leading zeros, or a float or date (not supported)", (int)n, s);
  }
  size_t k = 0;
  bool prev_digit = false;
  for (; d < rd->p; d++) {
    if (*d == '_' && prev_digit && d + 1 < rd->p && d[1] != '_') {
      prev_digit = false;
      continue;
    }
    int c = (unsigned char)*d;
    bool ok = base == 16
                  ? ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))
                  : (c >= '0' && c < '0' + base);
    if (!ok)
      return bad(rd, "%.*s is not an integer (floats and dates are not supported)", (int)n, s);
    tok[k++] = (char)c;
    prev_digit = true;
  }
  tok[k] = '\0';
  if (k == 0)
    return bad(rd, "%.*s is not an integer", (int)n, s);
  errno = 0;
  unsigned long long u = strtoull(tok, NULL, base);
  if (errno || u > (unsigned long long)INT64_MAX + (neg ? 1u : 0u))
    return bad(rd, "%.*s does not fit in 64 bits", (int)n, s);
  *out = neg ? (int64_t)(0 - u) : (int64_t)u;
  return 0;
}

HOIST_WUR static int value(reader *rd, hoist_toml **out) {
  if (rd->depth >= HOIST_TOML_MAX_DEPTH)
    return bad(rd, "values nested more than %d deep", HOIST_TOML_MAX_DEPTH);
  int c = peek(rd);
  _cleanup_toml_ hoist_toml *v = NULL;
  int r = 0;
  rd->depth++;
  if (c == '"' || c == '\'') {
    v = node(HOIST_TOML_STRING, rd->line);
    if (at(rd, "\"\"\"") || at(rd, "\'\'\'"))
      v->flags = HOIST_TOML_W_MULTILINE;
    r = string(rd, &v->str);
  } else if (c == '[') {
    v = node(HOIST_TOML_ARRAY, rd->line);
    v->flags = F_FROZEN;
    r = array(rd, v);
  } else if (c == '{') {
    v = node(HOIST_TOML_TABLE, rd->line);
    r = inline_table(rd, v);
    v->flags = F_FROZEN;
  } else if (at(rd, "true") && !bare(rd->p + 4 < rd->end ? rd->p[4] : 0)) {
    v = node(HOIST_TOML_BOOL, rd->line);
    v->boolean = true;
    rd->p += 4;
  } else if (at(rd, "false") && !bare(rd->p + 5 < rd->end ? rd->p[5] : 0)) {
    v = node(HOIST_TOML_BOOL, rd->line);
    rd->p += 5;
  } else if (at(rd, "inf") || at(rd, "nan") || at(rd, "+inf") || at(rd, "-inf") || at(rd, "+nan") ||
             at(rd, "-nan")) {
    r = bad(rd, "floats are not supported");
  } else {
    v = node(HOIST_TOML_INT, rd->line);
    r = number(rd, &v->num);
  }
  rd->depth--;
  if (r < 0)
    return -HOIST_E_FORMAT;
  *out = steal_pointer(&v);
  return 0;
}

/* ----------------------------------------------------------- headers */

/* [a.b] or [[a.b]] at rd->p: *cur becomes the table lines fill next. */
HOIST_WUR static int header(reader *rd, hoist_toml *root, hoist_toml **cur) {
  bool tables = at(rd, "[[");
  rd->p += tables ? 2 : 1;
  _cleanup_strv_ hoist_strv path = HOIST_STRV_INIT;
  uint64_t quoted = 0;
  if (key_path(rd, &path, &quoted) < 0)
    return -HOIST_E_FORMAT;
  if (!at(rd, tables ? "]]" : "]"))
    return bad(rd, "expected '%s' to close the header", tables ? "]]" : "]");
  rd->p += tables ? 2 : 1;
  hoist_toml *t = root;
  for (size_t i = 0; i + 1 < path.n; i++)
    if (descend(rd, t, path.v[i], F_IMPLICIT | quoted_flag(quoted, i), &t) < 0)
      return -HOIST_E_FORMAT;
  const char *key = path.v[path.n - 1];
  hoist_toml *m = member(t, key);
  if (tables) {
    if (!m) {
      m = node(HOIST_TOML_ARRAY, rd->line);
      m->key = hoist_strdup(key);
      m->flags = F_TABLES | quoted_flag(quoted, path.n - 1);
      if (adopt(rd, t, m) < 0)
        return -HOIST_E_FORMAT;
    } else if (m->kind != HOIST_TOML_ARRAY || !(m->flags & F_TABLES)) {
      return bad(rd, "[[%s]]: %s is a %s defined at line %d", key, key,
                 hoist_toml_kind_name(m->kind), m->line);
    }
    hoist_toml *e = node(HOIST_TOML_TABLE, rd->line);
    e->flags = F_HEADER;
    if (adopt(rd, m, e) < 0)
      return -HOIST_E_FORMAT;
    *cur = e;
  } else {
    if (m && (m->kind != HOIST_TOML_TABLE || !(m->flags & F_IMPLICIT))) {
      _cleanup_buf_ hoist_buf name = HOIST_BUF_INIT(1u << 20);
      for (size_t i = 0; i < path.n; i++)
        if (hoist_buf_appendf(&name, NULL, "%s%s", i ? "." : "", path.v[i]) < 0)
          break;
      return bad(rd, "duplicate table [%s] (first at line %d)", name.data, m->line);
    }
    if (m) {
      m->flags = F_HEADER | (m->flags & F_QUOTED);
      m->line = rd->line;
    } else if (descend(rd, t, key, F_HEADER | quoted_flag(quoted, path.n - 1), &m) < 0) {
      return -HOIST_E_FORMAT;
    }
    *cur = m;
  }
  return line_end(rd);
}

int hoist_toml_parse(const char *data, size_t len, const char *name, hoist_toml **out,
                     hoist_err **err) {
  *out = NULL;
  reader rd = {.p = data, .end = data + len, .name = name ? name : "toml", .line = 1, .err = err};
  _cleanup_toml_ hoist_toml *root = node(HOIST_TOML_TABLE, 1);
  root->flags = F_HEADER;
  hoist_toml *cur = root;
  for (;;) {
    space(&rd);
    if (rd.p >= rd.end)
      break;
    int r;
    if (peek(&rd) == '[') {
      r = header(&rd, root, &cur);
    } else if (peek(&rd) == '\r') {
      return bad(&rd, "stray carriage return");
    } else if (peek(&rd) < 0x20 || peek(&rd) == 0x7f) {
      return bad(&rd, "unexpected control character 0x%02x", peek(&rd));
    } else {
      r = key_value(&rd, cur);
      if (r == 0)
        r = line_end(&rd);
    }
    if (r < 0)
      return r;
  }
  *out = steal_pointer(&root);
  return 0;
}
