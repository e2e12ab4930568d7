/* libFuzzer target: a docker archive's manifest.json (transport.h). An
 * accepted document has only clean member names, and its JSON parses again
 * and prints the same bytes. */
#include <string.h>

#include "hoist/transport.h"

static bool clean(const char *name) {
  if (!*name || name[0] == '/' || strstr(name, "//") || name[strlen(name) - 1] == '/')
    return false;
  for (const char *p = name; p; p = strchr(p, '/')) {
    p += *p == '/';
    if (strncmp(p, "..", 2) == 0 && (p[2] == '/' || !p[2]))
      return false;
    if (p[0] == '.' && (p[1] == '/' || !p[1]))
      return false;
  }
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hoist_err *err = NULL;
  hoist_docker_archive_manifest *a = NULL, *b = NULL;
  char *first = NULL, *second = NULL;
  if (hoist_docker_archive_manifest_parse((const char *)data, size, &a, &err) == 0) {
    for (size_t i = 0; i < a->n_images; i++) {
      if (!clean(a->images[i].config))
        __builtin_trap();
      for (size_t j = 0; j < a->images[i].n_layers; j++)
        if (!clean(a->images[i].layers[j]))
          __builtin_trap();
    }
    first = hoist_docker_archive_manifest_json(a);
    if (!first || hoist_docker_archive_manifest_parse(first, strlen(first), &b, &err) < 0)
      __builtin_trap();
    second = hoist_docker_archive_manifest_json(b);
    if (!second || strcmp(first, second) != 0)
      __builtin_trap();
  } else if (!err || !err->msg) {
    __builtin_trap();
  }
  free(first);
  free(second);
  hoist_docker_archive_manifest_free(a);
  hoist_docker_archive_manifest_free(b);
  hoist_err_free(err);
  return 0;
}
