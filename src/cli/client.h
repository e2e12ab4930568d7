/*
 * client: what the verbs of `hoist service` that talk to the service (send,
 * clean, logs, status, images) share: where the service is and who the
 * caller is (--server and --auth, else APIHOST and AUTH of ~/.wskprops),
 * and one HTTP call to it.
 */
#ifndef HOIST_CLI_CLIENT_H
#define HOIST_CLI_CLIENT_H

#include <jansson.h>

#include "cli.h"

#define CLIENT_HELP                                                                                \
  "Service options:\n"                                                                             \
  "  --server URL     the service (default: APIHOST of ~/.wskprops)\n"                             \
  "  --auth UUID:KEY  the caller's key (default: AUTH of ~/.wskprops)\n"                           \
  "  --ca-file FILE   CA bundle to verify an https service with, instead of the system's\n"        \
  "  --cert FILE      client certificate, for a service that requires one (PEM)\n"                 \
  "  --key FILE       its key (PEM)\n"                                                             \
  "  --json           print the service's answer as JSON\n"

typedef struct cli_client {
  char *server;
  char *auth;
  char *ca_file;
  char *cert_file, *key_file;
  bool json;
} cli_client;

/* The options of CLIENT_HELP, for CLI_GROUP(cli_client_opts, &cl). */
extern const cli_opt cli_client_opts[];
/* Runs a verb whose options are the client's alone: returns run(&cl,
 * operands, n), n the number of operands, or the exit code of --help or of
 * a usage error (n_usage when the operands are not n, unless n is -1). */
int cli_client_run(const char *verb, const char *usage, int n, const char *n_usage,
                   int (*run)(cli_client *cl, char **operands, int n), int argc, char **argv);

/* Fills what options left unset from ~/.wskprops ($WSK_CONFIG_FILE). */
int cli_client_ready(cli_client *c, hoist_err **err);
void cli_client_free(cli_client *c);
#define _cleanup_client_ __attribute__((cleanup(cli_client_free)))

/* One request: method, path (with query), optional JSON body. *status is
 * the HTTP status, *out the answer (a JSON object; caller decrefs). */
int cli_client_call(cli_client *c, const char *method, const char *path, json_t *body, long *status,
                    json_t **out, hoist_err **err);

/* URL-escaped s for a query value; caller frees. */
char *cli_client_escape(const char *s);

/* Streams a job's log to stdout (follow: until the job ends). */
int cli_client_stream_log(cli_client *c, const char *id, bool follow, hoist_err **err);

/* Prints the answer: its JSON (--json) or its message; returns the exit code
 * (0 for "ok", 1 otherwise). Consumes out. */
int cli_client_report(cli_client *c, const char *verb, long status, json_t *out);

#endif
