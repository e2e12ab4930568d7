#!/usr/bin/env python3
"""The shell completion scripts (BUILD/completions/hoist for bash, _hoist for
zsh, their tables made from `hoist --help` at build time) in real shells.

bash: the script is sourced after bash-completion's framework
(/usr/share/bash-completion/bash_completion) in `bash --norc`, without a word
on stderr; each completion sets COMP_WORDS, COMP_CWORD, COMP_LINE and
COMP_POINT as readline would (':' and '=' are word breaks) and calls _hoist,
then prints COMPREPLY.

zsh: `zsh -f -i` on a pseudo-terminal, compinit with the build's completions
first on fpath; TAB is bound to a widget that runs complete-word between two
markers, and compadd is wrapped to write the matches it adds to a file, so
the matches are read from the file, not from the screen.

For both: `hoist <TAB>` gives the verbs, `hoist push --<TAB>` push's options
(as its --help prints them), `hoist bundle <TAB>` the bundle commands,
`hoist ls oci:<dir>/<TAB>` a layout directory (and a plain directory to go
into), `hoist ls oci:LAYOUT:<TAB>` the layout's tags, and the argument of
`--tls-verify` its two words. The layout is made with hoist itself.
"""
import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios

from hoisttest import HOIST, SOURCE_ROOT, Skip, hoist, main, test, tmpdir, wait_for

sys.path.insert(0, os.path.join(SOURCE_ROOT, "scripts"))
import hoist_help  # noqa: E402

BUILD = os.environ.get("HOIST_BUILD_ROOT", os.path.join(SOURCE_ROOT, "build"))
BASH_SCRIPT = os.path.join(BUILD, "completions", "hoist")
ZSH_DIR = os.path.join(BUILD, "completions")
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"

_fixture = {}


def fixture():
    """A directory holding layouts/app (an OCI layout tagged v1 and latest)
    and layouts/plain (a directory that is not a layout)."""
    if not _fixture:
        d = tmpdir("hoist-compl-")
        tree = os.path.join(d, "tree")
        os.makedirs(os.path.join(tree, "etc"))
        with open(os.path.join(tree, "etc", "motd"), "w") as f:
            f.write("hi\n")
        os.makedirs(os.path.join(d, "layouts", "plain"))
        app = os.path.join(d, "layouts", "app")
        hoist("append", "scratch", "--target", f"oci:{app}:v1", "--layer", tree)
        hoist("tag", f"oci:{app}:v1", f"oci:{app}:latest")
        _fixture["dir"] = d
    return _fixture["dir"]


def push_options():
    return set(hoist_help.options(hoist_help.help_text(HOIST, ("push",))))


# ------------------------------------------------------------------- bash

BREAKS = ":="


def comp_words(line):
    """COMP_WORDS and COMP_CWORD as readline makes them for a cursor at the
    end of line: words split at blanks, and at ':' and '=', which are words
    of their own."""
    words = []
    for tok in line.split():
        words += [w for w in re.split(r"([%s]+)" % re.escape(BREAKS), tok) if w]
    if line.endswith((" ", "\t")):
        words.append("")
    return words, len(words) - 1


def _bash_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def bash_complete(lines, cwd):
    """{line: [matches]} for each line, in one bash."""
    script = [f"source {BASH_COMPLETION}", f"source {_bash_quote(BASH_SCRIPT)}"]
    for i, line in enumerate(lines):
        full = f"{HOIST} {line}"
        words, cword = comp_words(full)
        script += [
            "COMP_WORDS=(" + " ".join(_bash_quote(w) for w in words) + ")",
            f"COMP_CWORD={cword}",
            f"COMP_LINE={_bash_quote(full)}",
            f"COMP_POINT={len(full)}",
            "COMPREPLY=()",
            "_hoist",
            f"printf '%s\\n' '<<{i}>>' \"${{COMPREPLY[@]}}\"",
        ]
    p = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", "\n".join(script)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )
    assert p.returncode == 0 and not p.stderr, f"bash: exit {p.returncode}: {p.stderr}"
    out, cur = {}, None
    for l in p.stdout.splitlines():
        m = re.fullmatch(r"<<(\d+)>>", l)
        if m:
            cur = lines[int(m.group(1))]
            out[cur] = []
        elif cur is not None and l:
            out[cur].append(l)
    return out


@test
def bash_loads_the_script_without_errors():
    assert os.path.exists(BASH_SCRIPT), f"{BASH_SCRIPT} not built"
    if not os.path.exists(BASH_COMPLETION):
        raise Skip("bash-completion is not installed")
    p = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c",
         f"source {BASH_COMPLETION} && source {_bash_quote(BASH_SCRIPT)} && complete -p hoist"],
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and not p.stderr, p.stderr
    assert p.stdout.strip() == "complete -F _hoist hoist", p.stdout


def check(results, verbs, pushopts):
    """The expectations both shells meet; results: {line: matches}, matches
    as the shell would put them in place of what the word had."""
    got = set(results["" ])
    assert verbs <= got and "service" in got and "--help" not in got, sorted(got)
    got = set(results["push --"])
    assert got == {o for o in pushopts if o.startswith("--")}, sorted(got ^ pushopts)
    assert "--tls-verify" in got and "--creds" in got and "--to" not in got, sorted(got)
    assert set(results["bundle "]) == {"verify", "stage", "fetch", "apply", "publish"}
    assert set(results["push --tls-verify="]) == {"true", "false"}, results["push --tls-verify="]
    got = results["ls oci:layouts/"]
    assert any(m.rstrip("/").endswith("layouts/app") and not m.endswith("/") for m in got), got
    assert any(m.endswith("layouts/plain/") for m in got), got
    got = set(results["ls oci:layouts/app:"])
    assert {"v1", "latest"} <= {m.rsplit(":", 1)[-1] for m in got}, got
    assert set(results["ls oci:layouts/app:la"]) <= {"latest", "oci:layouts/app:latest",
                                                      "layouts/app:latest"}, results
    assert results["ls oci:layouts/app:la"], results


LINES = ["", "push --", "bundle ", "push --tls-verify=", "ls oci:layouts/", "ls oci:layouts/app:",
         "ls oci:layouts/app:la", "ls o", "layer ", "service token "]


@test
def bash_completes_verbs_options_layouts_and_tags():
    if not os.path.exists(BASH_COMPLETION):
        raise Skip("bash-completion is not installed")
    d = fixture()
    r = bash_complete(LINES, d)
    verbs = set(hoist_help.commands(HOIST)[()].words)
    check(r, verbs, push_options())
    # bash puts a match in place of the word after its last ':' or '='
    assert set(r["ls oci:layouts/app:"]) == {"v1", "latest"}, r["ls oci:layouts/app:"]
    assert r["ls o"] == ["oci:"] or "oci:" in r["ls o"], r["ls o"]
    assert r["layer "] == ["create"] and r["service token "] == ["add"], r


# -------------------------------------------------------------------- zsh

ZSH_SETUP = r"""
PS1='%% '; PROMPT2=''; RPS1=''
unsetopt auto_list auto_menu list_beep beep
bindkey -e
fpath=(%(dir)s $fpath)
autoload -U compinit && compinit -u -D
zstyle ':completion:*' list-prompt ''
compadd() {
  local -a __hits
  if (( ${@[(I)-(O|A|D)]} )); then
    builtin compadd "$@"
    return
  fi
  builtin compadd -A __hits "$@"
  (( $#__hits )) && print -rl -- $__hits >> %(capture)s
  builtin compadd "$@"
}
_hc() {
  print -r -- '<<BEGIN>>' >> %(capture)s
  zle complete-word 2>> %(errors)s
  print -r -- '<<END>>' >> %(capture)s
}
zle -N _hc
bindkey '^I' _hc
print -r -- ready > %(capture)s.ready
"""


class Zsh:
    """zsh -f -i on a pseudo-terminal, in cwd."""

    def __init__(self, cwd):
        self.dir = tmpdir("hoist-zsh-")
        self.capture = os.path.join(self.dir, "capture")
        self.errors = os.path.join(self.dir, "errors")
        open(self.capture, "w").close()
        open(self.errors, "w").close()
        pid, fd = pty.fork()
        if pid == 0:
            os.chdir(cwd)
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 200, 300, 0, 0))
            os.environ.update(TERM="xterm", HOME=self.dir)
            os.execvp("zsh", ["zsh", "-f", "-i"])
        self.pid, self.fd = pid, fd
        setup = ZSH_SETUP % {"dir": ZSH_DIR, "capture": self.capture, "errors": self.errors}
        for line in setup.strip().splitlines():
            self.send(line + "\n")
        wait_for(lambda: os.path.exists(self.capture + ".ready"), timeout=30, what="zsh set up")

    def send(self, s):
        os.write(self.fd, s.encode())
        self.drain()

    def drain(self):
        while select.select([self.fd], [], [], 0)[0]:
            try:
                if not os.read(self.fd, 65536):
                    break
            except OSError:
                break

    def _ends(self):
        self.drain()
        with open(self.capture) as f:
            return f.read().count("<<END>>")

    def complete(self, lines):
        """{line: [matches]}: each line typed after `hoist `, then TAB, then
        the line killed."""
        for line in lines:
            before = self._ends()
            self.send(f"{HOIST} {line}\t")
            wait_for(lambda: self._ends() > before, timeout=30, what=f"zsh completing {line!r}")
            self.send("\x15")
        with open(self.capture) as f:
            blocks = re.findall(r"<<BEGIN>>\n(.*?)<<END>>", f.read(), re.S)
        return {line: [m for m in b.splitlines() if m] for line, b in zip(lines, blocks)}

    def errors_text(self):
        with open(self.errors) as f:
            return f.read()

    def close(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except OSError:
            pass
        os.close(self.fd)


@test
def zsh_loads_the_script_without_errors():
    assert os.path.exists(os.path.join(ZSH_DIR, "_hoist")), "_hoist not built"
    p = subprocess.run(["zsh", "-n", os.path.join(ZSH_DIR, "_hoist")], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and not p.stderr, p.stderr
    home = tmpdir("hoist-zsh-")
    p = subprocess.run(
        ["zsh", "-f", "-c",
         f"fpath=({ZSH_DIR} $fpath); autoload -U compinit && compinit -u -D && "
         "print -r -- $_comps[hoist]"],
        capture_output=True, text=True, timeout=60, env=dict(os.environ, HOME=home))
    assert p.returncode == 0 and not p.stderr, p.stderr
    assert p.stdout.strip() == "_hoist", p.stdout


@test
def zsh_completes_verbs_options_layouts_and_tags():
    d = fixture()
    z = Zsh(d)
    try:
        r = z.complete(LINES)
        errors = z.errors_text()
    finally:
        z.close()
    assert not errors, f"zsh said: {errors}"
    verbs = set(hoist_help.commands(HOIST)[()].words)
    check(r, verbs, push_options())
    assert "oci:" in r["ls o"], r["ls o"]
    assert "create" in r["layer "] and "add" in r["service token "], r


if __name__ == "__main__":
    main()
