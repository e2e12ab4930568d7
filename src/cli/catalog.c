/* hoist catalog REGISTRY: the repositories of a registry. */
#include <string.h>

#include "regopts.h"

static const char usage[] = "Usage: hoist catalog [OPTIONS] REGISTRY\n\n"
                            "List the repositories of a registry (host[:port]), one per line.\n\n"
                            "Options:\n"
                            "  -h, --help  show this help\n\n" REGOPTS_HELP;

static int catalog(cli_regopts *ro, char **operands) {
  _cleanup_free_ char *host = hoist_strdup(cli_registry_operand(operands[0]));
  size_t hl = strlen(host);
  while (hl && host[hl - 1] == '/')
    host[--hl] = '\0';
  if (!*host || strchr(host, '/') || strchr(host, '@'))
    return cli_usage("catalog", "\"%s\" is not a registry host[:port]", operands[0]);
  hoist_err *err = NULL;
  _cleanup_registry_ hoist_registry *r = NULL;
  _cleanup_strfreev_ char **repos = NULL;
  size_t n = 0;
  if (cli_regopts_open(ro, false, &r, &err) < 0 ||
      hoist_registry_catalog(r, host, &repos, &n, &err) < 0)
    return cli_fail("catalog", err);
  if (ro->json) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
      json_array_append_new(a, json_string(repos[i]));
    cli_print_json(json_pack("{s:s, s:o}", "registry", host, "repositories", a));
  } else {
    for (size_t i = 0; i < n; i++)
      printf("%s\n", repos[i]);
  }
  return EXIT_OK;
}

static int catalog_run(int argc, char **argv) {
  return cli_regopts_run("catalog", usage, 1, "expected one registry host", catalog, argc, argv);
}

HOIST_VERB(catalog, "catalog", "list the repositories of a registry", catalog_run);
