"""`make image`: hoist's own image, built by hoist (scripts/make-image.sh). The same
SOURCE_DATE_EPOCH gives the same digest twice; the image holds the binary, its libraries,
newuidmap/newgidmap, pasta, the CA bundle and nothing else; `hoist --version` runs in it under
`hoist run` and under podman (run from the layout, `podman run oci:DIR:hoist`, on a store of
the test's own in a temporary directory), and both print what `hoist --version` prints on the
host. Without podman that check is skipped, saying so; podman present but failing fails it.
"""
import gzip
import io
import json
import os
import shutil
import tarfile

from hoisttest import HOIST, SOURCE_ROOT, Skip, hoist, main, run, test, tmpdir

SCRIPT = os.path.join(SOURCE_ROOT, "scripts", "make-image.sh")
EPOCH = "1700000000"
_built = {}


def make(layout):
    env = {"SOURCE_DATE_EPOCH": EPOCH}
    run("bash", SCRIPT, HOIST, f"oci:{layout}:hoist", env=env, timeout=600)
    return layout


def image():
    if "layout" not in _built:
        _built["layout"] = make(os.path.join(tmpdir(), "img"))
    return _built["layout"]


def blob(layout, digest):
    algo, hexd = digest.split(":")
    with open(os.path.join(layout, "blobs", algo, hexd), "rb") as f:
        return f.read()


def manifest_digest(layout):
    with open(os.path.join(layout, "index.json")) as f:
        idx = json.load(f)
    return [m["digest"] for m in idx["manifests"]
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "hoist"][0]


@test
def same_epoch_same_digest():
    first = image()
    second = make(os.path.join(tmpdir(), "img"))
    assert manifest_digest(first) == manifest_digest(second), "two builds differ"


@test
def config_is_linux_amd64_with_hoist_as_entrypoint():
    layout = image()
    man = json.loads(blob(layout, manifest_digest(layout)))
    cfg = json.loads(blob(layout, man["config"]["digest"]))
    assert (cfg["os"], cfg["architecture"]) == ("linux", "amd64"), cfg
    assert cfg["config"]["Entrypoint"] == ["/usr/bin/hoist"], cfg["config"]
    assert cfg["created"] == "2023-11-14T22:13:20Z", cfg["created"]
    assert len(man["layers"]) == 1


@test
def holds_what_hoist_needs_and_nothing_else():
    layout = image()
    man = json.loads(blob(layout, manifest_digest(layout)))
    data = gzip.decompress(blob(layout, man["layers"][0]["digest"]))
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        members = {m.name.lstrip("./"): m for m in t.getmembers()}
    for need in ["usr/bin/hoist", "usr/bin/newuidmap", "usr/bin/newgidmap", "usr/bin/pasta",
                 "etc/ssl/certs/ca-certificates.crt", "usr/lib64/ld-linux-x86-64.so.2",
                 "usr/lib/x86_64-linux-gnu/libc.so.6", "usr/lib/x86_64-linux-gnu/libcurl.so.4",
                 "etc/subuid", "etc/subgid", "etc/passwd", "etc/group", "lib", "lib64", "tmp"]:
        assert need in members, f"{need} missing"
    assert members["usr/bin/newuidmap"].mode & 0o4000, "newuidmap lost its setuid bit"
    # pasta is passt's binary under pasta's name (a symlink to a passt left out would dangle)
    for tool in ("usr/bin/hoist", "usr/bin/newuidmap", "usr/bin/newgidmap", "usr/bin/pasta"):
        assert members[tool].isfile(), f"{tool} is no regular file"
    assert members["tmp"].mode & 0o7777 == 0o1777
    for m in members.values():
        assert m.mtime <= int(EPOCH), f"{m.name} is newer than SOURCE_DATE_EPOCH"
        assert m.uid == 0 and m.gid == 0, f"{m.name} is owned by {m.uid}:{m.gid}"
    # nothing beyond that: no shell, no package manager, only libraries under the lib dirs
    extra = [n for n in members if not (
        n.startswith("usr/lib/x86_64-linux-gnu/") or n in (
            "usr/bin/hoist", "usr/bin/newuidmap", "usr/bin/newgidmap", "usr/bin/pasta",
            "etc/ssl/certs/ca-certificates.crt", "usr/lib64/ld-linux-x86-64.so.2",
            "etc/subuid", "etc/subgid", "etc/passwd", "etc/group", "lib", "lib64", "tmp"))
             and not n.endswith("/")]
    extra = [n for n in extra if members[n].type != tarfile.DIRTYPE]
    assert not extra, f"unexpected files: {extra}"
    assert "bin/sh" not in members and "usr/bin/sh" not in members


@test
def hoist_version_runs_in_the_image():
    layout = image()
    want = hoist("--version").stdout.strip()
    p = hoist("run", f"oci:{layout}:hoist", "--", "/usr/bin/hoist", "--version", timeout=300)
    assert p.stdout.strip() == want, (p.stdout, want)
    # the entrypoint itself: hoist without a verb prints its usage and exits 2
    p = hoist("run", f"oci:{layout}:hoist", check=False, timeout=300)
    assert p.returncode == 2, (p.returncode, p.stderr)


def podman(workdir, *args, timeout=300):
    """podman on a store of its own under workdir (removed with it): vfs storage, the cgroupfs
    manager and the file events backend (no systemd here), runc (crun refuses this machine's
    hybrid cgroup hierarchy, whose cgroup2 half holds a controller), no network. The rlimits are
    lowered to 1024: podman asks for 1048576 open files by default, and raising a hard limit
    needs CAP_SYS_RESOURCE, which this machine's root lacks; lowering needs nothing."""
    return run("podman", "--root", os.path.join(workdir, "root"),
               "--runroot", os.path.join(workdir, "run"), "--tmpdir", os.path.join(workdir, "tmp"),
               "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
               "--events-backend", "file", "--runtime", "runc", *args, check=False,
               timeout=timeout)


@test
def hoist_version_runs_under_podman():
    if not shutil.which("podman"):
        raise Skip("podman is not installed (make deps installs it)")
    layout = image()
    want = hoist("--version").stdout.strip()
    work = tmpdir("hoist-podman-")
    flags = ["--rm", "--network", "none", "--ulimit", "nofile=1024:1024",
             "--ulimit", "nproc=1024:1024"]
    p = podman(work, "run", *flags, f"oci:{layout}:hoist", "--version")
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert p.stdout.strip() == want, (p.stdout, want)
    # the entrypoint with no arguments: hoist's usage, exit 2
    p = podman(work, "run", *flags, f"oci:{layout}:hoist")
    assert p.returncode == 2 and "Usage: hoist" in p.stderr, (p.returncode, p.stderr)
    # --rm took the containers; the store holds only the image
    p = podman(work, "ps", "--all", "--quiet")
    assert p.returncode == 0 and not p.stdout.strip(), (p.stdout, p.stderr)


if __name__ == "__main__":
    main()
