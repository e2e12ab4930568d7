/*
 * regopts: the options every registry verb shares (credentials, TLS,
 * insecure hosts, parallelism, --json), the verbs made of them alone, and
 * what the verbs that copy or read images share: the transfer and its
 * progress display (bars on a TTY, nothing otherwise), the image store.
 */
#ifndef HOIST_CLI_REGOPTS_H
#define HOIST_CLI_REGOPTS_H

#include "cli.h"
#include "hoist/image.h"
#include "hoist/registry.h"
#include "hoist/sign.h"

/* The TLS options' help lines, which login shares. */
#define REGOPTS_TLS_HELP                                                                           \
  "  --insecure-registry HOST  HOST may go unverified, or plain http (repeatable)\n"               \
  "  --registries-conf FILE    registries.conf to read (default $CONTAINERS_REGISTRIES_CONF,\n"    \
  "                            ~/.config/containers/registries.conf, /etc/containers/...)\n"       \
  "  --ca-file FILE            CA bundle to trust besides the system's\n"                          \
  "  --cert FILE, --key FILE   TLS client certificate and key\n"                                   \
  "  --cert-dir DIR            CAs (*.crt), client certificate (*.cert, *.key) for every\n"        \
  "                            registry, instead of certs.d/HOST[:PORT]/\n"                        \
  "  --tls-verify=true|false   true: https, verified, even on loopback; false: https\n"            \
  "                            without verifying certificates\n"

#define REGOPTS_HELP                                                                               \
  "Registry options:\n"                                                                            \
  "  --creds USER:PASSWORD     credentials for the registries\n"                                   \
  "  --authfile FILE           Docker config.json / auth.json to read credentials from\n"          \
  "  --secret FILE             Kubernetes .dockerconfigjson secret (also "                         \
  "$REGISTRY_SECRET)\n" REGOPTS_TLS_HELP                                                           \
  "  --jobs N                  parallel blob transfers (default 4)\n"                              \
  "  --json                    print the result as JSON\n"

#define QUIET_HELP "  -q, --quiet                   no progress; print only the digest\n"

typedef struct cli_regopts {
  hoist_registry_opts o;
  const char *registries_conf; /* --registries-conf */
  char **insecure;
  size_t n_insecure;
  bool json;
  bool quiet; /* -q of the transfer verbs: no progress, the digest alone */
  /* Signatures (signopts.c): --sign-key and its --key-password-file sign
   * what a verb stores; --verify-key verifies what it reads. */
  const char *sign_key;
  const char *key_password_file;
  const char *verify_key;
} cli_regopts;

/* The options of REGOPTS_HELP, for CLI_GROUP(cli_regopts_opts, &ro). */
extern const cli_opt cli_regopts_opts[];
/* Those of REGOPTS_TLS_HELP alone, for CLI_GROUP(cli_regopts_tls_opts, &ro). */
extern const cli_opt cli_regopts_tls_opts[];

/* copy's options for one side, which replace the shared ones for it. */
typedef struct cli_side {
  const char *creds;      /* --src-creds, --dest-creds */
  const char *auth_file;  /* --src-authfile, --dest-authfile */
  const char *cert_dir;   /* --src-cert-dir, --dest-cert-dir */
  const char *tls_verify; /* --src-tls-verify, --dest-tls-verify: "true", "false" or NULL */
} cli_side;

typedef struct cli_sides {
  cli_side src;
  cli_side dest;
} cli_sides;

#define SIDES_HELP                                                                                 \
  "Options for one side (they replace the shared ones for it):\n"                                  \
  "  --src-creds, --dest-creds USER:PASSWORD\n"                                                    \
  "  --src-authfile, --dest-authfile FILE\n"                                                       \
  "  --src-cert-dir, --dest-cert-dir DIR\n"                                                        \
  "  --src-tls-verify, --dest-tls-verify true|false\n"

/* For CLI_GROUP(cli_sides_opts, &sides). */
extern const cli_opt cli_sides_opts[];

/* Runs a verb whose options are the registry's alone and whose operands are
 * n (n_usage: the usage error when they are not): returns run(&ro,
 * operands), or the exit code of --help or of a usage error. */
int cli_regopts_run(const char *verb, const char *usage, int n, const char *n_usage,
                    int (*run)(cli_regopts *ro, char **operands), int argc, char **argv);

/* The registries configuration (registries.conf and its drop-ins, the
 * files of cli_env_regconf(given)), read at the first call and kept for
 * the process. */
int cli_regconf(const char *given, const hoist_regconf **out, hoist_err **err);

/* hoist_loc_parse, and a short name resolved by the registries
 * configuration (hoist_regconf_resolve) when s names a registry image; ro
 * (may be NULL) gives --registries-conf. */
int cli_loc_parse(const cli_regopts *ro, const char *s, hoist_loc **out, hoist_err **err);
/* The same for a registry reference (a docker:// prefix allowed). */
int cli_ref_parse(const cli_regopts *ro, const char *s, hoist_ref **out, hoist_err **err);

/* cli_ref_parse, then the registry's location for it as for a push
 * (hoist_regconf_push_target: location rewritten, blocked refused): for the
 * verbs that call the registry API themselves (tags, delete). */
int cli_ref_located(const cli_regopts *ro, const char *s, hoist_ref **out, hoist_err **err);

/* An operand that names something on a registry, without a docker://
 * prefix. */
const char *cli_registry_operand(const char *arg);

/* Opens the client, with a progress display when stderr is a TTY and
 * progress is wanted. */
int cli_regopts_open(cli_regopts *ro, bool progress, hoist_registry **out, hoist_err **err);

/* Finishes the progress display. */
void cli_progress_end(void);

void cli_regopts_free(cli_regopts *ro);
#define _cleanup_regopts_ __attribute__((cleanup(cli_regopts_free)))

/* The options of the verbs that copy an image (copy, pull): which image of
 * an index (--platform) or all of them (--all-platforms), -q/--quiet
 * (QUIET_HELP), and the registry's. */
typedef struct cli_transfer_args {
  cli_regopts ro;
  hoist_platform *platform;   /* owned */
  hoist_image_copy_opts copy; /* platform and all_platforms as the options say */
} cli_transfer_args;

/* For CLI_GROUP(cli_transfer_opts, &args). */
extern const cli_opt cli_transfer_opts[];

void cli_transfer_args_clear(cli_transfer_args *t);
#define _cleanup_transfer_args_ __attribute__((cleanup(cli_transfer_args_clear)))

/* Copies src to dst and prints the result (human, --json, or with --quiet
 * the digest alone); returns the exit code. */
int cli_transfer(const char *verb, cli_regopts *ro, const char *src, const char *dst,
                 const hoist_image_copy_opts *opts);
/* cli_transfer with options per side (sides may be NULL): when a side has
 * some, source and destination each get a client of their own. */
int cli_transfer_sides(const char *verb, cli_regopts *ro, const cli_sides *sides, const char *src,
                       const char *dst, const hoist_image_copy_opts *opts);
/* The image store: $HOIST_IMAGES, default ${HOIST_CACHE:-~/.cache/hoist}/images.
 * Caller frees. */
char *cli_image_store(void);

/* *out (caller frees): a layout holding the image src names. A registry
 * image is pulled into the image store unless it is there already
 * (hoist_image_pull), through r, or a client opened from ro when r is NULL;
 * a layout is src itself. */
int cli_pull_to_store(cli_regopts *ro, hoist_registry *r, const hoist_loc *src,
                      const hoist_platform *platform, hoist_loc **out, hoist_err **err);

/* The image operand of a verb that reads an image from a layout (unpack,
 * run), with its --platform: *loc (caller frees) a layout location, a
 * registry image pulled first (cli_pull_to_store), *platform (caller frees)
 * platform_s parsed, NULL without one. A bad operand or platform is a usage
 * error ("bad <what> ..."). Returns -1 to go on, else the exit code. */
int cli_image_layout(cli_regopts *ro, const char *verb, const char *what, const char *operand,
                     const char *platform_s, hoist_loc **loc, hoist_platform **platform);

/* Where `hoist pull REF` puts an image without --to: its layout in the image
 * store (hoist_image_store_location). Caller frees. */
char *cli_image_store_location(const hoist_ref *ref);
/* With --allow-foreign-urls: the non-distributable layers of m that the
 * layout s lacks, fetched from their urls (hoist_image_fetch_foreign). */
int cli_fetch_foreign(cli_regopts *ro, hoist_store *s, const hoist_manifest *m, hoist_err **err);

/* ------------------------------------------------------------ signatures */

#define SIGN_KEY_HELP                                                                              \
  "  --sign-key KEY                sign the image stored (cosign's format; a PEM private key,\n"   \
  "                                password from --key-password-file or $HOIST_KEY_PASSWORD)\n"    \
  "  --key-password-file FILE      the password of an encrypted --sign-key\n"
#define VERIFY_KEY_HELP                                                                            \
  "  --verify-key PUB              refuse the image unless a signature of it verifies with the\n"  \
  "                                public key PUB (also required by hoist-verify-key in the\n"     \
  "                                registries configuration)\n"

/* --sign-key and --key-password-file, for CLI_GROUP(cli_sign_key_opts, &ro). */
extern const cli_opt cli_sign_key_opts[];
/* --verify-key, for CLI_GROUP(cli_verify_key_opts, &ro). */
extern const cli_opt cli_verify_key_opts[];

/* The private key in file (PEM), an encrypted one's password read from
 * password_file (its first line) or $HOIST_KEY_PASSWORD. */
int cli_key_private(const char *file, const char *password_file, hoist_sign_key **out,
                    hoist_err **err);
/* The public key in file (PEM). */
int cli_key_public(const char *file, hoist_sign_key **out, hoist_err **err);

/* Before loc's image is used: when --verify-key is given, or loc is a
 * registry image whose [[registry]] has hoist-verify-key, a signature of
 * it must verify with that key (read through r, which may be NULL for a
 * layout), else an error naming why. A registry reference is then pinned
 * to the digest verified (loc->ref->digest), so what is read is what was
 * verified. */
int cli_verify_before_use(cli_regopts *ro, hoist_registry *r, hoist_loc *loc, hoist_err **err);

/* After an image was stored at loc: with --sign-key, signs it there (the
 * .sig tag) through r and logs where the signature went. */
int cli_sign_after_store(cli_regopts *ro, hoist_registry *r, const hoist_loc *loc, hoist_err **err);

#endif
