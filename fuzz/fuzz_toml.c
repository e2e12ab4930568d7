/* libFuzzer target: the TOML reader (toml.h), which reads registries.conf
 * and its drop-ins. */
#include <string.h>

#include "hoist/toml.h"

/* Every node of a parsed tree is well formed: tables' members have keys,
 * arrays' elements none, strings hold no NUL, lines are in the text. */
static void check(const hoist_toml *t, bool in_table, int lines) {
  if ((in_table && !t->key) || (!in_table && t->key) || t->line < 1 || t->line > lines)
    __builtin_trap();
  if (t->kind == HOIST_TOML_STRING && !t->str)
    __builtin_trap();
  if (t->kind == HOIST_TOML_TABLE)
    for (size_t i = 0; i < t->n; i++)
      if (hoist_toml_get(t, t->items[i]->key) != t->items[i])
        __builtin_trap(); /* keys are unique */
  for (size_t i = 0; i < t->n; i++)
    check(t->items[i], t->kind == HOIST_TOML_TABLE, lines);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hoist_err *err = NULL;
  hoist_toml *t = NULL;
  int lines = 1;
  for (size_t i = 0; i < size; i++)
    lines += data[i] == '\n';
  if (hoist_toml_parse((const char *)data, size, "fuzz", &t, &err) == 0) {
    if (!t || t->kind != HOIST_TOML_TABLE)
      __builtin_trap();
    for (size_t i = 0; i < t->n; i++)
      check(t->items[i], true, lines);
  } else if (!err || t) {
    __builtin_trap();
  }
  hoist_toml_free(t);
  hoist_err_free(err);
  return 0;
}
