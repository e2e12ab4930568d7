/* signopts: the signature options the verbs share (--sign-key,
 * --key-password-file, --verify-key), the keys read from their files, and
 * the verification before use that the registries configuration may also
 * require. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "env.h"
#include "hoist/fs.h"
#include "hoist/limits.h"
#include "hoist/regconf.h"
#include "regopts.h"

const cli_opt cli_sign_key_opts[] = {
    CLI_STRING_AT("sign-key", cli_regopts, sign_key),
    CLI_STRING_AT("key-password-file", cli_regopts, key_password_file),
    CLI_END,
};

const cli_opt cli_verify_key_opts[] = {
    CLI_STRING_AT("verify-key", cli_regopts, verify_key),
    CLI_END,
};

static int read_small(const char *file, size_t max, char **out, size_t *len, hoist_err **err) {
  if (hoist_fs_read_file(AT_FDCWD, file, max, out, len, err) < 0)
    return hoist_err_wrap(err, "read %s", file);
  return 0;
}

int cli_key_private(const char *file, const char *password_file, hoist_sign_key **out,
                    hoist_err **err) {
  _cleanup_free_ char *pem = NULL;
  _cleanup_free_ char *pw = NULL;
  size_t len = 0, pw_len = 0;
  if (read_small(file, HOIST_SIGN_KEY_FILE_MAX, &pem, &len, err) < 0)
    return -1;
  if (password_file) {
    if (read_small(password_file, 4096, &pw, &pw_len, err) < 0)
      return -1;
    pw[strcspn(pw, "\r\n")] = '\0';
  } else if (cli_env("HOIST_KEY_PASSWORD")) {
    pw = hoist_strdup(cli_env("HOIST_KEY_PASSWORD"));
  }
  int r = hoist_sign_key_private(pem, len, pw, file, out, err);
  if (pw)
    explicit_bzero(pw, strlen(pw));
  return r;
}

int cli_key_public(const char *file, hoist_sign_key **out, hoist_err **err) {
  _cleanup_free_ char *pem = NULL;
  size_t len = 0;
  if (read_small(file, HOIST_SIGN_KEY_FILE_MAX, &pem, &len, err) < 0)
    return -1;
  return hoist_sign_key_public(pem, len, file, out, err);
}

int cli_verify_before_use(cli_regopts *ro, hoist_registry *r, hoist_loc *loc, hoist_err **err) {
  const char *key = ro ? ro->verify_key : NULL;
  const char *where = NULL;
  if (!key && loc->kind == HOIST_LOC_REGISTRY) {
    const hoist_regconf *conf = NULL;
    if (cli_regconf(ro ? ro->registries_conf : NULL, &conf, err) < 0)
      return -1;
    key = hoist_regconf_verify_key(conf, loc->ref, &where);
  }
  if (!key)
    return 0;
  _cleanup_sign_key_ hoist_sign_key *k = NULL;
  if (cli_key_public(key, &k, err) < 0)
    return where ? hoist_err_wrap(err, "hoist-verify-key of %s", where) : -1;
  _cleanup_registry_ hoist_registry *own = NULL;
  if (loc->kind == HOIST_LOC_REGISTRY && !r) {
    if (cli_regopts_open(ro, false, &own, err) < 0)
      return -1;
    r = own;
  }
  hoist_transport_opts to = {.registry = r, .tmp_dir = cli_env_tmpdir(NULL)};
  hoist_sign_verified v;
  _cleanup_free_ char *name = hoist_loc_string(loc);
  if (hoist_sign_verify_image(&to, loc, k, &v, err) < 0) {
    if (where)
      return hoist_err_wrap(err, "%s requires a signature (hoist-verify-key of %s)", name, where);
    return -1;
  }
  hoist_info("verified %s %s with %s (%s)", name, v.digest, key, v.where);
  if (loc->kind == HOIST_LOC_REGISTRY) {
    free(loc->ref->digest);
    loc->ref->digest = hoist_strdup(v.digest);
  }
  hoist_sign_verified_clear(&v);
  return 0;
}

int cli_sign_after_store(cli_regopts *ro, hoist_registry *r, const hoist_loc *loc,
                         hoist_err **err) {
  if (!ro || !ro->sign_key)
    return 0;
  _cleanup_sign_key_ hoist_sign_key *k = NULL;
  if (cli_key_private(ro->sign_key, ro->key_password_file, &k, err) < 0)
    return -1;
  _cleanup_registry_ hoist_registry *own = NULL;
  if (loc->kind == HOIST_LOC_REGISTRY && !r) {
    if (cli_regopts_open(ro, false, &own, err) < 0)
      return -1;
    r = own;
  }
  hoist_transport_opts to = {.registry = r, .tmp_dir = cli_env_tmpdir(NULL)};
  hoist_sign_result res;
  if (hoist_sign_image(&to, loc, k, NULL, &res, err) < 0)
    return -1;
  hoist_info("signed %s %s: %s", res.docker_reference, res.digest, res.stored);
  hoist_sign_result_clear(&res);
  return 0;
}
