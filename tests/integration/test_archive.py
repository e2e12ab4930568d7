"""docker-archive and oci-archive: hoist writes what skopeo writes (same manifest.json, the
same config and layer bytes) and reads what skopeo writes; each tool reports the same
manifest, config and layer digests for the other's archives. Images come from hoist's own
layer writer (gzip layers) into a layout; no network."""
import hashlib
import json
import os
import tarfile

from hoisttest import hoist, main, run, skopeo, test, tmpdir

_image = {}


def image():
    """A two-layer image with gzip layers in a layout: (dir, tag)."""
    if _image:
        return _image["dir"], "v2"
    d = tmpdir()
    tree = os.path.join(d, "tree")
    os.makedirs(os.path.join(tree, "etc"))
    with open(os.path.join(tree, "etc", "hello"), "w") as f:
        f.write("hello from an archive\n")
    os.symlink("hello", os.path.join(tree, "etc", "link"))
    layout = os.path.join(d, "layout")
    hoist("append", "scratch", "--target", f"oci:{layout}:v1", "--layer", tree,
          "--source-date-epoch", "1700000000")
    hoist("append", f"oci:{layout}:v1", "--target", f"oci:{layout}:v2",
          "--map", f"{tree}/etc/hello:/opt/x", "--source-date-epoch", "1700000000")
    _image["dir"] = layout
    return layout, "v2"


def members(path):
    """name -> sha256 of each regular member; symlinks as '-> target'."""
    out = {}
    with tarfile.open(path) as t:
        for m in t.getmembers():
            if m.isfile():
                out[m.name] = hashlib.sha256(t.extractfile(m).read()).hexdigest()
            elif m.issym():
                out[m.name] = "-> " + m.linkname
    return out


def member(path, name):
    with tarfile.open(path) as t:
        return t.extractfile(name).read()


def digest(data):
    if isinstance(data, str):
        data = data.encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tree_of(root):
    """path -> (kind, content or link) of an unpacked tree."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("dir", None)
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", f.read())
    return out


@test
def docker_archive_written_as_skopeo_writes_it():
    layout, tag = image()
    d = tmpdir()
    ours, theirs = os.path.join(d, "hoist.tar"), os.path.join(d, "skopeo.tar")
    hoist("copy", f"oci:{layout}:{tag}", f"docker-archive:{ours}:example.com/app:2")
    skopeo("copy", f"oci:{layout}:{tag}", f"docker-archive:{theirs}:example.com/app:2")
    # manifest.json byte for byte; layers decompressed as <diffID>.tar, the config as
    # <digest>.json, each with the same bytes (skopeo adds its legacy files)
    assert member(ours, "manifest.json") == member(theirs, "manifest.json")
    mine, sk = members(ours), members(theirs)
    assert set(mine) == {"manifest.json"} | {n for n in sk if "/" not in n and n != "repositories"}
    for name, h in mine.items():
        assert sk[name] == h, name
    m = json.loads(member(ours, "manifest.json"))[0]
    assert m["RepoTags"] == ["example.com/app:2"]
    config = member(ours, m["Config"])
    diff_ids = json.loads(config)["rootfs"]["diff_ids"]
    assert [l[:-4] for l in m["Layers"]] == [d[7:] for d in diff_ids]
    for l in m["Layers"]:
        assert digest(member(ours, l)) == "sha256:" + l[:-4]
    # the config is the layout's, unchanged
    raw = json.loads(hoist("inspect", "--raw", f"oci:{layout}:{tag}").stdout)
    assert digest(config) == raw["config"]["digest"]


@test
def both_tools_report_the_same_digests_for_both_archives():
    layout, tag = image()
    d = tmpdir()
    ours, theirs = os.path.join(d, "hoist.tar"), os.path.join(d, "skopeo.tar")
    hoist("copy", f"oci:{layout}:{tag}", f"docker-archive:{ours}")
    skopeo("copy", f"oci:{layout}:{tag}", f"docker-archive:{theirs}")
    raws = set()
    for path in (ours, theirs):
        sk_raw = run("skopeo", "inspect", "--raw", f"docker-archive:{path}").stdout
        our_raw = hoist("inspect", "--raw", f"docker-archive:{path}").stdout
        assert sk_raw == our_raw, (path, sk_raw, our_raw)
        raws.add(our_raw)
        sk = json.loads(run("skopeo", "inspect", f"docker-archive:{path}").stdout)
        j = json.loads(hoist("inspect", "--json", f"docker-archive:{path}").stdout)
        assert j["digest"] == sk["Digest"] == digest(our_raw)
        assert [l["digest"] for l in j["layers"]] == sk["Layers"]
        sk_config = run("skopeo", "inspect", "--config", "--raw", f"docker-archive:{path}").stdout
        assert hoist("inspect", "--config", f"docker-archive:{path}").stdout == sk_config
    assert len(raws) == 1  # one manifest for both archives


@test
def each_tool_copies_the_others_docker_archive():
    layout, tag = image()
    d = tmpdir()
    ours, theirs = os.path.join(d, "hoist.tar"), os.path.join(d, "skopeo.tar")
    hoist("copy", f"oci:{layout}:{tag}", f"docker-archive:{ours}:app:1")
    skopeo("copy", f"oci:{layout}:{tag}", f"docker-archive:{theirs}:app:1")
    # skopeo reads hoist's archive into a layout: the same diffIDs and files
    skopeo("copy", f"docker-archive:{ours}", f"oci:{d}/sk:x")
    sk_cfg = json.loads(run("skopeo", "inspect", "--config", "--raw", f"oci:{d}/sk:x").stdout)
    cfg = json.loads(member(ours, json.loads(member(ours, "manifest.json"))[0]["Config"]))
    assert sk_cfg["rootfs"]["diff_ids"] == cfg["rootfs"]["diff_ids"]
    # hoist reads skopeo's archive (by name) into a layout and unpacks it
    out = hoist("copy", f"docker-archive:{theirs}:app:1", f"oci:{d}/ours").stdout
    sk_digest = json.loads(run("skopeo", "inspect", f"docker-archive:{theirs}").stdout)["Digest"]
    assert sk_digest in out, out
    hoist("unpack", f"oci:{d}/ours:1", f"{d}/a")
    hoist("unpack", f"oci:{layout}:{tag}", f"{d}/b")
    hoist("unpack", f"docker-archive:{theirs}", f"{d}/c")
    hoist("unpack", f"oci:{d}/sk:x", f"{d}/e")
    want = tree_of(f"{d}/b")
    assert want and tree_of(f"{d}/a") == want == tree_of(f"{d}/c") == tree_of(f"{d}/e")
    # hoist's archive back into a layout holds exactly the manifest it reports
    hoist("copy", f"docker-archive:{ours}", f"oci:{d}/back:b")
    assert (hoist("inspect", "--raw", f"oci:{d}/back:b").stdout
            == hoist("inspect", "--raw", f"docker-archive:{ours}").stdout)


@test
def oci_archive_both_ways_with_skopeo():
    layout, tag = image()
    d = tmpdir()
    ours, theirs = os.path.join(d, "hoist.tar"), os.path.join(d, "skopeo.tar")
    want = digest(hoist("inspect", "--raw", f"oci:{layout}:{tag}").stdout)
    hoist("copy", f"oci:{layout}:{tag}", f"oci-archive:{ours}:v9")
    skopeo("copy", f"oci:{layout}:{tag}", f"oci-archive:{theirs}:v9")
    # the same blobs under the same names
    mine, sk = members(ours), members(theirs)
    assert {n: h for n, h in mine.items() if n.startswith("blobs/")} == {
        n: h for n, h in sk.items() if n.startswith("blobs/")}
    ix = json.loads(member(ours, "index.json"))
    assert ix["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "v9"
    for path in (ours, theirs):
        assert digest(run("skopeo", "inspect", "--raw", f"oci-archive:{path}:v9").stdout) == want
        assert digest(hoist("inspect", "--raw", f"oci-archive:{path}:v9").stdout) == want
        assert digest(hoist("inspect", "--raw", f"oci-archive:{path}").stdout) == want
    skopeo("copy", f"oci-archive:{ours}:v9", f"oci:{d}/sk:x")
    assert digest(run("skopeo", "inspect", "--raw", f"oci:{d}/sk:x").stdout) == want
    out = hoist("copy", f"oci-archive:{theirs}:v9", f"oci:{d}/ours").stdout
    assert want in out
    assert digest(hoist("inspect", "--raw", f"oci:{d}/ours:v9").stdout) == want
    hoist("unpack", f"oci-archive:{theirs}:v9", f"{d}/u")
    assert tree_of(f"{d}/u")


@test
def archive_to_archive_and_failures_leave_nothing():
    layout, tag = image()
    d = tmpdir()
    hoist("copy", f"oci:{layout}:{tag}", f"oci-archive:{d}/o.tar:v1")
    hoist("copy", f"oci-archive:{d}/o.tar:v1", f"docker-archive:{d}/x.tar:a/b:c")
    assert json.loads(member(f"{d}/x.tar", "manifest.json"))[0]["RepoTags"] == [
        "docker.io/a/b:c"]
    # append reads one archive and writes another; skopeo reads the result
    hoist("append", f"docker-archive:{d}/x.tar", "--target", f"docker-archive:{d}/z.tar:a/b:d",
          "--map", f"{d}/o.tar:/o.tar")
    sk = json.loads(run("skopeo", "inspect", f"docker-archive:{d}/z.tar").stdout)
    assert len(sk["Layers"]) == 3 and sk["RepoTags"] == [], sk
    assert json.loads(member(f"{d}/z.tar", "manifest.json"))[0]["RepoTags"] == ["docker.io/a/b:d"]
    os.unlink(f"{d}/z.tar")
    # an archive is written whole or not at all
    p = hoist("copy", f"oci:{layout}:{tag}", f"docker-archive:{d}/missing/x.tar", check=False)
    assert p.returncode == 1 and "missing/x.tar" in p.stderr, p.stderr
    p = hoist("copy", f"oci:{layout}:nope", f"docker-archive:{d}/y.tar", check=False)
    assert p.returncode == 1
    assert sorted(os.listdir(d)) == ["o.tar", "x.tar"], os.listdir(d)
    # a tag that is not there
    p = hoist("inspect", f"oci-archive:{d}/o.tar:v2", check=False)
    assert p.returncode == 1 and "v2" in p.stderr, p.stderr
    p = hoist("inspect", f"docker-archive:{d}/x.tar:other:1", check=False)
    assert p.returncode == 1 and "no image tagged docker.io/library/other:1" in p.stderr, p.stderr


@test
def transports_are_never_registry_names():
    layout, tag = image()
    for dst, says in [
        ("containers-storage:busy", 'transport "containers-storage" is not supported'),
        ("foo:/tmp/x", 'unknown transport "foo"'),
        ("dir:/tmp/x", 'transport "dir" is not supported'),
    ]:
        p = hoist("copy", f"oci:{layout}:{tag}", dst, check=False)
        assert p.returncode != 0 and says in p.stderr, p.stderr
        assert "docker-archive:PATH[:REF]" in p.stderr


if __name__ == "__main__":
    main()
