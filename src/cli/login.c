/* hoist login HOST: credentials checked against a registry, then kept in the
 * auth file podman uses. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "env.h"
#include "hoist/fs.h"
#include "regopts.h"

#define SECRET_MAX 65536

static const char usage[] =
    "Usage: hoist login [OPTIONS] HOST[:PORT][/PATH]\n\n"
    "Check credentials against a registry (GET /v2/, Basic or a Bearer token) and keep\n"
    "them in the auth file: --authfile, else $REGISTRY_AUTH_FILE, else\n"
    "$XDG_RUNTIME_DIR/containers/auth.json (/run/containers/UID/auth.json without\n"
    "XDG_RUNTIME_DIR), as podman login does. The file is written whole (mode 0600),\n"
    "its other entries kept. A PATH keeps credentials for that namespace only.\n\n"
    "Options:\n"
    "  -u, --username USER  the user (asked on the terminal when not given)\n"
    "  --password-stdin     read the password from stdin (else asked on the\n"
    "                       terminal, not echoed)\n"
    "  --authfile FILE      the auth file to write\n"
    "  -h, --help           show this help\n\n"
    "TLS options:\n" REGOPTS_TLS_HELP;

/* ------------------------------------------------------------ terminal */

/* The terminal while a password is typed: its settings are put back by a
 * signal that ends the process, then the signal does what it would have. */
static int tty_fd = -1;
static struct termios tty_saved;
static volatile sig_atomic_t tty_echo_off;
static const int tty_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static void tty_restore_on(int sig) {
  if (tty_echo_off)
    tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
  signal(sig, SIG_DFL);
  raise(sig);
}

/* Reads one line typed on fd into *out (caller frees): at most SECRET_MAX
 * bytes, without its line break. */
static int read_line(int fd, char **out) {
  hoist_buf b = HOIST_BUF_INIT(SECRET_MAX);
  for (;;) {
    char c;
    ssize_t n = read(fd, &c, 1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0 || c == '\n')
      break;
    if (hoist_buf_append(&b, &c, 1, NULL) < 0) {
      explicit_bzero(b.data, b.len);
      hoist_buf_free(&b);
      return -1;
    }
  }
  if (b.len && b.data[b.len - 1] == '\r')
    b.data[--b.len] = '\0';
  *out = b.data ? hoist_buf_steal(&b) : hoist_strdup("");
  return 0;
}

/* Asks prompt on the terminal (/dev/tty, whatever stdin is) and reads the
 * answer into *out (caller frees), not echoed when secret. */
static int tty_ask(const char *prompt, bool secret, char **out, hoist_err **err) {
  _cleanup_close_ int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return hoist_err_errno(err, errno,
                           "no terminal to ask on (/dev/tty): give --username and "
                           "--password-stdin");
  /* echo goes off before the prompt shows: what is typed after it is
   * never echoed */
  struct sigaction old[sizeof tty_signals / sizeof *tty_signals];
  if (secret && tcgetattr(fd, &tty_saved) == 0) {
    struct sigaction sa = {.sa_handler = tty_restore_on};
    sigemptyset(&sa.sa_mask);
    tty_fd = fd;
    for (size_t i = 0; i < sizeof tty_signals / sizeof *tty_signals; i++)
      sigaction(tty_signals[i], &sa, &old[i]);
    struct termios quiet = tty_saved;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    tty_echo_off = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
  }
  int ret = hoist_fs_write_all(fd, prompt, strlen(prompt), NULL) < 0 ? -EIO : read_line(fd, out);
  if (tty_fd >= 0) {
    if (tty_echo_off)
      tcsetattr(fd, TCSAFLUSH, &tty_saved);
    tty_echo_off = 0;
    for (size_t i = 0; i < sizeof tty_signals / sizeof *tty_signals; i++)
      sigaction(tty_signals[i], &old[i], NULL);
    tty_fd = -1;
  }
  if (ret == -EIO)
    return hoist_err_set(err, EIO, "/dev/tty: cannot write the prompt");
  if (ret < 0)
    return hoist_err_set(err, HOIST_E_LIMIT, "an answer longer than %d bytes", SECRET_MAX);
  return 0;
}

/* The password on stdin (--password-stdin): all of it, less one final line
 * break, as docker and podman read it. Caller frees. */
static int stdin_password(char **out, hoist_err **err) {
  char *data = NULL;
  size_t len = 0;
  if (hoist_fs_read_fd(STDIN_FILENO, SECRET_MAX, "stdin", &data, &len, err) < 0)
    return hoist_err_wrap(err, "--password-stdin");
  if (len && data[len - 1] == '\n')
    data[--len] = '\0';
  if (len && data[len - 1] == '\r')
    data[--len] = '\0';
  if (!len || memchr(data, '\0', len)) {
    free(data);
    return hoist_err_set(err, EINVAL, "--password-stdin: %s",
                         len ? "the password holds a NUL byte" : "no password on stdin");
  }
  *out = data;
  return 0;
}

static void secret_free(char **s) {
  if (*s)
    explicit_bzero(*s, strlen(*s));
  free(*s);
}
#define _cleanup_secret_ __attribute__((cleanup(secret_free)))

/* HOST[:PORT][/PATH], written as the auth file's keys are or as a URL
 * ("https://host/"), without scheme and trailing '/'. Caller frees. */
static char *login_key(const char *arg) {
  if (strncmp(arg, "https://", 8) == 0)
    arg += 8;
  else if (strncmp(arg, "http://", 7) == 0)
    arg += 7;
  else if (strncmp(arg, "docker://", 9) == 0)
    arg += 9;
  char *k = hoist_strdup(arg);
  size_t n = strlen(k);
  while (n && k[n - 1] == '/')
    k[--n] = '\0';
  return k;
}

static int login_run(int argc, char **argv) {
  _cleanup_regopts_ cli_regopts ro = {0};
  const char *username = NULL;
  bool password_stdin = false;
  const cli_opt opts[] = {
      CLI_STRING("username", &username, .letter = 'u'),
      CLI_FLAG("password-stdin", &password_stdin),
      CLI_STRING("authfile", &ro.o.auth_file),
      CLI_GROUP(cli_regopts_tls_opts, &ro),
      CLI_END,
  };
  int rc = cli_parse_opts("login", usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (argc - optind != 1)
    return cli_usage("login", "expected one registry (HOST[:PORT][/PATH])");
  _cleanup_free_ char *key = login_key(argv[optind]);
  _cleanup_free_ char *host = strndup(key, strcspn(key, "/"));
  if (!host)
    abort();
  if (!*host || strpbrk(key, " \t\n@"))
    return cli_usage("login", "bad registry \"%s\"", argv[optind]);
  if (password_stdin && !username)
    return cli_usage("login", "--password-stdin needs --username");
  if (username && (!*username || strchr(username, ':')))
    return cli_usage("login", "a username is not empty and has no ':'");

  hoist_err *err = NULL;
  _cleanup_free_ char *path = cli_env_auth_file(ro.o.auth_file);
  _cleanup_free_ char *user = username ? hoist_strdup(username) : NULL;
  _cleanup_secret_ char *password = NULL;
  if (!user && tty_ask("Username: ", false, &user, &err) < 0)
    return cli_fail("login", err);
  if (!*user || strchr(user, ':'))
    return cli_usage("login", "a username is not empty and has no ':'");
  if (password_stdin ? stdin_password(&password, &err) < 0
                     : tty_ask("Password: ", true, &password, &err) < 0)
    return cli_fail("login", err);

  /* the credentials are checked as given, whatever the auth files hold */
  _cleanup_secret_ char *creds = hoist_asprintf("%s:%s", user, password);
  ro.o.creds = creds;
  ro.o.auth_file = NULL;
  _cleanup_registry_ hoist_registry *r = NULL;
  if (cli_regopts_open(&ro, false, &r, &err) < 0 || hoist_registry_ping(r, host, &err) < 0 ||
      hoist_creds_store(path, key, user, password, &err) < 0)
    return cli_fail("login", err);
  printf("Login Succeeded!\n");
  return EXIT_OK;
}

HOIST_VERB(login, "login", "check credentials against a registry and keep them", login_run);
