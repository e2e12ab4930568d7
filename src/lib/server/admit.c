/* server: which builds a user may start: the base images they may extend
 * (their own namespace on the service's registry, or a repository an
 * allowed_sources pattern names) and how many may wait in the queue. */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <string.h>

#include "executor.h"
#include "hoist/ref.h"
#include "hoist/registry.h"
#include "server-private.h"

#define DEFAULT_PER_USER_QUEUE 20
#define MAX_PATTERNS 256

/* A pattern's or a reference's registry and repository, as Docker reads them:
 * a first component with a '.' or a ':', or "localhost", is the registry
 * (docker.io otherwise), and a Docker Hub repository of one component is in
 * library/. */
static void split_repo(const char *s, char **domain, char **path) {
  const char *slash = strchr(s, '/');
  size_t first = slash ? (size_t)(slash - s) : strlen(s);
  bool has_domain = slash && (memchr(s, '.', first) || memchr(s, ':', first) ||
                              (first == 9 && strncmp(s, "localhost", 9) == 0));
  *domain = has_domain ? strndup(s, first) : hoist_strdup("docker.io");
  const char *p = has_domain ? slash + 1 : s;
  if (strcmp(*domain, "docker.io") == 0 && !strchr(p, '/'))
    *path = hoist_asprintf("library/%s", p);
  else
    *path = hoist_strdup(p);
  if (!*domain)
    abort();
}

/* Repository characters, and the glob's '*' and '?'. */
static bool pattern_ok(const char *p) {
  if (!*p || strlen(p) > HOIST_REF_MAX_LEN)
    return false;
  for (const char *c = p; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || strchr("._-/:*?", *c)))
      return false;
  return p[0] != '/' && p[strlen(p) - 1] != '/' && !strstr(p, "//");
}

int server_config_admit(json_t *o, server_config *c, hoist_err **err) {
  c->per_user_queue = DEFAULT_PER_USER_QUEUE;
  json_t *q = json_object_get(o, "per_user_queue");
  if (q) {
    if (!json_is_integer(q) || json_integer_value(q) < 1 || json_integer_value(q) > 100000)
      return hoist_err_set(err, EINVAL, "per_user_queue: expected a number from 1 to 100000");
    c->per_user_queue = (int)json_integer_value(q);
  }
  json_t *a = json_object_get(o, "allowed_sources");
  size_t n = json_array_size(a);
  if (a && (!json_is_array(a) || n > MAX_PATTERNS))
    return hoist_err_set(err, EINVAL, "allowed_sources: expected a list of at most %d patterns",
                         MAX_PATTERNS);
  c->allowed_sources = hoist_calloc(n + 1, sizeof *c->allowed_sources);
  for (size_t i = 0; i < n; i++) {
    const char *p = json_string_value(json_array_get(a, i));
    if (!p || !pattern_ok(p))
      return hoist_err_set(err, EINVAL,
                           "allowed_sources: \"%s\": expected a repository pattern such as "
                           "\"registry:5000/base/*\" or \"apache/openserverless-runtime-*\"",
                           p ? p : "(not a string)");
    c->allowed_sources[i] = hoist_strdup(p);
  }
  return 0;
}

void server_config_admit_clear(server_config *c) { hoist_strfreev(c->allowed_sources); }

bool server_in_namespace(const char *login, const char *path) {
  size_t n = strlen(login);
  for (size_t i = 0; i < n; i++)
    if (path[i] != (char)tolower((unsigned char)login[i]))
      return false;
  return n > 0 && (path[n] == '\0' || path[n] == '/');
}

char *server_cache_repo(const char *login) {
  char *r = hoist_asprintf("%s/" SERVER_CACHE_REPO, login);
  for (char *c = r; *c != '/'; c++)
    *c = (char)tolower((unsigned char)*c);
  return r;
}

bool server_is_cache_repo(const char *login, const char *repo) {
  _cleanup_free_ char *cache = server_cache_repo(login);
  return strcmp(cache, repo) == 0;
}

bool server_source_allowed(const server_config *c, const char *login, const char *push_host,
                           const char *source, hoist_refusal *why) {
  hoist_ref *r = NULL;
  if (hoist_ref_parse(source, &r, NULL) < 0) {
    why->status = 400;
    snprintf(why->message, sizeof why->message, "Invalid source for the build.");
    return false;
  }
  bool ok = push_host && strcmp(r->domain, push_host) == 0 && server_in_namespace(login, r->path);
  for (char **p = c->allowed_sources; !ok && p && *p; p++) {
    _cleanup_free_ char *domain = NULL, *path = NULL;
    split_repo(*p, &domain, &path);
    ok = strcmp(domain, r->domain) == 0 && fnmatch(path, r->path, FNM_PATHNAME) == 0;
  }
  if (!ok) {
    why->status = 403;
    snprintf(why->message, sizeof why->message,
             "Source not allowed: %.150s/%.150s is neither in your namespace on the service's "
             "registry nor matched by its allowed_sources.",
             r->domain, r->path);
  }
  hoist_ref_free(r);
  return ok;
}
