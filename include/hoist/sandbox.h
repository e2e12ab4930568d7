/*
 * sandbox: run one command inside an image's root filesystem without a daemon.
 *
 * The base rootfs (lower) is never modified: the command runs on an overlay of
 * lower + upper, so every change lands in `upper`, which is shaped like an
 * overlayfs upper directory (whiteouts as 0:0 char devices, opaque dirs by
 * xattr) and can be handed to the layer writer as an overlay-upper source.
 * When overlayfs cannot be mounted the sandbox copies lower, runs there, and
 * writes the difference into `upper` in the same shape (logged); on a
 * filesystem that refuses 0:0 devices and overlay xattrs (overlayfs itself,
 * inside a container) whiteouts and opaque markers take their OCI form, empty
 * ".wh.<name>" / ".wh..wh..opq" files, which the layer writer passes through.
 *
 * The command is treated as hostile (README, "Security model"): new mount,
 * PID (unless no_process_sandbox), UTS, IPC and network namespaces; a user
 * namespace whose root is never host root (as root: entered after the
 * mounts, on a subordinate range, so the other namespaces stay the host's);
 * /proc with the OCI runtime spec's masks and read-only paths, no /sys; nodev
 * everywhere and no host terminal; a seccomp filter; a cgroup with memory,
 * pids and CPU limits; a bound on the changes and on /tmp; a timeout. A
 * private network gets IPv4 egress through pasta and unreachable routes to
 * the host's loopback, its addresses and link-local ones.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <hoist/core.h>
#include <hoist/layer.h>

typedef enum {
  HOIST_SANDBOX_NET_PRIVATE = 0, /* a new namespace with IPv4 egress through pasta; no route to
                                  * the host's loopback (but allow_ports), the host's addresses
                                  * or link-local ones */
  HOIST_SANDBOX_NET_NONE,        /* a new namespace with only lo */
  HOIST_SANDBOX_NET_HOST,        /* the host's network: trusted local use only */
} hoist_sandbox_network;

typedef enum {
  HOIST_SANDBOX_USERNS_AUTO = 0, /* root: a subordinate range when one is available, else host
                                  * ids; others: always a user namespace (0 = the caller) */
  HOIST_SANDBOX_USERNS_PRIVATE,  /* a user namespace whose root is never host root: as root, a
                                  * subordinate range is required (the run fails without one) */
  HOIST_SANDBOX_USERNS_HOST,     /* root: host ids, no user namespace (trusted local use); others:
                                  * as AUTO */
} hoist_sandbox_userns;

/* Subordinate ids given explicitly (a service's configured range) instead of
 * the caller's /etc/subuid and /etc/subgid entries. */
typedef struct {
  uint32_t uid_start, uid_count;
  uint32_t gid_start, gid_count;
} hoist_sandbox_subids;

#define HOIST_SANDBOX_DEFAULT_MEMORY (4ULL << 30) /* bytes */
#define HOIST_SANDBOX_DEFAULT_PIDS 1024ULL        /* processes and threads */
#define HOIST_SANDBOX_DEFAULT_UPPER (10ULL << 30) /* bytes of changes (max_layer_bytes) */
#define HOIST_SANDBOX_DEFAULT_TMP (1ULL << 30)    /* bytes of the /tmp tmpfs */
#define HOIST_SANDBOX_CGROUP_PARENT "/hoist"      /* root's delegated subtree */
#define HOIST_SANDBOX_UNLIMITED UINT64_MAX        /* a limit that is explicitly off */

/* A host path bound at an absolute path in the image for the run only
 * (nosuid, nodev; read-only unless writable); it never reaches upper (targets
 * under /tmp land on its tmpfs), writes through a writable one land in the
 * host's source. The target is resolved inside the image (a symlink in it
 * never leads out); it and its missing parents are created as mount points;
 * any of them that lower lacks is removed from upper afterwards. */
typedef struct {
  const char *source; /* host file or directory */
  const char *target; /* absolute path inside the image */
  bool writable;      /* false: read-only */
} hoist_sandbox_bind;

/*
 * The command's standard streams passed through unchanged (hoist run), instead
 * of stdin on /dev/null and output delivered as lines. The parent copies the
 * bytes as they come, in both directions, through pipes or a pseudo-terminal
 * of its own: none of the caller's descriptors enters the sandbox. Output is
 * read only as fast as out and err take it (at most 64 KiB waits in the
 * parent), so a slow reader slows the command down and never stops the limits
 * and the timeout from being watched. When out or err refuses a write (a
 * reader that went away: EPIPE), the command's end of that stream is closed,
 * so its next write fails as it would have written there directly.
 */
typedef struct {
  int in;       /* copied to the command's stdin, which ends when in does; -1: /dev/null */
  int out;      /* receives the command's stdout byte for byte; -1: discarded */
  int err;      /* receives its stderr (and the reason a command could not start); -1: discarded */
  bool tty;     /* a pseudo-terminal (the host's /dev/ptmx) instead of pipes: its slave, opened
                 * by the parent, is the command's stdin, stdout, stderr and controlling terminal
                 * (bound, nodev, at /dev/console so the command can name it); in is copied to the
                 * master (its end as the terminal's end-of-file character, Ctrl-D, while the
                 * terminal reads lines), the master to out (stderr included), err gets only
                 * hoist's messages.
                 * Ctrl-C typed in in becomes SIGINT by the terminal's line discipline: the caller
                 * puts its own terminal in raw mode. */
  int size_fd;  /* tty: the terminal whose window size the pty takes at the start and each time
                 * winch_fd is readable; -1: none (0x0) */
  int winch_fd; /* tty: readable when size_fd's size changed (e.g. a pipe the caller's SIGWINCH
                 * handler writes a byte to; drained here); -1: none */
} hoist_sandbox_stdio;

/* Called once per complete output line (without the newline); is_stderr tells the stream. */
typedef void (*hoist_sandbox_line_fn)(void *ctx, bool is_stderr, const char *line, size_t len);

typedef struct {
  const char *lower; /* unpacked base rootfs, read-only, required; owned as the run's id maps
                      * say (hoist_sandbox_id_maps; unpack.h's uid_map/gid_map) */
  const char *upper; /* empty or absent directory that receives the changes; required */
  const char *work;  /* overlay work dir on upper's filesystem; NULL: "<upper>.work" */
  char *const *argv; /* command, argv[0] looked up in the image's PATH */
  char *const *env; /* full environment (NULL-terminated), e.g. the image config's Env + recipe's */
  const char *cwd;  /* working directory inside the image; NULL: "/" */
  const char *user; /* "uid[:gid]" or a name in the image's /etc/passwd; NULL: root */
  hoist_sandbox_network network;
  hoist_sandbox_userns userns;
  const hoist_sandbox_subids *subids; /* NULL: the caller's /etc/subuid and /etc/subgid */
  unsigned timeout_s;                 /* 0: none; on expiry the whole PID namespace is killed */
  hoist_sandbox_line_fn on_line;      /* NULL: no line callback */
  void *on_line_ctx;
  int log_fd; /* -1: none; otherwise each line is also written here */
  /* NULL: stdin is /dev/null, output goes line by line to on_line and log_fd
   * (builds). Set: the streams pass through as it says; on_line and log_fd
   * then get none of the command's output. */
  const hoist_sandbox_stdio *stdio;
  bool force_copy; /* skip overlayfs: run on a copy of lower and diff it into upper */
  const hoist_sandbox_bind *binds; /* host files/dirs bound into the image */
  size_t n_binds;
  unsigned long nofile; /* RLIMIT_NOFILE; 0: 65536 (or the hard limit when lower) */
  unsigned long nproc;  /* RLIMIT_NPROC; 0: 16384 (or the hard limit when lower) */
  /* Resources: 0 takes the default, HOIST_SANDBOX_UNLIMITED turns a limit off. */
  uint64_t memory;      /* bytes of memory (no swap beyond it); default 4 GiB */
  uint64_t pids;        /* processes and threads; default 1024 */
  uint64_t cpu_millis;  /* CPU per second of wall clock, 1000 = one core; default none */
  uint64_t upper_bytes; /* disk the changes may take (max_layer_bytes); default 10 GiB */
  uint64_t tmp_bytes;   /* size of the /tmp tmpfs; default 1 GiB */
  /* The cgroup hierarchy path under which each run's cgroup is made; NULL:
   * HOIST_SANDBOX_CGROUP_PARENT when root, none otherwise (the limits on
   * memory, pids and CPU are then not enforced, said in the log). */
  const char *cgroup_parent;
  bool require_limits;         /* fail instead of running without a cgroup */
  const uint16_t *allow_ports; /* host loopback TCP ports a private network reaches */
  size_t n_allow_ports;
  bool mknod; /* keep CAP_MKNOD: device nodes can be created (every mount is nodev) */
  /* No PID namespace (for clusters whose pods have a masked /proc and no
   * user namespace, where a new procfs cannot be mounted): the user, mount,
   * UTS, IPC and network namespaces stay; /proc is a recursive bind of the
   * caller's, with the same masks and read-only paths over it. The command
   * then sees every process of that /proc and can signal those of its own
   * host uid (README, "Security model"). Everything it starts is still
   * killed at its end, on timeout and on a limit: by a helper process that is
   * their subreaper (PR_SET_CHILD_SUBREAPER, set in that process only) and
   * by the cgroup. The caller's /proc must be the one of its PID namespace. */
  bool no_process_sandbox;
  /* Colon-separated directories where the host tools (pasta, newuidmap,
   * newgidmap) are looked up; NULL: /usr/local/sbin:/usr/local/bin:
   * /usr/sbin:/usr/bin:/sbin:/bin. hoist: $PATH. */
  const char *tool_path;
} hoist_sandbox_opts;

/* How a run ended. */
typedef enum {
  HOIST_SANDBOX_EXITED = 0,     /* the command exited or was killed by a signal: see status */
  HOIST_SANDBOX_TIMED_OUT,      /* timeout_s ran out */
  HOIST_SANDBOX_OUT_OF_MEMORY,  /* the memory limit was reached (the kernel killed a process) */
  HOIST_SANDBOX_PIDS_EXHAUSTED, /* the pids limit refused a fork */
  HOIST_SANDBOX_DISK_FULL,      /* the changes reached upper_bytes */
  HOIST_SANDBOX_TOO_DEEP,       /* the changes nest too deep to be measured against it */
} hoist_sandbox_end;

typedef struct {
  int status; /* wait status of the command (WIFEXITED...); as killed by SIGKILL when a
               * limit or the timeout ended the run before the command did */
  hoist_sandbox_end end;
  bool tmp_full;  /* /tmp had no space left when the command ended */
  bool limits;    /* memory/pids/CPU limits were enforced (a cgroup was made) */
  uint64_t limit; /* the limit that ended the run (bytes or pids), 0 otherwise */
} hoist_sandbox_result;

/*
 * Runs opts->argv in the sandbox and waits for it. Returns 0 when the command
 * ran (how it ended in *res), negative with *err when the sandbox itself
 * could not be set up. A run that hits a limit (time, memory, pids, disk) is
 * killed whole and reported in res->end.
 * A command that cannot start (not found, working directory missing) exits
 * 127, with the reason delivered as a line on stderr (stdio: written to err).
 * Threads: the caller may have other threads, busy in the allocator or
 * holding any lock: the sandbox's processes are made with raw clone and call
 * nothing of libc that takes a lock or acts on every thread (no fork(), no
 * set*id wrappers, no malloc) until they exec. Requires of the caller: opts
 * and the strings it points at stay valid; the calling thread stays alive
 * until it returns (pasta and the sandbox's init die with it); SIGCHLD is not
 * ignored. With stdio, SIGPIPE is blocked in the calling thread while the
 * command runs (a write to a reader that went away fails with EPIPE instead)
 * and one it raised is taken back before the mask is restored.
 */
HOIST_EXPORT int hoist_sandbox_run(const hoist_sandbox_opts *opts, hoist_sandbox_result *res,
                                   hoist_err **err) HOIST_WUR;

/* "timed out after 30 s", "out of memory (limit 4 GiB)", "process limit reached (1024 pids)",
 * "changes reached max_layer_bytes (10 GiB)", or NULL when the run simply exited. */
HOIST_EXPORT char *hoist_sandbox_end_text(const hoist_sandbox_opts *opts,
                                          const hoist_sandbox_result *res);

/*
 * The user-namespace id maps a run with opts uses (inside -> host, the shape
 * hoist_layer_options and hoist_unpack_opts take), so the base can be unpacked
 * with the owners the namespace expects and owners found in upper can be
 * written as the image sees them. *n_uid and *n_gid are 0 when the run has no
 * user namespace (root with host ids). Root with a subordinate range: 0.. ->
 * the range (never host 0). Others: 0 -> the caller, 1.. -> the caller's
 * /etc/subuid and /etc/subgid ranges when both grant one and
 * newuidmap/newgidmap are installed. Fails when opts->userns is PRIVATE and
 * root has no range, saying how to add one.
 */
HOIST_EXPORT int hoist_sandbox_id_maps(const hoist_sandbox_opts *opts, hoist_idmap uid_map[2],
                                       size_t *n_uid, hoist_idmap gid_map[2], size_t *n_gid,
                                       hoist_err **err) HOIST_WUR;

/*
 * Gives every entry of the tree at dir (an upper directory a run with these
 * maps wrote, as hoist_sandbox_id_maps gives them) the owner the user
 * namespace saw: host ids of the maps back to the inside ones; owners outside
 * the maps stay. Changes ownership only (lchown), so it needs privilege over
 * those host ids (root).
 */
HOIST_EXPORT int hoist_sandbox_unshift(const char *dir, const hoist_idmap *uid_map, size_t n_uid,
                                       const hoist_idmap *gid_map, size_t n_gid,
                                       hoist_err **err) HOIST_WUR;

/*
 * Checks, without running anything, that the host provides what runs with
 * opts need: the subordinate ids (PRIVATE), pasta (a private network), a
 * cgroup under the parent (require_limits: one is made and removed), the
 * /proc of the caller's PID namespace (no_process_sandbox). For a
 * service to refuse to start instead of failing each build.
 */
HOIST_EXPORT int hoist_sandbox_check(const hoist_sandbox_opts *opts, hoist_err **err) HOIST_WUR;

struct hoist_config;

/*
 * The environment a command of image config c runs with: c's Env, then each
 * "NAME=value" of extra (NULL-terminated, may be NULL) replacing a variable of
 * the same name or appended; PATH defaults to the usual Linux one when neither
 * sets it. Returns a NULL-terminated array the caller frees with
 * hoist_strfreev.
 */
HOIST_EXPORT int hoist_sandbox_env(const struct hoist_config *c, char *const *extra, char ***env,
                                   hoist_err **err) HOIST_WUR;
/* An alias of hoist_strfreev (core.h), for the callers written before it. */
static inline void hoist_sandbox_strv_free(char **v) { hoist_strfreev(v); }
