/*
 * bundle: what the commands of `hoist bundle` share between bundle.c
 * (verify, stage, fetch, and the dispatch) and bundle_image.c (apply,
 * publish).
 */
#ifndef HOIST_CLI_BUNDLE_H
#define HOIST_CLI_BUNDLE_H

#include "cli.h"

int cli_bundle_apply(int argc, char **argv);
int cli_bundle_publish(int argc, char **argv);

/* --max-size N (K, M, G suffixes) into a uint64_t (cli_opt_fn). */
int cli_bundle_opt_max_size(const char *verb, const char *arg, void *dest);

/* --max-entries N, N > 0, into a uint64_t (cli_opt_fn). */
int cli_bundle_opt_max_entries(const char *verb, const char *arg, void *dest);

#endif
