/* hoist_build: the pipeline from a base image and a requirement file to a new image. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "build-private.h"
#include "hoist/fs.h"
#include "hoist/layer.h"
#include "hoist/store.h"
#include "hoist/unpack.h"

void hoist_build_opts_init(hoist_build_opts *o) {
  memset(o, 0, sizeof *o);
  o->source_date_epoch = -1;
  o->compression = HOIST_COMPRESS_GZIP;
}

static void say(const hoist_build_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(const hoist_build_opts *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *line = NULL;
  int n = vasprintf(&line, fmt, ap);
  va_end(ap);
  if (n < 0)
    abort();
  if (o->log)
    o->log(o->log_ctx, HOIST_BUILD_STEP, line, (size_t)n);
  else
    hoist_info("build: %s", line);
  free(line);
}

/* The base's image manifest for the platform (through an index when the tag
 * names one), and the manifest's digest. */
HOIST_WUR static int resolve_base(hoist_store *s, const char *tag, const hoist_platform *platform,
                                  hoist_manifest **out, char digest[HOIST_DIGEST_STR_LEN],
                                  hoist_err **err) {
  hoist_descriptor desc = {0};
  if (hoist_store_resolve(s, tag, &desc, err) < 0)
    return -1;
  _cleanup_platform_ hoist_platform *host = platform ? NULL : hoist_platform_host();
  int r = -1;
  for (int depth = 0; depth < 4; depth++) {
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    if ((r = hoist_store_read_blob(s, desc.digest, HOIST_MANIFEST_MAX, &data, &len, err)) < 0)
      break;
    const char *mt = hoist_manifest_detect(data, len);
    hoist_media_kind kind = hoist_media_kind_of(mt);
    if (kind == HOIST_MEDIA_MANIFEST) {
      snprintf(digest, HOIST_DIGEST_STR_LEN, "%s", desc.digest);
      r = hoist_manifest_parse_image(data, len, out, err);
      break;
    }
    r = -1;
    if (kind != HOIST_MEDIA_INDEX) {
      hoist_err_set(err, HOIST_E_FORMAT, "%s: not an image manifest or index", desc.digest);
      break;
    }
    _cleanup_index_ hoist_index *ix = NULL;
    if (hoist_index_parse(data, len, &ix, err) < 0)
      break;
    const hoist_descriptor *pick = hoist_index_find_platform(ix, platform ? platform : host);
    if (!pick) {
      _cleanup_free_ char *ps = hoist_platform_string(platform ? platform : host);
      hoist_err_set(err, ENOENT, "no manifest for platform %s in index %s", ps, desc.digest);
      break;
    }
    hoist_descriptor next;
    hoist_descriptor_copy(&next, pick);
    hoist_descriptor_clear(&desc);
    desc = next;
  }
  if (r < 0 && !*err)
    hoist_err_set(err, HOIST_E_FORMAT, "indexes nested too deeply");
  hoist_descriptor_clear(&desc);
  return r;
}

/* ----------------------------------------------------------- environment */

/* True when config c's Env sets name. */
static bool config_has_env(hoist_config *c, const char *name) {
  json_t *env = json_object_get(hoist_config_section(c), "Env");
  size_t i, nl = strlen(name);
  json_t *v;
  json_array_foreach(env, i, v) {
    const char *s = json_string_value(v);
    if (s && strncmp(s, name, nl) == 0 && s[nl] == '=')
      return true;
  }
  return false;
}

/* The install's environment: the image's Env, HOME (when the image has
 * none), the kind's variables, its package source settings,
 * SOURCE_DATE_EPOCH. Caller frees with hoist_strfreev. */
HOIST_WUR static int install_env(const hoist_build_opts *o, const hoist_build_kind *k,
                                 hoist_config *cfg, char ***out, hoist_err **err) {
  char *extra[64 + HOIST_MIRROR_COUNT];
  char *owned[HOIST_MIRROR_COUNT + 1] = {0};
  size_t n = 0, no = 0;
  if (!config_has_env(cfg, "HOME"))
    extra[n++] = "HOME=/root";
  for (const char *const *kv = k->env; kv && *kv && n < 60; kv++)
    extra[n++] = (char *)*kv;
  for (int m = 0; m < HOIST_MIRROR_COUNT; m++) {
    const char *v = o->mirrors[m];
    if ((k->mirrors & HOIST_MIRROR_BIT(m)) && v && *v)
      extra[n++] = owned[no++] =
          hoist_asprintf("%s=%s", hoist_build_mirror_info((hoist_mirror)m)->env, v);
  }
  if (o->source_date_epoch >= 0)
    extra[n++] = owned[no++] = hoist_asprintf("SOURCE_DATE_EPOCH=%" PRId64, o->source_date_epoch);
  extra[n] = NULL;
  int rc = hoist_sandbox_env(cfg, extra, out, err);
  for (size_t i = 0; i < no; i++)
    free(owned[i]);
  return rc;
}

/* ------------------------------------------------------------- install */

typedef struct install_log {
  const hoist_build_opts *o;
  char last_cmd[512]; /* the last command the shell traced ("+ ...") */
} install_log;

static void on_line(void *ctx, bool is_stderr, const char *line, size_t len) {
  install_log *il = ctx;
  if (is_stderr && len > 2 && line[0] == '+' && line[1] == ' ') {
    size_t n = len - 2 < sizeof il->last_cmd - 1 ? len - 2 : sizeof il->last_cmd - 1;
    memcpy(il->last_cmd, line + 2, n);
    il->last_cmd[n] = 0;
  }
  if (il->o->log)
    il->o->log(il->o->log_ctx, is_stderr ? HOIST_BUILD_STDERR : HOIST_BUILD_STDOUT, line, len);
}

/* True when the tree at root has an executable regular file /bin/extend
 * (resolved inside the tree). */
static bool has_extend(const char *root) {
  _cleanup_close_ int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rfd < 0)
    return false;
  hoist_err *e = NULL;
  _cleanup_close_ int fd = hoist_fs_open_in_root(rfd, "bin/extend", O_PATH | O_CLOEXEC, 0, &e);
  hoist_err_free(e);
  struct stat st;
  return fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

HOIST_WUR static int write_file_at(int rootfd, const char *dir, mode_t dir_mode, const char *name,
                                   const void *data, size_t len, hoist_err **err) {
  _cleanup_close_ int dfd = hoist_fs_mkdir_p_in_root(rootfd, dir, dir_mode, err);
  if (dfd < 0)
    return -1;
  char proc[64]; /* dfd may be an O_PATH descriptor, which fchmod refuses */
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", dfd);
  if (chmod(proc, dir_mode) < 0)
    return hoist_err_errno(err, errno, "chmod %s", dir);
  return hoist_fs_write_atomic(dfd, name, data, len, 0644, err);
}

/* The TCP port of a mirror URL on the host's loopback ("http://127.0.0.1:3141/simple",
 * "http://localhost/"), or 0 for any other mirror (reached as egress). */
static uint16_t loopback_port(const char *url) {
  const char *p = strstr(url, "://");
  if (!p)
    return 0;
  bool tls = strncmp(url, "https:", 6) == 0;
  p += 3;
  const char *at = strpbrk(p, "@/");
  if (at && *at == '@')
    p = at + 1;
  const char *end;
  if (*p == '[') {
    if (strncmp(p, "[::1]", 5) != 0)
      return 0;
    end = p + 5;
  } else {
    end = p + strcspn(p, ":/?#");
    size_t n = (size_t)(end - p);
    bool lo = (n == 9 && strncmp(p, "localhost", 9) == 0) || (n >= 7 && strncmp(p, "127.", 4) == 0);
    if (!lo)
      return 0;
  }
  if (*end != ':')
    return tls ? 443 : 80;
  char *stop;
  unsigned long port = strtoul(end + 1, &stop, 10);
  if (stop == end + 1 || port == 0 || port > 65535 || (*stop && !strchr("/?#", *stop)))
    return 0;
  return (uint16_t)port;
}

/* Runs the install in the sandbox so over lower, leaving its changes (plus
 * /tmp/<file>) in upper. The file reaches the command bound read-only at
 * /tmp/<file> from tmp/<file> (a host directory beside upper). */
HOIST_WUR static int run_install(const hoist_build_opts *o, const hoist_build_kind *k,
                                 hoist_config *cfg, hoist_sandbox_opts *so, const char *lower,
                                 const char *tmp, const char *upper, bool extend, hoist_err **err) {
  _cleanup_close_ int tfd = open(tmp, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (tfd < 0)
    return hoist_err_errno(err, errno, "open %s", tmp);
  if (hoist_fs_write_atomic(tfd, k->file, o->file, o->file_len, 0644, err) < 0)
    return hoist_err_wrap(err, "stage %s", k->file);
  _cleanup_free_ char *host_file = hoist_asprintf("%s/%s", tmp, k->file);
  _cleanup_free_ char *image_file = hoist_asprintf("/tmp/%s", k->file);
  hoist_sandbox_bind bind = {.source = host_file, .target = image_file};

  char **env = NULL;
  int r = install_env(o, k, cfg, &env, err);
  if (r < 0)
    return r;
  _cleanup_free_ char *script =
      hoist_asprintf("set -ex\n%s", extend ? "exec /bin/extend\n" : k->script);
  char *argv[] = {"/bin/sh", "-c", script, NULL};
  install_log il = {.o = o};
  so->lower = lower;
  so->upper = upper;
  so->work = NULL;
  so->argv = argv;
  so->env = env;
  so->cwd = NULL;
  so->user = NULL;
  so->on_line = on_line;
  so->on_line_ctx = &il;
  so->log_fd = -1;
  so->binds = &bind;
  so->n_binds = 1;
  hoist_sandbox_result res;
  say(o, "running %s in the sandbox", extend ? "/bin/extend" : k->name);
  r = hoist_sandbox_run(so, &res, err);
  hoist_strfreev(env);
  if (r < 0)
    return hoist_err_wrap(err, "sandbox");
  const char *what = il.last_cmd[0] ? il.last_cmd : "/bin/sh -c <script>";
  _cleanup_free_ char *end = hoist_sandbox_end_text(so, &res);
  if (res.end == HOIST_SANDBOX_TIMED_OUT)
    return hoist_err_set(err, HOIST_E_BUILD_FAILED, "%s install: `%s` %s", k->name, what, end);
  if (res.end == HOIST_SANDBOX_DISK_FULL || res.end == HOIST_SANDBOX_TOO_DEEP)
    return hoist_err_set(err, HOIST_E_BUILD_FAILED, "build stopped: %s", end);
  if (end)
    return hoist_err_set(err, HOIST_E_BUILD_FAILED, "build killed: %s", end);
  _cleanup_free_ char *tmp_note =
      res.tmp_full
          ? hoist_asprintf(" (/tmp was full: it holds at most %" PRIu64 " bytes)",
                           so->tmp_bytes ? so->tmp_bytes : (uint64_t)HOIST_SANDBOX_DEFAULT_TMP)
          : hoist_strdup("");
  if (WIFSIGNALED(res.status))
    return hoist_err_set(err, HOIST_E_BUILD_FAILED, "%s install: `%s` killed by signal %d%s",
                         k->name, what, WTERMSIG(res.status), tmp_note);
  if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0)
    return hoist_err_set(err, HOIST_E_BUILD_FAILED, "%s install: `%s` exited with status %d%s",
                         k->name, what, WIFEXITED(res.status) ? WEXITSTATUS(res.status) : -1,
                         tmp_note);
  say(o, "install done");

  /* the file stays where the reference's COPY puts it */
  _cleanup_close_ int ufd = open(upper, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (ufd < 0)
    return hoist_err_errno(err, errno, "open %s", upper);
  mode_t tmp_mode = 01777;
  struct stat st;
  _cleanup_close_ int lfd = open(lower, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (lfd >= 0 && fstatat(lfd, "tmp", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
    tmp_mode = st.st_mode & 07777;
  if (write_file_at(ufd, "tmp", tmp_mode, k->file, o->file, o->file_len, err) < 0)
    return hoist_err_wrap(err, "place /tmp/%s", k->file);
  return 0;
}

/* Removes build-* work trees under workroot that no running build holds (a
 * build keeps a lock on its tree): left by builds that were killed. Trees
 * younger than a minute may not be locked yet and are left alone. */
static void sweep_work(const char *workroot) {
  _cleanup_close_ int dfd = open(workroot, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int fd2 = dfd >= 0 ? fcntl(dfd, F_DUPFD_CLOEXEC, 3) : -1;
  DIR *d = fd2 >= 0 ? fdopendir(fd2) : NULL;
  if (!d) {
    if (fd2 >= 0)
      close(fd2);
    return;
  }
  time_t now = time(NULL);
  struct dirent *de;
  while ((de = readdir(d))) {
    struct stat st;
    if (strncmp(de->d_name, "build-", 6) != 0 ||
        fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode) ||
        now - st.st_mtime < 60)
      continue;
    _cleanup_close_ int t =
        openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (t < 0 || flock(t, LOCK_EX | LOCK_NB) < 0)
      continue;
    hoist_err *e = NULL;
    if (hoist_fs_rm_rf_at(dfd, de->d_name, &e) == 0)
      hoist_info("build: removed the work tree of a build that died: %s/%s", workroot, de->d_name);
    hoist_err_free(e);
  }
  closedir(d);
}

/* The install's layer written into the cache layout and tagged by key. */
HOIST_WUR static int make_layer(const hoist_build_opts *o, const hoist_build_kind *k,
                                hoist_store *bstore, const hoist_manifest *m, hoist_config *cfg,
                                hoist_store *cache, const char *key_hex, hoist_descriptor *layer,
                                char diff_id[], bool *used_extend, hoist_err **err) {
  /* the sandbox: the caller's settings, the kind's loopback mirrors reachable */
  hoist_sandbox_opts so = {0};
  if (o->sandbox)
    so = *o->sandbox;
  _cleanup_free_ uint16_t *ports =
      hoist_calloc(so.n_allow_ports + HOIST_MIRROR_COUNT, sizeof *ports);
  if (so.n_allow_ports)
    memcpy(ports, so.allow_ports, so.n_allow_ports * sizeof *ports);
  for (int m = 0; m < HOIST_MIRROR_COUNT; m++) {
    const char *v = o->mirrors[m];
    uint16_t port =
        (k->mirrors & HOIST_MIRROR_BIT(m)) && v && hoist_build_mirror_info((hoist_mirror)m)->is_url
            ? loopback_port(v)
            : 0;
    if (port)
      ports[so.n_allow_ports++] = port;
  }
  so.allow_ports = ports;
  /* the base is unpacked with the owners the install's user namespace sees */
  hoist_idmap um[2], gm[2];
  size_t nu = 0, ng = 0;
  if (hoist_sandbox_id_maps(&so, um, &nu, gm, &ng, err) < 0)
    return hoist_err_wrap(err, "sandbox");
  hoist_unpack_opts uo = {.owners = HOIST_OWNER_AUTO};
  if (geteuid() == 0 && nu) {
    uo.uid_map = um;
    uo.n_uid_map = nu;
    uo.gid_map = gm;
    uo.n_gid_map = ng;
  }
  hoist_unpack_report rep = {0};
  _cleanup_free_ char *lower = NULL;
  bool hit = false;
  /* held until the layer is written: prune leaves the tree alone */
  _cleanup_close_ int hold = -1;
  int r = hoist_unpack_cached(bstore, m, o->rootfs_dir, &uo, &lower, &hit, &hold, &rep, err);
  hoist_unpack_report_clear(&rep);
  if (r < 0)
    return hoist_err_wrap(err, "base rootfs");
  say(o, "base rootfs %s (%s)", lower, hit ? "cached" : "unpacked");
  *used_extend = has_extend(lower);
  if (*used_extend)
    say(o, "base has /bin/extend: running it instead of the %s recipe", k->name);

  _cleanup_free_ char *workroot = hoist_asprintf("%s/work", hoist_store_dir(cache));
  if (mkdir(workroot, 0700) < 0 && errno != EEXIST)
    return hoist_err_errno(err, errno, "mkdir %s", workroot);
  sweep_work(workroot);
  _cleanup_free_ char *tmp = hoist_asprintf("%s/build-XXXXXX", workroot);
  if (!mkdtemp(tmp))
    return hoist_err_errno(err, errno, "mkdtemp %s", tmp);
  /* held until the end: sweep_work of other builds leaves the tree alone */
  _cleanup_close_ int lock = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock >= 0)
    flock(lock, LOCK_EX);
  _cleanup_free_ char *upper = hoist_asprintf("%s/upper", tmp);
  if (mkdir(upper, 0755) < 0) {
    r = hoist_err_errno(err, errno, "mkdir %s", upper);
    goto out;
  }
  if ((r = run_install(o, k, cfg, &so, lower, tmp, upper, *used_extend, err)) < 0)
    goto out;

  /* owners as the image sees them */
  hoist_layer_options lo = HOIST_LAYER_OPTIONS_INIT;
  lo.compression = o->compression;
  lo.threads = o->compress_threads;
  lo.source_date_epoch = o->source_date_epoch;
  lo.uid_map = um;
  lo.n_uid_map = nu;
  lo.gid_map = gm;
  lo.n_gid_map = ng;
  hoist_layer_source src = {.kind = HOIST_LAYER_OVERLAY, .dir = upper};
  hoist_layer_result res;
  {
    _cleanup_writer_ hoist_writer *w = NULL;
    if ((r = hoist_store_blob_writer(cache, NULL, -1, &w, err)) < 0 ||
        (r = hoist_layer_write(&src, &lo, w, &res, err)) < 0) {
      hoist_err_wrap(err, "layer of %s", upper);
      goto out;
    }
  }
  layer->media_type = hoist_strdup(res.media_type);
  layer->digest = hoist_strdup(res.digest);
  layer->size = (int64_t)res.size;
  snprintf(diff_id, HOIST_DIGEST_STR_LEN, "%s", res.diff_id);
  char epoch[24] = "none";
  if (o->source_date_epoch >= 0)
    snprintf(epoch, sizeof epoch, "%" PRId64, o->source_date_epoch);
  char created[24];
  snprintf(created, sizeof created, "%lld", (long long)time(NULL));
  if ((r = hoist_descriptor_set_annotation(layer, CACHE_DIFF_ID, res.diff_id, err)) < 0 ||
      (r = hoist_descriptor_set_annotation(layer, CACHE_EPOCH, epoch, err)) < 0 ||
      (r = hoist_descriptor_set_annotation(layer, CACHE_CREATED, created, err)) < 0 ||
      (*used_extend &&
       (r = hoist_descriptor_set_annotation(layer, CACHE_EXTEND, "true", err)) < 0) ||
      (r = hoist_store_tag(cache, key_hex, layer, err)) < 0) {
    hoist_err_wrap(err, "build cache");
    goto out;
  }
  say(o, "layer %s (%" PRIu64 " bytes, %" PRIu64 " entries)", res.digest, res.size, res.n_entries);
out:;
  hoist_err *e = NULL;
  _cleanup_free_ char *base = hoist_strdup(tmp);
  char *slash = strrchr(base, '/');
  *slash = 0;
  _cleanup_close_ int wfd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (wfd >= 0 && hoist_fs_rm_rf_at(wfd, slash + 1, &e) < 0)
    hoist_warn("build: cannot remove %s", tmp);
  hoist_err_free(e);
  return r;
}

bool build_cache_entry_fits(const hoist_build_opts *o, const hoist_descriptor *layer,
                            char diff_id[], bool *extend) {
  char epoch[24] = "none";
  if (o->source_date_epoch >= 0)
    snprintf(epoch, sizeof epoch, "%" PRId64, o->source_date_epoch);
  const char *d = hoist_descriptor_annotation(layer, CACHE_DIFF_ID);
  const char *ep = hoist_descriptor_annotation(layer, CACHE_EPOCH);
  if (!d || !hoist_digest_valid(d) || !ep || strcmp(ep, epoch) != 0 ||
      hoist_media_layer_compression(layer->media_type) != (int)o->compression)
    return false;
  snprintf(diff_id, HOIST_DIGEST_STR_LEN, "%s", d);
  const char *x = hoist_descriptor_annotation(layer, CACHE_EXTEND);
  *extend = x && strcmp(x, "true") == 0;
  return true;
}

/* A cached layer for key_hex, when its entry and blob are both there. */
static bool cache_lookup(const hoist_build_opts *o, hoist_store *cache, const char *key_hex,
                         hoist_descriptor *layer, char diff_id[], bool *extend) {
  hoist_err *e = NULL;
  if (hoist_store_resolve(cache, key_hex, layer, &e) < 0) {
    hoist_err_free(e);
    return false;
  }
  if (!build_cache_entry_fits(o, layer, diff_id, extend) ||
      !hoist_store_touch_blob(cache, layer->digest)) { /* its last use, for prune */
    hoist_descriptor_clear(layer);
    return false;
  }
  return true;
}

/* The registry cache's entry for key_hex; a registry that cannot say is a
 * miss, with a line saying why. */
static bool regcache_hit(const hoist_build_opts *o, const char *key_hex, hoist_descriptor *layer,
                         char diff_id[], bool *extend, hoist_transport_source **from) {
  hoist_err *e = NULL;
  int r = build_regcache_lookup(o, key_hex, layer, diff_id, extend, from, &e);
  if (r < 0) {
    say(o, "registry cache %s/%s not read: %s", o->cache_from->domain, o->cache_from->path, e->msg);
    hoist_err_free(e);
  }
  return r == 1;
}

/* ---------------------------------------------------------- new config */

typedef struct edit_ctx {
  const hoist_build_opts *o;
  const hoist_build_kind *k;
  const hoist_build_result *res;
} edit_ctx;

HOIST_WUR static int edit_config(void *ctx, hoist_config *cfg, hoist_err **err) {
  edit_ctx *ec = ctx;
  if (ec->o->base_name &&
      hoist_config_set_label(cfg, "org.opencontainers.image.base.name", ec->o->base_name, err) < 0)
    return -1;
  if (hoist_config_set_label(cfg, "org.opencontainers.image.base.digest", ec->res->base_digest,
                             err) < 0)
    return -1;
  if (ec->res->used_extend)
    return 0;
  json_t *env = json_object_get(hoist_config_section(cfg), "Env");
  for (const char *const *kv = ec->k->config; kv && *kv; kv++) {
    const char *eq = strchr(*kv, '=');
    _cleanup_free_ char *name = strndup(*kv, (size_t)(eq - *kv));
    const char *old = NULL;
    size_t i, nl = strlen(name);
    json_t *v;
    json_array_foreach(env, i, v) {
      const char *s = json_string_value(v);
      if (s && strncmp(s, name, nl) == 0 && s[nl] == '=')
        old = s + nl + 1;
    }
    _cleanup_free_ char *value = old && *old && strcmp(old, eq + 1) != 0
                                     ? hoist_asprintf("%s:%s", eq + 1, old)
                                     : hoist_strdup(eq + 1);
    if (hoist_config_set_env(cfg, name, value, err) < 0)
      return -1;
  }
  return 0;
}

/* ------------------------------------------------------------ pipeline */

int hoist_build(const hoist_build_opts *o, hoist_build_result *out, hoist_err **err) {
  memset(out, 0, sizeof *out);
  const hoist_build_kind *k = hoist_build_kind_find(o->kind);
  if (!k) {
    size_t n;
    const hoist_build_kind *all = hoist_build_kinds(&n);
    hoist_buf names = HOIST_BUF_INIT(0);
    for (size_t i = 0; i < n; i++)
      if (hoist_buf_appendf(&names, NULL, "%s%s", i ? ", " : "", all[i].name) < 0)
        break; /* a message: the names that fit */
    int r = hoist_err_set(err, EINVAL, "unknown kind '%s' (known: %s)", o->kind ? o->kind : "",
                          names.data);
    hoist_buf_free(&names);
    return r;
  }
  if (o->file_len > HOIST_BUILD_FILE_MAX)
    return hoist_err_set(err, HOIST_E_LIMIT, "%s is %zu bytes (at most %u)", k->file, o->file_len,
                         HOIST_BUILD_FILE_MAX);
  if (!o->target || !o->base_dir)
    return hoist_err_set(err, EINVAL, "needs a base and a target");
  if (!o->cache_dir || !o->rootfs_dir)
    return hoist_err_set(err, EINVAL, "needs a build cache and a rootfs cache directory");
  hoist_sha256_of(o->file ? o->file : "", o->file_len, out->file_digest);

  _cleanup_store_ hoist_store *bstore = NULL;
  _cleanup_manifest_ hoist_manifest *m = NULL;
  _cleanup_config_ hoist_config *cfg = NULL;
  _cleanup_free_ char *cdata = NULL;
  size_t clen = 0;
  int r;
  if ((r = hoist_store_open(o->base_dir, false, &bstore, err)) < 0 ||
      (r = resolve_base(bstore, o->base_tag, o->platform, &m, out->base_digest, err)) < 0 ||
      (r = hoist_store_read_blob(bstore, m->config.digest, HOIST_MANIFEST_MAX, &cdata, &clen,
                                 err)) < 0 ||
      (r = hoist_config_parse(cdata, clen, &cfg, err)) < 0)
    return hoist_err_wrap(err, "base %s", o->base_name ? o->base_name : o->base_dir);
  _cleanup_platform_ hoist_platform *plat = hoist_config_platform(cfg);
  hoist_build_cache_key(k, out->base_digest, plat, o->file, o->file_len, o->mirrors,
                        out->cache_key);
  const char *key_hex = out->cache_key + 7;

  const char *cache_dir = o->cache_dir;
  _cleanup_store_ hoist_store *cache = NULL;
  /* a cached layer is taken on its tag's word: the layout must be the
   * caller's own, not one another user made or may write to */
  _cleanup_close_ int cachefd = -1;
  if ((r = hoist_fs_mkdir_p(AT_FDCWD, cache_dir, 0755, &cachefd, err)) < 0 ||
      (r = hoist_fs_check_owned(cachefd, cache_dir, err)) < 0 ||
      (r = hoist_store_open(cache_dir, true, &cache, err)) < 0)
    return hoist_err_wrap(err, "build cache");

  hoist_descriptor layer = {0};
  char diff_id[HOIST_DIGEST_STR_LEN] = "";
  /* the blob's source when the registry cache answered */
  _cleanup_transport_source_ hoist_transport_source *from = NULL;
  if (!o->no_cache && cache_lookup(o, cache, key_hex, &layer, diff_id, &out->used_extend)) {
    out->cache_hit = true;
    say(o, "cache hit %s: layer %s", out->cache_key, layer.digest);
  } else if (!o->no_cache && o->cache_from && o->cache_registry &&
             regcache_hit(o, key_hex, &layer, diff_id, &out->used_extend, &from)) {
    out->cache_hit = out->cache_remote = true;
    say(o, "cache hit %s in %s/%s: layer %s", out->cache_key, o->cache_from->domain,
        o->cache_from->path, layer.digest);
  } else {
    say(o, "%s %s: building (%s, %s %s)", o->no_cache ? "cache bypassed" : "cache miss",
        out->cache_key, k->name, k->file, out->file_digest);
    if ((r = make_layer(o, k, bstore, m, cfg, cache, key_hex, &layer, diff_id, &out->used_extend,
                        err)) < 0) {
      hoist_descriptor_clear(&layer);
      return r;
    }
    if (o->cache_to && o->cache_registry) {
      /* a cache that cannot be written costs the next build its hit, not
       * this build its image */
      hoist_err *e = NULL;
      if (build_regcache_store(o, cache_dir, key_hex, &layer, &e) < 0) {
        say(o, "registry cache %s/%s not written: %s", o->cache_to->domain, o->cache_to->path,
            e->msg);
        hoist_err_free(e);
      } else {
        say(o, "registry cache %s/%s: entry %s", o->cache_to->domain, o->cache_to->path, key_hex);
      }
    }
  }
  _cleanup_transport_source_ hoist_transport_source *base = NULL;
  hoist_image_append_prebuilt pre = {.desc = layer, .diff_id = diff_id};
  _cleanup_free_ char *created_by =
      hoist_asprintf("hoist build --kind %s: /tmp/%s %s", k->name, k->file, out->file_digest);
  edit_ctx ec = {o, k, out};
  hoist_image_append_options ao = {
      .layer = HOIST_LAYER_OPTIONS_INIT,
      .platform = o->platform,
      .created_by = created_by,
      .prebuilt = &pre,
      .edit_config = edit_config,
      .edit_ctx = &ec,
  };
  /* the layer is prebuilt: the epoch only sets the image's created time */
  ao.layer.source_date_epoch = o->source_date_epoch;
  const char *built = hoist_descriptor_annotation(&layer, CACHE_CREATED);
  if (o->source_date_epoch < 0 && built)
    ao.layer.source_date_epoch = strtoll(built, NULL, 10);
  if ((r = hoist_transport_layout_source(o->base_dir, o->base_tag, &base, err)) < 0 ||
      (!from && (r = hoist_transport_layout_source(cache_dir, NULL, &from, err)) < 0)) {
    hoist_descriptor_clear(&layer);
    return r;
  }
  hoist_transport_source_set_origin(base, o->base_origin);
  pre.from = from;
  r = hoist_image_append(base, o->target, NULL, &ao, &out->image, err);
  hoist_descriptor_clear(&layer);
  if (r < 0)
    return r;
  static const char *const how[] = {"already there", "mounted", "copied"};
  say(o, "layer %s: %s", out->image.layer.digest, how[out->image.layer_how]);
  say(o, "image %s (%zu layers)", out->image.manifest_digest, out->image.n_layers);
  return 0;
}
