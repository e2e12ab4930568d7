/*
 * sandbox internals shared by the module's files and its unit tests: the pure
 * helpers (user lookup in an image's passwd/group text, subordinate-id ranges,
 * overlay option escaping, output line splitting) and the copy fallback
 * (tree copy, tree diff into an overlay-shaped upper dir).
 */
#ifndef HOIST_SANDBOX_PRIVATE_H
#define HOIST_SANDBOX_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "hoist/core.h"
#include "hoist/layer.h"

#define SANDBOX_MAX_GROUPS 64
#define SANDBOX_LINE_MAX 65536 /* longer lines are delivered in pieces of this size */

typedef struct {
  uid_t uid;
  gid_t gid;
  gid_t groups[SANDBOX_MAX_GROUPS]; /* supplementary groups (gid included) */
  size_t n_groups;
  char home[256]; /* HOME when the environment has none: passwd's, else /root or / */
} sandbox_user;

/* Resolves spec ("uid", "uid:gid", "name", "name:group", NULL or "" for root)
 * against an image's /etc/passwd and /etc/group texts (either may be NULL when
 * the image has none). A numeric uid missing from passwd keeps gid 0 unless
 * given. Names that are not found are an error (ENOENT). */
int sandbox_user_resolve(const char *spec, const char *passwd, const char *group, sandbox_user *out,
                         hoist_err **err) HOIST_WUR;

/* Finds the first "name:start:count" or "uid:start:count" line of an
 * /etc/subuid or /etc/subgid text granted to the user. */
bool sandbox_subid_range(const char *text, const char *name, uid_t uid, unsigned long *start,
                         unsigned long *count);

/* The maps of a user namespace made by uid/gid (user name, may be NULL),
 * given the texts of /etc/subuid and /etc/subgid (may be NULL) and whether
 * newuidmap and newgidmap are installed: root maps 0.. to its subordinate
 * range (one entry each) when both files grant one, else nothing (*nu and
 * *ng 0: no user namespace); others map 0 to themselves, then 1.. to their
 * subordinate ranges when both files grant one and the tools are there.
 * Returns true when the tools are needed (two entries each). */
bool sandbox_id_maps(uid_t uid, gid_t gid, const char *name, const char *subuid, const char *subgid,
                     bool have_tools, hoist_idmap u[2], size_t *nu, hoist_idmap g[2], size_t *ng);

/* The full path of the executable name in a directory of our PATH (the
 * usual one when PATH is unset), as execvp would find it, or NULL. Caller
 * frees. */
char *sandbox_which(const char *dirs, const char *name);

/* path with '\\', ',' and ':' escaped for an overlay mount option. Caller frees. */
char *sandbox_overlay_escape(const char *path);

typedef void (*sandbox_emit_fn)(void *ctx, const char *line, size_t len);

/* Splits a byte stream into lines: complete lines go to emit without their
 * newline, a partial line waits for more bytes (or flush), and a line longer
 * than SANDBOX_LINE_MAX is delivered in pieces. */
typedef struct {
  char *buf; /* SANDBOX_LINE_MAX bytes, allocated on first use */
  size_t len;
} sandbox_lines;

void sandbox_lines_feed(sandbox_lines *l, const char *data, size_t n, sandbox_emit_fn emit,
                        void *ctx);
void sandbox_lines_flush(sandbox_lines *l, sandbox_emit_fn emit, void *ctx);
void sandbox_lines_free(sandbox_lines *l);

/* Copies the tree src into dst (which must not exist): reflinks (FICLONE)
 * where the filesystem allows, else copy_file_range; modes, owners (when
 * permitted), times, xattrs, hardlinks, symlinks, devices and fifos kept.
 * *reflinked (optional) tells whether any file was reflinked. */
int sandbox_copy_tree(const char *src, const char *dst, bool *reflinked, hoist_err **err) HOIST_WUR;

/* Writes into upper (an existing empty dir) what changed from lower to
 * changed, in overlayfs upper shape: new and modified entries copied, removed
 * entries as 0:0 character-device whiteouts, a directory that replaces a
 * non-directory marked opaque (on a filesystem that refuses both, as
 * overlayfs does, the OCI forms: empty ".wh.<name>" and ".wh..wh..opq" files). Entries are compared
 * by type, mode, owner, size, mtime, link target and content (when the size matches and mtime
 * differs). */
int sandbox_diff_tree(const char *lower, const char *changed, const char *upper,
                      hoist_err **err) HOIST_WUR;

/* ---------------------------------------------------------------- seccomp */

struct sock_filter;

/* A classic BPF program for PR_SET_SECCOMP, built by the parent (libseccomp
 * allocates) and loaded by the command's process (which must not). */
typedef struct {
  struct sock_filter *filter; /* owned; sandbox_seccomp_free releases it */
  unsigned short len;         /* instructions */
} sandbox_bpf;

/* Builds the build filter, modelled on the containers/common default profile
 * but as a deny list: the listed syscalls fail with EPERM (clone3 with ENOSYS,
 * so libc falls back to clone, whose flags can be checked), for the native
 * ABI and the 32-bit ones the kernel also accepts (x86: i386 and x32).
 * Denied: kernel modules and kexec, bpf, perf_event_open, the keyring
 * (keyctl, add_key, request_key), open_by_handle_at, userfaultfd, reboot,
 * swapon/swapoff, acct, clock and time setting, iopl/ioperm, mount and the new
 * mount API, umount, pivot_root, setns, new user namespaces (clone and
 * unshare with CLONE_NEWUSER), ptrace and process_vm_*, io_uring, TIOCSTI and
 * TIOCLINUX ioctls, and the rest of that profile's EPERM entries. */
int sandbox_seccomp_build(sandbox_bpf *out, hoist_err **err) HOIST_WUR;
void sandbox_seccomp_free(sandbox_bpf *p);

/* Loads p into the calling process (no_new_privs must already be set).
 * Async-signal-safe, allocates nothing. -1 with errno on failure. */
int sandbox_seccomp_load(const sandbox_bpf *p);

/* ---------------------------------------------------------------- cgroups */

/* Per-run resource limits; 0 means no limit of that kind. */
typedef struct {
  uint64_t memory;     /* bytes of memory; swap is not allowed beyond it */
  uint64_t pids;       /* processes and threads */
  uint64_t cpu_millis; /* CPU time per second of wall clock, 1000 = one core */
} sandbox_limits;

/* Where the cgroup hierarchies are: the text of /proc/self/mountinfo and of
 * /proc/self/cgroup (tests give made-up texts whose mount points lie in a
 * temporary directory). */
typedef struct {
  const char *mountinfo;
  const char *self_cgroup;
} sandbox_cgroup_env;

typedef struct sandbox_cgroup sandbox_cgroup;

/* Creates a cgroup named name (a single path component) under parent (a
 * path inside the hierarchies, e.g. "/hoist", created when missing) and sets
 * the limits: cgroup v1 (memory, pids and cpu hierarchies, as these machines
 * mount them) or v2 (one unified hierarchy; the controllers are enabled in
 * parent's and its ancestors' cgroup.subtree_control below the hierarchy
 * root). A controller that a limit needs but the host lacks is an error
 * naming it. Errors name the file that could not be written. */
int sandbox_cgroup_create(const sandbox_cgroup_env *env, const char *parent, const char *name,
                          const sandbox_limits *limits, sandbox_cgroup **out,
                          hoist_err **err) HOIST_WUR;

/* Moves pid into the cgroup (every hierarchy of it). */
int sandbox_cgroup_attach(sandbox_cgroup *cg, pid_t pid, hoist_err **err) HOIST_WUR;

/* What the kernel counted since the cgroup was made. */
typedef struct {
  uint64_t oom_kills;     /* processes the OOM killer killed for the memory limit */
  uint64_t pids_max_hits; /* forks refused by the pids limit */
} sandbox_cgroup_events;

/* Reads the event counters (v1: memory.oom_control's oom_kill and
 * pids.events' max; v2: memory.events' oom_kill and pids.events' max).
 * Counters a host lacks read as 0. Allocates nothing. */
int sandbox_cgroup_events_read(const sandbox_cgroup *cg, sandbox_cgroup_events *ev);

/* Sends SIGKILL to everything in the cgroup, once (v2: cgroup.kill), without
 * waiting or removing it. Allocates nothing. Accepts NULL. */
void sandbox_cgroup_kill(const sandbox_cgroup *cg);

/* Kills whatever still runs in the cgroup, waits (briefly) until it is empty
 * and removes it. Accepts NULL. */
void sandbox_cgroup_destroy(sandbox_cgroup *cg);

/* ---------------------------------------------------------------- network */

/* An address (IPv4 or IPv6) and prefix length, for a route. */
typedef struct {
  int family; /* AF_INET or AF_INET6 */
  unsigned char addr[16];
  unsigned char prefix;
} sandbox_prefix;

#define SANDBOX_MAX_BLOCKED 64

/* Fills out (at most max) with what a private network must not reach:
 * 169.254.0.0/16 (link-local, where cloud metadata services live), fe80::/10,
 * and every address of the host's interfaces (as /32 or /128) these ranges do
 * not cover already, loopback excluded (a new network namespace has its
 * own). *n receives the count. */
int sandbox_net_blocked(sandbox_prefix *out, size_t max, size_t *n, hoist_err **err) HOIST_WUR;

/* In the sandbox's new network namespace, before any command runs: brings
 * lo up, turns IPv6 off for interfaces made from now on (the egress is IPv4
 * only), and adds an unreachable route for each of blocked. Allocates nothing
 * (rtnetlink on the stack). -1 with errno set; *what names the step. */
int sandbox_net_setup(const sandbox_prefix *blocked, size_t n, const char **what);

/* Starts pasta for the network namespace of pid (and joins its user namespace
 * when userns): IPv4 egress through the host, the gateway not mapped to the
 * host, no port of the host's loopback reachable but the TCP ports listed
 * (forwarded from the namespace's loopback to the host's), nothing forwarded
 * inwards. Returns once the namespace has its default route and a listener on
 * each forwarded port, with pasta's pid
 * in *pasta (killed by sandbox_net_stop, and by the kernel should the calling
 * thread die). */
int sandbox_net_start(pid_t pid, bool userns, const char *tool_path, const uint16_t *ports,
                      size_t n_ports, pid_t *pasta, hoist_err **err) HOIST_WUR;
void sandbox_net_stop(pid_t pasta);

#endif
