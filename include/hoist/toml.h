/*
 * toml: a parser of the TOML files hoist reads (registries.conf and its
 * drop-ins), into a tree.
 *
 * What it takes of TOML 1.0: comments; bare, quoted and dotted keys; tables
 * ([a.b]) and arrays of tables ([[a]], nested as [[registry.mirror]]);
 * basic and literal strings, on one line or multi-line; integers (decimal,
 * with '_' between digits, 0x/0o/0b); booleans; arrays over several lines
 * with a trailing comma; inline tables. Floats, dates and times are refused
 * by name, as is anything else the grammar does not allow: a duplicate key
 * or table, a table redefined, a key that extends an inline table. Every
 * error is "NAME:LINE: what is wrong", NAME being what the caller called
 * the text.
 *
 * The tree owns all of its strings; hoist_toml_free frees it whole. Parsing
 * writes nothing and reads only the bytes it is given.
 */
#ifndef HOIST_TOML_H
#define HOIST_TOML_H

#include "hoist/core.h"

#define HOIST_TOML_MAX_DEPTH 32          /* arrays and inline tables inside each other */
#define HOIST_TOML_MAX_ITEMS 4096        /* keys of one table, values of one array */
#define HOIST_TOML_MAX_STRING (64 << 10) /* bytes of one string or key, decoded */

typedef enum {
  HOIST_TOML_TABLE = 1,
  HOIST_TOML_ARRAY = 2, /* a value [..], or an array of tables [[..]] */
  HOIST_TOML_STRING = 3,
  HOIST_TOML_INT = 4,
  HOIST_TOML_BOOL = 5,
} hoist_toml_kind;

typedef struct hoist_toml hoist_toml;
struct hoist_toml {
  hoist_toml_kind kind;
  int line;     /* where the value (or the table's header) was written */
  char *key;    /* its key in the table holding it; NULL for array elements */
  char *str;    /* HOIST_TOML_STRING, NUL-terminated (a NUL inside is refused) */
  int64_t num;  /* HOIST_TOML_INT */
  bool boolean; /* HOIST_TOML_BOOL */
  /* HOIST_TOML_TABLE: its keys' values, in the order written;
   * HOIST_TOML_ARRAY: its elements */
  hoist_toml **items;
  size_t n;
  unsigned flags; /* how it was written: HOIST_TOML_W_* */
};

/* How a node was written (its flags), for readers of a stricter subset that
 * refuse some forms by name. */
enum {
  HOIST_TOML_W_HEADER = 1u << 0,     /* a table named by a [header] */
  HOIST_TOML_W_DOTTED = 1u << 1,     /* a table made by a dotted key (a.b = 1) */
  HOIST_TOML_W_INLINE = 1u << 2,     /* an inline table, or an array value */
  HOIST_TOML_W_TABLES = 1u << 3,     /* an array of [[tables]] */
  HOIST_TOML_W_IMPLICIT = 1u << 4,   /* a table made as the parent of a [header] */
  HOIST_TOML_W_QUOTED_KEY = 1u << 5, /* its key was quoted where it was made */
  HOIST_TOML_W_MULTILINE = 1u << 6,  /* a """ or ''' string */
};

/* Parses len bytes of data (no NUL needed) into a tree whose root is a
 * table. name prefixes the messages ("registries.conf:12: ..."). The caller
 * frees *out with hoist_toml_free. */
HOIST_EXPORT int hoist_toml_parse(const char *data, size_t len, const char *name, hoist_toml **out,
                                  hoist_err **err) HOIST_WUR;

/* The value of key in table, or NULL when it is missing or table is not a
 * table (or NULL). */
HOIST_EXPORT const hoist_toml *hoist_toml_get(const hoist_toml *table, const char *key);

/* "table", "array", "string", "integer", "boolean": for messages. */
HOIST_EXPORT const char *hoist_toml_kind_name(hoist_toml_kind kind);

HOIST_EXPORT void hoist_toml_free(hoist_toml *t);

/* Sets *err to a HOIST_E_FORMAT error "NAME:LINE: message" (the message
 * cut at 1 KiB), as the parser's own are, for readers of the tree that
 * refuse what they find in it. Returns -HOIST_E_FORMAT. */
HOIST_EXPORT int hoist_toml_error(hoist_err **err, const char *name, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline void hoist_toml_freep(hoist_toml **t) { hoist_toml_free(*t); }
#define _cleanup_toml_ __attribute__((cleanup(hoist_toml_freep)))

#endif
