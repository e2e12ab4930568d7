/*
 * Image references and locations: a hand-written parser for the Docker
 * reference grammar
 *
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [ domain "/" ] path
 *   domain    := host [ ":" port ]
 *   host      := label ( "." label )*  |  "[" ipv6 "]"
 *   label     := [A-Za-z0-9] | [A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]
 *   path      := component ( "/" component )*
 *   component := [a-z0-9]+ ( separator [a-z0-9]+ )*
 *   separator := "." | "_" | "__" | "-"+
 *   tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *
 * with Docker's normalization (docker.io, library/, latest). The input is
 * untrusted (it arrives in HTTP requests): every check works on explicit
 * (pointer, length) slices of the input, nothing is copied until the whole
 * reference has been accepted, and messages quote the input escaped and
 * truncated.
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <string.h>

#include "hoist/digest.h"
#include "hoist/ref.h"

#define DEFAULT_DOMAIN "docker.io"
#define LEGACY_DOMAIN "index.docker.io"
#define OFFICIAL_PREFIX "library/"
#define DEFAULT_TAG "latest"

/* Room for one reason ("invalid separator \"..\" in path component ..."). */
#define WHY_MAX 256
/* Room for the quoted input at the head of a message. */
#define QUOTE_MAX 160

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
static bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
static bool is_lower_alnum(char c) { return is_lower(c) || is_digit(c); }
static bool is_alnum(char c) { return is_lower(c) || is_upper(c) || is_digit(c); }
static bool is_word(char c) { return is_alnum(c) || c == '_'; }
static bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static char *xstrndup(const char *s, size_t n) {
  char *p = strndup(s, n);
  if (!p)
    abort();
  return p;
}

/* Writes s[0..n) into out (outsz >= 4) with '"', '\\' and every byte outside
 * printable ASCII escaped, ending in "..." when it does not fit. */
static void quote(const char *s, size_t n, char *out, size_t outsz) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    char e[8];
    if (c == '"' || c == '\\')
      snprintf(e, sizeof e, "\\%c", c);
    else if (c == '\n')
      snprintf(e, sizeof e, "\\n");
    else if (c == '\t')
      snprintf(e, sizeof e, "\\t");
    else if (c == '\r')
      snprintf(e, sizeof e, "\\r");
    else if (c < 0x20 || c >= 0x7f)
      snprintf(e, sizeof e, "\\x%02x", c);
    else
      snprintf(e, sizeof e, "%c", c);
    size_t el = strlen(e);
    /* keep room for "..." and the NUL after every append */
    if (o + el + 4 > outsz) {
      memcpy(out + o, "...", 3);
      o += 3;
      break;
    }
    memcpy(out + o, e, el);
    o += el;
  }
  out[o] = '\0';
}

/* Names a byte for a message: "';'", "space", "newline", "byte 0x80". */
static const char *char_name(char ch, char buf[16]) {
  unsigned char c = (unsigned char)ch;
  if (c == ' ')
    return "space";
  if (c == '\n')
    return "newline";
  if (c == '\t')
    return "tab";
  if (c == '\r')
    return "carriage return";
  if (c < 0x20 || c >= 0x7f)
    snprintf(buf, 16, "byte 0x%02x", c);
  else
    snprintf(buf, 16, "'%c'", c);
  return buf;
}

static void why_set(char why[WHY_MAX], const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void why_set(char why[WHY_MAX], const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, WHY_MAX, fmt, ap);
  va_end(ap);
}

/* Sets "invalid <what> \"<input>\": <why>" and returns -HOIST_E_FORMAT. */
HOIST_WUR static int fail(hoist_err **err, const char *what, const char *input, const char *why) {
  char q[QUOTE_MAX];
  quote(input, strlen(input), q, sizeof q);
  return hoist_err_set(err, HOIST_E_FORMAT, "invalid %s \"%s\": %s", what, q, why);
}

/* ------------------------------------------------------------ pieces */

/* Checks a tag against [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. */
static bool tag_ok(const char *t, size_t n, char why[WHY_MAX]) {
  char cb[16];
  if (n == 0) {
    why_set(why, "empty tag after ':'");
    return false;
  }
  if (n > HOIST_TAG_MAX_LEN) {
    why_set(why, "tag too long (%zu characters, at most %d)", n, HOIST_TAG_MAX_LEN);
    return false;
  }
  if (!is_word(t[0])) {
    why_set(why, "tag must start with a letter, digit or '_', not %s", char_name(t[0], cb));
    return false;
  }
  for (size_t i = 1; i < n; i++) {
    if (!is_word(t[i]) && t[i] != '.' && t[i] != '-') {
      why_set(why, "invalid character %s in tag", char_name(t[i], cb));
      return false;
    }
  }
  return true;
}

/* Checks a port: 1 to 65535 in decimal. */
static bool port_ok(const char *p, size_t n, char why[WHY_MAX]) {
  char q[24];
  if (n == 0) {
    why_set(why, "empty port after ':' in domain");
    return false;
  }
  quote(p, n, q, sizeof q);
  unsigned long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (!is_digit(p[i])) {
      why_set(why, "invalid port \"%s\": not a number", q);
      return false;
    }
    v = v * 10 + (unsigned long)(p[i] - '0');
    if (v > 65535)
      break;
  }
  if (v == 0 || v > 65535) {
    why_set(why, "invalid port \"%s\": out of range 1-65535", q);
    return false;
  }
  return true;
}

/* Checks "[ipv6]" (hex digits and colons only: no zone, no embedded IPv4). */
static bool ipv6_ok(const char *d, size_t n, char why[WHY_MAX]) {
  char cb[16], q[64];
  /* d[0] == '[' and d[n-1] == ']' */
  const char *a = d + 1;
  size_t an = n - 2;
  if (an == 0) {
    why_set(why, "empty IPv6 address in domain");
    return false;
  }
  for (size_t i = 0; i < an; i++) {
    if (!is_hex(a[i]) && a[i] != ':') {
      why_set(why, "invalid character %s in IPv6 address", char_name(a[i], cb));
      return false;
    }
  }
  char buf[INET6_ADDRSTRLEN];
  struct in6_addr addr;
  if (an >= sizeof buf) {
    quote(a, an, q, sizeof q);
    why_set(why, "invalid IPv6 address \"%s\"", q);
    return false;
  }
  memcpy(buf, a, an);
  buf[an] = '\0';
  if (inet_pton(AF_INET6, buf, &addr) != 1) {
    why_set(why, "invalid IPv6 address \"%s\"", buf);
    return false;
  }
  return true;
}

/* Checks a domain: host[:port] or [ipv6][:port]. */
static bool domain_ok(const char *d, size_t n, char why[WHY_MAX]) {
  char cb[16], q[80];
  const char *port = NULL;
  size_t port_n = 0;
  if (d[0] == '[') {
    const char *close = memchr(d, ']', n);
    if (!close) {
      why_set(why, "missing ']' after IPv6 address in domain");
      return false;
    }
    size_t host_n = (size_t)(close - d) + 1;
    if (!ipv6_ok(d, host_n, why))
      return false;
    if (host_n < n) {
      if (d[host_n] != ':') {
        why_set(why, "unexpected %s after IPv6 address in domain", char_name(d[host_n], cb));
        return false;
      }
      port = d + host_n + 1;
      port_n = n - host_n - 1;
    }
  } else {
    const char *colon = memchr(d, ':', n);
    size_t host_n = colon ? (size_t)(colon - d) : n;
    if (colon) {
      port = colon + 1;
      port_n = n - host_n - 1;
      if (memchr(port, ':', port_n)) {
        why_set(why, "an IPv6 address in a domain must be enclosed in brackets");
        return false;
      }
    }
    if (host_n == 0) {
      why_set(why, "empty host name before the port");
      return false;
    }
    /* labels separated by '.' */
    size_t start = 0;
    for (size_t i = 0; i <= host_n; i++) {
      if (i < host_n && d[i] != '.') {
        if (!is_alnum(d[i]) && d[i] != '-') {
          why_set(why, "invalid character %s in domain", char_name(d[i], cb));
          return false;
        }
        continue;
      }
      size_t ln = i - start;
      if (ln == 0) {
        why_set(why, "empty label in domain (leading, trailing or double '.')");
        return false;
      }
      if (d[start] == '-' || d[i - 1] == '-') {
        quote(d + start, ln, q, sizeof q);
        why_set(why, "domain label \"%s\" starts or ends with '-'", q);
        return false;
      }
      start = i + 1;
    }
  }
  if (port && !port_ok(port, port_n, why))
    return false;
  return true;
}

/* Checks one path component: [a-z0-9]+ ( ("." | "_" | "__" | "-"+) [a-z0-9]+ )*.
 * Characters outside [a-z0-9._-] were refused before. */
static bool component_ok(const char *c, size_t n, char why[WHY_MAX]) {
  char q[80], sq[16];
  quote(c, n, q, sizeof q);
  if (!is_lower_alnum(c[0])) {
    why_set(why, "path component \"%s\" must start with a lowercase letter or digit", q);
    return false;
  }
  if (!is_lower_alnum(c[n - 1])) {
    why_set(why, "path component \"%s\" must end with a lowercase letter or digit", q);
    return false;
  }
  size_t i = 0;
  while (i < n) {
    if (is_lower_alnum(c[i])) {
      i++;
      continue;
    }
    size_t j = i;
    bool dashes = true;
    while (j < n && !is_lower_alnum(c[j])) {
      dashes = dashes && c[j] == '-';
      j++;
    }
    size_t sn = j - i;
    bool ok = dashes || (sn == 1 && (c[i] == '.' || c[i] == '_')) ||
              (sn == 2 && c[i] == '_' && c[i + 1] == '_');
    if (!ok) {
      quote(c + i, sn, sq, sizeof sq);
      why_set(why, "invalid separator \"%s\" in path component \"%s\"", sq, q);
      return false;
    }
    i = j;
  }
  return true;
}

/* Checks the repository path: lowercase components separated by single '/'. */
static bool path_ok(const char *p, size_t n, char why[WHY_MAX]) {
  char cb[16];
  for (size_t i = 0; i < n; i++) {
    if (is_upper(p[i])) {
      why_set(why, "repository name must be lowercase");
      return false;
    }
  }
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (!is_lower_alnum(c) && c != '.' && c != '_' && c != '-' && c != '/') {
      why_set(why, "invalid character %s in repository path", char_name(c, cb));
      return false;
    }
  }
  size_t start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i < n && p[i] != '/')
      continue;
    if (i == start) {
      why_set(why, "empty path component");
      return false;
    }
    if (!component_ok(p + start, i - start, why))
      return false;
    start = i + 1;
  }
  return true;
}

/* ------------------------------------------------------------ parser */

typedef struct {
  const char *domain; /* into the input, or a static string */
  size_t domain_n;
  bool official; /* path gets "library/" in front */
  const char *path;
  size_t path_n;
  const char *tag; /* NULL when absent */
  size_t tag_n;
  const char *digest; /* NUL-terminated, into the input; NULL when absent */
} ref_parts;

/* Splits and validates s without allocating; on failure writes the reason. */
static bool split_ref(const char *s, ref_parts *p, char why[WHY_MAX]) {
  char cb[16];
  memset(p, 0, sizeof *p);
  size_t n = strlen(s);
  if (n == 0) {
    why_set(why, "empty reference");
    return false;
  }
  /* whitespace, control bytes and non-ASCII are never part of a reference */
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 0x20 || c >= 0x7f) {
      why_set(why, "invalid character %s at position %zu", char_name(s[i], cb), i);
      return false;
    }
  }
  if (n == HOIST_DIGEST_HEX_LEN) {
    bool hex = true;
    for (size_t i = 0; i < n && hex; i++)
      hex = is_digit(s[i]) || (s[i] >= 'a' && s[i] <= 'f');
    if (hex) {
      why_set(why, "a 64-character hexadecimal string is an image ID, not a repository name");
      return false;
    }
  }

  /* name[:tag] @ digest */
  const char *at = memchr(s, '@', n);
  size_t name_end = at ? (size_t)(at - s) : n;
  if (at) {
    if (strchr(at + 1, '@')) {
      why_set(why, "more than one '@'");
      return false;
    }
    if (at[1] == '\0') {
      why_set(why, "empty digest after '@'");
      return false;
    }
    p->digest = at + 1;
  }
  for (size_t i = 0; i < name_end; i++) {
    char c = s[i];
    if (!is_alnum(c) && !strchr("._-/:[]", c)) {
      why_set(why, "invalid character %s at position %zu", char_name(c, cb), i);
      return false;
    }
  }

  /* the tag follows the last ':' that has no '/' or ']' after it */
  size_t name_n = name_end;
  for (size_t i = name_end; i > 0; i--) {
    char c = s[i - 1];
    if (c == '/' || c == ']')
      break;
    if (c == ':') {
      name_n = i - 1;
      p->tag = s + i;
      p->tag_n = name_end - i;
      break;
    }
  }
  if (name_n == 0) {
    why_set(why, "missing repository name");
    return false;
  }
  if (p->tag && !tag_ok(p->tag, p->tag_n, why))
    return false;

  /* name: slashes first, so that each message names the actual fault */
  if (s[0] == '/') {
    why_set(why, "repository name starts with '/'");
    return false;
  }
  if (s[name_n - 1] == '/') {
    why_set(why, "repository name ends with '/'");
    return false;
  }
  for (size_t i = 1; i < name_n; i++) {
    if (s[i] == '/' && s[i - 1] == '/') {
      why_set(why, "empty path component (\"//\")");
      return false;
    }
  }

  /* domain: the first component, when it looks like one (as Docker decides) */
  const char *slash = memchr(s, '/', name_n);
  p->domain = DEFAULT_DOMAIN;
  p->domain_n = strlen(DEFAULT_DOMAIN);
  p->path = s;
  p->path_n = name_n;
  if (slash) {
    size_t first_n = (size_t)(slash - s);
    bool is_domain = (first_n == 9 && memcmp(s, "localhost", 9) == 0) || s[0] == '[';
    for (size_t i = 0; i < first_n && !is_domain; i++)
      is_domain = s[i] == '.' || s[i] == ':' || is_upper(s[i]);
    if (first_n == strlen(LEGACY_DOMAIN) && memcmp(s, LEGACY_DOMAIN, first_n) == 0) {
      p->path = slash + 1;
      p->path_n = name_n - first_n - 1;
    } else if (is_domain) {
      if (!domain_ok(s, first_n, why))
        return false;
      p->domain = s;
      p->domain_n = first_n;
      p->path = slash + 1;
      p->path_n = name_n - first_n - 1;
    }
  } else if (s[0] == '[') {
    why_set(why, "a registry host needs a repository path after it");
    return false;
  }
  if (!path_ok(p->path, p->path_n, why))
    return false;
  p->official = p->domain_n == strlen(DEFAULT_DOMAIN) &&
                memcmp(p->domain, DEFAULT_DOMAIN, p->domain_n) == 0 &&
                !memchr(p->path, '/', p->path_n);

  size_t total = p->domain_n + 1 + (p->official ? strlen(OFFICIAL_PREFIX) : 0) + p->path_n;
  if (total > HOIST_REF_MAX_LEN) {
    why_set(why, "repository name too long (%zu characters, at most %d)", total, HOIST_REF_MAX_LEN);
    return false;
  }

  if (p->digest) {
    hoist_err *derr = NULL;
    if (hoist_digest_parse(p->digest, NULL, &derr) < 0) {
      char *t = hoist_err_text(derr);
      why_set(why, "%s", t);
      free(t);
      hoist_err_free(derr);
      return false;
    }
  }
  return true;
}

int hoist_ref_parse(const char *s, hoist_ref **out, hoist_err **err) {
  char why[WHY_MAX];
  ref_parts p;
  if (!s)
    s = "";
  if (!split_ref(s, &p, why))
    return fail(err, "reference", s, why);
  hoist_ref *r = hoist_malloc0(sizeof *r);
  r->domain = xstrndup(p.domain, p.domain_n);
  if (p.official)
    r->path = hoist_asprintf("%s%.*s", OFFICIAL_PREFIX, (int)p.path_n, p.path);
  else
    r->path = xstrndup(p.path, p.path_n);
  if (p.tag)
    r->tag = xstrndup(p.tag, p.tag_n);
  else if (!p.digest)
    r->tag = hoist_strdup(DEFAULT_TAG);
  if (p.digest)
    r->digest = hoist_strdup(p.digest);
  *out = r;
  return 0;
}

int hoist_ref_parse_short(const char *s, const char *prefix, hoist_ref **out, hoist_err **err) {
  if (!s || !prefix || !*prefix || !*s || strpbrk(s, "/:.@"))
    return hoist_ref_parse(s, out, err);
  /* check the name itself, so that messages quote what the caller gave */
  char why[WHY_MAX], cb[16];
  size_t n = strlen(s);
  for (size_t i = 0; i < n; i++) {
    if (is_upper(s[i])) {
      why_set(why, "repository name must be lowercase");
      return fail(err, "reference", s, why);
    }
    if (!is_lower_alnum(s[i]) && s[i] != '_' && s[i] != '-') {
      why_set(why, "invalid character %s at position %zu", char_name(s[i], cb), i);
      return fail(err, "reference", s, why);
    }
  }
  if (!component_ok(s, n, why))
    return fail(err, "reference", s, why);
  size_t pn = strlen(prefix);
  while (pn > 0 && prefix[pn - 1] == '/')
    pn--;
  _cleanup_free_ char *full = hoist_asprintf("%.*s/%s:%s", (int)pn, prefix, s, DEFAULT_TAG);
  return hoist_ref_parse(full, out, err);
}

char *hoist_ref_string(const hoist_ref *r) {
  return hoist_asprintf("%s/%s%s%s%s%s", r->domain, r->path, r->tag ? ":" : "",
                        r->tag ? r->tag : "", r->digest ? "@" : "", r->digest ? r->digest : "");
}

char *hoist_ref_repository(const hoist_ref *r) {
  return hoist_asprintf("%s/%s", r->domain, r->path);
}

const char *hoist_ref_reference(const hoist_ref *r) { return r->digest ? r->digest : r->tag; }

/* The strings a reference and a location own, each listed once for the copy
 * and the free, so that neither can miss a field the other has. */
static const size_t ref_strings[] = {offsetof(hoist_ref, domain), offsetof(hoist_ref, path),
                                     offsetof(hoist_ref, tag), offsetof(hoist_ref, digest)};
static const size_t loc_strings[] = {offsetof(hoist_loc, dir), offsetof(hoist_loc, path),
                                     offsetof(hoist_loc, tag)};
#define N_FIELDS(a) (sizeof(a) / sizeof *(a))

static char **string_at(const void *obj, size_t offset) {
  return (char **)((uintptr_t)obj + offset);
}

/* Copies the strings at the n offsets of src into dst (NULL stays NULL). */
static void strings_dup(void *dst, const void *src, const size_t *offsets, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const char *s = *string_at(src, offsets[i]);
    *string_at(dst, offsets[i]) = s ? hoist_strdup(s) : NULL;
  }
}

static void strings_free(void *obj, const size_t *offsets, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(*string_at(obj, offsets[i]));
}

hoist_ref *hoist_ref_dup(const hoist_ref *r) {
  if (!r)
    return NULL;
  hoist_ref *d = hoist_malloc0(sizeof *d);
  strings_dup(d, r, ref_strings, N_FIELDS(ref_strings));
  return d;
}

void hoist_ref_free(hoist_ref *r) {
  if (!r)
    return;
  strings_free(r, ref_strings, N_FIELDS(ref_strings));
  free(r);
}

/* ---------------------------------------------------------- locations */

#define REGISTRY_PREFIX "docker://"
#define SUPPORTED "docker://REF, oci:DIR[:TAG], oci-archive:PATH[:TAG], docker-archive:PATH[:REF]"

/* The transports a location may start with (ref.h has the rule). kind 0:
 * another tool's transport, named so that it is refused, never read as an
 * image of Docker Hub. "docker" is the registry only as "docker://": a bare
 * "docker:TAG" is Docker Hub's docker image. */
static const struct transport {
  const char *name;
  hoist_loc_kind kind;
} transports[] = {
    {"docker", HOIST_LOC_REGISTRY},
    {"oci", HOIST_LOC_LAYOUT},
    {"oci-archive", HOIST_LOC_OCI_ARCHIVE},
    {"docker-archive", HOIST_LOC_DOCKER_ARCHIVE},
    {"containers-storage", 0},
    {"docker-daemon", 0},
    {"dir", 0},
    {"ostree", 0},
    {"sif", 0},
    {"tarball", 0},
    {"atomic", 0},
};

static const struct transport *transport_named(const char *w, size_t n) {
  for (size_t i = 0; i < sizeof transports / sizeof *transports; i++)
    if (strlen(transports[i].name) == n && memcmp(transports[i].name, w, n) == 0)
      return &transports[i];
  return NULL;
}

/* True when rest, the text after "WORD:", continues a registry reference:
 * a port (digits, then '/') or a tag (up to an optional "@digest"). */
static bool continues_reference(const char *rest) {
  size_t d = 0;
  while (is_digit(rest[d]))
    d++;
  if (d > 0 && rest[d] == '/')
    return true;
  size_t n = strcspn(rest, "@");
  char why[WHY_MAX];
  return tag_ok(rest, n, why);
}

/* The length of the transport word s starts with, or 0 when s is a
 * registry reference: the word [a-z][a-z0-9-]* before the first ':' when it
 * names a transport (docker only as "docker://") or when what follows the
 * ':' cannot continue a reference. "localhost" is always a registry host. */
static size_t transport_word(const char *s) {
  size_t n = 0;
  if (!is_lower(s[0]))
    return 0;
  while (is_lower_alnum(s[n]) || s[n] == '-')
    n++;
  if (s[n] != ':' || (n == 9 && memcmp(s, "localhost", 9) == 0))
    return 0;
  if (strncmp(s, REGISTRY_PREFIX, strlen(REGISTRY_PREFIX)) == 0)
    return n;
  if (transport_named(s, n) && (n != 6 || memcmp(s, "docker", 6) != 0))
    return n;
  return continues_reference(s + n + 1) ? 0 : n;
}

/* Checks a directory or archive path (what follows the transport, up to its
 * ':'): not empty, no control bytes. */
static bool path_ok_loc(const char *p, size_t n, const char *transport, char why[WHY_MAX]) {
  char cb[16];
  if (n == 0) {
    why_set(why, "empty %s after \"%s:\"", strcmp(transport, "oci") == 0 ? "directory" : "path",
            transport);
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c < 0x20 || c == 0x7f) {
      why_set(why, "invalid character %s in %s", char_name(p[i], cb),
              strcmp(transport, "oci") == 0 ? "directory" : "path");
      return false;
    }
  }
  return true;
}

/* "oci:DIR[:TAG]" and "oci-archive:PATH[:TAG]": rest is what follows the
 * transport's ':'. */
HOIST_WUR static int parse_tagged(const char *s, const char *rest, hoist_loc_kind kind,
                                  const char *transport, hoist_loc **out, hoist_err **err) {
  char why[WHY_MAX];
  const char *colon = strchr(rest, ':');
  size_t pn = colon ? (size_t)(colon - rest) : strlen(rest);
  if (!path_ok_loc(rest, pn, transport, why))
    return fail(err, "location", s, why);
  if (colon && !tag_ok(colon + 1, strlen(colon + 1), why))
    return fail(err, "location", s, why);
  hoist_loc *l = hoist_malloc0(sizeof *l);
  l->kind = kind;
  l->index = -1;
  if (kind == HOIST_LOC_LAYOUT)
    l->dir = xstrndup(rest, pn);
  else
    l->path = xstrndup(rest, pn);
  l->tag = colon ? hoist_strdup(colon + 1) : NULL;
  *out = l;
  return 0;
}

/* "docker-archive:PATH[:REF|:@N]". */
HOIST_WUR static int parse_docker_archive(const char *s, const char *rest, hoist_loc **out,
                                          hoist_err **err) {
  char why[WHY_MAX];
  const char *colon = strchr(rest, ':');
  size_t pn = colon ? (size_t)(colon - rest) : strlen(rest);
  if (!path_ok_loc(rest, pn, "docker-archive", why))
    return fail(err, "location", s, why);
  _cleanup_ref_ hoist_ref *ref = NULL;
  int index = -1;
  if (colon && colon[1] == '@') {
    const char *d = colon + 2;
    size_t dn = strlen(d);
    long v = 0;
    for (size_t i = 0; i < dn && v <= 1000000; i++)
      v = is_digit(d[i]) ? v * 10 + (d[i] - '0') : -1;
    if (dn == 0 || dn > 7 || v < 0)
      return fail(err, "location", s, "an image of an archive is @N, N a number");
    index = (int)v;
  } else if (colon) {
    hoist_err *e = NULL;
    if (hoist_ref_parse(colon + 1, &ref, &e) < 0) {
      _cleanup_free_ char *t = hoist_err_text(e);
      hoist_err_free(e);
      why_set(why, "%s", t);
      return fail(err, "location", s, why);
    }
    if (ref->digest)
      return fail(err, "location", s,
                  "an archive's image is named by name:tag, not by digest (RepoTags)");
  }
  hoist_loc *l = hoist_malloc0(sizeof *l);
  l->kind = HOIST_LOC_DOCKER_ARCHIVE;
  l->path = xstrndup(rest, pn);
  l->ref = steal_pointer(&ref);
  l->index = index;
  *out = l;
  return 0;
}

int hoist_loc_parse(const char *s, hoist_loc **out, hoist_err **err) {
  char why[WHY_MAX];
  if (!s || !*s)
    return fail(err, "location", "", "empty location");
  size_t wn = transport_word(s);
  if (wn > 0) {
    const struct transport *t = transport_named(s, wn);
    const char *rest = s + wn + 1;
    if (!t) {
      why_set(why, "unknown transport \"%.*s\" (hoist reads and writes " SUPPORTED ")", (int)wn, s);
      return fail(err, "location", s, why);
    }
    switch (t->kind) {
    case HOIST_LOC_LAYOUT:
    case HOIST_LOC_OCI_ARCHIVE:
      return parse_tagged(s, rest, t->kind, t->name, out, err);
    case HOIST_LOC_DOCKER_ARCHIVE:
      return parse_docker_archive(s, rest, out, err);
    case HOIST_LOC_REGISTRY:
      if (strncmp(s, REGISTRY_PREFIX, strlen(REGISTRY_PREFIX)) != 0)
        return fail(err, "location", s, "the registry transport is written docker://REF");
      s += strlen(REGISTRY_PREFIX);
      break;
    default:
      why_set(why, "transport \"%s\" is not supported (hoist reads and writes " SUPPORTED ")",
              t->name);
      return fail(err, "location", s, why);
    }
  }
  hoist_ref *r = NULL;
  int ret = hoist_ref_parse(s, &r, err);
  if (ret < 0)
    return ret;
  hoist_loc *l = hoist_malloc0(sizeof *l);
  l->kind = HOIST_LOC_REGISTRY;
  l->ref = r;
  l->index = -1;
  *out = l;
  return 0;
}

char *hoist_loc_string(const hoist_loc *l) {
  switch (l->kind) {
  case HOIST_LOC_LAYOUT:
    return l->tag ? hoist_asprintf("oci:%s:%s", l->dir, l->tag) : hoist_asprintf("oci:%s", l->dir);
  case HOIST_LOC_OCI_ARCHIVE:
    return l->tag ? hoist_asprintf("oci-archive:%s:%s", l->path, l->tag)
                  : hoist_asprintf("oci-archive:%s", l->path);
  case HOIST_LOC_DOCKER_ARCHIVE: {
    if (l->index >= 0)
      return hoist_asprintf("docker-archive:%s:@%d", l->path, l->index);
    if (!l->ref)
      return hoist_asprintf("docker-archive:%s", l->path);
    _cleanup_free_ char *ref = hoist_ref_string(l->ref);
    return hoist_asprintf("docker-archive:%s:%s", l->path, ref);
  }
  default:
    break;
  }
  _cleanup_free_ char *ref = hoist_ref_string(l->ref);
  /* a registry named like a transport ("oci:5000") would read back as one */
  if (transport_word(ref) > 0)
    return hoist_asprintf("%s%s", REGISTRY_PREFIX, ref);
  return steal_pointer(&ref);
}

const char *hoist_loc_tag(const hoist_loc *l) {
  switch (l->kind) {
  case HOIST_LOC_REGISTRY:
    return l->ref->digest ? NULL : l->ref->tag;
  case HOIST_LOC_DOCKER_ARCHIVE:
    return l->ref ? l->ref->tag : NULL;
  default:
    return l->tag;
  }
}

hoist_loc *hoist_loc_dup(const hoist_loc *l) {
  if (!l)
    return NULL;
  hoist_loc *d = hoist_malloc0(sizeof *d);
  d->kind = l->kind;
  d->index = l->index;
  d->ref = hoist_ref_dup(l->ref);
  strings_dup(d, l, loc_strings, N_FIELDS(loc_strings));
  return d;
}

void hoist_loc_free(hoist_loc *l) {
  if (!l)
    return;
  hoist_ref_free(l->ref);
  strings_free(l, loc_strings, N_FIELDS(loc_strings));
  free(l);
}
