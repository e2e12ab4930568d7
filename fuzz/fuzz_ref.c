/* libFuzzer target: image references, short names and locations. Every
 * accepted reference must respect the length limits and print to a string
 * that parses back to itself. */
#include <string.h>

#include "hoist/digest.h"
#include "hoist/ref.h"

static void check_ref(const hoist_ref *r) {
  if (!r->domain || !*r->domain || !r->path || !*r->path)
    __builtin_trap();
  if (strlen(r->domain) + 1 + strlen(r->path) > HOIST_REF_MAX_LEN)
    __builtin_trap();
  if (r->tag && (!*r->tag || strlen(r->tag) > HOIST_TAG_MAX_LEN))
    __builtin_trap();
  if (!r->tag && !r->digest)
    __builtin_trap();
  if (r->digest && !hoist_digest_valid(r->digest))
    __builtin_trap();
  char *s = hoist_ref_string(r);
  hoist_ref *again = NULL;
  if (hoist_ref_parse(s, &again, NULL) != 0)
    __builtin_trap();
  char *s2 = hoist_ref_string(again);
  if (strcmp(s, s2) != 0)
    __builtin_trap();
  free(s2);
  free(s);
  hoist_ref_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = strndup((const char *)data, size);
  hoist_err *err = NULL;
  hoist_ref *r = NULL;
  if (hoist_ref_parse(s, &r, &err) == 0)
    check_ref(r);
  else if (!err || !err->msg)
    __builtin_trap();
  hoist_ref_free(r);
  hoist_err_free(err);
  err = NULL;
  r = NULL;

  if (hoist_ref_parse_short(s, "registry.example.com:5000/sandboxes", &r, NULL) == 0)
    check_ref(r);
  hoist_ref_free(r);

  hoist_loc *l = NULL;
  if (hoist_loc_parse(s, &l, &err) == 0) {
    if (l->kind == HOIST_LOC_REGISTRY)
      check_ref(l->ref);
    char *ls = hoist_loc_string(l);
    hoist_loc *l2 = NULL;
    if (hoist_loc_parse(ls, &l2, NULL) != 0)
      __builtin_trap();
    char *ls2 = hoist_loc_string(l2);
    if (strcmp(ls, ls2) != 0)
      __builtin_trap();
    free(ls2);
    free(ls);
    hoist_loc_free(l2);
  }
  hoist_loc_free(l);
  hoist_err_free(err);
  free(s);
  return 0;
}
