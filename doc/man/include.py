#!/usr/bin/env python3
"""Expands a man page's `; include NAME` lines (an scdoc comment, so the
source stays valid scdoc) with doc/man/include/NAME, itself expanded: the
options several verbs share (registry, TLS, sandbox, config, service client)
are written once. Prints the expanded page for scdoc.

Usage: include.py PAGE.scd
"""
import os
import sys

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "include")


def expand(path, depth=0):
    if depth > 4:
        sys.exit(f"{path}: includes nested too deep")
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.startswith("; include "):
                name = line[len("; include ") :].strip()
                inc = os.path.join(HERE, name)
                if "/" in name or not os.path.isfile(inc):
                    sys.exit(f"{path}:{n}: no include/{name}")
                out.append(expand(inc, depth + 1))
            else:
                out.append(line)
    return "".join(out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: include.py PAGE.scd")
    sys.stdout.write(expand(sys.argv[1]))
