"""OCI image layouts: hoist reads what umoci and hand-written JSON make, and
skopeo and umoci read what the store writes; inspect, ls and gc end to end."""
import hashlib
import json
import os
import time

from hoisttest import free_port, hoist, main, run, sha256_file, skopeo, test, tmpdir

MAKE_LAYOUT = os.environ.get("HOIST_MAKE_LAYOUT", "make_layout")


def make_layout(d, tag, content=None):
    args = [MAKE_LAYOUT, d, tag] + ([content] if content is not None else [])
    return run(*args).stdout.strip()


def blob(d, digest):
    return os.path.join(d, "blobs", "sha256", digest.split(":", 1)[1])


def put(d, data):
    if isinstance(data, (dict, list)):
        data = json.dumps(data).encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    os.makedirs(os.path.join(d, "blobs", "sha256"), exist_ok=True)
    with open(blob(d, digest), "wb") as f:
        f.write(data)
    return {"digest": digest, "size": len(data)}


def read_index(d):
    with open(os.path.join(d, "index.json")) as f:
        return json.load(f)


def write_index(d, ix):
    with open(os.path.join(d, "index.json"), "w") as f:
        json.dump(ix, f)


@test
def store_output_is_read_by_skopeo_and_umoci():
    d = os.path.join(tmpdir(), "layout")
    digest = make_layout(d, "v1", "hello from the store\n")
    with open(os.path.join(d, "oci-layout")) as f:
        assert json.load(f) == {"imageLayoutVersion": "1.0.0"}
    ix = read_index(d)
    assert ix["schemaVersion"] == 2 and ix["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert ix["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "v1"
    sk = json.loads(skopeo("inspect", f"oci:{d}:v1").stdout)
    assert sk["Digest"] == digest, (sk["Digest"], digest)
    ours = json.loads(hoist("inspect", "--json", f"oci:{d}:v1").stdout)
    assert ours["digest"] == digest
    assert [l["digest"] for l in ours["layers"]] == sk["Layers"]
    assert ours["config"]["os"] == sk["Os"] and ours["config"]["architecture"] == sk["Architecture"]
    assert ours["config"]["env"] == sk["Env"] == ["PATH=/bin"]
    assert sk["Labels"] == {"org.example.test": "yes"} == ours["config"]["labels"]
    # skopeo reads the raw manifest; hoist --raw prints the same bytes
    raw = run("skopeo", "inspect", "--raw", f"oci:{d}:v1").stdout
    assert hoist("inspect", "--raw", f"oci:{d}:v1").stdout == raw
    assert "v1" in run("umoci", "ls", "--layout", d).stdout.split()
    bundle = os.path.join(tmpdir(), "bundle")
    run("umoci", "unpack", "--rootless", "--image", f"{d}:v1", bundle)
    with open(os.path.join(bundle, "rootfs", "hello.txt")) as f:
        assert f.read() == "hello from the store\n"
    # a second writer into the same layout keeps the first tag
    make_layout(d, "v2", "second\n")
    tags = sorted(run("umoci", "ls", "--layout", d).stdout.split())
    assert tags == ["v1", "v2"], tags


@test
def reads_umoci_image():
    t = tmpdir()
    d = os.path.join(t, "img")
    run("umoci", "init", "--layout", d)
    run("umoci", "new", "--image", f"{d}:base")
    bundle = os.path.join(t, "bundle")
    run("umoci", "unpack", "--rootless", "--image", f"{d}:base", bundle)
    with open(os.path.join(bundle, "rootfs", "app.txt"), "w") as f:
        f.write("app\n")
    run("umoci", "repack", "--image", f"{d}:app", bundle)
    run("umoci", "config", "--image", f"{d}:app", "--config.env", "A=1", "--config.cmd", "run",
        "--config.entrypoint", "/bin/sh", "--config.user", "1000", "--config.workingdir", "/srv",
        "--config.label", "team=core")
    entry = [m for m in read_index(d)["manifests"]
             if m["annotations"]["org.opencontainers.image.ref.name"] == "app"][0]
    j = json.loads(hoist("inspect", "--json", f"oci:{d}:app").stdout)
    assert j["digest"] == entry["digest"] and j["size"] == entry["size"]
    c = j["config"]
    assert "A=1" in c["env"] and c["cmd"] == ["run"] and c["entrypoint"] == ["/bin/sh"]
    assert c["user"] == "1000" and c["workingDir"] == "/srv" and c["labels"] == {"team": "core"}
    assert c["diffIds"] == 1 and len(j["layers"]) == 1
    sk = json.loads(skopeo("inspect", f"oci:{d}:app").stdout)
    assert sk["Digest"] == j["digest"] and sk["Layers"] == [l["digest"] for l in j["layers"]]
    with open(blob(d, entry["digest"]), "rb") as f:
        manifest = f.read()
    p = run_bytes(hoist_bin(), "inspect", "--raw", f"oci:{d}:app")
    assert p == manifest
    cfg_digest = json.loads(manifest)["config"]["digest"]
    with open(blob(d, cfg_digest), "rb") as f:
        assert run_bytes(hoist_bin(), "inspect", "--config", f"oci:{d}:app") == f.read()
    human = hoist("inspect", f"oci:{d}:app").stdout
    for needle in (entry["digest"], "linux/amd64", "A=1", "/bin/sh", "WorkingDir   /srv",
                   "team=core", "Diff IDs     1", json.loads(manifest)["layers"][0]["digest"]):
        assert needle in human, (needle, human)
    ls = json.loads(hoist("ls", "--json", f"oci:{d}").stdout)
    assert sorted(e["tag"] for e in ls) == ["app", "base"]
    assert {e["tag"]: e["digest"] for e in ls}["app"] == entry["digest"]
    assert "app" in hoist("ls", f"oci:{d}").stdout


def hoist_bin():
    return os.environ.get("HOIST_BIN", "hoist")


def run_bytes(*args):
    import subprocess
    p = subprocess.run(list(args), capture_output=True, check=True)
    return p.stdout


@test
def multi_platform_index_by_hand():
    d = os.path.join(tmpdir(), "multi")
    os.makedirs(d)
    with open(os.path.join(d, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    entries = []
    for arch in ("amd64", "arm64"):
        layer = put(d, arch.encode() * 10)
        config = put(d, {"architecture": arch, "os": "linux",
                         "config": {"Env": [f"ARCH={arch}"]},
                         "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}})
        m = put(d, {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}]})
        entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "platform": {"os": "linux", "architecture": arch}, **m})
    ix = put(d, {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": entries})
    write_index(d, {"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", **ix}]})
    # no tag: the only entry
    j = json.loads(hoist("inspect", "--json", "--platform", "linux/arm64", f"oci:{d}").stdout)
    assert j["index"]["digest"] == ix["digest"]
    assert j["digest"] == entries[1]["digest"] and j["config"]["env"] == ["ARCH=arm64"]
    j = json.loads(hoist("inspect", "--json", "--platform", "linux/amd64", f"oci:{d}").stdout)
    assert j["digest"] == entries[0]["digest"]
    with open(blob(d, ix["digest"]), "rb") as f:
        assert run_bytes(hoist_bin(), "inspect", "--raw", f"oci:{d}") == f.read()
    p = hoist("inspect", "--platform", "linux/s390x", f"oci:{d}", check=False)
    assert p.returncode == 1 and "no image for platform linux/s390x" in p.stderr
    # gc keeps everything the index reaches
    out = hoist("gc", f"oci:{d}").stdout
    assert out.strip() == "removed 0 blobs, freed 0 bytes", out


@test
def gc_removes_untagged_and_garbage():
    d = os.path.join(tmpdir(), "gc")
    keep = make_layout(d, "keep", "keep\n")
    drop = make_layout(d, "drop", "drop\n")
    garbage = put(d, b"nobody points at me")
    before = set(os.listdir(os.path.join(d, "blobs", "sha256")))
    ix = read_index(d)
    ix["manifests"] = [m for m in ix["manifests"] if m["digest"] != drop]
    write_index(d, ix)
    with open(blob(d, drop), "rb") as f:
        dm = json.load(f)
    dropped = [drop, dm["config"]["digest"]] + [l["digest"] for l in dm["layers"]]
    dropped = [x for x in dropped if x.split(":")[1] in before] + [garbage["digest"]]
    freed = sum(os.path.getsize(blob(d, x)) for x in dropped)
    # by default young unreachable blobs are kept: a writer may not have tagged yet
    assert json.loads(hoist("gc", "--json", f"oci:{d}").stdout) == {"removed": 0, "freedBytes": 0}
    # an old one goes with --min-age; the young rest stays
    old = time.time() - 7200
    os.utime(blob(d, drop), (old, old))
    drop_size = os.path.getsize(blob(d, drop))
    out = json.loads(hoist("gc", "--json", "--min-age", "1h", f"oci:{d}").stdout)
    assert out == {"removed": 1, "freedBytes": drop_size}, out
    assert not os.path.exists(blob(d, drop))
    dropped = [x for x in dropped if x != drop]
    freed -= drop_size
    out = json.loads(hoist("gc", "--json", "--min-age", "0", f"oci:{d}").stdout)
    assert out == {"removed": len(dropped), "freedBytes": freed}, (out, len(dropped), freed)
    after = set(os.listdir(os.path.join(d, "blobs", "sha256")))
    assert before - after == {x.split(":")[1] for x in dropped + [drop]}
    # what is left is a whole image for the independent tools
    assert json.loads(skopeo("inspect", f"oci:{d}:keep").stdout)["Digest"] == keep
    bundle = os.path.join(tmpdir(), "b")
    run("umoci", "unpack", "--rootless", "--image", f"{d}:keep", bundle)
    assert hoist("gc", "--min-age", "0", f"oci:{d}").stdout.strip() == \
        "removed 0 blobs, freed 0 bytes"
    for bad in ("-1", "1y", "h", "5mm", ""):
        p = hoist("gc", "--min-age", bad, f"oci:{d}", check=False)
        assert p.returncode == 2 and "--min-age" in p.stderr, (bad, p.stderr)


@test
def hostile_index_is_refused():
    t = tmpdir()
    d = os.path.join(t, "evil")
    make_layout(d, "v1")
    victim = os.path.join(t, "victim")
    with open(victim, "w") as f:
        f.write("keep me")
    ix = read_index(d)
    ix["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": "sha256:../../../victim", "size": 7,
                            "annotations": {"org.opencontainers.image.ref.name": "evil"}})
    write_index(d, ix)
    for args in (["inspect", f"oci:{d}:evil"], ["ls", f"oci:{d}"], ["gc", f"oci:{d}"]):
        p = hoist(*args, check=False)
        assert p.returncode == 1 and "digest" in p.stderr, (args, p.returncode, p.stderr)
    assert os.path.exists(victim)


@test
def cli_errors_and_help():
    for verb in ("inspect", "ls", "gc"):
        p = hoist(verb, "--help")
        assert p.stdout.startswith(f"Usage: hoist {verb}"), p.stdout
        if verb != "gc":  # gc without a layout collects the image store's
            assert hoist(verb, check=False).returncode == 2
        assert hoist(verb, "--bogus", "oci:x", check=False).returncode == 2
    t = tmpdir()
    p = hoist("inspect", f"oci:{t}/missing:v1", check=False)
    assert p.returncode == 1 and "missing" in p.stderr, p.stderr
    p = hoist("ls", f"oci:{t}", check=False)
    assert p.returncode == 1 and "not an OCI image layout" in p.stderr, p.stderr
    d = os.path.join(t, "l")
    make_layout(d, "v1")
    p = hoist("inspect", f"oci:{d}:nope", check=False)
    assert p.returncode == 1 and "tag nope not found" in p.stderr, p.stderr
    p = hoist("inspect", "--raw", "--json", f"oci:{d}:v1", check=False)
    assert p.returncode == 2
    # a registry reference with nothing listening: a clear failure naming it
    ref = f"127.0.0.1:{free_port()}/x:1"
    p = hoist("inspect", ref, check=False)
    assert p.returncode == 1 and ref in p.stderr and "connect" in p.stderr, p.stderr
    assert hoist("ls", f"oci:{d}:v1", check=False).returncode == 2


if __name__ == "__main__":
    main()
