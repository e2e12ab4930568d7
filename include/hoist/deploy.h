/*
 * deploy: incremental redeploy of a project's components.
 *
 * A project declares its components in a deploy file (hoist-deploy.toml):
 * each component has path patterns, steps (shell commands) and triggers
 * (components whose steps also run when it does); scope keys are named
 * values printed by a command, each invalidating the fingerprints of the
 * components it names when its value changes.
 *
 * A component's fingerprint is the sha256 (hex) of
 *   - one `git ls-tree -r HEAD` line ("<mode> <type> <oid>\t<path>\n") per
 *     committed entry matching its patterns, in tree order, then
 *   - one "<path>:<sha256 hex of the file, or __MISSING__>\n" line per
 *     changed file under its patterns (unstaged, staged, or untracked and not
 *     ignored), sorted bytewise.
 * Empty input gives the empty fingerprint "". Git state is read in-process
 * with libgit2; nothing here runs git.
 *
 * The state file holds `key=value` lines: scope values, then one
 * `<component>=<fingerprint>` per component. It is written atomically and
 * only after every step of a deploy succeeded.
 *
 * This module owns the deploy file and state parsers, fingerprinting, the
 * plan (what runs and why) and the step runner. It never prints: the runner
 * reports through a callback, and steps inherit the caller's stdout/stderr.
 */
#ifndef HOIST_DEPLOY_H
#define HOIST_DEPLOY_H

#include "hoist/core.h"

#define HOIST_DEPLOY_DEFAULT_FILE "hoist-deploy.toml"
#define HOIST_DEPLOY_DEFAULT_STATE ".cache/hoist-deploy.state"
/* The line a deleted file contributes instead of a content hash. */
#define HOIST_DEPLOY_MISSING "__MISSING__"

/* ------------------------------------------------------------ deploy file */

typedef struct hoist_deploy_component {
  char *name;
  char **aliases; /* other names accepted as explicit targets */
  size_t n_aliases;
  char **paths; /* patterns; see hoist_deploy_path_match */
  size_t n_paths;
  char **steps; /* shell commands, run in order with sh -c */
  size_t n_steps;
  size_t *triggers; /* indexes of components whose steps also run */
  size_t n_triggers;
} hoist_deploy_component;

typedef struct hoist_deploy_scope {
  char *name;
  char *command;       /* prints the value on stdout (one line) */
  size_t *invalidates; /* indexes of components */
  size_t n_invalidates;
} hoist_deploy_scope;

typedef struct hoist_deploy_file {
  char *state; /* state file from the deploy file's `state = "..."`, or NULL */
  hoist_deploy_component *components;
  size_t n_components;
  hoist_deploy_scope *scopes;
  size_t n_scopes;
} hoist_deploy_file;

/* Parses a deploy file (untrusted input). The format is a subset of TOML:
 * comments, an optional top-level `state = "PATH"`, `[component.NAME]`
 * tables with `paths`, `steps`, `triggers`, `aliases` (arrays of strings)
 * and `[scope.NAME]` tables with `command` (a string) and `invalidates` (an
 * array of component names). Strings are "basic" (with \ escapes) or
 * 'literal', on one line. It is read with the TOML reader (toml.h), and
 * what TOML has beyond this subset (quoted and dotted keys, nested tables,
 * arrays of tables, multi-line strings) is refused by name. Unknown keys
 * and tables, duplicates, references to unknown components and unsafe
 * patterns are errors naming `name:LINE`. */
HOIST_EXPORT int hoist_deploy_file_parse(const char *text, size_t len, const char *name,
                                         hoist_deploy_file **out, hoist_err **err) HOIST_WUR;
/* Reads and parses the deploy file at dirfd/path (at most 1 MiB). */
HOIST_EXPORT int hoist_deploy_file_load(int dirfd, const char *path, hoist_deploy_file **out,
                                        hoist_err **err) HOIST_WUR;
HOIST_EXPORT void hoist_deploy_file_free(hoist_deploy_file *f);

/* Index of the component called name or having it as an alias; -1 if none. */
HOIST_EXPORT long hoist_deploy_file_find(const hoist_deploy_file *f, const char *name);

/* True when path (relative to the repository root, '/'-separated) matches
 * pattern. A pattern without wildcards matches the path itself and
 * everything below it; a pattern with '*', '?' or '[...]' is a glob whose
 * '*' also matches '/' (as in git pathspecs), so "proto" followed by "/" and
 * "*" is everything under proto/, the same as "proto". */
HOIST_EXPORT bool hoist_deploy_path_match(const char *pattern, const char *path);

/* -------------------------------------------------------------- state */

typedef struct hoist_deploy_state {
  char **keys;
  char **values;
  size_t n;
} hoist_deploy_state;

/* Parses `key=value` lines (untrusted input). Keys are [A-Za-z0-9_.-]+;
 * values run to the end of the line; blank lines and # comments are
 * skipped; a duplicate key is an error. */
HOIST_EXPORT int hoist_deploy_state_parse(const char *text, size_t len, hoist_deploy_state **out,
                                          hoist_err **err) HOIST_WUR;
/* Loads dirfd/path; a missing file is an empty state (*existed false). */
HOIST_EXPORT int hoist_deploy_state_load(int dirfd, const char *path, hoist_deploy_state **out,
                                         bool *existed, hoist_err **err) HOIST_WUR;
HOIST_EXPORT hoist_deploy_state *hoist_deploy_state_new(void);
/* The value of key, or NULL. */
HOIST_EXPORT const char *hoist_deploy_state_get(const hoist_deploy_state *s, const char *key);
/* Sets key (replacing its value, keeping its position). Refuses keys and
 * values that would not read back. */
HOIST_EXPORT int hoist_deploy_state_set(hoist_deploy_state *s, const char *key, const char *value,
                                        hoist_err **err) HOIST_WUR;
/* The state as text (caller frees). */
HOIST_EXPORT char *hoist_deploy_state_format(const hoist_deploy_state *s);
/* Writes the state atomically to dirfd/path, creating missing parent
 * directories. */
HOIST_EXPORT int hoist_deploy_state_save(int dirfd, const char *path, const hoist_deploy_state *s,
                                         hoist_err **err) HOIST_WUR;
HOIST_EXPORT void hoist_deploy_state_free(hoist_deploy_state *s);

/* ---------------------------------------------------------- fingerprints */

typedef struct hoist_deploy_repo hoist_deploy_repo;

/* Opens the git repository containing path (a work tree, not bare). */
HOIST_EXPORT int hoist_deploy_repo_open(const char *path, hoist_deploy_repo **out,
                                        hoist_err **err) HOIST_WUR;
/* Absolute path of the work tree, with a trailing '/'. */
HOIST_EXPORT const char *hoist_deploy_repo_root(const hoist_deploy_repo *r);
HOIST_EXPORT void hoist_deploy_repo_free(hoist_deploy_repo *r);

typedef struct hoist_deploy_fingerprint {
  char hex[65];   /* "" when nothing matched */
  char **changed; /* changed files under the component's paths, sorted */
  size_t n_changed;
} hoist_deploy_fingerprint;

/* Computes the fingerprint of every component of f, in declaration order;
 * *out is an array of f->n_components the caller frees with
 * hoist_deploy_fingerprints_free. exclude (optional, relative to the root)
 * is a path never counted as changed: the state file itself. */
HOIST_EXPORT int hoist_deploy_fingerprints(hoist_deploy_repo *r, const hoist_deploy_file *f,
                                           const char *exclude, hoist_deploy_fingerprint **out,
                                           hoist_err **err) HOIST_WUR;
HOIST_EXPORT void hoist_deploy_fingerprints_free(hoist_deploy_fingerprint *fp, size_t n);

/* ---------------------------------------------------------------- plan */

typedef enum {
  HOIST_DEPLOY_SKIP = 0,  /* fingerprint unchanged */
  HOIST_DEPLOY_NEW,       /* no fingerprint recorded yet */
  HOIST_DEPLOY_CHANGED,   /* fingerprint differs from the recorded one */
  HOIST_DEPLOY_SCOPE,     /* a scope key it depends on changed (because) */
  HOIST_DEPLOY_TRIGGERED, /* a running component triggers it (because) */
  HOIST_DEPLOY_EXPLICIT,  /* named on the command line */
  HOIST_DEPLOY_ALL,       /* --all */
} hoist_deploy_reason;

typedef struct hoist_deploy_item {
  bool run;
  hoist_deploy_reason reason;
  const char *because; /* scope key or triggering component, else NULL */
} hoist_deploy_item;

typedef struct hoist_deploy_plan {
  hoist_deploy_item *items; /* one per component, in declaration order */
  size_t n_items;
  size_t n_run;
  bool write_state;    /* write new_state after every step succeeded */
  char **scope_values; /* one per scope (NULL when not evaluated) */
  size_t n_scopes;
  hoist_deploy_state *new_state; /* what to write on success */
} hoist_deploy_plan;

typedef struct hoist_deploy_opts {
  const char *const *targets; /* explicit targets (names or aliases) */
  size_t n_targets;
  bool all;
} hoist_deploy_opts;

/* Decides what runs. Without targets: evaluates the scope commands in root,
 * drops the fingerprints their changes invalidate, and runs every component
 * whose fingerprint differs from old (plus what those trigger), writing
 * state afterwards. Explicit targets run (with their triggers) and never
 * write state; an unknown target is an error listing the valid ones. all
 * runs everything and writes state. Scope commands run in every case: their
 * values are in the steps' environment. */
HOIST_EXPORT int hoist_deploy_plan_make(const hoist_deploy_file *f, const char *root,
                                        const hoist_deploy_fingerprint *fp,
                                        const hoist_deploy_state *old,
                                        const hoist_deploy_opts *opts, hoist_deploy_plan **out,
                                        hoist_err **err) HOIST_WUR;
HOIST_EXPORT void hoist_deploy_plan_free(hoist_deploy_plan *p);

/* Runs `sh -c command` in dir with stdout captured (at most 4 KiB, trailing
 * whitespace removed; more than one line is an error) into *out. */
HOIST_EXPORT int hoist_deploy_scope_eval(const char *command, const char *dir, char **out,
                                         hoist_err **err) HOIST_WUR;

/* ------------------------------------------------------------- running */

typedef enum { HOIST_DEPLOY_STEP_START, HOIST_DEPLOY_STEP_DONE } hoist_deploy_event;

/* Called before and after each step; seconds is the step's wall time
 * (0 at start). */
typedef void (*hoist_deploy_step_cb)(hoist_deploy_event ev, const hoist_deploy_component *c,
                                     size_t step, double seconds, void *userdata);

/* Runs the steps of every component the plan runs, in declaration order,
 * each with `sh -c` in root with HOIST_COMPONENT and HOIST_FINGERPRINT in
 * its environment (and HOIST_SCOPE_<KEY> per evaluated scope key). The first
 * failing step stops the deploy with an error naming the component, the
 * step and its exit status; the state is left untouched. When every step
 * succeeded and the plan says so, the new state is written to
 * state_dirfd/state_path. */
HOIST_EXPORT int hoist_deploy_run(const hoist_deploy_file *f, const char *root,
                                  const hoist_deploy_fingerprint *fp, const hoist_deploy_plan *plan,
                                  int state_dirfd, const char *state_path, hoist_deploy_step_cb cb,
                                  void *userdata, hoist_err **err) HOIST_WUR;

#endif
