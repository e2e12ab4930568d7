/*
 * sandboxopts: the options `hoist run` and `hoist build` share to shape the
 * sandbox (network, user namespace, timeout, resource limits), parsed into a
 * hoist_sandbox_opts.
 */
#ifndef HOIST_CLI_SANDBOXOPTS_H
#define HOIST_CLI_SANDBOXOPTS_H

#include "cli.h"
#include "hoist/sandbox.h"

enum {
  SBOPT_NETWORK = 0x1100,
  SBOPT_USERNS,
  SBOPT_SUBUID,
  SBOPT_SUBGID,
  SBOPT_TIMEOUT,
  SBOPT_MEMORY,
  SBOPT_PIDS,
  SBOPT_CPUS,
  SBOPT_MAX_LAYER,
  SBOPT_TMP_SIZE,
  SBOPT_ALLOW_PORT,
  SBOPT_CGROUP_PARENT,
  SBOPT_REQUIRE_LIMITS,
};

#define SBOPTS_LONG                                                                                \
  {"network", required_argument, NULL, SBOPT_NETWORK},                                             \
      {"userns", optional_argument, NULL, SBOPT_USERNS},                                           \
      {"subuid", required_argument, NULL, SBOPT_SUBUID},                                           \
      {"subgid", required_argument, NULL, SBOPT_SUBGID},                                           \
      {"timeout", required_argument, NULL, SBOPT_TIMEOUT},                                         \
      {"memory", required_argument, NULL, SBOPT_MEMORY},                                           \
      {"pids-limit", required_argument, NULL, SBOPT_PIDS},                                         \
      {"cpus", required_argument, NULL, SBOPT_CPUS},                                               \
      {"max-layer-bytes", required_argument, NULL, SBOPT_MAX_LAYER},                               \
      {"tmp-size", required_argument, NULL, SBOPT_TMP_SIZE},                                       \
      {"allow-port", required_argument, NULL, SBOPT_ALLOW_PORT},                                   \
      {"cgroup-parent", required_argument, NULL, SBOPT_CGROUP_PARENT}, {                           \
    "require-limits", no_argument, NULL, SBOPT_REQUIRE_LIMITS                                      \
  }

#define SBOPTS_HELP                                                                                \
  "Sandbox options:\n"                                                                             \
  "  --network private|none|host  private (default): its own network namespace with IPv4\n"        \
  "                               egress through pasta, no route to the host's loopback, the\n"    \
  "                               host's addresses or link-local ones; none: only lo; host:\n"     \
  "                               the host's network (trusted use only)\n"                         \
  "  --allow-port PORT            a TCP port of the host's loopback a private network reaches\n"   \
  "                               (repeatable; a package mirror on this host)\n"                   \
  "  --userns[=private|host|auto] a user namespace whose root is never host root (private;\n"      \
  "                               the default when root has subordinate ids), or, as root,\n"      \
  "                               host ids (host: trusted use only)\n"                             \
  "  --subuid START:COUNT         subordinate uids to map instead of /etc/subuid's\n"              \
  "  --subgid START:COUNT         subordinate gids to map instead of /etc/subgid's\n"              \
  "  --timeout S                  kill everything the command started after S seconds\n"           \
  "  --memory SIZE                memory limit, no swap beyond it (default 4G; 'unlimited')\n"     \
  "  --pids-limit N               processes and threads (default 1024; 'unlimited')\n"             \
  "  --cpus N                     CPU limit in cores, e.g. 1.5 (default: none)\n"                  \
  "  --max-layer-bytes SIZE       disk the changes may take (default 10G; 'unlimited')\n"          \
  "  --tmp-size SIZE              size of the /tmp tmpfs (default 1G; 'unlimited')\n"              \
  "  --cgroup-parent PATH         cgroup under which each run's cgroup is made (default\n"         \
  "                               /hoist as root; without one the limits above on memory,\n"       \
  "                               pids and CPU are not enforced)\n"                                \
  "  --require-limits             fail instead of running without those limits\n"

typedef struct cli_sandboxopts {
  hoist_sandbox_opts o;
  hoist_sandbox_subids subids;
  bool have_subuid, have_subgid;
  uint16_t *ports;
} cli_sandboxopts;

/* Handles one of SBOPTS_LONG; returns 1 handled, 0 not ours, -1 bad value
 * (already reported; exit 2). */
int cli_sandboxopts_handle(cli_sandboxopts *so, const char *verb, int opt, const char *arg);

/* Checks what only the whole set tells (--subuid needs --subgid); 0 or -1
 * (reported; exit 2). Then so->o is ready. */
int cli_sandboxopts_finish(cli_sandboxopts *so, const char *verb);

void cli_sandboxopts_free(cli_sandboxopts *so);

#endif
