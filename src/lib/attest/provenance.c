/* attest: in-toto statements (made and read back) and the SLSA provenance
 * predicate hoist writes. */
#include <errno.h>
#include <string.h>

#include "hoist/attest.h"

/* {"sha256": "<hex>"} of a "sha256:<hex>" digest; NULL for another one. */
static json_t *digest_set(const char *digest) {
  if (!digest || !hoist_digest_valid(digest) || strncmp(digest, "sha256:", 7) != 0)
    return NULL;
  return json_pack("{s:s}", "sha256", digest + 7);
}

/* Loads untrusted JSON of at most max bytes into an object. */
static int load_object(const char *data, size_t len, size_t max, const char *what, json_t **out,
                       hoist_err **err) {
  *out = NULL;
  if (len > max)
    return hoist_err_set(err, HOIST_E_LIMIT, "%s: %zu bytes exceeds the statement limit of %zu",
                         what, len, max);
  json_error_t je;
  json_t *j = json_loadb(data ? data : "", len, JSON_REJECT_DUPLICATES, &je);
  if (!j)
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: not JSON: %s (line %d)", what, je.text, je.line);
  if (!json_is_object(j)) {
    json_decref(j);
    return hoist_err_set(err, HOIST_E_FORMAT, "%s is not a JSON object", what);
  }
  *out = j;
  return 0;
}

int hoist_attest_statement(const char *subject_name, const char *subject_digest,
                           const char *predicate_type, const char *predicate, size_t predicate_len,
                           char **out, size_t *len, hoist_err **err) {
  *out = NULL;
  if (len)
    *len = 0;
  json_t *dset = digest_set(subject_digest);
  if (!dset)
    return hoist_err_set(err, EINVAL, "statement subject: '%s' is not a sha256 digest",
                         subject_digest ? subject_digest : "");
  if (!subject_name || !*subject_name || !predicate_type || !*predicate_type) {
    json_decref(dset);
    return hoist_err_set(err, EINVAL, "statement: a subject name and a predicate type are needed");
  }
  json_t *pred = NULL;
  int r =
      load_object(predicate, predicate_len, HOIST_ATTEST_STATEMENT_MAX, "predicate", &pred, err);
  if (r < 0) {
    json_decref(dset);
    return r;
  }
  _cleanup_json_ json_t *st = json_pack(
      "{s:s, s:[{s:s, s:o}], s:s, s:o}", "_type", HOIST_INTOTO_STATEMENT_TYPE, "subject", "name",
      subject_name, "digest", dset, "predicateType", predicate_type, "predicate", pred);
  if (!st)
    return hoist_err_set(err, HOIST_E_FORMAT, "statement: a string is not valid UTF-8");
  return hoist_json_canonical(st, out, len, err);
}

int hoist_attest_statement_parse(const char *data, size_t len, char **predicate_type,
                                 char **predicate, hoist_err **err) {
  if (predicate_type)
    *predicate_type = NULL;
  if (predicate)
    *predicate = NULL;
  _cleanup_json_ json_t *j = NULL;
  int r = load_object(data, len, HOIST_ATTEST_STATEMENT_MAX, "in-toto statement", &j, err);
  if (r < 0)
    return r;
  const char *type = json_string_value(json_object_get(j, "_type"));
  if (!type || (strcmp(type, HOIST_INTOTO_STATEMENT_TYPE) != 0 &&
                strcmp(type, "https://in-toto.io/Statement/v0.1") != 0))
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "in-toto statement: _type is not " HOIST_INTOTO_STATEMENT_TYPE);
  json_t *subject = json_object_get(j, "subject");
  if (!json_is_array(subject) || json_array_size(subject) == 0)
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "in-toto statement: subject must be a non-empty array");
  size_t i;
  json_t *s;
  json_array_foreach(subject, i, s) {
    json_t *d = json_object_get(s, "digest");
    if (!json_is_object(s) || !json_is_object(d) || json_object_size(d) == 0)
      return hoist_err_set(err, HOIST_E_FORMAT,
                           "in-toto statement: subject[%zu] needs a digest object", i);
    json_t *name = json_object_get(s, "name");
    if (name && !json_is_string(name))
      return hoist_err_set(err, HOIST_E_FORMAT,
                           "in-toto statement: subject[%zu].name is not a string", i);
    const char *alg;
    json_t *v;
    json_object_foreach(d, alg, v) {
      if (!json_is_string(v) || json_string_length(v) == 0)
        return hoist_err_set(err, HOIST_E_FORMAT,
                             "in-toto statement: subject[%zu].digest.%s is not a hex string", i,
                             alg);
    }
  }
  const char *ptype = json_string_value(json_object_get(j, "predicateType"));
  if (!ptype || !*ptype)
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "in-toto statement: predicateType must be a non-empty string");
  /* an absent predicate is an empty one (the spec's "unset") */
  json_t *pred = json_object_get(j, "predicate");
  _cleanup_json_ json_t *none = pred ? NULL : json_object();
  if (!pred)
    pred = none;
  if (!json_is_object(pred))
    return hoist_err_set(err, HOIST_E_FORMAT, "in-toto statement: predicate must be an object");
  _cleanup_free_ char *p = NULL;
  if (predicate && hoist_json_canonical(pred, &p, NULL, err) < 0)
    return hoist_err_wrap(err, "in-toto statement: predicate");
  if (predicate_type)
    *predicate_type = hoist_strdup(ptype);
  if (predicate)
    *predicate = steal_pointer(&p);
  return 0;
}

/* A copy of o (an object), or a new empty one. */
static json_t *params(const json_t *o, const char *what, hoist_err **err) {
  if (!o)
    return json_object();
  if (!json_is_object(o)) {
    hoist_err_set(err, EINVAL, "provenance: %s must be an object", what);
    return NULL;
  }
  return json_deep_copy(o);
}

int hoist_provenance_statement(const hoist_provenance_info *info, char **out, size_t *len,
                               hoist_err **err) {
  *out = NULL;
  if (len)
    *len = 0;
  if (!info->verb || !*info->verb || !info->version || !*info->version)
    return hoist_err_set(err, EINVAL, "provenance: a verb and a version are needed");
  char started[32], finished[32];
  if (hoist_config_format_time(info->started, started, err) < 0 ||
      hoist_config_format_time(info->finished, finished, err) < 0)
    return hoist_err_wrap(err, "provenance");
  json_t *ext = params(info->external, "externalParameters", err);
  if (!ext)
    return -EINVAL;
  json_t *internal = params(info->internal, "internalParameters", err);
  if (!internal) {
    json_decref(ext);
    return -EINVAL;
  }
  json_t *deps = json_array();
  for (size_t i = 0; i < info->n_deps; i++) {
    const hoist_provenance_dep *d = &info->deps[i];
    json_t *dset = digest_set(d->digest);
    if (!dset || !d->uri) {
      json_decref(dset);
      json_decref(deps);
      json_decref(ext);
      json_decref(internal);
      return hoist_err_set(
          err, EINVAL, "provenance: resolvedDependencies[%zu] needs a uri and a sha256 digest", i);
    }
    json_t *rd = json_pack("{s:s, s:o}", "uri", d->uri, "digest", dset);
    if (rd && d->name)
      json_object_set_new(rd, "name", json_string(d->name));
    if (rd && d->media_type)
      json_object_set_new(rd, "mediaType", json_string(d->media_type));
    if (!rd || json_array_append_new(deps, rd) < 0) {
      json_decref(deps);
      json_decref(ext);
      json_decref(internal);
      return hoist_err_set(err, HOIST_E_FORMAT,
                           "provenance: resolvedDependencies[%zu] is not valid UTF-8", i);
    }
  }
  _cleanup_free_ char *build_type = NULL;
  _cleanup_free_ char *builder_id = NULL;
  if (asprintf(&build_type, HOIST_BUILD_TYPE_PREFIX "%s/v1", info->verb) < 0 ||
      asprintf(&builder_id, HOIST_BUILDER_ID "@%s", info->version) < 0)
    abort();
  json_t *metadata = json_pack("{s:s, s:s}", "startedOn", started, "finishedOn", finished);
  if (info->invocation_id)
    json_object_set_new(metadata, "invocationId", json_string(info->invocation_id));
  _cleanup_json_ json_t *pred =
      json_pack("{s:{s:s, s:o, s:o, s:o}, s:{s:{s:s, s:{s:s}}, s:o}}", "buildDefinition",
                "buildType", build_type, "externalParameters", ext, "internalParameters", internal,
                "resolvedDependencies", deps, "runDetails", "builder", "id", builder_id, "version",
                "hoist", info->version, "metadata", metadata);
  if (!pred)
    return hoist_err_set(err, HOIST_E_FORMAT, "provenance: a string is not valid UTF-8");
  _cleanup_free_ char *p = NULL;
  size_t plen = 0;
  if (hoist_json_canonical(pred, &p, &plen, err) < 0)
    return hoist_err_wrap(err, "provenance");
  return hoist_attest_statement(info->subject_name, info->subject_digest,
                                HOIST_PREDICATE_SLSA_PROVENANCE, p, plen, out, len, err);
}
