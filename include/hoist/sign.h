/*
 * sign: key-based image signatures in cosign's formats, so cosign and the
 * other sigstore tools verify what hoist signs and hoist verifies what they
 * sign.
 *
 * - The payload (HOIST_SIGN_PAYLOAD_MT) is cosign's "simple signing" JSON:
 *   {"critical":{"identity":{"docker-reference":REPO},
 *   "image":{"docker-manifest-digest":DIGEST},"type":"cosign container image
 *   signature"},"optional":ANNOTATIONS-or-null}, written compact with sorted
 *   keys, as cosign writes it.
 * - The signature is ECDSA P-256 over the SHA-256 of the payload's bytes,
 *   ASN.1 DER, base64, in the payload layer's annotation
 *   HOIST_SIGN_ANNOTATION.
 * - Keys are PEM, read and written by OpenSSL: a private key as PKCS#8
 *   (encrypted with a password or not) or SEC1 ("EC PRIVATE KEY"), a public
 *   key as SubjectPublicKeyInfo (cosign.pub). cosign's own encrypted
 *   private key format (scrypt and NaCl secretbox) is refused with a message
 *   saying what to do instead.
 * - Storage: by default the tag sha256-<hex>.sig in the image's repository
 *   (or layout): an OCI manifest whose config is a small image config and
 *   whose layers are the payloads, one per signature; signing again adds a
 *   layer. As an alternative an OCI 1.1 referrer of the image (artifactType
 *   HOIST_SIGN_ARTIFACT_TYPE, the empty config, the payload layer, subject
 *   the image), stored with hoist_image_referrer_put.
 *
 * Keyless signing (Fulcio certificates, Rekor transparency log entries) is
 * not done: a signature carries no certificate and no log entry, and
 * verification trusts the key it is given alone.
 *
 * Everything read from a registry or a layout (the signature manifest, the
 * payload, the signature) is untrusted and bounded (HOIST_SIGN_* in
 * limits.h). Nothing is printed.
 */
#ifndef HOIST_SIGN_H
#define HOIST_SIGN_H

#include <jansson.h>

#include "hoist/core.h"
#include "hoist/image.h"

#define HOIST_SIGN_PAYLOAD_MT "application/vnd.dev.cosign.simplesigning.v1+json"
#define HOIST_SIGN_ANNOTATION "dev.cosignproject.cosign/signature"
#define HOIST_SIGN_ARTIFACT_TYPE "application/vnd.dev.cosign.artifact.sig.v1+json"
#define HOIST_SIGN_PAYLOAD_TYPE "cosign container image signature"

/* ------------------------------------------------------------------ keys */

typedef struct hoist_sign_key hoist_sign_key;

/* An ECDSA P-256 private key from PEM text (PKCS#8, encrypted PKCS#8 with
 * password, or SEC1). An encrypted key without a password, a wrong
 * password, another curve or algorithm, and cosign's own encrypted format
 * are refused, each saying so. what names the key in errors (its file). */
HOIST_EXPORT int hoist_sign_key_private(const char *pem, size_t len, const char *password,
                                        const char *what, hoist_sign_key **out,
                                        hoist_err **err) HOIST_WUR;
/* An ECDSA P-256 public key from PEM text (SubjectPublicKeyInfo, as
 * cosign.pub); a private key's PEM is accepted too (its public half). */
HOIST_EXPORT int hoist_sign_key_public(const char *pem, size_t len, const char *what,
                                       hoist_sign_key **out, hoist_err **err) HOIST_WUR;
/* A new P-256 key pair: *priv (PKCS#8 PEM, encrypted with AES-256-CBC when
 * password is non-empty) and *pub (SubjectPublicKeyInfo PEM). Caller frees
 * both. */
HOIST_EXPORT int hoist_sign_key_generate(const char *password, char **priv, char **pub,
                                         hoist_err **err) HOIST_WUR;
/* The public key's PEM (caller frees), NULL on failure to write it. */
HOIST_EXPORT char *hoist_sign_key_public_pem(const hoist_sign_key *k);
HOIST_EXPORT void hoist_sign_key_free(hoist_sign_key *k);
static inline void hoist_sign_key_freep(hoist_sign_key **k) { hoist_sign_key_free(*k); }
#define _cleanup_sign_key_ __attribute__((cleanup(hoist_sign_key_freep)))

/* The base64 of the DER ECDSA signature of data's SHA-256, made with the
 * private key k. Caller frees *sig. */
HOIST_EXPORT int hoist_sign_bytes(const hoist_sign_key *k, const void *data, size_t len, char **sig,
                                  hoist_err **err) HOIST_WUR;
/* 0 when sig (base64 of a DER ECDSA signature, untrusted) signs data with
 * k; HOIST_E_DIGEST when it does not, HOIST_E_FORMAT when sig is not
 * base64 or too long. */
HOIST_EXPORT int hoist_sign_verify_bytes(const hoist_sign_key *k, const void *data, size_t len,
                                         const char *sig, hoist_err **err) HOIST_WUR;

/* --------------------------------------------------------------- formats */

/* The payload signing digest as the image repository names it; annotations
 * (an object of strings, or NULL) go into "optional". Caller frees *out. */
HOIST_EXPORT int hoist_sign_payload_make(const char *docker_reference, const char *digest,
                                         const json_t *annotations, char **out, size_t *len,
                                         hoist_err **err) HOIST_WUR;

typedef struct hoist_sign_payload {
  char *docker_reference; /* critical.identity.docker-reference */
  char *digest;           /* critical.image.docker-manifest-digest, a valid digest */
  json_t *optional;       /* an object, or NULL for null or absent */
} hoist_sign_payload;

/* Parses an untrusted payload (at most HOIST_SIGN_PAYLOAD_MAX bytes): a
 * JSON object whose critical.type is HOIST_SIGN_PAYLOAD_TYPE, with the
 * reference and digest; "optional" null, absent or an object. Errors
 * (HOIST_E_FORMAT, HOIST_E_LIMIT) name what is wrong. */
HOIST_EXPORT int hoist_sign_payload_parse(const char *data, size_t len, hoist_sign_payload *out,
                                          hoist_err **err) HOIST_WUR;
HOIST_EXPORT void hoist_sign_payload_clear(hoist_sign_payload *p);

/* One signature of a signature manifest: the payload layer and its
 * signature annotation. */
typedef struct hoist_sign_entry {
  hoist_descriptor layer;
  char *signature; /* base64, at most HOIST_SIGN_SIGNATURE_MAX characters */
} hoist_sign_entry;

/* Parses an untrusted signature manifest (the .sig tag's or a referrer; at
 * most HOIST_MANIFEST_MAX bytes, HOIST_SIGN_LAYERS_MAX layers): an OCI
 * manifest whose layers are payloads (HOIST_SIGN_PAYLOAD_MT) of at most
 * HOIST_SIGN_PAYLOAD_MAX bytes, each with its signature annotation. *out
 * (caller frees with hoist_sign_entries_free) holds *n entries. */
HOIST_EXPORT int hoist_sign_manifest_parse(const char *data, size_t len, hoist_sign_entry **out,
                                           size_t *n, hoist_err **err) HOIST_WUR;
HOIST_EXPORT void hoist_sign_entries_free(hoist_sign_entry *e, size_t n);

/* ---------------------------------------------------------------- images */

typedef enum {
  HOIST_SIGN_ATTACH_TAG = 0,  /* the sha256-<hex>.sig tag */
  HOIST_SIGN_ATTACH_REFERRER, /* an OCI 1.1 referrer */
} hoist_sign_attach;

typedef struct hoist_sign_opts {
  hoist_sign_attach attach;
  const json_t *annotations; /* the payload's "optional", or NULL */
  /* For an index: its images are signed too, each by its own digest. */
  bool recursive;
} hoist_sign_opts;

typedef struct hoist_sign_result {
  char digest[HOIST_DIGEST_STR_LEN];   /* of the image signed (an index: the index) */
  char *docker_reference;              /* what the payload names; caller frees */
  char *stored;                        /* where the signature went (a location); caller frees */
  char manifest[HOIST_DIGEST_STR_LEN]; /* of the signature manifest written */
  size_t signatures;                   /* layers of that manifest */
  size_t images;                       /* images signed (more than 1 with recursive) */
} hoist_sign_result;

/* Signs the image loc names (a registry reference or a layout location
 * with a tag; by tag or digest), its manifest or index digest as the
 * location resolves it, with the private key k, and stores the signature
 * as opts says (opts may be NULL: the tag, no annotations). Signing an
 * image again adds a signature; the same payload and signature are not
 * stored twice. */
HOIST_EXPORT int hoist_sign_image(const hoist_transport_opts *t, const hoist_loc *loc,
                                  const hoist_sign_key *k, const hoist_sign_opts *opts,
                                  hoist_sign_result *res, hoist_err **err) HOIST_WUR;
HOIST_EXPORT void hoist_sign_result_clear(hoist_sign_result *res);

/* What a verification found: the signature that verified. */
typedef struct hoist_sign_verified {
  char digest[HOIST_DIGEST_STR_LEN]; /* the image's, which the payload signs */
  char *docker_reference;            /* the payload's */
  char *where;                       /* "tag LOCATION" or "referrer DIGEST" */
  json_t *optional;                  /* the payload's annotations, or NULL */
  size_t checked;                    /* signatures looked at */
} hoist_sign_verified;

/* Verifies the image loc names with the public key k: the signatures
 * stored for its digest, in the .sig tag and among its referrers, each
 * payload read checked against its layer's digest and size, its signature
 * against k, and its docker-manifest-digest against the image's. Succeeds
 * at the first that holds. Fails with HOIST_E_DIGEST and a message naming
 * the cause otherwise: no signature found, none verifies with this key, the
 * one that verifies signs another image's digest, a malformed payload or
 * signature manifest. */
HOIST_EXPORT int hoist_sign_verify_image(const hoist_transport_opts *t, const hoist_loc *loc,
                                         const hoist_sign_key *k, hoist_sign_verified *res,
                                         hoist_err **err) HOIST_WUR;
HOIST_EXPORT void hoist_sign_verified_clear(hoist_sign_verified *v);

#endif
