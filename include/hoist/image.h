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
 * - the image store's contents: its images listed, a tag added within a
 *   layout (index.json only) or into another (the image copied).
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
#include "hoist/registry.h"
#include "hoist/store.h"
#include "hoist/stream.h"
#include "hoist/transport.h"

/* ------------------------------------------------------------------ copy */

typedef struct hoist_image_copy_opts {
  const hoist_platform *platform; /* from an index pick this; NULL: the host's */
  bool all_platforms;             /* copy a whole index */
  int jobs;                       /* parallel blob transfers; 0: the registry client's, or 4 */
  /* Write OCI media types, as OCI tools need (umoci; skopeo releases that
   * match a layout's tag only on OCI types): a Docker manifest becomes an
   * OCI manifest and a Docker manifest list an OCI index, with the same
   * configs and layers. The rewritten documents have new digests; OCI
   * documents and artifacts are copied as they are. */
  bool oci;
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
 * already names the document the registry serves (one HEAD request); an
 * archive's image is copied into the layout STORE/archives, tagged
 * sha256-HEX after the document the location names. When the copy fails
 * because the registry does not know the tag (as for one made in the store
 * by hoist_image_tag) or is out of reach, but the layout holds the tag, the
 * store's copy serves, with a warning logged; refused credentials and bad
 * content stay errors. *out (caller frees) is the layout location. */
HOIST_EXPORT int hoist_image_pull(const hoist_transport_opts *t, const char *store,
                                  const hoist_loc *src, const hoist_platform *platform,
                                  hoist_loc **out, hoist_err **err) HOIST_WUR;

/* Fetches into s the non-distributable layers of m (Docker foreign, OCI
 * nondistributable: hoist_media_is_nondistributable) that s lacks, from
 * their urls, tried in order: http and https only, no credentials sent,
 * each checked against the layer's size and digest as it streams and
 * stored only when both match. A layer s lacks that has no urls, or whose
 * every url fails, is an error naming the last failure. *fetched
 * (optional) counts the layers stored. */
HOIST_EXPORT int hoist_image_fetch_foreign(hoist_registry *r, hoist_store *s,
                                           const hoist_manifest *m, size_t *fetched,
                                           hoist_err **err) HOIST_WUR;

/* One image of the image store: a tag (or an untagged entry) of one of its
 * layouts. */
typedef struct hoist_image_store_entry {
  char *repository;      /* HOST/PATH as a reference names it ("127.0.0.1:5000/app") */
  char *tag;             /* NULL for an entry of index.json without a tag */
  char *layout;          /* the layout's directory */
  hoist_descriptor desc; /* the entry of index.json: digest, media type, size */
  uint64_t size;         /* bytes of the image's blobs that the layout holds: the
                          * manifest, its config and layers (an index: itself and
                          * those of its images present) */
  char *created;         /* the config's "created" as written, or NULL (an index, an
                          * artifact, a config without one) */
} hoist_image_store_entry;

/* Lists the images of the image store rooted at store: every layout below it
 * whose path names a repository (STORE/HOST/PATH, hoist_image_store_location;
 * other directories, such as the build cache, are not images), one entry per
 * entry of its index.json, sorted by repository, then tag. A missing store
 * is empty. *out (caller frees with hoist_image_store_entries_free) holds *n
 * entries. Fails, naming the layout, on a layout it cannot read; reads no
 * blob bigger than HOIST_MANIFEST_MAX. */
HOIST_EXPORT int hoist_image_store_list(const char *store, hoist_image_store_entry **out, size_t *n,
                                        hoist_err **err) HOIST_WUR;
HOIST_EXPORT void hoist_image_store_entries_free(hoist_image_store_entry *e, size_t n);

/* The layouts of the image store rooted at store: the directories below it
 * whose path names a repository (as hoist_image_store_list takes them),
 * tagged or not, sorted. *dirs: NULL-terminated, caller frees
 * (hoist_strfreev); a missing store has none. */
HOIST_EXPORT int hoist_image_store_layouts(const char *store, char ***dirs, size_t *n,
                                           hoist_err **err) HOIST_WUR;

/* The repository of the image store that the layout at dir holds, when dir
 * is one of the store's layouts ("127.0.0.1:5000/app" for
 * STORE/127.0.0.1_5000/app); NULL otherwise. Caller frees. */
HOIST_EXPORT char *hoist_image_store_repository(const char *store, const char *dir);

typedef struct hoist_image_tag_result {
  char digest[HOIST_DIGEST_STR_LEN]; /* of the document tagged */
  bool copied;                       /* dst is another layout: the image was copied there */
  uint64_t blobs_copied;             /* blobs dst lacked (when copied) */
} hoist_image_tag_result;

/* Tags the document src names (a layout location; without a tag, the
 * layout's only entry) as dst (a layout location with a tag). Within one
 * layout (the same directory) only index.json changes: no blob is read or
 * written. Into another layout (in the image store, another repository) the
 * image is copied first, a whole index with all its images, blobs dst holds
 * skipped: a layout holds what its tags reach. */
HOIST_EXPORT int hoist_image_tag(const hoist_loc *src, const hoist_loc *dst,
                                 hoist_image_tag_result *res, hoist_err **err) HOIST_WUR;

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
  size_t n_layers;               /* in the new image */
  size_t blobs_copied;           /* base layers the target lacked */
  size_t blobs_skipped;          /* base layers the target already had (or mounted) */
  hoist_transport_how layer_how; /* how a prebuilt layer reached the target */
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
                            * or oci-archive target always gets an OCI index, the only kind OCI
                            * tools find there) */
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
 * read first: it must be one image manifest (or an index of exactly one,
 * beside attestation manifests of that image as BuildKit pushes them: they
 * are carried into the new index, after the images),
 * its platform is its config's os/architecture[/variant], and the platforms
 * must be distinct ("srcs[1] and srcs[0] are both linux/amd64"); nothing is
 * written before these checks pass. Sources outside the target's repository
 * (or layout) are then copied into it by digest (mounted when the registry
 * allows), and the index, entries in the order of srcs, is written last. */
HOIST_EXPORT int hoist_image_index_create(const hoist_transport_opts *t, const hoist_loc *target,
                                          const hoist_loc *const *srcs, size_t n_srcs,
                                          const hoist_image_index_opts *opts,
                                          hoist_image_index_result *out, hoist_err **err) HOIST_WUR;

/* ----------------------------------------------------------------- blobs */

/* Stores data, a document held in memory (a config, a payload, a
 * statement), as a blob of t unless t has it; *out receives its descriptor
 * (media_type, digest, size; cleared on failure: hoist_descriptor_clear).
 * An upload the registry broke off (EAGAIN) is given again, up to 3 times. */
HOIST_EXPORT int hoist_image_put_bytes(hoist_transport_target *t, const char *media_type,
                                       const char *data, size_t len, hoist_descriptor *out,
                                       hoist_err **err) HOIST_WUR;

/* ------------------------------------------------------------- referrers */

/* Stores the manifest data (an OCI manifest whose subject is set: an
 * artifact such as a signature or an attestation; its config and layer blobs
 * already in place) at the repository or layout loc names, by digest, and
 * makes it findable as a referrer of its subject (OCI distribution 1.1): a
 * registry that answers the referrers API finds it from the subject alone;
 * for one that does not, and for a layout, the referrers tag schema is kept:
 * the OCI index tagged sha256-<hex of the subject> gets the manifest's
 * descriptor (with its artifactType and annotations), written whole again
 * (two writers racing may lose one entry). *digest (optional) receives the
 * manifest's digest. */
HOIST_EXPORT int hoist_image_referrer_put(const hoist_transport_opts *t, const hoist_loc *loc,
                                          const char *data, size_t len,
                                          char digest[HOIST_DIGEST_STR_LEN],
                                          hoist_err **err) HOIST_WUR;

/* The referrers of the manifest subject (a digest) at the repository or
 * layout loc names: from the registry's referrers API, else the referrers
 * tag schema's index; an index with no entries when there are none.
 * artifact_type non-NULL keeps only the entries of that artifactType.
 * Caller frees *out (hoist_index_free). */
HOIST_EXPORT int hoist_image_referrers(const hoist_transport_opts *t, const hoist_loc *loc,
                                       const char *subject, const char *artifact_type,
                                       hoist_index **out, hoist_err **err) HOIST_WUR;

#endif
