"""hoist layer create and hoist append, checked with gzip, zstd, tar, sha256 and umoci."""
import gzip
import hashlib
import json
import os
import signal
import subprocess
import zlib

from hoisttest import (HOIST, Registry, Skip, hoist, main, run, sha256_file, skopeo, test, tmpdir,
                       wait_for)


def make_tree(root):
    os.makedirs(f"{root}/usr/bin")
    os.makedirs(f"{root}/etc/app")
    with open(f"{root}/usr/bin/tool", "w") as f:
        f.write("#!/bin/sh\necho tool\n")
    os.chmod(f"{root}/usr/bin/tool", 0o4755)
    with open(f"{root}/etc/app/conf", "w") as f:
        f.write("key=value\n" * 1000)
    os.link(f"{root}/usr/bin/tool", f"{root}/usr/bin/tool2")
    os.symlink("../usr/bin/tool", f"{root}/etc/tool")
    with open(f"{root}/big", "wb") as f:
        f.write(os.urandom(3 << 20))
    return root


def stream_sha256(cmd):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    h = hashlib.sha256()
    for chunk in iter(lambda: p.stdout.read(1 << 20), b""):
        h.update(chunk)
    assert p.wait() == 0, f"{cmd} failed"
    return "sha256:" + h.hexdigest()


def create(tree, out, *args, env=None):
    p = hoist("layer", "create", tree, "-o", out, "--json", *args, env=env)
    return json.loads(p.stdout)


@test
def layer_decompresses_with_standard_tools():
    d = tmpdir()
    tree = make_tree(f"{d}/tree")
    tools = {"gzip": ["gzip", "-dc"], "zstd": ["zstd", "-dc"], "none": ["cat"]}
    diff_ids = set()
    for comp, tool in tools.items():
        out = f"{d}/layer.{comp}"
        r = create(tree, out, "--compress", comp)
        assert sha256_file(out) == r["digest"], (comp, r)
        assert os.path.getsize(out) == r["size"]
        assert stream_sha256([*tool, out]) == r["diffID"], comp
        diff_ids.add(r["diffID"])
        suffix = {"gzip": "+gzip", "zstd": "+zstd", "none": ""}[comp]
        assert r["mediaType"] == "application/vnd.oci.image.layer.v1.tar" + suffix
    # same tar whatever the compression
    assert len(diff_ids) == 1
    # igzip's gzip and zlib's gzip (level 6) are both standard gzip
    r = create(tree, f"{d}/l6.gz", "--level", "6")
    assert stream_sha256(["gzip", "-dc", f"{d}/l6.gz"]) == r["diffID"]


@test
def tar_content_as_gnu_tar_sees_it():
    d = tmpdir()
    tree = make_tree(f"{d}/tree")
    create(tree, f"{d}/l.gz")
    listing = run("tar", "-tvzf", f"{d}/l.gz").stdout.splitlines()
    text = "\n".join(listing)
    assert "usr/bin/tool2 link to usr/bin/tool" in text, text
    assert "etc/tool -> ../usr/bin/tool" in text, text
    assert any(line.startswith("-rwsr-xr-x 0/0") and line.endswith(" usr/bin/tool") for line in listing), text
    paths = run("tar", "-tzf", f"{d}/l.gz").stdout.split()
    assert paths == sorted(paths), paths
    # extract and compare content
    x = f"{d}/x"
    os.makedirs(x)
    run("tar", "-xzf", f"{d}/l.gz", "-C", x)
    assert sha256_file(f"{x}/big") == sha256_file(f"{tree}/big")
    assert os.stat(f"{x}/usr/bin/tool").st_ino == os.stat(f"{x}/usr/bin/tool2").st_ino


@test
def deterministic_across_runs_and_mtimes():
    d = tmpdir()
    tree = make_tree(f"{d}/tree")
    a = create(tree, f"{d}/a.gz", "--source-date-epoch", "1700000000")
    b = create(tree, f"{d}/b.gz", "--source-date-epoch", "1700000000")
    assert a["digest"] == b["digest"] and a["diffID"] == b["diffID"]
    for root, dirs, files in os.walk(tree):
        for n in dirs + files:
            os.utime(f"{root}/{n}", (1800000000, 1800000000), follow_symlinks=False)
    c = create(tree, f"{d}/c.gz", env={"SOURCE_DATE_EPOCH": "1700000000"})
    assert c["digest"] == a["digest"]
    e = create(tree, f"{d}/e.gz")
    assert e["diffID"] != a["diffID"]


@test
def overlay_upper_whiteouts():
    if os.geteuid() != 0:
        raise Skip("mknod of a 0:0 whiteout needs root")
    d = tmpdir()
    up = f"{d}/upper"
    os.makedirs(f"{up}/etc/opq")
    os.mknod(f"{up}/etc/gone", 0o600 | 0o020000, os.makedev(0, 0))
    os.setxattr(f"{up}/etc/opq", "trusted.overlay.opaque", b"y")
    with open(f"{up}/etc/opq/kept", "w") as f:
        f.write("k")
    create(up, f"{d}/l.gz", "--overlay")
    names = run("tar", "-tzf", f"{d}/l.gz").stdout.split()
    assert names == ["etc/", "etc/.wh.gone", "etc/opq/", "etc/opq/.wh..wh..opq", "etc/opq/kept"], names


@test
def layer_from_maps_with_id_map():
    d = tmpdir()
    tree = make_tree(f"{d}/tree")
    os.chown(f"{tree}/etc/app/conf", 100123, 100456)
    create_args = ["layer", "create", "--map", f"{tree}/etc:/srv/etc", "--map",
                   f"{tree}/big:srv/data/big", "--uid-map", "0:100000:65536",
                   "--gid-map", "0:100000:65536", "-o", f"{d}/l.tar", "--compress", "none"]
    hoist(*create_args)
    listing = run("tar", "-tvf", f"{d}/l.tar", "--numeric-owner").stdout.splitlines()
    names = [line.split()[-1] if "->" not in line else line.split()[-3] for line in listing]
    assert names == ["srv/data/big", "srv/etc/", "srv/etc/app/", "srv/etc/app/conf",
                     "srv/etc/tool"], listing
    conf = [line for line in listing if line.endswith("srv/etc/app/conf")][0]
    assert " 123/456 " in conf, conf
    p = hoist("layer", "create", "--map", f"{tree}/big:../x", "-o", f"{d}/bad", check=False)
    assert p.returncode == 1 and '".." is not allowed' in p.stderr, p.stderr


def overlay_upper(d):
    """Deletes etc/a and replaces etc/d through a real overlayfs mount; returns
    (lower, upper)."""
    lower, upper, work, merged = (f"{d}/{n}" for n in ("lower", "upper", "work", "merged"))
    for p in (f"{lower}/etc/d", upper, work, merged):
        os.makedirs(p)
    for name, text in (("etc/a", "a\n"), ("etc/d/b", "b\n"), ("etc/keep", "k\n")):
        with open(f"{lower}/{name}", "w") as f:
            f.write(text)
    p = run("mount", "-t", "overlay", "overlay", "-o",
            f"lowerdir={lower},upperdir={upper},workdir={work}", merged, check=False)
    if p.returncode != 0:
        raise Skip(f"cannot mount overlayfs here: {p.stderr.strip()}")
    try:
        os.unlink(f"{merged}/etc/a")
        run("rm", "-rf", f"{merged}/etc/d")
        os.makedirs(f"{merged}/etc/d")
        with open(f"{merged}/etc/d/c", "w") as f:
            f.write("c\n")
    finally:
        run("umount", merged)
    return lower, upper


@test
def overlay_mount_upper_dir():
    if os.geteuid() != 0:
        raise Skip("mounting overlayfs needs root")
    d = tmpdir()
    _, upper = overlay_upper(d)
    create(upper, f"{d}/l.gz", "--overlay")
    names = run("tar", "-tzf", f"{d}/l.gz").stdout.split()
    assert names == ["etc/", "etc/.wh.a", "etc/d/", "etc/d/.wh..wh..opq", "etc/d/c"], names
    # overlay's own xattrs stay out of the layer
    listing = run("tar", "-tvzf", f"{d}/l.gz", "--xattrs", "--xattrs-include=*").stdout
    assert "overlay" not in listing, listing


@test
def usage_and_errors():
    assert hoist("layer", "--help").returncode == 0
    assert "Usage: hoist layer create" in hoist("layer", "create", "--help").stdout
    d = tmpdir()
    assert hoist("layer", "create", d, check=False).returncode == 2
    assert hoist("layer", "create", d, "-o", f"{d}/x", "--compress", "xz", check=False).returncode == 2
    p = hoist("layer", "create", f"{d}/missing", "-o", f"{d}/x", check=False)
    assert p.returncode == 1 and "missing" in p.stderr, p.stderr
    assert not os.path.exists(f"{d}/x")
    # "-o -": the blob on stdout, the digests on stderr
    tree = make_tree(f"{d}/tree")
    p = subprocess.run([os.environ.get("HOIST_BIN", "hoist"), "layer", "create", tree, "-o", "-",
                        "--json"], capture_output=True, check=True)
    r = json.loads(p.stderr)
    assert "sha256:" + hashlib.sha256(p.stdout).hexdigest() == r["digest"]


# ------------------------------------------------------------------ append


def append_available():
    p = hoist("append", "--help", check=False)
    if p.returncode != 0:
        raise Skip("hoist append is not part of this build (needs the layout store)")


def registry_available():
    return "--creds" in hoist("append", "--help").stdout


def make_base(d):
    """An OCI layout with image 'base': one layer holding etc/base, made by umoci."""
    lay = f"{d}/lay"
    run("umoci", "init", "--layout", lay)
    run("umoci", "new", "--image", f"{lay}:base")
    os.makedirs(f"{d}/basetree/etc")
    with open(f"{d}/basetree/etc/base", "w") as f:
        f.write("from the base\n")
    run("umoci", "insert", "--image", f"{lay}:base", f"{d}/basetree/etc", "/etc")
    return lay


def layout_json(lay, digest):
    with open(f"{lay}/blobs/sha256/{digest.split(':')[1]}") as f:
        return json.load(f)


def tagged(lay, tag):
    with open(f"{lay}/index.json") as f:
        for m in json.load(f)["manifests"]:
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
                return m
    raise AssertionError(f"tag {tag} not in {lay}/index.json")


@test
def append_layer_unpacks_with_umoci():
    append_available()
    d = tmpdir()
    lay = make_base(d)
    tree = make_tree(f"{d}/tree")
    p = hoist("append", f"oci:{lay}:base", "--target", f"oci:{lay}:new", "--layer", tree,
              "--json", env={"SOURCE_DATE_EPOCH": "1700000000"})
    r = json.loads(p.stdout)
    assert r["layers"] == 2 and r["skipped"] == 1 and r["copied"] == 0, r
    desc = tagged(lay, "new")
    assert desc["digest"] == r["manifest"]
    assert sha256_file(f"{lay}/blobs/sha256/{desc['digest'][7:]}") == desc["digest"]
    m = layout_json(lay, r["manifest"])
    assert m["config"]["digest"] == r["config"]
    assert m["layers"][-1]["digest"] == r["layer"]
    assert m["layers"][-1]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    layer_file = f"{lay}/blobs/sha256/{r['layer'][7:]}"
    assert sha256_file(layer_file) == r["layer"]
    assert stream_sha256(["gzip", "-dc", layer_file]) == r["diffID"]
    cfg = layout_json(lay, r["config"])
    assert cfg["rootfs"]["diff_ids"][-1] == r["diffID"]
    assert len(cfg["rootfs"]["diff_ids"]) == 2
    assert cfg["history"][-1]["created_by"] == "hoist append"
    assert cfg["created"].startswith("2023-11-14T22:13:20"), cfg["created"]
    # umoci, an independent implementation, unpacks it: both layers present
    bundle = f"{d}/bundle"
    run("umoci", "unpack", "--image", f"{lay}:new", bundle)
    root = f"{bundle}/rootfs"
    with open(f"{root}/etc/base") as f:
        assert f.read() == "from the base\n"
    assert sha256_file(f"{root}/big") == sha256_file(f"{tree}/big")
    st = os.stat(f"{root}/usr/bin/tool")
    assert st.st_mode & 0o7777 == 0o4755
    assert st.st_ino == os.stat(f"{root}/usr/bin/tool2").st_ino
    assert os.readlink(f"{root}/etc/tool") == "../usr/bin/tool"
    # skopeo reads it too
    info = json.loads(run("skopeo", "inspect", f"oci:{lay}:new").stdout)
    assert info["Layers"][-1] == r["layer"]


@test
def append_map_and_other_layout():
    append_available()
    d = tmpdir()
    lay = make_base(d)
    tree = make_tree(f"{d}/tree")
    out = f"{d}/out"
    args = ["append", f"oci:{lay}:base", "--target", f"oci:{out}:v1",
            "--map", f"{tree}/usr/bin/tool:/opt/app/bin/tool", "--map", f"{tree}/etc:/opt/app/etc",
            "--json"]
    r = json.loads(hoist(*args).stdout)
    # a new layout: the base layer is copied; a second run finds it there
    assert r["copied"] == 1 and r["skipped"] == 0, r
    r2 = json.loads(hoist(*args).stdout)
    assert r2["copied"] == 0 and r2["skipped"] == 1, r2
    want = ["opt/app/bin/tool", "opt/app/etc/", "opt/app/etc/app/", "opt/app/etc/app/conf",
            "opt/app/etc/tool"]
    names = run("tar", "-tzf", f"{out}/blobs/sha256/{r['layer'][7:]}").stdout.split()
    assert names == want, names
    bundle = f"{d}/bundle"
    run("umoci", "unpack", "--image", f"{out}:v1", bundle)
    assert os.path.exists(f"{bundle}/rootfs/opt/app/bin/tool")
    assert os.path.exists(f"{bundle}/rootfs/etc/base")
    # zstd (this umoci cannot unpack zstd layers; GNU tar with zstd checks it)
    args[args.index(f"oci:{out}:v1")] = f"oci:{out}:zstd"
    rz = json.loads(hoist(*args[:-1], "--compress", "zstd", "--json").stdout)
    assert rz["diffID"] == r["diffID"]
    m = layout_json(out, rz["manifest"])
    assert m["layers"][-1]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    names = run("tar", "--zstd", "-tf", f"{out}/blobs/sha256/{rz['layer'][7:]}").stdout.split()
    assert names == want, names


@test
def append_to_scratch():
    append_available()
    d = tmpdir()
    tree = make_tree(f"{d}/tree")
    r = json.loads(hoist("append", "scratch", "--target", f"oci:{d}/s:v1", "--layer", tree,
                         "--platform", "linux/arm64", "--json").stdout)
    assert r["layers"] == 1 and r["copied"] == 0 and r["skipped"] == 0, r
    cfg = layout_json(f"{d}/s", r["config"])
    assert cfg["architecture"] == "arm64" and cfg["rootfs"]["diff_ids"] == [r["diffID"]], cfg
    run("umoci", "unpack", "--image", f"{d}/s:v1", f"{d}/bundle")
    assert sha256_file(f"{d}/bundle/rootfs/big") == sha256_file(f"{tree}/big")


@test
def append_overlay_whiteouts_apply_in_umoci():
    append_available()
    if os.geteuid() != 0:
        raise Skip("mounting overlayfs needs root")
    d = tmpdir()
    lower, upper = overlay_upper(d)
    lay = f"{d}/lay"
    run("umoci", "init", "--layout", lay)
    run("umoci", "new", "--image", f"{lay}:base")
    run("umoci", "insert", "--image", f"{lay}:base", f"{lower}/etc", "/etc")
    hoist("append", f"oci:{lay}:base", "--target", f"oci:{lay}:new", "--layer", upper,
          "--overlay")
    run("umoci", "unpack", "--image", f"{lay}:new", f"{d}/bundle")
    root = f"{d}/bundle/rootfs"
    assert not os.path.lexists(f"{root}/etc/a")
    assert sorted(os.listdir(f"{root}/etc/d")) == ["c"], os.listdir(f"{root}/etc/d")
    assert os.path.exists(f"{root}/etc/keep")


@test
def append_usage_and_errors():
    append_available()
    d = tmpdir()
    lay = make_base(d)
    assert hoist("append", f"oci:{lay}:base", "--layer", d, check=False).returncode == 2
    assert hoist("append", f"oci:{lay}:base", "--target", f"oci:{lay}", "--layer", d,
                 check=False).returncode == 2
    assert hoist("append", f"oci:{lay}:base", "--target", f"oci:{lay}:x", check=False).returncode == 2
    p = hoist("append", f"oci:{lay}:nope", "--target", f"oci:{lay}:x", "--layer", d, check=False)
    assert p.returncode == 1 and "nope" in p.stderr, p.stderr


@test
def append_registry_to_registry():
    append_available()
    if not registry_available():
        raise Skip("hoist append has no registry support in this build")
    d = tmpdir()
    lay = make_base(d)
    reg = Registry(d).start()
    skopeo("copy", "--dest-tls-verify=false", f"oci:{lay}:base", f"docker://{reg.host}/base:1")
    tree = make_tree(f"{d}/tree")
    r = json.loads(hoist("append", f"{reg.host}/base:1", "--target", f"{reg.host}/app:1",
                         "--layer", tree, "--json").stdout)
    # the base layer is mounted from base/ (same registry), never copied
    assert r["layers"] == 2 and r["skipped"] == 1 and r["copied"] == 0, r
    # the same target again: every base blob is already there
    r2 = json.loads(hoist("append", f"{reg.host}/base:1", "--target", f"{reg.host}/app:2",
                          "--layer", tree, "--json").stdout)
    assert r2["skipped"] == 1 and r2["copied"] == 0, r2
    assert r2["layer"] == r["layer"]
    # skopeo (independent) reads the pushed image; umoci unpacks it
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{reg.host}/app:1").stdout)
    assert info["Layers"][-1] == r["layer"] and len(info["Layers"]) == 2, info
    out = f"{d}/pulled"
    skopeo("copy", "--src-tls-verify=false", f"docker://{reg.host}/app:1", f"oci:{out}:app")
    run("umoci", "unpack", "--image", f"{out}:app", f"{d}/bundle")
    assert sha256_file(f"{d}/bundle/rootfs/big") == sha256_file(f"{tree}/big")
    assert os.path.exists(f"{d}/bundle/rootfs/etc/base")
    # layout base -> registry target, and registry base -> layout target
    r3 = json.loads(hoist("append", f"oci:{lay}:base", "--target", f"{reg.host}/app:3",
                          "--layer", tree, "--json").stdout)
    assert r3["skipped"] == 1, r3
    r4 = json.loads(hoist("append", f"{reg.host}/app:1", "--target", f"oci:{d}/o:x",
                          "--layer", tree, "--json").stdout)
    assert r4["layers"] == 3 and r4["copied"] == 2, r4


@test
def append_registry_dies_mid_upload():
    """A new layer streams into the upload session as it is written; when the
    registry dies mid-stream the append fails with a message naming the
    registry, and no tag appears once the registry is back."""
    append_available()
    d = tmpdir()
    lay = make_base(d)
    reg = Registry(d).start()
    tree = f"{d}/tree"
    os.makedirs(tree)
    with open(f"{tree}/huge", "wb") as f:  # incompressible: the upload is slow enough to hit
        for _ in range(256):
            f.write(os.urandom(1 << 20))
    proc = subprocess.Popen([HOIST, "append", f"oci:{lay}:base", "--target", f"{reg.host}/app:1",
                             "--layer", tree], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    uploads = os.path.join(reg.dir, "data", "docker", "registry", "v2", "repositories", "app",
                           "_uploads")

    def uploading():
        for root, _, files in os.walk(uploads):
            if "data" in files and os.path.getsize(os.path.join(root, "data")) > (8 << 20):
                return True
        return False

    wait_for(uploading, timeout=60, what="upload in progress")
    reg.stop(signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert reg.host in err and "Traceback" not in err, err
    reg.start()
    p = skopeo("inspect", "--tls-verify=false", f"docker://{reg.host}/app:1", check=False)
    assert p.returncode != 0, p.stdout
    reg.stop()


# ------------------------------------------------------- gzip on every core
# A gzip layer is compressed in blocks of 1 MiB of tar on several threads and
# joined into one gzip member (pigz's shape). Every reader must take it, and
# the bytes must not depend on the number of threads.

GZIP_BLOCK = 1 << 20


def text_file(path, size):
    """size bytes of compressible text."""
    words = [b"layer ", b"image ", b"blob ", b"gzip ", b"sha256 ", b"\n", b"manifest "]
    out = bytearray()
    i = 0
    while len(out) < size:
        out += words[(i * 7 + i // 5) % len(words)] + str(i % 977).encode()
        i += 1
    with open(path, "wb") as f:
        f.write(out[:size])


def cmp_stream(cmd, path):
    """The output of cmd is the content of path."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    out = p.stdout.read()
    assert p.wait() == 0, f"{cmd} failed"
    with open(path, "rb") as f:
        assert out == f.read(), f"{cmd}: other bytes than {path}"


def check_every_reader(blob, tar):
    """blob (gzip) decompresses to the bytes of tar with GNU gzip, busybox,
    Python's gzip and zlib (as one member) and GNU tar."""
    run("gzip", "-t", blob)
    cmp_stream(["gzip", "-dc", blob], tar)
    cmp_stream(["busybox", "gunzip", "-c", blob], tar)
    with open(blob, "rb") as f:
        data = f.read()
    with open(tar, "rb") as f:
        want = f.read()
    assert gzip.decompress(data) == want
    d = zlib.decompressobj(16 + 15)
    assert d.decompress(data) == want and d.eof and d.unused_data == b"", "not one gzip member"
    assert run("tar", "-tzf", blob).stdout.split() == run("tar", "-tf", tar).stdout.split()


@test
def gzip_blocks_same_on_any_thread_count_and_every_reader_takes_them():
    d = tmpdir()
    tree = make_tree(f"{d}/tree")
    text_file(f"{tree}/text", 9 * GZIP_BLOCK + 4321)
    plain = create(tree, f"{d}/l.tar", "--compress", "none")
    blobs = {}
    for n in (1, 2, 4):
        r = create(tree, f"{d}/l{n}.gz", "--compress-threads", str(n))
        assert r["diffID"] == plain["diffID"], r
        blobs[n] = r
    # one blob, whatever the thread count (and the default's)
    r0 = create(tree, f"{d}/l0.gz")
    assert {r["digest"] for r in blobs.values()} == {r0["digest"]}, (blobs, r0)
    for n in (2, 4):
        run("cmp", f"{d}/l1.gz", f"{d}/l{n}.gz")
    assert sha256_file(f"{d}/l1.gz") == r0["digest"]
    check_every_reader(f"{d}/l1.gz", f"{d}/l.tar")
    # zlib's levels are blocked the same way
    for n in (1, 3):
        create(tree, f"{d}/z{n}.gz", "--level", "6", "--compress-threads", str(n))
    run("cmp", f"{d}/z1.gz", f"{d}/z3.gz")
    check_every_reader(f"{d}/z1.gz", f"{d}/l.tar")
    # the ratio stays close to one stream's: within 1% of igzip -1 on the same tar
    single = len(subprocess.run(["igzip", "-1", "-c", f"{d}/l.tar"], capture_output=True,
                                check=True).stdout)
    assert r0["size"] <= single * 1.01, (r0["size"], single)
    p = hoist("layer", "create", tree, "-o", f"{d}/x", "--compress-threads", "0", check=False)
    assert p.returncode == 2 and "--compress-threads" in p.stderr, p.stderr


@test
def gzip_block_edges_every_reader_takes():
    """A tar of exactly two blocks (the boundary at EOF) and an empty tree."""
    d = tmpdir()
    tree = f"{d}/exact"
    os.makedirs(tree)
    # one member: a 512-byte header, the data, two 512-byte end blocks
    text_file(f"{tree}/f", 2 * GZIP_BLOCK - 3 * 512)
    os.utime(f"{tree}/f", (1700000000, 1700000000))
    os.utime(tree, (1700000000, 1700000000))
    plain = create(tree, f"{d}/exact.tar", "--compress", "none")
    # libarchive may add entries (the root) and pax headers: pad to the boundary
    extra = plain["tarSize"] - 2 * GZIP_BLOCK
    if extra:
        text_file(f"{tree}/f", 2 * GZIP_BLOCK - 3 * 512 - extra)
        plain = create(tree, f"{d}/exact.tar", "--compress", "none")
    assert plain["tarSize"] == 2 * GZIP_BLOCK, plain
    for n in (1, 2):
        create(tree, f"{d}/exact{n}.gz", "--compress-threads", str(n))
    run("cmp", f"{d}/exact1.gz", f"{d}/exact2.gz")
    check_every_reader(f"{d}/exact1.gz", f"{d}/exact.tar")
    empty = f"{d}/empty"
    os.makedirs(empty)
    create(empty, f"{d}/empty.tar", "--compress", "none")
    create(empty, f"{d}/empty.gz", "--compress-threads", "3")
    check_every_reader(f"{d}/empty.gz", f"{d}/empty.tar")


@test
def gzip_blocks_through_go_readers():
    """umoci (Go) unpacks a layer compressed on four threads, and skopeo copies
    the image with the digests as they are."""
    append_available()
    d = tmpdir()
    tree = make_tree(f"{d}/tree")
    text_file(f"{tree}/text", 5 * GZIP_BLOCK + 17)
    lay = f"{d}/img"
    rs = [json.loads(hoist("append", "scratch", "--target", f"oci:{lay}:t{n}", "--layer", tree,
                           "--compress-threads", str(n), "--json",
                           env={"SOURCE_DATE_EPOCH": "1700000000"}).stdout)
          for n in (1, 4)]
    assert rs[0]["layer"] == rs[1]["layer"] and rs[0]["manifest"] == rs[1]["manifest"], rs
    r = rs[1]
    skopeo("copy", f"oci:{lay}:t4", f"oci:{d}/copy:t4")
    info = json.loads(skopeo("inspect", f"oci:{d}/copy:t4").stdout)
    assert info["Layers"] == [r["layer"]], info
    copied = f"{d}/copy/blobs/sha256/{r['layer'][7:]}"
    assert sha256_file(copied) == r["layer"]
    run("umoci", "unpack", "--rootless", "--image", f"{d}/copy:t4", f"{d}/bundle")
    for name in ("text", "big", "etc/app/conf"):
        assert sha256_file(f"{d}/bundle/rootfs/{name}") == sha256_file(f"{tree}/{name}"), name


if __name__ == "__main__":
    main()
