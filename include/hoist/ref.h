/*
 * ref: image references and image locations.
 *
 * A reference follows the Docker grammar `[host[:port]/]path[:tag][@digest]`
 * and is normalized as Docker does: `busybox` -> `docker.io/library/busybox:latest`,
 * `localhost:5000/x` keeps its host.
 *
 * A location is where an image lives for a verb, written
 * `TRANSPORT:WHERE` or as a bare registry reference:
 *
 *   docker://REF              a registry reference (the prefix is optional)
 *   oci:DIR[:TAG]             an OCI image layout directory
 *   oci-archive:PATH[:TAG]    a tar of an OCI image layout
 *   docker-archive:PATH[:REF] a `docker save` archive; REF (name:tag, as in
 *                             its RepoTags) or @N picks one of its images
 *
 * The split is skopeo's: PATH or DIR runs up to the first ':' after the
 * transport. Which strings name a transport: one that starts with a word
 * [a-z][a-z0-9-]* and a ':' where either the word is a transport name
 * (hoist's above, or another tool's: containers-storage, docker-daemon, dir,
 * ostree, sif, tarball, atomic, all refused by name), or what follows the
 * ':' cannot continue a reference, being neither a port (digits then '/':
 * `localhost:5000/x`, `myhost:443/team/app`) nor a tag (`busybox:1.36`). So
 * `foo:/tmp/x` is an unknown transport, never a registry named "foo", and a
 * word with a '.' or a '/' before its ':' (`registry.example.com:5000/x`) is
 * always a registry. "docker" is the registry transport only as
 * `docker://`: `docker:24-dind` is Docker Hub's docker image; "localhost"
 * is always a registry host.
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
  HOIST_LOC_DOCKER_ARCHIVE = 3,
  HOIST_LOC_OCI_ARCHIVE = 4,
} hoist_loc_kind;

typedef struct hoist_loc {
  hoist_loc_kind kind;
  /* HOIST_LOC_REGISTRY: the reference; HOIST_LOC_DOCKER_ARCHIVE: the image's
   * name in the archive (its RepoTags), NULL when not given */
  hoist_ref *ref;
  char *dir;  /* HOIST_LOC_LAYOUT: the layout directory */
  char *path; /* HOIST_LOC_DOCKER_ARCHIVE, HOIST_LOC_OCI_ARCHIVE: the archive file */
  char *tag;  /* HOIST_LOC_LAYOUT, HOIST_LOC_OCI_ARCHIVE: NULL when not given */
  int index;  /* HOIST_LOC_DOCKER_ARCHIVE: the image @N of the archive, else -1 */
} hoist_loc;

/* Parses a location by the rule above. An unknown transport is an error
 * naming the supported ones, another tool's transport one saying it is not
 * supported. */
HOIST_EXPORT int hoist_loc_parse(const char *s, hoist_loc **out, hoist_err **err) HOIST_WUR;
/* Human form for messages, which parses back to the same location:
 * "oci:DIR:TAG", "docker-archive:PATH:REF", the normalized reference
 * ("docker://" in front when it would read as a transport). */
HOIST_EXPORT char *hoist_loc_string(const hoist_loc *l);
/* Deep copy (NULL for NULL). Caller frees. */
HOIST_EXPORT hoist_loc *hoist_loc_dup(const hoist_loc *l);
/* The tag a location names, or NULL: a layout's or an OCI archive's TAG, a
 * registry reference's tag (NULL when it is by digest), a docker archive's
 * REF's tag. */
HOIST_EXPORT const char *hoist_loc_tag(const hoist_loc *l);
HOIST_EXPORT void hoist_loc_free(hoist_loc *l);

static inline void hoist_loc_freep(hoist_loc **l) { hoist_loc_free(*l); }
#define _cleanup_loc_ __attribute__((cleanup(hoist_loc_freep)))

#endif
