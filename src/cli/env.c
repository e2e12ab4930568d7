#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "env.h"
#include "hoist/layer.h"

const char *cli_env(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

/* $HOME, or "." when unset (paths under it are then relative). */
static const char *home(void) {
  const char *h = cli_env("HOME");
  return h ? h : ".";
}

/* A positive decimal number, or 0 when text is NULL or not one. */
static uint64_t positive(const char *text) {
  if (!text)
    return 0;
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  return errno || *end || text[0] == '-' ? 0 : v;
}

/* podman's auth file: $XDG_RUNTIME_DIR/containers/auth.json, else
 * /run/containers/UID/auth.json. Caller frees. */
static char *default_auth_file(void) {
  const char *xdg = cli_env("XDG_RUNTIME_DIR");
  if (xdg)
    return hoist_asprintf("%s/containers/auth.json", xdg);
  return hoist_asprintf("/run/containers/%u/auth.json", (unsigned)getuid());
}

char *cli_env_auth_file(const char *given) {
  if (given)
    return hoist_strdup(given);
  const char *env = cli_env("REGISTRY_AUTH_FILE");
  return env ? hoist_strdup(env) : default_auth_file();
}

/* The registry defaults that are paths, made once and kept for the life of
 * the process (the options point at them): a verb that opens two clients
 * (copy's source and destination) gets the same strings twice. */
static struct {
  const char *auth_files[4];
  const char *certs_d[4];
} reg_paths;

static void registry_paths(void) {
  if (reg_paths.auth_files[0])
    return;
  const char *h = cli_env("HOME");
  const char *dcfg = cli_env("DOCKER_CONFIG");
  size_t n = 0;
  reg_paths.auth_files[n++] = default_auth_file();
  if (h)
    reg_paths.auth_files[n++] = hoist_asprintf("%s/.config/containers/auth.json", h);
  if (dcfg)
    reg_paths.auth_files[n++] = hoist_asprintf("%s/config.json", dcfg);
  else if (h)
    reg_paths.auth_files[n++] = hoist_asprintf("%s/.docker/config.json", h);
  n = 0;
  if (h)
    reg_paths.certs_d[n++] = hoist_asprintf("%s/.config/containers/certs.d", h);
  reg_paths.certs_d[n++] = "/etc/containers/certs.d";
  reg_paths.certs_d[n++] = "/etc/docker/certs.d";
}

void cli_env_registry(hoist_registry_opts *o) {
  registry_paths();
  if (!o->secret_file)
    o->secret_file = cli_env("REGISTRY_SECRET");
  if (!o->auth_file)
    o->auth_file = cli_env("REGISTRY_AUTH_FILE");
  if (!o->auth_files)
    o->auth_files = reg_paths.auth_files;
  if (!o->certs_d)
    o->certs_d = reg_paths.certs_d;
  if (!o->chunk_size)
    o->chunk_size = positive(cli_env("HOIST_CHUNK_SIZE"));
  if (!o->page_size) {
    uint64_t p = positive(cli_env("HOIST_PAGE_SIZE"));
    o->page_size = p <= 100000 ? (unsigned)p : 0;
  }
  if (!o->blob_locations) {
    static char *locations;
    if (!locations)
      locations = cli_env_blob_locations();
    o->blob_locations = locations;
  }
  if (!o->tmp_dir)
    o->tmp_dir = cli_env_tmpdir(NULL);
}

char *cli_env_blob_locations(void) {
  const char *b = cli_env("HOIST_BLOB_LOCATIONS");
  const char *c = cli_env("HOIST_CACHE");
  const char *x = cli_env("XDG_CACHE_HOME");
  if (b)
    return strcmp(b, "none") == 0 ? NULL : hoist_strdup(b);
  if (c)
    return hoist_asprintf("%s/blob-locations.db", c);
  if (x)
    return hoist_asprintf("%s/hoist/blob-locations.db", x);
  return hoist_asprintf("%s/.cache/hoist/blob-locations.db", home());
}

void cli_env_regconf(const char *given, cli_regconf_paths *out) {
  static char *user_file, *user_dir;
  const char *h = cli_env("HOME");
  if (h && !user_file) {
    user_file = hoist_asprintf("%s/.config/containers/registries.conf", h);
    user_dir = hoist_asprintf("%s/.config/containers/registries.conf.d", h);
  }
  *out = (cli_regconf_paths){0};
  const char *file = given ? given : cli_env("CONTAINERS_REGISTRIES_CONF");
  size_t n = 0;
  if (file) {
    out->file = file;
    out->required = true;
  } else if (user_file && access(user_file, F_OK) == 0) {
    /* the user's file replaces the system's, and its drop-ins too */
    out->file = user_file;
    out->dirs[n++] = user_dir;
    return;
  } else {
    out->file = "/etc/containers/registries.conf";
  }
  out->dirs[n++] = "/etc/containers/registries.conf.d";
  if (user_dir)
    out->dirs[n++] = user_dir;
}

char *cli_env_former_registries_json(void) {
  const char *env = cli_env("HOIST_REGISTRIES_CONF");
  if (env)
    return hoist_strdup(env);
  const char *xdg = cli_env("XDG_CONFIG_HOME");
  const char *h = cli_env("HOME");
  char *path = xdg ? hoist_asprintf("%s/hoist/registries.json", xdg)
               : h ? hoist_asprintf("%s/.config/hoist/registries.json", h)
                   : NULL;
  if (path && access(path, F_OK) != 0)
    free(steal_pointer(&path));
  return path;
}

char *cli_env_image_store(void) {
  const char *images = cli_env("HOIST_IMAGES");
  const char *cache = cli_env("HOIST_CACHE");
  if (images)
    return hoist_strdup(images);
  if (cache)
    return hoist_asprintf("%s/images", cache);
  return hoist_asprintf("%s/.cache/hoist/images", home());
}

char *cli_env_build_cache(void) {
  _cleanup_free_ char *store = cli_env_image_store();
  return hoist_asprintf("%s/build-cache", store);
}

char *cli_env_rootfs_cache(void) {
  const char *r = cli_env("HOIST_ROOTFS_CACHE");
  const char *c = cli_env("HOIST_CACHE");
  const char *x = cli_env("XDG_CACHE_HOME");
  if (r)
    return hoist_strdup(r);
  if (c)
    return hoist_asprintf("%s/rootfs", c);
  if (x)
    return hoist_asprintf("%s/hoist/rootfs", x);
  return hoist_asprintf("%s/.cache/hoist/rootfs", home());
}

char *cli_env_serve_data(void) {
  const char *c = cli_env("HOIST_CACHE");
  if (c)
    return hoist_asprintf("%s/serve", c);
  return hoist_asprintf("%s/.cache/hoist/serve", home());
}

/* A decimal number from 0 to max into *out; false for anything else. */
static bool decimal(const char *text, uint64_t max, uint64_t *out) {
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno || end == text || *end || text[0] < '0' || text[0] > '9' || v > max)
    return false;
  *out = v;
  return true;
}

int cli_env_listen_fds(char **names, hoist_err **err) {
  *names = NULL;
  const char *v;
  _cleanup_free_ char *pid = (v = cli_env("LISTEN_PID")) ? hoist_strdup(v) : NULL;
  _cleanup_free_ char *fds = (v = cli_env("LISTEN_FDS")) ? hoist_strdup(v) : NULL;
  _cleanup_free_ char *fdnames = (v = cli_env("LISTEN_FDNAMES")) ? hoist_strdup(v) : NULL;
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
  if (!pid || !fds)
    return 0;
  uint64_t p, n;
  if (!decimal(pid, INT32_MAX, &p) || p == 0)
    return hoist_err_set(err, EINVAL, "LISTEN_PID=%s: not a process id", pid);
  if ((pid_t)p != getpid())
    return 0;
  /* systemd passes a few at most; the bound keeps fd numbers in an int */
  if (!decimal(fds, 65536, &n))
    return hoist_err_set(err, EINVAL, "LISTEN_FDS=%s: not a number of descriptors", fds);
  *names = steal_pointer(&fdnames);
  return (int)n;
}

const char *cli_env_tmpdir(const char *fallback) {
  const char *t = cli_env("TMPDIR");
  return t ? t : fallback;
}

int cli_env_epoch(int64_t *out, hoist_err **err) {
  *out = -1;
  const char *s = cli_env("SOURCE_DATE_EPOCH");
  if (!s)
    return 0;
  if (hoist_layer_epoch_parse(s, out, err) < 0)
    return hoist_err_wrap(err, "SOURCE_DATE_EPOCH");
  return 0;
}

hoist_log_level cli_env_log_level(void) {
  const char *v = cli_env("HOIST_LOG");
  static const char *const names[] = {"error", "warn", "info", "debug"};
  for (int i = 0; v && i < 4; i++)
    if (strcasecmp(v, names[i]) == 0)
      return (hoist_log_level)i;
  return HOIST_LOG_WARN;
}

char *cli_env_wskprops(void) {
  const char *path = cli_env("WSK_CONFIG_FILE");
  return path ? hoist_strdup(path) : hoist_asprintf("%s/.wskprops", home());
}

extern char **environ;

const char *const *cli_env_all(void) { return (const char *const *)environ; }
