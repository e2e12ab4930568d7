/* libFuzzer target: the runtime bundle manifest parser and the per-entry and
 * architecture checks that follow it. */
#include <string.h>

#include "hoist/bundle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hoist_err *err = NULL;
  hoist_bundle_manifest *m = NULL;
  if (hoist_bundle_manifest_parse((const char *)data, size, &m, &err) == 0) {
    if (!m->bundle_name || !hoist_bundle_name_valid(m->bundle_name) ||
        !hoist_bundle_rfc3339_valid(m->created_at))
      __builtin_trap();
    hoist_best_effort(hoist_bundle_manifest_check_arch(m, "amd64", &err));
    hoist_err_free(err);
    err = NULL;
    for (size_t i = 0; i < m->n_files; i++) {
      if (hoist_bundle_manifest_check_entry(m, i, &err) == 0) {
        /* an accepted path is relative and never climbs */
        const char *p = m->files[i].path;
        size_t n = p ? strlen(p) : 0;
        if (!p || !n || p[0] == '/' || strncmp(p, "../", 3) == 0 || strcmp(p, "..") == 0 ||
            strstr(p, "/../") || (n >= 3 && strcmp(p + n - 3, "/..") == 0))
          __builtin_trap();
      }
      hoist_err_free(err);
      err = NULL;
    }
    hoist_bundle_manifest_free(m);
  }
  hoist_err_free(err);
  return 0;
}
