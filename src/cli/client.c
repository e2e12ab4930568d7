/* client: the deployer service seen from the command line. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>

#include "client.h"
#include "env.h"
#include "hoist/fs.h"

const cli_opt cli_client_opts[] = {
    CLI_CALL_AT("server", cli_opt_strdup, cli_client, server),
    CLI_CALL_AT("auth", cli_opt_strdup, cli_client, auth),
    CLI_CALL_AT("ca-file", cli_opt_strdup, cli_client, ca_file),
    CLI_CALL_AT("cert", cli_opt_strdup, cli_client, cert_file),
    CLI_CALL_AT("key", cli_opt_strdup, cli_client, key_file),
    CLI_FLAG_AT("json", cli_client, json),
    CLI_END,
};

int cli_client_run(const char *verb, const char *usage, int n, const char *n_usage,
                   int (*run)(cli_client *cl, char **operands, int n), int argc, char **argv) {
  _cleanup_client_ cli_client cl = {0};
  const cli_opt opts[] = {CLI_GROUP(cli_client_opts, &cl), CLI_END};
  int rc = cli_parse_opts(verb, usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (n >= 0 && argc - optind != n)
    return cli_usage(verb, "%s", n_usage);
  return run(&cl, argv + optind, argc - optind);
}

void cli_client_free(cli_client *c) {
  free(c->server);
  free(c->auth);
  free(c->ca_file);
  free(c->cert_file);
  free(c->key_file);
  memset(c, 0, sizeof *c);
}

/* Value of KEY=VALUE in a wskprops file, or NULL. */
static char *prop(const char *text, const char *key) {
  size_t kl = strlen(key);
  for (const char *p = text; p && *p;) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
      char *v = strndup(p + kl + 1, len - kl - 1);
      size_t vl = strlen(v);
      while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
        v[--vl] = '\0';
      return v;
    }
    p = nl ? nl + 1 : NULL;
  }
  return NULL;
}

int cli_client_ready(cli_client *c, hoist_err **err) {
  if (!c->server || !c->auth) {
    _cleanup_free_ char *path = cli_env_wskprops();
    _cleanup_free_ char *text = NULL;
    size_t len;
    if (hoist_fs_read_file(AT_FDCWD, path, 1 << 20, &text, &len, NULL) == 0) {
      if (!c->server)
        c->server = prop(text, "APIHOST");
      if (!c->auth)
        c->auth = prop(text, "AUTH");
    }
  }
  if (!c->server)
    return hoist_err_set(err, EINVAL, "no service: give --server or APIHOST in ~/.wskprops");
  if (!c->auth)
    return hoist_err_set(err, EINVAL, "no key: give --auth or AUTH in ~/.wskprops");
  if (!strstr(c->server, "://")) {
    char *u = hoist_asprintf("http://%s", c->server);
    free(c->server);
    c->server = u;
  }
  size_t n = strlen(c->server);
  while (n && c->server[n - 1] == '/')
    c->server[--n] = '\0';
  return 0;
}

static size_t to_buf(char *p, size_t size, size_t n, void *ud) {
  return hoist_buf_append(ud, p, size * n, NULL) < 0 ? 0 : size * n;
}

static size_t to_stdout(char *p, size_t size, size_t n, void *ud) {
  (void)ud;
  size_t w = fwrite(p, size, n, stdout);
  fflush(stdout);
  return w * size;
}

static CURL *handle(cli_client *c, const char *method, const char *path,
                    struct curl_slist **headers) {
  CURL *h = curl_easy_init();
  if (!h)
    abort();
  _cleanup_free_ char *url = hoist_asprintf("%s%s", c->server, path);
  unsigned char enc[1024];
  size_t al = strlen(c->auth);
  if (al > 700)
    al = 700;
  EVP_EncodeBlock(enc, (const unsigned char *)c->auth, (int)al);
  _cleanup_free_ char *auth = hoist_asprintf("authorization: Basic %s", enc);
  *headers = curl_slist_append(*headers, auth);
  *headers = curl_slist_append(*headers, "content-type: application/json");
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, *headers);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  if (c->ca_file)
    curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
  if (c->cert_file)
    curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_file);
  if (c->key_file)
    curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_file);
  return h;
}

int cli_client_call(cli_client *c, const char *method, const char *path, json_t *body, long *status,
                    json_t **out, hoist_err **err) {
  struct curl_slist *headers = NULL;
  CURL *h = handle(c, method, path, &headers);
  _cleanup_free_ char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  if (text)
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
  hoist_buf b = HOIST_BUF_INIT(64u << 20);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, to_buf);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
  CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
  curl_easy_cleanup(h);
  curl_slist_free_all(headers);
  int ret = 0;
  if (rc != CURLE_OK) {
    ret = hoist_err_set(err, EIO, "%s %s%s: %s", method, c->server, path, curl_easy_strerror(rc));
  } else {
    *out = json_loadb(b.data ? b.data : "", b.len, 0, NULL);
    if (!json_is_object(*out)) {
      json_decref(*out);
      *out = NULL;
      ret = hoist_err_set(err, HOIST_E_FORMAT, "%s %s%s: HTTP %ld, not a JSON answer", method,
                          c->server, path, *status);
    }
  }
  hoist_buf_free(&b);
  return ret;
}

char *cli_client_escape(const char *s) {
  char *e = curl_easy_escape(NULL, s, 0);
  if (!e)
    abort();
  char *r = hoist_strdup(e);
  curl_free(e);
  return r;
}

int cli_client_stream_log(cli_client *c, const char *id, bool follow, hoist_err **err) {
  _cleanup_free_ char *q = cli_client_escape(id);
  _cleanup_free_ char *path =
      hoist_asprintf("/system/api/v1/build/logs?id=%s%s", q, follow ? "&follow=1" : "");
  struct curl_slist *headers = NULL;
  CURL *h = handle(c, "GET", path, &headers);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, to_stdout);
  curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
  CURLcode rc = curl_easy_perform(h);
  curl_easy_cleanup(h);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK)
    return hoist_err_set(err, EIO, "logs of %s: %s", id, curl_easy_strerror(rc));
  return 0;
}

int cli_client_report(cli_client *c, const char *verb, long status, json_t *out) {
  const char *st = json_string_value(json_object_get(out, "status"));
  const char *msg = json_string_value(json_object_get(out, "message"));
  bool ok = st && strcmp(st, "ok") == 0;
  if (c->json) {
    char *t = json_dumps(out, JSON_INDENT(2));
    printf("%s\n", t);
    free(t);
  } else if (ok) {
    printf("%s\n", msg ? msg : "ok");
  } else {
    fprintf(stderr, "hoist %s: %s (HTTP %ld)\n", verb, msg ? msg : "failed", status);
  }
  json_decref(out);
  return ok ? EXIT_OK : EXIT_FAIL;
}
