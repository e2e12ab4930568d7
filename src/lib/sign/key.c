/* sign keys: ECDSA P-256 keys read and written as PEM by OpenSSL, and the
 * signature of bytes made and checked with them. */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <string.h>

#include "hoist/limits.h"
#include "hoist/sign.h"

struct hoist_sign_key {
  EVP_PKEY *pkey;
  bool private_key;
};

/* Sets *err to code and the message, with OpenSSL's first queued error
 * appended (the queue, this thread's, is emptied). Returns -code. */
static int ossl_fail(hoist_err **err, int code, const char *what, const char *msg) {
  unsigned long e = ERR_peek_last_error();
  char reason[256] = "";
  if (e)
    ERR_error_string_n(e, reason, sizeof reason);
  ERR_clear_error();
  if (reason[0])
    return hoist_err_set(err, code, "%s: %s (%s)", what, msg, reason);
  return hoist_err_set(err, code, "%s: %s", what, msg);
}

static BIO *mem_bio(const char *pem, size_t len) {
  if (len > INT32_MAX)
    return NULL;
  return BIO_new_mem_buf(pem, (int)len);
}

static bool contains(const char *s, size_t len, const char *needle) {
  return memmem(s, len, needle, strlen(needle)) != NULL;
}

/* 0 when pkey is an EC key on P-256, else an error naming what it is. */
static int check_p256(EVP_PKEY *pkey, const char *what, hoist_err **err) {
  if (!EVP_PKEY_is_a(pkey, "EC"))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: a %s key, not ECDSA P-256", what,
                         EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "non-EC");
  char group[64] = "";
  size_t glen = 0;
  if (EVP_PKEY_get_group_name(pkey, group, sizeof group, &glen) != 1 ||
      OBJ_txt2nid(group) != NID_X9_62_prime256v1)
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: an EC key on curve %s, not P-256", what,
                         group[0] ? group : "(unknown)");
  return 0;
}

typedef struct pw_ctx {
  const char *password;
  bool asked;
} pw_ctx;

static int pw_cb(char *buf, int size, int rwflag, void *u) {
  (void)rwflag;
  pw_ctx *c = u;
  c->asked = true;
  if (!c->password)
    return -1;
  size_t n = strlen(c->password);
  if (n > (size_t)size)
    return -1;
  memcpy(buf, c->password, n);
  return (int)n;
}

/* *out: a key holding pkey (taken), once it is checked to be P-256. */
static int key_of(EVP_PKEY *pkey, bool private_key, const char *what, hoist_sign_key **out,
                  hoist_err **err) {
  ERR_clear_error();
  if (check_p256(pkey, what, err) < 0) {
    EVP_PKEY_free(pkey);
    return -HOIST_E_FORMAT;
  }
  hoist_sign_key *k = hoist_calloc(1, sizeof *k);
  k->pkey = pkey;
  k->private_key = private_key;
  *out = k;
  return 0;
}

int hoist_sign_key_private(const char *pem, size_t len, const char *password, const char *what,
                           hoist_sign_key **out, hoist_err **err) {
  *out = NULL;
  if (len > HOIST_SIGN_KEY_FILE_MAX)
    return hoist_err_set(err, HOIST_E_LIMIT,
                         "%s: key longer than HOIST_SIGN_KEY_FILE_MAX (%u bytes)", what,
                         HOIST_SIGN_KEY_FILE_MAX);
  if (contains(pem, len, "SIGSTORE PRIVATE KEY") || contains(pem, len, "COSIGN PRIVATE KEY"))
    return hoist_err_set(
        err, HOIST_E_FORMAT,
        "%s: cosign's encrypted key format (scrypt and secretbox) is not supported: sign with a "
        "PKCS#8 or SEC1 PEM key (hoist generate-key-pair, or openssl genpkey -algorithm EC "
        "-pkeyopt ec_paramgen_curve:P-256), which cosign also takes after cosign import-key-pair",
        what);
  bool encrypted =
      contains(pem, len, "ENCRYPTED PRIVATE KEY") || contains(pem, len, "Proc-Type: 4,ENCRYPTED");
  if (encrypted && !password)
    return hoist_err_set(err, EACCES, "%s: the key is encrypted: give its password", what);
  BIO *bio = mem_bio(pem, len);
  if (!bio)
    return ossl_fail(err, ENOMEM, what, "cannot read the key");
  pw_ctx pc = {.password = password};
  EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, pw_cb, &pc);
  BIO_free(bio);
  if (!pkey) {
    if (encrypted)
      return ossl_fail(err, EACCES, what, "cannot decrypt the key (wrong password?)");
    return ossl_fail(err, HOIST_E_FORMAT, what,
                     "not a PEM private key (PKCS#8 or SEC1 EC PRIVATE KEY)");
  }
  return key_of(pkey, true, what, out, err);
}

int hoist_sign_key_public(const char *pem, size_t len, const char *what, hoist_sign_key **out,
                          hoist_err **err) {
  *out = NULL;
  if (len > HOIST_SIGN_KEY_FILE_MAX)
    return hoist_err_set(err, HOIST_E_LIMIT,
                         "%s: key longer than HOIST_SIGN_KEY_FILE_MAX (%u bytes)", what,
                         HOIST_SIGN_KEY_FILE_MAX);
  if (!contains(pem, len, "PUBLIC KEY") && contains(pem, len, "PRIVATE KEY")) {
    hoist_sign_key *k = NULL;
    if (hoist_sign_key_private(pem, len, NULL, what, &k, err) < 0)
      return -1;
    k->private_key = false;
    *out = k;
    return 0;
  }
  BIO *bio = mem_bio(pem, len);
  if (!bio)
    return ossl_fail(err, ENOMEM, what, "cannot read the key");
  EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
  BIO_free(bio);
  if (!pkey)
    return ossl_fail(err, HOIST_E_FORMAT, what,
                     "not a PEM public key (SubjectPublicKeyInfo, as cosign.pub)");
  return key_of(pkey, false, what, out, err);
}

/* The text a memory BIO holds, as a string (caller frees). */
static char *bio_text(BIO *bio) {
  char *p = NULL;
  long n = BIO_get_mem_data(bio, &p);
  if (n < 0 || !p)
    return NULL;
  char *s = hoist_malloc0((size_t)n + 1);
  memcpy(s, p, (size_t)n);
  return s;
}

char *hoist_sign_key_public_pem(const hoist_sign_key *k) {
  BIO *bio = BIO_new(BIO_s_mem());
  if (!bio)
    return NULL;
  char *s = PEM_write_bio_PUBKEY(bio, k->pkey) == 1 ? bio_text(bio) : NULL;
  BIO_free(bio);
  ERR_clear_error();
  return s;
}

int hoist_sign_key_generate(const char *password, char **priv, char **pub, hoist_err **err) {
  *priv = *pub = NULL;
  EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  if (!pkey)
    return ossl_fail(err, EIO, "generate key", "P-256 key generation failed");
  hoist_sign_key k = {.pkey = pkey, .private_key = true};
  BIO *bio = BIO_new(BIO_s_mem());
  bool enc = password && password[0];
  int ok = bio && PEM_write_bio_PKCS8PrivateKey(bio, pkey, enc ? EVP_aes_256_cbc() : NULL, NULL, 0,
                                                NULL, enc ? (void *)password : NULL) == 1;
  if (ok)
    *priv = bio_text(bio);
  BIO_free(bio);
  if (ok && *priv)
    *pub = hoist_sign_key_public_pem(&k);
  EVP_PKEY_free(pkey);
  if (!*priv || !*pub) {
    free(*priv);
    free(*pub);
    *priv = *pub = NULL;
    return ossl_fail(err, EIO, "generate key", "cannot write the key as PEM");
  }
  return 0;
}

void hoist_sign_key_free(hoist_sign_key *k) {
  if (!k)
    return;
  EVP_PKEY_free(k->pkey);
  free(k);
}

int hoist_sign_bytes(const hoist_sign_key *k, const void *data, size_t len, char **sig,
                     hoist_err **err) {
  *sig = NULL;
  if (!k->private_key)
    return hoist_err_set(err, EINVAL, "sign: a public key cannot sign");
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned char der[256];
  size_t der_len = sizeof der;
  int ok = ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
           EVP_DigestSign(ctx, der, &der_len, data, len) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok)
    return ossl_fail(err, EIO, "sign", "ECDSA signing failed");
  *sig = hoist_base64_encode(der, der_len);
  return 0;
}

int hoist_sign_verify_bytes(const hoist_sign_key *k, const void *data, size_t len, const char *sig,
                            hoist_err **err) {
  size_t slen = strlen(sig);
  if (slen > HOIST_SIGN_SIGNATURE_MAX)
    return hoist_err_set(err, HOIST_E_LIMIT,
                         "signature longer than HOIST_SIGN_SIGNATURE_MAX (%u characters)",
                         HOIST_SIGN_SIGNATURE_MAX);
  _cleanup_free_ unsigned char *der = NULL;
  size_t der_len = 0;
  if (hoist_base64_decode(sig, slen, HOIST_SIGN_SIGNATURE_MAX, 0, &der, &der_len, err) < 0)
    return hoist_err_wrap(err, "signature is not base64");
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int r = ctx ? EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) : 0;
  if (r == 1)
    r = EVP_DigestVerify(ctx, der, der_len, data, len);
  EVP_MD_CTX_free(ctx);
  ERR_clear_error();
  if (r != 1)
    return hoist_err_set(err, HOIST_E_DIGEST, "signature does not verify with this key");
  return 0;
}
