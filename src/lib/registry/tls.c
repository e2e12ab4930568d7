/* TLS settings per host: the client's options (CA bundle, client
 * certificate, verification), and the host's certs.d directory as podman
 * and docker read it, gathered once per host and applied to every request. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "hoist/fs.h"
#include "internal.h"

/* Largest CA bundle kept for one host: the system's (some 200 KiB) and the
 * extra CAs. */
#define CA_BUNDLE_MAX (8u << 20)
#define CERTS_DIR_ENTRIES_MAX 1024

/* ------------------------------------------------------- certs.d dir */

void hoist_certs_dir_clear(hoist_certs_dir *d) {
  hoist_strfreev(d->cas);
  free(d->cert);
  free(d->key);
  memset(d, 0, sizeof *d);
}

static bool has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n > k && strcmp(s + n - k, suffix) == 0;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of dir's entries, sorted; *exists false when dir is missing. */
HOIST_WUR static int dir_names(const char *dir, hoist_strv *names, bool *exists, hoist_err **err) {
  DIR *d = opendir(dir);
  *exists = d != NULL;
  if (!d) {
    if (errno == ENOENT)
      return 0;
    return hoist_err_errno(err, errno, "certs directory %s", dir);
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    if (names->n == CERTS_DIR_ENTRIES_MAX) {
      closedir(d);
      return hoist_err_set(err, HOIST_E_LIMIT, "certs directory %s: more than %d entries", dir,
                           CERTS_DIR_ENTRIES_MAX);
    }
    hoist_strv_add(names, e->d_name);
  }
  closedir(d);
  if (names->n)
    qsort(names->v, names->n, sizeof *names->v, cmp_names);
  return 0;
}

/* True when dir has an entry named base + suffix (names sorted). */
static bool has_name(const hoist_strv *names, const char *base, size_t base_len,
                     const char *suffix) {
  _cleanup_free_ char *want = hoist_asprintf("%.*s%s", (int)base_len, base, suffix);
  return names->n && bsearch(&want, names->v, names->n, sizeof *names->v, cmp_names) != NULL;
}

int hoist_certs_dir_read(const char *dir, hoist_certs_dir *out, bool *found, hoist_err **err) {
  memset(out, 0, sizeof *out);
  *found = false;
  _cleanup_strv_ hoist_strv names = HOIST_STRV_INIT;
  bool exists = false;
  if (dir_names(dir, &names, &exists, err) < 0)
    return -1;
  if (!exists)
    return 0;
  hoist_strv cas = HOIST_STRV_INIT;
  for (size_t i = 0; i < names.n; i++) {
    const char *n = names.v[i];
    if (has_suffix(n, ".crt")) {
      hoist_strv_push(&cas, hoist_asprintf("%s/%s", dir, n));
    } else if (has_suffix(n, ".cert")) {
      size_t base = strlen(n) - 5;
      if (!has_name(&names, n, base, ".key")) {
        hoist_strv_clear(&cas);
        hoist_certs_dir_clear(out);
        return hoist_err_set(err, ENOENT,
                             "certs directory %s: client certificate %s has no key %.*s.key "
                             "(a CA certificate is named *.crt)",
                             dir, n, (int)base, n);
      }
      if (!out->cert) {
        out->cert = hoist_asprintf("%s/%s", dir, n);
        out->key = hoist_asprintf("%s/%.*s.key", dir, (int)base, n);
      }
    } else if (has_suffix(n, ".key")) {
      size_t base = strlen(n) - 4;
      if (!has_name(&names, n, base, ".cert")) {
        hoist_strv_clear(&cas);
        hoist_certs_dir_clear(out);
        return hoist_err_set(err, ENOENT,
                             "certs directory %s: key %s has no client certificate %.*s.cert", dir,
                             n, (int)base, n);
      }
    }
  }
  out->cas = hoist_strv_steal(&cas);
  *found = true;
  return 0;
}

/* ------------------------------------------------------ per host */

void reg_tls_clear(reg_tls *t) {
  free(t->ca);
  free(t->cert);
  free(t->key);
  free(t->dir);
  memset(t, 0, sizeof *t);
}

/* The CA bundle curl verifies with when told nothing (its built-in
 * CURLOPT_CAINFO), or NULL when it has none or cannot say. Caller frees. */
static char *default_ca_bundle(void) {
#if LIBCURL_VERSION_NUM >= 0x075400
  CURL *c = curl_easy_init();
  if (!c)
    abort();
  char *path = NULL;
  char *out = NULL;
  if (curl_easy_getinfo(c, CURLINFO_CAINFO, &path) == CURLE_OK && path)
    out = hoist_strdup(path);
  curl_easy_cleanup(c);
  return out;
#else
  return NULL;
#endif
}

/* Appends the PEM file at path to b; what names it in errors. A missing
 * system bundle (optional) is skipped. */
HOIST_WUR static int add_pem(hoist_buf *b, const char *what, const char *path, bool optional,
                             hoist_err **err) {
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  hoist_err *e = NULL;
  if (hoist_fs_read_file(AT_FDCWD, path, CA_BUNDLE_MAX, &data, &len, &e) < 0) {
    if (optional) {
      hoist_err_free(e);
      return 0;
    }
    if (err && !*err)
      *err = e;
    else
      hoist_err_free(e);
    return hoist_err_wrap(err, "%s %s", what, path);
  }
  if (hoist_buf_append(b, data, len, err) < 0 || hoist_buf_append(b, "\n", 1, err) < 0)
    return hoist_err_wrap(err, "CA certificates for one host");
  return 0;
}

/* The certs directory for host: the client's cert_dir, else the first
 * ROOT/host/ of certs_d that exists. *dir NULL when there is none. */
static char *certs_dir_of(hoist_registry *r, const char *host) {
  if (r->cert_dir)
    return hoist_strdup(r->cert_dir);
  for (size_t i = 0; i < r->certs_d.n; i++) {
    char *dir = hoist_asprintf("%s/%s", r->certs_d.v[i], host);
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
      return dir;
    free(dir);
  }
  return NULL;
}

/* Gathers t for host: the CAs (the system's, ca_file, the certs directory's
 * *.crt) into one bundle when there are extra ones, the client certificate
 * (cert_file, else the directory's). */
HOIST_WUR static int tls_gather(hoist_registry *r, const char *host, reg_tls *t, hoist_err **err) {
  t->dir = certs_dir_of(r, host);
  hoist_certs_dir cd = {0};
  bool found = false;
  if (t->dir && hoist_certs_dir_read(t->dir, &cd, &found, err) < 0)
    return -1;
  if (r->cert_file) {
    t->cert = hoist_strdup(r->cert_file);
    t->key = r->key_file ? hoist_strdup(r->key_file) : NULL;
  } else if (cd.cert) {
    t->cert = steal_pointer(&cd.cert);
    t->key = steal_pointer(&cd.key);
  } else if (r->key_file) {
    t->key = hoist_strdup(r->key_file);
  }
  bool extra = r->ca_file || (cd.cas && cd.cas[0]);
  if (!extra) {
    hoist_certs_dir_clear(&cd);
    return 0;
  }
  _cleanup_buf_ hoist_buf b = HOIST_BUF_INIT(CA_BUNDLE_MAX);
  _cleanup_free_ char *sys = default_ca_bundle();
  int ret = sys ? add_pem(&b, "system CA bundle", sys, true, err) : 0;
  if (ret == 0 && r->ca_file)
    ret = add_pem(&b, "CA file", r->ca_file, false, err);
  for (size_t i = 0; ret == 0 && cd.cas && cd.cas[i]; i++)
    ret = add_pem(&b, "CA certificate", cd.cas[i], false, err);
  hoist_certs_dir_clear(&cd);
  if (ret < 0)
    return -1;
  t->ca_len = b.len;
  t->ca = hoist_buf_steal(&b);
  return 0;
}

int reg_tls_load(hoist_registry *r, const char *host, hoist_err **err) {
  pthread_mutex_lock(&r->lock);
  reg_host *h = reg_host_get(r, host);
  int ret = 0;
  if (!h->tls.loaded) {
    reg_tls t = {0};
    ret = tls_gather(r, host, &t, err);
    if (ret < 0) {
      reg_tls_clear(&t);
      hoist_err_wrap(err, "TLS settings for %s", host);
    } else {
      t.loaded = true;
      h->tls = t;
    }
  }
  pthread_mutex_unlock(&r->lock);
  return ret;
}

bool reg_tls_verifies(hoist_registry *r, const char *host) {
  return !r->tls_skip_verify && (r->tls_always || !reg_insecure_listed(r, host));
}

void reg_tls_apply(hoist_registry *r, CURL *c, const char *host) {
  pthread_mutex_lock(&r->lock);
  reg_host *h = reg_host_get(r, host);
  /* the bundle lives as long as the client, longer than any handle */
  if (h->tls.ca) {
    struct curl_blob blob = {h->tls.ca, h->tls.ca_len, CURL_BLOB_NOCOPY};
    curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
  }
  if (h->tls.cert)
    curl_easy_setopt(c, CURLOPT_SSLCERT, h->tls.cert);
  if (h->tls.key)
    curl_easy_setopt(c, CURLOPT_SSLKEY, h->tls.key);
  pthread_mutex_unlock(&r->lock);
  if (!reg_tls_verifies(r, host)) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
}

char *reg_tls_hint(hoist_registry *r, const char *host) {
  _cleanup_free_ char *dir = NULL;
  pthread_mutex_lock(&r->lock);
  reg_host *h = reg_host_get(r, host);
  if (h->tls.dir)
    dir = hoist_strdup(h->tls.dir);
  pthread_mutex_unlock(&r->lock);
  _cleanup_free_ char *where =
      dir                ? hoist_asprintf("%s/ca.crt (read, but its CAs do not sign it)", dir)
      : r->certs_d.n > 0 ? hoist_asprintf("%s/%s/ca.crt", r->certs_d.v[0], host)
                         : hoist_asprintf("a certs.d directory, HOST/ca.crt (--cert-dir DIR)");
  return hoist_asprintf("trust its CA with --ca-file FILE or in certs.d (%s), or skip the check "
                        "with --tls-verify=false",
                        where);
}
