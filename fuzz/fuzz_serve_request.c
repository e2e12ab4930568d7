/* libFuzzer target: what the deployer service reads from a request. The
 * first line is an authorization header, the rest a build/start body (also
 * tried as a build/cleanup body). Accepted input must satisfy the limits:
 * non-empty uuid and key without controls, a target of the caller, a file
 * within 5 MB of UTF-8 text, a non-negative finite age. */
#include <math.h>
#include <string.h>

#include "hoist/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *nl = memchr(data, '\n', size);
  size_t hl = nl ? (size_t)(nl - (const char *)data) : size;
  char *header = strndup((const char *)data, hl);
  char *uuid = NULL, *key = NULL;
  hoist_err *err = NULL;
  if (hoist_server_parse_authorization(header, &uuid, &key, &err) == 0) {
    if (!*uuid || !*key || strchr(key, ':'))
      __builtin_trap();
    for (const char *p = key; *p; p++)
      if ((unsigned char)*p <= 0x20)
        __builtin_trap();
  } else if (!err) {
    __builtin_trap();
  }
  free(uuid);
  free(key);
  hoist_err_free(err);
  free(header);

  const char *body = nl ? nl + 1 : "";
  size_t bl = nl ? size - hl - 1 : 0;
  hoist_build_request req;
  hoist_refusal why;
  if (hoist_server_parse_start(body, bl, "alice", hoist_server_kinds(), true, &req, &why) == 0) {
    if (strcmp(req.target_user, "alice") != 0 || req.file_len > HOIST_SERVER_MAX_FILE_BYTES ||
        strchr(req.source, '\n') || strchr(req.target, ';'))
      __builtin_trap();
    hoist_build_request_clear(&req);
  } else if (why.status != 400 || !why.message[0]) {
    __builtin_trap();
  }
  double h;
  if (hoist_server_parse_cleanup(body, bl, &h, &why) == 0 && (!isfinite(h) || h < 0))
    __builtin_trap();
  return 0;
}
