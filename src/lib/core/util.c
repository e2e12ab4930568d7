#include <string.h>

#include "hoist/core.h"

const char *hoist_version(void) { return HOIST_VERSION; }

char *hoist_strdup(const char *s) {
  char *p = strdup(s ? s : "");
  if (!p)
    abort();
  return p;
}

void *hoist_malloc0(size_t n) {
  void *p = calloc(1, n ? n : 1);
  if (!p)
    abort();
  return p;
}

void *hoist_realloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q)
    abort();
  return q;
}

char *hoist_asprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0)
    abort();
  va_end(ap);
  return s;
}
