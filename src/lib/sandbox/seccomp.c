/*
 * sandbox: the seccomp filter a build command runs under.
 *
 * A deny list, not an allow list: a build runs whatever package managers and
 * compilers an image brings, so every syscall is allowed except those that
 * reach past the sandbox's namespaces or into the host kernel (modules, kexec,
 * bpf, perf, the keyring, mounts, new user namespaces, ptrace, clock setting,
 * io_uring, terminal injection, ...), which fail with EPERM as they would in a
 * container without capabilities. The filter covers the native ABI and the
 * 32-bit ones the same kernel accepts; a syscall from any other ABI kills.
 *
 * The parent builds it with libseccomp (which allocates) and exports it as a
 * classic BPF program; the command's process, a fork of a possibly
 * multithreaded parent, loads that program with one prctl and no allocation.
 */
#include <errno.h>
#include <linux/filter.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox-private.h"

/* Refused with EPERM on every ABI of the filter: what the containers/common
 * default profile refuses a container without extra capabilities (modules,
 * kexec, bpf, perf, ptrace, NUMA policy, clock setting, ...), plus calls that
 * profile leaves to capability checks or to its ENOSYS default and a build
 * has no use for (the keyring, mount and the new mount API, pivot_root,
 * reboot, syslog, io_uring). A name some ABI lacks (vm86 on x86_64,
 * pciconfig_* on x86) is skipped for that ABI. */
static const char *const denied[] = {
    "acct",
    "add_key",
    "bdflush",
    "bpf",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_settime",
    "clock_settime64",
    "create_module",
    "delete_module",
    "fanotify_init",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "membarrier",
    "migrate_pages",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "pciconfig_iobase",
    "pciconfig_read",
    "pciconfig_write",
    "perf_event_open",
    "pivot_root",
    "process_madvise",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setdomainname",
    "sethostname",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "_sysctl",
    "sysfs",
    "syslog",
    "umount",
    "umount2",
    "uselib",
    "userfaultfd",
    "ustat",
    "vhangup",
    "vm86",
    "vm86old",
    "vmsplice",
};

/* Refused only when one argument matches: (arg & mask) == value. The
 * comparisons read the low 32 bits, all that clone's and unshare's flags
 * (CLONE_NEWUSER) and ioctl's request (an int to the kernel) carry. */
static const struct {
  const char *name;
  unsigned arg;
  scmp_datum_t mask, value;
} denied_when[] = {
    {"clone", 0, CLONE_NEWUSER, CLONE_NEWUSER},
    {"unshare", 0, CLONE_NEWUSER, CLONE_NEWUSER},
    {"ioctl", 1, 0xffffffff, TIOCSTI},
    {"ioctl", 1, 0xffffffff, TIOCLINUX},
};

/* The ABIs the filter covers: the native one and those the same kernel also
 * accepts from a process (on x86_64, int $0x80 enters the i386 table and
 * syscall numbers with bit 30 set the x32 one). Others hit the bad-arch
 * action, which kills. */
static const struct {
  uint32_t arch;
  const char *name;
} arches[] = {
#if defined(__x86_64__)
    {SCMP_ARCH_X86_64, "x86_64"},
    {SCMP_ARCH_X86, "x86"},
    {SCMP_ARCH_X32, "x32"},
#elif defined(__aarch64__)
    {SCMP_ARCH_AARCH64, "aarch64"},
    {SCMP_ARCH_ARM, "arm"},
#endif
    {0, NULL},
};

static void seccomp_releasep(scmp_filter_ctx *ctx) {
  if (*ctx)
    seccomp_release(*ctx);
}
#define _cleanup_seccomp_ __attribute__((cleanup(seccomp_releasep)))

/* Adds the rule for name on every ABI of ctx. A name libseccomp does not know
 * is skipped; one it knows but some ABI lacks (a negative pseudo-syscall
 * number) is added where it exists. */
HOIST_WUR static int add_rule(scmp_filter_ctx ctx, const char *name, uint32_t action,
                              unsigned n_cmp, const struct scmp_arg_cmp *cmp, hoist_err **err) {
  int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR)
    return 0;
  int r = seccomp_rule_add_array(ctx, action, nr, n_cmp, cmp);
  if (r < 0)
    return hoist_err_errno(err, -r, "seccomp: rule for %s", name);
  return 0;
}

/* Exports ctx as classic BPF into out->filter (malloc'd). libseccomp 2.5
 * only writes to an fd, so the program goes through a memfd. */
HOIST_WUR static int export_bpf(scmp_filter_ctx ctx, sandbox_bpf *out, hoist_err **err) {
  _cleanup_close_ int fd = memfd_create("hoist-seccomp", MFD_CLOEXEC);
  if (fd < 0)
    return hoist_err_errno(err, errno, "seccomp: memfd_create");
  int r = seccomp_export_bpf(ctx, fd);
  if (r < 0)
    return hoist_err_errno(err, -r, "seccomp: export BPF");
  struct stat st;
  if (fstat(fd, &st) < 0)
    return hoist_err_errno(err, errno, "seccomp: stat the exported filter");
  size_t size = (size_t)st.st_size;
  if (size == 0 || size % sizeof(struct sock_filter) != 0)
    return hoist_err_set(err, HOIST_E_FORMAT, "seccomp: exported filter has %zu bytes", size);
  if (size / sizeof(struct sock_filter) > BPF_MAXINSNS)
    return hoist_err_set(err, HOIST_E_LIMIT,
                         "seccomp: filter has %zu instructions, the kernel takes %d",
                         size / sizeof(struct sock_filter), BPF_MAXINSNS);
  _cleanup_free_ struct sock_filter *prog = hoist_malloc0(size);
  for (size_t done = 0; done < size;) {
    ssize_t n = pread(fd, (char *)prog + done, size - done, (off_t)done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return hoist_err_errno(err, errno, "seccomp: read the exported filter");
    if (n == 0)
      return hoist_err_set(err, HOIST_E_FORMAT, "seccomp: exported filter shrank");
    done += (size_t)n;
  }
  out->filter = steal_pointer(&prog);
  out->len = (unsigned short)(size / sizeof(struct sock_filter));
  return 0;
}

/* On failure *out is left empty (and safe to free). */
int sandbox_seccomp_build(sandbox_bpf *out, hoist_err **err) {
  *out = (sandbox_bpf){0};
  _cleanup_seccomp_ scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx)
    return hoist_err_set(err, ENOMEM, "seccomp: init");
  /* the caller sets no_new_privs itself, before it changes user */
  int r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  if (r < 0)
    return hoist_err_errno(err, -r, "seccomp: attribute no_new_privs");
  for (size_t i = 0; arches[i].name; i++) {
    if (seccomp_arch_exist(ctx, arches[i].arch) == 0)
      continue; /* the native one */
    r = seccomp_arch_add(ctx, arches[i].arch);
    if (r < 0)
      return hoist_err_errno(err, -r, "seccomp: architecture %s", arches[i].name);
  }

  for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
    r = add_rule(ctx, denied[i], SCMP_ACT_ERRNO(EPERM), 0, NULL, err);
    if (r < 0)
      return r;
  }
  /* ENOSYS, not EPERM: libc then falls back to clone, whose flags the rule
   * below can read (clone3 passes them in memory, out of a filter's reach) */
  r = add_rule(ctx, "clone3", SCMP_ACT_ERRNO(ENOSYS), 0, NULL, err);
  if (r < 0)
    return r;
  for (size_t i = 0; i < sizeof denied_when / sizeof denied_when[0]; i++) {
    struct scmp_arg_cmp cmp = {
        .arg = denied_when[i].arg,
        .op = SCMP_CMP_MASKED_EQ,
        .datum_a = denied_when[i].mask,
        .datum_b = denied_when[i].value,
    };
    r = add_rule(ctx, denied_when[i].name, SCMP_ACT_ERRNO(EPERM), 1, &cmp, err);
    if (r < 0)
      return r;
  }
  return export_bpf(ctx, out, err);
}

void sandbox_seccomp_free(sandbox_bpf *p) {
  if (!p)
    return;
  free(p->filter);
  *p = (sandbox_bpf){0};
}

/* Only a prctl: safe in a child forked from a multithreaded process. Without
 * no_new_privs, the kernel accepts the filter only from a process with
 * CAP_SYS_ADMIN (EACCES otherwise). An empty program is EINVAL. */
int sandbox_seccomp_load(const sandbox_bpf *p) {
  if (!p || !p->filter || p->len == 0) {
    errno = EINVAL;
    return -1;
  }
  struct sock_fprog prog = {.len = p->len, .filter = p->filter};
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0L, 0L) < 0)
    return -1;
  return 0;
}
