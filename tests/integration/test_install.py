"""`make install` (meson install): the build installed into a staging root (DESTDIR, as `make
install DESTDIR=...` does) holds a hoist that runs, every public header, libhoist.a and a
hoist.pc naming the prefix, and the example configs. The C example
(examples/libhoist/hoist-where.c) is compiled against the installed headers and library only
(pkg-config with PKG_CONFIG_SYSROOT_DIR and PKG_CONFIG_PATH into the staging root, the source
nowhere on the compiler's paths) and run: it prints a reference's parts as hoist normalizes
them, and lists the tags and digests of a layout hoist made, as index.json has them."""
import filecmp
import json
import os
import shutil

from hoisttest import SOURCE_ROOT, hoist, main, run, test, tmpdir

BUILD_ROOT = os.environ.get("HOIST_BUILD_ROOT", os.path.join(SOURCE_ROOT, "build"))
EXAMPLE = os.path.join(SOURCE_ROOT, "examples", "libhoist", "hoist-where.c")
_state = {}


def option(name):
    opts = json.loads(run("meson", "introspect", "--buildoptions", BUILD_ROOT).stdout)
    return next(o["value"] for o in opts if o["name"] == name)


def installed():
    """(staging root, prefix, libdir) of the build installed once per run."""
    if "root" not in _state:
        root = tmpdir("hoist-install-")
        run("meson", "install", "-C", BUILD_ROOT, "--no-rebuild", "--destdir", root)
        prefix, libdir = option("prefix"), option("libdir")
        _state["root"] = (root, prefix, os.path.join(prefix, libdir))
    return _state["root"]


def staged(path):
    root, _, _ = installed()
    return os.path.join(root, path.lstrip("/"))


def pkg_config(*args):
    root, _, libdir = installed()
    env = {"PKG_CONFIG_SYSROOT_DIR": root,
           "PKG_CONFIG_PATH": staged(os.path.join(libdir, "pkgconfig"))}
    return run("pkg-config", *args, env=env).stdout.split()


def example():
    """hoist-where built from a copy of its source against the staged install."""
    if "example" not in _state:
        d = tmpdir("hoist-example-")
        src = shutil.copy(EXAMPLE, d)
        exe = os.path.join(d, "hoist-where")
        run("cc", "-std=gnu17", "-Wall", "-Wextra", "-Werror", src, *pkg_config("--cflags", "hoist"),
            "-o", exe, *pkg_config("--libs", "hoist"), cwd=d)
        _state["example"] = exe
    return _state["example"]


@test
def test_installed_hoist_runs_and_prints_the_build_version():
    _, prefix, _ = installed()
    exe = staged(os.path.join(prefix, "bin", "hoist"))
    assert os.access(exe, os.X_OK), exe
    out = run(exe, "--version").stdout
    assert out == hoist("--version").stdout, out
    assert "0.1.0" in out, out


@test
def test_every_public_header_is_installed_under_include_hoist():
    _, prefix, _ = installed()
    src = os.path.join(SOURCE_ROOT, "include", "hoist")
    dst = staged(os.path.join(prefix, "include", "hoist"))
    names = sorted(os.listdir(src))
    assert "ref.h" in names and "store.h" in names, names
    assert sorted(os.listdir(dst)) == names, os.listdir(dst)
    _, mismatch, errors = filecmp.cmpfiles(src, dst, names, shallow=False)
    assert not mismatch and not errors, (mismatch, errors)


@test
def test_library_and_pkg_config_file():
    _, prefix, libdir = installed()
    lib = staged(os.path.join(libdir, "libhoist.a"))
    members = run("ar", "t", lib).stdout.split()
    assert any(m.endswith("ref.c.o") for m in members), members
    symbols = run("nm", "--defined-only", lib).stdout
    for sym in ("hoist_ref_parse", "hoist_loc_parse", "hoist_store_open", "hoist_store_index"):
        assert f" T {sym}\n" in symbols, sym
    with open(staged(os.path.join(libdir, "pkgconfig", "hoist.pc"))) as f:
        pc = f.read()
    assert f"prefix={prefix}\n" in pc, pc
    assert "Version: 0.1.0\n" in pc, pc
    root, _, _ = installed()
    cflags, libs = pkg_config("--cflags", "hoist"), pkg_config("--libs", "hoist")
    assert f"-I{root}{prefix}/include" in cflags, cflags
    assert f"-L{root}{libdir}" in libs and "-lhoist" in libs, libs
    # the libraries libhoist uses come with it, for a program linking the static library
    for lib in ("-ljansson", "-lcurl", "-larchive", "-lcrypto", "-lseccomp"):
        assert lib in libs, (lib, libs)


@test
def test_example_configs_are_installed():
    _, prefix, _ = installed()
    docs = staged(os.path.join(prefix, "share", "doc", "hoist", "examples"))
    for src, dst in (("examples/openshell/hoist-deploy.toml", "openshell/hoist-deploy.toml"),
                     ("deploy/kubernetes/configmap.yaml", "kubernetes/configmap.yaml"),
                     ("deploy/kubernetes/kustomization.yaml", "kubernetes/kustomization.yaml"),
                     ("deploy/openserverless/deployment.yaml",
                      "openserverless/deployment.yaml")):
        assert filecmp.cmp(os.path.join(SOURCE_ROOT, src), os.path.join(docs, dst),
                           shallow=False), dst


@test
def test_example_built_against_the_install_prints_a_reference():
    exe = example()
    # linked from the staging root: the source tree is on none of its paths
    assert SOURCE_ROOT not in " ".join(pkg_config("--cflags", "--libs", "hoist"))
    out = run(exe, "busybox", "localhost:5000/team/app:1").stdout
    assert out == (
        "reference docker.io/library/busybox:latest\n"
        "  domain docker.io\n"
        "  repository docker.io/library/busybox\n"
        "  tag latest\n"
        "  digest -\n"
        "reference localhost:5000/team/app:1\n"
        "  domain localhost:5000\n"
        "  repository localhost:5000/team/app\n"
        "  tag 1\n"
        "  digest -\n"), out
    p = run(exe, "Not/Lower", check=False)
    assert p.returncode == 1 and "must be lowercase" in p.stderr, p


@test
def test_example_lists_the_tags_of_a_layout_hoist_made():
    exe = example()
    d = tmpdir()
    tree = os.path.join(d, "tree")
    os.makedirs(os.path.join(tree, "srv"))
    with open(os.path.join(tree, "srv", "hello.txt"), "w") as f:
        f.write("hello\n")
    layout = os.path.join(d, "layout")
    hoist("append", "scratch", "--target", f"oci:{layout}:base", "--layer", tree)
    hoist("append", f"oci:{layout}:base", "--target", f"oci:{layout}:app", "--layer", tree)
    with open(os.path.join(layout, "index.json")) as f:
        entries = {m["annotations"]["org.opencontainers.image.ref.name"]: m
                   for m in json.load(f)["manifests"]}
    assert sorted(entries) == ["app", "base"], entries

    def line(tag):
        m = entries[tag]
        return f"  {tag} {m['digest']} {m['size']} {m['mediaType']}\n"

    out = run(exe, f"oci:{layout}").stdout.splitlines(keepends=True)
    assert out[0] == f"layout {layout}\n", out
    assert sorted(out[1:]) == sorted([line("app"), line("base")]), out
    assert run(exe, f"oci:{layout}:app").stdout == f"layout {layout}\n" + line("app")
    p = run(exe, f"oci:{layout}:nosuch", check=False)
    assert p.returncode == 1 and "no image tagged nosuch" in p.stderr, p
    p = run(exe, f"oci:{d}/missing", check=False)
    assert p.returncode == 1 and f"{d}/missing" in p.stderr, p


if __name__ == "__main__":
    main()
