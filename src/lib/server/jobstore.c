/* server: what the job store's drivers share (the wire form of a job, job
 * names) and the choice of driver by URL. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "jobstore.h"

const char *const store_states[STORE_NSTATES] = {"queued", "running", "succeeded", "failed",
                                                 "canceled"};

void store_job_clear(store_job *j) {
  free(j->user);
  free(j->source);
  free(j->kind);
  free(j->dest);
  free(j->file_digest);
  if (j->secret)
    memset(j->secret, 0, strlen(j->secret));
  free(j->secret);
  free(j->file);
  memset(j, 0, sizeof *j);
}

void store_row_clear(store_row *r) {
  free(r->id);
  free(r->user);
  free(r->source);
  free(r->target);
  free(r->kind);
  free(r->state);
  free(r->image);
  free(r->digest);
  free(r->error);
  memset(r, 0, sizeof *r);
}

char *store_job_name(const char *user, const char *id) {
  size_t room = HOIST_SERVER_JOB_NAME_MAX - 6 - 1 - strlen(id);
  char u[64];
  size_t n = 0;
  for (; user[n] && n < room && n < sizeof u - 1; n++) {
    char c = user[n];
    u[n] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ? c : '-';
  }
  u[n] = '\0';
  return hoist_asprintf("build-%s-%s", u, id);
}

static const char *phase_of(const char *state) {
  if (strcmp(state, "queued") == 0)
    return "Pending";
  if (strcmp(state, "running") == 0)
    return "Running";
  if (strcmp(state, "succeeded") == 0)
    return "Succeeded";
  return "Failed";
}

static json_t *time_json(double t) {
  if (t < 0)
    return json_null();
  time_t s = (time_t)t;
  struct tm tm;
  char out[32];
  gmtime_r(&s, &tm);
  strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return json_string(out);
}

static json_t *text_json(const char *s) { return s ? json_string(s) : json_null(); }

json_t *store_row_json(const store_row *r) {
  json_t *o = json_object();
  json_object_set_new(o, "id", json_string(r->id));
  char *name = store_job_name(r->user, r->id);
  json_object_set_new(o, "job_name", json_string(name));
  free(name);
  json_object_set_new(o, "phase", json_string(phase_of(r->state)));
  json_object_set_new(o, "state", json_string(r->state));
  json_object_set_new(o, "creationTime", time_json(r->created));
  json_object_set_new(o, "startTime", time_json(r->started));
  json_object_set_new(o, "completionTime", time_json(r->finished));
  json_object_set_new(o, "source", text_json(r->source));
  json_object_set_new(o, "target", text_json(r->target));
  json_object_set_new(o, "kind", text_json(r->kind));
  json_object_set_new(o, "image", text_json(r->image));
  json_object_set_new(o, "digest", text_json(r->digest));
  json_object_set_new(o, "error", text_json(r->error));
  return o;
}

int server_store_open(const char *url, const char *data_dir, server_store **out, hoist_err **err) {
  _cleanup_free_ char *jobs = hoist_asprintf("%s/jobs", data_dir);
  if (!url || !*url) {
    _cleanup_free_ char *path = hoist_asprintf("%s/jobs.db", data_dir);
    return store_sqlite_open(path, jobs, out, err);
  }
  if (strncmp(url, "sqlite:", 7) == 0) {
    if (!url[7])
      return hoist_err_set(err, EINVAL, "--db sqlite:PATH: the path is empty");
    return store_sqlite_open(url + 7, jobs, out, err);
  }
  if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0 ||
      strchr(url, '='))
    return store_pg_open(url, out, err);
  return hoist_err_set(err, EINVAL,
                       "--db: expected sqlite:PATH, postgres://... or a libpq key=value string");
}
