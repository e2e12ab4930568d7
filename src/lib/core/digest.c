#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>

#include "hoist/digest.h"

struct hoist_sha256 {
  EVP_MD_CTX *ctx;
};

hoist_sha256 *hoist_sha256_new(void) {
  hoist_sha256 *h = hoist_malloc0(sizeof *h);
  h->ctx = EVP_MD_CTX_new();
  if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
    abort();
  return h;
}

void hoist_sha256_update(hoist_sha256 *h, const void *data, size_t len) {
  if (len && EVP_DigestUpdate(h->ctx, data, len) != 1)
    abort();
}

void hoist_sha256_final_hex(hoist_sha256 *h, char out[HOIST_DIGEST_HEX_LEN + 1]) {
  static const char hexdig[] = "0123456789abcdef";
  unsigned char md[32];
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(h->ctx, md, &n) != 1 || n != 32)
    abort();
  for (int i = 0; i < 32; i++) {
    out[2 * i] = hexdig[md[i] >> 4];
    out[2 * i + 1] = hexdig[md[i] & 15];
  }
  out[64] = '\0';
  if (EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
    abort();
}

void hoist_sha256_final(hoist_sha256 *h, char out[HOIST_DIGEST_STR_LEN]) {
  memcpy(out, "sha256:", 7);
  hoist_sha256_final_hex(h, out + 7);
}

void hoist_sha256_free(hoist_sha256 *h) {
  if (!h)
    return;
  EVP_MD_CTX_free(h->ctx);
  free(h);
}

void hoist_sha256_of(const void *data, size_t len, char out[HOIST_DIGEST_STR_LEN]) {
  _cleanup_sha256_ hoist_sha256 *h = hoist_sha256_new();
  hoist_sha256_update(h, data, len);
  hoist_sha256_final(h, out);
}

int hoist_sha256_file(int dirfd, const char *path, char out[HOIST_DIGEST_STR_LEN], uint64_t *size,
                      hoist_err **err) {
  _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return hoist_err_errno(err, errno, "open %s", path);
  _cleanup_sha256_ hoist_sha256 *h = hoist_sha256_new();
  _cleanup_free_ char *buf = malloc(1 << 20);
  if (!buf)
    abort();
  uint64_t total = 0;
  for (;;) {
    ssize_t n = read(fd, buf, 1 << 20);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return hoist_err_errno(err, errno, "read %s", path);
    }
    if (n == 0)
      break;
    hoist_sha256_update(h, buf, (size_t)n);
    total += (uint64_t)n;
  }
  hoist_sha256_final(h, out);
  if (size)
    *size = total;
  return 0;
}

int hoist_digest_parse(const char *s, const char **hex, hoist_err **err) {
  if (!s || !*s)
    return hoist_err_set(err, HOIST_E_FORMAT, "empty digest");
  const char *colon = strchr(s, ':');
  if (!colon)
    return hoist_err_set(err, HOIST_E_FORMAT, "invalid digest \"%.80s\": missing algorithm", s);
  size_t alen = (size_t)(colon - s);
  if (alen != 6 || strncmp(s, "sha256", 6) != 0) {
    for (size_t i = 0; i < alen; i++) {
      char c = s[i];
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '.' || c == '_' ||
            c == '-'))
        return hoist_err_set(err, HOIST_E_FORMAT, "invalid digest \"%.80s\": bad algorithm", s);
    }
    if (alen == 0)
      return hoist_err_set(err, HOIST_E_FORMAT, "invalid digest \"%.80s\": empty algorithm", s);
    return hoist_err_set(err, HOIST_E_FORMAT, "unsupported digest algorithm %.*s", (int)alen, s);
  }
  const char *h = colon + 1;
  size_t n = strlen(h);
  if (n != HOIST_DIGEST_HEX_LEN)
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "invalid digest \"%.80s\": sha256 needs 64 hex digits, got %zu", s, n);
  for (size_t i = 0; i < n; i++) {
    char c = h[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return hoist_err_set(err, HOIST_E_FORMAT,
                           "invalid digest \"%.80s\": not lowercase hex at position %zu", s, i);
  }
  if (hex)
    *hex = h;
  return 0;
}

bool hoist_digest_valid(const char *s) { return hoist_digest_parse(s, NULL, NULL) == 0; }
