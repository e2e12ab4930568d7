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

int cli_sandboxopts_handle(cli_sandboxopts *so, const char *verb, int opt, const char *arg) {
  hoist_sandbox_opts *o = &so->o;
  switch (opt) {
  case SBOPT_NETWORK:
    if (strcmp(arg, "private") == 0)
      o->network = HOIST_SANDBOX_NET_PRIVATE;
    else if (strcmp(arg, "none") == 0)
      o->network = HOIST_SANDBOX_NET_NONE;
    else if (strcmp(arg, "host") == 0)
      o->network = HOIST_SANDBOX_NET_HOST;
    else
      return cli_usage(verb, "--network: expected private, none or host, not %s", arg), -1;
    return 1;
  case SBOPT_USERNS:
    if (!arg || strcmp(arg, "private") == 0)
      o->userns = HOIST_SANDBOX_USERNS_PRIVATE;
    else if (strcmp(arg, "host") == 0)
      o->userns = HOIST_SANDBOX_USERNS_HOST;
    else if (strcmp(arg, "auto") == 0)
      o->userns = HOIST_SANDBOX_USERNS_AUTO;
    else
      return cli_usage(verb, "--userns: expected private, host or auto, not %s", arg), -1;
    return 1;
  case SBOPT_SUBUID:
    if (!parse_range(arg, &so->subids.uid_start, &so->subids.uid_count))
      return cli_usage(verb, "--subuid: expected START:COUNT, not %s", arg), -1;
    so->have_subuid = true;
    return 1;
  case SBOPT_SUBGID:
    if (!parse_range(arg, &so->subids.gid_start, &so->subids.gid_count))
      return cli_usage(verb, "--subgid: expected START:COUNT, not %s", arg), -1;
    so->have_subgid = true;
    return 1;
  case SBOPT_TIMEOUT: {
    char *end;
    errno = 0;
    unsigned long v = strtoul(arg, &end, 10);
    if (errno || *end || end == arg || arg[0] == '-' || v == 0 || v > UINT_MAX)
      return cli_usage(verb, "--timeout: expected a number of seconds, not %s", arg), -1;
    o->timeout_s = (unsigned)v;
    return 1;
  }
  case SBOPT_MEMORY:
    if (!parse_limit_size(arg, &o->memory))
      return cli_usage(verb, "--memory: expected a size (e.g. 512M, 4G) or unlimited, not %s", arg),
             -1;
    return 1;
  case SBOPT_PIDS: {
    if (strcmp(arg, "unlimited") == 0) {
      o->pids = HOIST_SANDBOX_UNLIMITED;
      return 1;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno || *end || end == arg || arg[0] == '-' || v == 0 || v > INT_MAX)
      return cli_usage(verb, "--pids-limit: expected a number or unlimited, not %s", arg), -1;
    o->pids = v;
    return 1;
  }
  case SBOPT_CPUS: {
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || *end || end == arg || !(v >= 0.01 && v <= 4096))
      return cli_usage(verb, "--cpus: expected a number of cores (e.g. 1.5), not %s", arg), -1;
    o->cpu_millis = (uint64_t)(v * 1000 + 0.5);
    return 1;
  }
  case SBOPT_MAX_LAYER:
    if (!parse_limit_size(arg, &o->upper_bytes))
      return cli_usage(verb, "--max-layer-bytes: expected a size (e.g. 10G) or unlimited, not %s",
                       arg),
             -1;
    return 1;
  case SBOPT_TMP_SIZE:
    if (!parse_limit_size(arg, &o->tmp_bytes))
      return cli_usage(verb, "--tmp-size: expected a size (e.g. 1G) or unlimited, not %s", arg), -1;
    return 1;
  case SBOPT_ALLOW_PORT: {
    char *end;
    errno = 0;
    unsigned long v = strtoul(arg, &end, 10);
    if (errno || *end || end == arg || arg[0] == '-' || v == 0 || v > 65535)
      return cli_usage(verb, "--allow-port: expected a TCP port, not %s", arg), -1;
    uint16_t *nv = realloc(so->ports, (o->n_allow_ports + 1) * sizeof *nv);
    if (!nv)
      abort();
    nv[o->n_allow_ports++] = (uint16_t)v;
    so->ports = nv;
    o->allow_ports = nv;
    return 1;
  }
  case SBOPT_CGROUP_PARENT:
    if (!cgroup_path(arg))
      return cli_usage(verb, "--cgroup-parent: expected an absolute cgroup path, not %s", arg), -1;
    o->cgroup_parent = arg;
    return 1;
  case SBOPT_REQUIRE_LIMITS:
    o->require_limits = true;
    return 1;
  default:
    return 0;
  }
}

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
