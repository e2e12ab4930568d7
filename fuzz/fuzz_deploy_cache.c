/* libFuzzer target: the deploy stat cache parser (<gitdir>/hoist-deploy.cache). */
#include <string.h>

#include "../src/lib/deploy/deploy-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hoist_deploy_cache_view v;
  if (hoist_deploy_cache_parse(data, size, &v) < 0)
    return 0;
  /* what parsed is read back whole: every name and changed list in bounds */
  for (uint32_t i = 0; i < v.n_comp; i++) {
    hoist_deploy_fingerprint *fp = hoist_malloc0(sizeof *fp);
    hoist_deploy_cache_comp(&v, i, fp);
    if (strlen(fp->hex) != 0 && strlen(fp->hex) != 64)
      __builtin_trap();
    hoist_deploy_fingerprints_free(fp, 1);
  }
  return 0;
}
