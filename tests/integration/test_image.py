"""`make image`: hoist's own image, built by hoist (scripts/make-image.sh). The same
SOURCE_DATE_EPOCH gives the same digest twice; the image holds the binary, its libraries,
newuidmap/newgidmap, pasta, the CA bundle and nothing else; `hoist --version` runs in it under
`hoist run` and under podman (run from the layout, `podman run oci:DIR:hoist`, on a store of
the test's own in a temporary directory), and both print what `hoist --version` prints on the
host. Without podman that check is skipped, saying so; podman present but failing fails it.

`make image-arm64` (make-image.sh --arch arm64): hoist cross-built for arm64 and the libraries
and tools of Debian's arm64 packages (scripts/build-arm64.sh, cached under $HOIST_CACHE/arm64:
a cold run fetches the packages and cross-builds hoist, about 50 s here; a warm one
reuses both). Its config says linux/arm64/v8, every ELF file in it is AArch64, the same epoch
gives the same digest, and its hoist, newuidmap and pasta run from the unpacked tree under
qemu-aarch64-static -L (no binfmt_misc here, so not under `hoist run`), hoist printing what the
host's prints. `make image-multiarch` joins both into one index. Without the cross compiler or
qemu (make deps installs both) these are skipped, saying so.
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


def make(layout, arch="amd64"):
    env = {"SOURCE_DATE_EPOCH": EPOCH}
    run("bash", SCRIPT, "--arch", arch, HOIST, f"oci:{layout}:hoist", env=env, timeout=600)
    return layout


def image():
    if "layout" not in _built:
        _built["layout"] = make(os.path.join(tmpdir(), "img"))
    return _built["layout"]


def arm64_image():
    """The arm64 image, made once; skips without the cross compiler or qemu."""
    missing = [t for t in ("aarch64-linux-gnu-gcc", "qemu-aarch64-static") if not shutil.which(t)]
    if missing:
        raise Skip(f"{' and '.join(missing)} not installed (make deps installs them)")
    if "arm64" not in _built:
        _built["arm64"] = make(os.path.join(tmpdir(), "img-arm64"), "arm64")
    return _built["arm64"]


ELF_MACHINE = {62: "x86-64", 183: "AArch64"}


def elf_machine(data):
    """The ELF header's e_machine, by name; None for a file that is no ELF file."""
    if data[:4] != b"\x7fELF":
        return None
    return ELF_MACHINE.get(int.from_bytes(data[18:20], "little"), "other")


def layer_members(layout):
    """{name: (TarInfo, bytes or None)} of the image's single layer."""
    man = json.loads(blob(layout, manifest_digest(layout)))
    data = gzip.decompress(blob(layout, man["layers"][0]["digest"]))
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return {m.name.lstrip("./"): (m, t.extractfile(m).read() if m.isfile() else None)
                for m in t.getmembers()}


def blob(layout, digest):
    algo, hexd = digest.split(":")
    with open(os.path.join(layout, "blobs", algo, hexd), "rb") as f:
        return f.read()


def manifest_digest(layout, tag="hoist"):
    with open(os.path.join(layout, "index.json")) as f:
        idx = json.load(f)
    return [m["digest"] for m in idx["manifests"]
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag][0]


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


@test
def arm64_config_says_linux_arm64_and_its_files_are_aarch64():
    layout = arm64_image()
    man = json.loads(blob(layout, manifest_digest(layout)))
    cfg = json.loads(blob(layout, man["config"]["digest"]))
    assert (cfg["os"], cfg["architecture"], cfg.get("variant")) == ("linux", "arm64", "v8"), cfg
    assert cfg["config"]["Entrypoint"] == ["/usr/bin/hoist"], cfg["config"]
    assert len(man["layers"]) == 1
    members = layer_members(layout)
    for need in ["usr/bin/hoist", "usr/bin/newuidmap", "usr/bin/newgidmap", "usr/bin/pasta",
                 "usr/lib/ld-linux-aarch64.so.1", "usr/lib/aarch64-linux-gnu/libc.so.6",
                 "usr/lib/aarch64-linux-gnu/libcurl.so.4", "etc/ssl/certs/ca-certificates.crt",
                 "etc/subuid", "etc/passwd", "lib", "tmp"]:
        assert need in members, f"{need} missing"
    assert members["lib"][0].issym() and members["lib"][0].linkname == "usr/lib"
    assert members["usr/bin/newuidmap"][0].mode & 0o4000, "newuidmap lost its setuid bit"
    machines = {n: elf_machine(d) for n, (m, d) in members.items() if d is not None}
    assert machines["usr/bin/hoist"] == "AArch64", machines["usr/bin/hoist"]
    elves = {n: mach for n, mach in machines.items() if mach}
    assert all(mach == "AArch64" for mach in elves.values()), elves
    # the ELF files: the four binaries, the loader, and only libraries under the arm64 lib dir
    assert sorted(n for n in elves if not n.startswith("usr/lib/aarch64-linux-gnu/")) == [
        "usr/bin/hoist", "usr/bin/newgidmap", "usr/bin/newuidmap", "usr/bin/pasta",
        "usr/lib/ld-linux-aarch64.so.1"], sorted(elves)
    assert not any("x86_64" in n or n.startswith("usr/lib64") for n in members), members.keys()


@test
def arm64_same_epoch_same_digest():
    first = arm64_image()
    second = make(os.path.join(tmpdir(), "img-arm64"), "arm64")
    assert manifest_digest(first) == manifest_digest(second), "two arm64 builds differ"


@test
def arm64_hoist_version_runs_under_qemu():
    layout = arm64_image()
    want = hoist("--version").stdout.strip()
    root = os.path.join(tmpdir(), "rootfs")
    hoist("unpack", f"oci:{layout}:hoist", root, timeout=300)
    # -L: the loader and every library come from the image's tree (the host has no arm64 ones)
    qemu = ["qemu-aarch64-static", "-L", root]
    p = run(*qemu, os.path.join(root, "usr/bin/hoist"), "--version", timeout=120)
    assert p.stdout.strip() == want, (p.stdout, want)
    p = run(*qemu, os.path.join(root, "usr/bin/pasta"), "--version", timeout=120)
    assert p.stdout.startswith("pasta "), p.stdout
    p = run(*qemu, os.path.join(root, "usr/bin/newuidmap"), check=False, timeout=120)
    assert "usage: newuidmap" in p.stderr, (p.returncode, p.stderr)


@test
def multiarch_index_joins_amd64_and_arm64():
    arm64 = arm64_image()
    layout = os.path.join(tmpdir(), "multi")
    hoist("copy", f"oci:{image()}:hoist", f"oci:{layout}:hoist")
    hoist("copy", f"oci:{arm64}:hoist", f"oci:{layout}:hoist-arm64")
    hoist("index", "create", f"oci:{layout}:hoist-multiarch", f"oci:{layout}:hoist",
          f"oci:{layout}:hoist-arm64")
    idx = json.loads(blob(layout, manifest_digest(layout, "hoist-multiarch")))
    platforms = sorted((m["platform"]["architecture"], m["platform"].get("variant"))
                       for m in idx["manifests"])
    assert platforms == [("amd64", None), ("arm64", "v8")], idx
    # the host's platform out of the index
    p = hoist("run", f"oci:{layout}:hoist-multiarch", "--", "/usr/bin/hoist", "--version",
              timeout=300)
    assert p.stdout.strip() == hoist("--version").stdout.strip(), p.stdout


if __name__ == "__main__":
    main()
