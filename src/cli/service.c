/* hoist service VERB: the build service's client (send, status, logs,
 * clean, images) and its local admin verb (token), as one verb. Each
 * sub-verb is a file of its own, registered with HOIST_SERVICE_SUBVERB. */
#include <string.h>

#include "cli.h"

static void print_usage(FILE *out) {
  fprintf(out, "Usage: hoist service VERB [OPTIONS] [ARGS]\n\n"
               "Talk to a build service (`hoist serve`), or look after its data directory.\n\n"
               "Verbs:\n");
  cli_print_verbs(out, CLI_VERBS_SERVICE, "service");
  fprintf(out, "\nRun 'hoist service VERB --help' for a verb's options.\n");
}

static int service_run(int argc, char **argv) {
  if (argc < 2) {
    print_usage(stderr);
    return EXIT_USAGE;
  }
  const char *verb = argv[1];
  if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0 || strcmp(verb, "help") == 0) {
    print_usage(stdout);
    return EXIT_OK;
  }
  const cli_verb *v = cli_verb_find("service", verb);
  if (!v) {
    fprintf(stderr, "hoist service: unknown verb '%s'\nTry 'hoist service --help'.\n", verb);
    return EXIT_USAGE;
  }
  return cli_verb_exec(v, argc - 1, argv + 1);
}

HOIST_SERVICE_VERB(service, "service", "the build service's client verbs:", service_run);
