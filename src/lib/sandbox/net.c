/*
 * sandbox net: the network of a build in mode "private".
 *
 * The build runs in a new network namespace that reaches the outside over
 * IPv4 through pasta (package passt), which carries the namespace's traffic
 * over ordinary sockets of the host. The namespace must not reach the host
 * itself, so:
 *
 * - sandbox_net_blocked (parent, host namespace) lists what is off limits:
 *   the host's own addresses and the link-local ranges (cloud metadata).
 * - sandbox_net_setup (sandbox child, inside the new namespace, before the
 *   command runs) brings lo up, keeps IPv6 off the interfaces made later
 *   (pasta's tap) and adds an unreachable route for each blocked prefix.
 * - sandbox_net_start (parent) runs pasta for the namespace with the gateway
 *   not mapped to the host, nothing forwarded inwards, and only the listed
 *   TCP ports forwarded from the namespace's loopback to the host's (package
 *   mirrors the operator allows); sandbox_net_stop kills it, since pasta
 *   outlives the namespace's processes.
 *
 * The namespace's loopback is its own, so the host's loopback is reachable
 * only through the forwarded ports.
 */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "hoist/fs.h"
#include "sandbox-private.h"

extern char **environ;

#define PASTA_WAIT_MS 10000 /* how long pasta may take to configure the namespace */
#define PASTA_POLL_MS 5     /* between two looks at the namespace's tables */
#define PASTA_ERR_MAX 4096  /* bytes of pasta's stderr kept for an error */
#define PROC_MAX (4u << 20) /* a /proc/PID/net table read whole */
#define DISABLE_IPV6 "/proc/sys/net/ipv6/conf/default/disable_ipv6"

/* Where pasta finds its namespaces (fds set up between fork and exec). */
#define PASTA_NETNS_FD 3
#define PASTA_USERNS_FD 4
#define STR_(x) #x
#define STR(x) STR_(x)

/* ------------------------------------------------------------- prefixes */

static size_t addr_len(int family) { return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0; }

/* True when the first bits bits of a and b are equal. */
static bool same_bits(const unsigned char *a, const unsigned char *b, unsigned bits) {
  unsigned bytes = bits / 8, rest = bits % 8;
  if (memcmp(a, b, bytes) != 0)
    return false;
  if (rest == 0)
    return true;
  unsigned char mask = (unsigned char)(0xff << (8 - rest));
  return ((a[bytes] ^ b[bytes]) & mask) == 0;
}

/* Adds p to out unless an entry already covers it; -1 when out is full. */
static int add_prefix(sandbox_prefix *out, size_t max, size_t *n, const sandbox_prefix *p) {
  for (size_t i = 0; i < *n; i++)
    if (out[i].family == p->family && out[i].prefix <= p->prefix &&
        same_bits(out[i].addr, p->addr, out[i].prefix))
      return 0;
  if (*n >= max)
    return -1;
  out[(*n)++] = *p;
  return 0;
}

/* An address inside a range already listed (the fe80:: address of each
 * interface) is not listed again, so that a host with many interfaces (veths
 * of containers) stays below max. */
int sandbox_net_blocked(sandbox_prefix *out, size_t max, size_t *n, hoist_err **err) {
  static const sandbox_prefix link_local[] = {
      {.family = AF_INET, .addr = {169, 254}, .prefix = 16},
      {.family = AF_INET6, .addr = {0xfe, 0x80}, .prefix = 10},
  };
  *n = 0;
  for (size_t i = 0; i < sizeof link_local / sizeof link_local[0]; i++)
    if (add_prefix(out, max, n, &link_local[i]) < 0)
      return hoist_err_set(err, HOIST_E_LIMIT, "net: more than %zu prefixes to block", max);
  struct ifaddrs *ifs;
  if (getifaddrs(&ifs) < 0)
    return hoist_err_errno(err, errno, "net: list the host's addresses");
  int r = 0;
  for (const struct ifaddrs *i = ifs; i; i = i->ifa_next) {
    sandbox_prefix p = {.family = i->ifa_addr ? i->ifa_addr->sa_family : AF_UNSPEC};
    if (p.family == AF_INET) {
      memcpy(p.addr, &((const struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
      p.prefix = 32;
      if (p.addr[0] == 127)
        continue;
    } else if (p.family == AF_INET6) {
      const struct in6_addr *a = &((const struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
      if (IN6_IS_ADDR_LOOPBACK(a))
        continue;
      memcpy(p.addr, a, 16);
      p.prefix = 128;
    } else {
      continue;
    }
    if (add_prefix(out, max, n, &p) < 0) {
      r = hoist_err_set(err, HOIST_E_LIMIT,
                        "net: the host has more addresses than the %zu prefixes a private "
                        "network can block",
                        max);
      break;
    }
  }
  freeifaddrs(ifs);
  return r;
}

/* ---------------------------------------------------- namespace (child) */

/* The rest of this section runs in the sandbox's child: no allocation, no
 * stdio, only async-signal-safe calls. */

static char *put_uint(char *p, unsigned v, unsigned base) {
  char tmp[16];
  int k = 0;
  do
    tmp[k++] = "0123456789abcdef"[v % base];
  while ((v /= base) > 0);
  while (k > 0)
    *p++ = tmp[--k];
  return p;
}

/* "route ADDR/LEN" for an error's step, in a per-thread buffer. */
static const char *route_step(const sandbox_prefix *pf) {
  static _Thread_local char buf[64];
  char *p = buf;
  memcpy(p, "route ", 6);
  p += 6;
  if (pf->family == AF_INET) {
    for (int i = 0; i < 4; i++) {
      if (i > 0)
        *p++ = '.';
      p = put_uint(p, pf->addr[i], 10);
    }
  } else if (pf->family == AF_INET6) {
    unsigned g[8];
    for (int i = 0; i < 8; i++)
      g[i] = (unsigned)pf->addr[2 * i] << 8 | pf->addr[2 * i + 1];
    /* the longest run of two or more zero groups is written "::" */
    int zero = -1, zero_len = 1;
    for (int i = 0, j; i < 8; i = j + 1) {
      for (j = i; j < 8 && g[j] == 0; j++)
        ;
      if (j - i > zero_len) {
        zero = i;
        zero_len = j - i;
      }
    }
    for (int i = 0; i < 8; i++) {
      if (i == zero) {
        *p++ = ':';
        *p++ = ':';
        i += zero_len - 1;
        continue;
      }
      if (i > 0 && i != zero + zero_len)
        *p++ = ':';
      p = put_uint(p, g[i], 16);
    }
  } else {
    *p++ = '?';
  }
  *p++ = '/';
  p = put_uint(p, pf->prefix, 10);
  *p = '\0';
  return buf;
}

static int loopback_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return -1;
  struct ifreq ifr = {0};
  memcpy(ifr.ifr_name, "lo", 3);
  int r = ioctl(s, SIOCGIFFLAGS, &ifr);
  if (r == 0) {
    ifr.ifr_flags |= IFF_UP;
    r = ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  int e = errno;
  close(s);
  errno = e;
  return r;
}

/* IPv6 off for the interfaces made from now on (lo keeps ::1). A kernel
 * without IPv6 has no such file, which is as good. */
static int ipv6_off_for_new(void) {
  int fd = open(DISABLE_IPV6, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 0 : -1;
  ssize_t w;
  do
    w = write(fd, "1", 1);
  while (w < 0 && errno == EINTR);
  int e = w < 0 ? errno : EIO;
  close(fd);
  if (w != 1) {
    errno = e;
    return -1;
  }
  return 0;
}

/* Adds an RTN_UNREACHABLE route for p (host bits cleared) to the main table
 * through rtnetlink socket s and waits for the kernel's answer. */
static int route_unreachable(int s, const sandbox_prefix *p, uint32_t seq) {
  size_t alen = addr_len(p->family);
  if (alen == 0 || p->prefix > alen * 8) {
    errno = EINVAL;
    return -1;
  }
  union {
    struct nlmsghdr nh;
    char buf[NLMSG_SPACE(sizeof(struct rtmsg)) + RTA_SPACE(16)];
  } req;
  memset(&req, 0, sizeof req);
  struct nlmsghdr *nh = &req.nh;
  nh->nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
  nh->nlmsg_type = RTM_NEWROUTE;
  nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
  nh->nlmsg_seq = seq;
  struct rtmsg *rt = NLMSG_DATA(nh);
  rt->rtm_family = (unsigned char)p->family;
  rt->rtm_dst_len = p->prefix;
  rt->rtm_table = RT_TABLE_MAIN;
  rt->rtm_protocol = RTPROT_STATIC;
  rt->rtm_scope = RT_SCOPE_UNIVERSE;
  rt->rtm_type = RTN_UNREACHABLE;
  struct rtattr *a = (struct rtattr *)(req.buf + NLMSG_ALIGN(nh->nlmsg_len));
  a->rta_type = RTA_DST;
  a->rta_len = (unsigned short)RTA_LENGTH(alen);
  unsigned char *dst = RTA_DATA(a);
  for (size_t i = 0; i < alen; i++) {
    unsigned bits = i * 8 >= p->prefix ? 0 : p->prefix - i * 8;
    dst[i] = bits >= 8 ? p->addr[i] : p->addr[i] & (unsigned char)(0xff << (8 - bits));
  }
  nh->nlmsg_len = NLMSG_ALIGN(nh->nlmsg_len) + RTA_ALIGN(a->rta_len);

  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  ssize_t w;
  do
    w = sendto(s, &req, nh->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel);
  while (w < 0 && errno == EINTR);
  if (w < 0)
    return -1;
  if ((size_t)w != nh->nlmsg_len) {
    errno = EIO;
    return -1;
  }
  union {
    struct nlmsghdr nh;
    char buf[1024];
  } ans;
  for (;;) {
    ssize_t got = recv(s, &ans, sizeof ans, 0);
    if (got < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    int left = (int)got;
    for (struct nlmsghdr *h = &ans.nh; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != seq || h->nlmsg_type != NLMSG_ERROR)
        continue;
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
        errno = EPROTO;
        return -1;
      }
      const struct nlmsgerr *e = NLMSG_DATA(h);
      if (e->error == 0)
        return 0;
      errno = -e->error;
      return -1;
    }
  }
}

int sandbox_net_setup(const sandbox_prefix *blocked, size_t n, const char **what) {
  if (loopback_up() < 0) {
    *what = "loopback up";
    return -1;
  }
  if (ipv6_off_for_new() < 0) {
    *what = "disable IPv6";
    return -1;
  }
  if (n == 0)
    return 0;
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) {
    *what = "route socket";
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    if (route_unreachable(s, &blocked[i], (uint32_t)i + 1) == 0)
      continue;
    if (errno == EAFNOSUPPORT && blocked[i].family == AF_INET6)
      continue; /* a kernel without IPv6: nothing to reach there */
    int e = errno;
    *what = route_step(&blocked[i]);
    close(s);
    errno = e;
    return -1;
  }
  close(s);
  return 0;
}

/* ------------------------------------------------------ pasta (parent) */

/* The -T spec: "none", or the ports comma-separated, each once (pasta
 * refuses a port named twice, as a mirror both allowed and forwarded is).
 * Caller frees. */
static char *port_spec(const uint16_t *ports, size_t n, hoist_err **err) {
  if (n == 0)
    return hoist_strdup("none");
  _cleanup_buf_ hoist_buf b = HOIST_BUF_INIT(0);
  for (size_t i = 0; i < n; i++) {
    if (ports[i] == 0) {
      hoist_err_set(err, EINVAL, "net: port 0 cannot be forwarded");
      return NULL;
    }
    bool seen = false;
    for (size_t j = 0; j < i && !seen; j++)
      seen = ports[j] == ports[i];
    if (!seen && hoist_buf_appendf(&b, err, "%s%u", b.len ? "," : "", (unsigned)ports[i]) < 0)
      return NULL;
  }
  return hoist_buf_steal(&b);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* fd moved (close-on-exec) to a number above the ones pasta is given, so that
 * no dup2 between fork and exec overwrites another source. */
static int high_fd(int fd) {
  if (fd < 0 || fd > PASTA_USERNS_FD)
    return fd;
  int h = fcntl(fd, F_DUPFD_CLOEXEC, PASTA_USERNS_FD + 1);
  int e = errno;
  close(fd);
  errno = e;
  return h;
}

typedef struct {
  int null;   /* /dev/null: stdin and stdout */
  int err;    /* write end of the stderr pipe */
  int netns;  /* the namespace, as PASTA_NETNS_FD */
  int userns; /* its user namespace (as PASTA_USERNS_FD), or -1 */
} pasta_fds;

/* Between fork and exec: async-signal-safe calls only (the caller may have
 * other threads, holding allocator locks). */
__attribute__((noreturn)) static void pasta_exec(const pasta_fds *f, pid_t parent, const char *exe,
                                                 char *const argv[]) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent)
    _exit(127); /* the caller died before the line above */
  /* dispositions as a fresh process has them: an ignored SIGPIPE inherited
   * from us makes this pasta refuse to start */
  struct sigaction dfl = {.sa_handler = SIG_DFL};
  for (int sig = 1; sig < NSIG; sig++)
    sigaction(sig, &dfl, NULL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (dup2(f->null, 0) < 0 || dup2(f->null, 1) < 0 || dup2(f->err, 2) < 0 ||
      dup2(f->netns, PASTA_NETNS_FD) < 0 ||
      (f->userns >= 0 && dup2(f->userns, PASTA_USERNS_FD) < 0))
    _exit(127);
  unsigned first = f->userns >= 0 ? PASTA_USERNS_FD + 1 : PASTA_NETNS_FD + 1;
  if (syscall(SYS_close_range, first, ~0U, 0U) < 0) {
    struct rlimit rl;
    unsigned last = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? rl.rlim_cur : 65536;
    for (unsigned fd = first; fd < last; fd++)
      close((int)fd);
  }
  execve(exe, argv, environ);
  char msg[64] = "cannot execute pasta: errno ";
  char *end = put_uint(msg + strlen(msg), (unsigned)errno, 10);
  *end++ = '\n';
  ssize_t w = write(2, msg, (size_t)(end - msg));
  (void)w;
  _exit(127);
}

/* Appends what pasta wrote on stderr to text (kept below PASTA_ERR_MAX).
 * Returns false at end of file. */
static bool drain(int fd, hoist_buf *text) {
  char chunk[1024];
  for (;;) {
    ssize_t r = read(fd, chunk, sizeof chunk);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return r < 0;                          /* EAGAIN: open, nothing more for now */
    size_t room = PASTA_ERR_MAX - text->len; /* past it, pasta's words are dropped */
    if (hoist_buf_append(text, chunk, (size_t)r < room ? (size_t)r : room, NULL) < 0)
      continue; /* full: the rest is drained and dropped */
  }
}

/* pasta's stderr for an error message: its lines joined by "; ", without
 * the "Failed to send N bytes to syslog" notes it adds where no syslog
 * listens. Caller frees. */
static char *pasta_said(const hoist_buf *text) {
  _cleanup_buf_ hoist_buf out = HOIST_BUF_INIT(0);
  const char *p = text->data ? text->data : "";
  while (*p) {
    size_t len = strcspn(p, "\n");
    static const char head[] = "Failed to send ", tail[] = " bytes to syslog";
    bool noise = len >= sizeof head - 1 + sizeof tail - 1 &&
                 memcmp(p, head, sizeof head - 1) == 0 &&
                 memcmp(p + len - (sizeof tail - 1), tail, sizeof tail - 1) == 0;
    while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == ' '))
      len--;
    if (!noise && len > 0 &&
        hoist_buf_appendf(&out, NULL, "%s%.*s", out.len ? "; " : "", (int)len, p) < 0)
      break; /* what fits is enough for a message */
    p += strcspn(p, "\n");
    if (*p)
      p++;
  }
  return hoist_buf_steal(&out);
}

/* True when /proc/PID/net/route has a usable default route. */
static bool has_default_route(const char *table) {
  const char *line = strchr(table, '\n'); /* past the header */
  while (line && *++line) {
    char iface[IFNAMSIZ + 1];
    unsigned dst, gw, flags, mask;
    int refcnt, use, metric;
    if (sscanf(line, "%16s %x %x %x %d %d %d %x", iface, &dst, &gw, &flags, &refcnt, &use, &metric,
               &mask) == 8 &&
        dst == 0 && mask == 0 && (flags & RTF_UP) && !(flags & RTF_REJECT))
      return true;
    line = strchr(line, '\n');
  }
  return false;
}

/* True when a socket listens on port in a /proc/PID/net/tcp or tcp6 table. */
static bool listens(const char *table, uint16_t port) {
  const char *line = strchr(table, '\n');
  while (line && *++line) {
    char local[64];
    unsigned state;
    if (sscanf(line, "%*s %63s %*s %x", local, &state) == 2 && state == 0x0A) {
      const char *colon = strrchr(local, ':');
      if (colon && strtoul(colon + 1, NULL, 16) == port)
        return true;
    }
    line = strchr(line, '\n');
  }
  return false;
}

/* 1 when the namespace of pid has its default route and a listener on each
 * forwarded port (pasta binds those only after configuring the routes), 0
 * when not yet. */
HOIST_WUR static int ns_ready(pid_t pid, const uint16_t *ports, size_t n_ports, hoist_err **err) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/net/route", (int)pid);
  _cleanup_free_ char *route = NULL;
  if (hoist_fs_read_file(AT_FDCWD, path, PROC_MAX, &route, NULL, err) < 0)
    return hoist_err_wrap(err, "net: the namespace's process %d", (int)pid);
  if (!has_default_route(route))
    return 0;
  if (n_ports == 0)
    return 1;
  _cleanup_free_ char *tcp = NULL, *tcp6 = NULL;
  snprintf(path, sizeof path, "/proc/%d/net/tcp", (int)pid);
  if (hoist_fs_read_file(AT_FDCWD, path, PROC_MAX, &tcp, NULL, err) < 0)
    return hoist_err_wrap(err, "net: the namespace's process %d", (int)pid);
  snprintf(path, sizeof path, "/proc/%d/net/tcp6", (int)pid);
  hoist_best_effort(hoist_fs_read_file(AT_FDCWD, path, PROC_MAX, &tcp6, NULL, NULL)); /* no IPv6 */
  for (size_t i = 0; i < n_ports; i++)
    if (!listens(tcp, ports[i]) && !(tcp6 && listens(tcp6, ports[i])))
      return 0;
  return 1;
}

/* Waits until pasta has configured the namespace of pid; on failure pasta is
 * killed and reaped, and the error carries what it said. */
HOIST_WUR static int wait_ready(pid_t pid, pid_t pasta, int errfd, const uint16_t *ports,
                                size_t n_ports, hoist_err **err) {
  _cleanup_buf_ hoist_buf text = HOIST_BUF_INIT(PASTA_ERR_MAX);
  bool open = true;
  int64_t deadline = now_ms() + PASTA_WAIT_MS;
  for (;;) {
    int st;
    pid_t w = waitpid(pasta, &st, WNOHANG);
    if (w == pasta) {
      drain(errfd, &text);
      _cleanup_free_ char *said = pasta_said(&text);
      if (WIFEXITED(st))
        return hoist_err_set(err, EIO, "net: pasta exited with status %d%s%s", WEXITSTATUS(st),
                             *said ? ": " : "", said);
      return hoist_err_set(err, EIO, "net: pasta was killed by signal %d%s%s",
                           WIFSIGNALED(st) ? WTERMSIG(st) : 0, *said ? ": " : "", said);
    }
    int r = ns_ready(pid, ports, n_ports, err);
    if (r == 1)
      return 0;
    if (r == 0 && now_ms() >= deadline) {
      drain(errfd, &text);
      _cleanup_free_ char *said = pasta_said(&text);
      r = hoist_err_set(err, ETIMEDOUT, "net: pasta did not set up the network in %d s%s%s",
                        PASTA_WAIT_MS / 1000, *said ? ": " : "", said);
    }
    if (r < 0) {
      sandbox_net_stop(pasta);
      return r;
    }
    struct pollfd pfd = {.fd = open ? errfd : -1, .events = POLLIN};
    if (poll(&pfd, 1, PASTA_POLL_MS) > 0)
      open = drain(errfd, &text);
  }
}

int sandbox_net_start(pid_t pid, bool userns, const char *tool_path, const uint16_t *ports,
                      size_t n_ports, pid_t *pasta, hoist_err **err) {
  *pasta = -1;
  _cleanup_free_ char *exe = sandbox_which(tool_path, "pasta");
  if (!exe)
    return hoist_err_set(err, ENOENT,
                         "net: pasta is not in the tool directories (%s): a private network "
                         "needs it (install the passt package)",
                         tool_path && *tool_path ? tool_path : "the standard ones");
  _cleanup_free_ char *tcp_out = port_spec(ports, n_ports, err);
  if (!tcp_out)
    return -EINVAL;
  bool root = geteuid() == 0;
  bool join_userns = userns && !root;

  char path[64];
  snprintf(path, sizeof path, "/proc/%d/ns/net", (int)pid);
  _cleanup_close_ int netns = high_fd(open(path, O_RDONLY | O_CLOEXEC));
  if (netns < 0)
    return hoist_err_errno(err, errno, "net: open %s", path);
  _cleanup_close_ int user = -1;
  if (join_userns) {
    snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
    user = high_fd(open(path, O_RDONLY | O_CLOEXEC));
    if (user < 0)
      return hoist_err_errno(err, errno, "net: open %s", path);
  }
  _cleanup_close_ int null = high_fd(open("/dev/null", O_RDWR | O_CLOEXEC));
  if (null < 0)
    return hoist_err_errno(err, errno, "net: open /dev/null");
  int p[2];
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
    return hoist_err_errno(err, errno, "net: pipe");
  _cleanup_close_ int err_r = high_fd(p[0]);
  _cleanup_close_ int err_w = high_fd(p[1]);
  if (err_r < 0 || err_w < 0)
    return hoist_err_errno(err, errno, "net: pipe");
  /* pasta's end blocks as usual; once we stop reading (when it is ready)
   * its writes fail with EPIPE: pasta ignores SIGPIPE */
  fcntl(err_w, F_SETFL, 0);

  char *argv[32];
  size_t k = 0;
  argv[k++] = "pasta"; /* pasta or passt: the binary goes by argv[0] */
  argv[k++] = "-f";
  argv[k++] = "-q";
  if (root) {
    /* as root pasta would become nobody, who cannot open the namespace */
    argv[k++] = "--runas";
    argv[k++] = "0";
  }
  argv[k++] = "--config-net";
  argv[k++] = "-4";
  argv[k++] = "--no-map-gw";
  argv[k++] = "-t";
  argv[k++] = "none";
  argv[k++] = "-u";
  argv[k++] = "none";
  argv[k++] = "-T";
  argv[k++] = tcp_out;
  argv[k++] = "-U";
  argv[k++] = "none";
  if (join_userns) {
    argv[k++] = "--userns";
    argv[k++] = "/proc/self/fd/" STR(PASTA_USERNS_FD);
  }
  argv[k++] = "--netns";
  argv[k++] = "/proc/self/fd/" STR(PASTA_NETNS_FD);
  argv[k] = NULL;

  pasta_fds fds = {.null = null, .err = err_w, .netns = netns, .userns = user};
  pid_t parent = getpid();
  /* pasta_exec makes only async-signal-safe calls until execve.
   * checksrc-allow: fork PR_SET_PDEATHSIG (pasta dies with us), which posix_spawn cannot set */
  pid_t child = fork();
  if (child < 0)
    return hoist_err_errno(err, errno, "net: fork");
  if (child == 0)
    pasta_exec(&fds, parent, exe, argv);
  close(steal_fd(&err_w));
  int r = wait_ready(pid, child, err_r, ports, n_ports, err);
  if (r < 0)
    return r;
  *pasta = child;
  return 0;
}

void sandbox_net_stop(pid_t pasta) {
  if (pasta <= 0)
    return;
  kill(pasta, SIGKILL);
  while (waitpid(pasta, NULL, 0) < 0 && errno == EINTR)
    ;
}
