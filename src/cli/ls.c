/* hoist ls: list the images of an OCI image layout. */
#include <errno.h>
#include <string.h>

#include "cli.h"
#include "hoist/ref.h"
#include "hoist/store.h"

#define VERB "ls"

static const char usage[] = "Usage: hoist ls [OPTIONS] oci:DIR\n"
                            "\n"
                            "List the entries of an OCI image layout's index.json: tag, digest,\n"
                            "size and media type. An entry without a tag shows as <none>.\n"
                            "\n"
                            "Options:\n"
                            "  --json      print a JSON array\n"
                            "  -h, --help  show this help\n";

static int run(int argc, char **argv) {
  bool json = false;
  const cli_opt opts[] = {CLI_FLAG("json", &json), CLI_END};
  _cleanup_loc_ hoist_loc *loc = NULL;
  int rc = cli_parse_opts(VERB, usage, opts, argc, argv);
  if (rc < 0)
    rc = cli_layout_operand(VERB, argc, argv, &loc);
  if (rc >= 0)
    return rc;
  hoist_err *err = NULL;
  _cleanup_store_ hoist_store *s = NULL;
  _cleanup_index_ hoist_index *ix = NULL;
  if (hoist_store_open(loc->dir, false, &s, &err) < 0 || hoist_store_index(s, &ix, &err) < 0)
    return cli_fail(VERB, err);

  if (json) {
    _cleanup_json_ json_t *arr = json_array();
    for (size_t i = 0; i < ix->n_manifests; i++) {
      const hoist_descriptor *d = &ix->manifests[i];
      const char *tag = hoist_descriptor_annotation(d, HOIST_ANNOTATION_REF_NAME);
      json_t *o = json_object();
      json_object_set_new(o, "tag", tag ? json_string(tag) : json_null());
      json_object_set_new(o, "digest", json_string(d->digest));
      json_object_set_new(o, "size", json_integer(d->size));
      json_object_set_new(o, "mediaType", json_string(d->media_type));
      json_array_append_new(arr, o);
    }
    char *out = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!out)
      return cli_fail(VERB, NULL);
    printf("%s\n", out);
    free(out);
    return EXIT_OK;
  }
  int width = 3;
  for (size_t i = 0; i < ix->n_manifests; i++) {
    const char *tag = hoist_descriptor_annotation(&ix->manifests[i], HOIST_ANNOTATION_REF_NAME);
    int n = (int)strlen(tag ? tag : "<none>");
    width = n > width ? n : width;
  }
  printf("%-*s  %-71s  %10s  %s\n", width, "TAG", "DIGEST", "SIZE", "MEDIA TYPE");
  for (size_t i = 0; i < ix->n_manifests; i++) {
    const hoist_descriptor *d = &ix->manifests[i];
    const char *tag = hoist_descriptor_annotation(d, HOIST_ANNOTATION_REF_NAME);
    printf("%-*s  %-71s  %10lld  %s\n", width, tag ? tag : "<none>", d->digest, (long long)d->size,
           d->media_type);
  }
  return EXIT_OK;
}

HOIST_VERB(ls, VERB, "list the images of an OCI image layout", run);
