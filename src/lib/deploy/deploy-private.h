/* Shared inside the deploy module. */
#ifndef HOIST_DEPLOY_PRIVATE_H
#define HOIST_DEPLOY_PRIVATE_H

#include "hoist/deploy.h"

/* A growable array of owned strings. */
typedef struct hoist_deploy_strv {
  char **v;
  size_t n;
} hoist_deploy_strv;

void hoist_deploy_strv_push(hoist_deploy_strv *v, char *s);
void hoist_deploy_strv_free(hoist_deploy_strv *v);

#endif
