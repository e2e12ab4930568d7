/*
 * sandbox: one command in an image's root filesystem, read top to bottom.
 *
 * Parent (hoist_sandbox_run): prepares everything that allocates (paths,
 * overlay options, the user, host fds), clones a child into new mount, PID,
 * UTS, IPC (+ user, + network) namespaces, writes its id maps, then streams
 * the command's output line by line until the namespace is gone.
 *
 * Child, PID 1 of the new namespace (child_main): mounts the overlay (or binds
 * the copy) at work/root, mounts /proc, a /dev tmpfs with bound host devices,
 * /dev/shm and /tmp tmpfs, binds the host's resolv.conf and hosts read-only,
 * pivots into the tree, forks the command and reaps until it exits, then
 * reports its status and exits, which kills whatever else is left in the
 * namespace. Every mount target is resolved inside the new root (openat2
 * RESOLVE_IN_ROOT) and mounted through its /proc/self/fd path, so a symlink in
 * the image never sends a mount to the host. The child never allocates: the
 * parent may have other threads holding allocator locks at clone time.
 *
 * Command (command_main): stdio on the pipes, rlimits, capability bounding set
 * cut to what a root package install needs, no_new_privs, the user, the
 * working directory, then execve along the image's PATH.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>

#include "hoist/fs.h"
#include "hoist/sandbox.h"
#include "sandbox-private.h"

extern char **environ;

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define HOSTNAME "hoist"

/* Host files bound into the image: devices first, then the resolver files. */
enum { H_NULL, H_ZERO, H_FULL, H_RANDOM, H_URANDOM, H_TTY, H_RESOLV, H_HOSTS, N_HOST };
static const char *const host_src[N_HOST] = {
    "/dev/null",    "/dev/zero", "/dev/full",        "/dev/random",
    "/dev/urandom", "/dev/tty",  "/etc/resolv.conf", "/etc/hosts",
};
static const char *const dev_names[H_RESOLV] = {"null", "zero", "full", "random", "urandom", "tty"};

/* Mount points the sandbox may create in the tree; removed from upper
 * afterwards when lower has no such entry. */
static const char *const own_targets[] = {"proc", "dev", "tmp", "etc/resolv.conf", "etc/hosts"};

/* What a root package install needs (as the default set of container engines). */
static const int allowed_caps[] = {
    CAP_CHOWN,      CAP_DAC_OVERRIDE, CAP_FOWNER,  CAP_FSETID,           CAP_KILL,
    CAP_SETGID,     CAP_SETUID,       CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_MKNOD,
    CAP_SYS_CHROOT, CAP_AUDIT_WRITE,  CAP_SETFCAP,
};

enum { MSG_FAIL = 1, MSG_OVERLAY, MSG_EXEC, MSG_STATUS };

/* One record on the control pipe, child -> parent (below PIPE_BUF: atomic). */
typedef struct {
  int32_t kind;
  int32_t err;
  int32_t status;
  char text[244];
} ctl_msg;

typedef struct {
  const hoist_sandbox_opts *o;
  bool userns;
  bool copy_mode;
  char *root;          /* work/root: the overlay mount point, or the copy */
  char *ovl_opts[3];   /* overlay option strings, tried in order */
  int host_fd[N_HOST]; /* O_PATH fds of host files, -1 when missing */
  int *bind_fd;        /* O_PATH fds of opts->binds' sources */
  bool *bind_dir;      /* whether each bind source is a directory */
  sandbox_user user;
  char *const *env;
  const char *path; /* PATH from env */
  const char *cwd;
  unsigned long nofile, nproc;
  int ctl;       /* write end of the control pipe */
  int out, errp; /* write ends of stdout/stderr pipes */
  int sync;      /* read end: id maps written */
} child_ctx;

/* ---------------------------------------------------------------- child */

static void child_send(const child_ctx *c, int kind, int e, int status, const char *text) {
  ctl_msg m = {.kind = kind, .err = e, .status = status};
  if (text)
    snprintf(m.text, sizeof m.text, "%s", text);
  ssize_t n;
  do
    n = write(c->ctl, &m, sizeof m);
  while (n < 0 && errno == EINTR);
}

__attribute__((noreturn, format(printf, 3, 4))) static void child_fail(const child_ctx *c, int kind,
                                                                       const char *fmt, ...) {
  int e = errno;
  char text[sizeof(((ctl_msg *)0)->text)];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  child_send(c, kind, e, 0, text);
  _exit(kind == MSG_EXEC ? 127 : 1);
}

/* "/proc/self/fd/N" into buf. */
static const char *fdpath(char buf[32], int fd) {
  snprintf(buf, 32, "/proc/self/fd/%d", fd);
  return buf;
}

static int resolve_in(int rootfd, const char *path, int flags) {
  struct open_how how = {
      .flags = (uint64_t)(flags | O_CLOEXEC),
      .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
  };
  int fd;
  do
    fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
  while (fd < 0 && errno == EAGAIN);
  return fd;
}

/* Opens (O_PATH) path inside the tree at rootfd, creating missing parents as
 * directories and the last component as a directory (dir) or an empty file.
 * Returns -1 with errno set; EEXIST for a last component that exists but does
 * not resolve (a dangling symlink). */
static int ensure_target(int rootfd, const char *path, bool dir) {
  int fd = resolve_in(rootfd, path, O_PATH);
  if (fd >= 0 || errno != ENOENT)
    return fd;
  char buf[PATH_MAX];
  size_t len = strlen(path);
  if (len >= sizeof buf) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(buf, path, len + 1);
  char *slash = strrchr(buf, '/');
  int parent;
  const char *name;
  if (slash) {
    *slash = '\0';
    parent = ensure_target(rootfd, buf, true);
    if (parent < 0)
      return -1;
    name = slash + 1;
  } else {
    parent = resolve_in(rootfd, ".", O_PATH | O_DIRECTORY);
    name = buf;
  }
  int r;
  if (dir) {
    r = mkdirat(parent, name, 0755);
  } else {
    r = openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (r >= 0)
      close(r);
  }
  int e = errno;
  close(parent);
  if (r < 0 && !(dir && e == EEXIST)) {
    errno = e;
    return -1;
  }
  return resolve_in(rootfd, path, O_PATH);
}

static int mount_at(int fd, const char *src, const char *type, unsigned long flags,
                    const char *data) {
  char p[32];
  return mount(src, fdpath(p, fd), type, flags, data);
}

/* Binds host fd src at target (an fd in the tree), read-only when ro. The
 * read-only remount keeps the flags a user namespace locks (nosuid, nodev...). */
static int bind_at(int rootfd, const char *target, int src, bool ro) {
  char s[32];
  int t = resolve_in(rootfd, target, O_PATH);
  if (t < 0)
    return -1;
  int r = mount_at(t, fdpath(s, src), NULL, MS_BIND | MS_REC, NULL);
  close(t);
  if (r < 0 || !ro)
    return r;
  t = resolve_in(rootfd, target, O_PATH);
  if (t < 0)
    return -1;
  struct statvfs sv;
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
  if (fstatvfs(t, &sv) == 0) {
    static const struct {
      unsigned long st, ms;
    } map[] = {{ST_NOSUID, MS_NOSUID},         {ST_NODEV, MS_NODEV},
               {ST_NOEXEC, MS_NOEXEC},         {ST_NOATIME, MS_NOATIME},
               {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
      if (sv.f_flag & map[i].st)
        flags |= map[i].ms;
  }
  r = mount_at(t, NULL, NULL, flags, NULL);
  close(t);
  return r;
}

static void loopback_up(const child_ctx *c) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    child_fail(c, MSG_FAIL, "socket");
  struct ifreq ifr = {0};
  memcpy(ifr.ifr_name, "lo", 3);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
    child_fail(c, MSG_FAIL, "loopback flags");
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
    child_fail(c, MSG_FAIL, "loopback up");
  close(s);
}

static void mount_tree(const child_ctx *c) {
  if (c->copy_mode) {
    if (mount(c->root, c->root, NULL, MS_BIND | MS_REC, NULL) < 0)
      child_fail(c, MSG_FAIL, "bind %s", c->root);
    return;
  }
  int e = 0;
  for (size_t i = 0; i < 3 && c->ovl_opts[i]; i++) {
    if (mount("overlay", c->root, "overlay", 0, c->ovl_opts[i]) == 0)
      return;
    if (i == 0 || errno != EINVAL)
      e = errno;
  }
  errno = e;
  child_fail(c, MSG_OVERLAY, "mount overlay on %s", c->root);
}

static void setup_dev(const child_ctx *c, int rootfd) {
  int t = ensure_target(rootfd, "dev", true);
  if (t < 0 || mount_at(t, "tmpfs", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=65536k") < 0)
    child_fail(c, MSG_FAIL, "mount /dev");
  close(t);
  int dev = resolve_in(rootfd, "dev", O_RDONLY | O_DIRECTORY);
  if (dev < 0)
    child_fail(c, MSG_FAIL, "open /dev");
  for (int i = 0; i < H_RESOLV; i++) {
    if (c->host_fd[i] < 0)
      continue;
    int f = openat(dev, dev_names[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (f < 0)
      child_fail(c, MSG_FAIL, "create /dev/%s", dev_names[i]);
    close(f);
    char target[32];
    snprintf(target, sizeof target, "dev/%s", dev_names[i]);
    if (bind_at(rootfd, target, c->host_fd[i], false) < 0)
      child_fail(c, MSG_FAIL, "bind /dev/%s", dev_names[i]);
  }
  static const char *const links[][2] = {
      {"fd", "/proc/self/fd"},       {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"},
      {"stderr", "/proc/self/fd/2"}, {"core", "/proc/kcore"},
  };
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
    if (symlinkat(links[i][1], dev, links[i][0]) < 0)
      child_fail(c, MSG_FAIL, "symlink /dev/%s", links[i][0]);
  if (mkdirat(dev, "shm", 01777) < 0 || mkdirat(dev, "pts", 0755) < 0)
    child_fail(c, MSG_FAIL, "mkdir /dev/shm");
  close(dev);
  t = resolve_in(rootfd, "dev/shm", O_PATH);
  if (t < 0 ||
      mount_at(t, "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k") < 0)
    child_fail(c, MSG_FAIL, "mount /dev/shm");
  close(t);
}

static void setup_mounts(const child_ctx *c) {
  int rootfd = open(c->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    child_fail(c, MSG_FAIL, "open %s", c->root);

  int t = ensure_target(rootfd, "proc", true);
  if (t < 0 || mount_at(t, "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
    child_fail(c, MSG_FAIL, "mount /proc");
  close(t);

  setup_dev(c, rootfd);

  t = ensure_target(rootfd, "tmp", true);
  if (t < 0 || mount_at(t, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
    child_fail(c, MSG_FAIL, "mount /tmp");
  close(t);

  for (int i = H_RESOLV; i < N_HOST; i++) {
    if (c->host_fd[i] < 0)
      continue;
    const char *target = own_targets[3 + i - H_RESOLV];
    t = ensure_target(rootfd, target, false);
    if (t < 0 && errno == EEXIST)
      continue; /* a dangling symlink in the image: nothing to bind onto */
    if (t < 0 || bind_at(rootfd, target, c->host_fd[i], true) < 0)
      child_fail(c, MSG_FAIL, "bind /%s", target);
    close(t);
  }

  for (size_t i = 0; i < c->o->n_binds; i++) {
    const char *target = c->o->binds[i].target;
    while (*target == '/')
      target++;
    t = ensure_target(rootfd, target, c->bind_dir[i]);
    if (t < 0 || bind_at(rootfd, target, c->bind_fd[i], true) < 0)
      child_fail(c, MSG_FAIL, "bind %s on %s", c->o->binds[i].source, c->o->binds[i].target);
    close(t);
  }

  if (fchdir(rootfd) < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
    child_fail(c, MSG_FAIL, "pivot_root into %s", c->root);
  if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
    child_fail(c, MSG_FAIL, "detach the host root");
  close(rootfd);
}

/* True when a single-id user namespace refuses setgroups ("deny"). */
static bool setgroups_denied(void) {
  char b[8] = {0};
  int fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  ssize_t n = read(fd, b, sizeof b - 1);
  close(fd);
  return n >= 4 && strncmp(b, "deny", 4) == 0;
}

static bool cap_allowed(int cap) {
  for (size_t i = 0; i < sizeof allowed_caps / sizeof allowed_caps[0]; i++)
    if (allowed_caps[i] == cap)
      return true;
  return false;
}

static void set_limit(const child_ctx *c, int resource, unsigned long want, const char *name) {
  struct rlimit rl;
  if (getrlimit(resource, &rl) < 0)
    child_fail(c, MSG_FAIL, "getrlimit %s", name);
  rlim_t v = want;
  if (rl.rlim_max != RLIM_INFINITY && v > rl.rlim_max)
    v = rl.rlim_max;
  rl.rlim_cur = rl.rlim_max = v;
  if (setrlimit(resource, &rl) < 0)
    child_fail(c, MSG_FAIL, "setrlimit %s", name);
}

/* execve along PATH as execvp does, but with the image's PATH, not ours. */
static void exec_in_path(const child_ctx *c) {
  const char *cmd = c->o->argv[0];
  char *const *argv = c->o->argv;
  if (strchr(cmd, '/')) {
    execve(cmd, argv, c->env);
    child_fail(c, MSG_EXEC, "exec %s", cmd);
  }
  int saved = ENOENT;
  const char *p = c->path;
  for (;;) {
    const char *colon = strchr(p, ':');
    size_t dl = colon ? (size_t)(colon - p) : strlen(p);
    char full[PATH_MAX];
    if (dl == 0)
      snprintf(full, sizeof full, "%s", cmd);
    else
      snprintf(full, sizeof full, "%.*s/%s", (int)dl, p, cmd);
    execve(full, argv, c->env);
    if (errno == EACCES)
      saved = EACCES;
    else if (errno != ENOENT && errno != ENOTDIR)
      saved = errno;
    if (!colon)
      break;
    p = colon + 1;
  }
  errno = saved;
  child_fail(c, MSG_EXEC, "exec %s", cmd);
}

__attribute__((noreturn)) static void command_main(const child_ctx *c) {
  setsid();
  int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null < 0 || dup2(null, 0) < 0 || dup2(c->out, 1) < 0 || dup2(c->errp, 2) < 0)
    child_fail(c, MSG_FAIL, "stdio");
  /* nothing of the caller's leaks in; the control pipe stays until execve */
  syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
  for (int sig = 1; sig < NSIG; sig++)
    signal(sig, SIG_DFL); /* ignored signals would survive execve */
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, NULL);

  set_limit(c, RLIMIT_NOFILE, c->nofile, "NOFILE");
  set_limit(c, RLIMIT_NPROC, c->nproc, "NPROC");

  for (int cap = 0; cap <= 63; cap++) {
    if (cap_allowed(cap))
      continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
      if (errno == EINVAL)
        break; /* past the kernel's last capability */
      child_fail(c, MSG_FAIL, "drop capability %d", cap);
    }
  }
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    child_fail(c, MSG_FAIL, "no_new_privs");

  const sandbox_user *u = &c->user;
  if (setgroups(u->n_groups, u->groups) < 0 && !(errno == EPERM && setgroups_denied()))
    child_fail(c, MSG_FAIL, "setgroups");
  if (setresgid(u->gid, u->gid, u->gid) < 0)
    child_fail(c, MSG_FAIL, "setgid %u", (unsigned)u->gid);
  if (setresuid(u->uid, u->uid, u->uid) < 0)
    child_fail(c, MSG_FAIL, "setuid %u", (unsigned)u->uid);
  if (u->uid == 0) {
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[2] = {{0}};
    for (size_t i = 0; i < sizeof allowed_caps / sizeof allowed_caps[0]; i++) {
      int cap = allowed_caps[i];
      d[cap / 32].effective |= 1U << (cap % 32);
      d[cap / 32].permitted |= 1U << (cap % 32);
    }
    if (syscall(SYS_capset, &h, d) < 0)
      child_fail(c, MSG_FAIL, "capset");
  }
  if (chdir(c->cwd) < 0)
    child_fail(c, MSG_EXEC, "working directory %s", c->cwd);
  exec_in_path(c);
  _exit(127);
}

/* Closes every fd from 3 up except those in keep: a thread of the caller may
 * be running another sandbox, whose pipes must not stay open in this one. */
static void close_other_fds(int *keep, size_t n) {
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
      int t = keep[j];
      keep[j] = keep[j - 1];
      keep[j - 1] = t;
    }
  unsigned from = 3;
  for (size_t i = 0; i <= n; i++) {
    unsigned to = i < n ? (unsigned)keep[i] : ~0U;
    if (i < n && keep[i] < 3)
      continue;
    if (to > from && syscall(SYS_close_range, from, to - 1, 0U) < 0 && errno == ENOSYS) {
      struct rlimit rl;
      unsigned last =
          getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? rl.rlim_cur : 65536;
      for (unsigned fd = from; fd < to && fd < last; fd++)
        close((int)fd);
    }
    if (i < n)
      from = (unsigned)keep[i] + 1;
  }
}

__attribute__((noreturn)) static void child_main(child_ctx *c) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  int keep[] = {c->ctl, c->out, c->errp, c->sync};
  close_other_fds(keep, sizeof keep / sizeof keep[0]);
  if (c->userns) {
    char b;
    if (read(c->sync, &b, 1) != 1)
      _exit(1); /* the parent could not write the id maps: it reports why */
  }
  close(c->sync);
  if (sethostname(HOSTNAME, strlen(HOSTNAME)) < 0)
    child_fail(c, MSG_FAIL, "sethostname");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    child_fail(c, MSG_FAIL, "make mounts private");
  if (c->o->network == HOIST_SANDBOX_NET_NONE)
    loopback_up(c);
  /* bind sources must belong to this mount namespace: opened after the clone */
  for (int i = 0; i < N_HOST; i++)
    c->host_fd[i] = open(host_src[i], O_PATH | O_CLOEXEC);
  for (size_t i = 0; i < c->o->n_binds; i++) {
    c->bind_fd[i] = open(c->o->binds[i].source, O_PATH | O_CLOEXEC);
    if (c->bind_fd[i] < 0)
      child_fail(c, MSG_FAIL, "open %s", c->o->binds[i].source);
  }
  mount_tree(c);
  setup_mounts(c);
  /* nothing of the host stays reachable through this process's fds */
  for (int i = 0; i < N_HOST; i++)
    if (c->host_fd[i] >= 0)
      close(c->host_fd[i]);
  for (size_t i = 0; i < c->o->n_binds; i++)
    close(c->bind_fd[i]);
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

  pid_t pid = fork();
  if (pid < 0)
    child_fail(c, MSG_FAIL, "fork");
  if (pid == 0)
    command_main(c);
  close(c->out);
  close(c->errp);
  for (;;) {
    int st;
    pid_t w = waitpid(-1, &st, 0);
    if (w == pid) {
      child_send(c, MSG_STATUS, 0, st, NULL);
      _exit(0); /* the kernel kills the rest of the namespace */
    }
    if (w < 0 && errno != EINTR)
      child_fail(c, MSG_FAIL, "wait");
  }
}

/* --------------------------------------------------------------- parent */

struct clone_args_v0 {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

/* fork() into new namespaces: clone3, or clone on kernels without it. */
static pid_t clone_ns(uint64_t flags) {
  struct clone_args_v0 a = {.flags = flags, .exit_signal = SIGCHLD};
  long r = syscall(SYS_clone3, &a, sizeof a);
  if (r < 0 && errno == ENOSYS)
    r = syscall(SYS_clone, (unsigned long)flags | SIGCHLD, NULL, NULL, NULL, NULL);
  return (pid_t)r;
}

static int write_proc(pid_t pid, const char *file, const char *text, hoist_err **err) {
  _cleanup_free_ char *path = hoist_asprintf("/proc/%d/%s", (int)pid, file);
  _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
    return hoist_err_errno(err, errno, "write %s", path);
  return 0;
}

static int run_tool(char *const *argv, hoist_err **err) {
  pid_t pid;
  int r = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
  if (r != 0)
    return hoist_err_errno(err, r, "run %s", argv[0]);
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR)
      return hoist_err_errno(err, errno, "wait %s", argv[0]);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    return hoist_err_set(err, EPERM, "%s failed (wait status %d)", argv[0], st);
  return 0;
}

/* True when name is an executable file in a directory of our PATH. */
static bool in_path(const char *name) {
  const char *path = getenv("PATH");
  if (!path || !*path)
    path = DEFAULT_PATH;
  for (const char *p = path;;) {
    const char *colon = strchr(p, ':');
    size_t dl = colon ? (size_t)(colon - p) : strlen(p);
    char full[PATH_MAX];
    snprintf(full, sizeof full, "%.*s/%s", (int)dl, p, name);
    if (dl > 0 && access(full, X_OK) == 0)
      return true;
    if (!colon)
      return false;
    p = colon + 1;
  }
}

/* Computes the maps of a run by the calling user; true when they need
 * newuidmap/newgidmap. */
static bool caller_id_maps(hoist_idmap u[2], size_t *nu, hoist_idmap g[2], size_t *ng) {
  uid_t uid = geteuid();
  if (uid == 0)
    return sandbox_id_maps(0, 0, NULL, NULL, NULL, false, u, nu, g, ng);
  struct passwd pw, *pwp = NULL;
  char pwbuf[4096];
  getpwuid_r(uid, &pw, pwbuf, sizeof pwbuf, &pwp);
  _cleanup_free_ char *subuid = NULL, *subgid = NULL;
  hoist_fs_read_file(AT_FDCWD, "/etc/subuid", 1 << 20, &subuid, NULL, NULL);
  hoist_fs_read_file(AT_FDCWD, "/etc/subgid", 1 << 20, &subgid, NULL, NULL);
  bool tools = in_path("newuidmap") && in_path("newgidmap");
  return sandbox_id_maps(uid, getegid(), pwp ? pwp->pw_name : NULL, subuid, subgid, tools, u, nu, g,
                         ng);
}

int hoist_sandbox_id_maps(const hoist_sandbox_opts *opts, hoist_idmap uid_map[2], size_t *n_uid,
                          hoist_idmap gid_map[2], size_t *n_gid, hoist_err **err) {
  (void)err;
  *n_uid = *n_gid = 0;
  if (geteuid() == 0 && !opts->userns)
    return 0;
  caller_id_maps(uid_map, n_uid, gid_map, n_gid);
  return 0;
}

static char *map_text(const hoist_idmap *m, size_t n) {
  _cleanup_buf_ hoist_buf b = HOIST_BUF_INIT(4096);
  for (size_t i = 0; i < n; i++)
    hoist_buf_appendf(&b, NULL, "%u %u %u\n", m[i].inside, m[i].outside, m[i].count);
  return hoist_buf_steal(&b);
}

/* Writes the child's id maps (hoist_sandbox_id_maps): directly, or through
 * newuidmap/newgidmap for subordinate ranges. A single-id map from an
 * unprivileged caller needs setgroups denied first. */
static int write_id_maps(pid_t pid, hoist_err **err) {
  hoist_idmap u[2], g[2];
  size_t nu, ng;
  if (caller_id_maps(u, &nu, g, &ng)) {
    char p[16], a[4][16];
    snprintf(p, sizeof p, "%d", (int)pid);
    snprintf(a[0], 16, "%u", u[0].outside);
    snprintf(a[1], 16, "%u", u[1].outside);
    snprintf(a[2], 16, "%u", u[1].count);
    snprintf(a[3], 16, "%u", g[0].outside);
    char b1[16], b2[16];
    snprintf(b1, 16, "%u", g[1].outside);
    snprintf(b2, 16, "%u", g[1].count);
    char *uargv[] = {"newuidmap", p, "0", a[0], "1", "1", a[1], a[2], NULL};
    char *gargv[] = {"newgidmap", p, "0", a[3], "1", "1", b1, b2, NULL};
    if (run_tool(uargv, err) < 0 || run_tool(gargv, err) < 0)
      return -1;
    return 0;
  }
  if (geteuid() != 0 && write_proc(pid, "setgroups", "deny\n", err) < 0)
    return -1;
  _cleanup_free_ char *um = map_text(u, nu), *gm = map_text(g, ng);
  if (write_proc(pid, "uid_map", um, err) < 0 || write_proc(pid, "gid_map", gm, err) < 0)
    return -1;
  return 0;
}

typedef struct {
  const hoist_sandbox_opts *o;
  bool is_stderr;
} line_ctx;

static void emit_line(void *ctx, const char *line, size_t len) {
  line_ctx *l = ctx;
  if (l->o->on_line)
    l->o->on_line(l->o->on_line_ctx, l->is_stderr, line, len);
  if (l->o->log_fd >= 0) {
    hoist_fs_write_all(l->o->log_fd, line, len, NULL);
    hoist_fs_write_all(l->o->log_fd, "\n", 1, NULL);
  }
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_pair(int p[2]) {
  for (int i = 0; i < 2; i++)
    if (p[i] >= 0)
      close(p[i]);
  p[0] = p[1] = -1;
}

/* Runs the child once. *overlay_failed when it could not mount overlayfs
 * (nothing ran). */
static int spawn(child_ctx *c, int *status, bool *timed_out, bool *overlay_failed,
                 hoist_err **err) {
  int ctl[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1}, sync[2] = {-1, -1};
  int ret = -1;
  pid_t pid = -1;
  *overlay_failed = false;
  if (pipe2(ctl, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
      pipe2(sync, O_CLOEXEC) < 0) {
    hoist_err_errno(err, errno, "sandbox: pipe");
    goto out;
  }
  c->ctl = ctl[1];
  c->out = out[1];
  c->errp = errp[1];
  c->sync = sync[0];
  uint64_t flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC;
  if (c->userns)
    flags |= CLONE_NEWUSER;
  if (c->o->network == HOIST_SANDBOX_NET_NONE)
    flags |= CLONE_NEWNET;
  pid = clone_ns(flags);
  if (pid < 0) {
    hoist_err_errno(err, errno, "sandbox: clone into new namespaces");
    goto out;
  }
  if (pid == 0) {
    close(ctl[0]);
    close(out[0]);
    close(errp[0]);
    close(sync[1]);
    child_main(c);
  }
  close(ctl[1]);
  close(out[1]);
  close(errp[1]);
  close(sync[0]);
  ctl[1] = out[1] = errp[1] = sync[0] = -1;
  if (c->userns) {
    if (write_id_maps(pid, err) < 0) {
      hoist_err_wrap(err, "sandbox: user namespace id maps");
      kill(pid, SIGKILL);
      goto out;
    }
    if (write(sync[1], "x", 1) != 1) {
      hoist_err_errno(err, errno, "sandbox: start");
      kill(pid, SIGKILL);
      goto out;
    }
  }
  close(sync[1]);
  sync[1] = -1;

  /* stream output until every writer is gone (the namespace died) */
  sandbox_lines lines[2] = {{0}};
  line_ctx lctx[2] = {{c->o, false}, {c->o, true}};
  ctl_msg msg = {0}, got = {0};
  size_t msg_len = 0;
  bool have_fail = false, have_status = false;
  int64_t deadline = c->o->timeout_s ? now_ms() + (int64_t)c->o->timeout_s * 1000 : -1;
  struct pollfd pfd[3] = {{out[0], POLLIN, 0}, {errp[0], POLLIN, 0}, {ctl[0], POLLIN, 0}};
  int open_fds = 3;
  while (open_fds > 0) {
    int wait_ms = -1;
    if (deadline >= 0) {
      int64_t left = deadline - now_ms();
      if (left <= 0) {
        hoist_info("sandbox: %s timed out after %us: killing its PID namespace", c->o->argv[0],
                   c->o->timeout_s);
        kill(pid, SIGKILL);
        if (timed_out)
          *timed_out = true;
        deadline = -1;
        continue;
      }
      wait_ms = left > 1000000 ? 1000000 : (int)left;
    }
    int n = poll(pfd, 3, wait_ms);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      hoist_err_errno(err, errno, "sandbox: poll");
      kill(pid, SIGKILL);
      break;
    }
    for (int i = 0; i < 3; i++) {
      if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      char buf[65536];
      ssize_t r;
      if (i < 2)
        r = read(pfd[i].fd, buf, sizeof buf);
      else
        r = read(pfd[i].fd, (char *)&msg + msg_len, sizeof msg - msg_len);
      if (r < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (r <= 0) {
        pfd[i].fd = -1;
        open_fds--;
        continue;
      }
      if (i < 2) {
        sandbox_lines_feed(&lines[i], buf, (size_t)r, emit_line, &lctx[i]);
        continue;
      }
      msg_len += (size_t)r;
      if (msg_len < sizeof msg)
        continue;
      msg_len = 0;
      msg.text[sizeof msg.text - 1] = '\0';
      if (msg.kind == MSG_STATUS) {
        have_status = true;
        *status = msg.status;
      } else if (msg.kind == MSG_EXEC) {
        /* the command could not start: its status is 127, the reason a line of its stderr */
        char line[sizeof msg.text + 64];
        int k = snprintf(line, sizeof line, "hoist: %s: %s", msg.text, strerror(msg.err));
        emit_line(&lctx[1], line, (size_t)k < sizeof line ? (size_t)k : sizeof line - 1);
      } else if (!have_fail) {
        have_fail = true;
        got = msg;
      }
    }
  }
  for (int i = 0; i < 2; i++) {
    sandbox_lines_flush(&lines[i], emit_line, &lctx[i]);
    sandbox_lines_free(&lines[i]);
  }
  int wst = SIGKILL; /* as killed by SIGKILL, should SIGCHLD be ignored and the wait fail */
  while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
    ;
  pid = -1;
  if (err && *err)
    goto out;
  if (have_fail && got.kind == MSG_OVERLAY) {
    *overlay_failed = true;
    hoist_info("sandbox: %s: %s", got.text, strerror(got.err));
    ret = 0;
    goto out;
  }
  if (have_fail) {
    hoist_err_errno(err, got.err, "sandbox: %s", got.text);
    goto out;
  }
  if (!have_status) {
    if (timed_out && *timed_out) {
      *status = wst;
      ret = 0;
      goto out;
    }
    hoist_err_set(err, EIO, "sandbox: its init exited without a status (wait status %d)", wst);
    goto out;
  }
  ret = 0;
out:
  if (pid > 0) {
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
      ;
  }
  close_pair(ctl);
  close_pair(out);
  close_pair(errp);
  close_pair(sync);
  return ret;
}

/* ------------------------------------------------------------- the run */

/* Reads path of the image at lowerfd (resolved inside it) into *out, or
 * leaves *out NULL when the image has no such file. */
static void read_image_file(int lowerfd, const char *path, char **out) {
  *out = NULL;
  _cleanup_err_ hoist_err *e = NULL;
  _cleanup_close_ int fd = hoist_fs_open_in_root(lowerfd, path, O_RDONLY | O_CLOEXEC, 0, &e);
  if (fd < 0)
    return;
  _cleanup_buf_ hoist_buf b = HOIST_BUF_INIT(1 << 22);
  char chunk[16384];
  ssize_t n;
  while ((n = read(fd, chunk, sizeof chunk)) > 0)
    if (hoist_buf_append(&b, chunk, (size_t)n, &e) < 0)
      return;
  *out = hoist_buf_steal(&b);
}

/* 1 when path is an empty directory, 0 when it has entries, negative on error. */
static int dir_is_empty(const char *path, hoist_err **err) {
  DIR *d = opendir(path);
  if (!d)
    return hoist_err_errno(err, errno, "open %s", path);
  struct dirent *de;
  int empty = 1;
  while ((de = readdir(d)))
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
      empty = 0;
  closedir(d);
  return empty;
}

static bool has_opaque_mark(int dirfd, const char *path) {
  char p[32], v[4];
  _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return true; /* unknown: keep it */
  snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
  return getxattr(p, "trusted.overlay.opaque", v, sizeof v) >= 0 ||
         getxattr(p, "user.overlay.opaque", v, sizeof v) >= 0;
}

/* Removes from upper each mount point the run created: a target that lower
 * has no entry for. Its parents go when left empty and they are new, or a
 * plain copy-up of lower's directory (an unlink refused on a mount point
 * copies the parent up). */
static void remove_mount_points(int lowerfd, int upperfd, const char *target) {
  while (*target == '/')
    target++;
  char buf[PATH_MAX];
  snprintf(buf, sizeof buf, "%s", target);
  bool last = true;
  for (;;) {
    struct stat ls, us;
    bool in_lower = fstatat(lowerfd, buf, &ls, AT_SYMLINK_NOFOLLOW) == 0;
    if (*buf && fstatat(upperfd, buf, &us, AT_SYMLINK_NOFOLLOW) == 0) {
      if (last && !in_lower && !S_ISDIR(us.st_mode))
        unlinkat(upperfd, buf, 0);
      else if (S_ISDIR(us.st_mode) &&
               (!in_lower ||
                (S_ISDIR(ls.st_mode) && ls.st_mode == us.st_mode && ls.st_uid == us.st_uid &&
                 ls.st_gid == us.st_gid && !has_opaque_mark(upperfd, buf))))
        unlinkat(upperfd, buf, AT_REMOVEDIR); /* fails, as it should, when not empty */
    }
    last = false;
    char *slash = strrchr(buf, '/');
    if (!slash)
      break;
    *slash = '\0';
  }
}

int hoist_sandbox_run(const hoist_sandbox_opts *opts, int *status, bool *timed_out,
                      hoist_err **err) {
  *status = 0;
  if (timed_out)
    *timed_out = false;
  if (!opts->lower || !opts->upper || !opts->argv || !opts->argv[0])
    return hoist_err_set(err, EINVAL, "sandbox: lower, upper and a command are required");
  for (size_t i = 0; i < opts->n_binds; i++)
    if (!opts->binds[i].source || !opts->binds[i].target || opts->binds[i].target[0] != '/')
      return hoist_err_set(err, EINVAL, "sandbox: bind %zu: a source and an absolute target", i);

  _cleanup_close_ int lowerfd = open(opts->lower, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lowerfd < 0)
    return hoist_err_errno(err, errno, "sandbox: lower %s", opts->lower);
  if (mkdir(opts->upper, 0755) < 0 && errno != EEXIST)
    return hoist_err_errno(err, errno, "sandbox: mkdir %s", opts->upper);
  int empty = dir_is_empty(opts->upper, err);
  if (empty < 0)
    return hoist_err_wrap(err, "sandbox: upper");
  if (!empty)
    return hoist_err_set(err, EEXIST, "sandbox: upper %s is not empty", opts->upper);
  _cleanup_free_ char *work =
      opts->work ? hoist_strdup(opts->work) : hoist_asprintf("%s.work", opts->upper);
  if (mkdir(work, 0700) < 0 && errno != EEXIST)
    return hoist_err_errno(err, errno, "sandbox: mkdir %s", work);
  _cleanup_close_ int workfd = open(work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (workfd < 0)
    return hoist_err_errno(err, errno, "sandbox: open %s", work);
  if (hoist_fs_rm_rf_at(workfd, "ovl", err) < 0 || hoist_fs_rm_rf_at(workfd, "root", err) < 0)
    return hoist_err_wrap(err, "sandbox: clear %s", work);
  if (mkdirat(workfd, "ovl", 0700) < 0 || mkdirat(workfd, "root", 0755) < 0)
    return hoist_err_errno(err, errno, "sandbox: mkdir in %s", work);

  child_ctx c = {.o = opts};
  for (int i = 0; i < N_HOST; i++)
    c.host_fd[i] = -1;
  int ret = -1;
  _cleanup_free_ char *passwd = NULL, *group = NULL;
  _cleanup_free_ char *lower_e = sandbox_overlay_escape(opts->lower);
  _cleanup_free_ char *upper_e = sandbox_overlay_escape(opts->upper);
  _cleanup_free_ char *ovl = hoist_asprintf("%s/ovl", work);
  _cleanup_free_ char *ovl_e = sandbox_overlay_escape(ovl);
  char *default_env[] = {"PATH=" DEFAULT_PATH, NULL};
  _cleanup_free_ char **env_home = NULL;
  _cleanup_free_ char *home_entry = NULL;
  c.root = hoist_asprintf("%s/root", work);
  c.userns = geteuid() != 0 || opts->userns;
  c.copy_mode = opts->force_copy;
  c.env = opts->env ? opts->env : default_env;
  c.path = DEFAULT_PATH;
  for (char *const *e = c.env; *e; e++)
    if (strncmp(*e, "PATH=", 5) == 0)
      c.path = *e + 5;
  c.cwd = opts->cwd && *opts->cwd ? opts->cwd : "/";
  c.nofile = opts->nofile ? opts->nofile : 65536;
  c.nproc = opts->nproc ? opts->nproc : 16384;
  const char *ux = c.userns ? ",userxattr" : "";
  c.ovl_opts[0] =
      hoist_asprintf("lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=off,metacopy=off%s", lower_e,
                     upper_e, ovl_e, ux);
  c.ovl_opts[1] =
      hoist_asprintf("lowerdir=%s,upperdir=%s,workdir=%s%s", lower_e, upper_e, ovl_e, ux);
  c.bind_fd = hoist_malloc0((opts->n_binds + 1) * sizeof(int));
  c.bind_dir = hoist_malloc0((opts->n_binds + 1) * sizeof(bool));
  for (size_t i = 0; i < opts->n_binds; i++)
    c.bind_fd[i] = -1;

  read_image_file(lowerfd, "etc/passwd", &passwd);
  read_image_file(lowerfd, "etc/group", &group);
  if (sandbox_user_resolve(opts->user, passwd, group, &c.user, err) < 0) {
    hoist_err_wrap(err, "sandbox");
    goto out;
  }
  /* HOME from the user's passwd entry unless the environment sets it (as container engines) */
  bool has_home = false;
  size_t n_env = 0;
  for (char *const *e = c.env; *e; e++, n_env++)
    has_home = has_home || strncmp(*e, "HOME=", 5) == 0;
  if (!has_home) {
    env_home = hoist_malloc0((n_env + 2) * sizeof(char *));
    memcpy(env_home, c.env, n_env * sizeof(char *));
    home_entry = hoist_asprintf("HOME=%s", c.user.home);
    env_home[n_env] = home_entry;
    c.env = env_home;
  }
  /* checked here for a clear error; opened again by the child, in its mount namespace */
  for (size_t i = 0; i < opts->n_binds; i++) {
    struct stat st;
    if (stat(opts->binds[i].source, &st) < 0) {
      hoist_err_errno(err, errno, "sandbox: bind source %s", opts->binds[i].source);
      goto out;
    }
    c.bind_dir[i] = S_ISDIR(st.st_mode);
  }

  for (;;) {
    if (c.copy_mode) {
      bool reflinked = false;
      if (hoist_fs_rm_rf_at(workfd, "root", err) < 0 ||
          sandbox_copy_tree(opts->lower, c.root, &reflinked, err) < 0) {
        hoist_err_wrap(err, "sandbox: copy of %s", opts->lower);
        goto out;
      }
      hoist_info("sandbox: running on a %s copy of %s; its changes are found by a tree diff",
                 reflinked ? "reflinked" : "full", opts->lower);
    }
    bool overlay_failed = false;
    if (spawn(&c, status, timed_out, &overlay_failed, err) < 0)
      goto out;
    if (!overlay_failed)
      break;
    if (c.copy_mode) {
      hoist_err_set(err, EIO, "sandbox: overlay failure reported in copy mode");
      goto out;
    }
    static const char notice[] = "hoist sandbox: overlayfs cannot be mounted here; running "
                                 "on a copy of the base and a tree diff (slower)";
    hoist_warn("%s", notice + 6);
    if (opts->log_fd >= 0 && hoist_fs_write_all(opts->log_fd, notice, sizeof notice - 1, NULL) == 0)
      hoist_fs_write_all(opts->log_fd, "\n", 1, NULL);
    c.copy_mode = true;
    if (hoist_fs_rm_rf_at(workfd, "ovl", err) < 0)
      goto out;
  }
  if (c.copy_mode && sandbox_diff_tree(opts->lower, c.root, opts->upper, err) < 0) {
    hoist_err_wrap(err, "sandbox: diff of %s", opts->lower);
    goto out;
  }
  {
    _cleanup_close_ int upperfd = open(opts->upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (upperfd < 0) {
      hoist_err_errno(err, errno, "sandbox: open %s", opts->upper);
      goto out;
    }
    for (size_t i = 0; i < sizeof own_targets / sizeof own_targets[0]; i++)
      remove_mount_points(lowerfd, upperfd, own_targets[i]);
    for (size_t i = 0; i < opts->n_binds; i++)
      remove_mount_points(lowerfd, upperfd, opts->binds[i].target);
  }
  ret = 0;
out:
  for (int i = 0; i < N_HOST; i++)
    if (c.host_fd[i] >= 0)
      close(c.host_fd[i]);
  for (size_t i = 0; i < opts->n_binds; i++)
    if (c.bind_fd[i] >= 0)
      close(c.bind_fd[i]);
  free(c.bind_fd);
  free(c.bind_dir);
  for (int i = 0; i < 3; i++)
    free(c.ovl_opts[i]);
  free(c.root);
  _cleanup_err_ hoist_err *cleanup_err = NULL;
  if (hoist_fs_rm_rf_at(workfd, "ovl", &cleanup_err) < 0 ||
      hoist_fs_rm_rf_at(workfd, "root", &cleanup_err) < 0) {
    _cleanup_free_ char *t = hoist_err_text(cleanup_err);
    hoist_warn("sandbox: cleaning %s: %s", work, t);
  }
  if (!opts->work)
    rmdir(work);
  return ret;
}
