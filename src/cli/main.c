#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "env.h"
#include "version.h"

extern const cli_verb __start_hoist_verbs[] __attribute__((weak));
extern const cli_verb __stop_hoist_verbs[] __attribute__((weak));

int cli_fail(const char *verb, hoist_err *err) {
  char *text = hoist_err_text(err);
  fprintf(stderr, "hoist %s: %s\n", verb, text && *text ? text : "failed");
  free(text);
  hoist_err_free(err);
  return EXIT_FAIL;
}

int cli_usage(const char *verb, const char *fmt, ...) {
  /* getopt has already said which option and what is wrong with it, under
   * the name the verb runs as ("hoist copy") */
  if (strcmp(fmt, "unknown option") == 0) {
    fprintf(stderr, "Try 'hoist %s --help'.\n", verb);
    return EXIT_USAGE;
  }
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "hoist %s: ", verb);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nTry 'hoist %s --help'.\n", verb);
  return EXIT_USAGE;
}

int cli_usage_err(const char *verb, hoist_err *err) {
  _cleanup_free_ char *text = hoist_err_text(err);
  hoist_err_free(err);
  return cli_usage(verb, "%s", text);
}

/* "90", "90s", "15m", "1h", "2d" -> seconds; false on anything else. */
bool cli_parse_age(const char *text, int64_t *out) {
  char *end = NULL;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (errno || end == text || v < 0)
    return false;
  long long unit = 1;
  if (*end) {
    if (end[1])
      return false;
    switch (*end) {
    case 's':
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    default:
      return false;
    }
  }
  if (v > INT64_MAX / unit)
    return false;
  *out = v * unit;
  return true;
}

void cli_human_size(double bytes, char out[32]) {
  static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  size_t u = 0;
  while (bytes >= 1024 && u + 1 < sizeof units / sizeof *units) {
    bytes /= 1024;
    u++;
  }
  snprintf(out, 32, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

bool cli_stdout_is_tty(void) { return isatty(STDOUT_FILENO); }
bool cli_stderr_is_tty(void) { return isatty(STDERR_FILENO); }

static int compare_verbs(const void *a, const void *b) {
  return strcmp(((const cli_verb *)a)->name, ((const cli_verb *)b)->name);
}

static bool same_parent(const cli_verb *v, const char *parent) {
  return parent ? v->parent && strcmp(v->parent, parent) == 0 : !v->parent;
}

const cli_verb *cli_verb_find(const char *parent, const char *name) {
  for (const cli_verb *v = __start_hoist_verbs; v < __stop_hoist_verbs; v++)
    if (same_parent(v, parent) && strcmp(v->name, name) == 0)
      return v;
  return NULL;
}

int cli_verb_exec(const cli_verb *v, int argc, char **argv) {
  /* getopt's messages name it so */
  argv[0] = v->parent ? hoist_asprintf("hoist %s %s", v->parent, v->name)
                      : hoist_asprintf("hoist %s", v->name);
  return v->run(argc, argv);
}

/* The verbs under parent (of group, at the top), sorted by name; *n of
 * them. Caller frees. */
static cli_verb *sorted_verbs(cli_verb_group group, const char *parent, size_t *n) {
  size_t all = (size_t)(__stop_hoist_verbs - __start_hoist_verbs);
  cli_verb *v = hoist_malloc0((all ? all : 1) * sizeof *v);
  *n = 0;
  for (const cli_verb *p = __start_hoist_verbs; p < __stop_hoist_verbs; p++)
    if (same_parent(p, parent) && (parent || p->group == group))
      v[(*n)++] = *p;
  qsort(v, *n, sizeof *v, compare_verbs);
  return v;
}

void cli_print_verbs(FILE *out, cli_verb_group group, const char *parent) {
  size_t n = 0;
  _cleanup_free_ cli_verb *v = sorted_verbs(group, parent, &n);
  for (size_t i = 0; i < n; i++) {
    _cleanup_free_ char *name =
        parent ? hoist_asprintf("%s %s", parent, v[i].name) : hoist_strdup(v[i].name);
    /* two spaces at least between a name and its summary, as help parsers split them */
    fprintf(out, "  %-16s %s%s\n", name, strlen(name) >= 16 ? " " : "", v[i].summary);
    if (!parent) /* its sub-verbs, if it has any */
      cli_print_verbs(out, group, v[i].name);
  }
}

static void print_help(FILE *out) {
  fprintf(out, "Usage: hoist VERB [OPTIONS] [ARGS]\n\n"
               "Build and publish OCI images without a daemon.\n\n"
               "Images (OCI layouts, the image store, registries, builds):\n");
  cli_print_verbs(out, CLI_VERBS_IMAGES, NULL);
  fprintf(out, "\nBuild service (the server, and its client under 'hoist service'):\n");
  cli_print_verbs(out, CLI_VERBS_SERVICE, NULL);
  fprintf(out, "\nOptions:\n"
               "  -h, --help     show this help\n"
               "  -V, --version  show the version and the commit it was built from\n\n"
               "Run 'hoist VERB --help' for a verb's options. Set HOIST_LOG=debug for details.\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    print_help(stderr);
    return EXIT_USAGE;
  }
  const char *verb = argv[1];
  if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0 || strcmp(verb, "help") == 0) {
    print_help(stdout);
    return EXIT_OK;
  }
  if (strcmp(verb, "--version") == 0 || strcmp(verb, "-V") == 0 || strcmp(verb, "version") == 0) {
    printf("hoist %s (commit %s)\n", hoist_version(), HOIST_COMMIT);
    return EXIT_OK;
  }
  hoist_log_set_level(cli_env_log_level());
  const cli_verb *v = cli_verb_find(NULL, verb);
  if (!v && (v = cli_verb_find("service", verb)) != NULL)
    fprintf(
        stderr,
        "hoist: 'hoist %s' is deprecated and goes in the next release; use 'hoist service %s'\n",
        verb, verb);
  if (v)
    return cli_verb_exec(v, argc - 1, argv + 1);
  fprintf(stderr, "hoist: unknown verb '%s'\nTry 'hoist --help'.\n", verb);
  return EXIT_USAGE;
}
