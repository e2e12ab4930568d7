/* sign (sign.h): keys, payloads and signature manifests, good and bad, as
 * tables; a layout image signed and verified, and each kind of tampering
 * refused with its message. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "hoist/fs.h"
#include "hoist/limits.h"
#include "hoist/sign.h"
#include "image_util.h"
#include "test_util.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DIGEST "sha256:" HEX64
#define SIG_T "cosign container image signature"

static void keys(hoist_sign_key **priv, hoist_sign_key **pub) {
  char *p = NULL, *q = NULL;
  hoist_err *err = NULL;
  assert_ok(hoist_sign_key_generate(NULL, &p, &q, &err), &err);
  assert_ok(hoist_sign_key_private(p, strlen(p), NULL, "k", priv, &err), &err);
  assert_ok(hoist_sign_key_public(q, strlen(q), "k.pub", pub, &err), &err);
  free(p);
  free(q);
}

static void test_sign_payload(void **state) {
  (void)state;
  hoist_err *err = NULL;
  char *out = NULL;
  size_t len = 0;
  assert_ok(hoist_sign_payload_make("r.example/app", DIGEST, NULL, &out, &len, &err), &err);
  /* byte for byte what cosign writes */
  assert_string_equal(out, "{\"critical\":{\"identity\":{\"docker-reference\":\"r.example/app\"},"
                           "\"image\":{\"docker-manifest-digest\":\"" DIGEST "\"},"
                           "\"type\":\"" SIG_T "\"},\"optional\":null}");
  hoist_sign_payload p = {0};
  assert_ok(hoist_sign_payload_parse(out, len, &p, &err), &err);
  assert_string_equal(p.digest, DIGEST);
  assert_string_equal(p.docker_reference, "r.example/app");
  assert_null(p.optional);
  hoist_sign_payload_clear(&p);
  free(out);

  static const struct {
    const char *text;
    const char *msg;
  } bad[] = {
      {"", "malformed payload"},
      {"[]", "not a JSON object"},
      {"{}", "no \"critical\" object"},
      {"{\"critical\":1}", "no \"critical\" object"},
      {"{\"critical\":{}}", "no critical.type"},
      {"{\"critical\":{\"type\":\"x\"}}", "critical.type is not"},
      {"{\"critical\":{\"type\":\"" SIG_T "\"}}", "no critical.image.docker-manifest-digest"},
      {"{\"critical\":{\"type\":\"" SIG_T "\",\"image\":{\"docker-manifest-digest\":\"md5:x\"}}}",
       "is not a sha256 digest"},
      {"{\"critical\":{\"type\":\"" SIG_T "\",\"image\":{\"docker-manifest-digest\":\"" DIGEST
       "\"}}}",
       "no critical.identity.docker-reference"},
      {"{\"critical\":{\"type\":\"" SIG_T "\",\"image\":{\"docker-manifest-digest\":\"" DIGEST
       "\"},\"identity\":{\"docker-reference\":\"a\"}},\"optional\":[]}",
       "neither null nor an object"},
      {"{\"critical\":{\"type\":\"" SIG_T "\",\"type\":\"" SIG_T "\"}}", "duplicate"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (hoist_sign_payload_parse(bad[i].text, strlen(bad[i].text), &p, &err) == 0)
      fail_msg("case %zu parsed: %s", i, bad[i].text);
    assert_err_contains(&err, bad[i].msg);
  }
  /* the cap is named */
  size_t big = HOIST_SIGN_PAYLOAD_MAX + 1;
  char *huge = hoist_malloc0(big);
  memset(huge, ' ', big);
  assert_int_equal(hoist_sign_payload_parse(huge, big, &p, &err), -HOIST_E_LIMIT);
  assert_err_contains(&err, "HOIST_SIGN_PAYLOAD_MAX");
  free(huge);
}

#define LAYER(mt, size, ann)                                                                       \
  "{\"mediaType\":\"" mt "\",\"digest\":\"" DIGEST "\",\"size\":" size ann "}"
#define MANIFEST(layers)                                                                           \
  "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","             \
  "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" DIGEST    \
  "\",\"size\":2},\"layers\":[" layers "]}"
#define SIGANN ",\"annotations\":{\"" HOIST_SIGN_ANNOTATION "\":\"MEUCIQ==\"}"

static void test_sign_manifest(void **state) {
  (void)state;
  hoist_err *err = NULL;
  hoist_sign_entry *e = NULL;
  size_t n = 0;
  const char good[] = MANIFEST(
      LAYER(HOIST_SIGN_PAYLOAD_MT, "10", SIGANN) "," LAYER(HOIST_SIGN_PAYLOAD_MT, "20", SIGANN));
  assert_ok(hoist_sign_manifest_parse(good, strlen(good), &e, &n, &err), &err);
  assert_int_equal(n, 2);
  assert_string_equal(e[1].signature, "MEUCIQ==");
  assert_int_equal(e[1].layer.size, 20);
  hoist_sign_entries_free(e, n);

  static const struct {
    const char *text;
    const char *msg;
  } bad[] = {
      {"{", "malformed signature manifest"},
      {MANIFEST(""), "no layers"},
      {MANIFEST(LAYER("application/vnd.oci.image.layer.v1.tar", "10", SIGANN)),
       "layer 0 is a application/vnd.oci.image.layer.v1.tar, not a payload"},
      {MANIFEST(LAYER(HOIST_SIGN_PAYLOAD_MT, "10", "")),
       "layer 0 has no " HOIST_SIGN_ANNOTATION " annotation"},
      {MANIFEST(LAYER(HOIST_SIGN_PAYLOAD_MT, "10", SIGANN) "," LAYER(HOIST_SIGN_PAYLOAD_MT,
                                                                     "999999", SIGANN)),
       "layer 1 is 999999 bytes, more than HOIST_SIGN_PAYLOAD_MAX"},
      {"{\"schemaVersion\":2,\"mediaType\":\"application/"
       "vnd.docker.distribution.manifest.v2+json\","
       "\"config\":{\"mediaType\":\"application/"
       "vnd.docker.container.image.v1+json\",\"digest\":\"" DIGEST
       "\",\"size\":2},\"layers\":[" LAYER(HOIST_SIGN_PAYLOAD_MT, "10", SIGANN) "]}",
       "not an OCI manifest"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (hoist_sign_manifest_parse(bad[i].text, strlen(bad[i].text), &e, &n, &err) == 0)
      fail_msg("case %zu parsed: %s", i, bad[i].text);
    assert_err_contains(&err, bad[i].msg);
  }
  /* more layers than the cap */
  hoist_buf b;
  hoist_buf_init(&b, 0);
  assert_ok(hoist_buf_appendf(&b, &err, "%s", MANIFEST("")), &err);
  b.len -= 2; /* "]}" */
  for (unsigned i = 0; i <= HOIST_SIGN_LAYERS_MAX; i++)
    assert_ok(hoist_buf_appendf(&b, &err, "%s%s", i ? "," : "",
                                LAYER(HOIST_SIGN_PAYLOAD_MT, "10", SIGANN)),
              &err);
  assert_ok(hoist_buf_appendf(&b, &err, "]}"), &err);
  assert_int_equal(hoist_sign_manifest_parse((char *)b.data, b.len, &e, &n, &err), -HOIST_E_LIMIT);
  assert_err_contains(&err, "HOIST_SIGN_LAYERS_MAX");
  hoist_buf_free(&b);
}

static void test_sign_keys(void **state) {
  (void)state;
  hoist_err *err = NULL;
  _cleanup_sign_key_ hoist_sign_key *priv = NULL;
  _cleanup_sign_key_ hoist_sign_key *pub = NULL;
  keys(&priv, &pub);
  char *sig = NULL;
  assert_ok(hoist_sign_bytes(priv, "data", 4, &sig, &err), &err);
  assert_ok(hoist_sign_verify_bytes(pub, "data", 4, sig, &err), &err);
  assert_int_equal(hoist_sign_verify_bytes(pub, "datA", 4, sig, &err), -HOIST_E_DIGEST);
  assert_err_contains(&err, "does not verify with this key");
  sig[5] = sig[5] == 'A' ? 'B' : 'A';
  assert_int_equal(hoist_sign_verify_bytes(pub, "data", 4, sig, &err), -HOIST_E_DIGEST);
  hoist_err_free(steal_pointer(&err));
  assert_true(hoist_sign_verify_bytes(pub, "data", 4, "not base64!", &err) < 0);
  assert_err_contains(&err, "not base64");
  /* a public key cannot sign */
  free(sig);
  assert_true(hoist_sign_bytes(pub, "data", 4, &sig, &err) < 0);
  assert_err_contains(&err, "public key cannot sign");
  /* an encrypted key needs its password */
  char *p = NULL, *q = NULL;
  assert_ok(hoist_sign_key_generate("pw", &p, &q, &err), &err);
  assert_non_null(strstr(p, "ENCRYPTED PRIVATE KEY"));
  hoist_sign_key *k = NULL;
  assert_true(hoist_sign_key_private(p, strlen(p), NULL, "enc.key", &k, &err) < 0);
  assert_err_contains(&err, "enc.key: the key is encrypted: give its password");
  assert_true(hoist_sign_key_private(p, strlen(p), "nope", "enc.key", &k, &err) < 0);
  assert_err_contains(&err, "wrong password");
  assert_ok(hoist_sign_key_private(p, strlen(p), "pw", "enc.key", &k, &err), &err);
  hoist_sign_key_free(k);
  free(p);
  free(q);

  static const struct {
    const char *pem;
    const char *msg;
  } bad[] = {
      {"", "not a PEM private key"},
      {"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE "
       "PRIVATE KEY-----\n",
       "cosign's encrypted key format"},
      {"-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED COSIGN "
       "PRIVATE KEY-----\n",
       "import-key-pair"},
      {"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not a PEM private key"},
      /* an Ed25519 key */
      {"-----BEGIN PRIVATE "
       "KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n"
       "-----END PRIVATE KEY-----\n",
       "not ECDSA P-256"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (hoist_sign_key_private(bad[i].pem, strlen(bad[i].pem), NULL, "k", &k, &err) == 0)
      fail_msg("case %zu loaded", i);
    assert_err_contains(&err, bad[i].msg);
  }
  assert_true(hoist_sign_key_public("junk", 4, "p.pub", &k, &err) < 0);
  assert_err_contains(&err, "not a PEM public key");
}

/* The bytes of the blob digest in the layout dir. */
static char *blob_path(const char *dir, const char *digest) {
  return hoist_asprintf("%s/blobs/sha256/%s", dir, digest + 7);
}

static void make_layout_image(const char *dir, const char *tag, const char *content) {
  hoist_err *err = NULL;
  hoist_store *s = NULL;
  hoist_descriptor d = {0};
  assert_ok(hoist_store_open(dir, true, &s, &err), &err);
  assert_ok(test_make_image(s, tag, content, &d, &err), &err);
  hoist_descriptor_clear(&d);
  hoist_store_close(s);
}

static void test_sign_layout_image(void **state) {
  (void)state;
  hoist_err *err = NULL;
  char *dir = test_mkdtemp();
  char *lay = hoist_asprintf("%s/lay", dir);
  make_layout_image(lay, "a", "aaa");
  make_layout_image(lay, "b", "bbb");
  _cleanup_sign_key_ hoist_sign_key *priv = NULL;
  _cleanup_sign_key_ hoist_sign_key *pub = NULL;
  _cleanup_sign_key_ hoist_sign_key *priv2 = NULL;
  _cleanup_sign_key_ hoist_sign_key *pub2 = NULL;
  keys(&priv, &pub);
  keys(&priv2, &pub2);
  hoist_loc a = {.kind = HOIST_LOC_LAYOUT, .dir = lay, .tag = "a", .index = -1};
  hoist_loc b = {.kind = HOIST_LOC_LAYOUT, .dir = lay, .tag = "b", .index = -1};
  hoist_sign_verified v;
  /* nothing signed yet */
  assert_true(hoist_sign_verify_image(NULL, &a, pub, &v, &err) < 0);
  assert_err_contains(&err, "no signature found");
  hoist_sign_result res;
  assert_ok(hoist_sign_image(NULL, &a, priv, NULL, &res, &err), &err);
  assert_int_equal(res.signatures, 1);
  char sig_manifest[HOIST_DIGEST_STR_LEN];
  memcpy(sig_manifest, res.manifest, sizeof sig_manifest);
  hoist_sign_result_clear(&res);
  assert_ok(hoist_sign_verify_image(NULL, &a, pub, &v, &err), &err);
  assert_string_equal(v.docker_reference, lay);
  hoist_sign_verified_clear(&v);
  /* the wrong key */
  assert_true(hoist_sign_verify_image(NULL, &a, pub2, &v, &err) < 0);
  assert_err_contains(&err, "signature does not verify with this key (1 signature checked)");
  /* a's signatures under b's tag: another image's digest */
  char *sig_a = NULL;
  char digest_b[HOIST_DIGEST_STR_LEN];
  {
    hoist_transport_source *s = NULL;
    char *data = NULL, *mt = NULL;
    size_t len = 0;
    assert_ok(hoist_transport_layout_source(lay, "b", &s, &err), &err);
    assert_ok(s->ops->manifest(s, NULL, &data, &len, &mt, digest_b, &err), &err);
    free(data);
    free(mt);
    hoist_transport_source_free(s);
    hoist_transport_target *t = NULL;
    char *tag = hoist_asprintf("sha256-%s.sig", digest_b + 7);
    assert_ok(hoist_transport_layout_target(lay, tag, &t, &err), &err);
    assert_ok(hoist_fs_read_file(AT_FDCWD, sig_a = blob_path(lay, sig_manifest), 1 << 20, &data,
                                 &len, &err),
              &err);
    assert_ok(t->ops->put_manifest(t, NULL, data, len, HOIST_MT_OCI_MANIFEST, &err), &err);
    hoist_transport_target_free(t);
    free(tag);
    free(data);
  }
  assert_true(hoist_sign_verify_image(NULL, &b, pub, &v, &err) < 0);
  assert_err_contains(&err, "another image's digest");
  /* b signed as a referrer, with an annotation, then a payload byte changed */
  json_t *ann = json_pack("{s:s}", "team", "qa");
  hoist_sign_opts o = {.attach = HOIST_SIGN_ATTACH_REFERRER, .annotations = ann};
  assert_ok(hoist_sign_image(NULL, &b, priv, &o, &res, &err), &err);
  assert_ok(hoist_sign_verify_image(NULL, &b, pub, &v, &err), &err);
  assert_string_equal(json_string_value(json_object_get(v.optional, "team")), "qa");
  assert_non_null(strstr(v.where, "referrer "));
  hoist_sign_verified_clear(&v);
  char *data = NULL;
  size_t len = 0;
  char *rpath = blob_path(lay, res.manifest);
  assert_ok(hoist_fs_read_file(AT_FDCWD, rpath, 1 << 20, &data, &len, &err), &err);
  json_t *rm = json_loads(data, 0, NULL);
  const char *payload_digest = json_string_value(
      json_object_get(json_array_get(json_object_get(rm, "layers"), 0), "digest"));
  char *ppath = blob_path(lay, payload_digest);
  free(data);
  assert_ok(hoist_fs_read_file(AT_FDCWD, ppath, 1 << 20, &data, &len, &err), &err);
  data[len - 2] = data[len - 2] == 'l' ? 'L' : 'l';
  assert_int_equal(chmod(ppath, 0644), 0);
  int fd = open(ppath, O_WRONLY | O_TRUNC | O_CLOEXEC);
  assert_true(fd >= 0);
  assert_ok(hoist_fs_write_all(fd, data, len, &err), &err);
  close(fd);
  assert_true(hoist_sign_verify_image(NULL, &b, pub, &v, &err) < 0);
  assert_err_contains(&err, "sha256");
  hoist_sign_result_clear(&res);
  json_decref(rm);
  json_decref(ann);
  free(data);
  free(rpath);
  free(ppath);
  free(sig_a);
  free(lay);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sign_payload),
      cmocka_unit_test(test_sign_manifest),
      cmocka_unit_test(test_sign_keys),
      cmocka_unit_test(test_sign_layout_image),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
