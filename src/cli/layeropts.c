#include <errno.h>
#include <string.h>

#include "env.h"
#include "layeropts.h"

int cli_opt_compression(const char *verb, const char *arg, void *dest) {
  hoist_err *err = NULL;
  if (hoist_layer_compression_parse(arg, dest, &err) < 0) {
    hoist_err_free(err);
    return cli_usage(verb, "unknown compression '%s' (gzip, zstd or none)", arg), -1;
  }
  return 0;
}

int cli_opt_level(const char *verb, const char *arg, void *dest) {
  char *end;
  long v = strtol(arg, &end, 10);
  if (*end || end == arg || v < 0 || v > 22)
    return cli_usage(verb, "bad --level '%s'", arg), -1;
  *(int *)dest = (int)v;
  return 0;
}

int cli_opt_compress_threads(const char *verb, const char *arg, void *dest) {
  char *end;
  errno = 0;
  long v = strtol(arg, &end, 10);
  if (errno || *end || end == arg || v < 1 || v > HOIST_LAYER_MAX_THREADS)
    return cli_usage(verb, "--compress-threads takes a number from 1 to %d",
                     HOIST_LAYER_MAX_THREADS),
           -1;
  *(int *)dest = (int)v;
  return 0;
}

int cli_opt_epoch(const char *verb, const char *arg, void *dest) {
  char *end;
  errno = 0;
  long long v = strtoll(arg, &end, 10);
  if (errno || *end || end == arg || v < 0)
    return cli_usage(verb, "bad --source-date-epoch '%s'", arg), -1;
  *(int64_t *)dest = v;
  return 0;
}

int cli_layer_epoch_default(int64_t *epoch, hoist_err **err) {
  return *epoch < 0 ? cli_env_epoch(epoch, err) : 0;
}

int cli_opt_map(const char *verb, const char *arg, void *dest) {
  cli_maps *m = dest;
  const char *c = strrchr(arg, ':');
  if (m->n == sizeof m->v / sizeof *m->v || !c || c == arg || !c[1])
    return cli_usage(verb, "bad --map '%s' (want SRC:DEST)", arg), -1;
  char *src = strndup(arg, (size_t)(c - arg));
  if (!src)
    abort();
  m->v[m->n++] = (hoist_layer_map){.src = src, .dest = hoist_strdup(c + 1)};
  return 0;
}

void cli_maps_clear(cli_maps *m) {
  for (size_t i = 0; i < m->n; i++) {
    free((char *)m->v[i].src);
    free((char *)m->v[i].dest);
  }
  m->n = 0;
}
