/* Shared by the store's files; not part of the public API. */
#ifndef HOIST_STORE_PRIVATE_H
#define HOIST_STORE_PRIVATE_H

#include "hoist/store.h"

/* Temp blobs are named STORE_TMP_PREFIX<pid>-<n> in blobs/sha256: never a
 * valid digest hex, so no reader mistakes one for a blob. */
#define STORE_TMP_PREFIX ".tmp-"

struct hoist_store {
  char *dir;
  int dirfd;
  int blobsfd; /* blobs/sha256, or -1 while it does not exist */
};

/* Takes the layout's exclusive lock (flock on its lock file); *lockfd holds
 * it until closed. */
int store_lock(hoist_store *s, int *lockfd, hoist_err **err) HOIST_WUR;
/* blobs/sha256, created when missing. Owned by s. */
int store_blobs_dir(hoist_store *s, hoist_err **err) HOIST_WUR;
int store_read_index(hoist_store *s, hoist_index **out, hoist_err **err) HOIST_WUR;
/* Writes ix as index.json atomically; the caller holds the lock. */
int store_write_index(hoist_store *s, hoist_index *ix, hoist_err **err) HOIST_WUR;

#endif
