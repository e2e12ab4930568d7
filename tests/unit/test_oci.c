#include <string.h>
#include <time.h>

#include "hoist/oci.h"
#include "test_util.h"

#define HA "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HB "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HC "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define DA "sha256:" HA
#define DB "sha256:" HB
#define DC "sha256:" HC

#define CFG_DESC "{\"mediaType\":\"" HOIST_MT_OCI_CONFIG "\",\"digest\":\"" DA "\",\"size\":7}"
#define LAYER_DESC                                                                                 \
  "{\"mediaType\":\"" HOIST_MT_OCI_LAYER_GZIP "\",\"digest\":\"" DB "\",\"size\":32}"
#define CFG_DESC_SORTED                                                                            \
  "{\"digest\":\"" DA "\",\"mediaType\":\"" HOIST_MT_OCI_CONFIG "\",\"size\":7}"
#define LAYER_SORTED                                                                               \
  "{\"digest\":\"" DB "\",\"mediaType\":\"" HOIST_MT_OCI_LAYER_GZIP "\",\"size\":32}"
/* A layer descriptor with the given extra JSON members spliced in. */
#define LAYER_WITH(members) "{\"mediaType\":\"" HOIST_MT_OCI_LAYER_GZIP "\"," members "}"
#define MANIFEST(members)                                                                          \
  "{\"schemaVersion\":2,\"mediaType\":\"" HOIST_MT_OCI_MANIFEST "\"," members "}"
#define MANIFEST_LAYERS(layers) MANIFEST("\"config\":" CFG_DESC ",\"layers\":[" layers "]")
#define INDEX_ENTRY(platform)                                                                      \
  "{\"mediaType\":\"" HOIST_MT_OCI_MANIFEST "\",\"digest\":\"" DC "\",\"size\":500,"               \
  "\"platform\":" platform "}"
#define INDEX(members) "{\"schemaVersion\":2,\"mediaType\":\"" HOIST_MT_OCI_INDEX "\"," members "}"
#define CONFIG(members) "{\"architecture\":\"amd64\",\"os\":\"linux\"," members "}"
#define ROOTFS "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" DA "\"]}"

/* M: a manifest, image or artifact; MI: a manifest that must be an image */
enum doc { M, MI, I, C };

static int parse_any(enum doc kind, const char *s, hoist_err **err) {
  size_t n = strlen(s);
  if (kind == M || kind == MI) {
    _cleanup_manifest_ hoist_manifest *m = NULL;
    return kind == M ? hoist_manifest_parse(s, n, &m, err)
                     : hoist_manifest_parse_image(s, n, &m, err);
  }
  if (kind == I) {
    _cleanup_index_ hoist_index *ix = NULL;
    return hoist_index_parse(s, n, &ix, err);
  }
  _cleanup_config_ hoist_config *c = NULL;
  return hoist_config_parse(s, n, &c, err);
}

static void test_bad_documents(void **state) {
  (void)state;
  static const struct {
    enum doc kind;
    const char *json;
    const char *error;
  } cases[] = {
      /* JSON itself */
      {M, "", "manifest: empty document"},
      {M, "{\"schemaVersion\":2,", "manifest: invalid JSON at line 1 column 19"},
      {M, "{\n\"a\":1,\n\"a\":2}", "invalid JSON at line 3 column 3: duplicate object key"},
      {M, "{}x", "invalid JSON"},
      {M, "[1,2]", "manifest: not a JSON object"},
      {M, "\"x\"", "invalid JSON"},
      /* manifest shape */
      {M, "{\"config\":" CFG_DESC ",\"layers\":[]}", "manifest: schemaVersion is missing"},
      {M, "{\"schemaVersion\":1,\"config\":" CFG_DESC ",\"layers\":[]}", "schemaVersion must be 2"},
      {M, "{\"schemaVersion\":\"2\",\"config\":" CFG_DESC ",\"layers\":[]}",
       "schemaVersion must be 2"},
      {M, "{\"schemaVersion\":2.0,\"config\":" CFG_DESC ",\"layers\":[]}",
       "schemaVersion must be 2"},
      {M, "{\"schemaVersion\":2,\"mediaType\":\"" HOIST_MT_OCI_INDEX "\",\"manifests\":[]}",
       "manifest: mediaType " HOIST_MT_OCI_INDEX " is an image index, not a manifest"},
      {M,
       "{\"schemaVersion\":2,\"mediaType\":\"" HOIST_MT_DOCKER_LIST "\",\"config\":" CFG_DESC
       ",\"layers\":[]}",
       "is an image index, not a manifest"},
      {M,
       "{\"schemaVersion\":2,\"mediaType\":\"text/plain\",\"config\":" CFG_DESC ",\"layers\":[]}",
       "mediaType \"text/plain\" is not an image manifest"},
      {M, "{\"schemaVersion\":2,\"mediaType\":7,\"config\":" CFG_DESC ",\"layers\":[]}",
       "manifest: mediaType must be a string"},
      {M, "{\"schemaVersion\":2,\"manifests\":[]}", "an image index, not a manifest"},
      {M, MANIFEST("\"layers\":[]"), "manifest: config is missing"},
      {M, MANIFEST("\"config\":" CFG_DESC), "manifest: layers is missing"},
      {M, MANIFEST("\"config\":" CFG_DESC ",\"layers\":{}"), "manifest: layers must be an array"},
      {M, MANIFEST("\"config\":[],\"layers\":[]"), "config: descriptor must be an object"},
      {MI,
       MANIFEST("\"config\":{\"mediaType\":\"" HOIST_MT_OCI_LAYER "\",\"digest\":\"" DA
                "\",\"size\":1},\"layers\":[]"),
       "manifest: config: mediaType \"" HOIST_MT_OCI_LAYER "\" is not an image config"},
      {MI,
       MANIFEST("\"artifactType\":\"application/vnd.example.sbom\",\"config\":{\"mediaType\":"
                "\"application/vnd.oci.empty.v1+json\",\"digest\":\"" DA "\",\"size\":2},"
                "\"layers\":[]"),
       "manifest: an artifact of type application/vnd.example.sbom, not an image"},
      /* descriptors */
      {M, MANIFEST_LAYERS("{\"digest\":\"" DB "\",\"size\":1}"),
       "manifest: layers[0]: mediaType is missing"},
      {M, MANIFEST_LAYERS("{\"mediaType\":\"notatype\",\"digest\":\"" DB "\",\"size\":1}"),
       "layers[0]: mediaType \"notatype\" is not a valid media type"},
      {M, MANIFEST_LAYERS(LAYER_WITH("\"size\":1")), "manifest: layers[0]: digest is missing"},
      {M, MANIFEST_LAYERS(LAYER_WITH("\"digest\":\"" DB "\"")), "layers[0]: size is missing"},
      {M,
       MANIFEST_LAYERS(LAYER_DESC "," LAYER_DESC
                                  "," LAYER_WITH("\"digest\":\"" DB "\",\"size\":-1")),
       "manifest: layers[2]: size must be a non-negative integer"},
      {M, MANIFEST_LAYERS(LAYER_WITH("\"digest\":\"" DB "\",\"size\":1.5")),
       "layers[0]: size must be a non-negative integer"},
      {M, MANIFEST_LAYERS(LAYER_WITH("\"digest\":\"" DB "\",\"size\":\"12\"")),
       "layers[0]: size must be a non-negative integer"},
      {M, MANIFEST_LAYERS(LAYER_WITH("\"digest\":\"" DB "\",\"size\":1e30")),
       "layers[0]: size must be a non-negative integer"},
      {M, MANIFEST_LAYERS(LAYER_WITH("\"digest\":\"" DB "\",\"size\":null")),
       "layers[0]: size must be a non-negative integer"},
      {M, MANIFEST_LAYERS(LAYER_WITH("\"digest\":\"" DB "\",\"size\":99999999999999999999")),
       "too big integer"},
      {M, MANIFEST_LAYERS(LAYER_WITH("\"digest\":\"sha256:abc\",\"size\":1")),
       "layers[0]: digest: invalid digest \"sha256:abc\": sha256 needs 64 hex digits"},
      {M,
       MANIFEST_LAYERS(
           LAYER_WITH("\"digest\":\"md5:d41d8cd98f00b204e9800998ecf8427e\",\"size\":1")),
       "layers[0]: digest: unsupported digest algorithm md5"},
      {M, MANIFEST_LAYERS(LAYER_WITH("\"digest\":42,\"size\":1")),
       "layers[0]: digest must be a non-empty string"},
      {M, MANIFEST_LAYERS(LAYER_WITH("\"digest\":\"" DB "\",\"size\":1,\"annotations\":[]")),
       "layers[0]: annotations must be an object of strings"},
      {M, MANIFEST_LAYERS(LAYER_WITH("\"digest\":\"" DB "\",\"size\":1,\"annotations\":{\"a\":1}")),
       "layers[0]: annotations[\"a\"] must be a string"},
      {M, MANIFEST_LAYERS(LAYER_WITH("\"digest\":\"" DB "\",\"size\":1,\"urls\":\"http://x\"")),
       "layers[0]: urls must be an array of strings"},
      {M, MANIFEST_LAYERS(LAYER_WITH("\"digest\":\"" DB "\",\"size\":1,\"urls\":[1]")),
       "layers[0]: urls[0] must be a string"},
      {M, MANIFEST_LAYERS(LAYER_WITH("\"digest\":\"" DB "\",\"size\":1,\"artifactType\":\"x\"")),
       "layers[0]: artifactType \"x\" is not a valid media type"},
      {M,
       MANIFEST_LAYERS(LAYER_WITH("\"digest\":\"" DB
                                  "\",\"size\":1,\"platform\":{\"architecture\":\"amd64\"}")),
       "layers[0]: platform: os is missing"},
      {MI,
       MANIFEST_LAYERS("{\"mediaType\":\"application/vnd.cncf.helm.chart.content.v1.tar+gzip\","
                       "\"digest\":\"" DB "\",\"size\":1}"),
       "layers[0]: unsupported layer media type "
       "\"application/vnd.cncf.helm.chart.content.v1.tar+gzip\""},
      {MI,
       MANIFEST_LAYERS("{\"mediaType\":\"" HOIST_MT_OCI_CONFIG "\",\"digest\":\"" DB
                       "\",\"size\":1}"),
       "layers[0]: unsupported layer media type"},
      {M, MANIFEST("\"config\":" CFG_DESC ",\"layers\":[],\"annotations\":{\"k\":true}"),
       "manifest: annotations[\"k\"] must be a string"},
      {M,
       MANIFEST("\"config\":" CFG_DESC
                ",\"layers\":[],\"subject\":{\"mediaType\":\"" HOIST_MT_OCI_MANIFEST
                "\",\"size\":3}"),
       "manifest: subject: digest is missing"},
      {M, MANIFEST("\"config\":" CFG_DESC ",\"layers\":[],\"artifactType\":[]"),
       "manifest: artifactType must be a string"},
      /* indexes */
      {I, "{\"schemaVersion\":2,\"mediaType\":\"" HOIST_MT_OCI_MANIFEST "\",\"manifests\":[]}",
       "index: mediaType " HOIST_MT_OCI_MANIFEST " is an image manifest, not an index"},
      {I, "{\"schemaVersion\":2,\"mediaType\":\"application/json\",\"manifests\":[]}",
       "index: mediaType \"application/json\" is not an image index"},
      {I, "{\"schemaVersion\":2,\"config\":" CFG_DESC ",\"layers\":[]}",
       "index: document has \"config\" or \"layers\": an image manifest, not an index"},
      {I, INDEX("\"annotations\":{}"), "index: manifests is missing"},
      {I, INDEX("\"manifests\":null"), "index: manifests is missing"},
      {I, INDEX("\"manifests\":{}"), "index: manifests must be an array"},
      {I, "{\"mediaType\":\"" HOIST_MT_OCI_INDEX "\",\"manifests\":[]}",
       "index: schemaVersion is missing"},
      {I,
       INDEX("\"manifests\":[" INDEX_ENTRY(
           "{\"os\":\"linux\",\"architecture\":\"amd64\"}") ",{\"mediaType\":"
                                                            "\"" HOIST_MT_OCI_MANIFEST
                                                            "\",\"digest\":\"sha256:" HA
                                                            "0\",\"size\":1}]"),
       "index: manifests[1]: digest: invalid digest"},
      {I, INDEX("\"manifests\":[" INDEX_ENTRY("{\"os\":\"linux\"}") "]"),
       "index: manifests[0]: platform: architecture is missing"},
      {I, INDEX("\"manifests\":[" INDEX_ENTRY("{\"os\":5,\"architecture\":\"amd64\"}") "]"),
       "manifests[0]: platform: os must be a non-empty string"},
      {I, INDEX("\"manifests\":[" INDEX_ENTRY("\"linux/amd64\"") "]"),
       "manifests[0]: platform must be an object"},
      {I,
       INDEX("\"manifests\":[" INDEX_ENTRY(
           "{\"os\":\"windows\",\"architecture\":\"amd64\",\"os.features\":\"win32k\"}") "]"),
       "manifests[0]: platform: os.features must be an array of strings"},
      {I,
       INDEX("\"manifests\":[" INDEX_ENTRY(
           "{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":7}") "]"),
       "manifests[0]: platform: variant must be a string"},
      {I, INDEX("\"manifests\":[],\"annotations\":\"x\""),
       "index: annotations must be an object of strings"},
      /* configs */
      {C, "[]", "image config: not a JSON object"},
      {C, "{\"os\":\"linux\"," ROOTFS "}", "image config: architecture is missing"},
      {C, "{\"architecture\":\"amd64\",\"os\":\"\"," ROOTFS "}",
       "image config: os must be a non-empty string"},
      {C, CONFIG("\"variant\":8," ROOTFS), "image config: variant must be a string"},
      {C, CONFIG("\"config\":{}"), "image config: rootfs is missing"},
      {C, CONFIG("\"rootfs\":[]"), "image config: rootfs must be an object"},
      {C, CONFIG("\"rootfs\":{\"type\":\"layer\",\"diff_ids\":[]}"),
       "image config: rootfs.type must be \"layers\""},
      {C, CONFIG("\"rootfs\":{\"type\":\"layers\"}"), "image config: rootfs.diff_ids is missing"},
      {C, CONFIG("\"rootfs\":{\"type\":\"layers\",\"diff_ids\":\"" DA "\"}"),
       "rootfs.diff_ids must be an array"},
      {C, CONFIG("\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" DA "\",\"sha256:xyz\"]}"),
       "image config: rootfs.diff_ids[1]: invalid digest \"sha256:xyz\""},
      {C, CONFIG("\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[1]}"),
       "rootfs.diff_ids[0] must be a string"},
      {C, CONFIG(ROOTFS ",\"config\":[]"), "image config: config: must be an object"},
      {C, CONFIG(ROOTFS ",\"config\":{\"Env\":[\"A=1\",2]}"),
       "image config: config: Env[1] must be a string"},
      {C, CONFIG(ROOTFS ",\"config\":{\"Cmd\":\"sh\"}"),
       "image config: config: Cmd must be an array of strings"},
      {C, CONFIG(ROOTFS ",\"config\":{\"User\":0}"), "image config: config: User must be a string"},
      {C, CONFIG(ROOTFS ",\"config\":{\"Labels\":{\"a\":1}}"),
       "image config: config: Labels[\"a\"] must be a string"},
      {C, CONFIG(ROOTFS ",\"history\":{}"), "image config: history must be an array"},
      {C, CONFIG(ROOTFS ",\"history\":[{\"empty_layer\":\"yes\"}]"),
       "image config: history[0]: empty_layer must be a boolean"},
      {C, CONFIG(ROOTFS ",\"history\":[1]"), "image config: history[0] must be an object"},
      {C, CONFIG(ROOTFS ",\"created\":1767323045"), "image config: created must be a string"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hoist_err *err = NULL;
    int r = parse_any(cases[i].kind, cases[i].json, &err);
    if (r >= 0)
      fail_msg("case %zu accepted: %s", i, cases[i].json);
    char *t = hoist_err_text(err);
    if (!strstr(t, cases[i].error))
      fail_msg("case %zu: error \"%s\" does not contain \"%s\"", i, t, cases[i].error);
    free(t);
    assert_int_equal(hoist_err_root_code(err), HOIST_E_FORMAT);
    hoist_err_free(err);
  }
}

static void test_size_cap(void **state) {
  (void)state;
  size_t n = HOIST_MANIFEST_MAX + 1;
  char *big = malloc(n);
  assert_non_null(big);
  memset(big, ' ', n);
  big[0] = '{';
  big[n - 1] = '}';
  hoist_err *err = NULL;
  hoist_manifest *m = NULL;
  assert_true(hoist_manifest_parse(big, n, &m, &err) < 0);
  assert_int_equal(hoist_err_root_code(err), HOIST_E_LIMIT);
  assert_err_contains(&err, "manifest: 4194305 bytes exceeds the limit of 4194304 bytes");
  hoist_config *c = NULL;
  assert_true(hoist_config_parse(big, n, &c, &err) < 0);
  assert_err_contains(&err, "exceeds the limit");
  /* exactly at the cap is read (and refused for what it is, not its size) */
  hoist_index *ix = NULL;
  assert_true(hoist_index_parse(big, n - 1, &ix, &err) < 0);
  assert_err_contains(&err, "invalid JSON");
  free(big);
}

/* Emits, re-parses and re-emits; the bytes must not move. Returns the first
 * emission (caller frees). */
static char *manifest_round_trip(const hoist_manifest *m) {
  hoist_err *err = NULL;
  char *a = NULL, *b = NULL;
  size_t alen, blen;
  assert_ok(hoist_manifest_to_json(m, &a, &alen, &err), &err);
  assert_int_equal(alen, strlen(a));
  _cleanup_manifest_ hoist_manifest *again = NULL;
  assert_ok(hoist_manifest_parse(a, alen, &again, &err), &err);
  assert_ok(hoist_manifest_to_json(again, &b, &blen, &err), &err);
  assert_string_equal(a, b);
  free(b);
  return a;
}

static void test_manifest_oci_round_trip(void **state) {
  (void)state;
  /* not canonical: whitespace, key order, unknown fields */
  static const char doc[] =
      "{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"" HOIST_MT_OCI_MANIFEST "\",\n"
      "  \"x-unknown\": [1, 2],\n"
      "  \"config\": {\"size\": 7, \"digest\": \"" DA "\", \"mediaType\": \"" HOIST_MT_OCI_CONFIG
      "\"},\n"
      "  \"layers\": [\n"
      "    {\"mediaType\": \"" HOIST_MT_OCI_LAYER_ZSTD "\", \"digest\": \"" DB "\", \"size\": 0,\n"
      "     \"annotations\": {\"z\": \"1\", \"a\": \"2\"}},\n"
      "    {\"mediaType\": \"" HOIST_MT_OCI_LAYER_ND_GZIP "\", \"digest\": \"" DC "\",\n"
      "     \"size\": 9007199254740993, \"urls\": [\"https://example.com/l\"]}\n"
      "  ],\n"
      "  \"subject\": {\"mediaType\": \"" HOIST_MT_OCI_MANIFEST "\", \"digest\": \"" DA
      "\", \"size\": 10},\n"
      "  \"artifactType\": \"application/vnd.example+json\",\n"
      "  \"annotations\": {\"org.opencontainers.image.created\": \"2026-01-02T03:04:05Z\"}\n"
      "}\n";
  static const char canonical[] =
      "{\"annotations\":{\"org.opencontainers.image.created\":\"2026-01-02T03:04:05Z\"},"
      "\"artifactType\":\"application/vnd.example+json\","
      "\"config\":{\"digest\":\"" DA "\",\"mediaType\":\"" HOIST_MT_OCI_CONFIG "\",\"size\":7},"
      "\"layers\":[{\"annotations\":{\"a\":\"2\",\"z\":\"1\"},\"digest\":\"" DB
      "\",\"mediaType\":\"" HOIST_MT_OCI_LAYER_ZSTD "\",\"size\":0},"
      "{\"digest\":\"" DC "\",\"mediaType\":\"" HOIST_MT_OCI_LAYER_ND_GZIP
      "\",\"size\":9007199254740993,\"urls\":[\"https://example.com/l\"]}],"
      "\"mediaType\":\"" HOIST_MT_OCI_MANIFEST "\",\"schemaVersion\":2,"
      "\"subject\":{\"digest\":\"" DA "\",\"mediaType\":\"" HOIST_MT_OCI_MANIFEST
      "\",\"size\":10}}";
  hoist_err *err = NULL;
  _cleanup_manifest_ hoist_manifest *m = NULL;
  assert_ok(hoist_manifest_parse(doc, strlen(doc), &m, &err), &err);
  assert_int_equal(m->schema_version, 2);
  assert_string_equal(m->media_type, HOIST_MT_OCI_MANIFEST);
  assert_string_equal(m->config.digest, DA);
  assert_int_equal(m->n_layers, 2);
  assert_int_equal(m->layers[1].size, 9007199254740993LL);
  assert_string_equal(m->layers[1].urls[0], "https://example.com/l");
  assert_null(m->layers[1].urls[1]);
  assert_string_equal(hoist_descriptor_annotation(&m->layers[0], "z"), "1");
  assert_null(hoist_descriptor_annotation(&m->layers[0], "missing"));
  assert_int_equal(hoist_media_layer_compression(m->layers[0].media_type), HOIST_COMPRESS_ZSTD);
  assert_string_equal(m->subject->digest, DA);
  assert_string_equal(m->artifact_type, "application/vnd.example+json");

  _cleanup_free_ char *out = manifest_round_trip(m);
  assert_string_equal(out, canonical);
  char d1[HOIST_DIGEST_STR_LEN], d2[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of(out, strlen(out), d1);
  hoist_sha256_of(canonical, strlen(canonical), d2);
  assert_string_equal(d1, d2);

  /* the canonical form parses to the same model, field for field */
  _cleanup_manifest_ hoist_manifest *m2 = NULL;
  assert_ok(hoist_manifest_parse(canonical, strlen(canonical), &m2, &err), &err);
  assert_int_equal(m2->n_layers, 2);
  assert_string_equal(m2->layers[0].media_type, m->layers[0].media_type);
  assert_true(json_equal(m2->layers[0].annotations, m->layers[0].annotations));
  assert_true(json_equal(m2->annotations, m->annotations));
}

static void test_manifest_docker(void **state) {
  (void)state;
  static const char doc[] =
      "{\"schemaVersion\":2,\"mediaType\":\"" HOIST_MT_DOCKER_MANIFEST "\","
      "\"config\":{\"mediaType\":\"" HOIST_MT_DOCKER_CONFIG "\",\"size\":1469,\"digest\":\"" DA
      "\"},"
      "\"layers\":[{\"mediaType\":\"" HOIST_MT_DOCKER_LAYER_GZIP "\",\"size\":3370706,"
      "\"digest\":\"" DB "\"},"
      "{\"mediaType\":\"" HOIST_MT_DOCKER_FOREIGN_GZIP "\",\"size\":5,\"digest\":\"" DC "\","
      "\"urls\":[\"https://mcr.microsoft.com/l\"]}]}";
  hoist_err *err = NULL;
  _cleanup_manifest_ hoist_manifest *m = NULL;
  assert_ok(hoist_manifest_parse(doc, strlen(doc), &m, &err), &err);
  assert_string_equal(m->media_type, HOIST_MT_DOCKER_MANIFEST);
  assert_true(hoist_media_is_docker(m->media_type));
  assert_int_equal(m->layers[0].size, 3370706);
  assert_int_equal(hoist_media_layer_compression(m->layers[1].media_type), HOIST_COMPRESS_GZIP);
  _cleanup_free_ char *out = manifest_round_trip(m);
  assert_non_null(strstr(out, "\"mediaType\":\"" HOIST_MT_DOCKER_MANIFEST "\""));
  assert_string_equal(hoist_manifest_detect(doc, strlen(doc)), HOIST_MT_DOCKER_MANIFEST);

  /* no mediaType: taken as OCI, and emitted with it */
  static const char bare[] =
      "{\"schemaVersion\":2,\"config\":" CFG_DESC ",\"layers\":[" LAYER_DESC "]}";
  _cleanup_manifest_ hoist_manifest *b = NULL;
  assert_ok(hoist_manifest_parse(bare, strlen(bare), &b, &err), &err);
  assert_string_equal(b->media_type, HOIST_MT_OCI_MANIFEST);
  assert_string_equal(hoist_manifest_detect(bare, strlen(bare)), HOIST_MT_OCI_MANIFEST);
}

static void test_manifest_build(void **state) {
  (void)state;
  hoist_err *err = NULL;
  _cleanup_manifest_ hoist_manifest *m = hoist_manifest_new(NULL);
  char *s = NULL;
  /* no config yet: refused, not emitted half-made */
  assert_true(hoist_manifest_to_json(m, &s, NULL, &err) < 0);
  assert_err_contains(&err, "manifest: config: incomplete");
  assert_null(s);

  m->config.media_type = hoist_strdup(HOIST_MT_OCI_CONFIG);
  m->config.digest = hoist_strdup(DA);
  m->config.size = 7;
  hoist_descriptor l = {.media_type = HOIST_MT_OCI_LAYER_GZIP, .digest = DB, .size = 32};
  hoist_manifest_add_layer(m, &l);
  hoist_manifest_add_layer(m, &l);
  _cleanup_free_ char *out = manifest_round_trip(m);
  assert_string_equal(out,
                      "{\"config\":" CFG_DESC_SORTED ",\"layers\":[" LAYER_SORTED "," LAYER_SORTED
                      "],\"mediaType\":\"" HOIST_MT_OCI_MANIFEST "\",\"schemaVersion\":2}");
  char d1[HOIST_DIGEST_STR_LEN], d2[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of(out, strlen(out), d1);
  hoist_descriptor self;
  hoist_descriptor_of_bytes(&self, HOIST_MT_OCI_MANIFEST, out, strlen(out));
  assert_string_equal(self.digest, d1);
  assert_int_equal(self.size, (int64_t)strlen(out));
  assert_string_equal(self.media_type, HOIST_MT_OCI_MANIFEST);
  hoist_descriptor_clear(&self);
  _cleanup_free_ char *again = manifest_round_trip(m);
  hoist_sha256_of(again, strlen(again), d2);
  assert_string_equal(d1, d2);

  /* a layer type hoist cannot unpack is refused on the way out too */
  hoist_descriptor bad = {.media_type = "application/octet-stream", .digest = DB, .size = 1};
  hoist_manifest_add_layer(m, &bad);
  assert_true(hoist_manifest_to_json(m, &s, NULL, &err) < 0);
  assert_err_contains(&err, "refusing to emit an invalid manifest: manifest: layers[2]");
}

static void test_index_forms(void **state) {
  (void)state;
  static const char list[] =
      "{\"schemaVersion\":2,\"mediaType\":\"" HOIST_MT_DOCKER_LIST "\",\"manifests\":["
      "{\"mediaType\":\"" HOIST_MT_DOCKER_MANIFEST "\",\"digest\":\"" DA "\",\"size\":528,"
      "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
      "{\"mediaType\":\"" HOIST_MT_DOCKER_MANIFEST "\",\"digest\":\"" DB "\",\"size\":528,"
      "\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v6\"}},"
      "{\"mediaType\":\"" HOIST_MT_DOCKER_MANIFEST "\",\"digest\":\"" DC "\",\"size\":528,"
      "\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\"}},"
      "{\"mediaType\":\"" HOIST_MT_DOCKER_MANIFEST "\",\"digest\":\"" DA "\",\"size\":529,"
      "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},"
      "{\"mediaType\":\"" HOIST_MT_DOCKER_MANIFEST "\",\"digest\":\"" DB "\",\"size\":1,"
      "\"platform\":{\"architecture\":\"amd64\",\"os\":\"windows\",\"os.version\":"
      "\"10.0.17763.5329\",\"os.features\":[\"win32k\"],\"features\":[\"sse4\"]}}]}";
  hoist_err *err = NULL;
  _cleanup_index_ hoist_index *ix = NULL;
  assert_ok(hoist_index_parse(list, strlen(list), &ix, &err), &err);
  assert_string_equal(ix->media_type, HOIST_MT_DOCKER_LIST);
  assert_int_equal(ix->n_manifests, 5);
  assert_string_equal(ix->manifests[4].platform->os_version, "10.0.17763.5329");
  assert_string_equal(ix->manifests[4].platform->os_features[0], "win32k");
  assert_string_equal(ix->manifests[4].platform->features[0], "sse4");

  static const struct {
    const char *want;
    int index; /* -1: none */
  } finds[] = {
      {"linux/amd64", 0},    {"linux/x86_64", 0},  {"linux/arm/v7", 2}, {"linux/armhf", 2},
      {"linux/arm", 2},      {"linux/arm/v6", 1},  {"linux/arm64", 3},  {"linux/aarch64", 3},
      {"linux/arm64/v8", 3}, {"windows/amd64", 4}, {"linux/s390x", -1}, {"linux/arm/v5", -1},
      {"darwin/arm64", -1},
  };
  for (size_t i = 0; i < sizeof finds / sizeof finds[0]; i++) {
    _cleanup_platform_ hoist_platform *p = NULL;
    assert_ok(hoist_platform_parse(finds[i].want, &p, &err), &err);
    const hoist_descriptor *d = hoist_index_find_platform(ix, p);
    if (finds[i].index < 0) {
      if (d)
        fail_msg("%s: found %s", finds[i].want, d->digest);
    } else if (d != &ix->manifests[finds[i].index]) {
      fail_msg("%s: expected entry %d", finds[i].want, finds[i].index);
    }
  }

  char *a = NULL, *b = NULL;
  assert_ok(hoist_index_to_json(ix, &a, NULL, &err), &err);
  _cleanup_index_ hoist_index *ix2 = NULL;
  assert_ok(hoist_index_parse(a, strlen(a), &ix2, &err), &err);
  assert_ok(hoist_index_to_json(ix2, &b, NULL, &err), &err);
  assert_string_equal(a, b);
  assert_non_null(strstr(a, "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\","
                            "\"variant\":\"v8\"}"));
  free(a);
  free(b);

  /* index.json of an image layout: no mediaType, and none emitted */
  static const char layout[] =
      "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" HOIST_MT_OCI_MANIFEST
      "\",\"digest\":\"" DA "\",\"size\":400,\"annotations\":{\"org.opencontainers.image.ref."
      "name\":\"1.0\"}}]}";
  _cleanup_index_ hoist_index *lx = NULL;
  assert_ok(hoist_index_parse(layout, strlen(layout), &lx, &err), &err);
  assert_null(lx->media_type);
  assert_string_equal(
      hoist_descriptor_annotation(&lx->manifests[0], "org.opencontainers.image.ref.name"), "1.0");
  assert_ok(hoist_index_to_json(lx, &a, NULL, &err), &err);
  assert_string_equal(a, "{\"manifests\":[{\"annotations\":{\"org.opencontainers.image.ref.name\":"
                         "\"1.0\"},\"digest\":\"" DA "\",\"mediaType\":\"" HOIST_MT_OCI_MANIFEST
                         "\",\"size\":400}],\"schemaVersion\":2}");
  free(a);
  assert_string_equal(hoist_manifest_detect(layout, strlen(layout)), HOIST_MT_OCI_INDEX);
  assert_null(hoist_manifest_detect("{\"schemaVersion\":2}", 18));
  assert_null(hoist_manifest_detect("{\"mediaType\":\"text/plain\"}", 26));
  assert_null(hoist_manifest_detect("nope", 4));

  /* built from scratch, with an annotation set and an entry removed */
  _cleanup_index_ hoist_index *nx = hoist_index_new(HOIST_MT_OCI_INDEX);
  hoist_platform amd = {.os = "linux", .architecture = "amd64"};
  hoist_descriptor d = {
      .media_type = HOIST_MT_OCI_MANIFEST, .digest = DB, .size = 10, .platform = &amd};
  hoist_index_add(nx, &d);
  hoist_index_add(nx, &d);
  assert_ok(hoist_descriptor_set_annotation(&nx->manifests[0], "k", "v", &err), &err);
  assert_ok(hoist_descriptor_set_annotation(&nx->manifests[0], "gone", "x", &err), &err);
  assert_ok(hoist_descriptor_set_annotation(&nx->manifests[0], "gone", NULL, &err), &err);
  assert_true(hoist_descriptor_set_annotation(&nx->manifests[0], "bad", "\xff", &err) < 0);
  assert_err_contains(&err, "not valid UTF-8");
  hoist_index_remove(nx, 1);
  hoist_index_remove(nx, 7);
  assert_ok(hoist_index_to_json(nx, &a, NULL, &err), &err);
  assert_string_equal(a, "{\"manifests\":[{\"annotations\":{\"k\":\"v\"},\"digest\":\"" DB
                         "\",\"mediaType\":\"" HOIST_MT_OCI_MANIFEST
                         "\",\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"},"
                         "\"size\":10}],\"mediaType\":\"" HOIST_MT_OCI_INDEX
                         "\",\"schemaVersion\":2}");
  free(a);
}

static void test_platform_parse_table(void **state) {
  (void)state;
  static const struct {
    const char *in;
    const char *out;   /* normalized, NULL when refused */
    const char *error; /* substring when refused */
  } cases[] = {
      {"linux/amd64", "linux/amd64", NULL},      {"linux/x86_64", "linux/amd64", NULL},
      {"linux/x86-64", "linux/amd64", NULL},     {"Linux/AMD64", "linux/amd64", NULL},
      {"linux/amd64/v1", "linux/amd64", NULL},   {"linux/amd64/v3", "linux/amd64/v3", NULL},
      {"linux/aarch64", "linux/arm64", NULL},    {"linux/arm64/v8", "linux/arm64", NULL},
      {"linux/aarch64/v8", "linux/arm64", NULL}, {"linux/arm64/v9", "linux/arm64/v9", NULL},
      {"linux/armhf", "linux/arm/v7", NULL},     {"linux/armel", "linux/arm/v6", NULL},
      {"linux/arm", "linux/arm/v7", NULL},       {"linux/arm/6", "linux/arm/v6", NULL},
      {"linux/i386", "linux/386", NULL},         {"linux/ppc64le", "linux/ppc64le", NULL},
      {"windows/amd64", "windows/amd64", NULL},  {"", NULL, "empty platform"},
      {"linux", NULL, "missing architecture"},   {"linux/", NULL, "part 2 is empty"},
      {"/amd64", NULL, "part 1 is empty"},       {"linux/amd64/v8/x", NULL, "too many parts"},
      {"linux/am d64", NULL, "part 2"},          {"linux//v7", NULL, "part 2 is empty"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hoist_err *err = NULL;
    hoist_platform *p = NULL;
    int r = hoist_platform_parse(cases[i].in, &p, &err);
    if (cases[i].out) {
      assert_ok(r, &err);
      char *s = hoist_platform_string(p);
      if (strcmp(s, cases[i].out) != 0)
        fail_msg("%s: got %s, want %s", cases[i].in, s, cases[i].out);
      free(s);
      hoist_platform_free(p);
    } else {
      if (r >= 0)
        fail_msg("%s: accepted", cases[i].in);
      assert_null(p);
      assert_err_contains(&err, cases[i].error);
    }
  }
}

static void test_platform_match_table(void **state) {
  (void)state;
  static const struct {
    const char *want, *have_os, *have_arch, *have_variant;
    bool match;
  } cases[] = {
      {"linux/amd64", "linux", "amd64", NULL, true},
      {"linux/amd64", "linux", "amd64", "v2", true}, /* want names no variant */
      {"linux/amd64/v3", "linux", "amd64", NULL, false},
      {"linux/amd64", "linux", "x86_64", NULL, true},
      {"linux/amd64", "windows", "amd64", NULL, false},
      {"linux/amd64", "linux", "arm64", NULL, false},
      {"linux/arm64", "linux", "arm64", "v8", true},
      {"linux/arm64", "linux", "aarch64", NULL, true},
      {"linux/arm64/v8", "linux", "arm64", NULL, true},
      {"linux/arm/v7", "linux", "arm", "v7", true},
      {"linux/arm/v7", "linux", "arm", NULL, true}, /* arm without variant is v7 */
      {"linux/arm/v7", "linux", "arm", "v6", false},
      {"linux/arm/v6", "linux", "arm", "v7", false},
      {"linux/armhf", "linux", "arm", "7", true},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hoist_err *err = NULL;
    _cleanup_platform_ hoist_platform *want = NULL;
    assert_ok(hoist_platform_parse(cases[i].want, &want, &err), &err);
    hoist_platform have = {.os = (char *)cases[i].have_os,
                           .architecture = (char *)cases[i].have_arch,
                           .variant = (char *)cases[i].have_variant};
    if (hoist_platform_match(want, &have) != cases[i].match)
      fail_msg("case %zu: %s vs %s/%s/%s: expected %s", i, cases[i].want, cases[i].have_os,
               cases[i].have_arch, cases[i].have_variant ? cases[i].have_variant : "-",
               cases[i].match ? "match" : "no match");
  }
  _cleanup_platform_ hoist_platform *host = hoist_platform_host();
  assert_string_equal(host->os, "linux");
  assert_true(hoist_platform_match(host, host));
#if defined(__x86_64__)
  assert_string_equal(host->architecture, "amd64");
  assert_null(host->variant);
#elif defined(__aarch64__)
  assert_string_equal(host->architecture, "arm64");
  assert_null(host->variant);
#endif
  _cleanup_platform_ hoist_platform *dup = hoist_platform_dup(host);
  assert_true(hoist_platform_match(host, dup));
  assert_false(hoist_platform_match(NULL, host));
}

static void test_config_round_trip_and_edit(void **state) {
  (void)state;
  static const char doc[] =
      "{\"architecture\":\"arm\",\"variant\":\"v7\",\"os\":\"linux\","
      "\"created\":\"2025-01-01T00:00:00Z\",\"docker_version\":\"24.0.7\","
      "\"container_config\":{\"Hostname\":\"x\",\"Tty\":false},"
      "\"config\":{\"Env\":[\"PATH=/usr/bin\",\"LANG=C\"],\"Cmd\":[\"sh\"],\"Entrypoint\":null,"
      "\"WorkingDir\":\"/app\",\"User\":\"1000:1000\",\"Labels\":null,\"ExposedPorts\":{\"80/"
      "tcp\":{}}},"
      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" DA "\"]},"
      "\"history\":[{\"created\":\"2025-01-01T00:00:00Z\",\"created_by\":\"/bin/sh -c #(nop) ADD "
      "file\"},{\"created_by\":\"CMD [\\\"sh\\\"]\",\"empty_layer\":true}],"
      "\"ratio\":0.1}";
  hoist_err *err = NULL;
  _cleanup_config_ hoist_config *c = NULL;
  assert_ok(hoist_config_parse(doc, strlen(doc), &c, &err), &err);
  assert_string_equal(hoist_config_os(c), "linux");
  assert_string_equal(hoist_config_architecture(c), "arm");
  assert_string_equal(hoist_config_variant(c), "v7");
  _cleanup_platform_ hoist_platform *p = hoist_config_platform(c);
  _cleanup_free_ char *ps = hoist_platform_string(p);
  assert_string_equal(ps, "linux/arm/v7");
  assert_int_equal(hoist_config_n_diff_ids(c), 1);
  assert_string_equal(hoist_config_diff_id(c, 0), DA);
  assert_null(hoist_config_diff_id(c, 1));
  assert_string_equal(hoist_config_get_string(c, "User"), "1000:1000");
  assert_string_equal(hoist_config_get_string(c, "WorkingDir"), "/app");
  assert_null(hoist_config_get_string(c, "Cmd"));

  /* unknown fields survive, the bytes are stable */
  char *a = NULL, *b = NULL;
  size_t alen;
  assert_ok(hoist_config_to_json(c, &a, &alen, &err), &err);
  assert_non_null(strstr(a, "\"docker_version\":\"24.0.7\""));
  assert_non_null(strstr(a, "\"container_config\":{\"Hostname\":\"x\",\"Tty\":false}"));
  assert_non_null(strstr(a, "\"ExposedPorts\":{\"80/tcp\":{}}"));
  assert_int_equal(strncmp(a, "{\"architecture\":\"arm\",\"config\":", 31), 0);
  _cleanup_config_ hoist_config *c2 = NULL;
  assert_ok(hoist_config_parse(a, alen, &c2, &err), &err);
  assert_ok(hoist_config_to_json(c2, &b, NULL, &err), &err);
  assert_string_equal(a, b);
  free(a);
  free(b);

  /* edits */
  assert_ok(hoist_config_set_env(c, "LANG", "C.UTF-8", &err), &err);
  assert_ok(hoist_config_set_env(c, "NEW", "1", &err), &err);
  assert_true(hoist_config_set_env(c, "A=B", "1", &err) < 0);
  assert_err_contains(&err, "invalid variable name");
  assert_true(hoist_config_set_env(c, "", "1", &err) < 0);
  assert_err_contains(&err, "invalid variable name");
  assert_ok(hoist_config_set_label(c, "org.opencontainers.image.source", "git", &err), &err);
  assert_ok(hoist_config_set_label(c, "tmp", "x", &err), &err);
  assert_ok(hoist_config_set_label(c, "tmp", NULL, &err), &err);
  assert_ok(hoist_config_add_layer(c, DB, "COPY . /app", NULL, 1767323045, &err), &err);
  assert_ok(hoist_config_add_layer(c, DC, NULL, "bundle", 1767323046, &err), &err);
  assert_true(hoist_config_add_layer(c, "sha256:nothex", NULL, NULL, 0, &err) < 0);
  assert_err_contains(&err, "add layer: diff_id: invalid digest");
  assert_int_equal(hoist_config_n_diff_ids(c), 3);
  assert_string_equal(hoist_config_diff_id(c, 2), DC);

  json_t *sec = hoist_config_section(c);
  json_t *env = json_object_get(sec, "Env");
  assert_int_equal(json_array_size(env), 3);
  assert_string_equal(json_string_value(json_array_get(env, 0)), "PATH=/usr/bin");
  assert_string_equal(json_string_value(json_array_get(env, 1)), "LANG=C.UTF-8");
  assert_string_equal(json_string_value(json_array_get(env, 2)), "NEW=1");
  json_t *labels = json_object_get(sec, "Labels");
  assert_int_equal(json_object_size(labels), 1);
  assert_string_equal(json_string_value(json_object_get(labels, "org.opencontainers.image.source")),
                      "git");
  assert_string_equal(json_string_value(json_object_get(c->root, "created")),
                      "2026-01-02T03:04:06Z");
  json_t *hist = json_object_get(c->root, "history");
  assert_int_equal(json_array_size(hist), 4);
  char *h = json_dumps(json_array_get(hist, 2), JSON_COMPACT | JSON_SORT_KEYS);
  assert_string_equal(h, "{\"created\":\"2026-01-02T03:04:05Z\",\"created_by\":\"COPY . /app\"}");
  free(h);
  h = json_dumps(json_array_get(hist, 3), JSON_COMPACT | JSON_SORT_KEYS);
  assert_string_equal(h, "{\"comment\":\"bundle\",\"created\":\"2026-01-02T03:04:06Z\"}");
  free(h);

  /* the edited config is still valid and stable */
  assert_ok(hoist_config_to_json(c, &a, &alen, &err), &err);
  _cleanup_config_ hoist_config *c3 = NULL;
  assert_ok(hoist_config_parse(a, alen, &c3, &err), &err);
  assert_ok(hoist_config_to_json(c3, &b, NULL, &err), &err);
  assert_string_equal(a, b);
  free(a);
  free(b);
}

static void test_config_new(void **state) {
  (void)state;
  hoist_err *err = NULL;
  _cleanup_platform_ hoist_platform *p = NULL;
  assert_ok(hoist_platform_parse("linux/arm64", &p, &err), &err);
  _cleanup_config_ hoist_config *c = hoist_config_new(p);
  _cleanup_free_ char *s = NULL;
  assert_ok(hoist_config_to_json(c, &s, NULL, &err), &err);
  assert_string_equal(s, "{\"architecture\":\"arm64\",\"config\":{},\"os\":\"linux\","
                         "\"rootfs\":{\"diff_ids\":[],\"type\":\"layers\"}}");
  _cleanup_config_ hoist_config *c2 = NULL;
  assert_ok(hoist_config_parse(s, strlen(s), &c2, &err), &err);
  /* a config without a "config" section gets one on demand */
  static const char bare[] = CONFIG(ROOTFS);
  _cleanup_config_ hoist_config *c3 = NULL;
  assert_ok(hoist_config_parse(bare, strlen(bare), &c3, &err), &err);
  assert_null(hoist_config_get_string(c3, "User"));
  assert_true(json_is_object(hoist_config_section(c3)));
  assert_non_null(json_object_get(c3->root, "config"));
}

/* What each config option takes and refuses, and how it is normalized. */
static void test_config_edit_values(void **state) {
  (void)state;
  static const struct {
    hoist_config_field f;
    const char *text;
    const char *want; /* the normalized value or argv joined by '|', or NULL */
    const char *err;  /* a refusal: part of its text */
  } cases[] = {
      {HOIST_CONFIG_CMD, "[\"/app\", \"-v\"]", "/app|-v", NULL},
      {HOIST_CONFIG_CMD, "  [\"x\"]", "x", NULL},
      {HOIST_CONFIG_CMD, "echo $HOME", "/bin/sh|-c|echo $HOME", NULL},
      {HOIST_CONFIG_CMD, "", "", NULL},
      {HOIST_CONFIG_CMD, "[]", "", NULL},
      {HOIST_CONFIG_ENTRYPOINT, "[\"/app\"", NULL, "bad JSON"},
      {HOIST_CONFIG_ENTRYPOINT, "[1]", NULL, "JSON array of strings"},
      {HOIST_CONFIG_ENTRYPOINT, "[\"a\", null]", NULL, "JSON array of strings"},
      {HOIST_CONFIG_ENV, "A=1", "A=1", NULL},
      {HOIST_CONFIG_ENV, "A=", "A=", NULL},
      {HOIST_CONFIG_ENV, "A=b=c", "A=b=c", NULL},
      {HOIST_CONFIG_ENV, "A", NULL, "is not NAME=VALUE"},
      {HOIST_CONFIG_ENV, "=1", NULL, "is not NAME=VALUE"},
      {HOIST_CONFIG_ENV, "A=\xff", NULL, "UTF-8"},
      {HOIST_CONFIG_ENV_RM, "A", "A", NULL},
      {HOIST_CONFIG_ENV_RM, "A=1", NULL, "without '='"},
      {HOIST_CONFIG_ENV_RM, "", NULL, "empty"},
      {HOIST_CONFIG_LABEL, "org.x=1", "org.x=1", NULL},
      {HOIST_CONFIG_LABEL, "org.x", NULL, "is not KEY=VALUE"},
      {HOIST_CONFIG_LABEL_RM, "org.x", "org.x", NULL},
      {HOIST_CONFIG_ANNOTATION, "=v", NULL, "is not KEY=VALUE"},
      {HOIST_CONFIG_EXPOSE, "80", "80/tcp", NULL},
      {HOIST_CONFIG_EXPOSE, "53/UDP", "53/udp", NULL},
      {HOIST_CONFIG_EXPOSE, "9/sctp", "9/sctp", NULL},
      {HOIST_CONFIG_EXPOSE, "0", NULL, "port 1-65535"},
      {HOIST_CONFIG_EXPOSE, "65536", NULL, "port 1-65535"},
      {HOIST_CONFIG_EXPOSE, "http", NULL, "port 1-65535"},
      {HOIST_CONFIG_EXPOSE, "/tcp", NULL, "port 1-65535"},
      {HOIST_CONFIG_EXPOSE, "80/icmp", NULL, "tcp, udp or sctp"},
      {HOIST_CONFIG_VOLUME, "/data", "/data", NULL},
      {HOIST_CONFIG_VOLUME, "data", NULL, "absolute path"},
      {HOIST_CONFIG_WORKDIR, "/srv", "/srv", NULL},
      {HOIST_CONFIG_WORKDIR, "", "", NULL},
      {HOIST_CONFIG_WORKDIR, "srv", NULL, "absolute path"},
      {HOIST_CONFIG_USER, "1000:1000", "1000:1000", NULL},
      {HOIST_CONFIG_STOP_SIGNAL, "SIGTERM", "SIGTERM", NULL},
      {HOIST_CONFIG_STOP_SIGNAL, "term", "term", NULL},
      {HOIST_CONFIG_STOP_SIGNAL, "9", "9", NULL},
      {HOIST_CONFIG_STOP_SIGNAL, "SIGRTMIN+3", "SIGRTMIN+3", NULL},
      {HOIST_CONFIG_STOP_SIGNAL, "SIGFOO", NULL, "not a signal"},
      {HOIST_CONFIG_STOP_SIGNAL, "0", NULL, "not a signal"},
      {HOIST_CONFIG_STOP_SIGNAL, "99", NULL, "not a signal"},
      {HOIST_CONFIG_OS, "linux", "linux", NULL},
      {HOIST_CONFIG_OS, "", NULL, "not an operating system"},
      {HOIST_CONFIG_OS, "Linux", NULL, "not an operating system"},
      {HOIST_CONFIG_ARCHITECTURE, "aarch64", "arm64", NULL},
      {HOIST_CONFIG_ARCHITECTURE, "X86_64", "amd64", NULL},
      {HOIST_CONFIG_ARCHITECTURE, "a/b", NULL, "not an architecture"},
      {HOIST_CONFIG_VARIANT, "v7", "v7", NULL},
      {HOIST_CONFIG_VARIANT, "", "", NULL},
      {HOIST_CONFIG_AUTHOR, "me <me@example.org>", "me <me@example.org>", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    _cleanup_config_edit_ hoist_config_edit e = {0};
    hoist_err *err = NULL;
    int r = hoist_config_edit_add(&e, cases[i].f, cases[i].text, &err);
    if (cases[i].err) {
      if (r == 0)
        fail_msg("case %zu (%s): accepted", i, cases[i].text);
      assert_int_equal(e.n, 0);
      assert_err_contains(&err, cases[i].err);
      continue;
    }
    assert_ok(r, &err);
    assert_int_equal(e.n, 1);
    _cleanup_buf_ hoist_buf b = HOIST_BUF_INIT(0);
    if (e.v[0].argv)
      for (char **a = e.v[0].argv; *a; a++)
        assert_ok(hoist_buf_appendf(&b, &err, "%s%s", a == e.v[0].argv ? "" : "|", *a), &err);
    else
      assert_ok(hoist_buf_appendf(&b, &err, "%s", e.v[0].value), &err);
    assert_ok(hoist_buf_appendf(&b, &err, "%s", ""), &err);
    if (strcmp(b.data, cases[i].want) != 0)
      fail_msg("case %zu (%s): got \"%s\", want \"%s\"", i, cases[i].text, b.data, cases[i].want);
  }
}

/* Changes apply in order, to a config that has values already. */
static void test_config_edit_apply(void **state) {
  (void)state;
  static const char base[] =
      "{\"architecture\":\"amd64\",\"os\":\"linux\",\"variant\":\"v2\","
      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},"
      "\"config\":{\"Env\":[\"PATH=/bin\",\"A=1\",\"B=2\"],\"Cmd\":[\"old\"],"
      "\"Entrypoint\":[\"/ep\"],\"Labels\":{\"keep\":\"1\",\"drop\":\"2\"},\"User\":\"app\"}}";
  static const struct {
    hoist_config_field f;
    const char *text;
  } changes[] = {
      {HOIST_CONFIG_ENV, "A=one"},
      {HOIST_CONFIG_ENV_RM, "B"},
      {HOIST_CONFIG_ENV, "C=3"},
      {HOIST_CONFIG_ENV, "D=4"},
      {HOIST_CONFIG_ENV_RM, "D"},
      {HOIST_CONFIG_CMD, "echo hi"},
      {HOIST_CONFIG_ENTRYPOINT, ""},
      {HOIST_CONFIG_LABEL, "new=x=y"},
      {HOIST_CONFIG_LABEL_RM, "drop"},
      {HOIST_CONFIG_LABEL_RM, "absent"},
      {HOIST_CONFIG_USER, ""},
      {HOIST_CONFIG_WORKDIR, "/srv"},
      {HOIST_CONFIG_EXPOSE, "80"},
      {HOIST_CONFIG_EXPOSE, "80/tcp"},
      {HOIST_CONFIG_EXPOSE, "53/udp"},
      {HOIST_CONFIG_VOLUME, "/data"},
      {HOIST_CONFIG_STOP_SIGNAL, "TERM"},
      {HOIST_CONFIG_ARCHITECTURE, "aarch64"},
      {HOIST_CONFIG_VARIANT, ""},
      {HOIST_CONFIG_AUTHOR, "me"},
      {HOIST_CONFIG_ANNOTATION, "a.b=c"},
  };
  hoist_err *err = NULL;
  _cleanup_config_edit_ hoist_config_edit e = {0};
  for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++)
    assert_ok(hoist_config_edit_add(&e, changes[i].f, changes[i].text, &err), &err);
  _cleanup_config_ hoist_config *c = NULL;
  assert_ok(hoist_config_parse(base, strlen(base), &c, &err), &err);
  assert_ok(hoist_config_edit_apply(&e, c, &err), &err);
  assert_ok(hoist_config_add_history(c, "hoist config", "why", 0, &err), &err);
  _cleanup_free_ char *s = NULL;
  assert_ok(hoist_config_to_json(c, &s, NULL, &err), &err);
  assert_string_equal(
      s,
      "{\"architecture\":\"arm64\",\"author\":\"me\","
      "\"config\":{\"Cmd\":[\"/bin/sh\",\"-c\",\"echo hi\"],"
      "\"Env\":[\"PATH=/bin\",\"A=one\",\"C=3\"],"
      "\"ExposedPorts\":{\"53/udp\":{},\"80/tcp\":{}},\"Labels\":{\"keep\":\"1\",\"new\":\"x=y\"},"
      "\"StopSignal\":\"TERM\",\"Volumes\":{\"/data\":{}},\"WorkingDir\":\"/srv\"},"
      "\"created\":\"1970-01-01T00:00:00Z\","
      "\"history\":[{\"comment\":\"why\",\"created\":\"1970-01-01T00:00:00Z\","
      "\"created_by\":\"hoist config\",\"empty_layer\":true}],"
      "\"os\":\"linux\",\"rootfs\":{\"diff_ids\":[],\"type\":\"layers\"}}");
  /* what it wrote parses back */
  _cleanup_config_ hoist_config *c2 = NULL;
  assert_ok(hoist_config_parse(s, strlen(s), &c2, &err), &err);

  /* annotations are the manifest's: an OCI one takes them, a Docker one refuses */
  _cleanup_manifest_ hoist_manifest *m = hoist_manifest_new(HOIST_MT_OCI_MANIFEST);
  assert_ok(hoist_config_edit_annotate(&e, m, &err), &err);
  assert_string_equal(json_string_value(json_object_get(m->annotations, "a.b")), "c");
  _cleanup_manifest_ hoist_manifest *d = hoist_manifest_new(HOIST_MT_DOCKER_MANIFEST);
  assert_true(hoist_config_edit_annotate(&e, d, &err) < 0);
  assert_err_contains(&err, "Docker schema 2 manifest has no annotations");
  /* a new Entrypoint drops the image's Cmd, unless the edit sets Cmd too */
  _cleanup_config_edit_ hoist_config_edit ep = {0};
  assert_ok(hoist_config_edit_add(&ep, HOIST_CONFIG_ENTRYPOINT, "[\"/app\"]", &err), &err);
  _cleanup_config_ hoist_config *c3 = NULL;
  assert_ok(hoist_config_parse(base, strlen(base), &c3, &err), &err);
  assert_ok(hoist_config_edit_apply(&ep, c3, &err), &err);
  assert_null(json_object_get(hoist_config_section(c3), "Cmd"));
  assert_ok(hoist_config_edit_add(&ep, HOIST_CONFIG_CMD, "[\"-v\"]", &err), &err);
  _cleanup_config_ hoist_config *c4 = NULL;
  assert_ok(hoist_config_parse(base, strlen(base), &c4, &err), &err);
  assert_ok(hoist_config_edit_apply(&ep, c4, &err), &err);
  json_t *cmd = json_object_get(hoist_config_section(c4), "Cmd");
  assert_string_equal(json_string_value(json_array_get(cmd, 0)), "-v");
  /* an edit without annotations leaves a Docker manifest alone */
  _cleanup_config_edit_ hoist_config_edit plain = {0};
  assert_ok(hoist_config_edit_add(&plain, HOIST_CONFIG_USER, "1", &err), &err);
  assert_ok(hoist_config_edit_annotate(&plain, d, &err), &err);
  assert_null(d->annotations);
}

static void test_media_kinds(void **state) {
  (void)state;
  static const struct {
    const char *type;
    hoist_media_kind kind;
    int compression;
  } cases[] = {
      {HOIST_MT_OCI_MANIFEST, HOIST_MEDIA_MANIFEST, -1},
      {HOIST_MT_DOCKER_MANIFEST, HOIST_MEDIA_MANIFEST, -1},
      {HOIST_MT_OCI_INDEX, HOIST_MEDIA_INDEX, -1},
      {HOIST_MT_DOCKER_LIST, HOIST_MEDIA_INDEX, -1},
      {HOIST_MT_OCI_CONFIG, HOIST_MEDIA_CONFIG, -1},
      {HOIST_MT_DOCKER_CONFIG, HOIST_MEDIA_CONFIG, -1},
      {HOIST_MT_OCI_LAYER, HOIST_MEDIA_LAYER, HOIST_COMPRESS_NONE},
      {HOIST_MT_OCI_LAYER_GZIP, HOIST_MEDIA_LAYER, HOIST_COMPRESS_GZIP},
      {HOIST_MT_OCI_LAYER_ZSTD, HOIST_MEDIA_LAYER, HOIST_COMPRESS_ZSTD},
      {HOIST_MT_OCI_LAYER_ND, HOIST_MEDIA_LAYER, HOIST_COMPRESS_NONE},
      {HOIST_MT_OCI_LAYER_ND_GZIP, HOIST_MEDIA_LAYER, HOIST_COMPRESS_GZIP},
      {HOIST_MT_OCI_LAYER_ND_ZSTD, HOIST_MEDIA_LAYER, HOIST_COMPRESS_ZSTD},
      {HOIST_MT_DOCKER_LAYER_GZIP, HOIST_MEDIA_LAYER, HOIST_COMPRESS_GZIP},
      {HOIST_MT_DOCKER_FOREIGN_GZIP, HOIST_MEDIA_LAYER, HOIST_COMPRESS_GZIP},
      {"application/vnd.oci.image.layer.v1.tar+bzip2", HOIST_MEDIA_UNKNOWN, -1},
      {"", HOIST_MEDIA_UNKNOWN, -1},
      {NULL, HOIST_MEDIA_UNKNOWN, -1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    assert_int_equal(hoist_media_kind_of(cases[i].type), cases[i].kind);
    assert_int_equal(hoist_media_layer_compression(cases[i].type), cases[i].compression);
  }
}

static void test_canonical_json(void **state) {
  (void)state;
  hoist_err *err = NULL;
  json_error_t jerr;
  _cleanup_json_ json_t *j = json_loads(
      "{\"b\": 1, \"a\": [true, null, \"\\u00e9/\"], \"c\": {\"z\": 0, \"y\": 1.5}}", 0, &jerr);
  assert_non_null(j);
  _cleanup_free_ char *s = NULL;
  size_t n;
  assert_ok(hoist_json_canonical(j, &s, &n, &err), &err);
  assert_string_equal(s, "{\"a\":[true,null,\"\xc3\xa9/\"],\"b\":1,\"c\":{\"y\":1.5,\"z\":0}}");
  assert_int_equal(n, strlen(s));
  char *t = NULL;
  assert_true(hoist_json_canonical(NULL, &t, NULL, &err) < 0);
  assert_err_contains(&err, "no value");
  char tb[32];
  assert_ok(hoist_config_format_time(0, tb, &err), &err);
  assert_string_equal(tb, "1970-01-01T00:00:00Z");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_documents),
      cmocka_unit_test(test_size_cap),
      cmocka_unit_test(test_manifest_oci_round_trip),
      cmocka_unit_test(test_manifest_docker),
      cmocka_unit_test(test_manifest_build),
      cmocka_unit_test(test_index_forms),
      cmocka_unit_test(test_platform_parse_table),
      cmocka_unit_test(test_platform_match_table),
      cmocka_unit_test(test_config_round_trip_and_edit),
      cmocka_unit_test(test_config_new),
      cmocka_unit_test(test_config_edit_values),
      cmocka_unit_test(test_config_edit_apply),
      cmocka_unit_test(test_media_kinds),
      cmocka_unit_test(test_canonical_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
