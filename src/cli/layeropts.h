/*
 * layeropts: the option parsers of the verbs that write a layer (layer
 * create, append, build, bundle apply and publish): compression, level,
 * SOURCE_DATE_EPOCH, and host paths mapped into the layer.
 */
#ifndef HOIST_CLI_LAYEROPTS_H
#define HOIST_CLI_LAYEROPTS_H

#include "cli.h"
#include "hoist/layer.h"

/* Option parsers (cli_opt_fn). Their dest: */
int cli_opt_compression(const char *verb, const char *arg, void *dest); /* hoist_compression * */
int cli_opt_level(const char *verb, const char *arg, void *dest);       /* int * */
int cli_opt_epoch(const char *verb, const char *arg, void *dest);       /* int64_t *, -1 unset */
/* --compress-threads N, 1 to HOIST_LAYER_MAX_THREADS */
int cli_opt_compress_threads(const char *verb, const char *arg, void *dest); /* int * */

/* An epoch no --source-date-epoch set (-1) from $SOURCE_DATE_EPOCH
 * (cli_env_epoch); 0 or -1 (err set). */
int cli_layer_epoch_default(int64_t *epoch, hoist_err **err);

/* The --map SRC:DEST options of a verb (owned strings). */
typedef struct cli_maps {
  hoist_layer_map v[256];
  size_t n;
} cli_maps;

/* --map SRC:DEST, split at the last ':' (a host path may hold ':'), into a
 * cli_maps. */
int cli_opt_map(const char *verb, const char *arg, void *dest);

void cli_maps_clear(cli_maps *m);
#define _cleanup_maps_ __attribute__((cleanup(cli_maps_clear)))

#endif
