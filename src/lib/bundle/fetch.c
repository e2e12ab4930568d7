/* Runtime bundle download cache. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "bundle-internal.h"
#include "hoist/digest.h"
#include "hoist/fs.h"

/* The last path component of url, without query or fragment, when it is a
 * safe file name; else "bundle.tar.gz". Caller frees. */
static char *url_basename(const char *url) {
  const char *start = strstr(url, "://");
  start = start ? start + 3 : url;
  size_t end = strcspn(start, "?#");
  const char *last = start;
  for (size_t i = 0; i < end; i++)
    if (start[i] == '/')
      last = start + i + 1;
  size_t len = (size_t)(start + end - last);
  char *name = strndup(last, len);
  if (!name)
    abort();
  bool ok = len > 0 && len <= 200 && name[0] != '.';
  for (size_t i = 0; ok && i < len; i++) {
    char c = name[i];
    ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == '+';
  }
  if (!ok) {
    free(name);
    name = hoist_strdup("bundle.tar.gz");
  }
  return name;
}

int hoist_bundle_cache_path(const char *url, const char *arch, const char *cache_dir, char **out,
                            hoist_err **err) {
  if (!url || !*url)
    return hoist_err_set(err, EINVAL, "no URL given");
  if (!hoist_bundle_libdir(arch))
    return hoist_err_set(err, EINVAL, "unsupported architecture: %s", arch ? arch : "(none)");
  char d[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of(url, strlen(url), d);
  _cleanup_free_ char *base = url_basename(url);
  *out = hoist_asprintf("%s/%s-%s-%s", cache_dir ? cache_dir : HOIST_BUNDLE_DEFAULT_CACHE_DIR, arch,
                        d + 7, base);
  return 0;
}

typedef struct sink {
  int fd;
  hoist_sha256 *sha;
  hoist_err *err;
  const hoist_bundle_fetch_opts *o;
} sink;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
  sink *s = userdata;
  size_t len = size * nmemb;
  hoist_sha256_update(s->sha, ptr, len);
  if (hoist_fs_write_all(s->fd, ptr, len, &s->err) < 0)
    return 0;
  return len;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
  (void)ultotal;
  (void)ulnow;
  sink *s = userdata;
  if (s->o->progress)
    s->o->progress((uint64_t)dlnow, (uint64_t)dltotal, s->o->progress_userdata);
  return 0;
}

int hoist_bundle_fetch(const char *url, const hoist_bundle_fetch_opts *o, char **path, bool *cached,
                       hoist_err **err) {
  const char *want = o->sha256;
  if (want && strncmp(want, "sha256:", 7) == 0)
    want += 7;
  if (want) {
    _cleanup_free_ char *full = hoist_asprintf("sha256:%s", want);
    if (hoist_digest_parse(full, NULL, err) < 0)
      return hoist_err_wrap(err, "expected digest");
  }
  const char *dir = o->cache_dir ? o->cache_dir : HOIST_BUNDLE_DEFAULT_CACHE_DIR;
  _cleanup_free_ char *dest = NULL;
  if (hoist_bundle_cache_path(url, o->arch, dir, &dest, err) < 0)
    return -EINVAL;
  if (cached)
    *cached = false;

  struct stat st;
  if (stat(dest, &st) == 0 && S_ISREG(st.st_mode)) {
    char d[HOIST_DIGEST_STR_LEN];
    if (!want) {
      if (cached)
        *cached = true;
      *path = steal_pointer(&dest);
      return 0;
    }
    if (hoist_sha256_file(AT_FDCWD, dest, d, NULL, err) < 0)
      return hoist_err_wrap(err, "fetch %s", url);
    if (strcmp(d + 7, want) == 0) {
      if (cached)
        *cached = true;
      *path = steal_pointer(&dest);
      return 0;
    }
    hoist_warn("cached %s does not match the expected sha256; downloading again", dest);
    unlink(dest);
  }

  if (hoist_fs_mkdir_p(AT_FDCWD, dir, 0755, NULL, err) < 0)
    return hoist_err_wrap(err, "fetch %s", url);
  _cleanup_free_ char *tmp = hoist_asprintf("%s.tmp-XXXXXX", dest);
  sink s = {.fd = mkostemp(tmp, O_CLOEXEC), .sha = hoist_sha256_new(), .o = o};
  if (s.fd < 0) {
    hoist_sha256_free(s.sha);
    return hoist_err_errno(err, errno, "fetch %s: create %s", url, tmp);
  }
  CURL *c = curl_easy_init();
  if (!c)
    abort();
  char curlerr[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curlerr);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  if (o->progress) {
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &s);
  }
  CURLcode cr = curl_easy_perform(c);
  curl_easy_cleanup(c);
  char got[HOIST_DIGEST_STR_LEN];
  hoist_sha256_final(s.sha, got);
  hoist_sha256_free(s.sha);
  int r = 0;
  if (cr != CURLE_OK) {
    if (s.err) {
      *err = s.err;
      r = hoist_err_wrap(err, "fetch %s", url);
    } else {
      r = hoist_err_set(err, EIO, "fetch %s: %s", url,
                        curlerr[0] ? curlerr : curl_easy_strerror(cr));
    }
  } else if (fsync(s.fd) < 0) {
    r = hoist_err_errno(err, errno, "fetch %s: fsync", url);
  } else if (want && strcmp(got + 7, want) != 0) {
    r = hoist_err_set(err, HOIST_E_DIGEST, "fetch %s: sha256 mismatch: expected %s, got %s", url,
                      want, got + 7);
  } else if (fchmod(s.fd, 0644) < 0 || rename(tmp, dest) < 0) {
    r = hoist_err_errno(err, errno, "fetch %s: rename to %s", url, dest);
  }
  close(s.fd);
  if (r < 0) {
    unlink(tmp);
    return r;
  }
  *path = steal_pointer(&dest);
  return 0;
}
