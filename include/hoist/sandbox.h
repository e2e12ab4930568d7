/*
 * sandbox: run one command inside an image's root filesystem without a daemon.
 *
 * The base rootfs (lower) is never modified: the command runs on an overlay of
 * lower + upper, so every change lands in `upper`, which is shaped like an
 * overlayfs upper directory (whiteouts as 0:0 char devices, opaque dirs by
 * xattr) and can be handed to the layer writer as an overlay-upper source.
 * When overlayfs cannot be mounted the sandbox copies lower, runs there, and
 * writes the difference into `upper` in the same shape (logged).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <hoist/core.h>

typedef enum {
  HOIST_SANDBOX_NET_HOST = 0, /* share the host's network (package downloads) */
  HOIST_SANDBOX_NET_NONE,     /* a new, empty network namespace */
} hoist_sandbox_network;

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
} hoist_sandbox_opts;

/*
 * Runs opts->argv in the sandbox and waits for it. Returns 0 when the command
 * ran (its wait status in *status: use WIFEXITED/WEXITSTATUS; a timeout shows
 * as killed by SIGKILL and *timed_out set), negative with *err when the
 * sandbox itself could not be set up.
 */
HOIST_EXPORT int hoist_sandbox_run(const hoist_sandbox_opts *opts, int *status, bool *timed_out,
                                   hoist_err **err);
