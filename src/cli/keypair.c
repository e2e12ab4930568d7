/* hoist generate-key-pair: an ECDSA P-256 key pair for hoist sign. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "env.h"
#include "hoist/fs.h"
#include "regopts.h"

#define VERB "generate-key-pair"

static const char usage[] =
    "Usage: hoist generate-key-pair [OPTIONS]\n\n"
    "Write a new ECDSA P-256 key pair for hoist sign and hoist verify: PREFIX.key, the\n"
    "private key as PKCS#8 PEM (mode 0600; encrypted with AES-256 when a password is\n"
    "given), and PREFIX.pub, the public key as SubjectPublicKeyInfo PEM (what cosign\n"
    "verifies with: cosign verify --key PREFIX.pub). Existing files are not replaced.\n"
    "cosign signs with the same key after `cosign import-key-pair --key PREFIX.key`.\n\n"
    "Options:\n"
    "  --output-key-prefix PREFIX    the files' names (default hoist)\n"
    "  --key-password-file FILE      encrypt the private key with this password (first\n"
    "                                line; default $HOIST_KEY_PASSWORD, else unencrypted)\n"
    "  -h, --help                    show this help\n";

/* Writes data to the new file path (mode), refusing one that exists. */
static int write_new(const char *path, const char *data, mode_t mode, hoist_err **err) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0)
    return hoist_err_errno(err, errno, "create %s", path);
  int r = hoist_fs_write_all(fd, data, strlen(data), err);
  if (close(fd) < 0 && r == 0)
    r = hoist_err_errno(err, errno, "write %s", path);
  if (r < 0)
    unlink(path);
  return r;
}

static int keypair_run(int argc, char **argv) {
  const char *prefix = "hoist", *pw_file = NULL;
  const cli_opt opts[] = {
      CLI_STRING("output-key-prefix", &prefix),
      CLI_STRING("key-password-file", &pw_file),
      CLI_END,
  };
  int rc = cli_parse_opts(VERB, usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (optind != argc)
    return cli_usage(VERB, "unexpected argument '%s'", argv[optind]);
  hoist_err *err = NULL;
  _cleanup_free_ char *pw = NULL;
  if (pw_file) {
    size_t len = 0;
    if (hoist_fs_read_file(AT_FDCWD, pw_file, 4096, &pw, &len, &err) < 0)
      return cli_fail(VERB, err);
    pw[strcspn(pw, "\r\n")] = '\0';
  } else if (cli_env("HOIST_KEY_PASSWORD")) {
    pw = hoist_strdup(cli_env("HOIST_KEY_PASSWORD"));
  }
  _cleanup_free_ char *priv = NULL;
  _cleanup_free_ char *pub = NULL;
  if (hoist_sign_key_generate(pw, &priv, &pub, &err) < 0)
    return cli_fail(VERB, err);
  _cleanup_free_ char *key_path = hoist_asprintf("%s.key", prefix);
  _cleanup_free_ char *pub_path = hoist_asprintf("%s.pub", prefix);
  if (access(pub_path, F_OK) == 0)
    return hoist_err_set(&err, EEXIST, "%s exists: not replaced", pub_path), cli_fail(VERB, err);
  if (write_new(key_path, priv, 0600, &err) < 0)
    return cli_fail(VERB, err);
  if (write_new(pub_path, pub, 0644, &err) < 0) {
    unlink(key_path);
    return cli_fail(VERB, err);
  }
  explicit_bzero(priv, strlen(priv));
  printf("private key written to %s%s\npublic key written to %s\n", key_path,
         pw && pw[0] ? " (encrypted)" : "", pub_path);
  return EXIT_OK;
}

HOIST_VERB(generate_key_pair, VERB, "write a P-256 key pair for hoist sign and verify",
           keypair_run);
