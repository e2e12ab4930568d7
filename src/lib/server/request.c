/* server: parsers of untrusted request input (authorization header, build
 * and cleanup bodies). Nothing here allocates on a refusal. */
#include <ctype.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "hoist/digest.h"
#include "hoist/ref.h"
#include "hoist/server.h"
#include "server-private.h"

static const char *const kinds[] = {"python", "nodejs", "php",    "java",
                                    "go",     "ruby",   "dotnet", NULL};

const char *const *hoist_server_kinds(void) { return kinds; }

bool server_utf8_text(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c == 0)
      return false;
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t need;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      need = 1;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    for (size_t k = 1; k <= need; k++) {
      if (i + k >= n || (s[i + k] & 0xc0) != 0x80)
        return false;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += need + 1;
  }
  return true;
}

static bool key_part_ok(const char *s, size_t n) {
  if (n == 0)
    return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
      return false;
  return true;
}

HOIST_WUR static int split_key(const char *s, size_t n, char **uuid, char **key, hoist_err **err) {
  const char *colon = memchr(s, ':', n);
  if (!colon)
    return hoist_err_set(err, HOIST_E_AUTH, "authorization: not uuid:key");
  size_t ul = (size_t)(colon - s), kl = n - ul - 1;
  if (!key_part_ok(s, ul) || !key_part_ok(colon + 1, kl) || memchr(colon + 1, ':', kl))
    return hoist_err_set(err, HOIST_E_AUTH, "authorization: malformed uuid:key");
  *uuid = strndup(s, ul);
  *key = strndup(colon + 1, kl);
  if (!*uuid || !*key)
    abort();
  return 0;
}

int hoist_server_parse_authorization(const char *header, char **uuid, char **key, hoist_err **err) {
  *uuid = *key = NULL;
  if (!header)
    return hoist_err_set(err, HOIST_E_AUTH, "authorization: missing");
  size_t n = strnlen(header, HOIST_SERVER_MAX_AUTH + 1);
  if (n > HOIST_SERVER_MAX_AUTH)
    return hoist_err_set(err, HOIST_E_AUTH, "authorization: too long");
  while (n && (header[0] == ' ' || header[0] == '\t'))
    header++, n--;
  while (n && (header[n - 1] == ' ' || header[n - 1] == '\t'))
    n--;
  bool basic = n > 6 && strncasecmp(header, "basic ", 6) == 0;
  if (basic) {
    header += 6;
    n -= 6;
    while (n && header[0] == ' ')
      header++, n--;
  }
  if (!basic && memchr(header, ':', n))
    return split_key(header, n, uuid, key, err);
  unsigned char *dec = NULL;
  size_t dl = 0;
  /* strict, padded; err NULL: a refusal allocates nothing */
  if (hoist_base64_decode(header, n, HOIST_SERVER_MAX_AUTH, 0, &dec, &dl, NULL) < 0)
    return hoist_err_set(err, HOIST_E_AUTH, "authorization: not base64");
  int ret = memchr(dec, '\0', dl) ? hoist_err_set(err, HOIST_E_AUTH, "authorization: NUL")
                                  : split_key((const char *)dec, dl, uuid, key, err);
  free(dec);
  return ret;
}

static int refuse(hoist_refusal *why, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(hoist_refusal *why, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  why->status = status;
  vsnprintf(why->message, sizeof why->message, fmt, ap);
  va_end(ap);
  return -1;
}

/* A tag of the Docker grammar: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. */
static bool tag_ok(const char *t) {
  size_t n = strlen(t);
  if (n == 0 || n > HOIST_TAG_MAX_LEN || t[0] == '.' || t[0] == '-')
    return false;
  for (size_t i = 0; i < n; i++)
    if (!(isalnum((unsigned char)t[i]) || t[i] == '_' || t[i] == '.' || t[i] == '-'))
      return false;
  return true;
}

/* A one-component repository name: [a-z0-9]+([._-][a-z0-9]+)*, at most 64. */
static bool user_ok(const char *u, size_t n) {
  if (n == 0 || n > 64)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = u[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (alnum)
      continue;
    if (c != '.' && c != '_' && c != '-')
      return false;
    if (i == 0 || i == n - 1)
      return false;
    char p = u[i - 1];
    if (!((p >= 'a' && p <= 'z') || (p >= '0' && p <= '9')))
      return false;
  }
  return true;
}

/* Reads a required string field: absent, null or "" is "No X provided",
 * another type or a string holding NUL is "Invalid X". */
static int string_field(json_t *o, const char *name, const char **out, hoist_refusal *why) {
  json_t *v = json_object_get(o, name);
  if (!v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0))
    return refuse(why, 400, "No %s provided for build.", name);
  if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
    return refuse(why, 400, "Invalid %s for the build.", name);
  *out = json_string_value(v);
  return 0;
}

void hoist_build_request_clear(hoist_build_request *r) {
  free(r->source);
  free(r->target);
  free(r->target_user);
  free(r->target_tag);
  free(r->kind);
  free(r->file);
  memset(r, 0, sizeof *r);
}

int hoist_server_parse_start(const char *body, size_t len, const char *login,
                             const char *const *known, bool strict_user, hoist_build_request *out,
                             hoist_refusal *why) {
  memset(out, 0, sizeof *out);
  if (!body || len == 0)
    return refuse(why, 400, "No JSON payload provided for build.");
  /* \u0000 loads, so that the field holding it is the one refused */
  json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
  if (!root || !json_is_object(root)) {
    json_decref(root);
    return refuse(why, 400, "No JSON payload provided for build.");
  }
  const char *source = NULL, *target = NULL, *kind = NULL;
  int ret = -1;
  if (string_field(root, "source", &source, why) < 0 ||
      string_field(root, "target", &target, why) < 0 || string_field(root, "kind", &kind, why) < 0)
    goto out;

  /* target: exactly user:tag, the user being the caller */
  const char *colon = strchr(target, ':');
  if (!colon || !user_ok(target, (size_t)(colon - target)) || !tag_ok(colon + 1)) {
    refuse(why, 400, "Invalid target for the build.");
    goto out;
  }
  size_t ul = (size_t)(colon - target);
  if (strict_user) {
    bool same = strlen(login) == ul;
    for (size_t i = 0; same && i < ul; i++)
      same = (char)tolower((unsigned char)login[i]) == target[i];
    if (!same) {
      refuse(why, 400, "Invalid target for the build.");
      goto out;
    }
  }

  hoist_ref *ref = NULL;
  if (strlen(source) > HOIST_REF_MAX_LEN || hoist_ref_parse(source, &ref, NULL) < 0) {
    refuse(why, 400, "Invalid source for the build.");
    goto out;
  }
  hoist_ref_free(ref);

  bool kind_known = false;
  for (size_t i = 0; known[i]; i++)
    kind_known = kind_known || strcmp(known[i], kind) == 0;
  if (!kind_known) {
    char list[256] = "";
    for (size_t i = 0; known[i]; i++) {
      if (i)
        strncat(list, ", ", sizeof list - strlen(list) - 1);
      strncat(list, known[i], sizeof list - strlen(list) - 1);
    }
    refuse(why, 400, "Unknown kind \"%.64s\" (known kinds: %s).", kind, list);
    goto out;
  }

  json_t *f = json_object_get(root, "file");
  unsigned char *file = NULL;
  size_t file_len = 0;
  if (f && !json_is_null(f)) {
    if (!json_is_string(f)) {
      refuse(why, 400, "Requirements file must be valid base64-encoded data");
      goto out;
    }
    size_t bl = json_string_length(f);
    if (bl > HOIST_SERVER_MAX_FILE_B64) {
      refuse(why, 400, "Requirements file too large (max 10MB base64-encoded)");
      goto out;
    }
    int d = hoist_base64_decode(json_string_value(f), bl, HOIST_SERVER_MAX_FILE_BYTES, 0, &file,
                                &file_len, NULL);
    if (d == -HOIST_E_LIMIT) {
      refuse(why, 400, "Decoded requirements file too large (max 5MB)");
      goto out;
    }
    if (d < 0) {
      refuse(why, 400, "Requirements file must be valid base64-encoded data");
      goto out;
    }
    if (!server_utf8_text(file, file_len)) {
      free(file);
      refuse(why, 400, "Requirements file must be UTF-8 text");
      goto out;
    }
  }

  out->source = hoist_strdup(source);
  out->target = hoist_strdup(target);
  out->target_user = strndup(target, ul);
  out->target_tag = hoist_strdup(colon + 1);
  out->kind = hoist_strdup(kind);
  out->file = file;
  out->file_len = file_len;
  if (file)
    hoist_sha256_of(file, file_len, out->file_digest);
  ret = 0;
out:
  json_decref(root);
  return ret;
}

int hoist_server_parse_cleanup(const char *body, size_t len, double *hours, hoist_refusal *why) {
  *hours = 24;
  if (!body || len == 0)
    return 0;
  json_t *root = json_loadb(body, len, JSON_ALLOW_NUL, NULL);
  if (!root || !json_is_object(root)) {
    json_decref(root);
    return refuse(why, 400, "No JSON payload provided for cleanup.");
  }
  json_t *v = json_object_get(root, "max_age_hours");
  int ret = 0;
  if (v && !json_is_null(v)) {
    double h = NAN;
    if (json_is_number(v) && !json_is_boolean(v)) {
      h = json_number_value(v);
    } else if (json_is_string(v)) {
      const char *s = json_string_value(v);
      char *end = NULL;
      while (*s == ' ')
        s++;
      if (*s && strlen(s) == json_string_length(v) - (size_t)(s - json_string_value(v))) {
        h = strtod(s, &end);
        while (end && *end == ' ')
          end++;
        if (!end || *end || end == s)
          h = NAN;
      }
    }
    if (!isfinite(h) || h < 0)
      ret = refuse(why, 400, "Invalid max_age_hours: must be a non-negative number.");
    else
      *hours = h;
  }
  json_decref(root);
  return ret;
}
