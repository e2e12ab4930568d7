/* attest: an SBOM as an SPDX 2.3 JSON document. */
#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "hoist/oci.h"
#include "sbom-private.h"

/* License identifiers of the SPDX License List (3.x) that package records
 * commonly declare, and its exceptions. A declared license made of others
 * is written as NOASSERTION: hoist vouches only for what it can check. */
static const char *const licenses[] = {
    "0BSD",
    "AFL-2.1",
    "AFL-3.0",
    "AGPL-1.0",
    "AGPL-3.0",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "Apache-1.0",
    "Apache-1.1",
    "Apache-2.0",
    "APSL-2.0",
    "Artistic-1.0",
    "Artistic-1.0-Perl",
    "Artistic-2.0",
    "Beerware",
    "BlueOak-1.0.0",
    "BSD-1-Clause",
    "BSD-2-Clause",
    "BSD-2-Clause-Patent",
    "BSD-3-Clause",
    "BSD-3-Clause-Clear",
    "BSD-4-Clause",
    "BSL-1.0",
    "bzip2-1.0.6",
    "CC-BY-3.0",
    "CC-BY-4.0",
    "CC-BY-SA-3.0",
    "CC-BY-SA-4.0",
    "CC0-1.0",
    "CDDL-1.0",
    "CDDL-1.1",
    "CPL-1.0",
    "curl",
    "ECL-2.0",
    "EPL-1.0",
    "EPL-2.0",
    "EUPL-1.1",
    "EUPL-1.2",
    "FSFAP",
    "FTL",
    "GFDL-1.2-only",
    "GFDL-1.2-or-later",
    "GFDL-1.3-only",
    "GFDL-1.3-or-later",
    "GPL-1.0-only",
    "GPL-1.0-or-later",
    "GPL-2.0",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "HPND",
    "ICU",
    "IJG",
    "ISC",
    "LGPL-2.0-only",
    "LGPL-2.0-or-later",
    "LGPL-2.1",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "Libpng",
    "libtiff",
    "MIT",
    "MIT-0",
    "MIT-CMU",
    "MPL-1.1",
    "MPL-2.0",
    "MPL-2.0-no-copyleft-exception",
    "MS-PL",
    "NCSA",
    "OFL-1.1",
    "OpenSSL",
    "PHP-3.0",
    "PHP-3.01",
    "PostgreSQL",
    "PSF-2.0",
    "Python-2.0",
    "Ruby",
    "Sleepycat",
    "Unicode-3.0",
    "Unicode-DFS-2016",
    "Unlicense",
    "UPL-1.0",
    "W3C",
    "WTFPL",
    "X11",
    "Zlib",
    "ZPL-2.1",
};
static const char *const exceptions[] = {
    "Autoconf-exception-3.0", "Bison-exception-2.2", "Classpath-exception-2.0",
    "GCC-exception-3.1",      "LLVM-exception",      "OpenSSL-exception",
};

typedef struct lexer {
  const char *p;
  char tok[SBOM_FIELD_MAX + 1];
} lexer;

/* The next token of an expression into l->tok: "(", ")", or a word;
 * "" at the end; false on a character no expression holds. */
static bool lex(lexer *l) {
  while (*l->p == ' ')
    l->p++;
  if (*l->p == '(' || *l->p == ')') {
    l->tok[0] = *l->p++;
    l->tok[1] = '\0';
    return true;
  }
  size_t n = 0;
  while ((*l->p >= 'a' && *l->p <= 'z') || (*l->p >= 'A' && *l->p <= 'Z') ||
         (*l->p >= '0' && *l->p <= '9') || *l->p == '.' || *l->p == '-' || *l->p == '+' ||
         *l->p == ':') {
    if (n == SBOM_FIELD_MAX)
      return false;
    l->tok[n++] = *l->p++;
  }
  l->tok[n] = '\0';
  return n > 0 || *l->p == '\0';
}

static bool in_list(const char *t, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(t, list[i]) == 0)
      return true;
  return false;
}

static bool license_ref(const char *t) {
  if (strncmp(t, "LicenseRef-", 11) != 0 || !t[11])
    return false;
  for (const char *c = t + 11; *c; c++)
    if (*c == '+' || *c == ':')
      return false;
  return true;
}

static bool expr(lexer *l, unsigned depth);

/* A simple expression: an identifier ("+" allowed), "WITH exception", or a
 * parenthesized expression. */
static bool term(lexer *l, unsigned depth) {
  if (strcmp(l->tok, "(") == 0) {
    if (!lex(l) || !expr(l, depth + 1) || strcmp(l->tok, ")") != 0)
      return false;
    return lex(l);
  }
  size_t n = strlen(l->tok);
  char id[SBOM_FIELD_MAX + 1];
  memcpy(id, l->tok, n + 1);
  if (n > 1 && id[n - 1] == '+')
    id[n - 1] = '\0';
  if (!in_list(id, licenses, sizeof licenses / sizeof *licenses) && !(license_ref(l->tok)))
    return false;
  if (!lex(l))
    return false;
  if (strcmp(l->tok, "WITH") == 0)
    return lex(l) && in_list(l->tok, exceptions, sizeof exceptions / sizeof *exceptions) && lex(l);
  return true;
}

static bool expr(lexer *l, unsigned depth) {
  if (depth > 32 || !term(l, depth))
    return false;
  while (strcmp(l->tok, "AND") == 0 || strcmp(l->tok, "OR") == 0)
    if (!lex(l) || !term(l, depth))
      return false;
  return true;
}

bool sbom_license_valid(const char *text) {
  if (!text || strlen(text) > SBOM_FIELD_MAX)
    return false;
  lexer l = {.p = text};
  return lex(&l) && l.tok[0] && expr(&l, 0) && l.tok[0] == '\0';
}

/* ------------------------------------------------------------- writer */

/* s with every byte but letters, digits, '.' and '-' as '-', at most max
 * bytes ("" becomes "x"). */
static char *sanitize(const char *s, size_t max) {
  size_t n = strnlen(s, max);
  char *out = hoist_malloc0(n + 2);
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    out[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '.' || c == '-'
                 ? c
                 : '-';
  }
  if (n == 0)
    out[0] = 'x';
  return out;
}

/* s percent-encoded for a URI's path (unreserved characters kept). */
static char *uri_encode(const char *s) {
  _cleanup_buf_ hoist_buf b = HOIST_BUF_INIT(0);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                 strchr(".-_~", *p);
    if ((plain ? hoist_buf_append(&b, p, 1, NULL) : hoist_buf_appendf(&b, NULL, "%%%02X", *p)) < 0)
      abort();
  }
  return hoist_buf_steal(&b);
}

static json_t *str(const char *s) {
  json_t *j = json_string(s);
  if (!j)
    abort(); /* every string was checked as UTF-8 when it was added */
  return j;
}

static json_t *package_json(const hoist_sbom_package *p, size_t i) {
  _cleanup_free_ char *id_name = sanitize(p->name, 64);
  _cleanup_free_ char *id_type = sanitize(p->purl_type, 16);
  _cleanup_free_ char *id = hoist_asprintf("SPDXRef-Package-%s-%s-%zu", id_type, id_name, i + 1);
  /* a file name is bytes: one that is not UTF-8 text is not shown */
  bool shown = sbom_text_ok(p->path, strlen(p->path));
  _cleanup_free_ char *comment = hoist_asprintf(
      "%s; read from %s",
      p->origin == HOIST_SBOM_BASE ? "in the base image" : "in the layer the build added",
      shown ? p->path : "a file whose name is not UTF-8");
  json_t *o = json_object();
  json_object_set_new(o, "SPDXID", str(id));
  json_object_set_new(o, "name", str(p->name));
  if (p->version)
    json_object_set_new(o, "versionInfo", str(p->version));
  json_object_set_new(o, "downloadLocation", str("NOASSERTION"));
  json_object_set_new(o, "filesAnalyzed", json_false());
  json_object_set_new(o, "licenseConcluded", str("NOASSERTION"));
  json_object_set_new(o, "licenseDeclared",
                      str(sbom_license_valid(p->license) ? p->license : "NOASSERTION"));
  json_object_set_new(o, "copyrightText", str("NOASSERTION"));
  json_object_set_new(o, "comment", str(comment));
  json_object_set_new(o, "externalRefs",
                      json_pack("[{s:s, s:s, s:s}]", "referenceCategory", "PACKAGE-MANAGER",
                                "referenceType", "purl", "referenceLocator", p->purl));
  return o;
}

int hoist_sbom_to_spdx(const hoist_sbom *s, const hoist_sbom_doc_info *info, char **out,
                       size_t *len, hoist_err **err) {
  if (!info || !info->name || !*info->name || !info->namespace_id || !*info->namespace_id)
    return hoist_err_set(err, EINVAL, "an SPDX document needs a name and a namespace id");
  const char *name = info->name, *nsid = info->namespace_id;
  if (!sbom_text_ok(name, strlen(name)) || !sbom_text_ok(nsid, strlen(nsid)))
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "an SPDX document's name and namespace id must be UTF-8 text");
  char created[32];
  if (info->created) {
    snprintf(created, sizeof created, "%s", info->created);
  } else {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
  }
  _cleanup_free_ char *tool =
      info->tool ? hoist_strdup(info->tool) : hoist_asprintf("hoist-%s", hoist_version());
  _cleanup_free_ char *ename = uri_encode(name), *ensid = uri_encode(nsid);
  _cleanup_free_ char *ns = hoist_asprintf("https://spdx.org/spdxdocs/hoist/%s-%s", ename, ensid);
  _cleanup_free_ char *creator = hoist_asprintf("Tool: %s", tool);

  _cleanup_json_ json_t *doc = json_object();
  json_object_set_new(doc, "spdxVersion", str("SPDX-2.3"));
  json_object_set_new(doc, "dataLicense", str("CC0-1.0"));
  json_object_set_new(doc, "SPDXID", str("SPDXRef-DOCUMENT"));
  json_object_set_new(doc, "name", str(name));
  json_object_set_new(doc, "documentNamespace", str(ns));
  json_t *ci = json_object();
  json_object_set_new(ci, "created", str(created));
  json_object_set_new(ci, "creators", json_pack("[o]", str(creator)));
  json_object_set_new(doc, "creationInfo", ci);
  json_t *pkgs = json_array(), *rels = json_array();
  for (size_t i = 0; i < hoist_sbom_count(s); i++) {
    json_t *p = package_json(&s->pkgs[i], i);
    json_array_append_new(rels, json_pack("{s:s, s:s, s:O}", "spdxElementId", "SPDXRef-DOCUMENT",
                                          "relationshipType", "DESCRIBES", "relatedSpdxElement",
                                          json_object_get(p, "SPDXID")));
    json_array_append_new(pkgs, p);
  }
  json_object_set_new(doc, "packages", pkgs);
  json_object_set_new(doc, "relationships", rels);
  char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  if (!text)
    abort();
  *len = strlen(text);
  *out = text;
  return 0;
}
