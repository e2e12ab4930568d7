/* args: a verb's options read from its table (cli_opt), and the option
 * parsers and operand checks more than one verb shares. */
#include "cli.h"
#include "env.h"
#include "hoist/image.h"
#include "hoist/oci.h"
#include "regopts.h"

/* An option of the flattened table and where its value goes. */
typedef struct bound {
  const cli_opt *o;
  void *dest;
} bound;

/* Appends the options of table t to *v (*n of them): a verb's own with their
 * dest, a group's placed within base (the dest of its CLI_GROUP entry). */
static void bind(const cli_opt *t, char *base, bound **v, size_t *n) {
  for (; t->kind != CLI_OPT_END; t++) {
    void *dest = base ? base + t->offset : t->dest;
    if (t->kind == CLI_OPT_GROUP) {
      bind(t->group, dest, v, n);
      continue;
    }
    bound *nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
      abort();
    nv[(*n)++] = (bound){t, dest};
    *v = nv;
  }
}

/* getopt's value for option b: its letter, else 256 + its index i (past
 * every letter). */
static int opt_val(const bound *b, size_t i) { return b->o->letter ? b->o->letter : 256 + (int)i; }

int cli_parse_opts_as(const cli_args *a, const cli_opt *opts, int argc, char **argv) {
  _cleanup_free_ bound *v = NULL;
  size_t n = 0;
  bind(opts, NULL, &v, &n);
  _cleanup_free_ struct option *longopts = hoist_malloc0((n + 2) * sizeof *longopts);
  /* "+", "h", each letter with up to two ':', the NUL */
  _cleanup_free_ char *shortopts = hoist_malloc0(3 + 3 * n);
  char *s = shortopts;
  if (a->in_order)
    *s++ = '+';
  *s++ = 'h';
  for (size_t i = 0; i < n; i++) {
    const cli_opt *o = v[i].o;
    longopts[i] = (struct option){o->name, o->has_arg, NULL, opt_val(&v[i], i)};
    if (o->letter) {
      *s++ = (char)o->letter;
      for (int k = 0; k < o->has_arg; k++)
        *s++ = ':';
    }
  }
  longopts[n] = (struct option){"help", no_argument, NULL, 'h'};

  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
    if (c == 'h') {
      if (a->print_usage)
        a->print_usage(stdout);
      else
        fputs(a->usage, stdout);
      return EXIT_OK;
    }
    size_t i = 0;
    while (i < n && opt_val(&v[i], i) != c)
      i++;
    if (i == n) /* getopt has said what is wrong */
      return cli_usage(a->verb, "unknown option");
    const cli_opt *o = v[i].o;
    if (o->refuse)
      return cli_usage(a->verb, "%s", o->refuse);
    if (o->kind == CLI_OPT_FLAG)
      *(bool *)v[i].dest = true;
    else if (o->kind == CLI_OPT_STRING)
      *(const char **)v[i].dest = optarg;
    else if (o->fn(a->verb, optarg, v[i].dest) < 0)
      return o->bad ? cli_usage(a->verb, o->bad, optarg) : EXIT_USAGE;
  }
  return -1;
}

int cli_parse_opts(const char *verb, const char *usage, const cli_opt *opts, int argc,
                   char **argv) {
  return cli_parse_opts_as(&(cli_args){.verb = verb, .usage = usage}, opts, argc, argv);
}

int cli_opt_platform(const char *verb, const char *arg, void *dest) {
  hoist_platform **p = dest;
  hoist_err *err = NULL;
  hoist_platform_free(steal_pointer(p));
  if (hoist_platform_parse(arg, p, &err) < 0) {
    hoist_err_free(err);
    return cli_usage(verb, "invalid platform \"%s\"", arg), -1;
  }
  return 0;
}

int cli_opt_strdup(const char *verb, const char *arg, void *dest) {
  (void)verb;
  char **s = dest;
  free(*s);
  *s = hoist_strdup(arg);
  return 0;
}

int cli_opt_age(const char *verb, const char *arg, void *dest) {
  (void)verb;
  return cli_parse_age(arg, dest) ? 0 : -1;
}

int cli_layout_operand(const char *verb, int argc, char **argv, hoist_loc **loc) {
  if (optind + 1 != argc)
    return cli_usage(verb, "expected one layout location (oci:DIR)");
  hoist_err *err = NULL;
  if (hoist_loc_parse(argv[optind], loc, &err) < 0)
    return cli_fail(verb, err);
  if ((*loc)->kind != HOIST_LOC_LAYOUT || (*loc)->tag)
    return cli_usage(verb, "%s: expected an image layout without a tag (oci:DIR)", argv[optind]);
  return -1;
}

int cli_local_image(const char *verb, const char *operand, hoist_loc **loc, char **digest) {
  *digest = NULL;
  hoist_err *err = NULL;
  _cleanup_loc_ hoist_loc *l = NULL;
  if (cli_loc_parse(NULL, operand, &l, &err) < 0)
    return cli_usage_err(verb, err);
  if (l->kind == HOIST_LOC_REGISTRY) {
    _cleanup_free_ char *store = cli_env_image_store();
    _cleanup_free_ char *where = hoist_image_store_location(store, l->ref);
    if (!l->ref->tag && l->ref->digest)
      *digest = hoist_strdup(l->ref->digest);
    hoist_loc_free(steal_pointer(&l));
    if (hoist_loc_parse(where, &l, &err) < 0)
      return cli_fail(verb, err);
  } else if (l->kind != HOIST_LOC_LAYOUT) {
    return cli_usage(verb,
                     "%s: expected an image of the image store (REF) or a layout "
                     "(oci:DIR[:TAG])",
                     operand);
  }
  *loc = steal_pointer(&l);
  return -1;
}

void cli_json_print(FILE *out, json_t *j, size_t flags) {
  char *s = json_dumps(j, flags);
  if (s)
    fprintf(out, "%s\n", s);
  free(s);
  json_decref(j);
}

void cli_print_json(json_t *j) { cli_json_print(stdout, j, JSON_INDENT(2) | JSON_SORT_KEYS); }
