/* sandbox: pure helpers (users, subordinate ids, escaping, line splitting, environment). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hoist/oci.h"
#include "hoist/sandbox.h"
#include "sandbox-private.h"

#define DEFAULT_DIRS "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define DEFAULT_PATH "PATH=" DEFAULT_DIRS

/* Parses a decimal id (no sign, no junk, below 2^32-1). */
static bool parse_id(const char *s, size_t n, unsigned long *out) {
  if (n == 0 || n > 10)
    return false;
  unsigned long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (unsigned long)(s[i] - '0');
  }
  if (v >= 4294967295UL)
    return false;
  *out = v;
  return true;
}

/* Splits the colon-separated line [p, end) into at most max fields. */
static size_t split_fields(const char *p, const char *end, const char **f, size_t *fl, size_t max) {
  size_t n = 0;
  while (n < max) {
    const char *c = memchr(p, ':', (size_t)(end - p));
    const char *stop = c ? c : end;
    f[n] = p;
    fl[n] = (size_t)(stop - p);
    n++;
    if (!c)
      break;
    p = c + 1;
  }
  return n;
}

static bool field_is(const char *f, size_t fl, const char *s, size_t sl) {
  return fl == sl && memcmp(f, s, sl) == 0;
}

/* Calls fn for each line's fields of a passwd/group-style text; stops when fn
 * returns true. */
typedef bool (*line_fn)(const char **f, const size_t *fl, size_t n, void *ctx);

static bool each_line(const char *text, line_fn fn, void *ctx) {
  if (!text)
    return false;
  const char *p = text;
  while (*p) {
    const char *nl = strchr(p, '\n');
    const char *end = nl ? nl : p + strlen(p);
    if (end > p && *p != '#') {
      const char *f[8];
      size_t fl[8];
      size_t n = split_fields(p, end, f, fl, 8);
      if (fn(f, fl, n, ctx))
        return true;
    }
    if (!nl)
      break;
    p = nl + 1;
  }
  return false;
}

typedef struct {
  const char *name; /* match by name, or by id when NULL */
  size_t name_len;
  unsigned long id;
  unsigned long found_id, found_gid;
  char found_name[256];
  char found_home[256];
} lookup;

static bool passwd_match(const char **f, const size_t *fl, size_t n, void *ctx) {
  lookup *l = ctx;
  unsigned long uid, gid;
  if (n < 4 || !parse_id(f[2], fl[2], &uid) || !parse_id(f[3], fl[3], &gid))
    return false;
  if (l->name ? !field_is(f[0], fl[0], l->name, l->name_len) : uid != l->id)
    return false;
  l->found_id = uid;
  l->found_gid = gid;
  size_t k = fl[0] < sizeof(l->found_name) - 1 ? fl[0] : sizeof(l->found_name) - 1;
  memcpy(l->found_name, f[0], k);
  l->found_name[k] = '\0';
  l->found_home[0] = '\0';
  if (n >= 6 && fl[5] > 0 && fl[5] < sizeof l->found_home && f[5][0] == '/') {
    memcpy(l->found_home, f[5], fl[5]);
    l->found_home[fl[5]] = '\0';
  }
  return true;
}

static bool group_match(const char **f, const size_t *fl, size_t n, void *ctx) {
  lookup *l = ctx;
  unsigned long gid;
  if (n < 3 || !parse_id(f[2], fl[2], &gid) || !l->name ||
      !field_is(f[0], fl[0], l->name, l->name_len))
    return false;
  l->found_id = gid;
  return true;
}

typedef struct {
  const char *user;
  sandbox_user *out;
} members_ctx;

static bool group_members(const char **f, const size_t *fl, size_t n, void *ctx) {
  members_ctx *m = ctx;
  unsigned long gid;
  if (n < 4 || !parse_id(f[2], fl[2], &gid))
    return false;
  const char *p = f[3], *end = f[3] + fl[3];
  size_t ul = strlen(m->user);
  while (p < end) {
    const char *c = memchr(p, ',', (size_t)(end - p));
    const char *stop = c ? c : end;
    if (field_is(p, (size_t)(stop - p), m->user, ul)) {
      bool dup = false;
      for (size_t i = 0; i < m->out->n_groups; i++)
        dup = dup || m->out->groups[i] == (gid_t)gid;
      if (!dup && m->out->n_groups < SANDBOX_MAX_GROUPS)
        m->out->groups[m->out->n_groups++] = (gid_t)gid;
      break;
    }
    p = c ? c + 1 : end;
  }
  return false;
}

int sandbox_user_resolve(const char *spec, const char *passwd, const char *group, sandbox_user *out,
                         hoist_err **err) {
  memset(out, 0, sizeof(*out));
  snprintf(out->home, sizeof out->home, "/root");
  if (!spec || !*spec) {
    out->n_groups = 1;
    return 0;
  }
  const char *colon = strchr(spec, ':');
  size_t ulen = colon ? (size_t)(colon - spec) : strlen(spec);
  const char *gspec = colon ? colon + 1 : NULL;
  if (ulen == 0 || (gspec && !*gspec))
    return hoist_err_set(err, EINVAL, "user %s: expected uid[:gid] or name[:group]", spec);

  unsigned long id;
  lookup l = {0};
  const char *uname = NULL;
  if (parse_id(spec, ulen, &id)) {
    l.id = id;
    out->uid = (uid_t)id;
    if (id != 0)
      snprintf(out->home, sizeof out->home, "/");
    if (each_line(passwd, passwd_match, &l)) {
      out->gid = (gid_t)l.found_gid;
      uname = l.found_name;
    }
  } else {
    l.name = spec;
    l.name_len = ulen;
    if (!each_line(passwd, passwd_match, &l))
      return hoist_err_set(err, ENOENT, "user %.*s: not in the image's /etc/passwd", (int)ulen,
                           spec);
    out->uid = (uid_t)l.found_id;
    out->gid = (gid_t)l.found_gid;
    uname = l.found_name;
  }
  if (uname && l.found_home[0])
    snprintf(out->home, sizeof out->home, "%s", l.found_home);
  else if (uname)
    snprintf(out->home, sizeof out->home, "%s", out->uid == 0 ? "/root" : "/");
  if (gspec) {
    if (parse_id(gspec, strlen(gspec), &id)) {
      out->gid = (gid_t)id;
    } else {
      lookup g = {.name = gspec, .name_len = strlen(gspec)};
      if (!each_line(group, group_match, &g))
        return hoist_err_set(err, ENOENT, "group %s: not in the image's /etc/group", gspec);
      out->gid = (gid_t)g.found_id;
    }
  }
  out->groups[0] = out->gid;
  out->n_groups = 1;
  /* Supplementary groups only follow from a name and no explicit group. */
  if (uname && !gspec) {
    members_ctx m = {.user = uname, .out = out};
    each_line(group, group_members, &m);
  }
  return 0;
}

typedef struct {
  const char *name;
  uid_t uid;
  unsigned long start, count;
} subid_ctx;

static bool subid_match(const char **f, const size_t *fl, size_t n, void *ctx) {
  subid_ctx *s = ctx;
  unsigned long id, start, count;
  if (n != 3 || !parse_id(f[1], fl[1], &start) || !parse_id(f[2], fl[2], &count) || count == 0)
    return false;
  bool ok = (s->name && field_is(f[0], fl[0], s->name, strlen(s->name))) ||
            (parse_id(f[0], fl[0], &id) && id == s->uid);
  if (ok) {
    s->start = start;
    s->count = count;
  }
  return ok;
}

bool sandbox_subid_range(const char *text, const char *name, uid_t uid, unsigned long *start,
                         unsigned long *count) {
  subid_ctx s = {.name = name, .uid = uid};
  if (!each_line(text, subid_match, &s))
    return false;
  *start = s.start;
  *count = s.count;
  return true;
}

bool sandbox_id_maps(uid_t uid, gid_t gid, const char *name, const char *subuid, const char *subgid,
                     bool have_tools, hoist_idmap u[2], size_t *nu, hoist_idmap g[2], size_t *ng) {
  unsigned long us, uc, gs, gc;
  bool ranges = sandbox_subid_range(subuid, name, uid, &us, &uc) &&
                sandbox_subid_range(subgid, name, uid, &gs, &gc);
  /* inside ids are 32-bit: a range reaching past 2^32-2 is cut */
  if (ranges && uc > 4294967294UL - 1)
    uc = 4294967294UL - 1;
  if (ranges && gc > 4294967294UL - 1)
    gc = 4294967294UL - 1;
  *nu = *ng = 0;
  if (uid == 0) {
    if (!ranges)
      return false;
    u[0] = (hoist_idmap){0, (uint32_t)us, (uint32_t)uc};
    g[0] = (hoist_idmap){0, (uint32_t)gs, (uint32_t)gc};
    *nu = *ng = 1;
    return false;
  }
  u[0] = (hoist_idmap){0, (uint32_t)uid, 1};
  g[0] = (hoist_idmap){0, (uint32_t)gid, 1};
  *nu = *ng = 1;
  if (!have_tools || !ranges)
    return false;
  u[1] = (hoist_idmap){1, (uint32_t)us, (uint32_t)uc};
  g[1] = (hoist_idmap){1, (uint32_t)gs, (uint32_t)gc};
  *nu = *ng = 2;
  return true;
}

char *sandbox_overlay_escape(const char *path) {
  size_t n = strlen(path);
  char *out = hoist_malloc0(2 * n + 1), *o = out;
  for (const char *p = path; *p; p++) {
    if (*p == '\\' || *p == ',' || *p == ':')
      *o++ = '\\';
    *o++ = *p;
  }
  *o = '\0';
  return out;
}

void sandbox_lines_feed(sandbox_lines *l, const char *data, size_t n, sandbox_emit_fn emit,
                        void *ctx) {
  if (!l->buf)
    l->buf = hoist_malloc0(SANDBOX_LINE_MAX);
  while (n > 0) {
    const char *nl = memchr(data, '\n', n);
    size_t take = nl ? (size_t)(nl - data) : n;
    while (l->len + take >= SANDBOX_LINE_MAX) {
      size_t room = SANDBOX_LINE_MAX - l->len;
      memcpy(l->buf + l->len, data, room);
      emit(ctx, l->buf, SANDBOX_LINE_MAX);
      l->len = 0;
      data += room;
      n -= room;
      take -= room;
    }
    memcpy(l->buf + l->len, data, take);
    l->len += take;
    data += take;
    n -= take;
    if (nl) {
      emit(ctx, l->buf, l->len);
      l->len = 0;
      data++;
      n--;
    }
  }
}

void sandbox_lines_flush(sandbox_lines *l, sandbox_emit_fn emit, void *ctx) {
  if (l->len > 0)
    emit(ctx, l->buf, l->len);
  l->len = 0;
}

void sandbox_lines_free(sandbox_lines *l) {
  free(l->buf);
  l->buf = NULL;
  l->len = 0;
}

/* Index of the variable of entry's name in v[0..n), or n. */
static size_t env_find(char **v, size_t n, const char *entry) {
  size_t nl = strcspn(entry, "=");
  for (size_t i = 0; i < n; i++)
    if (strncmp(v[i], entry, nl) == 0 && v[i][nl] == '=')
      return i;
  return n;
}

HOIST_WUR static int env_put(char ***v, size_t *n, const char *entry, hoist_err **err) {
  const char *eq = strchr(entry, '=');
  if (!eq || eq == entry)
    return hoist_err_set(err, EINVAL, "environment entry \"%s\": expected NAME=value", entry);
  size_t i = env_find(*v, *n, entry);
  if (i < *n) {
    free((*v)[i]);
    (*v)[i] = hoist_strdup(entry);
    return 0;
  }
  char **nv = realloc(*v, (*n + 2) * sizeof(char *));
  if (!nv)
    abort();
  *v = nv;
  nv[(*n)++] = hoist_strdup(entry);
  nv[*n] = NULL;
  return 0;
}

int hoist_sandbox_env(const struct hoist_config *c, char *const *extra, char ***env,
                      hoist_err **err) {
  char **v = hoist_malloc0(sizeof(char *));
  size_t n = 0;
  if (c) {
    json_t *section = json_object_get(c->root, "config");
    json_t *e = section ? json_object_get(section, "Env") : NULL;
    size_t i;
    json_t *it;
    json_array_foreach(e, i, it) {
      if (!json_is_string(it) || env_put(&v, &n, json_string_value(it), err) < 0) {
        hoist_strfreev(v);
        return hoist_err_wrap(err, "image config Env");
      }
    }
  }
  for (char *const *p = extra; p && *p; p++) {
    if (env_put(&v, &n, *p, err) < 0) {
      hoist_strfreev(v);
      return -EINVAL;
    }
  }
  if (env_find(v, n, "PATH=") == n)
    hoist_best_effort(env_put(&v, &n, DEFAULT_PATH, NULL)); /* a valid entry: cannot fail */
  *env = v;
  return 0;
}

char *sandbox_which(const char *dirs, const char *name) {
  const char *path = dirs && *dirs ? dirs : DEFAULT_DIRS;
  for (const char *p = path;;) {
    const char *colon = strchr(p, ':');
    size_t dl = colon ? (size_t)(colon - p) : strlen(p);
    if (dl > 0) {
      char *full = hoist_asprintf("%.*s/%s", (int)dl, p, name);
      if (access(full, X_OK) == 0)
        return full;
      free(full);
    }
    if (!colon)
      return NULL;
    p = colon + 1;
  }
}
