/* hoist serve: the deployer service. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

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
    "  -h, --help            show this help\n\n"
    "Socket activation: when systemd passes a listening socket (LISTEN_PID, LISTEN_FDS;\n"
    "sd_listen_fds(3)), the service answers on it and binds nothing, --listen ignored.\n";

#define LISTEN_FDS_START 3 /* systemd's first passed descriptor (SD_LISTEN_FDS_START) */

/* What a descriptor that should be a socket is, for a message. */
static const char *file_kind(mode_t mode) {
  return S_ISREG(mode)    ? "a regular file"
         : S_ISDIR(mode)  ? "a directory"
         : S_ISFIFO(mode) ? "a pipe"
         : S_ISCHR(mode)  ? "a character device"
         : S_ISBLK(mode)  ? "a block device"
                          : "not a socket";
}

/* The socket systemd passed (socket activation): *fd is fd 3 when
 * $LISTEN_PID and $LISTEN_FDS pass this process one, -1 when none is passed
 * (the variables are gone from the environment either way). The passed
 * descriptors become close-on-exec, as sd_listen_fds(3) makes them. More than
 * one, or one that is not a listening TCP socket, is an error naming it. */
HOIST_WUR static int activation_socket(int *fd, hoist_err **err) {
  *fd = -1;
  _cleanup_free_ char *names = NULL;
  int n = cli_env_listen_fds(&names, err);
  if (n <= 0)
    return n;
  for (int i = 0; i < n; i++)
    fcntl(LISTEN_FDS_START + i, F_SETFD, FD_CLOEXEC); /* a closed one is said below */
  if (n > 1)
    return hoist_err_set(err, EINVAL,
                         "LISTEN_FDS=%d: systemd passed %d sockets, hoist serve answers on one: "
                         "give its socket unit a single ListenStream=",
                         n, n);
  const int sfd = LISTEN_FDS_START;
  _cleanup_free_ char *what =
      names && *names ? hoist_asprintf("fd %d (%.*s)", sfd, (int)strcspn(names, ":"), names)
                      : hoist_asprintf("fd %d", sfd);
  struct stat st;
  if (fstat(sfd, &st) < 0)
    return hoist_err_errno(err, errno, "LISTEN_FDS=1: %s", what);
  if (!S_ISSOCK(st.st_mode))
    return hoist_err_set(err, ENOTSOCK, "LISTEN_FDS=1: %s is not a listening socket: %s", what,
                         file_kind(st.st_mode));
  int type = 0, domain = 0, accepting = 0;
  socklen_t len = sizeof type;
  if (getsockopt(sfd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
      (len = sizeof domain, getsockopt(sfd, SOL_SOCKET, SO_DOMAIN, &domain, &len)) < 0 ||
      (len = sizeof accepting, getsockopt(sfd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len)) < 0)
    return hoist_err_errno(err, errno, "LISTEN_FDS=1: %s", what);
  if (type != SOCK_STREAM)
    return hoist_err_set(err, EINVAL,
                         "LISTEN_FDS=1: %s is not a listening socket: not a stream socket "
                         "(ListenDatagram= or ListenSequentialPacket=?)",
                         what);
  if (domain != AF_INET && domain != AF_INET6)
    return hoist_err_set(err, EINVAL,
                         "LISTEN_FDS=1: %s is not a TCP socket: hoist serve answers on IPv4 or "
                         "IPv6 only",
                         what);
  if (!accepting)
    return hoist_err_set(err, EINVAL,
                         "LISTEN_FDS=1: %s is not a listening socket: a socket that is not "
                         "listening (Accept=yes passes connections; hoist-serve.socket needs "
                         "Accept=no)",
                         what);
  *fd = sfd;
  return 0;
}

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
  /* before anything else: the LISTEN_* variables must not reach a child */
  int sock = -1;
  hoist_err *aerr = NULL;
  if (activation_socket(&sock, &aerr) < 0)
    return cli_fail("serve", aerr);
  if (sock >= 0 && o.listen && !migrate)
    fprintf(stderr, "hoist serve: --listen %s ignored: answering on the socket systemd passed\n",
            o.listen);
  o.listen_fd = sock >= 0 ? sock : 0;
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
  fprintf(stderr, "hoist serve: listening on port %d%s, data in %s\n", port,
          sock >= 0 ? " (the socket systemd passed, fd 3)" : "", data);
  int sig;
  sigwait(&set, &sig);
  fprintf(stderr, "hoist serve: stopping\n");
  hoist_server_stop(s);
  if (sock >= 0)
    close(sock);
  return EXIT_OK;
}

HOIST_SERVICE_VERB(serve, "serve", "run the deployer service (HTTP build API)", serve_run);
