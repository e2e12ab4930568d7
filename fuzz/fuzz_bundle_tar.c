/* libFuzzer target: the whole runtime bundle verify pass. The input is an
 * uncompressed tar; it is gzip-compressed here (so mutations reach the tar
 * reader and the checks instead of failing the gzip CRC) and verified from a
 * memfd. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <zlib.h>

#include "hoist/bundle.h"

static int gzip_to_fd(const uint8_t *data, size_t size, int fd) {
  z_stream z = {0};
  if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return -1;
  size_t cap = deflateBound(&z, size);
  unsigned char *out = malloc(cap);
  if (!out)
    abort();
  z.next_in = (unsigned char *)data;
  z.avail_in = (uInt)size;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  int r = deflate(&z, Z_FINISH);
  size_t n = cap - z.avail_out;
  deflateEnd(&z);
  int ok = r == Z_STREAM_END && write(fd, out, n) == (ssize_t)n;
  free(out);
  return ok ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > (4u << 20))
    return 0;
  int fd = memfd_create("bundle", MFD_CLOEXEC);
  if (fd < 0)
    abort();
  if (gzip_to_fd(data, size, fd) == 0) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    hoist_bundle_opts o = {.arch = "amd64", .max_size = 8u << 20, .max_entries = 4096};
    hoist_err *err = NULL;
    hoist_bundle_info *info = NULL;
    if (hoist_bundle_verify(path, &o, &info, &err) == 0) {
      if (!info || strcmp(info->architecture, "amd64") != 0)
        __builtin_trap();
      hoist_bundle_info_free(info);
    } else if (!err) {
      __builtin_trap();
    }
    hoist_err_free(err);
  }
  close(fd);
  return 0;
}
