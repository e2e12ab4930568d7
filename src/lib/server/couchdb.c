/* server: the `couchdb` authenticator, the OpenServerless lookup. The
 * subject whose `namespaces` hold the uuid is found with a Mango query on
 * <prefix>subjects and the key compared here; its `subject` is the login,
 * whose document in <prefix>users_metadata gives the user's env: `env`, and
 * `userenv` over it, each an object or a list of {"key", "value"}. */
#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <string.h>

#include "hoist/digest.h"
#include "server-private.h"

typedef struct couch_auth {
  server_auth base;
  char *url;    /* "http://host:5984" */
  char *prefix; /* "nuvolaris_" */
  char *userpwd;
} couch_auth;

static size_t to_buf(char *p, size_t size, size_t n, void *ud) {
  return hoist_buf_append(ud, p, size * n, NULL) < 0 ? 0 : size * n;
}

/* POST a Mango query to <url>/<prefix><db>/_find; *docs gets the docs array. */
HOIST_WUR static int find(couch_auth *a, const char *db, json_t *query, json_t **root,
                          hoist_err **err) {
  CURL *h = curl_easy_init();
  if (!h)
    abort();
  _cleanup_free_ char *url = hoist_asprintf("%s/%s%s/_find", a->url, a->prefix, db);
  _cleanup_free_ char *body = json_dumps(query, JSON_COMPACT);
  struct curl_slist *headers = curl_slist_append(NULL, "content-type: application/json");
  hoist_buf b = HOIST_BUF_INIT(HOIST_SERVER_COUCHDB_BODY_MAX);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, to_buf);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
  if (a->userpwd)
    curl_easy_setopt(h, CURLOPT_USERPWD, a->userpwd);
  CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(h);
  curl_slist_free_all(headers);
  int ret = 0;
  if (rc != CURLE_OK)
    ret = hoist_err_set(err, EIO, "couchdb %s%s: %s", a->prefix, db, curl_easy_strerror(rc));
  else if (status != 200)
    ret = hoist_err_set(err, EIO, "couchdb %s%s: HTTP %ld", a->prefix, db, status);
  else if (!(*root = json_loadb(b.data ? b.data : "", b.len, 0, NULL)) ||
           !json_is_array(json_object_get(*root, "docs"))) {
    json_decref(*root);
    *root = NULL;
    ret = hoist_err_set(err, HOIST_E_FORMAT, "couchdb %s%s: not a _find answer", a->prefix, db);
  }
  hoist_buf_free(&b);
  return ret;
}

/* Adds the string values of env, in either form, to o. */
static void env_add(json_t *o, json_t *env) {
  const char *k;
  json_t *v;
  json_object_foreach(env, k, v) {
    if (json_is_string(v))
      json_object_set(o, k, v);
  }
  size_t i;
  json_t *e;
  json_array_foreach(env, i, e) {
    k = json_string_value(json_object_get(e, "key"));
    v = json_object_get(e, "value");
    if (k && json_is_string(v))
      json_object_set(o, k, v);
  }
}

/* The user's env as an object: `env`, then `userenv` over it (the user's
 * own settings win over the platform's). */
static json_t *env_of(json_t *doc) {
  json_t *o = json_object();
  env_add(o, json_object_get(doc, "env"));
  env_add(o, json_object_get(doc, "userenv"));
  return o;
}

/* The subject is found by uuid alone: the key never reaches the database
 * (its comparisons are not constant-time, nor its query log private). The
 * key is compared here as SHA-256 digests in constant time, against the
 * namespace's key or, for an unknown uuid, an empty one: the same work. */
HOIST_WUR static int couch_check(server_auth *base, const char *uuid, const char *key,
                                 server_user *user, hoist_err **err) {
  couch_auth *a = (couch_auth *)base;
  json_t *q = json_pack("{s:{s:{s:{s:s}}}, s:i}", "selector", "namespaces", "$elemMatch", "uuid",
                        uuid, "limit", 1);
  json_t *root = NULL;
  int r = find(a, "subjects", q, &root, err);
  json_decref(q);
  if (r < 0)
    return r;
  json_t *doc = json_array_get(json_object_get(root, "docs"), 0);
  const char *login = json_string_value(json_object_get(doc, "subject"));
  const char *stored = NULL;
  size_t i;
  json_t *ns;
  json_array_foreach(json_object_get(doc, "namespaces"), i, ns) {
    const char *u = json_string_value(json_object_get(ns, "uuid"));
    const char *k = json_string_value(json_object_get(ns, "key"));
    if (u && k && !stored && strcmp(u, uuid) == 0)
      stored = k;
  }
  char want[HOIST_DIGEST_STR_LEN], have[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of(key, strlen(key), want);
  hoist_sha256_of(stored ? stored : "", stored ? strlen(stored) : 0, have);
  bool match = (CRYPTO_memcmp(want, have, sizeof want) == 0) & (stored != NULL);
  OPENSSL_cleanse(have, sizeof have);
  if (!login || !match || strlen(login) >= sizeof user->login) {
    json_decref(root);
    return 0;
  }
  snprintf(user->login, sizeof user->login, "%s", login);
  json_decref(root);
  q = json_pack("{s:{s:{s:s}}, s:i}", "selector", "login", "$eq", user->login, "limit", 1);
  r = find(a, "users_metadata", q, &root, err);
  json_decref(q);
  if (r < 0)
    return r;
  doc = json_array_get(json_object_get(root, "docs"), 0);
  if (!doc) {
    json_decref(root);
    user->login[0] = '\0';
    return 0;
  }
  user->env = env_of(doc);
  json_decref(root);
  return 1;
}

static void couch_free(server_auth *base) {
  couch_auth *a = (couch_auth *)base;
  free(a->url);
  free(a->prefix);
  if (a->userpwd)
    OPENSSL_cleanse(a->userpwd, strlen(a->userpwd));
  free(a->userpwd);
  free(a);
}

int server_auth_couchdb_new(const char *url, const char *prefix, const char *user,
                            const char *password, server_auth **out, hoist_err **err) {
  if (!url || strncmp(url, "http", 4) != 0)
    return hoist_err_set(err, EINVAL, "couchdb_url: expected http://HOST:PORT");
  couch_auth *a = hoist_malloc0(sizeof *a);
  a->base.check = couch_check;
  a->base.free = couch_free;
  a->url = hoist_strdup(url);
  size_t n = strlen(a->url);
  while (n && a->url[n - 1] == '/')
    a->url[--n] = '\0';
  a->prefix = hoist_strdup(prefix ? prefix : "nuvolaris_");
  if (user)
    a->userpwd = hoist_asprintf("%s:%s", user, password ? password : "");
  *out = &a->base;
  return 0;
}
