/* hoist serve: the deployer service. */
#include <signal.h>
#include <string.h>

#include "cli.h"
#include "env.h"
#include "hoist/server.h"

static const char usage[] =
    "Usage: hoist serve [OPTIONS]\n\n"
    "Run the deployer service: an HTTP API that builds images on request (each build\n"
    "a child `hoist build`), keeps the jobs in DATA/jobs.db and their logs under\n"
    "DATA/jobs, and checks callers against DATA/tokens.json (see `hoist token`).\n\n"
    "Options:\n"
    "  --listen ADDR:PORT    where to listen (default 127.0.0.1:8080; port 0: any)\n"
    "  --data DIR            data directory (default ${HOIST_CACHE:-~/.cache/hoist}/serve)\n"
    "  --config FILE         service config (JSON; see README)\n"
    "  --workers N           builds at once (default: number of cores)\n"
    "  --threads N           HTTP threads (default: number of cores, at least 2)\n"
    "  --tls-cert FILE       serve https with this certificate (PEM)...\n"
    "  --tls-key FILE        ...and key\n"
    "  --tls-client-ca FILE  require client certificates signed by this CA (PEM)\n"
    "  --db URL              the job store: sqlite:PATH (default DATA/jobs.db) or\n"
    "                        postgres://... shared by several replicas (the schema is\n"
    "                        migrated at start; see README \"Running several replicas\")\n"
    "  --executor KIND       where builds run: local (child processes, the default)\n"
    "                        or kubernetes (a Job each; the config's `executor`\n"
    "                        section, README \"Running in Kubernetes\")\n"
    "  --migrate             migrate the job store's schema, then exit\n"
    "  -h, --help            show this help\n";

/* --workers, --threads: 1 to 1024, into an int; a bad one is left to the
 * option's bad message. */
static int opt_count(const char *verb, const char *arg, void *dest) {
  (void)verb;
  char *end;
  long v = strtol(arg, &end, 10);
  if (!*arg || *end || v < 1 || v > 1024)
    return -1;
  *(int *)dest = (int)v;
  return 0;
}

static int serve_run(int argc, char **argv) {
  hoist_server_opts o = {0};
  const char *data_opt = NULL;
  bool migrate = false;
  const cli_opt opts[] = {
      CLI_STRING("listen", &o.listen),
      CLI_STRING("data", &data_opt),
      CLI_STRING("config", &o.config_file),
      CLI_CALL("workers", opt_count, &o.workers,
               .bad = "--workers: expected a number from 1 to 1024"),
      CLI_CALL("threads", opt_count, &o.threads,
               .bad = "--threads: expected a number from 1 to 1024"),
      CLI_STRING("tls-cert", &o.tls_cert),
      CLI_STRING("tls-key", &o.tls_key),
      CLI_STRING("tls-client-ca", &o.tls_client_ca),
      CLI_STRING("db", &o.db),
      CLI_STRING("executor", &o.executor),
      CLI_FLAG("migrate", &migrate),
      CLI_END,
  };
  int rc = cli_parse_opts("serve", usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (optind != argc)
    return cli_usage("serve", "unexpected argument \"%s\"", argv[optind]);
  if (!o.tls_cert != !o.tls_key)
    return cli_usage("serve", "--tls-cert and --tls-key go together");
  if (o.executor && strcmp(o.executor, "local") != 0 && strcmp(o.executor, "kubernetes") != 0)
    return cli_usage("serve", "--executor: expected local or kubernetes");
  if (o.tls_client_ca && !o.tls_cert)
    return cli_usage("serve", "--tls-client-ca needs --tls-cert and --tls-key");
  _cleanup_free_ char *data = data_opt ? hoist_strdup(data_opt) : cli_env_serve_data();
  o.data_dir = data;
  if (migrate) {
    hoist_err *err = NULL;
    if (hoist_server_migrate(o.db, data, &err) < 0)
      return cli_fail("serve", err);
    fprintf(stderr, "hoist serve: the job store's schema is current\n");
    return EXIT_OK;
  }
  o.registry_host = cli_env("REGISTRY_HOST");
  const char *strict = cli_env("STRICT_USER_CHECK");
  o.no_strict_user_check = strict && strcasecmp(strict, "false") == 0;
  cli_env_registry(&o.registry);
  o.tool_path = cli_env("PATH");
  o.kube_host = cli_env("KUBERNETES_SERVICE_HOST");
  o.kube_port = cli_env("KUBERNETES_SERVICE_PORT");
  o.exec_environ = cli_env_all();

  /* SIGINT/SIGTERM end the service; signals are taken by sigwait only */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);

  hoist_err *err = NULL;
  hoist_server *s = NULL;
  int port = 0;
  if (hoist_server_start(&o, &s, &port, &err) < 0)
    return cli_fail("serve", err);
  fprintf(stderr, "hoist serve: listening on port %d, data in %s\n", port, data);
  int sig;
  sigwait(&set, &sig);
  fprintf(stderr, "hoist serve: stopping\n");
  hoist_server_stop(s);
  return EXIT_OK;
}

HOIST_SERVICE_VERB(serve, "serve", "run the deployer service (HTTP build API)", serve_run);
