/* base64 on OpenSSL's codec, with the strictness OpenSSL leaves to callers:
 * EVP_DecodeBlock skips leading and trailing whitespace and reads "=" as zero
 * bits anywhere, so the text is checked here first. */
#include <limits.h>
#include <openssl/evp.h>
#include <string.h>

#include "hoist/core.h"

#define ENCODE_CHUNK ((size_t)3 << 20) /* a multiple of 3: chunks encode to whole quads */

char *hoist_base64_encode(const void *data, size_t len) {
  size_t quads = len / 3 + (len % 3 != 0);
  char *out = hoist_calloc(quads + 1, 4); /* one more quad holds the NUL */
  const unsigned char *in = data;
  size_t at = 0;
  for (size_t done = 0; done < len;) {
    size_t n = len - done < ENCODE_CHUNK ? len - done : ENCODE_CHUNK;
    at += (size_t)EVP_EncodeBlock((unsigned char *)out + at, in + done, (int)n);
    done += n;
  }
  out[at] = '\0';
  return out;
}

static bool b64_char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

int hoist_base64_decode(const char *s, size_t len, size_t max, unsigned flags, unsigned char **out,
                        size_t *out_len, hoist_err **err) {
  size_t data = 0;
  while (data < len && b64_char((unsigned char)s[data]))
    data++;
  size_t pad = len - data;
  for (size_t i = data; i < len; i++)
    if (s[i] != '=')
      return hoist_err_set(err, HOIST_E_FORMAT, "invalid base64: character %zu", i + 1);
  /* padding fills the last quad: 2 or 3 data characters take 2 or 1 "=" */
  size_t want = data % 4 ? 4 - data % 4 : 0;
  if (want == 3 || (pad != want && !(pad == 0 && (flags & HOIST_BASE64_PAD_OPTIONAL))))
    return hoist_err_set(err, HOIST_E_FORMAT, "invalid base64: %s",
                         want == 3 ? "length" : "padding");
  size_t n = data / 4 * 3 + (want ? 3 - want : 0);
  if (n > max)
    return hoist_err_set(err, HOIST_E_LIMIT, "base64 decodes to more than %zu bytes", max);
  if (data + want > INT_MAX)
    return hoist_err_set(err, HOIST_E_LIMIT, "base64 text longer than %d characters", INT_MAX);
  unsigned char *buf = hoist_malloc0(n + 3);
  const unsigned char *text = (const unsigned char *)s;
  unsigned char *padded = NULL;
  if (pad != want) {
    /* padding left out: put it back for OpenSSL */
    padded = hoist_malloc0(data + want);
    memcpy(padded, s, data);
    memset(padded + data, '=', want);
    text = padded;
  }
  int got = data ? EVP_DecodeBlock(buf, text, (int)(data + want)) : 0;
  free(padded);
  if (got < 0) {
    free(buf);
    return hoist_err_set(err, HOIST_E_FORMAT, "invalid base64");
  }
  buf[n] = '\0';
  *out = buf;
  *out_len = n;
  return 0;
}
