/* Component fingerprints from git state, read in-process with libgit2. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <git2.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "deploy-private.h"
#include "hoist/digest.h"

struct hoist_deploy_repo {
  git_repository *repo;
  char *root;
};

static int git_fail(hoist_err **err, int code, const char *what) {
  const git_error *e = git_error_last();
  return hoist_err_set(err, code == GIT_ENOTFOUND ? ENOENT : EIO, "%s: %s", what,
                       e && e->message ? e->message : "libgit2 error");
}

int hoist_deploy_repo_open(const char *path, hoist_deploy_repo **out, hoist_err **err) {
  git_libgit2_init();
  /* every object is read once, from the user's own repository, as git
   * itself reads them: no object cache, no re-hash (a third of a walk) */
  git_libgit2_opts(GIT_OPT_ENABLE_CACHING, 0);
  git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
  git_repository *repo = NULL;
  int r = git_repository_open_ext(&repo, path, 0, NULL);
  if (r < 0) {
    git_fail(err, r, "open git repository");
    git_libgit2_shutdown();
    return hoist_err_wrap(err, "%s", path);
  }
  const char *wd = git_repository_workdir(repo);
  if (!wd) {
    git_repository_free(repo);
    git_libgit2_shutdown();
    return hoist_err_set(err, EINVAL, "%s: a bare repository has no work tree", path);
  }
  hoist_deploy_repo *d = hoist_malloc0(sizeof *d);
  d->repo = repo;
  d->root = hoist_strdup(wd);
  *out = d;
  return 0;
}

const char *hoist_deploy_repo_root(const hoist_deploy_repo *r) { return r->root; }

void hoist_deploy_repo_free(hoist_deploy_repo *r) {
  if (!r)
    return;
  git_repository_free(r->repo);
  free(r->root);
  free(r);
  git_libgit2_shutdown();
}

/* ------------------------------------------------------------ patterns */

typedef enum {
  PAT_PREFIX, /* "dir" (the path or below) or "dir/" + "*" / "x" + "*" (a string prefix) */
  PAT_GLOB,   /* anything else: fnmatch without FNM_PATHNAME */
} pat_kind;

typedef struct pat {
  pat_kind kind;
  const char *text;
  char *prefix; /* PREFIX: the prefix; GLOB: the literal part before the first wildcard */
  size_t prefix_len;
  bool literal; /* PREFIX from a pattern without wildcard: matches at a '/' boundary */
} pat;

static void pat_init(pat *p, const char *text) {
  p->text = text;
  size_t lit = strcspn(text, "*?[\\");
  p->prefix = strndup(text, lit);
  if (!p->prefix)
    abort();
  p->prefix_len = lit;
  if (text[lit] == '\0') {
    p->kind = PAT_PREFIX;
    p->literal = true;
  } else if (text[lit] == '*' && text[lit + 1] == '\0') {
    p->kind = PAT_PREFIX;
    p->literal = false;
  } else {
    p->kind = PAT_GLOB;
  }
}

static bool pat_match(const pat *p, const char *path, size_t len) {
  if (p->kind == PAT_GLOB)
    return fnmatch(p->text, path, 0) == 0;
  if (len < p->prefix_len || memcmp(path, p->prefix, p->prefix_len) != 0)
    return false;
  return !p->literal || len == p->prefix_len || path[p->prefix_len] == '/';
}

/* dir is "a/b/" (with the slash). True when every path below dir matches. */
static bool pat_covers(const pat *p, const char *dir, size_t len) {
  if (p->kind == PAT_GLOB)
    return false;
  if (p->literal)
    return len > p->prefix_len && memcmp(dir, p->prefix, p->prefix_len) == 0 &&
           dir[p->prefix_len] == '/';
  return len >= p->prefix_len && memcmp(dir, p->prefix, p->prefix_len) == 0;
}

/* True when some path below dir ("a/b/") may match. */
static bool pat_may_enter(const pat *p, const char *dir, size_t len) {
  size_t n = len < p->prefix_len ? len : p->prefix_len;
  return memcmp(dir, p->prefix, n) == 0;
}

/* --------------------------------------------------------- computation */

enum { COVER_NONE = 0, COVER_MAYBE = 1, COVER_FULL = 2 };

typedef struct comp_ctx {
  pat *pats;
  size_t n_pats;
  hoist_sha256 *h;
  bool nonempty;
  hoist_strv changed;
} comp_ctx;

/* A committed entry some component's patterns match. */
typedef struct head_entry {
  size_t path; /* offset in fp_ctx.arena */
  git_oid oid;
  uint32_t mode;
} head_entry;

typedef struct fp_ctx {
  git_repository *repo;
  comp_ctx *comps;
  size_t n;
  head_entry *head; /* in path order */
  size_t n_head, cap_head;
  hoist_buf arena; /* the head entries' paths */
  hoist_buf path;
  hoist_err **err;
  /* for the stat cache: untracked files that count, and why the tree
   * cannot be cached (NULL when it can) */
  hoist_strv untracked_paths;
  hoist_deploy_cstat *untracked_st;
  const char *uncacheable;
} fp_ctx;

static bool comp_match(const comp_ctx *c, const char *path, size_t len) {
  for (size_t i = 0; i < c->n_pats; i++)
    if (pat_match(&c->pats[i], path, len))
      return true;
  return false;
}

static void add_line(comp_ctx *c, const char *line, size_t len) {
  hoist_sha256_update(c->h, line, len);
  c->nonempty = true;
}

/* Walks tree (whose path prefix is ctx->path, "" or "dir/") in git's tree
 * order, feeding `git ls-tree -r` lines to the components whose patterns
 * match. cover says, per component, whether the whole tree matches. */
static int walk(fp_ctx *ctx, git_tree *tree, const uint8_t *cover) {
  size_t base = ctx->path.len;
  size_t n = git_tree_entrycount(tree);
  _cleanup_free_ uint8_t *sub = hoist_malloc0(ctx->n);
  for (size_t i = 0; i < n; i++) {
    const git_tree_entry *e = git_tree_entry_byindex(tree, i);
    const char *name = git_tree_entry_name(e);
    ctx->path.len = base;
    ctx->path.data[base] = '\0';
    if (hoist_buf_append(&ctx->path, name, strlen(name), ctx->err) < 0)
      return -HOIST_E_LIMIT;
    git_object_t type = git_tree_entry_type(e);
    if (type == GIT_OBJECT_TREE) {
      if (hoist_buf_append(&ctx->path, "/", 1, ctx->err) < 0)
        return -HOIST_E_LIMIT;
      bool any = false;
      for (size_t c = 0; c < ctx->n; c++) {
        sub[c] = COVER_NONE;
        if (cover[c] == COVER_FULL) {
          sub[c] = COVER_FULL;
        } else if (cover[c] == COVER_MAYBE) {
          const comp_ctx *cc = &ctx->comps[c];
          for (size_t k = 0; k < cc->n_pats && sub[c] != COVER_FULL; k++) {
            if (pat_covers(&cc->pats[k], ctx->path.data, ctx->path.len))
              sub[c] = COVER_FULL;
            else if (pat_may_enter(&cc->pats[k], ctx->path.data, ctx->path.len))
              sub[c] = COVER_MAYBE;
          }
        }
        any |= sub[c] != COVER_NONE;
      }
      if (!any)
        continue;
      git_tree *child = NULL;
      int r = git_tree_lookup(&child, ctx->repo, git_tree_entry_id(e));
      if (r < 0)
        return git_fail(ctx->err, r, ctx->path.data);
      _cleanup_free_ uint8_t *keep = malloc(ctx->n);
      if (!keep)
        abort();
      memcpy(keep, sub, ctx->n);
      r = walk(ctx, child, keep);
      git_tree_free(child);
      if (r < 0)
        return r;
      continue;
    }
    /* "%06o %s %s\t%s\n" by hand: this runs once per committed file */
    char line[64 + 8192];
    if (ctx->path.len > 8192)
      return hoist_err_set(ctx->err, HOIST_E_LIMIT, "path too long: %s", ctx->path.data);
    unsigned mode = (unsigned)git_tree_entry_filemode(e);
    char *w = line;
    for (int sh = 15; sh >= 0; sh -= 3)
      *w++ = (char)('0' + ((mode >> sh) & 7));
    const char *kind = type == GIT_OBJECT_COMMIT ? " commit " : " blob ";
    size_t kl = strlen(kind);
    memcpy(w, kind, kl);
    w += kl;
    git_oid_fmt(w, git_tree_entry_id(e));
    w += GIT_OID_HEXSZ;
    *w++ = '\t';
    memcpy(w, ctx->path.data, ctx->path.len);
    w += ctx->path.len;
    *w++ = '\n';
    size_t ln = (size_t)(w - line);
    bool any = false;
    for (size_t c = 0; c < ctx->n; c++)
      if (cover[c] == COVER_FULL ||
          (cover[c] == COVER_MAYBE && comp_match(&ctx->comps[c], ctx->path.data, ctx->path.len))) {
        add_line(&ctx->comps[c], line, ln);
        any = true;
      }
    if (any) {
      if (ctx->n_head == ctx->cap_head) {
        ctx->cap_head = ctx->cap_head ? ctx->cap_head * 2 : 1024;
        head_entry *nh = hoist_reallocarray(ctx->head, ctx->cap_head, sizeof *nh);
        ctx->head = nh;
      }
      head_entry *he = &ctx->head[ctx->n_head++];
      he->path = ctx->arena.len;
      if (hoist_buf_append(&ctx->arena, ctx->path.data, ctx->path.len + 1, ctx->err) < 0)
        return -HOIST_E_LIMIT;
      git_oid_cpy(&he->oid, git_tree_entry_id(e));
      he->mode = (uint32_t)git_tree_entry_filemode(e);
    }
  }
  ctx->path.len = base;
  ctx->path.data[base] = '\0';
  return 0;
}

HOIST_WUR static int head_tree(git_repository *repo, git_tree **out, hoist_err **err) {
  git_reference *head = NULL;
  int r = git_repository_head(&head, repo);
  if (r == GIT_EUNBORNBRANCH || r == GIT_ENOTFOUND) {
    *out = NULL;
    return 0;
  }
  if (r < 0)
    return git_fail(err, r, "read HEAD");
  git_object *obj = NULL;
  r = git_reference_peel(&obj, head, GIT_OBJECT_TREE);
  git_reference_free(head);
  if (r < 0)
    return git_fail(err, r, "HEAD tree");
  *out = (git_tree *)obj;
  return 0;
}

static int compare_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---------------------------------------------------------- changed files
 *
 * What `git diff --name-only`, `git diff --cached --name-only` and
 * `git ls-files --others --exclude-standard` would list, limited to the
 * components' patterns: HEAD's entries (collected by walk) merged against the
 * index; index entries whose stat data differs from the file (or that are
 * racily clean) hashed and compared; directories under the patterns read for
 * files the index does not have and no ignore rule covers. Stat calls are
 * made relative to each directory, so a no-op check costs one fstatat per
 * tracked file and one getdents per directory. */

static double elapsed(const struct timespec *a, const struct timespec *b) {
  return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static const char *head_path(const fp_ctx *ctx, size_t i) {
  return ctx->arena.data + ctx->head[i].path;
}

static bool union_match(const fp_ctx *ctx, const char *path, size_t len) {
  for (size_t c = 0; c < ctx->n; c++)
    if (comp_match(&ctx->comps[c], path, len))
      return true;
  return false;
}

/* COVER_FULL, COVER_MAYBE or COVER_NONE for the directory dir ("a/b/"). */
static int union_cover(const fp_ctx *ctx, const char *dir, size_t len) {
  int best = COVER_NONE;
  for (size_t c = 0; c < ctx->n; c++) {
    const comp_ctx *cc = &ctx->comps[c];
    for (size_t k = 0; k < cc->n_pats; k++) {
      if (pat_covers(&cc->pats[k], dir, len))
        return COVER_FULL;
      if (pat_may_enter(&cc->pats[k], dir, len))
        best = COVER_MAYBE;
    }
  }
  return best;
}

static bool time_newer_or_same(const git_index_time *t, const struct timespec *ref) {
  if ((int64_t)t->seconds != (int64_t)ref->tv_sec)
    return (int64_t)t->seconds > (int64_t)ref->tv_sec;
  return (long)t->nanoseconds >= ref->tv_nsec;
}

static bool time_equal(const git_index_time *t, const struct timespec *ts) {
  return (int64_t)t->seconds == (int64_t)ts->tv_sec && (long)t->nanoseconds == ts->tv_nsec;
}

enum { STAT_SAME = 0, STAT_CHANGED = 1, STAT_HASH = 2 };

/* Compares index entry e with the work tree file's stat data: STAT_SAME
 * (stat matches and the entry is not racily clean), STAT_CHANGED (type,
 * executable bit or size differ) or STAT_HASH (only the content can tell). */
static int stat_compare(const git_index_entry *e, const struct stat *st,
                        const struct timespec *index_mtime) {
  bool is_link = (e->mode & 0170000) == 0120000;
  if (is_link ? !S_ISLNK(st->st_mode) : !S_ISREG(st->st_mode))
    return STAT_CHANGED;
  if (!is_link && ((st->st_mode & 0100) != 0) != (e->mode == 0100755))
    return STAT_CHANGED;
  if ((uint32_t)st->st_size != e->file_size)
    return STAT_CHANGED;
  if (time_equal(&e->mtime, &st->st_mtim) && time_equal(&e->ctime, &st->st_ctim) &&
      e->ino == (uint32_t)st->st_ino && !time_newer_or_same(&e->mtime, index_mtime))
    return STAT_SAME;
  return STAT_HASH;
}

/* True when the content of e's work tree file differs from the index, hashed
 * as git would (with its filters; a symlink's target string). */
static int content_differs(fp_ctx *ctx, int rootfd, const git_index_entry *e, bool *differs) {
  git_oid oid;
  int r;
  if ((e->mode & 0170000) == 0120000) {
    char target[4096];
    ssize_t n = readlinkat(rootfd, e->path, target, sizeof target);
    if (n < 0)
      return hoist_err_errno(ctx->err, errno, "readlink %s", e->path);
    r = git_odb_hash(&oid, target, (size_t)n, GIT_OBJECT_BLOB);
  } else {
    r = git_repository_hashfile(&oid, ctx->repo, e->path, GIT_OBJECT_BLOB, NULL);
  }
  if (r < 0)
    return git_fail(ctx->err, r, e->path);
  *differs = !git_oid_equal(&oid, &e->id);
  return 0;
}

/* Entries of the index to stat and, once statted, their results. */
typedef struct tracked_scan {
  const git_index_entry **tostat; /* in path order */
  int *result;                    /* per tostat entry: STAT_* or a negative errno */
  hoist_deploy_cstat *seen;       /* per tostat entry: what the walk statted */
  size_t n_stat;
  const char **tracked; /* every index path the patterns match, in order */
  size_t n_tracked;
  struct timespec index_mtime;
} tracked_scan;

/* The index entries the patterns match (ts->tracked) and those to compare
 * with the work tree (ts->tostat). Reads only idx and the patterns, so it
 * may run beside the walk of HEAD's tree. */
static void tracked_collect(const fp_ctx *ctx, git_index *idx, const char *exclude,
                            tracked_scan *ts) {
  ts->index_mtime = (struct timespec){INT64_MAX, 0};
  struct stat ist;
  if (git_index_path(idx) && stat(git_index_path(idx), &ist) == 0)
    ts->index_mtime = ist.st_mtim;
  size_t n = git_index_entrycount(idx);
  ts->tostat = hoist_calloc(n ? n : 1, sizeof *ts->tostat);
  ts->tracked = hoist_calloc(n ? n : 1, sizeof *ts->tracked);
  for (size_t i = 0; i < n; i++) {
    const git_index_entry *e = git_index_get_byindex(idx, i);
    if (!union_match(ctx, e->path, strlen(e->path)) || (exclude && strcmp(e->path, exclude) == 0))
      continue;
    ts->tracked[ts->n_tracked++] = e->path;
    if (GIT_INDEX_ENTRY_STAGE(e) == 0 &&
        !(e->flags_extended & (GIT_INDEX_ENTRY_INTENT_TO_ADD | GIT_INDEX_ENTRY_SKIP_WORKTREE)) &&
        e->mode != 0160000)
      ts->tostat[ts->n_stat++] = e;
  }
  /* an entry the walk does not meet is gone from the work tree */
  ts->result = hoist_calloc(ts->n_stat ? ts->n_stat : 1, sizeof *ts->result);
  ts->seen = hoist_calloc(ts->n_stat ? ts->n_stat : 1, sizeof *ts->seen);
  for (size_t i = 0; i < ts->n_stat; i++)
    ts->result[i] = STAT_CHANGED;
}

/* Index against HEAD (ctx->head, both in path order): what
 * `git diff --cached --name-only` lists under the patterns goes to out. */
static void staged_changes(const fp_ctx *ctx, git_index *idx, const char *exclude,
                           hoist_strv *out) {
  size_t n = git_index_entrycount(idx);
  size_t h = 0;
  for (size_t i = 0; i < n; i++) {
    const git_index_entry *e = git_index_get_byindex(idx, i);
    if (!union_match(ctx, e->path, strlen(e->path)) || (exclude && strcmp(e->path, exclude) == 0))
      continue;
    int c = 1;
    while (h < ctx->n_head && (c = strcmp(head_path(ctx, h), e->path)) < 0) {
      hoist_strv_push(out, hoist_strdup(head_path(ctx, h))); /* removed from the index */
      h++;
      c = 1;
    }
    if (h >= ctx->n_head)
      c = 1;
    bool staged = c != 0 || GIT_INDEX_ENTRY_STAGE(e) != 0 ||
                  (e->flags_extended & GIT_INDEX_ENTRY_INTENT_TO_ADD) ||
                  !git_oid_equal(&ctx->head[h].oid, &e->id) || ctx->head[h].mode != e->mode;
    if (c == 0)
      h++;
    if (staged)
      hoist_strv_push(out, hoist_strdup(e->path));
  }
  for (; h < ctx->n_head; h++)
    hoist_strv_push(out, hoist_strdup(head_path(ctx, h)));
}

/* After the stat pass: changed entries go to out; those whose stat data
 * cannot tell are hashed. */
static int tracked_finish(fp_ctx *ctx, int rootfd, const tracked_scan *ts, hoist_strv *out) {
  for (size_t i = 0; i < ts->n_stat; i++) {
    bool differs = ts->result[i] == STAT_CHANGED;
    if (ts->result[i] < 0)
      return hoist_err_errno(ctx->err, -ts->result[i], "stat %s", ts->tostat[i]->path);
    if (ts->result[i] == STAT_HASH && content_differs(ctx, rootfd, ts->tostat[i], &differs) < 0)
      return -EIO;
    if (differs)
      hoist_strv_push(out, hoist_strdup(ts->tostat[i]->path));
  }
  return 0;
}

static int ignored(fp_ctx *ctx, const char *path, bool *out) {
  int ign = 0;
  int r = git_ignore_path_is_ignored(&ign, ctx->repo, path);
  if (r < 0)
    return git_fail(ctx->err, r, path);
  *out = ign != 0;
  return 0;
}

struct linux_dirent64 {
  ino64_t d_ino;
  off64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

/* ------------------------------------------------ the parallel work tree walk
 *
 * Worker threads take directories from a queue: each is opened once, read
 * with getdents64, and every tracked file in it is statted by name relative
 * to it. Subdirectories under the patterns go back on the queue; untracked
 * files and directories are set aside, and asked about the ignore rules once
 * the walk is over (the walk itself uses no libgit2 object but the index
 * entries, so it runs while HEAD's tree is read on another thread). */

typedef struct walk_dir {
  char *dir; /* "" or "a/b/" */
  int cover;
} walk_dir;

typedef struct walk_shared {
  fp_ctx *ctx;
  tracked_scan *ts;
  int rootfd;
  const char *exclude;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  walk_dir *queue;
  size_t n_queue, cap_queue;
  size_t active;
  hoist_strv files;               /* untracked files (ignored or not) */
  hoist_deploy_cache_dir *walked; /* every directory read, with its stat data */
  size_t n_walked, cap_walked;
  hoist_deploy_cache_dir *gitignores; /* every .gitignore in them: rules the cache depends on */
  size_t n_gitignores, cap_gitignores;
  walk_dir *dirs; /* untracked directories */
  size_t n_dirs, cap_dirs;
  int error;
  char *error_path;
} walk_shared;

static void push_dir(walk_dir **v, size_t *n, size_t *cap, char *dir, int cover) {
  if (*n == *cap) {
    *cap = *cap ? *cap * 2 : 64;
    walk_dir *nv = hoist_reallocarray(*v, *cap, sizeof *nv);
    *v = nv;
  }
  (*v)[(*n)++] = (walk_dir){dir, cover};
}

/* Appends (path, st) to a stat record list of sh. */
static void record_stat(walk_shared *sh, hoist_deploy_cache_dir **v, size_t *n, size_t *cap,
                        const char *path, const struct stat *st) {
  pthread_mutex_lock(&sh->lock);
  if (*n == *cap) {
    *cap = *cap ? *cap * 2 : 64;
    *v = hoist_reallocarray(*v, *cap, sizeof **v);
  }
  hoist_deploy_cache_dir *e = &(*v)[(*n)++];
  e->path = hoist_strdup(path);
  memset(&e->st, 0, sizeof e->st);
  if (st)
    hoist_deploy_cstat_from(&e->st, st);
  pthread_mutex_unlock(&sh->lock);
}

/* Records an untracked file that counts, with its stat data (name in the
 * directory dfd), for the stat cache. */
static void note_untracked(fp_ctx *ctx, int dfd, const char *name, const char *path) {
  struct stat st;
  ctx->untracked_st =
      hoist_reallocarray(ctx->untracked_st, ctx->untracked_paths.n + 1, sizeof *ctx->untracked_st);
  memset(&ctx->untracked_st[ctx->untracked_paths.n], 0, sizeof *ctx->untracked_st);
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
    hoist_deploy_cstat_from(&ctx->untracked_st[ctx->untracked_paths.n], &st);
  else
    ctx->uncacheable = "an untracked file vanished during the walk";
  hoist_strv_push(&ctx->untracked_paths, hoist_strdup(path));
}

/* The type of a getdents64 entry of dfd: 0 for ".", ".." and ".git" (never
 * walked) and for one gone before it could be statted; DT_UNKNOWN is
 * resolved by a stat left in *st (and *have_stat set). */
static unsigned char entry_type(int dfd, const struct linux_dirent64 *de, struct stat *st,
                                bool *have_stat) {
  const char *name = de->d_name;
  *have_stat = false;
  if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, ".git") == 0)
    return 0;
  if (de->d_type != DT_UNKNOWN)
    return de->d_type;
  if (fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) < 0)
    return 0;
  *have_stat = true;
  return S_ISDIR(st->st_mode) ? DT_DIR : DT_REG;
}

/* Records a .gitignore met in a walk (name in dfd, path from the root): the
 * stat cache depends on its rules. One that vanished is recorded invalid,
 * which keeps the cache from being written. */
static void note_gitignore(walk_shared *sh, int dfd, const char *name, const char *path,
                           struct stat *st, bool have_stat) {
  have_stat = have_stat || fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) == 0;
  record_stat(sh, &sh->gitignores, &sh->n_gitignores, &sh->cap_gitignores, path,
              have_stat ? st : NULL);
}

/* Position of path in the sorted array v, or -1. */
static long find_sorted(const char *const *v, size_t n, const char *path) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(v[mid], path);
    if (c == 0)
      return (long)mid;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

/* True when some path of the sorted array v starts with prefix. */
static bool has_prefix(const char *const *v, size_t n, const char *prefix, size_t len) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(v[mid], prefix) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && strncmp(v[lo], prefix, len) == 0;
}

static const char *tostat_path(const tracked_scan *ts, size_t i) { return ts->tostat[i]->path; }

static long find_tostat(const tracked_scan *ts, const char *path) {
  size_t lo = 0, hi = ts->n_stat;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(tostat_path(ts, mid), path);
    if (c == 0)
      return (long)mid;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

static void walk_fail(walk_shared *sh, int errnum, const char *path) {
  pthread_mutex_lock(&sh->lock);
  if (!sh->error) {
    sh->error = errnum;
    sh->error_path = hoist_strdup(path);
  }
  pthread_mutex_unlock(&sh->lock);
}

/* An entry of a directory that walk_one or untracked reads. */
typedef struct walk_entry {
  const char *name;
  unsigned char type; /* DT_DIR, DT_REG, ... */
  struct stat st;     /* when have_stat */
  bool have_stat;
  size_t plen; /* of path: the directory's path, then the entry's name (and '/') */
  int sub;     /* a directory's: how the patterns cover what is below it */
} walk_entry;

/* Reads the entry de of the directory fd (whose path, dlen long, starts
 * path) into *e and appends its name to path, and a directory's '/'; notes a
 * .gitignore. Returns false for an entry to skip: one entry_type drops, a
 * directory the patterns reach nothing below, a file they do not match
 * (cover: how they cover the directory). */
static bool walk_entry_read(walk_shared *sh, const fp_ctx *ctx, int fd,
                            const struct linux_dirent64 *de, int cover, char *path, size_t dlen,
                            walk_entry *e) {
  e->name = de->d_name;
  e->type = entry_type(fd, de, &e->st, &e->have_stat);
  if (!e->type)
    return false;
  size_t nlen = strlen(e->name);
  memcpy(path + dlen, e->name, nlen + 1);
  e->plen = dlen + nlen;
  if (strcmp(e->name, ".gitignore") == 0)
    note_gitignore(sh, fd, e->name, path, &e->st, e->have_stat);
  if (e->type == DT_DIR) {
    path[e->plen] = '/';
    path[e->plen + 1] = '\0';
    e->sub = cover == COVER_FULL ? COVER_FULL : union_cover(ctx, path, e->plen + 1);
    return e->sub != COVER_NONE;
  }
  return cover == COVER_FULL || union_match(ctx, path, e->plen);
}

static void walk_one(walk_shared *sh, const char *dir, int cover) {
  fp_ctx *ctx = sh->ctx;
  tracked_scan *ts = sh->ts;
  _cleanup_close_ int fd =
      openat(sh->rootfd, *dir ? dir : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
      walk_fail(sh, errno, dir);
    return; /* its tracked files count as deleted */
  }
  struct stat dst;
  if (fstat(fd, &dst) < 0) {
    walk_fail(sh, errno, dir);
    return;
  }
  record_stat(sh, &sh->walked, &sh->n_walked, &sh->cap_walked, dir, &dst);
  size_t dlen = strlen(dir);
  char path[4096 + 256 + 2];
  if (dlen > 4096) {
    walk_fail(sh, ENAMETOOLONG, dir);
    return;
  }
  memcpy(path, dir, dlen);
  char buf[32768] __attribute__((aligned(8)));
  for (;;) {
    ssize_t got = getdents64(fd, buf, sizeof buf);
    if (got < 0) {
      walk_fail(sh, errno, dir);
      return;
    }
    if (got == 0)
      return;
    for (ssize_t off = 0; off < got;) {
      struct linux_dirent64 *de = (struct linux_dirent64 *)(buf + off);
      off += de->d_reclen;
      walk_entry e;
      if (!walk_entry_read(sh, ctx, fd, de, cover, path, dlen, &e))
        continue;
      if (e.type == DT_DIR) {
        bool tracked = has_prefix(ts->tracked, ts->n_tracked, path, e.plen + 1);
        pthread_mutex_lock(&sh->lock);
        if (tracked) {
          push_dir(&sh->queue, &sh->n_queue, &sh->cap_queue, hoist_strdup(path), e.sub);
          pthread_cond_signal(&sh->cond);
        } else {
          push_dir(&sh->dirs, &sh->n_dirs, &sh->cap_dirs, hoist_strdup(path), e.sub);
        }
        pthread_mutex_unlock(&sh->lock);
        continue;
      }
      long pos = find_tostat(ts, path);
      if (pos >= 0) {
        if (!e.have_stat && fstatat(fd, e.name, &e.st, AT_SYMLINK_NOFOLLOW) < 0) {
          ts->result[pos] = errno == ENOENT ? STAT_CHANGED : -errno;
          continue;
        }
        ts->result[pos] = stat_compare(ts->tostat[pos], &e.st, &ts->index_mtime);
        hoist_deploy_cstat_from(&ts->seen[pos], &e.st);
        continue;
      }
      if (find_sorted(ts->tracked, ts->n_tracked, path) >= 0 ||
          (sh->exclude && strcmp(path, sh->exclude) == 0))
        continue;
      pthread_mutex_lock(&sh->lock);
      hoist_strv_push(&sh->files, hoist_strdup(path));
      pthread_mutex_unlock(&sh->lock);
    }
  }
}

static void *walk_worker(void *arg) {
  walk_shared *sh = arg;
  pthread_mutex_lock(&sh->lock);
  for (;;) {
    while (sh->n_queue == 0 && sh->active > 0)
      pthread_cond_wait(&sh->cond, &sh->lock);
    if (sh->n_queue == 0) {
      pthread_cond_broadcast(&sh->cond);
      break;
    }
    walk_dir d = sh->queue[--sh->n_queue];
    sh->active++;
    pthread_mutex_unlock(&sh->lock);
    walk_one(sh, d.dir, d.cover);
    free(d.dir);
    pthread_mutex_lock(&sh->lock);
    sh->active--;
    if (sh->n_queue == 0 && sh->active == 0)
      pthread_cond_broadcast(&sh->cond);
  }
  pthread_mutex_unlock(&sh->lock);
  return NULL;
}

/* Walks the work tree under the patterns on up to 4 threads (this one
 * included): fills sh->ts->result and the untracked candidates. Uses no
 * libgit2 object but the index entries. */
static void walk_parallel(walk_shared *sh, int cover) {
  enum { MAX_THREADS = 4 };
  pthread_mutex_init(&sh->lock, NULL);
  pthread_cond_init(&sh->cond, NULL);
  push_dir(&sh->queue, &sh->n_queue, &sh->cap_queue, hoist_strdup(""), cover);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  size_t nt = cpus > 1 ? (size_t)cpus : 1;
  if (nt > MAX_THREADS)
    nt = MAX_THREADS;
  pthread_t tids[MAX_THREADS];
  bool started[MAX_THREADS] = {false};
  for (size_t t = 1; t < nt; t++)
    started[t] = pthread_create(&tids[t], NULL, walk_worker, sh) == 0;
  walk_worker(sh);
  for (size_t t = 1; t < nt; t++)
    if (started[t])
      pthread_join(tids[t], NULL);
  pthread_mutex_destroy(&sh->lock);
  pthread_cond_destroy(&sh->cond);
  free(sh->queue);
  sh->queue = NULL;
}

/* Files below the untracked directory dir ("a/b/") that the index lacks and
 * no ignore rule covers. cover says how the patterns cover dir. For the stat
 * cache, records every directory read (a nested repository's too: losing
 * its .git moves its mtime), every .gitignore, and each file that counts. */
static int untracked(fp_ctx *ctx, walk_shared *sh, git_index *idx, int rootfd, const char *dir,
                     int cover, const char *exclude, hoist_strv *out) {
  _cleanup_close_ int fd =
      openat(rootfd, *dir ? dir : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
      return 0;
    return hoist_err_errno(ctx->err, errno, "open %s", *dir ? dir : ".");
  }
  struct stat dst;
  if (fstat(fd, &dst) < 0)
    return hoist_err_errno(ctx->err, errno, "stat %s", dir);
  record_stat(sh, &sh->walked, &sh->n_walked, &sh->cap_walked, dir, &dst);
  size_t dlen = strlen(dir);
  if (dlen > 4096)
    return hoist_err_set(ctx->err, HOIST_E_LIMIT, "path too long: %s", dir);
  char path[4096 + 256 + 2];
  memcpy(path, dir, dlen);
  hoist_strv subdirs = {0};
  _cleanup_free_ uint8_t *subcover = NULL;
  size_t subcap = 0;
  int r = 0;
  /* on the heap: this function recurses once per level of untracked directories */
  _cleanup_free_ char *buf = malloc(32768);
  if (!buf)
    abort();
  for (;;) {
    ssize_t got = getdents64(fd, buf, 32768);
    if (got < 0) {
      r = hoist_err_errno(ctx->err, errno, "read directory %s", dir);
      break;
    }
    if (got == 0)
      break;
    for (ssize_t off = 0; r == 0 && off < got;) {
      struct linux_dirent64 *de = (struct linux_dirent64 *)(buf + off);
      off += de->d_reclen;
      walk_entry e;
      if (!walk_entry_read(sh, ctx, fd, de, cover, path, dlen, &e))
        continue;
      if (e.type == DT_DIR) {
        size_t at = 0;
        if (git_index_find_prefix(&at, idx, path) != 0) {
          /* untracked directory: skipped when ignored or another repository */
          bool ign = false;
          r = ignored(ctx, path, &ign);
          if (r < 0 || ign)
            continue;
          _cleanup_free_ char *dotgit = hoist_asprintf("%s/.git", e.name);
          if (faccessat(fd, dotgit, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
            if (fstatat(fd, e.name, &e.st, AT_SYMLINK_NOFOLLOW) == 0)
              record_stat(sh, &sh->walked, &sh->n_walked, &sh->cap_walked, path, &e.st);
            continue;
          }
        }
        if (subdirs.n == subcap) {
          subcap = subcap ? subcap * 2 : 16;
          uint8_t *nc = realloc(subcover, subcap);
          if (!nc)
            abort();
          subcover = nc;
        }
        subcover[subdirs.n] = (uint8_t)e.sub;
        hoist_strv_push(&subdirs, hoist_strdup(path));
        continue;
      }
      if ((exclude && strcmp(path, exclude) == 0) || git_index_get_bypath(idx, path, 0))
        continue;
      bool ign = false;
      r = ignored(ctx, path, &ign);
      if (r == 0 && !ign) {
        note_untracked(ctx, fd, e.name, path);
        hoist_strv_push(out, hoist_strdup(path));
      }
    }
    if (r < 0)
      break;
  }
  for (size_t i = 0; r == 0 && i < subdirs.n; i++)
    r = untracked(ctx, sh, idx, rootfd, subdirs.v[i], subcover[i], exclude, out);
  hoist_strv_clear(&subdirs);
  return r;
}

/* After walk_parallel: reports its error, checks the untracked candidates
 * against the ignore rules and walks the untracked directories. */
static int walk_finish(fp_ctx *ctx, git_index *idx, walk_shared *sh, int rootfd,
                       const char *exclude, hoist_strv *out) {
  int r = 0;
  if (sh->error)
    r = hoist_err_errno(ctx->err, sh->error, "read %s", sh->error_path);
  for (size_t i = 0; r == 0 && i < sh->files.n; i++) {
    bool ign = false;
    const char *path = sh->files.v[i];
    r = ignored(ctx, path, &ign);
    if (r == 0 && !ign) {
      note_untracked(ctx, rootfd, path, path);
      hoist_strv_push(out, steal_pointer(&sh->files.v[i]));
    }
  }
  /* untracked directories: rare, walked here with the ignore rules */
  for (size_t i = 0; r == 0 && i < sh->n_dirs; i++) {
    const char *d = sh->dirs[i].dir;
    bool ign = false;
    r = ignored(ctx, d, &ign);
    if (r < 0 || ign)
      continue;
    _cleanup_free_ char *dotgit = hoist_asprintf("%s.git", d);
    struct stat st;
    if (faccessat(rootfd, dotgit, F_OK, AT_SYMLINK_NOFOLLOW) != 0)
      r = untracked(ctx, sh, idx, rootfd, d, sh->dirs[i].cover, exclude, out);
    else if (fstatat(rootfd, d, &st, AT_SYMLINK_NOFOLLOW) == 0) /* another repository */
      record_stat(sh, &sh->walked, &sh->n_walked, &sh->cap_walked, d, &st);
  }
  return r;
}

static void walk_free(walk_shared *sh) {
  free(sh->queue);
  for (size_t i = 0; i < sh->n_walked; i++)
    free(sh->walked[i].path);
  free(sh->walked);
  for (size_t i = 0; i < sh->n_gitignores; i++)
    free(sh->gitignores[i].path);
  free(sh->gitignores);
  free(sh->error_path);
  for (size_t i = 0; i < sh->n_dirs; i++)
    free(sh->dirs[i].dir);
  free(sh->dirs);
  hoist_strv_clear(&sh->files);
}

/* What runs beside the walk of HEAD's tree: the index is loaded (9 MB for
 * 100,000 files), the entries under the patterns collected and the work
 * tree walked. */
typedef struct background {
  char *index_path;
  git_index *idx;
  int rc;
  char msg[256];
  int cover;
  tracked_scan ts;
  walk_shared sh;
  double seconds;
} background;

static void *background_run(void *arg) {
  background *b = arg;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  b->rc = git_index_open(&b->idx, b->index_path);
  if (b->rc < 0) {
    const git_error *e = git_error_last(); /* per thread */
    snprintf(b->msg, sizeof b->msg, "%s", e && e->message ? e->message : "libgit2 error");
    return NULL;
  }
  tracked_collect(b->sh.ctx, b->idx, b->sh.exclude, &b->ts);
  b->sh.ts = &b->ts;
  walk_parallel(&b->sh, b->cover);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  b->seconds = elapsed(&t0, &t1);
  return NULL;
}

static void sort_unique(hoist_strv *out) {
  if (out->n)
    qsort(out->v, out->n, sizeof *out->v, compare_str);
  size_t w = 0;
  for (size_t i = 0; i < out->n; i++) {
    if (w && strcmp(out->v[w - 1], out->v[i]) == 0)
      free(out->v[i]);
    else
      out->v[w++] = out->v[i];
  }
  out->n = w;
  if (out->v)
    out->v[w] = NULL;
}

/* sha256 hex of a changed file's content (of a symlink's target string),
 * or __MISSING__ when it is gone or not a file. */
HOIST_WUR static int content_hash(int rootfd, const char *path, char out[HOIST_DIGEST_HEX_LEN + 1],
                                  hoist_err **err) {
  struct stat st;
  if (fstatat(rootfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      strcpy(out, HOIST_DEPLOY_MISSING);
      return 0;
    }
    return hoist_err_errno(err, errno, "stat %s", path);
  }
  char d[HOIST_DIGEST_STR_LEN];
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = readlinkat(rootfd, path, target, sizeof target);
    if (n < 0)
      return hoist_err_errno(err, errno, "readlink %s", path);
    hoist_sha256_of(target, (size_t)n, d);
  } else if (S_ISREG(st.st_mode)) {
    if (hoist_sha256_file(rootfd, path, d, NULL, err) < 0)
      return -EIO;
  } else {
    strcpy(out, HOIST_DEPLOY_MISSING);
    return 0;
  }
  memcpy(out, d + 7, HOIST_DIGEST_HEX_LEN + 1);
  return 0;
}

/* ------------------------------------------------------------ stat cache */

/* Hashes the content of path into h, or a marker when it cannot be read. */
static void key_file(hoist_sha256 *h, const char *what, const char *path) {
  hoist_sha256_update(h, what, strlen(what) + 1);
  _cleanup_close_ int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
  char buf[16384];
  ssize_t n;
  if (fd < 0) {
    hoist_sha256_update(h, "\0absent", 8);
    return;
  }
  while ((n = read(fd, buf, sizeof buf)) > 0)
    hoist_sha256_update(h, buf, (size_t)n);
  hoist_sha256_update(h, n < 0 ? "\0unreadable" : "\0end", n < 0 ? 12 : 5);
}

static void key_str(hoist_sha256 *h, const char *s) {
  hoist_sha256_update(h, s ? s : "", (s ? strlen(s) : 0) + 1);
}

/* The stat cache's key: everything but the work tree that decides the
 * fingerprints and the files counted (HEAD's tree, the index's checksum,
 * the patterns, the state file's place, the ignore rules outside the tree
 * and git's config). Fails when HEAD or the index cannot be read, and
 * then there is no cache. */
static int cache_key(hoist_deploy_repo *r, const hoist_deploy_file *f, const char *exclude,
                     char key[HOIST_DIGEST_HEX_LEN + 1]) {
  __attribute__((cleanup(hoist_sha256_freep))) hoist_sha256 *h = hoist_sha256_new();
  key_str(h, "hoist deploy stat cache 1");
  key_str(h, r->root);
  key_str(h, exclude);
  for (size_t i = 0; i < f->n_components; i++) {
    key_str(h, f->components[i].name);
    for (size_t k = 0; k < f->components[i].n_paths; k++)
      key_str(h, f->components[i].paths[k]);
    key_str(h, "");
  }
  git_object *tree = NULL;
  if (git_revparse_single(&tree, r->repo, "HEAD^{tree}") == 0) {
    char hex[GIT_OID_HEXSZ + 1];
    git_oid_tostr(hex, sizeof hex, git_object_id(tree));
    key_str(h, hex);
    git_object_free(tree);
  } else {
    key_str(h, "no HEAD");
  }
  const char *gitdir = git_repository_path(r->repo);
  /* an index ends with the checksum of all it holds */
  _cleanup_free_ char *index = hoist_asprintf("%sindex", gitdir);
  _cleanup_close_ int ifd = open(index, O_RDONLY | O_CLOEXEC);
  struct stat ist;
  unsigned char sum[GIT_OID_RAWSZ];
  if (ifd < 0 || fstat(ifd, &ist) < 0 || ist.st_size < (off_t)sizeof sum ||
      pread(ifd, sum, sizeof sum, ist.st_size - (off_t)sizeof sum) != (ssize_t)sizeof sum)
    return -1;
  hoist_sha256_update(h, sum, sizeof sum);
  hoist_sha256_update(h, &ist.st_size, sizeof ist.st_size);
  _cleanup_free_ char *config = hoist_asprintf("%sconfig", gitdir);
  _cleanup_free_ char *info_exclude = hoist_asprintf("%sinfo/exclude", gitdir);
  _cleanup_free_ char *info_attributes = hoist_asprintf("%sinfo/attributes", gitdir);
  key_file(h, "config", config);
  key_file(h, "info/exclude", info_exclude);
  key_file(h, "info/attributes", info_attributes);
  git_config *cfg = NULL;
  git_buf excludes = {0};
  if (git_repository_config_snapshot(&cfg, r->repo) == 0 &&
      git_config_get_path(&excludes, cfg, "core.excludesfile") == 0)
    key_file(h, "core.excludesfile", excludes.ptr);
  git_buf_dispose(&excludes);
  git_config_free(cfg);
  /* the global ignore file where libgit2 looks for it (its XDG search
   * path: the first directory of it holding "ignore") */
  git_buf xdg = {0};
  char *ignore = NULL;
  if (git_libgit2_opts(GIT_OPT_GET_SEARCH_PATH, GIT_CONFIG_LEVEL_XDG, &xdg) == 0 && xdg.ptr)
    for (const char *p = xdg.ptr; *p && !ignore;) {
      size_t n = strcspn(p, ":");
      ignore = hoist_asprintf("%.*s/ignore", (int)n, p);
      if (access(ignore, F_OK) != 0) {
        free(ignore);
        ignore = NULL;
      }
      p += n + (p[n] == ':');
    }
  git_buf_dispose(&xdg);
  key_file(h, "xdg ignore", ignore);
  free(ignore);
  hoist_sha256_final_hex(h, key);
  return 0;
}

/* Writes the stat cache after a full computation, when the tree allows. */
static void cache_store(const char *cache_path, const char *key, const struct timespec *since,
                        fp_ctx *ctx, background *bg, const hoist_deploy_fingerprint *fp) {
  tracked_scan *ts = &bg->ts;
  const char *why = ctx->uncacheable;
  if (!why && ts->n_tracked != ts->n_stat)
    why = "conflicted, intent-to-add, sparse or submodule entries";
  if (why) {
    hoist_debug("deploy: stat cache not written: %s", why);
    return;
  }
  size_t n_files = 0;
  walk_shared *sh = &bg->sh;
  _cleanup_free_ hoist_deploy_cache_file *files =
      hoist_calloc(ts->n_stat + ctx->untracked_paths.n + sh->n_gitignores + 1, sizeof *files);
  for (size_t i = 0; i < sh->n_gitignores; i++) {
    if (!sh->gitignores[i].st.valid) {
      hoist_debug("deploy: stat cache not written: %s vanished", sh->gitignores[i].path);
      return;
    }
    files[n_files++] = (hoist_deploy_cache_file){sh->gitignores[i].path, &sh->gitignores[i].st};
  }
  for (size_t i = 0; i < ts->n_stat; i++)
    if (ts->seen[i].valid) /* not valid: gone, and its directory says so */
      files[n_files++] = (hoist_deploy_cache_file){ts->tostat[i]->path, &ts->seen[i]};
  for (size_t i = 0; i < ctx->untracked_paths.n; i++)
    files[n_files++] = (hoist_deploy_cache_file){ctx->untracked_paths.v[i], &ctx->untracked_st[i]};
  hoist_err *err = NULL;
  struct timespec w0, w1;
  clock_gettime(CLOCK_MONOTONIC, &w0);
  if (hoist_deploy_cache_write(cache_path, key, since, fp, ctx->n, bg->sh.walked, bg->sh.n_walked,
                               files, n_files, &err) < 0) {
    _cleanup_free_ char *text = hoist_err_text(err);
    hoist_debug("deploy: stat cache not written: %s", text);
  } else {
    clock_gettime(CLOCK_MONOTONIC, &w1);
    hoist_debug("deploy: stat cache written in %.3fs: %zu directories, %zu files",
                elapsed(&w0, &w1), bg->sh.n_walked, n_files);
  }
  hoist_err_free(err);
}

static void fp_ctx_free(fp_ctx *ctx) {
  for (size_t i = 0; i < ctx->n; i++) {
    comp_ctx *c = &ctx->comps[i];
    hoist_sha256_free(c->h);
    for (size_t k = 0; k < c->n_pats; k++)
      free(c->pats[k].prefix);
    free(c->pats);
    hoist_strv_clear(&c->changed);
  }
  free(ctx->comps);
  free(ctx->head);
  hoist_buf_free(&ctx->arena);
  hoist_buf_free(&ctx->path);
  hoist_strv_clear(&ctx->untracked_paths);
  free(ctx->untracked_st);
}

int hoist_deploy_fingerprints(hoist_deploy_repo *r, const hoist_deploy_file *f, const char *exclude,
                              hoist_deploy_fingerprint **out, hoist_err **err) {
  size_t n = f->n_components;
  fp_ctx ctx = {.repo = r->repo, .n = n, .err = err};
  hoist_buf_init(&ctx.path, 1 << 20);
  hoist_buf_init(&ctx.arena, 0);
  ctx.comps = hoist_calloc(n, sizeof *ctx.comps);
  _cleanup_free_ uint8_t *cover = hoist_malloc0(n);
  for (size_t i = 0; i < n; i++) {
    const hoist_deploy_component *c = &f->components[i];
    ctx.comps[i].pats = hoist_calloc(c->n_paths, sizeof(pat));
    ctx.comps[i].n_pats = c->n_paths;
    for (size_t k = 0; k < c->n_paths; k++) {
      pat_init(&ctx.comps[i].pats[k], c->paths[k]);
      const pat *p = &ctx.comps[i].pats[k];
      if (p->kind == PAT_PREFIX && !p->literal && p->prefix_len == 0)
        cover[i] = COVER_FULL;
    }
    if (!cover[i])
      cover[i] = COVER_MAYBE;
    ctx.comps[i].h = hoist_sha256_new();
  }
  hoist_strv changed = {0};
  _cleanup_close_ int rootfd = open(r->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) {
    int e = errno;
    fp_ctx_free(&ctx);
    return hoist_err_errno(err, e, "open %s", r->root);
  }
  /* every stat below is taken after since: a change after one of them
   * carries a timestamp from since on */
  struct timespec since;
  clock_gettime(CLOCK_REALTIME_COARSE, &since);
  char key[HOIST_DIGEST_HEX_LEN + 1];
  bool keyed = cache_key(r, f, exclude, key) == 0;
  _cleanup_free_ char *cache_path =
      hoist_asprintf("%s%s", git_repository_path(r->repo), HOIST_DEPLOY_CACHE_NAME);
  if (keyed) {
    hoist_deploy_fingerprint *hit = hoist_calloc(n ? n : 1, sizeof *hit);
    if (hoist_deploy_cache_check(cache_path, rootfd, key, n, hit) == 1) {
      fp_ctx_free(&ctx);
      *out = hit;
      return 0;
    }
    hoist_deploy_fingerprints_free(hit, n);
  }
  int any_cover = COVER_MAYBE;
  for (size_t i = 0; i < n; i++)
    if (cover[i] == COVER_FULL)
      any_cover = COVER_FULL;
  /* the index is loaded and the work tree walked on other threads while
   * this one walks HEAD's tree */
  background bg = {.index_path = hoist_asprintf("%sindex", git_repository_path(r->repo)),
                   .cover = any_cover,
                   .sh = {.ctx = &ctx, .rootfd = rootfd, .exclude = exclude}};
  pthread_t tid;
  bool threaded = pthread_create(&tid, NULL, background_run, &bg) == 0;
  struct timespec t0, t1, t2;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  git_tree *tree = NULL;
  int rc = hoist_buf_append(&ctx.path, "", 0, err);
  if (rc == 0)
    rc = head_tree(r->repo, &tree, err);
  if (rc == 0 && tree)
    rc = walk(&ctx, tree, cover);
  git_tree_free(tree);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (threaded)
    pthread_join(tid, NULL);
  else
    background_run(&bg);
  free(bg.index_path);
  if (rc == 0 && bg.rc < 0)
    rc = hoist_err_set(err, EIO, "read the index: %s", bg.msg);
  if (rc == 0) {
    staged_changes(&ctx, bg.idx, exclude, &changed);
    rc = walk_finish(&ctx, bg.idx, &bg.sh, rootfd, exclude, &changed);
  }
  if (rc == 0)
    rc = tracked_finish(&ctx, rootfd, &bg.ts, &changed);
  sort_unique(&changed);
  clock_gettime(CLOCK_MONOTONIC, &t2);
  hoist_debug("deploy: HEAD tree %.3fs; index and work tree %.3fs; total %.3fs", elapsed(&t0, &t1),
              bg.seconds, elapsed(&t0, &t2));
  for (size_t i = 0; rc == 0 && i < changed.n; i++) {
    const char *path = changed.v[i];
    size_t len = strlen(path);
    char hex[HOIST_DIGEST_HEX_LEN + 1] = "";
    for (size_t c = 0; rc == 0 && c < n; c++) {
      if (!comp_match(&ctx.comps[c], path, len))
        continue;
      if (!hex[0])
        rc = content_hash(rootfd, path, hex, err);
      if (rc < 0)
        break;
      _cleanup_free_ char *line = hoist_asprintf("%s:%s\n", path, hex);
      add_line(&ctx.comps[c], line, strlen(line));
      hoist_strv_push(&ctx.comps[c].changed, hoist_strdup(path));
    }
  }
  hoist_deploy_fingerprint *fp = hoist_calloc(n ? n : 1, sizeof *fp);
  for (size_t i = 0; i < n; i++) {
    comp_ctx *c = &ctx.comps[i];
    if (rc == 0 && c->nonempty)
      hoist_sha256_final_hex(c->h, fp[i].hex);
    fp[i].changed = steal_pointer(&c->changed.v);
    fp[i].n_changed = c->changed.n;
    c->changed = (hoist_strv)HOIST_STRV_INIT;
  }
  if (rc == 0 && keyed)
    cache_store(cache_path, key, &since, &ctx, &bg, fp);
  walk_free(&bg.sh);
  free(bg.ts.tostat);
  free(bg.ts.result);
  free(bg.ts.seen);
  free(bg.ts.tracked);
  git_index_free(bg.idx);
  fp_ctx_free(&ctx);
  hoist_strv_clear(&changed);
  if (rc < 0) {
    hoist_deploy_fingerprints_free(fp, n);
    return hoist_err_wrap(err, "fingerprint %s", r->root);
  }
  *out = fp;
  return 0;
}

void hoist_deploy_fingerprints_free(hoist_deploy_fingerprint *fp, size_t n) {
  if (!fp)
    return;
  for (size_t i = 0; i < n; i++) {
    hoist_strv v = {fp[i].changed, fp[i].n_changed, 0};
    hoist_strv_clear(&v);
  }
  free(fp);
}
