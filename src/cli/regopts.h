/*
 * regopts: the options every registry verb shares (credentials, TLS,
 * insecure hosts, parallelism, --json) and the progress display for
 * transfers (bars on a TTY, nothing otherwise).
 */
#ifndef HOIST_CLI_REGOPTS_H
#define HOIST_CLI_REGOPTS_H

#include "cli.h"
#include "hoist/image.h"
#include "hoist/registry.h"

enum {
  REGOPT_CREDS = 0x1000,
  REGOPT_AUTHFILE,
  REGOPT_INSECURE,
  REGOPT_CA,
  REGOPT_CERT,
  REGOPT_KEY,
  REGOPT_TLS_VERIFY,
  REGOPT_JOBS,
  REGOPT_JSON,
  REGOPT_CONFIG,
  REGOPT_SECRET,
};

#define REGOPTS_LONG                                                                               \
  {"creds", required_argument, NULL, REGOPT_CREDS},                                                \
      {"authfile", required_argument, NULL, REGOPT_AUTHFILE},                                      \
      {"secret", required_argument, NULL, REGOPT_SECRET},                                          \
      {"insecure-registry", required_argument, NULL, REGOPT_INSECURE},                             \
      {"ca-file", required_argument, NULL, REGOPT_CA},                                             \
      {"cert", required_argument, NULL, REGOPT_CERT},                                              \
      {"key", required_argument, NULL, REGOPT_KEY},                                                \
      {"tls-verify", required_argument, NULL, REGOPT_TLS_VERIFY},                                  \
      {"registries-conf", required_argument, NULL, REGOPT_CONFIG},                                 \
      {"jobs", required_argument, NULL, REGOPT_JOBS}, {                                            \
    "json", no_argument, NULL, REGOPT_JSON                                                         \
  }

#define REGOPTS_HELP                                                                               \
  "Registry options:\n"                                                                            \
  "  --creds USER:PASSWORD     credentials for the registries\n"                                   \
  "  --authfile FILE           Docker config.json / auth.json to read credentials from\n"          \
  "  --secret FILE             Kubernetes .dockerconfigjson secret (also $REGISTRY_SECRET)\n"      \
  "  --insecure-registry HOST  speak plain http to HOST (repeatable)\n"                            \
  "  --registries-conf FILE    registries config (default ~/.config/hoist/registries.json)\n"      \
  "  --ca-file FILE            extra CA bundle for https\n"                                        \
  "  --cert FILE, --key FILE   TLS client certificate and key\n"                                   \
  "  --tls-verify=false        do not verify TLS certificates\n"                                   \
  "  --jobs N                  parallel blob transfers (default 4)\n"                              \
  "  --json                    print the result as JSON\n"

typedef struct cli_regopts {
  hoist_registry_opts o;
  char **insecure;
  size_t n_insecure;
  bool json;
} cli_regopts;

/* Handles one of REGOPTS_LONG; returns 1 handled, 0 not ours, -1 bad value
 * (already reported; exit 2). */
int cli_regopts_handle(cli_regopts *ro, const char *verb, int opt, const char *arg);

/* Opens the client, with a progress display when stderr is a TTY and
 * progress is wanted. */
int cli_regopts_open(cli_regopts *ro, bool progress, hoist_registry **out, hoist_err **err);

/* Finishes the progress display. */
void cli_progress_end(void);

void cli_regopts_free(cli_regopts *ro);

/* Prints a JSON value on stdout followed by a newline; consumes j. */
void cli_print_json(json_t *j);

/* Copies src to dst and prints the result (human or --json); returns the
 * exit code. */
int cli_transfer(const char *verb, cli_regopts *ro, const char *src, const char *dst,
                 const hoist_image_copy_opts *opts);
/* The image store: $HOIST_IMAGES, default ${HOIST_CACHE:-~/.cache/hoist}/images.
 * Caller frees. */
char *cli_image_store(void);

/* *out (caller frees): a layout holding the image src names. A registry
 * image is pulled into the image store unless it is there already
 * (hoist_image_pull), through r, or a client opened from ro when r is NULL;
 * a layout is src itself. */
int cli_pull_to_store(cli_regopts *ro, hoist_registry *r, const hoist_loc *src,
                      const hoist_platform *platform, hoist_loc **out, hoist_err **err);

/* With --allow-foreign-urls: the non-distributable layers of m that the
 * layout s lacks, fetched from their urls (hoist_image_fetch_foreign). */
int cli_fetch_foreign(cli_regopts *ro, hoist_store *s, const hoist_manifest *m, hoist_err **err);

/* Where `hoist pull REF` puts an image without --to: its layout in the image
 * store (hoist_image_store_location). Caller frees. */
char *cli_image_store_location(const hoist_ref *ref);
#endif
