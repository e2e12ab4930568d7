/* libFuzzer target: what hoist inspect reads back of attestations. The first
 * byte picks the parser: even, an in-toto statement (an accepted one's
 * predicate must wrap into a statement again and parse back to the same
 * predicate); odd, an index whose attestation-manifest entries are looked
 * up (every position found must be an attestation entry of that image). */
#include <string.h>

#include "hoist/attest.h"

static void statement(const char *data, size_t size) {
  hoist_err *err = NULL;
  char *type = NULL, *pred = NULL, *again = NULL, *type2 = NULL, *pred2 = NULL;
  size_t len = 0;
  if (hoist_attest_statement_parse(data, size, &type, &pred, &err) == 0) {
    if (hoist_attest_statement(
            "subject", "sha256:0000000000000000000000000000000000000000000000000000000000000000",
            type, pred, strlen(pred), &again, &len, &err) < 0 ||
        hoist_attest_statement_parse(again, len, &type2, &pred2, &err) < 0 ||
        strcmp(type, type2) != 0 || strcmp(pred, pred2) != 0)
      __builtin_trap();
  }
  free(type);
  free(pred);
  free(again);
  free(type2);
  free(pred2);
  hoist_err_free(err);
}

static void index_entries(const char *data, size_t size) {
  hoist_err *err = NULL;
  hoist_index *ix = NULL;
  if (hoist_index_parse(data, size, &ix, &err) == 0) {
    for (size_t k = 0; k <= ix->n_manifests; k++) {
      const char *image = k < ix->n_manifests ? ix->manifests[k].digest : NULL;
      size_t *idx = NULL, n = 0;
      if (hoist_attest_index_entries(ix, image, &idx, &n, &err) == 0) {
        for (size_t i = 0; i < n; i++) {
          const hoist_descriptor *d = &ix->manifests[idx[i]];
          const char *ref = hoist_descriptor_annotation(d, HOIST_ANNOT_REFERENCE_DIGEST);
          if (idx[i] >= ix->n_manifests || !hoist_attest_is_attestation(d) || !ref ||
              (image && strcmp(ref, image) != 0))
            __builtin_trap();
        }
      }
      free(idx);
      hoist_err_free(err);
      err = NULL;
    }
  }
  hoist_index_free(ix);
  hoist_err_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  if (data[0] % 2 == 0)
    statement((const char *)data + 1, size - 1);
  else
    index_entries((const char *)data + 1, size - 1);
  return 0;
}
