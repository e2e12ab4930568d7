#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "env.h"
#include "regopts.h"

/* --creds, --src-creds, --dest-creds: USER:PASSWORD into a const char *
 * (the value is not repeated in the message: it holds a password). */
static int opt_creds(const char *verb, const char *arg, void *dest) {
  if (!strchr(arg, ':'))
    return cli_usage(verb, "credentials must be USER:PASSWORD"), -1;
  *(const char **)dest = arg;
  return 0;
}

/* --insecure-registry: one more host on the cli_regopts's list. */
static int opt_insecure(const char *verb, const char *arg, void *dest) {
  (void)verb;
  cli_regopts *ro = dest;
  char **nv = realloc(ro->insecure, (ro->n_insecure + 2) * sizeof *nv);
  if (!nv)
    abort();
  nv[ro->n_insecure++] = (char *)arg;
  nv[ro->n_insecure] = NULL;
  ro->insecure = nv;
  return 0;
}

/* A --tls-verify value into o: true asks verified https of every host,
 * false https without verification. false for any other value. */
static bool tls_verify_set(hoist_registry_opts *o, const char *arg) {
  if (strcmp(arg, "true") == 0) {
    o->tls_skip_verify = false;
    o->tls_always = true;
  } else if (strcmp(arg, "false") == 0) {
    o->tls_skip_verify = true;
    o->tls_always = false;
  } else {
    return false;
  }
  return true;
}

/* --tls-verify: true or false, into a hoist_registry_opts. */
static int opt_tls_verify(const char *verb, const char *arg, void *dest) {
  if (!tls_verify_set(dest, arg))
    return cli_usage(verb, "--tls-verify takes true or false"), -1;
  return 0;
}

/* --src-tls-verify, --dest-tls-verify: true or false, kept as given. */
static int opt_side_tls_verify(const char *verb, const char *arg, void *dest) {
  hoist_registry_opts check = {0};
  if (!tls_verify_set(&check, arg))
    return cli_usage(verb, "--src-tls-verify and --dest-tls-verify take true or false"), -1;
  *(const char **)dest = arg;
  return 0;
}

/* --jobs: 1 to 64, into an int. */
static int opt_jobs(const char *verb, const char *arg, void *dest) {
  char *end = NULL;
  long n = strtol(arg, &end, 10);
  if (!*arg || *end || n < 1 || n > 64)
    return cli_usage(verb, "--jobs takes a number from 1 to 64"), -1;
  *(int *)dest = (int)n;
  return 0;
}

const cli_opt cli_regopts_tls_opts[] = {
    CLI_CALL_SELF("insecure-registry", opt_insecure),
    CLI_STRING_AT("ca-file", cli_regopts, o.ca_file),
    CLI_STRING_AT("cert", cli_regopts, o.cert_file),
    CLI_STRING_AT("key", cli_regopts, o.key_file),
    CLI_STRING_AT("cert-dir", cli_regopts, o.cert_dir),
    CLI_CALL_AT("tls-verify", opt_tls_verify, cli_regopts, o),
    CLI_STRING_AT("registries-conf", cli_regopts, registries_conf),
    CLI_END,
};

const cli_opt cli_regopts_opts[] = {
    CLI_CALL_AT("creds", opt_creds, cli_regopts, o.creds),
    CLI_STRING_AT("authfile", cli_regopts, o.auth_file),
    CLI_STRING_AT("secret", cli_regopts, o.secret_file),
    CLI_GROUP_SELF(cli_regopts_tls_opts),
    CLI_CALL_AT("jobs", opt_jobs, cli_regopts, o.jobs),
    CLI_FLAG_AT("json", cli_regopts, json),
    CLI_END,
};

const cli_opt cli_sides_opts[] = {
    CLI_CALL_AT("src-creds", opt_creds, cli_sides, src.creds),
    CLI_CALL_AT("dest-creds", opt_creds, cli_sides, dest.creds),
    CLI_STRING_AT("src-authfile", cli_sides, src.auth_file),
    CLI_STRING_AT("dest-authfile", cli_sides, dest.auth_file),
    CLI_STRING_AT("src-cert-dir", cli_sides, src.cert_dir),
    CLI_STRING_AT("dest-cert-dir", cli_sides, dest.cert_dir),
    CLI_CALL_AT("src-tls-verify", opt_side_tls_verify, cli_sides, src.tls_verify),
    CLI_CALL_AT("dest-tls-verify", opt_side_tls_verify, cli_sides, dest.tls_verify),
    CLI_END,
};

static bool side_given(const cli_side *s) {
  return s->creds || s->auth_file || s->cert_dir || s->tls_verify;
}

/* o with side's options in place of the shared ones: credentials given for
 * the side replace every shared source of them (--creds, --authfile,
 * --secret, $REGISTRY_SECRET). */
static void side_apply(hoist_registry_opts *o, const cli_side *side) {
  if (side->creds || side->auth_file) {
    o->creds = side->creds;
    o->auth_file = side->auth_file;
    o->secret_file = ""; /* none, and not $REGISTRY_SECRET either */
  }
  if (side->cert_dir)
    o->cert_dir = side->cert_dir;
  if (side->tls_verify && !tls_verify_set(o, side->tls_verify))
    abort(); /* opt_side_tls_verify took only true or false */
}

int cli_regopts_run(const char *verb, const char *usage, int n, const char *n_usage,
                    int (*run)(cli_regopts *ro, char **operands), int argc, char **argv) {
  _cleanup_regopts_ cli_regopts ro = {0};
  const cli_opt opts[] = {CLI_GROUP(cli_regopts_opts, &ro), CLI_END};
  int rc = cli_parse_opts(verb, usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (argc - optind != n)
    return cli_usage(verb, "%s", n_usage);
  return run(&ro, argv + optind);
}

const char *cli_registry_operand(const char *arg) {
  return strncmp(arg, "docker://", 9) == 0 ? arg + 9 : arg;
}

static hoist_regconf *regconf_loaded;

static void regconf_free(void) { hoist_regconf_free(steal_pointer(&regconf_loaded)); }

int cli_regconf(const char *given, const hoist_regconf **out, hoist_err **err) {
  if (!regconf_loaded) {
    cli_regconf_paths p;
    cli_env_regconf(given, &p);
    if (hoist_regconf_load(p.file, p.required, p.dirs, &regconf_loaded, err) < 0)
      return -1;
    atexit(regconf_free);
    _cleanup_free_ char *former = cli_env_former_registries_json();
    if (former)
      hoist_warn("%s is no longer read: registries.conf replaces it (README, \"Registries "
                 "configuration\")",
                 former);
  }
  *out = regconf_loaded;
  return 0;
}

int cli_ref_parse(const cli_regopts *ro, const char *s, hoist_ref **out, hoist_err **err) {
  const char *text = cli_registry_operand(s);
  if (!hoist_regconf_is_short(text))
    return hoist_ref_parse(text, out, err);
  const hoist_regconf *conf = NULL;
  if (cli_regconf(ro ? ro->registries_conf : NULL, &conf, err) < 0)
    return -1;
  _cleanup_free_ char *how = NULL;
  if (hoist_regconf_resolve(conf, text, out, &how, err) < 0)
    return -1;
  if (how) {
    _cleanup_free_ char *full = hoist_ref_string(*out);
    hoist_info("%s: %s, by the %s", text, full, how);
  }
  return 0;
}

int cli_ref_located(const cli_regopts *ro, const char *s, hoist_ref **out, hoist_err **err) {
  _cleanup_ref_ hoist_ref *ref = NULL;
  const hoist_regconf *conf = NULL;
  if (cli_ref_parse(ro, s, &ref, err) < 0 ||
      cli_regconf(ro ? ro->registries_conf : NULL, &conf, err) < 0)
    return -1;
  return hoist_regconf_push_target(conf, ref, out, err);
}

int cli_loc_parse(const cli_regopts *ro, const char *s, hoist_loc **out, hoist_err **err) {
  if (hoist_loc_parse(s, out, err) < 0)
    return -1;
  if ((*out)->kind != HOIST_LOC_REGISTRY)
    return 0;
  hoist_ref *ref = NULL;
  if (cli_ref_parse(ro, s, &ref, err) < 0) {
    hoist_loc_free(steal_pointer(out));
    return -1;
  }
  hoist_ref_free((*out)->ref);
  (*out)->ref = ref;
  return 0;
}

/* ------------------------------------------------------------ progress */

#define BAR_MAX 32

typedef struct bar {
  char id[20];
  uint64_t done, total;
  double start;
  bool finished;
} bar;

static pthread_mutex_t prog_lock = PTHREAD_MUTEX_INITIALIZER;
static bar bars[BAR_MAX];
static size_t n_bars;
static size_t drawn;
static double last_draw;
static bool prog_active;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void draw(void) {
  if (drawn)
    fprintf(stderr, "\033[%zuA", drawn);
  double t = now_s();
  for (size_t i = 0; i < n_bars; i++) {
    bar *b = &bars[i];
    double el = t - b->start > 0.001 ? t - b->start : 0.001;
    double rate = (double)b->done / el;
    char d[32], tot[32], rt[32];
    cli_human_size((double)b->done, d);
    cli_human_size((double)b->total, tot);
    cli_human_size(rate, rt);
    int width = 24;
    int fill = b->total ? (int)((double)b->done * width / (double)b->total) : 0;
    if (fill > width)
      fill = width;
    char barstr[32];
    for (int k = 0; k < width; k++)
      barstr[k] = k < fill ? '=' : ' ';
    barstr[width] = '\0';
    char eta[32] = "";
    if (b->finished)
      snprintf(eta, sizeof eta, "done");
    else if (rate > 0 && b->total > b->done)
      snprintf(eta, sizeof eta, "ETA %.0fs", (double)(b->total - b->done) / rate);
    fprintf(stderr, "\033[2K%-12s [%s] %s / %s  %s/s  %s\n", b->id, barstr, d, tot, rt, eta);
  }
  drawn = n_bars;
  fflush(stderr);
}

static void on_progress(void *ud, const char *id, uint64_t done, uint64_t total, bool finished) {
  (void)ud;
  pthread_mutex_lock(&prog_lock);
  bar *b = NULL;
  for (size_t i = 0; i < n_bars; i++)
    if (strcmp(bars[i].id, id) == 0)
      b = &bars[i];
  if (!b) {
    if (n_bars == BAR_MAX) {
      /* keep the display bounded: drop the oldest finished bar */
      size_t k = 0;
      while (k < n_bars && !bars[k].finished)
        k++;
      if (k == n_bars) {
        pthread_mutex_unlock(&prog_lock);
        return;
      }
      memmove(&bars[k], &bars[k + 1], (n_bars - k - 1) * sizeof *bars);
      n_bars--;
    }
    b = &bars[n_bars++];
    memset(b, 0, sizeof *b);
    snprintf(b->id, sizeof b->id, "%s", id);
    b->start = now_s();
  }
  b->done = done;
  if (total)
    b->total = total;
  b->finished = finished;
  double t = now_s();
  if (finished || t - last_draw > 0.1) {
    last_draw = t;
    draw();
  }
  pthread_mutex_unlock(&prog_lock);
}

void cli_progress_end(void) {
  pthread_mutex_lock(&prog_lock);
  if (prog_active && n_bars)
    draw();
  n_bars = 0;
  drawn = 0;
  pthread_mutex_unlock(&prog_lock);
}

int cli_regopts_open(cli_regopts *ro, bool progress, hoist_registry **out, hoist_err **err) {
  signal(SIGPIPE, SIG_IGN);
  ro->o.insecure = (const char *const *)ro->insecure;
  if (cli_regconf(ro->registries_conf, &ro->o.regconf, err) < 0)
    return -1;
  cli_env_registry(&ro->o);
  if (progress && !ro->json && cli_stderr_is_tty()) {
    ro->o.progress = on_progress;
    prog_active = true;
  }
  return hoist_registry_new(&ro->o, out, err);
}

void cli_regopts_free(cli_regopts *ro) {
  free(ro->insecure);
  ro->insecure = NULL;
}

/* --platform of a cli_transfer_args: the copy takes that image of an index. */
static int opt_transfer_platform(const char *verb, const char *arg, void *dest) {
  cli_transfer_args *t = dest;
  int r = cli_opt_platform(verb, arg, &t->platform);
  t->copy.platform = t->platform;
  return r;
}

const cli_opt cli_transfer_opts[] = {
    CLI_CALL_SELF("platform", opt_transfer_platform),
    CLI_FLAG_AT("all-platforms", cli_transfer_args, copy.all_platforms),
    CLI_FLAG_AT("oci", cli_transfer_args, copy.oci),
    {.kind = CLI_OPT_FLAG,
     .name = "quiet",
     .letter = 'q',
     .offset = CLI_OFFSET(cli_transfer_args, ro.quiet, bool)},
    CLI_GROUP_AT(cli_regopts_opts, cli_transfer_args, ro),
    CLI_END,
};

void cli_transfer_args_clear(cli_transfer_args *t) {
  cli_regopts_free(&t->ro);
  hoist_platform_free(steal_pointer(&t->platform));
  t->copy.platform = NULL;
}

/* A client for one side of a copy: ro's settings, side's in their place. */
HOIST_WUR static int side_open(const cli_regopts *ro, const cli_side *side, hoist_registry **out,
                               hoist_err **err) {
  cli_regopts mine = *ro; /* borrows ro's insecure list */
  side_apply(&mine.o, side);
  return cli_regopts_open(&mine, !ro->quiet, out, err);
}

int cli_transfer(const char *verb, cli_regopts *ro, const char *src, const char *dst,
                 const hoist_image_copy_opts *opts) {
  return cli_transfer_sides(verb, ro, NULL, src, dst, opts);
}

int cli_transfer_sides(const char *verb, cli_regopts *ro, const cli_sides *sides, const char *src,
                       const char *dst, const hoist_image_copy_opts *opts) {
  hoist_err *err = NULL;
  _cleanup_loc_ hoist_loc *s = NULL;
  _cleanup_loc_ hoist_loc *d = NULL;
  if (cli_loc_parse(ro, src, &s, &err) < 0 || cli_loc_parse(ro, dst, &d, &err) < 0)
    return cli_fail(verb, err);
  _cleanup_registry_ hoist_registry *r = NULL;
  _cleanup_registry_ hoist_registry *rd = NULL;
  /* one client serves both sides unless one has settings of its own */
  if (sides && (side_given(&sides->src) || side_given(&sides->dest))) {
    if (side_open(ro, &sides->src, &r, &err) < 0 || side_open(ro, &sides->dest, &rd, &err) < 0)
      return cli_fail(verb, err);
  } else if (cli_regopts_open(ro, !ro->quiet, &r, &err) < 0) {
    return cli_fail(verb, err);
  }
  if (cli_verify_before_use(ro, r, s, &err) < 0)
    return cli_fail(verb, err);
  hoist_image_copy_result res;
  hoist_transport_opts to = {.registry = r, .target_registry = rd, .tmp_dir = cli_env_tmpdir(NULL)};
  int ret = hoist_image_copy(&to, s, d, opts, &res, &err);
  cli_progress_end();
  if (ret == 0)
    ret = cli_sign_after_store(ro, rd ? rd : r, d, &err);
  if (ret < 0) {
    hoist_image_copy_result_clear(&res);
    return cli_fail(verb, err);
  }
  _cleanup_free_ char *sname = hoist_loc_string(s);
  _cleanup_free_ char *dname = hoist_loc_string(d);
  if (ro->quiet) {
    printf("%s\n", res.digest);
  } else if (ro->json) {
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:{s:I, s:I, s:I}, s:I}", "source", sname,
                          "destination", dname, "digest", res.digest, "mediaType",
                          res.media_type ? res.media_type : "", "manifests",
                          (json_int_t)res.manifests, "blobs", "transferred",
                          (json_int_t)res.blobs_uploaded, "present", (json_int_t)res.blobs_skipped,
                          "mounted", (json_int_t)res.blobs_mounted, "bytes", (json_int_t)res.bytes);
    cli_print_json(j);
  } else {
    char b[32];
    cli_human_size((double)res.bytes, b);
    printf("%s -> %s %s (blobs: %llu transferred, %llu present, %llu mounted; %s)\n", sname, dname,
           res.digest, (unsigned long long)res.blobs_uploaded,
           (unsigned long long)res.blobs_skipped, (unsigned long long)res.blobs_mounted, b);
  }
  hoist_image_copy_result_clear(&res);
  return EXIT_OK;
}

char *cli_image_store(void) { return cli_env_image_store(); }

int cli_pull_to_store(cli_regopts *ro, hoist_registry *r, const hoist_loc *src,
                      const hoist_platform *platform, hoist_loc **out, hoist_err **err) {
  _cleanup_registry_ hoist_registry *own = NULL;
  if (src->kind == HOIST_LOC_REGISTRY && !r) {
    if (cli_regopts_open(ro, true, &own, err) < 0)
      return -1;
    r = own;
  }
  /* verified first: nothing of an image refused reaches the store */
  _cleanup_loc_ hoist_loc *pinned = hoist_loc_dup(src);
  if (cli_verify_before_use(ro, r, pinned, err) < 0)
    return -1;
  _cleanup_free_ char *store = cli_image_store();
  hoist_transport_opts to = {.registry = r, .tmp_dir = cli_env_tmpdir(NULL)};
  int ret = hoist_image_pull(&to, store, pinned, platform, out, err);
  cli_progress_end();
  return ret;
}

int cli_image_layout(cli_regopts *ro, const char *verb, const char *what, const char *operand,
                     const char *platform_s, hoist_loc **loc, hoist_platform **platform) {
  hoist_err *err = NULL;
  _cleanup_loc_ hoist_loc *l = NULL;
  if (hoist_loc_parse(operand, &l, &err) < 0) {
    hoist_err_free(err);
    return cli_usage(verb, "bad %s %s", what, operand);
  }
  hoist_loc_free(steal_pointer(&l));
  if (cli_loc_parse(ro, operand, &l, &err) < 0)
    return cli_fail(verb, err);
  if (platform_s && hoist_platform_parse(platform_s, platform, &err) < 0) {
    hoist_err_free(err);
    return cli_usage(verb, "bad platform %s", platform_s);
  }
  /* a registry image is pulled into the image store first, unless it is there already */
  if (l->kind != HOIST_LOC_LAYOUT && cli_pull_to_store(ro, NULL, l, *platform, loc, &err) < 0)
    return cli_fail(verb, err);
  if (l->kind == HOIST_LOC_LAYOUT) {
    if (cli_verify_before_use(ro, NULL, l, &err) < 0)
      return cli_fail(verb, err);
    *loc = steal_pointer(&l);
  }
  return -1;
}

char *cli_image_store_location(const hoist_ref *ref) {
  _cleanup_free_ char *store = cli_image_store();
  return hoist_image_store_location(store, ref);
}

int cli_fetch_foreign(cli_regopts *ro, hoist_store *s, const hoist_manifest *m, hoist_err **err) {
  _cleanup_registry_ hoist_registry *r = NULL;
  if (cli_regopts_open(ro, true, &r, err) < 0)
    return -1;
  size_t n = 0;
  int ret = hoist_image_fetch_foreign(r, s, m, &n, err);
  cli_progress_end();
  if (ret == 0 && n)
    hoist_info("fetched %zu non-distributable layer(s) from their urls", n);
  return ret;
}
