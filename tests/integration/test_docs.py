#!/usr/bin/env python3
"""The man pages (doc/man/*.scd, built into BUILD/doc/man) held to hoist itself.

- every page renders with man(1) without a warning (groff's warnings on), and
  no scdoc markup is left in its text;
- the commands are read from `hoist --help` (its verbs, then each verb's
  commands, scripts/hoist_help.py): each has its page, hoist-VERB[-SUB].1,
  no page is left without a command, and a page documents exactly the long
  and short options its command's --help prints: an option missing from
  either side fails, named;
- every hoist page a SEE ALSO names exists, every variable the CLI reads is
  in hoist(1)'s ENVIRONMENT, every key the service's config reader reads is
  in hoist-serve.json(5);
- `meson install` puts the pages in man1 and man5 and the completion scripts
  where bash-completion and zsh look.
"""
import glob
import os
import re
import subprocess
import sys

from hoisttest import HOIST, SOURCE_ROOT, main, run, test, tmpdir

sys.path.insert(0, os.path.join(SOURCE_ROOT, "scripts"))
import hoist_help  # noqa: E402

BUILD = os.environ.get("HOIST_BUILD_ROOT", os.path.join(SOURCE_ROOT, "build"))
MAN_BUILT = os.path.join(BUILD, "doc", "man")
MAN_SRC = os.path.join(SOURCE_ROOT, "doc", "man")

_tree = None


def tree():
    global _tree
    if _tree is None:
        _tree = hoist_help.commands(HOIST)
    return _tree


def page_of(path):
    return "hoist" + "".join("-" + w for w in path) + ".1"


def built_pages():
    return sorted(
        os.path.basename(p)
        for p in glob.glob(os.path.join(MAN_BUILT, "hoist*.[15]"))
        if not p.endswith(".scd")
    )


def roff(page):
    with open(os.path.join(MAN_BUILT, page)) as f:
        return f.read()


def documented_options(text):
    """The options a page documents: those of its term lines (scdoc writes a
    term as a line followed by the `.RS 4` of its description), when the
    term is an option (`\\fB-o\\fR, \\fB--output\\fR \\fIFILE\\fR`)."""
    lines = text.splitlines()
    out = set()
    for line, after in zip(lines, lines[1:]):
        if after == ".RS 4" and line.startswith("\\fB-"):
            out.update(re.findall(r"\\fB(--?[A-Za-z0-9][A-Za-z0-9-]*)", line))
    return out


def rendered(page):
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
    p = subprocess.run(
        ["man", "--warnings", "-l", os.path.join(MAN_BUILT, page)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    return p


@test
def every_page_renders_without_warnings():
    pages = built_pages()
    sources = sorted(os.path.basename(p)[: -len(".scd")] for p in glob.glob(f"{MAN_SRC}/*.scd"))
    assert pages == sources, f"built {pages}, sources {sources} (doc/man/meson.build lists them)"
    bad = []
    for page in pages:
        p = rendered(page)
        if p.returncode != 0 or p.stderr.strip():
            bad.append(f"{page}: exit {p.returncode}: {p.stderr.strip()}")
            continue
        text = p.stdout
        if not text.strip() or f"{page.rsplit('.', 1)[0]}(" not in text.splitlines()[0]:
            bad.append(f"{page}: no header line: {text[:200]!r}")
        for name in ("NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"):
            if not re.search(rf"^{name}$", text, re.M):
                bad.append(f"{page}: no {name} section")
        # markup scdoc did not take (`*--x*` after a letter, `_X_` after '+')
        for m in re.finditer(r"(?<![\w/.$\"'])[*][A-Za-z-]|(?<![\w$])_[A-Za-z]", text):
            line = text[: m.start()].count("\n") + 1
            bad.append(f"{page}:{line}: markup left in the text: {text.splitlines()[line - 1]!r}")
    assert not bad, "\n".join(bad)


@test
def every_command_has_its_page_and_every_page_a_command():
    t = tree()
    expected = {page_of(p) for p in t}
    assert ("layer",) in t and ("bundle", "verify") in t and ("service", "send") in t, sorted(t)
    pages = {p for p in built_pages() if p.endswith(".1")}
    missing = sorted(expected - pages)
    extra = sorted(pages - expected)
    assert not missing and not extra, f"no page for {missing}; pages without a command {extra}"


@test
def options_of_help_and_page_agree():
    problems = []
    checked = 0
    for path, cmd in sorted(tree().items()):
        page = page_of(path)
        if not os.path.exists(os.path.join(MAN_BUILT, page)):
            continue  # the test above names it
        in_help = set(cmd.options)
        in_page = documented_options(roff(page))
        for o in sorted(in_help - in_page):
            problems.append(f"{cmd.name}: {o} is in --help but not in {page}")
        for o in sorted(in_page - in_help):
            problems.append(f"{cmd.name}: {o} is in {page} but not in --help")
        checked += len(in_help)
    assert checked > 300, f"only {checked} options read from the helps"
    assert not problems, "\n".join(problems)


@test
def the_comparison_sees_a_missing_option():
    """The checks above can fail: a page without one of push's options, and
    a help line the parser must read."""
    text = roff("hoist-push.1")
    assert "--tls-verify" in documented_options(text)
    cut = re.sub(r"\\fB--jobs\\fR \\fIN\\fR\n\.RS 4\n", "", text)
    assert cut != text and "--jobs" not in documented_options(cut)
    assert hoist_help.option_line("  --cert FILE, --key FILE   TLS client certificate") == [
        ("--cert", "FILE"),
        ("--key", "FILE"),
    ]
    assert hoist_help.option_line("  --overlay    TREE is an overlayfs upper dir") == [
        ("--overlay", None)
    ]


@test
def see_also_names_existing_pages():
    pages = set(built_pages())
    bad = []
    for page in pages:
        for name, sec in re.findall(r"\\fB(hoist[\w.-]*)\\fR\((\d)\)", roff(page)):
            if f"{name}.{sec}" not in pages:
                bad.append(f"{page}: {name}({sec}) has no page")
    assert not bad, "\n".join(sorted(set(bad)))


def _sources(pattern):
    out = {}
    for path in glob.glob(os.path.join(SOURCE_ROOT, pattern)):
        with open(path) as f:
            out[path] = f.read()
    return out


@test
def every_variable_the_cli_reads_is_in_hoist_1():
    names = set()
    for text in _sources("src/cli/*.c").values():
        names.update(re.findall(r'cli_env\("([A-Z0-9_]+)"\)', text))
    for text in _sources("src/lib/build/kinds.c").values():
        names.update(re.findall(r'\{"[a-z-]+", "(HOIST_[A-Z_]+)"', text))
    assert {"HOIST_LOG", "HOIST_IMAGES", "HOIST_CACHE", "HOIST_PIP_INDEX_URL"} <= names, names
    env = roff("hoist.1").split(".SH ENVIRONMENT", 1)[1].split(".SH ", 1)[0]
    missing = sorted(n for n in names if f"\\fB{n}\\fR" not in env)
    assert not missing, f"read by the CLI, not in hoist(1) ENVIRONMENT: {missing}"


@test
def every_config_key_is_in_hoist_serve_json_5():
    keys = set()
    srcs = _sources("src/lib/server/*.c")
    for path in ("http.c", "limits.c", "admit.c", "exec_kube.c", "openserverless.c"):
        text = srcs[os.path.join(SOURCE_ROOT, "src/lib/server", path)]
        keys.update(re.findall(r'(?:json_object_get|opt_string|_setting)\(o, "([a-z_]+)"', text))
        for arr in re.findall(r"known\[\] = \{([^}]*)\}", text):
            keys.update(re.findall(r'"([a-z_]+)"', arr))
    assert {"registry_host", "build_memory", "executor", "per_user_queue", "pod_security"} <= keys
    page = roff("hoist-serve.json.5")
    missing = sorted(k for k in keys if f"\\fB{k}\\fR" not in page)
    assert not missing, f"read by the service's config, not in hoist-serve.json(5): {missing}"


@test
def meson_install_puts_pages_and_completions_in_place():
    dest = tmpdir("hoist-install-")
    run("meson", "install", "-C", BUILD, "--no-rebuild", "--destdir", dest, "--tags",
        "man,completion", timeout=300)
    found = [os.path.relpath(p, dest) for p in glob.glob(f"{dest}/**", recursive=True)]
    want = [
        "share/man/man1/hoist.1",
        "share/man/man1/hoist-push.1",
        "share/man/man1/hoist-service-send.1",
        "share/man/man5/hoist-deploy.toml.5",
        "share/man/man5/hoist-serve.json.5",
        "share/bash-completion/completions/hoist",
        "share/zsh/site-functions/_hoist",
    ]
    for w in want:
        assert any(f.endswith(w) for f in found), f"{w} not installed: {sorted(found)}"
    assert not any(f.endswith("/hoist") and "/bin/" in f for f in found), "the tags took more"


if __name__ == "__main__":
    main()
