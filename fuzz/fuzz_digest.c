/* libFuzzer target: the digest string parser. */
#include <string.h>

#include "hoist/digest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = strndup((const char *)data, size);
  hoist_err *err = NULL;
  const char *hex = NULL;
  if (hoist_digest_parse(s, &hex, &err) == 0 && strlen(hex) != 64)
    __builtin_trap();
  hoist_err_free(err);
  free(s);
  return 0;
}
