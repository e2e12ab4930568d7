/*
 * limits: the size caps of libhoist, named in one place.
 *
 * Every bounded buffer, every read of untrusted input and every table that
 * grows with its input stops at one of these, and a refusal names the cap it
 * hit (HOIST_E_LIMIT, or ENAMETOOLONG for paths). A module header may give a
 * cap a second, module-local name, never a second value.
 *
 * Still defined beside their code (they move here as their modules are
 * reworked): registry/ (REG_BODY_MAX, CREDS_FILE_MAX, HELPER_OUT_MAX,
 * CHALLENGE_MAX, PAGE_MAX) and sandbox/ (PASTA_ERR_MAX, PROC_MAX,
 * SANDBOX_LINE_MAX).
 */
#ifndef HOIST_LIMITS_H
#define HOIST_LIMITS_H

/* ------------------------------------------------------------------ core */

/* A hoist_buf made with max 0. */
#define HOIST_BUF_DEFAULT_MAX ((size_t)1 << 30)
/* A path being resolved in a root, with the symlinks met on the way spliced in. */
#define HOIST_PATH_BUF_MAX ((size_t)1 << 20)

/* ------------------------------------------------------ images and layouts */

/* A manifest, index or config document (as containerd: 4 MiB). */
#define HOIST_MANIFEST_MAX (4u << 20)
/* A layout's index.json: every tag of the layout, so far more than a manifest. */
#define HOIST_INDEX_JSON_MAX (64u << 20)
/* Extended attributes written for one file of a layer (user.* and
 * security.capability); a file with more is refused, never cut short. */
#define HOIST_LAYER_XATTRS_MAX 64

/* ------------------------------------------------------------- archives */

/* docker-archive and oci-archive files (transport.h), read as untrusted
 * input. */
/* Members of one archive (docker save writes four per layer at most). */
#define HOIST_ARCHIVE_ENTRIES_MAX 100000u
/* A member name, in bytes. */
#define HOIST_ARCHIVE_NAME_MAX 4096u
/* Bytes read out of one archive's members, after any decompression of a
 * layer: what its extraction may put on disk. */
#define HOIST_ARCHIVE_DATA_MAX ((uint64_t)256 << 30)
/* A docker archive's manifest.json (every image of the archive). */
#define HOIST_ARCHIVE_MANIFEST_MAX (4u << 20)
/* Images listed in one manifest.json, and layers of one of them. */
#define HOIST_ARCHIVE_IMAGES_MAX 4096u
#define HOIST_ARCHIVE_LAYERS_MAX 1024u
/* Symlinks followed from one name of a docker archive to its file. */
#define HOIST_ARCHIVE_LINKS_MAX 16u

/* ------------------------------------------------------------- signatures */

/* A signature's simple-signing payload (cosign's are a few hundred bytes;
 * annotations make them longer). */
#define HOIST_SIGN_PAYLOAD_MAX (256u << 10)
/* Signatures (layers) of one signature manifest. */
#define HOIST_SIGN_LAYERS_MAX 1000u
/* The base64 text of one signature (a DER ECDSA P-256 signature is at most
 * 72 bytes). */
#define HOIST_SIGN_SIGNATURE_MAX 4096u
/* A key file (PEM). */
#define HOIST_SIGN_KEY_FILE_MAX (64u << 10)

/* --------------------------------------------------------------- bundles */

/* A bundle's manifest.json. */
#define HOIST_BUNDLE_MANIFEST_MAX (16U << 20)

/* ------------------------------------------------------------------ build */

/* A requirements file given to a build (as the deployer service: 5 MB). */
#define HOIST_BUILD_FILE_MAX (5u * 1000u * 1000u)

/* ------------------------------------------------------------------ deploy */

/* One quoted string of a deploy file. */
#define HOIST_DEPLOY_STRING_MAX (64 << 10)
/* What a scope's command prints (its value). */
#define HOIST_DEPLOY_SCOPE_OUTPUT_MAX 4096

/* ----------------------------------------------------------------- server */

#define HOIST_SERVER_MAX_FILE_B64 10000000u  /* base64 text of `file` */
#define HOIST_SERVER_MAX_FILE_BYTES 5000000u /* decoded `file` */
#define HOIST_SERVER_MAX_AUTH 4096u          /* authorization header */
/* Request bodies: build/start carries the base64 file and a little JSON,
 * every other endpoint next to nothing. */
#define HOIST_SERVER_MAX_START_BODY (HOIST_SERVER_MAX_FILE_B64 + 65536u)
#define HOIST_SERVER_MAX_SMALL_BODY 4096u
/* A refused request body read and thrown away, so the client sees the answer. */
#define HOIST_SERVER_DISCARD_MAX ((size_t)16 << 20)
/* The tokens file of the file authenticator. */
#define HOIST_SERVER_TOKENS_MAX (8u << 20)
/* An answer of the CouchDB-compatible token store. */
#define HOIST_SERVER_COUCHDB_BODY_MAX (16u << 20)

#endif
