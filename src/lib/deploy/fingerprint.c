/* Component fingerprints from git state, read in-process with libgit2. */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <git2.h>
#include <string.h>
#include <sys/stat.h>

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
  hoist_deploy_strv changed;
} comp_ctx;

typedef struct fp_ctx {
  git_repository *repo;
  comp_ctx *comps;
  size_t n;
  hoist_buf path;
  hoist_err **err;
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
      return -1;
    git_object_t type = git_tree_entry_type(e);
    if (type == GIT_OBJECT_TREE) {
      if (hoist_buf_append(&ctx->path, "/", 1, ctx->err) < 0)
        return -1;
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
    char line[64 + 8192];
    char oid[GIT_OID_HEXSZ + 1];
    git_oid_tostr(oid, sizeof oid, git_tree_entry_id(e));
    int ln = snprintf(line, sizeof line, "%06o %s %s\t%s\n", (unsigned)git_tree_entry_filemode(e),
                      type == GIT_OBJECT_COMMIT ? "commit" : "blob", oid, ctx->path.data);
    if (ln < 0 || (size_t)ln >= sizeof line)
      return hoist_err_set(ctx->err, HOIST_E_LIMIT, "path too long: %s", ctx->path.data);
    for (size_t c = 0; c < ctx->n; c++)
      if (cover[c] == COVER_FULL ||
          (cover[c] == COVER_MAYBE && comp_match(&ctx->comps[c], ctx->path.data, ctx->path.len)))
        add_line(&ctx->comps[c], line, (size_t)ln);
  }
  ctx->path.len = base;
  ctx->path.data[base] = '\0';
  return 0;
}

static int head_tree(git_repository *repo, git_tree **out, hoist_err **err) {
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

/* Paths changed in the index or the work tree, or untracked and not
 * ignored, limited to the union of the patterns; sorted, unique. */
static int changed_paths(git_repository *repo, const hoist_deploy_file *f, const char *exclude,
                         hoist_deploy_strv *out, hoist_err **err) {
  hoist_deploy_strv specs = {0};
  for (size_t i = 0; i < f->n_components; i++)
    for (size_t j = 0; j < f->components[i].n_paths; j++)
      hoist_deploy_strv_push(&specs, f->components[i].paths[j]);
  git_status_options opts;
  git_status_options_init(&opts, GIT_STATUS_OPTIONS_VERSION);
  opts.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
  opts.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS;
  opts.pathspec.strings = specs.v;
  opts.pathspec.count = specs.n;
  git_status_list *list = NULL;
  int r = git_status_list_new(&list, repo, &opts);
  free(specs.v);
  if (r < 0)
    return git_fail(err, r, "git status");
  size_t n = git_status_list_entrycount(list);
  for (size_t i = 0; i < n; i++) {
    const git_status_entry *e = git_status_byindex(list, i);
    if (e->status == GIT_STATUS_CURRENT || (e->status & GIT_STATUS_IGNORED))
      continue;
    const git_diff_delta *d = e->index_to_workdir ? e->index_to_workdir : e->head_to_index;
    if (!d)
      continue;
    const char *paths[2] = {d->old_file.path, d->new_file.path};
    for (int k = 0; k < 2; k++) {
      if (!paths[k] || (k == 1 && d->old_file.path && strcmp(paths[0], paths[1]) == 0))
        continue;
      if (exclude && strcmp(paths[k], exclude) == 0)
        continue;
      hoist_deploy_strv_push(out, hoist_strdup(paths[k]));
    }
    if (e->head_to_index && e->index_to_workdir) {
      const git_diff_delta *h = e->head_to_index;
      if (h->old_file.path && strcmp(h->old_file.path, d->old_file.path) != 0 &&
          !(exclude && strcmp(h->old_file.path, exclude) == 0))
        hoist_deploy_strv_push(out, hoist_strdup(h->old_file.path));
    }
  }
  git_status_list_free(list);
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
  return 0;
}

/* sha256 hex of a changed file's content (of a symlink's target string),
 * or __MISSING__ when it is gone or not a file. */
static int content_hash(int rootfd, const char *path, char out[HOIST_DIGEST_HEX_LEN + 1],
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

int hoist_deploy_fingerprints(hoist_deploy_repo *r, const hoist_deploy_file *f,
                              const char *exclude, hoist_deploy_fingerprint **out,
                              hoist_err **err) {
  size_t n = f->n_components;
  fp_ctx ctx = {.repo = r->repo, .n = n, .err = err};
  hoist_buf_init(&ctx.path, 1 << 20);
  ctx.comps = hoist_malloc0(n * sizeof *ctx.comps);
  _cleanup_free_ uint8_t *cover = hoist_malloc0(n);
  for (size_t i = 0; i < n; i++) {
    const hoist_deploy_component *c = &f->components[i];
    ctx.comps[i].pats = hoist_malloc0(c->n_paths * sizeof(pat));
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
  hoist_deploy_strv changed = {0};
  _cleanup_close_ int rootfd = -1;
  git_tree *tree = NULL;
  int rc = hoist_buf_append(&ctx.path, "", 0, err);
  if (rc == 0)
    rc = head_tree(r->repo, &tree, err);
  if (rc == 0 && tree)
    rc = walk(&ctx, tree, cover);
  git_tree_free(tree);
  if (rc == 0)
    rc = changed_paths(r->repo, f, exclude, &changed, err);
  if (rc == 0) {
    rootfd = open(r->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
      rc = hoist_err_errno(err, errno, "open %s", r->root);
  }
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
      hoist_deploy_strv_push(&ctx.comps[c].changed, hoist_strdup(path));
    }
  }
  hoist_deploy_fingerprint *fp = hoist_malloc0((n ? n : 1) * sizeof *fp);
  for (size_t i = 0; i < n; i++) {
    comp_ctx *c = &ctx.comps[i];
    if (rc == 0 && c->nonempty)
      hoist_sha256_final_hex(c->h, fp[i].hex);
    fp[i].changed = c->changed.v;
    fp[i].n_changed = c->changed.n;
    hoist_sha256_free(c->h);
    for (size_t k = 0; k < c->n_pats; k++)
      free(c->pats[k].prefix);
    free(c->pats);
  }
  free(ctx.comps);
  hoist_buf_free(&ctx.path);
  hoist_deploy_strv_free(&changed);
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
    hoist_deploy_strv v = {fp[i].changed, fp[i].n_changed};
    hoist_deploy_strv_free(&v);
  }
  free(fp);
}
