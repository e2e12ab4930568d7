/* hoist catalog REGISTRY: the repositories of a registry. */
#include <string.h>

#include "regopts.h"

static const char usage[] = "Usage: hoist catalog [OPTIONS] REGISTRY\n\n"
                            "List the repositories of a registry (host[:port]), one per line.\n\n"
                            "Options:\n"
                            "  -h, --help  show this help\n\n" REGOPTS_HELP;

static int catalog_run(int argc, char **argv) {
  static const struct option longopts[] = {
      {"help", no_argument, NULL, 'h'}, REGOPTS_LONG, {NULL, 0, NULL, 0}};
  cli_regopts ro = {0};
  int c, ret;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    if (c == 'h') {
      fputs(usage, stdout);
      cli_regopts_free(&ro);
      return EXIT_OK;
    }
    ret = cli_regopts_handle(&ro, "catalog", c, optarg);
    if (ret != 1) {
      cli_regopts_free(&ro);
      return ret < 0 ? EXIT_USAGE : cli_usage("catalog", "unknown option");
    }
  }
  if (argc - optind != 1) {
    cli_regopts_free(&ro);
    return cli_usage("catalog", "expected one registry host");
  }
  const char *arg = argv[optind];
  if (strncmp(arg, "docker://", 9) == 0)
    arg += 9;
  _cleanup_free_ char *host = hoist_strdup(arg);
  size_t hl = strlen(host);
  while (hl && host[hl - 1] == '/')
    host[--hl] = '\0';
  if (!*host || strchr(host, '/') || strchr(host, '@')) {
    cli_regopts_free(&ro);
    return cli_usage("catalog", "\"%s\" is not a registry host[:port]", argv[optind]);
  }
  hoist_err *err = NULL;
  _cleanup_registry_ hoist_registry *r = NULL;
  char **repos = NULL;
  size_t n = 0;
  if (cli_regopts_open(&ro, false, &r, &err) < 0 ||
      hoist_registry_catalog(r, host, &repos, &n, &err) < 0) {
    cli_regopts_free(&ro);
    return cli_fail("catalog", err);
  }
  if (ro.json) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
      json_array_append_new(a, json_string(repos[i]));
    cli_print_json(json_pack("{s:s, s:o}", "registry", host, "repositories", a));
  } else {
    for (size_t i = 0; i < n; i++)
      printf("%s\n", repos[i]);
  }
  hoist_strv_free(repos);
  cli_regopts_free(&ro);
  return EXIT_OK;
}

HOIST_VERB(catalog, "catalog", "list the repositories of a registry", catalog_run);
