/* hoist_image_index_create: single-platform images joined into one
 * multi-arch index (an OCI index or a Docker manifest list). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hoist/image.h"
#include "hoist/store.h"

/* BuildKit's marks of an index entry holding another entry's attestations
 * (attest.h names them for the module that writes them). */
#define REFERENCE_TYPE "vnd.docker.reference.type"
#define REFERENCE_DIGEST "vnd.docker.reference.digest"
#define REFERENCE_ATTESTATION "attestation-manifest"

static bool is_attestation(const hoist_descriptor *d) {
  const char *t = hoist_descriptor_annotation(d, REFERENCE_TYPE);
  return t && strcmp(t, REFERENCE_ATTESTATION) == 0;
}

/* One source, read and judged. */
typedef struct member {
  hoist_transport_source *src;
  hoist_descriptor desc;  /* manifest descriptor with its platform */
  hoist_descriptor *atts; /* its attestation manifests (from a BuildKit-style index) */
  size_t n_atts;
  char *platform; /* normalized "os/arch[/variant]" */
  char *name;     /* the source as written, for messages */
} member;

static void member_clear(member *m) {
  hoist_transport_source_free(m->src);
  hoist_descriptor_clear(&m->desc);
  for (size_t i = 0; i < m->n_atts; i++)
    hoist_descriptor_clear(&m->atts[i]);
  free(m->atts);
  free(m->platform);
  free(m->name);
  memset(m, 0, sizeof *m);
}

/* "os/arch[/variant]" normalized as hoist_platform_parse does, so that
 * linux/arm64/v8 and linux/arm64 compare equal. */
static char *platform_key(const hoist_platform *p) {
  _cleanup_free_ char *s = hoist_platform_string(p);
  hoist_platform *n = NULL;
  hoist_err *e = NULL;
  if (hoist_platform_parse(s, &n, &e) < 0) {
    hoist_err_free(e);
    return steal_pointer(&s);
  }
  char *out = hoist_platform_string(n);
  hoist_platform_free(n);
  return out;
}

/* Opens and reads src: one image manifest, or an index of exactly one
 * beside the attestation manifests of that image (as BuildKit pushes it);
 * fills m (m->src stays open for the copy). */
HOIST_WUR static int read_member(const hoist_transport_opts *t, const hoist_loc *src, member *m,
                                 hoist_err **err) {
  m->name = hoist_loc_string(src);
  _cleanup_free_ char *data = NULL;
  _cleanup_free_ char *got_mt = NULL;
  char got[HOIST_DIGEST_STR_LEN];
  size_t len = 0;
  if (hoist_transport_open_source(t, src, &m->src, err) < 0 ||
      m->src->ops->manifest(m->src, NULL, &data, &len, &got_mt, got, err) < 0)
    return hoist_err_wrap(err, "%s", m->name);
  hoist_transport_source *s = m->src;
  _cleanup_free_ char *mtbuf = NULL; /* outlives the index below */
  const char *mt = hoist_manifest_detect(data, len);
  if (!mt)
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: not an image manifest or index", m->name);
  if (hoist_media_kind_of(mt) == HOIST_MEDIA_INDEX) {
    _cleanup_index_ hoist_index *ix = NULL;
    if (hoist_index_parse(data, len, &ix, err) < 0)
      return hoist_err_wrap(err, "%s: index", m->name);
    const hoist_descriptor *d = NULL;
    size_t n_images = 0;
    for (size_t i = 0; i < ix->n_manifests; i++)
      if (!is_attestation(&ix->manifests[i])) {
        d = d ? d : &ix->manifests[i];
        n_images++;
      }
    if (n_images != 1) {
      _cleanup_free_ char *p = hoist_index_platforms(ix, "unknown");
      return hoist_err_set(err, HOIST_E_FORMAT,
                           "%s is multi-platform (%zu manifests: %s); index create takes "
                           "single-platform images",
                           m->name, ix->n_manifests, p);
    }
    /* the image's attestations go along; another image's would be stray */
    m->atts = hoist_calloc(ix->n_manifests, sizeof *m->atts);
    for (size_t i = 0; i < ix->n_manifests; i++) {
      const hoist_descriptor *a = &ix->manifests[i];
      const char *ref = hoist_descriptor_annotation(a, REFERENCE_DIGEST);
      if (!is_attestation(a) || !ref || strcmp(ref, d->digest) != 0)
        continue;
      if (hoist_media_kind_of(a->media_type) != HOIST_MEDIA_MANIFEST)
        return hoist_err_set(err, HOIST_E_FORMAT,
                             "%s: attestation entry %zu is not a manifest (%s)", m->name, i,
                             a->media_type);
      hoist_descriptor_copy(&m->atts[m->n_atts++], a);
    }
    free(steal_pointer(&data));
    free(steal_pointer(&got_mt));
    if (s->ops->manifest(s, d->digest, &data, &len, &got_mt, got, err) < 0)
      return hoist_err_wrap(err, "%s: manifest %s", m->name, d->digest);
    mtbuf = hoist_strdup(d->media_type ? d->media_type : hoist_manifest_detect(data, len));
    mt = mtbuf;
    if (hoist_media_kind_of(mt) != HOIST_MEDIA_MANIFEST)
      return hoist_err_set(err, HOIST_E_FORMAT, "%s: %s is not an image manifest", m->name,
                           d->digest);
  }
  _cleanup_manifest_ hoist_manifest *man = NULL;
  _cleanup_free_ char *cdata = NULL;
  size_t clen = 0;
  _cleanup_config_ hoist_config *cfg = NULL;
  if (hoist_manifest_parse_image(data, len, &man, err) < 0 ||
      s->ops->blob(s, man->config.digest, HOIST_MANIFEST_MAX, &cdata, &clen, err) < 0 ||
      hoist_config_parse(cdata, clen, &cfg, err) < 0)
    return hoist_err_wrap(err, "%s", m->name);
  hoist_descriptor_of_bytes(&m->desc, mt, data, len);
  m->desc.platform = hoist_config_platform(cfg);
  m->platform = platform_key(m->desc.platform);
  return 0;
}

/* True when two layout directories are the same directory. */
static bool same_dir(const char *a, const char *b) {
  char ra[PATH_MAX], rb[PATH_MAX];
  if (!realpath(a, ra) || !realpath(b, rb))
    return strcmp(a, b) == 0;
  return strcmp(ra, rb) == 0;
}

/* True when the image at src is in target's repository or layout already. */
static bool in_target(const hoist_loc *target, const hoist_loc *src) {
  if (target->kind != src->kind)
    return false;
  if (target->kind == HOIST_LOC_REGISTRY)
    return strcmp(src->ref->domain, target->ref->domain) == 0 &&
           strcmp(src->ref->path, target->ref->path) == 0;
  return target->kind == HOIST_LOC_LAYOUT && same_dir(src->dir, target->dir);
}

/* Copies member m's image into the target by digest unless it is there
 * already. */
HOIST_WUR static int bring_member(hoist_transport_target *dst, const hoist_loc *target,
                                  const hoist_loc *src, member *m,
                                  const hoist_image_index_opts *opts, bool *copied,
                                  hoist_err **err) {
  *copied = false;
  if (in_target(target, src))
    return 0;
  /* the image, then its attestation manifests (their statements with them) */
  for (size_t i = 0; i <= m->n_atts; i++) {
    const hoist_descriptor *d = i == 0 ? &m->desc : &m->atts[i - 1];
    hoist_image_copy_opts co = {.platform = i == 0 ? m->desc.platform : NULL, .jobs = opts->jobs};
    hoist_image_copy_result res;
    int ret = hoist_image_transfer(m->src, dst, d->digest, &co, &res, err);
    bool same = ret == 0 && strcmp(res.digest, d->digest) == 0;
    hoist_image_copy_result_clear(&res);
    if (ret < 0) {
      _cleanup_free_ char *tname = hoist_loc_string(target);
      return hoist_err_wrap(err, "copy %s%s to %s", m->name, i ? " (attestations)" : "", tname);
    }
    if (!same)
      return hoist_err_set(err, HOIST_E_DIGEST, "copy %s: the image changed while it was copied",
                           m->name);
  }
  *copied = true;
  return 0;
}

HOIST_WUR static int check_target(const hoist_loc *target, const hoist_image_index_opts *opts,
                                  hoist_err **err) {
  if (!hoist_loc_tag(target))
    return hoist_err_set(err, EINVAL, "the index target needs a tag (REPO:TAG or oci:DIR:TAG)");
  for (size_t i = 0; opts->tags && opts->tags[i]; i++) {
    const char *t = opts->tags[i];
    bool ok = false;
    if (target->kind == HOIST_LOC_REGISTRY) {
      /* the reference grammar judges the tag */
      _cleanup_free_ char *s =
          hoist_asprintf("%s/%s:%s", target->ref->domain, target->ref->path, t);
      hoist_ref *ref = NULL;
      hoist_err *e = NULL;
      ok = hoist_ref_parse(s, &ref, &e) == 0 && ref->tag && strcmp(ref->tag, t) == 0;
      hoist_ref_free(ref);
      hoist_err_free(e);
    } else {
      /* a tag that reads as a digest would be taken for one */
      ok = hoist_store_tag_valid(t) && !hoist_digest_valid(t);
    }
    if (!ok)
      return hoist_err_set(err, EINVAL, "invalid tag \"%s\"", t);
  }
  return 0;
}

/* Copies the members into the target, then stores the index (data) at the
 * target's tag and at every opts->tags, and commits the target. */
HOIST_WUR static int write_index(const hoist_transport_opts *t, const hoist_loc *target,
                                 const hoist_loc *const *srcs, member *ms, size_t n,
                                 const char *data, size_t len, const char *mt,
                                 const hoist_image_index_opts *opts, hoist_image_index_result *out,
                                 hoist_err **err) {
  _cleanup_transport_target_ hoist_transport_target *dst = NULL;
  if (hoist_transport_open_target(t, target, &dst, err) < 0)
    return -1;
  for (size_t i = 0; i < n; i++) {
    bool copied = false;
    if (bring_member(dst, target, srcs[i], &ms[i], opts, &copied, err) < 0)
      return -1;
    out->images_copied += copied;
  }
  if (dst->ops->put_manifest(dst, NULL, data, len, mt, err) < 0)
    return -1;
  for (size_t i = 0; opts->tags && opts->tags[i]; i++)
    if (dst->ops->put_manifest(dst, opts->tags[i], data, len, mt, err) < 0)
      return hoist_err_wrap(err, "tag %s", opts->tags[i]);
  return hoist_transport_commit(dst, err);
}

int hoist_image_index_create(const hoist_transport_opts *t, const hoist_loc *target,
                             const hoist_loc *const *srcs, size_t n_srcs,
                             const hoist_image_index_opts *opts, hoist_image_index_result *out,
                             hoist_err **err) {
  hoist_image_index_opts none = {0};
  if (!opts)
    opts = &none;
  memset(out, 0, sizeof *out);
  _cleanup_free_ char *tname = hoist_loc_string(target);
  if (n_srcs == 0)
    return hoist_err_set(err, EINVAL, "index %s: no source images", tname);
  if (check_target(target, opts, err) < 0)
    return hoist_err_wrap(err, "index %s", tname);
  member *ms = hoist_malloc0(n_srcs * sizeof *ms);
  int ret = 0;
  /* every source read and judged before anything is written */
  for (size_t i = 0; ret == 0 && i < n_srcs; i++) {
    ret = read_member(t, srcs[i], &ms[i], err);
    for (size_t j = 0; ret == 0 && j < i; j++)
      if (strcmp(ms[i].platform, ms[j].platform) == 0)
        ret = hoist_err_set(err, EINVAL, "%s and %s are both %s: platforms must be distinct",
                            ms[j].name, ms[i].name, ms[i].platform);
  }
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  /* OCI tools look only for OCI types in a layout's index.json; attestation
   * entries carry annotations, which a Docker list has not */
  bool atts = false;
  for (size_t i = 0; ret == 0 && i < n_srcs; i++)
    atts = atts || ms[i].n_atts > 0;
  const char *mt =
      opts->oci || atts || target->kind == HOIST_LOC_LAYOUT || target->kind == HOIST_LOC_OCI_ARCHIVE
          ? HOIST_MT_OCI_INDEX
          : HOIST_MT_DOCKER_LIST;
  size_t n_atts = 0;
  if (ret == 0) {
    _cleanup_index_ hoist_index *ix = hoist_index_new(mt);
    /* the images, then their attestations (BuildKit's order) */
    for (size_t i = 0; i < n_srcs; i++)
      hoist_index_add(ix, &ms[i].desc);
    for (size_t i = 0; i < n_srcs; i++)
      for (size_t j = 0; j < ms[i].n_atts; j++, n_atts++)
        hoist_index_add(ix, &ms[i].atts[j]);
    ret = hoist_index_to_json(ix, &data, &len, err);
  }
  if (ret == 0) {
    hoist_sha256_of(data, len, out->digest);
    ret = write_index(t, target, srcs, ms, n_srcs, data, len, mt, opts, out, err);
  }
  for (size_t i = 0; i < n_srcs; i++)
    member_clear(&ms[i]);
  free(ms);
  if (ret < 0)
    return hoist_err_wrap(err, "index %s", tname);
  out->media_type = mt;
  out->n_manifests = n_srcs + n_atts;
  return 0;
}
