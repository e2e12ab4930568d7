/*
 * sandbox: one command in an image's root filesystem, read top to bottom.
 *
 * Parent (hoist_sandbox_run): prepares everything that allocates (paths,
 * overlay and tmpfs options, the user, the id maps, the seccomp program, the
 * routes a private network must not have, the cgroup), clones a child into
 * new mount, PID, UTS and IPC namespaces (and a network namespace unless the
 * host's network is asked for; a caller that is not root adds a user
 * namespace at once, because it needs one to mount anything), then walks the
 * child through a short handshake and copies the command's streams (output
 * line by line, or every stream byte for byte with opts->stdio) until the
 * namespace is gone, watching the limits.
 *
 * Handshake (one byte on the sync pipe per step, a record on the control pipe
 * from the child):
 *   not root:  parent writes the id maps (newuidmap/newgidmap)  -> sync
 *   child:     hostname, private mounts, loopback and routes    -> READY
 *   parent:    cgroup attach, pasta for a private network       -> sync
 *   child:     overlay, /proc with the runtime spec's masks, /dev, /tmp,
 *              binds, pivot_root; as root with a subordinate range it then
 *              unshares a user namespace                         -> USERNS
 *   parent:    writes its maps (0.. -> the range)                -> sync
 *   child:     becomes root of that namespace, forks the command, reaps until
 *              the command exits, reports its status and exits, which kills
 *              whatever else is left in the namespace.
 * Without a PID namespace (no_process_sandbox) the child binds the caller's
 * /proc instead of mounting a new one and, as the subreaper of what the
 * command starts, kills and reaps all of it before it reports the status; on
 * the timeout or a limit the parent asks it to (SIGTERM) and kills the cgroup.
 * A root caller mounts everything while it is still host root and only then
 * enters the user namespace: the namespaces it made stay owned by the host's,
 * so root inside can neither mount, nor change a route, nor write a sysctl,
 * and every path the mounts need is reachable whatever its host permissions.
 *
 * Every mount target is resolved inside the new root (openat2 RESOLVE_IN_ROOT)
 * and mounted through its /proc/self/fd path, so a symlink in the image never
 * sends a mount to the host. Every writable mount is nodev. The child never
 * allocates: the parent may have other threads holding allocator locks at
 * clone time.
 *
 * Command (command_main): a new session, stdio on the pipes (or on the run's
 * pseudo-terminal, then its controlling terminal), rlimits (files, processes,
 * file size, no core files), capability bounding set cut to what a root
 * package install needs, the user, no_new_privs, the seccomp filter, the
 * working directory, then execve along the image's PATH.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <termios.h>
#include <time.h>

#include "hoist/fs.h"
#include "hoist/sandbox.h"
#include "sandbox-private.h"

extern char **environ;

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define HOSTNAME "hoist"
#define SETUP_TIMEOUT_MS 60000 /* one step of the handshake */
#define MONITOR_MS 1000        /* how often the limits are checked */

/* Host files bound into the image: devices first, then the resolver files. */
enum { H_NULL, H_ZERO, H_FULL, H_RANDOM, H_URANDOM, H_RESOLV, H_HOSTS, N_HOST };
static const char *const host_src[N_HOST] = {
    "/dev/null",    "/dev/zero",        "/dev/full",  "/dev/random",
    "/dev/urandom", "/etc/resolv.conf", "/etc/hosts",
};
static const char *const dev_names[H_RESOLV] = {"null", "zero", "full", "random", "urandom"};

/* Mount points the sandbox may create in the tree; removed from upper
 * afterwards when lower has no such entry. */
static const char *const own_targets[] = {"proc", "dev", "tmp", "etc/resolv.conf", "etc/hosts"};

/* The OCI runtime spec's defaults, as runc and crun apply them: files and
 * directories of /proc hidden (a /dev/null or an empty read-only tmpfs on
 * top), and those that stay visible but read-only. */
static const char *const proc_masked[] = {
    "proc/acpi",       "proc/asound",      "proc/kcore",       "proc/keys", "proc/latency_stats",
    "proc/timer_list", "proc/timer_stats", "proc/sched_debug", "proc/scsi",
};
static const char *const proc_readonly[] = {
    "proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger",
};

/* What a root package install needs (the default set of container engines
 * without MKNOD, which only a run that asks for it keeps). */
static const int allowed_caps[] = {
    CAP_CHOWN,       CAP_DAC_OVERRIDE, CAP_FOWNER,  CAP_FSETID,           CAP_KILL,
    CAP_SETGID,      CAP_SETUID,       CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
    CAP_AUDIT_WRITE, CAP_SETFCAP,
};

/* MSG_PROC: a new procfs refused with EPERM (a masked /proc: explained by the parent). */
enum { MSG_FAIL = 1, MSG_OVERLAY, MSG_EXEC, MSG_STATUS, MSG_READY, MSG_USERNS, MSG_PROC };

/* One record on the control pipe, child -> parent (below PIPE_BUF: atomic). */
typedef struct {
  int32_t kind;
  int32_t err;
  int32_t status;
  int32_t tmp_full;
  char text[240];
} ctl_msg;

typedef struct {
  const hoist_sandbox_opts *o;
  bool userns_at_clone; /* not root: the user namespace comes with the clone */
  bool userns_late;     /* root with a range: unshared after the mounts */
  bool netns;           /* a network namespace of its own */
  bool nopid;           /* no PID namespace: /proc bound, descendants killed by the helper */
  int proc_fd;          /* nopid: O_PATH fd of the caller's /proc, opened in the child */
  bool copy_mode;
  char *root;          /* work/root: the overlay mount point, or the copy */
  char *ovl_opts[3];   /* overlay option strings, tried in order */
  char *tmp_opts;      /* /tmp tmpfs options */
  char *dev_opts;      /* /dev tmpfs options */
  char *shm_opts;      /* /dev/shm tmpfs options */
  int host_fd[N_HOST]; /* O_PATH fds of host files, -1 when missing */
  int *bind_fd;        /* O_PATH fds of opts->binds' sources */
  bool *bind_dir;      /* whether each bind source is a directory */
  sandbox_user user;
  char *const *env;
  const char *path; /* PATH from env */
  const char *cwd;
  unsigned long nofile, nproc;
  uint64_t fsize; /* RLIMIT_FSIZE: no file larger than the changes may be */
  bool mknod;
  sandbox_bpf bpf;
  sandbox_prefix blocked[SANDBOX_MAX_BLOCKED]; /* routes a private network must not have */
  size_t n_blocked;
  int ctl;           /* write end of the control pipe */
  int out, errp;     /* write ends of stdout/stderr pipes; -1 with a terminal */
  int in;            /* read end of the stdin pipe; -1: /dev/null (or the terminal) */
  int tty;           /* the pseudo-terminal's slave (opts->stdio->tty); -1: none */
  char tty_path[32]; /* its /dev/pts path, opened again in the child's mount namespace */
  int tty_node;      /* O_PATH fd of that path there (a bind source); -1: none */
  int sync;          /* read end: the parent's go-ahead */
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

/* Waits for the parent's next go-ahead; the parent reports why when it
 * cannot give one, so the child just leaves. */
static void child_wait(const child_ctx *c) {
  char b;
  ssize_t n;
  do
    n = read(c->sync, &b, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1)
    _exit(1);
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

/* Remounts the mount at fd (a bind) with flags added, keeping the flags a
 * user namespace locks (the source mount's nosuid, nodev, noexec...). */
static int remount_bind(int fd, unsigned long flags) {
  struct statvfs sv;
  flags |= MS_BIND | MS_REMOUNT;
  if (fstatvfs(fd, &sv) == 0) {
    static const struct {
      unsigned long st, ms;
    } map[] = {{ST_NOSUID, MS_NOSUID},   {ST_NODEV, MS_NODEV},           {ST_NOEXEC, MS_NOEXEC},
               {ST_NOATIME, MS_NOATIME}, {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME},
               {ST_RDONLY, MS_RDONLY}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
      if (sv.f_flag & map[i].st)
        flags |= map[i].ms;
  }
  return mount_at(fd, NULL, NULL, flags, NULL);
}

/* Binds host fd src at target (a path in the tree), then remounts it with
 * flags added (MS_RDONLY, MS_NODEV...) unless they are 0. */
static int bind_at(int rootfd, const char *target, int src, unsigned long flags) {
  char s[32];
  int t = resolve_in(rootfd, target, O_PATH);
  if (t < 0)
    return -1;
  int r = mount_at(t, fdpath(s, src), NULL, MS_BIND | MS_REC, NULL);
  close(t);
  if (r < 0 || !flags)
    return r;
  t = resolve_in(rootfd, target, O_PATH);
  if (t < 0)
    return -1;
  r = remount_bind(t, flags);
  close(t);
  return r;
}

static void mount_tree(const child_ctx *c) {
  if (c->copy_mode) {
    if (mount(c->root, c->root, NULL, MS_BIND | MS_REC, NULL) < 0)
      child_fail(c, MSG_FAIL, "bind %s", c->root);
    int fd = open(c->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || remount_bind(fd, MS_NODEV | MS_NOSUID) < 0)
      child_fail(c, MSG_FAIL, "remount %s nodev", c->root);
    close(fd);
    return;
  }
  int e = 0;
  for (size_t i = 0; i < 3 && c->ovl_opts[i]; i++) {
    if (mount("overlay", c->root, "overlay", MS_NODEV | MS_NOSUID, c->ovl_opts[i]) == 0)
      return;
    if (i == 0 || errno != EINVAL)
      e = errno;
  }
  errno = e;
  child_fail(c, MSG_OVERLAY, "mount overlay on %s", c->root);
}

/* /proc's masked entries get /dev/null (files) or an empty read-only tmpfs
 * (directories) on top; the read-only ones a read-only bind of themselves.
 * Entries this kernel lacks are skipped. */
static void mask_proc(const child_ctx *c, int rootfd) {
  for (size_t i = 0; i < sizeof proc_masked / sizeof proc_masked[0]; i++) {
    int t = resolve_in(rootfd, proc_masked[i], O_PATH);
    if (t < 0 && errno == ENOENT)
      continue;
    struct stat st;
    if (t < 0 || fstat(t, &st) < 0)
      child_fail(c, MSG_FAIL, "mask /%s", proc_masked[i]);
    char s[32];
    int r = S_ISDIR(st.st_mode)
                ? mount_at(t, "tmpfs", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                           "mode=0555,size=4k")
                : mount_at(t, fdpath(s, c->host_fd[H_NULL]), NULL, MS_BIND, NULL);
    if (r < 0)
      child_fail(c, MSG_FAIL, "mask /%s", proc_masked[i]);
    close(t);
  }
  for (size_t i = 0; i < sizeof proc_readonly / sizeof proc_readonly[0]; i++) {
    int t = resolve_in(rootfd, proc_readonly[i], O_PATH);
    if (t < 0 && errno == ENOENT)
      continue;
    char s[32];
    if (t < 0 || mount_at(t, fdpath(s, t), NULL, MS_BIND | MS_REC, NULL) < 0)
      child_fail(c, MSG_FAIL, "bind /%s", proc_readonly[i]);
    close(t);
    t = resolve_in(rootfd, proc_readonly[i], O_PATH);
    if (t < 0 || remount_bind(t, MS_RDONLY) < 0)
      child_fail(c, MSG_FAIL, "make /%s read-only", proc_readonly[i]);
    close(t);
  }
}

static void setup_dev(const child_ctx *c, int rootfd) {
  int t = ensure_target(rootfd, "dev", true);
  if (t < 0 || mount_at(t, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, c->dev_opts) < 0)
    child_fail(c, MSG_FAIL, "mount /dev");
  close(t);
  int dev = resolve_in(rootfd, "dev", O_RDONLY | O_DIRECTORY);
  if (dev < 0)
    child_fail(c, MSG_FAIL, "open /dev");
  /* the host's own nodes, bound: usable although /dev itself is nodev */
  for (int i = 0; i < H_RESOLV; i++) {
    if (c->host_fd[i] < 0)
      continue;
    int f = openat(dev, dev_names[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (f < 0)
      child_fail(c, MSG_FAIL, "create /dev/%s", dev_names[i]);
    close(f);
    char target[32];
    snprintf(target, sizeof target, "dev/%s", dev_names[i]);
    if (bind_at(rootfd, target, c->host_fd[i], 0) < 0)
      child_fail(c, MSG_FAIL, "bind /dev/%s", dev_names[i]);
  }
  /* the terminal, named: nodev, so only the descriptors the command is given
   * reach it; ttyname() finds it here */
  if (c->tty >= 0) {
    int f = openat(dev, "console", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (f < 0)
      child_fail(c, MSG_FAIL, "create /dev/console");
    close(f);
    if (bind_at(rootfd, "dev/console", c->tty_node, MS_NOSUID | MS_NODEV | MS_NOEXEC) < 0)
      child_fail(c, MSG_FAIL, "bind the terminal on /dev/console");
  }
  static const char *const links[][2] = {
      {"fd", "/proc/self/fd"},
      {"stdin", "/proc/self/fd/0"},
      {"stdout", "/proc/self/fd/1"},
      {"stderr", "/proc/self/fd/2"},
  };
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
    if (symlinkat(links[i][1], dev, links[i][0]) < 0)
      child_fail(c, MSG_FAIL, "symlink /dev/%s", links[i][0]);
  if (mkdirat(dev, "shm", 01777) < 0 || mkdirat(dev, "pts", 0755) < 0)
    child_fail(c, MSG_FAIL, "mkdir /dev/shm");
  close(dev);
  t = resolve_in(rootfd, "dev/shm", O_PATH);
  if (t < 0 || mount_at(t, "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, c->shm_opts) < 0)
    child_fail(c, MSG_FAIL, "mount /dev/shm");
  close(t);
}

static void setup_mounts(const child_ctx *c) {
  int rootfd = open(c->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    child_fail(c, MSG_FAIL, "open %s", c->root);

  int t = ensure_target(rootfd, "proc", true);
  if (c->nopid) {
    /* the caller's /proc with what is mounted on it (a runtime's masks), then ours on top */
    if (t < 0 || bind_at(rootfd, "proc", c->proc_fd, MS_NOSUID | MS_NODEV | MS_NOEXEC) < 0)
      child_fail(c, MSG_FAIL, "bind the host's /proc");
  } else if (t < 0 || mount_at(t, "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
    child_fail(c, t >= 0 && errno == EPERM ? MSG_PROC : MSG_FAIL, "mount /proc");
  }
  close(t);
  mask_proc(c, rootfd);

  setup_dev(c, rootfd);

  t = ensure_target(rootfd, "tmp", true);
  if (t < 0 || mount_at(t, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, c->tmp_opts) < 0)
    child_fail(c, MSG_FAIL, "mount /tmp");
  close(t);

  for (int i = H_RESOLV; i < N_HOST; i++) {
    if (c->host_fd[i] < 0)
      continue;
    const char *target = own_targets[3 + i - H_RESOLV];
    t = ensure_target(rootfd, target, false);
    if (t < 0 && errno == EEXIST)
      continue; /* a dangling symlink in the image: nothing to bind onto */
    if (t < 0 || bind_at(rootfd, target, c->host_fd[i], MS_RDONLY | MS_NOSUID | MS_NODEV) < 0)
      child_fail(c, MSG_FAIL, "bind /%s", target);
    close(t);
  }

  for (size_t i = 0; i < c->o->n_binds; i++) {
    const char *target = c->o->binds[i].target;
    while (*target == '/')
      target++;
    t = ensure_target(rootfd, target, c->bind_dir[i]);
    unsigned long flags = MS_NOSUID | MS_NODEV | (c->o->binds[i].writable ? 0 : MS_RDONLY);
    if (t < 0 || bind_at(rootfd, target, c->bind_fd[i], flags) < 0)
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

static bool cap_allowed(const child_ctx *c, int cap) {
  if (cap == CAP_MKNOD)
    return c->mknod;
  for (size_t i = 0; i < sizeof allowed_caps / sizeof allowed_caps[0]; i++)
    if (allowed_caps[i] == cap)
      return true;
  return false;
}

static void set_limit(const child_ctx *c, int resource, uint64_t want, const char *name) {
  struct rlimit rl;
  if (getrlimit(resource, &rl) < 0)
    child_fail(c, MSG_FAIL, "getrlimit %s", name);
  rlim_t v = want == HOIST_SANDBOX_UNLIMITED ? RLIM_INFINITY : (rlim_t)want;
  if (rl.rlim_max != RLIM_INFINITY && (v == RLIM_INFINITY || v > rl.rlim_max))
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
  /* no controlling terminal but the run's own pseudo-terminal, if asked for
   * (TIOCSTI is refused by the filter either way) */
  setsid();
  if (c->tty >= 0) {
    if (ioctl(c->tty, TIOCSCTTY, 0) < 0)
      child_fail(c, MSG_FAIL, "make the pseudo-terminal the controlling terminal");
    if (dup2(c->tty, 0) < 0 || dup2(c->tty, 1) < 0 || dup2(c->tty, 2) < 0)
      child_fail(c, MSG_FAIL, "stdio");
  } else {
    int in = c->in >= 0 ? c->in : open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in < 0 || dup2(in, 0) < 0 || dup2(c->out, 1) < 0 || dup2(c->errp, 2) < 0)
      child_fail(c, MSG_FAIL, "stdio");
  }
  /* nothing of the caller's leaks in; the control pipe stays until execve */
  syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
  /* ignored signals would survive execve */
  for (int sig = 1; sig < NSIG; sig++)
    signal(sig, SIG_DFL); /* checksrc-allow: signal in the command's own process, to exec */
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, NULL);

  set_limit(c, RLIMIT_NOFILE, c->nofile, "NOFILE");
  set_limit(c, RLIMIT_NPROC, c->nproc, "NPROC");
  set_limit(c, RLIMIT_FSIZE, c->fsize, "FSIZE");
  set_limit(c, RLIMIT_CORE, 0, "CORE");

  for (int cap = 0; cap <= 63; cap++) {
    if (cap_allowed(c, cap))
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
  if (syscall(SYS_setgroups, u->n_groups, u->groups) < 0 && !(errno == EPERM && setgroups_denied()))
    child_fail(c, MSG_FAIL, "setgroups");
  if (syscall(SYS_setresgid, u->gid, u->gid, u->gid) < 0)
    child_fail(c, MSG_FAIL, "setgid %u", (unsigned)u->gid);
  if (syscall(SYS_setresuid, u->uid, u->uid, u->uid) < 0)
    child_fail(c, MSG_FAIL, "setuid %u", (unsigned)u->uid);
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
  struct __user_cap_data_struct d[2] = {{0}};
  if (u->uid == 0) {
    for (int cap = 0; cap <= 63; cap++) {
      if (!cap_allowed(c, cap))
        continue;
      d[cap / 32].effective |= 1U << (cap % 32);
      d[cap / 32].permitted |= 1U << (cap % 32);
    }
  }
  if (syscall(SYS_capset, &h, d) < 0)
    child_fail(c, MSG_FAIL, "capset");
  if (chdir(c->cwd) < 0)
    child_fail(c, MSG_EXEC, "working directory %s", c->cwd);
  /* last: from here on, only what the filter allows */
  if (sandbox_seccomp_load(&c->bpf) < 0)
    child_fail(c, MSG_FAIL, "seccomp filter");
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

/* Becomes root of a user namespace of its own, once the mounts are made as
 * host root: the parent writes the maps, then uid and gid 0 are the range's
 * first ids and no capability is left over the host's namespaces. */
static void enter_userns(const child_ctx *c) {
  if (unshare(CLONE_NEWUSER) < 0)
    child_fail(c, MSG_FAIL, "unshare a user namespace");
  child_send(c, MSG_USERNS, 0, 0, NULL);
  child_wait(c);
  if (syscall(SYS_setresgid, 0, 0, 0) < 0 || syscall(SYS_setresuid, 0, 0, 0) < 0)
    child_fail(c, MSG_FAIL, "become root of the user namespace");
}

/* nopid: SIGKILL to every process whose parent is pid, found by a scan of
 * /proc (/proc/PID/task/TID/children needs CONFIG_PROC_CHILDREN, which
 * kernels may lack). Allocates nothing. */
static void kill_children_of(pid_t pid) {
  int dir = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0)
    return;
  char buf[4096];
  long n;
  while ((n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
    for (long off = 0; off < n;) {
      const char *d = buf + off;
      unsigned short reclen;
      memcpy(&reclen, d + 16, sizeof reclen); /* struct linux_dirent64's d_reclen */
      const char *name = d + 19;
      off += reclen;
      char *end;
      long child = strtol(name, &end, 10);
      if (*name < '1' || *name > '9' || *end || child == pid)
        continue;
      char path[64], stat[512];
      snprintf(path, sizeof path, "%s/stat", name);
      int fd = openat(dir, path, O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        continue;
      ssize_t len = read(fd, stat, sizeof stat - 1);
      close(fd);
      if (len <= 0)
        continue;
      stat[len] = '\0';
      /* "pid (name) state ppid ...": the name may hold anything, the last ')' ends it */
      const char *p = strrchr(stat, ')');
      if (!p || strlen(p) < 5)
        continue;
      long ppid = strtol(p + 4, &end, 10);
      if (end != p + 4 && ppid == pid)
        kill((pid_t)child, SIGKILL);
    }
  }
  close(dir);
}

/* nopid: kills and reaps every descendant of this process, its subreaper:
 * each one killed hands its children to it, found on the next pass. */
static void kill_descendants(void) {
  pid_t self = (pid_t)syscall(SYS_getpid);
  for (;;) {
    kill_children_of(self);
    int st;
    pid_t w;
    do
      w = waitpid(-1, &st, __WALL);
    while (w < 0 && errno == EINTR);
    if (w < 0)
      return; /* ECHILD: none left */
  }
}

/* nopid: the parent's request (SIGTERM) to end the run now, on a timeout or a
 * limit, or the parent's death (PR_SET_PDEATHSIG): everything goes, as with
 * a PID namespace, then this process, as killed. Only this single-threaded
 * process runs the handler, and what it calls is async-signal-safe. */
static void on_stop(int sig) {
  (void)sig;
  kill_descendants();
  syscall(SYS_kill, syscall(SYS_getpid), SIGKILL);
}

__attribute__((noreturn)) static void child_main(child_ctx *c) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (c->nopid) {
    /* this process only (never the caller's): what the command leaves behind
     * comes back to it, to be killed */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
      child_fail(c, MSG_FAIL, "become the subreaper of the command");
    struct sigaction sa = {.sa_handler = on_stop};
    sigfillset(&sa.sa_mask);
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigprocmask(SIG_UNBLOCK, &term, NULL) < 0)
      child_fail(c, MSG_FAIL, "SIGTERM handler");
  }
  int keep[] = {c->ctl, c->out, c->errp, c->sync, c->in, c->tty};
  close_other_fds(keep, sizeof keep / sizeof keep[0]);
  if (c->userns_at_clone)
    child_wait(c); /* the id maps */
  if (sethostname(HOSTNAME, strlen(HOSTNAME)) < 0)
    child_fail(c, MSG_FAIL, "sethostname");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    child_fail(c, MSG_FAIL, "make mounts private");
  if (c->netns) {
    const char *what = "network";
    if (sandbox_net_setup(c->blocked, c->n_blocked, &what) < 0)
      child_fail(c, MSG_FAIL, "%s", what);
  }
  child_send(c, MSG_READY, 0, 0, NULL);
  child_wait(c); /* in the cgroup; pasta is up */
  /* bind sources must belong to this mount namespace: opened after the clone */
  for (int i = 0; i < N_HOST; i++)
    c->host_fd[i] = open(host_src[i], O_PATH | O_CLOEXEC);
  if (c->host_fd[H_NULL] < 0)
    child_fail(c, MSG_FAIL, "open /dev/null");
  if (c->nopid && (c->proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
    child_fail(c, MSG_FAIL, "open /proc");
  for (size_t i = 0; i < c->o->n_binds; i++) {
    c->bind_fd[i] = open(c->o->binds[i].source, O_PATH | O_CLOEXEC);
    if (c->bind_fd[i] < 0)
      child_fail(c, MSG_FAIL, "open %s", c->o->binds[i].source);
  }
  if (c->tty >= 0) {
    /* the same terminal as the one the command is given, or nothing */
    struct stat want, got;
    c->tty_node = open(c->tty_path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (c->tty_node < 0 || fstat(c->tty, &want) < 0 || fstat(c->tty_node, &got) < 0 ||
        want.st_rdev != got.st_rdev || want.st_ino != got.st_ino || !S_ISCHR(got.st_mode))
      child_fail(c, MSG_FAIL, "open the pseudo-terminal %s", c->tty_path);
  }
  mount_tree(c);
  setup_mounts(c);
  /* nothing of the host stays reachable through this process's fds */
  for (int i = 0; i < N_HOST; i++)
    if (c->host_fd[i] >= 0)
      close(c->host_fd[i]);
  for (size_t i = 0; i < c->o->n_binds; i++)
    close(c->bind_fd[i]);
  if (c->tty_node >= 0)
    close(c->tty_node);
  if (c->proc_fd >= 0)
    close(c->proc_fd);
  if (c->userns_late)
    enter_userns(c);
  /* again: a change of ids clears it. The caller's death ends the run: this
   * process's death ends its PID namespace; without one (nopid) SIGTERM has
   * it kill what the command started first */
  prctl(PR_SET_PDEATHSIG, c->nopid ? SIGTERM : SIGKILL);
  /* after every change of ids: /proc/1 stays closed to the command */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

  /* a raw clone, not glibc's fork(): that one takes the allocator's locks,
   * which a thread of the caller may have held when this process was cloned */
  pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)SIGCHLD, NULL, NULL, NULL, NULL);
  if (pid < 0)
    child_fail(c, MSG_FAIL, "fork");
  if (pid == 0)
    command_main(c);
  /* the command's ends only: the pseudo-terminal's master sees the end once
   * the last of its processes is gone */
  const int ends[] = {c->out, c->errp, c->in, c->tty};
  for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++)
    if (ends[i] >= 0)
      close(ends[i]);
  for (;;) {
    int st;
    pid_t w = waitpid(-1, &st, 0);
    if (w == pid) {
      struct statvfs sv;
      ctl_msg m = {.kind = MSG_STATUS, .status = st};
      m.tmp_full = statvfs("/tmp", &sv) == 0 && sv.f_blocks > 0 && sv.f_bavail == 0;
      if (c->nopid)
        kill_descendants(); /* what it left running: no namespace to end with it */
      ssize_t n;
      do
        n = write(c->ctl, &m, sizeof m);
      while (n < 0 && errno == EINTR);
      _exit(0); /* the kernel kills the rest of the namespace (nopid: already done) */
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

HOIST_WUR static int write_proc(pid_t pid, const char *file, const char *text, hoist_err **err) {
  _cleanup_free_ char *path = hoist_asprintf("/proc/%d/%s", (int)pid, file);
  _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
    return hoist_err_errno(err, errno, "write %s", path);
  return 0;
}

/* Runs the host tool argv[0], found in dirs (sandbox_which), to its end. */
HOIST_WUR static int run_tool(const char *dirs, char *const *argv, hoist_err **err) {
  _cleanup_free_ char *exe = sandbox_which(dirs, argv[0]);
  if (!exe)
    return hoist_err_errno(err, ENOENT, "run %s", argv[0]);
  pid_t pid;
  int r = posix_spawn(&pid, exe, NULL, NULL, argv, environ);
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

/* True when name is an executable file in a directory of dirs. */
static bool in_path(const char *dirs, const char *name) {
  _cleanup_free_ char *full = sandbox_which(dirs, name);
  return full != NULL;
}

/* The user-namespace maps of a run (hoist_sandbox_id_maps). */
typedef struct {
  hoist_idmap u[2], g[2];
  size_t nu, ng;         /* 0: no user namespace */
  bool tools;            /* newuidmap/newgidmap write them (a caller that is not root) */
  const char *tool_path; /* where they are (hoist_sandbox_opts.tool_path) */
} run_maps;

HOIST_WUR static int check_range(const char *what, uint32_t start, uint32_t count, bool root,
                                 hoist_err **err) {
  if (count == 0 || (uint64_t)start + count > UINT32_MAX)
    return hoist_err_set(err, EINVAL, "subordinate %s range %u:%u is empty or too large", what,
                         start, count);
  if (root && start == 0)
    return hoist_err_set(err, HOIST_E_UNSAFE,
                         "subordinate %s range %u:%u includes host %s 0: root inside would be "
                         "host root",
                         what, start, count, what);
  return 0;
}

HOIST_WUR static int compute_maps(const hoist_sandbox_opts *o, run_maps *m, hoist_err **err) {
  memset(m, 0, sizeof *m);
  m->tool_path = o->tool_path;
  uid_t uid = geteuid();
  if (uid == 0 && o->userns == HOIST_SANDBOX_USERNS_HOST)
    return 0;
  if (o->subids) {
    const hoist_sandbox_subids *s = o->subids;
    if (check_range("uid", s->uid_start, s->uid_count, uid == 0, err) < 0 ||
        check_range("gid", s->gid_start, s->gid_count, uid == 0, err) < 0)
      return -1;
    if (uid == 0) {
      m->u[0] = (hoist_idmap){0, s->uid_start, s->uid_count};
      m->g[0] = (hoist_idmap){0, s->gid_start, s->gid_count};
      m->nu = m->ng = 1;
      return 0;
    }
    if (!in_path(o->tool_path, "newuidmap") || !in_path(o->tool_path, "newgidmap"))
      return hoist_err_set(err, ENOENT,
                           "subordinate ids need newuidmap and newgidmap (Debian package uidmap)");
    m->u[0] = (hoist_idmap){0, (uint32_t)uid, 1};
    m->g[0] = (hoist_idmap){0, (uint32_t)getegid(), 1};
    m->u[1] = (hoist_idmap){1, s->uid_start, s->uid_count};
    m->g[1] = (hoist_idmap){1, s->gid_start, s->gid_count};
    m->nu = m->ng = 2;
    m->tools = true;
    return 0;
  }
  struct passwd pw, *pwp = NULL;
  char pwbuf[4096];
  getpwuid_r(uid, &pw, pwbuf, sizeof pwbuf, &pwp);
  _cleanup_free_ char *subuid = NULL, *subgid = NULL;
  /* either file may be absent: no subordinate ids */
  hoist_best_effort(hoist_fs_read_file(AT_FDCWD, "/etc/subuid", 1 << 20, &subuid, NULL, NULL));
  hoist_best_effort(hoist_fs_read_file(AT_FDCWD, "/etc/subgid", 1 << 20, &subgid, NULL, NULL));
  bool tools = uid != 0 && in_path(o->tool_path, "newuidmap") && in_path(o->tool_path, "newgidmap");
  m->tools = sandbox_id_maps(uid, getegid(), pwp ? pwp->pw_name : NULL, subuid, subgid, tools, m->u,
                             &m->nu, m->g, &m->ng);
  if (uid != 0)
    return 0;
  if (m->nu > 0 && (check_range("uid", m->u[0].outside, m->u[0].count, true, err) < 0 ||
                    check_range("gid", m->g[0].outside, m->g[0].count, true, err) < 0))
    return hoist_err_wrap(err, "/etc/subuid, /etc/subgid");
  if (m->nu == 0 && o->userns == HOIST_SANDBOX_USERNS_PRIVATE)
    return hoist_err_set(err, ENOENT,
                         "no subordinate ids for root in /etc/subuid and /etc/subgid: add a range "
                         "(usermod --add-subuids 100000-165535 --add-subgids 100000-165535 root) "
                         "or configure one");
  return 0;
}

int hoist_sandbox_id_maps(const hoist_sandbox_opts *opts, hoist_idmap uid_map[2], size_t *n_uid,
                          hoist_idmap gid_map[2], size_t *n_gid, hoist_err **err) {
  run_maps m;
  *n_uid = *n_gid = 0;
  if (compute_maps(opts, &m, err) < 0)
    return -1;
  memcpy(uid_map, m.u, sizeof m.u);
  memcpy(gid_map, m.g, sizeof m.g);
  *n_uid = m.nu;
  *n_gid = m.ng;
  return 0;
}

/* The text of a uid_map or gid_map file (at most 2 lines: it fits). */
static char *map_text(const hoist_idmap *m, size_t n) {
  char text[128];
  size_t len = 0;
  for (size_t i = 0; i < n && i < 2; i++)
    len += (size_t)snprintf(text + len, sizeof text - len, "%u %u %u\n", m[i].inside, m[i].outside,
                            m[i].count);
  return hoist_strdup(text);
}

/* Writes the maps of process pid: directly (root, or a single id of the
 * caller's, which needs setgroups denied first), or through
 * newuidmap/newgidmap for subordinate ranges. */
HOIST_WUR static int write_id_maps(pid_t pid, const run_maps *m, hoist_err **err) {
  if (m->tools) {
    char p[16], a[4][16];
    snprintf(p, sizeof p, "%d", (int)pid);
    snprintf(a[0], 16, "%u", m->u[0].outside);
    snprintf(a[1], 16, "%u", m->u[1].outside);
    snprintf(a[2], 16, "%u", m->u[1].count);
    snprintf(a[3], 16, "%u", m->g[0].outside);
    char b1[16], b2[16];
    snprintf(b1, 16, "%u", m->g[1].outside);
    snprintf(b2, 16, "%u", m->g[1].count);
    char *uargv[] = {"newuidmap", p, "0", a[0], "1", "1", a[1], a[2], NULL};
    char *gargv[] = {"newgidmap", p, "0", a[3], "1", "1", b1, b2, NULL};
    if (run_tool(m->tool_path, uargv, err) < 0 || run_tool(m->tool_path, gargv, err) < 0)
      return -1;
    return 0;
  }
  if (geteuid() != 0 && write_proc(pid, "setgroups", "deny\n", err) < 0)
    return -1;
  _cleanup_free_ char *um = map_text(m->u, m->nu), *gm = map_text(m->g, m->ng);
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
    /* a log that cannot be written does not stop the command */
    if (hoist_fs_write_all(l->o->log_fd, line, len, NULL) == 0)
      hoist_best_effort(hoist_fs_write_all(l->o->log_fd, "\n", 1, NULL));
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

/* ------------------------------------------------------------ limits */

static int add_usage(void *ctx, int dirfd, const char *name, const struct stat *st) {
  (void)dirfd, (void)name;
  *(uint64_t *)ctx += (uint64_t)st->st_blocks * 512;
  return 0;
}

/* Bytes the tree at dir takes on disk (blocks, so sparse files count what
 * they use; entries that vanish while it is walked are skipped) in *used;
 * false when the tree is too deep to be measured. */
static bool tree_usage(const char *dir, uint64_t *used) {
  *used = 0;
  return hoist_fs_walk(dir, add_usage, used) == 0 || errno != ELOOP;
}

/* What the parent watches while the command runs. */
typedef struct {
  const sandbox_cgroup *cg;
  uint64_t memory, pids; /* the cgroup's limits, for the messages */
  uint64_t upper_limit;  /* 0: none */
  const char *measure;   /* the tree whose growth counts: upper, or the copy of lower */
  uint64_t base;         /* its size at the start */
} monitor;

/* The limit the run has reached, or HOIST_SANDBOX_EXITED; *limit receives it. */
static hoist_sandbox_end limit_reached(const monitor *m, uint64_t *limit) {
  sandbox_cgroup_events ev = {0};
  if (m->cg && sandbox_cgroup_events_read(m->cg, &ev) == 0) {
    if (ev.oom_kills > 0) {
      *limit = m->memory;
      return HOIST_SANDBOX_OUT_OF_MEMORY;
    }
    if (ev.pids_max_hits > 0) {
      *limit = m->pids;
      return HOIST_SANDBOX_PIDS_EXHAUSTED;
    }
  }
  if (m->upper_limit) {
    uint64_t used;
    if (!tree_usage(m->measure, &used)) {
      *limit = HOIST_FS_WALK_DEPTH;
      return HOIST_SANDBOX_TOO_DEEP;
    }
    if (used > m->base && used - m->base >= m->upper_limit) {
      *limit = m->upper_limit;
      return HOIST_SANDBOX_DISK_FULL;
    }
  }
  return HOIST_SANDBOX_EXITED;
}

/* A limit option: 0 is the default, HOIST_SANDBOX_UNLIMITED none (0 out). */
static uint64_t limit_of(uint64_t v, uint64_t def) {
  if (v == HOIST_SANDBOX_UNLIMITED)
    return 0;
  return v ? v : def;
}

static char *size_text(uint64_t v) {
  static const char *const units[] = {"GiB", "MiB", "KiB"};
  for (int i = 0; i < 3; i++) {
    uint64_t u = 1ULL << (30 - 10 * i);
    if (v >= u && v % u == 0)
      return hoist_asprintf("%" PRIu64 " %s", v / u, units[i]);
  }
  return hoist_asprintf("%" PRIu64 " bytes", v);
}

char *hoist_sandbox_end_text(const hoist_sandbox_opts *opts, const hoist_sandbox_result *res) {
  _cleanup_free_ char *size = size_text(res->limit);
  switch (res->end) {
  case HOIST_SANDBOX_TIMED_OUT:
    return hoist_asprintf("timed out after %u s", opts->timeout_s);
  case HOIST_SANDBOX_OUT_OF_MEMORY:
    return hoist_asprintf("out of memory (limit %s)", size);
  case HOIST_SANDBOX_PIDS_EXHAUSTED:
    return hoist_asprintf("process limit reached (%" PRIu64 " pids)", res->limit);
  case HOIST_SANDBOX_DISK_FULL:
    return hoist_asprintf("changes reached max_layer_bytes (%s)", size);
  case HOIST_SANDBOX_TOO_DEEP:
    return hoist_asprintf("changes nested more than %" PRIu64
                          " directories deep (too deep to measure against max_layer_bytes)",
                          res->limit);
  case HOIST_SANDBOX_EXITED:
    break;
  }
  return NULL;
}

/* The cgroup of a run: NULL (and 0) without a parent to make it under, or
 * when it cannot be made and limits are not required (said in the log). */
HOIST_WUR static int make_cgroup(const hoist_sandbox_opts *o, const sandbox_limits *lim,
                                 sandbox_cgroup **out, hoist_err **err) {
  *out = NULL;
  const char *parent = o->cgroup_parent;
  if (!parent && geteuid() == 0)
    parent = HOIST_SANDBOX_CGROUP_PARENT;
  if (!parent) {
    if (o->require_limits)
      return hoist_err_set(err, EPERM,
                           "sandbox: no cgroup to enforce the limits in: run as root or give a "
                           "delegated cgroup parent");
    hoist_warn("sandbox: no cgroup (not root and no delegated cgroup parent given): the memory, "
               "pids and CPU limits are not enforced");
    return 0;
  }
  _cleanup_free_ char *mountinfo = NULL, *self = NULL;
  /* unreadable: no cgroup found, said by what follows */
  hoist_best_effort(
      hoist_fs_read_file(AT_FDCWD, "/proc/self/mountinfo", 4 << 20, &mountinfo, NULL, NULL));
  hoist_best_effort(hoist_fs_read_file(AT_FDCWD, "/proc/self/cgroup", 1 << 20, &self, NULL, NULL));
  sandbox_cgroup_env env = {mountinfo ? mountinfo : "", self ? self : ""};
  static atomic_uint counter;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  char name[64];
  snprintf(name, sizeof name, "run-%d-%u-%ld", (int)getpid(), atomic_fetch_add(&counter, 1),
           (long)(ts.tv_nsec % 1000000));
  hoist_err *e = NULL;
  if (sandbox_cgroup_create(&env, parent, name, lim, out, &e) == 0)
    return 0;
  if (o->require_limits) {
    *err = e;
    return hoist_err_wrap(err, "sandbox: cgroup for the limits");
  }
  _cleanup_free_ char *t = hoist_err_text(e);
  hoist_err_free(e);
  hoist_warn("sandbox: %s: the memory, pids and CPU limits are not enforced", t);
  return 0;
}

/* ------------------------------------------------------------ the child */

/* Reads one control record within timeout_ms. 1 read, 0 end of file (the
 * child died), -1 with errno. */
static int read_msg(int fd, ctl_msg *m, int timeout_ms) {
  size_t got = 0;
  int64_t deadline = now_ms() + timeout_ms;
  while (got < sizeof *m) {
    int64_t left = deadline - now_ms();
    if (left <= 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    struct pollfd p = {fd, POLLIN, 0};
    int n = poll(&p, 1, (int)left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    if (n == 0)
      continue;
    ssize_t r = read(fd, (char *)m + got, sizeof *m - got);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (r < 0)
      return -1;
    if (r == 0)
      return 0;
    got += (size_t)r;
  }
  m->text[sizeof m->text - 1] = '\0';
  return 1;
}

/* Up to three mount points below /proc in the caller's mount table (a
 * container runtime's masks), comma-separated into buf ("" when none). */
static void proc_submounts(char *buf, size_t size) {
  buf[0] = '\0';
  _cleanup_free_ char *mi = NULL;
  if (hoist_fs_read_file(AT_FDCWD, "/proc/self/mountinfo", 4 << 20, &mi, NULL, NULL) < 0)
    return;
  size_t len = 0, found = 0;
  for (char *line = mi; line && *line && found < 3;) {
    char *next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    /* "id parent major:minor root mount-point ...": the fifth field */
    char *f = line;
    for (int i = 0; i < 4 && f; i++) {
      f = strchr(f, ' ');
      if (f)
        f++;
    }
    if (f && strncmp(f, "/proc/", 6) == 0) {
      size_t n = strcspn(f, " ");
      int k = snprintf(buf + len, size - len, "%s%.*s", found ? ", " : "", (int)n, f);
      if (k < 0 || (size_t)k >= size - len)
        break;
      len += (size_t)k;
      found++;
    }
    line = next;
  }
}

/* The error of a child's failure record m. */
HOIST_WUR static int child_error(const ctl_msg *m, hoist_err **err) {
  if (m->kind != MSG_PROC)
    return hoist_err_errno(err, m->err, "sandbox: %s", m->text);
  char masks[256];
  proc_submounts(masks, sizeof masks);
  return hoist_err_errno(
      err, m->err,
      "sandbox: %s: the kernel refuses a new procfs for the sandbox's PID namespace here%s%s%s; "
      "this is what a container runtime's masked /proc does (a Kubernetes pod without "
      "hostUsers: false and procMount: Unmasked): run without a process sandbox "
      "(--no-process-sandbox), which binds this /proc instead of mounting a new one "
      "(README, Security model, for what that gives up)",
      m->text, *masks ? ": /proc has paths mounted over it (" : "", masks, *masks ? ")" : "");
}

/* Waits for the child's record of kind want during the handshake. A failure
 * record or a dead child is an error; *overlay_failed tells the overlay could
 * not be mounted (the caller falls back to a copy; no error then). */
HOIST_WUR static int await_child(int ctl, int want, bool *overlay_failed, hoist_err **err) {
  ctl_msg m;
  int r = read_msg(ctl, &m, SETUP_TIMEOUT_MS);
  if (r < 0)
    return hoist_err_errno(err, errno, "sandbox: waiting for its set-up");
  if (r == 0)
    return hoist_err_set(err, EIO, "sandbox: its init died during set-up");
  if (m.kind == want)
    return 0;
  if (m.kind == MSG_OVERLAY) {
    *overlay_failed = true;
    hoist_info("sandbox: %s: %s", m.text, strerror(m.err));
    return -1;
  }
  if (m.kind == MSG_FAIL || m.kind == MSG_PROC)
    return child_error(&m, err);
  return hoist_err_set(err, EIO, "sandbox: unexpected message %d during set-up", m.kind);
}

HOIST_WUR static int go_ahead(int sync, hoist_err **err) {
  if (write(sync, "x", 1) != 1)
    return hoist_err_errno(err, errno, "sandbox: start");
  return 0;
}

/* ------------------------------------------------------------ streams */

#define RELAY_BUF 65536  /* bytes of one stream that wait for the caller's reader */
#define RELAY_CHUNK 4096 /* written per readiness: PIPE_BUF, which a writable pipe takes whole */

/* One stream between the sandbox and the caller, copied by the parent: bytes
 * read from `from` wait in buf until `to` takes them; in line mode (lines
 * set) they go to emit_line instead. */
typedef struct {
  int from, to;          /* -1: closed, or none (bytes read are dropped) */
  bool own_from, own_to; /* closed here when the stream ends: the sandbox's pipe ends */
  sandbox_lines *lines;  /* line mode */
  line_ctx *lctx;
  bool tty_eof; /* to is a terminal: from's end is its end-of-file character there (when
                 * the terminal reads lines), as typing Ctrl-D would */
  char *buf;    /* RELAY_BUF bytes; [off, len) wait for to */
  size_t off, len;
} relay;

static void relay_close(int *fd, bool own) {
  if (*fd >= 0 && own)
    close(*fd);
  *fd = -1;
}

/* True when r has nothing more to deliver. */
static bool relay_done(const relay *r) { return r->from < 0 && (r->to < 0 || r->off == r->len); }

/* from is readable: its bytes into buf (or lines). At its end (EIO from a
 * terminal's master once no process holds the slave), to is closed once
 * drained: the command's stdin ends where the caller's did. */
static void relay_read(relay *r) {
  ssize_t n = read(r->from, r->buf + r->len, RELAY_BUF - r->len);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return;
  if (n <= 0) {
    struct termios t;
    if (n == 0 && r->tty_eof && r->to >= 0 && tcgetattr(r->to, &t) == 0 && (t.c_lflag & ICANON))
      r->buf[r->len++] = (char)t.c_cc[VEOF]; /* read only with room left: it fits */
    relay_close(&r->from, r->own_from);
    if (r->off == r->len)
      relay_close(&r->to, r->own_to);
    return;
  }
  if (r->lines)
    sandbox_lines_feed(r->lines, r->buf + r->len, (size_t)n, emit_line, r->lctx);
  else if (r->to >= 0)
    r->len += (size_t)n;
}

/* to is writable: one chunk. A destination that refuses it (its reader went
 * away: EPIPE) ends the stream at both ends, so the writer learns it too. */
static void relay_write(relay *r) {
  size_t n = r->len - r->off;
  ssize_t w = write(r->to, r->buf + r->off, n < RELAY_CHUNK ? n : RELAY_CHUNK);
  if (w < 0 && (errno == EINTR || errno == EAGAIN))
    return;
  if (w < 0) {
    r->off = r->len = 0;
    relay_close(&r->to, r->own_to);
    relay_close(&r->from, r->own_from);
    return;
  }
  r->off += (size_t)w;
  if (r->off == r->len) {
    r->off = r->len = 0;
    if (r->from < 0)
      relay_close(&r->to, r->own_to);
  }
}

/* The parent's ends of a run's streams; stream() takes those it is given. */
typedef struct {
  int out, err; /* read ends of the command's stdout and stderr pipes; -1 with a terminal */
  int in;       /* write end of its stdin pipe; -1: none */
  int master;   /* the pseudo-terminal's master; -1: none (not taken: spawn closes it) */
} run_streams;

/* The relays of a run: [0] stdout (or the terminal's output), [1] stderr, [2]
 * the caller's input to the command. Takes the pipe ends of s. */
static void relays_start(const child_ctx *c, run_streams *s, relay rel[3], sandbox_lines lines[2],
                         line_ctx lctx[2]) {
  const hoist_sandbox_stdio *io = c->o->stdio;
  rel[0] = (relay){.from = s->out, .to = io ? io->out : -1, .own_from = true};
  rel[1] = (relay){.from = s->err, .to = io ? io->err : -1, .own_from = true};
  rel[2] = (relay){.from = -1, .to = s->in, .own_to = true};
  s->out = s->err = s->in = -1;
  if (s->master >= 0) {
    rel[0] = (relay){.from = s->master, .to = io->out};
    rel[2] = (relay){.from = io->in, .to = io->in >= 0 ? s->master : -1, .tty_eof = true};
  } else if (io && rel[2].to >= 0) {
    rel[2].from = io->in;
  }
  for (int i = 0; i < 3; i++)
    rel[i].buf = hoist_malloc0(RELAY_BUF);
  for (int i = 0; !io && i < 2; i++) {
    rel[i].lines = &lines[i];
    rel[i].lctx = &lctx[i];
  }
}

static void relays_end(relay rel[3], sandbox_lines lines[2], line_ctx lctx[2]) {
  for (int i = 0; i < 3; i++) {
    relay_close(&rel[i].from, rel[i].own_from);
    relay_close(&rel[i].to, rel[i].own_to);
    free(rel[i].buf);
  }
  for (int i = 0; i < 2; i++) {
    sandbox_lines_flush(&lines[i], emit_line, &lctx[i]);
    sandbox_lines_free(&lines[i]);
  }
}

/* SIGPIPE held back in the calling thread while a stream writes to readers
 * that may go away: such a write fails with EPIPE instead of ending the
 * process. One raised meanwhile is taken back unless one was pending before. */
typedef struct {
  sigset_t old;
  bool was_pending;
} sigpipe_hold;

static void sigpipe_block(sigpipe_hold *h) {
  sigset_t set, pending;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  h->was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, &h->old);
}

static void sigpipe_restore(const sigpipe_hold *h) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  struct timespec zero = {0, 0};
  if (!h->was_pending && !sigismember(&h->old, SIGPIPE))
    while (sigtimedwait(&set, NULL, &zero) > 0)
      ;
  pthread_sigmask(SIG_SETMASK, &h->old, NULL);
}

/* The terminal at master takes the window size of size_fd. */
static void pty_resize(int size_fd, int master) {
  struct winsize ws;
  if (size_fd >= 0 && master >= 0 && ioctl(size_fd, TIOCGWINSZ, &ws) == 0)
    ioctl(master, TIOCSWINSZ, &ws);
}

/* The reason the command could not start, as a line of its stderr. */
static void report_exec_failure(const child_ctx *c, line_ctx *l, const ctl_msg *m) {
  char line[sizeof m->text + 64];
  int k = snprintf(line, sizeof line - 1, "hoist: %s: %s", m->text, strerror(m->err));
  size_t len = (size_t)k < sizeof line - 1 ? (size_t)k : sizeof line - 2;
  const hoist_sandbox_stdio *io = c->o->stdio;
  if (!io) {
    emit_line(l, line, len);
    return;
  }
  line[len++] = '\n';
  if (io->err >= 0)
    hoist_best_effort(hoist_fs_write_all(io->err, line, len, NULL));
}

#define GIVE_UP_MS 5000 /* nopid: how long output may stay open once the run was ended */

/* Ends the run at once: its PID namespace, or (nopid) everything the helper
 * started (SIGTERM asks it to kill them) and everything in the cgroup. */
static void end_run(const child_ctx *c, const monitor *mon, pid_t pid) {
  if (!c->nopid) {
    kill(pid, SIGKILL);
    return;
  }
  kill(pid, SIGTERM);
  sandbox_cgroup_kill(mon->cg);
}

/* Copies the command's streams until the namespace died (every writer of its
 * output gone), killing the namespace when the timeout or a limit is
 * reached. Without a PID namespace (nopid), a process that outlived the end
 * of the run (possible only without a cgroup) cannot hold the run open: its
 * output is no longer read GIVE_UP_MS after the helper is gone. */
HOIST_WUR static int stream(child_ctx *c, pid_t pid, int ctl, run_streams *s, const monitor *mon,
                            hoist_sandbox_result *res, bool *overlay_failed, hoist_err **err) {
  bool watch = mon->cg || mon->upper_limit;
  const hoist_sandbox_stdio *io = c->o->stdio;
  sandbox_lines lines[2] = {{0}};
  line_ctx lctx[2] = {{c->o, false}, {c->o, true}};
  relay rel[3];
  relays_start(c, s, rel, lines, lctx);
  int winch = io && s->master >= 0 ? io->winch_fd : -1;
  sigpipe_hold hold;
  if (io)
    sigpipe_block(&hold);
  ctl_msg msg = {0}, got = {0};
  size_t msg_len = 0;
  bool have_fail = false, have_status = false, killed = false;
  int64_t deadline = c->o->timeout_s ? now_ms() + (int64_t)c->o->timeout_s * 1000 : -1;
  int64_t next_check = now_ms() + MONITOR_MS;
  int64_t give_up = -1; /* nopid: when output still open stops being read */
  const char *what = c->nopid ? "everything it started" : "its PID namespace";
  int ret = -1;
  while (ctl >= 0 || !relay_done(&rel[0]) || !relay_done(&rel[1])) {
    int64_t now = now_ms();
    if (!killed && deadline >= 0 && deadline <= now) {
      hoist_info("sandbox: %s timed out after %us: killing %s", c->o->argv[0], c->o->timeout_s,
                 what);
      res->end = HOIST_SANDBOX_TIMED_OUT;
      end_run(c, mon, pid);
      killed = true;
    }
    if (!killed && watch && next_check <= now) {
      res->end = limit_reached(mon, &res->limit);
      if (res->end != HOIST_SANDBOX_EXITED) {
        hoist_info("sandbox: %s reached a limit: killing %s", c->o->argv[0], what);
        end_run(c, mon, pid);
        killed = true;
      }
      next_check = now_ms() + MONITOR_MS;
    }
    if (c->nopid && killed && give_up < 0)
      give_up = now + GIVE_UP_MS;
    if (give_up >= 0 && give_up <= now) {
      for (int i = 0; i < 2; i++)
        if (rel[i].len < RELAY_BUF) /* a full buffer waits for its reader first */
          relay_close(&rel[i].from, rel[i].own_from);
      if (ctl >= 0)
        kill(pid, SIGKILL);
      ctl = -1;
    }
    int64_t wait_ms = -1;
    if (!killed && deadline >= 0)
      wait_ms = deadline - now;
    if (!killed && watch && (wait_ms < 0 || next_check - now < wait_ms))
      wait_ms = next_check - now;
    if (give_up >= 0 && (wait_ms < 0 || give_up - now < wait_ms))
      wait_ms = give_up > now ? give_up - now : 0;
    if (wait_ms > 1000000)
      wait_ms = 1000000;
    /* [0] the control pipe, [1] the window size, then each relay's source
     * (while it has room) and destination (while bytes wait) */
    struct pollfd pfd[8] = {{ctl, POLLIN, 0}, {winch, POLLIN, 0}};
    for (int i = 0; i < 3; i++) {
      const relay *r = &rel[i];
      pfd[2 + 2 * i] = (struct pollfd){r->len < RELAY_BUF ? r->from : -1, POLLIN, 0};
      pfd[3 + 2 * i] = (struct pollfd){r->off < r->len ? r->to : -1, POLLOUT, 0};
    }
    int n = poll(pfd, 8, wait_ms < 0 ? -1 : (int)(wait_ms > 0 ? wait_ms : 0));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      hoist_err_errno(err, errno, "sandbox: poll");
      end_run(c, mon, pid);
      kill(pid, SIGKILL);
      break;
    }
    /* POLLNVAL too: a caller's descriptor that is not open ends its stream at
     * the read or write that says so (EBADF), instead of spinning */
    const short ready_in = POLLIN | POLLHUP | POLLERR | POLLNVAL,
                ready_out = POLLOUT | POLLHUP | POLLERR | POLLNVAL;
    for (int i = 0; i < 3; i++) {
      if (pfd[2 + 2 * i].fd >= 0 && (pfd[2 + 2 * i].revents & ready_in))
        relay_read(&rel[i]);
      if (pfd[3 + 2 * i].fd >= 0 && rel[i].to >= 0 && (pfd[3 + 2 * i].revents & ready_out))
        relay_write(&rel[i]);
    }
    if (winch >= 0 && (pfd[1].revents & ready_in)) {
      char drain[64];
      ssize_t r = read(winch, drain, sizeof drain);
      if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
        winch = -1;
      pty_resize(io->size_fd, s->master);
    }
    if (ctl < 0 || !(pfd[0].revents & ready_in))
      continue;
    ssize_t r = read(ctl, (char *)&msg + msg_len, sizeof msg - msg_len);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (r <= 0) {
      ctl = -1;
      if (c->nopid && !killed) {
        /* the helper is gone (it killed what the command left, unless it was killed
         * itself): whatever is still in the cgroup goes too */
        sandbox_cgroup_kill(mon->cg);
        give_up = now_ms() + GIVE_UP_MS;
      }
      continue;
    }
    msg_len += (size_t)r;
    if (msg_len < sizeof msg)
      continue;
    msg_len = 0;
    msg.text[sizeof msg.text - 1] = '\0';
    if (msg.kind == MSG_STATUS) {
      have_status = true;
      res->status = msg.status;
      res->tmp_full = msg.tmp_full != 0;
    } else if (msg.kind == MSG_EXEC) {
      /* the command could not start: its status is 127, the reason a line of its stderr */
      report_exec_failure(c, &lctx[1], &msg);
    } else if (!have_fail) {
      have_fail = true;
      got = msg;
    }
  }
  relays_end(rel, lines, lctx);
  if (io)
    sigpipe_restore(&hold);
  int wst = SIGKILL; /* as killed by SIGKILL, should SIGCHLD be ignored and the wait fail */
  while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
    ;
  if (err && *err)
    return -1;
  if (have_fail && got.kind == MSG_OVERLAY) {
    *overlay_failed = true;
    hoist_info("sandbox: %s: %s", got.text, strerror(got.err));
    return -1;
  }
  if (have_fail)
    return child_error(&got, err);
  /* a limit reached in the last instant, or a process the OOM killer took
   * while the command went on to exit: the run still ends on the limit */
  if (res->end == HOIST_SANDBOX_EXITED && watch)
    res->end = limit_reached(mon, &res->limit);
  if (res->end != HOIST_SANDBOX_EXITED) {
    if (!have_status)
      res->status = wst;
    ret = 0;
  } else if (!have_status) {
    hoist_err_set(err, EIO, "sandbox: its init exited without a status (wait status %d)", wst);
  } else {
    ret = 0;
  }
  return ret;
}

/* A pseudo-terminal pair from the host's /dev/ptmx, of size_fd's window
 * size: *master stays with the parent, *slave goes to the command; the
 * slave's path into path. The caller closes both (-1 when not opened). */
HOIST_WUR static int open_pty(int size_fd, int *master, int *slave, char path[32],
                              hoist_err **err) {
  *slave = -1;
  *master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (*master < 0)
    return hoist_err_errno(err, errno, "sandbox: open a pseudo-terminal (/dev/ptmx)");
  if (unlockpt(*master) < 0)
    return hoist_err_errno(err, errno, "sandbox: unlock the pseudo-terminal");
  int r = ptsname_r(*master, path, 32);
  if (r != 0)
    return hoist_err_errno(err, r, "sandbox: name of the pseudo-terminal");
  /* opened through the master, not by a path in /dev/pts */
  *slave = ioctl(*master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (*slave < 0)
    return hoist_err_errno(err, errno, "sandbox: open the pseudo-terminal's slave");
  pty_resize(size_fd, *master);
  return 0;
}

/* Runs the child once. *overlay_failed when it could not mount overlayfs
 * (nothing ran; returns 0). */
HOIST_WUR static int spawn(child_ctx *c, const run_maps *maps, const sandbox_limits *lim,
                           hoist_sandbox_result *res, bool *overlay_failed, hoist_err **err) {
  int ctl[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1}, sync[2] = {-1, -1};
  int in[2] = {-1, -1}, pty[2] = {-1, -1}; /* pty: master, slave */
  int ret = -1;
  pid_t pid = -1, pasta = -1;
  sandbox_cgroup *cg = NULL;
  const hoist_sandbox_stdio *io = c->o->stdio;
  bool tty = io && io->tty;
  *overlay_failed = false;
  if (make_cgroup(c->o, lim, &cg, err) < 0)
    return -1;
  res->limits = cg != NULL;
  if (pipe2(ctl, O_CLOEXEC) < 0 || pipe2(sync, O_CLOEXEC) < 0 ||
      (!tty && (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)) ||
      (io && !tty && io->in >= 0 && pipe2(in, O_CLOEXEC) < 0)) {
    hoist_err_errno(err, errno, "sandbox: pipe");
    goto out;
  }
  if (tty && open_pty(io->size_fd, &pty[0], &pty[1], c->tty_path, err) < 0)
    goto out;
  c->ctl = ctl[1];
  c->out = out[1];
  c->errp = errp[1];
  c->in = in[0];
  c->tty = pty[1];
  c->sync = sync[0];
  uint64_t flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC;
  if (!c->nopid)
    flags |= CLONE_NEWPID;
  if (c->userns_at_clone)
    flags |= CLONE_NEWUSER;
  if (c->netns)
    flags |= CLONE_NEWNET;
  pid = clone_ns(flags);
  if (pid < 0) {
    hoist_err_errno(err, errno, "sandbox: clone into new namespaces");
    goto out;
  }
  if (pid == 0) {
    /* the parent's ends (child_main closes whatever else it does not keep) */
    const int parents[] = {ctl[0], out[0], errp[0], sync[1], in[1], pty[0]};
    for (size_t i = 0; i < sizeof parents / sizeof parents[0]; i++)
      if (parents[i] >= 0)
        close(parents[i]);
    child_main(c);
  }
  int *childs[] = {&ctl[1], &out[1], &errp[1], &sync[0], &in[0], &pty[1]};
  for (size_t i = 0; i < sizeof childs / sizeof childs[0]; i++) {
    if (*childs[i] >= 0)
      close(*childs[i]);
    *childs[i] = -1;
  }

  /* the handshake (see the top of this file) */
  if (c->userns_at_clone && (write_id_maps(pid, maps, err) < 0 || go_ahead(sync[1], err) < 0)) {
    hoist_err_wrap(err, "sandbox: user namespace id maps");
    goto out;
  }
  if (await_child(ctl[0], MSG_READY, overlay_failed, err) < 0)
    goto out;
  if (cg && sandbox_cgroup_attach(cg, pid, err) < 0)
    goto out;
  if (c->o->network == HOIST_SANDBOX_NET_PRIVATE &&
      sandbox_net_start(pid, c->userns_at_clone, c->o->tool_path, c->o->allow_ports,
                        c->o->n_allow_ports, &pasta, err) < 0) {
    hoist_err_wrap(err, "sandbox: private network");
    goto out;
  }
  if (go_ahead(sync[1], err) < 0)
    goto out;
  if (c->userns_late) {
    if (await_child(ctl[0], MSG_USERNS, overlay_failed, err) < 0)
      goto out;
    if (write_id_maps(pid, maps, err) < 0) {
      hoist_err_wrap(err, "sandbox: user namespace id maps");
      goto out;
    }
    if (go_ahead(sync[1], err) < 0)
      goto out;
  }
  close_pair(sync);

  monitor mon = {
      .cg = cg,
      .memory = lim->memory,
      .pids = lim->pids,
      .upper_limit = limit_of(c->o->upper_bytes, HOIST_SANDBOX_DEFAULT_UPPER),
      .measure = c->copy_mode ? c->root : c->o->upper,
  };
  if (mon.upper_limit && c->copy_mode)
    tree_usage(c->root, &mon.base);
  run_streams s = {.out = out[0], .err = errp[0], .in = in[1], .master = pty[0]};
  out[0] = errp[0] = in[1] = -1; /* stream's now */
  ret = stream(c, pid, ctl[0], &s, &mon, res, overlay_failed, err);
  pid = -1; /* reaped */
out:
  if (pid > 0) {
    kill(pid, SIGKILL);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
      ;
  }
  if (pasta > 0)
    sandbox_net_stop(pasta);
  sandbox_cgroup_destroy(cg);
  close_pair(ctl);
  close_pair(out);
  close_pair(errp);
  close_pair(sync);
  close_pair(in);
  close_pair(pty);
  return *overlay_failed ? 0 : ret;
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
HOIST_WUR static int dir_is_empty(const char *path, hoist_err **err) {
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

/* Without a PID namespace the command gets the caller's /proc, where the
 * helper finds what the command left by its pid: it must be the /proc of the
 * caller's PID namespace. */
HOIST_WUR static int check_own_proc(hoist_err **err) {
  char self[32];
  ssize_t n = readlink("/proc/self", self, sizeof self - 1);
  if (n < 0)
    return hoist_err_errno(err, errno, "sandbox: without a process sandbox: read /proc/self");
  self[n] = '\0';
  char want[32];
  snprintf(want, sizeof want, "%d", (int)getpid());
  if (strcmp(self, want) != 0)
    return hoist_err_set(err, EINVAL,
                         "sandbox: without a process sandbox the command gets this /proc, which "
                         "belongs to another PID namespace (/proc/self is %s, not %s): mount the "
                         "/proc of hoist's own PID namespace",
                         self, want);
  return 0;
}

int hoist_sandbox_run(const hoist_sandbox_opts *opts, hoist_sandbox_result *res, hoist_err **err) {
  memset(res, 0, sizeof *res);
  if (!opts->lower || !opts->upper || !opts->argv || !opts->argv[0])
    return hoist_err_set(err, EINVAL, "sandbox: lower, upper and a command are required");
  for (size_t i = 0; i < opts->n_binds; i++)
    if (!opts->binds[i].source || !opts->binds[i].target || opts->binds[i].target[0] != '/')
      return hoist_err_set(err, EINVAL, "sandbox: bind %zu: a source and an absolute target", i);
  if (opts->no_process_sandbox && check_own_proc(err) < 0)
    return -1;
  run_maps maps;
  if (compute_maps(opts, &maps, err) < 0)
    return hoist_err_wrap(err, "sandbox: user namespace");
  bool root = geteuid() == 0;
  if (root && !maps.nu && opts->userns == HOIST_SANDBOX_USERNS_AUTO)
    hoist_warn("sandbox: root has no subordinate ids (/etc/subuid, /etc/subgid): the command runs "
               "as host root, confined only by the rest of the sandbox");

  _cleanup_close_ int lowerfd = open(opts->lower, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lowerfd < 0)
    return hoist_err_errno(err, errno, "sandbox: lower %s", opts->lower);
  struct stat lst;
  if (fstat(lowerfd, &lst) < 0)
    return hoist_err_errno(err, errno, "sandbox: lower %s", opts->lower);
  if (root && maps.nu > 0 && (lst.st_uid != maps.u[0].outside || lst.st_gid != maps.g[0].outside))
    return hoist_err_set(err, EINVAL,
                         "sandbox: lower %s belongs to %u:%u, not to the user namespace's root "
                         "(%u:%u): unpack the image with the run's id maps",
                         opts->lower, (unsigned)lst.st_uid, (unsigned)lst.st_gid, maps.u[0].outside,
                         maps.g[0].outside);
  if (mkdir(opts->upper, 0755) < 0 && errno != EEXIST)
    return hoist_err_errno(err, errno, "sandbox: mkdir %s", opts->upper);
  int empty = dir_is_empty(opts->upper, err);
  if (empty < 0)
    return hoist_err_wrap(err, "sandbox: upper");
  if (!empty)
    return hoist_err_set(err, EEXIST, "sandbox: upper %s is not empty", opts->upper);
  /* upper's root is the tree's "/": the image's owner and mode, as the
   * namespace sees them */
  if (root && maps.nu > 0 &&
      (chown(opts->upper, lst.st_uid, lst.st_gid) < 0 ||
       chmod(opts->upper, lst.st_mode & 07777) < 0))
    return hoist_err_errno(err, errno, "sandbox: upper %s", opts->upper);
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

  child_ctx c = {.o = opts, .in = -1, .tty = -1, .tty_node = -1, .proc_fd = -1};
  for (int i = 0; i < N_HOST; i++)
    c.host_fd[i] = -1;
  int ret = -1;
  _cleanup_free_ char *passwd = NULL, *group = NULL, *owner = NULL;
  _cleanup_free_ char *lower_e = sandbox_overlay_escape(opts->lower);
  _cleanup_free_ char *upper_e = sandbox_overlay_escape(opts->upper);
  _cleanup_free_ char *ovl = hoist_asprintf("%s/ovl", work);
  _cleanup_free_ char *ovl_e = sandbox_overlay_escape(ovl);
  char *default_env[] = {"PATH=" DEFAULT_PATH, NULL};
  _cleanup_free_ char **env_home = NULL;
  _cleanup_free_ char *home_entry = NULL;
  c.root = hoist_asprintf("%s/root", work);
  c.userns_at_clone = !root;
  c.userns_late = root && maps.nu > 0;
  c.netns = opts->network != HOIST_SANDBOX_NET_HOST;
  c.nopid = opts->no_process_sandbox;
  c.copy_mode = opts->force_copy;
  c.mknod = opts->mknod;
  c.env = opts->env ? opts->env : default_env;
  c.path = DEFAULT_PATH;
  for (char *const *e = c.env; *e; e++)
    if (strncmp(*e, "PATH=", 5) == 0)
      c.path = *e + 5;
  c.cwd = opts->cwd && *opts->cwd ? opts->cwd : "/";
  c.nofile = opts->nofile ? opts->nofile : 65536;
  c.nproc = opts->nproc ? opts->nproc : 16384;
  uint64_t upper_limit = limit_of(opts->upper_bytes, HOIST_SANDBOX_DEFAULT_UPPER);
  c.fsize = upper_limit ? upper_limit : HOIST_SANDBOX_UNLIMITED;
  uint64_t tmp_bytes = limit_of(opts->tmp_bytes, HOIST_SANDBOX_DEFAULT_TMP);
  /* tmpfs made by host root for a namespace whose root is not: owned by it */
  owner = c.userns_late ? hoist_asprintf(",uid=%u,gid=%u", maps.u[0].outside, maps.g[0].outside)
                        : hoist_strdup("");
  c.tmp_opts = tmp_bytes ? hoist_asprintf("mode=1777,size=%" PRIu64 "%s", tmp_bytes, owner)
                         : hoist_asprintf("mode=1777%s", owner);
  c.dev_opts = hoist_asprintf("mode=0755,size=65536k%s", owner);
  c.shm_opts = hoist_asprintf("mode=1777,size=65536k%s", owner);
  sandbox_limits lim = {
      .memory = limit_of(opts->memory, HOIST_SANDBOX_DEFAULT_MEMORY),
      .pids = limit_of(opts->pids, HOIST_SANDBOX_DEFAULT_PIDS),
      .cpu_millis = limit_of(opts->cpu_millis, 0),
  };
  const char *ux = c.userns_at_clone ? ",userxattr" : "";
  c.ovl_opts[0] =
      hoist_asprintf("lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=off,metacopy=off%s", lower_e,
                     upper_e, ovl_e, ux);
  c.ovl_opts[1] =
      hoist_asprintf("lowerdir=%s,upperdir=%s,workdir=%s%s", lower_e, upper_e, ovl_e, ux);
  c.bind_fd = hoist_malloc0((opts->n_binds + 1) * sizeof(int));
  c.bind_dir = hoist_malloc0((opts->n_binds + 1) * sizeof(bool));
  for (size_t i = 0; i < opts->n_binds; i++)
    c.bind_fd[i] = -1;

  if (sandbox_seccomp_build(&c.bpf, err) < 0) {
    hoist_err_wrap(err, "sandbox");
    goto out;
  }
  if (opts->network == HOIST_SANDBOX_NET_PRIVATE &&
      sandbox_net_blocked(c.blocked, SANDBOX_MAX_BLOCKED, &c.n_blocked, err) < 0) {
    hoist_err_wrap(err, "sandbox: private network");
    goto out;
  }
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
    if (spawn(&c, &maps, &lim, res, &overlay_failed, err) < 0)
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
      hoist_best_effort(hoist_fs_write_all(opts->log_fd, "\n", 1, NULL));
    c.copy_mode = true;
    memset(res, 0, sizeof *res);
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
  free(c.tmp_opts);
  free(c.dev_opts);
  free(c.shm_opts);
  free(c.root);
  sandbox_seccomp_free(&c.bpf);
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

int hoist_sandbox_check(const hoist_sandbox_opts *opts, hoist_err **err) {
  if (opts->no_process_sandbox && check_own_proc(err) < 0)
    return -1;
  run_maps maps;
  if (compute_maps(opts, &maps, err) < 0)
    return hoist_err_wrap(err, "sandbox: user namespace");
  if (opts->network == HOIST_SANDBOX_NET_PRIVATE && !in_path(opts->tool_path, "pasta"))
    return hoist_err_set(err, ENOENT,
                         "sandbox: a private network needs pasta (Debian package passt)");
  sandbox_bpf bpf = {0};
  if (sandbox_seccomp_build(&bpf, err) < 0)
    return hoist_err_wrap(err, "sandbox");
  sandbox_seccomp_free(&bpf);
  if (opts->require_limits) {
    sandbox_limits lim = {
        .memory = limit_of(opts->memory, HOIST_SANDBOX_DEFAULT_MEMORY),
        .pids = limit_of(opts->pids, HOIST_SANDBOX_DEFAULT_PIDS),
        .cpu_millis = limit_of(opts->cpu_millis, 0),
    };
    sandbox_cgroup *cg = NULL;
    if (make_cgroup(opts, &lim, &cg, err) < 0)
      return -1;
    sandbox_cgroup_destroy(cg);
  }
  return 0;
}
