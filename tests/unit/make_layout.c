/* make_layout DIR TAG [CONTENT]: writes a one-layer image into the layout at
 * DIR (created when missing) with the store API and tags it. Built for the
 * integration tests only. */
#include <errno.h>

#include "image_util.h"

int main(int argc, char **argv) {
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: make_layout DIR TAG [CONTENT]\n");
    return 2;
  }
  hoist_err *err = NULL;
  _cleanup_store_ hoist_store *s = NULL;
  hoist_descriptor d = {0};
  if (hoist_store_open(argv[1], true, &s, &err) < 0 ||
      test_make_image(s, argv[2], argc > 3 ? argv[3] : "hello from hoist\n", &d, &err) < 0) {
    char *t = hoist_err_text(err);
    fprintf(stderr, "make_layout: %s\n", t);
    free(t);
    hoist_err_free(err);
    return 1;
  }
  printf("%s\n", d.digest);
  hoist_descriptor_clear(&d);
  return 0;
}
