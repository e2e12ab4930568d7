/* Helpers shared by the unit tests. */
#ifndef HOIST_TEST_UTIL_H
#define HOIST_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka needs the headers above first
#include <cmocka.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hoist/core.h"
#include "hoist/fs.h"

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

/* The directories test_mkdtemp made, removed when the test program (not a
 * child it forked) exits, whatever each test removed itself. */
__attribute__((unused)) static char *test_tmpdirs[256];
__attribute__((unused)) static size_t test_n_tmpdirs;
__attribute__((unused)) static pid_t test_tmpdirs_owner;

static inline void test_tmpdirs_remove(void) {
  if (getpid() != test_tmpdirs_owner)
    return;
  for (size_t i = 0; i < test_n_tmpdirs; i++) {
    hoist_best_effort(hoist_fs_rm_rf_at(AT_FDCWD, test_tmpdirs[i], NULL));
    free(test_tmpdirs[i]);
  }
  test_n_tmpdirs = 0;
}

/* Makes a fresh temporary directory; caller frees the path. */
static inline char *test_mkdtemp(void) {
  char *p = strdup("/tmp/hoist-test-XXXXXX");
  if (!p || !mkdtemp(p))
    abort();
  if (!test_tmpdirs_owner) {
    test_tmpdirs_owner = getpid();
    atexit(test_tmpdirs_remove);
  }
  if (test_n_tmpdirs < sizeof test_tmpdirs / sizeof test_tmpdirs[0])
    test_tmpdirs[test_n_tmpdirs++] = strdup(p);
  return p;
}

#endif
