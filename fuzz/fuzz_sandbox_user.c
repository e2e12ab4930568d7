/* libFuzzer target: a user spec resolved against an image's /etc/passwd and
 * /etc/group (both come from the image, so they are untrusted). Input: spec,
 * passwd and group separated by NUL bytes. A resolved user always has its
 * primary group first and never more groups than the cap. */
#include <stdint.h>
#include <string.h>

#include "../src/lib/sandbox/sandbox-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* three NULs after the data: each of the three strings ends inside buf */
  char *buf = hoist_malloc0(size + 3);
  memcpy(buf, data, size);
  char *spec = buf;
  char *passwd = spec + strlen(spec) + 1;
  char *group = passwd + strlen(passwd) + 1;
  sandbox_user u;
  hoist_err *err = NULL;
  if (sandbox_user_resolve(spec, passwd, group, &u, &err) == 0) {
    if (u.n_groups < 1 || u.n_groups > SANDBOX_MAX_GROUPS || u.groups[0] != u.gid)
      __builtin_trap();
  } else if (!err) {
    __builtin_trap();
  }
  hoist_err_free(err);
  unsigned long s, c;
  sandbox_subid_range(passwd, spec, 0, &s, &c);
  free(buf);
  return 0;
}
