/* libFuzzer target: the deploy file parser (hoist-deploy.toml). */
#include <string.h>

#include "hoist/deploy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hoist_err *err = NULL;
  hoist_deploy_file *f = NULL;
  if (hoist_deploy_file_parse((const char *)data, size, "fuzz", &f, &err) == 0) {
    /* what parsed must hold together: names findable, references in range */
    if (f->n_components == 0)
      __builtin_trap();
    for (size_t i = 0; i < f->n_components; i++) {
      const hoist_deploy_component *c = &f->components[i];
      if (hoist_deploy_file_find(f, c->name) != (long)i || c->n_paths == 0)
        __builtin_trap();
      for (size_t j = 0; j < c->n_triggers; j++)
        if (c->triggers[j] >= f->n_components || c->triggers[j] == i)
          __builtin_trap();
      for (size_t j = 0; j < c->n_paths; j++)
        (void)hoist_deploy_path_match(c->paths[j], "a/b/c");
    }
    for (size_t i = 0; i < f->n_scopes; i++)
      for (size_t j = 0; j < f->scopes[i].n_invalidates; j++)
        if (f->scopes[i].invalidates[j] >= f->n_components)
          __builtin_trap();
  } else if (!err) {
    __builtin_trap();
  }
  hoist_deploy_file_free(f);
  hoist_err_free(err);
  return 0;
}
