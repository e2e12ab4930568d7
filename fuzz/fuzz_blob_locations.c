/* libFuzzer target: a blob-location record file (registry.h) whose bytes
 * are hostile: the user's cache file, damaged, truncated, or written by
 * something else. Opening it (which may replace it), adding, finding,
 * forgetting and pruning must never crash, and find must never give out a
 * repository that is not a valid name (it goes into a mount URL). */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "hoist/fs.h"
#include "hoist/ref.h"
#include "hoist/registry.h"

static char *root;

static void check_found(hoist_blob_locations *b, const char *registry, const char *digest) {
  hoist_err *err = NULL;
  char **found = NULL;
  size_t n = 0;
  if (hoist_blob_locations_find(b, registry, digest, "a/b", 8, &found, &n, &err) == 0) {
    for (size_t i = 0; i < n; i++) {
      _cleanup_free_ char *text = hoist_asprintf("%s/%s", registry, found[i]);
      hoist_ref *ref = NULL;
      if (hoist_ref_parse(text, &ref, NULL) < 0 || strcmp(ref->path, found[i]) != 0 ||
          strcmp(ref->domain, registry) != 0 || strcmp(found[i], "a/b") == 0)
        abort();
      hoist_ref_free(ref);
    }
    hoist_strfreev(found);
  }
  hoist_err_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!root) {
    root = strdup("/tmp/hoist-fuzz-blobloc-XXXXXX");
    if (!root || !mkdtemp(root))
      abort();
    hoist_log_set_level(HOIST_LOG_ERROR); /* a replaced record is warned about */
  }
  _cleanup_free_ char *path = hoist_asprintf("%s/blob-locations.db", root);
  static const char *const suffix[] = {"", "-wal", "-shm"};
  for (size_t i = 0; i < 3; i++) {
    _cleanup_free_ char *p = hoist_asprintf("%s%s", path, suffix[i]);
    unlink(p);
  }
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || write(fd, data, size) != (ssize_t)size)
    abort();
  close(fd);
  static const char d1[] =
      "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  hoist_err *err = NULL;
  hoist_blob_locations *b = NULL;
  if (hoist_blob_locations_open(path, 16, &b, &err) < 0) {
    hoist_err_free(err);
    return 0;
  }
  check_found(b, "127.0.0.1:5000", d1);
  hoist_best_effort(hoist_blob_locations_add(b, "127.0.0.1:5000", "a/b", d1, 0, &err));
  hoist_err_free(steal_pointer(&err));
  check_found(b, "127.0.0.1:5000", d1);
  bool has = false;
  hoist_best_effort(hoist_blob_locations_has(b, "127.0.0.1:5000", "a/b", d1, &has, &err));
  hoist_err_free(steal_pointer(&err));
  hoist_best_effort(hoist_blob_locations_forget(b, "127.0.0.1:5000", "a/b", d1, &err));
  hoist_err_free(steal_pointer(&err));
  size_t removed = 0;
  hoist_best_effort(hoist_blob_locations_prune(b, 4, 0, &removed, &err));
  hoist_err_free(steal_pointer(&err));
  hoist_blob_locations_free(b);
  return 0;
}
