"""The Debian package: `dpkg-buildpackage -us -uc -b` on a copy of the source (the files git
tracks or would track, as they are in the worktree; never in the worktree itself) builds
hoist_<version>_<arch>.deb and libhoist-dev_<version>_<arch>.deb, the version being meson's
project version. lintian finds no error (its warnings are printed as TAP comments). The
packages hold what `make install` installs, split: the binary and the example configs in hoist,
the headers, libhoist.a, hoist.pc and the C example in libhoist-dev, which Depends on the -dev
package of every library hoist.pc requires (found with dpkg -S).

Then the hoist .deb is installed with `dpkg -i` into a throwaway container (`hoist run`) on
Debian bookworm with only the packages its Depends names added (tests/fixtures/deps-image.sh,
cached): dpkg refuses a Depends the image lacks, and hoist fails to start when Depends misses
a library. There /usr/bin/hoist runs --version and the demo's layout steps (append from
scratch, append on a base, ls, inspect, unpack, gc); the layout it writes is read back on the
host by umoci, an independent reader.

The package is built once per run, under $HOIST_CACHE/deb (ccache keeps its objects across
runs): 55 to 80 s here (2 cores shared) when nothing is cached, lintian 10 s, the
container part 10 s once the fixture is cached (making it: about 30 s more); the whole test
100 to 180 s, with the load of the machine.
"""
import fcntl
import json
import os
import re
import shutil

from hoisttest import CACHE, HOIST, SOURCE_ROOT, Skip, hoist, main, run, test, tmpdir

FIXTURES = os.path.join(SOURCE_ROOT, "tests", "fixtures")
_state = {}


def meson_version():
    with open(os.path.join(SOURCE_ROOT, "meson.build")) as f:
        return re.search(r"version\s*:\s*'([^']+)'", f.read()).group(1)


def source_copy(dest):
    """The worktree's files that git tracks or would track (not ignored), copied to dest."""
    p = run("git", "-C", SOURCE_ROOT, "ls-files", "-z", "--cached", "--others",
            "--exclude-standard", check=False)
    if p.returncode != 0:
        raise Skip("the source is not a git checkout (the copy is made from git's file list)")
    for rel in filter(None, p.stdout.split("\0")):
        src = os.path.join(SOURCE_ROOT, rel)
        if not os.path.lexists(src):  # deleted in the worktree
            continue
        dst = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst, follow_symlinks=False)


def built():
    """{"dir", "version", "arch", "hoist", "dev", "changes"}: the package built once per run."""
    if "dir" not in _state:
        missing = [t for t in ("dpkg-buildpackage", "dh", "fakeroot", "lintian")
                   if not shutil.which(t)]
        if missing:
            raise Skip(f"{', '.join(missing)} not installed (make deps installs them)")
        version = meson_version()
        # Built at the same path every run (under the cache, one run at a
        # time): the compiler's arguments, which name the path, are then the
        # same, so ccache serves the objects of the last run. debhelper
        # points HOME elsewhere: ccache is told where its cache is.
        d = os.path.join(CACHE, "deb")
        os.makedirs(d, exist_ok=True)
        lock = open(os.path.join(CACHE, "deb.lock"), "w")
        fcntl.flock(lock, fcntl.LOCK_EX)
        _state["lock"] = lock
        for name in os.listdir(d):
            path = os.path.join(d, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
        src = os.path.join(d, f"hoist-{version}")
        source_copy(src)
        assert not os.path.exists(os.path.join(src, "build")), "a build dir in the copy"
        ccache_dir = os.environ.get("CCACHE_DIR") or run(
            "ccache", "--get-config", "cache_dir", check=False).stdout.strip()
        env = {"DEB_BUILD_OPTIONS": "parallel=2", "CCACHE_NOHASHDIR": "1"}
        if ccache_dir:
            env["CCACHE_DIR"] = ccache_dir
        p = run("dpkg-buildpackage", "-us", "-uc", "-b", cwd=src, check=False, timeout=2400,
                env=env)
        if p.returncode != 0:
            raise AssertionError(f"dpkg-buildpackage exited {p.returncode}\n"
                                 f"{p.stdout[-4000:]}\n{p.stderr[-4000:]}")
        arch = run("dpkg", "--print-architecture").stdout.strip()
        _state.update(dir=d, version=version, arch=arch,
                      hoist=os.path.join(d, f"hoist_{version}_{arch}.deb"),
                      dev=os.path.join(d, f"libhoist-dev_{version}_{arch}.deb"),
                      changes=os.path.join(d, f"hoist_{version}_{arch}.changes"))
    return _state


def field(deb, name):
    return run("dpkg-deb", "-f", deb, name).stdout.strip()


def contents(deb):
    """The paths a .deb installs, without the leading '.'."""
    out = run("dpkg-deb", "-c", deb).stdout
    return {line.split(None, 5)[5].split(" -> ")[0].lstrip(".") for line in out.splitlines()}


def depends_names(deb):
    """The package names of Depends, the first of each alternative, without versions."""
    deps = field(deb, "Depends")
    return [alt.split("|")[0].split("(")[0].strip() for alt in deps.split(",") if alt.strip()]


@test
def test_package_builds_with_the_meson_version():
    b = built()
    for deb in (b["hoist"], b["dev"]):
        assert os.path.isfile(deb), (deb, os.listdir(b["dir"]))
        assert field(deb, "Version") == b["version"], deb
        assert field(deb, "Architecture") == b["arch"], deb
    assert field(b["hoist"], "Package") == "hoist"
    assert field(b["dev"], "Package") == "libhoist-dev"


@test
def test_lintian_finds_no_error():
    b = built()
    p = run("lintian", "--tag-display-limit", "0", b["changes"], check=False, timeout=600)
    lines = (p.stdout + p.stderr).splitlines()
    for line in lines:
        print(f"# lintian: {line}")
    errors = [line for line in lines if line.startswith("E:")]
    assert not errors, errors
    assert p.returncode == 0, (p.returncode, lines)


@test
def test_hoist_package_holds_the_binary_and_the_example_configs():
    b = built()
    files = contents(b["hoist"])
    for path in ("/usr/bin/hoist", "/usr/share/doc/hoist/copyright",
                 "/usr/share/doc/hoist/examples/openshell/hoist-deploy.toml",
                 "/usr/share/doc/hoist/examples/kubernetes/configmap.yaml",
                 "/usr/share/doc/hoist/examples/openserverless/deployment.yaml"):
        assert path in files, (path, sorted(files))
    assert not any(f.startswith("/usr/include") or f.endswith(".a") for f in files), files
    # shlibs: the libraries hoist links, found by dpkg-shlibdeps
    deps = depends_names(b["hoist"])
    for pkg in ("libc6", "libcurl4", "libjansson4", "libarchive13", "libseccomp2"):
        assert pkg in deps, (pkg, deps)


@test
def test_dev_package_holds_library_headers_pc_and_example():
    b = built()
    files = contents(b["dev"])
    multiarch = run("dpkg-architecture", "-qDEB_HOST_MULTIARCH").stdout.strip()
    for path in (f"/usr/lib/{multiarch}/libhoist.a", f"/usr/lib/{multiarch}/pkgconfig/hoist.pc",
                 "/usr/share/doc/libhoist-dev/examples/hoist-where.c"):
        assert path in files, (path, sorted(files))
    for h in os.listdir(os.path.join(SOURCE_ROOT, "include", "hoist")):
        assert f"/usr/include/hoist/{h}" in files, h
    # every library hoist.pc requires comes with the -dev package that has its .pc
    root = tmpdir()
    run("dpkg-deb", "-x", b["dev"], root)
    with open(os.path.join(root, f"usr/lib/{multiarch}/pkgconfig/hoist.pc")) as f:
        pc = f.read()
    assert "prefix=/usr\n" in pc, pc
    requires = re.search(r"^Requires: (.*)$", pc, re.M).group(1)
    modules = [m.split()[0] for m in requires.split(",") if m.strip()]
    assert "jansson" in modules and "libcurl" in modules, modules
    deps = depends_names(b["dev"])
    for m in modules:
        pcdir = run("pkg-config", "--variable=pcfiledir", m).stdout.strip()
        owner = run("dpkg", "-S", os.path.join(pcdir, f"{m}.pc")).stdout.split(":")[0]
        assert owner in deps, (m, owner, deps)


def runtime_image(work):
    """oci:DIR:deps: Debian bookworm plus the packages the hoist .deb Depends on."""
    b = built()
    if os.geteuid() != 0:
        raise Skip("the image needs root (debootstrap, apt-get as root, dpkg -i in it)")
    out = os.path.join(work, "deps")
    run("bash", os.path.join(FIXTURES, "deps-image.sh"), HOIST, out, "deps",
        *depends_names(b["hoist"]),
        timeout=1800)
    return f"oci:{out}:deps"


# The demo's layout steps (scripts/demo.sh) with the installed hoist; dash stands in for
# busybox, which the Debian image lacks.
IN_CONTAINER = r"""
set -e
dpkg -i /debs/hoist.deb >/work/dpkg.log 2>&1 || { cat /work/dpkg.log; exit 3; }
echo "which: $(command -v hoist)"
/usr/bin/hoist --version
cd /tmp
mkdir -p base/bin app/srv
cp /bin/dash base/bin/sh
echo "hello from the package" >app/srv/hello.txt
/usr/bin/hoist append scratch --target oci:/work/layout:base --layer base --created-by base
/usr/bin/hoist append oci:/work/layout:base --target oci:/work/layout:app --layer app \
  --created-by "add app"
echo "== ls"
/usr/bin/hoist ls oci:/work/layout
echo "== inspect"
/usr/bin/hoist inspect oci:/work/layout:app >/work/inspect.txt
/usr/bin/hoist unpack oci:/work/layout:app rootfs
echo "== hello: $(cat rootfs/srv/hello.txt)"
cmp rootfs/bin/sh /bin/dash
/usr/bin/hoist append scratch --target oci:/work/layout:base --layer app --created-by replaced
/usr/bin/hoist gc --min-age 0 oci:/work/layout
"""


@test
def test_installed_package_runs_the_demo_layout_steps_in_debian():
    b = built()
    work = tmpdir("hoist-deb-run-")
    image = runtime_image(work)
    debs = os.path.join(work, "debs")
    os.makedirs(debs)
    shutil.copy(b["hoist"], os.path.join(debs, "hoist.deb"))
    out_dir = os.path.join(work, "out")
    os.makedirs(out_dir)
    # host ids: dpkg and hoist write the bound /work as root, which a subordinate range
    # could not (the directory is the host root's)
    p = hoist("run", "--network", "none", "--userns=host", "-v", f"{debs}:/debs:ro",
              "-v", f"{out_dir}:/work", image, "--", "/bin/sh", "-c", IN_CONTAINER,
              check=False, timeout=600)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    out = p.stdout
    assert "which: /usr/bin/hoist\n" in out, out
    # built from a copy outside git: no commit to name
    assert f"\nhoist {b['version']} (commit unknown)\n" in out, out
    assert "== hello: hello from the package\n" in out, out
    ls = out.split("== ls\n", 1)[1].split("== inspect\n", 1)[0]
    assert re.search(r"^base\s", ls, re.M) and re.search(r"^app\s", ls, re.M), ls
    # what the installed hoist wrote, read by an independent tool on the host
    layout = os.path.join(out_dir, "layout")
    assert sorted(run("umoci", "ls", "--layout", layout).stdout.split()) == ["app", "base"]
    with open(os.path.join(layout, "index.json")) as f:
        app = next(m for m in json.load(f)["manifests"]
                   if m["annotations"]["org.opencontainers.image.ref.name"] == "app")
    with open(os.path.join(out_dir, "inspect.txt")) as f:
        text = f.read()
    assert app["digest"] in text, (app, text)
    # gc removed the old base's blobs: every blob left is reachable from a tag
    blobs = set(os.listdir(os.path.join(layout, "blobs", "sha256")))
    reachable = set()
    with open(os.path.join(layout, "index.json")) as f:
        for m in json.load(f)["manifests"]:
            reachable.add(m["digest"].split(":")[1])
            with open(os.path.join(layout, "blobs", "sha256", m["digest"].split(":")[1])) as mf:
                man = json.load(mf)
            for d in [man["config"], *man["layers"]]:
                reachable.add(d["digest"].split(":")[1])
    assert blobs == reachable, (blobs - reachable, reachable - blobs)


if __name__ == "__main__":
    main()
