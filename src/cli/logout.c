/* hoist logout HOST: credentials removed from the auth file login writes. */
#include "env.h"
#include "regopts.h"

static const char usage[] =
    "Usage: hoist logout [OPTIONS] HOST[:PORT][/PATH]\n"
    "       hoist logout [OPTIONS] --all\n\n"
    "Remove a registry's credentials (or, with --all, every registry's) from the\n"
    "auth file hoist login writes: --authfile, else $REGISTRY_AUTH_FILE, else\n"
    "$XDG_RUNTIME_DIR/containers/auth.json (/run/containers/UID/auth.json without\n"
    "XDG_RUNTIME_DIR). The rest of the file is kept.\n\n"
    "Options:\n"
    "  -a, --all        every registry\n"
    "  --authfile FILE  the auth file to change\n"
    "  -h, --help       show this help\n";

static int logout_run(int argc, char **argv) {
  bool all = false;
  const char *authfile = NULL;
  const cli_opt opts[] = {
      CLI_FLAG("all", &all, .letter = 'a'),
      CLI_STRING("authfile", &authfile),
      CLI_END,
  };
  int rc = cli_parse_opts("logout", usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (argc - optind != (all ? 0 : 1))
    return cli_usage("logout", all ? "--all takes no registry" : "expected one registry");
  const char *host = all ? NULL : cli_registry_operand(argv[optind]);
  _cleanup_free_ char *path = cli_env_auth_file(authfile);
  hoist_err *err = NULL;
  bool removed = false;
  if (hoist_creds_erase(path, host, &removed, &err) < 0)
    return cli_fail("logout", err);
  if (all) {
    printf("Removed login credentials for all registries\n");
    return EXIT_OK;
  }
  if (!removed) {
    fprintf(stderr, "hoist logout: not logged into %s (in %s)\n", host, path);
    return EXIT_FAIL;
  }
  printf("Removed login credentials for %s\n", host);
  return EXIT_OK;
}

HOIST_VERB(logout, "logout", "remove a registry's credentials from the auth file", logout_run);
