/* libFuzzer target: config edit values. The first byte picks the field, the
 * rest is the option's text. A value hoist_config_edit_add accepts must apply
 * to a config and a manifest, and leave documents their parsers take back. */
#include <string.h>

#include "hoist/oci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  hoist_config_field field = (hoist_config_field)(data[0] % (HOIST_CONFIG_AUTHOR + 1));
  char *text = strndup((const char *)data + 1, size - 1);
  if (!text)
    return 0;
  hoist_err *err = NULL;
  hoist_config_edit e = {0};
  if (hoist_config_edit_add(&e, field, text, &err) == 0) {
    hoist_config *c = hoist_config_new(NULL);
    hoist_config *back = NULL;
    hoist_manifest *m = hoist_manifest_new(HOIST_MT_OCI_MANIFEST);
    char *json = NULL;
    size_t len = 0;
    if (hoist_config_edit_apply(&e, c, &err) < 0 ||
        hoist_config_to_json(c, &json, &len, &err) < 0 ||
        hoist_config_parse(json, len, &back, &err) < 0 ||
        hoist_config_edit_annotate(&e, m, &err) < 0)
      __builtin_trap();
    free(json);
    hoist_config_free(back);
    hoist_config_free(c);
    hoist_manifest_free(m);
  }
  hoist_config_edit_clear(&e);
  hoist_err_free(err);
  free(text);
  return 0;
}
