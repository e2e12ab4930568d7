/*
 * configopts: what the verbs that make an image from another image (hoist
 * config, hoist append) share: the options that change its config, read into
 * a hoist_config_edit (oci.h) in the order given, and the opening of the
 * image read and the target written.
 */
#ifndef HOIST_CLI_CONFIGOPTS_H
#define HOIST_CLI_CONFIGOPTS_H

#include "cli.h"
#include "hoist/image.h"
#include "regopts.h"

#define CONFIGOPTS_HELP                                                                            \
  "Config options (applied in the order given):\n"                                                 \
  "  --entrypoint CMD          Entrypoint: a JSON array ('[\"/app\",\"-v\"]') or a shell\n"        \
  "                            command, run as [\"/bin/sh\",\"-c\",CMD]; '' removes it\n"          \
  "                            (a new one drops IMAGE's Cmd unless --cmd is given)\n"              \
  "  --cmd CMD                 Cmd, the same way\n"                                                \
  "  --env NAME=VALUE          set a variable, replacing NAME's entry (repeatable)\n"              \
  "  --env-rm NAME             remove a variable (repeatable)\n"                                   \
  "  --label KEY=VALUE         set a label (repeatable)\n"                                         \
  "  --label-rm KEY            remove a label (repeatable)\n"                                      \
  "  --annotation KEY=VALUE    set an annotation of the manifest (repeatable; OCI only)\n"         \
  "  --user USER[:GROUP]       User (names or ids); '' removes it\n"                               \
  "  --workdir DIR             WorkingDir, an absolute path; '' removes it\n"                      \
  "  --expose PORT[/PROTO]     add to ExposedPorts (tcp by default, udp, sctp; repeatable)\n"      \
  "  --volume PATH             add to Volumes, an absolute path (repeatable)\n"                    \
  "  --stop-signal SIG         StopSignal (SIGTERM, TERM or 15); '' removes it\n"                  \
  "  --os OS                   the config's os (linux)\n"                                          \
  "  --arch ARCH               its architecture (amd64, arm64; aarch64 and x86_64 normalized)\n"   \
  "  --variant VARIANT         its variant (v7, v8); '' removes it\n"                              \
  "  --author TEXT             its author; '' removes it\n"

/* The options of CONFIGOPTS_HELP, for CLI_GROUP(cli_config_opts, &edit),
 * edit a hoist_config_edit (the caller clears it). A refused value is a
 * usage error naming the option. */
extern const cli_opt cli_config_opts[];

/* The two ends of such a verb, opened. */
typedef struct cli_image_ends {
  hoist_loc *src_loc; /* NULL for scratch */
  hoist_loc *dst_loc;
  hoist_registry *reg;         /* opened when either end is a registry */
  hoist_transport_source *src; /* NULL for scratch */
  hoist_transport_target *dst;
} cli_image_ends;

/* Opens the one operand (argv[optind]; what names it in usage errors:
 * "BASE"; with scratch, "scratch" is the empty image and opens nothing) and
 * target, the --target DEST (NULL when missing), which needs a tag. The
 * registry client is opened from ro. Returns -1 to go on, else the exit code
 * (reported: 2 for a usage error). */
int cli_image_ends_open(const char *verb, const char *what, bool scratch, int argc, char **argv,
                        const char *target, cli_regopts *ro, cli_image_ends *e);
void cli_image_ends_clear(cli_image_ends *e);
#define _cleanup_image_ends_ __attribute__((cleanup(cli_image_ends_clear)))

#endif
