/* configopts: the config options, each checked by libhoist as it is read,
 * and the two ends of the verbs that take them. */
#include <string.h>

#include "configopts.h"

/* Adds arg as a change of field to the edit at dest; a refused value is a
 * usage error "--option: what is wrong". */
static int edit_add(const char *verb, const char *option, hoist_config_field field, const char *arg,
                    void *dest) {
  hoist_err *err = NULL;
  if (hoist_config_edit_add(dest, field, arg, &err) == 0)
    return 0;
  _cleanup_free_ char *text = hoist_err_text(err);
  hoist_err_free(err);
  return cli_usage(verb, "--%s: %s", option, text), -1;
}

/* One option parser per field: the parsers take no argument of their own. */
#define EDIT_OPTION(fn, option, field)                                                             \
  static int fn(const char *verb, const char *arg, void *dest) {                                   \
    return edit_add(verb, option, field, arg, dest);                                               \
  }

EDIT_OPTION(opt_entrypoint, "entrypoint", HOIST_CONFIG_ENTRYPOINT)
EDIT_OPTION(opt_cmd, "cmd", HOIST_CONFIG_CMD)
EDIT_OPTION(opt_env, "env", HOIST_CONFIG_ENV)
EDIT_OPTION(opt_env_rm, "env-rm", HOIST_CONFIG_ENV_RM)
EDIT_OPTION(opt_label, "label", HOIST_CONFIG_LABEL)
EDIT_OPTION(opt_label_rm, "label-rm", HOIST_CONFIG_LABEL_RM)
EDIT_OPTION(opt_annotation, "annotation", HOIST_CONFIG_ANNOTATION)
EDIT_OPTION(opt_user, "user", HOIST_CONFIG_USER)
EDIT_OPTION(opt_workdir, "workdir", HOIST_CONFIG_WORKDIR)
EDIT_OPTION(opt_expose, "expose", HOIST_CONFIG_EXPOSE)
EDIT_OPTION(opt_volume, "volume", HOIST_CONFIG_VOLUME)
EDIT_OPTION(opt_stop_signal, "stop-signal", HOIST_CONFIG_STOP_SIGNAL)
EDIT_OPTION(opt_os, "os", HOIST_CONFIG_OS)
EDIT_OPTION(opt_arch, "arch", HOIST_CONFIG_ARCHITECTURE)
EDIT_OPTION(opt_variant, "variant", HOIST_CONFIG_VARIANT)
EDIT_OPTION(opt_author, "author", HOIST_CONFIG_AUTHOR)

const cli_opt cli_config_opts[] = {
    CLI_CALL_SELF("entrypoint", opt_entrypoint),
    CLI_CALL_SELF("cmd", opt_cmd),
    CLI_CALL_SELF("env", opt_env),
    CLI_CALL_SELF("env-rm", opt_env_rm),
    CLI_CALL_SELF("label", opt_label),
    CLI_CALL_SELF("label-rm", opt_label_rm),
    CLI_CALL_SELF("annotation", opt_annotation),
    CLI_CALL_SELF("user", opt_user),
    CLI_CALL_SELF("workdir", opt_workdir),
    CLI_CALL_SELF("expose", opt_expose),
    CLI_CALL_SELF("volume", opt_volume),
    CLI_CALL_SELF("stop-signal", opt_stop_signal),
    CLI_CALL_SELF("os", opt_os),
    CLI_CALL_SELF("arch", opt_arch),
    CLI_CALL_SELF("variant", opt_variant),
    CLI_CALL_SELF("author", opt_author),
    CLI_END,
};

int cli_image_ends_open(const char *verb, const char *what, bool scratch, int argc, char **argv,
                        const char *target, cli_regopts *ro, cli_image_ends *e) {
  if (argc - optind != 1)
    return cli_usage(verb, "needs exactly one %s", what);
  if (!target)
    return cli_usage(verb, "needs --target DEST");
  hoist_err *err = NULL;
  const char *operand = argv[optind];
  if ((!(scratch && strcmp(operand, "scratch") == 0) &&
       cli_loc_parse(ro, operand, &e->src_loc, &err) < 0) ||
      cli_loc_parse(ro, target, &e->dst_loc, &err) < 0)
    return cli_usage_err(verb, err);
  if ((e->dst_loc->kind == HOIST_LOC_LAYOUT && !e->dst_loc->tag) ||
      (e->dst_loc->kind == HOIST_LOC_REGISTRY && !e->dst_loc->ref->tag))
    return cli_usage(verb, "--target %s needs a tag", target);
  bool registry = (e->src_loc && e->src_loc->kind == HOIST_LOC_REGISTRY) ||
                  e->dst_loc->kind == HOIST_LOC_REGISTRY;
  hoist_transport_opts to = {.registry = NULL};
  if (registry && cli_regopts_open(ro, false, &e->reg, &err) < 0)
    return cli_fail(verb, err);
  to.registry = e->reg;
  if (e->src_loc && cli_verify_before_use(ro, e->reg, e->src_loc, &err) < 0)
    return cli_fail(verb, err);
  if ((e->src_loc && hoist_transport_open_source(&to, e->src_loc, &e->src, &err) < 0) ||
      hoist_transport_open_target(&to, e->dst_loc, &e->dst, &err) < 0)
    return cli_fail(verb, err);
  return -1;
}

void cli_image_ends_clear(cli_image_ends *e) {
  hoist_transport_source_free(steal_pointer(&e->src));
  hoist_transport_target_free(steal_pointer(&e->dst));
  hoist_registry_free(steal_pointer(&e->reg));
  hoist_loc_free(steal_pointer(&e->src_loc));
  hoist_loc_free(steal_pointer(&e->dst_loc));
}
