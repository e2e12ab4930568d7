"""hoist layer create and hoist append, checked with gzip, zstd, tar, sha256 and umoci."""
import hashlib
import json
import os
import subprocess

from hoisttest import Skip, hoist, main, run, sha256_file, test, tmpdir


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
def usage_and_errors():
    assert hoist("layer", "--help").returncode == 0
    assert "Usage: hoist layer create" in hoist("layer", "create", "--help").stdout
    d = tmpdir()
    assert hoist("layer", "create", d, check=False).returncode == 2
    assert hoist("layer", "create", d, "-o", f"{d}/x", "--compress", "xz", check=False).returncode == 2
    p = hoist("layer", "create", f"{d}/missing", "-o", f"{d}/x", check=False)
    assert p.returncode == 1 and "missing" in p.stderr, p.stderr
    assert not os.path.exists(f"{d}/x")


if __name__ == "__main__":
    main()
