/* libFuzzer target: credential files (Docker config.json, auth.json,
 * Kubernetes .dockerconfigjson secrets). */
#include <string.h>

#include "hoist/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const hosts[] = {"reg", "reg:5000", "docker.io"};
  for (size_t i = 0; i < 3; i++) {
    hoist_err *err = NULL;
    hoist_creds c;
    bool found = false;
    int r = hoist_creds_from_json((const char *)data, size, hosts[i], "team/app", &c, &found, &err);
    if (r == 0 && found && !c.username && !c.identity_token && !c.helper)
      __builtin_trap();
    hoist_creds_clear(&c);
    hoist_err_free(err);
  }
  return 0;
}
