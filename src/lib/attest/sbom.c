/* attest: the SBOM's collection of packages (deduplicated by purl), which
 * paths are records, and the scanners of a layer blob and of a tree. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "hoist/fs.h"
#include "sbom-private.h"

hoist_sbom *hoist_sbom_new(void) { return hoist_malloc0(sizeof(hoist_sbom)); }

static void package_clear(hoist_sbom_package *p) {
  free(p->name);
  free(p->version);
  free(p->purl_type);
  free(p->purl);
  free(p->license);
  free(p->path);
}

void hoist_sbom_free(hoist_sbom *s) {
  if (!s)
    return;
  for (size_t i = 0; i < s->n; i++)
    package_clear(&s->pkgs[i]);
  free(s->pkgs);
  hoist_map_clear(&s->seen);
  free(s);
}

size_t hoist_sbom_count(const hoist_sbom *s) { return s ? s->n : 0; }

const hoist_sbom_package *hoist_sbom_get(const hoist_sbom *s, size_t i) {
  return s && i < s->n ? &s->pkgs[i] : NULL;
}

/* ------------------------------------------------------------ packages */

bool sbom_text_ok(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < len;) {
    unsigned c = p[i];
    if (c < 0x20 || c == 0x7f)
      return false;
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t n;
    unsigned min;
    if (c >= 0xc2 && c <= 0xdf)
      n = 1, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
      n = 2, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
      n = 3, min = 0x10000;
    else
      return false;
    if (len - i <= n)
      return false;
    unsigned cp = c & (0x3f >> n);
    for (size_t k = 1; k <= n; k++) {
      if ((p[i + k] & 0xc0) != 0x80)
        return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += n + 1;
  }
  return true;
}

/* Refuses a name or version the document could not carry. */
static int field_check(const char *what, const char *v, const char *path, hoist_err **err) {
  size_t len = strlen(v);
  if (len == 0)
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: empty package %s", path, what);
  if (len > SBOM_FIELD_MAX)
    return hoist_err_set(err, HOIST_E_LIMIT,
                         "%s: a package %s of %zu bytes, over the SBOM field limit of %d bytes",
                         path, what, len, SBOM_FIELD_MAX);
  if (!sbom_text_ok(v, len))
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "%s: package %s is not UTF-8 text without control characters", path, what);
  return 0;
}

/* Appends v percent-encoded as purl components are: every byte but letters,
 * digits and ".-_~" (and ':' and '/' when keep says so). */
static int purl_append(hoist_buf *b, const char *v, const char *keep, hoist_err **err) {
  for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
    bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                 strchr(".-_~", *p) || strchr(keep, *p);
    int r = plain ? hoist_buf_append(b, p, 1, err) : hoist_buf_appendf(b, err, "%%%02X", *p);
    if (r < 0)
      return r;
  }
  return 0;
}

static char *purl_of(const sbom_found *f, hoist_err **err) {
  _cleanup_buf_ hoist_buf b = HOIST_BUF_INIT(16 * SBOM_FIELD_MAX);
  if (hoist_buf_appendf(&b, err, "pkg:%s/", f->type) < 0 ||
      (f->ns && (purl_append(&b, f->ns, "/", err) < 0 || hoist_buf_append(&b, "/", 1, err) < 0)) ||
      purl_append(&b, f->name, "", err) < 0 ||
      (f->version &&
       (hoist_buf_append(&b, "@", 1, err) < 0 || purl_append(&b, f->version, ":", err) < 0)) ||
      (f->qual_key && f->qual_value &&
       (hoist_buf_appendf(&b, err, "?%s=", f->qual_key) < 0 ||
        purl_append(&b, f->qual_value, "", err) < 0)))
    return NULL;
  return hoist_buf_steal(&b);
}

static int add_package(hoist_sbom *s, hoist_sbom_package *p, const char *path, hoist_err **err) {
  size_t plen = strlen(p->purl);
  if (hoist_map_get(&s->seen, p->purl, plen, NULL)) {
    package_clear(p);
    return 0;
  }
  if (s->n >= SBOM_PACKAGES_MAX) {
    package_clear(p);
    return hoist_err_set(err, HOIST_E_LIMIT, "%s: over the SBOM limit of %d packages", path,
                         SBOM_PACKAGES_MAX);
  }
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 64;
    s->pkgs = hoist_reallocarray(s->pkgs, s->cap, sizeof *s->pkgs);
  }
  hoist_map_set(&s->seen, p->purl, plen, s->n);
  s->pkgs[s->n++] = *p;
  return 0;
}

int sbom_add_found(hoist_sbom *s, const sbom_found *f, const char *path, hoist_sbom_origin origin,
                   hoist_err **err) {
  if (field_check("name", f->name, path, err) < 0 ||
      (f->version && field_check("version", f->version, path, err) < 0) ||
      (f->ns && field_check("namespace", f->ns, path, err) < 0) ||
      (f->display && field_check("name", f->display, path, err) < 0) ||
      (f->qual_value && field_check(f->qual_key, f->qual_value, path, err) < 0))
    return -1;
  char *purl = purl_of(f, err);
  if (!purl)
    return hoist_err_wrap(err, "%s", path);
  /* a license the document could not carry is as good as none */
  const char *lic = f->license;
  if (lic && (strlen(lic) > SBOM_FIELD_MAX || !sbom_text_ok(lic, strlen(lic))))
    lic = NULL;
  hoist_sbom_package p = {
      .name = hoist_strdup(f->display ? f->display : f->name),
      .version = f->version ? hoist_strdup(f->version) : NULL,
      .purl_type = hoist_strdup(f->type),
      .purl = purl,
      .license = lic && *lic ? hoist_strdup(lic) : NULL,
      .path = hoist_strdup(path),
      .origin = origin,
  };
  return add_package(s, &p, path, err);
}

int hoist_sbom_add_package(hoist_sbom *s, const hoist_sbom_package *p, hoist_err **err) {
  if (!p->name || !p->purl || !p->purl_type || !p->path)
    return hoist_err_set(err, EINVAL, "an SBOM package needs a name, a purl and a path");
  hoist_sbom_package c = {
      .name = hoist_strdup(p->name),
      .version = p->version ? hoist_strdup(p->version) : NULL,
      .purl_type = hoist_strdup(p->purl_type),
      .purl = hoist_strdup(p->purl),
      .license = p->license ? hoist_strdup(p->license) : NULL,
      .path = hoist_strdup(p->path),
      .origin = p->origin,
  };
  return add_package(s, &c, p->path, err);
}

/* ------------------------------------------------------------- records */

/* Component k from the end of path (0: the last), as start and length;
 * false when path has fewer. */
static bool component(const char *path, unsigned k, const char **start, size_t *len) {
  const char *end = path + strlen(path);
  for (;;) {
    const char *slash = end;
    while (slash > path && slash[-1] != '/')
      slash--;
    if (k == 0) {
      *start = slash;
      *len = (size_t)(end - slash);
      return true;
    }
    if (slash == path)
      return false;
    end = slash - 1;
    k--;
  }
}

static bool component_is(const char *path, unsigned k, const char *want) {
  const char *c;
  size_t n;
  return component(path, k, &c, &n) && n == strlen(want) && memcmp(c, want, n) == 0;
}

static bool has_component(const char *path, const char *want) {
  size_t n = strlen(want);
  for (const char *p = path; (p = strstr(p, want)); p++)
    if ((p == path || p[-1] == '/') && (p[n] == '/' || p[n] == '\0'))
      return true;
  return false;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* A Maven repository's layout: repository/<group...>/<artifact>/<version>/
 * <artifact>-<version>.<ext>, at least one group directory. */
static bool maven_repo_path(const char *path) {
  const char *file, *ver, *art;
  size_t nf, nv, na;
  if (!component(path, 0, &file, &nf) || !component(path, 1, &ver, &nv) ||
      !component(path, 2, &art, &na) || !component(path, 3, &(const char *){NULL}, &(size_t){0}))
    return false;
  if (nf != na + 1 + nv + 4 || memcmp(file, art, na) != 0 || file[na] != '-' ||
      memcmp(file + na + 1, ver, nv) != 0)
    return false;
  const char *repo = strstr(path, "repository/");
  return repo && (repo == path || repo[-1] == '/') && repo + strlen("repository/") < art - 1;
}

/* True when a component of path starts with '_' or '.': a directory the
 * go command ignores. */
static bool go_ignored(const char *path) {
  for (const char *p = path; *p; p++)
    if ((p == path || p[-1] == '/') && (*p == '_' || *p == '.'))
      return true;
  return false;
}

sbom_record sbom_record_of(const char *path) {
  const char *base;
  size_t n;
  if (!path || !*path || !component(path, 0, &base, &n) || n == 0)
    return REC_NONE;
  /* a package's test fixtures are not what is installed */
  if (has_component(path, "testdata"))
    return REC_NONE;
  if (strcmp(base, "METADATA") == 0) {
    const char *dir;
    size_t nd;
    return component(path, 1, &dir, &nd) && nd > 10 && memcmp(dir + nd - 10, ".dist-info", 10) == 0
               ? REC_PIP_METADATA
               : REC_NONE;
  }
  if (strcmp(base, "package-lock.json") == 0)
    return has_component(path, "node_modules") ? REC_NONE : REC_NPM_LOCK;
  if (strcmp(base, ".package-lock.json") == 0)
    return component_is(path, 1, "node_modules") ? REC_NPM_HIDDEN : REC_NONE;
  if (strcmp(base, "package.json") == 0) {
    const char *dir, *scope;
    size_t nd, ns;
    if (!component(path, 1, &dir, &nd) || nd == 0 || dir[0] == '.')
      return REC_NONE;
    if (dir[0] != '@' && component_is(path, 2, "node_modules"))
      return REC_NPM_PACKAGE;
    if (component(path, 2, &scope, &ns) && ns > 1 && scope[0] == '@' &&
        component_is(path, 3, "node_modules"))
      return REC_NPM_PACKAGE;
    return REC_NONE;
  }
  if (strcmp(base, "go.sum") == 0)
    return strchr(path, '@') || go_ignored(path) ? REC_NONE : REC_GO_SUM;
  if (ends_with(base, ".zip") && n > 4 && component_is(path, 1, "@v")) {
    const char *c = strstr(path, "cache/download/");
    return c && (c == path || c[-1] == '/') && strncmp(c, "cache/download/sumdb/", 21) != 0 &&
                   c + strlen("cache/download/") < base - 4
               ? REC_GO_CACHE
               : REC_NONE;
  }
  if ((ends_with(base, ".pom") || ends_with(base, ".jar")) && maven_repo_path(path))
    return REC_MAVEN_REPO;
  if (ends_with(base, ".jar") && n > 4 && component_is(path, 1, "lib"))
    return REC_JAR;
  if (strcmp(base, "installed.json") == 0)
    return component_is(path, 1, "composer") && component_is(path, 2, "vendor") ? REC_COMPOSER
                                                                                : REC_NONE;
  if (strcmp(base, "Gemfile.lock") == 0 || strcmp(base, "gems.locked") == 0)
    return has_component(path, "gems") ? REC_NONE : REC_GEMFILE_LOCK;
  if (ends_with(base, ".gemspec") && n > 8 && component_is(path, 1, "specifications"))
    return REC_GEMSPEC;
  if (strcmp(path, "var/lib/dpkg/status") == 0)
    return REC_DPKG_STATUS;
  if (strncmp(path, "var/lib/dpkg/status.d/", 22) == 0 && !strchr(path + 22, '/') &&
      path[22] != '\0' && path[22] != '.' && !ends_with(path, ".md5sums"))
    return REC_DPKG_STATUS_D;
  if (strcmp(path, "lib/apk/db/installed") == 0)
    return REC_APK_INSTALLED;
  return REC_NONE;
}

bool hoist_sbom_wants(const char *path) { return sbom_record_of(path) != REC_NONE; }

/* Records read from their path alone: their content is not needed. */
static bool needs_data(sbom_record kind) {
  return kind != REC_MAVEN_REPO && kind != REC_GEMSPEC && kind != REC_GO_CACHE;
}

static int too_big(const char *path, uint64_t size, hoist_err **err) {
  return hoist_err_set(err, HOIST_E_LIMIT,
                       "%s: %llu bytes, over the SBOM record limit of %u bytes "
                       "(HOIST_SBOM_RECORD_MAX)",
                       path, (unsigned long long)size, HOIST_SBOM_RECORD_MAX);
}

int hoist_sbom_add_file(hoist_sbom *s, const char *path, const char *data, size_t len,
                        hoist_sbom_origin origin, hoist_err **err) {
  sbom_record kind = sbom_record_of(path);
  if (kind == REC_NONE)
    return 0;
  if (len > HOIST_SBOM_RECORD_MAX)
    return too_big(path, len, err);
  _cleanup_free_ char *copy = hoist_malloc0(len + 1);
  if (len)
    memcpy(copy, data, len);
  return sbom_parse_record(s, kind, path, copy, len, origin, err);
}

/* ---------------------------------------------------------- scanners */

/* A tar member's name as a clean relative path, or NULL (one with "..":
 * not a record of this tree). */
static char *entry_path(const char *name) {
  int why = 0;
  char *p = name ? hoist_fs_path_clean(name, 0, &why) : NULL;
  if (p && !*p) {
    free(p);
    return NULL;
  }
  return p;
}

static int scan_archive(hoist_sbom *s, struct archive *a, hoist_sbom_origin origin,
                        hoist_err **err) {
  struct archive_entry *e;
  for (;;) {
    int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF)
      return 0;
    if (r < ARCHIVE_WARN)
      return hoist_err_set(err, HOIST_E_FORMAT, "layer: %s", archive_error_string(a));
    if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e))
      continue;
    _cleanup_free_ char *path = entry_path(archive_entry_pathname(e));
    sbom_record kind = path ? sbom_record_of(path) : REC_NONE;
    if (kind == REC_NONE)
      continue;
    if (!needs_data(kind)) {
      if (hoist_sbom_add_file(s, path, NULL, 0, origin, err) < 0)
        return -1;
      continue;
    }
    if (archive_entry_size_is_set(e) && archive_entry_size(e) > (int64_t)HOIST_SBOM_RECORD_MAX)
      return too_big(path, (uint64_t)archive_entry_size(e), err);
    _cleanup_buf_ hoist_buf b = HOIST_BUF_INIT(HOIST_SBOM_RECORD_MAX);
    char chunk[65536];
    for (;;) {
      la_ssize_t n = archive_read_data(a, chunk, sizeof chunk);
      if (n < 0)
        return hoist_err_set(err, HOIST_E_FORMAT, "layer: %s: %s", path, archive_error_string(a));
      if (n == 0)
        break;
      if (hoist_buf_append(&b, chunk, (size_t)n, NULL) < 0)
        return too_big(path, b.len + (size_t)n, err);
    }
    if (hoist_sbom_add_file(s, path, b.data ? b.data : "", b.len, origin, err) < 0)
      return -1;
  }
}

int hoist_sbom_scan_layer(hoist_sbom *s, int fd, hoist_sbom_origin origin, hoist_err **err) {
  struct archive *a = archive_read_new();
  if (!a)
    abort();
  void *locale = hoist_utf8_thread_enter();
  int r;
  if (archive_read_support_format_tar(a) != ARCHIVE_OK ||
      archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
      archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
      archive_read_open_fd(a, fd, 64 << 10) != ARCHIVE_OK)
    r = hoist_err_set(err, HOIST_E_FORMAT, "layer: %s", archive_error_string(a));
  else
    r = scan_archive(s, a, origin, err);
  archive_read_free(a);
  hoist_utf8_thread_leave(locale);
  return r;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The records below the directory open at fd (closed here), path its place
 * under the root ("" for the root), in name order, on device dev only. */
static int scan_dir(hoist_sbom *s, int fd, const char *path, dev_t dev, unsigned depth,
                    hoist_sbom_origin origin, hoist_err **err) {
  if (depth >= HOIST_FS_WALK_DEPTH) {
    close(fd);
    return hoist_err_set(err, HOIST_E_LIMIT, "%s: deeper than %d directories", path,
                         HOIST_FS_WALK_DEPTH);
  }
  DIR *d = fdopendir(fd);
  if (!d) {
    int e = errno;
    close(fd);
    return hoist_err_errno(err, e, "open %s", *path ? path : ".");
  }
  __attribute__((cleanup(hoist_strv_clear))) hoist_strv names = HOIST_STRV_INIT;
  struct dirent *de;
  while ((errno = 0, de = readdir(d)))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
      hoist_strv_add(&names, de->d_name);
  int e = errno;
  if (e) {
    closedir(d);
    return hoist_err_errno(err, e, "read %s", *path ? path : ".");
  }
  if (names.n)
    qsort(names.v, names.n, sizeof *names.v, cmp_names);
  int r = 0;
  for (size_t i = 0; i < names.n && r == 0; i++) {
    _cleanup_free_ char *sub =
        *path ? hoist_asprintf("%s/%s", path, names.v[i]) : hoist_strdup(names.v[i]);
    struct stat st;
    if (fstatat(dirfd(d), names.v[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno == ENOENT)
        continue;
      r = hoist_err_errno(err, errno, "stat %s", sub);
    } else if (S_ISDIR(st.st_mode) && st.st_dev == dev) {
      int sfd = openat(dirfd(d), names.v[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sfd < 0)
        r = errno == ENOENT ? 0 : hoist_err_errno(err, errno, "open %s", sub);
      else
        r = scan_dir(s, sfd, sub, dev, depth + 1, origin, err);
    } else if (S_ISREG(st.st_mode)) {
      sbom_record kind = sbom_record_of(sub);
      if (kind == REC_NONE)
        continue;
      if (!needs_data(kind)) {
        r = hoist_sbom_add_file(s, sub, NULL, 0, origin, err);
        continue;
      }
      if ((uint64_t)st.st_size > HOIST_SBOM_RECORD_MAX) {
        r = too_big(sub, (uint64_t)st.st_size, err);
        continue;
      }
      _cleanup_close_ int ffd = openat(dirfd(d), names.v[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      _cleanup_free_ char *data = NULL;
      size_t len = 0;
      if (ffd < 0)
        r = hoist_err_errno(err, errno, "open %s", sub);
      else if ((r = hoist_fs_read_fd(ffd, HOIST_SBOM_RECORD_MAX, sub, &data, &len, err)) == 0)
        r = hoist_sbom_add_file(s, sub, data, len, origin, err);
    }
  }
  closedir(d);
  return r < 0 ? r : 0;
}

int hoist_sbom_scan_tree(hoist_sbom *s, const char *root, hoist_sbom_origin origin,
                         hoist_err **err) {
  int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return hoist_err_errno(err, errno, "open %s", root);
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int e = errno;
    close(fd);
    return hoist_err_errno(err, e, "stat %s", root);
  }
  if (scan_dir(s, fd, "", st.st_dev, 0, origin, err) < 0)
    return hoist_err_wrap(err, "%s", root);
  return 0;
}
