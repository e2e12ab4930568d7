#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "env.h"
#include "regopts.h"

int cli_regopts_handle(cli_regopts *ro, const char *verb, int opt, const char *arg) {
  switch (opt) {
  case REGOPT_CREDS:
    if (!strchr(arg, ':')) {
      cli_usage(verb, "--creds must be USER:PASSWORD");
      return -1;
    }
    ro->o.creds = arg;
    return 1;
  case REGOPT_AUTHFILE:
    ro->o.auth_file = arg;
    return 1;
  case REGOPT_SECRET:
    ro->o.secret_file = arg;
    return 1;
  case REGOPT_INSECURE: {
    char **nv = realloc(ro->insecure, (ro->n_insecure + 2) * sizeof *nv);
    if (!nv)
      abort();
    nv[ro->n_insecure++] = (char *)arg;
    nv[ro->n_insecure] = NULL;
    ro->insecure = nv;
    return 1;
  }
  case REGOPT_CA:
    ro->o.ca_file = arg;
    return 1;
  case REGOPT_CERT:
    ro->o.cert_file = arg;
    return 1;
  case REGOPT_KEY:
    ro->o.key_file = arg;
    return 1;
  case REGOPT_CONFIG:
    ro->o.config_file = arg;
    return 1;
  case REGOPT_TLS_VERIFY:
    if (strcmp(arg, "true") == 0) {
      ro->o.tls_skip_verify = false;
      ro->o.tls_always = true;
    } else if (strcmp(arg, "false") == 0) {
      ro->o.tls_skip_verify = true;
    } else {
      cli_usage(verb, "--tls-verify takes true or false");
      return -1;
    }
    return 1;
  case REGOPT_JOBS: {
    char *end = NULL;
    long n = strtol(arg, &end, 10);
    if (!*arg || *end || n < 1 || n > 64) {
      cli_usage(verb, "--jobs takes a number from 1 to 64");
      return -1;
    }
    ro->o.jobs = (int)n;
    return 1;
  }
  case REGOPT_JSON:
    ro->json = true;
    return 1;
  default:
    return 0;
  }
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

void cli_print_json(json_t *j) {
  char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
  if (s)
    printf("%s\n", s);
  free(s);
  json_decref(j);
}

int cli_transfer(const char *verb, cli_regopts *ro, const char *src, const char *dst,
                 const hoist_image_copy_opts *opts) {
  hoist_err *err = NULL;
  _cleanup_loc_ hoist_loc *s = NULL;
  _cleanup_loc_ hoist_loc *d = NULL;
  if (hoist_loc_parse(src, &s, &err) < 0 || hoist_loc_parse(dst, &d, &err) < 0)
    return cli_fail(verb, err);
  _cleanup_registry_ hoist_registry *r = NULL;
  if (cli_regopts_open(ro, true, &r, &err) < 0)
    return cli_fail(verb, err);
  hoist_image_copy_result res;
  hoist_transport_opts to = {.registry = r, .tmp_dir = cli_env_tmpdir(NULL)};
  int ret = hoist_image_copy(&to, s, d, opts, &res, &err);
  cli_progress_end();
  if (ret < 0) {
    hoist_image_copy_result_clear(&res);
    return cli_fail(verb, err);
  }
  _cleanup_free_ char *sname = hoist_loc_string(s);
  _cleanup_free_ char *dname = hoist_loc_string(d);
  if (ro->json) {
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
  _cleanup_free_ char *store = cli_image_store();
  hoist_transport_opts to = {.registry = r, .tmp_dir = cli_env_tmpdir(NULL)};
  int ret = hoist_image_pull(&to, store, src, platform, out, err);
  cli_progress_end();
  return ret;
}

char *cli_image_store_location(const hoist_ref *ref) {
  _cleanup_free_ char *store = cli_image_store();
  return hoist_image_store_location(store, ref);
}
