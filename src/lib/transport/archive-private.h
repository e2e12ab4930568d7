/*
 * What the archive drivers of the transport (docker_archive.c,
 * oci_archive.c) share: a private staging directory holding an OCI layout,
 * a tar read as a stream of checked members, a tar written atomically, and
 * a writer that decompresses. Not part of the public API.
 *
 * Archives are untrusted input. Members are read as a stream, in the
 * order they come, and never extracted by their names: what a driver keeps
 * goes into the staging store under its digest. Every member name is made
 * clean (no absolute name, no "..", at most HOIST_ARCHIVE_NAME_MAX bytes),
 * and the counts and sizes stop at the caps of limits.h.
 */
#ifndef HOIST_TRANSPORT_ARCHIVE_PRIVATE_H
#define HOIST_TRANSPORT_ARCHIVE_PRIVATE_H

#include "hoist/limits.h"
#include "hoist/store.h"
#include "hoist/transport.h"

/* ---------------------------------------------------------------- staging */

/* A directory of our own (mode 0700) under tmp_dir, holding an OCI layout:
 * what an archive source extracted, or what an archive target collects. */
typedef struct arc_stage {
  char *dir;
  hoist_store *store;
} arc_stage;

/* Makes the directory (tmp_dir NULL: /var/tmp) and the layout in it. */
int arc_stage_open(const char *tmp_dir, arc_stage *st, hoist_err **err) HOIST_WUR;
/* Closes the store and removes the directory with everything in it. */
void arc_stage_close(arc_stage *st);

/* ---------------------------------------------------------------- reading */

typedef enum { ARC_FILE = 1, ARC_DIR, ARC_SYMLINK } arc_type;

typedef struct arc_member {
  char *name; /* clean: relative, no "." or ".." components, no trailing '/' */
  arc_type type;
  int64_t size; /* ARC_FILE */
  char *target; /* ARC_SYMLINK: the clean name it points at, resolved from its directory */
} arc_member;

typedef struct arc_reader {
  struct archive *a;
  int fd;
  char *path;     /* for messages */
  size_t entries; /* members so far (HOIST_ARCHIVE_ENTRIES_MAX) */
  uint64_t bytes; /* member bytes read so far (HOIST_ARCHIVE_DATA_MAX) */
} arc_reader;

/* Opens the tar at path (plain, or gzip or zstd compressed) for one pass. */
int arc_reader_open(const char *path, arc_reader *r, hoist_err **err) HOIST_WUR;
/* The next member in *m (cleared first): 1, or 0 at the end. Hardlinks,
 * devices, fifos, sparse members, absolute names and names with ".." are
 * refused (HOIST_E_UNSAFE or HOIST_E_FORMAT), as are more than
 * HOIST_ARCHIVE_ENTRIES_MAX members. */
int arc_reader_next(arc_reader *r, arc_member *m, hoist_err **err) HOIST_WUR;
/* Streams the current member's data into w (not committed). */
int arc_reader_copy(arc_reader *r, hoist_writer *w, hoist_err **err) HOIST_WUR;
/* The current member's data, at most max bytes (more: HOIST_E_LIMIT naming
 * what), NUL-terminated. Caller frees *data. */
int arc_reader_read_all(arc_reader *r, size_t max, const char *what, char **data, size_t *len,
                        hoist_err **err) HOIST_WUR;
void arc_reader_close(arc_reader *r);
void arc_member_clear(arc_member *m);

/* name made clean (see arc_member), or NULL with *err set (what names it in
 * the message: "member", "manifest.json's Config"). Caller frees. */
char *arc_name_clean(const char *name, const char *what, hoist_err **err) HOIST_WUR;
/* The clean name a symlink named link with target target points at,
 * resolved lexically from link's directory; an absolute target or one
 * leaving the archive's root is HOIST_E_UNSAFE. Caller frees *out. */
int arc_name_resolve(const char *link, const char *target, char **out, hoist_err **err) HOIST_WUR;

/* ---------------------------------------------------------------- writing */

/* A tar being written to a temp file beside path (".NAME.hoist-XXXXXX"),
 * renamed over path at commit, removed by abort. */
typedef struct arc_writer {
  struct archive *a;
  int fd;
  char *tmp;
  char *path;
} arc_writer;

int arc_writer_open(const char *path, arc_writer *w, hoist_err **err) HOIST_WUR;
/* A regular member (mode 0444, owner 0:0, mtime 0, as skopeo writes them)
 * with size bytes read from fd. */
int arc_writer_add_fd(arc_writer *w, const char *name, int fd, uint64_t size,
                      hoist_err **err) HOIST_WUR;
int arc_writer_add_bytes(arc_writer *w, const char *name, const void *data, size_t len,
                         hoist_err **err) HOIST_WUR;
/* A directory member (mode 0755). */
int arc_writer_add_dir(arc_writer *w, const char *name, hoist_err **err) HOIST_WUR;
/* Finishes the tar, syncs it and renames it over path. */
int arc_writer_commit(arc_writer *w, hoist_err **err) HOIST_WUR;
/* Removes the temp file unless committed; frees w's members. */
void arc_writer_close(arc_writer *w);

/* ---------------------------------------------------------- decompression */

/* A writer that passes what it is given to inner decompressed: gzip (one or
 * more members) or zstd, told by the first bytes; anything else passes as
 * it is. At most max bytes come out (more: HOIST_E_LIMIT). Commit checks
 * that the compressed stream ended cleanly, then commits inner (digest_out:
 * the decompressed content's). Takes inner: freeing the result frees it. */
hoist_writer *arc_decompress_writer(hoist_writer *inner, uint64_t max);

/* Streams the blob digest of st's store through w (not committed). */
int arc_stage_copy_blob(arc_stage *st, const char *digest, hoist_writer *w,
                        hoist_err **err) HOIST_WUR;

/* ------------------------------------------------------ a staged source */

/* A source that reads the image tagged tag in st's layout (taken: freeing
 * the source removes the staging directory). name is the archive's
 * location, for messages. */
int arc_staged_source(arc_stage *st, const char *tag, const char *name,
                      hoist_transport_source **out, hoist_err **err) HOIST_WUR;

/* The two archive drivers (transport.c's table). */
int arc_docker_source(const hoist_transport_opts *o, const hoist_loc *loc,
                      hoist_transport_source **out, hoist_err **err) HOIST_WUR;
int arc_docker_target(const hoist_transport_opts *o, const hoist_loc *loc,
                      hoist_transport_target **out, hoist_err **err) HOIST_WUR;
int arc_oci_source(const hoist_transport_opts *o, const hoist_loc *loc,
                   hoist_transport_source **out, hoist_err **err) HOIST_WUR;
int arc_oci_target(const hoist_transport_opts *o, const hoist_loc *loc,
                   hoist_transport_target **out, hoist_err **err) HOIST_WUR;

#endif
