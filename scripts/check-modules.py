#!/usr/bin/env python3
"""The module check of `make test`: libhoist's modules include only what the
README's code map says they may use, and no two modules include each other,
directly or around a cycle.

The code map (README.md, section "Code map") is the one statement of the
rules: a table with a row per module naming its headers (`include/hoist/`)
and the modules it may use. A module may include the headers of the modules
it names and of everything those may use in turn; the map itself must be
free of cycles. Every header and every folder (or file) of `src/lib/` must
belong to a module of the map.

What is read: the `#include "..."` and `#include <hoist/...>` lines of
include/hoist/*.h and of src/lib/ (each folder a module, src/lib/ref.c the
module ref). A module's own private headers are its business; a relative
include that reaches into another module's folder is an edge to it, and
always forbidden.

Prints one line when everything holds; otherwise each forbidden edge and
each cycle, naming the file and the include, and exits 1.

Usage: scripts/check-modules.py [SOURCE_ROOT]
       scripts/check-modules.py --self-test   (a made-up tree with a forbidden
                                              edge and a cycle must fail, naming
                                              both; prints nothing when it does)
"""
import os
import re
import subprocess
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def fail(msg):
    print(f"modules: {msg}", file=sys.stderr)
    sys.exit(1)


def code_map(root):
    """{module: (headers, may_use)} from README.md's code map."""
    text = open(os.path.join(root, "README.md"), encoding="utf-8").read()
    m = re.search(r"^## Code map\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if not m:
        fail("README.md has no '## Code map' section")
    mods = {}
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        name = cells[0].strip("`").split("`")[0].rstrip("/")
        headers = re.findall(r"`([a-z_]+\.h)`", cells[1])
        uses = cells[3]
        if uses in ("", "-", "—", "nothing"):
            may = set()
        elif uses.startswith("every module"):
            may = None  # the top: anything
        else:
            may = set(re.findall(r"`([a-z_]+)`", uses))
        mods[name] = (headers, may)
    if not mods:
        fail("README.md's code map has no rows")
    for name, (_, may) in mods.items():
        for u in may or ():
            if u not in mods:
                fail(f"code map: {name} may use {u}, which is not a module of the map")
    return mods


def allowed(mods):
    """{module: every module it may include}: what it names, transitively."""
    out = {}

    def close(name, path):
        if name in out:
            return out[name]
        if name in path:
            cyc = path[path.index(name):] + [name]
            fail("code map: cycle: " + " -> ".join(cyc))
        may = mods[name][1]
        if may is None:
            out[name] = set(mods) - {name}
            return out[name]
        got = set(may)
        for u in may:
            got |= close(u, path + [name])
        out[name] = got
        return got

    for name in mods:
        close(name, [])
    return out


def sources(root):
    """(path, module) for every header and library source file."""
    inc = os.path.join(root, "include", "hoist")
    for f in sorted(os.listdir(inc)):
        if f.endswith(".h"):
            yield os.path.join(inc, f), ("header", f)
    lib = os.path.join(root, "src", "lib")
    for entry in sorted(os.listdir(lib)):
        p = os.path.join(lib, entry)
        if os.path.isdir(p):
            for dirpath, _, files in os.walk(p):
                for f in sorted(files):
                    if f.endswith((".c", ".h")):
                        yield os.path.join(dirpath, f), ("dir", entry)
        elif entry.endswith((".c", ".h")):
            yield p, ("dir", entry.rsplit(".", 1)[0])


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), ".."))
    mods = code_map(root)
    may = allowed(mods)
    owner = {}
    for name, (headers, _) in mods.items():
        for h in headers:
            if h in owner:
                fail(f"code map: {h} belongs to both {owner[h]} and {name}")
            owner[h] = name
    lib = os.path.join(root, "src", "lib")
    problems = []
    edges = {}  # (from, to) -> first "file: include" seen
    n_includes = 0
    for path, (kind, key) in sources(root):
        rel = os.path.relpath(path, root)
        if kind == "header":
            mod = owner.get(key)
            if not mod:
                problems.append(f"{rel}: no module of the code map owns this header")
                continue
        else:
            mod = key
            if mod not in mods:
                problems.append(f"{rel}: src/lib/{key} is not a module of the code map")
                continue
        for line in open(path, encoding="utf-8", errors="replace"):
            m = INCLUDE.match(line)
            if not m:
                continue
            bracket, name = m.groups()
            if name.startswith("hoist/"):
                target = owner.get(name[len("hoist/"):])
                if not target:
                    problems.append(f"{rel}: #include {name}: no module of the code map owns it")
                    continue
            elif bracket == '"':
                # a private header: the module's own, unless it reaches out
                full = os.path.normpath(os.path.join(os.path.dirname(path), name))
                if not full.startswith(lib + os.sep):
                    continue
                target = os.path.relpath(full, lib).split(os.sep)[0]
                if target.endswith((".c", ".h")):
                    target = target.rsplit(".", 1)[0]
                if target != mod:
                    problems.append(f"{rel}: #include \"{name}\" reaches into {target}'s "
                                    f"private headers")
                    continue
            else:
                continue
            n_includes += 1
            if target == mod:
                continue
            edges.setdefault((mod, target), f"{rel}: #include {name}")
            if target not in may[mod]:
                uses = ", ".join(sorted(may[mod])) or "nothing"
                problems.append(f"{rel}: #include {name}: {mod} may not use {target} "
                                f"({mod} may use: {uses})")
    # cycles among the edges actually present (each reported once)
    graph = {}
    for a, b in edges:
        graph.setdefault(a, []).append(b)
    seen_cycles = set()
    state = {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cyc = stack[stack.index(nxt):]
                k = min(range(len(cyc)), key=lambda i: cyc[i])
                canon = tuple(cyc[k:] + cyc[:k])
                if canon not in seen_cycles:
                    seen_cycles.add(canon)
                    ring = list(canon) + [canon[0]]
                    why = "; ".join(edges[(ring[i], ring[i + 1])] for i in range(len(canon)))
                    problems.append("cycle: " + " -> ".join(ring) + f" ({why})")
            elif not state.get(nxt):
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node, [])
    if problems:
        for p in problems:
            print(f"modules: {p}", file=sys.stderr)
        print(f"modules: {len(problems)} problem(s) in the include graph", file=sys.stderr)
        sys.exit(1)
    used = {a for a, _ in edges} | {b for _, b in edges}
    print(f"modules: {len(mods)} in the code map, {len(edges)} edges between "
          f"{len(used)} of them from {n_includes} includes; every edge allowed, no cycle")


def self_test():
    """The check fails on a tree that breaks the map, naming what breaks it."""
    files = {
        "README.md": "## Code map\n\n| module | headers | owns | may use |\n|---|---|---|---|\n"
                     "| `core` | `core.h` | x | nothing |\n"
                     "| `low` | `low.h` | x | `core` |\n"
                     "| `high` | `high.h` | x | `low` |\n",
        "include/hoist/core.h": "",
        "include/hoist/low.h": '#include "hoist/core.h"\n',
        "include/hoist/high.h": '#include "hoist/low.h"\n',
        "src/lib/core/a.c": '#include "hoist/core.h"\n',
        "src/lib/low/a.c": '#include "hoist/high.h"\n',
        "src/lib/high/a.c": '#include "hoist/high.h"\n#include "../low/private.h"\n',
        "src/lib/low/private.h": "",
    }
    with tempfile.TemporaryDirectory() as root:
        for name, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
            with open(os.path.join(root, name), "w") as f:
                f.write(text)
        r = subprocess.run([sys.executable, __file__, root], capture_output=True, text=True)
    want = ["src/lib/low/a.c: #include hoist/high.h: low may not use high",
            "reaches into low's private headers",
            "cycle: high -> low -> high"]
    missing = [w for w in want if w not in r.stderr]
    if r.returncode != 1 or missing:
        fail(f"self-test: exit {r.returncode}, missing {missing}; output:\n{r.stdout}{r.stderr}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        self_test()
    else:
        main()
