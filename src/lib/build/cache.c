/* The build cache's key and place (the entries are written by build.c). */
#include <stdlib.h>
#include <string.h>

#include "hoist/build.h"
#include "hoist/digest.h"

/* Bumped when the pipeline changes what a recipe's layer holds. */
#define BUILD_PIPELINE_VERSION 1

/* Each field goes in as "<name>=<length>:" + bytes, so no two different
 * inputs hash the same sequence. */
static void field(hoist_sha256 *h, const char *name, const void *data, size_t len) {
  char head[64];
  int n = snprintf(head, sizeof head, "%s=%zu:", name, len);
  hoist_sha256_update(h, head, (size_t)n);
  if (len)
    hoist_sha256_update(h, data, len);
}

static void field_s(hoist_sha256 *h, const char *name, const char *s) {
  field(h, name, s ? s : "", s ? strlen(s) : 0);
}

void hoist_build_cache_key(const hoist_build_kind *k, const char *base_digest,
                           const hoist_platform *platform, const char *file, size_t file_len,
                           const char *const mirrors[HOIST_MIRROR_COUNT],
                           char out[HOIST_DIGEST_STR_LEN]) {
  _cleanup_sha256_ hoist_sha256 *h = hoist_sha256_new();
  char v[32];
  snprintf(v, sizeof v, "%d/%u", BUILD_PIPELINE_VERSION, k->version);
  field_s(h, "hoist-build", v);
  field_s(h, "base", base_digest);
  _cleanup_free_ char *p = platform ? hoist_platform_string(platform) : NULL;
  field_s(h, "platform", p);
  field_s(h, "kind", k->name);
  field(h, "file", file, file_len);
  const char *mirror = mirrors ? mirrors[k->mirror] : NULL;
  field_s(h, "mirror", mirror && *mirror ? mirror : NULL);
  hoist_sha256_final(h, out);
}

char *hoist_build_cache_dir(void) {
  const char *images = getenv("HOIST_IMAGES");
  const char *cache = getenv("HOIST_CACHE");
  const char *home = getenv("HOME");
  if (images && *images)
    return hoist_asprintf("%s/build-cache", images);
  if (cache && *cache)
    return hoist_asprintf("%s/images/build-cache", cache);
  return hoist_asprintf("%s/.cache/hoist/images/build-cache", home && *home ? home : ".");
}
