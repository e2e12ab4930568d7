#!/usr/bin/env python3
"""hoist build against real package managers and a real registry.

Base images come from the fixture scripts (cached under $HOIST_CACHE/fixtures):
busybox (fast: /bin/extend, the build cache, failures) and Debian bookworm with
python3/pip and nodejs/npm (the python and nodejs kinds; kept to two tests as
the suite runs twice). Package sources are served by the test on loopback: a
PEP 503 simple index holding a wheel made here, and an npm registry holding a
tarball made by `npm pack`. skopeo and umoci are the independent oracles.
"""
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import time
import urllib.error

import pkgsources
from hoisttest import (CACHE, HOIST, SOURCE_ROOT, Registry, Skip, hoist, main, run, skopeo,
                       sleepers, test, tmpdir)

FIXTURES = os.path.join(SOURCE_ROOT, "tests", "fixtures")
_state = {}


def work():
    if "work" not in _state:
        _state["work"] = tmpdir("hoist-build-")
        # pulled bases and built images stay out of the user's image store
        os.environ["HOIST_IMAGES"] = os.path.join(_state["work"], "images")
    return _state["work"]


def registry():
    if "reg" not in _state:
        _state["reg"] = Registry(work()).start()
    return _state["reg"]


def busybox(tag="latest"):
    """oci:DIR:TAG of the busybox fixture."""
    out = os.path.join(work(), "busybox")
    if "busybox" not in _state:
        run("bash", os.path.join(FIXTURES, "busybox-image.sh"), HOIST, out, "latest")
        _state["busybox"] = out
    return f"oci:{out}:{tag}"


def debian():
    """The Debian fixture pushed to the test registry; returns its reference."""
    if "debian" not in _state:
        cached = os.path.join(CACHE, "fixtures", "debian-bookworm", "index.json")
        if os.geteuid() != 0 and not os.path.exists(cached):
            raise Skip("the Debian fixture needs root (debootstrap) to be made once")
        out = os.path.join(work(), "debian")
        run("bash", os.path.join(FIXTURES, "debian-image.sh"), HOIST, out, "bookworm",
            timeout=1800)
        ref = f"{registry().host}/base/debian:bookworm"
        hoist("copy", f"oci:{out}:bookworm", ref)
        _state["debian"] = ref
    return _state["debian"]


def cache_dir():
    return os.path.join(work(), "build-cache")


def build(source, kind, text, target, *extra, check=True, name=None):
    path = os.path.join(work(), name or f"req-{time.monotonic_ns()}")
    with open(path, "w") as f:
        f.write(text)
    return hoist("build", "--source", source, "--kind", kind, "--file", path, "--target", target,
                 "--cache-dir", cache_dir(), *extra, check=check, timeout=900)


def with_extend(tag, script):
    """The busybox image plus an executable /bin/extend (user set to nobody by umoci)."""
    d = os.path.join(work(), f"ext-{tag}")
    os.makedirs(d)
    path = os.path.join(d, "extend")
    with open(path, "w") as f:
        f.write(script)
    os.chmod(path, 0o755)
    layout = os.path.join(work(), "extended")
    hoist("append", busybox(), "--target", f"oci:{layout}:{tag}", "--map", f"{path}:/bin/extend")
    run("umoci", "config", "--image", f"{layout}:{tag}", "--config.user", "nobody")
    return f"oci:{layout}:{tag}"


# --------------------------------------------------------------- servers


def pip_index():
    """A PEP 503 simple index with tinypkg 1.0 on loopback; returns its URL."""
    if "pip" not in _state:
        root = os.path.join(work(), "pypi")
        whl = pkgsources.make_wheel(os.path.join(root, "wheels"), "tinypkg", "1.0",
                                    body="VALUE = 'tiny-42'\n")
        _state["pip"] = pkgsources.pip_index(root, [whl])
    return _state["pip"]


def npm_registry():
    """An npm registry on loopback serving tinyjs 1.0.0 (a tarball from `npm pack`)."""
    if "npm" not in _state:
        meta = {"name": "tinyjs", "version": "1.0.0", "main": "index.js"}
        tgz = pkgsources.npm_pack(os.path.join(work(), "npm"), meta,
                                  {"index.js": "module.exports = { value: 'tinyjs-7' };\n"})
        _state["npm"] = pkgsources.npm_registry([(meta, tgz)])
    return _state["npm"]


def skopeo_layers(ref):
    out = skopeo("inspect", "--tls-verify=false", f"docker://{ref}").stdout
    return json.loads(out)["Layers"]


def tag_exists(reg, repo, tag):
    try:
        tags = json.load(reg.get(f"/v2/{repo}/tags/list")).get("tags") or []
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return False
        raise
    return tag in tags


# ----------------------------------------------------------------- tests


@test
def test_help_and_usage():
    p = hoist("build", "--help")
    for word in ("--source", "--kind", "--pip-index-url", "--npm-registry", "requirements.txt",
                 "package.json", "go.mod", "pom.xml", "composer.json", "Gemfile", "project.json"):
        assert word in p.stdout, word
    bad = [
        [],
        ["--source", "x", "--kind", "python", "--file", "f"],
        ["--source", "x", "--kind", "cobol", "--file", "f", "--target", "oci:/tmp/x:y"],
        ["--source", "x", "--kind", "python", "--file", "f", "--target", "oci:/tmp/x"],
        ["--source", "x", "--kind", "python", "--file", "f", "--target", "y", "--network", "z"],
    ]
    for args in bad:
        p = hoist("build", *args, check=False)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
    # the reference's limit on the decoded file: 5,000,000 bytes
    big = os.path.join(work(), "big.txt")
    with open(big, "w") as f:
        f.write("a" * 5_000_001)
    p = hoist("build", "--source", "oci:/nonexistent:x", "--kind", "python", "--file", big,
              "--target", f"oci:{work()}/big:v1", check=False)
    assert p.returncode == 1 and "too large (at most 5000000 bytes)" in p.stderr, p.stderr


@test
def test_extend_replaces_recipe_and_keeps_user():
    """The base's /bin/extend runs as root instead of the recipe (busybox has no
    python); the new image keeps the base's user; /tmp/<file> is in the layer."""
    src = with_extend("x1", "#!/bin/sh\nset -e\n"
                            "{ id -u; cat /tmp/requirements.txt; } > /extended\n")
    out = os.path.join(work(), "out-extend")
    p = build(src, "python", "flask==3.0\n", f"oci:{out}:v1", "--json", "--userns")
    assert "/bin/extend" in p.stderr, p.stderr
    res = json.loads(p.stdout)
    assert res["extend"] is True and res["cacheHit"] is False and res["layers"] == 3, res
    res = hoist("run", f"oci:{out}:v1", "--", "cat", "/extended").stdout
    assert res == "0\nflask==3.0\n", res
    cfg = json.loads(skopeo("inspect", "--config", f"oci:{out}:v1").stdout)
    assert cfg["config"].get("User") == "nobody", cfg["config"]
    labels = cfg["config"]["Labels"]
    assert labels["org.opencontainers.image.base.name"] == src, labels
    assert labels["org.opencontainers.image.base.digest"].startswith("sha256:"), labels
    assert "--kind python" in cfg["history"][-1]["created_by"], cfg["history"]
    assert "NODE_PATH" not in json.dumps(cfg["config"].get("Env", []))
    base_layers = len(json.loads(skopeo("inspect", src).stdout)["Layers"])
    assert len(json.loads(skopeo("inspect", f"oci:{out}:v1").stdout)["Layers"]) == base_layers + 1
    # umoci unpacks the result: the requirement file sits where the reference puts it
    bundle = os.path.join(work(), "bundle-extend")
    run("umoci", "unpack", "--rootless", "--image", f"{out}:v1", bundle)
    assert open(os.path.join(bundle, "rootfs", "tmp", "requirements.txt")).read() == "flask==3.0\n"
    assert open(os.path.join(bundle, "rootfs", "extended")).read() == "0\nflask==3.0\n"
    # without a file the source is the target, unchanged (the reference's behaviour)
    hoist("build", "--source", src, "--kind", "python", "--target", f"oci:{out}:same")
    digest = lambda ref: json.loads(skopeo("inspect", ref).stdout)["Digest"]
    assert digest(f"oci:{out}:same") == digest(src)


@test
def test_cache_hit_and_one_byte_miss():
    src = with_extend("c1", "#!/bin/sh\ncat /tmp/*.json > /dep\n")
    out = os.path.join(work(), "out-cache")
    first = build(src, "nodejs", '{"a":1}\n', f"oci:{out}:a", name="pkg-a")
    assert "cache miss" in first.stderr and "running" in first.stderr, first.stderr
    start = time.monotonic()
    again = build(src, "nodejs", '{"a":1}\n', f"oci:{out}:b", name="pkg-b")
    took = time.monotonic() - start
    assert "cache hit" in again.stderr, again.stderr
    assert "running" not in again.stderr, again.stderr  # no sandbox
    print(f"# cache-hit rebuild: {took * 1000:.0f} ms")
    layer = lambda tag: json.loads(skopeo("inspect", f"oci:{out}:{tag}").stdout)["Layers"][-1]
    assert layer("a") == layer("b")
    # an identical rebuild is the identical image (created comes from the cache entry)
    digest = lambda tag: json.loads(skopeo("inspect", f"oci:{out}:{tag}").stdout)["Digest"]
    assert digest("a") == digest("b")
    changed = build(src, "nodejs", '{"a":2}\n', f"oci:{out}:c", name="pkg-c")
    assert "cache miss" in changed.stderr, changed.stderr
    assert layer("c") != layer("a")
    bypass = build(src, "nodejs", '{"a":1}\n', f"oci:{out}:d", "--no-cache", name="pkg-d")
    assert "cache bypassed" in bypass.stderr and "running" in bypass.stderr, bypass.stderr
    # same file, another kind: another key
    other = build(src, "php", '{"a":1}\n', f"oci:{out}:e", name="pkg-e")
    assert "cache miss" in other.stderr, other.stderr
    # the layer's bytes depend on the epoch and the compression: not reused across them
    for extra in (["--source-date-epoch", "1"], ["--compress", "zstd"]):
        p = build(src, "nodejs", '{"a":1}\n', f"oci:{out}:f", *extra, name="pkg-f")
        assert "cache miss" in p.stderr, (extra, p.stderr)


@test
def test_registry_cache_shared_by_two_cache_dirs():
    # two builders with caches of their own (two machines, two pods) share one registry cache
    src = with_extend("rc", "#!/bin/sh\necho installing\ncat /tmp/*.json > /dep\n")
    reg = registry()
    cache = f"{reg.host}/cache/builds"
    one, two = (os.path.join(work(), f"rc-cache-{n}") for n in (1, 2))

    def b(cache_dir, target, text='{"rc":1}\n', *extra):
        path = os.path.join(work(), f"rc-{time.monotonic_ns()}.json")
        with open(path, "w") as f:
            f.write(text)
        return hoist("build", "--source", src, "--kind", "nodejs", "--file", path, "--target",
                     target, "--cache-dir", cache_dir, "--cache-from", cache, "--cache-to", cache,
                     "--json", *extra, timeout=900)

    first = b(one, f"{reg.host}/app/rc:1")
    r1 = json.loads(first.stdout)
    assert r1["cacheFrom"] == "none" and "installing" in first.stderr, first.stderr
    key = r1["cacheKey"].split(":")[1]
    assert f"registry cache {cache}: entry {key}" in first.stderr, first.stderr
    # the entry: an OCI artifact of hoist's type, tagged by the key, the layer its one blob
    entry = json.loads(skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{cache}:{key}").stdout)
    assert entry["artifactType"] == "application/vnd.hoist.build-cache.v1", entry
    assert [d["digest"] for d in entry["layers"]] == [r1["layer"]], entry
    # the other builder, its own cache empty: a hit from the registry, no install
    second = b(two, f"{reg.host}/other/rc:2")
    r2 = json.loads(second.stdout)
    assert r2["cacheFrom"] == "registry" and "installing" not in second.stderr, second.stderr
    assert r2["layer"] == r1["layer"] and r2["manifest"] == r1["manifest"], (r1, r2)
    assert "running" not in second.stderr, second.stderr  # no sandbox
    # on the cache's registry the layer is mounted from the cache repository, not moved
    assert f"layer {r1['layer']}: mounted" in second.stderr, second.stderr
    # the pushed image is whole, as an independent client reads it
    layers = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{reg.host}/other/rc:2").stdout)["Layers"]
    assert layers[-1] == r1["layer"], layers
    # into a layout (no mount possible): the layer is fetched from the cache repository
    out = os.path.join(work(), "rc-out")
    third = b(os.path.join(work(), "rc-cache-3"), f"oci:{out}:3")
    assert json.loads(third.stdout)["cacheFrom"] == "registry", third.stderr
    run("umoci", "unpack", "--rootless", "--image", f"{out}:3", os.path.join(work(), "rc-b"))
    with open(os.path.join(work(), "rc-b", "rootfs", "dep")) as f:
        assert f.read() == '{"rc":1}\n'
    # other inputs: a miss there too
    p = b(two, f"{reg.host}/app/rc:4", '{"rc":2}\n')
    assert json.loads(p.stdout)["cacheFrom"] == "none" and "installing" in p.stderr
    # a cache repository out of reach costs the hit, not the build
    path = os.path.join(work(), "pkg-rc-x")
    with open(path, "w") as f:
        f.write('{"rc":3}\n')
    p = hoist("build", "--source", src, "--kind", "nodejs", "--file", path, "--target",
              f"oci:{out}:5", "--cache-dir", os.path.join(work(), "rc-cache-4"), "--cache-from",
              "127.0.0.1:1/cache/none", "--cache-to", "127.0.0.1:1/cache/none", timeout=900)
    assert "registry cache 127.0.0.1:1/cache/none not read" in p.stderr, p.stderr
    assert "registry cache 127.0.0.1:1/cache/none not written" in p.stderr, p.stderr


@test
def test_prune_drops_build_cache_entries_unused_for_max_age():
    src = with_extend("pr", "#!/bin/sh\ncat /tmp/*.json > /dep\n")
    images = os.path.join(work(), "prune-images")
    cache = os.path.join(images, "build-cache")  # the default build cache under HOIST_IMAGES
    env = {"HOIST_IMAGES": images, "HOIST_ROOTFS_CACHE": os.path.join(work(), "prune-rootfs")}
    out = os.path.join(work(), "out-prune")

    def b(text, tag):
        path = os.path.join(work(), f"prune-{tag}")
        with open(path, "w") as f:
            f.write(text)
        return hoist("build", "--source", src, "--kind", "nodejs", "--file", path, "--target",
                     f"oci:{out}:{tag}", env=env).stderr

    def entries():
        with open(os.path.join(cache, "index.json")) as f:
            return {m["digest"][7:] for m in json.load(f)["manifests"]}

    def age(hexes, days):
        t = time.time() - days * 86400
        for h in hexes:
            os.utime(os.path.join(cache, "blobs", "sha256", h), (t, t))

    assert "cache miss" in b('{"p":1}\n', "one")
    one = entries()
    assert "cache miss" in b('{"p":2}\n', "two")
    two = entries() - one
    assert len(one) == 1 and len(two) == 1
    # both unused for 8 days; then the second is hit, which counts as use
    age(one | two, 8)
    assert "cache hit" in b('{"p":2}\n', "two-again")
    res = json.loads(hoist("prune", "--json", env=env).stdout)["buildCache"]
    assert res["removed"] == 1 and res["bytes"] > 0, res
    assert entries() == two
    assert not os.path.exists(os.path.join(cache, "blobs", "sha256", next(iter(one))))
    # what was pruned is built again; what was kept is still a hit
    assert "cache miss" in b('{"p":1}\n', "one-again")
    assert "cache hit" in b('{"p":2}\n', "two-third")


@test
def test_failed_recipe_leaves_no_image():
    """busybox has no python: the recipe fails, the log names the command and
    its status, and the target gets nothing."""
    reg = registry()
    p = build(busybox(), "python", "anything\n", f"{reg.host}/failed:v1", check=False)
    assert p.returncode == 1, p.stderr
    assert "exited with status 127" in p.stderr, p.stderr
    assert "python install" in p.stderr, p.stderr
    assert not tag_exists(reg, "failed", "v1")


def tree_digest(root):
    """Digest of a tree's names, types, modes and contents (not following links)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            h.update(f"{os.path.relpath(p, root)} {st.st_mode} {st.st_size}\n".encode())
            if os.path.islink(p):
                h.update(os.readlink(p).encode())
            elif os.path.isfile(p):
                h.update(open(p, "rb").read())
    return h.hexdigest()


@test
def test_concurrent_builds_share_the_base_rootfs():
    """Two builds of one base at once: both succeed, each with its own file, and
    the cached rootfs they share is unchanged (the install writes into it)."""
    src = with_extend("p1", "#!/bin/sh\nset -e\ncat /tmp/requirements.txt > /etc/motd\n"
                            "echo x >> /bin/busybox.note\nrm -f /etc/hostname\n")
    out = os.path.join(work(), "out-par")
    first = build(src, "python", "warm\n", f"oci:{out}:w")
    rootfs = first.stderr.split("base rootfs ")[1].split(" ")[0]
    before = tree_digest(rootfs)
    procs = []
    for i in range(2):
        path = os.path.join(work(), f"par-{i}")
        with open(path, "w") as f:
            f.write(f"parallel-{i}\n")
        procs.append(subprocess.Popen(
            [HOIST, "build", "--source", src, "--kind", "python", "--file", path, "--target",
             f"oci:{out}:p{i}", "--cache-dir", cache_dir()],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    for i in range(2):
        motd = hoist("run", f"oci:{out}:p{i}", "--", "cat", "/etc/motd").stdout
        assert motd == f"parallel-{i}\n", motd
        gone = hoist("run", f"oci:{out}:p{i}", "--", "ls", "/etc/hostname", check=False)
        assert gone.returncode != 0, gone.stdout  # the whiteout reached the layer
    assert tree_digest(rootfs) == before


@test
def test_timeout_kills_the_install():
    src = with_extend("t1", "#!/bin/sh\nsleep 1000 &\nsleep 1000\n")
    start = time.monotonic()
    p = build(src, "python", "t\n", f"oci:{os.path.join(work(), 'out-timeout')}:v1",
              "--timeout", "1", check=False)
    assert p.returncode == 1, p.stderr
    assert "timed out after 1 s" in p.stderr, p.stderr
    assert time.monotonic() - start < 30


@test
def test_build_without_a_process_sandbox():
    """hoist build --no-process-sandbox: the install sees hoist's /proc (this test's process in
    it), the masks still hide /proc/keys, and what it left running is gone when hoist is."""
    me = os.getpid()
    src = with_extend("np1", "#!/bin/sh\nset -e\n"
                             f"{{ ls /proc | grep -cx {me}; wc -c < /proc/keys; }} > /extended\n"
                             "sleep 1111 &\n")
    out = os.path.join(work(), "out-noprocsandbox")
    build(src, "python", "x\n", f"oci:{out}:v1", "--no-process-sandbox")
    assert not sleepers("1111"), "the install's background process outlived the build"
    res = hoist("run", f"oci:{out}:v1", "--", "cat", "/extended").stdout
    assert res == "1\n0\n", res


@test
def test_dotnet_recipe_with_a_stand_in_tool():
    """dotnet, the one kind not run with its real tool: Debian packages no .NET
    SDK and no NuGet feed is reachable here (README "Kinds": a user brings a
    base with the SDK and --nuget-source). A stand-in `dotnet` on busybox
    records how the recipe called it (argv, working directory, environment);
    the file, the project directory, the source and the new image's Env are
    checked for real. go, java, php and ruby run their real package managers
    in test_kinds.py."""
    d = os.path.join(work(), "stand-in")
    os.makedirs(d)
    tool = os.path.join(d, "dotnet")
    with open(tool, "w") as f:
        f.write("#!/bin/sh\nmkdir -p /var/log\n"
                "{ echo \"$(basename \"$0\") $* @ $(pwd)\"; env | sort | "
                "grep -E '^(HOIST_[A-Z_]+|NUGET_PACKAGES|DOTNET_[A-Z_]+)='; } "
                ">> /var/log/stand-in.log\n")
    os.chmod(tool, 0o755)
    layout = os.path.join(work(), "stand-in-base")
    hoist("append", busybox(), "--target", f"oci:{layout}:tools",
          "--map", f"{tool}:/usr/local/bin/dotnet")
    out = os.path.join(work(), "out-dotnet")
    content = "dotnet requirements\n"
    build(f"oci:{layout}:tools", "dotnet", content, f"oci:{out}:v1", "--nuget-source",
          "http://mirror.test/")
    log = hoist("run", f"oci:{out}:v1", "--", "cat", "/var/log/stand-in.log").stdout
    for c in ("dotnet restore --source http://mirror.test/ @ /opt/hoist/dotnet",
              "NUGET_PACKAGES=/opt/hoist/dotnet/packages", "DOTNET_CLI_TELEMETRY_OPTOUT=1"):
        assert c in log, (c, log)
    copied = hoist("run", f"oci:{out}:v1", "--", "cat", "/opt/hoist/dotnet/project.json").stdout
    assert copied == content, copied
    cfg = json.loads(skopeo("inspect", "--config", f"oci:{out}:v1").stdout)
    assert "NUGET_PACKAGES=/opt/hoist/dotnet/packages" in cfg["config"].get("Env", []), cfg
    # the source is a build setting: it never reaches the image
    assert "mirror.test" not in json.dumps(cfg), cfg


@test
def test_rootless_build_maps_owners_back_to_root():
    """As an unprivileged user (nobody, via setpriv): the install runs in a user
    namespace where root is the caller, and the layer's files are owned by 0,
    not by the caller's uid."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        raise Skip("needs root to switch to an unprivileged user")
    src = with_extend("r1", "#!/bin/sh\nset -e\nid -u > /who\nmkdir -p /srv/app\n"
                            "cp /tmp/requirements.txt /srv/app/\n")
    home = os.path.join(work(), "nobody")
    os.makedirs(home)
    layout = src.split(":")[1]
    for d in (home, layout):
        for dirpath, _, filenames in os.walk(d):
            os.chown(dirpath, 65534, 65534)
            for f in filenames:
                os.chown(os.path.join(dirpath, f), 65534, 65534)
    os.chmod(work(), 0o755)
    req = os.path.join(home, "requirements.txt")
    with open(req, "w") as f:
        f.write("rootless\n")
    out = os.path.join(home, "out")
    p = run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", f"HOME={home}",
            f"HOIST_CACHE={home}/cache", f"HOIST_IMAGES={home}/images",
            f"HOIST_ROOTFS_CACHE={home}/cache/rootfs", HOIST, "build",
            "--source", src, "--kind", "python", "--file", req, "--target", f"oci:{out}:v1",
            "--network", "none",  # pasta cannot open /dev/net/tun (0600) as nobody here
            check=False)
    assert p.returncode == 0, p.stderr
    index = json.load(open(os.path.join(out, "index.json")))
    blob = lambda d: os.path.join(out, "blobs", "sha256", d.split(":")[1])
    manifest = json.load(open(blob(index["manifests"][0]["digest"])))
    with tarfile.open(blob(manifest["layers"][-1]["digest"])) as t:
        owners = {m.name: (m.uid, m.gid) for m in t.getmembers()}
        who = t.extractfile("who").read()
    assert who == b"0\n", who  # root inside the namespace
    assert owners["srv/app/requirements.txt"] == (0, 0), owners
    assert set(owners.values()) == {(0, 0)}, owners


@test
def test_moved_source_tag_is_pulled_again():
    """The image store is reused only while the registry serves the same digest."""
    reg = registry()
    ref = f"{reg.host}/moving/base:1"
    hoist("copy", busybox(), ref)
    out = os.path.join(work(), "out-moving")
    first = build(ref, "python", "m\n", f"oci:{out}:a", check=False)
    assert first.returncode == 1 and "python install" in first.stderr, first.stderr
    hoist("copy", with_extend("m1", "#!/bin/sh\necho moved > /moved\n"), ref)
    second = build(ref, "python", "m\n", f"oci:{out}:b")
    assert "/bin/extend" in second.stderr, second.stderr
    assert hoist("run", f"oci:{out}:b", "--", "cat", "/moved").stdout == "moved\n"


@test
def test_python_kind_from_local_index():
    reg = registry()
    base = debian()
    index = pip_index()
    target = f"{reg.host}/py/app:v1"
    p = build(base, "python", "tinypkg==1.0\n", target, "--pip-index-url", index, "--json")
    assert "Successfully installed tinypkg-1.0" in p.stderr, p.stderr
    res = json.loads(p.stdout)
    # the base layer is mounted from base/debian, never downloaded or uploaded again
    assert res["baseCopied"] == 0 and res["basePresent"] == 1, res
    assert len(skopeo_layers(target)) == len(skopeo_layers(base)) + 1
    out = hoist("run", target, "--", "python3", "-c",
                "import tinypkg; print(tinypkg.VALUE)").stdout
    assert out.strip() == "tiny-42", out
    cfg = json.loads(skopeo("inspect", "--config", "--tls-verify=false",
                            f"docker://{target}").stdout)
    assert cfg["config"]["Labels"]["org.opencontainers.image.base.name"] == base

    # a requirement the index does not have: pip's message in the log, no tag
    bad = build(base, "python", "hoist-no-such-package==9.9\n", f"{reg.host}/py/bad:v1",
                "--pip-index-url", index, check=False)
    assert bad.returncode == 1, bad.stderr
    assert "No matching distribution found for hoist-no-such-package==9.9" in bad.stderr, \
        bad.stderr
    assert "exited with status 1" in bad.stderr, bad.stderr
    assert not tag_exists(reg, "py/bad", "v1")


@test
def test_nodejs_kind_from_local_registry():
    reg = registry()
    base = debian()
    npm = npm_registry()
    target = f"{reg.host}/js/app:v1"
    pkg = json.dumps({"name": "app", "version": "1.0.0", "dependencies": {"tinyjs": "1.0.0"}})
    build(base, "nodejs", pkg, target, "--npm-registry", npm)
    out = hoist("run", target, "--", "node", "-e",
                "console.log(require('tinyjs').value)").stdout
    assert out.strip() == "tinyjs-7", out
    ls = hoist("run", target, "--", "ls", "/opt/hoist/nodejs/node_modules").stdout.split()
    assert "tinyjs" in ls, ls
    cfg = json.loads(skopeo("inspect", "--config", "--tls-verify=false",
                            f"docker://{target}").stdout)
    assert "NODE_PATH=/opt/hoist/nodejs/node_modules" in cfg["config"]["Env"], cfg["config"]


if __name__ == "__main__":
    main()
