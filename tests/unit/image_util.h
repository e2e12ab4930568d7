/* Builds a small single-layer image into a layout with the store API (tests
 * only): an uncompressed tar layer made with libarchive, a config and a
 * manifest. */
#ifndef HOIST_TEST_IMAGE_UTIL_H
#define HOIST_TEST_IMAGE_UTIL_H

#include <archive.h>
#include <archive_entry.h>
#include <string.h>
#include <time.h>

#include "hoist/oci.h"
#include "hoist/store.h"

/* A tar holding hello.txt with content and an etc/ directory. Caller frees. */
static inline int test_make_tar(const char *content, char **out, size_t *len) {
  size_t cap = 64 * 1024 + strlen(content) * 2;
  char *buf = malloc(cap);
  size_t used = 0;
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_set_bytes_in_last_block(a, 1);
  if (archive_write_open_memory(a, buf, cap, &used) != ARCHIVE_OK)
    return -1;
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, "etc/");
  archive_entry_set_filetype(e, AE_IFDIR);
  archive_entry_set_perm(e, 0755);
  archive_entry_set_mtime(e, 1700000000, 0);
  archive_write_header(a, e);
  archive_entry_clear(e);
  archive_entry_set_pathname(e, "hello.txt");
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, (la_int64_t)strlen(content));
  archive_entry_set_mtime(e, 1700000000, 0);
  archive_write_header(a, e);
  archive_write_data(a, content, strlen(content));
  archive_entry_free(e);
  int r = archive_write_close(a) == ARCHIVE_OK ? 0 : -1;
  archive_write_free(a);
  *out = buf;
  *len = used;
  return r;
}

/* Writes layer, config and manifest blobs into s and tags the manifest (when
 * tag is not NULL). desc receives the manifest's descriptor. */
static inline int test_make_image(hoist_store *s, const char *tag, const char *content,
                                  hoist_descriptor *desc, hoist_err **err) {
  _cleanup_free_ char *tar = NULL;
  size_t tar_len = 0;
  if (test_make_tar(content, &tar, &tar_len) < 0)
    return hoist_err_set(err, EIO, "cannot make a tar");
  char layer_digest[HOIST_DIGEST_STR_LEN];
  int r = hoist_store_put_blob(s, tar, tar_len, NULL, layer_digest, err);
  if (r < 0)
    return r;
  _cleanup_platform_ hoist_platform *p = NULL;
  if ((r = hoist_platform_parse("linux/amd64", &p, err)) < 0)
    return r;
  _cleanup_config_ hoist_config *c = hoist_config_new(p);
  if ((r = hoist_config_add_layer(c, layer_digest, "test", NULL, 1700000000, err)) < 0 ||
      (r = hoist_config_set_env(c, "PATH", "/bin", err)) < 0 ||
      (r = hoist_config_set_label(c, "org.example.test", "yes", err)) < 0)
    return r;
  json_object_set_new(hoist_config_section(c), "Cmd", json_pack("[s]", "/hello"));
  _cleanup_free_ char *cj = NULL;
  size_t cj_len = 0;
  if ((r = hoist_config_to_json(c, &cj, &cj_len, err)) < 0)
    return r;
  char config_digest[HOIST_DIGEST_STR_LEN];
  if ((r = hoist_store_put_blob(s, cj, cj_len, NULL, config_digest, err)) < 0)
    return r;
  _cleanup_manifest_ hoist_manifest *m = hoist_manifest_new(HOIST_MT_OCI_MANIFEST);
  hoist_descriptor_of_bytes(&m->config, HOIST_MT_OCI_CONFIG, cj, cj_len);
  hoist_descriptor layer;
  hoist_descriptor_of_bytes(&layer, HOIST_MT_OCI_LAYER, tar, tar_len);
  hoist_manifest_add_layer(m, &layer);
  hoist_descriptor_clear(&layer);
  _cleanup_free_ char *mj = NULL;
  size_t mj_len = 0;
  if ((r = hoist_manifest_to_json(m, &mj, &mj_len, err)) < 0)
    return r;
  if ((r = hoist_store_put_blob(s, mj, mj_len, NULL, NULL, err)) < 0)
    return r;
  hoist_descriptor_of_bytes(desc, HOIST_MT_OCI_MANIFEST, mj, mj_len);
  if (tag && (r = hoist_store_tag(s, tag, desc, err)) < 0)
    return r;
  return 0;
}

#endif
