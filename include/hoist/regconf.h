/*
 * regconf: the registries configuration of containers-registries.conf(5),
 * the file podman, buildah and skopeo read (version 2, TOML), and its
 * drop-ins (registries.conf.d/NAME.conf).
 *
 * What hoist takes of it: unqualified-search-registries, short-name-mode,
 * [aliases], and the [[registry]] tables with prefix, location, insecure,
 * blocked, mirror-by-digest-only and [[registry.mirror]] (location,
 * insecure, pull-from-mirror). One table more is hoist's own, ignored by
 * the containers tools: [hoist] short-name-prefix = "HOST/PATH", the
 * community prefix a bare name is looked up under ("base" ->
 * "HOST/PATH/base:latest") when no alias names it.
 *
 * A hoist_regconf is built by reading files it is given (the CLI chooses
 * which, as containers-registries.conf(5) orders them): the main file, then
 * each drop-in in turn, a later one overriding what an earlier one set:
 * unqualified-search-registries, short-name-mode and short-name-prefix as
 * wholes, a [[registry]] of the same prefix, an alias of the same name. It
 * owns its strings; reading it changes nothing on disk.
 *
 * What it answers, each from the configuration alone (no registry is asked):
 * the reference a name the user wrote stands for (short names), where a
 * pull of a reference is tried (its mirrors, then its location) and where a
 * push goes (its location), and which hosts are insecure.
 */
#ifndef HOIST_REGCONF_H
#define HOIST_REGCONF_H

#include "hoist/core.h"
#include "hoist/ref.h"

typedef struct hoist_regconf hoist_regconf;

/* An empty configuration: nothing rewritten or blocked, no aliases. */
HOIST_EXPORT hoist_regconf *hoist_regconf_new(void);
HOIST_EXPORT void hoist_regconf_free(hoist_regconf *c);
static inline void hoist_regconf_freep(hoist_regconf **c) { hoist_regconf_free(*c); }
#define _cleanup_regconf_ __attribute__((cleanup(hoist_regconf_freep)))

/* Merges one file's text into c, name naming it in messages ("NAME:LINE:
 * ..."): a key of the wrong type, a v1 file ([registries.search]), a
 * mirror without location, a wildcard prefix with a location, a location or
 * alias that is not a qualified reference are errors, and c is left as it
 * was before the call. */
HOIST_EXPORT int hoist_regconf_parse(hoist_regconf *c, const char *data, size_t len,
                                     const char *name, hoist_err **err) HOIST_WUR;

/* Reads the main file (when file is not NULL; it must exist when required,
 * else a missing one is skipped), then the *.conf files of each directory of
 * dirs (NULL-terminated, missing ones skipped; NULL: none) in lexical order
 * within it. The caller frees *out with hoist_regconf_free. */
HOIST_EXPORT int hoist_regconf_load(const char *file, bool required, const char *const *dirs,
                                    hoist_regconf **out, hoist_err **err) HOIST_WUR;

/* True when the reference text s names no registry: its first '/'-part has
 * no '.' or ':' and is not "localhost" ("base", "library/busybox:1"). */
HOIST_EXPORT bool hoist_regconf_is_short(const char *s);

/* The reference s stands for (s as written, without "docker://").
 * A qualified s is parsed as it is. A short one is looked up, first hit
 * wins: an alias of its name (tag or digest of s kept); the community
 * prefix (a name without '/'); the unqualified-search-registries, where
 * one registry is the answer and several an error listing the candidates
 * (hoist cannot prompt as podman does, so every short-name-mode is
 * enforcing here: never a guess). With none of these configured s is
 * normalized as Docker does (docker.io). *how, when how is not NULL, says
 * which rule answered ("alias from FILE:LINE"; caller frees; NULL for a
 * qualified s). The caller frees *out. */
HOIST_EXPORT int hoist_regconf_resolve(const hoist_regconf *c, const char *s, hoist_ref **out,
                                       char **how, hoist_err **err) HOIST_WUR;

/* Where a pull of ref is tried, in order: the mirrors of the [[registry]]
 * whose prefix matches it best (the longest; wildcard "*.example.com"
 * prefixes match hosts), each with the prefix replaced by its location
 * (a pull-from-mirror of digest-only skips tags, tag-only digests), then
 * ref at the registry's location. NULL-terminated, never empty; the
 * caller frees it with hoist_regconf_refs_free. A blocked registry is an
 * error naming the rule (HOIST_E_UNSAFE). */
HOIST_EXPORT int hoist_regconf_pull_sources(const hoist_regconf *c, const hoist_ref *ref,
                                            hoist_ref ***out, hoist_err **err) HOIST_WUR;

/* Where a push of ref goes: ref at its registry's location (mirrors are for
 * pulls only). Blocked as for pulls. Caller frees *out. */
HOIST_EXPORT int hoist_regconf_push_target(const hoist_regconf *c, const hoist_ref *ref,
                                           hoist_ref **out, hoist_err **err) HOIST_WUR;

HOIST_EXPORT void hoist_regconf_refs_free(hoist_ref **refs);

/* The hosts made insecure by the configuration (registries' and mirrors'
 * locations with insecure = true), appended to out. */
HOIST_EXPORT void hoist_regconf_insecure_hosts(const hoist_regconf *c, hoist_strv *out);

/* The public key file (hoist-verify-key) of the [[registry]] whose prefix
 * matches ref best (as for pulls), or NULL when that one has none (or none
 * matches). *where (optional) gets its "FILE:LINE". Borrowed from c. */
HOIST_EXPORT const char *hoist_regconf_verify_key(const hoist_regconf *c, const hoist_ref *ref,
                                                  const char **where);

#endif
