/*
 * sandbox seccomp: unit tests. A filter cannot be removed once loaded, so each
 * syscall runs in a forked child of its own, under the filter or (to show that
 * the kernel alone would not have answered the same) without it, and sends
 * back what the call returned; the parent asserts.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../src/lib/sandbox/sandbox-private.h"
#include "test_util.h"

/* ------------------------------------------------------------- harness */

typedef enum {
  ABI_NATIVE,
  ABI_I386, /* int $0x80 from this 64-bit process: seccomp sees AUDIT_ARCH_I386 */
  ABI_X32,  /* the number with bit 30 set: AUDIT_ARCH_X86_64, x32 table */
} abi;

#define X32_BIT 0x40000000L
#define ARG_PIPE 0x7e57f00dL /* replaced by the read end of a pipe the child makes */

typedef struct {
  const char *name;
  abi abi;
  long nr;
  long a[6];
} sys_call;

typedef struct {
  long ret;
  int err;    /* errno when ret is -1 */
  int signal; /* the child died of it before reporting (SIGSYS: killed by the filter) */
  int setup;  /* errno of a failed no_new_privs or filter load */
} outcome;

#if defined(__x86_64__)
/* An i386 syscall: eax = number, ebx, ecx, edx, esi, edi = arguments (r8-r11
 * clobbered: kernels before 4.17 zero them). Returns the raw value, -errno on
 * failure. */
static long int80(long nr, const long a[6]) {
  int ret;
  __asm__ volatile("int $0x80"
                   : "=a"(ret)
                   : "0"((int)nr), "b"((int)a[0]), "c"((int)a[1]), "d"((int)a[2]), "S"((int)a[3]),
                     "D"((int)a[4])
                   : "memory", "cc", "r8", "r9", "r10", "r11");
  return ret;
}
#endif

/* Whether c is a clone: the new process exits at once, the caller reaps it. */
static bool forks(const sys_call *c) {
  switch (c->abi) {
  case ABI_NATIVE:
    return c->nr == SYS_clone || c->nr == SYS_clone3;
  case ABI_I386:
    return c->nr == 120 || c->nr == 435;
  case ABI_X32:
    return c->nr == 56 || c->nr == 435;
  }
  return false;
}

/* Makes the call (in the child) and fills ret and err. */
static void invoke(const sys_call *c, outcome *o) {
  int p[2] = {-1, -1};
  long a[6];
  for (int i = 0; i < 6; i++) {
    a[i] = c->a[i];
    if (a[i] == ARG_PIPE) {
      if (p[0] < 0 && pipe(p) < 0) {
        o->setup = errno;
        return;
      }
      a[i] = p[0];
    }
  }
  long r;
  errno = 0;
  switch (c->abi) {
  case ABI_NATIVE:
    r = syscall(c->nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    break;
  case ABI_X32:
    r = syscall(c->nr | X32_BIT, a[0], a[1], a[2], a[3], a[4], a[5]);
    break;
  case ABI_I386:
#if defined(__x86_64__)
    r = int80(c->nr, a);
    if (r < 0 && r >= -4095) {
      errno = (int)-r;
      r = -1;
    }
#else
    r = -1;
    errno = ENOSYS;
#endif
    break;
  default:
    abort();
  }
  o->ret = r;
  o->err = r == -1 ? errno : 0;
  if (forks(c) && r == 0)
    _exit(0); /* the new process, on a copy of this stack */
  if (forks(c) && r > 0)
    waitpid((pid_t)r, NULL, 0);
}

/* In a forked child: cmocka's handlers would catch a crash and go on with
 * the next test in the child; a crash must end it. */
static void child_default_signals(void) {
  for (int sig = 1; sig < NSIG; sig++)
    signal(sig, SIG_DFL);
}

/* Runs c in a forked child, under f when f is not NULL (after no_new_privs),
 * and returns what the call did. */
static outcome run(const sandbox_bpf *f, const sys_call *c) {
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    child_default_signals();
    close(p[0]);
    outcome o = {0};
    if (f && (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || sandbox_seccomp_load(f) < 0))
      o.setup = errno;
    else
      invoke(c, &o);
    _exit(write(p[1], &o, sizeof o) == (ssize_t)sizeof o ? 0 : 1);
  }
  close(p[1]);
  outcome o = {0};
  ssize_t n;
  do
    n = read(p[0], &o, sizeof o);
  while (n < 0 && errno == EINTR);
  close(p[0]);
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  if (n != (ssize_t)sizeof o) {
    o = (outcome){.ret = -1, .signal = WIFSIGNALED(st) ? WTERMSIG(st) : -1};
  }
  return o;
}

static const char *describe(const outcome *o, char *buf, size_t n) {
  if (o->setup)
    snprintf(buf, n, "setup failed: %s", strerror(o->setup));
  else if (o->signal)
    snprintf(buf, n, "child died (signal %d)", o->signal);
  else if (o->ret == -1)
    snprintf(buf, n, "-1 %s", strerror(o->err));
  else
    snprintf(buf, n, "%ld", o->ret);
  return buf;
}

static bool fails_with(const outcome *o, int err) {
  return !o->setup && !o->signal && o->ret == -1 && o->err == err;
}

static sandbox_bpf build_filter(void) {
  sandbox_bpf f;
  hoist_err *err = NULL;
  assert_ok(sandbox_seccomp_build(&f, &err), &err);
  return f;
}

/* Root with CAP_SYS_ADMIN: the kernel's own permission checks pass, so what a
 * denied call returns without the filter is not EPERM. */
static bool privileged(void) {
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
  struct __user_cap_data_struct d[2];
  if (geteuid() != 0 || syscall(SYS_capget, &h, d) < 0)
    return false;
  return d[CAP_SYS_ADMIN / 32].effective & (1U << (CAP_SYS_ADMIN % 32));
}

/* Whether this process already runs under a seccomp filter, which may answer
 * EPERM for the kernel. */
static bool outer_filter(void) {
  FILE *f = fopen("/proc/self/status", "re");
  if (!f)
    return false;
  char line[256];
  int mode = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "Seccomp: %d", &mode) == 1)
      break;
  fclose(f);
  return mode != 0;
}

/* How sure it is that, without the filter, the call does not fail the way the
 * filter makes it fail. */
typedef enum {
  PROOF_ALWAYS, /* the arguments are refused before any permission check */
  PROOF_ROOT,   /* a permission check comes first: proved when privileged */
  PROOF_NONE,   /* depends on the kernel's build and sysctls (modules, kexec, io_uring) */
} proof;

typedef struct {
  sys_call call;
  int want;     /* errno under the filter */
  proof proves; /* that without the filter the result differs */
} denied_case;

/* Asserts each case fails with its errno under the filter, and (as far as the
 * environment allows) that it does not fail so without it. */
static void check_denied(const denied_case *cases, size_t n) {
  sandbox_bpf f = build_filter();
  bool priv = privileged(), outer = outer_filter();
  if (outer)
    print_message("# already under a seccomp filter: results without ours are not checked\n");
  for (size_t i = 0; i < n; i++) {
    const denied_case *c = &cases[i];
    char got[128], bare[128];
    outcome o = run(&f, &c->call);
    if (!fails_with(&o, c->want))
      fail_msg("%s under the filter: want -1 %s, got %s", c->call.name, strerror(c->want),
               describe(&o, got, sizeof got));
    outcome u = run(NULL, &c->call);
    bool check = !outer && (c->proves == PROOF_ALWAYS || (c->proves == PROOF_ROOT && priv));
    if (check && (fails_with(&u, c->want) || u.signal || u.setup))
      fail_msg("%s without the filter: got %s, so the table does not prove the filter",
               c->call.name, describe(&u, bare, sizeof bare));
  }
  sandbox_seccomp_free(&f);
}

typedef struct {
  sys_call call;
  bool must_succeed; /* else it must only do what it does without the filter */
} allowed_case;

/* Asserts each case does under the filter what it does without it. */
static void check_allowed(const allowed_case *cases, size_t n) {
  sandbox_bpf f = build_filter();
  for (size_t i = 0; i < n; i++) {
    const allowed_case *c = &cases[i];
    char got[128], bare[128];
    outcome o = run(&f, &c->call);
    outcome u = run(NULL, &c->call);
    bool same = !o.setup && !o.signal && (o.ret >= 0) == (u.ret >= 0) && o.err == u.err;
    if (!same || (c->must_succeed && o.ret < 0))
      fail_msg("%s: under the filter %s, without it %s", c->call.name,
               describe(&o, got, sizeof got), describe(&u, bare, sizeof bare));
  }
  sandbox_seccomp_free(&f);
}

/* ------------------------------------------------------------- building */

static void test_build_exports_bpf(void **state) {
  (void)state;
  sandbox_bpf a = build_filter(), b = build_filter();
  assert_non_null(a.filter);
  assert_true(a.len > 0 && a.len <= BPF_MAXINSNS);
  /* the program starts by checking the ABI */
  assert_int_equal(a.filter[0].code, BPF_LD | BPF_W | BPF_ABS);
  assert_int_equal(a.filter[0].k, offsetof(struct seccomp_data, arch));
  /* the same program every time */
  assert_int_equal(a.len, b.len);
  assert_memory_equal(a.filter, b.filter, a.len * sizeof *a.filter);

  /* the ABIs it tells apart */
  static const struct {
    const char *name;
    uint32_t arch;
  } abis[] = {
#if defined(__x86_64__)
    {"x86_64 and x32", AUDIT_ARCH_X86_64},
    {"i386", AUDIT_ARCH_I386},
#elif defined(__aarch64__)
    {"aarch64", AUDIT_ARCH_AARCH64},
    {"arm", AUDIT_ARCH_ARM},
#endif
  };
  for (size_t i = 0; i < sizeof abis / sizeof abis[0]; i++) {
    bool found = false;
    for (size_t k = 0; k < a.len && !found; k++)
      found = a.filter[k].code == (BPF_JMP | BPF_JEQ | BPF_K) && a.filter[k].k == abis[i].arch;
    if (!found)
      fail_msg("the filter never compares the arch with %s", abis[i].name);
  }

  sandbox_seccomp_free(&a);
  assert_null(a.filter);
  assert_int_equal(a.len, 0);
  sandbox_seccomp_free(&a); /* again: nothing left to free */
  sandbox_seccomp_free(&b);
  sandbox_seccomp_free(NULL);
}

/* ----------------------------------------------------------- loading */

static void test_load_refusals(void **state) {
  (void)state;
  sandbox_bpf f = build_filter();
  struct sock_filter bad_insn[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 4096), /* beyond struct seccomp_data */
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sandbox_bpf bad = {bad_insn, 2}, empty = {bad_insn, 0}, none = {NULL, 3};
  bool root = geteuid() == 0, priv = privileged();
  static const int nobody = 65534;
  const struct {
    const char *name;
    const sandbox_bpf *prog;
    bool nnp;
    bool drop_root; /* become nobody first (which drops every capability) */
    int want;       /* errno, 0 for success */
    bool runs;
  } cases[] = {
      {"no program", NULL, true, false, EINVAL, true},
      {"no instructions", &empty, true, false, EINVAL, true},
      {"null filter", &none, true, false, EINVAL, true},
      {"invalid program", &bad, true, false, EINVAL, true},
      {"no_new_privs, unprivileged", &f, true, root, 0, true},
      {"without no_new_privs, unprivileged", &f, false, root, EACCES, true},
      /* root may load a filter without no_new_privs */
      {"without no_new_privs, CAP_SYS_ADMIN", &f, false, false, 0, priv},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (!cases[i].runs)
      continue;
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      child_default_signals();
      int got = -1;
      if (cases[i].drop_root && (setgroups(0, NULL) < 0 || setresgid(nobody, nobody, nobody) < 0 ||
                                 setresuid(nobody, nobody, nobody) < 0))
        _exit(2);
      if (cases[i].nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        _exit(3);
      got = sandbox_seccomp_load(cases[i].prog) == 0 ? 0 : errno;
      _exit(write(p[1], &got, sizeof got) == (ssize_t)sizeof got ? 0 : 1);
    }
    close(p[1]);
    int got = -1;
    ssize_t n = read(p[0], &got, sizeof got);
    close(p[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (n != (ssize_t)sizeof got)
      fail_msg("%s: the child reported nothing (status %#x)", cases[i].name, st);
    if (got != cases[i].want)
      fail_msg("%s: want %s, got %s", cases[i].name,
               cases[i].want ? strerror(cases[i].want) : "success",
               got ? strerror(got) : "success");
  }
  sandbox_seccomp_free(&f);
}

/* ------------------------------------------------ the program, evaluated */

/* Runs a classic BPF program on d as the kernel would and returns its
 * verdict; fails the test on an instruction seccomp does not accept. */
static uint32_t bpf_eval(const sandbox_bpf *f, const struct seccomp_data *d) {
  uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = {0};
  for (size_t pc = 0; pc < f->len; pc++) {
    const struct sock_filter *i = &f->filter[pc];
    uint32_t k = i->k, src = BPF_SRC(i->code) == BPF_X ? x : k;
    switch (BPF_CLASS(i->code)) {
    case BPF_LD:
    case BPF_LDX: {
      uint32_t v = 0;
      if (BPF_MODE(i->code) == BPF_ABS && BPF_SIZE(i->code) == BPF_W && k % 4 == 0 &&
          k + 4 <= sizeof *d)
        memcpy(&v, (const char *)d + k, 4);
      else if (BPF_MODE(i->code) == BPF_IMM)
        v = k;
      else if (BPF_MODE(i->code) == BPF_MEM && k < BPF_MEMWORDS)
        v = mem[k];
      else if (BPF_MODE(i->code) == BPF_LEN)
        v = sizeof *d;
      else
        fail_msg("instruction %zu: load %#x", pc, i->code);
      if (BPF_CLASS(i->code) == BPF_LD)
        a = v;
      else
        x = v;
      break;
    }
    case BPF_ST:
    case BPF_STX:
      if (k >= BPF_MEMWORDS)
        fail_msg("instruction %zu: store to %u", pc, k);
      mem[k] = BPF_CLASS(i->code) == BPF_ST ? a : x;
      break;
    case BPF_ALU:
      switch (BPF_OP(i->code)) {
      case BPF_ADD:
        a += src;
        break;
      case BPF_SUB:
        a -= src;
        break;
      case BPF_MUL:
        a *= src;
        break;
      case BPF_DIV:
        a = src ? a / src : 0;
        break;
      case BPF_MOD:
        a = src ? a % src : 0;
        break;
      case BPF_AND:
        a &= src;
        break;
      case BPF_OR:
        a |= src;
        break;
      case BPF_XOR:
        a ^= src;
        break;
      case BPF_LSH:
        a = src < 32 ? a << src : 0;
        break;
      case BPF_RSH:
        a = src < 32 ? a >> src : 0;
        break;
      case BPF_NEG:
        a = -a;
        break;
      default:
        fail_msg("instruction %zu: alu %#x", pc, i->code);
      }
      break;
    case BPF_JMP: {
      bool t = false;
      switch (BPF_OP(i->code)) {
      case BPF_JA:
        pc += k;
        continue;
      case BPF_JEQ:
        t = a == src;
        break;
      case BPF_JGT:
        t = a > src;
        break;
      case BPF_JGE:
        t = a >= src;
        break;
      case BPF_JSET:
        t = (a & src) != 0;
        break;
      default:
        fail_msg("instruction %zu: jump %#x", pc, i->code);
      }
      pc += t ? i->jt : i->jf;
      break;
    }
    case BPF_RET:
      return BPF_RVAL(i->code) == BPF_A ? a : k;
    case BPF_MISC:
      if (BPF_MISCOP(i->code) == BPF_TAX)
        x = a;
      else
        a = x;
      break;
    }
  }
  fail_msg("the program runs off its end");
  return 0;
}

#define ALLOW SECCOMP_RET_ALLOW
#define DENY (SECCOMP_RET_ERRNO | EPERM)
#define NOSYS (SECCOMP_RET_ERRNO | ENOSYS)
#define KILL SECCOMP_RET_KILL_THREAD

/* What the filter answers per ABI, kernel or not: this machine's kernel may
 * lack the i386 or x32 entry (then the live tests below skip or see ENOSYS),
 * but a process on another may use them. Numbers are each ABI's own. */
static void test_verdicts_per_abi(void **state) {
  (void)state;
  sandbox_bpf f = build_filter();
  static const struct {
    const char *name;
    uint32_t arch;
    int nr;
    uint64_t args[2];
    uint32_t want;
  } cases[] = {
#if defined(__x86_64__)
    {"x86_64 keyctl", AUDIT_ARCH_X86_64, 250, {0, 0}, DENY},
    {"x86_64 getpid", AUDIT_ARCH_X86_64, 39, {0, 0}, ALLOW},
    {"x86_64 clone3", AUDIT_ARCH_X86_64, 435, {0, 0}, NOSYS},
    {"x86_64 clone(CLONE_NEWUSER)", AUDIT_ARCH_X86_64, 56, {CLONE_NEWUSER | SIGCHLD, 0}, DENY},
    {"x86_64 clone(SIGCHLD)", AUDIT_ARCH_X86_64, 56, {SIGCHLD, 0}, ALLOW},
    {"x86_64 unshare(CLONE_NEWUSER)", AUDIT_ARCH_X86_64, 272, {CLONE_NEWUSER, 0}, DENY},
    {"x86_64 unshare(CLONE_NEWNS)", AUDIT_ARCH_X86_64, 272, {CLONE_NEWNS, 0}, ALLOW},
    {"x86_64 ioctl(TIOCSTI)", AUDIT_ARCH_X86_64, 16, {3, TIOCSTI}, DENY},
    {"x86_64 ioctl(TIOCSTI), high bits set",
     AUDIT_ARCH_X86_64,
     16,
     {3, (7ULL << 32) | TIOCSTI},
     DENY},
    {"x86_64 ioctl(TIOCLINUX)", AUDIT_ARCH_X86_64, 16, {3, TIOCLINUX}, DENY},
    {"x86_64 ioctl(FIONREAD)", AUDIT_ARCH_X86_64, 16, {3, FIONREAD}, ALLOW},
    {"x86_64 umount2", AUDIT_ARCH_X86_64, 166, {0, 0}, DENY},
    {"x86_64 mount_setattr", AUDIT_ARCH_X86_64, 442, {0, 0}, DENY},
    {"x86_64 chroot", AUDIT_ARCH_X86_64, 161, {0, 0}, ALLOW},
    /* x32: the x86_64 arch with bit 30 in the number (its own ioctl: 514) */
    {"x32 keyctl", AUDIT_ARCH_X86_64, X32_BIT | 250, {0, 0}, DENY},
    {"x32 getpid", AUDIT_ARCH_X86_64, X32_BIT | 39, {0, 0}, ALLOW},
    {"x32 ioctl(TIOCSTI)", AUDIT_ARCH_X86_64, X32_BIT | 514, {3, TIOCSTI}, DENY},
    {"x32 kexec_load", AUDIT_ARCH_X86_64, X32_BIT | 528, {0, 0}, DENY},
    {"x32 unshare(CLONE_NEWUSER)", AUDIT_ARCH_X86_64, X32_BIT | 272, {CLONE_NEWUSER, 0}, DENY},
    /* i386, with the names only it has */
    {"i386 keyctl", AUDIT_ARCH_I386, 288, {0, 0}, DENY},
    {"i386 mount", AUDIT_ARCH_I386, 21, {0, 0}, DENY},
    {"i386 bpf", AUDIT_ARCH_I386, 357, {0, 0}, DENY},
    {"i386 getpid", AUDIT_ARCH_I386, 20, {0, 0}, ALLOW},
    {"i386 unshare(CLONE_NEWUSER)", AUDIT_ARCH_I386, 310, {CLONE_NEWUSER, 0}, DENY},
    {"i386 unshare(CLONE_FILES)", AUDIT_ARCH_I386, 310, {CLONE_FILES, 0}, ALLOW},
    {"i386 clone(CLONE_NEWUSER)", AUDIT_ARCH_I386, 120, {CLONE_NEWUSER | SIGCHLD, 0}, DENY},
    {"i386 clone(SIGCHLD)", AUDIT_ARCH_I386, 120, {SIGCHLD, 0}, ALLOW},
    {"i386 clone3", AUDIT_ARCH_I386, 435, {0, 0}, NOSYS},
    {"i386 ioctl(TIOCSTI)", AUDIT_ARCH_I386, 54, {3, TIOCSTI}, DENY},
    {"i386 ioctl(FIONREAD)", AUDIT_ARCH_I386, 54, {3, FIONREAD}, ALLOW},
    {"i386 vm86", AUDIT_ARCH_I386, 166, {0, 0}, DENY},
    {"i386 vm86old", AUDIT_ARCH_I386, 113, {0, 0}, DENY},
    {"i386 stime", AUDIT_ARCH_I386, 25, {0, 0}, DENY},
    {"i386 umount", AUDIT_ARCH_I386, 22, {0, 0}, DENY},
    {"i386 clock_settime64", AUDIT_ARCH_I386, 404, {0, 0}, DENY},
    {"i386 socketcall", AUDIT_ARCH_I386, 102, {0, 0}, ALLOW},
    /* any other ABI: killed */
    {"arm keyctl", AUDIT_ARCH_ARM, 311, {0, 0}, KILL},
    {"aarch64 getpid", AUDIT_ARCH_AARCH64, 172, {0, 0}, KILL},
#elif defined(__aarch64__)
    {"aarch64 keyctl", AUDIT_ARCH_AARCH64, 219, {0, 0}, DENY},
    {"aarch64 getpid", AUDIT_ARCH_AARCH64, 172, {0, 0}, ALLOW},
    {"aarch64 unshare(CLONE_NEWUSER)", AUDIT_ARCH_AARCH64, 97, {CLONE_NEWUSER, 0}, DENY},
    {"arm keyctl", AUDIT_ARCH_ARM, 311, {0, 0}, DENY},
    {"arm getpid", AUDIT_ARCH_ARM, 20, {0, 0}, ALLOW},
    {"x86_64 getpid", AUDIT_ARCH_X86_64, 39, {0, 0}, KILL},
#endif
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct seccomp_data d = {.nr = cases[i].nr, .arch = cases[i].arch};
    d.args[0] = cases[i].args[0];
    d.args[1] = cases[i].args[1];
    uint32_t got = bpf_eval(&f, &d);
    if (got != cases[i].want)
      fail_msg("%s: want %#x, got %#x", cases[i].name, cases[i].want, got);
  }
  sandbox_seccomp_free(&f);
}

/* ------------------------------------------------------- the native ABI */

struct clone_args_v0 {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static void test_denied_native(void **state) {
  (void)state;
  static const char nowhere[] = "/nonexistent/hoist-seccomp-test";
  static const struct timespec ts = {1, 0};
  static struct clone_args_v0 ca = {.exit_signal = SIGCHLD};
  /* every argument is harmless: without the filter the call fails (a bogus
   * key id, flags, fd, magic number or path), or its effect stays in the
   * throwaway child (a new user namespace) */
  const denied_case cases[] = {
      {{"keyctl", ABI_NATIVE, SYS_keyctl, {KEYCTL_GET_KEYRING_ID, 0x7ffffff0, 0}},
       EPERM,
       PROOF_ALWAYS},
      {{"add_key",
        ABI_NATIVE,
        SYS_add_key,
        {(long)"hoist-no-such-type", (long)"d", 0, 0, KEY_SPEC_PROCESS_KEYRING}},
       EPERM,
       PROOF_ALWAYS},
      {{"request_key", ABI_NATIVE, SYS_request_key, {(long)"hoist-no-such-type", (long)"d", 0, 0}},
       EPERM,
       PROOF_ALWAYS},
      {{"bpf", ABI_NATIVE, SYS_bpf, {9999, 0, 0}}, EPERM, PROOF_ROOT},
      {{"perf_event_open", ABI_NATIVE, SYS_perf_event_open, {0, 0, -1, -1, ~0L}},
       EPERM,
       PROOF_ALWAYS},
      {{"init_module", ABI_NATIVE, SYS_init_module, {0, 0, (long)""}}, EPERM, PROOF_NONE},
      {{"finit_module", ABI_NATIVE, SYS_finit_module, {-1, (long)"", 0}}, EPERM, PROOF_NONE},
      {{"delete_module", ABI_NATIVE, SYS_delete_module, {(long)"hoist_no_such_module", 0}},
       EPERM,
       PROOF_NONE},
      /* an unknown arch in the flags and too many segments: never a load or unload */
      {{"kexec_load", ABI_NATIVE, SYS_kexec_load, {0, 1000, 0, 0x7fff0000}}, EPERM, PROOF_NONE},
      {{"open_by_handle_at", ABI_NATIVE, SYS_open_by_handle_at, {-1, 0, 0}}, EPERM, PROOF_ROOT},
      {{"userfaultfd", ABI_NATIVE, SYS_userfaultfd, {-1}}, EPERM, PROOF_ALWAYS},
      /* no magic numbers: EINVAL for root, never a reboot */
      {{"reboot", ABI_NATIVE, SYS_reboot, {0, 0, 0, 0}}, EPERM, PROOF_ROOT},
      {{"swapon", ABI_NATIVE, SYS_swapon, {(long)nowhere, 0}}, EPERM, PROOF_ROOT},
      {{"swapoff", ABI_NATIVE, SYS_swapoff, {(long)nowhere}}, EPERM, PROOF_ROOT},
      {{"acct", ABI_NATIVE, SYS_acct, {(long)nowhere}}, EPERM, PROOF_ROOT},
      {{"settimeofday", ABI_NATIVE, SYS_settimeofday, {1, 0}}, EPERM, PROOF_ALWAYS},
      /* the monotonic clock cannot be set: EINVAL */
      {{"clock_settime", ABI_NATIVE, SYS_clock_settime, {CLOCK_MONOTONIC, (long)&ts}},
       EPERM,
       PROOF_ALWAYS},
#ifdef SYS_iopl
      {{"iopl", ABI_NATIVE, SYS_iopl, {4}}, EPERM, PROOF_ALWAYS},
      {{"ioperm", ABI_NATIVE, SYS_ioperm, {0, 0x100000, 1}}, EPERM, PROOF_ALWAYS},
#endif
      {{"mount", ABI_NATIVE, SYS_mount, {(long)"none", (long)nowhere, (long)"hoist-nofs", 0, 0}},
       EPERM,
       PROOF_ALWAYS},
      {{"umount2", ABI_NATIVE, SYS_umount2, {(long)nowhere, 0x7fff0000}}, EPERM, PROOF_ALWAYS},
      {{"pivot_root", ABI_NATIVE, SYS_pivot_root, {(long)nowhere, (long)nowhere}},
       EPERM,
       PROOF_ROOT},
      {{"setns", ABI_NATIVE, SYS_setns, {-1, 0}}, EPERM, PROOF_ALWAYS},
      {{"unshare(CLONE_NEWUSER)", ABI_NATIVE, SYS_unshare, {CLONE_NEWUSER}}, EPERM, PROOF_ROOT},
      {{"unshare(CLONE_NEWUSER|CLONE_NEWNS)",
        ABI_NATIVE,
        SYS_unshare,
        {CLONE_NEWUSER | CLONE_NEWNS}},
       EPERM,
       PROOF_ROOT},
      {{"clone(CLONE_NEWUSER)", ABI_NATIVE, SYS_clone, {CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0}},
       EPERM,
       PROOF_ROOT},
      {{"clone(CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWPID)",
        ABI_NATIVE,
        SYS_clone,
        {CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0}},
       EPERM,
       PROOF_ROOT},
      /* clone3 fails as on a kernel without it, so libc falls back to clone */
      {{"clone3", ABI_NATIVE, SYS_clone3, {(long)&ca, sizeof ca}}, ENOSYS, PROOF_ALWAYS},
      {{"ptrace", ABI_NATIVE, SYS_ptrace, {PTRACE_CONT, 0, 0, 0}}, EPERM, PROOF_ALWAYS},
      {{"process_vm_readv", ABI_NATIVE, SYS_process_vm_readv, {0, 0, 0, 0, 0, 1}},
       EPERM,
       PROOF_ALWAYS},
      {{"io_uring_setup", ABI_NATIVE, SYS_io_uring_setup, {0, 0}}, EPERM, PROOF_NONE},
      {{"fsopen", ABI_NATIVE, SYS_fsopen, {(long)"hoist-nofs", 0}}, EPERM, PROOF_ROOT},
      {{"open_tree", ABI_NATIVE, SYS_open_tree, {-1, (long)"", 0x40000000}}, EPERM, PROOF_ALWAYS},
      {{"move_mount", ABI_NATIVE, SYS_move_mount, {-1, (long)"", -1, (long)"", 0x40000000}},
       EPERM,
       PROOF_ROOT},
      {{"mount_setattr", ABI_NATIVE, SYS_mount_setattr, {-1, (long)"", 0x40000000, 0, 0}},
       EPERM,
       PROOF_ALWAYS},
      /* a name longer than any host's: EINVAL for root, never a new name */
      {{"sethostname", ABI_NATIVE, SYS_sethostname, {(long)"x", 1000}}, EPERM, PROOF_ROOT},
      {{"syslog(SIZE_BUFFER)", ABI_NATIVE, SYS_syslog, {10, 0, 0}}, EPERM, PROOF_ROOT},
      /* on a pipe, not a terminal: ENOTTY */
      {{"ioctl(TIOCSTI)", ABI_NATIVE, SYS_ioctl, {ARG_PIPE, TIOCSTI, (long)"x"}},
       EPERM,
       PROOF_ALWAYS},
      /* the kernel reads the request as an int: high bits must not hide it */
      {{"ioctl((1<<32)|TIOCSTI)",
        ABI_NATIVE,
        SYS_ioctl,
        {ARG_PIPE, (1L << 32) | TIOCSTI, (long)"x"}},
       EPERM,
       PROOF_ALWAYS},
      {{"ioctl(TIOCLINUX)", ABI_NATIVE, SYS_ioctl, {ARG_PIPE, TIOCLINUX, (long)"x"}},
       EPERM,
       PROOF_ALWAYS},
  };
  check_denied(cases, sizeof cases / sizeof cases[0]);
}

static void test_allowed_native(void **state) {
  (void)state;
  static int avail;
  const allowed_case cases[] = {
      {{"getpid", ABI_NATIVE, SYS_getpid, {0}}, true},
      {{"unshare(0)", ABI_NATIVE, SYS_unshare, {0}}, true},
      {{"unshare(CLONE_FILES)", ABI_NATIVE, SYS_unshare, {CLONE_FILES}}, true},
      {{"clone(SIGCHLD)", ABI_NATIVE, SYS_clone, {SIGCHLD, 0, 0, 0, 0}}, true},
      {{"openat", ABI_NATIVE, SYS_openat, {AT_FDCWD, (long)"/dev/null", O_RDONLY | O_CLOEXEC}},
       true},
      {{"ioctl(FIONREAD)", ABI_NATIVE, SYS_ioctl, {ARG_PIPE, FIONREAD, (long)&avail}}, true},
      {{"personality(query)", ABI_NATIVE, SYS_personality, {0xffffffff}}, true},
      /* allowed by the filter; the path does not exist: ENOENT for anyone */
      {{"chroot", ABI_NATIVE, SYS_chroot, {(long)"/nonexistent/hoist-seccomp-test"}}, false},
  };
  check_allowed(cases, sizeof cases / sizeof cases[0]);
}

/* ------------------------------------------------------- the 32-bit ABIs */

#if defined(__x86_64__)
/* Whether the kernel runs i386 syscalls (IA32 emulation built and enabled). */
static bool have_i386(void) {
  sys_call getpid32 = {"i386 getpid", ABI_I386, 20, {0}};
  outcome u = run(NULL, &getpid32);
  if (u.signal || u.ret <= 0) {
    print_message("# no i386 syscalls on this kernel: their live checks not run\n");
    return false;
  }
  return true;
}

/* x32: seccomp sees these calls whether or not the kernel has that table
 * (without it they fail with ENOSYS, the filter's verdict comes first). */
static void test_x32_abi(void **state) {
  (void)state;
  const denied_case denied[] = {
      {{"x32 keyctl", ABI_X32, 250, {KEYCTL_GET_KEYRING_ID, 0x7ffffff0, 0}}, EPERM, PROOF_ALWAYS},
      {{"x32 mount", ABI_X32, 165, {0, 0, 0, 0, 0}}, EPERM, PROOF_ALWAYS},
      {{"x32 ioctl(TIOCSTI)", ABI_X32, 514, {ARG_PIPE, TIOCSTI, 0}}, EPERM, PROOF_ALWAYS},
  };
  check_denied(denied, sizeof denied / sizeof denied[0]);
  const allowed_case allowed[] = {
      {{"x32 getpid", ABI_X32, 39, {0}}, false},
  };
  check_allowed(allowed, sizeof allowed / sizeof allowed[0]);
}

/* i386 through int $0x80, when the kernel runs 32-bit code at all (not
 * skip(): this cmocka reports a skip as "not ok"; test_verdicts_per_abi
 * covers the i386 verdicts either way). */
static void test_i386_abi(void **state) {
  (void)state;
  if (!have_i386())
    return;
  const denied_case denied[] = {
      {{"i386 keyctl", ABI_I386, 288, {KEYCTL_GET_KEYRING_ID, 0x7ffffff0, 0}}, EPERM, PROOF_ALWAYS},
      {{"i386 mount", ABI_I386, 21, {0, 0, 0, 0, 0}}, EPERM, PROOF_ALWAYS},
      {{"i386 unshare(CLONE_NEWUSER)", ABI_I386, 310, {CLONE_NEWUSER}}, EPERM, PROOF_ROOT},
      {{"i386 clone(CLONE_NEWUSER)", ABI_I386, 120, {CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0}},
       EPERM,
       PROOF_ROOT},
      {{"i386 bpf", ABI_I386, 357, {9999, 0, 0}}, EPERM, PROOF_ROOT},
      {{"i386 clone3", ABI_I386, 435, {0, 0}}, ENOSYS, PROOF_ALWAYS},
      {{"i386 ioctl(TIOCSTI)", ABI_I386, 54, {ARG_PIPE, TIOCSTI, 0}}, EPERM, PROOF_ALWAYS},
  };
  check_denied(denied, sizeof denied / sizeof denied[0]);
  const allowed_case allowed[] = {
      {{"i386 getpid", ABI_I386, 20, {0}}, true},
      {{"i386 unshare(CLONE_FILES)", ABI_I386, 310, {CLONE_FILES}}, true},
      {{"i386 clone(SIGCHLD)", ABI_I386, 120, {SIGCHLD, 0, 0, 0, 0}}, true},
  };
  check_allowed(allowed, sizeof allowed / sizeof allowed[0]);
}
#endif

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_build_exports_bpf),
    cmocka_unit_test(test_load_refusals),
    cmocka_unit_test(test_verdicts_per_abi),
    cmocka_unit_test(test_denied_native),
    cmocka_unit_test(test_allowed_native),
#if defined(__x86_64__)
    cmocka_unit_test(test_x32_abi),
    cmocka_unit_test(test_i386_abi),
#endif
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
