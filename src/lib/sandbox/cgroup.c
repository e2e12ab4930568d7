/*
 * sandbox cgroup: puts a run's processes under resource limits (memory with
 * no swap beyond it, a process count, CPU bandwidth) and tells afterwards
 * whether they were hit (OOM kills, refused forks).
 *
 * A run gets one directory, <mount point><parent>/<name>, in each of the
 * memory, pids and cpu cgroup v1 hierarchies when the host mounts v1 memory
 * or pids, else in the cgroup2 hierarchy (the controllers are enabled on the
 * way down from its root). The parent directories are shared by runs and are
 * never removed.
 *
 * A crash leaves the run's directories behind with whatever still runs in
 * them (nothing when the sandbox's PID namespace dies with its creator). A
 * later create removes those named "run-<pid>-..." whose process is gone and
 * that hold nothing; any other name stays taken (EEXIST) until removed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hoist/fs.h"
#include "sandbox-private.h"

enum { CTL_MEMORY, CTL_PIDS, CTL_CPU, CTL_N };
static const char *const ctl_names[CTL_N] = {"memory", "pids", "cpu"};

#define CPU_PERIOD_US 100000
#define CPU_MIN_MILLIS 10  /* the kernel refuses a quota below 1 ms per period */
#define KILL_WAIT_MS 2000  /* destroy: how long to wait for the processes to go */
#define RMDIR_WAIT_MS 1000 /* destroy: how long to retry an rmdir the kernel finds busy */
#define NAP_MS 10

struct sandbox_cgroup {
  bool v2;
  size_t n;         /* directories made: one per hierarchy */
  char *dir[CTL_N]; /* the run's directory in each hierarchy */
  int of[CTL_N];    /* index into dir of each controller's hierarchy, -1 when the host lacks it */
};

/* ------------------------------------------------------------- discovery */

/* Where the hierarchies are mounted, as this process sees them. */
typedef struct {
  char *v1[CTL_N]; /* mount point of each controller's v1 hierarchy */
  char *v2;        /* mount point of the cgroup2 hierarchy */
  char *self_v2;   /* this process's cgroup2 path (for messages) */
} mounts;

static void mounts_free(mounts *m) {
  for (int c = 0; c < CTL_N; c++)
    free(m->v1[c]);
  free(m->v2);
  free(m->self_v2);
}

/* True when word is one of the items of s[0..n) that seps separate. */
static bool has_word(const char *s, size_t n, const char *seps, const char *word) {
  size_t wl = strlen(word);
  const char *end = s + n;
  while (s < end) {
    size_t k = 0;
    while (s + k < end && !strchr(seps, s[k]))
      k++;
    if (k == wl && memcmp(s, word, wl) == 0)
      return true;
    s += k + 1;
  }
  return false;
}

/* The line at *p (without its newline) in *len; advances *p. NULL at the end. */
static const char *next_line(const char **p, size_t *len) {
  if (!**p)
    return NULL;
  const char *line = *p;
  const char *nl = strchrnul(line, '\n');
  *len = (size_t)(nl - line);
  *p = *nl ? nl + 1 : nl;
  return line;
}

static bool is_octal(char c) { return c >= '0' && c <= '7'; }

/* A mountinfo field with its \ooo escapes (space, tab, newline, backslash)
 * decoded. Caller frees. */
static char *unescape(const char *s, size_t n) {
  char *out = hoist_malloc0(n + 1);
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '\\' && i + 3 < n && is_octal(s[i + 1]) && is_octal(s[i + 2]) &&
        is_octal(s[i + 3])) {
      out[o++] = (char)(((s[i + 1] - '0') << 6) | ((s[i + 2] - '0') << 3) | (s[i + 3] - '0'));
      i += 3;
    } else {
      out[o++] = s[i];
    }
  }
  return out;
}

#define MAX_FIELDS 64

/* Finds the hierarchies: v1 ones from mountinfo's "cgroup" mounts whose super
 * options name the controller and that /proc/self/cgroup lists, the cgroup2
 * one when /proc/self/cgroup has a "0::" line. The first mount of each wins. */
HOIST_WUR static int find_mounts(const sandbox_cgroup_env *env, mounts *m, hoist_err **err) {
  if (!env || !env->mountinfo || !env->self_cgroup)
    return hoist_err_set(err, EINVAL,
                         "cgroup: the texts of mountinfo and /proc/self/cgroup are "
                         "needed");
  bool listed[CTL_N] = {false};
  bool self_v2 = false;
  const char *p = env->self_cgroup, *line;
  size_t len;
  while ((line = next_line(&p, &len))) {
    const char *c1 = memchr(line, ':', len);
    const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
    if (!c2)
      continue;
    size_t cl = (size_t)(c2 - c1 - 1);
    if (c1 - line == 1 && line[0] == '0' && cl == 0) {
      self_v2 = true;
      free(m->self_v2);
      m->self_v2 = unescape(c2 + 1, len - (size_t)(c2 + 1 - line));
      continue;
    }
    for (int c = 0; c < CTL_N; c++)
      listed[c] |= has_word(c1 + 1, cl, ",", ctl_names[c]);
  }
  p = env->mountinfo;
  while ((line = next_line(&p, &len))) {
    const char *f[MAX_FIELDS];
    size_t fl[MAX_FIELDS], nf = 0;
    for (const char *s = line, *end = line + len; s <= end && nf < MAX_FIELDS;) {
      const char *sp = memchr(s, ' ', (size_t)(end - s));
      f[nf] = s;
      fl[nf++] = (size_t)((sp ? sp : end) - s);
      if (!sp)
        break;
      s = sp + 1;
    }
    /* id parent maj:min root mountpoint options [optional...] - fstype source superopts */
    size_t k = 6;
    while (k < nf && !(fl[k] == 1 && f[k][0] == '-'))
      k++;
    if (k + 1 >= nf)
      continue;
    const char *type = f[k + 1], *opts = k + 3 < nf ? f[k + 3] : "";
    size_t tl = fl[k + 1], ol = k + 3 < nf ? fl[k + 3] : 0;
    if (tl == 6 && memcmp(type, "cgroup", 6) == 0) {
      for (int c = 0; c < CTL_N; c++)
        if (!m->v1[c] && listed[c] && has_word(opts, ol, ",", ctl_names[c]))
          m->v1[c] = unescape(f[4], fl[4]);
    } else if (tl == 7 && memcmp(type, "cgroup2", 7) == 0 && !m->v2 && self_v2) {
      m->v2 = unescape(f[4], fl[4]);
    }
  }
  return 0;
}

/* ---------------------------------------------------------------- files */

/* Writes s to the control file path in one write, as cgroupfs wants it. The
 * file must exist (the kernel makes every control file itself). 0 or -errno. */
static int write_str(const char *path, const char *s) {
  int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  size_t len = strlen(s);
  ssize_t n;
  do
    n = write(fd, s, len);
  while (n < 0 && errno == EINTR);
  int e = n < 0 ? errno : (size_t)n != len ? EIO : 0;
  close(fd);
  return -e;
}

/* Writes s to dir/file; the error names the file. */
HOIST_WUR static int write_ctl(const char *dir, const char *file, const char *s, hoist_err **err) {
  _cleanup_free_ char *path = hoist_asprintf("%s/%s", dir, file);
  int r = write_str(path, s);
  if (r < 0)
    return hoist_err_errno(err, -r, "cgroup: write %s", path);
  hoist_debug("cgroup: %s = %s", path, s);
  return 0;
}

HOIST_WUR static int write_u64(const char *dir, const char *file, uint64_t v, hoist_err **err) {
  char s[24];
  snprintf(s, sizeof s, "%" PRIu64, v);
  return write_ctl(dir, file, s, err);
}

static bool has_file(const char *dir, const char *file) {
  _cleanup_free_ char *path = hoist_asprintf("%s/%s", dir, file);
  return access(path, F_OK) == 0;
}

/* Whether the cgroup.subtree_control file path enables every controller of
 * enable ("+memory +pids") already: the cgroups above a delegated one do, and
 * their files are not the delegated user's to write. */
static bool all_enabled(const char *path, const char *enable) {
  _cleanup_free_ char *text = NULL;
  size_t len = 0;
  if (hoist_fs_read_file(AT_FDCWD, path, 4096, &text, &len, NULL) < 0)
    return false; /* unreadable: the write says why */
  for (const char *w = enable; *w;) {
    w += strspn(w, " +");
    size_t wl = strcspn(w, " ");
    if (!wl)
      break;
    _cleanup_free_ char *name = hoist_asprintf("%.*s", (int)wl, w);
    if (!has_word(text, len, " \t\n", name))
      return false;
    w += wl;
  }
  return true;
}

/* v2: enables the controllers in enable ("+memory +pids") for dir's children.
 * hpath is dir's path inside the hierarchy ("" for the root). */
HOIST_WUR static int enable_ctls(const char *dir, const char *hpath, const char *enable,
                                 const char *self, hoist_err **err) {
  _cleanup_free_ char *path = hoist_asprintf("%s/cgroup.subtree_control", dir);
  if (all_enabled(path, enable)) {
    hoist_debug("cgroup: %s has %s already", path, enable);
    return 0;
  }
  int r = write_str(path, enable);
  if (r == -EBUSY) {
    bool here = self && strcmp(self, *hpath ? hpath : "/") == 0;
    return hoist_err_set(err, EBUSY,
                         "cgroup: write %s: %s: %s holds processes%s, but to enable \"%s\" for "
                         "its children the parent given to hoist and the cgroups above it (the "
                         "hierarchy's root excepted) must hold none; move them to a leaf cgroup",
                         path, strerror(EBUSY), dir, here ? " (this process is in it)" : "",
                         enable);
  }
  if (r == -ENOENT && has_file(dir, "cgroup.subtree_control"))
    return hoist_err_set(err, ENOENT,
                         "cgroup: write %s: %s: a controller of \"%s\" is missing from "
                         "%s/cgroup.controllers (not delegated to it)",
                         path, strerror(ENOENT), enable, dir);
  if (r < 0)
    return hoist_err_errno(err, -r, "cgroup: write %s", path);
  hoist_debug("cgroup: %s = %s", path, enable);
  return 0;
}

/* Makes <mount><parent>/<name> (parent normalised, "" for the root), creating
 * the missing directories of parent; v2 with enable set enables those
 * controllers in the mount point and in each directory down to parent. The
 * run's directory must not exist. *out receives its path (caller frees). */
/* Removes the run directories under dir that a caller which died left: named
 * "run-<pid>-..." for a pid that is gone. rmdir refuses one that still holds
 * processes, so nothing running is touched. */
static void sweep_dead(const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return;
  struct dirent *de;
  while ((de = readdir(d))) {
    char *end;
    if (strncmp(de->d_name, "run-", 4) != 0)
      continue;
    long pid = strtol(de->d_name + 4, &end, 10);
    if (end == de->d_name + 4 || *end != '-' || pid <= 0 || pid > INT_MAX ||
        kill((pid_t)pid, 0) == 0 || errno != ESRCH)
      continue;
    if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) == 0)
      hoist_debug("cgroup: removed %s/%s, left by a process that died", dir, de->d_name);
  }
  closedir(d);
}

HOIST_WUR static int make_dir(const char *mount, const char *parent, const char *name,
                              const char *enable, const char *self, char **out, hoist_err **err) {
  _cleanup_free_ char *cur = hoist_strdup(strcmp(mount, "/") == 0 ? "" : mount);
  int r;
  if (enable && (r = enable_ctls(*cur ? cur : "/", "", enable, self, err)) < 0)
    return r;
  for (const char *p = parent; *p;) {
    const char *s = p + 1, *e = strchrnul(s, '/');
    char *next = hoist_asprintf("%s/%.*s", cur, (int)(e - s), s);
    free(cur);
    cur = next;
    if (mkdir(cur, 0755) < 0 && errno != EEXIST)
      return hoist_err_errno(err, errno, "cgroup: mkdir %s", cur);
    _cleanup_free_ char *hpath = hoist_asprintf("%.*s", (int)(e - parent), parent);
    if (enable && (r = enable_ctls(cur, hpath, enable, self, err)) < 0)
      return r;
    p = e;
  }
  sweep_dead(cur);
  _cleanup_free_ char *dir = hoist_asprintf("%s/%s", cur, name);
  if (mkdir(dir, 0755) < 0) {
    if (errno == EEXIST)
      return hoist_err_set(err, EEXIST, "cgroup: %s already exists", dir);
    return hoist_err_errno(err, errno, "cgroup: mkdir %s", dir);
  }
  hoist_debug("cgroup: made %s", dir);
  *out = steal_pointer(&dir);
  return 0;
}

/* ---------------------------------------------------------------- create */

static bool safe_name(const char *name) {
  return name && *name && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 && !strchr(name, '/');
}

/* parent as "/a/b" (slashes collapsed, none at the end; "" for the hierarchy
 * root), or NULL when it is not absolute or has a "." or ".." component.
 * Caller frees. */
static char *normalize_parent(const char *parent) {
  if (!parent || parent[0] != '/')
    return NULL;
  _cleanup_free_ char *out = hoist_malloc0(strlen(parent) + 1);
  size_t o = 0;
  for (const char *p = parent; *p;) {
    while (*p == '/')
      p++;
    if (!*p)
      break;
    const char *e = strchrnul(p, '/');
    size_t k = (size_t)(e - p);
    if ((k == 1 && p[0] == '.') || (k == 2 && p[0] == '.' && p[1] == '.'))
      return NULL;
    out[o++] = '/';
    memcpy(out + o, p, k);
    o += k;
    p = e;
  }
  return steal_pointer(&out);
}

HOIST_WUR static int missing(int ctl, hoist_err **err) {
  return hoist_err_set(err, ENOENT, "cgroup: no %s controller (needed for the %s limit)",
                       ctl_names[ctl], ctl_names[ctl]);
}

HOIST_WUR static int create_v1(const mounts *m, const char *parent, const char *name,
                               const sandbox_limits *lim, const uint64_t want[CTL_N],
                               sandbox_cgroup *cg, hoist_err **err) {
  for (int c = 0; c < CTL_N; c++)
    if (want[c] && !m->v1[c])
      return missing(c, err);
  const char *mnt[CTL_N] = {NULL};
  for (int c = 0; c < CTL_N; c++) {
    cg->of[c] = -1;
    if (!m->v1[c])
      continue;
    size_t i = 0;
    while (i < cg->n && strcmp(mnt[i], m->v1[c]) != 0) /* co-mounted: one directory */
      i++;
    if (i == cg->n) {
      int r = make_dir(m->v1[c], parent, name, NULL, NULL, &cg->dir[i], err);
      if (r < 0)
        return r;
      mnt[cg->n++] = m->v1[c];
    }
    cg->of[c] = (int)i;
  }
  int r;
  if (lim->memory) {
    /* the limit first: memsw must never be below it */
    const char *d = cg->dir[cg->of[CTL_MEMORY]];
    if ((r = write_u64(d, "memory.limit_in_bytes", lim->memory, err)) < 0)
      return r;
    if (has_file(d, "memory.memsw.limit_in_bytes") &&
        (r = write_u64(d, "memory.memsw.limit_in_bytes", lim->memory, err)) < 0)
      return r;
  }
  if (lim->pids && (r = write_u64(cg->dir[cg->of[CTL_PIDS]], "pids.max", lim->pids, err)) < 0)
    return r;
  if (lim->cpu_millis) {
    const char *d = cg->dir[cg->of[CTL_CPU]];
    if ((r = write_u64(d, "cpu.cfs_period_us", CPU_PERIOD_US, err)) < 0 ||
        (r = write_u64(d, "cpu.cfs_quota_us", lim->cpu_millis * 100, err)) < 0)
      return r;
  }
  return 0;
}

HOIST_WUR static int create_v2(const mounts *m, const char *parent, const char *name,
                               const sandbox_limits *lim, const uint64_t want[CTL_N],
                               sandbox_cgroup *cg, hoist_err **err) {
  _cleanup_free_ char *cpath = hoist_asprintf("%s/cgroup.controllers", m->v2);
  _cleanup_free_ char *avail = NULL;
  size_t alen = 0;
  if (hoist_fs_read_file(AT_FDCWD, cpath, 4096, &avail, &alen, err) < 0)
    return hoist_err_wrap(err, "cgroup");
  char enable[64] = "";
  for (int c = 0; c < CTL_N; c++) {
    if (!want[c])
      continue;
    if (!has_word(avail, alen, " \t\n", ctl_names[c]))
      return missing(c, err);
    snprintf(enable + strlen(enable), sizeof enable - strlen(enable), "%s+%s", *enable ? " " : "",
             ctl_names[c]);
  }
  int r = make_dir(m->v2, parent, name, *enable ? enable : NULL, m->self_v2, &cg->dir[0], err);
  if (r < 0)
    return r;
  cg->n = 1;
  for (int c = 0; c < CTL_N; c++)
    cg->of[c] = 0;
  const char *d = cg->dir[0];
  if (lim->memory) {
    if ((r = write_u64(d, "memory.max", lim->memory, err)) < 0)
      return r;
    if (has_file(d, "memory.swap.max") && (r = write_ctl(d, "memory.swap.max", "0", err)) < 0)
      return r;
  }
  if (lim->pids && (r = write_u64(d, "pids.max", lim->pids, err)) < 0)
    return r;
  if (lim->cpu_millis) {
    char s[48];
    snprintf(s, sizeof s, "%" PRIu64 " %d", lim->cpu_millis * 100, CPU_PERIOD_US);
    if ((r = write_ctl(d, "cpu.max", s, err)) < 0)
      return r;
  }
  return 0;
}

static void destroyp(sandbox_cgroup **cg) { sandbox_cgroup_destroy(*cg); }

int sandbox_cgroup_create(const sandbox_cgroup_env *env, const char *parent, const char *name,
                          const sandbox_limits *limits, sandbox_cgroup **out, hoist_err **err) {
  *out = NULL;
  if (!safe_name(name))
    return hoist_err_set(err, EINVAL, "cgroup: bad name \"%s\": one path component expected",
                         name ? name : "(null)");
  _cleanup_free_ char *par = normalize_parent(parent);
  if (!par)
    return hoist_err_set(err, EINVAL,
                         "cgroup: bad parent \"%s\": an absolute path without \".\" or \"..\" "
                         "expected",
                         parent ? parent : "(null)");
  static const sandbox_limits none;
  const sandbox_limits *lim = limits ? limits : &none;
  if (lim->cpu_millis && (lim->cpu_millis < CPU_MIN_MILLIS || lim->cpu_millis > UINT64_MAX / 100))
    return hoist_err_set(err, EINVAL,
                         "cgroup: a cpu limit of %" PRIu64 " millicpus is out of range (at "
                         "least %d)",
                         lim->cpu_millis, CPU_MIN_MILLIS);
  const uint64_t want[CTL_N] = {lim->memory, lim->pids, lim->cpu_millis};
  __attribute__((cleanup(mounts_free))) mounts m = {0};
  int r = find_mounts(env, &m, err);
  if (r < 0)
    return r;
  bool v1 = m.v1[CTL_MEMORY] || m.v1[CTL_PIDS];
  if (!v1 && !m.v2) {
    for (int c = 0; c < CTL_N; c++)
      if (want[c])
        return missing(c, err);
    return hoist_err_set(err, ENOENT,
                         "cgroup: no cgroup hierarchy (neither a v1 memory or pids "
                         "hierarchy nor cgroup2 is mounted)");
  }
  __attribute__((cleanup(destroyp))) sandbox_cgroup *cg = hoist_malloc0(sizeof *cg);
  cg->v2 = !v1;
  r = v1 ? create_v1(&m, par, name, lim, want, cg, err)
         : create_v2(&m, par, name, lim, want, cg, err);
  if (r < 0)
    return r;
  *out = steal_pointer(&cg);
  return 0;
}

/* ---------------------------------------------------------------- attach */

int sandbox_cgroup_attach(sandbox_cgroup *cg, pid_t pid, hoist_err **err) {
  if (!cg || pid <= 0)
    return hoist_err_set(err, EINVAL, "cgroup: attach: no cgroup or no pid");
  char s[16];
  snprintf(s, sizeof s, "%d", (int)pid);
  for (size_t i = 0; i < cg->n; i++) {
    int r = write_ctl(cg->dir[i], "cgroup.procs", s, err);
    if (r < 0)
      return r;
  }
  return 0;
}

/* ---------------------------------------------------------------- events */

/* The number on dir/file's "key N" line: 0 when the file or the line is
 * missing, -errno when the file cannot be read. Allocates nothing. */
static int read_counter(const char *dir, const char *file, const char *key, uint64_t *out) {
  *out = 0;
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path)
    return -ENAMETOOLONG;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 0 : -errno;
  char buf[1024];
  size_t len = 0;
  while (len < sizeof buf - 1) {
    ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      return -e;
    }
    if (n == 0)
      break;
    len += (size_t)n;
  }
  close(fd);
  buf[len] = '\0';
  size_t kl = strlen(key);
  const char *p = buf, *line;
  size_t ll;
  while ((line = next_line(&p, &ll)))
    if (ll > kl && memcmp(line, key, kl) == 0 && line[kl] == ' ') {
      *out = strtoull(line + kl + 1, NULL, 10);
      break;
    }
  return 0;
}

int sandbox_cgroup_events_read(const sandbox_cgroup *cg, sandbox_cgroup_events *ev) {
  memset(ev, 0, sizeof *ev);
  if (!cg)
    return -EINVAL;
  int r = 0, r2 = 0;
  if (cg->of[CTL_MEMORY] >= 0)
    r = read_counter(cg->dir[cg->of[CTL_MEMORY]], cg->v2 ? "memory.events" : "memory.oom_control",
                     "oom_kill", &ev->oom_kills);
  if (cg->of[CTL_PIDS] >= 0)
    r2 = read_counter(cg->dir[cg->of[CTL_PIDS]], "pids.events", "max", &ev->pids_max_hits);
  return r < 0 ? r : r2;
}

/* --------------------------------------------------------------- destroy */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap(void) {
  struct timespec ts = {0, NAP_MS * 1000000L};
  nanosleep(&ts, NULL);
}

static size_t kill_pid(uint64_t v, pid_t self) {
  if (v == 0 || v > (uint64_t)INT_MAX || (pid_t)v == self)
    return 0;
  kill((pid_t)v, SIGKILL);
  return 1;
}

/* Sends SIGKILL to each process dir/cgroup.procs lists, the caller excepted,
 * and returns how many there were (0 when the file cannot be read). A pid is
 * read and signalled a moment apart; pids are handed out cyclically, so it
 * could name another process only if the counter wrapped around meanwhile
 * (v2's cgroup.kill has no such window). Allocates nothing. */
static size_t kill_listed(const char *dir) {
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/cgroup.procs", dir) >= (int)sizeof path)
    return 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  pid_t self = getpid();
  size_t found = 0;
  uint64_t v = 0;
  bool in = false;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    for (ssize_t i = 0; i < n; i++) {
      if (buf[i] >= '0' && buf[i] <= '9') {
        if (v <= (uint64_t)INT_MAX)
          v = v * 10 + (uint64_t)(buf[i] - '0');
        in = true;
      } else if (in) {
        found += kill_pid(v, self);
        in = false;
        v = 0;
      }
    }
  }
  if (in)
    found += kill_pid(v, self);
  close(fd);
  return found;
}

void sandbox_cgroup_kill(const sandbox_cgroup *cg) {
  if (!cg)
    return;
  if (cg->v2 && cg->n) {
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/cgroup.kill", cg->dir[0]) < (int)sizeof path &&
        write_str(path, "1") == 0)
      return;
  }
  for (size_t i = 0; i < cg->n; i++)
    kill_listed(cg->dir[i]);
}

/* v2: cgroup.kill when the kernel has it (5.14); then, on both, SIGKILL to
 * whatever cgroup.procs still lists, every NAP_MS until nothing is (at most
 * KILL_WAIT_MS), then rmdir, retried on EBUSY for at most RMDIR_WAIT_MS in
 * all. An empty cgroup goes at once; what cannot be removed is left behind
 * (hoist_debug says so). */
void sandbox_cgroup_destroy(sandbox_cgroup *cg) {
  if (!cg)
    return;
  if (cg->v2 && cg->n) {
    _cleanup_free_ char *kill_file = hoist_asprintf("%s/cgroup.kill", cg->dir[0]);
    int r = write_str(kill_file, "1");
    if (r < 0 && r != -ENOENT)
      hoist_debug("cgroup: write %s: %s", kill_file, strerror(-r));
  }
  int64_t until = now_ms() + KILL_WAIT_MS;
  for (;;) {
    size_t left = 0;
    for (size_t i = 0; i < cg->n; i++)
      left += kill_listed(cg->dir[i]);
    if (!left)
      break;
    if (now_ms() >= until) {
      hoist_debug("cgroup: %zu processes still listed after %d ms", left, KILL_WAIT_MS);
      break;
    }
    nap();
  }
  until = now_ms() + RMDIR_WAIT_MS;
  for (size_t i = 0; i < cg->n; i++) {
    while (rmdir(cg->dir[i]) < 0) {
      int e = errno;
      if (e == ENOENT)
        break;
      if (e != EBUSY || now_ms() >= until) {
        hoist_debug("cgroup: rmdir %s: %s (left behind)", cg->dir[i], strerror(e));
        break;
      }
      nap();
    }
    free(cg->dir[i]);
  }
  free(cg);
}
