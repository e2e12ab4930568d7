/*
 * hoist-where: a small program on libhoist's public API, built against an
 * installed libhoist:
 *
 *   cc hoist-where.c $(pkg-config --cflags hoist) \
 *      $(pkg-config --static --libs hoist) -o hoist-where
 *
 * `hoist-where LOCATION...` parses each argument as hoist parses an image
 * location. A registry reference is printed normalized, with its parts; an
 * OCI layout (`oci:DIR[:TAG]`) is opened and its tagged images are listed,
 * one line each: tag, digest, size, media type (only TAG's when given).
 * Exit status: 0, or 1 after the first location that fails, with libhoist's
 * message on stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <hoist/core.h>
#include <hoist/oci.h>
#include <hoist/ref.h>
#include <hoist/store.h>

/* Prints a registry reference's parts. */
static void print_ref(const hoist_ref *r) {
  _cleanup_free_ char *s = hoist_ref_string(r);
  _cleanup_free_ char *repo = hoist_ref_repository(r);
  printf("reference %s\n", s);
  printf("  domain %s\n", r->domain);
  printf("  repository %s\n", repo);
  printf("  tag %s\n", r->tag ? r->tag : "-");
  printf("  digest %s\n", r->digest ? r->digest : "-");
}

/* Lists the tagged entries of the layout at dir (only tag's when not NULL):
 * "TAG DIGEST SIZE MEDIATYPE". Fails when the layout cannot be read or tag
 * is not in it. */
static int list_layout(const char *dir, const char *tag, hoist_err **err) {
  hoist_store *s = NULL;
  hoist_index *ix = NULL;
  int found = 0;

  int r = hoist_store_open(dir, false, &s, err);
  if (r < 0)
    return r;
  r = hoist_store_index(s, &ix, err);
  if (r < 0) {
    hoist_store_close(s);
    return r;
  }
  printf("layout %s\n", dir);
  for (size_t i = 0; i < ix->n_manifests; i++) {
    const hoist_descriptor *d = &ix->manifests[i];
    const char *name = hoist_descriptor_annotation(d, HOIST_ANNOTATION_REF_NAME);
    if (!name || (tag && strcmp(name, tag) != 0))
      continue;
    printf("  %s %s %" PRId64 " %s\n", name, d->digest, d->size, d->media_type);
    found++;
  }
  hoist_index_free(ix);
  hoist_store_close(s);
  if (tag && !found)
    return hoist_err_set(err, ENOENT, "layout %s: no image tagged %s", dir, tag);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s LOCATION...   (libhoist %s)\n", argv[0], hoist_version());
    return 2;
  }
  for (int i = 1; i < argc; i++) {
    _cleanup_err_ hoist_err *err = NULL;
    hoist_loc *loc = NULL;
    int r = hoist_loc_parse(argv[i], &loc, &err);
    if (r == 0 && loc->kind == HOIST_LOC_REGISTRY)
      print_ref(loc->ref);
    else if (r == 0 && loc->kind == HOIST_LOC_LAYOUT)
      r = list_layout(loc->dir, loc->tag, &err);
    else if (r == 0)
      r = hoist_err_set(&err, EINVAL, "%s: an archive; give a registry reference or oci:DIR",
                        argv[i]);
    hoist_loc_free(loc);
    if (r < 0) {
      _cleanup_free_ char *msg = hoist_err_text(err);
      fprintf(stderr, "hoist-where: %s\n", msg);
      return 1;
    }
  }
  return 0;
}
