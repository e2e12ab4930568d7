/*
 * What the SBOM's files share: the collection (sbom.c), the record parsers
 * (sbom_records.c) and the SPDX writer (spdx.c).
 */
#ifndef HOIST_ATTEST_SBOM_PRIVATE_H
#define HOIST_ATTEST_SBOM_PRIVATE_H

#include "hoist/attest.h"
#include "hoist/map.h"

/* A name or version longer than this is refused (HOIST_E_LIMIT). */
#define SBOM_FIELD_MAX 1024
/* Packages one SBOM holds at most (HOIST_E_LIMIT past it). */
#define SBOM_PACKAGES_MAX 1000000
/* Nesting of an npm v1 lock file's dependencies. */
#define SBOM_DEPTH_MAX 128

struct hoist_sbom {
  hoist_sbom_package *pkgs;
  size_t n, cap;
  hoist_map seen; /* purl -> index in pkgs */
};

/* The kinds of record hoist_sbom_add_file reads. */
typedef enum {
  REC_NONE = 0,
  REC_PIP_METADATA,  /* *.dist-info/METADATA */
  REC_NPM_LOCK,      /* package-lock.json (not inside node_modules) */
  REC_NPM_HIDDEN,    /* node_modules/.package-lock.json */
  REC_NPM_PACKAGE,   /* node_modules/[@scope/]name/package.json */
  REC_GO_SUM,        /* go.sum (not inside the module cache) */
  REC_GO_CACHE,      /* cache/download/MODULE/@v/VERSION.zip */
  REC_MAVEN_REPO,    /* repository/GROUP/ARTIFACT/VERSION/ARTIFACT-VERSION.pom or .jar */
  REC_JAR,           /* a .jar in a lib directory: its pom.properties */
  REC_COMPOSER,      /* vendor/composer/installed.json */
  REC_GEMFILE_LOCK,  /* Gemfile.lock (not inside an installed gem) */
  REC_GEMSPEC,       /* specifications/<name>-<version>.gemspec */
  REC_DPKG_STATUS,   /* var/lib/dpkg/status */
  REC_DPKG_STATUS_D, /* var/lib/dpkg/status.d/<name> */
  REC_APK_INSTALLED, /* lib/apk/db/installed */
} sbom_record;

/* Which record path is (relative, no leading '/'), or REC_NONE. */
sbom_record sbom_record_of(const char *path);

/* A package found: the purl is made of type, namespace (NULL or segments
 * joined by '/'), name, version and qualifiers (NULL or "key=value", its
 * value not yet encoded); display is the name the document shows (NULL:
 * name). Fields are checked (length, control characters, UTF-8) and the
 * errors name path. A purl already present is not added again. */
typedef struct sbom_found {
  const char *type, *ns, *name, *version, *qual_key, *qual_value, *display, *license;
} sbom_found;
int sbom_add_found(hoist_sbom *s, const sbom_found *f, const char *path, hoist_sbom_origin origin,
                   hoist_err **err) HOIST_WUR;

/* Parses data (len bytes, NUL-terminated at data[len]) as the record kind
 * found at path. */
int sbom_parse_record(hoist_sbom *s, sbom_record kind, const char *path, const char *data,
                      size_t len, hoist_sbom_origin origin, hoist_err **err) HOIST_WUR;

/* True when text is a license expression of the SPDX grammar made of
 * identifiers hoist knows from the SPDX license list (or LicenseRef-...). */
bool sbom_license_valid(const char *text);

/* True when len bytes of s are valid UTF-8 without control characters. */
bool sbom_text_ok(const char *s, size_t len);

#endif
