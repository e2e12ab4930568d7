#!/usr/bin/env python3
"""Counts TAP results in meson test logs and prints 'N passed, N failed'.

usage: test-summary.py LABEL testlog.json      (one build; exit 1 if any failed)
       test-summary.py --total testlog.json... (all builds; exit 1 if any failed)
"""
import json
import re
import sys

OK = re.compile(r"^ok\s+\d+")
NOT_OK = re.compile(r"^not ok\s+\d+")
SKIP = re.compile(r"#\s*skip", re.I)


def count(path):
    passed = failed = skipped = 0
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except FileNotFoundError:
        return 0, 1, 0, [f"{path}: missing (the tests did not run)"]
    bad = []
    for line in lines:
        if not line.strip():
            continue
        t = json.loads(line)
        out = t.get("stdout") or ""
        p = f = s = 0
        for l in out.splitlines():
            if NOT_OK.match(l):
                f += 1
            elif OK.match(l):
                if SKIP.search(l):
                    s += 1
                else:
                    p += 1
        # a program that crashed or exited badly without reporting a failing
        # test point still counts as one failure
        if t.get("result") not in ("OK", "SKIP", "EXPECTEDFAIL") and f == 0:
            f = 1
        if f:
            bad.append(t.get("name", "?"))
        passed, failed, skipped = passed + p, failed + f, skipped + s
    return passed, failed, skipped, bad


def main(argv):
    if argv[1] == "--total":
        label, paths = "total", argv[2:]
    else:
        label, paths = argv[1], argv[2:]
    P = F = S = 0
    bad = []
    for path in paths:
        p, f, s, b = count(path)
        P, F, S = P + p, F + f, S + s
        bad += b
    if bad:
        print(f"{label}: failing: {', '.join(bad)}")
    print(f"{label}: {P} passed, {F} failed, {S} skipped")
    return 1 if F or P == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
