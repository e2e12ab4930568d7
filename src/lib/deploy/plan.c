/* What a deploy runs and why; scope commands; the step runner. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "deploy-private.h"

extern char **environ;

/* Describes how a child ended ("exited with status 3", "killed by signal
 * 9"); returns true for a clean exit 0. */
static bool exit_ok(int status, char *buf, size_t len) {
  if (WIFEXITED(status)) {
    snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    return WEXITSTATUS(status) == 0;
  }
  if (WIFSIGNALED(status))
    snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
  else
    snprintf(buf, len, "ended with wait status %d", status);
  return false;
}

HOIST_WUR static int wait_child(pid_t pid, int *status, hoist_err **err) {
  while (waitpid(pid, status, 0) < 0)
    if (errno != EINTR)
      return hoist_err_errno(err, errno, "waitpid");
  return 0;
}

/* Starts `sh -c command` in dir with envp (NULL: ours), its stdout on
 * out_fd when that is not -1; *pid receives it. */
HOIST_WUR static int spawn_shell(const char *dir, const char *command, char **envp, int out_fd,
                                 pid_t *pid, hoist_err **err) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addchdir_np(&fa, dir);
  if (out_fd >= 0)
    posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
  char *argv[] = {"sh", "-c", (char *)command, NULL};
  int r = posix_spawn(pid, "/bin/sh", &fa, NULL, argv, envp ? envp : environ);
  posix_spawn_file_actions_destroy(&fa);
  if (r != 0)
    return hoist_err_errno(err, r, "run /bin/sh in %s", dir);
  return 0;
}

int hoist_deploy_scope_eval(const char *command, const char *dir, char **out, hoist_err **err) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0)
    return hoist_err_errno(err, errno, "pipe");
  pid_t pid;
  int sr = spawn_shell(dir, command, NULL, fds[1], &pid, err);
  close(fds[1]);
  if (sr < 0) {
    close(fds[0]);
    return sr;
  }
  hoist_buf b = HOIST_BUF_INIT(HOIST_DEPLOY_SCOPE_OUTPUT_MAX);
  bool too_long = false;
  char chunk[1024];
  for (;;) {
    ssize_t n = read(fds[0], chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    if (hoist_buf_append(&b, chunk, (size_t)n, NULL) < 0) {
      too_long = true;
      break;
    }
  }
  close(fds[0]);
  int status = 0;
  int r = wait_child(pid, &status, err);
  char how[128];
  if (r == 0 && too_long)
    r = hoist_err_set(err, HOIST_E_LIMIT, "output longer than %d bytes",
                      HOIST_DEPLOY_SCOPE_OUTPUT_MAX);
  else if (r == 0 && !exit_ok(status, how, sizeof how))
    r = hoist_err_set(err, EIO, "command %s", how);
  size_t raw_len = b.len;
  char *s = hoist_buf_steal(&b);
  size_t len = strlen(s);
  if (r == 0 && len != raw_len)
    r = hoist_err_set(err, HOIST_E_FORMAT, "output has a NUL byte");
  while (len &&
         (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ' || s[len - 1] == '\t'))
    s[--len] = '\0';
  if (r == 0 && strpbrk(s, "\r\n"))
    r = hoist_err_set(err, HOIST_E_FORMAT, "output has more than one line");
  if (r < 0) {
    free(s);
    return r;
  }
  *out = s;
  return 0;
}

void hoist_deploy_plan_free(hoist_deploy_plan *p) {
  if (!p)
    return;
  free(p->items);
  if (p->scope_values)
    for (size_t i = 0; i < p->n_scopes; i++)
      free(p->scope_values[i]);
  free(p->scope_values);
  hoist_deploy_state_free(p->new_state);
  free(p);
}

/* For a message: the names that fit in the buffer. */
static char *valid_targets(const hoist_deploy_file *f) {
  hoist_buf b = HOIST_BUF_INIT(0);
  int r = 0;
  for (size_t i = 0; i < f->n_components && r == 0; i++) {
    const hoist_deploy_component *c = &f->components[i];
    r = hoist_buf_appendf(&b, NULL, "%s%s", i ? ", " : "", c->name);
    for (size_t j = 0; j < c->n_aliases && r == 0; j++)
      r = hoist_buf_appendf(&b, NULL, "%s%s", j ? "|" : " (or ", c->aliases[j]);
    if (c->n_aliases && r == 0)
      r = hoist_buf_append(&b, ")", 1, NULL);
  }
  return hoist_buf_steal(&b);
}

static void run_item(hoist_deploy_plan *p, size_t i, hoist_deploy_reason why, const char *because) {
  if (p->items[i].run)
    return;
  p->items[i] = (hoist_deploy_item){.run = true, .reason = why, .because = because};
  p->n_run++;
}

int hoist_deploy_plan_make(const hoist_deploy_file *f, const char *root,
                           const hoist_deploy_fingerprint *fp, const hoist_deploy_state *old,
                           const hoist_deploy_opts *opts, hoist_deploy_plan **out,
                           hoist_err **err) {
  hoist_deploy_opts none = {0};
  if (!opts)
    opts = &none;
  hoist_deploy_plan *p = hoist_malloc0(sizeof *p);
  p->items = hoist_calloc(f->n_components ? f->n_components : 1, sizeof *p->items);
  p->n_items = f->n_components;
  p->n_scopes = f->n_scopes;
  int r = 0;
  /* scope values: for the decision (without targets) and for the steps'
   * environment (always) */
  p->scope_values = hoist_calloc(f->n_scopes ? f->n_scopes : 1, sizeof(char *));
  for (size_t s = 0; s < f->n_scopes; s++) {
    r = hoist_deploy_scope_eval(f->scopes[s].command, root, &p->scope_values[s], err);
    if (r < 0) {
      hoist_err_wrap(err, "scope %s", f->scopes[s].name);
      goto out;
    }
  }
  if (opts->n_targets) {
    for (size_t t = 0; t < opts->n_targets; t++) {
      long k = hoist_deploy_file_find(f, opts->targets[t]);
      if (k < 0) {
        _cleanup_free_ char *valid = valid_targets(f);
        r = hoist_err_set(err, EINVAL, "unknown target '%s' (valid: %s)", opts->targets[t], valid);
        goto out;
      }
      run_item(p, (size_t)k, HOIST_DEPLOY_EXPLICIT, NULL);
    }
  } else {
    _cleanup_free_ const char **invalid =
        hoist_calloc(f->n_components ? f->n_components : 1, sizeof(char *));
    for (size_t s = 0; s < f->n_scopes; s++) {
      const hoist_deploy_scope *sc = &f->scopes[s];
      const char *was = hoist_deploy_state_get(old, sc->name);
      if (was && strcmp(was, p->scope_values[s]) == 0)
        continue;
      for (size_t j = 0; j < sc->n_invalidates; j++)
        if (!invalid[sc->invalidates[j]])
          invalid[sc->invalidates[j]] = sc->name;
    }
    for (size_t i = 0; i < f->n_components; i++) {
      const char *was = hoist_deploy_state_get(old, f->components[i].name);
      if (opts->all)
        run_item(p, i, HOIST_DEPLOY_ALL, NULL);
      else if (!was)
        run_item(p, i, HOIST_DEPLOY_NEW, NULL);
      else if (strcmp(was, fp[i].hex) != 0)
        run_item(p, i, HOIST_DEPLOY_CHANGED, NULL);
      else if (invalid[i])
        run_item(p, i, HOIST_DEPLOY_SCOPE, invalid[i]);
    }
    p->new_state = hoist_deploy_state_new();
    for (size_t s = 0; s < f->n_scopes && r == 0; s++)
      r = hoist_deploy_state_set(p->new_state, f->scopes[s].name, p->scope_values[s], err);
    for (size_t i = 0; i < f->n_components && r == 0; i++)
      r = hoist_deploy_state_set(p->new_state, f->components[i].name, fp[i].hex, err);
    if (r < 0)
      goto out;
  }
  /* triggers, transitively: a triggered component may trigger others */
  for (bool more = true; more;) {
    more = false;
    for (size_t i = 0; i < f->n_components; i++) {
      if (!p->items[i].run)
        continue;
      const hoist_deploy_component *c = &f->components[i];
      for (size_t j = 0; j < c->n_triggers; j++)
        if (!p->items[c->triggers[j]].run) {
          run_item(p, c->triggers[j], HOIST_DEPLOY_TRIGGERED, c->name);
          more = true;
        }
    }
  }
  if (p->new_state) {
    _cleanup_free_ char *a = hoist_deploy_state_format(p->new_state);
    _cleanup_free_ char *b = old ? hoist_deploy_state_format(old) : NULL;
    p->write_state = p->n_run > 0 || !b || strcmp(a, b) != 0;
  }
out:
  if (r < 0) {
    hoist_deploy_plan_free(p);
    return r;
  }
  *out = p;
  return 0;
}

static bool env_ours(const char *e) {
  return strncmp(e, "HOIST_COMPONENT=", 16) == 0 || strncmp(e, "HOIST_FINGERPRINT=", 18) == 0 ||
         strncmp(e, "HOIST_SCOPE_", 12) == 0;
}

/* The environment of a step: the caller's, minus stale HOIST_COMPONENT,
 * HOIST_FINGERPRINT and HOIST_SCOPE_* variables, plus this step's. */
static char **step_env(const hoist_deploy_file *f, const hoist_deploy_plan *plan,
                       const char *component, const char *fingerprint, hoist_strv *own) {
  size_t n = 0;
  for (char **e = environ; e && *e; e++)
    n++;
  char **envp = hoist_calloc(n + 3 + f->n_scopes, sizeof *envp);
  size_t k = 0;
  for (char **e = environ; e && *e; e++)
    if (!env_ours(*e))
      envp[k++] = *e;
  hoist_strv_push(own, hoist_asprintf("HOIST_COMPONENT=%s", component));
  envp[k++] = own->v[own->n - 1];
  hoist_strv_push(own, hoist_asprintf("HOIST_FINGERPRINT=%s", fingerprint));
  envp[k++] = own->v[own->n - 1];
  for (size_t s = 0; plan->scope_values && s < f->n_scopes; s++) {
    if (!plan->scope_values[s])
      continue;
    hoist_strv_push(own,
                    hoist_asprintf("HOIST_SCOPE_%s=%s", f->scopes[s].name, plan->scope_values[s]));
    envp[k++] = own->v[own->n - 1];
  }
  envp[k] = NULL;
  return envp;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

HOIST_WUR static int run_step(const hoist_deploy_file *f, const hoist_deploy_plan *plan,
                              const char *root, const hoist_deploy_component *c,
                              const char *fingerprint, size_t step, hoist_err **err) {
  hoist_strv own = {0};
  _cleanup_free_ char **envp = step_env(f, plan, c->name, fingerprint, &own);
  fflush(NULL); /* what the caller printed before the step comes first */
  pid_t pid;
  int sr = spawn_shell(root, c->steps[step], envp, -1, &pid, err);
  hoist_strv_clear(&own);
  if (sr < 0)
    return hoist_err_wrap(err, "%s: step %zu (%s)", c->name, step + 1, c->steps[step]);
  int status = 0;
  if (wait_child(pid, &status, err) < 0)
    return -EIO;
  char how[128];
  if (!exit_ok(status, how, sizeof how))
    return hoist_err_set(err, EIO, "%s: step %zu (%s) %s", c->name, step + 1, c->steps[step], how);
  return 0;
}

int hoist_deploy_run(const hoist_deploy_file *f, const char *root,
                     const hoist_deploy_fingerprint *fp, const hoist_deploy_plan *plan,
                     int state_dirfd, const char *state_path, hoist_deploy_step_cb cb,
                     void *userdata, hoist_err **err) {
  for (size_t i = 0; i < f->n_components; i++) {
    if (!plan->items[i].run)
      continue;
    const hoist_deploy_component *c = &f->components[i];
    for (size_t s = 0; s < c->n_steps; s++) {
      if (cb)
        cb(HOIST_DEPLOY_STEP_START, c, s, 0, userdata);
      double t0 = now();
      int r = run_step(f, plan, root, c, fp[i].hex, s, err);
      if (r < 0)
        return r;
      if (cb)
        cb(HOIST_DEPLOY_STEP_DONE, c, s, now() - t0, userdata);
    }
  }
  if (plan->write_state && plan->new_state && state_path)
    return hoist_deploy_state_save(state_dirfd, state_path, plan->new_state, err);
  return 0;
}
