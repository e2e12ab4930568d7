/*
 * attest: what an image says of where it came from.
 *
 * - SBOM: the packages a layer added, read from the package managers' own
 *   records inside the layer (pip's *.dist-info, npm's package-lock.json and
 *   node_modules, Go's go.sum, Maven's resolved artifacts, composer's
 *   installed.json, bundler's Gemfile.lock) and the base's system packages
 *   (a dpkg or apk database), written as an SPDX 2.3 JSON document.
 * - provenance: an in-toto statement (v1) with a SLSA provenance predicate
 *   (v1) saying who built the image, from what, when.
 * - attaching: statements stored beside the image, the way BuildKit does
 *   (an attestation manifest in the image's index) or as OCI 1.1 referrers.
 *
 * Every record read from a layer is untrusted: each parser is bounded,
 * refuses what it cannot read with an error naming the file, and is fuzzed.
 */
#ifndef HOIST_ATTEST_H
#define HOIST_ATTEST_H

#include "hoist/core.h"
#include "hoist/image.h"
#include "hoist/store.h"

/* ----------------------------------------------------------------- SBOM */

/* Where a package was found. */
typedef enum {
  HOIST_SBOM_LAYER = 0, /* in the layer the build added */
  HOIST_SBOM_BASE,      /* in the base image (its system package database) */
} hoist_sbom_origin;

typedef struct hoist_sbom_package {
  char *name;
  char *version;   /* or NULL when the record gives none */
  char *purl_type; /* "pypi", "npm", "golang", "maven", "composer", "gem", "deb", "apk" */
  char *purl;      /* package URL (purl spec), e.g. "pkg:pypi/requests@2.31.0" */
  char *license;   /* as the record declares it, or NULL */
  char *path;      /* the record it was read from, relative to the root ("usr/lib/...") */
  hoist_sbom_origin origin;
} hoist_sbom_package;

typedef struct hoist_sbom hoist_sbom;

HOIST_EXPORT hoist_sbom *hoist_sbom_new(void);
HOIST_EXPORT void hoist_sbom_free(hoist_sbom *s);

/* Reads one file of a tree: when path (relative, no leading '/') is a record
 * a scanner knows (a METADATA of a *.dist-info, a package-lock.json, ...),
 * its packages are added; any other path is ignored. data need not be
 * NUL-terminated. A record that cannot be read is HOIST_E_FORMAT naming
 * path; one over HOIST_SBOM_RECORD_MAX is HOIST_E_LIMIT. The same package
 * (purl) found twice is kept once, as first found.
 *
 * The records (hoist-sbom(1) says more): pip's
 * *.dist-info/METADATA; npm's package-lock.json (not one inside
 * node_modules), node_modules/.package-lock.json and
 * node_modules/[@scope/]name/package.json; go.sum (a version with only a
 * go.mod hash is not listed) and the module cache's
 * cache/download/<module>/@v/<version>.zip; a Maven repository's
 * <artifact>-<version>.pom or .jar and the pom.properties of a jar in a
 * lib directory; vendor/composer/installed.json; Gemfile.lock and
 * specifications/<name>-<version>.gemspec; var/lib/dpkg/status and
 * status.d/<name>; lib/apk/db/installed. Nothing under a testdata
 * directory. Records read from their path alone (a .pom, a .jar of a
 * repository, a module zip, a gemspec) may be given with data NULL. */
HOIST_EXPORT int hoist_sbom_add_file(hoist_sbom *s, const char *path, const char *data, size_t len,
                                     hoist_sbom_origin origin, hoist_err **err) HOIST_WUR;

/* True when path is a record hoist_sbom_add_file reads (for a scanner of a
 * tar or a tree, to read only those). */
HOIST_EXPORT bool hoist_sbom_wants(const char *path);

/* The largest record read (a package-lock.json of a big project). */
#define HOIST_SBOM_RECORD_MAX (64u << 20)

/* Reads the records of a layer blob (a tar, gzip'd or zstd'd) open at fd,
 * from its current offset. Whiteouts of a later layer are not applied: scan
 * the layer the build added. */
HOIST_EXPORT int hoist_sbom_scan_layer(hoist_sbom *s, int fd, hoist_sbom_origin origin,
                                       hoist_err **err) HOIST_WUR;

/* Reads the records under the directory root (an unpacked base, an upper
 * directory), without following symlinks out of it. */
HOIST_EXPORT int hoist_sbom_scan_tree(hoist_sbom *s, const char *root, hoist_sbom_origin origin,
                                      hoist_err **err) HOIST_WUR;

/* Reads the layers of the image m (its manifest) whose blobs are in store:
 * every layer (only 0), or layer only alone (1 the first, -1 the last).
 * Reading every layer, packages of the last one are HOIST_SBOM_LAYER, of
 * the earlier ones HOIST_SBOM_BASE; of each system database (dpkg's status,
 * apk's installed) only the copy of the last layer holding one is read, a
 * system package an earlier copy also held being of the base. Read alone,
 * a layer's packages are HOIST_SBOM_LAYER. Blobs that are not layers (an
 * artifact's) are skipped. No layer only is ERANGE. */
HOIST_EXPORT int hoist_sbom_scan_image(hoist_sbom *s, hoist_store *store, const hoist_manifest *m,
                                       long only, hoist_err **err) HOIST_WUR;

/* Adds a copy of p (one of another SBOM: merging what several layers hold)
 * unless its purl is there already. */
HOIST_EXPORT int hoist_sbom_add_package(hoist_sbom *s, const hoist_sbom_package *p,
                                        hoist_err **err) HOIST_WUR;

HOIST_EXPORT size_t hoist_sbom_count(const hoist_sbom *s);
/* Package i in the order found; NULL past the end. */
HOIST_EXPORT const hoist_sbom_package *hoist_sbom_get(const hoist_sbom *s, size_t i);

typedef struct hoist_sbom_doc_info {
  const char *name;         /* the document's name: the image reference */
  const char *namespace_id; /* unique part of documentNamespace, e.g. the image digest */
  const char *created;      /* RFC 3339 UTC ("2026-12-07T03:00:00Z") */
  const char *tool;         /* "hoist-<version>" for creationInfo.creators */
} hoist_sbom_doc_info;

/* The SPDX 2.3 JSON document of s: one package per entry (name,
 * versionInfo, a purl externalRef, licenseDeclared or NOASSERTION,
 * downloadLocation NOASSERTION, a comment saying where it was found),
 * DESCRIBES relationships from the document. The declared license is
 * written only when it is an SPDX expression of identifiers hoist knows.
 * documentNamespace is https://spdx.org/spdxdocs/hoist/<name>-<namespace_id>
 * (both percent-encoded). info->created NULL: now; info->tool NULL:
 * "hoist-<version>". Caller frees *out. */
HOIST_EXPORT int hoist_sbom_to_spdx(const hoist_sbom *s, const hoist_sbom_doc_info *info,
                                    char **out, size_t *len, hoist_err **err) HOIST_WUR;

static inline void hoist_sbom_freep(hoist_sbom **s) { hoist_sbom_free(*s); }
#define _cleanup_sbom_ __attribute__((cleanup(hoist_sbom_freep)))

#endif
