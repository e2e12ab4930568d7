"""hoist bundle apply / publish and hoist index create against the real
registry (docker-registry), checked with skopeo and umoci.

Base images are made by hoist append from Debian's busybox-static for amd64
and arm64 (apt-get download + dpkg -x, cached under $HOIST_CACHE/fixtures).
"""
import fcntl
import json
import os
import shutil
import tarfile
import urllib.error

from bundlefixture import BINS, LIBDIR, NAME, Bundle
from hoisttest import CACHE, Registry, hoist, main, run, skopeo, test, tmpdir

ARCHES = ("amd64", "arm64")
ELF_MACHINE = {"amd64": 0x3E, "arm64": 0xB7}  # e_machine: x86-64, AArch64
# hoist's temporary files (publish's stage) go here, to check none remain
PUBLISH_TMP = tmpdir("hoist-publish-tmp-")
os.environ["TMPDIR"] = PUBLISH_TMP


def elf_machine(path):
    with open(path, "rb") as f:
        head = f.read(20)
    assert head[:4] == b"\x7fELF", path
    return int.from_bytes(head[18:20], "little")


def busybox(arch):
    """Debian's busybox-static for arch: (path of its bin/busybox, real), cached.
    When the package cannot be had (no network, no root to add the
    architecture), a test double stands in: the host's busybox, labelled arch
    by the image config (these images are never run here); real is False."""
    cache = os.path.join(CACHE, "fixtures", "busybox-static", arch)
    exe = os.path.join(cache, "bin", "busybox")
    if os.path.exists(exe):
        return exe, True
    d = tmpdir()

    def download():
        run("apt-get", "download", f"busybox-static:{arch}", check=False, cwd=d)
        return [f for f in os.listdir(d) if f.endswith(".deb")]

    debs = download()
    if not debs and os.geteuid() == 0:
        # the package index lacks the architecture: add it once
        run("dpkg", "--add-architecture", arch, check=False)
        run("apt-get", "update", "-qq", check=False)
        debs = download()
    if not debs:
        host = shutil.which("busybox") or "/bin/busybox"
        return host, elf_machine(host) == ELF_MACHINE[arch]
    x = os.path.join(d, "x")
    run("dpkg", "-x", os.path.join(d, debs[0]), x)
    tmp = f"{cache}.tmp-{os.getpid()}"
    os.makedirs(os.path.join(tmp, "bin"), exist_ok=True)
    shutil.copy2(os.path.join(x, "bin", "busybox"), os.path.join(tmp, "bin", "busybox"))
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    shutil.rmtree(cache, ignore_errors=True)
    os.rename(tmp, cache)
    return exe, True


class Env:
    """One registry with base images: REG/base:amd64, REG/base:arm64 and the
    index REG/base:multi; the same in the layout `bases`."""

    def __init__(self):
        self.dir = tmpdir()
        self.reg = Registry(self.dir).start()
        self.host = self.reg.host
        self.bases = os.path.join(self.dir, "bases")
        self.real = {}  # arch -> the base holds that architecture's busybox
        for arch in ARCHES:
            exe, self.real[arch] = busybox(arch)
            assert not self.real[arch] or elf_machine(exe) == ELF_MACHINE[arch], exe
            tree = os.path.join(self.dir, f"tree-{arch}")
            os.makedirs(os.path.join(tree, "bin"))
            shutil.copy2(exe, os.path.join(tree, "bin", "busybox"))
            os.symlink("busybox", os.path.join(tree, "bin", "sh"))
            hoist("append", "scratch", "--target", f"oci:{self.bases}:{arch}", "--layer", tree,
                  "--platform", f"linux/{arch}", "--created-by", "busybox-static",
                  "--source-date-epoch", "1700000000")
            hoist("copy", f"oci:{self.bases}:{arch}", f"{self.host}/base:{arch}")
        hoist("index", "create", f"{self.host}/base:multi", f"{self.host}/base:amd64",
              f"{self.host}/base:arm64")
        hoist("index", "create", f"oci:{self.bases}:multi", f"oci:{self.bases}:amd64",
              f"oci:{self.bases}:arm64")

    def bundle(self, arch, b=None):
        b = b or Bundle(arch)
        return b.build(os.path.join(tmpdir(), f"{NAME}_0.1.0_{arch}.tar.gz"))

    def stage(self, arch):
        into = os.path.join(tmpdir(), "stage")
        out = hoist("bundle", "stage", self.bundle(arch), "--arch", arch, "--into", into).stdout
        staged = out.strip().rsplit(" ", 1)[1]
        assert staged == os.path.join(into, arch, NAME), out
        return staged

    def get(self, path):
        return json.load(self.reg.get(path))

    def tags(self, repo):
        try:
            return sorted(self.get(f"/v2/{repo}/tags/list").get("tags") or [])
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return []
            raise


_env = None


def env():
    global _env
    if _env is None:
        _env = Env()
    return _env


def raw(ref):
    return json.loads(skopeo("inspect", "--tls-verify=false", "--raw", ref).stdout)


def pull_and_unpack(ref, *opts):
    """skopeo copies ref into a layout, umoci unpacks it: (rootfs, config, layout, tag)."""
    d = tmpdir()
    lay = os.path.join(d, "lay")
    skopeo("copy", "--src-tls-verify=false", *opts, ref, f"oci:{lay}:got")
    cfg = json.loads(skopeo("inspect", "--config", f"oci:{lay}:got").stdout)
    bundle = os.path.join(d, "bundle")
    run("umoci", "unpack", "--rootless", "--image", f"{lay}:got", bundle)
    return os.path.join(bundle, "rootfs"), cfg, lay


def last_layer(lay):
    """The tar members of the image's last layer in layout lay (tag got)."""
    with open(os.path.join(lay, "index.json")) as f:
        desc = json.load(f)["manifests"][0]
    blob = lambda d: os.path.join(lay, "blobs", *d.split(":"))
    with open(blob(desc["digest"])) as f:
        m = json.load(f)
    with tarfile.open(blob(m["layers"][-1]["digest"]), "r:*") as t:
        return {ti.name.lstrip("./").rstrip("/"): ti for ti in t.getmembers()}


def check_payload(rootfs, arch, b=None):
    """The contract's image paths hold the bundle's payload with its modes."""
    b = b or Bundle(arch)
    lib = LIBDIR[arch]
    for name in BINS:
        p = os.path.join(rootfs, "usr", "bin", name)
        assert not os.path.islink(p), p
        assert os.stat(p).st_mode & 0o7777 == 0o755, (p, oct(os.stat(p).st_mode))
        with open(p, "rb") as f:
            assert f.read() == b.payload[f"usr/bin/{name}"][1]
    conf = os.path.join(rootfs, "etc", "nvidia-container-runtime", "config.toml")
    assert os.stat(conf).st_mode & 0o7777 == 0o644, oct(os.stat(conf).st_mode)
    with open(conf, "rb") as f:
        assert f.read() == b.payload["etc/nvidia-container-runtime/config.toml"][1]
    libdir = os.path.join(rootfs, "usr", "lib", lib)
    real = os.path.join(libdir, "libnvidia-container.so.1.17.8")
    assert not os.path.islink(real) and os.stat(real).st_mode & 0o7777 == 0o755
    assert os.readlink(os.path.join(libdir, "libnvidia-container.so.1")) == \
        "libnvidia-container.so.1.17.8"
    assert os.readlink(os.path.join(libdir, "libnvidia-container.so")) == "libnvidia-container.so.1"
    # nothing else of the bundle: no manifest.json, no other directories
    assert sorted(os.listdir(libdir)) == ["libnvidia-container.so", "libnvidia-container.so.1",
                                          "libnvidia-container.so.1.17.8"]
    assert not os.path.exists(os.path.join(rootfs, "manifest.json"))
    # the base is still there
    assert os.path.isfile(os.path.join(rootfs, "bin", "busybox"))
    if env().real[arch]:
        assert elf_machine(os.path.join(rootfs, "bin", "busybox")) == ELF_MACHINE[arch]


# ------------------------------------------------------------------- apply


@test
def apply_pushes_one_layer_that_umoci_unpacks():
    e = env()
    staged = e.stage("amd64")
    p = hoist("bundle", "apply", staged, "--base", f"{e.host}/base:amd64", "--target",
              f"{e.host}/cluster:amd64", "--json")
    out = json.loads(p.stdout)
    assert out["layers"] == 2, out
    rootfs, cfg, lay = pull_and_unpack(f"docker://{e.host}/cluster:amd64")
    check_payload(rootfs, "amd64")
    assert cfg["architecture"] == "amd64" and cfg["os"] == "linux"
    assert len(cfg["rootfs"]["diff_ids"]) == 2
    assert cfg["history"][-1]["created_by"] == f"hoist bundle apply {NAME} 0.1.0"
    # one layer with exactly the mapped entries, owned by root
    members = last_layer(lay)
    want = {f"usr/bin/{b}" for b in BINS} | {
        "etc/nvidia-container-runtime", "etc/nvidia-container-runtime/config.toml",
        "usr/lib/x86_64-linux-gnu/libnvidia-container.so",
        "usr/lib/x86_64-linux-gnu/libnvidia-container.so.1",
        "usr/lib/x86_64-linux-gnu/libnvidia-container.so.1.17.8"}
    assert set(members) == want, sorted(members)
    assert all(ti.uid == 0 and ti.gid == 0 for ti in members.values())
    assert out["manifest"] == raw_digest(f"docker://{e.host}/cluster:amd64")


def raw_digest(ref):
    return skopeo("inspect", "--tls-verify=false", "--format", "{{.Digest}}", ref).stdout.strip()


@test
def apply_takes_the_platform_from_an_index_base_into_a_layout():
    e = env()
    staged = e.stage("arm64")
    out = os.path.join(tmpdir(), "out")
    hoist("bundle", "apply", staged, "--base", f"{e.host}/base:multi", "--target",
          f"oci:{out}:arm64", "--arch", "arm64", "--libdir", "/usr/lib64")
    cfg = json.loads(skopeo("inspect", "--config", f"oci:{out}:arm64").stdout)
    assert cfg["architecture"] == "arm64", cfg
    rootfs, _, _ = pull_and_unpack(f"oci:{out}:arm64")
    assert os.path.isfile(os.path.join(rootfs, "usr", "lib64", "libnvidia-container.so.1.17.8"))
    assert not os.path.exists(os.path.join(rootfs, "usr", "lib", "aarch64-linux-gnu"))
    if e.real["arm64"]:
        assert elf_machine(os.path.join(rootfs, "bin", "busybox")) == ELF_MACHINE["arm64"]


@test
def apply_refuses_a_base_of_another_platform():
    e = env()
    staged = e.stage("arm64")
    p = hoist("bundle", "apply", staged, "--base", f"{e.host}/base:amd64", "--target",
              f"{e.host}/wrongarch:1", check=False)
    assert p.returncode == 1, p
    assert p.stderr.strip() == ("hoist bundle apply: base image platform linux/amd64 does not "
                                "match the bundle architecture arm64"), p.stderr
    # --arch must agree with the staged manifest
    p = hoist("bundle", "apply", staged, "--base", f"{e.host}/base:multi", "--target",
              f"{e.host}/wrongarch:1", "--arch", "amd64", check=False)
    assert p.returncode == 1, p
    assert p.stderr.strip().endswith("bundle architecture mismatch: expected amd64, got arm64")
    # an index without the platform
    only = os.path.join(tmpdir(), "only")
    hoist("index", "create", f"oci:{only}:x", f"oci:{e.bases}:amd64", "--oci")
    p = hoist("bundle", "apply", staged, "--base", f"oci:{only}:x", "--target",
              f"{e.host}/wrongarch:1", check=False)
    assert p.returncode == 1, p
    assert p.stderr.strip() == ("hoist bundle apply: base image has no linux/arm64 image (it "
                                "has: linux/amd64)"), p.stderr
    assert e.tags("wrongarch") == []


@test
def apply_usage_errors():
    assert hoist("bundle", "apply", "--help").stdout.startswith("Usage: hoist bundle apply")
    for args in (["x"], ["x", "--base", "b"], ["--base", "b", "--target", "t:1"],
                 ["x", "--base", "b", "--target", "oci:/tmp/x"],
                 ["x", "--base", "b", "--target", "t:1", "--libdir", "rel"]):
        p = hoist("bundle", "apply", *args, check=False)
        assert p.returncode == 2, (args, p)


# ------------------------------------------------------------ index create


@test
def index_create_writes_a_docker_manifest_list():
    e = env()
    ix = raw(f"docker://{e.host}/base:multi")
    assert ix["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json", ix
    plats = [(m["platform"]["os"], m["platform"]["architecture"]) for m in ix["manifests"]]
    assert plats == [("linux", "amd64"), ("linux", "arm64")], plats
    for m, arch in zip(ix["manifests"], ARCHES):
        assert m["digest"] == raw_digest(f"docker://{e.host}/base:{arch}")
    cfg = json.loads(skopeo("inspect", "--tls-verify=false", "--config", "--override-arch",
                            "arm64", f"docker://{e.host}/base:multi").stdout)
    assert cfg["architecture"] == "arm64"


@test
def index_create_oci_tags_and_other_repositories():
    e = env()
    p = hoist("index", "create", f"{e.host}/other/multi:1", f"{e.host}/base:amd64",
              f"oci:{e.bases}:arm64", "--oci", "--tag", "latest", "--tag", "stable", "--json")
    out = json.loads(p.stdout)
    assert out["copied"] == 2 and out["manifests"] == 2, out
    assert out["mediaType"] == "application/vnd.oci.image.index.v1+json"
    ix = raw(f"docker://{e.host}/other/multi:1")
    assert ix["mediaType"] == "application/vnd.oci.image.index.v1+json", ix
    assert e.tags("other/multi") == ["1", "latest", "stable"]
    assert raw_digest(f"docker://{e.host}/other/multi:stable") == out["digest"]
    # every image the index names is in the target repository
    for m in ix["manifests"]:
        raw(f"docker://{e.host}/other/multi@{m['digest']}")
    rootfs, cfg, _ = pull_and_unpack(f"docker://{e.host}/other/multi:1", "--override-arch",
                                     "arm64")
    assert cfg["architecture"] == "arm64"
    # into a layout: the layout holds the images, only the index is tagged, and
    # it is an OCI index (the only kind OCI tools find in index.json)
    lay = os.path.join(tmpdir(), "ix")
    hoist("index", "create", f"oci:{lay}:both", f"{e.host}/base:amd64", f"{e.host}/base:arm64")
    with open(os.path.join(lay, "index.json")) as f:
        entries = json.load(f)["manifests"]
    assert [x["annotations"]["org.opencontainers.image.ref.name"] for x in entries] == ["both"]
    assert raw(f"oci:{lay}:both")["mediaType"] == "application/vnd.oci.image.index.v1+json"
    skopeo("copy", "--override-arch", "arm64", f"oci:{lay}:both", f"oci:{lay}-copy:a")


@test
def index_create_refuses_multi_platform_sources_and_duplicates():
    e = env()
    p = hoist("index", "create", f"{e.host}/bad:1", f"{e.host}/base:multi", f"{e.host}/base:arm64",
              check=False)
    assert p.returncode == 1, p
    assert p.stderr.strip() == (
        f"hoist index create: index {e.host}/bad:1: {e.host}/base:multi is multi-platform "
        "(2 manifests: linux/amd64, linux/arm64); index create takes single-platform images"
    ), p.stderr
    p = hoist("index", "create", f"{e.host}/bad:1", f"{e.host}/base:amd64",
              f"oci:{e.bases}:amd64", check=False)
    assert p.returncode == 1, p
    assert p.stderr.strip() == (
        f"hoist index create: index {e.host}/bad:1: {e.host}/base:amd64 and "
        f"oci:{e.bases}:amd64 are both linux/amd64: platforms must be distinct"), p.stderr
    p = hoist("index", "create", f"{e.host}/bad:1", f"{e.host}/base:nosuch", check=False)
    assert p.returncode == 1 and "nosuch" in p.stderr, p
    # nothing was written
    assert e.tags("bad") == []
    for args in ([], [f"{e.host}/bad:1"], [f"{e.host}/bad@sha256:{'0' * 64}", "x"],
                 [f"oci:{e.dir}/l", f"{e.host}/base:amd64"]):
        assert hoist("index", "create", *args, check=False).returncode == 2, args
    assert hoist("index", "create", "--help").stdout.startswith("Usage: hoist index create")
    assert hoist("index", "frob", check=False).returncode == 2


# ----------------------------------------------------------------- publish


@test
def publish_two_arches():
    e = env()
    p = hoist("bundle", "publish", "--base", f"{e.host}/base:multi", "--target",
              f"{e.host}/cluster/gpu:0.1.0", "--bundle", f"amd64={e.bundle('amd64')}",
              "--bundle", f"arm64={e.bundle('arm64')}", "--json")
    out = json.loads(p.stdout)
    assert [i["arch"] for i in out["images"]] == ["amd64", "arm64"], out
    assert e.tags("cluster/gpu") == ["0.1.0", "0.1.0-amd64", "0.1.0-arm64"]
    ix = raw(f"docker://{e.host}/cluster/gpu:0.1.0")
    assert ix["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json", ix
    assert [(m["platform"]["os"], m["platform"]["architecture"]) for m in ix["manifests"]] == \
        [("linux", "amd64"), ("linux", "arm64")]
    assert [m["digest"] for m in ix["manifests"]] == [i["digest"] for i in out["images"]]
    assert raw_digest(f"docker://{e.host}/cluster/gpu:0.1.0") == out["digest"]
    for arch in ARCHES:
        rootfs, cfg, _ = pull_and_unpack(f"docker://{e.host}/cluster/gpu:0.1.0",
                                         "--override-arch", arch)
        assert cfg["architecture"] == arch, cfg
        check_payload(rootfs, arch)
        assert raw_digest(f"docker://{e.host}/cluster/gpu:0.1.0-{arch}") == \
            out["images"][ARCHES.index(arch)]["digest"]
    # no stage left behind in TMPDIR
    assert not [f for f in os.listdir(PUBLISH_TMP) if f.startswith("hoist-publish-")]


@test
def publish_oci_index_into_a_layout():
    e = env()
    out = os.path.join(tmpdir(), "pub")
    hoist("bundle", "publish", "--base", f"oci:{e.bases}:multi", "--target", f"oci:{out}:v1",
          "--bundle", f"arm64={e.bundle('arm64')}", "--bundle", f"amd64={e.bundle('amd64')}",
          "--oci", "--tag", "latest")
    ix = raw(f"oci:{out}:v1")
    assert ix["mediaType"] == "application/vnd.oci.image.index.v1+json", ix
    assert [m["platform"]["architecture"] for m in ix["manifests"]] == ["arm64", "amd64"]
    with open(os.path.join(out, "index.json")) as f:
        tags = sorted(x["annotations"]["org.opencontainers.image.ref.name"]
                      for x in json.load(f)["manifests"])
    assert tags == ["latest", "v1", "v1-amd64", "v1-arm64"], tags
    rootfs, cfg, _ = pull_and_unpack(f"oci:{out}:latest", "--override-arch", "arm64")
    assert cfg["architecture"] == "arm64"
    check_payload(rootfs, "arm64")


@test
def publish_sweeps_the_stage_a_killed_publish_left():
    """A publish killed by a signal cannot remove its stage directory; the
    next publish does. It leaves alone the stage of a publish still running
    (which holds an flock on it) and one made a moment ago."""
    e = env()
    stages = {}
    for name, age in (("stale", 7200), ("running", 7200), ("new", 0)):
        path = os.path.join(PUBLISH_TMP, f"hoist-publish-{name}")
        os.makedirs(os.path.join(path, "amd64", "payload"))
        with open(os.path.join(path, "amd64", "payload", "f"), "w") as f:
            f.write("half a stage\n")
        t = os.stat(path).st_mtime - age
        os.utime(path, (t, t))
        stages[name] = path
    running = os.open(stages["running"], os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(running, fcntl.LOCK_EX)
    try:
        out = os.path.join(tmpdir(), "pub")
        hoist("bundle", "publish", "--base", f"oci:{e.bases}:multi", "--target",
              f"oci:{out}:v1", "--bundle", f"amd64={e.bundle('amd64')}")
        assert not os.path.exists(stages["stale"])
        assert os.path.exists(os.path.join(stages["running"], "amd64", "payload", "f"))
        assert os.path.exists(os.path.join(stages["new"], "amd64", "payload", "f"))
    finally:
        os.close(running)
        for path in stages.values():
            shutil.rmtree(path, ignore_errors=True)


@test
def publish_pushes_nothing_when_a_bundle_is_invalid_or_missing():
    e = env()
    reg = Registry(tmpdir()).start()  # empty: its catalog shows any push
    bad = Bundle("arm64")
    bad.payload["usr/bin/nvidia-ctk"] = ("file", b"tampered\n", 0o755)
    cases = [
        (f"arm64={e.bundle('arm64', bad)}", "checksum mismatch: usr/bin/nvidia-ctk"),
        (f"arm64={os.path.join(e.dir, 'nonexistent.tar.gz')}", "nonexistent.tar.gz"),
        (f"arm64={e.bundle('amd64')}", "bundle architecture mismatch: expected arm64, got amd64"),
    ]
    for spec, msg in cases:
        p = hoist("bundle", "publish", "--base", f"oci:{e.bases}:multi", "--target",
                  f"{reg.host}/cluster:1", "--bundle", f"amd64={e.bundle('amd64')}",
                  "--bundle", spec, check=False)
        assert p.returncode == 1, (spec, p)
        assert msg in p.stderr and "bundle arm64" in p.stderr, (spec, p.stderr)
        assert json.load(reg.get("/v2/_catalog"))["repositories"] == [], spec
    # a bundle over the size limit
    p = hoist("bundle", "publish", "--base", f"oci:{e.bases}:multi", "--target",
              f"{reg.host}/cluster:1", "--bundle", f"amd64={e.bundle('amd64')}",
              "--max-size", "1K", check=False)
    assert p.returncode == 1 and "bundle amd64" in p.stderr, p
    assert json.load(reg.get("/v2/_catalog"))["repositories"] == []
    # a base without one of the architectures: also refused before any push
    p = hoist("bundle", "publish", "--base", f"oci:{e.bases}:amd64", "--target",
              f"{reg.host}/cluster:1", "--bundle", f"amd64={e.bundle('amd64')}", "--bundle",
              f"arm64={e.bundle('arm64')}", check=False)
    assert p.returncode == 1, p
    assert "base image platform linux/amd64 does not match the bundle architecture arm64" in \
        p.stderr, p.stderr
    assert json.load(reg.get("/v2/_catalog"))["repositories"] == []
    assert not [f for f in os.listdir(PUBLISH_TMP) if f.startswith("hoist-publish-")]
    # usage
    for args in (["--base", "b", "--target", "t:1"],
                 ["--base", "b", "--target", "t:1", "--bundle", "amd64"],
                 ["--base", "b", "--target", "t:1", "--bundle", "a=1", "--bundle", "b=2",
                  "--bundle", "c=3"],
                 ["--base", "b", "--target", "t:1", "--bundle", "amd64=x", "--arch", "amd64"]):
        assert hoist("bundle", "publish", *args, check=False).returncode == 2, args
    p = hoist("bundle", "publish", "--base", f"oci:{e.bases}:multi", "--target",
              f"{reg.host}/cluster:1", "--bundle", f"amd64={e.bundle('amd64')}", "--bundle",
              f"amd64={e.bundle('amd64')}", check=False)
    assert p.returncode == 1 and "two bundles for amd64" in p.stderr, p


if __name__ == "__main__":
    main()
