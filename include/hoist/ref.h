/*
 * ref: image references and image locations.
 *
 * A reference follows the Docker grammar `[host[:port]/]path[:tag][@digest]`
 * and is normalized as Docker does: `busybox` -> `docker.io/library/busybox:latest`,
 * `localhost:5000/x` keeps its host. A location is where an image lives for a
 * verb: a registry reference (optionally written `docker://REF`) or an OCI
 * image layout `oci:DIR[:TAG]`.
 */
#ifndef HOIST_REF_H
#define HOIST_REF_H

#include "hoist/core.h"

#define HOIST_REF_MAX_LEN 255 /* whole reference, as Docker's NameTotalLengthMax */
#define HOIST_TAG_MAX_LEN 128

typedef struct hoist_ref {
  char *domain; /* "docker.io", "localhost:5000", "127.0.0.1:5000", "[::1]:5000" */
  char *path;   /* "library/busybox", "user/app" */
  char *tag;    /* "latest" when neither tag nor digest was given; NULL if only a digest */
  char *digest; /* "sha256:<hex>" or NULL */
} hoist_ref;

/* Parses and normalizes s. Every malformed form gets its own message naming
 * what is wrong ("invalid reference \"A/b\": repository name must be
 * lowercase"). The caller frees *out with hoist_ref_free. */
HOIST_EXPORT int hoist_ref_parse(const char *s, hoist_ref **out, hoist_err **err) HOIST_WUR;

/* Like hoist_ref_parse, plus the community short-name rule: a bare name with
 * no '/', ':' or '.' is expanded as `<prefix>/<name>:latest` when prefix is
 * not NULL ("base" with prefix "ghcr.io/org/sandboxes" ->
 * "ghcr.io/org/sandboxes/base:latest"). */
HOIST_EXPORT int hoist_ref_parse_short(const char *s, const char *prefix, hoist_ref **out,
                                       hoist_err **err) HOIST_WUR;

/* "domain/path[:tag][@digest]", normalized. Caller frees. */
HOIST_EXPORT char *hoist_ref_string(const hoist_ref *r);
/* "domain/path". Caller frees. */
HOIST_EXPORT char *hoist_ref_repository(const hoist_ref *r);
/* The digest or else the tag: what goes after /manifests/ in the API (a
 * reference with both is fetched by digest, as Docker does). */
HOIST_EXPORT const char *hoist_ref_reference(const hoist_ref *r);
HOIST_EXPORT hoist_ref *hoist_ref_dup(const hoist_ref *r);
HOIST_EXPORT void hoist_ref_free(hoist_ref *r);

static inline void hoist_ref_freep(hoist_ref **r) { hoist_ref_free(*r); }
#define _cleanup_ref_ __attribute__((cleanup(hoist_ref_freep)))

typedef enum {
  HOIST_LOC_REGISTRY = 1,
  HOIST_LOC_LAYOUT = 2,
} hoist_loc_kind;

typedef struct hoist_loc {
  hoist_loc_kind kind;
  hoist_ref *ref; /* HOIST_LOC_REGISTRY */
  char *dir;      /* HOIST_LOC_LAYOUT: the layout directory */
  char *tag;      /* HOIST_LOC_LAYOUT: NULL when not given */
} hoist_loc;

/* Parses "oci:DIR[:TAG]", "docker://REF" or a bare registry reference. For a
 * layout the directory is everything up to the first ':' after "oci:" (as
 * skopeo splits it). */
HOIST_EXPORT int hoist_loc_parse(const char *s, hoist_loc **out, hoist_err **err) HOIST_WUR;
/* Human form for messages: "oci:DIR:TAG" or the normalized reference. */
HOIST_EXPORT char *hoist_loc_string(const hoist_loc *l);
/* Deep copy (NULL for NULL). Caller frees. */
HOIST_EXPORT hoist_loc *hoist_loc_dup(const hoist_loc *l);
HOIST_EXPORT void hoist_loc_free(hoist_loc *l);

static inline void hoist_loc_freep(hoist_loc **l) { hoist_loc_free(*l); }
#define _cleanup_loc_ __attribute__((cleanup(hoist_loc_freep)))

#endif
