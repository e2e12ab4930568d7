/* hoist inspect: show an image's manifest and config. */
#include <errno.h>
#include <string.h>

#include "cli.h"
#include "env.h"
#include "hoist/attest.h"
#include "hoist/oci.h"
#include "hoist/ref.h"
#include "hoist/registry.h"
#include "hoist/store.h"
#include "hoist/transport.h"
#include "regopts.h"

#define VERB "inspect"

static const char usage[] =
    "Usage: hoist inspect [OPTIONS] REF|oci:DIR[:TAG]|docker-archive:PATH[:REF]|"
    "oci-archive:PATH[:TAG]\n"
    "\n"
    "Show an image: media type, digest, size, platform, layers and a summary of its\n"
    "config (os/arch, env, cmd, entrypoint, user, working dir, labels). Without TAG\n"
    "the layout must hold exactly one image. A multi-platform index shows its\n"
    "entries and the image for --platform (default: this machine's).\n"
    "\n"
    "Options:\n"
    "  --raw                print the manifest (or index) bytes exactly as stored\n"
    "  --config             print the image config bytes exactly as stored\n"
    "  --json               print a JSON summary\n"
    "  --platform OS/ARCH   the image to show from a multi-platform index\n"
    "  --provenance         print the SLSA provenance predicate attached to the image\n"
    "                       (in its index, as BuildKit stores it, or as an OCI 1.1\n"
    "                       referrer), one JSON document per statement\n"
    "  --sbom               print the SPDX document attached to the image, likewise\n"
    "  -h, --help           show this help\n"
    "\n" REGOPTS_HELP;

/* Where an image's documents come from: a layout's store, a registry
 * over the distribution API, or an archive through the transport. */
typedef struct image_source {
  char *name; /* for messages: "oci:DIR:TAG" or the reference */
  hoist_store *store;
  hoist_registry *reg;
  hoist_transport_source *ts;
  const hoist_ref *ref; /* borrowed from the location */
  hoist_descriptor top; /* what the location names */
  char *top_data;       /* registry: the top document, fetched once */
  size_t top_len;
} image_source;

static void source_clear(image_source *src) {
  free(src->name);
  hoist_store_close(src->store);
  hoist_registry_free(src->reg);
  hoist_transport_source_free(src->ts);
  hoist_descriptor_clear(&src->top);
  free(src->top_data);
}

static int source_open_layout(const hoist_loc *loc, image_source *src, hoist_err **err) {
  src->name = hoist_loc_string(loc);
  int r = hoist_store_open(loc->dir, false, &src->store, err);
  if (r < 0 || (r = hoist_store_resolve(src->store, loc->tag, &src->top, err)) < 0)
    return hoist_err_wrap(err, "%s", src->name);
  return 0;
}

/* Resolves the reference to its top document (manifest or index) and keeps
 * its bytes, so it is fetched once. */
static int source_open_registry(const hoist_loc *loc, cli_regopts *ro, image_source *src,
                                hoist_err **err) {
  src->name = hoist_ref_string(loc->ref);
  src->ref = loc->ref;
  char digest[HOIST_DIGEST_STR_LEN];
  char *media_type = NULL;
  int r = cli_regopts_open(ro, false, &src->reg, err);
  if (r == 0)
    r = hoist_registry_get_manifest(src->reg, loc->ref->domain, loc->ref->path,
                                    hoist_ref_reference(loc->ref), &src->top_data, &src->top_len,
                                    &media_type, digest, err);
  if (r < 0)
    return hoist_err_wrap(err, "%s", src->name);
  src->top.media_type = media_type;
  src->top.digest = hoist_strdup(digest);
  src->top.size = (int64_t)src->top_len;
  return 0;
}

/* An archive: read through the transport, its top document kept. */
static int source_open_archive(const hoist_loc *loc, image_source *src, hoist_err **err) {
  src->name = hoist_loc_string(loc);
  char digest[HOIST_DIGEST_STR_LEN];
  char *media_type = NULL;
  hoist_transport_opts to = {.tmp_dir = cli_env_tmpdir(NULL)};
  if (hoist_transport_open_source(&to, loc, &src->ts, err) < 0 ||
      src->ts->ops->manifest(src->ts, NULL, &src->top_data, &src->top_len, &media_type, digest,
                             err) < 0)
    return -1;
  src->top.media_type = media_type;
  src->top.digest = hoist_strdup(digest);
  src->top.size = (int64_t)src->top_len;
  return 0;
}

static int source_open(const hoist_loc *loc, cli_regopts *ro, image_source *src, hoist_err **err) {
  if (loc->kind == HOIST_LOC_LAYOUT)
    return source_open_layout(loc, src, err);
  if (loc->kind != HOIST_LOC_REGISTRY)
    return source_open_archive(loc, src, err);
  return source_open_registry(loc, ro, src, err);
}

typedef struct mem_writer {
  hoist_writer base;
  hoist_buf buf;
} mem_writer;

static int mem_write(hoist_writer *w, const void *data, size_t len, hoist_err **err) {
  return hoist_buf_append(&((mem_writer *)w)->buf, data, len, err);
}

static const hoist_writer_ops mem_ops = {.write = mem_write};

/* A document from the registry or an archive: the top one from memory, manifests and
 * indexes from the manifests endpoint, configs from the blobs endpoint. */
static int registry_read(image_source *src, const hoist_descriptor *desc, char **data, size_t *len,
                         hoist_err **err) {
  if (strcmp(desc->digest, src->top.digest) == 0) {
    *data = malloc(src->top_len + 1);
    if (!*data)
      abort();
    memcpy(*data, src->top_data, src->top_len);
    (*data)[src->top_len] = '\0';
    *len = src->top_len;
    return 0;
  }
  hoist_media_kind kind = hoist_media_kind_of(desc->media_type);
  if (src->ts) {
    _cleanup_free_ char *media_type = NULL;
    char digest[HOIST_DIGEST_STR_LEN];
    return kind == HOIST_MEDIA_MANIFEST || kind == HOIST_MEDIA_INDEX
               ? src->ts->ops->manifest(src->ts, desc->digest, data, len, &media_type, digest, err)
               : src->ts->ops->blob(src->ts, desc->digest, HOIST_MANIFEST_MAX, data, len, err);
  }
  if (kind == HOIST_MEDIA_MANIFEST || kind == HOIST_MEDIA_INDEX) {
    _cleanup_free_ char *media_type = NULL;
    char digest[HOIST_DIGEST_STR_LEN];
    return hoist_registry_get_manifest(src->reg, src->ref->domain, src->ref->path, desc->digest,
                                       data, len, &media_type, digest, err);
  }
  if (desc->size > (int64_t)HOIST_MANIFEST_MAX)
    return hoist_err_set(err, HOIST_E_LIMIT, "%s is too large for a config", desc->digest);
  mem_writer w = {.base = {&mem_ops}, .buf = HOIST_BUF_INIT(HOIST_MANIFEST_MAX)};
  if (hoist_registry_get_blob(src->reg, src->ref->domain, src->ref->path, desc->digest, desc->size,
                              &w.base, err) < 0) {
    hoist_buf_free(&w.buf);
    return -1;
  }
  *len = w.buf.len;
  *data = hoist_buf_steal(&w.buf);
  return 0;
}

/* A document (manifest, index or config) named by desc, digest-checked. */
static int source_read(image_source *src, const hoist_descriptor *desc, char **data, size_t *len,
                       hoist_err **err) {
  int r = src->reg || src->ts
              ? registry_read(src, desc, data, len, err)
              : hoist_store_read_blob(src->store, desc->digest, HOIST_MANIFEST_MAX, data, len, err);
  if (r < 0)
    return hoist_err_wrap(err, "%s", src->name);
  if (desc->size >= 0 && (uint64_t)*len != (uint64_t)desc->size) {
    free(*data);
    *data = NULL;
    return hoist_err_set(err, HOIST_E_DIGEST, "%s: %s is %zu bytes, descriptor says %lld",
                         src->name, desc->digest, *len, (long long)desc->size);
  }
  return 0;
}

/* Everything the summary shows, gathered once for both output forms. */
typedef struct image_info {
  char *index_data; /* the index, when the location names one */
  size_t index_len;
  hoist_index *index;
  hoist_descriptor desc; /* the chosen manifest */
  char *manifest_data;
  size_t manifest_len;
  hoist_manifest *manifest;
  char *config_data;
  size_t config_len;
  hoist_config *config;
} image_info;

static void info_clear(image_info *in) {
  free(in->index_data);
  hoist_index_free(in->index);
  hoist_descriptor_clear(&in->desc);
  free(in->manifest_data);
  hoist_manifest_free(in->manifest);
  free(in->config_data);
  hoist_config_free(in->config);
}

static int load_image(image_source *src, const char *platform, bool want_manifest, image_info *in,
                      hoist_err **err) {
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  int r = source_read(src, &src->top, &data, &len, err);
  if (r < 0)
    return r;
  if (!want_manifest) {
    in->manifest_data = steal_pointer(&data);
    in->manifest_len = len;
    return 0;
  }
  if (hoist_media_kind_of(src->top.media_type) == HOIST_MEDIA_INDEX) {
    in->index_data = steal_pointer(&data);
    in->index_len = len;
    if ((r = hoist_index_parse(in->index_data, len, &in->index, err)) < 0)
      return hoist_err_wrap(err, "%s", src->name);
    _cleanup_platform_ hoist_platform *want = NULL;
    if (platform && (r = hoist_platform_parse(platform, &want, err)) < 0)
      return r;
    if (!want)
      want = hoist_platform_host();
    const hoist_descriptor *d = hoist_index_find_platform(in->index, want);
    if (!d) {
      _cleanup_free_ char *ws = hoist_platform_string(want);
      return hoist_err_set(err, ENOENT, "%s: no image for platform %s in the index", src->name, ws);
    }
    hoist_descriptor_copy(&in->desc, d);
    if ((r = source_read(src, &in->desc, &data, &len, err)) < 0)
      return r;
  } else {
    hoist_descriptor_copy(&in->desc, &src->top);
  }
  in->manifest_data = steal_pointer(&data);
  in->manifest_len = len;
  if ((r = hoist_manifest_parse(in->manifest_data, len, &in->manifest, err)) < 0)
    return hoist_err_wrap(err, "%s", src->name);
  if ((r = source_read(src, &in->manifest->config, &in->config_data, &in->config_len, err)) < 0)
    return r;
  /* an artifact's config is not an image config: shown by type only */
  if (hoist_media_kind_of(in->manifest->config.media_type) == HOIST_MEDIA_CONFIG &&
      (r = hoist_config_parse(in->config_data, in->config_len, &in->config, err)) < 0)
    return hoist_err_wrap(err, "%s: config", src->name);
  return 0;
}

/* A JSON array of strings as one line: ["sh", "-c"] -> sh -c (quoted when
 * an element has a space). */
static void print_strv(const char *label, json_t *arr) {
  if (!json_is_array(arr) || json_array_size(arr) == 0)
    return;
  printf("  %-12s", label);
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) {
    const char *s = json_string_value(v);
    if (!s)
      continue;
    printf(strpbrk(s, " \t\"") ? " \"%s\"" : " %s", s);
  }
  printf("\n");
}

static void print_human(image_source *src, image_info *in) {
  char sz[32];
  printf("Image:        %s\n", src->name);
  if (in->index) {
    cli_human_size((double)(src->top.size), sz);
    printf("Index:        %s (%s, %s)\n", src->top.digest, src->top.media_type, sz);
    for (size_t i = 0; i < in->index->n_manifests; i++) {
      const hoist_descriptor *d = &in->index->manifests[i];
      _cleanup_free_ char *p = d->platform ? hoist_platform_string(d->platform) : NULL;
      if (hoist_attest_is_attestation(d))
        printf("  %-12s %s (attestations of %s)\n", p ? p : "(none)", d->digest,
               hoist_descriptor_annotation(d, HOIST_ANNOT_REFERENCE_DIGEST));
      else
        printf("  %-12s %s\n", p ? p : "(none)", d->digest);
    }
  }
  if (!in->manifest)
    return;
  cli_human_size((double)(in->desc.size), sz);
  printf("Media type:   %s\n", in->manifest->media_type);
  printf("Digest:       %s\n", in->desc.digest);
  printf("Size:         %s\n", sz);
  if (in->manifest->artifact_type)
    printf("Artifact:     %s\n", in->manifest->artifact_type);
  _cleanup_platform_ hoist_platform *p = in->config ? hoist_config_platform(in->config) : NULL;
  _cleanup_free_ char *ps = p ? hoist_platform_string(p) : NULL;
  printf("Platform:     %s\n", ps ? ps : "(unknown)");
  int64_t total = 0;
  for (size_t i = 0; i < in->manifest->n_layers; i++)
    total += in->manifest->layers[i].size;
  cli_human_size((double)(total), sz);
  printf("Layers:       %zu (%s)\n", in->manifest->n_layers, sz);
  for (size_t i = 0; i < in->manifest->n_layers; i++) {
    const hoist_descriptor *l = &in->manifest->layers[i];
    cli_human_size((double)(l->size), sz);
    printf("  %s  %10s  %s\n", l->digest, sz, l->media_type);
  }
  hoist_config *c = in->config;
  printf("Config:       %s\n", in->manifest->config.digest);
  if (!c) {
    printf("  %-12s %s\n", "Media type", in->manifest->config.media_type);
    return;
  }
  json_t *sec = hoist_config_section(c);
  printf("  %-12s %s/%s%s%s\n", "OS/Arch", hoist_config_os(c), hoist_config_architecture(c),
         hoist_config_variant(c) ? "/" : "",
         hoist_config_variant(c) ? hoist_config_variant(c) : "");
  print_strv("Env", json_object_get(sec, "Env"));
  print_strv("Entrypoint", json_object_get(sec, "Entrypoint"));
  print_strv("Cmd", json_object_get(sec, "Cmd"));
  const char *user = hoist_config_get_string(c, "User");
  const char *wd = hoist_config_get_string(c, "WorkingDir");
  if (user && *user)
    printf("  %-12s %s\n", "User", user);
  if (wd && *wd)
    printf("  %-12s %s\n", "WorkingDir", wd);
  json_t *labels = json_object_get(sec, "Labels");
  if (json_is_object(labels) && json_object_size(labels) > 0) {
    printf("  Labels\n");
    const char *k;
    json_t *v;
    json_object_foreach(labels, k, v) { printf("    %s=%s\n", k, json_string_value(v) ?: ""); }
  }
  printf("  %-12s %zu\n", "Diff IDs", hoist_config_n_diff_ids(c));
}

static json_t *copy_or_null(json_t *j) { return j ? json_deep_copy(j) : json_null(); }

static int print_json(image_source *src, image_info *in, hoist_err **err) {
  _cleanup_json_ json_t *o = json_object();
  json_object_set_new(o, "name", json_string(src->name));
  if (in->index) {
    json_t *ix = json_object();
    json_object_set_new(ix, "digest", json_string(src->top.digest));
    json_object_set_new(ix, "mediaType", json_string(src->top.media_type));
    json_object_set_new(ix, "size", json_integer(src->top.size));
    json_t *ms = json_array();
    for (size_t i = 0; i < in->index->n_manifests; i++)
      json_array_append_new(ms, hoist_descriptor_to_json(&in->index->manifests[i]));
    json_object_set_new(ix, "manifests", ms);
    json_object_set_new(o, "index", ix);
  }
  hoist_manifest *m = in->manifest;
  json_object_set_new(o, "digest", json_string(in->desc.digest));
  json_object_set_new(o, "mediaType", json_string(m->media_type));
  json_object_set_new(o, "size", json_integer(in->desc.size));
  json_object_set_new(o, "artifactType",
                      m->artifact_type ? json_string(m->artifact_type) : json_null());
  _cleanup_platform_ hoist_platform *p = in->config ? hoist_config_platform(in->config) : NULL;
  _cleanup_free_ char *ps = p ? hoist_platform_string(p) : NULL;
  json_object_set_new(o, "platform", ps ? json_string(ps) : json_null());
  json_t *layers = json_array();
  for (size_t i = 0; i < m->n_layers; i++) {
    json_t *l = json_object();
    json_object_set_new(l, "digest", json_string(m->layers[i].digest));
    json_object_set_new(l, "size", json_integer(m->layers[i].size));
    json_object_set_new(l, "mediaType", json_string(m->layers[i].media_type));
    json_array_append_new(layers, l);
  }
  json_object_set_new(o, "layers", layers);
  hoist_config *c = in->config;
  json_t *cfg = json_object();
  json_object_set_new(cfg, "digest", json_string(m->config.digest));
  json_object_set_new(cfg, "mediaType", json_string(m->config.media_type));
  json_object_set_new(o, "config", cfg);
  /* an artifact's config is not an image config: its type is all there is */
  if (c) {
    json_t *sec = hoist_config_section(c);
    json_object_set_new(cfg, "os", json_string(hoist_config_os(c)));
    json_object_set_new(cfg, "architecture", json_string(hoist_config_architecture(c)));
    const char *variant = hoist_config_variant(c);
    json_object_set_new(cfg, "variant", variant ? json_string(variant) : json_null());
    json_object_set_new(cfg, "env", copy_or_null(json_object_get(sec, "Env")));
    json_object_set_new(cfg, "cmd", copy_or_null(json_object_get(sec, "Cmd")));
    json_object_set_new(cfg, "entrypoint", copy_or_null(json_object_get(sec, "Entrypoint")));
    json_object_set_new(cfg, "user", copy_or_null(json_object_get(sec, "User")));
    json_object_set_new(cfg, "workingDir", copy_or_null(json_object_get(sec, "WorkingDir")));
    json_object_set_new(cfg, "labels", copy_or_null(json_object_get(sec, "Labels")));
    json_object_set_new(cfg, "diffIds", json_integer((json_int_t)hoist_config_n_diff_ids(c)));
  }
  char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  if (!s)
    return hoist_err_set(err, HOIST_E_FORMAT, "cannot encode the summary as JSON");
  printf("%s\n", s);
  free(s);
  return 0;
}

static int write_stdout(const char *data, size_t len) {
  return fwrite(data, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : -1;
}

/* Shows the image at location s; returns the exit code. */
static int inspect(const char *s, cli_regopts *ro, const char *platform, bool raw, bool config,
                   bool json) {
  hoist_err *err = NULL;
  _cleanup_loc_ hoist_loc *loc = NULL;
  if (cli_loc_parse(ro, s, &loc, &err) < 0)
    return cli_fail(VERB, err);
  image_source src = {0};
  image_info in = {0};
  int r = source_open(loc, ro, &src, &err);
  if (r == 0)
    r = load_image(&src, platform, !raw, &in, &err);
  if (r == 0) {
    if (raw)
      r = write_stdout(in.manifest_data, in.manifest_len) < 0
              ? hoist_err_errno(&err, errno, "write")
              : 0;
    else if (config)
      r = write_stdout(in.config_data, in.config_len) < 0 ? hoist_err_errno(&err, errno, "write")
                                                          : 0;
    else if (json)
      r = print_json(&src, &in, &err);
    else
      print_human(&src, &in);
  }
  info_clear(&in);
  source_clear(&src);
  return r < 0 ? cli_fail(VERB, err) : EXIT_OK;
}

/* Prints the predicates of type predicate_type attached to the image at s;
 * returns the exit code. */
static int inspect_attestations(const char *s, cli_regopts *ro, const char *platform_s,
                                const char *predicate_type) {
  hoist_err *err = NULL;
  _cleanup_loc_ hoist_loc *loc = NULL;
  _cleanup_platform_ hoist_platform *platform = NULL;
  if (cli_loc_parse(ro, s, &loc, &err) < 0 ||
      (platform_s && hoist_platform_parse(platform_s, &platform, &err) < 0))
    return cli_fail(VERB, err);
  _cleanup_registry_ hoist_registry *reg = NULL;
  if (loc->kind == HOIST_LOC_REGISTRY && cli_regopts_open(ro, false, &reg, &err) < 0)
    return cli_fail(VERB, err);
  hoist_transport_opts to = {.registry = reg, .tmp_dir = cli_env_tmpdir(NULL)};
  _cleanup_strfreev_ char **found = NULL;
  if (hoist_attest_read(&to, loc, platform, predicate_type, &found, &err) < 0)
    return cli_fail(VERB, err);
  for (char **p = found; *p; p++) {
    json_t *j = json_loads(*p, 0, NULL);
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!text || write_stdout(text, strlen(text)) < 0 || write_stdout("\n", 1) < 0) {
      free(text);
      return cli_fail(VERB, (hoist_err_errno(&err, errno, "write"), err));
    }
    free(text);
  }
  return EXIT_OK;
}

static int run(int argc, char **argv) {
  _cleanup_regopts_ cli_regopts ro = {0};
  bool raw = false, config = false, provenance = false, sbom = false;
  const char *platform = NULL;
  const cli_opt opts[] = {
      CLI_FLAG("raw", &raw),
      CLI_FLAG("config", &config),
      CLI_FLAG("provenance", &provenance),
      CLI_FLAG("sbom", &sbom),
      CLI_STRING("platform", &platform),
      CLI_GROUP(cli_regopts_opts, &ro),
      CLI_END,
  };
  int rc = cli_parse_opts(VERB, usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (raw + config + ro.json + provenance + sbom > 1)
    return cli_usage(VERB, "--raw, --config, --json, --provenance and --sbom exclude each other");
  if (optind + 1 != argc)
    return cli_usage(VERB, "expected one image (REF or oci:DIR[:TAG])");
  if (provenance || sbom)
    return inspect_attestations(argv[optind], &ro, platform,
                                provenance ? HOIST_PREDICATE_SLSA_PROVENANCE
                                           : HOIST_PREDICATE_SPDX);
  return inspect(argv[optind], &ro, platform, raw, config, ro.json);
}

HOIST_VERB(inspect, VERB, "show an image's manifest, layers and config", run);
