/* Authentication: WWW-Authenticate challenges, Basic, and the Bearer token
 * flow (realm, service, scope) with tokens cached per host and scope until
 * they expire. */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "internal.h"

#define CHALLENGE_MAX 8192
#define TOKEN_DEFAULT_TTL 60
#define TOKEN_MARGIN 10

/* ---------------------------------------------------------- challenge */

void hoist_challenge_clear(hoist_challenge *c) {
  free(c->scheme);
  free(c->realm);
  free(c->service);
  free(c->scope);
  free(c->error);
  memset(c, 0, sizeof *c);
}

static bool is_tchar(char c) {
  return isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ws(const char *p) {
  while (*p == ' ' || *p == '\t')
    p++;
  return p;
}

/* Reads a token at *p into a new string; NULL when there is none. */
static char *read_token(const char **p) {
  const char *s = *p;
  while (is_tchar(**p))
    (*p)++;
  if (*p == s)
    return NULL;
  return strndup(s, (size_t)(*p - s));
}

/* Reads a quoted-string (with backslash escapes) at *p, the opening quote
 * included. */
HOIST_WUR static int read_quoted(const char **p, char **out, hoist_err **err) {
  const char *s = *p + 1;
  _cleanup_buf_ hoist_buf b = HOIST_BUF_INIT(CHALLENGE_MAX);
  for (;;) {
    if (*s == '\0')
      return hoist_err_set(err, HOIST_E_FORMAT, "unterminated quoted string");
    if (*s == '"')
      break;
    if (*s == '\\') {
      s++;
      if (*s == '\0')
        return hoist_err_set(err, HOIST_E_FORMAT, "unterminated quoted string");
    }
    if ((unsigned char)*s < 0x20 && *s != '\t')
      return hoist_err_set(err, HOIST_E_FORMAT, "control character in quoted string");
    if (hoist_buf_append(&b, s, 1, err) < 0)
      return -1;
    s++;
  }
  *p = s + 1;
  *out = hoist_buf_steal(&b);
  return 0;
}

static void lower(char *s) {
  for (; *s; s++)
    *s = (char)tolower((unsigned char)*s);
}

int hoist_challenge_parse(const char *header, hoist_challenge *out, hoist_err **err) {
  memset(out, 0, sizeof *out);
  if (!header)
    return hoist_err_set(err, HOIST_E_FORMAT, "missing WWW-Authenticate header");
  if (strlen(header) > CHALLENGE_MAX)
    return hoist_err_set(err, HOIST_E_LIMIT, "WWW-Authenticate header too long");
  hoist_challenge cur = {0};
  hoist_challenge best = {0};
  const char *p = header;
  _cleanup_free_ char *unsupported = NULL;
  for (;;) {
    p = skip_ws(p);
    while (*p == ',' || *p == ' ' || *p == '\t')
      p++;
    if (*p == '\0')
      break;
    char *scheme = read_token(&p);
    if (!scheme) {
      hoist_challenge_clear(&cur);
      hoist_challenge_clear(&best);
      return hoist_err_set(err, HOIST_E_FORMAT,
                           "invalid WWW-Authenticate header: bad character '%c'", *p);
    }
    if (*p != '\0' && *p != ' ' && *p != '\t' && *p != ',') {
      free(scheme);
      hoist_challenge_clear(&cur);
      hoist_challenge_clear(&best);
      return hoist_err_set(err, HOIST_E_FORMAT,
                           "invalid WWW-Authenticate header: bad character '%c'", *p);
    }
    lower(scheme);
    cur.scheme = scheme;
    /* auth-params until the next scheme */
    for (;;) {
      while (*p == ',' || *p == ' ' || *p == '\t')
        p++;
      if (*p == '\0')
        break;
      const char *before = p;
      _cleanup_free_ char *name = read_token(&p);
      if (!name) {
        hoist_challenge_clear(&cur);
        hoist_challenge_clear(&best);
        return hoist_err_set(err, HOIST_E_FORMAT,
                             "invalid WWW-Authenticate header: bad character '%c'", *p);
      }
      const char *q = skip_ws(p);
      if (*q != '=') {
        p = before; /* the next challenge's scheme */
        break;
      }
      const char *t = q;
      while (*t == '=')
        t++;
      t = skip_ws(t);
      if (t - q > 1 || ((*t == ',' || *t == '\0') && q == p)) {
        p = t; /* a token68 ("abc==") */
        continue;
      }
      q = skip_ws(q + 1);
      char *value = NULL;
      if (*q == '"') {
        if (read_quoted(&q, &value, err) < 0) {
          hoist_challenge_clear(&cur);
          hoist_challenge_clear(&best);
          return hoist_err_wrap(err, "invalid WWW-Authenticate header");
        }
      } else {
        value = read_token(&q);
        if (!value)
          value = hoist_strdup("");
      }
      p = q;
      lower(name);
      char **slot = strcmp(name, "realm") == 0     ? &cur.realm
                    : strcmp(name, "service") == 0 ? &cur.service
                    : strcmp(name, "scope") == 0   ? &cur.scope
                    : strcmp(name, "error") == 0   ? &cur.error
                                                   : NULL;
      if (slot) {
        free(*slot);
        *slot = value;
      } else {
        free(value);
      }
      p = skip_ws(p);
      if (*p != ',' && *p != '\0') {
        hoist_challenge_clear(&cur);
        hoist_challenge_clear(&best);
        return hoist_err_set(err, HOIST_E_FORMAT,
                             "invalid WWW-Authenticate header: expected ',' after %s", name);
      }
    }
    bool bearer = strcmp(cur.scheme, "bearer") == 0;
    bool basic = strcmp(cur.scheme, "basic") == 0;
    if (bearer && (!best.scheme || strcmp(best.scheme, "bearer") != 0)) {
      hoist_challenge_clear(&best);
      best = cur;
    } else if (basic && !best.scheme) {
      best = cur;
    } else {
      if (!unsupported)
        unsupported = hoist_strdup(cur.scheme);
      hoist_challenge_clear(&cur);
    }
    memset(&cur, 0, sizeof cur);
  }
  if (!best.scheme) {
    if (unsupported)
      return hoist_err_set(err, HOIST_E_AUTH, "unsupported authentication scheme %s", unsupported);
    return hoist_err_set(err, HOIST_E_FORMAT, "empty WWW-Authenticate header");
  }
  if (strcmp(best.scheme, "bearer") == 0 && (!best.realm || !*best.realm)) {
    hoist_challenge_clear(&best);
    return hoist_err_set(err, HOIST_E_FORMAT, "Bearer challenge without a realm");
  }
  if (strcmp(best.scheme, "bearer") == 0 && strncmp(best.realm, "https://", 8) != 0 &&
      strncmp(best.realm, "http://", 7) != 0) {
    _cleanup_free_ char *realm = hoist_strdup(best.realm);
    hoist_challenge_clear(&best);
    return hoist_err_set(err, HOIST_E_FORMAT, "Bearer realm \"%.100s\" is not an http(s) URL",
                         realm);
  }
  *out = best;
  return 0;
}

/* ------------------------------------------------------------- state */

reg_host *reg_host_get(hoist_registry *r, const char *host) {
  for (reg_host *h = r->hosts; h; h = h->next)
    if (strcmp(h->host, host) == 0)
      return h;
  reg_host *h = hoist_malloc0(sizeof *h);
  h->host = hoist_strdup(host);
  h->next = r->hosts;
  r->hosts = h;
  return h;
}

void reg_auth_free(hoist_registry *r) {
  for (reg_host *h = r->hosts, *n; h; h = n) {
    n = h->next;
    free(h->host);
    hoist_creds_clear(&h->creds);
    free(h->scheme);
    free(h->realm);
    free(h->service);
    free(h->base_url);
    free(h->probe_failed);
    reg_tls_clear(&h->tls);
    free(h);
  }
  for (reg_token *t = r->tokens, *n; t; t = n) {
    n = t->next;
    free(t->host);
    free(t->scope);
    free(t->token);
    free(t);
  }
  r->hosts = NULL;
  r->tokens = NULL;
}

/* Credentials of host, loaded once (caller holds r->lock). */
static void host_creds(hoist_registry *r, reg_host *h) {
  if (h->creds_loaded)
    return;
  h->creds_loaded = true;
  hoist_err *e = NULL;
  if (reg_creds_lookup(r, h->host, &h->creds, &h->have_creds, &e) < 0) {
    char *t = hoist_err_text(e);
    hoist_warn("credentials for %s: %s", h->host, t);
    free(t);
    hoist_err_free(e);
    h->have_creds = false;
  }
}

char *reg_auth_header(hoist_registry *r, const char *host, const char *scope) {
  char *out = NULL;
  pthread_mutex_lock(&r->lock);
  reg_host *h = reg_host_get(r, host);
  if (h->scheme && strcmp(h->scheme, "basic") == 0) {
    host_creds(r, h);
    if (h->have_creds && h->creds.username) {
      _cleanup_free_ char *up =
          hoist_asprintf("%s:%s", h->creds.username, h->creds.password ? h->creds.password : "");
      _cleanup_free_ char *b = hoist_base64_encode(up, strlen(up));
      out = hoist_asprintf("Basic %s", b);
    }
  } else if (h->scheme) {
    time_t now = time(NULL);
    for (reg_token *t = r->tokens; t; t = t->next)
      if (strcmp(t->host, host) == 0 && strcmp(t->scope, scope ? scope : "") == 0 &&
          t->expires > now) {
        out = hoist_asprintf("Bearer %s", t->token);
        break;
      }
  }
  pthread_mutex_unlock(&r->lock);
  return out;
}

static size_t collect(char *buf, size_t size, size_t n, void *ud) {
  return hoist_buf_append(ud, buf, size * n, NULL) < 0 ? 0 : size * n;
}

/* Appends "k=<v escaped>" to q, after *sep when it is set; *sep becomes
 * '&'. */
HOIST_WUR static int add_param(CURL *c, hoist_buf *q, char *sep, const char *k, const char *v,
                               hoist_err **err) {
  char *e = curl_easy_escape(c, v, 0);
  if (!e)
    abort();
  int r = (*sep ? hoist_buf_append(q, sep, 1, err) : 0) < 0
              ? -1
              : hoist_buf_appendf(q, err, "%s=%s", k, e);
  curl_free(e);
  *sep = '&';
  return r;
}

/* The query (GET) or form (POST, for a refresh token) of a token request. */
HOIST_WUR static int token_request(CURL *c, hoist_buf *url, hoist_buf *form, const char *realm,
                                   const char *service, const char *scope, const hoist_creds *creds,
                                   hoist_err **err) {
  hoist_buf *q = creds && creds->identity_token ? form : url;
  if (q == url && hoist_buf_appendf(url, err, "%s", realm) < 0)
    return -1;
  char sep = q == url ? (strchr(realm, '?') ? '&' : '?') : 0;
  if (service && *service && add_param(c, q, &sep, "service", service, err) < 0)
    return -1;
  if (scope && *scope) {
    _cleanup_free_ char *dup = hoist_strdup(scope);
    char *save = NULL;
    for (char *s = strtok_r(dup, " ", &save); s; s = strtok_r(NULL, " ", &save))
      if (add_param(c, q, &sep, "scope", s, err) < 0)
        return -1;
  }
  if (q == form && (add_param(c, q, &sep, "grant_type", "refresh_token", err) < 0 ||
                    add_param(c, q, &sep, "refresh_token", creds->identity_token, err) < 0 ||
                    add_param(c, q, &sep, "client_id", "hoist", err) < 0))
    return -1;
  return 0;
}

/* Asks the token service for a token for scope. */
HOIST_WUR static int fetch_token(hoist_registry *r, const char *host, const char *realm,
                                 const char *service, const char *scope, const hoist_creds *creds,
                                 char **token, long *ttl, hoist_err **err) {
  CURL *c = curl_easy_init();
  if (!c)
    abort();
  _cleanup_buf_ hoist_buf url = HOIST_BUF_INIT(0);
  _cleanup_buf_ hoist_buf form = HOIST_BUF_INIT(0);
  if (token_request(c, &url, &form, realm, service, scope, creds, err) < 0) {
    curl_easy_cleanup(c);
    return hoist_err_wrap(err, "token request to %s", realm);
  }
  hoist_buf *q = creds && creds->identity_token ? &form : &url;
  reg_curl_setup(r, c, host, q == &url ? url.data : realm);
  _cleanup_buf_ hoist_buf body = HOIST_BUF_INIT(REG_BODY_MAX);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  if (q == &form) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, form.data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)form.len);
  } else if (creds && creds->username) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(c, CURLOPT_USERNAME, creds->username);
    curl_easy_setopt(c, CURLOPT_PASSWORD, creds->password ? creds->password : "");
  }
  CURLcode rc = CURLE_OK;
  long status = 0;
  for (int attempt = 0; attempt < 3; attempt++) {
    hoist_buf_reset(&body);
    rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_OK && status < 500 && status != 429)
      break;
    sleep(1u << attempt);
  }
  curl_easy_cleanup(c);
  if (rc != CURLE_OK)
    return hoist_err_set(err, ECONNRESET, "token service %s: %s", realm, curl_easy_strerror(rc));
  if (status == 401 || status == 403)
    return hoist_err_set(err, HOIST_E_AUTH,
                         "%s: authentication failed: the token service refused %s (HTTP %ld)", host,
                         creds ? "the credentials" : "anonymous access", status);
  if (status != 200)
    return hoist_err_set(err, HOIST_E_AUTH, "%s: token service %s answered HTTP %ld", host, realm,
                         status);
  json_error_t je;
  _cleanup_json_ json_t *j = json_loadb(body.data, body.len, 0, &je);
  const char *tok = j ? json_string_value(json_object_get(j, "token")) : NULL;
  if (!tok || !*tok)
    tok = j ? json_string_value(json_object_get(j, "access_token")) : NULL;
  if (!tok || !*tok)
    return hoist_err_set(err, HOIST_E_AUTH, "%s: token service %s answered without a token", host,
                         realm);
  json_t *exp = j ? json_object_get(j, "expires_in") : NULL;
  *ttl = json_is_integer(exp) && json_integer_value(exp) > 0 ? (long)json_integer_value(exp)
                                                             : TOKEN_DEFAULT_TTL;
  *token = hoist_strdup(tok);
  return 0;
}

int reg_auth_challenge(hoist_registry *r, const char *host, const char *scope, const char *www_auth,
                       hoist_err **err) {
  hoist_challenge ch;
  _cleanup_free_ char *token = NULL;
  long ttl = 0;
  if (hoist_challenge_parse(www_auth, &ch, err) < 0)
    return hoist_err_wrap(err, "%s", host);
  pthread_mutex_lock(&r->lock);
  reg_host *h = reg_host_get(r, host);
  free(h->scheme);
  h->scheme = hoist_strdup(ch.scheme);
  host_creds(r, h);
  bool have = h->have_creds;
  hoist_creds creds = {0};
  if (have) {
    creds.username = h->creds.username ? hoist_strdup(h->creds.username) : NULL;
    creds.password = h->creds.password ? hoist_strdup(h->creds.password) : NULL;
    creds.identity_token = h->creds.identity_token ? hoist_strdup(h->creds.identity_token) : NULL;
  }
  pthread_mutex_unlock(&r->lock);
  int ret = 0;
  if (strcmp(ch.scheme, "basic") == 0) {
    if (!have)
      ret = hoist_err_set(err, HOIST_E_AUTH,
                          "%s: authentication required (no credentials found: none were given "
                          "and no auth file knows the host)",
                          host);
    goto out;
  }
  const char *want = scope ? scope : (ch.scope ? ch.scope : "");
  ret = fetch_token(r, host, ch.realm, ch.service, want, have ? &creds : NULL, &token, &ttl, err);
  if (ret < 0)
    goto out;
  pthread_mutex_lock(&r->lock);
  reg_token *t = hoist_malloc0(sizeof *t);
  t->host = hoist_strdup(host);
  t->scope = hoist_strdup(scope ? scope : "");
  t->token = steal_pointer(&token);
  t->expires = time(NULL) + (ttl > 2 * TOKEN_MARGIN ? ttl - TOKEN_MARGIN : ttl);
  t->next = r->tokens;
  r->tokens = t;
  pthread_mutex_unlock(&r->lock);
out:
  hoist_creds_clear(&creds);
  hoist_challenge_clear(&ch);
  return ret;
}
