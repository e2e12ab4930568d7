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
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "hoist/core.h"
#include "hoist/ref.h"

/* The two lists of `hoist --help`: image work (layouts, the image store,
 * registries, builds) and the build service. */
typedef enum cli_verb_group { CLI_VERBS_IMAGES = 0, CLI_VERBS_SERVICE } cli_verb_group;

typedef struct cli_verb {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv);
  cli_verb_group group;
  const char *parent; /* "service" for a verb of `hoist service`; NULL at the top */
} cli_verb;

#define HOIST_VERB_IN(id, verb_group, verb_parent, verb_name, verb_summary, fn)                    \
  static const cli_verb verb_##id __attribute__((                                                  \
      used, section("hoist_verbs"), aligned(sizeof(void *)))) = {.name = verb_name,                \
                                                                 .summary = verb_summary,          \
                                                                 .run = fn,                        \
                                                                 .group = verb_group,              \
                                                                 .parent = verb_parent}
/* A verb of image work, at the top. */
#define HOIST_VERB(id, verb_name, verb_summary, fn)                                                \
  HOIST_VERB_IN(id, CLI_VERBS_IMAGES, NULL, verb_name, verb_summary, fn)
/* A verb of the build service at the top (serve, service). */
#define HOIST_SERVICE_VERB(id, verb_name, verb_summary, fn)                                        \
  HOIST_VERB_IN(id, CLI_VERBS_SERVICE, NULL, verb_name, verb_summary, fn)
/* A verb of `hoist service` (send, status, ...). */
#define HOIST_SERVICE_SUBVERB(id, verb_name, verb_summary, fn)                                     \
  HOIST_VERB_IN(id, CLI_VERBS_SERVICE, "service", verb_name, verb_summary, fn)

/* The registered verb called name under parent (NULL: at the top), or
 * NULL. */
const cli_verb *cli_verb_find(const char *parent, const char *name);

/* Runs v on argv[0..argc), argv[0] its name, which getopt's messages show
 * as "hoist [PARENT ]NAME". Returns the exit code. */
int cli_verb_exec(const cli_verb *v, int argc, char **argv);

/* Prints the verbs of parent's (NULL: the top-level ones of group, with
 * their sub-verbs after them), one a line: "  NAME  SUMMARY". */
void cli_print_verbs(FILE *out, cli_verb_group group, const char *parent);

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* Prints "hoist <verb>: <error text>" to stderr, frees err, returns 1. */
int cli_fail(const char *verb, hoist_err *err);

/* Reports err as a usage error (cli_usage with err's text), frees err,
 * returns 2. */
int cli_usage_err(const char *verb, hoist_err *err);

/* "90", "90s", "15m", "1h", "2d" -> seconds; false on anything else. */
bool cli_parse_age(const char *text, int64_t *out);

/* 1536 -> "1.5 KiB"; below 1 KiB, "512 B". */
void cli_human_size(double bytes, char out[32]);

/* Prints "hoist <verb>: <message>" and a hint to use --help; returns 2. */
int cli_usage(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------- options
 *
 * A verb declares its options as a table of cli_opt ended by CLI_END, each
 * entry saying what its option does: set a flag, keep its argument, or call
 * a parser. cli_parse_opts runs getopt over the table, adds -h/--help, and
 * reports an unknown option or a bad value. The option sets several verbs
 * share (the registry's, the sandbox's, the service client's) are tables of
 * their own, with places within their struct, and a verb takes one in with
 * CLI_GROUP(table, &its_struct). */

/* Parses an option's argument (NULL for an option without one) into dest.
 * Returns 0, or -1 for a value it does not take, reported with cli_usage
 * (or, by a parser that says so, left to the option's bad message). */
typedef int cli_opt_fn(const char *verb, const char *arg, void *dest);

typedef enum cli_opt_kind {
  CLI_OPT_END = 0,
  CLI_OPT_FLAG,   /* *(bool *)dest = true */
  CLI_OPT_STRING, /* *(const char **)dest = the argument, borrowed from argv */
  CLI_OPT_CALL,   /* fn(verb, argument, dest) */
  CLI_OPT_GROUP,  /* the options of table group, their places within dest */
} cli_opt_kind;

typedef struct cli_opt {
  cli_opt_kind kind;
  const char *name; /* the long option, without "--" */
  int letter;       /* its one-letter form, or 0 */
  int has_arg;      /* getopt's: 0 none, 1 required (required_argument), 2 optional */
  cli_opt_fn *fn;
  void *dest;                  /* in a verb's table: where the value goes */
  size_t offset;               /* in a group's table: where within the group's struct */
  const struct cli_opt *group; /* CLI_OPT_GROUP */
  const char *refuse;          /* set: the option is refused, with this message (exit 2) */
  const char *bad;             /* the usage error for a value fn refuses; %s: the value */
} cli_opt;

/* d itself, when it points to a bool (to a const char *); a compile error
 * else. */
#define CLI_BOOL_PTR(d) _Generic((d), bool * : (d))
#define CLI_STRING_PTR(d) _Generic((d), const char ** : (d))

/* A verb's table: dest a pointer. Trailing designators set more fields:
 * CLI_STRING("output", &out, .letter = 'o'). */
#define CLI_FLAG(n, d, ...)                                                                        \
  { .kind = CLI_OPT_FLAG, .name = (n), .dest = CLI_BOOL_PTR(d), __VA_ARGS__ }
#define CLI_STRING(n, d, ...)                                                                      \
  { .kind = CLI_OPT_STRING, .name = (n), .has_arg = 1, .dest = CLI_STRING_PTR(d), __VA_ARGS__ }
#define CLI_CALL(n, f, d, ...)                                                                     \
  { .kind = CLI_OPT_CALL, .name = (n), .has_arg = 1, .fn = (f), .dest = (d), __VA_ARGS__ }
#define CLI_GROUP(table, base)                                                                     \
  { .kind = CLI_OPT_GROUP, .group = (table), .dest = (base) }
#define CLI_END                                                                                    \
  { .kind = CLI_OPT_END }

/* A group's table: the value's place is member m of the group's struct T
 * (of type type, for FLAG and STRING). */
#define CLI_OFFSET(T, m, type) _Generic(((T *)0)->m, type : offsetof(T, m))
#define CLI_FLAG_AT(n, T, m)                                                                       \
  { .kind = CLI_OPT_FLAG, .name = (n), .offset = CLI_OFFSET(T, m, bool) }
#define CLI_STRING_AT(n, T, m)                                                                     \
  { .kind = CLI_OPT_STRING, .name = (n), .has_arg = 1, .offset = CLI_OFFSET(T, m, const char *) }
#define CLI_CALL_AT(n, f, T, m)                                                                    \
  { .kind = CLI_OPT_CALL, .name = (n), .has_arg = 1, .fn = (f), .offset = offsetof(T, m) }
/* A group's option whose parser gets the group's struct itself. */
#define CLI_CALL_SELF(n, f)                                                                        \
  { .kind = CLI_OPT_CALL, .name = (n), .has_arg = 1, .fn = (f) }
/* A group within a group: its places within member m of T. */
#define CLI_GROUP_AT(table, T, m)                                                                  \
  { .kind = CLI_OPT_GROUP, .group = (table), .offset = offsetof(T, m) }
/* A group within a group of the same struct (a subset a verb may also take
 * on its own). */
#define CLI_GROUP_SELF(table)                                                                      \
  { .kind = CLI_OPT_GROUP, .group = (table), .offset = 0 }

/* How a verb's arguments are read, beyond its options. */
typedef struct cli_args {
  const char *verb;               /* as in "hoist VERB: message" */
  const char *usage;              /* what --help prints */
  void (*print_usage)(FILE *out); /* instead of usage: help made at run time */
  bool in_order;                  /* options end at the first operand */
} cli_args;

/* Parses the options of argv[1..argc) (argv[0] names the verb in getopt's
 * messages). Returns -1 when the verb goes on, optind at its first operand,
 * else the exit code to return: 0 after --help, 2 after a usage error
 * (reported). */
int cli_parse_opts_as(const cli_args *a, const cli_opt *opts, int argc, char **argv);

/* cli_parse_opts_as for the verbs whose help is a string and whose options
 * may stand among their operands. */
int cli_parse_opts(const char *verb, const char *usage, const cli_opt *opts, int argc, char **argv);

/* Option parsers (cli_opt_fn) more than one verb uses. Their dest: */
int cli_opt_platform(const char *verb, const char *arg, void *dest); /* hoist_platform ** */
int cli_opt_strdup(const char *verb, const char *arg, void *dest);   /* char **, freed first */
/* An age (cli_parse_age) into an int64_t; a bad one is left to the option's
 * bad message. */
int cli_opt_age(const char *verb, const char *arg, void *dest);

/* The one operand of a verb that takes an untagged image layout (oci:DIR),
 * at argv[optind], parsed into *loc (the caller frees it). Returns -1 to go
 * on, else the exit code (the error reported). */
int cli_layout_operand(const char *verb, int argc, char **argv, hoist_loc **loc);

/* The local image operand names: oci:DIR[:TAG] as it is; a registry
 * reference (REF or docker://REF), its layout in the image store
 * (hoist_image_store_location: the tag, or sha256-HEX for a digest), and
 * then *digest (caller frees) the reference's digest when it has no tag.
 * *loc: caller frees. Returns -1 to go on, else the exit code (reported). */
int cli_local_image(const char *verb, const char *operand, hoist_loc **loc, char **digest);

/* Prints j on out with json_dumps flags and a newline; consumes j. */
void cli_json_print(FILE *out, json_t *j, size_t flags);

/* cli_json_print on stdout, indented, keys sorted. */
void cli_print_json(json_t *j);

/* True when stdout is a terminal (human output, progress bars). */
bool cli_stdout_is_tty(void);
bool cli_stderr_is_tty(void);

#endif
