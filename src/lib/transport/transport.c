/* Opening a location with its driver, and what every driver shares: moving
 * one blob between a source and a target. */
#include <errno.h>
#include <string.h>

#include "archive-private.h"
#include "hoist/transport.h"

/* ------------------------------------------------------------- drivers */

HOIST_WUR static int layout_source(const hoist_transport_opts *o, const hoist_loc *loc,
                                   hoist_transport_source **out, hoist_err **err) {
  (void)o;
  return hoist_transport_layout_source(loc->dir, loc->tag, out, err);
}

HOIST_WUR static int layout_target(const hoist_transport_opts *o, const hoist_loc *loc,
                                   hoist_transport_target **out, hoist_err **err) {
  (void)o;
  return hoist_transport_layout_target(loc->dir, loc->tag, out, err);
}

HOIST_WUR static int registry_source(const hoist_transport_opts *o, const hoist_loc *loc,
                                     hoist_transport_source **out, hoist_err **err) {
  return hoist_transport_registry_source(o->registry, loc->ref, out, err);
}

HOIST_WUR static int registry_target(const hoist_transport_opts *o, const hoist_loc *loc,
                                     hoist_transport_target **out, hoist_err **err) {
  return hoist_transport_registry_target(o->target_registry ? o->target_registry : o->registry,
                                         loc->ref, out, err);
}

/* One row per kind of location: adding a driver is adding a row. */
static const struct driver {
  hoist_loc_kind kind;
  int (*open_source)(const hoist_transport_opts *o, const hoist_loc *loc,
                     hoist_transport_source **out, hoist_err **err);
  int (*open_target)(const hoist_transport_opts *o, const hoist_loc *loc,
                     hoist_transport_target **out, hoist_err **err);
} drivers[] = {
    {HOIST_LOC_LAYOUT, layout_source, layout_target},
    {HOIST_LOC_REGISTRY, registry_source, registry_target},
    {HOIST_LOC_DOCKER_ARCHIVE, arc_docker_source, arc_docker_target},
    {HOIST_LOC_OCI_ARCHIVE, arc_oci_source, arc_oci_target},
};

static const struct driver *driver_of(const hoist_loc *loc, hoist_err **err) {
  for (size_t i = 0; i < sizeof drivers / sizeof *drivers; i++)
    if (drivers[i].kind == loc->kind)
      return &drivers[i];
  hoist_err_set(err, EINVAL, "no transport for locations of kind %d", (int)loc->kind);
  return NULL;
}

int hoist_transport_open_source(const hoist_transport_opts *opts, const hoist_loc *loc,
                                hoist_transport_source **out, hoist_err **err) {
  hoist_transport_opts none = {0};
  const struct driver *d = driver_of(loc, err);
  *out = NULL;
  return d ? d->open_source(opts ? opts : &none, loc, out, err) : -EINVAL;
}

int hoist_transport_open_target(const hoist_transport_opts *opts, const hoist_loc *loc,
                                hoist_transport_target **out, hoist_err **err) {
  hoist_transport_opts none = {0};
  const struct driver *d = driver_of(loc, err);
  *out = NULL;
  return d ? d->open_target(opts ? opts : &none, loc, out, err) : -EINVAL;
}

/* ------------------------------------------------------- shared steps */

int hoist_transport_copy_blob(hoist_transport_target *t, hoist_transport_source *from,
                              const hoist_descriptor *d, hoist_transport_how *how, uint64_t *bytes,
                              hoist_err **err) {
  hoist_transport_how h = HOIST_TRANSPORT_PRESENT;
  uint64_t n = 0;
  if (t->ops->copy_blob) {
    if (t->ops->copy_blob(t, d, from, &h, &n, err) < 0)
      return -1;
  } else {
    bool has = false;
    if (t->ops->has_blob(t, d, &has, err) < 0)
      return -1;
    if (!has) {
      _cleanup_writer_ hoist_writer *w = NULL;
      char got[HOIST_DIGEST_STR_LEN];
      if (t->ops->blob_writer(t, d->digest, d->size, &w, err) < 0 ||
          from->ops->copy_blob(from, d, w, err) < 0 || hoist_writer_commit(w, got, &n, err) < 0)
        return -1;
      h = HOIST_TRANSPORT_COPIED;
    }
  }
  if (how)
    *how = h;
  if (bytes)
    *bytes = n;
  return 0;
}

int hoist_transport_commit(hoist_transport_target *t, hoist_err **err) {
  return t->ops->commit ? t->ops->commit(t, err) : 0;
}
