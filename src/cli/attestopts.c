/* The attestation options and the step that attaches statements after a
 * verb pushed its image. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>

#include "attestopts.h"
#include "env.h"

const cli_opt cli_attestopts_opts[] = {
    CLI_FLAG_AT("provenance", cli_attestopts, provenance),
    CLI_STRING_AT("attest-mode", cli_attestopts, mode_s),
    CLI_STRING_AT("requested-by", cli_attestopts, requested_by),
    CLI_END,
};

int cli_attestopts_check(const char *verb, cli_attestopts *ao) {
  hoist_err *err = NULL;
  ao->mode = HOIST_ATTEST_INDEX;
  if (ao->mode_s && hoist_attest_mode_parse(ao->mode_s, &ao->mode, &err) < 0)
    return cli_usage_err(verb, err);
  if ((ao->mode_s || ao->requested_by) && !cli_attest_wanted(ao))
    return cli_usage(verb, "--attest-mode and --requested-by go with --provenance or --sbom");
  return -1;
}

int cli_attestopts_check_target(const char *verb, const cli_attestopts *ao, const hoist_loc *dst) {
  if ((ao->provenance || ao->sbom) && dst->kind != HOIST_LOC_REGISTRY &&
      dst->kind != HOIST_LOC_LAYOUT)
    return cli_usage(verb, "attestations need a registry or oci: layout target, not an archive");
  return -1;
}

void cli_attest_job_init(cli_attest_job *j, const char *verb) {
  memset(j, 0, sizeof *j);
  j->verb = verb;
  j->started = time(NULL);
  j->external = json_object();
  j->internal = json_object();
}

static const char *keep(cli_attest_job *j, const char *s) {
  if (!s || j->n_strings == sizeof j->dep_strings / sizeof *j->dep_strings)
    return NULL;
  return j->dep_strings[j->n_strings++] = hoist_strdup(s);
}

void cli_attest_job_dep(cli_attest_job *j, const char *uri, const char *digest, const char *name) {
  if (!uri || !digest || j->n_deps == sizeof j->deps / sizeof *j->deps)
    return;
  hoist_provenance_dep *d = &j->deps[j->n_deps];
  d->uri = keep(j, uri);
  d->digest = keep(j, digest);
  d->name = name;
  if (d->uri && d->digest)
    j->n_deps++;
}

void cli_attest_job_clear(cli_attest_job *j) {
  json_decref(j->external);
  json_decref(j->internal);
  for (size_t i = 0; i < j->n_strings; i++)
    free(j->dep_strings[i]);
  free(j->sbom);
  memset(j, 0, sizeof *j);
}

int cli_attest_job_sbom(cli_attest_job *job, const hoist_sbom *sb, const char *name,
                        const char *image_digest, hoist_err **err) {
  char created[32];
  if (hoist_config_format_time(time(NULL), created, err) < 0)
    return -1;
  hoist_sbom_doc_info info = {.name = name,
                              .namespace_id = image_digest,
                              .created = created,
                              .tool = "hoist-" HOIST_VERSION};
  free(job->sbom);
  job->sbom = NULL;
  if (hoist_sbom_to_spdx(sb, &info, &job->sbom, &job->sbom_len, err) < 0)
    return hoist_err_wrap(err, "SBOM");
  return 0;
}

int cli_attest_sbom_image(cli_attest_job *job, const hoist_transport_opts *to, const hoist_loc *dst,
                          const char *image_digest, hoist_transport_source *base,
                          const char *layer_dir, hoist_err **err) {
  _cleanup_transport_source_ hoist_transport_source *out = NULL;
  _cleanup_free_ char *data = NULL;
  _cleanup_free_ char *mt = NULL;
  size_t len = 0;
  char got[HOIST_DIGEST_STR_LEN];
  _cleanup_manifest_ hoist_manifest *m = NULL;
  if (hoist_transport_open_source(to, dst, &out, err) < 0 ||
      out->ops->manifest(out, image_digest, &data, &len, &mt, got, err) < 0 ||
      hoist_manifest_parse(data, len, &m, err) < 0)
    return hoist_err_wrap(err, "SBOM: the new image");
  if (m->n_layers == 0)
    return hoist_err_set(err, EINVAL, "SBOM: the new image has no layer");
  const char *tmp = cli_env_tmpdir(NULL);
  hoist_sbom **layers = hoist_calloc(m->n_layers, sizeof *layers);
  int r = 0;
  for (size_t i = 0; i < m->n_layers && r == 0; i++) {
    const hoist_descriptor *d = &m->layers[i];
    bool last = i + 1 == m->n_layers;
    hoist_sbom_origin origin = last ? HOIST_SBOM_LAYER : HOIST_SBOM_BASE;
    layers[i] = hoist_sbom_new();
    _cleanup_free_ char *kept =
        last && layer_dir && hoist_digest_valid(d->digest)
            ? hoist_asprintf("%s/blobs/sha256/%s", layer_dir, d->digest + strlen("sha256:"))
            : NULL;
    _cleanup_close_ int fd = kept ? open(kept, O_RDONLY | O_CLOEXEC) : -1;
    if (fd >= 0)
      r = hoist_sbom_scan_layer(layers[i], fd, origin, err);
    else
      r = hoist_sbom_scan_blob(layers[i], last || !base ? out : base, d, origin, tmp, err);
    if (r < 0)
      hoist_err_wrap(err, "layer %zu (%s)", i + 1, d->digest);
  }
  _cleanup_sbom_ hoist_sbom *sb = hoist_sbom_new();
  if (r == 0)
    r = hoist_sbom_merge_layers(layers, m->n_layers, sb, err);
  for (size_t i = 0; i < m->n_layers; i++)
    hoist_sbom_free(layers[i]);
  free(layers);
  if (r < 0)
    return hoist_err_wrap(err, "SBOM");
  _cleanup_free_ char *name = hoist_loc_string(dst);
  return cli_attest_job_sbom(job, sb, name, image_digest, err);
}

char *cli_attest_redact_url(const char *url) {
  const char *scheme = strstr(url, "://");
  const char *host = scheme ? scheme + 3 : url;
  const char *at = strchr(host, '@');
  const char *slash = strchr(host, '/');
  if (!at || (slash && slash < at))
    return hoist_strdup(url);
  return hoist_asprintf("%.*s%s", (int)(host - url), url, at + 1);
}

int cli_attest_finish(const cli_attestopts *ao, const hoist_transport_opts *to,
                      const hoist_loc *dst, const char *image_digest, cli_attest_job *job,
                      hoist_attest_result *res, hoist_err **err) {
  _cleanup_free_ char *name = hoist_loc_string(dst);
  _cleanup_free_ char *prov = NULL;
  _cleanup_free_ char *sbom = NULL;
  size_t prov_len = 0, sbom_len = 0;
  hoist_attest_statement_blob st[2];
  size_t n = 0;
  if (ao->sbom && job->sbom) {
    if (hoist_attest_statement(name, image_digest, HOIST_PREDICATE_SPDX, job->sbom, job->sbom_len,
                               &sbom, &sbom_len, err) < 0)
      return hoist_err_wrap(err, "SBOM statement");
    st[n++] = (hoist_attest_statement_blob){HOIST_PREDICATE_SPDX, sbom, sbom_len};
  }
  if (ao->provenance) {
    if (ao->requested_by)
      json_object_set_new(job->external, "requestedBy", json_string(ao->requested_by));
    hoist_provenance_info pi = {
        .subject_name = name,
        .subject_digest = image_digest,
        .verb = job->verb,
        .version = HOIST_VERSION,
        .external = job->external,
        .internal = job->internal,
        .deps = job->deps,
        .n_deps = job->n_deps,
        .started = job->started,
        .finished = time(NULL),
    };
    if (hoist_provenance_statement(&pi, &prov, &prov_len, err) < 0)
      return hoist_err_wrap(err, "provenance");
    st[n++] = (hoist_attest_statement_blob){HOIST_PREDICATE_SLSA_PROVENANCE, prov, prov_len};
  }
  if (n == 0)
    return 0;
  return hoist_attest_attach(to, dst, ao->mode, st, n, res, err);
}
