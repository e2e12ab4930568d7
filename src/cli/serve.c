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
    "  -h, --help            show this help\n";

static int parse_count(const char *s, int *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (!*s || *end || v < 1 || v > 1024)
    return -1;
  *out = (int)v;
  return 0;
}

static int serve_run(int argc, char **argv) {
  enum { O_LISTEN = 256, O_DATA, O_CONFIG, O_WORKERS, O_THREADS, O_CERT, O_KEY, O_CA };
  static const struct option opts[] = {
      {"listen", required_argument, NULL, O_LISTEN},
      {"data", required_argument, NULL, O_DATA},
      {"config", required_argument, NULL, O_CONFIG},
      {"workers", required_argument, NULL, O_WORKERS},
      {"threads", required_argument, NULL, O_THREADS},
      {"tls-cert", required_argument, NULL, O_CERT},
      {"tls-key", required_argument, NULL, O_KEY},
      {"tls-client-ca", required_argument, NULL, O_CA},
      {"help", no_argument, NULL, 'h'},
      {0},
  };
  hoist_server_opts o = {0};
  _cleanup_free_ char *data = NULL;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case O_LISTEN:
      o.listen = optarg;
      break;
    case O_DATA:
      free(data);
      data = hoist_strdup(optarg);
      break;
    case O_CONFIG:
      o.config_file = optarg;
      break;
    case O_WORKERS:
      if (parse_count(optarg, &o.workers) < 0)
        return cli_usage("serve", "--workers: expected a number from 1 to 1024");
      break;
    case O_THREADS:
      if (parse_count(optarg, &o.threads) < 0)
        return cli_usage("serve", "--threads: expected a number from 1 to 1024");
      break;
    case O_CERT:
      o.tls_cert = optarg;
      break;
    case O_KEY:
      o.tls_key = optarg;
      break;
    case O_CA:
      o.tls_client_ca = optarg;
      break;
    case 'h':
      fputs(usage, stdout);
      return EXIT_OK;
    default:
      return cli_usage("serve", "unknown option");
    }
  }
  if (optind != argc)
    return cli_usage("serve", "unexpected argument \"%s\"", argv[optind]);
  if (!o.tls_cert != !o.tls_key)
    return cli_usage("serve", "--tls-cert and --tls-key go together");
  if (o.tls_client_ca && !o.tls_cert)
    return cli_usage("serve", "--tls-client-ca needs --tls-cert and --tls-key");
  if (!data)
    data = cli_env_serve_data();
  o.data_dir = data;
  o.registry_host = cli_env("REGISTRY_HOST");
  const char *strict = cli_env("STRICT_USER_CHECK");
  o.no_strict_user_check = strict && strcasecmp(strict, "false") == 0;
  cli_env_registry(&o.registry);
  o.tool_path = cli_env("PATH");

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

HOIST_VERB(serve, "serve", "run the deployer service (HTTP build API)", serve_run);
