/*
 * sandbox cgroup: unit tests.
 *
 * Most cases run against made-up hierarchies in a temporary directory, where a
 * fake kernel (below) makes the control files a new cgroup directory gets and
 * lets rmdir remove them; the last test runs against this host's cgroup v1
 * hierarchies when it can (root, a v1 pids mount): real limits, a fork bomb
 * and an OOM kill.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../src/lib/sandbox/sandbox-private.h"
#include "hoist/fs.h"
#include "test_util.h"

#define MiB (1024ULL * 1024)

static void nap_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *read_text(const char *path) {
  char *text = NULL;
  hoist_err *err = NULL;
  if (hoist_fs_read_file(AT_FDCWD, path, 1 << 20, &text, NULL, &err) < 0) {
    hoist_err_free(err);
    return NULL;
  }
  size_t n = strlen(text);
  while (n && text[n - 1] == '\n')
    text[--n] = '\0';
  return text;
}

static void write_text(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
    fail_msg("write %s: %s", path, strerror(errno));
  close(fd);
}

/* ------------------------------------------------------------ fake kernel */

/* A made-up hierarchy: its mount point (under the fake root), type and super
 * options as mountinfo shows them, and the control files each of its cgroups
 * has, space-separated: "ctl:file" only when the parent's
 * cgroup.subtree_control enables ctl (v2; never in the mount point),
 * "file>target" as a symlink (to make a write fail). */
typedef struct {
  const char *dir;
  const char *type;
  const char *opts;
  const char *files;
} fake_mount;

#define MAX_MOUNTS 4

static struct {
  char root[PATH_MAX]; /* "" when no fake tree is up */
  const fake_mount *mounts;
  char log[1024]; /* what rmdir removed: "rel/path[ cgroup.kill=...]" lines */
} fake;

/* The fake mount whose tree holds path; *top tells whether path is its mount
 * point. */
static const fake_mount *fake_mount_of(const char *path, bool *top) {
  size_t rl = strlen(fake.root);
  if (!rl || !fake.mounts || strncmp(path, fake.root, rl) != 0 || path[rl] != '/')
    return NULL;
  const char *rel = path + rl + 1;
  for (size_t i = 0; i < MAX_MOUNTS && fake.mounts[i].dir; i++) {
    size_t dl = strlen(fake.mounts[i].dir);
    if (strncmp(rel, fake.mounts[i].dir, dl) == 0 && (rel[dl] == '\0' || rel[dl] == '/')) {
      *top = rel[dl] == '\0';
      return &fake.mounts[i];
    }
  }
  return NULL;
}

/* Whether the cgroup.subtree_control of path's parent holds "+ctl" (as the
 * library writes it) or "ctl" (as the kernel shows it). */
static bool fake_enabled(const char *path, const char *ctl) {
  char file[PATH_MAX], want[64];
  snprintf(file, sizeof file, "%.*s/cgroup.subtree_control", (int)(strrchr(path, '/') - path),
           path);
  snprintf(want, sizeof want, "+%s", ctl);
  _cleanup_free_ char *text = read_text(file);
  for (char *save = NULL, *w = text ? strtok_r(text, " \n", &save) : NULL; w;
       w = strtok_r(NULL, " \n", &save))
    if (strcmp(w, want) == 0 || strcmp(w, want + 1) == 0)
      return true;
  return false;
}

static void fake_populate(const fake_mount *m, const char *path, bool top) {
  char files[1024];
  snprintf(files, sizeof files, "%s", m->files);
  for (char *save = NULL, *tok = strtok_r(files, " ", &save); tok;
       tok = strtok_r(NULL, " ", &save)) {
    char *name = tok, *colon = strchr(tok, ':'), *gt;
    if (colon) {
      *colon = '\0';
      name = colon + 1;
      if (top || !fake_enabled(path, tok))
        continue;
    }
    if ((gt = strchr(name, '>')))
      *gt = '\0';
    char file[PATH_MAX];
    snprintf(file, sizeof file, "%s/%s", path, name);
    if (gt) {
      if (symlink(gt + 1, file) < 0 && errno != EEXIST)
        abort();
    } else {
      int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0)
        abort();
      close(fd);
    }
  }
}

/* The library's mkdir and rmdir bind to these (libhoist is a static library).
 * Under a fake mount they act as cgroupfs does: a new directory comes with
 * its control files, and rmdir removes a directory that holds no other
 * directory, control files and all. Elsewhere they are the plain calls. */
int mkdir(const char *path, mode_t mode) {
  if (syscall(SYS_mkdirat, AT_FDCWD, path, mode) < 0)
    return -1;
  bool top;
  const fake_mount *m = fake_mount_of(path, &top);
  if (m)
    fake_populate(m, path, top);
  return 0;
}

int rmdir(const char *path) {
  bool top;
  if (fake_mount_of(path, &top)) {
    DIR *d = opendir(path);
    if (!d)
      return -1;
    struct dirent *e;
    struct stat st;
    while ((e = readdir(d)))
      if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
          fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
        closedir(d);
        errno = EBUSY;
        return -1;
      }
    char kill_file[PATH_MAX];
    snprintf(kill_file, sizeof kill_file, "%s/cgroup.kill", path);
    _cleanup_free_ char *killed = read_text(kill_file);
    size_t n = strlen(fake.log);
    snprintf(fake.log + n, sizeof fake.log - n, "%s%s%s\n", path + strlen(fake.root) + 1,
             killed && *killed ? " cgroup.kill=" : "", killed && *killed ? killed : "");
    rewinddir(d);
    while ((e = readdir(d)))
      if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
        unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
  }
  return (int)syscall(SYS_unlinkat, AT_FDCWD, path, AT_REMOVEDIR);
}

static void append_escaped(char *out, size_t size, const char *s) {
  size_t n = strlen(out);
  for (; *s && n + 5 < size; s++) {
    if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\\')
      n += (size_t)snprintf(out + n, size - n, "\\%03o", (unsigned char)*s);
    else
      out[n++] = *s;
  }
  out[n] = '\0';
}

/* Makes a fake root holding the mount points of mounts (up to MAX_MOUNTS, a
 * NULL dir ends them) and returns a mountinfo text that shows them among
 * other mounts. controllers, when not NULL, goes to the cgroup2 mount's
 * cgroup.controllers. Caller frees. */
static char *fake_up(const fake_mount *mounts, const char *controllers) {
  char *root = test_mkdtemp();
  snprintf(fake.root, sizeof fake.root, "%s", root);
  free(root);
  fake.mounts = mounts;
  fake.log[0] = '\0';
  char *mi = hoist_malloc0(8192);
  snprintf(mi, 8192,
           "20 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
           "22 20 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs "
           "rw\n");
  for (size_t i = 0; i < MAX_MOUNTS && mounts[i].dir; i++) {
    _cleanup_free_ char *path = hoist_asprintf("%s/%s", fake.root, mounts[i].dir);
    for (char *slash = path + strlen(fake.root) + 1; (slash = strchr(slash, '/')); slash++) {
      *slash = '\0';
      mkdir(path, 0755);
      *slash = '/';
    }
    if (mkdir(path, 0755) < 0)
      fail_msg("mkdir %s: %s", path, strerror(errno));
    if (controllers && strcmp(mounts[i].type, "cgroup2") == 0) {
      _cleanup_free_ char *file = hoist_asprintf("%s/cgroup.controllers", path);
      write_text(file, controllers);
    }
    size_t n = strlen(mi);
    snprintf(mi + n, 8192 - n, "%zu 22 0:%zu / ", 30 + i, 40 + i);
    append_escaped(mi, 8192, path);
    n = strlen(mi);
    snprintf(mi + n, 8192 - n, " rw,nosuid,nodev,noexec,relatime shared:%zu - %s %s %s\n", 10 + i,
             mounts[i].type, mounts[i].type, mounts[i].opts);
  }
  return mi;
}

static int rm_visit(const char *path, const struct stat *st, int type, struct FTW *ftw) {
  (void)st, (void)type, (void)ftw;
  remove(path);
  return 0;
}

static void fake_down(void) {
  char root[PATH_MAX];
  snprintf(root, sizeof root, "%s", fake.root);
  fake.root[0] = '\0';
  fake.mounts = NULL;
  if (root[0])
    nftw(root, rm_visit, 16, FTW_DEPTH | FTW_PHYS);
}

static int fake_teardown(void **state) {
  (void)state;
  fake_down();
  return 0;
}

static char *tree_lines[512];
static size_t tree_n;

static int tree_visit(const char *path, const struct stat *st, int type, struct FTW *ftw) {
  (void)st;
  if (ftw->level == 0)
    return 0;
  if (tree_n == sizeof tree_lines / sizeof tree_lines[0])
    abort();
  const char *rel = path + strlen(fake.root) + 1;
  if (type == FTW_D) {
    tree_lines[tree_n++] = hoist_asprintf("%s/", rel);
  } else if (type == FTW_F && strcmp(path + ftw->base, "cgroup.controllers") != 0) {
    char *text = read_text(path);
    if (text && *text)
      tree_lines[tree_n++] = hoist_asprintf("%s=%s", rel, text);
    free(text);
  }
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The fake tree: each directory as "rel/", each non-empty file as
 * "rel=content" (cgroup.controllers left out, symlinks too), sorted, one a
 * line. Lines containing skip (when not NULL) are left out. Caller frees. */
static char *fake_tree(const char *skip) {
  tree_n = 0;
  nftw(fake.root, tree_visit, 16, FTW_PHYS);
  qsort(tree_lines, tree_n, sizeof tree_lines[0], cmp_str);
  size_t len = 1;
  for (size_t i = 0; i < tree_n; i++)
    len += strlen(tree_lines[i]) + 1;
  char *out = hoist_malloc0(len);
  for (size_t i = 0; i < tree_n; i++) {
    if (!skip || !strstr(tree_lines[i], skip)) {
      strcat(out, tree_lines[i]);
      strcat(out, "\n");
    }
    free(tree_lines[i]);
  }
  return out;
}

#define TREE_EQUAL(what, got, want)                                                                \
  do {                                                                                             \
    if (strcmp((got), (want)) != 0)                                                                \
      fail_msg("%s: tree\n%s-- expected --\n%s", (what), (got), (want));                           \
  } while (0)

/* ------------------------------------------------------- made-up hosts */

#define V1_MEMORY_FILES "cgroup.procs memory.limit_in_bytes memory.oom_control"
#define V1_MEMSW_FILES V1_MEMORY_FILES " memory.memsw.limit_in_bytes"
#define V1_PIDS_FILES "cgroup.procs pids.max pids.events"
#define V1_CPU_FILES "cgroup.procs cpu.cfs_period_us cpu.cfs_quota_us cpu.shares"
#define V2_FILES                                                                                   \
  "cgroup.procs cgroup.subtree_control cgroup.kill memory:memory.max memory:memory.events "        \
  "pids:pids.max pids:pids.events cpu:cpu.max"
#define V2_SWAP_FILES V2_FILES " memory:memory.swap.max"

#define MEMORY_MOUNT                                                                               \
  { "memory", "cgroup", "rw,nosuid,nodev,noexec,relatime,memory", V1_MEMSW_FILES }
#define PIDS_MOUNT                                                                                 \
  { "pids", "cgroup", "rw,pids", V1_PIDS_FILES }
#define CPU_MOUNT                                                                                  \
  { "cpu", "cgroup", "rw,cpu", V1_CPU_FILES }
#define UNIFIED_MOUNT                                                                              \
  { "unified", "cgroup2", "rw,nsdelegate", V2_SWAP_FILES }

#define SELF_V1 "9:name=systemd:/\n8:pids:/\n4:memory:/\n1:cpu:/\n0::/\n"
#define SELF_V2 "0::/\n"
#define ALL_CONTROLLERS "cpuset cpu io memory hugetlb pids rdma misc\n"

/* A hybrid host like this one: v1 controllers, an empty cgroup2. */
static const fake_mount hybrid[MAX_MOUNTS] = {MEMORY_MOUNT, PIDS_MOUNT, CPU_MOUNT, UNIFIED_MOUNT};
static const fake_mount unified[MAX_MOUNTS] = {UNIFIED_MOUNT};
static const fake_mount memory_only[MAX_MOUNTS] = {MEMORY_MOUNT};

/* ----------------------------------------------------------------- create */

static void test_create_table(void **state) {
  (void)state;
  static const struct {
    const char *what;
    fake_mount mounts[MAX_MOUNTS];
    const char *controllers; /* v2: the mount point's cgroup.controllers */
    const char *self;        /* /proc/self/cgroup */
    const char *parent;      /* NULL: "/hoist" */
    sandbox_limits limits;
    const char *error; /* a piece of the error, NULL for success */
    const char *tree;  /* the fake tree afterwards */
  } cases[] = {
      {"v1: memory (memsw last), pids, cpu; the empty cgroup2 is not used",
       {MEMORY_MOUNT, PIDS_MOUNT, CPU_MOUNT, UNIFIED_MOUNT},
       "",
       SELF_V1,
       NULL,
       {64 * MiB, 8, 1500},
       NULL,
       "cpu/\n"
       "cpu/hoist/\n"
       "cpu/hoist/run/\n"
       "cpu/hoist/run/cpu.cfs_period_us=100000\n"
       "cpu/hoist/run/cpu.cfs_quota_us=150000\n"
       "memory/\n"
       "memory/hoist/\n"
       "memory/hoist/run/\n"
       "memory/hoist/run/memory.limit_in_bytes=67108864\n"
       "memory/hoist/run/memory.memsw.limit_in_bytes=67108864\n"
       "pids/\n"
       "pids/hoist/\n"
       "pids/hoist/run/\n"
       "pids/hoist/run/pids.max=8\n"
       "unified/\n"},
      {"v1: no memsw file (swap not accounted); parent made on the way",
       {{"memory", "cgroup", "rw,memory", V1_MEMORY_FILES}, PIDS_MOUNT, CPU_MOUNT},
       NULL,
       SELF_V1,
       "/a//b/",
       {1ULL << 30, 0, 0},
       NULL,
       "cpu/\ncpu/a/\ncpu/a/b/\ncpu/a/b/run/\n"
       "memory/\nmemory/a/\nmemory/a/b/\nmemory/a/b/run/\n"
       "memory/a/b/run/memory.limit_in_bytes=1073741824\n"
       "pids/\npids/a/\npids/a/b/\npids/a/b/run/\n"},
      {"v1: cpu co-mounted with cpuacct",
       {MEMORY_MOUNT, PIDS_MOUNT, {"cpu,cpuacct", "cgroup", "rw,cpu,cpuacct", V1_CPU_FILES}},
       NULL,
       "8:pids:/\n4:memory:/\n2:cpu,cpuacct:/\n0::/\n",
       NULL,
       {0, 0, 250},
       NULL,
       "cpu,cpuacct/\ncpu,cpuacct/hoist/\ncpu,cpuacct/hoist/run/\n"
       "cpu,cpuacct/hoist/run/cpu.cfs_period_us=100000\n"
       "cpu,cpuacct/hoist/run/cpu.cfs_quota_us=25000\n"
       "memory/\nmemory/hoist/\nmemory/hoist/run/\n"
       "pids/\npids/hoist/\npids/hoist/run/\n"},
      {"v1: memory and pids co-mounted share one directory",
       {{"memory,pids", "cgroup", "rw,memory,pids", V1_MEMSW_FILES " " V1_PIDS_FILES}},
       NULL,
       "5:memory,pids:/\n0::/\n",
       NULL,
       {64 * MiB, 8, 0},
       NULL,
       "memory,pids/\nmemory,pids/hoist/\nmemory,pids/hoist/run/\n"
       "memory,pids/hoist/run/memory.limit_in_bytes=67108864\n"
       "memory,pids/hoist/run/memory.memsw.limit_in_bytes=67108864\n"
       "memory,pids/hoist/run/pids.max=8\n"},
      {"v1: a mount point with a space (escaped in mountinfo), parent /",
       {{"my cgroups/pids", "cgroup", "rw,pids", V1_PIDS_FILES}},
       NULL,
       "8:pids:/\n0::/\n",
       "/",
       {0, 100, 0},
       NULL,
       "my cgroups/\nmy cgroups/pids/\nmy cgroups/pids/run/\nmy cgroups/pids/run/pids.max=100\n"},
      {"v1: a limit whose hierarchy is missing",
       {MEMORY_MOUNT, CPU_MOUNT},
       NULL,
       "4:memory:/\n1:cpu:/\n0::/\n",
       NULL,
       {64 * MiB, 8, 0},
       "cgroup: no pids controller (needed for the pids limit)",
       "cpu/\nmemory/\n"},
      {"v1: a mount /proc/self/cgroup does not list is not used",
       {MEMORY_MOUNT, PIDS_MOUNT},
       NULL,
       "4:memory:/\n0::/\n",
       NULL,
       {0, 8, 0},
       "cgroup: no pids controller (needed for the pids limit)",
       "memory/\npids/\n"},
      {"v1: a refused write names the file; the run's directories go, the parents stay",
       {MEMORY_MOUNT, {"pids", "cgroup", "rw,pids", "cgroup.procs pids.events pids.max>/dev/full"}},
       NULL,
       SELF_V1,
       NULL,
       {64 * MiB, 8, 0},
       "/pids/hoist/run/pids.max: No space left on device",
       "memory/\nmemory/hoist/\npids/\npids/hoist/\n"},
      {"v1: a cpu limit below the kernel's minimum",
       {MEMORY_MOUNT, PIDS_MOUNT, CPU_MOUNT},
       NULL,
       SELF_V1,
       NULL,
       {0, 0, 5},
       "cgroup: a cpu limit of 5 millicpus is out of range",
       "cpu/\nmemory/\npids/\n"},
      {"v2: every limit; the controllers enabled from the root down to the parent",
       {UNIFIED_MOUNT},
       ALL_CONTROLLERS,
       SELF_V2,
       "/hoist/builds",
       {64 * MiB, 8, 1500},
       NULL,
       "unified/\n"
       "unified/cgroup.subtree_control=+memory +pids +cpu\n"
       "unified/hoist/\n"
       "unified/hoist/builds/\n"
       "unified/hoist/builds/cgroup.subtree_control=+memory +pids +cpu\n"
       "unified/hoist/builds/run/\n"
       "unified/hoist/builds/run/cpu.max=150000 100000\n"
       "unified/hoist/builds/run/memory.max=67108864\n"
       "unified/hoist/builds/run/memory.swap.max=0\n"
       "unified/hoist/builds/run/pids.max=8\n"
       "unified/hoist/cgroup.subtree_control=+memory +pids +cpu\n"},
      {"v2: a pids limit enables pids only",
       {UNIFIED_MOUNT},
       ALL_CONTROLLERS,
       SELF_V2,
       NULL,
       {0, 8, 0},
       NULL,
       "unified/\nunified/cgroup.subtree_control=+pids\n"
       "unified/hoist/\nunified/hoist/cgroup.subtree_control=+pids\n"
       "unified/hoist/run/\nunified/hoist/run/pids.max=8\n"},
      {"v2: no memory.swap.max (swap not accounted)",
       {{"unified", "cgroup2", "rw", V2_FILES}},
       "memory pids\n",
       SELF_V2,
       NULL,
       {64 * MiB, 0, 0},
       NULL,
       "unified/\nunified/cgroup.subtree_control=+memory\n"
       "unified/hoist/\nunified/hoist/cgroup.subtree_control=+memory\n"
       "unified/hoist/run/\nunified/hoist/run/memory.max=67108864\n"},
      {"v2: no limits: nothing enabled",
       {UNIFIED_MOUNT},
       ALL_CONTROLLERS,
       SELF_V2,
       NULL,
       {0, 0, 0},
       NULL,
       "unified/\nunified/hoist/\nunified/hoist/run/\n"},
      {"v2: parent / (the run's directory in the root)",
       {UNIFIED_MOUNT},
       ALL_CONTROLLERS,
       SELF_V2,
       "/",
       {0, 8, 0},
       NULL,
       "unified/\nunified/cgroup.subtree_control=+pids\nunified/run/\nunified/run/pids.max=8\n"},
      {"v2 when v1 has neither memory nor pids (v1 cpu is not used)",
       {CPU_MOUNT, UNIFIED_MOUNT},
       ALL_CONTROLLERS,
       "1:cpu:/\n0::/\n",
       NULL,
       {0, 0, 1000},
       NULL,
       "cpu/\nunified/\nunified/cgroup.subtree_control=+cpu\n"
       "unified/hoist/\nunified/hoist/cgroup.subtree_control=+cpu\n"
       "unified/hoist/run/\nunified/hoist/run/cpu.max=100000 100000\n"},
      {"v2: memory controller missing",
       {UNIFIED_MOUNT},
       "cpu io pids\n",
       SELF_V2,
       NULL,
       {64 * MiB, 8, 0},
       "cgroup: no memory controller (needed for the memory limit)",
       "unified/\n"},
      {"v2: cpu controller missing",
       {UNIFIED_MOUNT},
       "memory pids\n",
       SELF_V2,
       NULL,
       {64 * MiB, 8, 1000},
       "cgroup: no cpu controller (needed for the cpu limit)",
       "unified/\n"},
      {"v2: a controller missing where no limit needs it",
       {UNIFIED_MOUNT},
       "memory\n",
       SELF_V2,
       NULL,
       {64 * MiB, 0, 0},
       NULL,
       "unified/\nunified/cgroup.subtree_control=+memory\n"
       "unified/hoist/\nunified/hoist/cgroup.subtree_control=+memory\n"
       "unified/hoist/run/\nunified/hoist/run/memory.max=67108864\n"
       "unified/hoist/run/memory.swap.max=0\n"},
      {"no hierarchy at all, no limits",
       {{NULL}},
       NULL,
       "",
       NULL,
       {0, 0, 0},
       "cgroup: no cgroup hierarchy",
       ""},
      {"no hierarchy at all, a pids limit",
       {{NULL}},
       NULL,
       "",
       NULL,
       {0, 8, 0},
       "cgroup: no pids controller (needed for the pids limit)",
       ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    _cleanup_free_ char *mi = fake_up(cases[i].mounts, cases[i].controllers);
    sandbox_cgroup_env env = {mi, cases[i].self};
    sandbox_cgroup *cg = NULL;
    hoist_err *err = NULL;
    int r = sandbox_cgroup_create(&env, cases[i].parent ? cases[i].parent : "/hoist", "run",
                                  &cases[i].limits, &cg, &err);
    if (cases[i].error) {
      if (r == 0)
        fail_msg("%s: expected an error", cases[i].what);
      assert_null(cg);
      assert_int_equal(r, -hoist_err_root_code(err));
      assert_err_contains(&err, cases[i].error);
    } else if (r != 0) {
      _cleanup_free_ char *t = hoist_err_text(err);
      fail_msg("%s: %s", cases[i].what, t);
    }
    _cleanup_free_ char *tree = fake_tree(NULL);
    TREE_EQUAL(cases[i].what, tree, cases[i].tree);
    /* destroy removes the run's directories, nothing else */
    _cleanup_free_ char *want = fake_tree("run/");
    sandbox_cgroup_destroy(cg);
    _cleanup_free_ char *after = fake_tree(NULL);
    TREE_EQUAL(cases[i].what, after, want);
    fake_down();
  }
}

/* A delegated cgroup (systemd's Delegate=yes): the cgroups above it enable
 * the controllers already, and their cgroup.subtree_control is not the
 * delegated user's to write. The mount point's file stands for them here: the
 * library leaves it as it is when it has every controller needed. */
static void test_create_enabled_above(void **state) {
  (void)state;
  static const struct {
    const char *what;
    const char *enabled; /* the mount point's cgroup.subtree_control, as the kernel shows it */
    sandbox_limits limits;
    const char *tree;
  } cases[] = {
      {"every controller enabled: not written",
       "cpu io memory pids",
       {64 * MiB, 8, 1500},
       "unified/\n"
       "unified/cgroup.subtree_control=cpu io memory pids\n"
       "unified/hoist/\n"
       "unified/hoist/builds/\n"
       "unified/hoist/builds/cgroup.subtree_control=+memory +pids +cpu\n"
       "unified/hoist/builds/run/\n"
       "unified/hoist/builds/run/cpu.max=150000 100000\n"
       "unified/hoist/builds/run/memory.max=67108864\n"
       "unified/hoist/builds/run/memory.swap.max=0\n"
       "unified/hoist/builds/run/pids.max=8\n"
       "unified/hoist/cgroup.subtree_control=+memory +pids +cpu\n"},
      {"one missing: the whole set written",
       "cpu pids",
       {64 * MiB, 8, 0},
       "unified/\n"
       "unified/cgroup.subtree_control=+memory +pids\n"
       "unified/hoist/\n"
       "unified/hoist/builds/\n"
       "unified/hoist/builds/cgroup.subtree_control=+memory +pids\n"
       "unified/hoist/builds/run/\n"
       "unified/hoist/builds/run/memory.max=67108864\n"
       "unified/hoist/builds/run/memory.swap.max=0\n"
       "unified/hoist/builds/run/pids.max=8\n"
       "unified/hoist/cgroup.subtree_control=+memory +pids\n"},
  };
  static const fake_mount mounts[MAX_MOUNTS] = {UNIFIED_MOUNT};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    _cleanup_free_ char *mi = fake_up(mounts, ALL_CONTROLLERS);
    _cleanup_free_ char *file = hoist_asprintf("%s/unified/cgroup.subtree_control", fake.root);
    write_text(file, cases[i].enabled);
    sandbox_cgroup_env env = {mi, SELF_V2};
    sandbox_cgroup *cg = NULL;
    hoist_err *err = NULL;
    if (sandbox_cgroup_create(&env, "/hoist/builds", "run", &cases[i].limits, &cg, &err) < 0) {
      _cleanup_free_ char *t = hoist_err_text(err);
      fail_msg("%s: %s", cases[i].what, t);
    }
    _cleanup_free_ char *tree = fake_tree(NULL);
    TREE_EQUAL(cases[i].what, tree, cases[i].tree);
    sandbox_cgroup_destroy(cg);
    fake_down();
  }
}

/* ------------------------------------------------------ existing, names */

static void test_exists(void **state) {
  (void)state;
  _cleanup_free_ char *mi = fake_up(hybrid, "");
  sandbox_cgroup_env env = {mi, SELF_V1};
  sandbox_limits lim = {64 * MiB, 8, 0};
  sandbox_cgroup *cg = NULL, *again = NULL;
  hoist_err *err = NULL;
  assert_ok(sandbox_cgroup_create(&env, "/hoist", "run", &lim, &cg, &err), &err);
  _cleanup_free_ char *before = fake_tree(NULL);
  assert_int_equal(sandbox_cgroup_create(&env, "/hoist", "run", &lim, &again, &err), -EEXIST);
  assert_null(again);
  assert_err_contains(&err, "/memory/hoist/run already exists");
  _cleanup_free_ char *after = fake_tree(NULL);
  TREE_EQUAL("a second create", after, before);
  sandbox_cgroup_destroy(cg);

  /* only one hierarchy has it: what was made in the others goes again */
  _cleanup_free_ char *path = hoist_asprintf("%s/pids/hoist/run", fake.root);
  assert_int_equal(mkdir(path, 0755), 0);
  assert_int_equal(sandbox_cgroup_create(&env, "/hoist", "run", &lim, &cg, &err), -EEXIST);
  assert_null(cg);
  assert_err_contains(&err, "/pids/hoist/run already exists");
  _cleanup_free_ char *tree = fake_tree(NULL);
  TREE_EQUAL("pids/hoist/run already there", tree,
             "cpu/\ncpu/hoist/\nmemory/\nmemory/hoist/\npids/\npids/hoist/\npids/hoist/run/\n"
             "unified/\n");
  fake_down();

  /* v2 */
  free(mi);
  mi = fake_up(unified, ALL_CONTROLLERS);
  env = (sandbox_cgroup_env){mi, SELF_V2};
  assert_ok(sandbox_cgroup_create(&env, "/hoist", "run", &lim, &cg, &err), &err);
  assert_int_equal(sandbox_cgroup_create(&env, "/hoist", "run", &lim, &again, &err), -EEXIST);
  assert_err_contains(&err, "/unified/hoist/run already exists");
  sandbox_cgroup_destroy(cg);
  fake_down();
}

static void test_bad_names(void **state) {
  (void)state;
  static const struct {
    const char *parent, *name;
    const char *error; /* NULL: accepted, made at made */
    const char *made;
  } cases[] = {
      {"/hoist", "", "bad name \"\"", NULL},
      {"/hoist", ".", "bad name \".\"", NULL},
      {"/hoist", "..", "bad name \"..\"", NULL},
      {"/hoist", "a/b", "bad name \"a/b\"", NULL},
      {"/hoist", "/run", "bad name", NULL},
      {"/hoist", "run/", "bad name", NULL},
      {"/hoist", "..\x2f..", "bad name", NULL},
      {"/hoist", NULL, "bad name", NULL},
      {"hoist", "run", "bad parent \"hoist\"", NULL},
      {"", "run", "bad parent", NULL},
      {NULL, "run", "bad parent", NULL},
      {"/a/../b", "run", "bad parent", NULL},
      {"/..", "run", "bad parent", NULL},
      {"/a/./b", "run", "bad parent", NULL},
      {"/hoist/..", "run", "bad parent", NULL},
      {"//hoist//x/", "build-1.2", NULL, "pids/hoist/x/build-1.2/"},
      {"/hoist", "...", NULL, "pids/hoist/.../"},
      {"/.hoist", "run", NULL, "pids/.hoist/run/"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    _cleanup_free_ char *mi = fake_up(hybrid, "");
    sandbox_cgroup_env env = {mi, SELF_V1};
    sandbox_limits lim = {0, 8, 0};
    sandbox_cgroup *cg = NULL;
    hoist_err *err = NULL;
    int r = sandbox_cgroup_create(&env, cases[i].parent, cases[i].name, &lim, &cg, &err);
    _cleanup_free_ char *tree = fake_tree(NULL);
    if (cases[i].error) {
      if (r != -EINVAL)
        fail_msg("case %zu: expected EINVAL, got %d", i, r);
      assert_null(cg);
      assert_err_contains(&err, cases[i].error);
      TREE_EQUAL("a refused name", tree, "cpu/\nmemory/\npids/\nunified/\n");
    } else {
      assert_ok(r, &err);
      if (!strstr(tree, cases[i].made))
        fail_msg("case %zu: %s not made:\n%s", i, cases[i].made, tree);
      sandbox_cgroup_destroy(cg);
    }
    fake_down();
  }
}

/* -------------------------------------------------------- attach, destroy */

static void test_attach_destroy(void **state) {
  (void)state;
  static const struct {
    const char *what;
    const fake_mount *mounts;
    const char *controllers, *self;
    const char *procs;   /* the cgroup.procs written, space-separated */
    const char *removed; /* what destroy removed */
  } cases[] = {
      {"v1", hybrid, "", SELF_V1, "cpu/hoist/run memory/hoist/run pids/hoist/run",
       "memory/hoist/run\npids/hoist/run\ncpu/hoist/run\n"},
      {"v2", unified, ALL_CONTROLLERS, SELF_V2, "unified/hoist/run",
       "unified/hoist/run cgroup.kill=1\n"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    _cleanup_free_ char *mi = fake_up(cases[i].mounts, cases[i].controllers);
    sandbox_cgroup_env env = {mi, cases[i].self};
    sandbox_limits lim = {64 * MiB, 8, 0};
    sandbox_cgroup *cg = NULL;
    hoist_err *err = NULL;
    assert_ok(sandbox_cgroup_create(&env, "/hoist", "run", &lim, &cg, &err), &err);
    /* this process: destroy must neither kill it nor wait for it */
    assert_ok(sandbox_cgroup_attach(cg, getpid(), &err), &err);
    char dirs[256];
    snprintf(dirs, sizeof dirs, "%s", cases[i].procs);
    for (char *save = NULL, *d = strtok_r(dirs, " ", &save); d; d = strtok_r(NULL, " ", &save)) {
      _cleanup_free_ char *path = hoist_asprintf("%s/%s/cgroup.procs", fake.root, d);
      _cleanup_free_ char *got = read_text(path);
      char want[16];
      snprintf(want, sizeof want, "%d", (int)getpid());
      if (!got || strcmp(got, want) != 0)
        fail_msg("%s: %s holds \"%s\", expected \"%s\"", cases[i].what, path, got ? got : "", want);
    }
    assert_int_equal(sandbox_cgroup_attach(cg, 0, &err), -EINVAL);
    assert_err_contains(&err, "attach");
    double t0 = now_s();
    sandbox_cgroup_destroy(cg);
    if (now_s() - t0 > 0.5)
      fail_msg("%s: destroy of an empty cgroup took %.2f s", cases[i].what, now_s() - t0);
    assert_string_equal(fake.log, cases[i].removed);
    _cleanup_free_ char *tree = fake_tree(NULL);
    if (strstr(tree, "run/") || !strstr(tree, "hoist/"))
      fail_msg("%s: after destroy:\n%s", cases[i].what, tree);
    fake_down();
  }
  sandbox_cgroup_destroy(NULL);

  /* a refused attach names the file */
  static const fake_mount broken[MAX_MOUNTS] = {
      {"pids", "cgroup", "rw,pids", "pids.max pids.events cgroup.procs>/nonexistent/cgroup.procs"}};
  _cleanup_free_ char *mi = fake_up(broken, NULL);
  sandbox_cgroup_env env = {mi, SELF_V1};
  sandbox_cgroup *cg = NULL;
  hoist_err *err = NULL;
  assert_ok(sandbox_cgroup_create(&env, "/hoist", "run", NULL, &cg, &err), &err);
  assert_int_equal(sandbox_cgroup_attach(cg, getpid(), &err), -ENOENT);
  _cleanup_free_ char *text = hoist_err_text(err);
  _cleanup_free_ char *want = hoist_asprintf(
      "cgroup: write %s/pids/hoist/run/cgroup.procs: No such file or directory", fake.root);
  assert_string_equal(text, want);
  hoist_err_free(err);
  sandbox_cgroup_destroy(cg);
  fake_down();
}

/* ----------------------------------------------------------------- events */

static void test_events_table(void **state) {
  (void)state;
  static const struct {
    const char *what;
    const fake_mount *mounts;
    const char *controllers, *self;
    sandbox_limits limits;
    const char *files[2][2]; /* relative to the fake root, and what the kernel wrote there */
    uint64_t oom_kills, pids_max_hits;
  } cases[] = {
      {"v1",
       hybrid,
       "",
       SELF_V1,
       {64 * MiB, 8, 0},
       {{"memory/hoist/run/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"},
        {"pids/hoist/run/pids.events", "max 7\n"}},
       3,
       7},
      {"v1 before Linux 4.13 (no oom_kill line), no newline at the end",
       hybrid,
       "",
       SELF_V1,
       {64 * MiB, 8, 0},
       {{"memory/hoist/run/memory.oom_control", "oom_kill_disable 0\nunder_oom 1"},
        {"pids/hoist/run/pids.events", "max 12345678901"}},
       0,
       12345678901ULL},
      {"v1: nothing counted (files empty)", hybrid, "", SELF_V1, {0, 0, 0}, {{NULL}}, 0, 0},
      {"v1 without a pids hierarchy",
       memory_only,
       NULL,
       "4:memory:/\n",
       {64 * MiB, 0, 0},
       {{"memory/hoist/run/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n"}},
       1,
       0},
      {"v2: oom_kill, not oom or oom_group_kill",
       unified,
       ALL_CONTROLLERS,
       SELF_V2,
       {64 * MiB, 8, 0},
       {{"unified/hoist/run/memory.events",
         "low 0\nhigh 0\nmax 12\noom 4\noom_group_kill 1\noom_kill 2\n"},
        {"unified/hoist/run/pids.events", "max 5\n"}},
       2,
       5},
      {"v2: controllers not enabled (no files)",
       unified,
       ALL_CONTROLLERS,
       SELF_V2,
       {0, 0, 0},
       {{NULL}},
       0,
       0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    _cleanup_free_ char *mi = fake_up(cases[i].mounts, cases[i].controllers);
    sandbox_cgroup_env env = {mi, cases[i].self};
    sandbox_cgroup *cg = NULL;
    hoist_err *err = NULL;
    assert_ok(sandbox_cgroup_create(&env, "/hoist", "run", &cases[i].limits, &cg, &err), &err);
    for (size_t k = 0; k < 2 && cases[i].files[k][0]; k++) {
      _cleanup_free_ char *path = hoist_asprintf("%s/%s", fake.root, cases[i].files[k][0]);
      write_text(path, cases[i].files[k][1]);
    }
    sandbox_cgroup_events ev = {99, 99};
    assert_int_equal(sandbox_cgroup_events_read(cg, &ev), 0);
    if (ev.oom_kills != cases[i].oom_kills || ev.pids_max_hits != cases[i].pids_max_hits)
      fail_msg("%s: oom_kills %llu pids_max_hits %llu", cases[i].what,
               (unsigned long long)ev.oom_kills, (unsigned long long)ev.pids_max_hits);
    sandbox_cgroup_destroy(cg);
    fake_down();
  }
  sandbox_cgroup_events ev = {1, 1};
  assert_int_equal(sandbox_cgroup_events_read(NULL, &ev), -EINVAL);
  assert_int_equal(ev.oom_kills + ev.pids_max_hits, 0);
}

/* ----------------------------------------------------------------- real v1 */

#define REAL_PREFIX "hoist-test-"

/* Whether mountinfo has a cgroup v1 mount of ctl (at mount point mp unless
 * NULL). */
static bool real_v1_mount(const char *mountinfo, const char *mp, const char *ctl) {
  _cleanup_free_ char *text = hoist_strdup(mountinfo);
  for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    char point[PATH_MAX];
    char *sep = strstr(line, " - cgroup ");
    if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1 || (mp && strcmp(point, mp)))
      continue;
    char *opts = strrchr(sep, ' ') + 1;
    for (char *s2 = NULL, *o = strtok_r(opts, ",", &s2); o; o = strtok_r(NULL, ",", &s2))
      if (strcmp(o, ctl) == 0)
        return true;
  }
  return false;
}

static size_t real_count(const char *pattern) {
  glob_t g;
  size_t n = glob(pattern, 0, NULL, &g) == 0 ? g.gl_pathc : 0;
  globfree(&g);
  return n;
}

/* The content of the one file matching pattern; NULL when none does. */
static char *real_read(const char *pattern) {
  glob_t g;
  char *text = NULL;
  if (glob(pattern, 0, NULL, &g) == 0) {
    if (g.gl_pathc != 1)
      fail_msg("%s: %zu matches", pattern, g.gl_pathc);
    text = read_text(g.gl_pathv[0]);
  }
  globfree(&g);
  return text;
}

/* Removes the cgroup directory dir and the ones below, killing what they
 * hold first when told to: the test's own cleanup, not the library's. */
static void real_remove(const char *dir, bool kill_procs) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)))
      if (e->d_type == DT_DIR && e->d_name[0] != '.') {
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        real_remove(sub, kill_procs);
      }
    closedir(d);
  }
  char procs[PATH_MAX];
  snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
  for (int tries = 0; tries < 300; tries++) {
    FILE *f = kill_procs ? fopen(procs, "re") : NULL;
    int pid;
    while (f && fscanf(f, "%d", &pid) == 1)
      if (pid > 0 && pid != getpid())
        kill(pid, SIGKILL);
    if (f)
      fclose(f);
    if (rmdir(dir) == 0 || errno == ENOENT || !kill_procs)
      return;
    nap_ms(10);
  }
}

/* Removes /sys/fs/cgroup/<any>/hoist-test-<pid> of pid, killing what runs
 * there, or with pid 0 the empty ones of processes that no longer run (a
 * crashed or killed earlier run). */
static void real_sweep(pid_t pid) {
  glob_t g;
  if (glob("/sys/fs/cgroup/*/" REAL_PREFIX "*", GLOB_ONLYDIR, NULL, &g) != 0)
    return;
  for (size_t i = 0; i < g.gl_pathc; i++) {
    const char *p = strrchr(g.gl_pathv[i], '/') + 1 + strlen(REAL_PREFIX);
    char *end;
    long owner = strtol(p, &end, 10);
    if (*end || owner <= 0)
      continue;
    if (pid ? owner == pid : kill((pid_t)owner, 0) < 0 && errno == ESRCH)
      real_remove(g.gl_pathv[i], pid != 0);
  }
  globfree(&g);
}

static void reap_all(void) {
  for (double until = now_s() + 2; now_s() < until;) {
    pid_t r = waitpid(-1, NULL, WNOHANG);
    if (r < 0)
      return;
    if (r == 0)
      nap_ms(10);
  }
}

typedef struct {
  sandbox_cgroup *cg;
  pid_t kids[2];
  int fds[4];
  char parent[64];
} real_state;

static int real_setup(void **state) {
  real_state *s = hoist_malloc0(sizeof *s);
  snprintf(s->parent, sizeof s->parent, "/" REAL_PREFIX "%d", (int)getpid());
  for (int i = 0; i < 4; i++)
    s->fds[i] = -1;
  *state = s;
  if (geteuid() == 0)
    real_sweep(0);
  return 0;
}

static int real_teardown(void **state) {
  real_state *s = *state;
  for (int i = 0; i < 2; i++)
    if (s->kids[i] > 0)
      kill(s->kids[i], SIGKILL);
  sandbox_cgroup_destroy(s->cg);
  for (int i = 0; i < 2; i++)
    if (s->kids[i] > 0)
      waitpid(s->kids[i], NULL, 0);
  reap_all();
  prctl(PR_SET_CHILD_SUBREAPER, 0);
  for (int i = 0; i < 4; i++)
    if (s->fds[i] >= 0)
      close(s->fds[i]);
  if (geteuid() == 0)
    real_sweep(getpid());
  free(s);
  return 0;
}

/* A child that waits for a byte on fd, then runs fn (and _exits). */
static pid_t real_child(int fd, void (*fn)(void *), void *arg) {
  pid_t pid = fork();
  if (pid == 0) {
    char c;
    if (read(fd, &c, 1) != 1)
      _exit(2);
    fn(arg);
    _exit(0);
  }
  if (pid < 0)
    fail_msg("fork: %s", strerror(errno));
  return pid;
}

/* Forks until the kernel refuses (the children wait to be killed) and writes
 * how many forks worked to the fd at arg. */
static void fork_until_refused(void *arg) {
  int made = 0;
  while (made < 64) {
    pid_t g = fork();
    if (g < 0)
      break;
    if (g == 0) {
      pause();
      _exit(0);
    }
    made++;
  }
  if (write(*(int *)arg, &made, sizeof made) != (ssize_t)sizeof made)
    _exit(3);
  pause();
}

/* Touches 256 MiB. */
static void eat_memory(void *arg) {
  (void)arg;
  size_t size = 256 * MiB;
  volatile char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    _exit(4);
  for (size_t i = 0; i < size; i += 4096)
    p[i] = 1;
}

static void test_real_v1(void **state) {
  real_state *s = *state;
  if (geteuid() != 0)
    skip();
  char *mountinfo = read_text("/proc/self/mountinfo"), *self = read_text("/proc/self/cgroup");
  if (!mountinfo || !self || !real_v1_mount(mountinfo, "/sys/fs/cgroup/pids", "pids")) {
    free(mountinfo);
    free(self);
    skip();
  }
  bool memory = real_v1_mount(mountinfo, "/sys/fs/cgroup/memory", "memory");
  bool cpu = real_v1_mount(mountinfo, NULL, "cpu");
  assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0); /* the forks' orphans are reaped here */

  sandbox_limits lim = {memory ? 64 * MiB : 0, 8, cpu ? 1000 : 0};
  sandbox_cgroup_env env = {mountinfo, self};
  hoist_err *err = NULL;
  int r = sandbox_cgroup_create(&env, s->parent, "run", &lim, &s->cg, &err);
  free(mountinfo);
  free(self);
  assert_ok(r, &err);

  char pat[PATH_MAX];
#define RUN(file) (snprintf(pat, sizeof pat, "/sys/fs/cgroup/*%s/run/%s", s->parent, file), pat)
  static const char *const want[][2] = {
      {"pids.max", "8"},
      {"cpu.cfs_period_us", "100000"},
      {"cpu.cfs_quota_us", "100000"},
      {"memory.limit_in_bytes", "67108864"},
      {"memory.memsw.limit_in_bytes", "67108864"},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    _cleanup_free_ char *got = real_read(RUN(want[i][0]));
    if (!got && (i == 0 || (i < 3 && cpu) || (i == 3 && memory)))
      fail_msg("%s: missing", pat);
    if (got && strcmp(got, want[i][1]) != 0)
      fail_msg("%s: \"%s\", expected \"%s\"", pat, got, want[i][1]);
  }

  /* pids: a child forks until the kernel refuses */
  if (pipe2(s->fds, O_CLOEXEC) < 0 || pipe2(s->fds + 2, O_CLOEXEC) < 0)
    fail_msg("pipe: %s", strerror(errno));
  s->kids[0] = real_child(s->fds[0], fork_until_refused, &s->fds[3]);
  assert_ok(sandbox_cgroup_attach(s->cg, s->kids[0], &err), &err);
  assert_int_equal(write(s->fds[1], "g", 1), 1);
  int made = -1;
  struct pollfd pfd = {s->fds[2], POLLIN, 0};
  if (poll(&pfd, 1, 30000) != 1)
    fail_msg("the forker did not report");
  assert_int_equal(read(s->fds[2], &made, sizeof made), sizeof made);
  if (made < 1 || made >= 8)
    fail_msg("%d forks worked under pids.max 8", made);
  sandbox_cgroup_events ev;
  assert_int_equal(sandbox_cgroup_events_read(s->cg, &ev), 0);
  if (ev.pids_max_hits == 0)
    fail_msg("pids.events counted no refused fork");

  /* memory: a child that touches 256 MiB under a 64 MiB limit is OOM-killed */
  if (memory) {
    s->kids[1] = real_child(s->fds[0], eat_memory, NULL);
    assert_ok(sandbox_cgroup_attach(s->cg, s->kids[1], &err), &err);
    assert_int_equal(write(s->fds[1], "g", 1), 1);
    int st;
    assert_int_equal(waitpid(s->kids[1], &st, 0), s->kids[1]);
    s->kids[1] = 0;
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
      fail_msg("the child that touched 256 MiB was not killed: status %#x", st);
    assert_int_equal(sandbox_cgroup_events_read(s->cg, &ev), 0);
    if (ev.oom_kills == 0)
      fail_msg("memory.oom_control counted no OOM kill");
  }

  /* destroy kills the forker and its children and removes the directories */
  snprintf(pat, sizeof pat, "/sys/fs/cgroup/*%s/run", s->parent);
  assert_true(real_count(pat) >= 2);
  double t0 = now_s();
  sandbox_cgroup_destroy(s->cg);
  s->cg = NULL;
  double took = now_s() - t0;
  if (took > 3)
    fail_msg("destroy took %.2f s", took);
  int st;
  assert_int_equal(waitpid(s->kids[0], &st, 0), s->kids[0]);
  s->kids[0] = 0;
  if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
    fail_msg("the forker was not killed: status %#x", st);
  assert_int_equal(real_count(pat), 0);
  snprintf(pat, sizeof pat, "/sys/fs/cgroup/*%s", s->parent);
  assert_true(real_count(pat) >= 2); /* the parent stays */
  print_message("# %d forks worked under pids.max 8, %llu refused; %llu OOM kills; destroy took "
                "%.3f s\n",
                made, (unsigned long long)ev.pids_max_hits, (unsigned long long)ev.oom_kills, took);
  real_sweep(getpid());
  assert_int_equal(real_count(pat), 0);
#undef RUN
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_create_table, fake_teardown),
      cmocka_unit_test_teardown(test_create_enabled_above, fake_teardown),
      cmocka_unit_test_teardown(test_exists, fake_teardown),
      cmocka_unit_test_teardown(test_bad_names, fake_teardown),
      cmocka_unit_test_teardown(test_attach_destroy, fake_teardown),
      cmocka_unit_test_teardown(test_events_table, fake_teardown),
      cmocka_unit_test_setup_teardown(test_real_v1, real_setup, real_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
