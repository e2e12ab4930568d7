"""Registry client and transport verbs against the real CNCF registry, with
skopeo as the independent oracle: what hoist pushes skopeo reads, what skopeo
pushes hoist pulls, digests equal."""
import base64
import gzip
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import tarfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from hoisttest import (HOIST, Registry, hoist, main, on_exit, run, sha256_file, skopeo, test,
                       tmpdir, wait_for, free_port)

# ------------------------------------------------------------------ images


def _blob(layout, data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    path = os.path.join(layout, "blobs", "sha256", d[7:])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return d, len(data)


def _layer(seed, size):
    """A gzip'd tar with one file of size pseudo-random bytes."""
    data = hashlib.sha256(seed.encode()).digest() * (size // 32 + 1)
    data = bytes(b ^ (i * 7 & 0xFF) for i, b in enumerate(data[:size])) if size < 1 << 16 \
        else os.urandom(size)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo(f"file-{seed}")
        info.size = len(data)
        info.mtime = 0
        t.addfile(info, io.BytesIO(data))
    tar = raw.getvalue()
    return gzip.compress(tar, compresslevel=1, mtime=0), "sha256:" + hashlib.sha256(tar).hexdigest()


def _layout_init(layout):
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    idx = os.path.join(layout, "index.json")
    if not os.path.exists(idx):
        with open(idx, "w") as f:
            json.dump({"schemaVersion": 2, "manifests": []}, f)


def _tag(layout, tag, desc):
    idx = os.path.join(layout, "index.json")
    with open(idx) as f:
        ix = json.load(f)
    ix["manifests"] = [m for m in ix["manifests"]
                       if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
    d = dict(desc)
    d["annotations"] = {"org.opencontainers.image.ref.name": tag}
    ix["manifests"].append(d)
    with open(idx, "w") as f:
        json.dump(ix, f)


def make_image(layout, tag, sizes=(1000, 2000), arch="amd64", seed="a", tag_it=True):
    """Writes an image with one layer per size into an OCI layout; returns its
    manifest descriptor."""
    _layout_init(layout)
    layers, diff_ids = [], []
    for i, size in enumerate(sizes):
        gz, diff = _layer(f"{seed}{i}{arch}", size)
        d, n = _blob(layout, gz)
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                       "digest": d, "size": n})
        diff_ids.append(diff)
    config = json.dumps({"architecture": arch, "os": "linux",
                         "created": "2024-01-01T00:00:00Z",
                         "config": {"Env": ["PATH=/bin"], "Labels": {"seed": seed}},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cd, cn = _blob(layout, config)
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": cd, "size": cn},
                           "layers": layers}).encode()
    md, mn = _blob(layout, manifest)
    desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn}
    if tag_it:
        _tag(layout, tag, desc)
    return desc


def make_index(layout, tag, arches=("amd64", "arm64")):
    """An index with one small image per architecture; returns its descriptor."""
    _layout_init(layout)
    ms = []
    for a in arches:
        d = make_image(layout, None, sizes=(500 + len(a),), arch=a, seed="ix" + a, tag_it=False)
        d = dict(d)
        d["platform"] = {"architecture": a, "os": "linux"}
        ms.append(d)
    index = json.dumps({"schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": ms}).encode()
    d, n = _blob(layout, index)
    desc = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": n}
    _tag(layout, tag, desc)
    return desc, ms


def layout_ref(layout, tag):
    with open(os.path.join(layout, "index.json")) as f:
        ix = json.load(f)
    for m in ix["manifests"]:
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            return m
    raise AssertionError(f"tag {tag} not in {layout}: {ix}")


def check_layout_blobs(layout):
    """Every blob's name is its digest."""
    d = os.path.join(layout, "blobs", "sha256")
    for name in os.listdir(d):
        if name.startswith("."):
            continue
        assert sha256_file(os.path.join(d, name)) == "sha256:" + name, name


def skopeo_digest(ref, *extra):
    return skopeo("inspect", "--tls-verify=false", *extra, "--format", "{{.Digest}}",
                  f"docker://{ref}").stdout.strip()


def skopeo_raw(ref, *extra):
    return skopeo("inspect", "--tls-verify=false", *extra, "--raw", f"docker://{ref}").stdout


_reg = None


def registry():
    global _reg
    if _reg is None:
        _reg = Registry(tmpdir()).start()
    return _reg


# ------------------------------------------------------------ no auth


@test
def push_then_skopeo_reads():
    reg = registry()
    src = os.path.join(tmpdir(), "src")
    desc = make_image(src, "v1", sizes=(3000, 200000, 10))
    out = json.loads(hoist("push", "--json", f"oci:{src}:v1", f"{reg.host}/app:v1").stdout)
    assert out["digest"] == desc["digest"], out
    assert out["blobs"]["transferred"] == 4, out
    assert skopeo_digest(f"{reg.host}/app:v1") == desc["digest"]
    dst = os.path.join(tmpdir(), "sk")
    skopeo("copy", "--src-tls-verify=false", f"docker://{reg.host}/app:v1", f"oci:{dst}:v1")
    assert layout_ref(dst, "v1")["digest"] == desc["digest"]
    check_layout_blobs(dst)
    # a second push finds every blob present
    out = json.loads(hoist("push", "--json", f"oci:{src}:v1", f"{reg.host}/app:v1").stdout)
    assert out["blobs"]["present"] == 4 and out["blobs"]["transferred"] == 0, out


@test
def skopeo_push_then_hoist_pulls():
    reg = registry()
    src = os.path.join(tmpdir(), "src")
    desc = make_image(src, "s1", sizes=(5000, 70000), seed="sk")
    skopeo("copy", "--dest-tls-verify=false", f"oci:{src}:s1", f"docker://{reg.host}/fromsk:s1")
    dst = os.path.join(tmpdir(), "pulled")
    out = json.loads(hoist("pull", "--json", "--to", f"oci:{dst}:got",
                           f"{reg.host}/fromsk:s1").stdout)
    assert out["digest"] == desc["digest"] == skopeo_digest(f"{reg.host}/fromsk:s1"), out
    assert layout_ref(dst, "got")["digest"] == desc["digest"]
    check_layout_blobs(dst)
    m = json.loads(open(os.path.join(dst, "blobs", "sha256", desc["digest"][7:])).read())
    for l in m["layers"] + [m["config"]]:
        assert os.path.exists(os.path.join(dst, "blobs", "sha256", l["digest"][7:]))
    # skopeo reads what hoist pulled
    skopeo("inspect", f"oci:{dst}:got")


@test
def pull_default_store_and_inspect():
    reg = registry()
    src = os.path.join(tmpdir(), "src")
    desc = make_image(src, "i1", seed="insp")
    hoist("push", f"oci:{src}:i1", f"{reg.host}/insp:i1")
    cache = tmpdir()
    hoist("pull", f"{reg.host}/insp:i1", env={"HOIST_CACHE": cache})
    store = os.path.join(cache, "images", reg.host.replace(":", "_"), "insp")
    assert layout_ref(store, "i1")["digest"] == desc["digest"]
    info = json.loads(hoist("inspect", "--json", f"{reg.host}/insp:i1").stdout)
    assert info["digest"] == desc["digest"], info
    assert info["config"]["architecture"] == "amd64" and info["config"]["os"] == "linux", info
    assert info["config"]["labels"] == {"seed": "insp"}, info
    assert len(info["layers"]) == 2
    p = hoist("inspect", f"{reg.host}/insp:nosuchtag", check=False)
    assert p.returncode == 1 and "MANIFEST_UNKNOWN" in p.stderr, p.stderr
    raw = hoist("inspect", "--raw", f"{reg.host}/insp:i1").stdout
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == desc["digest"]
    cfg = json.loads(hoist("inspect", "--config", f"{reg.host}/insp:i1").stdout)
    assert cfg["architecture"] == "amd64"


@test
def copy_within_registry_mounts():
    reg = registry()
    src = os.path.join(tmpdir(), "src")
    desc = make_image(src, "m1", seed="mount", sizes=(100000, 3000))
    hoist("push", f"oci:{src}:m1", f"{reg.host}/mnt/a:m1")
    out = json.loads(hoist("copy", "--json", f"{reg.host}/mnt/a:m1",
                           f"docker://{reg.host}/mnt/b:m1").stdout)
    assert out["blobs"]["mounted"] == 3 and out["blobs"]["transferred"] == 0, out
    assert skopeo_digest(f"{reg.host}/mnt/b:m1") == desc["digest"]


@test
def copy_between_registries_streams():
    reg = registry()
    other = Registry(tmpdir()).start()
    src = os.path.join(tmpdir(), "src")
    desc = make_image(src, "c1", seed="cross", sizes=(300000, 1000))
    hoist("push", f"oci:{src}:c1", f"{reg.host}/cross:c1")
    out = json.loads(hoist("copy", "--json", f"{reg.host}/cross:c1",
                           f"{other.host}/cross:c1").stdout)
    assert out["blobs"]["transferred"] == 3, out
    assert skopeo_digest(f"{other.host}/cross:c1") == desc["digest"]
    dst = os.path.join(tmpdir(), "back")
    skopeo("copy", "--src-tls-verify=false", f"docker://{other.host}/cross:c1", f"oci:{dst}:x")
    check_layout_blobs(dst)
    other.stop()


@test
def tags_and_catalog_paginate():
    reg = Registry(tmpdir()).start()
    src = os.path.join(tmpdir(), "src")
    make_image(src, "t", seed="tags", sizes=(10,))
    tags = [f"t{i}" for i in range(5)]
    for t in tags:
        hoist("push", f"oci:{src}:t", f"{reg.host}/tagged:{t}")
    hoist("push", f"oci:{src}:t", f"{reg.host}/other/repo:x")
    got = hoist("tags", f"{reg.host}/tagged", env={"HOIST_PAGE_SIZE": "2"}).stdout.split()
    assert sorted(got) == tags, got
    j = json.loads(hoist("tags", "--json", f"{reg.host}/tagged").stdout)
    assert sorted(j["tags"]) == tags
    cat = hoist("catalog", reg.host, env={"HOIST_PAGE_SIZE": "1"}).stdout.split()
    assert cat == ["other/repo", "tagged"], cat
    reg.stop()


@test
def delete_by_tag_and_disabled():
    reg = registry()
    src = os.path.join(tmpdir(), "src")
    desc = make_image(src, "d", seed="del", sizes=(10,))
    hoist("push", f"oci:{src}:d", f"{reg.host}/del:d")
    hoist("push", f"oci:{src}:d", f"{reg.host}/del:e")
    make_image(src, "other", seed="del-other", sizes=(11,))
    hoist("push", f"oci:{src}:other", f"{reg.host}/del:other")
    # every tag the delete takes is named, then the digest
    out = hoist("delete", f"{reg.host}/del:d").stdout
    lines = out.splitlines()
    assert sorted(lines[:2]) == [f"untagged {reg.host}/del:d", f"untagged {reg.host}/del:e"], out
    assert lines[2:] == [f"deleted {reg.host}/del@{desc['digest']}"], out
    assert hoist("tags", f"{reg.host}/del").stdout.split() == ["other"]
    j = json.loads(hoist("delete", "--json", f"{reg.host}/del:other").stdout)
    assert j["tags"] == ["other"] and j["repository"] == f"{reg.host}/del", j
    p = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{reg.host}/del:d", check=False)
    assert p.returncode != 0
    p = hoist("delete", f"{reg.host}/del:d", check=False)
    assert p.returncode == 1 and "no such tag" in p.stderr, p.stderr
    nodel = Registry(tmpdir(), delete=False).start()
    hoist("push", f"oci:{src}:d", f"{nodel.host}/del:d")
    p = hoist("delete", f"{nodel.host}/del:d", check=False)
    assert p.returncode == 1 and "deletes are disabled on this registry" in p.stderr, p.stderr
    nodel.stop()


@test
def multi_arch_index():
    reg = registry()
    src = os.path.join(tmpdir(), "src")
    idx, children = make_index(src, "multi")
    skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{src}:multi",
           f"docker://{reg.host}/multi:1")
    arm = [c for c in children if c["platform"]["architecture"] == "arm64"][0]
    dst = os.path.join(tmpdir(), "arm")
    out = json.loads(hoist("pull", "--json", "--platform", "linux/arm64", "--to",
                           f"oci:{dst}:a", f"{reg.host}/multi:1").stdout)
    assert out["digest"] == arm["digest"], out
    assert layout_ref(dst, "a")["digest"] == arm["digest"]
    p = hoist("pull", "--platform", "linux/s390x", "--to", f"oci:{dst}:b", f"{reg.host}/multi:1",
              check=False)
    assert p.returncode == 1 and "linux/arm64" in p.stderr, p.stderr
    out = json.loads(hoist("copy", "--json", "--all-platforms", f"{reg.host}/multi:1",
                           f"{reg.host}/multi2:1").stdout)
    assert out["digest"] == idx["digest"], out
    raw = skopeo_raw(f"{reg.host}/multi2:1")
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == idx["digest"]
    for c in children:
        assert skopeo_digest(f"{reg.host}/multi2@{c['digest']}") == c["digest"]
    # a whole index into a layout and back
    lay = os.path.join(tmpdir(), "all")
    hoist("copy", "--all-platforms", f"{reg.host}/multi:1", f"oci:{lay}:all")
    assert layout_ref(lay, "all")["digest"] == idx["digest"]
    check_layout_blobs(lay)
    hoist("push", f"oci:{lay}:all", f"{reg.host}/multi3:1")
    assert skopeo_digest(f"{reg.host}/multi3:1") == idx["digest"]



def _index_entries(layout, tag):
    with open(os.path.join(layout, "index.json")) as f:
        ix = json.load(f)
    return [m for m in ix["manifests"]
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]


def _blob_bytes(layout, digest):
    with open(os.path.join(layout, "blobs", "sha256", digest[7:]), "rb") as f:
        return f.read()


def run_bytes(*args):
    return subprocess.run(list(map(str, args)), capture_output=True, check=True).stdout


def _umoci_unpack(layout, tag):
    bundle = os.path.join(tmpdir(), "bundle")
    p = run("umoci", "unpack", "--rootless", "--image", f"{layout}:{tag}", bundle, check=False)
    return p, os.path.join(bundle, "rootfs")


@test
def multi_arch_layouts_are_read_by_skopeo_and_umoci():
    """A whole OCI index in a layout, written by copy --all-platforms, pull
    --all-platforms and index create, is what skopeo copy --all writes: one
    index.json entry, the index's own descriptor, carrying the tag."""
    reg = registry()
    src = os.path.join(tmpdir(), "src")
    idx, children = make_index(src, "multi")
    skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{src}:multi",
           f"docker://{reg.host}/mlay:1")
    by_arch = {c["platform"]["architecture"]: c for c in children}
    for a in by_arch:
        hoist("copy", "--platform", f"linux/{a}", f"{reg.host}/mlay:1", f"{reg.host}/mlay:{a}")
    t = tmpdir()
    sk = os.path.join(t, "skopeo")
    skopeo("copy", "--all", "--src-tls-verify=false", f"docker://{reg.host}/mlay:1", f"oci:{sk}:1")
    [theirs] = _index_entries(sk, "1")
    assert theirs["digest"] == idx["digest"], theirs
    layouts = {name: os.path.join(t, name) for name in ("copy", "pull", "create")}
    hoist("copy", "--all-platforms", f"{reg.host}/mlay:1", f"oci:{layouts['copy']}:1")
    hoist("pull", "--all-platforms", "--to", f"oci:{layouts['pull']}:1", f"{reg.host}/mlay:1")
    hoist("index", "create", f"oci:{layouts['create']}:1", f"{reg.host}/mlay:amd64",
          f"{reg.host}/mlay:arm64")
    # umoci has no platform selection: a tag naming an index is ambiguous to
    # it, in skopeo's layout as in hoist's
    p, _ = _umoci_unpack(sk, "1")
    assert p.returncode != 0 and "tag is ambiguous" in p.stderr, p.stderr
    for name, lay in layouts.items():
        [ours] = _index_entries(lay, "1")
        assert ours["mediaType"] == theirs["mediaType"] == "application/vnd.oci.image.index.v1+json"
        if name != "create":  # index create writes an index of its own
            assert {k: ours[k] for k in theirs} == theirs, (name, ours, theirs)
        raw = run_bytes("skopeo", "inspect", "--raw", f"oci:{lay}:1")
        assert raw == _blob_bytes(lay, ours["digest"]), name
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == ours["digest"]
        sk_inspect = json.loads(skopeo("inspect", f"oci:{lay}:1").stdout)
        assert sk_inspect["Digest"] == ours["digest"], (name, sk_inspect)
        assert sk_inspect["Architecture"] in by_arch, sk_inspect
        one, every = os.path.join(t, f"{name}-one"), os.path.join(t, f"{name}-all")
        skopeo("copy", f"oci:{lay}:1", f"oci:{one}:x")
        assert _index_entries(one, "x")[0]["digest"] in [c["digest"] for c in children]
        skopeo("copy", "--all", f"oci:{lay}:1", f"oci:{every}:x")
        assert _index_entries(every, "x")[0]["digest"] == ours["digest"], name
        assert "1" in run("umoci", "ls", "--layout", lay).stdout.split()
        p, _ = _umoci_unpack(lay, "1")
        assert p.returncode != 0 and "tag is ambiguous" in p.stderr, p.stderr
        # one platform under a tag of its own is an image umoci unpacks
        hoist("copy", "--platform", "linux/arm64", f"oci:{lay}:1", f"oci:{lay}:1-arm64")
        p, rootfs = _umoci_unpack(lay, "1-arm64")
        assert p.returncode == 0, p.stderr
        assert os.path.exists(os.path.join(rootfs, "file-ixarm640arm64")), os.listdir(rootfs)
        # hoist's own readers resolve the tag, then the platform
        j = json.loads(hoist("inspect", "--json", "--platform", "linux/arm64",
                             f"oci:{lay}:1").stdout)
        assert j["digest"] == by_arch["arm64"]["digest"] and j["index"]["digest"] == ours["digest"]
        dest = os.path.join(t, f"{name}-unpacked")
        hoist("unpack", "--platform", "linux/arm64", f"oci:{lay}:1", dest)
        assert os.path.exists(os.path.join(dest, "file-ixarm640arm64"))
        out = json.loads(hoist("copy", "--json", "--all-platforms", f"oci:{lay}:1",
                               f"{reg.host}/mlay-{name}:1").stdout)
        assert skopeo_digest(f"{reg.host}/mlay-{name}:1") == ours["digest"] == out["digest"]
    # and what skopeo wrote, hoist reads
    j = json.loads(hoist("inspect", "--json", "--platform", "linux/amd64", f"oci:{sk}:1").stdout)
    assert j["index"]["digest"] == idx["digest"] and j["digest"] == by_arch["amd64"]["digest"]


@test
def docker_manifest_list_in_a_layout_stays_byte_exact():
    """A Docker manifest list copied whole into a layout keeps its bytes, so
    its digest, and is tagged with its own media type. umoci reads only OCI
    types and says so; skopeo matches a tag on Docker types only in the
    containers/image releases that accept them (not skopeo 1.9)."""
    reg = registry()
    src = os.path.join(tmpdir(), "src")
    make_index(src, "multi")
    skopeo("copy", "--all", "--format", "v2s2", "--dest-tls-verify=false", f"oci:{src}:multi",
           f"docker://{reg.host}/dlist:1")
    raw = skopeo_raw(f"{reg.host}/dlist:1").encode()
    assert json.loads(raw)["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    children = {m["platform"]["architecture"]: m for m in json.loads(raw)["manifests"]}
    lay = os.path.join(tmpdir(), "dl")
    hoist("copy", "--all-platforms", f"{reg.host}/dlist:1", f"oci:{lay}:1")
    [entry] = _index_entries(lay, "1")
    assert entry["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    assert entry["digest"] == digest and _blob_bytes(lay, digest) == raw
    assert run_bytes(HOIST, "inspect", "--raw", f"oci:{lay}:1") == raw
    j = json.loads(hoist("inspect", "--json", "--platform", "linux/arm64", f"oci:{lay}:1").stdout)
    assert j["digest"] == children["arm64"]["digest"] and j["index"]["digest"] == digest
    dest = os.path.join(tmpdir(), "unpacked")
    hoist("unpack", "--platform", "linux/arm64", f"oci:{lay}:1", dest)
    assert os.path.exists(os.path.join(dest, "file-ixarm640arm64"))
    hoist("push", f"oci:{lay}:1", f"{reg.host}/dlist2:1")
    assert skopeo_digest(f"{reg.host}/dlist2:1") == digest
    assert "1" in run("umoci", "ls", "--layout", lay).stdout.split()
    p, _ = _umoci_unpack(lay, "1")
    assert p.returncode != 0 and ("not implemented: application/vnd.docker.distribution."
                                  "manifest.list.v2+json") in p.stderr, p.stderr
    p = skopeo("inspect", "--raw", f"oci:{lay}:1", check=False)
    if p.returncode == 0:
        assert p.stdout.encode() == raw
    else:
        assert "no descriptor found for reference" in p.stderr, p.stderr
    # --oci: the same configs and layers under OCI types, which every reader
    # takes; the rewritten manifests and index have digests of their own
    oci = os.path.join(tmpdir(), "oci")
    out = json.loads(hoist("copy", "--json", "--all-platforms", "--oci", f"{reg.host}/dlist:1",
                           f"oci:{oci}:1").stdout)
    [entry] = _index_entries(oci, "1")
    assert entry["mediaType"] == out["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert entry["digest"] == out["digest"] != digest
    ix = json.loads(_blob_bytes(oci, entry["digest"]))
    assert ix["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [m["platform"] for m in ix["manifests"]] == [m["platform"] for m in json.loads(raw)["manifests"]]
    for m in ix["manifests"]:
        assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
        ours = json.loads(_blob_bytes(oci, m["digest"]))
        theirs = json.loads(_blob_bytes(lay, children[m["platform"]["architecture"]]["digest"]))
        assert ours["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
        assert ours["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
        assert ours["config"]["digest"] == theirs["config"]["digest"]
        assert [(l["mediaType"], l["digest"]) for l in ours["layers"]] == [
            ("application/vnd.oci.image.layer.v1.tar+gzip", l["digest"]) for l in theirs["layers"]]
    # the same bytes every time
    again = json.loads(hoist("copy", "--json", "--all-platforms", "--oci", f"{reg.host}/dlist:1",
                             f"oci:{oci}:2").stdout)
    assert again["digest"] == entry["digest"], again
    assert run_bytes("skopeo", "inspect", "--raw", f"oci:{oci}:1") == _blob_bytes(oci, entry["digest"])
    assert json.loads(skopeo("inspect", f"oci:{oci}:1").stdout)["Digest"] == entry["digest"]
    every = os.path.join(tmpdir(), "every")
    skopeo("copy", "--all", f"oci:{oci}:1", f"oci:{every}:x")
    assert _index_entries(every, "x")[0]["digest"] == entry["digest"]
    hoist("copy", "--oci", "--platform", "linux/arm64", f"{reg.host}/dlist:1", f"oci:{oci}:arm")
    p, rootfs = _umoci_unpack(oci, "arm")
    assert p.returncode == 0, p.stderr
    assert os.path.exists(os.path.join(rootfs, "file-ixarm640arm64"))
    hoist("push", f"oci:{oci}:1", f"{reg.host}/dlist-oci:1")
    assert skopeo_digest(f"{reg.host}/dlist-oci:1") == entry["digest"]


def _put_manifest(layout, doc, mt="application/vnd.oci.image.manifest.v1+json"):
    d, n = _blob(layout, json.dumps(doc).encode())
    return {"mediaType": mt, "digest": d, "size": n}


@test
def artifacts_travel_as_they_are():
    """An SBOM artifact (empty config, a JSON layer, a subject) and a
    buildx-style index with an attestation manifest are copied byte for byte;
    what needs an image says it is an artifact."""
    reg = registry()
    src = os.path.join(tmpdir(), "src")
    image = make_image(src, "app")
    empty_d, empty_n = _blob(src, b"{}")
    sbom_d, sbom_n = _blob(src, b'{"packages":[]}')
    sbom = _put_manifest(src, {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.sbom.v1",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_d,
                   "size": empty_n, "data": "e30="},
        "layers": [{"mediaType": "application/vnd.example.sbom.v1+json", "digest": sbom_d,
                    "size": sbom_n}],
        "subject": image})
    _tag(src, "sbom", sbom)
    stmt_d, stmt_n = _blob(src, b'{"_type":"https://in-toto.io/Statement/v0.1"}')
    att_cfg_d, att_cfg_n = _blob(src, json.dumps({
        "architecture": "unknown", "os": "unknown",
        "rootfs": {"type": "layers", "diff_ids": [stmt_d]}}).encode())
    att = _put_manifest(src, {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": att_cfg_d,
                   "size": att_cfg_n},
        "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": stmt_d,
                    "size": stmt_n}]})
    att["platform"] = {"architecture": "unknown", "os": "unknown"}
    att["annotations"] = {"vnd.docker.reference.type": "attestation-manifest",
                          "vnd.docker.reference.digest": image["digest"]}
    img = dict(image, platform={"architecture": "amd64", "os": "linux"})
    index = _put_manifest(src, {"schemaVersion": 2,
                                "mediaType": "application/vnd.oci.image.index.v1+json",
                                "manifests": [img, att]},
                          "application/vnd.oci.image.index.v1+json")
    _tag(src, "withatt", index)

    # layout -> registry -> layout, each byte kept
    hoist("push", f"oci:{src}:sbom", f"{reg.host}/art:sbom")
    raw = skopeo_raw(f"{reg.host}/art:sbom")
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == sbom["digest"], raw
    dst = os.path.join(tmpdir(), "dst")
    out = json.loads(hoist("copy", "--json", f"{reg.host}/art:sbom", f"oci:{dst}:s").stdout)
    assert out["digest"] == sbom["digest"], out
    assert layout_ref(dst, "s")["digest"] == sbom["digest"]
    for d in (empty_d, sbom_d):
        assert os.path.exists(os.path.join(dst, "blobs", "sha256", d[7:])), d
    check_layout_blobs(dst)

    # an index with an attestation: all of it, or the host's image
    hoist("copy", "--all-platforms", f"oci:{src}:withatt", f"{reg.host}/att:1")
    raw = skopeo_raw(f"{reg.host}/att:1")
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == index["digest"], raw
    raw = skopeo_raw(f"{reg.host}/att@{att['digest']}")
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == att["digest"], raw
    one = os.path.join(tmpdir(), "one")
    out = json.loads(hoist("pull", "--json", "--platform", "linux/amd64", "--to", f"oci:{one}:x",
                           f"{reg.host}/att:1").stdout)
    assert out["digest"] == image["digest"], out

    # inspect shows what it is; unpack and append refuse it by name
    text = hoist("inspect", f"{reg.host}/art:sbom").stdout
    assert "Artifact:     application/vnd.example.sbom.v1" in text, text
    assert "application/vnd.oci.empty.v1+json" in text, text
    j = json.loads(hoist("inspect", "--json", f"oci:{src}:sbom").stdout)
    assert j["artifactType"] == "application/vnd.example.sbom.v1", j
    assert j["config"]["mediaType"] == "application/vnd.oci.empty.v1+json", j
    dest = os.path.join(tmpdir(), "rootfs")
    p = hoist("unpack", f"oci:{src}:sbom", dest, check=False)
    assert p.returncode == 1, p
    assert "an artifact of type application/vnd.example.sbom.v1, not an image" in p.stderr, p.stderr
    assert not os.path.exists(dest)
    tree = os.path.join(tmpdir(), "tree")
    os.makedirs(tree)
    p = hoist("append", f"oci:{src}:sbom", "--target", f"oci:{dst}:t", "--layer", tree,
              check=False)
    assert p.returncode == 1 and "not an image" in p.stderr, p.stderr


# ------------------------------------------------------------- faults


def _registry_blob_path(reg, digest):
    return os.path.join(reg.dir, "data", "docker", "registry", "v2", "blobs", "sha256",
                        digest[7:9], digest[7:], "data")


@test
def corrupt_blob_is_refused():
    reg = Registry(tmpdir()).start()
    src = os.path.join(tmpdir(), "src")
    desc = make_image(src, "bad", seed="corrupt", sizes=(50000,))
    hoist("push", f"oci:{src}:bad", f"{reg.host}/bad:1")
    m = json.loads(open(os.path.join(src, "blobs", "sha256", desc["digest"][7:])).read())
    layer = m["layers"][0]["digest"]
    path = _registry_blob_path(reg, layer)
    data = bytearray(open(path, "rb").read())
    data[100] ^= 0xFF
    open(path, "wb").write(bytes(data))
    dst = os.path.join(tmpdir(), "dst")
    p = hoist("pull", "--to", f"oci:{dst}:x", f"{reg.host}/bad:1", check=False)
    assert p.returncode == 1, p.stderr
    assert "digest mismatch" in p.stderr and layer in p.stderr, p.stderr
    assert not os.path.exists(os.path.join(dst, "blobs", "sha256", layer[7:]))
    # and no image was tagged
    ix = json.load(open(os.path.join(dst, "index.json")))
    assert not ix["manifests"], ix
    reg.stop()


@test
def registry_restart_mid_push():
    reg = Registry(tmpdir()).start()
    src = os.path.join(tmpdir(), "src")
    desc = make_image(src, "big", seed="big", sizes=(48 << 20,))
    env = dict(os.environ, HOIST_CHUNK_SIZE=str(1 << 20))
    proc = subprocess.Popen([HOIST, "push", "--json", f"oci:{src}:big", f"{reg.host}/big:1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    uploads = os.path.join(reg.dir, "data", "docker", "registry", "v2", "repositories", "big",
                           "_uploads")

    def uploading():
        for root, _, files in os.walk(uploads):
            if "data" in files and os.path.getsize(os.path.join(root, "data")) > (4 << 20):
                return True
        return False

    wait_for(uploading, timeout=60, what="upload in progress")
    reg.stop(signal.SIGKILL)
    time.sleep(0.3)
    reg.start()
    out, err = proc.communicate(timeout=300)
    # the registry came back within the retry window: the push must complete
    assert proc.returncode == 0, err
    assert json.loads(out)["digest"] == desc["digest"]
    assert skopeo_digest(f"{reg.host}/big:1") == desc["digest"]
    reg.stop()


@test
def corrupt_layout_blob_is_not_pushed():
    reg = registry()
    src = os.path.join(tmpdir(), "src")
    desc = make_image(src, "c", seed="badpush", sizes=(20000, 10))
    m = json.loads(open(os.path.join(src, "blobs", "sha256", desc["digest"][7:])).read())
    path = os.path.join(src, "blobs", "sha256", m["layers"][0]["digest"][7:])
    data = bytearray(open(path, "rb").read())
    data[50] ^= 0xFF
    open(path, "wb").write(bytes(data))
    start = time.monotonic()
    p = hoist("push", f"oci:{src}:c", f"{reg.host}/badpush:1", check=False)
    assert p.returncode == 1 and "DIGEST_INVALID" in p.stderr, p.stderr
    assert time.monotonic() - start < 5, "a refused digest was retried"
    q = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{reg.host}/badpush:1",
               check=False)
    assert q.returncode != 0, "the manifest was pushed although a blob was refused"


class BreakingProxy:
    """A reverse proxy in front of the registry that cuts the first download
    of each blob after `after` bytes, can answer 503, and can hide mount
    requests from the registry: a test double for a network that breaks and
    for registries that ignore mounts, which the real registry on loopback
    never does on cue."""

    def __init__(self, target_port, after=1 << 20, unavailable=0, ignore_mount=False):
        import http.client
        self.ignore_mount = ignore_mount
        self.mount_attempts = 0
        self.ranges = []
        self.broken = set()
        self.unavailable = unavailable  # answer this many manifest GETs with 503
        self.answered_503 = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _forward(self):
                if "/manifests/" in self.path and self.command == "GET" and \
                        proxy.answered_503 < proxy.unavailable:
                    proxy.answered_503 += 1
                    body = b'{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}'
                    self.send_response(503)
                    self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                conn = http.client.HTTPConnection("127.0.0.1", target_port, timeout=30)
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        body += self.rfile.read(size)
                        self.rfile.readline()
                else:
                    n = int(self.headers.get("Content-Length", "0") or 0)
                    body = self.rfile.read(n) if n else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("transfer-encoding", "content-length")}
                if body is not None:
                    headers["Content-Length"] = str(len(body))
                if "Range" in self.headers:
                    proxy.ranges.append(self.headers["Range"])
                path = self.path
                if self.command == "POST" and "mount=" in path:
                    proxy.mount_attempts += 1
                    if proxy.ignore_mount:
                        path = path.split("?")[0]
                conn.request(self.command, path, body=body, headers=headers)
                resp = conn.getresponse()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.end_headers()
                cut = (self.command == "GET" and "/blobs/sha256:" in self.path
                       and self.path not in proxy.broken and resp.status == 200
                       and int(resp.getheader("Content-Length", "0")) > after)
                sent = 0
                while True:
                    chunk = resp.read(65536)
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    sent += len(chunk)
                    if cut and sent >= after:
                        proxy.broken.add(self.path)
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                conn.close()

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        on_exit(self.server.shutdown)


@test
def broken_download_resumes_with_range():
    reg = registry()
    src = os.path.join(tmpdir(), "src")
    desc = make_image(src, "r", seed="range", sizes=(8 << 20,))
    hoist("push", f"oci:{src}:r", f"{reg.host}/range:1")
    proxy = BreakingProxy(reg.port)
    dst = os.path.join(tmpdir(), "dst")
    hoist("pull", "--to", f"oci:{dst}:r", f"127.0.0.1:{proxy.port}/range:1")
    assert proxy.broken, "the proxy never cut a download"
    assert proxy.ranges and all(r.startswith("bytes=") and not r.startswith("bytes=0-")
                                for r in proxy.ranges), proxy.ranges
    assert layout_ref(dst, "r")["digest"] == desc["digest"]
    check_layout_blobs(dst)


@test
def ignored_mount_falls_back_to_streaming():
    reg = registry()
    src = os.path.join(tmpdir(), "src")
    desc = make_image(src, "f", seed="fallback", sizes=(200000, 30))
    hoist("push", f"oci:{src}:f", f"{reg.host}/fb/a:1")
    proxy = BreakingProxy(reg.port, ignore_mount=True)
    out = json.loads(hoist("copy", "--json", f"127.0.0.1:{proxy.port}/fb/a:1",
                           f"127.0.0.1:{proxy.port}/fb/b:1").stdout)
    assert proxy.mount_attempts == 3, proxy.mount_attempts
    assert out["blobs"]["mounted"] == 0 and out["blobs"]["transferred"] == 3, out
    assert skopeo_digest(f"{reg.host}/fb/b:1") == desc["digest"]


@test
def unavailable_is_retried_then_reported():
    reg = registry()
    src = os.path.join(tmpdir(), "src")
    desc = make_image(src, "u", seed="unavail", sizes=(100,))
    hoist("push", f"oci:{src}:u", f"{reg.host}/unavail:1")
    proxy = BreakingProxy(reg.port, unavailable=1)
    start = time.monotonic()
    info = json.loads(hoist("inspect", "--json", f"127.0.0.1:{proxy.port}/unavail:1").stdout)
    assert info["digest"] == desc["digest"] and proxy.answered_503 == 1
    assert time.monotonic() - start >= 1, "Retry-After was not honoured"
    # a registry that stays unavailable: 3 attempts, then its own words
    proxy.unavailable = 100
    proxy.answered_503 = 0
    p = hoist("inspect", f"127.0.0.1:{proxy.port}/unavail:1", check=False)
    assert p.returncode == 1 and "HTTP 503: UNAVAILABLE: try later" in p.stderr, p.stderr
    assert proxy.answered_503 == 3, proxy.answered_503


# --------------------------------------------------------------- auth


@test
def basic_auth():
    reg = Registry(tmpdir(), auth="htpasswd", users={"alice": "s3cret"}).start()
    src = os.path.join(tmpdir(), "src")
    desc = make_image(src, "b", seed="basic", sizes=(1000,))
    p = hoist("push", f"oci:{src}:b", f"{reg.host}/basic:1", check=False)
    assert p.returncode == 1 and "no credentials" in p.stderr, p.stderr
    start = time.monotonic()
    p = hoist("push", "--creds", "alice:wrong", f"oci:{src}:b", f"{reg.host}/basic:1",
              check=False)
    assert p.returncode == 1 and "credentials were refused" in p.stderr, p.stderr
    assert time.monotonic() - start < 10, "wrong credentials were retried"
    hoist("push", "--creds", "alice:s3cret", f"oci:{src}:b", f"{reg.host}/basic:1")
    assert skopeo_digest(f"{reg.host}/basic:1", "--creds", "alice:s3cret") == desc["digest"]
    d = tmpdir()
    # Docker config.json with "auth"
    cfg = os.path.join(d, "config.json")
    auth = base64.b64encode(b"alice:s3cret").decode()
    json.dump({"auths": {f"http://{reg.host}/": {"auth": auth}}}, open(cfg, "w"))
    out = hoist("tags", f"{reg.host}/basic", env={"REGISTRY_AUTH_FILE": cfg}).stdout.split()
    assert out == ["1"], out
    # username/password and --authfile
    json.dump({"auths": {reg.host: {"username": "alice", "password": "s3cret"}}}, open(cfg, "w"))
    hoist("inspect", "--authfile", cfg, f"{reg.host}/basic:1")
    # Kubernetes secret (.dockerconfigjson inside a Secret object)
    sec = os.path.join(d, "secret.json")
    inner = json.dumps({"auths": {reg.host: {"auth": auth}}}).encode()
    json.dump({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
               "data": {".dockerconfigjson": base64.b64encode(inner).decode()}}, open(sec, "w"))
    hoist("tags", f"{reg.host}/basic", env={"REGISTRY_SECRET": sec})
    # a credential helper
    bindir = os.path.join(d, "bin")
    os.makedirs(bindir)
    helper = os.path.join(bindir, "docker-credential-hoisttest")
    with open(helper, "w") as f:
        f.write("#!/bin/sh\nread host\n"
                f"[ \"$host\" = \"{reg.host}\" ] || {{ echo 'credentials not found'; exit 1; }}\n"
                "echo '{\"ServerURL\":\"'$host'\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}'\n")
    os.chmod(helper, 0o755)
    json.dump({"credHelpers": {reg.host: "hoisttest"}}, open(cfg, "w"))
    hoist("tags", f"{reg.host}/basic",
          env={"REGISTRY_AUTH_FILE": cfg, "PATH": bindir + ":" + os.environ["PATH"]})
    reg.stop()


class TokenIssuer:
    """A token service as the registry's token auth expects: Basic auth from
    the client, a JWT signed RS256 with a key whose certificate the registry
    trusts (x5c header)."""

    def __init__(self, workdir, users):
        from cryptography.hazmat.primitives import serialization
        self.users = users
        self.refresh = {"idtok-" + u: u for u in users}
        self.key_path = os.path.join(workdir, "token.key")
        self.cert_path = os.path.join(workdir, "token.crt")
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=hoist-test-token", "-keyout", self.key_path, "-out", self.cert_path)
        with open(self.key_path, "rb") as f:
            self.key = serialization.load_pem_private_key(f.read(), password=None)
        self.cert_der = subprocess.run(["openssl", "x509", "-in", self.cert_path, "-outform",
                                        "DER"], capture_output=True, check=True).stdout
        self.requests = []
        self.deny_pull = set()  # repositories whose pull is left out of tokens
        self.port = free_port()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                issuer.handle(self)

            def do_POST(self):
                issuer.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        on_exit(self.server.shutdown)

    @property
    def realm(self):
        return f"http://127.0.0.1:{self.port}/token"

    def _b64(self, b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    def handle(self, h):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        q = urllib.parse.parse_qs(urllib.parse.urlparse(h.path).query)
        user = None
        if h.command == "POST":
            # OAuth2 refresh-token grant: an identity token stands for a user
            n = int(h.headers.get("Content-Length", "0"))
            q = urllib.parse.parse_qs(h.rfile.read(n).decode())
            if q.get("grant_type") != ["refresh_token"] or \
                    q.get("refresh_token", [""])[0] not in self.refresh:
                h.send_response(401)
                h.end_headers()
                return
            user = self.refresh[q["refresh_token"][0]]
        self.requests.append(q)
        auth = h.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
            if self.users.get(u) != p:
                h.send_response(401)
                h.end_headers()
                return
            user = u
        if user is None and h.command == "GET":
            h.send_response(401)
            h.end_headers()
            return
        access = []
        for s in q.get("scope", []):
            typ, _, rest = s.partition(":")
            name, _, actions = rest.rpartition(":")
            actions = [a for a in actions.split(",")
                       if not (a == "pull" and name in self.deny_pull)]
            access.append({"type": typ, "name": name, "actions": actions})
        now = int(time.time())
        claims = {"iss": "hoist-test-issuer", "sub": user, "aud": q.get("service", [""])[0],
                  "exp": now + 300, "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(),
                  "access": access}
        header = {"typ": "JWT", "alg": "RS256",
                  "x5c": [base64.b64encode(self.cert_der).decode()]}
        signing = (self._b64(json.dumps(header).encode()) + "." +
                   self._b64(json.dumps(claims).encode()))
        sig = self.key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        token = signing + "." + self._b64(sig)
        key = "access_token" if h.command == "POST" else "token"
        body = json.dumps({key: token, "expires_in": 300}).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)


@test
def token_auth():
    d = tmpdir()
    issuer = TokenIssuer(d, {"bob": "tokpw"})
    reg = Registry(d, auth="token", token={
        "realm": issuer.realm, "service": "hoist-test-registry", "issuer": "hoist-test-issuer",
        "rootcertbundle": issuer.cert_path}).start()
    src = os.path.join(tmpdir(), "src")
    desc = make_image(src, "t", seed="token", sizes=(4000, 100))
    start = time.monotonic()
    p = hoist("push", "--creds", "bob:nope", f"oci:{src}:t", f"{reg.host}/tok/app:1", check=False)
    assert p.returncode == 1 and "authentication failed" in p.stderr, p.stderr
    assert time.monotonic() - start < 10
    hoist("push", "--creds", "bob:tokpw", f"oci:{src}:t", f"{reg.host}/tok/app:1")
    scopes = [s for q in issuer.requests for s in q.get("scope", [])]
    assert "repository:tok/app:pull,push" in scopes, scopes
    n = len(issuer.requests)
    assert skopeo_digest(f"{reg.host}/tok/app:1", "--creds", "bob:tokpw") == desc["digest"]
    # mount from another repository asks pull on the source too
    out = json.loads(hoist("copy", "--json", "--creds", "bob:tokpw", f"{reg.host}/tok/app:1",
                           f"{reg.host}/tok/copy:1").stdout)
    assert out["blobs"]["mounted"] == 3, out
    scopes = [s for q in issuer.requests[n:] for s in q.get("scope", [])]
    assert "repository:tok/app:pull" in scopes, scopes
    dst = os.path.join(tmpdir(), "dst")
    hoist("pull", "--creds", "bob:tokpw", "--to", f"oci:{dst}:x", f"{reg.host}/tok/copy:1")
    assert layout_ref(dst, "x")["digest"] == desc["digest"]
    got = hoist("catalog", "--creds", "bob:tokpw", reg.host).stdout.split()
    assert got == ["tok/app", "tok/copy"], got
    # an identity token (OAuth2 refresh token) from an auth file
    cfg = os.path.join(tmpdir(), "auth.json")
    json.dump({"auths": {reg.host: {"identitytoken": "idtok-bob"}}}, open(cfg, "w"))
    hoist("push", "--authfile", cfg, f"oci:{src}:t", f"{reg.host}/tok/idt:1")
    assert issuer.requests[-1].get("grant_type") == ["refresh_token"]
    json.dump({"auths": {reg.host: {"identitytoken": "idtok-eve"}}}, open(cfg, "w"))
    p = hoist("tags", "--authfile", cfg, f"{reg.host}/tok/idt", check=False)
    assert p.returncode == 1 and "authentication failed" in p.stderr, p.stderr
    reg.stop()


@test
def mount_without_pull_access_uploads():
    """The blob-location record names a repository the user may no longer
    pull from: the mount is refused (401), and the blob goes up instead."""
    d = tmpdir()
    issuer = TokenIssuer(d, {"bob": "tokpw"})
    reg = Registry(d, auth="token", token={
        "realm": issuer.realm, "service": "hoist-test-registry", "issuer": "hoist-test-issuer",
        "rootcertbundle": issuer.cert_path}).start()
    src = os.path.join(tmpdir(), "src")
    desc = make_image(src, "t", seed="nopull", sizes=(6 << 20, 100))
    db = os.path.join(d, "blob-locations.db")
    env = {"HOIST_BLOB_LOCATIONS": db}
    hoist("push", "--creds", "bob:tokpw", f"oci:{src}:t", f"{reg.host}/tok/secret:1", env=env)
    issuer.deny_pull.add("tok/secret")
    n = len(issuer.requests)
    out = json.loads(hoist("push", "--json", "--creds", "bob:tokpw", f"oci:{src}:t",
                           f"{reg.host}/tok/open:1", env=env).stdout)
    assert out["blobs"]["mounted"] == 0 and out["blobs"]["transferred"] == 3, out
    scopes = [s for q in issuer.requests[n:] for s in q.get("scope", [])]
    assert "repository:tok/secret:pull" in scopes, scopes  # the mount was tried
    assert skopeo_digest(f"{reg.host}/tok/open:1", "--creds", "bob:tokpw") == desc["digest"]
    reg.stop()


@test
def tls_with_ca():
    reg = Registry(tmpdir(), tls=True).start()
    src = os.path.join(tmpdir(), "src")
    desc = make_image(src, "tls", seed="tls", sizes=(2000,))
    # loopback tries https first: a CA not trusted says what to give
    p = hoist("push", f"oci:{src}:tls", f"{reg.host}/tls:1", check=False)
    assert p.returncode == 1 and "--ca-file" in p.stderr, p.stderr
    p = hoist("push", "--tls-verify=true", f"oci:{src}:tls", f"{reg.host}/tls:1", check=False)
    assert p.returncode == 1 and "certificate" in p.stderr.lower(), p.stderr
    p = hoist("push", "--tls-verify=true", "--ca-file", reg.ca, f"oci:{src}:tls",
              f"{reg.host}/tls:1", env={"HOIST_LOG": "debug"})
    assert "PUT https://" in p.stderr and "-> 201 (HTTP/2)" in p.stderr, p.stderr[-2000:]
    certs = tmpdir()
    with open(os.path.join(certs, "ca.crt"), "w") as f:
        f.write(open(reg.ca).read())
    assert skopeo("inspect", "--cert-dir", certs, "--format", "{{.Digest}}",
                  f"docker://{reg.host}/tls:1").stdout.strip() == desc["digest"]
    dst = os.path.join(tmpdir(), "dst")
    hoist("pull", "--tls-verify=true", "--ca-file", reg.ca, "--to", f"oci:{dst}:x",
          f"{reg.host}/tls:1")
    assert layout_ref(dst, "x")["digest"] == desc["digest"]
    reg.stop()


class ClientCertRegistry(Registry):
    """A TLS registry that requires client certificates signed by its CA."""

    def _config(self):
        cfg = super()._config()
        return cfg.replace(f"    key: {self.key}\n",
                           f"    key: {self.key}\n    clientcas:\n      - {self.ca}\n")


@test
def tls_client_certificate():
    reg = ClientCertRegistry(tmpdir(), tls=True).start()
    d = tmpdir()
    key, csr, crt = (os.path.join(d, n) for n in ("client.key", "client.csr", "client.crt"))
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=hoist-client",
        "-keyout", key, "-out", csr)
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", reg.ca,
        "-CAkey", os.path.join(reg.dir, "ca.key"), "-CAcreateserial", "-days", "2",
        "-extfile", ext, "-out", crt)
    src = os.path.join(tmpdir(), "src")
    desc = make_image(src, "cc", seed="clientcert", sizes=(100,))
    p = hoist("push", "--tls-verify=true", "--ca-file", reg.ca, f"oci:{src}:cc",
              f"{reg.host}/cc:1", check=False)
    assert p.returncode == 1, "pushed without a client certificate"
    assert "client certificate" in p.stderr, p.stderr
    hoist("push", "--tls-verify=true", "--ca-file", reg.ca, "--cert", crt, "--key", key,
          f"oci:{src}:cc", f"{reg.host}/cc:1")
    info = json.loads(hoist("inspect", "--json", "--tls-verify=true", "--ca-file", reg.ca,
                            "--cert", crt, "--key", key, f"{reg.host}/cc:1").stdout)
    assert info["digest"] == desc["digest"]
    reg.stop()


@test
def progress_only_on_a_tty():
    import pty
    reg = registry()
    src = os.path.join(tmpdir(), "src")
    make_image(src, "p", seed="progress", sizes=(300000,))
    p = hoist("push", f"oci:{src}:p", f"{reg.host}/progress:1")
    assert "ETA" not in p.stderr and "\033[" not in p.stderr, p.stderr
    master, slave = pty.openpty()
    proc = subprocess.Popen([HOIST, "pull", "--to", f"oci:{tmpdir()}/l:p",
                             f"{reg.host}/progress:1"],
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    proc.wait(60)
    os.close(master)
    assert proc.returncode == 0, out
    assert b"done" in out and b"[====" in out, out


# ------------------------------------------------- the local image store


def _store_layout(store, reg, repo):
    return os.path.join(store, reg.host.replace(":", "_"), repo)


def _blob_count(layout):
    return len([n for n in os.listdir(os.path.join(layout, "blobs", "sha256"))
                if not n.startswith(".")])


@test
def quiet_transfers_print_the_digest_alone():
    reg = registry()
    src = os.path.join(tmpdir(), "src")
    desc = make_image(src, "q", seed="quiet")
    for args in (["push", "-q", f"oci:{src}:q", f"{reg.host}/quiet:1"],
                 ["copy", "--quiet", f"{reg.host}/quiet:1", f"{reg.host}/quiet:2"],
                 ["pull", "-q", "--to", f"oci:{tmpdir()}/l:q", f"{reg.host}/quiet:2"]):
        p = hoist(*args)
        assert p.stdout == desc["digest"] + "\n", (args, p.stdout)
        assert p.stderr == "", (args, p.stderr)


@test
def images_lists_the_store_as_skopeo_sees_it():
    reg = registry()
    src = os.path.join(tmpdir(), "src")
    make_image(src, "i", seed="limg", sizes=(3000, 500))
    hoist("push", f"oci:{src}:i", f"{reg.host}/limg/app:1")
    store = tmpdir()
    env = {"HOIST_IMAGES": store}
    hoist("pull", f"{reg.host}/limg/app:1", env=env)
    # something in the store that is no repository's layout is not listed
    make_image(os.path.join(store, "build-cache", "x"), "t", seed="not-an-image")
    rows = json.loads(hoist("images", "--json", env=env).stdout)
    assert len(rows) == 1, rows
    e = rows[0]
    layout = _store_layout(store, reg, "limg/app")
    sk = json.loads(skopeo("inspect", f"oci:{layout}:1").stdout)
    raw = skopeo("inspect", "--raw", f"oci:{layout}:1").stdout.encode()
    m = json.loads(raw)
    assert e["repository"] == f"{reg.host}/limg/app" and e["tag"] == "1", e
    assert e["digest"] == sk["Digest"], (e, sk)
    assert e["created"] == sk["Created"] == "2024-01-01T00:00:00Z", (e, sk)
    assert e["size"] == len(raw) + m["config"]["size"] + sum(l["size"] for l in m["layers"]), e
    assert [l["digest"] for l in m["layers"]] == sk["Layers"], sk
    assert e["layout"] == layout, e
    # the table, the digests, a pattern
    out = hoist("images", env=env).stdout.splitlines()
    assert out[0].split() == ["REPOSITORY", "TAG", "DIGEST", "SIZE", "CREATED"], out
    assert out[1].split()[:3] == [f"{reg.host}/limg/app", "1", sk["Digest"][:19]], out
    assert "2024-01-01 00:00:00" in out[1], out
    assert hoist("images", "-q", env=env).stdout == sk["Digest"] + "\n"
    assert len(hoist("images", "*/limg/*:1", env=env).stdout.splitlines()) == 2
    assert len(hoist("images", "nothing*", env=env).stdout.splitlines()) == 1
    # the service's commands moved under `hoist service images`
    p = hoist("images", "list-catalogs", env=env, check=False)
    assert p.returncode == 2 and "hoist service images list-catalogs" in p.stderr, p.stderr
    assert json.loads(hoist("images", "--json", env={"HOIST_IMAGES": tmpdir() + "/none"}).stdout) == []


@test
def tag_then_use_then_rmi_then_gc():
    reg = registry()
    src = os.path.join(tmpdir(), "src")
    desc = make_image(src, "t", seed="tagged", sizes=(2000,))
    hoist("push", f"oci:{src}:t", f"{reg.host}/tagme:1")
    store = tmpdir()
    env = {"HOIST_IMAGES": store}
    hoist("pull", f"{reg.host}/tagme:1", env=env)
    layout = _store_layout(store, reg, "tagme")
    blobs = _blob_count(layout)
    # a new tag of the same repository: index.json only
    out = hoist("tag", f"{reg.host}/tagme:1", f"{reg.host}/tagme:local", env=env).stdout
    assert out == f"tagged {reg.host}/tagme:local {desc['digest']}\n", out
    assert layout_ref(layout, "local")["digest"] == desc["digest"]
    assert _blob_count(layout) == blobs
    info = json.loads(hoist("inspect", "--json", f"oci:{layout}:local").stdout)
    assert info["digest"] == desc["digest"], info
    # the registry has no such tag: the store's copy serves
    dest = os.path.join(tmpdir(), "rootfs")
    p = hoist("unpack", f"{reg.host}/tagme:local", dest, env=env)
    assert "using the image store's copy" in p.stderr, p.stderr
    assert os.path.exists(os.path.join(dest, "file-tagged0amd64"))
    # another repository is another layout: the image is copied there
    j = json.loads(hoist("tag", "--json", f"{reg.host}/tagme:1", f"{reg.host}/other:x",
                         env=env).stdout)
    assert j["copied"] and j["digest"] == desc["digest"], j
    # in a layout of one's own
    hoist("tag", f"oci:{src}:t", f"oci:{src}:t2")
    assert layout_ref(src, "t2")["digest"] == desc["digest"]
    p = hoist("tag", f"oci:{src}:t", f"oci:{src}", check=False)
    assert p.returncode == 2, p.stderr
    # rmi: the tags go, the blobs stay until gc
    out = hoist("rmi", f"{reg.host}/tagme:1", f"{reg.host}/tagme:local", env=env).stdout
    assert out.splitlines() == [f"untagged {reg.host}/tagme:1 {desc['digest']}",
                                f"untagged {reg.host}/tagme:local {desc['digest']}"], out
    listed = [(e["repository"], e["tag"]) for e in
              json.loads(hoist("images", "--json", env=env).stdout)]
    assert listed == [(f"{reg.host}/other", "x")], listed
    assert _blob_count(layout) == blobs
    j = json.loads(hoist("gc", "--json", "--min-age", "0", env=env).stdout)
    assert j["removed"] == blobs, j
    assert _blob_count(layout) == 0
    assert _blob_count(_store_layout(store, reg, "other")) == blobs
    # by digest: every tag of the repository pointing at it
    out = hoist("rmi", f"{reg.host}/other@{desc['digest']}", env=env).stdout
    assert out == f"untagged {reg.host}/other:x {desc['digest']}\n", out
    p = hoist("rmi", f"{reg.host}/tagme:1", f"oci:{src}:t2", env=env, check=False)
    assert p.returncode == 1 and "tag 1 not found" in p.stderr, p.stderr
    assert "untagged oci:" + src + ":t2" in p.stdout, p.stdout
    assert hoist("gc", "--min-age", "0", f"oci:{src}").stdout.startswith("removed 0 blobs")


@test
def help_groups_and_version():
    out = hoist("--help").stdout
    images = out.index("Images (")
    service = out.index("Build service (")
    assert images < service
    for verb in ("images", "tag", "rmi", "pull", "gc"):
        assert f"\n  {verb} " in out[images:service], verb
    for verb in ("serve", "service send", "service status", "service logs", "service clean",
                 "service images", "service token"):
        assert f"\n  {verb} " in out[service:], verb
    # the old names of the service's verbs are not listed
    assert "\n  send " not in out and "\n  token " not in out
    v = hoist("--version").stdout
    import re
    assert re.fullmatch(r"hoist \S+ \(commit ([0-9a-f]{7,}|unknown)\)\n", v), v
    if os.path.exists(os.path.join(os.environ.get("HOIST_SOURCE_ROOT", ""), ".git")):
        assert "unknown" not in v, v
    p = hoist("service", check=False)
    assert p.returncode == 2 and "\n  service send " in p.stderr, p.stderr
    p = hoist("service", "nope", check=False)
    assert p.returncode == 2 and "unknown verb 'nope'" in p.stderr, p.stderr
    assert hoist("service", "send", "--help").stdout.startswith("Usage: hoist service send")


if __name__ == "__main__":
    main()
