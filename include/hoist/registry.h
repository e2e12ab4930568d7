/*
 * registry: a client of the OCI distribution API (v1.1), and nothing above
 * it: moving whole images between locations is the transport's and the image
 * module's (transport.h, image.h).
 *
 * A hoist_registry is one client for the whole process: it owns the libcurl
 * share handle (connections, DNS and TLS sessions reused across requests and
 * threads), the credentials it found, the Bearer tokens it obtained (cached
 * per registry and scope until they expire) and the TLS settings per host.
 *
 * Calls name a registry host ("127.0.0.1:5000", "docker.io") and a
 * repository path ("library/busybox") as plain strings; they do one API
 * operation each with authentication and the retry policy (3 attempts, 1 s
 * doubling with jitter, on 408, 429 with Retry-After, 5xx and broken
 * connections). The first call for a host decides how it is spoken to
 * (hoist_registry_ping): https, or plain http for a host allowed to be
 * insecure whose https failed; a host that refuses the connection then is
 * reported at once, one that answered before and refuses later is
 * restarting, and retried. Blobs stream: downloads go into a hoist_writer and are
 * checked against digest and size as they arrive; uploads read from a file
 * descriptor or stream from a writer. Small blobs go up in one request or
 * two (the monolithic forms), larger ones in a streamed or chunked PATCH.
 * Nothing is written locally but the blob-location record (below) and, for
 * a registry that takes uploads only whole, an unlinked spool file, so a
 * crash leaves at most an unfinished upload session, which the registry
 * expires, or blobs no manifest names.
 *
 * Credential and challenge parsers are exposed for tests and fuzzing, and
 * so is the reader of certs.d directories. hoist_creds_store and
 * hoist_creds_erase change an auth file (login, logout): it is replaced
 * whole by a rename, so a crash leaves the old file or the new one.
 */
#ifndef HOIST_REGISTRY_H
#define HOIST_REGISTRY_H

#include "hoist/core.h"
#include "hoist/digest.h"
#include "hoist/oci.h"
#include "hoist/ref.h"
#include "hoist/regconf.h"
#include "hoist/stream.h"

/* Progress of one transfer: id is a short digest; total 0 when unknown.
 * Called from transfer threads; done is true once for the final call. */
typedef void (*hoist_progress_fn)(void *userdata, const char *id, uint64_t done_bytes,
                                  uint64_t total_bytes, bool finished);

/*
 * The client's settings. The library reads no environment variable: where
 * the CLI takes one (README, "Credentials" and "TLS and insecure
 * registries"), it fills the field here, and a field left unset means what
 * its comment says. Credentials for a host are looked up in this order:
 * creds; secret_file; auth_file, else the first of auth_files that knows the
 * host. secret_file and auth_file must exist when given; the files of
 * auth_files are read only when they exist.
 */
typedef struct hoist_registry_opts {
  const char *creds;       /* "user:password" for every registry, or NULL */
  const char *secret_file; /* Kubernetes .dockerconfigjson secret, or NULL
                            * (hoist: --secret, else $REGISTRY_SECRET) */
  const char *auth_file;   /* Docker config.json / auth.json; NULL: auth_files
                            * (hoist: --authfile, else $REGISTRY_AUTH_FILE) */
  /* NULL-terminated auth files searched in order when auth_file is NULL:
   * the first that knows the host answers, missing ones are skipped; NULL:
   * none. hoist: $XDG_RUNTIME_DIR/containers/auth.json,
   * ~/.config/containers/auth.json, ${DOCKER_CONFIG:-~/.docker}/config.json */
  const char *const *auth_files;
  /* NULL-terminated hosts ("host" or "host:port") allowed to be insecure, as
   * podman's registries.conf means it: https without verifying the
   * certificate, then plain http when https fails. Loopback hosts
   * (localhost, 127.0.0.0/8, ::1) are allowed plain http too, but their
   * certificates are verified. */
  const char *const *insecure;
  /* The registries configuration (regconf.h), borrowed: it must outlive
   * the client. Its insecure hosts join insecure; the registry transport
   * takes its mirrors, locations and blocked rules. NULL: none. (hoist:
   * registries.conf and its drop-ins, README "Registries configuration") */
  const hoist_regconf *regconf;
  const char *ca_file;   /* CA bundle trusted besides the system's, or NULL */
  const char *cert_file; /* TLS client certificate (PEM), or NULL */
  const char *key_file;  /* its key, or NULL */
  /* A directory of TLS files for every registry (skopeo's --cert-dir): CA
   * certificates *.crt, client certificates *.cert each with the *.key of
   * the same name. It replaces the certs.d lookup; NULL: certs_d. */
  const char *cert_dir;
  /* NULL-terminated certs.d roots: for host "h:p", the first ROOT/h:p/ that
   * exists is read as cert_dir is (hoist_certs_dir_read). NULL: none.
   * hoist: ~/.config/containers/certs.d, /etc/containers/certs.d,
   * /etc/docker/certs.d (podman's order) */
  const char *const *certs_d;
  /* --tls-verify=false: https without verifying certificates, for every
   * host; plain http still only for hosts allowed to be insecure */
  bool tls_skip_verify;
  /* --tls-verify=true: https, verified, for every host, even loopback and
   * the insecure list: never plain http */
  bool tls_always;
  /* The blob-location record (hoist_blob_locations_open) the client reads
   * and writes, an SQLite file; NULL: none. It is opened at the first blob
   * operation; one that cannot be opened is left aside with a warning.
   * (hoist: $HOIST_BLOB_LOCATIONS, else blob-locations.db under
   * $HOIST_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/hoist/) */
  const char *blob_locations;
  /* Where a blob is spooled for a registry that takes uploads only whole
   * (it refused PATCH): an unlinked temp file in this directory; NULL:
   * /var/tmp. (hoist: $TMPDIR) */
  const char *tmp_dir;
  int jobs; /* parallel blob transfers; 0 means 4 */
  /* bytes per PATCH of a chunked upload (blobs over 64 MiB); 0: 64 MiB. A
   * larger OCI-Chunk-Min-Length of the registry wins. hoist: $HOIST_CHUNK_SIZE */
  uint64_t chunk_size;
  unsigned page_size; /* entries asked per page of tags and catalog; 0: 1000
                       * (hoist: $HOIST_PAGE_SIZE) */
  hoist_progress_fn progress;
  void *progress_userdata;
} hoist_registry_opts;

typedef struct hoist_registry hoist_registry;

HOIST_EXPORT int hoist_registry_new(const hoist_registry_opts *opts, hoist_registry **out,
                                    hoist_err **err) HOIST_WUR;
HOIST_EXPORT void hoist_registry_free(hoist_registry *r);

/* The registries configuration the client was made with (opts->regconf),
 * or NULL. */
HOIST_EXPORT const hoist_regconf *hoist_registry_regconf(const hoist_registry *r);

/* Parallel blob transfers the client was made for (opts->jobs, 4 when 0). */
HOIST_EXPORT int hoist_registry_jobs(const hoist_registry *r);

/* True when host may be spoken to over plain http once https failed:
 * localhost, 127.0.0.0/8, ::1 and hosts made insecure by options or the
 * config file; never with tls_always. */
HOIST_EXPORT bool hoist_registry_is_insecure(hoist_registry *r, const char *host);

/* GET /v2/ on host with the authentication flow (Basic, or a Bearer token
 * asked for no scope, as docker login does): 0 when the registry accepts
 * the client's credentials for host, or needs none. Refused credentials are
 * HOIST_E_AUTH; a registry that cannot be reached says why (connection
 * refused, a certificate not trusted: what to give). Decides how host is
 * spoken to, as the first call for a host always does. */
HOIST_EXPORT int hoist_registry_ping(hoist_registry *r, const char *host,
                                     hoist_err **err) HOIST_WUR;

/* ---------------------------------------------------------- blobs */

/* *exists tells whether repo has the blob; *size (optional) its size. */
HOIST_EXPORT int hoist_registry_blob_exists(hoist_registry *r, const char *host, const char *repo,
                                            const char *digest, bool *exists, int64_t *size,
                                            hoist_err **err) HOIST_WUR;

/* hoist_registry_blob_exists, asked with the pull and push scope: the token
 * it gets also serves the mount or upload that follows. */
HOIST_EXPORT int hoist_registry_blob_exists_for_push(hoist_registry *r, const char *host,
                                                     const char *repo, const char *digest,
                                                     bool *exists, int64_t *size,
                                                     hoist_err **err) HOIST_WUR;

/* Streams a blob into w (not committed), refusing content that does not
 * match digest or (when >= 0) size. A broken transfer resumes with Range. */
HOIST_EXPORT int hoist_registry_get_blob(hoist_registry *r, const char *host, const char *repo,
                                         const char *digest, int64_t size, hoist_writer *w,
                                         hoist_err **err) HOIST_WUR;

/* Streams the blob digest from url, one of a non-distributable layer's urls
 * (hoist_media_is_nondistributable), into w (not committed): an http or
 * https URL only (redirects too), sent no credentials, refused when it
 * gives more or other bytes than digest and size (when >= 0) say. */
HOIST_EXPORT int hoist_registry_fetch_url(hoist_registry *r, const char *url, const char *digest,
                                          int64_t size, hoist_writer *w, hoist_err **err) HOIST_WUR;

/* Blobs up to this size go up monolithically (hoist_registry_put_blob,
 * hoist_registry_blob_upload). */
#define HOIST_REGISTRY_SMALL_BLOB (4u << 20)

/* Tries a cross-repository mount of digest from repository from (same
 * host). *mounted false when the registry declined, or refused (401, 403:
 * no pull access to from), which is no error; the session a declined
 * mount opens is cancelled. */
HOIST_EXPORT int hoist_registry_mount_blob(hoist_registry *r, const char *host, const char *repo,
                                           const char *digest, const char *from, bool *mounted,
                                           hoist_err **err) HOIST_WUR;

/* Tries cross-repository mounts of digest into repo: from `from` (a
 * repository of the same host, or NULL), then from the repositories the
 * blob-location record names as holding it (most recently seen first, at
 * most 3 in all). A declined mount cancels the session it opened and
 * forgets the record's row; a refused one (401, 403: no pull access to
 * that repository) is passed over; neither is an error. */
HOIST_EXPORT int hoist_registry_mount_known(hoist_registry *r, const char *host, const char *repo,
                                            const char *digest, const char *from, bool *mounted,
                                            hoist_err **err) HOIST_WUR;

/*
 * A writer that uploads what it is given to repo as it is given, without
 * spooling it. Its first HOIST_REGISTRY_SMALL_BLOB bytes wait in memory; a
 * blob that ends within them goes up monolithically at commit (as
 * hoist_registry_put_blob does). A larger one goes into an upload session
 * as one streamed PATCH (no length: it is sent while it is made), or, for
 * a host that refused that, in PATCH chunks with Content-Range (of the
 * client's chunk size, each held in memory). Only for a host that refused
 * PATCH itself is it spooled: to an unlinked file under opts->tmp_dir, sent
 * in one PUT at commit. commit finishes the upload
 * under expected, which the registry verifies, or when expected is NULL
 * under the digest computed on the way (content is hashed once either way).
 * free without commit cancels the session.
 *
 * A broken stream is not retried: the caller starts over with the data.
 * When the registry refused the way the writer uploaded, write or commit
 * fails with code EAGAIN, and the host's next writer uploads the next way:
 * the caller gives the content again to a new writer.
 */
HOIST_EXPORT int hoist_registry_blob_upload(hoist_registry *r, const char *host, const char *repo,
                                            const char *expected, hoist_writer **out,
                                            hoist_err **err) HOIST_WUR;

/* Uploads size bytes read from fd (from its offset 0, with pread) as blob
 * digest. Cross-repository mounts come first, as hoist_registry_mount_known
 * tries them (mount_from first), without cancelling the last session a
 * declined mount opens: the blob goes into it. A blob of at most
 * HOIST_REGISTRY_SMALL_BLOB bytes goes up monolithically: one POST with
 * ?digest= and the body where the host takes that (tried once per host;
 * one that answers 202 gets the PUT that follows, and POST then PUT from
 * then on), else POST then PUT; it is not asked for first (HEAD) unless
 * the record says repo has it, as sending it costs about what asking does.
 * A larger blob is asked for (skipped when repo has it) before it is sent,
 * after the mounts when there are some to try (a mount takes a blob repo
 * has too), then goes up in one PUT up to the chunk size, else in PATCH
 * chunks, resumed after a broken connection. *how (optional) receives
 * "exists", "mounted" or "uploaded". Every success is written to the
 * blob-location record. */
HOIST_EXPORT int hoist_registry_put_blob(hoist_registry *r, const char *host, const char *repo,
                                         const char *digest, uint64_t size, int fd,
                                         const char *mount_from, const char **how,
                                         hoist_err **err) HOIST_WUR;

/* ------------------------------------------------------ manifests */

/* The Accept list for manifests: OCI manifest and index, Docker schema 2
 * manifest and manifest list. */
HOIST_EXPORT const char *hoist_registry_manifest_accept(void);

/* Fetches a manifest or index by tag or digest. *data (caller frees) keeps
 * the exact bytes; *media_type (caller frees) is the document's type;
 * digest receives the digest of the bytes, which must equal reference when
 * reference is a digest. */
HOIST_EXPORT int hoist_registry_get_manifest(hoist_registry *r, const char *host, const char *repo,
                                             const char *reference, char **data, size_t *len,
                                             char **media_type, char digest[HOIST_DIGEST_STR_LEN],
                                             hoist_err **err) HOIST_WUR;

/* HEAD of a manifest: its digest (Docker-Content-Digest) and media type.
 * *found is false on 404. */
HOIST_EXPORT int hoist_registry_head_manifest(hoist_registry *r, const char *host, const char *repo,
                                              const char *reference, bool *found,
                                              char digest[HOIST_DIGEST_STR_LEN], char **media_type,
                                              hoist_err **err) HOIST_WUR;

HOIST_EXPORT int hoist_registry_put_manifest(hoist_registry *r, const char *host, const char *repo,
                                             const char *reference, const char *data, size_t len,
                                             const char *media_type, hoist_err **err) HOIST_WUR;

/* Deletes the manifest with this digest. A registry with deletes disabled
 * (405) gives "deletes are disabled on this registry". */
HOIST_EXPORT int hoist_registry_delete_manifest(hoist_registry *r, const char *host,
                                                const char *repo, const char *digest,
                                                hoist_err **err) HOIST_WUR;

/* The referrers API (OCI distribution 1.1): the manifests whose subject is
 * the manifest subject (a digest), as an OCI index (every page joined;
 * caller frees *data), filtered by artifact_type when non-NULL (a registry
 * may ignore the filter: the caller filters again). *supported is false,
 * and *data NULL, when the registry does not serve the API (404 and the
 * like); the caller then reads the referrers tag schema's index. */
HOIST_EXPORT int hoist_registry_referrers(hoist_registry *r, const char *host, const char *repo,
                                          const char *subject, const char *artifact_type,
                                          char **data, size_t *len, bool *supported,
                                          hoist_err **err) HOIST_WUR;

/* ------------------------------------------------- tags, catalog */

/* All tags of repo, following pagination (n, last, Link). *out is a
 * NULL-terminated array the caller frees with hoist_strfreev. */
HOIST_EXPORT int hoist_registry_tags(hoist_registry *r, const char *host, const char *repo,
                                     char ***out, size_t *n, hoist_err **err) HOIST_WUR;
/* The tags of repo that point at digest (a HEAD request per tag, after
 * hoist_registry_tags), in the registry's order. *out: NULL-terminated,
 * caller frees (hoist_strfreev). A tag that vanishes meanwhile is left out. */
HOIST_EXPORT int hoist_registry_tags_of(hoist_registry *r, const char *host, const char *repo,
                                        const char *digest, char ***out, size_t *n,
                                        hoist_err **err) HOIST_WUR;
HOIST_EXPORT int hoist_registry_catalog(hoist_registry *r, const char *host, char ***out, size_t *n,
                                        hoist_err **err) HOIST_WUR;
/* An alias of hoist_strfreev (core.h), for the callers written before it. */
static inline void hoist_strv_free(char **v) { hoist_strfreev(v); }

/* ------------------------------------------------- blob locations */

/*
 * The blob-location record: which repositories of which registry were seen
 * holding which blob, kept in an SQLite file across runs, so that a push to
 * a new repository mounts a blob from a repository of the same registry
 * that holds it instead of uploading it again (skopeo keeps the same in its
 * blob-info cache). A client given one (opts->blob_locations) adds a row
 * whenever a repository is seen to hold a blob: a pull, a HEAD that finds
 * it, an upload, a mount; it forgets one whose mount the registry declined.
 *
 * It is a cache: a row may be stale (the blob deleted since), a missing row
 * costs an upload, and nothing in it fails a transfer. Rows name
 * repositories, never credentials. The file is shared by concurrent
 * processes (WAL, a busy timeout of 2 s) and made 0600; a file that is not
 * a readable database of this schema is replaced by an empty one with a
 * warning logged; one of a newer schema is an error (EPROTO), left as it
 * is. Bounded: opening it removes rows unseen for 90 days, and the least
 * recently seen beyond max_rows. A handle may be used by several threads.
 */
typedef struct hoist_blob_locations hoist_blob_locations;

/* The default bound on rows (a row is about 200 bytes with its indexes). */
#define HOIST_BLOB_LOCATIONS_ROWS 20000

/* Opens (creating it and its directory, 0700, when missing) the record at
 * path, pruned to max_rows (0: HOIST_BLOB_LOCATIONS_ROWS). */
HOIST_EXPORT int hoist_blob_locations_open(const char *path, size_t max_rows,
                                           hoist_blob_locations **out, hoist_err **err) HOIST_WUR;
HOIST_EXPORT void hoist_blob_locations_free(hoist_blob_locations *b);

/* Records that repository repo of registry holds digest, seen at when_ms
 * (Unix time in ms; 0: now; a row keeps its latest time). A digest or a
 * repository name that references could not spell is EINVAL. */
HOIST_EXPORT int hoist_blob_locations_add(hoist_blob_locations *b, const char *registry,
                                          const char *repo, const char *digest, int64_t when_ms,
                                          hoist_err **err) HOIST_WUR;
/* Removes that row, when there is one. */
HOIST_EXPORT int hoist_blob_locations_forget(hoist_blob_locations *b, const char *registry,
                                             const char *repo, const char *digest,
                                             hoist_err **err) HOIST_WUR;
/* Up to max repositories of registry recorded as holding digest, other than
 * except (NULL: none), the most recently seen first. A row whose repository
 * is not a valid name is skipped. *out is NULL-terminated, caller frees
 * (hoist_strfreev); *n (optional) counts it. */
HOIST_EXPORT int hoist_blob_locations_find(hoist_blob_locations *b, const char *registry,
                                           const char *digest, const char *except, size_t max,
                                           char ***out, size_t *n, hoist_err **err) HOIST_WUR;
/* *has: repository repo of registry is recorded as holding digest. */
HOIST_EXPORT int hoist_blob_locations_has(hoist_blob_locations *b, const char *registry,
                                          const char *repo, const char *digest, bool *has,
                                          hoist_err **err) HOIST_WUR;
/* Removes the rows seen before older_than_ms (Unix ms; 0: none by age),
 * then the least recently seen beyond max_rows; *removed (optional) counts
 * them. */
HOIST_EXPORT int hoist_blob_locations_prune(hoist_blob_locations *b, size_t max_rows,
                                            int64_t older_than_ms, size_t *removed,
                                            hoist_err **err) HOIST_WUR;
/* The number of rows. */
HOIST_EXPORT int hoist_blob_locations_count(hoist_blob_locations *b, size_t *n,
                                            hoist_err **err) HOIST_WUR;

static inline void hoist_blob_locations_freep(hoist_blob_locations **b) {
  hoist_blob_locations_free(*b);
}
#define _cleanup_blob_locations_ __attribute__((cleanup(hoist_blob_locations_freep)))

/* ----------------------------------------------- parsers (exposed) */

/* One challenge of a WWW-Authenticate header. */
typedef struct hoist_challenge {
  char *scheme; /* "basic" or "bearer", lowercased */
  char *realm;
  char *service;
  char *scope;
  char *error; /* "insufficient_scope", ... or NULL */
} hoist_challenge;

/* Parses a WWW-Authenticate value (RFC 7235: scheme, then auth-params with
 * token or quoted-string values; several challenges separated by commas).
 * Returns the first Bearer or Basic challenge found. */
HOIST_EXPORT int hoist_challenge_parse(const char *header, hoist_challenge *out,
                                       hoist_err **err) HOIST_WUR;
HOIST_EXPORT void hoist_challenge_clear(hoist_challenge *c);

/* From a Link header, the target of rel="next" (NULL when none). The value
 * may be a path ("/v2/_catalog?last=x&n=2"); caller frees. */
HOIST_EXPORT int hoist_link_next(const char *header, char **next, hoist_err **err) HOIST_WUR;

typedef struct hoist_creds {
  char *username;
  char *password;
  char *identity_token; /* OAuth2 refresh token, or NULL */
  char *helper;         /* when a credential helper is to be asked: its name */
} hoist_creds;

/* Looks host (and optionally host/repo for per-repository entries) up in a
 * Docker config.json, auth.json or .dockerconfigjson document. *found is
 * false when nothing matches; a matching entry that is malformed is an error.
 * An entry served by a credential helper sets creds->helper only. */
HOIST_EXPORT int hoist_creds_from_json(const char *data, size_t len, const char *host,
                                       const char *repo, hoist_creds *out, bool *found,
                                       hoist_err **err) HOIST_WUR;
HOIST_EXPORT void hoist_creds_clear(hoist_creds *c);

/* Sets host's credentials in the auth file at path (Docker's config.json
 * format, which podman login writes to ${XDG_RUNTIME_DIR}/containers/
 * auth.json): auths[host] = {"auth": base64 of "username:password"}. host is
 * "host[:port]" or "host[:port]/path" for one namespace; the entries that
 * name it in another form ("https://host/v2/") are replaced too, everything
 * else is kept. The file is written whole under a temporary name, mode 0600,
 * and renamed over the old one; missing parent directories are made 0700. A
 * host whose credentials a credHelpers entry keeps is refused, and so is a
 * username with a ':'. */
HOIST_EXPORT int hoist_creds_store(const char *path, const char *host, const char *username,
                                   const char *password, hoist_err **err) HOIST_WUR;

/* Removes host's auths entries (in every form of its key, as
 * hoist_creds_store) from the auth file at path, or with host NULL every
 * auths entry; the rest of the file is kept, and written as
 * hoist_creds_store writes. *removed says whether there was one; a missing
 * file has none. */
HOIST_EXPORT int hoist_creds_erase(const char *path, const char *host, bool *removed,
                                   hoist_err **err) HOIST_WUR;

/* What a certs.d directory holds, as podman and docker read it: every
 * "*.crt" is a CA certificate, every "*.cert" a client certificate whose key
 * is the "*.key" of the same name. */
typedef struct hoist_certs_dir {
  char **cas; /* paths of the *.crt, sorted, NULL-terminated (never NULL) */
  char *cert; /* the first client certificate (by name), or NULL */
  char *key;  /* its key */
} hoist_certs_dir;

/* Reads directory dir. A *.cert without its *.key, or a *.key without its
 * *.cert, is an error naming both. *found false (and out empty) when dir
 * does not exist. */
HOIST_EXPORT int hoist_certs_dir_read(const char *dir, hoist_certs_dir *out, bool *found,
                                      hoist_err **err) HOIST_WUR;
HOIST_EXPORT void hoist_certs_dir_clear(hoist_certs_dir *d);

static inline void hoist_registry_freep(hoist_registry **r) { hoist_registry_free(*r); }
#define _cleanup_registry_ __attribute__((cleanup(hoist_registry_freep)))

#endif
