/* server: the local executor, a build as a child `hoist build` process in
 * its own process group (killed with the group; PR_SET_PDEATHSIG: it dies
 * with the service), stdout (its --json answer) in WORKDIR/out, stderr
 * handed to the sink. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor.h"
#include "hoist/fs.h"

extern char **environ;

typedef struct local_exec {
  server_executor base;
  char *bin;
  char **extra;
} local_exec;

struct exec_run {
  pid_t pid;
  int err_r;  /* the build's stderr */
  int status; /* waitpid's */
  bool ended;
  char *out; /* WORKDIR/out */
};

/* The build's environment: ours without the variables that would hand it
 * credentials for every registry. Caller frees the array, not the strings. */
static char **build_env(void) {
  static const char *const drop[] = {
      "REGISTRY_SECRET=", "REGISTRY_AUTH_FILE=", "DOCKER_CONFIG=", "REGISTRY_HOST="};
  size_t n = 0;
  while (environ[n])
    n++;
  char **v = hoist_calloc(n + 1, sizeof *v);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    bool keep = true;
    for (size_t d = 0; d < sizeof drop / sizeof drop[0]; d++)
      keep = keep && strncmp(environ[i], drop[d], strlen(drop[d])) != 0;
    if (keep)
      v[k++] = environ[i];
  }
  return v;
}

static int local_start(server_executor *x, const exec_spec *sp, exec_run **out, hoist_err **err) {
  local_exec *l = (local_exec *)x;
  size_t n_extra = 0;
  while (l->extra[n_extra])
    n_extra++;
  _cleanup_free_ const char **argv = hoist_calloc(32 + n_extra, sizeof *argv);
  size_t n = 0;
  argv[n++] = l->bin;
  argv[n++] = "build";
  argv[n++] = "--source";
  argv[n++] = sp->source;
  argv[n++] = "--kind";
  argv[n++] = sp->kind;
  if (sp->file) { /* without a file: the source re-tagged */
    argv[n++] = "--file";
    argv[n++] = sp->file;
    /* attestations are of a build: the copy without a file has none */
    if (sp->attest_mode) {
      argv[n++] = "--provenance";
      argv[n++] = "--sbom";
      argv[n++] = "--attest-mode";
      argv[n++] = sp->attest_mode;
      if (sp->user) {
        argv[n++] = "--requested-by";
        argv[n++] = sp->user;
      }
    }
  }
  argv[n++] = "--target";
  argv[n++] = sp->dest;
  argv[n++] = "--json";
  argv[n++] = "--authfile"; /* only this: no default file, no secret */
  argv[n++] = sp->authfile;
  if (sp->cache) {
    argv[n++] = "--cache-from";
    argv[n++] = sp->cache;
    argv[n++] = "--cache-to";
    argv[n++] = sp->cache;
  }
  for (size_t i = 0; i < n_extra; i++)
    argv[n++] = l->extra[i];
  argv[n] = NULL;
  _cleanup_free_ char **envp = build_env();

  _cleanup_free_ char *outp = hoist_asprintf("%s/out", sp->workdir);
  _cleanup_close_ int outfd =
      open(outp, O_WRONLY | O_TRUNC | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  _cleanup_close_ int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int errp[2] = {-1, -1};
  if (outfd < 0 || nullfd < 0 || pipe2(errp, O_CLOEXEC) < 0)
    return hoist_err_errno(err, errno, "start the build of job %s", sp->id);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  /* every signal blocked across the fork; the child makes only async-signal-safe calls.
   * checksrc-allow: fork PR_SET_PDEATHSIG (the build dies with us), which posix_spawn cannot set */
  pid_t pid = fork();
  if (pid == 0) {
    /* only async-signal-safe calls from here to exec */
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(nullfd, 0);
    dup2(outfd, 1);
    dup2(errp[1], 2);
    if (chdir(sp->workdir) < 0)
      _exit(127);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int s = 1; s < NSIG; s++)
      sigaction(s, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(l->bin, (char *const *)argv, envp);
    _exit(127);
  }
  int fe = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  close(errp[1]);
  if (pid < 0) {
    close(errp[0]);
    return hoist_err_errno(err, fe, "start the build of job %s", sp->id);
  }
  setpgid(pid, pid);
  exec_run *r = hoist_malloc0(sizeof *r);
  r->pid = pid;
  r->err_r = errp[0];
  r->out = steal_pointer(&outp);
  *out = r;
  return 0;
}

static int local_wait(exec_run *r, int timeout_ms, exec_sink sink, void *arg) {
  if (r->ended)
    return 1;
  char buf[65536];
  pid_t w = waitpid(r->pid, &r->status, WNOHANG);
  if (w == r->pid || (w < 0 && errno != EINTR)) {
    if (w < 0)
      r->status = 0x7f00;
    r->ended = true;
    /* whatever the build left in its group goes with it */
    kill(-r->pid, SIGKILL);
    /* what it wrote before it ended (without waiting for a writer that is
     * not the build's) */
    fcntl(r->err_r, F_SETFL, O_NONBLOCK);
    ssize_t n;
    while (r->err_r >= 0 && (n = read(r->err_r, buf, sizeof buf)) != 0) {
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        break;
      sink(arg, buf, (size_t)n);
    }
    return 1;
  }
  /* the build's output as it comes, or a pause */
  struct pollfd pfd = {r->err_r, POLLIN, 0};
  if (poll(&pfd, 1, timeout_ms) > 0 && r->err_r >= 0) {
    ssize_t n = read(r->err_r, buf, sizeof buf);
    if (n > 0) {
      sink(arg, buf, (size_t)n);
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      close(r->err_r); /* the build closed its stderr: wait for its end alone */
      r->err_r = -1;
    }
  }
  return 0;
}

static void local_cancel(exec_run *r, bool hard) {
  if (!r->ended)
    kill(-r->pid, hard ? SIGKILL : SIGTERM);
}

static void local_result(exec_run *r, int *exit_code, char **answer) {
  if (WIFEXITED(r->status))
    *exit_code = WEXITSTATUS(r->status);
  else if (WIFSIGNALED(r->status))
    *exit_code = 128 + WTERMSIG(r->status);
  else
    *exit_code = 127;
  *answer = NULL;
  size_t len;
  if (hoist_fs_read_file(AT_FDCWD, r->out, 1 << 20, answer, &len, NULL) < 0)
    *answer = NULL;
}

static void local_release(exec_run *r) {
  if (!r)
    return;
  if (!r->ended) {
    kill(-r->pid, SIGKILL);
    while (waitpid(r->pid, &r->status, 0) < 0 && errno == EINTR)
      ;
  }
  if (r->err_r >= 0)
    close(r->err_r);
  free(r->out);
  free(r);
}

static void local_close(server_executor *x) {
  local_exec *l = (local_exec *)x;
  if (!l)
    return;
  free(l->bin);
  hoist_strfreev(l->extra);
  free(l);
}

server_executor *server_executor_local(const char *hoist_bin, const char *const *extra_args) {
  local_exec *l = hoist_malloc0(sizeof *l);
  l->base = (server_executor){
      .start = local_start,
      .wait = local_wait,
      .cancel = local_cancel,
      .result = local_result,
      .release = local_release,
      .close = local_close,
  };
  l->bin = hoist_strdup(hoist_bin);
  hoist_strv v = {0};
  for (const char *const *a = extra_args; a && *a; a++)
    hoist_strv_add(&v, *a);
  l->extra = hoist_strv_steal(&v);
  return &l->base;
}
