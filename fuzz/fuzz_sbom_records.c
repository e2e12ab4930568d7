/* libFuzzer target: the SBOM's record parsers (attest.h). The first byte
 * picks the record (the path it is read as), the rest is its content; with
 * its high bit set, the path itself comes first, up to a newline (the
 * records read from their path: a tar member's name is input too). What is
 * read goes through the SPDX writer, whose output must be JSON naming every
 * package once. */
#include <jansson.h>
#include <string.h>

#include "hoist/attest.h"

static const char *const paths[] = {
    "usr/lib/python3/dist-packages/a-1.dist-info/METADATA",
    "opt/hoist/nodejs/package-lock.json",
    "opt/hoist/nodejs/node_modules/.package-lock.json",
    "opt/hoist/nodejs/node_modules/@s/p/package.json",
    "opt/hoist/go/go.sum",
    "opt/hoist/go/mod/cache/download/github.com/!a/b/@v/v1.0.0.zip",
    "root/.m2/repository/org/x/a/1.0/a-1.0.pom",
    "opt/hoist/java/lib/a-1.0.jar",
    "opt/hoist/php/vendor/composer/installed.json",
    "opt/hoist/ruby/Gemfile.lock",
    "opt/hoist/ruby/vendor/bundle/ruby/3.2.0/specifications/rack-3.0.8.gemspec",
    "var/lib/dpkg/status",
    "var/lib/dpkg/status.d/libc6",
    "lib/apk/db/installed",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  const char *path = paths[data[0] % (sizeof paths / sizeof *paths)];
  const char *body = (const char *)data + 1;
  size_t blen = size - 1;
  char own[4097];
  if (data[0] & 0x80) {
    const char *nl = memchr(body, '\n', blen < 4096 ? blen : 4096);
    if (!nl || memchr(body, '\0', (size_t)(nl - body)))
      return 0;
    memcpy(own, body, (size_t)(nl - body));
    own[nl - body] = '\0';
    path = own;
    blen -= (size_t)(nl - body) + 1;
    body = nl + 1;
  }
  hoist_sbom *s = hoist_sbom_new();
  hoist_err *err = NULL;
  int r = hoist_sbom_add_file(s, path, body, blen, HOIST_SBOM_LAYER, &err);
  if (r < 0) {
    /* a refusal names the record */
    char *text = err ? hoist_err_text(err) : NULL;
    if (!text || !strstr(text, path))
      __builtin_trap();
    free(text);
  }
  hoist_err_free(err);
  err = NULL;
  for (size_t i = 0; i < hoist_sbom_count(s); i++) {
    const hoist_sbom_package *p = hoist_sbom_get(s, i);
    if (!p->name || !*p->name || !p->purl || strncmp(p->purl, "pkg:", 4) != 0 ||
        strcmp(p->path, path) != 0)
      __builtin_trap();
  }
  hoist_sbom_doc_info info = {
      .name = "fuzz", .namespace_id = "1", .created = "2026-01-01T00:00:00Z"};
  char *out = NULL;
  size_t len = 0;
  if (hoist_sbom_to_spdx(s, &info, &out, &len, &err) < 0)
    __builtin_trap();
  json_error_t je;
  json_t *doc = json_loadb(out, len, 0, &je);
  if (!doc || json_array_size(json_object_get(doc, "packages")) != hoist_sbom_count(s))
    __builtin_trap();
  json_decref(doc);
  free(out);
  hoist_sbom_free(s);
  return 0;
}
