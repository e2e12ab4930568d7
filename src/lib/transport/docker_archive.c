/* The docker-archive driver of the transport (see transport.h): the
 * `docker save` format, read and written as skopeo does. */
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "archive-private.h"
#include "hoist/map.h"

#define STAGE_TAG "image"

/* ----------------------------------------------------------- manifest.json */

static void image_clear(hoist_docker_archive_image *im) {
  free(im->config);
  hoist_strfreev(im->repo_tags);
  hoist_strfreev(im->layers);
  memset(im, 0, sizeof *im);
}

void hoist_docker_archive_manifest_free(hoist_docker_archive_manifest *m) {
  if (!m)
    return;
  for (size_t i = 0; i < m->n_images; i++)
    image_clear(&m->images[i]);
  free(m->images);
  free(m);
}

static void manifest_freep(hoist_docker_archive_manifest **m) {
  hoist_docker_archive_manifest_free(*m);
}
#define _cleanup_da_manifest_ __attribute__((cleanup(manifest_freep)))

/* A JSON string without NUL bytes, or NULL. */
static const char *plain_string(const json_t *j) {
  if (!json_is_string(j))
    return NULL;
  const char *s = json_string_value(j);
  return strlen(s) == json_string_length(j) ? s : NULL;
}

/* The array of strings at key of o: member names when names, else free
 * text (RepoTags); absent or null is an empty vector unless required. */
HOIST_WUR static int string_array(const json_t *o, const char *key, bool required, bool names,
                                  size_t max, char ***out, size_t *n, hoist_err **err) {
  const json_t *a = json_object_get(o, key);
  _cleanup_strv_ hoist_strv v = HOIST_STRV_INIT;
  if (!a || json_is_null(a)) {
    if (required)
      return hoist_err_set(err, HOIST_E_FORMAT, "%s is missing", key);
  } else if (!json_is_array(a)) {
    return hoist_err_set(err, HOIST_E_FORMAT, "%s must be an array", key);
  } else if (json_array_size(a) > max) {
    return hoist_err_set(err, HOIST_E_LIMIT, "%s: more than %zu entries (%s)", key, max,
                         names ? "HOIST_ARCHIVE_LAYERS_MAX" : "HOIST_ARCHIVE_LAYERS_MAX");
  } else {
    for (size_t i = 0; i < json_array_size(a); i++) {
      const char *s = plain_string(json_array_get(a, i));
      if (!s)
        return hoist_err_set(err, HOIST_E_FORMAT, "%s[%zu] must be a string without NUL", key, i);
      if (!names) {
        if (strlen(s) > HOIST_ARCHIVE_NAME_MAX)
          return hoist_err_set(err, HOIST_E_LIMIT, "%s[%zu]: longer than %u bytes", key, i,
                               HOIST_ARCHIVE_NAME_MAX);
        hoist_strv_add(&v, s);
        continue;
      }
      char *clean = arc_name_clean(s, key, err);
      if (!clean)
        return hoist_err_wrap(err, "%s[%zu]", key, i);
      hoist_strv_push(&v, clean);
    }
  }
  *n = v.n;
  *out = hoist_strv_steal(&v);
  return 0;
}

int hoist_docker_archive_manifest_parse(const char *data, size_t len,
                                        hoist_docker_archive_manifest **out, hoist_err **err) {
  *out = NULL;
  if (len > HOIST_ARCHIVE_MANIFEST_MAX)
    return hoist_err_set(err, HOIST_E_LIMIT,
                         "manifest.json: larger than %u bytes (HOIST_ARCHIVE_MANIFEST_MAX)",
                         HOIST_ARCHIVE_MANIFEST_MAX);
  json_error_t je;
  json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
  if (!root)
    return hoist_err_set(err, HOIST_E_FORMAT, "manifest.json: line %d column %d: %s", je.line,
                         je.column, je.text);
  _cleanup_da_manifest_ hoist_docker_archive_manifest *m = hoist_malloc0(sizeof *m);
  int r = 0;
  if (!json_is_array(root) || json_array_size(root) == 0) {
    r = hoist_err_set(err, HOIST_E_FORMAT, "manifest.json: must be a non-empty array of images");
  } else if (json_array_size(root) > HOIST_ARCHIVE_IMAGES_MAX) {
    r = hoist_err_set(err, HOIST_E_LIMIT,
                      "manifest.json: more than %u images (HOIST_ARCHIVE_IMAGES_MAX)",
                      HOIST_ARCHIVE_IMAGES_MAX);
  } else {
    m->images = hoist_calloc(json_array_size(root), sizeof *m->images);
    for (size_t i = 0; i < json_array_size(root) && r == 0; i++) {
      const json_t *o = json_array_get(root, i);
      hoist_docker_archive_image *im = &m->images[m->n_images++];
      const char *config = plain_string(json_object_get(o, "Config"));
      if (!json_is_object(o))
        r = hoist_err_set(err, HOIST_E_FORMAT, "must be an object");
      else if (!config)
        r = hoist_err_set(err, HOIST_E_FORMAT, "Config must be a string without NUL");
      else if (!(im->config = arc_name_clean(config, "Config", err)))
        r = -1;
      else if (string_array(o, "Layers", true, true, HOIST_ARCHIVE_LAYERS_MAX, &im->layers,
                            &im->n_layers, err) < 0 ||
               string_array(o, "RepoTags", false, false, HOIST_ARCHIVE_LAYERS_MAX, &im->repo_tags,
                            &im->n_repo_tags, err) < 0)
        r = -1;
      if (r < 0)
        hoist_err_wrap(err, "manifest.json: image %zu", i);
    }
  }
  json_decref(root);
  if (r < 0)
    return r;
  *out = steal_pointer(&m);
  return 0;
}

static json_t *strings_json(char **v) {
  json_t *a = json_array();
  for (size_t i = 0; v && v[i]; i++)
    if (json_array_append_new(a, json_string(v[i])) < 0)
      abort();
  return a;
}

char *hoist_docker_archive_manifest_json(const hoist_docker_archive_manifest *m) {
  json_t *root = json_array();
  for (size_t i = 0; i < m->n_images; i++) {
    const hoist_docker_archive_image *im = &m->images[i];
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "Config", json_string(im->config)) < 0 ||
        json_object_set_new(o, "RepoTags", strings_json(im->repo_tags)) < 0 ||
        json_object_set_new(o, "Layers", strings_json(im->layers)) < 0 ||
        json_array_append_new(root, o) < 0)
      abort();
  }
  char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(root);
  return s; /* NULL only for a string that is not UTF-8 */
}

/* ------------------------------------------------------------- reading */

/* What pass 1 learns of each member. */
typedef struct member {
  char *name;
  arc_type type;
  int64_t size;
  char *target;
} member;

typedef struct members {
  member *v;
  size_t n, cap;
  hoist_map by_name; /* name -> index in v */
} members;

static void members_clear(members *ms) {
  for (size_t i = 0; i < ms->n; i++) {
    free(ms->v[i].name);
    free(ms->v[i].target);
  }
  free(ms->v);
  hoist_map_clear(&ms->by_name);
}

/* The file a name of manifest.json stands for, through its symlinks. */
HOIST_WUR static int resolve(const members *ms, const char *name, const member **out,
                             hoist_err **err) {
  const char *at = name;
  for (unsigned hops = 0; hops <= HOIST_ARCHIVE_LINKS_MAX; hops++) {
    uint64_t i = 0;
    if (!hoist_map_get(&ms->by_name, at, strlen(at), &i))
      return hoist_err_set(err, ENOENT, "%.256s is not in the archive", name);
    const member *m = &ms->v[i];
    if (m->type == ARC_FILE) {
      *out = m;
      return 0;
    }
    if (m->type != ARC_SYMLINK)
      return hoist_err_set(err, HOIST_E_FORMAT, "%.256s is a directory, not a file", name);
    at = m->target;
  }
  return hoist_err_set(err, HOIST_E_FORMAT,
                       "%.256s: more than %u symlinks (HOIST_ARCHIVE_LINKS_MAX)", name,
                       HOIST_ARCHIVE_LINKS_MAX);
}

/* Pass 1: every member's name and kind, and manifest.json's bytes. */
HOIST_WUR static int scan(const char *path, members *ms, char **manifest, size_t *manifest_len,
                          hoist_err **err) {
  arc_reader r;
  if (arc_reader_open(path, &r, err) < 0)
    return -1;
  arc_member m = {0};
  int ret;
  while ((ret = arc_reader_next(&r, &m, err)) == 1) {
    if (!hoist_map_add(&ms->by_name, m.name, strlen(m.name), ms->n, NULL)) {
      ret = hoist_err_set(err, HOIST_E_FORMAT, "%s: member %.256s appears twice", path, m.name);
      break;
    }
    if (ms->n == ms->cap) {
      ms->cap = ms->cap ? 2 * ms->cap : 64;
      ms->v = hoist_reallocarray(ms->v, ms->cap, sizeof *ms->v);
      if (!ms->v)
        abort();
    }
    ms->v[ms->n++] = (member){steal_pointer(&m.name), m.type, m.size, steal_pointer(&m.target)};
    if (strcmp(ms->v[ms->n - 1].name, "manifest.json") == 0 && m.type == ARC_FILE &&
        (ret = arc_reader_read_all(&r, HOIST_ARCHIVE_MANIFEST_MAX,
                                   "manifest.json (HOIST_ARCHIVE_MANIFEST_MAX)", manifest,
                                   manifest_len, err)) < 0)
      break;
  }
  arc_member_clear(&m);
  arc_reader_close(&r);
  if (ret < 0)
    return -1;
  if (!*manifest)
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: no manifest.json: not a docker archive", path);
  return 0;
}

/* "[0] a:1, [1] b:2" for the message of an ambiguous pick. */
static char *list_images(const hoist_docker_archive_manifest *dm) {
  _cleanup_buf_ hoist_buf b = HOIST_BUF_INIT(4096);
  for (size_t i = 0; i < dm->n_images; i++) {
    const hoist_docker_archive_image *im = &dm->images[i];
    if (hoist_buf_appendf(&b, NULL, "%s@%zu (%s)", i ? ", " : "", i,
                          im->n_repo_tags ? im->repo_tags[0] : "untagged") < 0)
      break;
  }
  return hoist_buf_steal(&b);
}

/* True when tag (as RepoTags spell it: "busybox:latest") names ref. */
static bool tag_names(const char *tag, const hoist_ref *ref) {
  _cleanup_ref_ hoist_ref *r = NULL;
  if (hoist_ref_parse(tag, &r, NULL) < 0)
    return false;
  _cleanup_free_ char *a = hoist_ref_string(r);
  _cleanup_free_ char *b = hoist_ref_string(ref);
  return strcmp(a, b) == 0;
}

/* The image the location picks: by REF, by @N, or the only one. */
HOIST_WUR static int pick(const hoist_docker_archive_manifest *dm, const hoist_loc *loc,
                          const hoist_docker_archive_image **out, hoist_err **err) {
  if (loc->index >= 0) {
    if ((size_t)loc->index >= dm->n_images)
      return hoist_err_set(err, ENOENT, "no image @%d: the archive holds %zu", loc->index,
                           dm->n_images);
    *out = &dm->images[loc->index];
    return 0;
  }
  if (loc->ref) {
    for (size_t i = 0; i < dm->n_images; i++)
      for (size_t j = 0; j < dm->images[i].n_repo_tags; j++)
        if (tag_names(dm->images[i].repo_tags[j], loc->ref)) {
          *out = &dm->images[i];
          return 0;
        }
    _cleanup_free_ char *want = hoist_ref_string(loc->ref);
    _cleanup_free_ char *have = list_images(dm);
    return hoist_err_set(err, ENOENT, "no image tagged %s in the archive (it holds: %s)", want,
                         have);
  }
  if (dm->n_images != 1) {
    _cleanup_free_ char *have = list_images(dm);
    return hoist_err_set(err, EINVAL,
                         "the archive holds %zu images: %s; name one (docker-archive:PATH:REF "
                         "or :@N)",
                         dm->n_images, have);
  }
  *out = &dm->images[0];
  return 0;
}

/* One file pass 2 reads, and what came of it. */
typedef struct wanted {
  const char *name; /* the file's member name */
  bool is_config;
  bool done;
  char digest[HOIST_DIGEST_STR_LEN];
  uint64_t size;
} wanted;

/* Pass 2: the config into memory, each layer (decompressed when it is not
 * a plain tar) into the stage under its digest. */
HOIST_WUR static int extract(const char *path, arc_stage *st, wanted *w, size_t nw,
                             const hoist_map *slot_of, char **config, size_t *config_len,
                             hoist_err **err) {
  arc_reader r;
  if (arc_reader_open(path, &r, err) < 0)
    return -1;
  arc_member m = {0};
  int ret;
  while ((ret = arc_reader_next(&r, &m, err)) == 1) {
    uint64_t k = 0;
    if (m.type != ARC_FILE || !hoist_map_get(slot_of, m.name, strlen(m.name), &k))
      continue;
    wanted *x = &w[k];
    if (x->is_config) {
      ret = arc_reader_read_all(&r, HOIST_MANIFEST_MAX, "the image config (HOIST_MANIFEST_MAX)",
                                config, config_len, err);
    } else {
      hoist_writer *bw = NULL;
      ret = hoist_store_blob_writer(st->store, NULL, -1, &bw, err);
      if (ret == 0) {
        _cleanup_writer_ hoist_writer *dw = arc_decompress_writer(bw, HOIST_ARCHIVE_DATA_MAX);
        ret = arc_reader_copy(&r, dw, err);
        if (ret == 0)
          ret = hoist_writer_commit(dw, x->digest, &x->size, err);
        if (ret < 0)
          hoist_err_wrap(err, "%s: layer %.256s", path, m.name);
      }
    }
    if (ret < 0)
      break;
    x->done = true;
  }
  arc_member_clear(&m);
  arc_reader_close(&r);
  if (ret < 0)
    return -1;
  for (size_t i = 0; i < nw; i++)
    if (!w[i].done)
      return hoist_err_set(err, HOIST_E_FORMAT, "%s: %.256s was not read on the second pass", path,
                           w[i].name);
  return 0;
}

/* The hex a member name gives its content ("<hex>.json", "<hex>.tar",
 * "blobs/sha256/<hex>"), or NULL when it gives none. */
static const char *name_digest_hex(const char *name, char hex[HOIST_DIGEST_HEX_LEN + 1]) {
  const char *base = strrchr(name, '/');
  base = base ? base + 1 : name;
  size_t n = strcspn(base, ".");
  if (n != HOIST_DIGEST_HEX_LEN || (base[n] && strcmp(base + n, ".json") != 0))
    return NULL;
  for (size_t i = 0; i < n; i++)
    if (!strchr("0123456789abcdef", base[i]))
      return NULL;
  memcpy(hex, base, n);
  hex[n] = '\0';
  return hex;
}

/* The manifest skopeo makes of an archive's image, byte for byte. */
static char *schema2_of(const char *config_digest, size_t config_len, const wanted *const *layers,
                        size_t n) {
  _cleanup_buf_ hoist_buf b = HOIST_BUF_INIT(0);
  bool ok = hoist_buf_appendf(&b, NULL,
                              "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":"
                              "\"%s\",\"size\":%zu,\"digest\":\"%s\"},\"layers\":[",
                              HOIST_MT_DOCKER_MANIFEST, HOIST_MT_DOCKER_CONFIG, config_len,
                              config_digest) == 0;
  for (size_t i = 0; i < n && ok; i++)
    ok = hoist_buf_appendf(&b, NULL, "%s{\"mediaType\":\"%s\",\"size\":%llu,\"digest\":\"%s\"}",
                           i ? "," : "", HOIST_MT_DOCKER_LAYER_GZIP,
                           (unsigned long long)layers[i]->size, layers[i]->digest) == 0;
  if (!ok || hoist_buf_appendf(&b, NULL, "]}") < 0)
    abort(); /* HOIST_BUF_DEFAULT_MAX: layers are at most HOIST_ARCHIVE_LAYERS_MAX */
  return hoist_buf_steal(&b);
}

/* Reads the picked image of the archive at path into st and tags it. */
HOIST_WUR static int stage_image(const char *path, const hoist_loc *loc, arc_stage *st,
                                 hoist_err **err) {
  members ms = {0};
  _cleanup_free_ char *mj = NULL;
  size_t mj_len = 0;
  _cleanup_da_manifest_ hoist_docker_archive_manifest *dm = NULL;
  const hoist_docker_archive_image *im = NULL;
  hoist_map slot_of = HOIST_MAP_INIT;
  _cleanup_free_ wanted *w = NULL;
  _cleanup_free_ const wanted **layer = NULL;
  _cleanup_free_ char *config = NULL;
  _cleanup_free_ char *manifest = NULL;
  _cleanup_config_ hoist_config *cfg = NULL;
  size_t config_len = 0, nw = 0;
  int ret = -1;
  if (scan(path, &ms, &mj, &mj_len, err) < 0)
    goto out;
  if (hoist_docker_archive_manifest_parse(mj, mj_len, &dm, err) < 0 ||
      pick(dm, loc, &im, err) < 0) {
    hoist_err_wrap(err, "%s", path);
    goto out;
  }
  /* the files to read: the config, then each distinct layer file */
  w = hoist_calloc(im->n_layers + 1, sizeof *w);
  layer = hoist_calloc(im->n_layers + 1, sizeof *layer);
  for (size_t i = 0; i <= im->n_layers; i++) {
    const char *name = i == 0 ? im->config : im->layers[i - 1];
    const member *f = NULL;
    if (resolve(&ms, name, &f, err) < 0) {
      hoist_err_wrap(err, "%s: %s", path, i == 0 ? "the config" : "a layer");
      goto out;
    }
    uint64_t k = nw;
    if (hoist_map_add(&slot_of, f->name, strlen(f->name), k, &k))
      w[nw++] = (wanted){.name = f->name, .is_config = i == 0};
    if (i > 0)
      layer[i - 1] = &w[k];
  }
  if (extract(path, st, w, nw, &slot_of, &config, &config_len, err) < 0)
    goto out;
  /* verify: the config against its name, the layers against its diff_ids */
  char config_digest[HOIST_DIGEST_STR_LEN], hex[HOIST_DIGEST_HEX_LEN + 1];
  hoist_sha256_of(config, config_len, config_digest);
  if (name_digest_hex(w[0].name, hex) && strcmp(config_digest + 7, hex) != 0) {
    hoist_err_set(err, HOIST_E_DIGEST, "%s: config %.256s: its content is %s", path, w[0].name,
                  config_digest);
    goto out;
  }
  if (hoist_config_parse(config, config_len, &cfg, err) < 0) {
    hoist_err_wrap(err, "%s: %s", path, w[0].name);
    goto out;
  }
  if (hoist_config_n_diff_ids(cfg) != im->n_layers) {
    hoist_err_set(err, HOIST_E_FORMAT, "%s: manifest.json lists %zu layers, the config %zu", path,
                  im->n_layers, hoist_config_n_diff_ids(cfg));
    goto out;
  }
  for (size_t i = 0; i < im->n_layers; i++) {
    if (strcmp(layer[i]->digest, hoist_config_diff_id(cfg, i)) != 0) {
      hoist_err_set(err, HOIST_E_DIGEST,
                    "%s: layer %zu (%.256s): its content is %s, the config's diff_ids[%zu] %s",
                    path, i + 1, layer[i]->name, layer[i]->digest, i, hoist_config_diff_id(cfg, i));
      goto out;
    }
  }
  manifest = schema2_of(config_digest, config_len, layer, im->n_layers);
  char md[HOIST_DIGEST_STR_LEN];
  if (hoist_store_put_blob(st->store, config, config_len, config_digest, md, err) < 0 ||
      hoist_store_put_blob(st->store, manifest, strlen(manifest), NULL, md, err) < 0)
    goto out;
  hoist_descriptor d = {
      .media_type = HOIST_MT_DOCKER_MANIFEST, .digest = md, .size = (int64_t)strlen(manifest)};
  ret = hoist_store_tag(st->store, STAGE_TAG, &d, err);
out:
  hoist_map_clear(&slot_of);
  members_clear(&ms);
  return ret;
}

int arc_docker_source(const hoist_transport_opts *o, const hoist_loc *loc,
                      hoist_transport_source **out, hoist_err **err) {
  _cleanup_free_ char *name = hoist_loc_string(loc);
  arc_stage st;
  if (arc_stage_open(o->tmp_dir, &st, err) < 0)
    return hoist_err_wrap(err, "%s", name);
  if (stage_image(loc->path, loc, &st, err) < 0) {
    arc_stage_close(&st);
    return -1;
  }
  return arc_staged_source(&st, STAGE_TAG, name, out, err);
}

/* ------------------------------------------------------------- writing */

/* An image put into the target. */
typedef struct put_image {
  char digest[HOIST_DIGEST_STR_LEN]; /* of its manifest */
  hoist_manifest *m;
  hoist_strv tags; /* RepoTags */
} put_image;

typedef struct docker_target {
  hoist_transport_target base;
  arc_stage st;
  char *path;
  hoist_ref *ref; /* the name RepoTags are made of, or NULL */
  put_image *images;
  size_t n_images;
} docker_target;

HOIST_WUR static int dt_has_blob(hoist_transport_target *t, const hoist_descriptor *d, bool *has,
                                 hoist_err **err) {
  (void)err;
  *has = hoist_store_has_blob(((docker_target *)t)->st.store, d->digest);
  return 0;
}

HOIST_WUR static int dt_blob_writer(hoist_transport_target *t, const char *digest, int64_t size,
                                    hoist_writer **out, hoist_err **err) {
  return hoist_store_blob_writer(((docker_target *)t)->st.store, digest, size, out, err);
}

/* An image is recorded (a tag more for one put already); its blobs are
 * checked at commit. A document put by digest (an index's child) is not an
 * image of the archive by itself; an index cannot be one. */
HOIST_WUR static int dt_put_manifest(hoist_transport_target *t, const char *reference,
                                     const char *data, size_t len, const char *media_type,
                                     hoist_err **err) {
  docker_target *dt = (docker_target *)t;
  if (hoist_media_kind_of(media_type) == HOIST_MEDIA_INDEX)
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "docker-archive:%s: an archive holds images, not an index (%s): copy one "
                         "platform's image",
                         dt->path, media_type);
  if (reference && hoist_digest_valid(reference))
    return 0;
  char digest[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of(data, len, digest);
  put_image *pi = NULL;
  for (size_t i = 0; i < dt->n_images && !pi; i++)
    if (strcmp(dt->images[i].digest, digest) == 0)
      pi = &dt->images[i];
  if (!pi) {
    _cleanup_manifest_ hoist_manifest *m = NULL;
    if (hoist_manifest_parse_image(data, len, &m, err) < 0)
      return hoist_err_wrap(err, "docker-archive:%s", dt->path);
    dt->images = hoist_reallocarray(dt->images, dt->n_images + 1, sizeof *dt->images);
    if (!dt->images)
      abort();
    pi = &dt->images[dt->n_images++];
    *pi = (put_image){.m = steal_pointer(&m), .tags = HOIST_STRV_INIT};
    snprintf(pi->digest, sizeof pi->digest, "%s", digest);
  }
  if (dt->ref) {
    const char *tag = reference ? reference : dt->ref->tag;
    hoist_strv_push(&pi->tags, hoist_asprintf("%s/%s:%s", dt->ref->domain, dt->ref->path, tag));
  }
  return 0;
}

/* Makes sure the stage holds layer i of m uncompressed under its diffID. */
HOIST_WUR static int stage_diff(docker_target *dt, const hoist_descriptor *l, const char *diff_id,
                                hoist_err **err) {
  if (hoist_store_has_blob(dt->st.store, diff_id))
    return 0;
  if (!hoist_store_has_blob(dt->st.store, l->digest))
    return hoist_err_set(err, ENOENT, "layer %s was not copied (a foreign layer?)", l->digest);
  hoist_writer *bw = NULL;
  if (hoist_store_blob_writer(dt->st.store, diff_id, -1, &bw, err) < 0)
    return -1;
  _cleanup_writer_ hoist_writer *dw = arc_decompress_writer(bw, HOIST_ARCHIVE_DATA_MAX);
  char got[HOIST_DIGEST_STR_LEN];
  if (arc_stage_copy_blob(&dt->st, l->digest, dw, err) < 0 ||
      hoist_writer_commit(dw, got, NULL, err) < 0)
    return hoist_err_wrap(err, "layer %s decompressed, against the config's diffID %s", l->digest,
                          diff_id);
  return 0;
}

HOIST_WUR static int add_blob(docker_target *dt, arc_writer *aw, const char *digest,
                              const char *suffix, hoist_err **err) {
  _cleanup_close_ int fd = -1;
  uint64_t size = 0;
  _cleanup_free_ char *name = hoist_asprintf("%s%s", digest + 7, suffix);
  if (hoist_store_open_blob(dt->st.store, digest, &fd, &size, err) < 0)
    return -1;
  return arc_writer_add_fd(aw, name, fd, size, err);
}

/* Layers uncompressed as <diffID>.tar, configs as <digest>.json, then
 * manifest.json: what skopeo writes, less the legacy files. */
HOIST_WUR static int write_archive(docker_target *dt, arc_writer *aw, hoist_err **err) {
  hoist_docker_archive_manifest dm = {.images = hoist_calloc(dt->n_images, sizeof *dm.images),
                                      .n_images = dt->n_images};
  hoist_map written = HOIST_MAP_INIT;
  int ret = 0;
  for (size_t i = 0; i < dt->n_images && ret == 0; i++) {
    const hoist_manifest *m = dt->images[i].m;
    hoist_docker_archive_image *im = &dm.images[i];
    _cleanup_free_ char *cdata = NULL;
    _cleanup_config_ hoist_config *cfg = NULL;
    size_t clen = 0;
    ret = hoist_store_read_blob(dt->st.store, m->config.digest, HOIST_MANIFEST_MAX, &cdata, &clen,
                                err);
    if (ret == 0 && (ret = hoist_config_parse(cdata, clen, &cfg, err)) == 0 &&
        hoist_config_n_diff_ids(cfg) != m->n_layers)
      ret = hoist_err_set(err, HOIST_E_FORMAT, "image %s: %zu layers, %zu diff_ids in its config",
                          dt->images[i].digest, m->n_layers, hoist_config_n_diff_ids(cfg));
    im->layers = hoist_calloc(m->n_layers + 1, sizeof *im->layers);
    for (size_t j = 0; j < m->n_layers && ret == 0; j++) {
      const char *diff_id = hoist_config_diff_id(cfg, j);
      im->layers[im->n_layers++] = hoist_asprintf("%s.tar", diff_id + 7);
      if ((ret = stage_diff(dt, &m->layers[j], diff_id, err)) == 0 &&
          hoist_map_add(&written, diff_id, strlen(diff_id), 0, NULL))
        ret = add_blob(dt, aw, diff_id, ".tar", err);
    }
    if (ret == 0 && hoist_map_add(&written, m->config.digest, strlen(m->config.digest), 0, NULL))
      ret = add_blob(dt, aw, m->config.digest, ".json", err);
    im->config = hoist_asprintf("%s.json", m->config.digest + 7);
    im->n_repo_tags = dt->images[i].tags.n;
    im->repo_tags = hoist_calloc(im->n_repo_tags + 1, sizeof *im->repo_tags);
    for (size_t j = 0; j < im->n_repo_tags; j++)
      im->repo_tags[j] = hoist_strdup(dt->images[i].tags.v[j]);
    if (ret < 0)
      hoist_err_wrap(err, "image %s", dt->images[i].digest);
  }
  if (ret == 0) {
    _cleanup_free_ char *json = hoist_docker_archive_manifest_json(&dm);
    ret = json ? arc_writer_add_bytes(aw, "manifest.json", json, strlen(json), err)
               : hoist_err_set(err, HOIST_E_FORMAT, "manifest.json: a tag is not UTF-8");
  }
  hoist_map_clear(&written);
  for (size_t i = 0; i < dm.n_images; i++)
    image_clear(&dm.images[i]);
  free(dm.images);
  return ret;
}

HOIST_WUR static int dt_commit(hoist_transport_target *t, hoist_err **err) {
  docker_target *dt = (docker_target *)t;
  if (dt->n_images == 0)
    return hoist_err_set(err, EINVAL, "docker-archive:%s: no image to write", dt->path);
  arc_writer aw;
  int ret = arc_writer_open(dt->path, &aw, err);
  if (ret == 0 && (ret = write_archive(dt, &aw, err)) == 0)
    ret = arc_writer_commit(&aw, err);
  arc_writer_close(&aw);
  if (ret < 0)
    return hoist_err_wrap(err, "docker-archive:%s", dt->path);
  return 0;
}

static void dt_free(hoist_transport_target *t) {
  docker_target *dt = (docker_target *)t;
  for (size_t i = 0; i < dt->n_images; i++) {
    hoist_manifest_free(dt->images[i].m);
    hoist_strv_clear(&dt->images[i].tags);
  }
  free(dt->images);
  arc_stage_close(&dt->st);
  hoist_ref_free(dt->ref);
  free(dt->path);
  free(dt);
}

static const hoist_transport_target_ops docker_target_ops = {
    .has_blob = dt_has_blob,
    .blob_writer = dt_blob_writer,
    .put_manifest = dt_put_manifest,
    .commit = dt_commit,
    .free = dt_free,
};

int arc_docker_target(const hoist_transport_opts *o, const hoist_loc *loc,
                      hoist_transport_target **out, hoist_err **err) {
  if (loc->index >= 0)
    return hoist_err_set(err, EINVAL,
                         "docker-archive:%s: @N picks an image to read; name one to write with "
                         "docker-archive:PATH:NAME:TAG",
                         loc->path);
  docker_target *dt = hoist_malloc0(sizeof *dt);
  if (arc_stage_open(o->tmp_dir, &dt->st, err) < 0) {
    free(dt);
    return hoist_err_wrap(err, "docker-archive:%s", loc->path);
  }
  dt->base.ops = &docker_target_ops;
  dt->path = hoist_strdup(loc->path);
  dt->ref = hoist_ref_dup(loc->ref);
  *out = &dt->base;
  return 0;
}
