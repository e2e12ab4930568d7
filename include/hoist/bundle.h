/*
 * bundle: runtime bundle tarballs (specs/runtime-bundle.md): verify, stage,
 * fetch, and the list of files a staged bundle contributes to an image.
 *
 * A runtime bundle is a gzip-compressed tar with one top-level directory
 * holding an install-root payload (usr/..., etc/...) and manifest.json.
 * hoist_bundle_verify and hoist_bundle_stage read the tarball once, as a
 * stream: member names are checked as they are read, files are hashed while
 * they are (for stage) written through openat2(RESOLVE_BENEATH) into a
 * private temporary directory, and the manifest may come before or after the
 * payload. Verify writes nothing; it keeps only metadata (types, sizes,
 * digests, link targets) in memory. The checks of the contract then run in
 * its order and the first failure is returned. Limits on the total size and
 * on the number of entries, and a member larger than its manifest size (when
 * the manifest came first), stop the pass early; such an early stop reports
 * the first failure known at that point.
 *
 * A staged bundle becomes one new layer on a base image (hoist_bundle_apply,
 * through image.h), and hoist_bundle_publish runs the whole multi-arch flow:
 * stage every architecture's tarball, apply each on the base's matching
 * platform, push TARGET-<arch> images, then join them in one index at TARGET.
 *
 * The module owns: the manifest parser (fuzzed), the in-memory bundle model,
 * the stage directory layout <into>/<arch>/<bundle_name>, the download
 * cache layout <cache>/<arch>-<sha256(url)>-<basename>, and the naming of
 * per-architecture images (TAG-<arch>).
 */
#ifndef HOIST_BUNDLE_H
#define HOIST_BUNDLE_H

#include <sys/types.h>

#include "hoist/core.h"
#include "hoist/image.h"
#include "hoist/limits.h"
#include "hoist/ref.h"
#include "hoist/transport.h"

#define HOIST_BUNDLE_DEFAULT_STAGE_DIR "deploy/docker/.build/runtime-bundle"
#define HOIST_BUNDLE_DEFAULT_CACHE_DIR "deploy/docker/.build/runtime-bundles"
#define HOIST_BUNDLE_DEFAULT_MAX_SIZE (4ULL << 30) /* bytes of member data */
#define HOIST_BUNDLE_DEFAULT_MAX_ENTRIES 100000ULL

/* ------------------------------------------------------------ architecture */

/* Resolves the target architecture, Docker names only: arch ("amd64" or
 * "arm64") when given, else platform ("linux/amd64" or "linux/arm64"; a
 * comma-separated list is refused: "multi-platform builds are not
 * supported"), else the host (x86_64 -> amd64, aarch64|arm64 -> arm64).
 * *out points to a static string. */
HOIST_EXPORT int hoist_bundle_arch_resolve(const char *arch, const char *platform, const char **out,
                                           hoist_err **err) HOIST_WUR;

/* Debian multiarch library directory of a bundle architecture
 * ("x86_64-linux-gnu", "aarch64-linux-gnu"); NULL for anything else. */
HOIST_EXPORT const char *hoist_bundle_libdir(const char *arch);

/* ---------------------------------------------------------------- manifest */

/* One files[] entry as written: fields that are missing or of the wrong JSON
 * type are NULL / not valid; hoist_bundle_manifest_check_entry judges them. */
typedef struct hoist_bundle_file {
  char *path;       /* NULL unless a string */
  char *entry_type; /* NULL unless a string */
  char *sha256;     /* NULL unless a string */
  char *target;     /* NULL unless a string */
  bool has_target;  /* the "target" key is present (any type) */
  bool size_valid;  /* "size" is a JSON integer >= 0 (not a bool, not a float) */
  bool has_size;    /* the "size" key is present (any type) */
  uint64_t size;
} hoist_bundle_file;

typedef struct hoist_bundle_manifest {
  int64_t schema_version;
  char *bundle_name;
  char *bundle_version;
  char *architecture; /* trimmed of surrounding white space */
  char *created_at;
  char *toolkit_version, *toolkit_commit; /* components.nvidia_container_toolkit */
  char *libnvc_version, *libnvc_commit;   /* components.libnvidia_container */
  hoist_bundle_file *files;
  size_t n_files;
} hoist_bundle_manifest;

/* Parses manifest.json (untrusted) and applies checks 3 and 4 of the
 * contract: JSON ("malformed manifest.json"), the required fields ("missing
 * required manifest field: <field path>"), created_at an RFC 3339 timestamp
 * and bundle_name a safe single path component. files[] entries are kept as
 * written for hoist_bundle_manifest_check_entry. Caller frees *out. */
HOIST_EXPORT int hoist_bundle_manifest_parse(const char *json, size_t len,
                                             hoist_bundle_manifest **out,
                                             hoist_err **err) HOIST_WUR;
HOIST_EXPORT void hoist_bundle_manifest_free(hoist_bundle_manifest *m);

/* Check 5: the manifest's architecture is amd64 or arm64 and equals arch
 * ("bundle architecture mismatch: expected amd64, got x86_64"). */
HOIST_EXPORT int hoist_bundle_manifest_check_arch(const hoist_bundle_manifest *m, const char *arch,
                                                  hoist_err **err) HOIST_WUR;

/* The part of check 6 that needs no payload, for files[i]: a non-empty
 * path, canonical, relative and inside the bundle ("invalid manifest-listed
 * payload path: <p>"); entry_type file or symlink; for a file, sha256 of 64
 * lowercase hex and size a non-negative integer. */
HOIST_EXPORT int hoist_bundle_manifest_check_entry(const hoist_bundle_manifest *m, size_t i,
                                                   hoist_err **err) HOIST_WUR;

/* True when p is a safe single path component (bundle_name): 1-128 of
 * [A-Za-z0-9._+-], starting with a letter or digit. */
HOIST_EXPORT bool hoist_bundle_name_valid(const char *p);

/* True when s is an RFC 3339 date-time ("2026-03-18T12:34:56Z",
 * "2026-03-18T12:34:56.5+01:00"), with calendar-valid fields. */
HOIST_EXPORT bool hoist_bundle_rfc3339_valid(const char *s);

/* ---------------------------------------------------------- verify, stage */

typedef struct hoist_bundle_opts {
  const char *arch;     /* "amd64" or "arm64" (hoist_bundle_arch_resolve) */
  uint64_t max_size;    /* total bytes of member data; 0: the default */
  uint64_t max_entries; /* tar members; 0: the default */
  /* Called now and then with compressed bytes read so far and the tarball's
   * size; optional. */
  void (*progress)(uint64_t done, uint64_t total, void *userdata);
  void *progress_userdata;
} hoist_bundle_opts;

/* What a valid bundle holds. */
typedef struct hoist_bundle_info {
  char *bundle_name;
  char *bundle_version;
  char *architecture;
  char *created_at;
  size_t n_files;         /* manifest files[] entries */
  uint64_t payload_bytes; /* bytes of regular files in the tar */
} hoist_bundle_info;

HOIST_EXPORT void hoist_bundle_info_free(hoist_bundle_info *info);

/* Runs every check of the contract on tarball, in its order, reading it
 * once and writing nothing. The error's innermost message is the contract's
 * (e.g. "checksum mismatch: usr/bin/nvidia-ctk"), wrapped in "runtime bundle
 * validation failed". info (optional) receives a summary on success. */
HOIST_EXPORT int hoist_bundle_verify(const char *tarball, const hoist_bundle_opts *opts,
                                     hoist_bundle_info **info, hoist_err **err) HOIST_WUR;

/* Verifies and stages tarball under into (default
 * HOIST_BUNDLE_DEFAULT_STAGE_DIR, created when missing): removes
 * <into>/<arch> first, writes the payload and manifest.json into a temporary
 * directory <into>/.<arch>.tmp-XXXXXX in the same pass, and renames it to
 * <into>/<arch> (the bundle at <into>/<arch>/<bundle_name>) only when every
 * check passed; on failure nothing of the stage remains. *staged_dir
 * (optional) receives "<into>/<arch>/<bundle_name>". */
HOIST_EXPORT int hoist_bundle_stage(const char *tarball, const char *into,
                                    const hoist_bundle_opts *opts, char **staged_dir,
                                    hoist_bundle_info **info, hoist_err **err) HOIST_WUR;

/* ----------------------------------------------------- staged bundle -> image */

/* One file a staged bundle contributes to an image. */
typedef struct hoist_bundle_mapping {
  char *src;    /* path relative to the staged bundle directory */
  char *dst;    /* absolute path in the image */
  mode_t mode;  /* type and permission bits (S_IFREG|0755, S_IFDIR, S_IFLNK) */
  char *target; /* link target for a symlink, else NULL */
  uint64_t size;
} hoist_bundle_mapping;

/* Lists what the contract puts into the image from the staged bundle at
 * staged_dir (<into>/<arch>/<bundle_name>), sorted by dst: the five
 * usr/bin/nvidia-* binaries into /usr/bin/, etc/nvidia-container-runtime/
 * (the directory and everything below it) into /etc/nvidia-container-runtime/,
 * and usr/lib/<libdir>/libnvidia-container*.so* into image_libdir (NULL:
 * "/usr/lib/<libdir>"). arch NULL: the staged manifest.json's architecture.
 * Symlinks stay symlinks. Directories are listed and so is everything below
 * them, so a consumer that copies a directory recursively skips the entries
 * below a listed directory. Caller frees with hoist_bundle_mappings_free. */
HOIST_EXPORT int hoist_bundle_mappings(const char *staged_dir, const char *arch,
                                       const char *image_libdir, hoist_bundle_mapping **out,
                                       size_t *n, hoist_err **err) HOIST_WUR;
HOIST_EXPORT void hoist_bundle_mappings_free(hoist_bundle_mapping *m, size_t n);

/* Checks that base (an image or an index) has a linux/<arch> image whose
 * config declares that platform: "base image has no linux/arm64 image (it
 * has: linux/amd64)", "base image platform linux/amd64 does not match the
 * bundle architecture arm64". arch is a bundle architecture (amd64, arm64). */
HOIST_EXPORT int hoist_bundle_check_base(hoist_transport_source *base, const char *arch,
                                         hoist_err **err) HOIST_WUR;

typedef struct hoist_bundle_apply_opts {
  const char *arch;         /* expected bundle architecture; NULL: the staged manifest's */
  const char *image_libdir; /* where the libraries go; NULL: /usr/lib/<libdir> */
  hoist_layer_options layer;
  const char *created_by; /* history entry; NULL: "hoist bundle apply NAME VERSION" */
} hoist_bundle_apply_opts;

/* Adds one layer to base holding what hoist_bundle_mappings lists for the
 * staged bundle at staged_dir, owned by root (the caller's uid and gid map to
 * 0), and stores the image in target (image.h; the caller commits target).
 * The staged manifest.json names the architecture (it must equal opts->arch
 * when that is given: "bundle architecture mismatch: expected X, got Y");
 * base must pass hoist_bundle_check_base for it, and from an index base the
 * linux/<arch> image is taken. */
HOIST_EXPORT int hoist_bundle_apply(hoist_transport_source *base, hoist_transport_target *target,
                                    const char *staged_dir, const hoist_bundle_apply_opts *opts,
                                    hoist_image_append_result *out, hoist_err **err) HOIST_WUR;

/* The location of the per-architecture image of target: its tag (which
 * target must have; a digest is refused) with "-<arch>" appended. */
HOIST_EXPORT int hoist_bundle_arch_target(const hoist_loc *target, const char *arch,
                                          hoist_loc **out, hoist_err **err) HOIST_WUR;

#define HOIST_BUNDLE_PUBLISH_MAX 2 /* one bundle per architecture */

typedef struct hoist_bundle_publish_item {
  const char *arch;    /* amd64 or arm64 */
  const char *tarball; /* its runtime bundle */
} hoist_bundle_publish_item;

typedef struct hoist_bundle_publish_opts {
  const hoist_bundle_publish_item *bundles;
  size_t n_bundles;               /* 1..HOIST_BUNDLE_PUBLISH_MAX, distinct architectures */
  const hoist_loc *base;          /* an image or an index with every architecture */
  const hoist_loc *target;        /* with a tag: TAG-<arch> per architecture, TAG the index */
  const char *const *tags;        /* more tags of the index (NULL-terminated) or NULL */
  bool oci_index;                 /* an OCI index instead of a Docker manifest list */
  const char *image_libdir;       /* as in hoist_bundle_apply_opts */
  const char *stage_parent;       /* where the temporary stage goes; NULL: /var/tmp */
  hoist_layer_options layer;      /* of the new layers */
  uint64_t max_size, max_entries; /* hoist_bundle_opts limits; 0: the defaults */
} hoist_bundle_publish_opts;

typedef struct hoist_bundle_publish_result {
  size_t n;
  struct {
    const char *arch; /* static */
    char *target;     /* "REPO:TAG-<arch>" or "oci:DIR:TAG-<arch>"; freed by _clear */
    char digest[HOIST_DIGEST_STR_LEN];
    /* the bundle applied: its manifest.json's digest, bundle_name and
     * bundle_version (freed by _clear), for the image's provenance */
    char bundle_manifest[HOIST_DIGEST_STR_LEN];
    char *bundle_name, *bundle_version;
  } images[HOIST_BUNDLE_PUBLISH_MAX];
  char index_digest[HOIST_DIGEST_STR_LEN];
  const char *index_media_type; /* static */
} hoist_bundle_publish_result;

/* The whole multi-arch flow. First, with nothing written anywhere but a
 * private temporary stage: every tarball is verified and staged, and base is
 * checked to have every architecture (hoist_bundle_check_base). Only then
 * each bundle is applied to the base's image of its architecture and stored
 * at TARGET-<arch>, and the index of those images (hoist_image_index_create)
 * at TARGET and the extra tags, all through locations opened with t. The
 * temporary stage is removed in every case. */
HOIST_EXPORT int hoist_bundle_publish(const hoist_transport_opts *t,
                                      const hoist_bundle_publish_opts *opts,
                                      hoist_bundle_publish_result *out, hoist_err **err) HOIST_WUR;
HOIST_EXPORT void hoist_bundle_publish_result_clear(hoist_bundle_publish_result *res);

/* -------------------------------------------------------------------- fetch */

typedef struct hoist_bundle_fetch_opts {
  const char *arch;      /* "amd64" or "arm64" */
  const char *sha256;    /* expected content digest, 64 hex (or sha256:...); optional */
  const char *cache_dir; /* NULL: HOIST_BUNDLE_DEFAULT_CACHE_DIR */
  void (*progress)(uint64_t done, uint64_t total, void *userdata);
  void *progress_userdata;
} hoist_bundle_fetch_opts;

/* The cache path of url: <cache_dir>/<arch>-<sha256(url)>-<basename>.
 * Caller frees. */
HOIST_EXPORT int hoist_bundle_cache_path(const char *url, const char *arch, const char *cache_dir,
                                         char **out, hoist_err **err) HOIST_WUR;

/* Downloads url (http, https, file) once into its cache path and returns
 * that path in *path (caller frees). A cached file is reused (*cached true)
 * when it matches the expected sha256 or none is given. The download goes to a
 * temporary file in the cache directory, is hashed as it arrives, and is
 * renamed into place only when it matches; a mismatching download is
 * removed. */
HOIST_EXPORT int hoist_bundle_fetch(const char *url, const hoist_bundle_fetch_opts *opts,
                                    char **path, bool *cached, hoist_err **err) HOIST_WUR;

#endif
