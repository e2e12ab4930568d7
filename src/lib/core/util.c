#include <errno.h>
#include <locale.h>
#include <string.h>

#include "hoist/core.h"

const char *hoist_version(void) { return HOIST_VERSION; }

/* The thread's locale before enter, and the C.UTF-8 one it now uses. */
typedef struct utf8_scope {
  locale_t previous, utf8;
} utf8_scope;

void *hoist_utf8_thread_enter(void) {
  locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
  if (utf8 == (locale_t)0)
    return NULL;
  utf8_scope *s = hoist_malloc0(sizeof *s);
  s->utf8 = utf8;
  s->previous = uselocale(utf8);
  return s;
}

void hoist_utf8_thread_leave(void *previous) {
  utf8_scope *s = previous;
  if (!s)
    return;
  uselocale(s->previous);
  freelocale(s->utf8);
  free(s);
}

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

void *hoist_calloc(size_t n, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes))
    abort();
  return hoist_malloc0(bytes);
}

void *hoist_reallocarray(void *p, size_t n, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes))
    abort();
  return hoist_realloc(p, bytes);
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

bool hoist_size_parse(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || s[0] == '-')
    return false;
  unsigned shift = 0;
  switch (*end) {
  case '\0':
    break;
  case 'k':
  case 'K':
    shift = 10;
    break;
  case 'm':
  case 'M':
    shift = 20;
    break;
  case 'g':
  case 'G':
    shift = 30;
    break;
  case 't':
  case 'T':
    shift = 40;
    break;
  default:
    return false;
  }
  if (*end && end[1] && !(end[1] == 'i' && end[2] == 'B' && !end[3]) && strcmp(end + 1, "B"))
    return false;
  if (v == 0 || (shift && v > (UINT64_MAX >> shift)))
    return false;
  *out = (uint64_t)v << shift;
  return true;
}
