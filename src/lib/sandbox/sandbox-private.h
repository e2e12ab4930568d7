/*
 * sandbox internals shared by the module's files and its unit tests: the pure
 * helpers (user lookup in an image's passwd/group text, subordinate-id ranges,
 * overlay option escaping, output line splitting) and the copy fallback
 * (tree copy, tree diff into an overlay-shaped upper dir).
 */
#ifndef HOIST_SANDBOX_PRIVATE_H
#define HOIST_SANDBOX_PRIVATE_H

#include <stdbool.h>
#include <sys/types.h>

#include "hoist/core.h"
#include "hoist/layer.h"

#define SANDBOX_MAX_GROUPS 64
#define SANDBOX_LINE_MAX 65536 /* longer lines are delivered in pieces of this size */

typedef struct {
  uid_t uid;
  gid_t gid;
  gid_t groups[SANDBOX_MAX_GROUPS]; /* supplementary groups (gid included) */
  size_t n_groups;
  char home[256]; /* HOME when the environment has none: passwd's, else /root or / */
} sandbox_user;

/* Resolves spec ("uid", "uid:gid", "name", "name:group", NULL or "" for root)
 * against an image's /etc/passwd and /etc/group texts (either may be NULL when
 * the image has none). A numeric uid missing from passwd keeps gid 0 unless
 * given. Names that are not found are an error (ENOENT). */
int sandbox_user_resolve(const char *spec, const char *passwd, const char *group, sandbox_user *out,
                         hoist_err **err);

/* Finds the first "name:start:count" or "uid:start:count" line of an
 * /etc/subuid or /etc/subgid text granted to the user. */
bool sandbox_subid_range(const char *text, const char *name, uid_t uid, unsigned long *start,
                         unsigned long *count);

/* The maps of a user namespace made by uid/gid (user name, may be NULL),
 * given the texts of /etc/subuid and /etc/subgid (may be NULL) and whether
 * newuidmap and newgidmap are installed: root maps 0-65535 to itself; others
 * map 0 to themselves, then 1.. to their subordinate ranges when both files
 * grant one and the tools are there. Returns true when the tools are needed
 * (two entries each). */
bool sandbox_id_maps(uid_t uid, gid_t gid, const char *name, const char *subuid, const char *subgid,
                     bool have_tools, hoist_idmap u[2], size_t *nu, hoist_idmap g[2], size_t *ng);

/* path with '\\', ',' and ':' escaped for an overlay mount option. Caller frees. */
char *sandbox_overlay_escape(const char *path);

typedef void (*sandbox_emit_fn)(void *ctx, const char *line, size_t len);

/* Splits a byte stream into lines: complete lines go to emit without their
 * newline, a partial line waits for more bytes (or flush), and a line longer
 * than SANDBOX_LINE_MAX is delivered in pieces. */
typedef struct {
  char *buf; /* SANDBOX_LINE_MAX bytes, allocated on first use */
  size_t len;
} sandbox_lines;

void sandbox_lines_feed(sandbox_lines *l, const char *data, size_t n, sandbox_emit_fn emit,
                        void *ctx);
void sandbox_lines_flush(sandbox_lines *l, sandbox_emit_fn emit, void *ctx);
void sandbox_lines_free(sandbox_lines *l);

/* Copies the tree src into dst (which must not exist): reflinks (FICLONE)
 * where the filesystem allows, else copy_file_range; modes, owners (when
 * permitted), times, xattrs, hardlinks, symlinks, devices and fifos kept.
 * *reflinked (optional) tells whether any file was reflinked. */
int sandbox_copy_tree(const char *src, const char *dst, bool *reflinked, hoist_err **err);

/* Writes into upper (an existing empty dir) what changed from lower to
 * changed, in overlayfs upper shape: new and modified entries copied, removed
 * entries as 0:0 character-device whiteouts, a directory that replaces a
 * non-directory marked opaque (on a filesystem that refuses both, as
 * overlayfs does, the OCI forms: empty ".wh.<name>" and ".wh..wh..opq" files). Entries are compared
 * by type, mode, owner, size, mtime, link target and content (when the size matches and mtime
 * differs). */
int sandbox_diff_tree(const char *lower, const char *changed, const char *upper, hoist_err **err);

#endif
