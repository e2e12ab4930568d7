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
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <hoist/core.h>
#include <hoist/layer.h>

typedef enum {
  HOIST_SANDBOX_NET_HOST = 0, /* share the host's network (package downloads) */
  HOIST_SANDBOX_NET_NONE,     /* a new, empty network namespace */
} hoist_sandbox_network;

/* A host path bound read-only at an absolute path in the image for the run
 * only; it never reaches upper (targets under /tmp land on its tmpfs). The
 * target and its missing parents are created as mount points; any of them
 * that lower lacks is removed from upper afterwards. */
typedef struct {
  const char *source; /* host file or directory */
  const char *target; /* absolute path inside the image */
} hoist_sandbox_bind;

/* Called once per complete output line (without the newline); is_stderr tells the stream. */
typedef void (*hoist_sandbox_line_fn)(void *ctx, bool is_stderr, const char *line, size_t len);

typedef struct {
  const char *lower; /* unpacked base rootfs, read-only, required */
  const char *upper; /* empty or absent directory that receives the changes; required */
  const char *work;  /* overlay work dir on upper's filesystem; NULL: "<upper>.work" */
  char *const *argv; /* command, argv[0] looked up in the image's PATH */
  char *const *env; /* full environment (NULL-terminated), e.g. the image config's Env + recipe's */
  const char *cwd;  /* working directory inside the image; NULL: "/" */
  const char *user; /* "uid[:gid]" or a name in the image's /etc/passwd; NULL: root */
  hoist_sandbox_network network;
  bool userns;                   /* new user namespace even when running as root */
  unsigned timeout_s;            /* 0: none; on expiry the whole PID namespace is killed */
  hoist_sandbox_line_fn on_line; /* NULL: no line callback */
  void *on_line_ctx;
  int log_fd; /* -1: none; otherwise each line is also written here */
  /* Fields below were added after the first version; zero keeps the defaults. */
  bool force_copy; /* skip overlayfs: run on a copy of lower and diff it into upper */
  const hoist_sandbox_bind *binds; /* host files/dirs bound read-only into the image */
  size_t n_binds;
  unsigned long nofile; /* RLIMIT_NOFILE; 0: 65536 (or the hard limit when lower) */
  unsigned long nproc;  /* RLIMIT_NPROC; 0: 16384 (or the hard limit when lower) */
} hoist_sandbox_opts;

/*
 * Runs opts->argv in the sandbox and waits for it. Returns 0 when the command
 * ran (its wait status in *status: use WIFEXITED/WEXITSTATUS; a timeout shows
 * as killed by SIGKILL and *timed_out set), negative with *err when the
 * sandbox itself could not be set up.
 * A command that cannot start (not found, working directory missing) exits
 * 127, with the reason delivered as a line on stderr.
 * Root without opts->userns: no user namespace; otherwise the maps of
 * hoist_sandbox_id_maps.
 */
HOIST_EXPORT int hoist_sandbox_run(const hoist_sandbox_opts *opts, int *status, bool *timed_out,
                                   hoist_err **err);

/*
 * The user-namespace id maps a run with opts uses (inside -> host, the shape
 * hoist_layer_options takes), so owners found in upper can be written as the
 * image sees them. *n_uid and *n_gid are 0 when the run has no user namespace
 * (root without opts->userns: ids are the host's). Same rules as the run:
 * 0 -> the caller, 1.. -> the caller's /etc/subuid and /etc/subgid ranges when
 * both grant one and newuidmap/newgidmap are installed; root maps 0-65535 to
 * itself.
 */
HOIST_EXPORT int hoist_sandbox_id_maps(const hoist_sandbox_opts *opts, hoist_idmap uid_map[2],
                                       size_t *n_uid, hoist_idmap gid_map[2], size_t *n_gid,
                                       hoist_err **err);

struct hoist_config;

/*
 * The environment a command of image config c runs with: c's Env, then each
 * "NAME=value" of extra (NULL-terminated, may be NULL) replacing a variable of
 * the same name or appended; PATH defaults to the usual Linux one when neither
 * sets it. Returns a NULL-terminated array the caller frees with
 * hoist_sandbox_strv_free.
 */
HOIST_EXPORT int hoist_sandbox_env(const struct hoist_config *c, char *const *extra, char ***env,
                                   hoist_err **err);
HOIST_EXPORT void hoist_sandbox_strv_free(char **v);
