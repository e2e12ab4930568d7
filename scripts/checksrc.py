#!/usr/bin/env python3
"""The library's house rules, checked line by line (in the spirit of curl's
checksrc). In src/lib, a line may not:

  getenv       read the environment (the CLI reads it and fills options)
  stdout       print to stdout (printf, puts, putchar, fprintf/fputs to stdout)
  exit         end the process (exit; _exit in a child before exec is fine)
  signal       change a signal's disposition (process-wide state)
  srand        seed the C library's random numbers (process-wide state)
  fork         call glibc's fork() (the sandbox's children use a raw clone)
  dup          dup() a descriptor without close-on-exec (F_DUPFD_CLOEXEC)
  cloexec      open()/openat()/socket()/pipe() without close-on-exec

unless the line (or the line above) carries `checksrc-allow: RULE reason`.
Prints each violation as FILE:LINE: RULE: what to do; exits 1 when there is
any, 0 otherwise, with a one-line summary. `--self-test` checks the rules
themselves on a made-up file: each rule must catch its line and pass its
annotated, commented and quoted twins.
"""
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

RULES = [
    ("getenv", re.compile(r"\b(secure_)?getenv\s*\("),
     "the library does not read the environment: take it as an option, the CLI reads it"),
    ("stdout", re.compile(r"(?<![\w.>])(printf|puts|putchar)\s*\(|\bf(printf|puts|write)\s*\(\s*stdout\b"
                          r"|\bfputs\s*\([^;]*,\s*stdout\s*\)"),
     "the library does not print: return the result, log with hoist_log"),
    ("exit", re.compile(r"(?<![\w.>])exit\s*\("),
     "the library does not end the process: return an error"),
    ("signal", re.compile(r"(?<![\w.>])signal\s*\("),
     "the library does not change signal dispositions (process-wide)"),
    ("srand", re.compile(r"\bsrand(om)?\s*\("),
     "the library does not seed libc's random numbers (process-wide)"),
    ("fork", re.compile(r"(?<![\w.>])fork\s*\("),
     "no glibc fork() in the library: posix_spawn, or a raw clone in the sandbox"),
    ("dup", re.compile(r"(?<![\w.>])dup\s*\("),
     "dup() leaks into children: fcntl(fd, F_DUPFD_CLOEXEC, 0)"),
]
OPENERS = re.compile(r"(?<![\w.>])(open|openat|socket|pipe|accept|memfd_create|epoll_create1"
                     r"|inotify_init1|eventfd)\s*\(")
CLOEXEC = re.compile(r"O_CLOEXEC|SOCK_CLOEXEC|MFD_CLOEXEC|EPOLL_CLOEXEC|IN_CLOEXEC|EFD_CLOEXEC")


def strip(line, in_comment):
    """The line without comments and string literals; whether a block comment
    is still open at its end."""
    out, i = [], 0
    while i < len(line):
        if in_comment:
            j = line.find("*/", i)
            if j < 0:
                return "".join(out), True
            i, in_comment = j + 2, False
        elif line.startswith("/*", i):
            in_comment, i = True, i + 2
        elif line.startswith("//", i):
            break
        elif line[i] == '"':
            j = i + 1
            while j < len(line) and line[j] != '"':
                j += 2 if line[j] == "\\" else 1
            out.append('""')
            i = j + 1
        elif line[i] == "'":
            j = i + 1
            while j < len(line) and line[j] != "'":
                j += 2 if line[j] == "\\" else 1
            out.append("''")
            i = j + 1
        else:
            out.append(line[i])
            i += 1
    return "".join(out), in_comment


def call_args(code, start):
    """The text of the call whose name ends at start, to its closing paren
    (possibly over several lines of code)."""
    depth, i = 0, start
    while i < len(code):
        if code[i] == "(":
            depth += 1
        elif code[i] == ")":
            depth -= 1
            if depth == 0:
                return code[start:i + 1]
        i += 1
    return code[start:]


def allowed(lines, n, rule):
    for k in (n, n - 1):
        if 0 <= k < len(lines) and re.search(r"checksrc-allow:\s*" + rule + r"\b", lines[k]):
            return True
    return False


def check(path):
    raw = open(path, encoding="utf-8", errors="replace").read().split("\n")
    code_lines, in_comment = [], False
    for line in raw:
        code, in_comment = strip(line, in_comment)
        code_lines.append(code)
    found = []
    for n, code in enumerate(code_lines):
        if code.lstrip().startswith("#"):
            continue
        for rule, pattern, advice in RULES:
            if pattern.search(code) and not allowed(raw, n, rule):
                found.append((n + 1, rule, advice))
        for m in OPENERS.finditer(code):
            if allowed(raw, n, "cloexec"):
                continue
            args = call_args("\n".join(code_lines[n:n + 6]), m.end() - 1)
            if m.group(1) == "pipe" or not CLOEXEC.search(args):
                found.append((n + 1, "cloexec", f"{m.group(1)}() without close-on-exec: a "
                              f"child would inherit the descriptor"))
    return found


SELF_TEST = r"""
int bad(void) {
  const char *h = getenv("HOME");                /* want getenv */
  printf("%s\n", h);                             /* want stdout */
  fprintf(stdout, "x");                          /* want stdout */
  exit(1);                                       /* want exit */
  signal(SIGPIPE, SIG_IGN);                      /* want signal */
  srand(1);                                      /* want srand */
  pid_t p = fork();                              /* want fork */
  int d = dup(0);                                /* want dup */
  int fd = open("/x", O_RDONLY);                 /* want cloexec */
  int fd2 = openat(AT_FDCWD, "/x",
                   O_RDONLY);                    /* want cloexec */
  int pp[2]; pipe(pp);                           /* want cloexec */
  return 0;
}
int good(void) {
  fprintf(stderr, "%s", secure_getenv_name);     /* a name, not a call */
  _exit(0);
  hoist_buf_appendf(&b, NULL, "printf(%d)", 1);  /* in a string */
  /* getenv("HOME") and fork() in a comment */
  int fd = open("/x", O_RDONLY | O_CLOEXEC);
  int fd2 = openat(AT_FDCWD, "/x",
                   O_RDONLY | O_CLOEXEC);
  int d = fcntl(0, F_DUPFD_CLOEXEC, 0);
  int pp[2]; pipe2(pp, O_CLOEXEC);
  /* checksrc-allow: fork the reason */
  pid_t p = fork();
  signal(SIGCHLD, SIG_DFL); /* checksrc-allow: signal the reason */
  return 0;
}
"""


def self_test():
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".c", delete=False) as t:
        t.write(SELF_TEST)
    try:
        found = check(t.name)
    finally:
        os.unlink(t.name)
    lines = SELF_TEST.split("\n")
    want = set()
    for n, line in enumerate(lines):
        m = re.search(r"want (\w+)", line)
        if m:
            # a multi-line call is reported at its first line
            first = n if "(" in line.split("/*")[0] else n - 1
            want.add((first + 1, m.group(1)))
    got = {(line, rule) for line, rule, _ in found}
    if got != want:
        print(f"checksrc self-test failed: missed {sorted(want - got)}, "
              f"wrongly flagged {sorted(got - want)}")
        return 1
    print(f"checksrc self-test: {len(want)} violations caught, no false alarm")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    lib = os.path.join(ROOT, "src", "lib")
    total, files = 0, 0
    for dirpath, _, names in sorted(os.walk(lib)):
        for name in sorted(names):
            if not name.endswith((".c", ".h")):
                continue
            files += 1
            path = os.path.join(dirpath, name)
            for line, rule, advice in check(path):
                print(f"{os.path.relpath(path, ROOT)}:{line}: {rule}: {advice}")
                total += 1
    if total:
        print(f"checksrc: {total} violations in src/lib ({files} files)")
        return 1
    print(f"checksrc: clean ({files} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
