/*
 * append: a new image made of a base image's layers plus one new layer
 * (`crane append`). The config gets the new diffID, a history entry and a new
 * "created"; the manifest gets the new layer; both are stored in the target
 * with the target's tag.
 *
 * Where the base comes from and where the result goes are behind two small
 * interfaces, so the same code serves an OCI layout (on top of store.h) and
 * a registry (on top of registry.h), and tests can stand a table of blobs
 * behind them:
 *
 * - hoist_image_source: the base's manifest, its blobs as bytes or as a
 *   stream;
 * - hoist_image_target: which blobs it already has (those are never copied
 *   again), a writer for a new blob, and storing a tagged manifest.
 *
 * The new layer streams straight from disk into the target's blob writer
 * (layer.h); base layers the target lacks are streamed from the source.
 */
#ifndef HOIST_APPEND_H
#define HOIST_APPEND_H

#include "hoist/core.h"
#include "hoist/layer.h"
#include "hoist/oci.h"
#include "hoist/ref.h"
#include "hoist/registry.h"
#include "hoist/stream.h"

typedef struct hoist_image_source hoist_image_source;
typedef struct hoist_image_target hoist_image_target;

typedef struct hoist_image_source_ops {
  /* The image's manifest document as stored (the digest is over these bytes).
   * When the image is an index, returns the index; append picks the
   * platform's manifest through blob(). */
  int (*manifest)(hoist_image_source *s, char **data, size_t *len, hoist_err **err);
  /* A whole blob or manifest by digest, at most max bytes, verified. */
  int (*blob)(hoist_image_source *s, const char *digest, size_t max, char **data, size_t *len,
              hoist_err **err);
  /* Streams the blob d describes into w (w is not committed here). */
  int (*copy_blob)(hoist_image_source *s, const hoist_descriptor *d, hoist_writer *w,
                   hoist_err **err);
  void (*free)(hoist_image_source *s);
} hoist_image_source_ops;

struct hoist_image_source {
  const hoist_image_source_ops *ops;
};

typedef struct hoist_image_target_ops {
  /* Sets *has when the target already holds d's blob (or just obtained it
   * without a copy: a registry mount, tried only for a blob of the base,
   * from_base, as a new blob cannot be in the base's repository). */
  int (*has_blob)(hoist_image_target *t, const hoist_descriptor *d, bool from_base, bool *has,
                  hoist_err **err);
  /* A writer for a new blob; digest (or NULL) and size (or -1) are checked
   * at commit. */
  int (*blob_writer)(hoist_image_target *t, const char *digest, int64_t size, hoist_writer **out,
                     hoist_err **err);
  /* Stores a manifest (whose blobs are all present) and tags it. */
  int (*put_manifest)(hoist_image_target *t, const char *data, size_t len, const char *media_type,
                      hoist_err **err);
  void (*free)(hoist_image_target *t);
} hoist_image_target_ops;

struct hoist_image_target {
  const hoist_image_target_ops *ops;
};

static inline void hoist_image_source_free(hoist_image_source *s) {
  if (s)
    s->ops->free(s);
}
static inline void hoist_image_target_free(hoist_image_target *t) {
  if (t)
    t->ops->free(t);
}
static inline void hoist_image_source_freep(hoist_image_source **s) { hoist_image_source_free(*s); }
static inline void hoist_image_target_freep(hoist_image_target **t) { hoist_image_target_free(*t); }
#define _cleanup_image_source_ __attribute__((cleanup(hoist_image_source_freep)))
#define _cleanup_image_target_ __attribute__((cleanup(hoist_image_target_freep)))

/* The image tagged tag (NULL: the layout's only image) in the OCI layout at
 * dir. */
HOIST_EXPORT int hoist_append_layout_source(const char *dir, const char *tag,
                                            hoist_image_source **out, hoist_err **err);
/* The OCI layout at dir (created when missing); put_manifest tags tag. */
HOIST_EXPORT int hoist_append_layout_target(const char *dir, const char *tag,
                                            hoist_image_target **out, hoist_err **err);

/* The image ref names in a registry, read through client r (borrowed; it
 * must outlive the source). */
HOIST_EXPORT int hoist_append_registry_source(hoist_registry *r, const hoist_ref *ref,
                                              hoist_image_source **out, hoist_err **err);
/* The registry repository ref names; put_manifest tags ref's tag. Blobs the
 * registry has are not uploaded again; when base is another repository of
 * the same registry, missing blobs are mounted from it when the registry
 * allows, before anything is downloaded. A new blob streams into an upload
 * session as it is written; nothing is spooled. */
HOIST_EXPORT int hoist_append_registry_target(hoist_registry *r, const hoist_ref *ref,
                                              const hoist_ref *base, hoist_image_target **out,
                                              hoist_err **err);

/* A layer blob that exists already (a build cache entry): it is copied from
 * `from` (through copy_blob; the source's own manifest is never read) when
 * the target lacks it, instead of writing a new layer. */
typedef struct hoist_append_prebuilt {
  hoist_image_source *from;
  hoist_descriptor desc; /* media type (its compression), digest, size */
  const char *diff_id;
} hoist_append_prebuilt;

/* The source or target a location names: an OCI layout (oci:DIR[:TAG]) or a
 * registry reference read and written through r (borrowed; NULL is fine for
 * a layout). A registry target mounts missing blobs from base when base is
 * another repository of the same registry (base may be NULL). */
HOIST_EXPORT int hoist_append_open_source(hoist_registry *r, const hoist_loc *loc,
                                          hoist_image_source **out, hoist_err **err);
HOIST_EXPORT int hoist_append_open_target(hoist_registry *r, const hoist_loc *loc,
                                          const hoist_loc *base, hoist_image_target **out,
                                          hoist_err **err);

typedef struct hoist_append_options {
  hoist_layer_options layer;
  const hoist_platform *platform; /* for a base that is an index; NULL: the host's */
  const char *created_by;         /* history entry; NULL: "hoist append" */
  const char *comment;            /* history comment or NULL */
  /* NULL, or the new layer; then hoist_append's layer argument is unused and
   * out->layer reports this blob (tar_size and n_entries 0). */
  const hoist_append_prebuilt *prebuilt;
  /* NULL, or called with the new config (base's, or the scratch one) before
   * the layer is added: labels, Env. A negative return fails the append. */
  int (*edit_config)(void *ctx, hoist_config *cfg, hoist_err **err);
  void *edit_ctx;
} hoist_append_options;

typedef struct hoist_append_result {
  hoist_layer_result layer;
  char manifest_digest[HOIST_DIGEST_STR_LEN];
  char config_digest[HOIST_DIGEST_STR_LEN];
  size_t n_layers;      /* in the new image */
  size_t blobs_copied;  /* base layers the target lacked */
  size_t blobs_skipped; /* base layers the target already had */
} hoist_append_result;

/* Builds the image and stores it in target. A NULL base is the empty image
 * ("scratch"): the result has the new layer only and a config for
 * opts->platform (linux/amd64 when NULL). created is SOURCE_DATE_EPOCH
 * when opts->layer.source_date_epoch >= 0, else now. */
HOIST_EXPORT int hoist_append(hoist_image_source *base, hoist_image_target *target,
                              const hoist_layer_source *layer, const hoist_append_options *opts,
                              hoist_append_result *out, hoist_err **err);

#endif
