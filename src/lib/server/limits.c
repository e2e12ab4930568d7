/* server: the builds' sandbox, from the service config to the `hoist build`
 * options that carry it to each build, and the bound on a build's log. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "server-private.h"

#define DEFAULT_BUILD_TIMEOUT 1800    /* seconds */
#define MAX_ALLOW 32                  /* build_allow entries */
#define DEFAULT_MAX_LOG (16ULL << 20) /* bytes of a job's log */

/* A size setting: a number of bytes or a string with a K, M, G or T suffix. */
HOIST_WUR static int size_setting(json_t *o, const char *key, uint64_t *out, hoist_err **err) {
  json_t *v = json_object_get(o, key);
  if (!v)
    return 0;
  if (json_is_integer(v) && json_integer_value(v) > 0) {
    *out = (uint64_t)json_integer_value(v);
    return 0;
  }
  if (json_is_string(v) && hoist_size_parse(json_string_value(v), out))
    return 0;
  return hoist_err_set(err, EINVAL, "%s: expected a number of bytes or a size such as \"4G\"", key);
}

/* "START:COUNT" of a subordinate id range. */
HOIST_WUR static int range_setting(json_t *o, const char *key, uint32_t *start, uint32_t *count,
                                   bool *given, hoist_err **err) {
  json_t *v = json_object_get(o, key);
  if (!v)
    return 0;
  const char *s = json_string_value(v);
  unsigned long long a, b;
  int used = 0;
  if (!s || sscanf(s, "%llu:%llu%n", &a, &b, &used) != 2 || s[used] || s[0] == '-' || b == 0 ||
      a + b > UINT32_MAX)
    return hoist_err_set(err, EINVAL, "%s: expected \"START:COUNT\", e.g. \"100000:65536\"", key);
  *start = (uint32_t)a;
  *count = (uint32_t)b;
  *given = true;
  return 0;
}

/* Whether host (of a "host:port" mirror) is this machine's loopback. */
static bool loopback_host(const char *host, size_t n) {
  char h[64];
  if (n == 0 || n >= sizeof h)
    return false;
  memcpy(h, host, n);
  h[n] = '\0';
  struct in_addr a4;
  if (strcmp(h, "localhost") == 0 || strcmp(h, "[::1]") == 0)
    return true;
  return inet_pton(AF_INET, h, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* build_allow: "host:port" mirrors the builds reach. Those on this host's
 * loopback become allowed ports; the others are reached as any egress. */
HOIST_WUR static int allow_setting(json_t *o, server_config *c, hoist_err **err) {
  json_t *v = json_object_get(o, "build_allow");
  if (!v)
    return 0;
  if (!json_is_array(v) || json_array_size(v) > MAX_ALLOW)
    return hoist_err_set(err, EINVAL, "build_allow: expected a list of at most %d \"host:port\"",
                         MAX_ALLOW);
  c->allow_ports = hoist_calloc(json_array_size(v) + 1, sizeof *c->allow_ports);
  size_t i, n = 0;
  json_t *it;
  json_array_foreach(v, i, it) {
    const char *s = json_string_value(it);
    const char *colon = s ? strrchr(s, ':') : NULL;
    char *end = NULL;
    unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
    if (!colon || colon == s || !end || *end || end == colon + 1 || port == 0 || port > 65535)
      return hoist_err_set(err, EINVAL, "build_allow: \"%s\": expected \"host:port\"",
                           s ? s : "(not a string)");
    if (loopback_host(s, (size_t)(colon - s)))
      c->allow_ports[n++] = (uint16_t)port;
  }
  c->sandbox.allow_ports = c->allow_ports;
  c->sandbox.n_allow_ports = n;
  return 0;
}

int server_config_sandbox(json_t *o, server_config *c, hoist_err **err) {
  hoist_sandbox_opts *s = &c->sandbox;
  s->userns = HOIST_SANDBOX_USERNS_PRIVATE;
  s->require_limits = true;
  c->build_timeout = DEFAULT_BUILD_TIMEOUT;
  json_t *t = json_object_get(o, "build_timeout");
  if (t) {
    if (!json_is_integer(t) || json_integer_value(t) <= 0 || json_integer_value(t) > 7 * 86400)
      return hoist_err_set(err, EINVAL, "build_timeout: expected seconds, from 1 to 604800");
    c->build_timeout = (unsigned)json_integer_value(t);
  }
  s->timeout_s = c->build_timeout;
  if (size_setting(o, "build_memory", &s->memory, err) < 0 ||
      size_setting(o, "max_layer_bytes", &s->upper_bytes, err) < 0 ||
      size_setting(o, "build_tmp_size", &s->tmp_bytes, err) < 0)
    return -1;
  json_t *pids = json_object_get(o, "build_pids");
  if (pids) {
    if (!json_is_integer(pids) || json_integer_value(pids) < 8 ||
        json_integer_value(pids) > 4194304)
      return hoist_err_set(err, EINVAL, "build_pids: expected a number from 8 to 4194304");
    s->pids = (uint64_t)json_integer_value(pids);
  }
  json_t *cpus = json_object_get(o, "build_cpus");
  if (cpus) {
    double v = json_number_value(cpus);
    if (!json_is_number(cpus) || !(v >= 0.01 && v <= 4096))
      return hoist_err_set(err, EINVAL, "build_cpus: expected a number of cores, e.g. 1.5");
    s->cpu_millis = (uint64_t)(v * 1000 + 0.5);
  }
  const char *net = json_string_value(json_object_get(o, "build_network"));
  if (net && strcmp(net, "none") == 0)
    s->network = HOIST_SANDBOX_NET_NONE;
  else if (net && strcmp(net, "private") != 0)
    return hoist_err_set(err, EINVAL,
                         "build_network: expected \"private\" or \"none\" (never the host's)");
  json_t *ps = json_object_get(o, "build_process_sandbox");
  if (ps && !json_is_boolean(ps))
    return hoist_err_set(err, EINVAL,
                         "build_process_sandbox: expected true or false (false: no PID "
                         "namespace, for pods with a masked /proc)");
  s->no_process_sandbox = ps && json_is_false(ps);
  bool su = false, sg = false;
  if (range_setting(o, "subuid", &c->subids.uid_start, &c->subids.uid_count, &su, err) < 0 ||
      range_setting(o, "subgid", &c->subids.gid_start, &c->subids.gid_count, &sg, err) < 0)
    return -1;
  if (su != sg)
    return hoist_err_set(err, EINVAL, "subuid and subgid go together");
  if (su)
    s->subids = &c->subids;
  const char *cg = json_string_value(json_object_get(o, "cgroup_parent"));
  if (cg) {
    if (cg[0] != '/' || strstr(cg, ".."))
      return hoist_err_set(err, EINVAL, "cgroup_parent: expected an absolute cgroup path");
    c->cgroup_parent = hoist_strdup(cg);
    s->cgroup_parent = c->cgroup_parent;
  }
  if (allow_setting(o, c, err) < 0)
    return -1;
  c->max_log_bytes = DEFAULT_MAX_LOG;
  if (size_setting(o, "max_log_bytes", &c->max_log_bytes, err) < 0)
    return -1;
  const char *ov = json_string_value(json_object_get(o, "log_overflow"));
  if (ov && strcmp(ov, "fail") == 0)
    c->log_overflow_fails = true;
  else if (ov && strcmp(ov, "continue") != 0)
    return hoist_err_set(err, EINVAL, "log_overflow: expected \"continue\" or \"fail\"");
  return 0;
}

void server_config_sandbox_clear(server_config *c) {
  free(c->allow_ports);
  free(c->cgroup_parent);
}

char **server_sandbox_args(const server_config *c) {
  const hoist_sandbox_opts *s = &c->sandbox;
  size_t cap = 32 + 2 * s->n_allow_ports, n = 0;
  char **v = hoist_calloc(cap, sizeof *v);
  v[n++] = hoist_strdup("--userns=private");
  v[n++] = hoist_strdup("--require-limits");
  v[n++] = hoist_strdup("--network");
  v[n++] = hoist_strdup(s->network == HOIST_SANDBOX_NET_NONE ? "none" : "private");
  v[n++] = hoist_strdup("--timeout");
  v[n++] = hoist_asprintf("%u", s->timeout_s);
  static const struct {
    const char *flag;
    size_t off;
  } sizes[] = {
      {"--memory", offsetof(hoist_sandbox_opts, memory)},
      {"--pids-limit", offsetof(hoist_sandbox_opts, pids)},
      {"--max-layer-bytes", offsetof(hoist_sandbox_opts, upper_bytes)},
      {"--tmp-size", offsetof(hoist_sandbox_opts, tmp_bytes)},
  };
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    uint64_t val = *(const uint64_t *)((const char *)s + sizes[i].off);
    if (!val)
      continue;
    v[n++] = hoist_strdup(sizes[i].flag);
    v[n++] = hoist_asprintf("%" PRIu64, val);
  }
  if (s->cpu_millis) {
    v[n++] = hoist_strdup("--cpus");
    v[n++] = hoist_asprintf("%" PRIu64 ".%03" PRIu64, s->cpu_millis / 1000, s->cpu_millis % 1000);
  }
  for (size_t i = 0; i < s->n_allow_ports; i++) {
    v[n++] = hoist_strdup("--allow-port");
    v[n++] = hoist_asprintf("%u", s->allow_ports[i]);
  }
  if (s->subids) {
    v[n++] = hoist_asprintf("--subuid=%u:%u", s->subids->uid_start, s->subids->uid_count);
    v[n++] = hoist_asprintf("--subgid=%u:%u", s->subids->gid_start, s->subids->gid_count);
  }
  if (s->cgroup_parent) {
    v[n++] = hoist_strdup("--cgroup-parent");
    v[n++] = hoist_strdup(s->cgroup_parent);
  }
  if (s->no_process_sandbox)
    v[n++] = hoist_strdup("--no-process-sandbox");
  v[n] = NULL;
  return v;
}
