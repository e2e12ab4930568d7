/* The string vector: one copy for every module that collects strings. */
#include <string.h>

#include "hoist/core.h"

void hoist_strv_push(hoist_strv *sv, char *s) {
  /* room for s and the NULL after it */
  if (sv->n + 2 > sv->cap) {
    size_t cap = sv->cap ? sv->cap * 2 : 8;
    sv->v = hoist_reallocarray(sv->v, cap, sizeof *sv->v);
    sv->cap = cap;
  }
  sv->v[sv->n++] = s;
  sv->v[sv->n] = NULL;
}

void hoist_strv_add(hoist_strv *sv, const char *s) { hoist_strv_push(sv, hoist_strdup(s)); }

char **hoist_strv_steal(hoist_strv *sv) {
  char **v = sv->v ? sv->v : hoist_calloc(1, sizeof *v);
  sv->v = NULL;
  sv->n = sv->cap = 0;
  return v;
}

void hoist_strv_clear(hoist_strv *sv) {
  for (size_t i = 0; i < sv->n; i++)
    free(sv->v[i]);
  free(sv->v);
  sv->v = NULL;
  sv->n = sv->cap = 0;
}

void hoist_strfreev(char **v) {
  for (size_t i = 0; v && v[i]; i++)
    free(v[i]);
  free(v);
}
