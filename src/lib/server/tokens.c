/* server: the `file` authenticator. DATA/tokens.json holds
 * {"tokens": [{"login", "uuid", "key_sha256", "env": {...}}]}; the file is
 * read again whenever its inode, size or mtime change. Keys never stay in
 * memory: the presented key is hashed and compared in constant time with
 * the stored digest. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "hoist/digest.h"
#include "hoist/fs.h"
#include "server-private.h"

#define TOKENS_FILE "tokens.json"

typedef struct file_auth {
  server_auth base;
  int dirfd;
  pthread_mutex_t lock;
  json_t *tokens; /* array, or NULL when the file is absent */
  struct stat st; /* of the loaded file */
} file_auth;

void server_user_clear(server_user *u) {
  json_decref(u->env);
  u->env = NULL;
  u->login[0] = '\0';
}

static bool same_file(const struct stat *a, const struct stat *b) {
  return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
         a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Reloads when the file changed; a malformed file keeps the previous
 * tokens (and is reported). Called with the lock held. */
HOIST_WUR static int reload(file_auth *a, hoist_err **err) {
  struct stat st;
  if (fstatat(a->dirfd, TOKENS_FILE, &st, 0) < 0) {
    if (errno != ENOENT)
      return hoist_err_errno(err, errno, "stat %s", TOKENS_FILE);
    json_decref(a->tokens);
    a->tokens = NULL;
    memset(&a->st, 0, sizeof a->st);
    return 0;
  }
  if (a->tokens && same_file(&st, &a->st))
    return 0;
  _cleanup_free_ char *data = NULL;
  size_t len;
  if (hoist_fs_read_file(a->dirfd, TOKENS_FILE, HOIST_SERVER_TOKENS_MAX, &data, &len, err) < 0)
    return hoist_err_wrap(err, "tokens file");
  json_error_t je;
  json_t *root = json_loadb(data, len, 0, &je);
  json_t *arr = root ? json_object_get(root, "tokens") : NULL;
  if (!json_is_array(arr)) {
    json_decref(root);
    return hoist_err_set(err, HOIST_E_FORMAT, "tokens file: expected {\"tokens\": [...]}");
  }
  json_decref(a->tokens);
  a->tokens = json_incref(arr);
  json_decref(root);
  a->st = st;
  return 0;
}

/* Stands for the stored digest when the uuid is unknown or its entry
 * malformed: never the hex digest of a key, so never a match. */
static const char no_digest[HOIST_DIGEST_HEX_LEN + 1] =
    "----------------------------------------------------------------";

/* Equal strings; the time taken depends on their lengths only. */
static bool same_text(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  return (CRYPTO_memcmp(a, b, la < lb ? la : lb) == 0) & (la == lb);
}

/* Accepts uuid:key when a token has that uuid and the SHA-256 of that key.
 * An unknown uuid costs what a known one with a wrong key does: the key is
 * hashed, every token's uuid compared, and one digest compared (a dummy's
 * when no token matched), with no early exit. */
HOIST_WUR static int file_check(server_auth *base, const char *uuid, const char *key,
                                server_user *user, hoist_err **err) {
  file_auth *a = (file_auth *)base;
  char want[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of(key, strlen(key), want);
  pthread_mutex_lock(&a->lock);
  int ret = reload(a, err);
  if (ret < 0 && !a->tokens) {
    pthread_mutex_unlock(&a->lock);
    return ret;
  }
  if (ret < 0) { /* keep serving with the previous tokens */
    hoist_warn("serve: %s", (*err)->msg);
    hoist_err_free(*err);
    *err = NULL;
  }
  json_t *match = NULL;
  size_t i;
  json_t *t;
  json_array_foreach(a->tokens, i, t) {
    const char *u = json_string_value(json_object_get(t, "uuid"));
    bool same = same_text(u ? u : "", uuid);
    match = same && !match ? t : match;
  }
  const char *h = json_string_value(json_object_get(match, "key_sha256"));
  const char *login = json_string_value(json_object_get(match, "login"));
  if (!h || strlen(h) != HOIST_DIGEST_HEX_LEN)
    h = no_digest;
  /* the comparison takes the same time wherever the digests differ */
  bool ok = CRYPTO_memcmp(h, want + 7, HOIST_DIGEST_HEX_LEN) == 0 && h != no_digest && login &&
            strlen(login) < sizeof user->login;
  if (ok) {
    strcpy(user->login, login);
    json_t *env = json_object_get(match, "env");
    user->env = json_is_object(env) ? json_deep_copy(env) : NULL;
  }
  pthread_mutex_unlock(&a->lock);
  OPENSSL_cleanse(want, sizeof want);
  return ok ? 1 : 0;
}

static void file_free(server_auth *base) {
  file_auth *a = (file_auth *)base;
  json_decref(a->tokens);
  close(a->dirfd);
  pthread_mutex_destroy(&a->lock);
  free(a);
}

int server_auth_file_new(const char *data_dir, server_auth **out, hoist_err **err) {
  int fd = open(data_dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return hoist_err_errno(err, errno, "open %s", data_dir);
  file_auth *a = hoist_malloc0(sizeof *a);
  a->base.check = file_check;
  a->base.free = file_free;
  a->dirfd = fd;
  pthread_mutex_init(&a->lock, NULL);
  if (reload(a, err) < 0) {
    file_free(&a->base);
    return -1;
  }
  *out = &a->base;
  return 0;
}

static void hex(const unsigned char *b, size_t n, char *out) {
  for (size_t i = 0; i < n; i++)
    sprintf(out + 2 * i, "%02x", b[i]);
}

int hoist_server_token_add(const char *data_dir, const char *login, char **uuid_key,
                           hoist_err **err) {
  size_t ll = strlen(login);
  if (ll == 0 || ll >= 128)
    return hoist_err_set(err, EINVAL, "login must have 1 to 127 characters");
  for (size_t i = 0; i < ll; i++)
    if (!((login[i] >= 'a' && login[i] <= 'z') || (login[i] >= '0' && login[i] <= '9') ||
          login[i] == '-' || login[i] == '_' || login[i] == '.'))
      return hoist_err_set(err, EINVAL, "login \"%s\": only a-z, 0-9, '-', '_' and '.'", login);
  _cleanup_close_ int dirfd = -1;
  if (hoist_fs_mkdir_p(AT_FDCWD, data_dir, 0700, &dirfd, err) < 0)
    return -1;
  /* one writer at a time */
  _cleanup_close_ int lockfd =
      openat(dirfd, ".tokens.lock", O_CREAT | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lockfd < 0 || flock(lockfd, LOCK_EX) < 0)
    return hoist_err_errno(err, errno, "lock %s/.tokens.lock", data_dir);

  json_t *root = NULL;
  _cleanup_free_ char *data = NULL;
  size_t len;
  hoist_err *rerr = NULL;
  if (hoist_fs_read_file(dirfd, TOKENS_FILE, HOIST_SERVER_TOKENS_MAX, &data, &len, &rerr) == 0) {
    root = json_loadb(data, len, 0, NULL);
    if (!root || !json_is_array(json_object_get(root, "tokens"))) {
      json_decref(root);
      return hoist_err_set(err, HOIST_E_FORMAT, "%s/%s: expected {\"tokens\": [...]}", data_dir,
                           TOKENS_FILE);
    }
  } else if (hoist_err_root_code(rerr) == ENOENT) {
    hoist_err_free(rerr);
    root = json_pack("{s:[]}", "tokens");
  } else {
    *err = rerr;
    return hoist_err_wrap(err, "%s/%s", data_dir, TOKENS_FILE);
  }
  unsigned char rnd[16 + 32];
  if (RAND_bytes(rnd, sizeof rnd) != 1) {
    json_decref(root);
    return hoist_err_set(err, EIO, "no random bytes");
  }
  char u[37], k[65];
  hex(rnd, 4, u);
  u[8] = '-';
  hex(rnd + 4, 2, u + 9);
  u[13] = '-';
  hex(rnd + 6, 2, u + 14);
  u[18] = '-';
  hex(rnd + 8, 2, u + 19);
  u[23] = '-';
  hex(rnd + 10, 6, u + 24);
  hex(rnd + 16, 32, k);
  char kd[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of(k, 64, kd);
  json_array_append_new(
      json_object_get(root, "tokens"),
      json_pack("{s:s, s:s, s:s, s:{}}", "login", login, "uuid", u, "key_sha256", kd + 7, "env"));
  _cleanup_free_ char *text = json_dumps(root, JSON_INDENT(2));
  json_decref(root);
  if (hoist_fs_write_atomic(dirfd, TOKENS_FILE, text, strlen(text), 0600, err) < 0)
    return hoist_err_wrap(err, "%s/%s", data_dir, TOKENS_FILE);
  *uuid_key = hoist_asprintf("%s:%s", u, k);
  return 0;
}
