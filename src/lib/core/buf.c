#include <errno.h>
#include <string.h>

#include "hoist/core.h"
#include "hoist/limits.h"

void hoist_buf_init(hoist_buf *b, size_t max) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
}

static size_t buf_max(const hoist_buf *b) { return b->max ? b->max : HOIST_BUF_DEFAULT_MAX; }

HOIST_WUR static int buf_reserve(hoist_buf *b, size_t extra, hoist_err **err) {
  if (extra > buf_max(b) || b->len > buf_max(b) - extra)
    return hoist_err_set(err, HOIST_E_LIMIT, "buffer limit of %zu bytes exceeded", buf_max(b));
  size_t need = b->len + extra + 1;
  if (need <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap *= 2;
  char *p = realloc(b->data, cap);
  if (!p)
    abort();
  b->data = p;
  b->cap = cap;
  return 0;
}

int hoist_buf_append(hoist_buf *b, const void *data, size_t len, hoist_err **err) {
  int r = buf_reserve(b, len, err);
  if (r < 0)
    return r;
  if (len)
    memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
  return 0;
}

int hoist_buf_appendf(hoist_buf *b, hoist_err **err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0)
    abort();
  int r = hoist_buf_append(b, s, (size_t)n, err);
  free(s);
  return r;
}

void hoist_buf_reset(hoist_buf *b) {
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
}

void hoist_buf_free(hoist_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

char *hoist_buf_steal(hoist_buf *b) {
  char *p = b->data ? b->data : hoist_strdup("");
  b->data = NULL;
  b->len = b->cap = 0;
  return p;
}
