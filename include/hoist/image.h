/*
 * image: what hoist does with whole images, on the transport (transport.h),
 * so every operation works between any two kinds of location:
 *
 * - copy: an image (a manifest and its blobs, or a whole index) from a
 *   source to a target. Blobs move in parallel, each the cheapest way the
 *   target knows (skipped when present, mounted within one registry,
 *   streamed between two, uploaded from a layout's file in resumable
 *   pieces), never held in memory; a manifest is written only after every
 *   blob it references is in place.
 * - pull into the image store: a registry image copied into its layout of
 *   the image store, unless that layout holds it already (one HEAD request).
 * - append (`crane append`): a new image made of a base image's layers plus
 *   one new layer written straight into the target (layer.h). The config
 *   gets the new diffID, a history entry and a new "created"; base layers
 *   the target lacks are copied from the base.
 * - config edit (`crane mutate`, `buildah config`): an image with a changed
 *   config (Entrypoint, Cmd, Env, Labels, ...; oci.h's hoist_config_edit)
 *   and manifest annotations; its layers are never written again.
 * - index create: single-platform images joined into one multi-arch index.
 *
 * Ownership: results that hold memory say so and have a *_clear. Whoever
 * opens a target commits it (hoist_transport_commit): the functions taking
 * locations do; those taking an opened target leave it to their caller.
 * Nothing is printed. What a failure or a crash leaves is the transport's: blobs in the
 * target (collectable: in a layout by `hoist gc`), never a manifest or tag
 * naming an incomplete image, since manifests and tags are written last.
 */
#ifndef HOIST_IMAGE_H
#define HOIST_IMAGE_H

#include "hoist/core.h"
#include "hoist/layer.h"
#include "hoist/oci.h"
#include "hoist/ref.h"
#include "hoist/stream.h"
#include "hoist/transport.h"

/* ------------------------------------------------------------------ copy */

typedef struct hoist_image_copy_opts {
  const hoist_platform *platform; /* from an index pick this; NULL: the host's */
  bool all_platforms;             /* copy a whole index */
  int jobs;                       /* parallel blob transfers; 0: the registry client's, or 4 */
} hoist_image_copy_opts;

typedef struct hoist_image_copy_result {
  char digest[HOIST_DIGEST_STR_LEN]; /* of the manifest or index written */
  char *media_type;                  /* caller frees (hoist_image_copy_result_clear) */
  uint64_t manifests;                /* manifests written (an index counts its children) */
  uint64_t blobs_uploaded;           /* blobs transferred */
  uint64_t blobs_skipped;            /* already at the destination */
  uint64_t blobs_mounted;            /* mounted from another repository */
  uint64_t bytes;                    /* blob bytes transferred */
} hoist_image_copy_result;

/* Copies the image at src to dst (any two locations the transport opens
 * with t). A layout destination without a tag is tagged with the source's
 * tag, or "latest". The destination is opened (a layout created) only once
 * the source's document was read. */
HOIST_EXPORT int hoist_image_copy(const hoist_transport_opts *t, const hoist_loc *src,
                                  const hoist_loc *dst, const hoist_image_copy_opts *opts,
                                  hoist_image_copy_result *res, hoist_err **err) HOIST_WUR;

/* The copy on opened ends: the document src names (through an index, the
 * platform's image unless opts->all_platforms) to dst under reference (as
 * put_manifest takes it: a tag, a digest, NULL for dst's own tag). dst is
 * not committed: the caller, who opened it, does once it put everything. */
HOIST_EXPORT int hoist_image_transfer(hoist_transport_source *src, hoist_transport_target *dst,
                                      const char *reference, const hoist_image_copy_opts *opts,
                                      hoist_image_copy_result *res, hoist_err **err) HOIST_WUR;
HOIST_EXPORT void hoist_image_copy_result_clear(hoist_image_copy_result *res);

/* ------------------------------------------------------- the image store */

/* Where a registry image lives in the image store rooted at store:
 * "oci:STORE/HOST/PATH:TAG", one layout per repository (':' in HOST
 * written '_'), TAG the reference's tag or sha256-HEX for a digest
 * reference. Caller frees. */
HOIST_EXPORT char *hoist_image_store_location(const char *store, const hoist_ref *ref);

/* Makes the image src names readable from a layout: a layout location is
 * returned as it is (a copy in *out); a registry image is copied into its
 * place in the image store rooted at store (for an index, the platform's
 * image; blobs already there are not fetched again), unless the layout's tag
 * already names the document the registry serves (one HEAD request). *out
 * (caller frees) is the layout location. */
HOIST_EXPORT int hoist_image_pull(const hoist_transport_opts *t, const char *store,
                                  const hoist_loc *src, const hoist_platform *platform,
                                  hoist_loc **out, hoist_err **err) HOIST_WUR;

/* ---------------------------------------------------------------- append */

/* A layer blob that exists already (a build cache entry): it is copied from
 * `from` (through copy_blob; the source's own manifest is never read) when
 * the target lacks it, instead of writing a new layer. */
typedef struct hoist_image_append_prebuilt {
  hoist_transport_source *from;
  hoist_descriptor desc; /* media type (its compression), digest, size */
  const char *diff_id;
} hoist_image_append_prebuilt;

typedef struct hoist_image_append_options {
  hoist_layer_options layer;
  const hoist_platform *platform; /* for a base that is an index; NULL: the host's */
  const char *created_by;         /* history entry; NULL: "hoist append" */
  const char *comment;            /* history comment or NULL */
  /* NULL, or the new layer; then hoist_image_append's layer argument is
   * unused and out->layer reports this blob (tar_size and n_entries 0). */
  const hoist_image_append_prebuilt *prebuilt;
  /* NULL, or called with the new config (base's, or the scratch one) before
   * the layer is added: labels, Env. A negative return fails the append. */
  int (*edit_config)(void *ctx, hoist_config *cfg, hoist_err **err);
  void *edit_ctx;
  /* NULL, or changes to the config and the manifest's annotations (as
   * hoist_image_config_edit makes), applied before any blob is written and
   * before edit_config. */
  const hoist_config_edit *config_edit;
} hoist_image_append_options;

typedef struct hoist_image_append_result {
  hoist_layer_result layer;
  char manifest_digest[HOIST_DIGEST_STR_LEN];
  char config_digest[HOIST_DIGEST_STR_LEN];
  size_t n_layers;      /* in the new image */
  size_t blobs_copied;  /* base layers the target lacked */
  size_t blobs_skipped; /* base layers the target already had (or mounted) */
} hoist_image_append_result;

/* Builds the image and stores it in target under target's own tag (the
 * caller commits target: hoist_transport_commit). A NULL base is the empty
 * image ("scratch"): the result has the new layer only and a config for
 * opts->platform (linux/amd64 when NULL). created is SOURCE_DATE_EPOCH when
 * opts->layer.source_date_epoch >= 0, else now. */
HOIST_EXPORT int hoist_image_append(hoist_transport_source *base, hoist_transport_target *target,
                                    const hoist_layer_source *layer,
                                    const hoist_image_append_options *opts,
                                    hoist_image_append_result *out, hoist_err **err) HOIST_WUR;

/* ----------------------------------------------------------- config edit */

typedef struct hoist_image_config_opts {
  const hoist_platform *platform; /* from an index pick this; NULL: the host's */
  /* Non-NULL: a history entry {created, created_by, comment, empty_layer}
   * is added, and "created" set to its time. Else "created" is kept. */
  const char *comment;
  const char *created_by; /* that entry's; NULL: "hoist config" */
  int64_t created;        /* that entry's time (seconds since the epoch); set -1 for
                           * now (0 is the epoch itself) */
  int jobs;               /* parallel blob transfers; 0: 4 */
} hoist_image_config_opts;

typedef struct hoist_image_config_result {
  char manifest_digest[HOIST_DIGEST_STR_LEN];
  char config_digest[HOIST_DIGEST_STR_LEN];
  size_t n_layers;
  uint64_t blobs_copied;  /* layers streamed into the target */
  uint64_t blobs_mounted; /* mounted from another repository of its registry */
  uint64_t blobs_skipped; /* already there */
} hoist_image_config_result;

/* `crane mutate`: the image src names (an index: opts->platform's image),
 * its config changed by edit (and the manifest's annotations), stored in
 * dst under dst's own tag (the caller commits dst). Nothing but the config
 * and the manifest is new: layers dst lacks are moved from src the cheapest
 * way (mounted within one registry, streamed between two); layers it has
 * (the same layout or repository) are not touched. The manifest keeps its
 * media type (Docker schema 2 or OCI), layers and subject; every check
 * (edit values, annotations on a Docker manifest) passes before anything is
 * written. dst may be the location src names: its tag then moves. */
HOIST_EXPORT int hoist_image_config_edit(hoist_transport_source *src, hoist_transport_target *dst,
                                         const hoist_config_edit *edit,
                                         const hoist_image_config_opts *opts,
                                         hoist_image_config_result *out, hoist_err **err) HOIST_WUR;

/* ------------------------------------------------------- multi-arch index */

typedef struct hoist_image_index_opts {
  bool oci;                /* an OCI index; else a Docker manifest list (in a registry; a layout
                            * target always gets an OCI index, the only kind OCI tools find there) */
  const char *const *tags; /* more tags for the index (NULL-terminated) or NULL */
  int jobs;                /* parallel blob transfers; 0: the registry client's, or 4 */
} hoist_image_index_opts;

typedef struct hoist_image_index_result {
  char digest[HOIST_DIGEST_STR_LEN]; /* of the index */
  const char *media_type;            /* static */
  size_t n_manifests;
  uint64_t images_copied; /* sources copied into the target's repository or layout */
} hoist_image_index_result;

/* Joins single-platform images into one index stored at target (a registry
 * reference with a tag, or oci:DIR:TAG) and at opts->tags. Every source is
 * read first: it must be one image manifest (or an index of exactly one),
 * its platform is its config's os/architecture[/variant], and the platforms
 * must be distinct ("srcs[1] and srcs[0] are both linux/amd64"); nothing is
 * written before these checks pass. Sources outside the target's repository
 * (or layout) are then copied into it by digest (mounted when the registry
 * allows), and the index, entries in the order of srcs, is written last. */
HOIST_EXPORT int hoist_image_index_create(const hoist_transport_opts *t, const hoist_loc *target,
                                          const hoist_loc *const *srcs, size_t n_srcs,
                                          const hoist_image_index_opts *opts,
                                          hoist_image_index_result *out, hoist_err **err) HOIST_WUR;

#endif
