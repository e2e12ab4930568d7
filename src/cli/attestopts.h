/*
 * attestopts: the options of the verbs that can attach attestations to the
 * image they push (build, append, bundle publish, index create):
 * --provenance, --attest-mode, --requested-by (and --sbom, which each verb
 * that has an SBOM to give adds itself), and the step that makes the
 * statements and attaches them after the push.
 */
#ifndef HOIST_CLI_ATTESTOPTS_H
#define HOIST_CLI_ATTESTOPTS_H

#include <jansson.h>
#include <time.h>

#include "cli.h"
#include "hoist/attest.h"

typedef struct cli_attestopts {
  bool provenance;
  bool sbom;
  const char *mode_s;
  const char *requested_by;
  hoist_attest_mode mode; /* set by cli_attestopts_check */
} cli_attestopts;

/* For CLI_GROUP(cli_attestopts_opts, &ao): --provenance, --attest-mode,
 * --requested-by. */
extern const cli_opt cli_attestopts_opts[];

#define ATTESTOPTS_HELP                                                                            \
  "Attestations (README \"Provenance and SBOMs\"):\n"                                              \
  "  --provenance               attach a SLSA provenance (v1) statement to the image\n"            \
  "  --attest-mode index|referrer  where statements go: index (default) makes the\n"               \
  "                             tag name an index of the image and an attestation\n"               \
  "                             manifest, as BuildKit does; referrer stores each as\n"             \
  "                             an OCI 1.1 referrer of the image\n"                                \
  "  --requested-by USER        the user the provenance names as the requester\n"
#define ATTESTOPTS_SBOM_HELP                                                                       \
  "  --sbom                     attach an SPDX 2.3 SBOM of the packages the new layer\n"           \
  "                             added and the base's system packages\n"

/* Checks the mode; a usage error (returns 2) or -1 to go on. */
int cli_attestopts_check(const char *verb, cli_attestopts *ao);

/* A usage error (returns 2) when attestations are asked for a target that
 * cannot hold them (an archive); -1 to go on. */
int cli_attestopts_check_target(const char *verb, const cli_attestopts *ao, const hoist_loc *dst);

/* True when the verb has something to attach. */
static inline bool cli_attest_wanted(const cli_attestopts *ao) {
  return ao->provenance || ao->sbom;
}

/* What the verb did, for its provenance: the buildType's verb, the time it
 * began, its parameters (owned here: cli_attest_job_clear), the inputs it
 * read by digest. */
typedef struct cli_attest_job {
  const char *verb;
  time_t started;
  json_t *external;
  json_t *internal;
  hoist_provenance_dep deps[64];
  char *dep_strings[128];
  size_t n_deps;
  size_t n_strings;
  char *sbom; /* SPDX JSON, or NULL */
  size_t sbom_len;
} cli_attest_job;

void cli_attest_job_init(cli_attest_job *j, const char *verb);
/* Adds a resolved dependency (copied); one past the table's room is
 * dropped. */
void cli_attest_job_dep(cli_attest_job *j, const char *uri, const char *digest, const char *name);
void cli_attest_job_clear(cli_attest_job *j);
#define _cleanup_attest_job_ __attribute__((cleanup(cli_attest_job_clear)))

/* job->sbom: the SPDX document of sb, named name (the image reference),
 * its namespace from image_digest. */
int cli_attest_job_sbom(cli_attest_job *job, const hoist_sbom *sb, const char *name,
                        const char *image_digest, hoist_err **err);

/* job->sbom from the image image_digest at dst: the packages of its last
 * layer (what the verb added: read from layer_dir, a layout holding its
 * blob, when it is there, else from dst) and of the others (from base, NULL:
 * dst), merged as the layers stack (hoist_sbom_merge_layers). */
int cli_attest_sbom_image(cli_attest_job *job, const hoist_transport_opts *to, const hoist_loc *dst,
                          const char *image_digest, hoist_transport_source *base,
                          const char *layer_dir, hoist_err **err);

/* A mirror's URL without its user information (user:password@), for a
 * record others read. Caller frees. */
char *cli_attest_redact_url(const char *url);

/* Makes the statements the options ask for (the provenance of job, the
 * SBOM of job->sbom) for the image image_digest at dst and attaches them;
 * *res says where they went. */
int cli_attest_finish(const cli_attestopts *ao, const hoist_transport_opts *to,
                      const hoist_loc *dst, const char *image_digest, cli_attest_job *job,
                      hoist_attest_result *res, hoist_err **err);

#endif
