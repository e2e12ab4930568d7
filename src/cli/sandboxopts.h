/*
 * sandboxopts: the options `hoist run` and `hoist build` share to shape the
 * sandbox (network, user namespace, timeout, resource limits), parsed into a
 * hoist_sandbox_opts.
 */
#ifndef HOIST_CLI_SANDBOXOPTS_H
#define HOIST_CLI_SANDBOXOPTS_H

#include "cli.h"
#include "hoist/sandbox.h"

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
  "  --require-limits             fail instead of running without those limits\n"                  \
  "  --no-process-sandbox         no PID namespace: the command gets this /proc (masked as\n"      \
  "                               usual) and sees every process in it; for hosts whose /proc\n"    \
  "                               is masked (Kubernetes pods without user namespaces)\n"

typedef struct cli_sandboxopts {
  hoist_sandbox_opts o;
  hoist_sandbox_subids subids;
  bool have_subuid, have_subgid;
  uint16_t *ports;
} cli_sandboxopts;

/* The options of SBOPTS_HELP, for CLI_GROUP(cli_sandboxopts_opts, &so). */
extern const cli_opt cli_sandboxopts_opts[];

/* Checks what only the whole set tells (--subuid needs --subgid); 0 or -1
 * (reported; exit 2). Then so->o is ready. */
int cli_sandboxopts_finish(cli_sandboxopts *so, const char *verb);

void cli_sandboxopts_free(cli_sandboxopts *so);
#define _cleanup_sandboxopts_ __attribute__((cleanup(cli_sandboxopts_free)))

#endif
