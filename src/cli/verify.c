/* hoist verify IMAGE --key PUB: an image's cosign-format signatures checked
 * against a public key. */
#include <string.h>

#include "env.h"
#include "regopts.h"

#define VERB "verify"

static const char usage[] =
    "Usage: hoist verify [OPTIONS] --key PUB IMAGE\n\n"
    "Verify that IMAGE (a registry reference or oci:DIR[:TAG]) carries a signature\n"
    "made with the private key of the public key PUB (PEM, as cosign.pub), in cosign's\n"
    "format: the signatures stored under the tag sha256-<hex>.sig and among the\n"
    "image's OCI 1.1 referrers are read; for each, the payload is checked against its\n"
    "layer's digest, the signature against PUB and the signed digest against IMAGE's.\n"
    "Succeeds, printing what verified, when one holds; else fails saying why: no\n"
    "signature found, none verifies with this key, the one that does signs another\n"
    "image, a malformed payload. No transparency log or certificate is consulted\n"
    "(keyless signatures are not supported).\n\n"
    "Options:\n"
    "  --key PUB                     the public key (PEM)\n"
    "  -h, --help                    show this help\n\n"
    "Registry options:\n"
    "  --creds USER:PASSWORD     credentials for the registries\n"
    "  --authfile FILE           Docker config.json / auth.json to read credentials from\n"
    "  --secret FILE             Kubernetes .dockerconfigjson secret (also $REGISTRY_SECRET)\n"
    "  --insecure-registry HOST  HOST may go unverified, or plain http (repeatable)\n"
    "  --registries-conf FILE    registries.conf to read\n"
    "  --ca-file FILE            CA bundle to trust besides the system's\n"
    "  --cert FILE, --tls-key FILE  TLS client certificate and key\n"
    "  --cert-dir DIR            CAs, client certificate for every registry, instead of certs.d\n"
    "  --tls-verify=true|false   true: https, verified, even on loopback; false: https\n"
    "                            without verifying certificates\n"
    "  --jobs N                  parallel blob transfers (default 4)\n"
    "  --json                    print the result as JSON\n";

static int verify_run(int argc, char **argv) {
  _cleanup_regopts_ cli_regopts ro = {0};
  const char *key = NULL;
  const cli_opt opts[] = {
      CLI_STRING("key", &key),
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
    return cli_usage(VERB, "needs --key PUB");
  hoist_err *err = NULL;
  _cleanup_loc_ hoist_loc *loc = NULL;
  if (cli_loc_parse(&ro, argv[optind], &loc, &err) < 0)
    return cli_usage_err(VERB, err);
  if (loc->kind != HOIST_LOC_LAYOUT && loc->kind != HOIST_LOC_REGISTRY)
    return cli_usage(VERB, "%s: verify a registry image or a layout's", argv[optind]);
  _cleanup_sign_key_ hoist_sign_key *k = NULL;
  if (cli_key_public(key, &k, &err) < 0)
    return cli_fail(VERB, err);
  _cleanup_registry_ hoist_registry *r = NULL;
  if (loc->kind == HOIST_LOC_REGISTRY && cli_regopts_open(&ro, false, &r, &err) < 0)
    return cli_fail(VERB, err);
  hoist_transport_opts to = {.registry = r, .tmp_dir = cli_env_tmpdir(NULL)};
  hoist_sign_verified v;
  if (hoist_sign_verify_image(&to, loc, k, &v, &err) < 0)
    return cli_fail(VERB, err);
  _cleanup_free_ char *name = hoist_loc_string(loc);
  if (ro.json)
    cli_print_json(json_pack("{s:s, s:s, s:s, s:s, s:O?, s:I, s:b}", "image", name, "digest",
                             v.digest, "dockerReference", v.docker_reference, "where", v.where,
                             "optional", v.optional, "checked", (json_int_t)v.checked, "verified",
                             1));
  else
    printf("verified %s %s: signed for %s (%s)\n", name, v.digest, v.docker_reference, v.where);
  hoist_sign_verified_clear(&v);
  return EXIT_OK;
}

HOIST_VERB(verify, VERB, "verify an image's signature with a public key (cosign's format)",
           verify_run);
