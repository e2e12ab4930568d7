/* libFuzzer target: the kubeconfig reader (kube.h), libyaml's tree turned
 * into the configuration of the current context and of a named one. */
#include <string.h>

#include "hoist/kube.h"

static void check(const hoist_kube_config *c) {
  /* what resolves has a server hoist can speak to and a namespace */
  if (!c->server || (strncmp(c->server, "https://", 8) && strncmp(c->server, "http://", 7)))
    __builtin_trap();
  if (!c->namespace || !c->namespace[0])
    __builtin_trap();
  if (c->exec_argv && (!c->exec_argv[0] || !c->exec_api_version))
    __builtin_trap();
  if (!!(c->cert_pem || c->cert_file) != !!(c->key_pem || c->key_file))
    __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *contexts[] = {NULL, "dev"};
  for (size_t i = 0; i < 2; i++) {
    hoist_err *err = NULL;
    hoist_kube_config *c = NULL;
    int r =
        hoist_kube_config_parse((const char *)data, size, "fuzz", "/base", contexts[i], &c, &err);
    if (r == 0) {
      if (!c || err)
        __builtin_trap();
      check(c);
    } else if (!err || c) {
      __builtin_trap();
    }
    hoist_kube_config_free(c);
    hoist_err_free(err);
  }
  return 0;
}
