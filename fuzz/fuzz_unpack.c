/* libFuzzer target: the layer applier. The input is applied as a plain tar
 * and as a gzip stream into a fresh destination inside a private parent
 * directory; the target traps when anything appears in the parent besides
 * the destination, or outside it in /tmp. */
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "hoist/fs.h"
#include "hoist/unpack.h"

static char parent[] = "/tmp/hoist-fuzz-unpack-XXXXXX";

static void check_parent(void) {
  DIR *d = opendir(parent);
  if (!d)
    __builtin_trap();
  struct dirent *de;
  while ((de = readdir(d)))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, "dest"))
      __builtin_trap();
  closedir(d);
}

static void apply(const uint8_t *data, size_t size, hoist_compression comp) {
  int dfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || mkdirat(dfd, "dest", 0755) < 0)
    __builtin_trap();
  int rootfd = openat(dfd, "dest", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int fd = memfd_create("layer", MFD_CLOEXEC);
  if (rootfd < 0 || fd < 0 || write(fd, data, size) != (ssize_t)size)
    __builtin_trap();
  lseek(fd, 0, SEEK_SET);
  hoist_err *err = NULL;
  hoist_unpack_report rep = {0};
  hoist_best_effort(hoist_unpack_layer(rootfd, fd, comp, NULL, NULL, NULL, &rep, &err));
  hoist_err_free(err);
  hoist_unpack_report_clear(&rep);
  close(fd);
  close(rootfd);
  check_parent();
  if (access("/tmp/escape", F_OK) == 0 || access("/escape", F_OK) == 0)
    __builtin_trap();
  if (hoist_fs_rm_rf_at(dfd, "dest", NULL) < 0)
    __builtin_trap();
  close(dfd);
}

static void remove_parent(void) { hoist_best_effort(hoist_fs_rm_rf_at(AT_FDCWD, parent, NULL)); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static bool init;
  if (!init) {
    if (!mkdtemp(parent))
      __builtin_trap();
    hoist_log_set_level(HOIST_LOG_ERROR);
    atexit(remove_parent);
    init = true;
  }
  apply(data, size, HOIST_COMPRESS_NONE);
  apply(data, size, HOIST_COMPRESS_GZIP);
  return 0;
}
