#include <stdatomic.h>
#include <string.h>

#include "hoist/core.h"

static atomic_int log_level = HOIST_LOG_WARN;
static hoist_log_sink log_sink;
static void *log_userdata;

hoist_log_level hoist_log_get_level(void) { return (hoist_log_level)atomic_load(&log_level); }

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
