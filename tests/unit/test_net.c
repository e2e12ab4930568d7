/*
 * sandbox net: unit tests. What the build may reach is checked in network
 * namespaces these tests make: their routing tables, and TCP only over
 * loopback (the namespace's, forwarded by pasta to the host's). The namespace
 * tests need root, the start/stop ones pasta too; they skip otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "../../src/lib/sandbox/sandbox-private.h"
#include "hoist/fs.h"
#include "test_util.h"

/* ---------------------------------------------------------------- helpers */

/* "a.b.c.d/len" or "x:y::z/len". */
static sandbox_prefix pfx(const char *text) {
  sandbox_prefix p = {0};
  char addr[64];
  const char *slash = strchr(text, '/');
  snprintf(addr, sizeof addr, "%.*s", (int)(slash - text), text);
  p.family = strchr(addr, ':') ? AF_INET6 : AF_INET;
  if (inet_pton(p.family, addr, p.addr) != 1)
    fail_msg("bad prefix %s", text);
  p.prefix = (unsigned char)atoi(slash + 1);
  return p;
}

static void pfx_text(const sandbox_prefix *p, char buf[64]) {
  char a[INET6_ADDRSTRLEN] = "?";
  inet_ntop(p->family, p->addr, a, sizeof a);
  snprintf(buf, 64, "%s/%u", a, (unsigned)p->prefix);
}

/* True when q lies inside p. */
static bool covers(const sandbox_prefix *p, const sandbox_prefix *q) {
  if (p->family != q->family || p->prefix > q->prefix)
    return false;
  for (unsigned bit = 0; bit < p->prefix; bit++) {
    unsigned char m = (unsigned char)(0x80 >> (bit % 8));
    if ((p->addr[bit / 8] & m) != (q->addr[bit / 8] & m))
      return false;
  }
  return true;
}

static void root_or_skip(void) {
  if (geteuid() != 0) {
    print_message("# skipped: needs root\n");
    skip();
  }
}

static bool have_pasta(void) {
  const char *path = getenv("PATH");
  char dirs[4096];
  snprintf(dirs, sizeof dirs, "%s", path ? path : "/usr/bin:/bin");
  char *save = NULL;
  for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    char full[4200];
    snprintf(full, sizeof full, "%s/pasta", d);
    if (access(full, X_OK) == 0)
      return true;
  }
  return false;
}

static void pasta_or_skip(void) {
  root_or_skip();
  if (!have_pasta()) {
    print_message("# skipped: pasta (package passt) is not installed\n");
    skip();
  }
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads fd to its end (waiting at most ms for each piece). Caller frees. */
static char *read_all(int fd, int ms) {
  hoist_buf b = HOIST_BUF_INIT(1 << 20);
  char chunk[4096];
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0)
      break;
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0 || hoist_buf_append(&b, chunk, (size_t)n, NULL) < 0)
      break;
  }
  return hoist_buf_steal(&b);
}

/* True when the report has the line. */
static bool has_line(const char *report, const char *line) {
  size_t n = strlen(line);
  for (const char *p = report; (p = strstr(p, line)); p++)
    if ((p == report || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
      return true;
  return false;
}

static void assert_line(const char *report, const char *line) {
  if (!has_line(report, line))
    fail_msg("no line \"%s\" in the report:\n%s", line, report);
}

/* ------------------------------------------------- namespace child side */

/* Writes what the namespace looks like: "lo up", "disable_ipv6 N",
 * "unreachable PREFIX" and "route PREFIX" for the main table (IPv4 from
 * /proc/net/route, IPv6 from /proc/net/ipv6_route), "default" when an IPv4
 * default route is usable, "inet6 ADDR IFACE" for each IPv6 address. */
static void report_state(FILE *out) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct ifreq ifr = {0};
  memcpy(ifr.ifr_name, "lo", 3);
  if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP))
    fprintf(out, "lo up\n");
  if (s >= 0)
    close(s);

  char *v = NULL;
  if (hoist_fs_read_file(AT_FDCWD, "/proc/sys/net/ipv6/conf/default/disable_ipv6", 64, &v, NULL,
                         NULL) == 0)
    fprintf(out, "disable_ipv6 %c\n", v[0]);
  free(v);

  char *t = NULL;
  if (hoist_fs_read_file(AT_FDCWD, "/proc/self/net/route", 1 << 20, &t, NULL, NULL) == 0) {
    char *save = NULL;
    strtok_r(t, "\n", &save); /* header */
    for (char *l = strtok_r(NULL, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
      char iface[32];
      unsigned dst, gw, flags, mask;
      int refcnt, use, metric;
      if (sscanf(l, "%31s %x %x %x %d %d %d %x", iface, &dst, &gw, &flags, &refcnt, &use, &metric,
                 &mask) != 8)
        continue;
      sandbox_prefix p = {.family = AF_INET, .prefix = (unsigned char)__builtin_popcount(mask)};
      memcpy(p.addr, &dst, 4); /* the file shows the raw network-order word */
      char text[64];
      pfx_text(&p, text);
      if (dst == 0 && mask == 0 && !(flags & RTF_REJECT))
        fprintf(out, "default\n");
      fprintf(out, "%s %s\n", flags & RTF_REJECT ? "unreachable" : "route", text);
    }
  }
  free(t);
  t = NULL;
  if (hoist_fs_read_file(AT_FDCWD, "/proc/self/net/ipv6_route", 1 << 20, &t, NULL, NULL) == 0) {
    char *save = NULL;
    for (char *l = strtok_r(t, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
      char dst[33], src[33], hop[33], dev[32];
      unsigned plen, splen, metric, refcnt, use, flags;
      if (sscanf(l, "%32s %x %32s %x %32s %x %x %x %x %31s", dst, &plen, src, &splen, hop, &metric,
                 &refcnt, &use, &flags, dev) != 10)
        continue;
      sandbox_prefix p = {.family = AF_INET6, .prefix = (unsigned char)plen};
      for (int i = 0; i < 16; i++) {
        unsigned byte;
        sscanf(dst + 2 * i, "%2x", &byte);
        p.addr[i] = (unsigned char)byte;
      }
      char text[64];
      pfx_text(&p, text);
      fprintf(out, "%s %s\n", flags & RTF_REJECT ? "unreachable" : "route", text);
    }
  }
  free(t);
  t = NULL;
  if (hoist_fs_read_file(AT_FDCWD, "/proc/self/net/if_inet6", 1 << 20, &t, NULL, NULL) == 0) {
    char *save = NULL;
    for (char *l = strtok_r(t, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
      char hex[33], dev[32];
      unsigned idx, plen, scope, flags;
      if (sscanf(l, "%32s %x %x %x %x %31s", hex, &idx, &plen, &scope, &flags, dev) != 6)
        continue;
      unsigned char a[16];
      for (int i = 0; i < 16; i++) {
        unsigned byte;
        sscanf(hex + 2 * i, "%2x", &byte);
        a[i] = (unsigned char)byte;
      }
      char text[INET6_ADDRSTRLEN];
      inet_ntop(AF_INET6, a, text, sizeof text);
      fprintf(out, "inet6 %s %s\n", text, dev);
    }
  }
  free(t);
}

/* "setup R ERRNO WHAT" for one sandbox_net_setup call. */
static void report_setup(FILE *out, const char *key, const sandbox_prefix *p, size_t n) {
  const char *what = "-";
  int r = sandbox_net_setup(p, n, &what);
  int e = r < 0 ? errno : 0;
  fprintf(out, "%s %d %d %s\n", key, r, e, r < 0 ? what : "-");
}

typedef void (*ns_fn)(void *arg, FILE *out);

/* A child in a new network namespace (and a new user namespace when userns)
 * that runs before(arg) at once and fn(arg) when told to go, writing its
 * report into a pipe the parent reads. */
typedef struct {
  pid_t pid;
  int go;     /* write end: a byte lets the child go on */
  int report; /* read end */
} ns_child;

static void ns_child_start(ns_child *c, bool userns, ns_fn before, ns_fn fn, void *arg) {
  int go[2], rep[2];
  assert_int_equal(pipe2(go, O_CLOEXEC), 0);
  assert_int_equal(pipe2(rep, O_CLOEXEC), 0);
  c->pid = fork();
  assert_true(c->pid >= 0);
  if (c->pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(go[1]);
    close(rep[0]);
    FILE *out = fdopen(rep[1], "w");
    if (unshare(CLONE_NEWNET | (userns ? CLONE_NEWUSER : 0)) < 0) {
      fprintf(out, "E unshare: %s\n", strerror(errno));
      fclose(out);
      _exit(1);
    }
    if (before)
      before(arg, out);
    fprintf(out, "R\n");
    fflush(out);
    char b;
    if (read(go[0], &b, 1) != 1)
      _exit(1);
    fn(arg, out);
    fclose(out);
    _exit(0);
  }
  close(go[0]);
  close(rep[1]);
  c->go = go[1];
  c->report = rep[0];
}

/* Waits until the child is ready; returns what it wrote before (caller
 * frees), or NULL after killing it when it failed. */
static char *ns_child_ready(ns_child *c) {
  hoist_buf b = HOIST_BUF_INIT(1 << 20);
  char ch;
  for (;;) {
    struct pollfd p = {.fd = c->report, .events = POLLIN};
    if (poll(&p, 1, 10000) <= 0 || read(c->report, &ch, 1) != 1 ||
        hoist_buf_append(&b, &ch, 1, NULL) < 0)
      break;
    if (b.len >= 2 && b.data[b.len - 2] == 'R' && b.data[b.len - 1] == '\n' &&
        (b.len == 2 || b.data[b.len - 3] == '\n'))
      return hoist_buf_steal(&b);
  }
  print_message("# namespace child failed: %s\n", b.data ? b.data : "(nothing)");
  hoist_buf_free(&b);
  kill(c->pid, SIGKILL);
  waitpid(c->pid, NULL, 0);
  close(c->go);
  close(c->report);
  return NULL;
}

/* Lets the child go on (unless kill), then returns its report (caller frees)
 * and reaps it. */
static char *ns_child_finish(ns_child *c, bool kill_it) {
  if (kill_it)
    kill(c->pid, SIGKILL);
  else if (write(c->go, "g", 1) != 1)
    fail_msg("cannot wake the namespace child");
  close(c->go);
  char *report = read_all(c->report, 20000);
  close(c->report);
  int st;
  while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
    ;
  return report;
}

/* ------------------------------------------------------------ blocked */

static void test_blocked(void **state) {
  (void)state;
  sandbox_prefix b[SANDBOX_MAX_BLOCKED];
  size_t n = 0;
  hoist_err *err = NULL;
  assert_ok(sandbox_net_blocked(b, SANDBOX_MAX_BLOCKED, &n, &err), &err);
  assert_true(n >= 2 && n <= SANDBOX_MAX_BLOCKED);

  static const char *const must[] = {"169.254.0.0/16", "fe80::/10"};
  for (size_t i = 0; i < sizeof must / sizeof must[0]; i++) {
    sandbox_prefix want = pfx(must[i]);
    bool found = false;
    for (size_t k = 0; k < n; k++)
      found |= b[k].family == want.family && b[k].prefix == want.prefix &&
               memcmp(b[k].addr, want.addr, 16) == 0;
    if (!found)
      fail_msg("%s is not blocked", must[i]);
  }

  /* nothing of loopback, no entry inside another */
  sandbox_prefix lo4 = pfx("127.0.0.1/32"), lo6 = pfx("::1/128"), lo_net = pfx("127.0.0.0/8");
  for (size_t k = 0; k < n; k++) {
    char t[64];
    pfx_text(&b[k], t);
    if (covers(&b[k], &lo4) || covers(&b[k], &lo6) || covers(&lo_net, &b[k]))
      fail_msg("loopback entry %s", t);
    assert_true(b[k].family == AF_INET || b[k].family == AF_INET6);
    for (size_t j = 0; j < n; j++)
      if (j != k && covers(&b[j], &b[k]))
        fail_msg("%s is listed twice", t);
  }

  /* every address of the host but loopback: as /32 or /128, unless inside
   * a link-local range already listed */
  struct ifaddrs *ifs;
  assert_int_equal(getifaddrs(&ifs), 0);
  size_t seen = 0;
  for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
    if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
      continue;
    sandbox_prefix a = {.family = i->ifa_addr->sa_family};
    if (a.family == AF_INET) {
      memcpy(a.addr, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
      a.prefix = 32;
    } else {
      memcpy(a.addr, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
      a.prefix = 128;
    }
    if (covers(&lo_net, &a) || covers(&lo6, &a))
      continue;
    seen++;
    char t[64];
    pfx_text(&a, t);
    bool covered = false, exact = false;
    for (size_t k = 0; k < n; k++) {
      covered |= covers(&b[k], &a);
      exact |= b[k].prefix == a.prefix && covers(&b[k], &a);
    }
    sandbox_prefix ll4 = pfx("169.254.0.0/16"), ll6 = pfx("fe80::/10");
    if (!covered || (!exact && !covers(&ll4, &a) && !covers(&ll6, &a)))
      fail_msg("host address %s (%s) is not blocked", t, i->ifa_name);
  }
  freeifaddrs(ifs);
  print_message("# %zu host addresses, %zu prefixes blocked\n", seen, n);

  /* more than max is an error, not a shorter list */
  assert_true(sandbox_net_blocked(b, 1, &n, &err) < 0);
  assert_int_equal(hoist_err_root_code(err), HOIST_E_LIMIT);
  assert_err_contains(&err, "block");
}

/* -------------------------------------------------------------- setup */

#define MAX_CASE_PREFIXES 8

typedef struct {
  const char *name;
  const char *prefixes[MAX_CASE_PREFIXES];
  int err;                               /* expected errno, 0 for success */
  const char *what;                      /* expected step on failure */
  const char *routes[MAX_CASE_PREFIXES]; /* expected unreachable routes */
} setup_case;

typedef struct {
  sandbox_prefix p[MAX_CASE_PREFIXES];
  size_t n;
} prefix_list;

static void setup_child(void *arg, FILE *out) {
  prefix_list *l = arg;
  report_setup(out, "setup", l->p, l->n);
  report_state(out);
  /* a second run finds its routes there: NLM_F_EXCL */
  report_setup(out, "again", l->p, l->n);
}

static void test_setup(void **state) {
  (void)state;
  root_or_skip();
  static const setup_case cases[] = {
      {"the blocked kinds",
       {"169.254.0.0/16", "203.0.113.7/32", "2001:db8::1/128", "fe80::/10", "198.51.100.77/24"},
       0,
       NULL,
       {"169.254.0.0/16", "203.0.113.7/32", "2001:db8::1/128", "fe80::/10", "198.51.100.0/24"}},
      {"nothing to block", {NULL}, 0, NULL, {NULL}},
      {"the same prefix twice",
       {"203.0.113.7/32", "203.0.113.7/32"},
       EEXIST,
       "route 203.0.113.7/32",
       {"203.0.113.7/32"}},
      {"an IPv6 prefix twice",
       {"2001:db8:0:1::/64", "2001:db8:0:1::/64"},
       EEXIST,
       "route 2001:db8:0:1::/64",
       {"2001:db8:0:1::/64"}},
      {"the longest zero run",
       {"1:0:0:1:0:0:0:1/128", "1:0:0:1:0:0:0:1/128"},
       EEXIST,
       "route 1:0:0:1::1/128",
       {"1:0:0:1::1/128"}},
      {"no zero run", {"fe80::/10", "fe80::/10"}, EEXIST, "route fe80::/10", {"fe80::/10"}},
      {"a prefix too long", {"192.0.2.0/33"}, EINVAL, "route 192.0.2.0/33", {NULL}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const setup_case *c = &cases[i];
    prefix_list l = {.n = 0};
    for (; l.n < MAX_CASE_PREFIXES && c->prefixes[l.n]; l.n++)
      l.p[l.n] = pfx(c->prefixes[l.n]);
    ns_child ns;
    ns_child_start(&ns, false, NULL, setup_child, &l);
    char *pre = ns_child_ready(&ns);
    if (!pre)
      fail_msg("%s: no namespace", c->name);
    free(pre);
    char *report = ns_child_finish(&ns, false);
    char line[128];
    if (c->err == 0) {
      assert_line(report, "setup 0 0 -");
      for (size_t k = 0; k < MAX_CASE_PREFIXES && c->routes[k]; k++) {
        snprintf(line, sizeof line, "unreachable %s", c->routes[k]);
        assert_line(report, line);
      }
      if (l.n > 0) {
        snprintf(line, sizeof line, "again -1 %d route %s", EEXIST, c->routes[0]);
        assert_line(report, line);
      } else {
        assert_line(report, "again 0 0 -");
      }
    } else {
      snprintf(line, sizeof line, "setup -1 %d %s", c->err, c->what);
      assert_line(report, line);
      for (size_t k = 0; k < MAX_CASE_PREFIXES && c->routes[k]; k++) {
        snprintf(line, sizeof line, "unreachable %s", c->routes[k]);
        assert_line(report, line);
      }
    }
    assert_line(report, "lo up");
    if (access("/proc/sys/net/ipv6", F_OK) == 0) {
      assert_line(report, "disable_ipv6 1");
      assert_line(report, "inet6 ::1 lo"); /* lo keeps its IPv6 address */
    }
    free(report);
  }
  /* the 2001:db8 example above reads as the kernel shows it */
  sandbox_prefix p = pfx("2001:db8::1/128");
  char t[64];
  pfx_text(&p, t);
  assert_string_equal(t, "2001:db8::1/128");
}

/* ---------------------------------------------------------- start/stop */

static int listen_loopback(uint16_t *port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 4) < 0 ||
      getsockname(s, (struct sockaddr *)&a, &len) < 0)
    fail_msg("listen on 127.0.0.1: %s", strerror(errno));
  *port = ntohs(a.sin_port);
  return s;
}

/* Connects to 127.0.0.1:port; the socket, or -errno. */
static int connect_loopback(uint16_t port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return -errno;
  struct timeval tv = {.tv_sec = 5};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {
      .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
    int e = errno;
    close(s);
    return -e;
  }
  return s;
}

typedef struct {
  const char *name;
  bool userns;
  bool setup_first; /* sandbox_net_setup with the host's list before pasta */
  uint16_t forwarded, other;
  sandbox_prefix blocked[SANDBOX_MAX_BLOCKED];
  size_t n_blocked;
} start_case;

static void start_before(void *arg, FILE *out) {
  start_case *c = arg;
  if (c->setup_first)
    report_setup(out, "setup", c->blocked, c->n_blocked);
}

/* In the namespace, once pasta is up: the forwarded port reaches the host's
 * listener, the other port nothing; then the table. */
static void start_child(void *arg, FILE *out) {
  start_case *c = arg;
  int s = connect_loopback(c->forwarded);
  fprintf(out, "connect_forwarded %d\n", s < 0 ? -s : 0);
  if (s >= 0) {
    char b = 'x';
    if (write(s, &b, 1) == 1 && read(s, &b, 1) == 1)
      fprintf(out, "reply %c\n", b);
    close(s);
  }
  s = connect_loopback(c->other);
  fprintf(out, "connect_other %d\n", s < 0 ? -s : 0);
  if (s >= 0)
    close(s);
  if (!c->setup_first) {
    sandbox_prefix ll = pfx("169.254.0.0/16");
    report_setup(out, "setup", &ll, 1);
  }
  report_state(out);
}

/* The host side of the forwarded connection: one byte in, the next out. */
static bool serve_one(int listener) {
  struct pollfd p = {.fd = listener, .events = POLLIN};
  if (poll(&p, 1, 10000) != 1)
    return false;
  int s = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
  if (s < 0)
    return false;
  struct pollfd q = {.fd = s, .events = POLLIN};
  char b;
  bool ok = poll(&q, 1, 5000) == 1 && read(s, &b, 1) == 1;
  if (ok) {
    b = (char)(b + 1);
    ok = write(s, &b, 1) == 1;
  }
  close(s);
  return ok;
}

static bool process_gone(pid_t pid) { return kill(pid, 0) < 0 && errno == ESRCH; }

static void test_start_stop(void **state) {
  (void)state;
  pasta_or_skip();
  static start_case cases[] = {
      {.name = "plain namespace, set up after pasta", .userns = false, .setup_first = false},
      {.name = "user namespace, set up before pasta", .userns = true, .setup_first = true},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    start_case *c = &cases[i];
    hoist_err *err = NULL;
    if (c->setup_first)
      assert_ok(sandbox_net_blocked(c->blocked, SANDBOX_MAX_BLOCKED, &c->n_blocked, &err), &err);
    int fwd = listen_loopback(&c->forwarded);
    int other = listen_loopback(&c->other); /* listening on the host, not forwarded */

    ns_child ns;
    ns_child_start(&ns, c->userns, start_before, start_child, c);
    char *pre = ns_child_ready(&ns);
    if (!pre)
      fail_msg("%s: no namespace", c->name);
    pid_t pasta = -1;
    int64_t t0 = now_ms();
    int r = sandbox_net_start(ns.pid, c->userns, NULL, &c->forwarded, 1, &pasta, &err);
    int64_t took = now_ms() - t0;
    if (r < 0) {
      free(ns_child_finish(&ns, true));
      close(fwd);
      close(other);
      char *t = hoist_err_text(err);
      fail_msg("%s: sandbox_net_start: %s", c->name, t);
    }
    print_message("# %s: pasta %d ready in %lld ms\n", c->name, (int)pasta, (long long)took);
    assert_true(pasta > 0);
    assert_false(process_gone(pasta));

    if (write(ns.go, "g", 1) != 1)
      fail_msg("cannot wake the namespace child");
    bool served = serve_one(fwd);
    char *report = read_all(ns.report, 20000);
    close(ns.go);
    close(ns.report);
    int st;
    waitpid(ns.pid, &st, 0);
    close(fwd);
    close(other);

    /* the namespace's processes are gone: pasta is not */
    assert_false(process_gone(pasta));
    sandbox_net_stop(pasta);
    assert_true(process_gone(pasta));

    if (!served)
      fail_msg("%s: the host's listener got no byte; the child said:\n%s", c->name, report);
    assert_line(report, "connect_forwarded 0");
    assert_line(report, "reply y");
    char line[128];
    snprintf(line, sizeof line, "connect_other %d", ECONNREFUSED);
    assert_line(report, line);
    assert_line(report, "default");
    assert_line(report, "lo up");
    if (c->setup_first) {
      assert_line(pre, "setup 0 0 -");
      for (size_t k = 0; k < c->n_blocked; k++) {
        char t[64];
        pfx_text(&c->blocked[k], t);
        snprintf(line, sizeof line, "unreachable %s", t);
        assert_line(report, line);
      }
      /* pasta's interface came after IPv6 was turned off: only lo has it */
      for (const char *p = strstr(report, "inet6 "); p; p = strstr(p + 1, "inet6 ")) {
        const char *end = strchr(p, '\n');
        if (!(end - p > 3 && memcmp(end - 3, " lo", 3) == 0))
          fail_msg("%s: an IPv6 address outside lo: %.*s", c->name, (int)(end - p), p);
      }
    } else {
      assert_line(report, "setup 0 0 -");
      assert_line(report, "unreachable 169.254.0.0/16");
    }
    free(pre);
    free(report);
  }
}

static void nothing(void *arg, FILE *out) {
  (void)arg;
  (void)out;
}

/* pasta must not outlive a caller that dies without sandbox_net_stop. */
static void test_pasta_dies_with_caller(void **state) {
  (void)state;
  pasta_or_skip();
  assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  ns_child ns;
  ns_child_start(&ns, false, NULL, nothing, NULL);
  char *pre = ns_child_ready(&ns);
  assert_non_null(pre);
  free(pre);
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  pid_t caller = fork();
  assert_true(caller >= 0);
  if (caller == 0) {
    pid_t pasta = -1;
    hoist_err *err = NULL;
    int r = sandbox_net_start(ns.pid, false, NULL, NULL, 0, &pasta, &err);
    ssize_t w = write(p[1], &pasta, sizeof pasta);
    _exit(r == 0 && w == sizeof pasta ? 0 : 1);
  }
  close(p[1]);
  pid_t pasta = -1;
  ssize_t got = read(p[0], &pasta, sizeof pasta);
  close(p[0]);
  waitpid(caller, NULL, 0);
  /* pasta was the caller's child: now ours (subreaper), and killed */
  int st = 0;
  pid_t w = 0;
  for (int64_t end = now_ms() + 5000; got == sizeof pasta && pasta > 0 && now_ms() < end;) {
    w = waitpid(pasta, &st, WNOHANG);
    if (w != 0)
      break;
    usleep(5000);
  }
  bool alive = got == sizeof pasta && pasta > 0 && w == 0;
  if (alive)
    sandbox_net_stop(pasta);
  prctl(PR_SET_CHILD_SUBREAPER, 0);
  free(ns_child_finish(&ns, true));
  assert_int_equal(got, sizeof pasta);
  assert_true(pasta > 0);
  assert_false(alive);
  assert_int_equal(w, pasta);
  assert_true(WIFSIGNALED(st));
  assert_int_equal(WTERMSIG(st), SIGKILL);
}

/* ------------------------------------------------- pasta that fails */

typedef struct {
  const char *name;
  const char *script; /* NULL: no pasta in PATH */
  uint16_t ports[2];
  size_t n_ports;
  bool zombie; /* the namespace's process has exited */
  const char *want[5];
  const char *not_want;
} fail_case;

/* Runs sandbox_net_start in a child with dir as the only tool directory; returns the
 * error text (caller frees). */
static char *start_with_path(const char *dir, const fail_case *c) {
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(p[0]);
    /* the target: a namespace without a default route, or a dead process */
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) < 0)
      _exit(1);
    pid_t target = fork();
    if (target == 0) {
      close(ready[0]);
      if (c->zombie)
        _exit(0);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (unshare(CLONE_NEWNET | (geteuid() != 0 ? CLONE_NEWUSER : 0)) < 0)
        _exit(1);
      if (write(ready[1], "R", 1) != 1)
        _exit(1);
      pause();
      _exit(0);
    }
    close(ready[1]);
    char b;
    if (c->zombie) {
      siginfo_t si;
      waitid(P_PID, (id_t)target, &si, WEXITED | WNOWAIT);
    } else if (read(ready[0], &b, 1) != 1) {
      dprintf(p[1], "skip: no network namespace");
      _exit(0);
    }
    pid_t pasta = -1;
    hoist_err *err = NULL;
    int r = sandbox_net_start(target, false, dir, c->ports, c->n_ports, &pasta, &err);
    char *t = r < 0 ? hoist_err_text(err) : strdup("success");
    if (r == 0)
      sandbox_net_stop(pasta);
    char ns[64] = "", link[64];
    snprintf(link, sizeof link, "/proc/%d/ns/net", (int)target);
    ssize_t n = readlink(link, ns, sizeof ns - 1);
    ns[n > 0 ? n : 0] = '\0';
    dprintf(p[1], "%d %s\nthe namespace: %s", r, t, ns);
    kill(target, SIGKILL);
    _exit(0);
  }
  close(p[1]);
  char *text = read_all(p[0], 20000);
  close(p[0]);
  waitpid(pid, NULL, 0);
  return text;
}

static void test_start_failures(void **state) {
  (void)state;
  fail_case cases[] = {
      {"no pasta", NULL, {0}, 0, false, {"passt", "tool directories"}, NULL},
      {"pasta fails",
       "#!/bin/sh\n"
       "echo 'Failed to send 51 bytes to syslog' >&2\n"
       "echo \"Couldn't open network namespace\" >&2\n"
       "exit 3\n",
       {0},
       0,
       false,
       {"pasta exited with status 3: Couldn't open network namespace"},
       "syslog"},
      {"pasta says nothing", "#!/bin/sh\nexit 1\n", {0}, 0, false, {"status 1"}, "status 1:"},
      {"pasta's arguments and fds",
       "#!/bin/sh\n"
       "echo \"args $*\" >&2\n"
       "echo \"netns $(/bin/readlink /proc/self/fd/3)\" >&2\n"
       "exit 1\n",
       {1234, 5678},
       2,
       false,
       {"-f -q", "--config-net -4 --no-map-gw -t none -u none -T 1234,5678 -U none",
        "--netns /proc/self/fd/3", "{netns}", geteuid() == 0 ? "--runas 0" : "-q"},
       "--userns"},
      {"no ports: -T none",
       "#!/bin/sh\necho \"args $*\" >&2\nexit 1\n",
       {0},
       0,
       false,
       {"-T none -U none"},
       NULL},
      {"pasta killed", "#!/bin/sh\nkill -9 $$\n", {0}, 0, false, {"signal 9"}, NULL},
      {"port 0", "#!/bin/sh\nexit 1\n", {80, 0}, 2, false, {"port 0"}, "status"},
      {"the namespace is gone", "#!/bin/sh\nexit 1\n", {0}, 0, true, {"ns/net"}, "status"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const fail_case *c = &cases[i];
    char *dir = test_mkdtemp();
    if (c->script) {
      char *exe = hoist_asprintf("%s/pasta", dir);
      hoist_err *err = NULL;
      int fd = open(exe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
      assert_true(fd >= 0);
      assert_ok(hoist_fs_write_all(fd, c->script, strlen(c->script), &err), &err);
      close(fd);
      free(exe);
    }
    char *text = start_with_path(dir, c);
    if (strncmp(text, "skip", 4) == 0) {
      print_message("# %s\n", text);
      free(text);
      rmdir(dir);
      free(dir);
      skip();
    }
    if (strncmp(text, "-", 1) != 0)
      fail_msg("%s: expected an error, got \"%s\"", c->name, text);
    for (size_t k = 0; k < 5 && c->want[k]; k++) {
      char want[128];
      const char *ns = strstr(text, "the namespace: ");
      if (strcmp(c->want[k], "{netns}") == 0) /* fd 3 is the target's namespace */
        snprintf(want, sizeof want, "netns %s", ns ? ns + 15 : "?");
      else
        snprintf(want, sizeof want, "%s", c->want[k]);
      if (!strstr(text, want))
        fail_msg("%s: \"%s\" does not contain \"%s\"", c->name, text, want);
    }
    if (c->not_want && strstr(text, c->not_want))
      fail_msg("%s: \"%s\" contains \"%s\"", c->name, text, c->not_want);
    free(text);
    char *cmd = hoist_asprintf("%s/pasta", dir);
    unlink(cmd);
    free(cmd);
    rmdir(dir);
    free(dir);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_blocked),        cmocka_unit_test(test_setup),
      cmocka_unit_test(test_start_stop),     cmocka_unit_test(test_pasta_dies_with_caller),
      cmocka_unit_test(test_start_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
