/* libFuzzer target: the TOML reader (toml.h), and registries.conf read with
 * it (regconf.h): what a file that loads says of a few names. */
#include <string.h>

#include "hoist/regconf.h"
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
  err = NULL;
  hoist_regconf *c = hoist_regconf_new();
  if (hoist_regconf_parse(c, (const char *)data, size, "fuzz", &err) == 0) {
    static const char by_digest[] =
        "example.com/foo/x@sha256:0123456789012345678901234567890123456789012345678901234567890123";
    const char *const names[] = {"base", "team/app:1", by_digest};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
      hoist_ref *ref = NULL, *dst = NULL, **src = NULL;
      if (hoist_regconf_resolve(c, names[i], &ref, NULL, &err) == 0) {
        if (hoist_regconf_pull_sources(c, ref, &src, &err) == 0 && (!src || !src[0]))
          __builtin_trap(); /* a pull has somewhere to go */
        if (hoist_regconf_push_target(c, ref, &dst, &err) == 0 && !dst)
          __builtin_trap();
      }
      hoist_regconf_refs_free(src);
      hoist_ref_free(dst);
      hoist_ref_free(ref);
      hoist_err_free(err);
      err = NULL;
    }
    hoist_strv hosts = HOIST_STRV_INIT;
    hoist_regconf_insecure_hosts(c, &hosts);
    hoist_strv_clear(&hosts);
  }
  hoist_regconf_free(c);
  hoist_err_free(err);
  return 0;
}
