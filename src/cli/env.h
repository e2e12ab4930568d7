/*
 * env: every environment variable hoist reads, in one place. The library
 * reads none; the verbs ask here and pass what they get as options. A
 * variable set to the empty string counts as unset.
 */
#ifndef HOIST_CLI_ENV_H
#define HOIST_CLI_ENV_H

#include <stdint.h>

#include "hoist/core.h"
#include "hoist/registry.h"

/* The variable's value, or NULL when it is unset or empty. */
const char *cli_env(const char *name);
/* The whole environment (what a kubeconfig's exec credential plugin inherits). */
const char *const *cli_env_all(void);

/* Fills the fields of o that are unset from the environment:
 * secret_file ($REGISTRY_SECRET), auth_file ($REGISTRY_AUTH_FILE), the
 * default auth files (podman's: $XDG_RUNTIME_DIR/containers/auth.json, or
 * /run/containers/UID/auth.json without XDG_RUNTIME_DIR; then
 * ~/.config/containers/auth.json, ${DOCKER_CONFIG:-~/.docker}/config.json),
 * the certs.d roots (~/.config/containers/certs.d, /etc/containers/certs.d,
 * /etc/docker/certs.d), chunk_size
 * ($HOIST_CHUNK_SIZE), page_size ($HOIST_PAGE_SIZE), blob_locations
 * (cli_env_blob_locations) and tmp_dir ($TMPDIR). The strings live as long
 * as the process. */
void cli_env_registry(hoist_registry_opts *o);

/* The blob-location record: $HOIST_BLOB_LOCATIONS ("none": no record),
 * else $HOIST_CACHE/blob-locations.db, else
 * ${XDG_CACHE_HOME:-~/.cache}/hoist/blob-locations.db. Caller frees; NULL
 * for none. */
char *cli_env_blob_locations(void);

/* The registries configuration's files, as containers-registries.conf(5)
 * orders them. */
typedef struct cli_regconf_paths {
  const char *file;    /* the main file */
  bool required;       /* it was named (given, $CONTAINERS_REGISTRIES_CONF): it must exist */
  const char *dirs[3]; /* drop-in directories, NULL-terminated */
} cli_regconf_paths;

/* The main file is given (--registries-conf) when not NULL, else
 * $CONTAINERS_REGISTRIES_CONF, else ~/.config/containers/registries.conf
 * when it exists, else /etc/containers/registries.conf. The drop-ins are
 * those of /etc/containers/registries.conf.d then
 * ~/.config/containers/registries.conf.d, only the latter when the user's
 * own file is the main one. The strings live as long as the process. */
void cli_env_regconf(const char *given, cli_regconf_paths *out);

/* hoist's former JSON registries file when one is there to be migrated:
 * $HOIST_REGISTRIES_CONF when set, else
 * ${XDG_CONFIG_HOME:-~/.config}/hoist/registries.json when it exists; else
 * NULL. Caller frees. */
char *cli_env_former_registries_json(void);

/* The auth file login and logout change: given (--authfile) when not NULL,
 * else $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json,
 * else /run/containers/UID/auth.json (podman's). Caller frees. */
char *cli_env_auth_file(const char *given);

/* The image store: $HOIST_IMAGES, else ${HOIST_CACHE:-~/.cache/hoist}/images.
 * Caller frees. */
char *cli_env_image_store(void);

/* The build cache: <image store>/build-cache. Caller frees. */
char *cli_env_build_cache(void);

/* The rootfs cache: $HOIST_ROOTFS_CACHE, else $HOIST_CACHE/rootfs, else
 * ${XDG_CACHE_HOME:-~/.cache}/hoist/rootfs. Caller frees. */
char *cli_env_rootfs_cache(void);

/* The service's data directory: ${HOIST_CACHE:-~/.cache/hoist}/serve.
 * Caller frees. */
char *cli_env_serve_data(void);

/* Socket activation as sd_listen_fds(3) has it: the number of sockets systemd
 * passed this process, from fd 3 on: $LISTEN_FDS when $LISTEN_PID is this
 * process's pid; 0 when none were passed or they were passed to another
 * process ($LISTEN_PID not ours, as after a fork). A $LISTEN_PID or
 * $LISTEN_FDS that is not a number is an error naming it. *names (caller
 * frees) receives $LISTEN_FDNAMES (colon-separated) or NULL. $LISTEN_PID,
 * $LISTEN_FDS and $LISTEN_FDNAMES are removed from the environment in every
 * case: no child inherits them. */
int cli_env_listen_fds(char **names, hoist_err **err);

/* Where temporary directories go: $TMPDIR, else fallback. */
const char *cli_env_tmpdir(const char *fallback);

/* $SOURCE_DATE_EPOCH into *out, -1 when unset; a malformed value is an
 * error naming the variable. */
int cli_env_epoch(int64_t *out, hoist_err **err);

/* The log level of $HOIST_LOG (error, warn or warning, info, debug); warn
 * when unset or unknown. */
hoist_log_level cli_env_log_level(void);

/* The whisk-style properties file: $WSK_CONFIG_FILE, else ~/.wskprops.
 * Caller frees. */
char *cli_env_wskprops(void);

#endif
