/* Credentials: the creds option, a Kubernetes .dockerconfigjson secret, Docker
 * config.json / containers auth.json (auths with auth, username/password,
 * identitytoken; credHelpers and credsStore through docker-credential-<name>
 * helpers). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "hoist/fs.h"
#include "internal.h"

#define CREDS_FILE_MAX (4u << 20)
#define HELPER_OUT_MAX (1u << 20)

extern char **environ;

void hoist_creds_clear(hoist_creds *c) {
  free(c->username);
  if (c->password)
    explicit_bzero(c->password, strlen(c->password));
  free(c->password);
  free(c->identity_token);
  free(c->helper);
  memset(c, 0, sizeof *c);
}

/* Decodes base64 as credential files hold it: padding optional, a trailing
 * line break ignored, and so is a lone "=" where two are due ("YQ="), as
 * they always were. Caller frees *out. */
HOIST_WUR static int b64_decode(const char *in, char **out, size_t *outlen, hoist_err **err) {
  size_t n = strlen(in);
  while (n && (in[n - 1] == '\n' || in[n - 1] == '\r'))
    n--;
  if (n % 4 == 3 && in[n - 1] == '=' && in[n - 2] != '=')
    n--;
  unsigned char *dec = NULL;
  int r = hoist_base64_decode(in, n, CREDS_FILE_MAX, HOIST_BASE64_PAD_OPTIONAL, &dec, outlen, err);
  *out = (char *)dec;
  return r;
}

/* "https://index.docker.io/v1/" -> "docker.io"; "http://h:5000/" -> "h:5000". */
static char *normalize_key(const char *key) {
  const char *k = key;
  if (strncmp(k, "https://", 8) == 0)
    k += 8;
  else if (strncmp(k, "http://", 7) == 0)
    k += 7;
  char *s = hoist_strdup(k);
  size_t n = strlen(s);
  while (n && s[n - 1] == '/')
    s[--n] = '\0';
  if (n > 3 && (strcmp(s + n - 3, "/v1") == 0 || strcmp(s + n - 3, "/v2") == 0))
    s[n - 3] = '\0';
  if (strcmp(s, "index.docker.io") == 0 || strcmp(s, "registry-1.docker.io") == 0 ||
      strcmp(s, "registry.hub.docker.com") == 0) {
    free(s);
    s = hoist_strdup("docker.io");
  }
  return s;
}

/* Length of the match of key against host[/repo], or 0: the key is the host
 * or a path prefix of host/repo at a '/' boundary. */
static size_t key_match(const char *key, const char *host, const char *repo) {
  size_t hl = strlen(host);
  if (strncmp(key, host, hl) != 0)
    return 0;
  if (key[hl] == '\0')
    return hl;
  if (key[hl] != '/' || !repo)
    return 0;
  const char *kp = key + hl + 1;
  size_t kl = strlen(kp);
  if (strncmp(repo, kp, kl) == 0 && (repo[kl] == '\0' || repo[kl] == '/'))
    return hl + 1 + kl;
  return 0;
}

HOIST_WUR static int entry_creds(const char *key, json_t *e, hoist_creds *out, hoist_err **err) {
  if (!json_is_object(e))
    return hoist_err_set(err, HOIST_E_FORMAT, "auths entry \"%.100s\" is not an object", key);
  json_t *auth = json_object_get(e, "auth");
  json_t *user = json_object_get(e, "username");
  json_t *pass = json_object_get(e, "password");
  json_t *idt = json_object_get(e, "identitytoken");
  if ((auth && !json_is_string(auth)) || (user && !json_is_string(user)) ||
      (pass && !json_is_string(pass)) || (idt && !json_is_string(idt)))
    return hoist_err_set(err, HOIST_E_FORMAT, "auths entry \"%.100s\": fields must be strings",
                         key);
  if (auth && *json_string_value(auth)) {
    _cleanup_free_ char *dec = NULL;
    size_t len = 0;
    if (b64_decode(json_string_value(auth), &dec, &len, err) < 0)
      return hoist_err_wrap(err, "auths entry \"%.100s\": auth", key);
    if (memchr(dec, '\0', len))
      return hoist_err_set(err, HOIST_E_FORMAT, "auths entry \"%.100s\": auth contains NUL", key);
    char *colon = strchr(dec, ':');
    if (!colon)
      return hoist_err_set(err, HOIST_E_FORMAT,
                           "auths entry \"%.100s\": auth is not base64 of user:password", key);
    *colon = '\0';
    out->username = hoist_strdup(dec);
    out->password = hoist_strdup(colon + 1);
    explicit_bzero(colon + 1, strlen(colon + 1));
  } else if (user) {
    out->username = hoist_strdup(json_string_value(user));
    out->password = hoist_strdup(pass ? json_string_value(pass) : "");
  }
  if (idt && *json_string_value(idt))
    out->identity_token = hoist_strdup(json_string_value(idt));
  return 0;
}

int hoist_creds_from_json(const char *data, size_t len, const char *host, const char *repo,
                          hoist_creds *out, bool *found, hoist_err **err) {
  memset(out, 0, sizeof *out);
  *found = false;
  json_error_t je;
  _cleanup_json_ json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
  if (!j)
    return hoist_err_set(err, HOIST_E_FORMAT, "invalid JSON at line %d: %s", je.line, je.text);
  if (!json_is_object(j))
    return hoist_err_set(err, HOIST_E_FORMAT, "credentials file is not a JSON object");
  /* a Kubernetes Secret object: data[".dockerconfigjson"] is base64 of the document */
  json_t *kdata = json_object_get(j, "data");
  if (json_is_object(kdata) && json_object_get(kdata, ".dockerconfigjson")) {
    json_t *v = json_object_get(kdata, ".dockerconfigjson");
    if (!json_is_string(v))
      return hoist_err_set(err, HOIST_E_FORMAT, ".dockerconfigjson is not a string");
    _cleanup_free_ char *dec = NULL;
    size_t dlen = 0;
    if (b64_decode(json_string_value(v), &dec, &dlen, err) < 0)
      return hoist_err_wrap(err, ".dockerconfigjson");
    return hoist_creds_from_json(dec, dlen, host, repo, out, found, err);
  }
  json_t *auths = json_object_get(j, "auths");
  json_t *helpers = json_object_get(j, "credHelpers");
  json_t *store = json_object_get(j, "credsStore");
  if (auths && !json_is_object(auths))
    return hoist_err_set(err, HOIST_E_FORMAT, "\"auths\" is not an object");
  if (helpers && !json_is_object(helpers))
    return hoist_err_set(err, HOIST_E_FORMAT, "\"credHelpers\" is not an object");
  if (store && !json_is_string(store))
    return hoist_err_set(err, HOIST_E_FORMAT, "\"credsStore\" is not a string");
  json_t *helper = helpers ? json_object_get(helpers, host) : NULL;
  if (helper) {
    if (!json_is_string(helper) || !*json_string_value(helper))
      return hoist_err_set(err, HOIST_E_FORMAT, "credHelpers entry \"%.100s\" is not a name", host);
    out->helper = hoist_strdup(json_string_value(helper));
    *found = true;
    return 0;
  }
  const char *best_key = NULL;
  json_t *best = NULL;
  size_t best_len = 0;
  const char *key;
  json_t *e;
  json_object_foreach(auths, key, e) {
    _cleanup_free_ char *k = normalize_key(key);
    size_t m = key_match(k, host, repo);
    if (m > best_len) {
      best_len = m;
      best = e;
      best_key = key;
    }
  }
  if (best) {
    if (entry_creds(best_key, best, out, err) < 0) {
      hoist_creds_clear(out);
      return -HOIST_E_FORMAT;
    }
    if (out->username || out->identity_token) {
      *found = true;
      return 0;
    }
  }
  if (store && *json_string_value(store)) {
    hoist_creds_clear(out);
    out->helper = hoist_strdup(json_string_value(store));
    *found = true;
  }
  return 0;
}

/* Writes to a pipe whose reader may be gone without SIGPIPE ending the
 * process, and without touching the process's disposition of it: SIGPIPE is
 * blocked in this thread for the write, and the one the write raised (unless
 * one was pending already) is taken back before it is unblocked. A short
 * write is the reader's loss: what it answered decides. */
static void write_unsignalled(int fd, const char *data, size_t len) {
  sigset_t pipe_set, old, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    data += n;
    len -= (size_t)n;
  }
  /* a write the reader left raises SIGPIPE even when it wrote some bytes */
  if (!was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
      ;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Runs docker-credential-<name> get with host on stdin. */
HOIST_WUR static int run_helper(const char *name, const char *host, hoist_creds *out, bool *found,
                                hoist_err **err) {
  *found = false;
  for (const char *p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == '-' || *p == '_' || *p == '.'))
      return hoist_err_set(err, EINVAL, "credential helper name \"%.60s\" is not valid", name);
  _cleanup_free_ char *prog = hoist_asprintf("docker-credential-%s", name);
  int in[2], outp[2];
  if (pipe2(in, O_CLOEXEC) < 0)
    return hoist_err_errno(err, errno, "pipe");
  if (pipe2(outp, O_CLOEXEC) < 0) {
    close(in[0]);
    close(in[1]);
    return hoist_err_errno(err, errno, "pipe");
  }
  /* the helper starts as a program run from a shell would: stdin and
   * stdout on the pipes, every signal at its default, none blocked */
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&fa, outp[1], STDOUT_FILENO);
  posix_spawnattr_init(&attr);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  char *argv[] = {prog, "get", NULL};
  pid_t pid;
  int sr = posix_spawnp(&pid, prog, &fa, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(in[0]);
  close(outp[1]);
  if (sr != 0) {
    close(in[1]);
    close(outp[0]);
    if (sr == ENOENT)
      return hoist_err_set(err, ENOENT, "credential helper %s not found", prog);
    return hoist_err_errno(err, sr, "run credential helper %s", prog);
  }
  write_unsignalled(in[1], host, strlen(host));
  close(in[1]);
  _cleanup_buf_ hoist_buf b = HOIST_BUF_INIT(HELPER_OUT_MAX);
  char buf[4096];
  for (;;) {
    ssize_t n = read(outp[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    if (hoist_buf_append(&b, buf, (size_t)n, NULL) < 0)
      break;
  }
  close(outp[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
    return hoist_err_set(err, ENOENT, "credential helper %s not found", prog);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (b.data && strstr(b.data, "credentials not found"))
      return 0;
    return hoist_err_set(err, HOIST_E_AUTH, "credential helper %s failed for %s", prog, host);
  }
  _cleanup_json_ json_t *j = json_loadb(b.data ? b.data : "", b.len, 0, NULL);
  const char *user = j ? json_string_value(json_object_get(j, "Username")) : NULL;
  const char *secret = j ? json_string_value(json_object_get(j, "Secret")) : NULL;
  if (!user || !secret)
    return hoist_err_set(err, HOIST_E_FORMAT, "credential helper %s: malformed answer", prog);
  if (strcmp(user, "<token>") == 0) {
    out->identity_token = hoist_strdup(secret);
  } else {
    out->username = hoist_strdup(user);
    out->password = hoist_strdup(secret);
  }
  *found = true;
  return 0;
}

/* Reads the file at path (what it is names it in errors): *data stays NULL
 * when it is missing and not required. */
HOIST_WUR static int read_config(const char *what, const char *path, bool required, char **data,
                                 size_t *len, hoist_err **err) {
  hoist_err *e = NULL;
  if (hoist_fs_read_file(AT_FDCWD, path, CREDS_FILE_MAX, data, len, &e) == 0)
    return 0;
  if (!required && hoist_err_root_code(e) == ENOENT) {
    hoist_err_free(e);
    return 0;
  }
  if (err && !*err)
    *err = e;
  else
    hoist_err_free(e);
  return hoist_err_wrap(err, "%s %s", what, path);
}

/* Looks host up in one file; a missing file is no match unless required. */
HOIST_WUR static int lookup_file(const char *path, bool required, const char *host,
                                 hoist_creds *out, bool *found, hoist_err **err) {
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  *found = false;
  int r = read_config("credentials", path, required, &data, &len, err);
  if (r < 0 || !data)
    return r;
  if (hoist_creds_from_json(data, len, host, NULL, out, found, err) < 0)
    return hoist_err_wrap(err, "credentials %s", path);
  if (*found && out->helper) {
    _cleanup_free_ char *helper = steal_pointer(&out->helper);
    hoist_creds_clear(out);
    if (run_helper(helper, host, out, found, err) < 0)
      return hoist_err_wrap(err, "credentials %s", path);
  }
  return 0;
}

int reg_creds_lookup(hoist_registry *r, const char *host, hoist_creds *out, bool *found,
                     hoist_err **err) {
  memset(out, 0, sizeof *out);
  *found = false;
  if (r->creds) {
    const char *colon = strchr(r->creds, ':');
    out->username = strndup(r->creds, (size_t)(colon - r->creds));
    out->password = hoist_strdup(colon + 1);
    *found = true;
    return 0;
  }
  if (r->secret_file && *r->secret_file) {
    int ret = lookup_file(r->secret_file, true, host, out, found, err);
    if (ret < 0 || *found)
      return ret;
  }
  if (r->auth_file)
    return lookup_file(r->auth_file, true, host, out, found, err);
  for (size_t i = 0; i < r->auth_files.n; i++) {
    int ret = lookup_file(r->auth_files.v[i], false, host, out, found, err);
    if (ret < 0 || *found)
      return ret;
  }
  return 0;
}

/* ------------------------------------------------------- auth file */

/* The auth file at path as a JSON object, an empty one when the file is
 * missing. Its "auths", when present, is an object. */
HOIST_WUR static int auth_file_load(const char *path, json_t **doc, hoist_err **err) {
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  if (read_config("auth file", path, false, &data, &len, err) < 0)
    return -1;
  if (!data) {
    *doc = json_object();
    return 0;
  }
  json_error_t je;
  json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
  explicit_bzero(data, len);
  if (!j)
    return hoist_err_set(err, HOIST_E_FORMAT, "auth file %s: invalid JSON at line %d: %s", path,
                         je.line, je.text);
  json_t *auths = json_object_get(j, "auths");
  if (!json_is_object(j) || (auths && !json_is_object(auths))) {
    json_decref(j);
    return hoist_err_set(err, HOIST_E_FORMAT, "auth file %s: %s", path,
                         auths ? "\"auths\" is not an object" : "not a JSON object");
  }
  *doc = j;
  return 0;
}

/* Writes doc to path whole (temporary file, rename), mode 0600, its missing
 * parent directories made 0700. */
HOIST_WUR static int auth_file_save(const char *path, const json_t *doc, hoist_err **err) {
  const char *slash = strrchr(path, '/');
  if (slash && slash != path) {
    _cleanup_free_ char *dir = strndup(path, (size_t)(slash - path));
    if (!dir)
      abort();
    if (hoist_fs_mkdir_p(AT_FDCWD, dir, 0700, NULL, err) < 0)
      return hoist_err_wrap(err, "auth file %s", path);
  }
  char *text = json_dumps(doc, JSON_INDENT(1));
  if (!text)
    abort();
  size_t n = strlen(text);
  _cleanup_free_ char *file = hoist_asprintf("%s\n", text);
  explicit_bzero(text, n);
  free(text);
  int ret = hoist_fs_write_atomic(AT_FDCWD, path, file, n + 1, 0600, err);
  explicit_bzero(file, n + 1);
  return ret < 0 ? hoist_err_wrap(err, "auth file %s", path) : 0;
}

/* Removes the entries of auths whose key names host (in any form
 * normalize_key maps to the same); returns how many there were. */
static size_t auths_remove(json_t *auths, const char *host) {
  _cleanup_free_ char *want = normalize_key(host);
  size_t n = 0;
  const char *key;
  json_t *v;
  void *tmp;
  json_object_foreach_safe(auths, tmp, key, v) {
    _cleanup_free_ char *k = normalize_key(key);
    if (strcmp(k, want) == 0) {
      json_object_del(auths, key);
      n++;
    }
  }
  return n;
}

int hoist_creds_store(const char *path, const char *host, const char *username,
                      const char *password, hoist_err **err) {
  if (!host || !*host)
    return hoist_err_set(err, EINVAL, "auth file %s: no registry host given", path);
  if (!username || !*username || strchr(username, ':'))
    return hoist_err_set(err, EINVAL, "auth file %s: a username is not empty and has no ':'", path);
  _cleanup_json_ json_t *doc = NULL;
  if (auth_file_load(path, &doc, err) < 0)
    return -1;
  _cleanup_free_ char *key = normalize_key(host);
  _cleanup_free_ char *registry = strndup(key, strcspn(key, "/"));
  if (!registry)
    abort();
  const char *helper =
      json_string_value(json_object_get(json_object_get(doc, "credHelpers"), registry));
  if (helper)
    return hoist_err_set(err, EEXIST,
                         "auth file %s: credential helper docker-credential-%s keeps the "
                         "credentials of %s; store them with it",
                         path, helper, registry);
  json_t *auths = json_object_get(doc, "auths");
  if (!auths) {
    auths = json_object();
    json_object_set_new(doc, "auths", auths);
  }
  auths_remove(auths, key);
  _cleanup_free_ char *up = hoist_asprintf("%s:%s", username, password ? password : "");
  _cleanup_free_ char *b64 = hoist_base64_encode(up, strlen(up));
  explicit_bzero(up, strlen(up));
  json_object_set_new(auths, key, json_pack("{s:s}", "auth", b64));
  explicit_bzero(b64, strlen(b64));
  return auth_file_save(path, doc, err);
}

int hoist_creds_erase(const char *path, const char *host, bool *removed, hoist_err **err) {
  *removed = false;
  _cleanup_json_ json_t *doc = NULL;
  if (auth_file_load(path, &doc, err) < 0)
    return -1;
  json_t *auths = json_object_get(doc, "auths");
  if (!auths)
    return 0;
  if (host) {
    *removed = auths_remove(auths, host) > 0;
  } else {
    *removed = json_object_size(auths) > 0;
    json_object_clear(auths);
  }
  return *removed ? auth_file_save(path, doc, err) : 0;
}
