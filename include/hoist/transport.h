/*
 * transport: where an image lives, behind one interface.
 *
 * A location (ref.h: a registry reference or an OCI layout `oci:DIR[:TAG]`)
 * is opened as a source, to read an image from, or as a target, to write one
 * to. Every verb that moves images (copy, pull, push, append, build, index
 * create, bundle publish: image.h) works on these two interfaces, so each
 * works between any two kinds of location, and a new kind of location is one
 * more driver:
 *
 * - layout: an OCI image layout on top of store.h. Blobs are verified as they
 *   are written and appear under their digest only when complete.
 * - registry: a repository of a registry through the distribution client
 *   (registry.h). Blobs stream in both directions; within one registry they
 *   are mounted, not copied.
 * - docker-archive: a `docker save` tar (manifest.json, a config, one tar
 *   per layer), as skopeo reads and writes it. Read: the archive is read in
 *   two passes, as a stream, its chosen image's config and layers going
 *   into a private staging layout under opts->tmp_dir (each layer
 *   decompressed when it is not a plain tar), the config's digest (when its
 *   name is one) and every layer's diffID verified; the manifest is the one
 *   skopeo makes of it (Docker schema 2, the layers by diffID and
 *   uncompressed), byte for byte, so both report the same digest. Write:
 *   blobs are staged, and commit() writes each layer uncompressed as
 *   <diffID>.tar (checked against the config's diff_ids), the config as
 *   <digest>.json and manifest.json with RepoTags from the location's REF,
 *   to a temp file renamed over PATH. The legacy per-layer directories and
 *   `repositories` file are not written (docker load has not needed them
 *   since Docker 1.10).
 * - oci-archive: a tar of an OCI image layout. Read: its blobs stream into
 *   a staging layout, verified, and the image is read from there. Write:
 *   the image goes into a staging layout, tarred at commit() to a temp file
 *   renamed over PATH.
 *
 * The interface assumes no registry: mounting, reading a document's digest
 * without its bytes, giving a blob as a file and a final commit are optional
 * operations (a NULL op), so a driver that writes an archive at the end
 * (docker-archive, oci-archive) fits: it collects what it is given and writes
 * it out in commit().
 *
 * Ownership: a source or target owns its driver state; the registry client
 * it was opened with is borrowed and must outlive it. A target freed before
 * commit() returned 0 may have stored some blobs (a registry and a layout
 * store each piece as it arrives; a layout keeps blobs that nothing tags
 * until `hoist gc`) but never a manifest the caller did not put; a driver
 * that writes at commit leaves nothing. A crash leaves the same: in a layout
 * at most a stray temp file, in a registry unreferenced blobs; an archive
 * driver's staging directory (tmp_dir/hoist-archive-*) and a temp file
 * beside the archive (.NAME.hoist-*), never a partial archive at PATH.
 */
#ifndef HOIST_TRANSPORT_H
#define HOIST_TRANSPORT_H

#include "hoist/core.h"
#include "hoist/digest.h"
#include "hoist/oci.h"
#include "hoist/ref.h"
#include "hoist/registry.h"
#include "hoist/stream.h"

typedef struct hoist_transport_source hoist_transport_source;
typedef struct hoist_transport_target hoist_transport_target;

/* ---------------------------------------------------------------- source */

typedef struct hoist_transport_source_ops {
  /* The manifest or index with this digest, or with digest NULL the document
   * the location names (its tag; a layout without a tag: its only image).
   * *data keeps the exact bytes (caller frees), *media_type (caller frees) is
   * the document's type, digest_out the digest of the bytes, which equals
   * digest when one was asked for. */
  int (*manifest)(hoist_transport_source *s, const char *digest, char **data, size_t *len,
                  char **media_type, char digest_out[HOIST_DIGEST_STR_LEN], hoist_err **err);
  /* Optional (NULL: use manifest()): the digest and media type (caller
   * frees) of the document the location names, without reading it (a
   * registry answers a HEAD request). */
  int (*resolve)(hoist_transport_source *s, char digest[HOIST_DIGEST_STR_LEN], char **media_type,
                 hoist_err **err);
  /* A whole blob (a config), at most max bytes, checked against digest.
   * Caller frees *data. */
  int (*blob)(hoist_transport_source *s, const char *digest, size_t max, char **data, size_t *len,
              hoist_err **err);
  /* Streams d's blob into w (w is not committed here: its commit checks the
   * digest and size). */
  int (*copy_blob)(hoist_transport_source *s, const hoist_descriptor *d, hoist_writer *w,
                   hoist_err **err);
  /* Optional: d's blob as a file open for reading (read it with pread from
   * offset 0; caller closes) and its size, for a source that keeps blobs in
   * files. A target may then upload it in pieces and resume. */
  int (*open_blob)(hoist_transport_source *s, const char *digest, int *fd, uint64_t *size,
                   hoist_err **err);
  /* Releases the driver's state (not origin: hoist_transport_source_free
   * does). */
  void (*free)(hoist_transport_source *s);
} hoist_transport_source_ops;

struct hoist_transport_source {
  const hoist_transport_source_ops *ops;
  /* Where the same blobs can also be had, or NULL: a registry source's own
   * location; a layout holding a pull of a registry image may be given that
   * registry (hoist_transport_source_set_origin), so that a target on the
   * same registry mounts its blobs instead of uploading them. Owned. */
  hoist_loc *origin;
};

static inline void hoist_transport_source_free(hoist_transport_source *s) {
  if (!s)
    return;
  hoist_loc *origin = s->origin;
  s->ops->free(s);
  hoist_loc_free(origin);
}
/* Replaces s's origin with a copy of origin (NULL: none). */
static inline void hoist_transport_source_set_origin(hoist_transport_source *s,
                                                     const hoist_loc *origin) {
  hoist_loc_free(s->origin);
  s->origin = hoist_loc_dup(origin);
}

/* ---------------------------------------------------------------- target */

/* How a blob reached a target. */
typedef enum {
  HOIST_TRANSPORT_PRESENT = 0, /* it was there already */
  HOIST_TRANSPORT_MOUNTED,     /* taken without moving its bytes (a registry mount) */
  HOIST_TRANSPORT_COPIED,      /* its bytes moved */
} hoist_transport_how;

typedef struct hoist_transport_target_ops {
  /* Sets *has when the target holds d's blob. A layout marks the blob as
   * just used, so gc's grace period covers the manifest about to name it. */
  int (*has_blob)(hoist_transport_target *t, const hoist_descriptor *d, bool *has, hoist_err **err);
  /* A writer for a new blob; digest (or NULL) and size (or -1) are checked
   * at commit, and nothing of a blob that fails them is kept. */
  int (*blob_writer)(hoist_transport_target *t, const char *digest, int64_t size,
                     hoist_writer **out, hoist_err **err);
  /* Optional (NULL: has_blob, then blob_writer fed by from->copy_blob): d's
   * blob from `from`, the driver's own way. A registry checks it has the
   * blob, mounts it from from->origin on the same registry, uploads a file
   * in pieces with resumption, and restarts a stream that broke. *how says
   * which happened, *bytes the bytes moved. */
  int (*copy_blob)(hoist_transport_target *t, const hoist_descriptor *d,
                   hoist_transport_source *from, hoist_transport_how *how, uint64_t *bytes,
                   hoist_err **err);
  /* Optional: sets *has when the target holds the document digest under
   * reference (as for put_manifest), and with it every blob it needs (a
   * registry accepts a manifest only then), so a copy can skip them all. */
  int (*has_manifest)(hoist_transport_target *t, const char *reference, const char *digest,
                      bool *has, hoist_err **err);
  /* Stores a manifest or index whose blobs (or child manifests) are all in
   * place, under reference: a tag; a digest (stored by digest only: an
   * index's child); NULL: the tag the target was opened with (its digest, for
   * a registry reference given by digest). Storing one document under
   * several tags is one call per tag. */
  int (*put_manifest)(hoist_transport_target *t, const char *reference, const char *data,
                      size_t len, const char *media_type, hoist_err **err);
  /* Optional: makes what was put final (an archive is written here). The
   * caller that opened the target calls it once, after the last
   * put_manifest (hoist_transport_commit). */
  int (*commit)(hoist_transport_target *t, hoist_err **err);
  void (*free)(hoist_transport_target *t);
} hoist_transport_target_ops;

struct hoist_transport_target {
  const hoist_transport_target_ops *ops;
};

static inline void hoist_transport_target_free(hoist_transport_target *t) {
  if (t)
    t->ops->free(t);
}

static inline void hoist_transport_source_freep(hoist_transport_source **s) {
  hoist_transport_source_free(*s);
}
static inline void hoist_transport_target_freep(hoist_transport_target **t) {
  hoist_transport_target_free(*t);
}
#define _cleanup_transport_source_ __attribute__((cleanup(hoist_transport_source_freep)))
#define _cleanup_transport_target_ __attribute__((cleanup(hoist_transport_target_freep)))

/* Moves d's blob from `from` into t unless t has it: t's copy_blob when it
 * has one, else has_blob, then a blob writer fed by from->copy_blob. *how
 * and *bytes (both optional) say what happened. */
HOIST_EXPORT int hoist_transport_copy_blob(hoist_transport_target *t, hoist_transport_source *from,
                                           const hoist_descriptor *d, hoist_transport_how *how,
                                           uint64_t *bytes, hoist_err **err) HOIST_WUR;

/* t's commit when it has one; else nothing to do. */
HOIST_EXPORT int hoist_transport_commit(hoist_transport_target *t, hoist_err **err) HOIST_WUR;

/* -------------------------------------------------------------- drivers */

typedef struct hoist_transport_opts {
  /* The client for registry locations (borrowed; it must outlive what is
   * opened with it). NULL: registry locations are refused. */
  hoist_registry *registry;
  /* Where archive drivers stage what they read or write (a directory of
   * their own below it, removed when the source or target is freed); NULL:
   * /var/tmp. */
  const char *tmp_dir;
  /* The client for registry targets, when they need settings of their own
   * (other credentials, TLS: copy's --dest-* options); NULL: registry. */
  hoist_registry *target_registry;
} hoist_transport_opts;

/* The source or target a location names, with the driver of its kind
 * (opts may be NULL). A layout source must exist; a layout target is
 * created when missing and needs a tag (oci:DIR:TAG). A registry target is
 * written under the reference's tag, or its digest when it has no tag. */
HOIST_EXPORT int hoist_transport_open_source(const hoist_transport_opts *opts, const hoist_loc *loc,
                                             hoist_transport_source **out,
                                             hoist_err **err) HOIST_WUR;
HOIST_EXPORT int hoist_transport_open_target(const hoist_transport_opts *opts, const hoist_loc *loc,
                                             hoist_transport_target **out,
                                             hoist_err **err) HOIST_WUR;

/* The image tagged tag (NULL: the layout's only image) in the OCI layout at
 * dir. */
HOIST_EXPORT int hoist_transport_layout_source(const char *dir, const char *tag,
                                               hoist_transport_source **out,
                                               hoist_err **err) HOIST_WUR;
/* The OCI layout at dir (created, with its parents, when missing);
 * put_manifest(NULL) tags tag. */
HOIST_EXPORT int hoist_transport_layout_target(const char *dir, const char *tag,
                                               hoist_transport_target **out,
                                               hoist_err **err) HOIST_WUR;

/* The image ref names in a registry, read through client r (borrowed). A
 * tag is resolved with a HEAD request and the document fetched by digest,
 * so what is read is what was resolved. */
HOIST_EXPORT int hoist_transport_registry_source(hoist_registry *r, const hoist_ref *ref,
                                                 hoist_transport_source **out,
                                                 hoist_err **err) HOIST_WUR;
/* The registry repository ref names, written through client r (borrowed).
 * Blobs it has are not uploaded again; a blob that the source's origin, or
 * the client's blob-location record, says another repository of the same
 * registry holds is mounted from there when the registry allows; a new
 * blob streams into an upload session as it is written, spooled only for a
 * registry that refuses PATCH (hoist_registry_blob_upload). */
HOIST_EXPORT int hoist_transport_registry_target(hoist_registry *r, const hoist_ref *ref,
                                                 hoist_transport_target **out,
                                                 hoist_err **err) HOIST_WUR;

/* ------------------------------------------------------ docker archives */

/* One image of a docker archive's manifest.json. Names are clean member
 * names (relative, no "." or "..", no trailing '/'). */
typedef struct hoist_docker_archive_image {
  char *config;     /* "Config" */
  char **repo_tags; /* "RepoTags", NULL-terminated (empty when absent or null) */
  size_t n_repo_tags;
  char **layers; /* "Layers", NULL-terminated */
  size_t n_layers;
} hoist_docker_archive_image;

typedef struct hoist_docker_archive_manifest {
  hoist_docker_archive_image *images;
  size_t n_images;
} hoist_docker_archive_manifest;

/* Validates untrusted bytes (at most HOIST_ARCHIVE_MANIFEST_MAX): an array
 * of 1 to HOIST_ARCHIVE_IMAGES_MAX objects with a "Config" member name,
 * "Layers" (at most HOIST_ARCHIVE_LAYERS_MAX member names) and optional
 * "RepoTags" (strings; they are names, checked when one is looked for);
 * other keys are ignored. A member name that is absolute or has ".." is
 * HOIST_E_UNSAFE. Caller frees *out. */
HOIST_EXPORT int hoist_docker_archive_manifest_parse(const char *data, size_t len,
                                                     hoist_docker_archive_manifest **out,
                                                     hoist_err **err) HOIST_WUR;
/* manifest.json as skopeo writes it: compact, keys Config, RepoTags,
 * Layers in that order. Caller frees. */
HOIST_EXPORT char *
hoist_docker_archive_manifest_json(const hoist_docker_archive_manifest *m) HOIST_WUR;
HOIST_EXPORT void hoist_docker_archive_manifest_free(hoist_docker_archive_manifest *m);

#endif
