/* Platforms: parsing "os/arch[/variant]", normalization to GOOS/GOARCH names,
 * the host platform, matching, and the JSON form used in descriptors. */
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <sys/utsname.h>

#include "oci-private.h"

static char *lower_dup(const char *s) {
  char *d = hoist_strdup(s);
  for (char *p = d; *p; p++)
    *p = (char)tolower((unsigned char)*p);
  return d;
}

static void replace(char **slot, const char *value) {
  free(*slot);
  *slot = value ? hoist_strdup(value) : NULL;
}

/* Normalizes os, architecture and variant in place, as containerd does:
 * lower case; x86_64/x86-64 -> amd64; aarch64 -> arm64 with variant v8
 * dropped; armhf -> arm/v7, armel -> arm/v6, arm without variant -> arm/v7;
 * i386 -> 386; macos -> darwin. An empty variant becomes NULL. */
static void normalize(char **os, char **arch, char **variant) {
  char *o = lower_dup(*os), *a = lower_dup(*arch);
  char *v = *variant ? lower_dup(*variant) : NULL;
  free(*os);
  free(*arch);
  free(*variant);
  if (v && !*v) {
    free(v);
    v = NULL;
  }
  if (strcmp(o, "macos") == 0)
    replace(&o, "darwin");
  if (strcmp(a, "x86_64") == 0 || strcmp(a, "x86-64") == 0 || strcmp(a, "amd64") == 0) {
    replace(&a, "amd64");
    if (v && strcmp(v, "v1") == 0)
      replace(&v, NULL);
  } else if (strcmp(a, "aarch64") == 0 || strcmp(a, "arm64") == 0) {
    replace(&a, "arm64");
    if (v && (strcmp(v, "8") == 0 || strcmp(v, "v8") == 0 || strcmp(v, "v8.0") == 0))
      replace(&v, NULL);
  } else if (strcmp(a, "armhf") == 0) {
    replace(&a, "arm");
    replace(&v, "v7");
  } else if (strcmp(a, "armel") == 0) {
    replace(&a, "arm");
    replace(&v, "v6");
  } else if (strcmp(a, "arm") == 0) {
    if (!v || strcmp(v, "7") == 0)
      replace(&v, "v7");
    else if (strcmp(v, "5") == 0 || strcmp(v, "6") == 0 || strcmp(v, "8") == 0) {
      char *nv = hoist_asprintf("v%s", v);
      free(v);
      v = nv;
    }
  } else if (strcmp(a, "i386") == 0 || strcmp(a, "i686") == 0) {
    replace(&a, "386");
    replace(&v, NULL);
  }
  *os = o;
  *arch = a;
  *variant = v;
}

static bool component_valid(const char *s, size_t n) {
  if (n == 0 || n > 64)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!(isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.'))
      return false;
  }
  return true;
}

int hoist_platform_parse(const char *s, hoist_platform **out, hoist_err **err) {
  *out = NULL;
  if (!s || !*s)
    return hoist_err_set(err, HOIST_E_FORMAT, "empty platform");
  const char *parts[3];
  size_t lens[3], n = 0;
  const char *p = s;
  for (;;) {
    const char *slash = strchr(p, '/');
    size_t l = slash ? (size_t)(slash - p) : strlen(p);
    if (n == 3)
      return hoist_err_set(err, HOIST_E_FORMAT,
                           "platform \"%.80s\": expected os/arch[/variant], got too many parts", s);
    if (!component_valid(p, l))
      return hoist_err_set(err, HOIST_E_FORMAT,
                           "platform \"%.80s\": part %zu is empty or has characters other than "
                           "letters, digits, '_', '-' and '.'",
                           s, n + 1);
    parts[n] = p;
    lens[n] = l;
    n++;
    if (!slash)
      break;
    p = slash + 1;
  }
  if (n < 2)
    return hoist_err_set(err, HOIST_E_FORMAT,
                         "platform \"%.80s\": expected os/arch[/variant], missing architecture", s);
  hoist_platform *pl = hoist_malloc0(sizeof *pl);
  pl->os = strndup(parts[0], lens[0]);
  pl->architecture = strndup(parts[1], lens[1]);
  pl->variant = n == 3 ? strndup(parts[2], lens[2]) : NULL;
  if (!pl->os || !pl->architecture || (n == 3 && !pl->variant))
    abort();
  normalize(&pl->os, &pl->architecture, &pl->variant);
  *out = pl;
  return 0;
}

hoist_platform *hoist_platform_host(void) {
  struct utsname u;
  const char *machine = "unknown";
  if (uname(&u) == 0)
    machine = u.machine;
  hoist_platform *p = hoist_malloc0(sizeof *p);
  p->os = hoist_strdup("linux");
  if (strncmp(machine, "armv", 4) == 0 && isdigit((unsigned char)machine[4])) {
    /* armv7l, armv6l: the digit is the variant */
    p->architecture = hoist_strdup("arm");
    p->variant = hoist_asprintf("v%c", machine[4]);
  } else if (strcmp(machine, "i586") == 0) {
    p->architecture = hoist_strdup("386");
  } else {
    p->architecture = hoist_strdup(machine);
  }
  normalize(&p->os, &p->architecture, &p->variant);
  return p;
}

char *hoist_platform_string(const hoist_platform *p) {
  if (!p)
    return hoist_strdup("");
  if (p->variant)
    return hoist_asprintf("%s/%s/%s", p->os ? p->os : "", p->architecture ? p->architecture : "",
                          p->variant);
  return hoist_asprintf("%s/%s", p->os ? p->os : "", p->architecture ? p->architecture : "");
}

bool hoist_platform_match(const hoist_platform *want, const hoist_platform *have) {
  if (!want || !have || !want->os || !want->architecture || !have->os || !have->architecture)
    return false;
  char *wo = hoist_strdup(want->os), *wa = hoist_strdup(want->architecture);
  char *wv = want->variant ? hoist_strdup(want->variant) : NULL;
  char *ho = hoist_strdup(have->os), *ha = hoist_strdup(have->architecture);
  char *hv = have->variant ? hoist_strdup(have->variant) : NULL;
  normalize(&wo, &wa, &wv);
  normalize(&ho, &ha, &hv);
  bool ok = strcmp(wo, ho) == 0 && strcmp(wa, ha) == 0 && (!wv || (hv && strcmp(wv, hv) == 0));
  free(wo);
  free(wa);
  free(wv);
  free(ho);
  free(ha);
  free(hv);
  return ok;
}

hoist_platform *hoist_platform_dup(const hoist_platform *p) {
  if (!p)
    return NULL;
  hoist_platform *c = hoist_malloc0(sizeof *c);
  c->os = p->os ? hoist_strdup(p->os) : NULL;
  c->architecture = p->architecture ? hoist_strdup(p->architecture) : NULL;
  c->variant = p->variant ? hoist_strdup(p->variant) : NULL;
  c->os_version = p->os_version ? hoist_strdup(p->os_version) : NULL;
  c->os_features = oci_strv_dup(p->os_features);
  c->features = oci_strv_dup(p->features);
  return c;
}

void hoist_platform_free(hoist_platform *p) {
  if (!p)
    return;
  free(p->os);
  free(p->architecture);
  free(p->variant);
  free(p->os_version);
  oci_strv_free(p->os_features);
  oci_strv_free(p->features);
  free(p);
}

int hoist_platform_from_json(const json_t *j, hoist_platform **out, hoist_err **err) {
  *out = NULL;
  if (!json_is_object(j))
    return hoist_err_set(err, HOIST_E_FORMAT, "platform must be an object");
  const char *os, *arch, *variant, *osv;
  int r;
  if ((r = oci_req_string(j, "os", &os, err)) < 0 ||
      (r = oci_req_string(j, "architecture", &arch, err)) < 0 ||
      (r = oci_opt_string(j, "variant", &variant, err)) < 0 ||
      (r = oci_opt_string(j, "os.version", &osv, err)) < 0)
    return hoist_err_wrap(err, "platform");
  _cleanup_platform_ hoist_platform *p = hoist_malloc0(sizeof *p);
  p->os = hoist_strdup(os);
  p->architecture = hoist_strdup(arch);
  /* an empty optional string is the same as an absent one */
  p->variant = variant && *variant ? hoist_strdup(variant) : NULL;
  p->os_version = osv && *osv ? hoist_strdup(osv) : NULL;
  json_t *v = json_object_get(j, "os.features");
  if (v && !json_is_null(v) && (r = oci_strv_from_json(v, "os.features", &p->os_features, err)) < 0)
    return hoist_err_wrap(err, "platform");
  v = json_object_get(j, "features");
  if (v && !json_is_null(v) && (r = oci_strv_from_json(v, "features", &p->features, err)) < 0)
    return hoist_err_wrap(err, "platform");
  *out = steal_pointer(&p);
  return 0;
}

json_t *hoist_platform_to_json(const hoist_platform *p) {
  if (!p || !p->os || !p->architecture)
    return NULL;
  json_t *o = json_object();
  if (!o)
    abort();
  bool ok = oci_set_string(o, "os", p->os) && oci_set_string(o, "architecture", p->architecture) &&
            (!p->variant || oci_set_string(o, "variant", p->variant)) &&
            (!p->os_version || oci_set_string(o, "os.version", p->os_version)) &&
            (!p->os_features || oci_set_new(o, "os.features", oci_strv_to_json(p->os_features))) &&
            (!p->features || oci_set_new(o, "features", oci_strv_to_json(p->features)));
  if (!ok) {
    json_decref(o);
    return NULL;
  }
  return o;
}

char *hoist_index_platforms(const hoist_index *ix, const char *unknown) {
  _cleanup_buf_ hoist_buf b = HOIST_BUF_INIT(0);
  for (size_t i = 0; i < ix->n_manifests; i++) {
    const hoist_platform *p = ix->manifests[i].platform;
    if (!p && !unknown)
      continue;
    _cleanup_free_ char *s = p ? hoist_platform_string(p) : hoist_strdup(unknown);
    if (hoist_buf_appendf(&b, NULL, "%s%s", b.len ? ", " : "", s) < 0)
      break; /* a message: the platforms that fit */
  }
  return hoist_buf_steal(&b);
}
