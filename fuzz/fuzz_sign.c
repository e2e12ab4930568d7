/* libFuzzer target: the signature formats read from registries and layouts
 * (sign.h): the simple-signing payload, the signature manifest, and a
 * signature checked against a fixed key. An accepted payload, made again
 * from what was parsed, must parse to the same reference and digest. */
#include <string.h>

#include "hoist/sign.h"

static const char pub_pem[] = "-----BEGIN PUBLIC KEY-----\n"
                              "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEidu4fvB3lHAqT7lSgvb+I3dn4zx9\n"
                              "boTinfsrU3KMy2rlp3s4OQV/RerCxHqxyqGTKc2iPn28P2AKLD+4iJvvNQ==\n"
                              "-----END PUBLIC KEY-----\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static hoist_sign_key *key;
  if (!key && hoist_sign_key_public(pub_pem, sizeof pub_pem - 1, "fuzz", &key, NULL) < 0)
    __builtin_trap();
  hoist_err *err = NULL;
  hoist_sign_payload p = {0}, q = {0};
  if (hoist_sign_payload_parse((const char *)data, size, &p, &err) == 0) {
    char *again = NULL;
    size_t len = 0;
    if (hoist_sign_payload_make(p.docker_reference, p.digest, p.optional, &again, &len, NULL) ==
        0) {
      if (hoist_sign_payload_parse(again, len, &q, NULL) < 0 || strcmp(q.digest, p.digest) != 0 ||
          strcmp(q.docker_reference, p.docker_reference) != 0)
        __builtin_trap();
      hoist_sign_payload_clear(&q);
      free(again);
    }
    hoist_sign_payload_clear(&p);
  }
  hoist_err_free(err);
  err = NULL;
  hoist_sign_entry *e = NULL;
  size_t n = 0;
  if (hoist_sign_manifest_parse((const char *)data, size, &e, &n, &err) == 0) {
    for (size_t i = 0; i < n; i++)
      if (!e[i].signature || !e[i].layer.digest)
        __builtin_trap();
    hoist_sign_entries_free(e, n);
  }
  hoist_err_free(err);
  err = NULL;
  char *text = malloc(size + 1);
  if (text) {
    memcpy(text, data, size);
    text[size] = '\0';
    if (hoist_sign_verify_bytes(key, "payload", 7, text, &err) == 0)
      __builtin_trap(); /* no one holds the private key */
    free(text);
  }
  hoist_err_free(err);
  return 0;
}
