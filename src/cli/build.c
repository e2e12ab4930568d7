/* hoist build: a base image + a requirements file of a kind -> a new image. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "attestopts.h"
#include "cli.h"
#include "env.h"
#include "hoist/build.h"
#include "hoist/fs.h"
#include "hoist/ref.h"
#include "layeropts.h"
#include "regopts.h"
#include "sandboxopts.h"

#define VERB "build"

static void usage(FILE *out) {
  size_t n;
  const hoist_build_kind *kinds = hoist_build_kinds(&n);
  fprintf(out, "Usage: hoist build --source REF --kind KIND --file PATH --target DEST [OPTIONS]\n\n"
               "Extends the image REF (a registry reference, pulled into the image store first,\n"
               "or oci:DIR[:TAG]) with the requirements in PATH: the file is placed at\n"
               "/tmp/<file> and the kind's install runs as root in a sandbox over the base's\n"
               "root filesystem (the base's /bin/extend instead, when it has an executable one).\n"
               "The changes become one new layer; the image keeps the base's user. DEST is a\n"
               "registry reference or oci:DIR:TAG; only blobs DEST lacks are sent.\n"
               "Identical inputs reuse the layer from the build cache. Without --file, the\n"
               "source is copied to DEST unchanged (as the reference deployer does).\n\n"
               "Kinds (requirement file):\n");
  for (size_t i = 0; i < n; i++)
    fprintf(out, "  %-8s %s\n", kinds[i].name, kinds[i].file);
  fprintf(out, "\nOptions:\n"
               "  --source REF               base image\n"
               "  --kind KIND                one of the kinds above\n"
               "  --file PATH                the requirement file (at most 5 MB; none: copy)\n"
               "  --target DEST              where the new image goes\n"
               "  --platform OS/ARCH[/VAR]   image of a multi-platform base (default: host)\n"
               "  --no-cache                 do not reuse a cached layer\n"
               "  --source-date-epoch N      clamp mtimes and set created to N\n"
               "                             (default: $SOURCE_DATE_EPOCH)\n"
               "  --compress gzip|zstd|none  new layer's compression (default gzip)\n"
               "  --compress-threads N       threads compressing the layer (default: one per CPU;\n"
               "                             the blob is the same whatever N)\n"
               "  --cache-dir DIR            build cache (default: $HOIST_IMAGES/build-cache)\n"
               "  --cache-from REPO          after the local cache, look the layer up in this\n"
               "                             registry repository (REGISTRY/PATH)\n"
               "  --cache-to REPO            after a build, store its layer there as an OCI\n"
               "                             artifact tagged by the cache key (only builders that\n"
               "                             trust each other may share a writable cache)\n"
               "  --termination-log PATH     write the answer (--json: the digests) to PATH\n"
               "                             instead of standard output (in a Kubernetes pod:\n"
               "                             /dev/termination-log, read back by the service)\n"
               "  --verify-key PUB           refuse a --source unless a signature of it verifies\n"
               "                             with the public key PUB (also required by\n"
               "                             hoist-verify-key in the registries configuration)\n"
               "  --sign-key KEY             sign the image stored at DEST (cosign's format; a\n"
               "                             PEM private key, password from --key-password-file\n"
               "                             or $HOIST_KEY_PASSWORD)\n"
               "  --key-password-file FILE   the password of an encrypted --sign-key\n"
               "  -h, --help                 show this help\n\n"
               "Package sources (default: each option's variable, else the tool's own):\n");
  for (int m = 0; m < HOIST_MIRROR_COUNT; m++) {
    const hoist_mirror_info *mi = hoist_build_mirror_info((hoist_mirror)m);
    fprintf(out, "  --%-16s %-8s ($%s)\n", mi->option, mi->arg, mi->host_env);
  }
  fprintf(out,
          "  (--gonosumdb: Go module path patterns, e.g. 'example.com/*', that Go's\n"
          "  checksum database is not asked about: modules only the --goproxy mirror has)\n"
          "\nThe install's sandbox: a loopback mirror's port is reachable from the private\n"
          "network without --allow-port.\n%s\n" ATTESTOPTS_HELP ATTESTOPTS_SBOM_HELP "\n%s",
          SBOPTS_HELP, REGOPTS_HELP);
}

/* Build output: the pipeline's steps prefixed, the install's lines as they are. */
static void log_line(void *ctx, hoist_build_stream stream, const char *line, size_t len) {
  (void)ctx;
  if (stream == HOIST_BUILD_STEP)
    fprintf(stderr, "hoist build: %.*s\n", (int)len, line);
  else
    fprintf(stderr, "%.*s\n", (int)len, line);
}

/* The provenance of a build: the kind, the requirement file, the base and
 * the target (external), the package sources and the cache (internal), the
 * base and the requirement file by digest; with --sbom, the SPDX document
 * of the new layer's packages and the base's. */
static int build_attest_job(cli_attest_job *job, const hoist_build_opts *bo,
                            const hoist_build_result *res, const char *file_s,
                            const char *base_name, const char *target_s, const cli_attestopts *ato,
                            const hoist_transport_opts *to, const hoist_loc *dst, hoist_err **err) {
  const char *slash = strrchr(file_s, '/');
  const char *file_name = slash ? slash + 1 : file_s;
  json_object_set_new(job->external, "kind", json_string(bo->kind));
  json_object_set_new(job->external, "requirementFile",
                      json_pack("{s:s, s:s}", "name", file_name, "digest", res->file_digest));
  json_object_set_new(job->external, "source", json_string(base_name));
  json_object_set_new(job->external, "target", json_string(target_s));
  if (bo->platform) {
    _cleanup_free_ char *p = hoist_platform_string(bo->platform);
    json_object_set_new(job->external, "platform", json_string(p));
  }
  json_t *mirrors = json_object();
  for (int m = 0; m < HOIST_MIRROR_COUNT; m++)
    if (bo->mirrors[m] && *bo->mirrors[m]) {
      _cleanup_free_ char *u = cli_attest_redact_url(bo->mirrors[m]);
      json_object_set_new(mirrors, hoist_build_mirror_info((hoist_mirror)m)->option,
                          json_string(u));
    }
  json_object_set_new(job->internal, "mirrors", mirrors);
  json_object_set_new(job->internal, "cacheKey", json_string(res->cache_key));
  json_object_set_new(job->internal, "cacheHit", json_boolean(res->cache_hit));
  json_object_set_new(job->internal, "extend", json_boolean(res->used_extend));
  cli_attest_job_dep(job, base_name, res->base_digest, "base");
  cli_attest_job_dep(job, file_name, res->file_digest, "requirementFile");
  if (!ato->sbom)
    return 0;
  /* the SBOM: the new layer (from the build cache, else the target) and the
   * base's layers (from its layout in the image store) */
  _cleanup_transport_source_ hoist_transport_source *base = NULL;
  if (hoist_transport_layout_source(bo->base_dir, bo->base_tag, &base, err) < 0)
    return hoist_err_wrap(err, "SBOM: the base");
  return cli_attest_sbom_image(job, to, dst, res->image.manifest_digest, base, bo->cache_dir, err);
}

static int build_run(int argc, char **argv) {
  hoist_build_opts bo;
  hoist_build_opts_init(&bo);
  const char *source_s = NULL, *file_s = NULL, *target_s = NULL, *platform_s = NULL;
  const char *term_s = NULL, *cache_from_s = NULL, *cache_to_s = NULL;
  _cleanup_regopts_ cli_regopts ro = {0};
  _cleanup_sandboxopts_ cli_sandboxopts sbo = {0};
  cli_attestopts ato = {0};
  cli_opt opts[24 + HOIST_MIRROR_COUNT] = {
      CLI_STRING("source", &source_s),
      CLI_STRING("kind", &bo.kind),
      CLI_STRING("file", &file_s),
      CLI_STRING("target", &target_s),
      CLI_STRING("platform", &platform_s),
      CLI_FLAG("no-cache", &bo.no_cache),
      CLI_CALL("source-date-epoch", cli_opt_epoch, &bo.source_date_epoch),
      CLI_CALL("compress", cli_opt_compression, &bo.compression),
      CLI_CALL("compress-threads", cli_opt_compress_threads, &bo.compress_threads),
      CLI_STRING("cache-dir", &bo.cache_dir),
      CLI_STRING("cache-from", &cache_from_s),
      CLI_STRING("cache-to", &cache_to_s),
      CLI_STRING("termination-log", &term_s),
      CLI_GROUP(cli_regopts_opts, &ro),
      CLI_GROUP(cli_sign_key_opts, &ro),
      CLI_GROUP(cli_verify_key_opts, &ro),
      CLI_GROUP(cli_sandboxopts_opts, &sbo),
      CLI_GROUP(cli_attestopts_opts, &ato),
      CLI_FLAG("sbom", &ato.sbom),
  };
  size_t no = 0;
  while (opts[no].kind != CLI_OPT_END)
    no++;
  for (int m = 0; m < HOIST_MIRROR_COUNT; m++)
    opts[no++] =
        (cli_opt)CLI_STRING(hoist_build_mirror_info((hoist_mirror)m)->option, &bo.mirrors[m]);
  int rc = cli_parse_opts_as(&(cli_args){.verb = VERB, .print_usage = usage}, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (optind != argc)
    return cli_usage(VERB, "unexpected argument '%s'", argv[optind]);
  if (cli_sandboxopts_finish(&sbo, VERB) < 0)
    return EXIT_USAGE;
  if ((rc = cli_attestopts_check(VERB, &ato)) >= 0)
    return rc;
  bo.sandbox = &sbo.o;
  if (term_s) {
    /* the answer goes there; what the build says still goes to stderr */
    int fd = open(term_s, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
      return cli_usage(VERB, "--termination-log %s: %s", term_s, strerror(errno));
    close(fd);
  }
  if (!source_s || !bo.kind || !target_s)
    return cli_usage(VERB, "needs --source, --kind and --target");
  if (!hoist_build_kind_find(bo.kind))
    return cli_usage(VERB, "unknown kind '%s' (see --help)", bo.kind);
  if (!file_s && cli_attest_wanted(&ato))
    return cli_usage(VERB, "--provenance and --sbom need --file (a build)");
  if (!file_s) {
    /* as the reference deployer: no requirements, the source under the target's name */
    _cleanup_platform_ hoist_platform *p = NULL;
    hoist_err *e = NULL;
    if (platform_s && hoist_platform_parse(platform_s, &p, &e) < 0) {
      hoist_err_free(e);
      return cli_usage(VERB, "bad platform '%s'", platform_s);
    }
    hoist_image_copy_opts co = {.platform = p};
    return cli_transfer(VERB, &ro, source_s, target_s, &co);
  }
  _cleanup_free_ char *build_cache = bo.cache_dir ? NULL : cli_env_build_cache();
  _cleanup_free_ char *rootfs_cache = cli_env_rootfs_cache();
  if (!bo.cache_dir)
    bo.cache_dir = build_cache;
  bo.rootfs_dir = rootfs_cache;
  for (int m = 0; m < HOIST_MIRROR_COUNT; m++)
    if (!bo.mirrors[m])
      bo.mirrors[m] = cli_env(hoist_build_mirror_info((hoist_mirror)m)->host_env);

  hoist_err *err = NULL;
  _cleanup_loc_ hoist_loc *src = NULL;
  _cleanup_loc_ hoist_loc *dst = NULL;
  if (cli_loc_parse(&ro, source_s, &src, &err) < 0 || cli_loc_parse(&ro, target_s, &dst, &err) < 0)
    return cli_usage_err(VERB, err);
  if (dst->kind == HOIST_LOC_LAYOUT && !dst->tag)
    return cli_usage(VERB, "--target oci:DIR needs a tag (oci:DIR:TAG)");
  if ((rc = cli_attestopts_check_target(VERB, &ato, dst)) >= 0)
    return rc;
  if (dst->kind == HOIST_LOC_REGISTRY && !dst->ref->tag) {
    hoist_err_set(&err, EINVAL, "target %s needs a tag", dst->ref->path);
    return cli_fail(VERB, err);
  }
  _cleanup_platform_ hoist_platform *platform = NULL;
  if (platform_s && hoist_platform_parse(platform_s, &platform, &err) < 0) {
    hoist_err_free(err);
    return cli_usage(VERB, "bad platform '%s'", platform_s);
  }
  bo.platform = platform;
  if (cli_layer_epoch_default(&bo.source_date_epoch, &err) < 0)
    return cli_fail(VERB, err);

  _cleanup_free_ char *file = NULL;
  size_t file_len = 0;
  if (hoist_fs_read_file(AT_FDCWD, file_s, HOIST_BUILD_FILE_MAX, &file, &file_len, &err) < 0) {
    if (hoist_err_root_code(err) == HOIST_E_LIMIT) {
      hoist_err_free(err);
      err = NULL;
      hoist_err_set(&err, HOIST_E_LIMIT, "%s: requirement file too large (at most %u bytes)",
                    file_s, HOIST_BUILD_FILE_MAX);
    }
    return cli_fail(VERB, err);
  }
  bo.file = file;
  bo.file_len = file_len;

  _cleanup_ref_ hoist_ref *cache_from = NULL;
  _cleanup_ref_ hoist_ref *cache_to = NULL;
  if ((cache_from_s && hoist_ref_parse(cache_from_s, &cache_from, &err) < 0) ||
      (cache_to_s && hoist_ref_parse(cache_to_s, &cache_to, &err) < 0))
    return cli_usage_err(VERB, err);
  bo.cache_from = cache_from;
  bo.cache_to = cache_to;
  _cleanup_registry_ hoist_registry *reg = NULL;
  if ((src->kind == HOIST_LOC_REGISTRY || dst->kind == HOIST_LOC_REGISTRY || cache_from ||
       cache_to) &&
      cli_regopts_open(&ro, true, &reg, &err) < 0)
    return cli_fail(VERB, err);
  bo.cache_registry = reg;
  _cleanup_loc_ hoist_loc *base = NULL;
  _cleanup_free_ char *base_name = NULL;
  /* a registry source is pulled into the image store, unless it is there
   * already; a target on its registry mounts the base's blobs from its
   * repository */
  base_name = src->kind == HOIST_LOC_REGISTRY ? hoist_ref_string(src->ref) : hoist_strdup(source_s);
  if (cli_pull_to_store(&ro, reg, src, platform, &base, &err) < 0)
    return cli_fail(VERB, err);
  bo.base_dir = base->dir;
  bo.base_tag = base->tag;
  bo.base_name = base_name;
  bo.base_origin = src->kind == HOIST_LOC_REGISTRY ? src : NULL;
  bo.log = log_line;

  hoist_transport_opts to = {.registry = reg};
  _cleanup_transport_target_ hoist_transport_target *target = NULL;
  if (hoist_transport_open_target(&to, dst, &target, &err) < 0)
    return cli_fail(VERB, err);
  bo.target = target;

  _cleanup_attest_job_ cli_attest_job job;
  cli_attest_job_init(&job, VERB);
  hoist_build_result res;
  if (hoist_build(&bo, &res, &err) < 0 || hoist_transport_commit(target, &err) < 0)
    return cli_fail(VERB, err);
  hoist_attest_result ares = {0};
  if (cli_attest_wanted(&ato)) {
    if (build_attest_job(&job, &bo, &res, file_s, base_name, target_s, &ato, &to, dst, &err) < 0 ||
        cli_attest_finish(&ato, &to, dst, res.image.manifest_digest, &job, &ares, &err) < 0)
      return cli_fail(VERB, err);
  }
  /* signed last: what the tag names then (in index mode, the index of the
   * image and its attestations) */
  if (cli_sign_after_store(&ro, reg, dst, &err) < 0)
    return cli_fail(VERB, err);
  if (ro.json) {
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:b, s:I, s:I, s:I}", "manifest",
                          res.image.manifest_digest, "config", res.image.config_digest, "layer",
                          res.image.layer.digest, "diffID", res.image.layer.diff_id, "cacheKey",
                          res.cache_key, "cacheHit", res.cache_hit, "cacheFrom",
                          res.cache_remote ? "registry"
                          : res.cache_hit  ? "local"
                                           : "none",
                          "extend", res.used_extend, "layers", (json_int_t)res.image.n_layers,
                          "baseCopied", (json_int_t)res.image.blobs_copied, "basePresent",
                          (json_int_t)res.image.blobs_skipped);
    if (cli_attest_wanted(&ato))
      json_object_set_new(j, "attestation",
                          json_pack("{s:s, s:s, s:s}", "mode",
                                    ato.mode == HOIST_ATTEST_INDEX ? "index" : "referrer", "tag",
                                    ares.digest, "manifest", ares.attestation));
    cli_print_json(j);
  } else {
    printf("manifest: %s\nconfig: %s\nlayer: %s (diffID %s, %" PRIu64 " bytes%s)\n",
           res.image.manifest_digest, res.image.config_digest, res.image.layer.digest,
           res.image.layer.diff_id, res.image.layer.size,
           res.cache_remote ? ", from the registry cache"
           : res.cache_hit  ? ", cached"
                            : "");
    if (cli_attest_wanted(&ato) && ato.mode == HOIST_ATTEST_INDEX)
      printf("index: %s (attestations %s)\n", ares.digest, ares.attestation);
    else if (cli_attest_wanted(&ato))
      printf("attestations: %s (referrer)\n", ares.attestation);
  }
  return EXIT_OK;
}

HOIST_VERB(build, VERB, "extend an image with a requirements file (pip, npm, ...)", build_run);
