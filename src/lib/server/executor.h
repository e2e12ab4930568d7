/* server: the executor seam, what runs a claimed job's build. The store
 * never sees it; the workers (jobs.c) drive it: start, then wait in short
 * steps (the build's output handed to a sink as it comes), cancel when asked,
 * then the result. Two drivers: the local child process (`hoist build`
 * in its own process group, dying with the service) and a Kubernetes Job. */
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
  const char *cache; /* the registry build cache (REGISTRY/PATH: --cache-from and -to), or NULL */
  const char *user;  /* who asked for the build */
  /* non-NULL: attach the provenance (naming user) and the SBOM, in this
   * mode ("index" or "referrer") */
  const char *attest_mode;
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
  /* Whether what runs the builds answers (NULL: always). */
  bool (*healthy)(server_executor *x);
};

/* The local executor: argv is the hoist binary's `build` options every build
 * gets (insecure registries, the sandbox), NULL-terminated, copied. */
server_executor *server_executor_local(const char *hoist_bin, const char *const *extra_args);

/* The Kubernetes executor: each build a Job running `hoist build` (the same
 * options as the local one, extra_args included) in cfg->exec's image, its
 * push credentials and requirement file in a Secret the Job owns; state by a
 * watch, logs followed, the answer from the termination message. The API
 * server may be unreachable at start: healthy says so until it answers. */
struct server_config;
int server_executor_kube(const struct server_config *cfg, const char *const *extra_args,
                         server_executor **out, hoist_err **err) HOIST_WUR;

#endif
