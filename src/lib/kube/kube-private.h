/* kube: what the module's files share. */
#ifndef HOIST_KUBE_PRIVATE_H
#define HOIST_KUBE_PRIVATE_H

#include <jansson.h>

#include "hoist/core.h"

/* A YAML document as JSON (kubeconfig.c's reader; also for manifests). */
int kube_yaml_to_json(const char *text, size_t len, const char *name, json_t **out,
                      hoist_err **err) HOIST_WUR;

/* A whole file of at most max bytes, NUL-terminated (caller frees). */
int kube_read_file(const char *path, size_t max, char **out, size_t *len,
                   hoist_err **err) HOIST_WUR;

/* s is a DNS-1123 label of at most max characters: lowercase letters, digits
 * and '-', starting and ending with a letter or digit. */
bool kube_name_ok(const char *s, size_t max);

#endif
