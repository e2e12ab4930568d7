#include <stdatomic.h>
#include <string.h>
#include <strings.h>

#include "hoist/core.h"

static atomic_int log_level = -1;
static hoist_log_sink log_sink;
static void *log_userdata;

static hoist_log_level level_from_env(void) {
  const char *v = getenv("HOIST_LOG");
  if (!v || !*v)
    return HOIST_LOG_WARN;
  static const char *const names[] = {"error", "warn", "info", "debug"};
  for (int i = 0; i < 4; i++)
    if (strcasecmp(v, names[i]) == 0)
      return (hoist_log_level)i;
  if (strcasecmp(v, "warning") == 0)
    return HOIST_LOG_WARN;
  return HOIST_LOG_WARN;
}

hoist_log_level hoist_log_get_level(void) {
  int l = atomic_load(&log_level);
  if (l < 0) {
    l = (int)level_from_env();
    atomic_store(&log_level, l);
  }
  return (hoist_log_level)l;
}

void hoist_log_set_level(hoist_log_level level) { atomic_store(&log_level, (int)level); }

void hoist_log_set_sink(hoist_log_sink sink, void *userdata) {
  log_sink = sink;
  log_userdata = userdata;
}

void hoist_log(hoist_log_level level, const char *fmt, ...) {
  if (level > hoist_log_get_level())
    return;
  va_list ap;
  va_start(ap, fmt);
  char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0)
    abort();
  va_end(ap);
  if (log_sink) {
    log_sink(level, msg, log_userdata);
  } else {
    static const char *const tags[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "hoist: %s: %s\n", tags[level], msg);
  }
  free(msg);
}
