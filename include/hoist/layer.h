/*
 * layer: writing image layers. A directory tree, a list of (source path ->
 * path in the image) mappings, or an overlayfs upper directory becomes a
 * layer blob in one streaming pass:
 *
 *   walk + tar (PAX, libarchive) -> SHA-256 (diffID) -> [1 MiB buffers]
 *     -> compressor (igzip / zlib / zstd / none) -> sink (a hoist_writer)
 *
 * The tar and its hash run on the calling thread, compression and the sink on
 * a second thread; a bounded queue of 1 MiB buffers sits between them. gzip
 * compresses blocks of HOIST_LAYER_GZIP_BLOCK bytes on worker threads (zstd
 * has its own workers), and the second thread writes them out in order. The
 * data is read once and nothing is staged on disk. The blob digest is the
 * one the sink reports at commit (every hoist_writer hashes what it is
 * given), so compressed bytes are hashed exactly once.
 *
 * Output is deterministic: entries sorted by path, numeric owners (optionally
 * mapped from a user namespace's ids), empty uname/gname, mtimes in whole
 * seconds and clamped to SOURCE_DATE_EPOCH when one is given, xattrs sorted.
 * Hardlinks stay hardlinks, symlinks are stored as they are, the holes of
 * sparse files are written as zeros (as GNU sparse entries only on request),
 * names are UTF-8 in the pax header, security.capability and user.* xattrs
 * and POSIX ACLs (as SCHILY.xattr.system.posix_acl_*, ids mapped) are kept
 * while security.selinux and other host-only xattrs are dropped.
 *
 * The module also owns the compressors (hoist_layer_compress_writer) and a
 * file sink (hoist_layer_file_writer). Decompression belongs to unpack.h.
 */
#ifndef HOIST_LAYER_H
#define HOIST_LAYER_H

#include <sys/types.h>

#include "hoist/core.h"
#include "hoist/digest.h"
#include "hoist/oci.h"
#include "hoist/stream.h"

/* Size of the buffers between the pipeline's stages. */
#define HOIST_LAYER_BUF_SIZE (1u << 20)

/* gzip output is made of blocks of this many input bytes, cut by offset and
 * compressed in parallel (see hoist_layer_compress_writer). It shapes the
 * bytes: changing it changes the digest of every gzip layer. */
#define HOIST_LAYER_GZIP_BLOCK (1u << 20)

/* The most compression threads a writer starts. */
#define HOIST_LAYER_MAX_THREADS 256

typedef enum {
  HOIST_LAYER_TREE = 0, /* every entry below a directory */
  HOIST_LAYER_MAP,      /* (source -> destination) mappings */
  HOIST_LAYER_OVERLAY,  /* an overlayfs upper dir: whiteouts and opaque dirs converted */
} hoist_layer_source_kind;

/* Copies the host file or directory src (recursively) to dest in the image.
 * dest is normalised ("/opt//app/" -> "opt/app"); ".." is refused; "/" with a
 * directory src puts its content at the image root. */
typedef struct hoist_layer_map {
  const char *src;
  const char *dest;
} hoist_layer_map;

/* Host ids [outside, outside+count) become [inside, inside+count) in the
 * layer; ids no range covers are kept as they are. */
typedef struct hoist_idmap {
  uint32_t inside;
  uint32_t outside;
  uint32_t count;
} hoist_idmap;

typedef struct hoist_layer_source {
  hoist_layer_source_kind kind;
  const char *dir;             /* TREE and OVERLAY */
  const hoist_layer_map *maps; /* MAP */
  size_t n_maps;
} hoist_layer_source;

typedef struct hoist_layer_options {
  hoist_compression compression;
  int level;                 /* -1: the compressor's default (igzip 1, zstd 3) */
  int threads;               /* compression threads; 0: one per online CPU */
  int64_t source_date_epoch; /* -1: none; else mtimes above it become it */
  const hoist_idmap *uid_map;
  size_t n_uid_map;
  const hoist_idmap *gid_map;
  size_t n_gid_map;
  /* Sparse files as GNU PAX sparse 1.0 entries (holes not stored). Not
   * portable: the image spec says layers SHOULD NOT hold sparse entries, and
   * readers that do not know the GNU map (Go's archive/tar in podman and
   * buildah) see other bytes than the diffID covers. false (the default):
   * holes are written as zeros, read from no disk. */
  bool sparse;
} hoist_layer_options;

/* gzip, igzip level 1, no SOURCE_DATE_EPOCH, no id maps, holes as data. */
#define HOIST_LAYER_OPTIONS_INIT                                                                   \
  { HOIST_COMPRESS_GZIP, -1, 0, -1, NULL, 0, NULL, 0, false }

typedef struct hoist_layer_result {
  char diff_id[HOIST_DIGEST_STR_LEN]; /* sha256 of the uncompressed tar */
  char digest[HOIST_DIGEST_STR_LEN];  /* sha256 of the blob, as the sink computed it */
  uint64_t size;                      /* blob size */
  uint64_t tar_size;
  uint64_t n_entries;
  const char *media_type; /* static string: tar, tar+gzip or tar+zstd */
} hoist_layer_result;

/* Writes the layer of src into sink and commits sink. On failure sink is
 * left uncommitted (the caller frees it, which discards what was written).
 * sink is never freed here. */
HOIST_EXPORT int hoist_layer_write(const hoist_layer_source *src, const hoist_layer_options *opts,
                                   hoist_writer *sink, hoist_layer_result *out,
                                   hoist_err **err) HOIST_WUR;

/* A SOURCE_DATE_EPOCH value (decimal seconds) into *out; NULL or "" is -1
 * (none). Anything else is an error. */
HOIST_EXPORT int hoist_layer_epoch_parse(const char *text, int64_t *out, hoist_err **err) HOIST_WUR;

/* Parses "gzip", "zstd" or "none" (also "uncompressed"). */
HOIST_EXPORT int hoist_layer_compression_parse(const char *name, hoist_compression *out,
                                               hoist_err **err) HOIST_WUR;
/* OCI layer media type for a compression. */
HOIST_EXPORT const char *hoist_layer_media_type(hoist_compression c);

/* A writer that compresses what it is given into next: gzip levels 0-3 with
 * ISA-L igzip, 4-9 with zlib; zstd levels 1-19; none passes bytes through.
 * threads is how many threads compress (0: one per online CPU, at most
 * HOIST_LAYER_MAX_THREADS; 1: gzip compresses in write() itself). It owns
 * next from the call on (also on failure). Commit ends the compressed stream,
 * commits next and reports next's digest and size.
 *
 * gzip is one gzip member made pigz's way: the input is cut by offset into
 * blocks of HOIST_LAYER_GZIP_BLOCK bytes, each a raw deflate stream primed
 * with the 32 KiB before it and ended by a sync flush (the last by BFINAL),
 * compressed in parallel and joined in order; the trailer's CRC-32 is
 * combined from the blocks'. Memory stays bounded: about 2 MiB per block in
 * flight, at most 2 * threads + 1 blocks (threads + 5 above 4 threads).
 *
 * Output is deterministic for a given input, level and compression, and
 * never depends on the number of threads or on how the input is cut into
 * writes (zstd's multithreaded output does not depend on its workers
 * either). next sees its writes from the thread that calls write() and
 * commit(). */
HOIST_EXPORT int hoist_layer_compress_writer(hoist_compression c, int level, int threads,
                                             hoist_writer *next, hoist_writer **out,
                                             hoist_err **err) HOIST_WUR;

/* A sink writing to dirfd/path atomically: content goes to a temp file in the
 * same directory, hashed as it streams, and is renamed over path at commit;
 * free without commit removes the temp file. "-" writes to stdout. */
HOIST_EXPORT int hoist_layer_file_writer(int dirfd, const char *path, mode_t mode,
                                         hoist_writer **out, hoist_err **err) HOIST_WUR;

#endif
