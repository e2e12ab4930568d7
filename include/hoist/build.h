/*
 * build: extend a base image with a requirements file (`hoist build`).
 *
 * Owns the kinds (recipes as one data table: which file, where it goes, the
 * install script, its environment and mirror settings, the config changes of
 * the new image), the build pipeline and the build cache.
 *
 * Pipeline: base manifest (a local OCI layout, e.g. the image store after a
 * pull) -> cached rootfs of the base (unpack.h, keyed by config digest) ->
 * the install, as root, in the sandbox (sandbox.h: lower = cached rootfs,
 * upper = a fresh directory) -> a layer from the upper directory -> the new
 * image through hoist_image_append (image.h), so a registry target only
 * receives blobs it lacks.
 *
 * The requirement file is placed at /tmp/<file> (as the reference deployer's
 * `COPY <file> /tmp/<file>`) and stays there in the new layer. When the base
 * has an executable /bin/extend, it runs instead of the kind's script. The new
 * image keeps the base's user.
 *
 * Build cache: key = SHA-256 over (base manifest digest, platform, kind,
 * recipe version, file bytes, mirror settings of the kind); value = a layer
 * blob and its diffID, kept in an OCI layout (tag = key hex). A hit skips the
 * unpack and the sandbox. The caller names the cache's place (hoist keeps it
 * beside its image store, see README "Caches").
 */
#ifndef HOIST_BUILD_H
#define HOIST_BUILD_H

#include "hoist/core.h"
#include "hoist/image.h"
#include "hoist/limits.h"
#include "hoist/oci.h"
#include "hoist/sandbox.h"

/* Code of the error returned when the install command ran and failed. */
#define HOIST_E_BUILD_FAILED (HOIST_E_BASE + 100)

/* Per-ecosystem package source settings: mostly a mirror's URL, plus what a
 * package manager needs besides it to work from that mirror alone. */
typedef enum {
  HOIST_MIRROR_PIP = 0, /* pip index URL */
  HOIST_MIRROR_NPM,     /* npm registry */
  HOIST_MIRROR_GO,      /* GOPROXY */
  HOIST_MIRROR_MAVEN,   /* Maven repository mirror */
  HOIST_MIRROR_COMPOSER,
  HOIST_MIRROR_GEM,       /* rubygems source */
  HOIST_MIRROR_NUGET,     /* NuGet source */
  HOIST_MIRROR_GONOSUMDB, /* module path patterns Go's checksum database is not asked about */
  HOIST_MIRROR_COUNT,
} hoist_mirror;

/* The bit of setting m in hoist_build_kind.mirrors. */
#define HOIST_MIRROR_BIT(m) (1u << (m))

typedef struct hoist_mirror_info {
  const char *option;   /* CLI option without "--": "pip-index-url" */
  const char *host_env; /* variable read when the option is not given: "HOIST_PIP_INDEX_URL" */
  const char *env;      /* variable the value reaches the install as: "PIP_INDEX_URL" */
  const char *arg;      /* what the value is, for help: "URL", "PATTERNS" */
  bool is_url;          /* a URL: its loopback port is forwarded into the build's network */
} hoist_mirror_info;

HOIST_EXPORT const hoist_mirror_info *hoist_build_mirror_info(hoist_mirror m);

/* One kind: a row of the recipe table. */
typedef struct hoist_build_kind {
  const char *name; /* "python" */
  const char *file; /* requirement file name: "requirements.txt" */
  unsigned version; /* recipe version; part of the cache key */
  unsigned mirrors; /* the settings the recipe reads: HOIST_MIRROR_BIT()s */
  /* Shell script run by /bin/sh -c as root; the file is at /tmp/<file>. */
  const char *script;
  const char *const *env;    /* NAME=value during the install (NULL-terminated) */
  const char *const *config; /* NAME=value added to the new image's Env; an existing
                              * value is kept after a ':' */
} hoist_build_kind;

/* The row for name, or NULL. */
HOIST_EXPORT const hoist_build_kind *hoist_build_kind_find(const char *name);
/* The whole table; *n receives its length. */
HOIST_EXPORT const hoist_build_kind *hoist_build_kinds(size_t *n);

typedef enum {
  HOIST_BUILD_STEP = 0, /* a line of the pipeline's own ("cache hit sha256:...") */
  HOIST_BUILD_STDOUT,   /* the install's output */
  HOIST_BUILD_STDERR,
} hoist_build_stream;

/* One line of build output, without its newline. */
typedef void (*hoist_build_log_fn)(void *ctx, hoist_build_stream stream, const char *line,
                                   size_t len);

/* The artifactType of a registry build cache entry. */
#define HOIST_BUILD_CACHE_ARTIFACT "application/vnd.hoist.build-cache.v1"

typedef struct hoist_build_opts {
  const char *kind;
  const char *file; /* requirement file bytes (need not be NUL-terminated) */
  size_t file_len;
  const char *base_dir;           /* OCI layout holding the base */
  const char *base_tag;           /* its tag there; NULL: the layout's only image */
  const char *base_name;          /* base's reference for the image.base.name label; NULL: none */
  const hoist_platform *platform; /* of a multi-platform base; NULL: the host's */
  /* Where the base's blobs also live (the registry image the layout holds a
   * pull of), so a target on that registry mounts them; NULL: none. */
  const hoist_loc *base_origin;
  hoist_transport_target *target; /* where the new image goes (borrowed; the caller commits it) */
  const char *mirrors[HOIST_MIRROR_COUNT]; /* value or NULL, by hoist_mirror */
  /* The install's sandbox: network, user namespace, timeout, limits (see
   * sandbox.h; lower, upper, command, environment and binds are the build's
   * own). NULL: the defaults (a private network, a user namespace on a
   * subordinate range when root has one, the default limits). The port of
   * each loopback mirror the kind reads is added to the allowed ports. */
  const hoist_sandbox_opts *sandbox;
  bool no_cache;             /* neither look up nor reuse a cached layer (one is still stored) */
  int64_t source_date_epoch; /* -1: none */
  hoist_compression compression;
  int compress_threads; /* threads compressing the layer; 0: one per online CPU */
  /* build cache layout and rootfs cache (both required; hoist: under the
   * image store and the rootfs cache of README "Caches"); each must be the
   * caller's own, neither owned nor writable by another user (HOIST_E_UNSAFE) */
  const char *cache_dir;
  const char *rootfs_dir;
  /* A build cache in a registry, after the local one: entries are read from
   * the repository cache_from and, after a build, written to cache_to (NULL:
   * neither; their tags are ignored), through cache_registry (borrowed). An
   * entry is an OCI artifact (HOIST_BUILD_CACHE_ARTIFACT) tagged by the key's
   * hex, the layer its one blob; a hit copies the layer from there (a mount,
   * on the target's registry) and runs no install. Whoever may write
   * cache_to decides what builds reading it produce: give it only to
   * builders that trust each other. */
  hoist_registry *cache_registry;
  const hoist_ref *cache_from, *cache_to;
  hoist_build_log_fn log; /* NULL: steps go to hoist_info, install output nowhere */
  void *log_ctx;
} hoist_build_opts;

/* Defaults: gzip, the sandbox's defaults, no SOURCE_DATE_EPOCH. */
HOIST_EXPORT void hoist_build_opts_init(hoist_build_opts *o);

typedef struct hoist_build_result {
  hoist_image_append_result image;
  bool cache_hit;
  bool cache_remote; /* the hit came from the registry cache */
  bool used_extend;  /* the base's /bin/extend ran instead of the recipe */
  char cache_key[HOIST_DIGEST_STR_LEN];
  char file_digest[HOIST_DIGEST_STR_LEN];
  char base_digest[HOIST_DIGEST_STR_LEN]; /* the base's (platform) manifest */
} hoist_build_result;

/* Builds and stores the new image in o->target. When the install fails
 * (status, signal, timeout or a limit: "build killed: out of memory (limit
 * 4 GiB)") the error code is HOIST_E_BUILD_FAILED and nothing was written to
 * the target. Concurrent builds may share the caches. */
HOIST_EXPORT int hoist_build(const hoist_build_opts *o, hoist_build_result *out,
                             hoist_err **err) HOIST_WUR;

/* The build cache key of the inputs (what hoist_build looks up). */
HOIST_EXPORT void hoist_build_cache_key(const hoist_build_kind *k, const char *base_digest,
                                        const hoist_platform *platform, const char *file,
                                        size_t file_len,
                                        const char *const mirrors[HOIST_MIRROR_COUNT],
                                        char out[HOIST_DIGEST_STR_LEN]);

/* Removes the entries of the build cache dir (required) not used
 * (written or hit) for max_age seconds, then the blobs only they held;
 * dry_run only counts them (bytes: the layers' sizes). */
HOIST_EXPORT int hoist_build_cache_prune(const char *dir, int64_t max_age, bool dry_run,
                                         hoist_prune_report *report, hoist_err **err) HOIST_WUR;

#endif
