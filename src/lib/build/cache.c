/* The build cache's key, place and pruning (the entries are written by
 * build.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "hoist/build.h"
#include "hoist/digest.h"
#include "hoist/store.h"

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
  /* the kind's settings, each named (the first as "mirror", as before
   * there were several) */
  bool first = true;
  for (int m = 0; m < HOIST_MIRROR_COUNT; m++) {
    if (!(k->mirrors & HOIST_MIRROR_BIT(m)))
      continue;
    const char *v = mirrors ? mirrors[m] : NULL;
    field_s(h, first ? "mirror" : hoist_build_mirror_info((hoist_mirror)m)->option,
            v && *v ? v : NULL);
    first = false;
  }
  hoist_sha256_final(h, out);
}

int hoist_build_cache_prune(const char *dir, int64_t max_age, bool dry_run,
                            hoist_prune_report *report, hoist_err **err) {
  memset(report, 0, sizeof *report);
  if (!dir)
    return hoist_err_set(err, EINVAL, "build cache prune: no cache directory given");
  const char *d = dir;
  struct stat st;
  if (stat(d, &st) < 0 && errno == ENOENT)
    return 0;
  _cleanup_store_ hoist_store *s = NULL;
  _cleanup_index_ hoist_index *ix = NULL;
  if (hoist_store_open(d, false, &s, err) < 0 || hoist_store_index(s, &ix, err) < 0)
    return hoist_err_wrap(err, "build cache %s", d);
  time_t now = time(NULL);
  for (size_t i = 0; i < ix->n_manifests; i++) {
    const hoist_descriptor *e = &ix->manifests[i];
    const char *tag = hoist_descriptor_annotation(e, HOIST_ANNOTATION_REF_NAME);
    const char *hex = NULL;
    if (!tag || hoist_digest_parse(e->digest, &hex, NULL) < 0)
      continue;
    /* a cache hit touches the entry's blob: its mtime is the last use */
    _cleanup_free_ char *blob = hoist_asprintf("%s/blobs/sha256/%s", d, hex);
    if (stat(blob, &st) == 0 && now - st.st_mtime < max_age)
      continue;
    report->removed++;
    report->bytes += e->size > 0 ? (uint64_t)e->size : 0;
    hoist_info("%s build cache entry %s", dry_run ? "would remove" : "removing", tag);
    if (!dry_run && hoist_store_untag(s, tag, err) < 0)
      return hoist_err_wrap(err, "build cache %s", d);
  }
  uint64_t removed = 0, freed = 0;
  /* blobs younger than max_age may belong to a build writing its entry */
  if (!dry_run && report->removed && hoist_store_gc(s, max_age, &removed, &freed, err) < 0)
    return hoist_err_wrap(err, "build cache %s", d);
  return 0;
}
