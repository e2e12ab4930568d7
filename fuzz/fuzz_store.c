/* libFuzzer target: a layout whose index.json and blobs are hostile. The
 * input is index.json, then blobs, separated by "\n--\n". Opening, listing,
 * resolving and collecting it must never crash nor touch a file outside
 * blobs/sha256. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "hoist/fs.h"
#include "hoist/store.h"

static char *root;

static void put(hoist_store *s, const char *p, size_t n) {
  hoist_err *err = NULL;
  hoist_best_effort(hoist_store_put_blob(s, p, n, NULL, NULL, &err));
  hoist_err_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!root) {
    root = strdup("/tmp/hoist-fuzz-store-XXXXXX");
    if (!root || !mkdtemp(root))
      abort();
  }
  _cleanup_free_ char *dir = hoist_asprintf("%s/layout", root);
  _cleanup_free_ char *sentinel = hoist_asprintf("%s/sentinel", root);
  hoist_best_effort(hoist_fs_rm_rf_at(AT_FDCWD, dir, NULL));
  FILE *f = fopen(sentinel, "w");
  if (f)
    fclose(f);
  hoist_err *err = NULL;
  hoist_store *s = NULL;
  if (hoist_store_open(dir, true, &s, &err) < 0)
    abort();
  const char *p = (const char *)data, *end = p + size;
  const char *sep = memmem(p, size, "\n--\n", 4);
  size_t index_len = sep ? (size_t)(sep - p) : size;
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || hoist_fs_write_atomic(dfd, "index.json", p, index_len, 0644, NULL) < 0)
    abort();
  close(dfd);
  while (sep) {
    p = sep + 4;
    sep = memmem(p, (size_t)(end - p), "\n--\n", 4);
    put(s, p, sep ? (size_t)(sep - p) : (size_t)(end - p));
  }
  hoist_index *ix = NULL;
  hoist_descriptor d = {0};
  uint64_t removed = 0, freed = 0;
  if (hoist_store_index(s, &ix, &err) == 0)
    hoist_index_free(ix);
  hoist_err_free(err);
  err = NULL;
  if (hoist_store_resolve(s, NULL, &d, &err) == 0)
    hoist_descriptor_clear(&d);
  hoist_err_free(err);
  err = NULL;
  hoist_best_effort(hoist_store_gc(s, 0, &removed, &freed, &err));
  hoist_err_free(err);
  hoist_store_close(s);
  struct stat st;
  if (stat(sentinel, &st) < 0)
    __builtin_trap();
  _cleanup_free_ char *layout_file = hoist_asprintf("%s/oci-layout", dir);
  if (stat(layout_file, &st) < 0)
    __builtin_trap();
  return 0;
}
