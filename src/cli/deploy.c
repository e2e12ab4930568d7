/* hoist deploy: rebuild only the components whose source changed. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "hoist/deploy.h"

#define VERB "deploy"

static const char usage[] =
    "Usage: hoist deploy [TARGET...] [--all] [--dry-run] [--state FILE] [--file FILE]\n"
    "\n"
    "Runs the steps of the components of the current git repository whose\n"
    "fingerprint changed since the last deploy, plus the components they trigger,\n"
    "in the order the deploy file declares them. A fingerprint covers the\n"
    "committed entries of a component's paths and the content of their changed,\n"
    "staged and untracked (not ignored) files. The state file is written only\n"
    "after every step succeeded.\n"
    "\n"
    "TARGET names a component (or an alias): the named components run whatever\n"
    "their fingerprints say, and the state file is not written.\n"
    "\n"
    "Options:\n"
    "  --all          run every component and write the state file\n"
    "  --dry-run      print the plan and the files that changed; run nothing\n"
    "  --json         with --dry-run: print the plan as JSON\n"
    "  --state FILE   state file (default: the deploy file's `state`, else\n"
    "                 " HOIST_DEPLOY_DEFAULT_STATE " in the repository root)\n"
    "  --file FILE    deploy file (default: " HOIST_DEPLOY_DEFAULT_FILE " in the repository root)\n"
    "  -h, --help     show this help\n"
    "\n"
    "Steps run with `sh -c` in the repository root with HOIST_COMPONENT,\n"
    "HOIST_FINGERPRINT, HOIST_SCOPE_<KEY> and HOIST (this hoist binary, for steps\n"
    "that call hoist verbs: \"$HOIST\" push ...) set.\n"
    "\n"
    "The last full computation is kept in .git/hoist-deploy.cache with the stat\n"
    "data of what it read; while none of it changed, a check is answered from\n"
    "there (HOIST_LOG=debug says so). Deleting the file is always safe.\n";

/* An absolute version of path (relative to base when it is relative). */
static char *absolute(const char *base, const char *path) {
  if (path[0] == '/')
    return hoist_strdup(path);
  size_t n = strlen(base);
  return hoist_asprintf("%s%s%s", base, n && base[n - 1] == '/' ? "" : "/", path);
}

static char *cwd(void) {
  char *d = getcwd(NULL, 0);
  if (!d)
    abort();
  return d;
}

static void print_reason(const hoist_deploy_item *it, const hoist_deploy_fingerprint *fp,
                         bool explicit) {
  switch (it->reason) {
  case HOIST_DEPLOY_SKIP:
    printf("%s\n", explicit ? "not requested" : "unchanged");
    break;
  case HOIST_DEPLOY_NEW:
    printf("no fingerprint recorded yet\n");
    break;
  case HOIST_DEPLOY_CHANGED:
    if (fp->n_changed)
      printf("changed: %zu file%s\n", fp->n_changed, fp->n_changed == 1 ? "" : "s");
    else
      printf("changed: committed content differs from the last deploy (or local changes were "
             "undone)\n");
    break;
  case HOIST_DEPLOY_SCOPE:
    printf("scope key %s changed\n", it->because);
    break;
  case HOIST_DEPLOY_TRIGGERED:
    printf("triggered by %s\n", it->because);
    break;
  case HOIST_DEPLOY_EXPLICIT:
    printf("requested\n");
    break;
  case HOIST_DEPLOY_ALL:
    printf("--all\n");
    break;
  }
}

static void print_plan(const hoist_deploy_file *f, const hoist_deploy_fingerprint *fp,
                       const hoist_deploy_plan *p, bool dry_run, bool explicit) {
  printf("Plan:\n");
  for (size_t i = 0; i < f->n_components; i++) {
    const hoist_deploy_item *it = &p->items[i];
    printf("  %-14s %-4s ", f->components[i].name, it->run ? "run" : "skip");
    print_reason(it, &fp[i], explicit);
    if (it->reason == HOIST_DEPLOY_CHANGED || (dry_run && it->run))
      for (size_t j = 0; j < fp[i].n_changed; j++)
        printf("      %s\n", fp[i].changed[j]);
    if (dry_run && it->run)
      for (size_t s = 0; s < f->components[i].n_steps; s++)
        printf("      step %zu: %s\n", s + 1, f->components[i].steps[s]);
  }
  fflush(stdout);
}

static const char *const reason_names[] = {
    [HOIST_DEPLOY_SKIP] = "unchanged",
    [HOIST_DEPLOY_NEW] = "new",
    [HOIST_DEPLOY_CHANGED] = "changed",
    [HOIST_DEPLOY_SCOPE] = "scope",
    [HOIST_DEPLOY_TRIGGERED] = "triggered",
    [HOIST_DEPLOY_EXPLICIT] = "requested",
    [HOIST_DEPLOY_ALL] = "all",
};

static json_t *strings(char *const *v, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(a, json_string(v[i]));
  return a;
}

/* {"run": [...], "writeState": b, "components": [{name, run, reason, because,
 * fingerprint, previous, changed, steps}], "scopes": {key: value}} */
static void print_plan_json(const hoist_deploy_file *f, const hoist_deploy_fingerprint *fp,
                            const hoist_deploy_plan *p, const hoist_deploy_state *old) {
  json_t *comps = json_array(), *run = json_array(), *scopes = json_object();
  for (size_t i = 0; i < f->n_components; i++) {
    const hoist_deploy_item *it = &p->items[i];
    const hoist_deploy_component *c = &f->components[i];
    const char *was = old ? hoist_deploy_state_get(old, c->name) : NULL;
    if (it->run)
      json_array_append_new(run, json_string(c->name));
    json_array_append_new(comps,
                          json_pack("{s:s, s:b, s:s, s:s?, s:s, s:s?, s:o, s:o}", "name", c->name,
                                    "run", it->run, "reason", reason_names[it->reason], "because",
                                    it->because, "fingerprint", fp[i].hex, "previous", was,
                                    "changed", strings(fp[i].changed, fp[i].n_changed), "steps",
                                    strings(c->steps, c->n_steps)));
  }
  for (size_t s = 0; p->scope_values && s < f->n_scopes; s++)
    json_object_set_new(scopes, f->scopes[s].name, json_string(p->scope_values[s]));
  json_t *j = json_pack("{s:o, s:b, s:o, s:o}", "run", run, "writeState", p->write_state,
                        "components", comps, "scopes", scopes);
  json_dumpf(j, stdout, JSON_INDENT(2));
  putchar('\n');
  json_decref(j);
}

static void on_step(hoist_deploy_event ev, const hoist_deploy_component *c, size_t step,
                    double seconds, void *userdata) {
  (void)userdata;
  if (ev == HOIST_DEPLOY_STEP_START)
    printf("==> %s: step %zu/%zu: %s\n", c->name, step + 1, c->n_steps, c->steps[step]);
  else
    printf("==> %s: step %zu/%zu done in %.2fs\n", c->name, step + 1, c->n_steps, seconds);
  fflush(stdout);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void free_repo(hoist_deploy_repo **r) { hoist_deploy_repo_free(*r); }
static void free_file(hoist_deploy_file **f) { hoist_deploy_file_free(*f); }
static void free_state(hoist_deploy_state **s) { hoist_deploy_state_free(*s); }
static void free_plan(hoist_deploy_plan **p) { hoist_deploy_plan_free(*p); }

static int run(int argc, char **argv) {
  bool all = false, dry_run = false, json = false;
  const char *state_opt = NULL, *file_opt = NULL;
  const cli_opt options[] = {
      CLI_FLAG("all", &all),         CLI_FLAG("dry-run", &dry_run), CLI_STRING("state", &state_opt),
      CLI_STRING("file", &file_opt), CLI_FLAG("json", &json),       CLI_END,
  };
  int rc = cli_parse_opts(VERB, usage, options, argc, argv);
  if (rc >= 0)
    return rc;
  const char *const *targets = (const char *const *)argv + optind;
  size_t n_targets = (size_t)(argc - optind);
  if (all && n_targets)
    return cli_usage(VERB, "--all and targets exclude each other");
  if (json && !dry_run)
    return cli_usage(VERB, "--json needs --dry-run");
  for (size_t i = 0; i < n_targets; i++)
    if (!*targets[i])
      return cli_usage(VERB, "empty target");

  hoist_err *err = NULL;
  _cleanup_free_ char *here = cwd();
  __attribute__((cleanup(free_repo))) hoist_deploy_repo *repo = NULL;
  if (hoist_deploy_repo_open(here, &repo, &err) < 0)
    return cli_fail(VERB, err);
  const char *root = hoist_deploy_repo_root(repo);
  _cleanup_free_ char *file_path =
      file_opt ? absolute(here, file_opt) : absolute(root, HOIST_DEPLOY_DEFAULT_FILE);
  __attribute__((cleanup(free_file))) hoist_deploy_file *f = NULL;
  if (hoist_deploy_file_load(AT_FDCWD, file_path, &f, &err) < 0)
    return cli_fail(VERB, err);
  _cleanup_free_ char *state_path =
      state_opt ? absolute(here, state_opt)
                : absolute(root, f->state ? f->state : HOIST_DEPLOY_DEFAULT_STATE);
  size_t root_len = strlen(root);
  const char *exclude = strncmp(state_path, root, root_len) == 0 ? state_path + root_len : NULL;

  double t0 = now();
  hoist_deploy_fingerprint *fp = NULL;
  if (hoist_deploy_fingerprints(repo, f, exclude, &fp, &err) < 0)
    return cli_fail(VERB, err);
  __attribute__((cleanup(free_state))) hoist_deploy_state *old = NULL;
  if (n_targets == 0 && !all &&
      hoist_deploy_state_load(AT_FDCWD, state_path, &old, NULL, &err) < 0) {
    hoist_deploy_fingerprints_free(fp, f->n_components);
    return cli_fail(VERB, err);
  }
  hoist_deploy_opts opts = {.targets = targets, .n_targets = n_targets, .all = all};
  __attribute__((cleanup(free_plan))) hoist_deploy_plan *plan = NULL;
  int r = hoist_deploy_plan_make(f, root, fp, old, &opts, &plan, &err);
  if (r < 0) {
    hoist_deploy_fingerprints_free(fp, f->n_components);
    if (n_targets && hoist_err_root_code(err) == EINVAL) {
      _cleanup_free_ char *text = hoist_err_text(err);
      hoist_err_free(err);
      return cli_usage(VERB, "%s", text);
    }
    return cli_fail(VERB, err);
  }
  hoist_debug("deploy: plan computed in %.3fs", now() - t0);

  int code = EXIT_OK;
  if (json) {
    print_plan_json(f, fp, plan, old);
  } else if (plan->n_run == 0) {
    printf("No new local changes since last deploy.\n");
    /* a scope value that invalidates nothing still gets recorded */
    if (!dry_run && plan->write_state &&
        hoist_deploy_state_save(AT_FDCWD, state_path, plan->new_state, &err) < 0)
      code = cli_fail(VERB, err);
  } else if (dry_run) {
    print_plan(f, fp, plan, true, n_targets > 0);
    printf("Dry run: nothing was run%s.\n",
           plan->write_state ? "" : " (the state file would not be written)");
  } else {
    print_plan(f, fp, plan, false, n_targets > 0);
    /* steps that call hoist verbs get this very binary */
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
      exe[len] = '\0';
      setenv("HOIST", exe, 1);
    }
    double start = now();
    if (hoist_deploy_run(f, root, fp, plan, AT_FDCWD, state_path, on_step, NULL, &err) < 0) {
      fprintf(stderr, "hoist deploy: state file %s left unchanged\n", state_path);
      code = cli_fail(VERB, err);
    } else {
      printf("Deployed %zu component%s in %.2fs", plan->n_run, plan->n_run == 1 ? "" : "s",
             now() - start);
      if (plan->write_state)
        printf("; state written to %s\n", state_path);
      else
        printf("; state file not written (explicit targets)\n");
    }
  }
  hoist_deploy_fingerprints_free(fp, f->n_components);
  return code;
}

HOIST_VERB(deploy, VERB, "run the steps of the components whose source changed", run);
