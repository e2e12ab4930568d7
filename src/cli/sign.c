/* hoist sign REF --key KEY: a cosign-format signature of an image, stored
 * beside it. */
#include <string.h>

#include "env.h"
#include "regopts.h"

#define VERB "sign"

/* The registry options of sign and verify: REGOPTS_HELP with the TLS
 * client key as --tls-key (--key is the signing key, as in cosign). */
#define SIGN_REGOPTS_HELP                                                                          \
  "Registry options:\n"                                                                            \
  "  --creds USER:PASSWORD     credentials for the registries\n"                                   \
  "  --authfile FILE           Docker config.json / auth.json to read credentials from\n"          \
  "  --secret FILE             Kubernetes .dockerconfigjson secret (also $REGISTRY_SECRET)\n"      \
  "  --insecure-registry HOST  HOST may go unverified, or plain http (repeatable)\n"               \
  "  --registries-conf FILE    registries.conf to read\n"                                          \
  "  --ca-file FILE            CA bundle to trust besides the system's\n"                          \
  "  --cert FILE, --tls-key FILE  TLS client certificate and key\n"                                \
  "  --cert-dir DIR            CAs, client certificate for every registry, instead of certs.d\n"   \
  "  --tls-verify=true|false   true: https, verified, even on loopback; false: https\n"            \
  "                            without verifying certificates\n"                                   \
  "  --jobs N                  parallel blob transfers (default 4)\n"                              \
  "  --json                    print the result as JSON\n"

static const char usage[] =
    "Usage: hoist sign [OPTIONS] --key KEY IMAGE\n\n"
    "Sign IMAGE (a registry reference or oci:DIR:TAG) with the ECDSA P-256 private key\n"
    "KEY, in cosign's format: a simple-signing payload naming the repository and the\n"
    "digest IMAGE resolves to (a multi-arch tag: the index's digest), its signature in\n"
    "the layer annotation dev.cosignproject.cosign/signature. By default it is stored\n"
    "as the tag sha256-<hex>.sig in IMAGE's repository (or layout), a signature more\n"
    "each time; with --attach referrer as an OCI 1.1 referrer of the image. cosign\n"
    "verifies it with `cosign verify --key PUB --insecure-ignore-tlog=true IMAGE`.\n"
    "KEY is PEM: PKCS#8 (encrypted or not) or SEC1 \"EC PRIVATE KEY\" (hoist\n"
    "generate-key-pair writes one); cosign's own encrypted cosign.key is not read.\n"
    "Keyless signing (Fulcio, Rekor) is not supported.\n\n"
    "Options:\n"
    "  --key KEY                     the private key (PEM)\n"
    "  --key-password-file FILE      its password, if it is encrypted (first line; default\n"
    "                                $HOIST_KEY_PASSWORD)\n"
    "  --attach tag|referrer         where the signature goes (default tag)\n"
    "  -a, --annotation KEY=VALUE    an annotation in the payload's \"optional\" (repeatable)\n"
    "  --recursive                   for an index, sign each of its images too\n"
    "  -h, --help                    show this help\n\n" SIGN_REGOPTS_HELP;

/* -a KEY=VALUE into a JSON object. */
static int opt_annotation(const char *verb, const char *arg, void *dest) {
  json_t **o = dest;
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg)
    return cli_usage(verb, "--annotation takes KEY=VALUE, not \"%s\"", arg), -1;
  if (!*o)
    *o = json_object();
  _cleanup_free_ char *k = hoist_malloc0((size_t)(eq - arg) + 1);
  memcpy(k, arg, (size_t)(eq - arg));
  json_object_set_new(*o, k, json_string(eq + 1));
  return 0;
}

static int opt_attach(const char *verb, const char *arg, void *dest) {
  hoist_sign_attach *a = dest;
  if (strcmp(arg, "tag") == 0)
    *a = HOIST_SIGN_ATTACH_TAG;
  else if (strcmp(arg, "referrer") == 0)
    *a = HOIST_SIGN_ATTACH_REFERRER;
  else
    return cli_usage(verb, "--attach takes tag or referrer, not \"%s\"", arg), -1;
  return 0;
}

static int sign_run(int argc, char **argv) {
  _cleanup_regopts_ cli_regopts ro = {0};
  const char *key = NULL, *pw_file = NULL;
  _cleanup_json_ json_t *ann = NULL;
  hoist_sign_opts so = {0};
  const cli_opt opts[] = {
      CLI_STRING("key", &key),
      CLI_STRING("key-password-file", &pw_file),
      CLI_CALL("attach", opt_attach, &so.attach),
      CLI_CALL("annotation", opt_annotation, &ann, .letter = 'a'),
      CLI_FLAG("recursive", &so.recursive),
      CLI_STRING("tls-key", &ro.o.key_file),
      CLI_GROUP(cli_regopts_opts, &ro),
      CLI_END,
  };
  int rc = cli_parse_opts(VERB, usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (argc - optind != 1)
    return cli_usage(VERB, "expected one IMAGE");
  if (!key)
    return cli_usage(VERB, "needs --key KEY (keyless signing is not supported)");
  so.annotations = ann;
  hoist_err *err = NULL;
  _cleanup_loc_ hoist_loc *loc = NULL;
  if (cli_loc_parse(&ro, argv[optind], &loc, &err) < 0)
    return cli_usage_err(VERB, err);
  if (loc->kind == HOIST_LOC_LAYOUT && !loc->tag)
    return cli_usage(VERB, "%s: name the image with a tag (oci:DIR:TAG)", argv[optind]);
  if (loc->kind != HOIST_LOC_LAYOUT && loc->kind != HOIST_LOC_REGISTRY)
    return cli_usage(VERB, "%s: sign a registry image or a layout's (oci:DIR:TAG)", argv[optind]);
  _cleanup_sign_key_ hoist_sign_key *k = NULL;
  if (cli_key_private(key, pw_file, &k, &err) < 0)
    return cli_fail(VERB, err);
  _cleanup_registry_ hoist_registry *r = NULL;
  if (loc->kind == HOIST_LOC_REGISTRY && cli_regopts_open(&ro, false, &r, &err) < 0)
    return cli_fail(VERB, err);
  hoist_transport_opts to = {.registry = r, .tmp_dir = cli_env_tmpdir(NULL)};
  hoist_sign_result res;
  if (hoist_sign_image(&to, loc, k, &so, &res, &err) < 0)
    return cli_fail(VERB, err);
  if (ro.json)
    cli_print_json(json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "digest", res.digest,
                             "dockerReference", res.docker_reference, "stored", res.stored,
                             "manifest", res.manifest, "attach",
                             so.attach == HOIST_SIGN_ATTACH_TAG ? "tag" : "referrer", "signatures",
                             (json_int_t)res.signatures, "images", (json_int_t)res.images));
  else
    printf("signed %s %s: %s (%zu signature%s)\n", res.docker_reference, res.digest, res.stored,
           res.signatures, res.signatures == 1 ? "" : "s");
  hoist_sign_result_clear(&res);
  return EXIT_OK;
}

HOIST_VERB(sign, VERB, "sign an image with a private key (cosign's format)", sign_run);
