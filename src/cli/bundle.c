/* hoist bundle verify|stage|fetch|apply|publish: runtime bundle tarballs
 * (apply and publish are in bundle_image.c). */
#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "bundle.h"
#include "hoist/bundle.h"

static const char usage_text[] =
    "Usage: hoist bundle COMMAND [OPTIONS]\n"
    "\n"
    "Runtime bundle tarballs (a gzip tar with one top-level directory holding an\n"
    "install-root payload and manifest.json).\n"
    "\n"
    "Commands:\n"
    "  verify TARBALL   run every check of the bundle contract; writes nothing\n"
    "  stage TARBALL    verify and stage the payload under DIR/ARCH/BUNDLE_NAME\n"
    "  fetch URL        download a bundle once into the cache and print its path\n"
    "  apply DIR        add a staged bundle to a base image as one new layer\n"
    "  publish          stage, apply and push every architecture, then one index\n"
    "\n"
    "Run 'hoist bundle COMMAND --help' for a command's options.\n";

static const char verify_usage[] =
    "Usage: hoist bundle verify TARBALL [--arch amd64|arm64 | --platform linux/ARCH]\n"
    "\n"
    "Reads TARBALL once and runs every check of the runtime bundle contract in order;\n"
    "exits 1 with the first failure. Nothing is written.\n"
    "\n"
    "Options:\n"
    "  --arch ARCH          target architecture: amd64 or arm64 (default: the host's)\n"
    "  --platform P         target platform, linux/amd64 or linux/arm64\n"
    "  --max-size N         refuse more than N bytes of member data (K, M, G suffixes;\n"
    "                       default 4G)\n"
    "  --max-entries N      refuse more than N tar members (default 100000)\n"
    "  --json               print the bundle's summary as JSON\n"
    "  -h, --help           show this help\n";

static const char stage_usage[] =
    "Usage: hoist bundle stage TARBALL [--arch ARCH | --platform linux/ARCH] [--into DIR]\n"
    "\n"
    "Verifies TARBALL and stages its payload at DIR/ARCH/BUNDLE_NAME in the same pass.\n"
    "The old stage of ARCH is removed first; the new one appears only when every\n"
    "check passed.\n"
    "\n"
    "Options:\n"
    "  --into DIR           stage directory (default " HOIST_BUNDLE_DEFAULT_STAGE_DIR ")\n"
    "  --arch ARCH          target architecture: amd64 or arm64 (default: the host's)\n"
    "  --platform P         target platform, linux/amd64 or linux/arm64\n"
    "  --max-size N         refuse more than N bytes of member data (default 4G)\n"
    "  --max-entries N      refuse more than N tar members (default 100000)\n"
    "  --json               print the staged directory and summary as JSON\n"
    "  -h, --help           show this help\n";

static const char fetch_usage[] =
    "Usage: hoist bundle fetch URL --arch ARCH [--sha256 HEX] [--cache DIR]\n"
    "\n"
    "Downloads URL (http, https or file) once into\n"
    "DIR/ARCH-SHA256(URL)-BASENAME and prints that path; a cached file is reused.\n"
    "\n"
    "Options:\n"
    "  --arch ARCH          architecture of the bundle: amd64 or arm64\n"
    "  --platform P         linux/amd64 or linux/arm64 instead of --arch\n"
    "  --sha256 HEX         expected sha256 of the tarball; a mismatch is not cached\n"
    "  --cache DIR          cache directory (default " HOIST_BUNDLE_DEFAULT_CACHE_DIR ")\n"
    "  --json               print {\"path\": ..., \"cached\": ...}\n"
    "  -h, --help           show this help\n";

static void show_progress(uint64_t done, uint64_t total, void *userdata) {
  const char *what = userdata;
  if (total)
    fprintf(stderr, "\r%s: %3u%% (%llu/%llu MiB)", what, (unsigned)(done * 100 / total),
            (unsigned long long)(done >> 20), (unsigned long long)(total >> 20));
  else
    fprintf(stderr, "\r%s: %llu MiB", what, (unsigned long long)(done >> 20));
  fflush(stderr);
}

static void end_progress(bool shown) {
  if (shown)
    fprintf(stderr, "\r\033[K");
}

typedef struct args {
  const char *verb;
  const char *usage;
  const char *operand;
  const char *arch, *platform, *into, *sha256, *cache;
  uint64_t max_size, max_entries;
  bool allow_into, allow_fetch, json;
  const char *resolved_arch; /* from arch or platform */
  bool tty;                  /* progress is shown */
} args;

int cli_bundle_opt_max_size(const char *verb, const char *arg, void *dest) {
  if (!hoist_size_parse(arg, dest))
    return cli_usage(verb, "--max-size: not a size: %s", arg), -1;
  return 0;
}

int cli_bundle_opt_max_entries(const char *verb, const char *arg, void *dest) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(arg, &end, 10);
  if (errno || *end || end == arg || !v || arg[0] == '-')
    return cli_usage(verb, "--max-entries: not a positive number: %s", arg), -1;
  *(uint64_t *)dest = v;
  return 0;
}

/* fetch reads no tarball: its --max-entries is refused, in the words of a
 * bad value. */
static int refuse_max_entries(const char *verb, const char *arg, void *dest) {
  (void)dest;
  return cli_usage(verb, "--max-entries: not a positive number: %s", arg), -1;
}

/* Parses the options and the operand of a->verb, and resolves the
 * architecture. Returns -1 to go on, else the exit code. */
static int parse(args *a, int argc, char **argv) {
  const cli_opt opts[] = {
      CLI_STRING("arch", &a->arch),
      CLI_STRING("platform", &a->platform),
      CLI_CALL("max-size", cli_bundle_opt_max_size, &a->max_size,
               .refuse = a->allow_fetch ? "unknown option --max-size" : NULL),
      CLI_CALL("max-entries", a->allow_fetch ? refuse_max_entries : cli_bundle_opt_max_entries,
               &a->max_entries),
      CLI_STRING("into", &a->into, .refuse = a->allow_into ? NULL : "unknown option --into"),
      CLI_STRING("sha256", &a->sha256, .refuse = a->allow_fetch ? NULL : "unknown option --sha256"),
      CLI_STRING("cache", &a->cache, .refuse = a->allow_fetch ? NULL : "unknown option --cache"),
      CLI_FLAG("json", &a->json),
      CLI_END,
  };
  int rc = cli_parse_opts(a->verb, a->usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (a->arch && a->platform)
    return cli_usage(a->verb, "--arch and --platform are exclusive");
  if (optind >= argc)
    return cli_usage(a->verb, "missing %s", a->allow_fetch ? "URL" : "TARBALL");
  if (optind + 1 < argc)
    return cli_usage(a->verb, "unexpected argument: %s", argv[optind + 1]);
  a->operand = argv[optind];
  if (a->allow_fetch && !a->arch && !a->platform)
    return cli_usage(a->verb, "--arch is required");
  hoist_err *err = NULL;
  if (hoist_bundle_arch_resolve(a->arch, a->platform, &a->resolved_arch, &err) < 0)
    return cli_fail(a->verb, err);
  a->tty = cli_stderr_is_tty();
  return -1;
}

/* Prints obj as one line of JSON on stdout and releases it. */
static void print_json(json_t *obj) { cli_json_print(stdout, obj, JSON_COMPACT | JSON_SORT_KEYS); }

static json_t *info_json(const hoist_bundle_info *i) {
  return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "bundle_name", i->bundle_name,
                   "bundle_version", i->bundle_version, "architecture", i->architecture,
                   "created_at", i->created_at, "manifest_entries", (json_int_t)i->n_files,
                   "payload_bytes", (json_int_t)i->payload_bytes);
}

/* verify or stage (stage true) with the parsed arguments a. */
static int check(const args *a, bool stage) {
  hoist_err *err = NULL;
  hoist_bundle_opts o = {.arch = a->resolved_arch,
                         .max_size = a->max_size,
                         .max_entries = a->max_entries,
                         .progress = a->tty ? show_progress : NULL,
                         .progress_userdata = (void *)a->operand};
  hoist_bundle_info *info = NULL;
  if (stage) {
    char *dir = NULL;
    int r = hoist_bundle_stage(a->operand, a->into, &o, &dir, &info, &err);
    end_progress(a->tty);
    if (r < 0)
      return cli_fail(a->verb, err);
    if (a->json) {
      json_t *j = info_json(info);
      json_object_set_new(j, "staged_at", json_string(dir));
      print_json(j);
    } else {
      printf("Runtime bundle staged at %s\n", dir);
    }
    free(dir);
  } else {
    int r = hoist_bundle_verify(a->operand, &o, &info, &err);
    end_progress(a->tty);
    if (r < 0)
      return cli_fail(a->verb, err);
    if (a->json)
      print_json(info_json(info));
    else
      printf("Runtime bundle verified: %s %s (%s), %zu manifest entries\n", info->bundle_name,
             info->bundle_version, info->architecture, info->n_files);
  }
  hoist_bundle_info_free(info);
  return EXIT_OK;
}

/* fetch with the parsed arguments a. */
static int fetch(const args *a) {
  hoist_err *err = NULL;
  hoist_bundle_fetch_opts o = {.arch = a->resolved_arch,
                               .sha256 = a->sha256,
                               .cache_dir = a->cache,
                               .progress = a->tty ? show_progress : NULL,
                               .progress_userdata = (void *)a->operand};
  char *path = NULL;
  bool cached = false;
  int r = hoist_bundle_fetch(a->operand, &o, &path, &cached, &err);
  end_progress(a->tty);
  if (r < 0)
    return cli_fail(a->verb, err);
  if (cached)
    hoist_info("using cached %s", path);
  if (a->json)
    print_json(json_pack("{s:s, s:b}", "path", path, "cached", cached));
  else
    printf("%s\n", path);
  free(path);
  return EXIT_OK;
}

static int run_bundle(int argc, char **argv) {
  if (argc < 2) {
    fputs(usage_text, stderr);
    return EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    fputs(usage_text, stdout);
    return EXIT_OK;
  }
  /* getopt's messages name it so (cmd ? : the sanitizer build's compiler
   * cannot see that strcmp has ruled out NULL) */
  argv[1] = hoist_asprintf("hoist bundle %s", cmd ? cmd : "");
  bool stage = strcmp(cmd, "stage") == 0, fetching = strcmp(cmd, "fetch") == 0;
  if (stage || fetching || strcmp(cmd, "verify") == 0) {
    args a = {.verb = stage      ? "bundle stage"
                      : fetching ? "bundle fetch"
                                 : "bundle verify",
              .usage = stage      ? stage_usage
                       : fetching ? fetch_usage
                                  : verify_usage,
              .allow_into = stage,
              .allow_fetch = fetching};
    int rc = parse(&a, argc - 1, argv + 1);
    if (rc >= 0)
      return rc;
    return fetching ? fetch(&a) : check(&a, stage);
  }
  if (strcmp(cmd, "apply") == 0)
    return cli_bundle_apply(argc - 1, argv + 1);
  if (strcmp(cmd, "publish") == 0)
    return cli_bundle_publish(argc - 1, argv + 1);
  return cli_usage("bundle", "unknown command '%s'", cmd);
}

HOIST_VERB(bundle, "bundle", "verify, stage, fetch, apply and publish runtime bundles", run_bundle);
