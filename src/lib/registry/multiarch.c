/* hoist_registry_index_create: single-platform images joined into one
 * multi-arch index (an OCI index or a Docker manifest list). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hoist/append.h"
#include "hoist/registry.h"
#include "hoist/store.h"

/* One source, read and judged. */
typedef struct member {
  hoist_descriptor desc; /* manifest descriptor with its platform */
  char *platform;        /* normalized "os/arch[/variant]" */
  char *name;            /* the source as written, for messages */
  char *tmp_tag;         /* layout target: the tag the copy went to, until the index is stored */
} member;

static void member_clear(member *m) {
  hoist_descriptor_clear(&m->desc);
  free(m->platform);
  free(m->name);
  free(m->tmp_tag);
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

static char *index_platforms(const hoist_index *ix) {
  _cleanup_buf_ hoist_buf b = HOIST_BUF_INIT(0);
  for (size_t i = 0; i < ix->n_manifests; i++) {
    _cleanup_free_ char *s =
        ix->manifests[i].platform ? hoist_platform_string(ix->manifests[i].platform) : NULL;
    hoist_buf_appendf(&b, NULL, "%s%s", b.len ? ", " : "", s ? s : "unknown");
  }
  return hoist_buf_steal(&b);
}

/* Reads src: one image manifest, or an index of exactly one; fills m. */
static int read_member(hoist_registry *r, const hoist_loc *src, member *m, hoist_err **err) {
  m->name = hoist_loc_string(src);
  _cleanup_image_source_ hoist_image_source *s = NULL;
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  if (hoist_append_open_source(r, src, &s, err) < 0 || s->ops->manifest(s, &data, &len, err) < 0)
    return hoist_err_wrap(err, "%s", m->name);
  _cleanup_free_ char *mtbuf = NULL; /* outlives the index below */
  const char *mt = hoist_manifest_detect(data, len);
  if (!mt)
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: not an image manifest or index", m->name);
  if (hoist_media_kind_of(mt) == HOIST_MEDIA_INDEX) {
    _cleanup_index_ hoist_index *ix = NULL;
    if (hoist_index_parse(data, len, &ix, err) < 0)
      return hoist_err_wrap(err, "%s: index", m->name);
    if (ix->n_manifests != 1) {
      _cleanup_free_ char *p = index_platforms(ix);
      return hoist_err_set(err, HOIST_E_FORMAT,
                           "%s is multi-platform (%zu manifests: %s); index create takes "
                           "single-platform images",
                           m->name, ix->n_manifests, p);
    }
    const hoist_descriptor *d = &ix->manifests[0];
    free(steal_pointer(&data));
    if (s->ops->blob(s, d->digest, HOIST_MANIFEST_MAX, &data, &len, err) < 0)
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

/* Copies member m's image (source src) into the target's repository or
 * layout unless it is there already. */
static int bring_member(hoist_registry *r, const hoist_loc *target, const hoist_loc *src, member *m,
                        size_t i, bool *copied, hoist_err **err) {
  *copied = false;
  hoist_loc dst = {.kind = target->kind};
  hoist_ref ref = {0};
  if (target->kind == HOIST_LOC_REGISTRY) {
    if (src->kind == HOIST_LOC_REGISTRY && strcmp(src->ref->domain, target->ref->domain) == 0 &&
        strcmp(src->ref->path, target->ref->path) == 0)
      return 0;
    ref.domain = target->ref->domain;
    ref.path = target->ref->path;
    ref.digest = m->desc.digest;
    dst.ref = &ref;
  } else {
    if (src->kind == HOIST_LOC_LAYOUT && same_dir(src->dir, target->dir))
      return 0;
    m->tmp_tag = hoist_asprintf("hoist-index-create-%ld-%zu", (long)getpid(), i);
    dst.dir = target->dir;
    dst.tag = m->tmp_tag;
  }
  if (!r)
    return hoist_err_set(err, EINVAL, "copy %s: no registry client", m->name);
  hoist_copy_opts co = {.platform = m->desc.platform};
  hoist_copy_result res;
  int ret = hoist_registry_copy(r, src, &dst, &co, &res, err);
  bool same = ret == 0 && strcmp(res.digest, m->desc.digest) == 0;
  hoist_copy_result_clear(&res);
  if (ret < 0)
    return ret;
  if (!same)
    return hoist_err_set(err, HOIST_E_DIGEST, "copy %s: the image changed while it was copied",
                         m->name);
  *copied = true;
  return 0;
}

static int store_index(hoist_registry *r, const hoist_loc *target, const char *data, size_t len,
                       const char *mt, const char *digest, const hoist_index_create_opts *opts,
                       member *ms, size_t n, hoist_err **err) {
  const char *const none[] = {NULL};
  const char *const *tags = opts->tags ? opts->tags : none;
  if (target->kind == HOIST_LOC_REGISTRY) {
    const hoist_ref *t = target->ref;
    if (hoist_registry_put_manifest(r, t->domain, t->path, t->tag, data, len, mt, err) < 0)
      return -1;
    for (size_t i = 0; tags[i]; i++)
      if (hoist_registry_put_manifest(r, t->domain, t->path, tags[i], data, len, mt, err) < 0)
        return hoist_err_wrap(err, "tag %s", tags[i]);
    return 0;
  }
  hoist_store *st = NULL;
  if (hoist_store_open(target->dir, true, &st, err) < 0)
    return -1;
  char got[HOIST_DIGEST_STR_LEN];
  int ret = hoist_store_put_blob(st, data, len, digest, got, err);
  hoist_descriptor d = {.media_type = (char *)mt, .digest = got, .size = (int64_t)len};
  if (ret == 0)
    ret = hoist_store_tag(st, target->tag, &d, err);
  for (size_t i = 0; ret == 0 && tags[i]; i++)
    ret = hoist_store_tag(st, tags[i], &d, err);
  for (size_t i = 0; ret == 0 && i < n; i++)
    if (ms[i].tmp_tag)
      ret = hoist_store_untag(st, ms[i].tmp_tag, err);
  hoist_store_close(st);
  return ret;
}

/* Removes the temporary tags of copies into a layout target (on failure). */
static void drop_tmp_tags(const hoist_loc *target, member *ms, size_t n) {
  if (target->kind != HOIST_LOC_LAYOUT)
    return;
  hoist_store *st = NULL;
  hoist_err *e = NULL;
  if (hoist_store_open(target->dir, false, &st, &e) < 0) {
    hoist_err_free(e);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    if (ms[i].tmp_tag && hoist_store_untag(st, ms[i].tmp_tag, &e) < 0) {
      hoist_err_free(e);
      e = NULL;
    }
  }
  hoist_store_close(st);
}

static int check_target(const hoist_loc *target, const hoist_index_create_opts *opts,
                        hoist_err **err) {
  if (target->kind == HOIST_LOC_REGISTRY ? !target->ref->tag || target->ref->digest : !target->tag)
    return hoist_err_set(err, EINVAL, "the index target needs a tag (REPO:TAG or oci:DIR:TAG)");
  for (size_t i = 0; opts->tags && opts->tags[i]; i++) {
    const char *t = opts->tags[i];
    bool ok = target->kind == HOIST_LOC_LAYOUT ? hoist_store_tag_valid(t) : false;
    if (target->kind == HOIST_LOC_REGISTRY) {
      /* the reference grammar judges the tag */
      _cleanup_free_ char *s =
          hoist_asprintf("%s/%s:%s", target->ref->domain, target->ref->path, t);
      hoist_ref *ref = NULL;
      hoist_err *e = NULL;
      ok = hoist_ref_parse(s, &ref, &e) == 0 && ref->tag && strcmp(ref->tag, t) == 0;
      hoist_ref_free(ref);
      hoist_err_free(e);
    }
    if (!ok)
      return hoist_err_set(err, EINVAL, "invalid tag \"%s\"", t);
  }
  return 0;
}

int hoist_registry_index_create(hoist_registry *r, const hoist_loc *target,
                                const hoist_loc *const *srcs, size_t n_srcs,
                                const hoist_index_create_opts *opts, hoist_index_create_result *out,
                                hoist_err **err) {
  hoist_index_create_opts none = {0};
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
    ret = read_member(r, srcs[i], &ms[i], err);
    for (size_t j = 0; ret == 0 && j < i; j++)
      if (strcmp(ms[i].platform, ms[j].platform) == 0)
        ret = hoist_err_set(err, EINVAL, "%s and %s are both %s: platforms must be distinct",
                            ms[j].name, ms[i].name, ms[i].platform);
  }
  for (size_t i = 0; ret == 0 && i < n_srcs; i++) {
    bool copied = false;
    ret = bring_member(r, target, srcs[i], &ms[i], i, &copied, err);
    out->images_copied += copied;
  }
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  /* OCI tools look only for OCI types in a layout's index.json */
  const char *mt =
      opts->oci || target->kind == HOIST_LOC_LAYOUT ? HOIST_MT_OCI_INDEX : HOIST_MT_DOCKER_LIST;
  if (ret == 0) {
    _cleanup_index_ hoist_index *ix = hoist_index_new(mt);
    for (size_t i = 0; i < n_srcs; i++)
      hoist_index_add(ix, &ms[i].desc);
    ret = hoist_index_to_json(ix, &data, &len, err);
  }
  if (ret == 0) {
    hoist_sha256_of(data, len, out->digest);
    ret = store_index(r, target, data, len, mt, out->digest, opts, ms, n_srcs, err);
  }
  if (ret < 0)
    drop_tmp_tags(target, ms, n_srcs);
  for (size_t i = 0; i < n_srcs; i++)
    member_clear(&ms[i]);
  free(ms);
  if (ret < 0)
    return hoist_err_wrap(err, "index %s", tname);
  out->media_type = mt;
  out->n_manifests = n_srcs;
  return 0;
}
