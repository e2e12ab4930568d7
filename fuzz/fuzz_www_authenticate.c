/* libFuzzer target: WWW-Authenticate challenges and Link headers, both
 * registry response headers. */
#include <string.h>

#include "hoist/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = strndup((const char *)data, size);
  hoist_err *err = NULL;
  hoist_challenge c;
  if (hoist_challenge_parse(s, &c, &err) == 0) {
    if (!c.scheme || (strcmp(c.scheme, "basic") != 0 && strcmp(c.scheme, "bearer") != 0))
      __builtin_trap();
    if (strcmp(c.scheme, "bearer") == 0 && !c.realm)
      __builtin_trap();
    hoist_challenge_clear(&c);
  }
  hoist_err_free(err);
  err = NULL;
  char *next = NULL;
  if (hoist_link_next(s, &next, &err) == 0 && next && !*next)
    __builtin_trap();
  free(next);
  hoist_err_free(err);
  free(s);
  return 0;
}
