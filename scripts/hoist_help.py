#!/usr/bin/env python3
"""hoist's commands and their options, read from what `--help` prints.

The one reader of hoist's help text for what is made from it: the shell
completion scripts (their tables generated at build time from the built
binary, so they cannot drift from it) and the tests that hold the man pages
and the completions to the same help.

The command tree: the verbs of `hoist --help`; below a verb, the words its
help lists under "Commands:" or "Verbs:", and the literal words its usage
lines put after it (`hoist layer create TREE ...` gives layer the word
create). A word is a command of its own when its `--help` differs from its
parent's (`bundle verify`, `service send`); otherwise it is a word its
parent takes as an operand (`layer create`, `service token add`,
`service images list-catalogs`), and the options are the parent's.

An option line of a help is indented by two spaces and starts with '-':
its names (`-o, --output FILE`, `--cert FILE, --key FILE`,
`--src-creds, --dest-creds USER:PASSWORD`, `--tls-verify=true|false`,
`--userns[=private|host|auto]`) run until the first word of the
description. A name followed by a metavariable (or joined to one with '=')
takes an argument.

Usage: hoist_help.py HOIST bash|zsh TEMPLATE
  prints TEMPLATE with its line `# @HOIST_COMMANDS@` replaced by the command
  tables in that shell's syntax (completions/hoist.bash, completions/_hoist).
"""
import re
import subprocess
import sys

_OPTION = re.compile(r"^(--?[A-Za-z0-9][A-Za-z0-9-]*)(\[?=.*)?,?$")
_ENTRY = re.compile(r"^  ([a-z][a-z0-9-]*(?: [a-z][a-z0-9-]*)*)((?: .*)?)$")
_WORD = re.compile(r"^[a-z][a-z0-9-]*$")


class Command:
    """One command: its words after `hoist`, its help text and what it says."""

    def __init__(self, path, text, summary=""):
        self.path = tuple(path)
        self.text = text
        self.summary = summary
        self.options = options(text)  # {name: metavariable or None}
        self.words = {}  # subword -> summary (commands and operand words)

    @property
    def name(self):
        return " ".join(("hoist",) + self.path)


def _is_metavar(tok):
    """An option's argument as the helps write them: FILE, N, USER:PASSWORD,
    oci:DIR[:TAG], linux/ARCH, gzip|zstd|none, true|false."""
    t = tok.rstrip(",")
    if not t or t.startswith("(") or t.startswith("-"):
        return False
    if "|" in t:
        return True
    return bool(re.search(r"[A-Z]{2,}", t)) or bool(re.fullmatch(r"[A-Z]", t))


def option_line(line):
    """The options an option line of a help names, in order, each with its
    metavariable (None: a flag); [] for any other line. A metavariable
    follows its option after one space, or stands before two spaces (the
    description's column), a comma, a parenthesis or the line's end: in
    `--overlay    TREE is an overlayfs upper dir`, TREE begins the
    description."""
    if not line.startswith("  -"):
        return []
    toks = [(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", line)]
    names, pending, prev_end = [], [], 0
    for i, (tok, start, end) in enumerate(toks):
        m = _OPTION.match(tok)
        if m:
            name, eq = m.group(1), m.group(2)
            if eq and eq.startswith("="):  # --tls-verify=true|false
                names.append((name, eq[1:].rstrip(",")))
            elif eq:  # --userns[=...]: an optional argument, given with '='
                names.append((name, None))
            else:
                pending.append(name)
            prev_end = end
            continue
        after = line[end : end + 2]
        ends_term = tok.endswith(",") or after.strip() in ("", "(")
        if pending and _is_metavar(tok) and (start == prev_end + 1 or ends_term):
            names.extend((p, tok.rstrip(",")) for p in pending)
            pending = []
            prev_end = end
            continue
        break
    names.extend((p, None) for p in pending)
    return names


def options(text):
    """{option: metavariable or None} of every option line of a help."""
    out = {}
    for line in text.splitlines():
        for name, arg in option_line(line):
            out.setdefault(name, arg)
    return out


def section(text, title):
    """The entries of a section of a help (its title a line of its own,
    ending with ':'; the entries indented, up to a blank line)."""
    lines, inside = [], False
    for line in text.splitlines():
        if not inside:
            inside = line == title
            continue
        if not line.strip():
            break
        lines.append(line)
    return lines


def _summary(rest):
    """The summary of an entry's text after its words: after two spaces,
    or after its operands (`verify TARBALL   run every check`)."""
    if rest.startswith("  "):
        return rest.strip()
    parts = re.split(r" {2,}", rest.strip(), maxsplit=1)
    return parts[1] if len(parts) == 2 else ""


def _entries(lines, prefix):
    """(word, summary) of `  [PREFIX ]WORD [ARG]  summary` lines."""
    out = []
    for line in lines:
        m = _ENTRY.match(line)
        if not m:
            continue
        words = m.group(1).split()
        if words[: len(prefix)] == list(prefix):
            words = words[len(prefix) :]
        if words:
            out.append((words[0], _summary(m.group(2))))
    return out


def _usage_words(text, path):
    """The literal words the usage lines put right after `hoist PATH`."""
    out = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("Usage:"):
            s = s[len("Usage:") :].strip()
        if not s.startswith("hoist "):
            continue
        toks = s.split()[1:]
        if toks[: len(path)] != list(path) or len(toks) <= len(path):
            continue
        w = toks[len(path)]
        if _WORD.match(w) and w not in out:
            out.append(w)
    return out


def help_text(hoist, path):
    p = subprocess.run([hoist, *path, "--help"], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"{hoist} {' '.join(path)} --help exited {p.returncode}: {p.stderr}")
    return p.stdout


def top_verbs(text):
    """(verb, summary) of `hoist --help`'s verb lists, in order."""
    out, seen = [], set()
    for line in text.splitlines():
        if line == "Options:":
            break
        m = _ENTRY.match(line)
        if m and " " not in m.group(1) and m.group(1) not in seen:
            seen.add(m.group(1))
            out.append((m.group(1), _summary(m.group(2))))
    return out


def commands(hoist):
    """{path: Command} of every command, () for `hoist` itself."""
    top = Command((), help_text(hoist, ()))
    tree = {(): top}
    for verb, summary in top_verbs(top.text):
        top.words[verb] = summary
        _add(hoist, tree, (verb,), summary, top.text)
    return tree


def _add(hoist, tree, path, summary, parent_text):
    text = help_text(hoist, path)
    if text == parent_text:
        return False
    cmd = Command(path, text, summary)
    tree[path] = cmd
    subs = []
    for title in ("Commands:", "Verbs:"):
        subs += _entries(section(text, title), path)
    subs += [(w, "") for w in _usage_words(text, path)]
    for word, sub_summary in subs:
        if word in cmd.words:
            continue
        cmd.words[word] = sub_summary
        if len(path) < 3:
            _add(hoist, tree, path + (word,), sub_summary, text)
    return True


# ------------------------------------------------------------ completion tables

_FILE_ARGS = {"FILE", "PATH", "SRC:DEST", "HOST:CTR[:ro|rw]"}
_DIR_ARGS = {"DIR", "TREE"}
_IMAGE_ARGS = {"REF", "DEST", "oci:DIR[:TAG]"}


def arg_kind(metavar):
    """How a completion completes an option's argument: file, dir, image,
    choice:A|B|C (its words), or none."""
    if metavar is None:
        return None
    if re.fullmatch(r"[a-z0-9]+(\|[a-z0-9]+)+", metavar):
        return "choice:" + metavar
    if metavar in _FILE_ARGS:
        return "file"
    if metavar in _DIR_ARGS:
        return "dir"
    if metavar in _IMAGE_ARGS:
        return "image"
    return "none"


def takes_images(cmd):
    """Whether the command's operands are images (its usage names oci:,
    REF or IMAGE)."""
    usage = "\n".join(l for l in cmd.text.splitlines()[:3] if "hoist" in l)
    return bool(re.search(r"oci:|\bREF\b|\bIMAGE\b|\bBASE\b|\bSRC\b", usage))


def tables(tree):
    """The completion tables, keyed by the command's name ("hoist",
    "hoist bundle verify"): its words, its options, its options' argument
    kinds (OPTION=KIND), whether its operands are images, and the words'
    summaries (keyed by the command's name and the word)."""
    t = {"words": {}, "opts": {}, "args": {}, "images": {}, "desc": {}}
    for cmd in tree.values():
        key = cmd.name
        t["words"][key] = list(cmd.words)
        t["opts"][key] = list(cmd.options)
        t["args"][key] = [f"{o}={arg_kind(a)}" for o, a in cmd.options.items() if a is not None]
        t["images"][key] = "1" if takes_images(cmd) else ""
        for w, s in cmd.words.items():
            t["desc"][key + " " + w] = s
    return t


def _sh_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def render(tree, shell):
    t = tables(tree)
    lines = [f"# Generated from `hoist --help` by scripts/hoist_help.py ({shell})."]
    decl = "declare -gA" if shell == "bash" else "typeset -gA"
    for name in ("words", "opts", "args", "images", "desc"):
        if shell == "bash" and name == "desc":
            continue
        lines.append(f"{decl} _hoist_{name}=(")
        for key, val in sorted(t[name].items()):
            text = val if isinstance(val, str) else " ".join(val)
            if shell == "bash":
                lines.append(f"  [{_sh_quote(key)}]={_sh_quote(text)}")
            else:
                lines.append(f"  {_sh_quote(key)} {_sh_quote(text)}")
        lines.append(")")
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) != 4 or argv[2] not in ("bash", "zsh"):
        sys.stderr.write("usage: hoist_help.py HOIST bash|zsh TEMPLATE\n")
        return 2
    hoist, shell, template = argv[1:]
    tree = commands(hoist)
    with open(template) as f:
        src = f.read()
    marker = "# @HOIST_COMMANDS@\n"
    if marker not in src:
        sys.stderr.write(f"{template}: no line '# @HOIST_COMMANDS@'\n")
        return 1
    sys.stdout.write(src.replace(marker, render(tree, shell), 1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
