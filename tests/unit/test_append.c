/* hoist_image_append through in-memory transport sources and targets: the
 * interfaces exist so a registry or a layout can stand behind them; here a
 * small table of blobs does. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>

#include "hoist/digest.h"
#include "hoist/image.h"
#include "image_util.h"
#include "test_util.h"

#define MAX_BLOBS 16

typedef struct blob {
  char digest[HOIST_DIGEST_STR_LEN];
  char *data;
  size_t len;
} blob;

typedef struct blob_table {
  blob v[MAX_BLOBS];
  size_t n;
} blob_table;

static const blob *table_find(const blob_table *t, const char *digest) {
  for (size_t i = 0; i < t->n; i++)
    if (strcmp(t->v[i].digest, digest) == 0)
      return &t->v[i];
  return NULL;
}

static const char *table_put(blob_table *t, const void *data, size_t len) {
  char d[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of(data, len, d);
  const blob *old = table_find(t, d);
  if (old)
    return old->digest;
  assert_true(t->n < MAX_BLOBS);
  blob *b = &t->v[t->n++];
  memcpy(b->digest, d, sizeof d);
  b->data = malloc(len + 1);
  memcpy(b->data, data, len);
  b->data[len] = '\0';
  b->len = len;
  return b->digest;
}

static void table_clear(blob_table *t) {
  for (size_t i = 0; i < t->n; i++)
    free(t->v[i].data);
  t->n = 0;
}

/* ---------------------------------------------------------------- source */

typedef struct mem_source {
  hoist_transport_source base;
  blob_table blobs;
  const char *manifest; /* digest of the tagged document */
  const char *corrupt;  /* a blob served with wrong bytes, or NULL */
} mem_source;

static int ms_manifest(hoist_transport_source *s, const char *digest, char **data, size_t *len,
                       char **media_type, char digest_out[HOIST_DIGEST_STR_LEN], hoist_err **err) {
  mem_source *m = (mem_source *)s;
  const blob *b = table_find(&m->blobs, digest ? digest : m->manifest);
  if (!b)
    return hoist_err_set(err, ENOENT, "no manifest");
  *data = hoist_strdup(b->data);
  *len = b->len;
  const char *mt = hoist_manifest_detect(b->data, b->len);
  *media_type = hoist_strdup(mt ? mt : HOIST_MT_OCI_MANIFEST);
  memcpy(digest_out, b->digest, HOIST_DIGEST_STR_LEN);
  return 0;
}

static int ms_blob(hoist_transport_source *s, const char *digest, size_t max, char **data,
                   size_t *len, hoist_err **err) {
  (void)max;
  const blob *b = table_find(&((mem_source *)s)->blobs, digest);
  if (!b)
    return hoist_err_set(err, ENOENT, "blob %s unknown", digest);
  *data = hoist_strdup(b->data);
  *len = b->len;
  return 0;
}

static int ms_copy_blob(hoist_transport_source *s, const hoist_descriptor *d, hoist_writer *w,
                        hoist_err **err) {
  mem_source *m = (mem_source *)s;
  const blob *b = table_find(&m->blobs, d->digest);
  if (!b)
    return hoist_err_set(err, ENOENT, "blob %s unknown", d->digest);
  if (m->corrupt && strcmp(m->corrupt, d->digest) == 0)
    return hoist_writer_write(w, "garbage", 7, err);
  return hoist_writer_write(w, b->data, b->len, err);
}

static void ms_free(hoist_transport_source *s) { (void)s; }

static const hoist_transport_source_ops mem_source_ops = {
    .manifest = ms_manifest, .blob = ms_blob, .copy_blob = ms_copy_blob, .free = ms_free};

/* ---------------------------------------------------------------- target */

typedef struct mem_target {
  hoist_transport_target base;
  blob_table blobs;
  char *manifest;
  char *manifest_type;
  size_t writers_opened;
} mem_target;

typedef struct mem_blob_writer {
  hoist_writer base;
  mem_target *t;
  hoist_buf buf;
  char *expected;
} mem_blob_writer;

static int mbw_write(hoist_writer *w, const void *d, size_t n, hoist_err **err) {
  return hoist_buf_append(&((mem_blob_writer *)w)->buf, d, n, err);
}
static int mbw_commit(hoist_writer *w, char out[HOIST_DIGEST_STR_LEN], uint64_t *size,
                      hoist_err **err) {
  mem_blob_writer *m = (mem_blob_writer *)w;
  hoist_sha256_of(m->buf.data ? m->buf.data : "", m->buf.len, out);
  if (m->expected && strcmp(m->expected, out) != 0)
    return hoist_err_set(err, HOIST_E_DIGEST, "blob %s: digest mismatch", m->expected);
  table_put(&m->t->blobs, m->buf.data ? m->buf.data : "", m->buf.len);
  if (size)
    *size = m->buf.len;
  return 0;
}
static void mbw_free(hoist_writer *w) {
  mem_blob_writer *m = (mem_blob_writer *)w;
  hoist_buf_free(&m->buf);
  free(m->expected);
  free(m);
}
static const hoist_writer_ops mem_blob_writer_ops = {mbw_write, mbw_commit, mbw_free};

static int mt_has_blob(hoist_transport_target *t, const hoist_descriptor *d, bool *has,
                       hoist_err **err) {
  (void)err;
  *has = table_find(&((mem_target *)t)->blobs, d->digest) != NULL;
  return 0;
}
static int mt_blob_writer(hoist_transport_target *t, const char *digest, int64_t size,
                          hoist_writer **out, hoist_err **err) {
  (void)size;
  (void)err;
  mem_blob_writer *m = hoist_malloc0(sizeof *m);
  m->base.ops = &mem_blob_writer_ops;
  m->t = (mem_target *)t;
  hoist_buf_init(&m->buf, 0);
  m->expected = digest ? hoist_strdup(digest) : NULL;
  ((mem_target *)t)->writers_opened++;
  *out = &m->base;
  return 0;
}
static int mt_put_manifest(hoist_transport_target *t, const char *reference, const char *data,
                           size_t len, const char *media_type, hoist_err **err) {
  (void)reference, (void)err;
  mem_target *m = (mem_target *)t;
  free(m->manifest);
  free(m->manifest_type);
  m->manifest = strndup(data, len);
  m->manifest_type = hoist_strdup(media_type);
  return 0;
}
static void mt_free(hoist_transport_target *t) { (void)t; }
static const hoist_transport_target_ops mem_target_ops = {.has_blob = mt_has_blob,
                                                          .blob_writer = mt_blob_writer,
                                                          .put_manifest = mt_put_manifest,
                                                          .free = mt_free};

/* --------------------------------------------------------------- fixture */

typedef struct fixture {
  mem_source src;
  mem_target dst;
  char *tree;
  const char *layers[2];
  const char *config;
} fixture;

/* Puts an image of the first n_layers (fake) layers into t: its config
 * (with n_diff_ids diff_ids, architecture arch) and manifest; returns the
 * manifest's digest. */
static const char *make_image(blob_table *t, const char *manifest_type, size_t n_layers,
                              size_t n_diff_ids, const char *arch, const char **config) {
  static const char *const diff_ids[] = {
      "sha256:1111111111111111111111111111111111111111111111111111111111111111",
      "sha256:2222222222222222222222222222222222222222222222222222222222222222"};
  static const char *const contents[] = {"layer-one", "layer-two"};
  bool docker = strcmp(manifest_type, HOIST_MT_DOCKER_MANIFEST) == 0;
  const char *lt = docker ? HOIST_MT_DOCKER_LAYER_GZIP : HOIST_MT_OCI_LAYER_GZIP;
  json_t *ids = json_array();
  for (size_t i = 0; i < n_diff_ids; i++)
    json_array_append_new(ids, json_string(diff_ids[i]));
  json_t *cfg =
      json_pack("{s:s, s:s, s:{s:s, s:o}, s:{s:[s]}}", "architecture", arch, "os", "linux",
                "rootfs", "type", "layers", "diff_ids", ids, "config", "Env", "PATH=/usr/bin");
  char *cj = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(cfg);
  const char *cd = table_put(t, cj, strlen(cj));
  if (config)
    *config = cd;
  json_t *layers = json_array();
  for (size_t i = 0; i < n_layers; i++)
    json_array_append_new(layers, json_pack("{s:s, s:s, s:I}", "mediaType", lt, "digest",
                                            table_put(t, contents[i], 9), "size", (json_int_t)9));
  json_t *m = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:o}", "schemaVersion", 2, "mediaType",
                        manifest_type, "config", "mediaType",
                        docker ? HOIST_MT_DOCKER_CONFIG : HOIST_MT_OCI_CONFIG, "digest", cd, "size",
                        (json_int_t)strlen(cj), "layers", layers);
  free(cj);
  char *mj = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(m);
  const char *md = table_put(t, mj, strlen(mj));
  free(mj);
  return md;
}

/* A base of two (fake) layers in a manifest of type manifest_type. */
static void fixture_init(fixture *f, const char *manifest_type, size_t n_diff_ids) {
  memset(f, 0, sizeof *f);
  f->src.base.ops = &mem_source_ops;
  f->dst.base.ops = &mem_target_ops;
  f->src.manifest = make_image(&f->src.blobs, manifest_type, 2, n_diff_ids, "amd64", &f->config);
  char d[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of("layer-one", 9, d);
  f->layers[0] = table_find(&f->src.blobs, d)->digest;
  hoist_sha256_of("layer-two", 9, d);
  f->layers[1] = table_find(&f->src.blobs, d)->digest;

  f->tree = test_mkdtemp();
  char *p = hoist_asprintf("%s/hello", f->tree);
  int fd = open(p, O_WRONLY | O_CREAT, 0644);
  assert_int_equal(write(fd, "hi\n", 3), 3);
  close(fd);
  free(p);
}

static void fixture_clear(fixture *f) {
  table_clear(&f->src.blobs);
  table_clear(&f->dst.blobs);
  free(f->dst.manifest);
  free(f->dst.manifest_type);
  char *cmd = hoist_asprintf("rm -rf '%s'", f->tree);
  assert_int_equal(system(cmd), 0);
  free(cmd);
  free(f->tree);
}

static int do_append(fixture *f, hoist_compression c, hoist_image_append_result *res,
                     hoist_err **err) {
  hoist_layer_source ls = {.kind = HOIST_LAYER_TREE, .dir = f->tree};
  hoist_image_append_options o = {.layer = HOIST_LAYER_OPTIONS_INIT};
  o.layer.compression = c;
  o.layer.source_date_epoch = 1700000000;
  o.comment = "test";
  return hoist_image_append(&f->src.base, &f->dst.base, &ls, &o, res, err);
}

/* ------------------------------------------------------------------ tests */

static void test_append_skips_blobs_target_has(void **state) {
  (void)state;
  fixture f;
  fixture_init(&f, HOIST_MT_OCI_MANIFEST, 2);
  /* the target already holds the first base layer */
  table_put(&f.dst.blobs, "layer-one", 9);
  hoist_image_append_result res;
  hoist_err *err = NULL;
  assert_ok(do_append(&f, HOIST_COMPRESS_GZIP, &res, &err), &err);
  assert_int_equal(res.blobs_skipped, 1);
  assert_int_equal(res.blobs_copied, 1);
  assert_int_equal(res.n_layers, 3);
  /* one writer for the missing base layer, the new layer and the config */
  assert_int_equal(f.dst.writers_opened, 3);
  assert_non_null(table_find(&f.dst.blobs, f.layers[1]));
  assert_non_null(table_find(&f.dst.blobs, res.layer.digest));

  /* the manifest: base layers, then the new one; digest over the bytes stored */
  assert_non_null(f.dst.manifest);
  assert_string_equal(f.dst.manifest_type, HOIST_MT_OCI_MANIFEST);
  char d[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of(f.dst.manifest, strlen(f.dst.manifest), d);
  assert_string_equal(d, res.manifest_digest);
  json_t *m = json_loads(f.dst.manifest, 0, NULL);
  json_t *layers = json_object_get(m, "layers");
  assert_int_equal(json_array_size(layers), 3);
  assert_string_equal(json_string_value(json_object_get(json_array_get(layers, 0), "digest")),
                      f.layers[0]);
  json_t *nl = json_array_get(layers, 2);
  assert_string_equal(json_string_value(json_object_get(nl, "digest")), res.layer.digest);
  assert_string_equal(json_string_value(json_object_get(nl, "mediaType")), HOIST_MT_OCI_LAYER_GZIP);
  assert_string_equal(json_string_value(json_object_get(json_object_get(m, "config"), "digest")),
                      res.config_digest);
  json_decref(m);

  /* the config: diff_ids extended, history entry, created, the rest kept */
  const blob *cb = table_find(&f.dst.blobs, res.config_digest);
  assert_non_null(cb);
  json_t *c = json_loads(cb->data, 0, NULL);
  json_t *ids = json_object_get(json_object_get(c, "rootfs"), "diff_ids");
  assert_int_equal(json_array_size(ids), 3);
  assert_string_equal(json_string_value(json_array_get(ids, 2)), res.layer.diff_id);
  json_t *hist = json_object_get(c, "history");
  json_t *last = json_array_get(hist, json_array_size(hist) - 1);
  assert_string_equal(json_string_value(json_object_get(last, "created_by")), "hoist append");
  assert_string_equal(json_string_value(json_object_get(last, "comment")), "test");
  assert_non_null(strstr(json_string_value(json_object_get(c, "created")), "2023-11-14T22:13:20"));
  assert_string_equal(
      json_string_value(json_array_get(json_object_get(json_object_get(c, "config"), "Env"), 0)),
      "PATH=/usr/bin");
  json_decref(c);

  /* a second append to the same target copies nothing */
  hoist_image_append_result res2;
  assert_ok(do_append(&f, HOIST_COMPRESS_GZIP, &res2, &err), &err);
  assert_int_equal(res2.blobs_skipped, 2);
  assert_int_equal(res2.blobs_copied, 0);
  assert_string_equal(res2.manifest_digest, res.manifest_digest);
  fixture_clear(&f);
}

static void test_append_failures(void **state) {
  (void)state;
  static const struct {
    const char *manifest_type;
    size_t n_diff_ids;
    hoist_compression c;
    bool corrupt;
    const char *error;
  } cases[] = {
      {HOIST_MT_DOCKER_MANIFEST, 2, HOIST_COMPRESS_ZSTD, false, "cannot carry a zstd layer"},
      {HOIST_MT_OCI_MANIFEST, 1, HOIST_COMPRESS_GZIP, false, "1 diff_ids for 2 layers"},
      {HOIST_MT_OCI_MANIFEST, 2, HOIST_COMPRESS_GZIP, true, "digest mismatch"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fixture f;
    fixture_init(&f, cases[i].manifest_type, cases[i].n_diff_ids);
    if (cases[i].corrupt)
      f.src.corrupt = f.layers[1];
    hoist_image_append_result res;
    hoist_err *err = NULL;
    assert_true(do_append(&f, cases[i].c, &res, &err) < 0);
    assert_err_contains(&err, cases[i].error);
    /* nothing tagged when anything failed */
    assert_null(f.dst.manifest);
    fixture_clear(&f);
  }
}

static void test_append_docker_base(void **state) {
  (void)state;
  fixture f;
  fixture_init(&f, HOIST_MT_DOCKER_MANIFEST, 2);
  hoist_image_append_result res;
  hoist_err *err = NULL;
  assert_ok(do_append(&f, HOIST_COMPRESS_GZIP, &res, &err), &err);
  assert_string_equal(f.dst.manifest_type, HOIST_MT_DOCKER_MANIFEST);
  assert_non_null(strstr(f.dst.manifest, HOIST_MT_DOCKER_LAYER_GZIP "\",\"size\""));
  assert_null(strstr(f.dst.manifest, HOIST_MT_OCI_LAYER_GZIP));
  fixture_clear(&f);
}

static void test_append_index_base(void **state) {
  (void)state;
  fixture f;
  fixture_init(&f, HOIST_MT_OCI_MANIFEST, 2);
  const char *amd64 = f.src.manifest;
  const char *arm64 = make_image(&f.src.blobs, HOIST_MT_OCI_MANIFEST, 1, 1, "arm64", NULL);
  json_t *ix = json_pack("{s:i, s:s, s:[{s:s, s:s, s:I, s:{s:s, s:s}}, {s:s, s:s, s:I, s:{s:s, "
                         "s:s}}]}",
                         "schemaVersion", 2, "mediaType", HOIST_MT_OCI_INDEX, "manifests",
                         "mediaType", HOIST_MT_OCI_MANIFEST, "digest", amd64, "size",
                         (json_int_t)table_find(&f.src.blobs, amd64)->len, "platform", "os",
                         "linux", "architecture", "amd64", "mediaType", HOIST_MT_OCI_MANIFEST,
                         "digest", arm64, "size", (json_int_t)table_find(&f.src.blobs, arm64)->len,
                         "platform", "os", "linux", "architecture", "arm64");
  char *ij = json_dumps(ix, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(ix);
  f.src.manifest = table_put(&f.src.blobs, ij, strlen(ij));
  free(ij);

  static const struct {
    const char *platform;
    size_t n_layers; /* 0: error */
  } cases[] = {{"linux/arm64", 2}, {"linux/amd64", 3}, {"linux/s390x", 0}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hoist_platform *p = NULL;
    hoist_err *err = NULL;
    assert_ok(hoist_platform_parse(cases[i].platform, &p, &err), &err);
    hoist_layer_source ls = {.kind = HOIST_LAYER_TREE, .dir = f.tree};
    hoist_image_append_options o = {.layer = HOIST_LAYER_OPTIONS_INIT, .platform = p};
    hoist_image_append_result res;
    int r = hoist_image_append(&f.src.base, &f.dst.base, &ls, &o, &res, &err);
    if (cases[i].n_layers) {
      assert_ok(r, &err);
      assert_int_equal(res.n_layers, cases[i].n_layers);
    } else {
      assert_true(r < 0);
      assert_err_contains(&err, "no manifest for linux/s390x");
    }
    hoist_platform_free(p);
  }
  fixture_clear(&f);
}

static int add_label(void *ctx, hoist_config *cfg, hoist_err **err) {
  return hoist_config_set_label(cfg, "org.example.from", ctx, err);
}

/* A prebuilt layer (a build cache entry) is copied from its own source, only
 * when the target lacks it, with its diffID in the config; edit_config runs. */
static void test_append_prebuilt_layer(void **state) {
  (void)state;
  fixture f;
  fixture_init(&f, HOIST_MT_DOCKER_MANIFEST, 2);
  mem_source cache = {.base.ops = &mem_source_ops};
  const char *ld = table_put(&cache.blobs, "cached-layer", 12);
  static const char diff_id[] =
      "sha256:3333333333333333333333333333333333333333333333333333333333333333";
  hoist_image_append_prebuilt pre = {
      .from = &cache.base,
      .desc = {.media_type = HOIST_MT_OCI_LAYER_GZIP, .digest = (char *)ld, .size = 12},
      .diff_id = diff_id,
  };
  hoist_image_append_options o = {.layer = HOIST_LAYER_OPTIONS_INIT,
                                  .prebuilt = &pre,
                                  .edit_config = add_label,
                                  .edit_ctx = "base"};
  hoist_image_append_result res;
  hoist_err *err = NULL;
  assert_ok(hoist_image_append(&f.src.base, &f.dst.base, NULL, &o, &res, &err), &err);
  assert_string_equal(res.layer.digest, ld);
  assert_string_equal(res.layer.diff_id, diff_id);
  assert_non_null(table_find(&f.dst.blobs, ld));
  /* the base's manifest kind decides the layer's media type */
  assert_non_null(strstr(f.dst.manifest, HOIST_MT_DOCKER_LAYER_GZIP));
  const blob *cb = table_find(&f.dst.blobs, res.config_digest);
  json_t *c = json_loads(cb->data, 0, NULL);
  json_t *ids = json_object_get(json_object_get(c, "rootfs"), "diff_ids");
  assert_string_equal(json_string_value(json_array_get(ids, 2)), diff_id);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(json_object_get(c, "config"), "Labels"),
                                        "org.example.from")),
      "base");
  json_decref(c);

  /* again, same created time: the target has the layer and the config, no
   * blob is written, only the manifest stored */
  o.layer.source_date_epoch = 1700000000;
  assert_ok(hoist_image_append(&f.src.base, &f.dst.base, NULL, &o, &res, &err), &err);
  size_t writers = f.dst.writers_opened;
  free(f.dst.manifest);
  f.dst.manifest = NULL;
  assert_ok(hoist_image_append(&f.src.base, &f.dst.base, NULL, &o, &res, &err), &err);
  assert_int_equal(f.dst.writers_opened, writers);
  assert_non_null(f.dst.manifest);

  /* a prebuilt descriptor that is not a layer, or lacks a diffID, is refused */
  pre.desc.media_type = HOIST_MT_OCI_CONFIG;
  assert_true(hoist_image_append(&f.src.base, &f.dst.base, NULL, &o, &res, &err) < 0);
  assert_err_contains(&err, "not a layer with a diffID");
  table_clear(&cache.blobs);
  fixture_clear(&f);
}

/* An artifact manifest naming subject, its empty config in s. */
static char *referrer_json(hoist_store *s, const hoist_descriptor *subject, const char *type,
                           const char *note) {
  char d[HOIST_DIGEST_STR_LEN];
  hoist_err *err = NULL;
  assert_ok(hoist_store_put_blob(s, "{}", 2, NULL, d, &err), &err);
  json_t *j = json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:i}, s:[], s:o, s:{s:s}}", "schemaVersion",
                        2, "mediaType", HOIST_MT_OCI_MANIFEST, "artifactType", type, "config",
                        "mediaType", HOIST_MT_OCI_EMPTY, "digest", d, "size", 2, "layers",
                        "subject", hoist_descriptor_to_json(subject), "annotations", "note", note);
  char *text = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  return text;
}

/* Referrers in a layout: the tag schema's index gathers them, once each,
 * and the filter by artifactType keeps its own. */
static void test_referrers_layout(void **state) {
  (void)state;
  char *dir = test_mkdtemp();
  hoist_err *err = NULL;
  hoist_store *s = NULL;
  assert_ok(hoist_store_open(dir, true, &s, &err), &err);
  hoist_descriptor img;
  assert_ok(test_make_image(s, "v1", "hello", &img, &err), &err);
  char *sig = referrer_json(s, &img, "application/example.sig", "one");
  char *att = referrer_json(s, &img, "application/example.att", "two");
  hoist_store_close(s);

  hoist_loc *loc = NULL;
  char *where = NULL;
  assert_true(asprintf(&where, "oci:%s:v1", dir) > 0);
  assert_ok(hoist_loc_parse(where, &loc, &err), &err);
  char d1[HOIST_DIGEST_STR_LEN], d2[HOIST_DIGEST_STR_LEN];
  hoist_index *ix = NULL;
  assert_ok(hoist_image_referrers(NULL, loc, img.digest, NULL, &ix, &err), &err);
  assert_int_equal(ix->n_manifests, 0);
  hoist_index_free(ix);
  assert_ok(hoist_image_referrer_put(NULL, loc, sig, strlen(sig), d1, &err), &err);
  assert_ok(hoist_image_referrer_put(NULL, loc, att, strlen(att), d2, &err), &err);
  assert_ok(hoist_image_referrer_put(NULL, loc, sig, strlen(sig), NULL, &err), &err);
  assert_ok(hoist_image_referrers(NULL, loc, img.digest, NULL, &ix, &err), &err);
  assert_int_equal(ix->n_manifests, 2);
  assert_string_equal(ix->manifests[0].digest, d1);
  assert_string_equal(ix->manifests[0].artifact_type, "application/example.sig");
  assert_string_equal(hoist_descriptor_annotation(&ix->manifests[0], "note"), "one");
  hoist_index_free(ix);
  assert_ok(hoist_image_referrers(NULL, loc, img.digest, "application/example.att", &ix, &err),
            &err);
  assert_int_equal(ix->n_manifests, 1);
  assert_string_equal(ix->manifests[0].digest, d2);
  hoist_index_free(ix);

  /* The referrer and the tag's index are in the layout, and the image
   * keeps its tag. */
  assert_ok(hoist_store_open(dir, false, &s, &err), &err);
  assert_true(hoist_store_has_blob(s, d1));
  hoist_descriptor cur;
  assert_ok(hoist_store_resolve(s, "v1", &cur, &err), &err);
  assert_string_equal(cur.digest, img.digest);
  hoist_descriptor_clear(&cur);
  char *tag = strdup(img.digest);
  tag[6] = '-';
  assert_ok(hoist_store_resolve(s, tag, &cur, &err), &err);
  assert_string_equal(cur.media_type, HOIST_MT_OCI_INDEX);
  hoist_descriptor_clear(&cur);
  free(tag);
  hoist_store_close(s);

  /* Not an artifact with a subject: refused, nothing written. */
  const char *plain = "{\"schemaVersion\":2,\"mediaType\":\"" HOIST_MT_OCI_MANIFEST
                      "\",\"config\":{\"mediaType\":\"" HOIST_MT_OCI_EMPTY
                      "\",\"digest\":\"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c0"
                      "60f61caaff8a\",\"size\":2},\"layers\":[]}";
  assert_int_not_equal(hoist_image_referrer_put(NULL, loc, plain, strlen(plain), NULL, &err), 0);
  assert_err_contains(&err, "not an OCI manifest with a subject");
  assert_int_not_equal(hoist_image_referrers(NULL, loc, "sha256:nothex", NULL, &ix, &err), 0);
  hoist_err_free(err);
  err = NULL;

  hoist_descriptor_clear(&img);
  hoist_loc_free(loc);
  free(where);
  free(sig);
  free(att);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_append_skips_blobs_target_has),
      cmocka_unit_test(test_append_failures),
      cmocka_unit_test(test_append_docker_base),
      cmocka_unit_test(test_append_index_base),
      cmocka_unit_test(test_append_prebuilt_layer),
      cmocka_unit_test(test_referrers_layout),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
