#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "sandboxopts.h"

/* A size or "unlimited" (HOIST_SANDBOX_UNLIMITED). */
static bool parse_limit_size(const char *arg, uint64_t *out) {
  if (strcmp(arg, "unlimited") == 0) {
    *out = HOIST_SANDBOX_UNLIMITED;
    return true;
  }
  return hoist_size_parse(arg, out);
}

/* "START:COUNT", both decimal, COUNT > 0, the range within 32 bits. */
static bool parse_range(const char *arg, uint32_t *start, uint32_t *count) {
  char *end;
  errno = 0;
  unsigned long long s = strtoull(arg, &end, 10);
  if (errno || end == arg || *end != ':' || arg[0] == '-')
    return false;
  const char *c = end + 1;
  unsigned long long n = strtoull(c, &end, 10);
  if (errno || end == c || *end || c[0] == '-' || n == 0 || s + n > UINT32_MAX)
    return false;
  *start = (uint32_t)s;
  *count = (uint32_t)n;
  return true;
}

/* An absolute cgroup path without "." or ".." components. */
static bool cgroup_path(const char *p) {
  if (p[0] != '/')
    return false;
  for (const char *c = p; *c;) {
    while (*c == '/')
      c++;
    size_t n = strcspn(c, "/");
    if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
      return false;
    c += n;
  }
  return true;
}

/* --network: private, none or host. */
static int opt_network(const char *verb, const char *arg, void *dest) {
  hoist_sandbox_network *n = dest;
  if (strcmp(arg, "private") == 0)
    *n = HOIST_SANDBOX_NET_PRIVATE;
  else if (strcmp(arg, "none") == 0)
    *n = HOIST_SANDBOX_NET_NONE;
  else if (strcmp(arg, "host") == 0)
    *n = HOIST_SANDBOX_NET_HOST;
  else
    return cli_usage(verb, "--network: expected private, none or host, not %s", arg), -1;
  return 0;
}

/* --userns[=private|host|auto]; alone, private. */
static int opt_userns(const char *verb, const char *arg, void *dest) {
  hoist_sandbox_userns *u = dest;
  if (!arg || strcmp(arg, "private") == 0)
    *u = HOIST_SANDBOX_USERNS_PRIVATE;
  else if (strcmp(arg, "host") == 0)
    *u = HOIST_SANDBOX_USERNS_HOST;
  else if (strcmp(arg, "auto") == 0)
    *u = HOIST_SANDBOX_USERNS_AUTO;
  else
    return cli_usage(verb, "--userns: expected private, host or auto, not %s", arg), -1;
  return 0;
}

static int opt_subuid(const char *verb, const char *arg, void *dest) {
  cli_sandboxopts *so = dest;
  if (!parse_range(arg, &so->subids.uid_start, &so->subids.uid_count))
    return cli_usage(verb, "--subuid: expected START:COUNT, not %s", arg), -1;
  so->have_subuid = true;
  return 0;
}

static int opt_subgid(const char *verb, const char *arg, void *dest) {
  cli_sandboxopts *so = dest;
  if (!parse_range(arg, &so->subids.gid_start, &so->subids.gid_count))
    return cli_usage(verb, "--subgid: expected START:COUNT, not %s", arg), -1;
  so->have_subgid = true;
  return 0;
}

static int opt_timeout(const char *verb, const char *arg, void *dest) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(arg, &end, 10);
  if (errno || *end || end == arg || arg[0] == '-' || v == 0 || v > UINT_MAX)
    return cli_usage(verb, "--timeout: expected a number of seconds, not %s", arg), -1;
  *(unsigned *)dest = (unsigned)v;
  return 0;
}

static int opt_memory(const char *verb, const char *arg, void *dest) {
  if (!parse_limit_size(arg, dest))
    return cli_usage(verb, "--memory: expected a size (e.g. 512M, 4G) or unlimited, not %s", arg),
           -1;
  return 0;
}

static int opt_pids(const char *verb, const char *arg, void *dest) {
  uint64_t *pids = dest;
  if (strcmp(arg, "unlimited") == 0) {
    *pids = HOIST_SANDBOX_UNLIMITED;
    return 0;
  }
  char *end;
  errno = 0;
  unsigned long long v = strtoull(arg, &end, 10);
  if (errno || *end || end == arg || arg[0] == '-' || v == 0 || v > INT_MAX)
    return cli_usage(verb, "--pids-limit: expected a number or unlimited, not %s", arg), -1;
  *pids = v;
  return 0;
}

static int opt_cpus(const char *verb, const char *arg, void *dest) {
  char *end;
  errno = 0;
  double v = strtod(arg, &end);
  if (errno || *end || end == arg || !(v >= 0.01 && v <= 4096))
    return cli_usage(verb, "--cpus: expected a number of cores (e.g. 1.5), not %s", arg), -1;
  *(uint64_t *)dest = (uint64_t)(v * 1000 + 0.5);
  return 0;
}

static int opt_max_layer(const char *verb, const char *arg, void *dest) {
  if (!parse_limit_size(arg, dest))
    return cli_usage(verb, "--max-layer-bytes: expected a size (e.g. 10G) or unlimited, not %s",
                     arg),
           -1;
  return 0;
}

static int opt_tmp_size(const char *verb, const char *arg, void *dest) {
  if (!parse_limit_size(arg, dest))
    return cli_usage(verb, "--tmp-size: expected a size (e.g. 1G) or unlimited, not %s", arg), -1;
  return 0;
}

/* --allow-port: one more port on the list the options point to. */
static int opt_allow_port(const char *verb, const char *arg, void *dest) {
  cli_sandboxopts *so = dest;
  char *end;
  errno = 0;
  unsigned long v = strtoul(arg, &end, 10);
  if (errno || *end || end == arg || arg[0] == '-' || v == 0 || v > 65535)
    return cli_usage(verb, "--allow-port: expected a TCP port, not %s", arg), -1;
  uint16_t *nv = realloc(so->ports, (so->o.n_allow_ports + 1) * sizeof *nv);
  if (!nv)
    abort();
  nv[so->o.n_allow_ports++] = (uint16_t)v;
  so->ports = nv;
  so->o.allow_ports = nv;
  return 0;
}

static int opt_cgroup_parent(const char *verb, const char *arg, void *dest) {
  if (!cgroup_path(arg))
    return cli_usage(verb, "--cgroup-parent: expected an absolute cgroup path, not %s", arg), -1;
  *(const char **)dest = arg;
  return 0;
}

const cli_opt cli_sandboxopts_opts[] = {
    CLI_CALL_AT("network", opt_network, cli_sandboxopts, o.network),
    {.kind = CLI_OPT_CALL,
     .name = "userns",
     .has_arg = optional_argument,
     .fn = opt_userns,
     .offset = offsetof(cli_sandboxopts, o.userns)},
    CLI_CALL_SELF("subuid", opt_subuid),
    CLI_CALL_SELF("subgid", opt_subgid),
    CLI_CALL_AT("timeout", opt_timeout, cli_sandboxopts, o.timeout_s),
    CLI_CALL_AT("memory", opt_memory, cli_sandboxopts, o.memory),
    CLI_CALL_AT("pids-limit", opt_pids, cli_sandboxopts, o.pids),
    CLI_CALL_AT("cpus", opt_cpus, cli_sandboxopts, o.cpu_millis),
    CLI_CALL_AT("max-layer-bytes", opt_max_layer, cli_sandboxopts, o.upper_bytes),
    CLI_CALL_AT("tmp-size", opt_tmp_size, cli_sandboxopts, o.tmp_bytes),
    CLI_CALL_SELF("allow-port", opt_allow_port),
    CLI_CALL_AT("cgroup-parent", opt_cgroup_parent, cli_sandboxopts, o.cgroup_parent),
    CLI_FLAG_AT("require-limits", cli_sandboxopts, o.require_limits),
    CLI_FLAG_AT("no-process-sandbox", cli_sandboxopts, o.no_process_sandbox),
    CLI_END,
};

int cli_sandboxopts_finish(cli_sandboxopts *so, const char *verb) {
  if (so->have_subuid != so->have_subgid) {
    cli_usage(verb, "--subuid and --subgid go together");
    return -1;
  }
  if (so->have_subuid)
    so->o.subids = &so->subids;
  so->o.tool_path = cli_env("PATH");
  return 0;
}

void cli_sandboxopts_free(cli_sandboxopts *so) {
  free(so->ports);
  so->ports = NULL;
}
