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
#include "hoist/oci.h"
#include "hoist/store.h"
#include "hoist/transport.h"

#include <time.h>

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

/* The records of the layer blob d read from src (hoist_sbom_scan_layer):
 * opened as a file when src keeps blobs in files, else streamed into an
 * unnamed temporary file under tmp_dir (NULL: /var/tmp) first. */
HOIST_EXPORT int hoist_sbom_scan_blob(hoist_sbom *s, hoist_transport_source *src,
                                      const hoist_descriptor *d, hoist_sbom_origin origin,
                                      const char *tmp_dir, hoist_err **err) HOIST_WUR;

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

/* The SBOMs of an image's layers, layers[0..n) from the bottom up (an entry
 * may be NULL: a blob that is not a layer), merged into out as the layers
 * stack: every package found, except that of each system database (dpkg's
 * status, apk's installed) only the last layer's copy counts, and a system
 * package an earlier copy also held is HOIST_SBOM_BASE. */
HOIST_EXPORT int hoist_sbom_merge_layers(hoist_sbom *const *layers, size_t n, hoist_sbom *out,
                                         hoist_err **err) HOIST_WUR;

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

/* ----------------------------------------------------------- statements */

#define HOIST_INTOTO_STATEMENT_TYPE "https://in-toto.io/Statement/v1"
#define HOIST_INTOTO_MEDIA_TYPE "application/vnd.in-toto+json"
#define HOIST_PREDICATE_SLSA_PROVENANCE "https://slsa.dev/provenance/v1"
#define HOIST_PREDICATE_SPDX "https://spdx.dev/Document"
/* The annotation naming a statement's predicate type on its descriptor. */
#define HOIST_ANNOT_PREDICATE_TYPE "in-toto.io/predicate-type"
/* BuildKit's: an index entry that holds the attestations of another. */
#define HOIST_ANNOT_REFERENCE_TYPE "vnd.docker.reference.type"
#define HOIST_ANNOT_REFERENCE_DIGEST "vnd.docker.reference.digest"
#define HOIST_REFERENCE_TYPE_ATTESTATION "attestation-manifest"

/* The largest statement read back (an SBOM of a big image). */
#define HOIST_ATTEST_STATEMENT_MAX (64u << 20)
/* The most statements one attestation manifest holds. */
#define HOIST_ATTEST_LAYERS_MAX 64

/* The in-toto Statement v1 whose subject is the one image subject_name
 * (a reference) with the digest subject_digest ("sha256:<hex>"), of
 * predicate_type, with the JSON object predicate (its bytes, checked to be an
 * object). Caller frees *out. */
HOIST_EXPORT int hoist_attest_statement(const char *subject_name, const char *subject_digest,
                                        const char *predicate_type, const char *predicate,
                                        size_t predicate_len, char **out, size_t *len,
                                        hoist_err **err) HOIST_WUR;

/* Validates an untrusted statement (at most HOIST_ATTEST_STATEMENT_MAX):
 * _type the in-toto Statement v1 (or v0.1, which BuildKit wrote), subject a
 * non-empty array of {name, digest: {alg: hex}}, predicateType a string,
 * predicate an object (absent: {}). *predicate_type (optional) and *predicate (the
 * predicate as compact JSON, optional) are the caller's to free. */
HOIST_EXPORT int hoist_attest_statement_parse(const char *data, size_t len, char **predicate_type,
                                              char **predicate, hoist_err **err) HOIST_WUR;

/* ----------------------------------------------------------- provenance */

/* buildType of each verb's provenance ("https://hoist.dev/build-types/"
 * VERB "/v1"); the meaning of its externalParameters is documented in
 * README "Provenance and SBOMs". */
#define HOIST_BUILD_TYPE_PREFIX "https://hoist.dev/build-types/"
/* builder.id: this URI, '@' and hoist's version. */
#define HOIST_BUILDER_ID "https://hoist.dev/hoist"

/* One resolvedDependencies entry: uri (a reference, a file name), its sha256
 * digest ("sha256:<hex>"), an optional name and mediaType. */
typedef struct hoist_provenance_dep {
  const char *uri;
  const char *digest;
  const char *name;       /* or NULL */
  const char *media_type; /* or NULL */
} hoist_provenance_dep;

typedef struct hoist_provenance_info {
  const char *subject_name;   /* the image reference */
  const char *subject_digest; /* its manifest's digest */
  const char *verb;           /* "build", "append", "bundle-publish", "index-create" */
  const char *version;        /* hoist's, for builder.id and builder.version */
  /* externalParameters and internalParameters (objects, borrowed; NULL: {}) */
  const json_t *external;
  const json_t *internal;
  const hoist_provenance_dep *deps;
  size_t n_deps;
  const char *invocation_id; /* or NULL */
  time_t started, finished;
} hoist_provenance_info;

/* The in-toto statement with the SLSA provenance v1 predicate of info:
 * buildDefinition {buildType, externalParameters, internalParameters,
 * resolvedDependencies}, runDetails {builder {id, version}, metadata
 * {invocationId, startedOn, finishedOn}}. Caller frees *out. */
HOIST_EXPORT int hoist_provenance_statement(const hoist_provenance_info *info, char **out,
                                            size_t *len, hoist_err **err) HOIST_WUR;

/* ------------------------------------------------------------ attaching */

/* Where statements are stored beside an image. */
typedef enum {
  /* BuildKit's: the location's tag names an index holding the image and an
   * attestation manifest (platform unknown/unknown, annotated
   * vnd.docker.reference.type: attestation-manifest and
   * vnd.docker.reference.digest: the image's digest) whose layers are the
   * statements. */
  HOIST_ATTEST_INDEX = 0,
  /* OCI 1.1: one artifact manifest per statement (artifactType
   * application/vnd.in-toto+json, the empty config, the image as subject),
   * a referrer of the image; the tag keeps naming the image. */
  HOIST_ATTEST_REFERRER,
} hoist_attest_mode;

/* Parses "index" or "referrer". */
HOIST_EXPORT int hoist_attest_mode_parse(const char *s, hoist_attest_mode *out,
                                         hoist_err **err) HOIST_WUR;

typedef struct hoist_attest_statement_blob {
  const char *predicate_type;
  const char *data; /* the statement */
  size_t len;
} hoist_attest_statement_blob;

typedef struct hoist_attest_result {
  char digest[HOIST_DIGEST_STR_LEN];       /* what the tag names now (index mode: the index) */
  char attestation[HOIST_DIGEST_STR_LEN];  /* the attestation manifest (index mode: the only
                                            * one; referrer mode: the last) */
  char image_digest[HOIST_DIGEST_STR_LEN]; /* the image attested */
} hoist_attest_result;

/* Attaches the statements to the image loc names (its tag; a registry
 * reference or oci:DIR:TAG) in mode. loc must name one image manifest, or
 * an index of that image and attestation manifests (index mode replaces
 * those); in referrer mode an index of several images is itself the
 * subject. An archive location is refused. Index mode writes the statements, the attestation
 * manifest and the index, then moves the tag to the index. */
HOIST_EXPORT int hoist_attest_attach(const hoist_transport_opts *t, const hoist_loc *loc,
                                     hoist_attest_mode mode, const hoist_attest_statement_blob *st,
                                     size_t n, hoist_attest_result *out, hoist_err **err) HOIST_WUR;

/* The index entries of ix that are attestation manifests (BuildKit's
 * annotation) of the image image_digest (NULL: of any image): their
 * positions in *idx (caller frees), *n of them. An attestation entry with a
 * malformed vnd.docker.reference.digest is HOIST_E_FORMAT. */
HOIST_EXPORT int hoist_attest_index_entries(const hoist_index *ix, const char *image_digest,
                                            size_t **idx, size_t *n, hoist_err **err) HOIST_WUR;

/* True when the index entry d is an attestation manifest (BuildKit's
 * vnd.docker.reference.type annotation), not an image. */
HOIST_EXPORT bool hoist_attest_is_attestation(const hoist_descriptor *d);

/* The predicates of predicate_type stored for the image loc names (an
 * index: platform's image, NULL: the host's), found either way: the
 * attestation manifest of the tag's index, then the image's referrers of
 * artifactType application/vnd.in-toto+json, then (none found) the
 * referrers of the index itself (an index create's provenance). Each predicate (compact JSON)
 * is appended to *out (a NULL-terminated vector, caller frees with
 * hoist_strfreev); none found is ENOENT saying so. */
HOIST_EXPORT int hoist_attest_read(const hoist_transport_opts *t, const hoist_loc *loc,
                                   const hoist_platform *platform, const char *predicate_type,
                                   char ***out, hoist_err **err) HOIST_WUR;

static inline void hoist_sbom_freep(hoist_sbom **s) { hoist_sbom_free(*s); }
#define _cleanup_sbom_ __attribute__((cleanup(hoist_sbom_freep)))

#endif
