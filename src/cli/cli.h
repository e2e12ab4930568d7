/*
 * cli: what every verb file shares. A verb registers itself with
 * HOIST_VERB(name, summary, run); main.c finds all registered verbs, so adding
 * a verb is adding one file (and its line in src/cli/meson.build).
 *
 * A verb's run() parses its arguments, calls libhoist and prints; it returns
 * the process exit code: 0 ok, 1 failure, 2 usage.
 */
#ifndef HOIST_CLI_H
#define HOIST_CLI_H

#include <getopt.h>

#include "hoist/core.h"
#include "hoist/ref.h"

typedef struct cli_verb {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv);
} cli_verb;

#define HOIST_VERB(id, verb_name, verb_summary, fn)                                                \
  static const cli_verb verb_##id                                                                  \
      __attribute__((used, section("hoist_verbs"), aligned(sizeof(void *)))) = {verb_name,         \
                                                                                verb_summary, fn}

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* Prints "hoist <verb>: <error text>" to stderr, frees err, returns 1. */
int cli_fail(const char *verb, hoist_err *err);

/* "90", "90s", "15m", "1h", "2d" -> seconds; false on anything else. */
bool cli_parse_age(const char *text, int64_t *out);

/* 1536 -> "1.5 KiB"; below 1 KiB, "512 B". */
void cli_human_size(double bytes, char out[32]);

/* Prints "hoist <verb>: <message>" and a hint to use --help; returns 2. */
int cli_usage(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses the arguments of a verb whose only operand is an untagged image
 * layout (oci:DIR) and whose options are --json and --help. Returns -1 when the
 * verb should go on (*json and *loc set; the caller frees *loc), else the exit
 * code to return (help printed, or a usage error reported). */
int cli_parse_layout_args(const char *verb, const char *usage, int argc, char **argv, bool *json,
                          hoist_loc **loc);

/* True when stdout is a terminal (human output, progress bars). */
bool cli_stdout_is_tty(void);
bool cli_stderr_is_tty(void);

#endif
