/*
 * oci: the OCI image model: media types, platforms, descriptors, image
 * manifests (OCI and Docker schema 2), image indexes (OCI and Docker manifest
 * lists) and image configs, parsed with validation from untrusted bytes and
 * emitted as canonical JSON (sorted keys, no insignificant whitespace) so the
 * same value always has the same digest.
 *
 * Parsers never trust sizes or digests they read: each descriptor's digest is
 * validated and its size must be a non-negative integer. A manifest fetched
 * from elsewhere keeps its original bytes (its digest is over them); the
 * canonical form is for documents hoist creates.
 *
 * Ownership: *_parse returns a new object the caller frees with *_free;
 * *_to_json returns a malloc'd NUL-terminated string.
 */
#ifndef HOIST_OCI_H
#define HOIST_OCI_H

#include <jansson.h>
#include <time.h>

#include "hoist/core.h"
#include "hoist/digest.h"
#include "hoist/limits.h"

#define HOIST_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define HOIST_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define HOIST_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
/* The empty descriptor's type (an artifact's config "{}", OCI 1.1). */
#define HOIST_MT_OCI_EMPTY "application/vnd.oci.empty.v1+json"
#define HOIST_MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"
#define HOIST_MT_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define HOIST_MT_OCI_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define HOIST_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define HOIST_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define HOIST_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define HOIST_MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
/* Layer types hoist also accepts when reading: nondistributable OCI layers,
 * uncompressed Docker layers and foreign (URL-only) Docker layers. */
#define HOIST_MT_OCI_LAYER_ND "application/vnd.oci.image.layer.nondistributable.v1.tar"
#define HOIST_MT_OCI_LAYER_ND_GZIP "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
#define HOIST_MT_OCI_LAYER_ND_ZSTD "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
#define HOIST_MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar"
#define HOIST_MT_DOCKER_FOREIGN "application/vnd.docker.image.rootfs.foreign.diff.tar"
#define HOIST_MT_DOCKER_FOREIGN_GZIP "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

typedef enum {
  HOIST_MEDIA_UNKNOWN = 0,
  HOIST_MEDIA_MANIFEST, /* OCI or Docker image manifest */
  HOIST_MEDIA_INDEX,    /* OCI index or Docker manifest list */
  HOIST_MEDIA_CONFIG,
  HOIST_MEDIA_LAYER,
} hoist_media_kind;

typedef enum {
  HOIST_COMPRESS_NONE = 0,
  HOIST_COMPRESS_GZIP,
  HOIST_COMPRESS_ZSTD,
} hoist_compression;

HOIST_EXPORT hoist_media_kind hoist_media_kind_of(const char *media_type);
/* Compression of a layer media type; -1 for something that is not a layer. */
HOIST_EXPORT int hoist_media_layer_compression(const char *media_type);
/* True for the application/vnd.docker.* family. */
HOIST_EXPORT bool hoist_media_is_docker(const char *media_type);
/* True for the layer types a registry does not hold (Docker foreign, OCI
 * non-distributable): their blob lives at the descriptor's urls, they are not
 * pushed, and they are fetched from the urls only when asked. */
HOIST_EXPORT bool hoist_media_is_nondistributable(const char *media_type);

/* ------------------------------------------------------------- platform */

typedef struct hoist_platform {
  char *os;           /* "linux" */
  char *architecture; /* "amd64", "arm64", ... (GOARCH names) */
  char *variant;      /* "v8" or NULL */
  char *os_version;   /* NULL unless given */
  char **os_features; /* NULL-terminated or NULL */
  char **features;    /* NULL-terminated or NULL */
} hoist_platform;

/* Parses "os/arch[/variant]" ("linux/arm64/v8"); normalizes as containerd
 * does (aarch64 -> arm64, x86_64 -> amd64, arm64 variant v8 dropped). */
HOIST_EXPORT int hoist_platform_parse(const char *s, hoist_platform **out,
                                      hoist_err **err) HOIST_WUR;
/* The platform this process runs on. */
HOIST_EXPORT hoist_platform *hoist_platform_host(void);
/* "os/arch[/variant]". Caller frees. */
HOIST_EXPORT char *hoist_platform_string(const hoist_platform *p);
/* True when have satisfies want: same os and architecture, and the same
 * variant when want names one. */
HOIST_EXPORT bool hoist_platform_match(const hoist_platform *want, const hoist_platform *have);
HOIST_EXPORT hoist_platform *hoist_platform_dup(const hoist_platform *p);
HOIST_EXPORT void hoist_platform_free(hoist_platform *p);
/* The JSON "platform" object of a descriptor: os and architecture required,
 * kept as written (not normalized). */
HOIST_EXPORT int hoist_platform_from_json(const json_t *j, hoist_platform **out,
                                          hoist_err **err) HOIST_WUR;
/* NULL when os or architecture is missing. */
HOIST_EXPORT json_t *hoist_platform_to_json(const hoist_platform *p);

/* ----------------------------------------------------------- descriptor */

typedef struct hoist_descriptor {
  char *media_type;
  char *digest;             /* validated "sha256:<hex>" */
  int64_t size;             /* >= 0 */
  char **urls;              /* NULL-terminated or NULL */
  json_t *annotations;      /* object of strings, or NULL */
  hoist_platform *platform; /* NULL unless given */
  char *artifact_type;      /* NULL unless given */
} hoist_descriptor;

/* Validates and copies j into out (cleared on failure). Errors name the
 * field ("size must be a non-negative integer"); callers add the path. A
 * null urls, annotations or platform is taken as absent; members outside the
 * model (such as "data") are dropped. */
HOIST_EXPORT int hoist_descriptor_from_json(json_t *j, hoist_descriptor *out,
                                            hoist_err **err) HOIST_WUR;
/* New JSON object, or NULL when mediaType or digest is missing or a string is
 * not valid UTF-8. */
HOIST_EXPORT json_t *hoist_descriptor_to_json(const hoist_descriptor *d);
/* Fills out (overwritten, not cleared) with media_type and the sha256 digest
 * and size of data: the descriptor of a blob or document held in memory. */
HOIST_EXPORT void hoist_descriptor_of_bytes(hoist_descriptor *out, const char *media_type,
                                            const void *data, size_t len);
/* Deep copy into out. */
HOIST_EXPORT void hoist_descriptor_copy(hoist_descriptor *out, const hoist_descriptor *d);
/* Frees the members (not d itself). */
HOIST_EXPORT void hoist_descriptor_clear(hoist_descriptor *d);
/* Annotation value or NULL. */
HOIST_EXPORT const char *hoist_descriptor_annotation(const hoist_descriptor *d, const char *key);
/* Sets an annotation; a NULL value removes it. */
HOIST_EXPORT int hoist_descriptor_set_annotation(hoist_descriptor *d, const char *key,
                                                 const char *value, hoist_err **err) HOIST_WUR;

/* ------------------------------------------------------------- manifest */

typedef struct hoist_manifest {
  int schema_version; /* 2 */
  char *media_type;   /* never NULL after parse: inferred as OCI when absent */
  hoist_descriptor config;
  hoist_descriptor *layers;
  size_t n_layers;
  json_t *annotations;       /* or NULL */
  hoist_descriptor *subject; /* or NULL */
  char *artifact_type;       /* or NULL */
} hoist_manifest;

/* Validates untrusted bytes (at most HOIST_MANIFEST_MAX): schemaVersion 2, a
 * manifest media type (or none, taken as OCI), a config descriptor and layer
 * descriptors of any valid media type: an image or an artifact (a Helm chart,
 * a signature, an attestation), which hoist copies as it is. */
HOIST_EXPORT int hoist_manifest_parse(const char *data, size_t len, hoist_manifest **out,
                                      hoist_err **err) HOIST_WUR;
/* 0 when m is an image hoist can unpack and extend: an image config and layers
 * of the types hoist unpacks; else an error saying what it is instead. */
HOIST_EXPORT int hoist_manifest_check_image(const hoist_manifest *m, hoist_err **err) HOIST_WUR;
/* hoist_manifest_parse, then hoist_manifest_check_image. */
HOIST_EXPORT int hoist_manifest_parse_image(const char *data, size_t len, hoist_manifest **out,
                                            hoist_err **err) HOIST_WUR;
/* Canonical JSON of m, an image (hoist writes no artifacts); fails rather than
 * emit a document hoist_manifest_parse_image would refuse (missing config,
 * unknown layer type, ...). */
HOIST_EXPORT int hoist_manifest_to_json(const hoist_manifest *m, char **out, size_t *len,
                                        hoist_err **err) HOIST_WUR;
/* Appends a copy of layer. */
HOIST_EXPORT void hoist_manifest_add_layer(hoist_manifest *m, const hoist_descriptor *layer);
HOIST_EXPORT hoist_manifest *hoist_manifest_new(const char *media_type);
HOIST_EXPORT void hoist_manifest_free(hoist_manifest *m);

/* ---------------------------------------------------------------- index */

typedef struct hoist_index {
  int schema_version; /* 2 */
  char *media_type;   /* OCI index or Docker list; NULL in an OCI layout's index.json */
  hoist_descriptor *manifests;
  size_t n_manifests;
  json_t *annotations;
} hoist_index;

/* The platforms of ix's entries, ", "-separated, for a message (cut where
 * the message would grow past its cap). An entry without a platform is
 * named unknown, or left out when unknown is NULL. Caller frees. */
HOIST_EXPORT char *hoist_index_platforms(const hoist_index *ix, const char *unknown);

HOIST_EXPORT int hoist_index_parse(const char *data, size_t len, hoist_index **out,
                                   hoist_err **err) HOIST_WUR;
HOIST_EXPORT int hoist_index_to_json(const hoist_index *ix, char **out, size_t *len,
                                     hoist_err **err) HOIST_WUR;
HOIST_EXPORT hoist_index *hoist_index_new(const char *media_type);
/* Appends a copy of d. */
HOIST_EXPORT void hoist_index_add(hoist_index *ix, const hoist_descriptor *d);
/* Removes entry i (no-op when out of range). */
HOIST_EXPORT void hoist_index_remove(hoist_index *ix, size_t i);
/* First manifest matching want (hoist_platform_match), or NULL. */
HOIST_EXPORT const hoist_descriptor *hoist_index_find_platform(const hoist_index *ix,
                                                               const hoist_platform *want);
HOIST_EXPORT void hoist_index_free(hoist_index *ix);

/* Media type of a manifest-like document: the HOIST_MT_* constant equal to its
 * mediaType field when present (NULL for any other mediaType), else inferred
 * from its shape ("manifests" -> OCI index, "config" -> OCI manifest).
 * Returns NULL when it is neither or not a JSON object. Does not validate. */
HOIST_EXPORT const char *hoist_manifest_detect(const char *data, size_t len);

/* --------------------------------------------------------------- config */

/* An image config. The JSON document is the source of truth (fields hoist
 * does not know survive a round trip); helpers read and edit it. */
typedef struct hoist_config {
  json_t *root;
} hoist_config;

/* Validates: an object; "architecture" and "os" strings; "rootfs" with type
 * "layers" and "diff_ids" an array of valid digests. */
HOIST_EXPORT int hoist_config_parse(const char *data, size_t len, hoist_config **out,
                                    hoist_err **err) HOIST_WUR;
HOIST_EXPORT int hoist_config_to_json(const hoist_config *c, char **out, size_t *len,
                                      hoist_err **err) HOIST_WUR;
/* A minimal valid config for platform p (linux/amd64 when NULL): no layers,
 * an empty "config" section. */
HOIST_EXPORT hoist_config *hoist_config_new(const hoist_platform *p);
HOIST_EXPORT const char *hoist_config_os(const hoist_config *c);
HOIST_EXPORT const char *hoist_config_architecture(const hoist_config *c);
HOIST_EXPORT const char *hoist_config_variant(const hoist_config *c); /* or NULL */
/* The platform the config declares. Caller frees. */
HOIST_EXPORT hoist_platform *hoist_config_platform(const hoist_config *c);
HOIST_EXPORT size_t hoist_config_n_diff_ids(const hoist_config *c);
HOIST_EXPORT const char *hoist_config_diff_id(const hoist_config *c, size_t i);
/* The "config" object (Env, Cmd, Entrypoint, WorkingDir, User, Labels),
 * created empty when missing; borrowed reference. */
HOIST_EXPORT json_t *hoist_config_section(hoist_config *c);
/* Value of a string field of the "config" section (User, WorkingDir), or NULL. */
HOIST_EXPORT const char *hoist_config_get_string(const hoist_config *c, const char *field);
/* Adds a layer: appends diff_id to rootfs.diff_ids and a history entry
 * {created, created_by, comment}; sets "created". created_by and comment may be
 * NULL. */
HOIST_EXPORT int hoist_config_add_layer(hoist_config *c, const char *diff_id,
                                        const char *created_by, const char *comment, time_t created,
                                        hoist_err **err) HOIST_WUR;
/* Sets or replaces NAME=value in config.Env. Fails for an empty name, a name
 * with '=', or invalid UTF-8. */
HOIST_EXPORT int hoist_config_set_env(hoist_config *c, const char *name, const char *value,
                                      hoist_err **err) HOIST_WUR;
/* Sets config.Labels[key]; a NULL value removes the label. */
HOIST_EXPORT int hoist_config_set_label(hoist_config *c, const char *key, const char *value,
                                        hoist_err **err) HOIST_WUR;
/* Appends a history entry {created, created_by, comment, empty_layer: true}
 * (a change that added no layer) and sets "created". created_by and comment
 * may be NULL. */
HOIST_EXPORT int hoist_config_add_history(hoist_config *c, const char *created_by,
                                          const char *comment, time_t created,
                                          hoist_err **err) HOIST_WUR;
/* Writes t as RFC 3339 UTC ("2026-01-02T03:04:05Z"). */
HOIST_EXPORT int hoist_config_format_time(time_t t, char out[32], hoist_err **err) HOIST_WUR;
HOIST_EXPORT void hoist_config_free(hoist_config *c);

/* ---------------------------------------------------------- config edit */

/* What `hoist config` (and `hoist append`) change in an image, as `crane
 * mutate` and `buildah config` do: one kind of change per option. The value
 * each takes, as hoist_config_edit_add reads it: */
typedef enum hoist_config_field {
  HOIST_CONFIG_ENTRYPOINT,   /* a JSON array of strings, or a command run as
                              * ["/bin/sh", "-c", TEXT]; "" or [] removes it.
                              * A new one drops the image's Cmd unless the edit
                              * sets Cmd too (Docker's ENTRYPOINT rule) */
  HOIST_CONFIG_CMD,          /* the same, for Cmd */
  HOIST_CONFIG_ENV,          /* NAME=VALUE: set, replacing NAME's entry */
  HOIST_CONFIG_ENV_RM,       /* NAME: its entry removed */
  HOIST_CONFIG_LABEL,        /* KEY=VALUE in Labels */
  HOIST_CONFIG_LABEL_RM,     /* KEY removed from Labels */
  HOIST_CONFIG_ANNOTATION,   /* KEY=VALUE in the manifest's annotations */
  HOIST_CONFIG_USER,         /* "user[:group]", ids or names; "" removes */
  HOIST_CONFIG_WORKDIR,      /* an absolute path; "" removes */
  HOIST_CONFIG_EXPOSE,       /* PORT[/tcp|udp|sctp] into ExposedPorts ("80/tcp": {}) */
  HOIST_CONFIG_VOLUME,       /* an absolute path into Volumes */
  HOIST_CONFIG_STOP_SIGNAL,  /* SIGTERM, TERM or 15; "" removes */
  HOIST_CONFIG_OS,           /* "linux" */
  HOIST_CONFIG_ARCHITECTURE, /* "arm64" (aarch64, x86_64, ... normalized) */
  HOIST_CONFIG_VARIANT,      /* "v7"; "" removes */
  HOIST_CONFIG_AUTHOR,       /* the config's author; "" removes */
} hoist_config_field;

/* One change: the field and its value as checked and normalized ("80/tcp"
 * for "80"); argv for Entrypoint and Cmd (empty: removed). Owned. */
typedef struct hoist_config_change {
  hoist_config_field field;
  char *value;
  char **argv;
} hoist_config_change;

/* The changes, applied in the order they were added (a later --env NAME=...
 * replaces an earlier one; --env-rm NAME after it removes it). {0} is an
 * empty edit; hoist_config_edit_clear frees one. */
typedef struct hoist_config_edit {
  hoist_config_change *v;
  size_t n;
} hoist_config_edit;

/* Checks text as a value of field and appends the change to e. A refused
 * value leaves e as it was, with an error saying what is wrong and what is
 * wanted ("FOO is not NAME=VALUE"); the caller names the option. */
HOIST_EXPORT int hoist_config_edit_add(hoist_config_edit *e, hoist_config_field field,
                                       const char *text, hoist_err **err) HOIST_WUR;
/* Applies e's changes to the config c in order; annotations are the
 * manifest's (hoist_config_edit_annotate). */
HOIST_EXPORT int hoist_config_edit_apply(const hoist_config_edit *e, hoist_config *c,
                                         hoist_err **err) HOIST_WUR;
/* Applies e's annotations to the manifest m; fails for a Docker schema 2
 * manifest, which has no annotations. No annotation: nothing to do. */
HOIST_EXPORT int hoist_config_edit_annotate(const hoist_config_edit *e, hoist_manifest *m,
                                            hoist_err **err) HOIST_WUR;
HOIST_EXPORT void hoist_config_edit_clear(hoist_config_edit *e);
#define _cleanup_config_edit_ __attribute__((cleanup(hoist_config_edit_clear)))

/* Canonical JSON: sorted keys, compact. Caller frees. */
HOIST_EXPORT int hoist_json_canonical(const json_t *j, char **out, size_t *len,
                                      hoist_err **err) HOIST_WUR;

static inline void hoist_manifest_freep(hoist_manifest **m) { hoist_manifest_free(*m); }
static inline void hoist_index_freep(hoist_index **m) { hoist_index_free(*m); }
static inline void hoist_config_freep(hoist_config **m) { hoist_config_free(*m); }
static inline void hoist_platform_freep(hoist_platform **m) { hoist_platform_free(*m); }
static inline void hoist_jsonp(json_t **j) { json_decref(*j); }
#define _cleanup_manifest_ __attribute__((cleanup(hoist_manifest_freep)))
#define _cleanup_index_ __attribute__((cleanup(hoist_index_freep)))
#define _cleanup_config_ __attribute__((cleanup(hoist_config_freep)))
#define _cleanup_platform_ __attribute__((cleanup(hoist_platform_freep)))
#define _cleanup_json_ __attribute__((cleanup(hoist_jsonp)))

#endif
