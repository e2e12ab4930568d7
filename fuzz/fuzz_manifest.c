/* libFuzzer target: the manifest parser (OCI and Docker schema 2, images and artifacts). An
 * accepted image must emit canonical JSON that parses again and emits the same bytes. */
#include <string.h>

#include "hoist/oci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hoist_err *err = NULL;
  hoist_manifest *a = NULL, *b = NULL;
  char *first = NULL, *second = NULL;
  size_t first_len = 0, second_len = 0;
  if (hoist_manifest_parse((const char *)data, size, &a, &err) == 0 &&
      hoist_manifest_check_image(a, &err) == 0) {
    if (hoist_manifest_to_json(a, &first, &first_len, &err) < 0)
      __builtin_trap();
    if (hoist_manifest_parse(first, first_len, &b, &err) < 0)
      __builtin_trap();
    if (hoist_manifest_to_json(b, &second, &second_len, &err) < 0)
      __builtin_trap();
    if (first_len != second_len || memcmp(first, second, first_len) != 0)
      __builtin_trap();
  }
  (void)hoist_manifest_detect((const char *)data, size);
  free(first);
  free(second);
  hoist_manifest_free(a);
  hoist_manifest_free(b);
  hoist_err_free(err);
  return 0;
}
