/*
 * unpack: the layer applier. Turns an image's layers into a root filesystem.
 *
 * Each layer streams once: read -> SHA-256 of the blob (digest) ->
 * decompress (gzip with ISA-L igzip, zstd, or none, by media type) -> SHA-256
 * of the tar (diffID) -> libarchive tar reader -> apply. Both digests are
 * checked at the end of the layer; a mismatch fails the unpack.
 *
 * Applying is safe against hostile layers: every path is resolved inside the
 * root (openat2 RESOLVE_IN_ROOT or an equivalent walk), absolute names and ".."
 * components are refused, a symlink planted by an earlier entry cannot
 * redirect a later write, hardlinks only point inside the root. OCI whiteouts
 * (".wh.<name>", ".wh..wh..opq") remove lower-layer content and never appear
 * in the result. Modes (setuid, setgid, sticky), mtimes and xattrs are
 * applied (security.capability included; security.selinux, trusted.overlay.*
 * and user.overlay.* are host-only and never set from a layer), and so are
 * POSIX ACLs (pax SCHILY.acl.*, or system.posix_acl_* xattrs), their ids
 * mapped as owners are; a file's mode keeps the header's (group bits: the
 * ACL mask). Device nodes that cannot be created, owners that are not
 * applied (without root) and ACLs the file system refuses are counted in the
 * report. Zero runs of file data are left as holes.
 *
 * The module also owns the rootfs cache: trees keyed by the image's config
 * digest, built in a temp directory beside their final name and renamed into
 * place, so a base image is unpacked once and concurrent unpacks are safe.
 */
#ifndef HOIST_UNPACK_H
#define HOIST_UNPACK_H

#include "hoist/core.h"
#include "hoist/layer.h"
#include "hoist/oci.h"
#include "hoist/store.h"

typedef enum {
  HOIST_OWNER_AUTO = 0, /* apply ownership when running as uid 0 (also in a user namespace) */
  HOIST_OWNER_APPLY,    /* always try lchown; failures are errors */
  HOIST_OWNER_IGNORE,   /* never chown; owners are recorded in the report */
} hoist_owner_mode;

typedef struct hoist_unpack_opts {
  hoist_owner_mode owners;
  /* Owners as a user namespace with these maps (inside -> host, as
   * hoist_sandbox_id_maps gives them) sees the image's: each id is written
   * as its host id, the tree's root belongs to the host id of 0, and an id
   * the maps lack becomes the host id of 65534 (nobody). None: ids as they
   * are. Applied only when owners are (root). */
  const hoist_idmap *uid_map;
  size_t n_uid_map;
  const hoist_idmap *gid_map;
  size_t n_gid_map;
} hoist_unpack_opts;

/* What an unpack did beyond the plain tree: counts of things that could not be
 * reproduced (rootless) and one example name of each. */
typedef struct hoist_unpack_report {
  uint64_t entries;         /* tar members applied (whiteouts included) */
  uint64_t bytes;           /* regular-file bytes written */
  uint64_t whiteouts;       /* whiteout members processed */
  uint64_t devices_skipped; /* device nodes not created (not permitted) */
  uint64_t owners_recorded; /* members whose owner was not applied */
  uint64_t xattrs_skipped;  /* xattrs the kernel refused */
  uint64_t acls_skipped;    /* POSIX ACLs not applied (refused, malformed or NFSv4) */
  char *first_device;       /* example member of each kind, or NULL */
  char *first_owner;
  char *first_xattr;
  char *first_acl;
} hoist_unpack_report;

HOIST_EXPORT void hoist_unpack_report_clear(hoist_unpack_report *r);

/* The host id of image id id under maps m (inside -> host; none: id itself).
 * An id the maps lack becomes nobody's (65534) host id, or stays as it is
 * when the maps lack nobody too. */
HOIST_EXPORT uint32_t hoist_unpack_map_id(uint32_t id, const hoist_idmap *m, size_t n);

/* Applies one layer read from fd (compressed as comp) onto the tree at
 * rootfd. expected_digest (of the bytes read from fd) and expected_diff_id
 * (of the uncompressed tar) may be NULL; a mismatch is HOIST_E_DIGEST. On
 * failure the tree may be partly modified: callers remove it (as
 * hoist_unpack_image does). report (optional) accumulates. */
HOIST_EXPORT int hoist_unpack_layer(int rootfd, int fd, hoist_compression comp,
                                    const char *expected_digest, const char *expected_diff_id,
                                    const hoist_unpack_opts *opts, hoist_unpack_report *report,
                                    hoist_err **err) HOIST_WUR;

/* Applies the layers of manifest m (blobs in store s) in order into dest,
 * which must not exist or be an empty directory. The config's diff_ids are
 * checked against each layer. On failure dest is removed (or emptied when it
 * existed before). */
HOIST_EXPORT int hoist_unpack_image(hoist_store *s, const hoist_manifest *m, const char *dest,
                                    const hoist_unpack_opts *opts, hoist_unpack_report *report,
                                    hoist_err **err) HOIST_WUR;

/* Resolves tag (NULL: the only entry) of the layout s to an image manifest
 * for platform (NULL: the host's) through an index when there is one. Caller
 * frees *manifest. */
HOIST_EXPORT int hoist_unpack_resolve(hoist_store *s, const char *tag,
                                      const hoist_platform *platform, hoist_manifest **manifest,
                                      hoist_err **err) HOIST_WUR;

/* Removes the trees of the rootfs cache dir (required) not used
 * (unpacked or reused) for max_age seconds; dry_run only counts them. A
 * tree is renamed out of sight before it is removed. A tree some caller
 * holds (hoist_unpack_cached's hold) is kept, and counted in in_use. */
HOIST_EXPORT int hoist_unpack_cache_prune(const char *dir, int64_t max_age, bool dry_run,
                                          hoist_prune_report *report, hoist_err **err) HOIST_WUR;

/* Returns in *path (caller frees) the cached rootfs of m under cache_dir
 * (required): cache_dir/<config-hex>, or <config-hex>-ids<12 hex>
 * for a tree unpacked with id maps (a digest of the maps). Unpacks it first when missing,
 * into a temp directory beside it that is renamed into place, so concurrent
 * callers end with one complete tree. *hit (optional) tells whether it was
 * there already. Temp trees older than an hour (left by unpacks that died)
 * are removed on the way. The tree is shared by every reader: callers treat
 * it as read-only (an overlay lower directory, or the source of a copy).
 * The cache directory must be the caller's own: one that another user owns
 * or may write to is refused (HOIST_E_UNSAFE), it could hold a planted tree.
 * With hold, *hold is an fd (or -1) to close when done with the tree: until
 * then hoist_unpack_cache_prune leaves it alone. */
HOIST_EXPORT int hoist_unpack_cached(hoist_store *s, const hoist_manifest *m, const char *cache_dir,
                                     const hoist_unpack_opts *opts, char **path, bool *hit,
                                     int *hold, hoist_unpack_report *report,
                                     hoist_err **err) HOIST_WUR;

#endif
