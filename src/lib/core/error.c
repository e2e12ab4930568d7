#include <errno.h>
#include <string.h>

#include "hoist/core.h"

static char *vformat(const char *fmt, va_list ap) {
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0)
    abort();
  return s;
}

static hoist_err *err_new(int code, char *msg, hoist_err *cause) {
  hoist_err *e = hoist_malloc0(sizeof *e);
  e->code = code > 0 ? code : (code < 0 ? -code : EIO);
  e->msg = msg;
  e->cause = cause;
  return e;
}

int hoist_err_set(hoist_err **err, int code, const char *fmt, ...) {
  int c = code > 0 ? code : (code < 0 ? -code : EIO);
  if (!err)
    return -c;
  va_list ap;
  va_start(ap, fmt);
  char *msg = vformat(fmt, ap);
  va_end(ap);
  *err = err_new(c, msg, *err);
  return -c;
}

int hoist_err_errno(hoist_err **err, int errno_value, const char *fmt, ...) {
  int c = errno_value > 0 ? errno_value : (errno_value < 0 ? -errno_value : EIO);
  if (!err)
    return -c;
  va_list ap;
  va_start(ap, fmt);
  char *msg = vformat(fmt, ap);
  va_end(ap);
  char *full = hoist_asprintf("%s: %s", msg, strerror(c));
  free(msg);
  *err = err_new(c, full, *err);
  return -c;
}

int hoist_err_wrap(hoist_err **err, const char *fmt, ...) {
  int c = (err && *err) ? (*err)->code : EIO;
  if (!err)
    return -c;
  va_list ap;
  va_start(ap, fmt);
  char *msg = vformat(fmt, ap);
  va_end(ap);
  *err = err_new(c, msg, *err);
  return -c;
}

void hoist_err_free(hoist_err *err) {
  while (err) {
    hoist_err *next = err->cause;
    free(err->msg);
    free(err);
    err = next;
  }
}

char *hoist_err_text(const hoist_err *err) {
  /* sized first: the text of any chain fits, nothing is cut */
  size_t len = 1;
  for (const hoist_err *e = err; e; e = e->cause)
    len += strlen(e->msg) + (e != err ? 2 : 0);
  char *text = hoist_malloc0(len), *p = text;
  for (const hoist_err *e = err; e; e = e->cause)
    p = stpcpy(e != err ? stpcpy(p, ": ") : p, e->msg);
  return text;
}

int hoist_err_root_code(const hoist_err *err) {
  if (!err)
    return 0;
  while (err->cause)
    err = err->cause;
  return err->code;
}
