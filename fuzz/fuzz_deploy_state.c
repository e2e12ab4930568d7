/* libFuzzer target: the deploy state file parser (key=value lines). */
#include <string.h>

#include "hoist/deploy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hoist_err *err = NULL;
  hoist_deploy_state *s = NULL;
  if (hoist_deploy_state_parse((const char *)data, size, &s, &err) == 0) {
    /* what parsed formats to text that parses to the same state */
    char *text = hoist_deploy_state_format(s);
    hoist_deploy_state *again = NULL;
    if (hoist_deploy_state_parse(text, strlen(text), &again, &err) < 0 || again->n != s->n)
      __builtin_trap();
    for (size_t i = 0; i < s->n; i++)
      if (strcmp(hoist_deploy_state_get(again, s->keys[i]), s->values[i]) != 0)
        __builtin_trap();
    hoist_deploy_state_free(again);
    free(text);
  }
  hoist_deploy_state_free(s);
  hoist_err_free(err);
  return 0;
}
