/* Config edits: the changes `hoist config` and `hoist append` make to an
 * image's config (Entrypoint, Cmd, Env, Labels, ports, ...) and to its
 * manifest's annotations, each checked when it is added so that applying
 * them cannot meet a bad value. */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "oci-private.h"

/* -------------------------------------------------------------- checks */

/* Splits "KEY=VALUE" (what: "NAME", "KEY") at the first '=': *key (caller
 * frees) and *value (borrowed from text). */
HOIST_WUR static int split_pair(const char *text, const char *what, char **key, const char **value,
                                hoist_err **err) {
  const char *eq = strchr(text, '=');
  if (!eq || eq == text)
    return hoist_err_set(err, EINVAL, "\"%s\" is not %s=VALUE", text, what);
  *key = strndup(text, (size_t)(eq - text));
  if (!*key)
    abort();
  *value = eq + 1;
  return 0;
}

/* Refuses text that is empty (what names it), or that is not UTF-8. */
HOIST_WUR static int check_text(const char *text, const char *what, hoist_err **err) {
  if (!*text)
    return hoist_err_set(err, EINVAL, "empty %s", what);
  _cleanup_json_ json_t *s = json_string(text);
  if (!s)
    return hoist_err_set(err, HOIST_E_FORMAT, "%s is not valid UTF-8", what);
  return 0;
}

HOIST_WUR static int check_pair(const char *text, const char *what, hoist_err **err) {
  _cleanup_free_ char *key = NULL;
  const char *value = NULL;
  int r;
  if ((r = split_pair(text, what, &key, &value, err)) < 0 ||
      (r = check_text(text, "the value", err)) < 0)
    return r;
  return 0;
}

HOIST_WUR static int check_name(const char *text, const char *what, hoist_err **err) {
  if (strchr(text, '='))
    return hoist_err_set(err, EINVAL, "\"%s\" is a %s, without '='", text, what);
  return check_text(text, what, err);
}

HOIST_WUR static int check_path(const char *text, hoist_err **err) {
  if (text[0] != '/')
    return hoist_err_set(err, EINVAL, "\"%s\" is not an absolute path", text);
  return check_text(text, "path", err);
}

/* "80", "53/udp", "8080/TCP" -> "80/tcp", "53/udp", "8080/tcp". */
HOIST_WUR static int parse_port(const char *text, char **out, hoist_err **err) {
  const char *slash = strchr(text, '/');
  const char *proto = slash ? slash + 1 : "tcp";
  size_t digits = slash ? (size_t)(slash - text) : strlen(text);
  unsigned long port = 0;
  bool ok = digits > 0 && digits <= 5;
  for (size_t i = 0; ok && i < digits; i++) {
    ok = isdigit((unsigned char)text[i]);
    port = port * 10 + (unsigned long)(text[i] - '0');
  }
  if (!ok || port == 0 || port > 65535)
    return hoist_err_set(err, EINVAL, "\"%s\" is not PORT[/PROTO] with a port 1-65535", text);
  if (strcasecmp(proto, "tcp") != 0 && strcasecmp(proto, "udp") != 0 &&
      strcasecmp(proto, "sctp") != 0)
    return hoist_err_set(err, EINVAL, "\"%s\": the protocol must be tcp, udp or sctp", text);
  *out = hoist_asprintf("%lu/%s", port, proto);
  for (char *p = strchr(*out, '/'); *p; p++)
    *p = (char)tolower((unsigned char)*p);
  return 0;
}

/* A decimal number of at most 2 digits into *n; false for anything else. */
static bool small_number(const char *s, int *n) {
  if (!isdigit((unsigned char)s[0]) || (s[1] && (!isdigit((unsigned char)s[1]) || s[2])))
    return false;
  *n = atoi(s);
  return true;
}

/* A signal as Docker's ParseSignal takes it: a number, or a name with or
 * without SIG (any case), RTMIN+N and RTMAX-N included. */
HOIST_WUR static int check_signal(const char *text, hoist_err **err) {
  int n = 0;
  if (small_number(text, &n)) {
    if (n >= 1 && n <= SIGRTMAX)
      return 0;
  } else {
    const char *name = strncasecmp(text, "SIG", 3) == 0 ? text + 3 : text;
    for (int s = 1; s < SIGRTMIN; s++) {
      const char *abbrev = sigabbrev_np(s);
      if (abbrev && strcasecmp(name, abbrev) == 0)
        return 0;
    }
    int span = SIGRTMAX - SIGRTMIN;
    if (strcasecmp(name, "RTMIN") == 0 || strcasecmp(name, "RTMAX") == 0)
      return 0;
    if ((strncasecmp(name, "RTMIN+", 6) == 0 || strncasecmp(name, "RTMAX-", 6) == 0) &&
        small_number(name + 6, &n) && n <= span)
      return 0;
  }
  return hoist_err_set(err, EINVAL, "\"%s\" is not a signal (SIGTERM, TERM or 15)", text);
}

/* Lower-case letters, digits, '.', '_' and '-': an os or a variant. */
HOIST_WUR static int check_token(const char *text, const char *what, hoist_err **err) {
  bool ok = *text != '\0';
  for (const char *p = text; ok && *p; p++)
    ok = islower((unsigned char)*p) || isdigit((unsigned char)*p) || strchr("._-", *p);
  if (!ok)
    return hoist_err_set(err, EINVAL, "\"%s\" is not %s (lower-case letters, digits, . _ -)", text,
                         what);
  return 0;
}

/* The architecture text names, normalized as platforms are (x86_64 ->
 * amd64, aarch64 -> arm64). */
HOIST_WUR static int parse_arch(const char *text, char **out, hoist_err **err) {
  _cleanup_free_ char *lower = hoist_strdup(text);
  for (char *p = lower; *p; p++)
    *p = (char)tolower((unsigned char)*p);
  int r = check_token(lower, "an architecture", err);
  if (r < 0)
    return r;
  _cleanup_free_ char *spec = hoist_asprintf("linux/%s", lower);
  _cleanup_platform_ hoist_platform *p = NULL;
  if ((r = hoist_platform_parse(spec, &p, err)) < 0)
    return hoist_err_wrap(err, "architecture \"%s\"", text);
  *out = hoist_strdup(p->architecture);
  return 0;
}

/* Entrypoint or Cmd: "" removes; text starting with '[' must be a JSON array
 * of strings; anything else is a shell command, ["/bin/sh", "-c", text]. */
HOIST_WUR static int parse_command(const char *text, char ***out, hoist_err **err) {
  const char *p = text + strspn(text, " \t\n");
  if (!*text) {
    *out = hoist_calloc(1, sizeof **out);
    return 0;
  }
  if (*p != '[') {
    int r = check_text(text, "command", err);
    if (r < 0)
      return r;
    char **v = hoist_calloc(4, sizeof *v);
    v[0] = hoist_strdup("/bin/sh");
    v[1] = hoist_strdup("-c");
    v[2] = hoist_strdup(text);
    *out = v;
    return 0;
  }
  json_error_t je;
  _cleanup_json_ json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
  if (!j)
    return hoist_err_set(err, HOIST_E_FORMAT, "bad JSON at column %d: %s", je.column, je.text);
  int r = oci_strv_from_json(j, "command", out, err);
  if (r < 0)
    return hoist_err_wrap(err, "want a JSON array of strings");
  return 0;
}

/* Checks text as a value of field f into c (value or argv). */
HOIST_WUR static int change_of(hoist_config_field f, const char *text, hoist_config_change *c,
                               hoist_err **err) {
  int r = 0;
  c->field = f;
  switch (f) {
  case HOIST_CONFIG_ENTRYPOINT:
  case HOIST_CONFIG_CMD:
    return parse_command(text, &c->argv, err);
  case HOIST_CONFIG_ENV:
    r = check_pair(text, "NAME", err);
    break;
  case HOIST_CONFIG_LABEL:
  case HOIST_CONFIG_ANNOTATION:
    r = check_pair(text, "KEY", err);
    break;
  case HOIST_CONFIG_ENV_RM:
    r = check_name(text, "variable name", err);
    break;
  case HOIST_CONFIG_LABEL_RM:
    r = check_name(text, "label key", err);
    break;
  case HOIST_CONFIG_EXPOSE:
    return parse_port(text, &c->value, err);
  case HOIST_CONFIG_VOLUME:
    r = check_path(text, err);
    break;
  case HOIST_CONFIG_WORKDIR:
    r = *text ? check_path(text, err) : 0;
    break;
  case HOIST_CONFIG_USER:
  case HOIST_CONFIG_AUTHOR:
    r = *text ? check_text(text, "value", err) : 0;
    break;
  case HOIST_CONFIG_STOP_SIGNAL:
    r = *text ? check_signal(text, err) : 0;
    break;
  case HOIST_CONFIG_OS:
    r = check_token(text, "an operating system", err);
    break;
  case HOIST_CONFIG_ARCHITECTURE:
    return parse_arch(text, &c->value, err);
  case HOIST_CONFIG_VARIANT:
    r = *text ? check_token(text, "a variant", err) : 0;
    break;
  default:
    return hoist_err_set(err, EINVAL, "unknown config field %d", (int)f);
  }
  if (r < 0)
    return r;
  c->value = hoist_strdup(text);
  return 0;
}

int hoist_config_edit_add(hoist_config_edit *e, hoist_config_field field, const char *text,
                          hoist_err **err) {
  hoist_config_change c = {0};
  int r = change_of(field, text ? text : "", &c, err);
  if (r < 0)
    return r;
  e->v = hoist_reallocarray(e->v, e->n + 1, sizeof *e->v);
  e->v[e->n++] = c;
  return 0;
}

void hoist_config_edit_clear(hoist_config_edit *e) {
  for (size_t i = 0; i < e->n; i++) {
    free(e->v[i].value);
    hoist_strfreev(e->v[i].argv);
  }
  free(e->v);
  e->v = NULL;
  e->n = 0;
}

/* ------------------------------------------------------------- applying */

/* obj[key] as an object, made (replacing anything else) when it is not one. */
static json_t *object_at(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  if (json_is_object(v))
    return v;
  v = json_object();
  if (!v || json_object_set_new(obj, key, v) < 0)
    abort();
  return v;
}

/* Sets obj[key] to the string value, or removes it when value is "". */
HOIST_WUR static int set_or_remove(json_t *obj, const char *key, const char *value,
                                   hoist_err **err) {
  if (!*value)
    json_object_del(obj, key);
  else if (!oci_set_string(obj, key, value))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: not valid UTF-8", key);
  return 0;
}

/* Removes NAME's entries ("NAME=..." or a bare "NAME") from Env. */
static void env_remove(json_t *section, const char *name) {
  json_t *env = json_object_get(section, "Env");
  size_t n = strlen(name);
  for (size_t i = json_array_size(env); i-- > 0;) {
    const char *v = json_string_value(json_array_get(env, i));
    if (v && strncmp(v, name, n) == 0 && (v[n] == '=' || !v[n]))
      json_array_remove(env, i);
  }
}

/* Sets map[KEY] (what: "Labels", "annotations") from "KEY=VALUE". */
HOIST_WUR static int set_pair(json_t *map, const char *what, const char *pair, hoist_err **err) {
  _cleanup_free_ char *k = NULL;
  const char *value = NULL;
  int r = split_pair(pair, "KEY", &k, &value, err);
  if (r < 0)
    return r;
  if (!oci_set_string(map, k, value))
    return hoist_err_set(err, HOIST_E_FORMAT, "%s: %s is not valid UTF-8", what, pair);
  return 0;
}

/* Applies change c to cfg; sets_cmd: the edit sets Cmd too (else a new
 * Entrypoint drops the Cmd cfg had, as Docker's ENTRYPOINT does). */
HOIST_WUR static int apply_one(const hoist_config_change *c, bool sets_cmd, hoist_config *cfg,
                               hoist_err **err) {
  json_t *section = hoist_config_section(cfg);
  _cleanup_free_ char *name = NULL;
  const char *value = NULL;
  int r = 0;
  switch (c->field) {
  case HOIST_CONFIG_ENTRYPOINT:
  case HOIST_CONFIG_CMD: {
    const char *key = c->field == HOIST_CONFIG_CMD ? "Cmd" : "Entrypoint";
    if (!c->argv || !c->argv[0])
      json_object_del(section, key);
    else if (!oci_set_new(section, key, oci_strv_to_json(c->argv)))
      return hoist_err_set(err, HOIST_E_FORMAT, "%s is not valid UTF-8", key);
    else if (c->field == HOIST_CONFIG_ENTRYPOINT && !sets_cmd)
      json_object_del(section, "Cmd");
    return 0;
  }
  case HOIST_CONFIG_ENV:
    if ((r = split_pair(c->value, "NAME", &name, &value, err)) < 0)
      return r;
    return hoist_config_set_env(cfg, name, value, err);
  case HOIST_CONFIG_ENV_RM:
    env_remove(section, c->value);
    return 0;
  case HOIST_CONFIG_LABEL:
    return set_pair(object_at(section, "Labels"), "Labels", c->value, err);
  case HOIST_CONFIG_LABEL_RM:
    json_object_del(json_object_get(section, "Labels"), c->value);
    return 0;
  case HOIST_CONFIG_ANNOTATION:
    return 0; /* the manifest's: hoist_config_edit_annotate */
  case HOIST_CONFIG_USER:
    return set_or_remove(section, "User", c->value, err);
  case HOIST_CONFIG_WORKDIR:
    return set_or_remove(section, "WorkingDir", c->value, err);
  case HOIST_CONFIG_STOP_SIGNAL:
    return set_or_remove(section, "StopSignal", c->value, err);
  case HOIST_CONFIG_EXPOSE:
  case HOIST_CONFIG_VOLUME: {
    const char *key = c->field == HOIST_CONFIG_EXPOSE ? "ExposedPorts" : "Volumes";
    if (!oci_set_new(object_at(section, key), c->value, json_object()))
      abort();
    return 0;
  }
  case HOIST_CONFIG_OS:
    return set_or_remove(cfg->root, "os", c->value, err);
  case HOIST_CONFIG_ARCHITECTURE:
    return set_or_remove(cfg->root, "architecture", c->value, err);
  case HOIST_CONFIG_VARIANT:
    return set_or_remove(cfg->root, "variant", c->value, err);
  case HOIST_CONFIG_AUTHOR:
    return set_or_remove(cfg->root, "author", c->value, err);
  }
  return hoist_err_set(err, EINVAL, "unknown config field %d", (int)c->field);
}

int hoist_config_edit_apply(const hoist_config_edit *e, hoist_config *c, hoist_err **err) {
  bool sets_cmd = false;
  for (size_t i = 0; i < e->n; i++)
    sets_cmd = sets_cmd || e->v[i].field == HOIST_CONFIG_CMD;
  for (size_t i = 0; i < e->n; i++)
    if (apply_one(&e->v[i], sets_cmd, c, err) < 0)
      return hoist_err_wrap(err, "edit config");
  return 0;
}

int hoist_config_edit_annotate(const hoist_config_edit *e, hoist_manifest *m, hoist_err **err) {
  for (size_t i = 0; i < e->n; i++) {
    if (e->v[i].field != HOIST_CONFIG_ANNOTATION)
      continue;
    if (hoist_media_is_docker(m->media_type))
      return hoist_err_set(err, EINVAL,
                           "annotation %s: a Docker schema 2 manifest has no annotations",
                           e->v[i].value);
    if (!json_is_object(m->annotations)) {
      json_decref(m->annotations);
      if (!(m->annotations = json_object()))
        abort();
    }
    if (set_pair(m->annotations, "annotations", e->v[i].value, err) < 0)
      return hoist_err_wrap(err, "annotate manifest");
  }
  return 0;
}
