"""hoist unpack against umoci as the oracle: the same image unpacked by both
gives the same tree, file by file."""
import json
import os
import stat
import subprocess
import sys
import time

from hoisttest import Registry, Skip, hoist, main, run, test, tmpdir

_image = {}


def umoci_image():
    """An OCI layout with tags v1 and v2 made by umoci: v2 deletes a file and
    a directory of v1 (umoci writes whiteouts) and adds and changes files."""
    if _image:
        return _image["layout"]
    work = tmpdir()
    layout = os.path.join(work, "layout")
    bundle = os.path.join(work, "bundle")
    run("umoci", "init", "--layout", layout)
    run("umoci", "new", "--image", layout + ":base")
    run("umoci", "unpack", "--rootless", "--image", layout + ":base", bundle)
    root = os.path.join(bundle, "rootfs")
    os.makedirs(os.path.join(root, "usr/bin"))
    os.makedirs(os.path.join(root, "etc/app/conf.d"))
    os.makedirs(os.path.join(root, "var/tmp"))
    os.makedirs(os.path.join(root, "gone/deeper"))
    with open(os.path.join(root, "usr/bin/tool"), "wb") as f:
        f.write(b"#!/bin/sh\necho tool\n" * 100)
    os.chmod(os.path.join(root, "usr/bin/tool"), 0o4755)
    os.link(os.path.join(root, "usr/bin/tool"), os.path.join(root, "usr/bin/tool-alias"))
    try:
        os.setxattr(os.path.join(root, "usr/bin/tool"), "user.hoist.test", b"value")
    except OSError:
        pass  # the file system has no user xattrs: nothing to compare
    with open(os.path.join(root, "etc/app/secret"), "wb") as f:
        f.write(b"s3cret")
    os.chmod(os.path.join(root, "etc/app/secret"), 0o600)
    with open(os.path.join(root, "etc/app/conf.d/a.conf"), "w") as f:
        f.write("a=1\n")
    os.chmod(os.path.join(root, "var/tmp"), 0o1777)
    os.chmod(os.path.join(root, "etc/app/conf.d"), 0o750)
    os.symlink("../usr/bin/tool", os.path.join(root, "etc/tool-link"))
    os.symlink("/nonexistent/target", os.path.join(root, "dangling"))
    with open(os.path.join(root, "gone/deeper/file"), "w") as f:
        f.write("bye")
    with open(os.path.join(root, "deleted-later"), "w") as f:
        f.write("bye")
    with open(os.path.join(root, "big"), "wb") as f:
        f.write(os.urandom(3 << 20))
    with open(os.path.join(root, "empty"), "wb"):
        pass
    run("umoci", "repack", "--image", layout + ":v1", bundle)
    os.remove(os.path.join(root, "deleted-later"))
    subprocess.run(["rm", "-rf", os.path.join(root, "gone")], check=True)
    with open(os.path.join(root, "etc/app/conf.d/a.conf"), "w") as f:
        f.write("a=2\n")
    with open(os.path.join(root, "new-in-v2"), "w") as f:
        f.write("new")
    run("umoci", "repack", "--image", layout + ":v2", bundle)
    _image["layout"] = layout
    return layout


def tree(root):
    """path -> (type, mode, size, sha256 or link target); plus hardlink groups."""
    import hashlib

    out = {}
    inodes = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", oct(mode))
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    h = hashlib.sha256(f.read()).hexdigest()
                xattrs = sorted((k, os.getxattr(p, k, follow_symlinks=False))
                                for k in os.listxattr(p, follow_symlinks=False))
                out[rel] = ("f", oct(mode), st.st_size, h, xattrs)
                if st.st_nlink > 1:
                    inodes.setdefault(st.st_ino, []).append(rel)
            else:
                out[rel] = ("other", oct(st.st_mode))
    links = sorted(sorted(v) for v in inodes.values())
    return out, links


def compare(a, b):
    ta, la = tree(a)
    tb, lb = tree(b)
    diff = []
    for k in sorted(set(ta) | set(tb)):
        if ta.get(k) != tb.get(k):
            diff.append(f"{k}: {ta.get(k)} != {tb.get(k)}")
    assert not diff, "trees differ:\n" + "\n".join(diff)
    assert la == lb, f"hardlink groups differ: {la} != {lb}"
    return ta


@test
def same_tree_as_umoci():
    layout = umoci_image()
    work = tmpdir()
    for tag in ("v1", "v2"):
        ubundle = os.path.join(work, "umoci-" + tag)
        run("umoci", "unpack", "--rootless", "--image", f"{layout}:{tag}", ubundle)
        dest = os.path.join(work, "hoist-" + tag)
        hoist("unpack", f"oci:{layout}:{tag}", dest)
        t = compare(os.path.join(ubundle, "rootfs"), dest)
        print(f"# {tag}: xattrs of usr/bin/tool: {t['usr/bin/tool'][4]}", flush=True)
        if tag == "v2":
            assert "deleted-later" not in t and "gone" not in t, t.keys()
            assert not [k for k in t if ".wh." in k], t.keys()
            assert t["new-in-v2"][0] == "f"
        assert t["usr/bin/tool"][1] == oct(0o4755)
        assert t["var/tmp"] == ("d", oct(0o1777))


@test
def corrupt_layer_fails_and_leaves_nothing():
    layout = umoci_image()
    work = tmpdir()
    bad = os.path.join(work, "bad")
    subprocess.run(["cp", "-a", layout, bad], check=True)
    with open(os.path.join(bad, "index.json")) as f:
        idx = json.load(f)
    mdesc = [m for m in idx["manifests"]
             if m["annotations"]["org.opencontainers.image.ref.name"] == "v2"][0]
    with open(os.path.join(bad, "blobs/sha256", mdesc["digest"][7:])) as f:
        manifest = json.load(f)
    blob = os.path.join(bad, "blobs/sha256", manifest["layers"][-1]["digest"][7:])
    data = bytearray(open(blob, "rb").read())
    data[len(data) // 2] ^= 0xFF
    os.chmod(blob, 0o644)
    with open(blob, "wb") as f:
        f.write(data)
    dest = os.path.join(work, "dest")
    p = hoist("unpack", f"oci:{bad}:v2", dest, check=False)
    assert p.returncode == 1, p
    assert "digest" in p.stderr or "gzip" in p.stderr, p.stderr
    assert not os.path.exists(dest), os.listdir(dest)
    # a destination that is not empty is refused
    os.makedirs(dest)
    open(os.path.join(dest, "x"), "w").close()
    p = hoist("unpack", f"oci:{layout}:v2", dest, check=False)
    assert p.returncode == 1 and "not empty" in p.stderr, p.stderr


@test
def rootfs_cache_once_and_concurrent():
    layout = umoci_image()
    cache = os.path.join(tmpdir(), "rootfs")
    procs = [
        subprocess.Popen(
            [os.environ.get("HOIST_BIN", "hoist"), "unpack", "--cache-dir", cache, "--json",
             f"oci:{layout}:v2"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = []
    for p in procs:
        out, errs = p.communicate(timeout=300)
        assert p.returncode == 0, errs
        results.append(json.loads(out))
    paths = {r["path"] for r in results}
    assert len(paths) == 1, paths
    path = paths.pop()
    # the tree, and the marker of its last use (for hoist prune)
    assert sorted(os.listdir(cache)) == [os.path.basename(path), os.path.basename(path) + ".used"], \
        os.listdir(cache)
    with open(os.path.join(layout, "index.json")) as f:
        idx = json.load(f)
    mdesc = [m for m in idx["manifests"]
             if m["annotations"]["org.opencontainers.image.ref.name"] == "v2"][0]
    with open(os.path.join(layout, "blobs/sha256", mdesc["digest"][7:])) as f:
        config_hex = json.load(f)["config"]["digest"][7:]
    assert os.path.basename(path) == config_hex
    again = json.loads(hoist("unpack", "--cache-dir", cache, "--json", f"oci:{layout}:v2").stdout)
    assert again["cache_hit"] is True and again["path"] == path
    ubundle = os.path.join(tmpdir(), "u")
    run("umoci", "unpack", "--rootless", "--image", f"{layout}:v2", ubundle)
    compare(os.path.join(ubundle, "rootfs"), path)


@test
def prune_removes_trees_unused_for_max_age():
    layout = umoci_image()
    cache = tmpdir("hoist-rootfs-")
    env = {"HOIST_ROOTFS_CACHE": cache, "HOIST_IMAGES": tmpdir()}  # no build cache of the user's

    def unpack():
        return json.loads(hoist("unpack", "--cache", "--json", f"oci:{layout}:v2", env=env).stdout)

    def prune(*args):
        return json.loads(hoist("prune", "--json", *args, env=env).stdout)["rootfs"]

    def age(path, days):
        t = time.time() - days * 86400
        for p in (path, path + ".used"):
            os.utime(p, (t, t))

    path = unpack()["path"]
    assert os.path.dirname(path) == cache
    assert prune()["removed"] == 0 and os.path.isdir(path)
    # unused for 8 days: a dry run counts it, a prune removes it
    age(path, 8)
    dry = prune("--dry-run")
    assert dry["removed"] == 1 and dry["bytes"] > 0, dry
    assert os.path.isdir(path)
    assert prune("--max-age", "9d")["removed"] == 0
    assert prune() == dry
    assert os.listdir(cache) == [], os.listdir(cache)
    # unpacked again, then reused after a long time: the reuse counts as use
    assert unpack()["cache_hit"] is False
    age(path, 8)
    assert unpack()["cache_hit"] is True
    assert prune()["removed"] == 0 and os.path.isdir(path)
    # the tree's own mtime never moves on reuse: the marker alone says so
    os.unlink(path + ".used")
    os.utime(path, (time.time() - 8 * 86400,) * 2)
    assert prune("--max-age", "1h")["removed"] == 1 and not os.path.exists(path)
    p = hoist("prune", "--max-age", "soon", check=False)
    assert p.returncode == 2 and "not an age" in p.stderr, p.stderr


@test
def verb_usage():
    assert hoist("unpack", "--help").returncode == 0
    assert hoist("unpack", check=False).returncode == 2
    assert hoist("unpack", "--bogus", "a", "b", check=False).returncode == 2
    assert hoist("unpack", "--jobs", "0", "a", "b", check=False).returncode == 2
    assert hoist("unpack", "Bad/Ref", "d", check=False).returncode == 2


@test
def registry_reference():
    """`hoist unpack REF DEST` pulls into the image store, then unpacks: the
    tree matches umoci's unpack of the same image."""
    layout = umoci_image()
    reg = Registry(tmpdir()).start()
    hoist("push", f"oci:{layout}:v2", f"{reg.host}/unpack/img:v2")
    work = tmpdir()
    env = {"HOIST_CACHE": os.path.join(work, "cache"), "HOIST_IMAGES": ""}
    dest = os.path.join(work, "dest")
    hoist("unpack", f"{reg.host}/unpack/img:v2", dest, env=env)
    ubundle = os.path.join(work, "u")
    run("umoci", "unpack", "--rootless", "--image", f"{layout}:v2", ubundle)
    compare(os.path.join(ubundle, "rootfs"), dest)
    store = os.path.join(work, "cache", "images", reg.host.replace(":", "_"), "unpack/img")
    assert os.path.isfile(os.path.join(store, "index.json")), store
    # again, into the rootfs cache (the blobs are in the store already): same tree
    out = json.loads(hoist("unpack", "--cache", "--json", f"{reg.host}/unpack/img:v2",
                           env=env).stdout)
    compare(os.path.join(ubundle, "rootfs"), out["path"])
    # a reference the registry does not have: exit 1, nothing created
    dest2 = os.path.join(work, "dest2")
    p = hoist("unpack", f"{reg.host}/unpack/img:nope", dest2, env=env, check=False)
    assert p.returncode == 1, p
    assert "pull" in p.stderr, p.stderr
    assert not os.path.exists(dest2)
    reg.stop()


def has_verb(name):
    return hoist(name, "--help", check=False).returncode == 0


@test
def hoist_written_images_unpack_like_umoci():
    if not has_verb("append"):
        raise Skip("hoist append is not available in this build")
    layout = umoci_image()
    work = tmpdir()
    target = os.path.join(work, "out")
    subprocess.run(["cp", "-a", layout, target], check=True)
    src = os.path.join(work, "payload")
    os.makedirs(os.path.join(src, "opt/app/bin"))
    with open(os.path.join(src, "opt/app/bin/run"), "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(os.path.join(src, "opt/app/bin/run"), 0o755)
    os.link(os.path.join(src, "opt/app/bin/run"), os.path.join(src, "opt/app/bin/run2"))
    os.symlink("bin/run", os.path.join(src, "opt/app/start"))
    hoist("append", f"oci:{target}:v2", "--target", f"oci:{target}:v3", "--layer", src)
    ubundle = os.path.join(work, "u")
    run("umoci", "unpack", "--rootless", "--image", f"{target}:v3", ubundle)
    dest = os.path.join(work, "h")
    hoist("unpack", f"oci:{target}:v3", dest)
    t = compare(os.path.join(ubundle, "rootfs"), dest)
    assert t["opt/app/start"] == ("l", "bin/run")
    # the same layer compressed with zstd (umoci reads only gzip): same tree
    hoist("append", f"oci:{target}:v2", "--target", f"oci:{target}:v3z", "--layer", src,
          "--compress", "zstd")
    destz = os.path.join(work, "hz")
    hoist("unpack", f"oci:{target}:v3z", destz)
    compare(os.path.join(ubundle, "rootfs"), destz)


if __name__ == "__main__":
    main()
