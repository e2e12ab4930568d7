/* hoist service send: a build through the deployer service, followed to its end. */
#include <fcntl.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "hoist/fs.h"
#include "hoist/server.h"

#define VERB "service send"

static const char usage[] =
    "Usage: hoist service send --source REF --target USER:TAG --kind KIND [--file PATH] "
    "[OPTIONS]\n\n"
    "Ask the deployer service to build SOURCE extended with the requirements in PATH\n"
    "(without --file: SOURCE re-tagged) and push it as USER:TAG, then follow the\n"
    "build's log. Exits 0 only when the build succeeded.\n\n"
    "Options:\n"
    "  --source REF      base image\n"
    "  --target USER:TAG the image to make (USER: your login)\n"
    "  --kind KIND       python, nodejs, php, java, go, ruby or dotnet\n"
    "  --file PATH       the requirements file (at most 5 MB)\n"
    "  --no-follow       print the job id and return at once\n"
    "  -h, --help        show this help\n\n" CLIENT_HELP;

static int send_run(int argc, char **argv) {
  const char *source = NULL, *target = NULL, *kind = NULL, *file = NULL;
  bool no_follow = false;
  _cleanup_client_ cli_client cl = {0};
  const cli_opt opts[] = {
      CLI_STRING("source", &source),
      CLI_STRING("target", &target),
      CLI_STRING("kind", &kind),
      CLI_STRING("file", &file),
      CLI_FLAG("no-follow", &no_follow),
      CLI_GROUP(cli_client_opts, &cl),
      CLI_END,
  };
  int rc = cli_parse_opts(VERB, usage, opts, argc, argv);
  if (rc >= 0)
    return rc;
  if (!source || !target || !kind || optind != argc)
    return cli_usage(VERB, "--source, --target and --kind are required");
  hoist_err *err = NULL;
  json_t *body = json_pack("{s:s, s:s, s:s}", "source", source, "target", target, "kind", kind);
  if (file) {
    _cleanup_free_ char *data = NULL;
    size_t len;
    if (hoist_fs_read_file(AT_FDCWD, file, HOIST_SERVER_MAX_FILE_BYTES, &data, &len, &err) < 0) {
      json_decref(body);
      return cli_fail(VERB, err);
    }
    char *b64 = hoist_base64_encode(data, len);
    json_object_set_new(body, "file", json_string(b64));
    free(b64);
  }
  long status = 0;
  json_t *out = NULL;
  int r = cli_client_ready(&cl, &err);
  if (r == 0)
    r = cli_client_call(&cl, "POST", "/system/api/v1/build/start", body, &status, &out, &err);
  json_decref(body);
  if (r < 0)
    return cli_fail(VERB, err);
  const char *id = json_string_value(json_object_get(out, "id"));
  if (!id || no_follow)
    return cli_client_report(&cl, VERB, status, out);
  _cleanup_free_ char *jid = hoist_strdup(id);
  if (!cl.json)
    fprintf(stderr, "hoist service send: %s\n", json_string_value(json_object_get(out, "message")));
  json_decref(out);
  out = NULL;
  if (cli_client_stream_log(&cl, jid, true, &err) < 0)
    return cli_fail(VERB, err);
  /* the log ends when the job does; its record may lag a moment */
  _cleanup_free_ char *path = hoist_asprintf("/system/api/v1/build/status?id=%s", jid);
  const char *phase = NULL;
  for (int i = 0; i < 100; i++) {
    json_decref(out);
    out = NULL;
    if (cli_client_call(&cl, "GET", path, NULL, &status, &out, &err) < 0)
      return cli_fail(VERB, err);
    phase = json_string_value(json_object_get(out, "phase"));
    if (phase && strcmp(phase, "Pending") != 0 && strcmp(phase, "Running") != 0)
      break;
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  bool ok = phase && strcmp(phase, "Succeeded") == 0;
  if (cl.json) {
    char *t = json_dumps(out, JSON_INDENT(2));
    printf("%s\n", t);
    free(t);
  } else if (ok) {
    const char *d = json_string_value(json_object_get(out, "digest"));
    printf("%s%s%s\n", json_string_value(json_object_get(out, "image")), d ? "@" : "", d ? d : "");
  } else {
    const char *e = json_string_value(json_object_get(out, "error"));
    fprintf(stderr, "hoist service send: build %s %s: %s\n", jid, phase ? phase : "unknown",
            e ? e : "no details");
  }
  json_decref(out);
  return ok ? EXIT_OK : EXIT_FAIL;
}

HOIST_SERVICE_SUBVERB(send, "send", "build an image through the deployer service", send_run);
