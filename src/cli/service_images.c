/* hoist service images: registry housekeeping of the caller's own repositories,
 * through the deployer service. */
#include <string.h>

#include "client.h"

#define VERB "service images"

static const char usage[] =
    "Usage: hoist service images COMMAND [ARG] [OPTIONS]\n\n"
    "Look after your images in the service's registry (your namespace only).\n\n"
    "Commands:\n"
    "  list-catalogs         your repositories\n"
    "  list-images CATALOG   the tags of repository CATALOG\n"
    "  get-image IMAGE       the manifest of IMAGE (repo:tag or repo@digest)\n"
    "  delete-image IMAGE    resolve IMAGE's digest and delete its manifest\n\n"
    "Options:\n"
    "  -h, --help  show this help\n\n" CLIENT_HELP;

static void print_list(json_t *a) {
  size_t i;
  json_t *v;
  json_array_foreach(a, i, v) printf("%s\n", json_string_value(v));
}

static int images(cli_client *cl, char **operands, int n) {
  const char *cmd = n > 0 ? operands[0] : "";
  bool catalogs = strcmp(cmd, "list-catalogs") == 0;
  if (!((catalogs && n == 1) ||
        (!catalogs && n == 2 &&
         (strcmp(cmd, "list-images") == 0 || strcmp(cmd, "get-image") == 0 ||
          strcmp(cmd, "delete-image") == 0))))
    return cli_usage(VERB, "expected list-catalogs, or list-images, get-image or "
                           "delete-image with one argument");
  _cleanup_free_ char *path = NULL;
  const char *method = "GET";
  if (catalogs) {
    path = hoist_strdup("/system/api/v1/registry/catalog");
  } else {
    _cleanup_free_ char *q = cli_client_escape(operands[1]);
    const char *what = strcmp(cmd, "list-images") == 0 ? "tags" : "manifest";
    path = hoist_asprintf("/system/api/v1/registry/%s?image=%s", what, q);
    if (strcmp(cmd, "delete-image") == 0)
      method = "DELETE";
  }
  hoist_err *err = NULL;
  long status = 0;
  json_t *out = NULL;
  if (cli_client_ready(cl, &err) < 0 ||
      cli_client_call(cl, method, path, NULL, &status, &out, &err) < 0)
    return cli_fail(VERB, err);
  const char *st = json_string_value(json_object_get(out, "status"));
  if (cl->json || !st || strcmp(st, "ok") != 0)
    return cli_client_report(cl, VERB, status, out);
  if (catalogs)
    print_list(json_object_get(out, "repositories"));
  else if (strcmp(cmd, "list-images") == 0)
    print_list(json_object_get(out, "tags"));
  else if (strcmp(cmd, "get-image") == 0) {
    char *t = json_dumps(json_object_get(out, "manifest"), JSON_INDENT(2));
    printf("%s\n", t ? t : "null");
    free(t);
  } else
    printf("deleted %s\n", json_string_value(json_object_get(out, "digest")));
  json_decref(out);
  return EXIT_OK;
}

static int images_run(int argc, char **argv) {
  return cli_client_run(VERB, usage, -1, NULL, images, argc, argv);
}

HOIST_SERVICE_SUBVERB(images, "images", "list, show and delete your images through the service",
                      images_run);
