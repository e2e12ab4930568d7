/* attest: in-toto statements, the SLSA provenance, attestations attached to
 * an image in a layout (the index way and the referrer way) and read back,
 * and tables of bad statements and bad attestation entries. */
#include "test_util.h"
// test_util.h first: cmocka's headers
#include <errno.h>
#include <jansson.h>

#include "hoist/attest.h"
#include "hoist/store.h"
#include "image_util.h"

#define SUBJECT "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define PRED "{\"buildDefinition\":{}}"

static void test_statement_round_trip(void **state) {
  (void)state;
  hoist_err *err = NULL;
  _cleanup_free_ char *st = NULL;
  size_t len = 0;
  assert_ok(hoist_attest_statement("reg/app:1", SUBJECT, HOIST_PREDICATE_SPDX, PRED, strlen(PRED),
                                   &st, &len, &err),
            &err);
  _cleanup_json_ json_t *j = json_loadb(st, len, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(j, "_type")),
                      "https://in-toto.io/Statement/v1");
  json_t *s0 = json_array_get(json_object_get(j, "subject"), 0);
  assert_string_equal(json_string_value(json_object_get(s0, "name")), "reg/app:1");
  assert_string_equal(json_string_value(json_object_get(json_object_get(s0, "digest"), "sha256")),
                      SUBJECT + 7);
  _cleanup_free_ char *type = NULL;
  _cleanup_free_ char *pred = NULL;
  assert_ok(hoist_attest_statement_parse(st, len, &type, &pred, &err), &err);
  assert_string_equal(type, HOIST_PREDICATE_SPDX);
  assert_string_equal(pred, PRED);
  /* a predicate that is not an object, a subject digest that is not sha256 */
  _cleanup_free_ char *none = NULL;
  assert_int_equal(hoist_attest_statement("r", SUBJECT, "t", "[1]", 3, &none, &len, &err),
                   -HOIST_E_FORMAT);
  assert_err_contains(&err, "predicate is not a JSON object");
  assert_true(hoist_attest_statement("r", "sha512:ab", "t", PRED, strlen(PRED), &none, &len, &err) <
              0);
  assert_err_contains(&err, "is not a sha256 digest");
}

static void test_provenance_fields(void **state) {
  (void)state;
  hoist_err *err = NULL;
  _cleanup_json_ json_t *ext = json_pack("{s:s}", "kind", "python");
  _cleanup_json_ json_t *in = json_pack("{s:{}}", "mirrors");
  hoist_provenance_dep deps[] = {
      {.uri = "reg/base:1", .digest = SUBJECT, .name = "base"},
      {.uri = "requirements.txt", .digest = SUBJECT, .media_type = "text/plain"},
  };
  hoist_provenance_info pi = {.subject_name = "reg/app:1",
                              .subject_digest = SUBJECT,
                              .verb = "build",
                              .version = "9.9.9",
                              .external = ext,
                              .internal = in,
                              .deps = deps,
                              .n_deps = 2,
                              .invocation_id = "job-1",
                              .started = 1700000000,
                              .finished = 1700000061};
  _cleanup_free_ char *st = NULL;
  size_t len = 0;
  assert_ok(hoist_provenance_statement(&pi, &st, &len, &err), &err);
  _cleanup_json_ json_t *j = json_loadb(st, len, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(j, "predicateType")),
                      "https://slsa.dev/provenance/v1");
  json_t *p = json_object_get(j, "predicate");
  json_t *bd = json_object_get(p, "buildDefinition");
  assert_string_equal(json_string_value(json_object_get(bd, "buildType")),
                      "https://hoist.dev/build-types/build/v1");
  assert_true(json_equal(json_object_get(bd, "externalParameters"), ext));
  assert_true(json_equal(json_object_get(bd, "internalParameters"), in));
  json_t *d1 = json_array_get(json_object_get(bd, "resolvedDependencies"), 1);
  assert_string_equal(json_string_value(json_object_get(d1, "uri")), "requirements.txt");
  assert_string_equal(json_string_value(json_object_get(d1, "mediaType")), "text/plain");
  assert_null(json_object_get(d1, "name"));
  json_t *rd = json_object_get(p, "runDetails");
  json_t *b = json_object_get(rd, "builder");
  assert_string_equal(json_string_value(json_object_get(b, "id")), "https://hoist.dev/hoist@9.9.9");
  assert_string_equal(json_string_value(json_object_get(json_object_get(b, "version"), "hoist")),
                      "9.9.9");
  json_t *md = json_object_get(rd, "metadata");
  assert_string_equal(json_string_value(json_object_get(md, "startedOn")), "2023-11-14T22:13:20Z");
  assert_string_equal(json_string_value(json_object_get(md, "finishedOn")), "2023-11-14T22:14:21Z");
  assert_string_equal(json_string_value(json_object_get(md, "invocationId")), "job-1");
  /* a dependency without a sha256 digest is refused */
  deps[1].digest = "md5:abc";
  _cleanup_free_ char *bad = NULL;
  assert_true(hoist_provenance_statement(&pi, &bad, &len, &err) < 0);
  assert_err_contains(&err, "resolvedDependencies[1] needs a uri and a sha256 digest");
}

/* Statements hoist inspect refuses, and why. */
static const struct {
  const char *name;
  const char *doc;
  const char *error;
} bad_statements[] = {
    {"not JSON", "{", "not JSON"},
    {"an array", "[]", "is not a JSON object"},
    {"no _type", "{\"subject\":[]}", "_type is not"},
    {"another _type", "{\"_type\":\"https://in-toto.io/Statement/v2\"}", "_type is not"},
    {"no subject", "{\"_type\":\"https://in-toto.io/Statement/v1\"}", "subject must be"},
    {"empty subject", "{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[]}",
     "subject must be a non-empty array"},
    {"subject without digest",
     "{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{\"name\":\"x\"}]}",
     "subject[0] needs a digest object"},
    {"empty digest",
     "{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{\"digest\":{}}]}",
     "subject[0] needs a digest object"},
    {"digest not a string",
     "{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{\"digest\":{\"sha256\":1}}]}",
     "subject[0].digest.sha256 is not a hex string"},
    {"name not a string",
     "{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{\"name\":1,\"digest\":{\"a\":"
     "\"b\"}}]}",
     "subject[0].name is not a string"},
    {"no predicateType",
     "{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{\"digest\":{\"a\":\"b\"}}]}",
     "predicateType must be a non-empty string"},
    {"predicate not an object",
     "{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{\"digest\":{\"a\":\"b\"}}],"
     "\"predicateType\":\"t\",\"predicate\":[]}",
     "predicate must be an object"},
    {"duplicate keys",
     "{\"_type\":\"https://in-toto.io/Statement/v1\",\"_type\":\"https://in-toto.io/Statement/"
     "v1\"}",
     "not JSON"},
};

static void test_bad_statements(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bad_statements / sizeof *bad_statements; i++) {
    hoist_err *err = NULL;
    char *type = NULL, *pred = NULL;
    int r = hoist_attest_statement_parse(bad_statements[i].doc, strlen(bad_statements[i].doc),
                                         &type, &pred, &err);
    if (r != -HOIST_E_FORMAT)
      fail_msg("%s: got %d", bad_statements[i].name, r);
    assert_null(type);
    assert_null(pred);
    assert_err_contains(&err, bad_statements[i].error);
  }
  /* past the limit: a HOIST_E_LIMIT naming it */
  size_t big = HOIST_ATTEST_STATEMENT_MAX + 1;
  char *doc = malloc(big);
  memset(doc, ' ', big);
  hoist_err *err = NULL;
  assert_int_equal(hoist_attest_statement_parse(doc, big, NULL, NULL, &err), -HOIST_E_LIMIT);
  assert_err_contains(&err, "exceeds the statement limit");
  free(doc);
}

#define IMG "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ATT "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define ENTRY(mt, ref)                                                                             \
  "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" HOIST_MT_OCI_MANIFEST                    \
  "\",\"digest\":\"" IMG "\",\"size\":1},{\"mediaType\":\"" mt "\",\"digest\":\"" ATT              \
  "\",\"size\":1,\"annotations\":{\"vnd.docker.reference.type\":\"attestation-manifest\","         \
  "\"vnd.docker.reference.digest\":\"" ref "\"}}]}"

/* Index entries hoist_attest_index_entries refuses, and one it finds. */
static void test_index_entries(void **state) {
  (void)state;
  static const struct {
    const char *name, *doc, *error;
  } bad[] = {
      {"reference not a digest", ENTRY(HOIST_MT_OCI_MANIFEST, "nope"), "is not a digest"},
      {"attestation that is an index", ENTRY(HOIST_MT_OCI_INDEX, IMG), "is not a manifest"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    hoist_err *err = NULL;
    _cleanup_index_ hoist_index *ix = NULL;
    assert_ok(hoist_index_parse(bad[i].doc, strlen(bad[i].doc), &ix, &err), &err);
    size_t *idx = NULL, n = 0;
    if (hoist_attest_index_entries(ix, IMG, &idx, &n, &err) != -HOIST_E_FORMAT)
      fail_msg("%s: accepted", bad[i].name);
    assert_err_contains(&err, bad[i].error);
  }
  const char *good = ENTRY(HOIST_MT_OCI_MANIFEST, IMG);
  hoist_err *err = NULL;
  _cleanup_index_ hoist_index *ix = NULL;
  assert_ok(hoist_index_parse(good, strlen(good), &ix, &err), &err);
  _cleanup_free_ size_t *idx = NULL;
  size_t n = 0;
  assert_ok(hoist_attest_index_entries(ix, IMG, &idx, &n, &err), &err);
  assert_int_equal(n, 1);
  assert_int_equal(idx[0], 1);
  _cleanup_free_ size_t *none = NULL;
  assert_ok(hoist_attest_index_entries(ix, ATT, &none, &n, &err), &err);
  assert_int_equal(n, 0);
  assert_false(hoist_attest_is_attestation(&ix->manifests[0]));
  assert_true(hoist_attest_is_attestation(&ix->manifests[1]));
}

/* Attach in each mode to an image in a layout, then read back. */
static void test_attach_and_read_in_a_layout(void **state) {
  (void)state;
  static const hoist_attest_mode modes[] = {HOIST_ATTEST_INDEX, HOIST_ATTEST_REFERRER};
  for (size_t m = 0; m < 2; m++) {
    hoist_err *err = NULL;
    _cleanup_free_ char *dir = test_mkdtemp();
    hoist_store *s = NULL;
    hoist_descriptor img = {0};
    assert_ok(hoist_store_open(dir, true, &s, &err), &err);
    assert_ok(test_make_image(s, "1", "hello", &img, &err), &err);
    hoist_store_close(s);
    _cleanup_free_ char *spec = hoist_asprintf("oci:%s:1", dir);
    _cleanup_loc_ hoist_loc *loc = NULL;
    assert_ok(hoist_loc_parse(spec, &loc, &err), &err);
    _cleanup_free_ char *st = NULL;
    size_t len = 0;
    assert_ok(hoist_attest_statement(spec, img.digest, HOIST_PREDICATE_SPDX, PRED, strlen(PRED),
                                     &st, &len, &err),
              &err);
    hoist_attest_statement_blob blob = {HOIST_PREDICATE_SPDX, st, len};
    hoist_attest_result res;
    assert_ok(hoist_attest_attach(NULL, loc, modes[m], &blob, 1, &res, &err), &err);
    assert_string_equal(res.image_digest, img.digest);
    if (modes[m] == HOIST_ATTEST_REFERRER)
      assert_string_equal(res.digest, img.digest);
    else
      assert_string_not_equal(res.digest, img.digest);
    _cleanup_strfreev_ char **found = NULL;
    assert_ok(hoist_attest_read(NULL, loc, NULL, HOIST_PREDICATE_SPDX, &found, &err), &err);
    assert_non_null(found[0]);
    assert_string_equal(found[0], PRED);
    assert_null(found[1]);
    /* another type: none, and the error says so */
    _cleanup_strfreev_ char **none = NULL;
    assert_int_equal(
        hoist_attest_read(NULL, loc, NULL, HOIST_PREDICATE_SLSA_PROVENANCE, &none, &err), -ENOENT);
    assert_err_contains(&err, "has no attestation of type https://slsa.dev/provenance/v1");
    /* index mode again: the attestation manifest is replaced, not added */
    if (modes[m] == HOIST_ATTEST_INDEX) {
      assert_ok(hoist_attest_attach(NULL, loc, modes[m], &blob, 1, &res, &err), &err);
      _cleanup_strfreev_ char **again = NULL;
      assert_ok(hoist_attest_read(NULL, loc, NULL, HOIST_PREDICATE_SPDX, &again, &err), &err);
      assert_null(again[1]);
    }
    hoist_descriptor_clear(&img);
  }
}

static void test_mode_parse(void **state) {
  (void)state;
  hoist_err *err = NULL;
  hoist_attest_mode m;
  assert_ok(hoist_attest_mode_parse("referrer", &m, &err), &err);
  assert_int_equal(m, HOIST_ATTEST_REFERRER);
  assert_ok(hoist_attest_mode_parse("index", &m, &err), &err);
  assert_int_equal(m, HOIST_ATTEST_INDEX);
  assert_true(hoist_attest_mode_parse("both", &m, &err) < 0);
  assert_err_contains(&err, "want index or referrer");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_statement_round_trip),
      cmocka_unit_test(test_provenance_fields),
      cmocka_unit_test(test_bad_statements),
      cmocka_unit_test(test_index_entries),
      cmocka_unit_test(test_attach_and_read_in_a_layout),
      cmocka_unit_test(test_mode_parse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
