/* hoist run: one command in an image's root filesystem, in the sandbox, with a throwaway upper
 * dir. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "env.h"
#include "hoist/fs.h"
#include "hoist/ref.h"
#include "hoist/registry.h"
#include "hoist/sandbox.h"
#include "hoist/unpack.h"
#include "regopts.h"
#include "sandboxopts.h"

#define VERB "run"
#define EXIT_TIMEOUT 124
#define EXIT_LIMIT 137 /* as killed by SIGKILL */

static const char usage[] =
    "Usage: hoist run REF|oci:DIR[:TAG] [OPTIONS] [--] [CMD [ARG...]]\n\n"
    "Runs CMD (default: the image's Entrypoint and Cmd) inside the image's root\n"
    "filesystem, as `podman run --rm` would, without a daemon: new mount, PID, UTS,\n"
    "IPC and network namespaces, a user namespace whose root is not host root (as\n"
    "root: when root has subordinate ids), the runtime spec's /proc masks, no device\n"
    "nodes, a seccomp filter, a cgroup with memory and process limits, an overlay on\n"
    "the cached unpacked image so the image is never modified, and a throwaway upper\n"
    "directory removed afterwards. The command's exit status becomes hoist's (128+N\n"
    "when killed by signal N, 124 on timeout, 137 when a limit killed it).\n"
    "Environment, working directory and user come from the image config.\n"
    "A registry reference is pulled first into the image store, as `hoist pull`.\n"
    "The command's stdout and stderr pass through byte for byte; its stdin is\n"
    "/dev/null unless -i.\n\n"
    "Options:\n"
    "  -i, --interactive            forward hoist's stdin to the command (at its end,\n"
    "                               the command's stdin ends)\n"
    "  -t, --tty                    a pseudo-terminal as the command's stdin, stdout,\n"
    "                               stderr and controlling terminal (/dev/console):\n"
    "                               with -i and a terminal on stdin, that terminal is\n"
    "                               put in raw mode until the command ends, keys such\n"
    "                               as Ctrl-C reach the command, and its window size\n"
    "                               follows; stderr then arrives on stdout\n"
    "  -v, --volume HOST:CTR[:ro|rw]\n"
    "                               bind the host file or directory HOST (a path) at\n"
    "                               CTR in the image (nosuid, nodev; :ro read-only);\n"
    "                               writes land in HOST, with the ids of the user\n"
    "                               namespace (as root: the subordinate ones)\n"
    "  --entrypoint CMD|JSON        replace the image's Entrypoint: one word, or a\n"
    "                               JSON array of strings ('' or '[]': none); the\n"
    "                               command's arguments follow it (the image's Cmd is\n"
    "                               not used then, as podman does)\n"
    "  --rm                         accepted for podman's habits: a run's changes are\n"
    "                               always thrown away (see --keep-upper)\n"
    "  -e, --env NAME=VALUE         set an environment variable (repeatable)\n"
    "  -u, --user USER[:GROUP]      run as this user (default: the image's User)\n"
    "  -w, --workdir DIR            working directory (default: the image's WorkingDir)\n"
    "  --platform OS/ARCH[/VARIANT] image of a multi-platform index (default: host)\n"
    "  --keep-upper DIR             keep the changes, as an overlayfs upper dir, in DIR\n"
    "                               (must not exist or be empty)\n"
    "  --no-overlay                 run on a copy of the image and diff it (the fallback\n"
    "                               used when overlayfs cannot be mounted)\n"
    "  --allow-mknod                let root create device nodes (never usable: every\n"
    "                               mount is nodev)\n"
    "  --allow-foreign-urls         fetch non-distributable (foreign) layers from their\n"
    "                               urls (http/https; size and digest checked)\n"
    "  -h, --help                   show this help\n" VERIFY_KEY_HELP "\n" SBOPTS_HELP
    "\n" REGOPTS_HELP;

/* -e NAME=VALUE: one more entry of a hoist_strv. */
static int opt_env(const char *verb, const char *arg, void *dest) {
  if (!strchr(arg, '=') || arg[0] == '=')
    return cli_usage(verb, "--env: expected NAME=VALUE, not %s", arg), -1;
  hoist_strv_add(dest, arg);
  return 0;
}

/* -w DIR: an absolute path, into a const char *. */
static int opt_workdir(const char *verb, const char *arg, void *dest) {
  if (arg[0] != '/')
    return cli_usage(verb, "--workdir: expected an absolute path"), -1;
  *(const char **)dest = arg;
  return 0;
}

/* -v HOST:CTR[:ro|rw]: one more bind. HOST a path (with a slash: a name
 * would be a podman named volume), which the run checks; CTR absolute. */
static int opt_volume(const char *verb, const char *arg, void *dest) {
  hoist_strv *v = dest;
  const char *colon = strchr(arg, ':');
  if (!colon || colon == arg || colon[1] != '/')
    return cli_usage(verb, "--volume: expected HOST:CTR[:ro|rw] with an absolute CTR, not %s", arg),
           -1;
  if (!memchr(arg, '/', (size_t)(colon - arg)))
    return cli_usage(verb, "--volume: %.*s: named volumes are not supported: give a path",
                     (int)(colon - arg), arg),
           -1;
  const char *mode = strchr(colon + 1, ':');
  if (mode && strcmp(mode, ":ro") != 0 && strcmp(mode, ":rw") != 0)
    return cli_usage(verb, "--volume: expected the option ro or rw, not %s", mode + 1), -1;
  hoist_strv_add(v, arg);
  return 0;
}

/* The binds of the -v arguments, pointing into them (split in place). */
static hoist_sandbox_bind *volumes_binds(hoist_strv *vols) {
  hoist_sandbox_bind *b = hoist_malloc0((vols->n + 1) * sizeof *b);
  for (size_t i = 0; i < vols->n; i++) {
    char *host = vols->v[i], *ctr = strchr(host, ':'), *mode;
    *ctr++ = '\0';
    mode = strchr(ctr, ':');
    if (mode)
      *mode++ = '\0';
    b[i] = (hoist_sandbox_bind){host, ctr, !mode || strcmp(mode, "rw") == 0};
  }
  return b;
}

/* --entrypoint: a JSON array of strings or a single word, as a hoist_strv. */
static int opt_entrypoint(const char *verb, const char *arg, void *dest) {
  hoist_strv *v = dest;
  hoist_strv_clear(v);
  if (arg[0] != '[') {
    if (arg[0])
      hoist_strv_add(v, arg);
    return 0;
  }
  json_t *a = json_loads(arg, JSON_REJECT_DUPLICATES, NULL);
  size_t i;
  json_t *it;
  bool ok = json_is_array(a);
  json_array_foreach(a, i, it) {
    ok = ok && json_is_string(it);
    if (ok)
      hoist_strv_add(v, json_string_value(it));
  }
  json_decref(a);
  if (!ok)
    return cli_usage(verb, "--entrypoint: expected a JSON array of strings or a word, not %s", arg),
           -1;
  return 0;
}

/* The command: entrypoint (when given, replacing the image's) then args; or,
 * with no args and no --entrypoint, the image's Entrypoint followed by its
 * Cmd. Borrowed strings in a NULL-terminated array the caller frees; NULL
 * when that is empty. */
static char **command_of(hoist_config *cfg, const hoist_strv *entrypoint, bool have_entrypoint,
                         char **args) {
  json_t *sec = hoist_config_section(cfg);
  json_t *parts[2] = {NULL, NULL};
  size_t n_args = 0;
  while (args[n_args])
    n_args++;
  if (!have_entrypoint && !n_args) {
    parts[0] = json_object_get(sec, "Entrypoint");
    parts[1] = json_object_get(sec, "Cmd");
  }
  size_t n = entrypoint->n + n_args + json_array_size(parts[0]) + json_array_size(parts[1]);
  char **v = hoist_malloc0((n + 1) * sizeof(char *));
  size_t k = 0;
  for (size_t i = 0; have_entrypoint && i < entrypoint->n; i++)
    v[k++] = entrypoint->v[i];
  for (size_t i = 0; i < n_args; i++)
    v[k++] = args[i];
  for (int p = 0; p < 2; p++) {
    size_t i;
    json_t *it;
    json_array_foreach(parts[p], i, it) {
      if (json_is_string(it))
        v[k++] = (char *)json_string_value(it);
    }
  }
  if (k == 0) {
    free(v);
    return NULL;
  }
  return v;
}

/* ------------------------------------------------------------ terminal */

/* hoist's terminal in raw mode while a -it command runs: its settings are
 * put back at the end and by a signal that ends the process, which then does
 * what it would have. Window size changes reach the library through a pipe. */
static struct termios term_saved;
static volatile sig_atomic_t term_raw;
static int winch_pipe[2] = {-1, -1};
static const int term_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static void term_restore_on(int sig) {
  if (term_raw)
    tcsetattr(0, TCSAFLUSH, &term_saved);
  signal(sig, SIG_DFL);
  raise(sig);
}

static void on_winch(int sig) {
  (void)sig;
  int e = errno;
  ssize_t w = write(winch_pipe[1], "w", 1);
  (void)w; /* a full pipe already says it */
  errno = e;
}

/* Sets up the terminal side of -t: the window size source and its
 * SIGWINCH pipe, and raw mode when input comes from a terminal (-i). */
static void term_start(hoist_sandbox_stdio *io, bool interactive) {
  io->size_fd = isatty(0) ? 0 : isatty(1) ? 1 : -1;
  if (io->size_fd >= 0 && pipe2(winch_pipe, O_CLOEXEC | O_NONBLOCK) == 0) {
    struct sigaction sa = {.sa_handler = on_winch, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGWINCH, &sa, NULL);
    io->winch_fd = winch_pipe[0];
  }
  if (!interactive || !isatty(0) || tcgetattr(0, &term_saved) < 0)
    return;
  struct sigaction sa = {.sa_handler = term_restore_on};
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof term_signals / sizeof *term_signals; i++)
    sigaction(term_signals[i], &sa, NULL);
  struct termios raw = term_saved;
  cfmakeraw(&raw);
  term_raw = tcsetattr(0, TCSANOW, &raw) == 0;
}

static void term_end(void) {
  if (term_raw)
    tcsetattr(0, TCSAFLUSH, &term_saved);
  term_raw = 0;
  signal(SIGWINCH, SIG_DFL);
}

static int exit_code(const hoist_sandbox_opts *so, const hoist_sandbox_result *res) {
  _cleanup_free_ char *end = hoist_sandbox_end_text(so, res);
  if (res->end == HOIST_SANDBOX_TIMED_OUT) {
    fprintf(stderr, "hoist run: %s; everything it started was killed\n", end);
    return EXIT_TIMEOUT;
  }
  if (end) {
    fprintf(stderr, "hoist run: killed: %s\n", end);
    return EXIT_LIMIT;
  }
  if (res->tmp_full)
    fprintf(stderr, "hoist run: /tmp was full when the command ended (--tmp-size)\n");
  if (WIFEXITED(res->status))
    return WEXITSTATUS(res->status);
  if (WIFSIGNALED(res->status))
    return 128 + WTERMSIG(res->status);
  return EXIT_FAIL;
}

static int run(int argc, char **argv) {
  /* Options end at "--"; without it, at the first word after IMAGE. */
  int opt_end = argc;
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--") == 0) {
      opt_end = i;
      break;
    }
  bool dashdash = opt_end < argc;

  _cleanup_sandboxopts_ cli_sandboxopts sbo = {0};
  hoist_sandbox_opts *so = &sbo.o;
  const char *platform_s = NULL, *keep = NULL, *user = NULL, *workdir = NULL;
  bool foreign = false, interactive = false, tty = false, rm = false;
  _cleanup_strv_ hoist_strv extra_env = HOIST_STRV_INIT;
  _cleanup_strv_ hoist_strv volumes = HOIST_STRV_INIT, entrypoint = HOIST_STRV_INIT;
  _cleanup_free_ hoist_sandbox_bind *binds = NULL;
  const char *entrypoint_arg = NULL;
  _cleanup_regopts_ cli_regopts ro = {0};
  const cli_opt opts[] = {
      CLI_GROUP(cli_sandboxopts_opts, &sbo),
      CLI_FLAG("allow-mknod", &so->mknod),
      CLI_FLAG("interactive", &interactive, .letter = 'i'),
      CLI_FLAG("tty", &tty, .letter = 't'),
      CLI_CALL("volume", opt_volume, &volumes, .letter = 'v'),
      CLI_STRING("entrypoint", &entrypoint_arg),
      CLI_FLAG("rm", &rm),
      CLI_CALL("env", opt_env, &extra_env, .letter = 'e'),
      CLI_STRING("user", &user, .letter = 'u'),
      CLI_CALL("workdir", opt_workdir, &workdir, .letter = 'w'),
      CLI_STRING("platform", &platform_s),
      CLI_STRING("keep-upper", &keep),
      CLI_FLAG("no-overlay", &so->force_copy),
      CLI_FLAG("allow-foreign-urls", &foreign),
      CLI_GROUP(cli_regopts_opts, &ro),
      CLI_GROUP(cli_verify_key_opts, &ro),
      CLI_END,
  };
  int rc = cli_parse_opts_as(&(cli_args){.verb = VERB, .usage = usage, .in_order = !dashdash}, opts,
                             opt_end, argv);
  if (rc >= 0)
    return rc;
  if (cli_sandboxopts_finish(&sbo, VERB) < 0)
    return EXIT_USAGE;
  (void)rm; /* the changes are always thrown away */
  if (entrypoint_arg && opt_entrypoint(VERB, entrypoint_arg, &entrypoint) < 0)
    return EXIT_USAGE;
  so->log_fd = -1;
  hoist_sandbox_stdio io = {
      .in = interactive ? 0 : -1, .out = 1, .err = 2, .tty = tty, .size_fd = -1, .winch_fd = -1};
  so->stdio = &io;
  binds = volumes_binds(&volumes);
  so->binds = binds;
  so->n_binds = volumes.n;
  if (optind >= opt_end)
    return cli_usage(VERB, "expected an image");
  if (dashdash && optind + 1 != opt_end)
    return cli_usage(VERB, "expected one image before --, got %s", argv[optind + 1]);
  const char *src = argv[optind];
  char **cmd = dashdash ? argv + opt_end + 1 : argv + optind + 1;

  _cleanup_loc_ hoist_loc *loc = NULL;
  _cleanup_platform_ hoist_platform *platform = NULL;
  rc = cli_image_layout(&ro, VERB, "image", src, platform_s, &loc, &platform);
  if (rc >= 0)
    return rc;
  hoist_err *err = NULL;

  rc = EXIT_FAIL;
  hoist_store *store = NULL;
  _cleanup_manifest_ hoist_manifest *m = NULL;
  _cleanup_config_ hoist_config *cfg = NULL;
  _cleanup_free_ char *cdata = NULL, *rootfs = NULL, *tmp = NULL, *upper = NULL, *work = NULL;
  _cleanup_close_ int hold = -1; /* the rootfs, against a prune while the command runs */
  _cleanup_free_ char *rootfs_cache = cli_env_rootfs_cache();
  _cleanup_free_ char **default_cmd = NULL;
  char **env = NULL;
  size_t clen = 0;
  hoist_unpack_opts uo = {.owners = HOIST_OWNER_AUTO};
  hoist_unpack_report rep = {0};
  /* the image unpacked with the owners the run's user namespace sees */
  hoist_idmap um[2], gm[2];
  size_t nu = 0, ng = 0;
  if (hoist_sandbox_id_maps(so, um, &nu, gm, &ng, &err) < 0) {
    rc = cli_fail(VERB, err);
    goto out;
  }
  if (geteuid() == 0 && nu) {
    uo.uid_map = um;
    uo.n_uid_map = nu;
    uo.gid_map = gm;
    uo.n_gid_map = ng;
  }
  if (hoist_store_open(loc->dir, false, &store, &err) < 0 ||
      hoist_unpack_resolve(store, loc->tag, platform, &m, &err) < 0 ||
      (foreign && cli_fetch_foreign(&ro, store, m, &err) < 0) ||
      hoist_store_read_blob(store, m->config.digest, HOIST_MANIFEST_MAX, &cdata, &clen, &err) < 0 ||
      hoist_config_parse(cdata, clen, &cfg, &err) < 0 ||
      hoist_unpack_cached(store, m, rootfs_cache, &uo, &rootfs, NULL, &hold, &rep, &err) < 0) {
    rc = cli_fail(VERB, err);
    goto out;
  }
  default_cmd = command_of(cfg, &entrypoint, entrypoint_arg != NULL, cmd);
  if (!default_cmd) {
    rc = cli_usage(VERB, "the image has no Entrypoint or Cmd: give a command");
    goto out;
  }
  cmd = default_cmd;
  if (hoist_sandbox_env(cfg, extra_env.v, &env, &err) < 0) {
    rc = cli_fail(VERB, err);
    goto out;
  }

  tmp = hoist_asprintf("%s/hoist-run-XXXXXX", cli_env_tmpdir("/tmp"));
  if (!mkdtemp(tmp)) {
    rc = cli_fail(VERB, (hoist_err_errno(&err, errno, "mkdtemp %s", tmp), err));
    free(tmp);
    tmp = NULL;
    goto out;
  }
  upper = keep ? hoist_strdup(keep) : hoist_asprintf("%s/upper", tmp);
  /* the overlay's work dir must share upper's filesystem: beside a kept upper */
  work = keep ? NULL : hoist_asprintf("%s/work", tmp);
  so->lower = rootfs;
  so->upper = upper;
  so->work = work;
  so->argv = cmd;
  so->env = env;
  so->cwd = workdir ? workdir : hoist_config_get_string(cfg, "WorkingDir");
  so->user = user ? user : hoist_config_get_string(cfg, "User");
  fflush(stdout);
  if (tty)
    term_start(&io, interactive);
  hoist_sandbox_result res;
  int run_rc = hoist_sandbox_run(so, &res, &err);
  if (tty)
    term_end();
  if (run_rc < 0) {
    rc = cli_fail(VERB, err);
    goto out;
  }
  rc = exit_code(so, &res);
  /* the kept changes with the owners the image saw, not the namespace's host ids */
  if (keep && geteuid() == 0 && nu && hoist_sandbox_unshift(upper, um, nu, gm, ng, &err) < 0)
    rc = cli_fail(VERB, err);
out:
  if (tmp) {
    _cleanup_err_ hoist_err *e = NULL;
    if (hoist_fs_rm_rf_at(AT_FDCWD, tmp, &e) < 0) {
      _cleanup_free_ char *t = hoist_err_text(e);
      fprintf(stderr, "hoist run: removing %s: %s\n", tmp, t);
    }
  }
  hoist_sandbox_strv_free(env);
  hoist_unpack_report_clear(&rep);
  hoist_store_close(store);
  return rc;
}

HOIST_VERB(run, VERB, "run a command inside an image (sandboxed, changes thrown away)", run);
