/* Helpers shared by the unit tests. */
#ifndef HOIST_TEST_UTIL_H
#define HOIST_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka needs the headers above first
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "hoist/core.h"

/* Asserts r == 0; on failure prints the error's text. r is evaluated once:
 * assert_ok(hoist_x(...), &err) calls hoist_x once. */
#define assert_ok(r, errp)                                                                         \
  do {                                                                                             \
    __typeof__(r) _r = (r);                                                                        \
    if (_r != 0) {                                                                                 \
      char *_t = hoist_err_text(*(errp));                                                          \
      fail_msg("expected success, got %lld: %s", (long long)_r, _t ? _t : "(no error)");           \
    }                                                                                              \
  } while (0)

/* Asserts that the error text contains needle, then frees the error. */
#define assert_err_contains(errp, needle)                                                          \
  do {                                                                                             \
    assert_non_null(*(errp));                                                                      \
    char *_t = hoist_err_text(*(errp));                                                            \
    if (!strstr(_t, (needle)))                                                                     \
      fail_msg("error \"%s\" does not contain \"%s\"", _t, (needle));                              \
    free(_t);                                                                                      \
    hoist_err_free(*(errp));                                                                       \
    *(errp) = NULL;                                                                                \
  } while (0)

/* Makes a fresh temporary directory; caller frees the path. */
static inline char *test_mkdtemp(void) {
  char *p = strdup("/tmp/hoist-test-XXXXXX");
  if (!p || !mkdtemp(p))
    abort();
  return p;
}

#endif
