/* server: the executor seam, what runs a claimed job's build. The store
 * never sees it; the workers (jobs.c) drive it: start, then wait in short
 * steps (the build's output handed to a sink as it comes), cancel when asked,
 * then the result. One driver today: the local child process (`hoist build`
 * in its own process group, dying with the service). */
#ifndef HOIST_SERVER_EXECUTOR_H
#define HOIST_SERVER_EXECUTOR_H

#include <stdbool.h>

#include "hoist/core.h"

/* What a build is: the image, the recipe, where it goes, its files. */
typedef struct exec_spec {
  const char *id;
  const char *source, *kind, *dest;
  const char *file;     /* the requirement file's path, or NULL: the source re-tagged */
  const char *authfile; /* the push host's credentials only */
  const char *workdir;  /* the job's directory (the build's cwd and output) */
} exec_spec;

/* The build's output, as it comes. */
typedef void (*exec_sink)(void *arg, const char *data, size_t n);

typedef struct exec_run exec_run;
typedef struct server_executor server_executor;

struct server_executor {
  /* Starts the build; *out is its handle. */
  int (*start)(server_executor *x, const exec_spec *spec, exec_run **out, hoist_err **err);
  /* Waits up to timeout_ms, handing output to sink: 1 the build ended (its
   * output all handed over), 0 it runs. */
  int (*wait)(exec_run *r, int timeout_ms, exec_sink sink, void *arg);
  /* Asks the build to stop (hard: at once, everything it started). */
  void (*cancel)(exec_run *r, bool hard);
  /* After the end: *exit_code 0 success, a signal as 128 + N; *answer the
   * build's --json answer (caller frees; NULL when none). */
  void (*result)(exec_run *r, int *exit_code, char **answer);
  void (*release)(exec_run *r);
  void (*close)(server_executor *x);
};

/* The local executor: argv is the hoist binary's `build` options every build
 * gets (insecure registries, the sandbox), NULL-terminated, copied. */
server_executor *server_executor_local(const char *hoist_bin, const char *const *extra_args);

#endif
