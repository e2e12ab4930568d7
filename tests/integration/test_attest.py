#!/usr/bin/env python3
"""Attestations: provenance and SBOM statements hoist attaches to the images it
pushes, stored the way BuildKit stores them (an attestation manifest in the
image's index) or as OCI 1.1 referrers, read back by hoist inspect and by
skopeo, copied intact by hoist and skopeo, validated against the in-toto
Statement, SLSA provenance v1 and SPDX 2.3 JSON schemas.
"""
import hashlib
import json
import os
import time

import pkgsources
from hoisttest import (CACHE, HOIST, SOURCE_ROOT, Registry, Server, Skip, busybox_with_extend,
                       hoist, main, run, schema_errors, skopeo, test, tmpdir)

_state = {}
INTOTO = "application/vnd.in-toto+json"
SLSA = "https://slsa.dev/provenance/v1"
SPDX = "https://spdx.dev/Document"


def work():
    if "work" not in _state:
        _state["work"] = tmpdir("hoist-attest-")
        os.environ["HOIST_IMAGES"] = os.path.join(_state["work"], "images")
    return _state["work"]


def registry():
    if "reg" not in _state:
        _state["reg"] = Registry(work()).start()
    return _state["reg"]


def base():
    """busybox with a /bin/extend that writes a file: a build in a second."""
    return busybox_with_extend(_state, work(), registry().host, "attest",
                               "#!/bin/sh\nset -e\ncat /tmp/requirements.txt > /extended\n")


def debian():
    """The Debian fixture (python3/pip, nodejs/npm) pushed to the test registry."""
    if "debian" not in _state:
        cached = os.path.join(CACHE, "fixtures", "debian-bookworm", "index.json")
        if os.geteuid() != 0 and not os.path.exists(cached):
            raise Skip("the Debian fixture needs root (debootstrap) to be made once")
        out = os.path.join(work(), "debian")
        run("bash", os.path.join(SOURCE_ROOT, "tests", "fixtures", "debian-image.sh"), HOIST,
            out, "bookworm", timeout=1800)
        ref = f"{registry().host}/base/debian:bookworm"
        hoist("copy", f"oci:{out}:bookworm", ref)
        _state["debian"] = ref
    return _state["debian"]


def build(target, *extra, text="flask==3.0\n", kind="python", source=None, check=True,
          name="requirements.txt"):
    d = tmpdir()
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return hoist("build", "--source", source or base(), "--kind", kind, "--file", path,
                 "--target", target, "--cache-dir", os.path.join(work(), "cache"), "--json",
                 *extra, check=check, timeout=900)


# ----------------------------------------------- package sources on loopback


def pip_index():
    """A PEP 503 index on loopback with two wheels made here: tinypkg 1.0 and
    tinydep 2.1 (which tinypkg requires)."""
    if "pip" not in _state:
        root = os.path.join(work(), "pypi")
        wheels = os.path.join(root, "wheels")
        _state["pip"] = pkgsources.pip_index(root, [
            pkgsources.make_wheel(wheels, "tinypkg", "1.0", requires=["tinydep==2.1"],
                                  license="MIT"),
            pkgsources.make_wheel(wheels, "tinydep", "2.1", license="MIT")])
    return _state["pip"]


def raw(ref):
    return json.loads(skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{ref}").stdout)


def manifest(repo_ref, digest):
    return json.loads(skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{repo_ref}@{digest}").stdout)


def schema_ok(statement, predicate_schema=None):
    extra = ["in-toto-statement-v1.schema.json"]
    assert schema_errors("in-toto-statement-v1.schema.json", statement) == [], statement
    if predicate_schema:
        errs = schema_errors(predicate_schema, statement["predicate"], extra)
        assert errs == [], errs


@test
def test_build_provenance_in_the_index():
    """build --provenance: the tag names an OCI index of the image (with its platform)
    and a BuildKit attestation manifest; skopeo reads both; the statement validates and
    names the base by digest, the kind, the requirement file's digest and the times."""
    repo = f"{registry().host}/app/prov"
    t0 = time.time()
    res = json.loads(build(f"{repo}:1", "--provenance").stdout)
    image = res["manifest"]
    assert res["attestation"]["mode"] == "index", res
    ix = raw(f"{repo}:1")
    assert ix["mediaType"] == "application/vnd.oci.image.index.v1+json", ix
    assert len(ix["manifests"]) == 2, ix
    img, att = ix["manifests"]
    assert img["digest"] == image and img["platform"]["os"] == "linux", img
    assert att["platform"] == {"architecture": "unknown", "os": "unknown"}, att
    assert att["annotations"] == {"vnd.docker.reference.type": "attestation-manifest",
                                  "vnd.docker.reference.digest": image}, att
    assert att["digest"] == res["attestation"]["manifest"]
    # skopeo picks the platform image from the index, ignoring the attestation
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{repo}:1").stdout)
    assert info["Digest"] == res["attestation"]["tag"] and info["Os"] == "linux", info
    assert info["Layers"] == [l["digest"] for l in manifest(repo, image)["layers"]], info
    am = manifest(repo, att["digest"])
    assert am["mediaType"] == "application/vnd.oci.image.manifest.v1+json", am
    assert [l["mediaType"] for l in am["layers"]] == [INTOTO], am
    assert am["layers"][0]["annotations"] == {"in-toto.io/predicate-type": SLSA}, am
    st = json.loads(skopeo_blob(repo, am["layers"][0]["digest"]))
    schema_ok(st, "slsa-provenance-v1.schema.json")
    assert st["predicateType"] == SLSA
    assert st["subject"] == [{"name": f"{repo}:1", "digest": {"sha256": image[7:]}}], st
    pred = st["predicate"]
    bd = pred["buildDefinition"]
    assert bd["buildType"] == "https://hoist.dev/build-types/build/v1", bd
    ext = bd["externalParameters"]
    assert ext["kind"] == "python" and ext["source"] == base(), ext
    req_digest = "sha256:" + __import__("hashlib").sha256(b"flask==3.0\n").hexdigest()
    assert ext["requirementFile"] == {"name": "requirements.txt", "digest": req_digest}, ext
    base_digest = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{base()}").stdout)["Digest"]
    deps = {d["name"]: d for d in bd["resolvedDependencies"]}
    assert deps["base"] == {"name": "base", "uri": base(),
                            "digest": {"sha256": base_digest[7:]}}, deps
    assert deps["requirementFile"]["digest"] == {"sha256": req_digest[7:]}, deps
    rd = pred["runDetails"]
    assert rd["builder"]["id"].startswith("https://hoist.dev/hoist@"), rd
    started = time.mktime(time.strptime(rd["metadata"]["startedOn"], "%Y-%m-%dT%H:%M:%SZ"))
    finished = time.mktime(time.strptime(rd["metadata"]["finishedOn"], "%Y-%m-%dT%H:%M:%SZ"))
    assert int(t0) - 1 <= started - time.timezone <= finished - time.timezone <= time.time() + 1
    # hoist inspect --provenance prints the predicate
    got = json.loads(hoist("inspect", "--provenance", f"{repo}:1").stdout)
    assert got == pred, got
    p = hoist("inspect", "--sbom", f"{repo}:1", check=False)
    assert p.returncode == 1 and "has no attestation of type https://spdx.dev/Document" in p.stderr
    # usage errors, before anything is built
    archive = os.path.join(work(), "out.tar")
    p = build(f"docker-archive:{archive}:app:1", "--provenance", check=False)
    assert p.returncode == 2 and "not an archive" in p.stderr, p.stderr
    p = build(f"{repo}:2", "--attest-mode", "referrer", check=False)
    assert p.returncode == 2 and "go with --provenance or --sbom" in p.stderr, p.stderr
    p = build(f"{repo}:2", "--provenance", "--attest-mode", "both", check=False)
    assert p.returncode == 2 and "want index or referrer" in p.stderr, p.stderr
    assert not os.path.exists(archive)


@test
def test_referrer_mode_through_the_tag_schema():
    """--attest-mode referrer: the tag keeps naming the image; the statement is an OCI
    1.1 artifact whose subject is the image, listed in the referrers tag schema's index
    (docker-registry 2.8 has no referrers API), and hoist inspect finds it there."""
    repo = f"{registry().host}/app/ref"
    # a package source with credentials: the provenance keeps the URL, not them
    res = json.loads(build(f"{repo}:1", "--provenance", "--attest-mode", "referrer",
                           "--pip-index-url", "http://user:s3cret@127.0.0.1:9/simple/").stdout)
    image = res["manifest"]
    top = raw(f"{repo}:1")
    assert top["mediaType"] == "application/vnd.oci.image.manifest.v1+json", top
    tagged = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{repo}:1").stdout)
    assert tagged["Digest"] == image, tagged
    refs = raw(f"{repo}:sha256-{image[7:]}")
    assert len(refs["manifests"]) == 1, refs
    entry = refs["manifests"][0]
    assert entry["artifactType"] == INTOTO, entry
    assert entry["annotations"]["in-toto.io/predicate-type"] == SLSA, entry
    art = manifest(repo, entry["digest"])
    assert art["subject"]["digest"] == image, art
    assert art["config"] == {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2,
                             "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}, art
    st = json.loads(skopeo_blob(repo, art["layers"][0]["digest"]))
    schema_ok(st, "slsa-provenance-v1.schema.json")
    got = json.loads(hoist("inspect", "--provenance", f"{repo}:1").stdout)
    assert got == st["predicate"]
    assert got["buildDefinition"]["externalParameters"]["kind"] == "python"
    assert got["buildDefinition"]["internalParameters"]["mirrors"] == \
        {"pip-index-url": "http://127.0.0.1:9/simple/"}, got
    assert "s3cret" not in json.dumps(st)
    # an image without attestations: a clear error
    p = hoist("inspect", "--provenance", base(), check=False)
    assert p.returncode == 1 and "has no attestation of type " + SLSA in p.stderr, p.stderr


@test
def test_index_copied_intact_by_hoist_and_skopeo():
    """The index with its attestation manifest goes through hoist copy --all-platforms
    and skopeo copy --all unchanged: same digest, statements still readable."""
    repo = f"{registry().host}/app/copy"
    res = json.loads(build(f"{repo}:1", "--provenance").stdout)
    digest = res["attestation"]["tag"]
    for tool, dest in (("hoist", f"{registry().host}/copies/hoist:1"),
                       ("skopeo", f"{registry().host}/copies/skopeo:1")):
        if tool == "hoist":
            hoist("copy", "--all-platforms", f"{repo}:1", dest)
        else:
            skopeo("copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
                   f"docker://{repo}:1", f"docker://{dest}")
        got = json.loads(skopeo("inspect", "--tls-verify=false", "--raw",
                                f"docker://{dest}").stdout)
        assert got == raw(f"{repo}:1"), (tool, got)
        dest_repo = dest.rsplit(":", 1)[0]
        assert hoist("inspect", "--raw", f"{dest_repo}@{digest}").stdout == \
            hoist("inspect", "--raw", f"{repo}:1").stdout
        att = got["manifests"][1]["digest"]
        st = json.loads(skopeo_blob(dest_repo, manifest(dest_repo, att)["layers"][0]["digest"]))
        assert st["subject"][0]["digest"]["sha256"] == res["manifest"][7:], (tool, st)
        pred = json.loads(hoist("inspect", "--provenance", dest).stdout)
        assert pred == st["predicate"], tool
    # into a layout and back out: the same index
    out = os.path.join(work(), "layout-copy")
    hoist("copy", "--all-platforms", f"{repo}:1", f"oci:{out}:1")
    assert json.loads(hoist("inspect", "--raw", f"oci:{out}:1").stdout) == raw(f"{repo}:1")
    assert json.loads(hoist("inspect", "--provenance", f"oci:{out}:1").stdout)["buildDefinition"]


@test
def test_index_create_carries_attestations():
    """index create joins two attested images (a build's and an append's, each a
    BuildKit-style index): the new OCI index holds both images and both attestation
    manifests; each image's provenance is read by --platform; --provenance attaches
    the index's own as a referrer of the index."""
    repo = f"{registry().host}/app/multi"
    amd = json.loads(build(f"{repo}:amd64", "--provenance").stdout)
    tree = tmpdir()
    with open(os.path.join(tree, "hello"), "w") as f:
        f.write("arm\n")
    arm = json.loads(hoist("append", "scratch", "--platform", "linux/arm64", "--layer", tree,
                           "--target", f"{repo}:arm64", "--provenance", "--json").stdout)
    assert raw(f"{repo}:arm64")["manifests"][0]["platform"]["architecture"] == "arm64"
    out = json.loads(hoist("index", "create", f"{repo}:all", f"{repo}:amd64", f"{repo}:arm64",
                           "--provenance", "--json").stdout)
    ix = raw(f"{repo}:all")
    assert ix["mediaType"] == "application/vnd.oci.image.index.v1+json", ix
    digests = [m["digest"] for m in ix["manifests"]]
    assert digests[:2] == [amd["manifest"], arm["manifest"]], ix
    refs = [m["annotations"]["vnd.docker.reference.digest"] for m in ix["manifests"][2:]]
    assert refs == [amd["manifest"], arm["manifest"]], ix
    assert out["manifests"] == 4, out
    p_arm = json.loads(hoist("inspect", "--provenance", "--platform", "linux/arm64",
                             f"{repo}:all").stdout)
    assert p_arm["buildDefinition"]["buildType"] == "https://hoist.dev/build-types/append/v1"
    assert p_arm["buildDefinition"]["externalParameters"]["base"] == "scratch", p_arm
    p_amd = json.loads(hoist("inspect", "--provenance", "--platform", "linux/amd64",
                             f"{repo}:all").stdout)
    assert p_amd["buildDefinition"]["externalParameters"]["kind"] == "python", p_amd
    # the index's own provenance: a referrer of the index
    own = raw(f"{repo}:sha256-{out['digest'][7:]}")["manifests"]
    assert len(own) == 1 and own[0]["artifactType"] == INTOTO, own
    st = json.loads(skopeo_blob(repo, manifest(repo, own[0]["digest"])["layers"][0]["digest"]))
    schema_ok(st, "slsa-provenance-v1.schema.json")
    bd = st["predicate"]["buildDefinition"]
    assert bd["buildType"] == "https://hoist.dev/build-types/index-create/v1", bd
    assert [d["digest"]["sha256"] for d in bd["resolvedDependencies"]] == \
        [amd["manifest"][7:], arm["manifest"][7:]], bd
    # an index of several images cannot be attested in index mode
    p = hoist("index", "create", f"{repo}:x", f"{repo}:amd64", "--provenance",
              "--attest-mode", "index", check=False)
    assert p.returncode == 2 and "--attest-mode referrer" in p.stderr, p.stderr


@test
def test_bundle_publish_provenance():
    """bundle publish --provenance: the TARGET-ARCH image's provenance names the bundle
    (its manifest.json digest, bundle_version) and the base; the index at TARGET holds
    the image and its attestation manifest."""
    import tarfile
    from bundlefixture import NAME, Bundle
    repo = f"{registry().host}/gpu/runtime"
    tarball = Bundle("amd64").build(os.path.join(tmpdir(), "bundle-amd64.tar.gz"))
    with tarfile.open(tarball) as t:
        member = next(m for m in t.getmembers() if m.name.endswith("/manifest.json"))
        mdigest = "sha256:" + hashlib.sha256(t.extractfile(member).read()).hexdigest()
    out = json.loads(hoist("bundle", "publish", "--base", base(), "--target", f"{repo}:1",
                           "--bundle", f"amd64={tarball}", "--provenance", "--json").stdout)
    image = out["images"][0]["digest"]
    ix = raw(f"{repo}:1")
    top = hoist("inspect", "--raw", f"{repo}:1").stdout.encode()
    assert out["digest"] == "sha256:" + hashlib.sha256(top).hexdigest(), out
    assert [m["digest"] for m in ix["manifests"]][0] == image, ix
    assert ix["manifests"][1]["annotations"]["vnd.docker.reference.digest"] == image, ix
    pred = json.loads(hoist("inspect", "--provenance", f"{repo}:1").stdout)
    bd = pred["buildDefinition"]
    assert bd["buildType"] == "https://hoist.dev/build-types/bundle-publish/v1", bd
    b = bd["externalParameters"]["bundle"]
    assert b["manifestDigest"] == mdigest and b["bundle_version"] == "0.1.0", b
    assert b["name"] == NAME, b
    deps = {d["name"]: d for d in bd["resolvedDependencies"]}
    assert deps["bundle"]["digest"] == {"sha256": mdigest[7:]}, deps
    assert deps["base"]["uri"] == base(), deps
    # the per-architecture tag names the attested image too
    assert json.loads(hoist("inspect", "--provenance", f"{repo}:1-amd64").stdout) == pred


@test
def test_service_attests_with_the_requesting_user():
    """hoist serve with "attestations": true: the image a user's build pushes carries
    the provenance naming that user (and an SBOM), in the mode the config says."""
    s = Server(config={"registry_host": registry().host, "attestations": True,
                       "attest_mode": "referrer",
                       "allowed_sources": [f"{registry().host}/base/*"]}).start()
    key = s.token("alice")
    wsk = os.path.join(s.data, "..", "wskprops")
    with open(wsk, "w") as f:
        f.write(f"AUTH={key}\nAPIHOST=http://127.0.0.1:{s.port}\n")
    req = os.path.join(tmpdir(), "requirements.txt")
    with open(req, "w") as f:
        f.write("flask==3.0\n")
    p = hoist("service", "send", "--source", base(), "--target", "alice:attested", "--kind",
              "python", "--file", req, env={"WSK_CONFIG_FILE": wsk}, timeout=300)
    image = p.stdout.strip().splitlines()[-1]
    ref, digest = image.split("@")
    pred = json.loads(hoist("inspect", "--provenance", image).stdout)
    ext = pred["buildDefinition"]["externalParameters"]
    assert ext["requestedBy"] == "alice", ext
    assert ext["source"] == base() and ext["kind"] == "python", ext
    # referrer mode: the tag still names the image the service reported
    assert json.loads(skopeo("inspect", "--tls-verify=false",
                             f"docker://{registry().host}/alice:attested").stdout)["Digest"] == digest
    sbom = json.loads(hoist("inspect", "--sbom", image).stdout)
    assert sbom["spdxVersion"] == "SPDX-2.3", sbom


@test
def test_signed_after_the_attestations():
    """build --provenance --sign-key: the signature is of what the tag names once the
    attestations are attached (the index), so pulling the tag with --verify-key works
    and the statements are covered by it."""
    d = tmpdir()
    hoist("generate-key-pair", "--output-key-prefix", os.path.join(d, "k"))
    repo = f"{registry().host}/app/signed"
    res = json.loads(build(f"{repo}:1", "--provenance", "--sign-key",
                           os.path.join(d, "k.key")).stdout)
    index = res["attestation"]["tag"]
    v = hoist("verify", "--key", os.path.join(d, "k.pub"), f"{repo}:1")
    assert index in v.stdout + v.stderr, (v.stdout, v.stderr)
    hoist("pull", "--verify-key", os.path.join(d, "k.pub"), f"{repo}:1")


def spdx_packages(doc):
    """{name: versionInfo} of the SPDX document's packages, and their purls."""
    assert schema_errors("spdx-2.3.schema.json", doc) == []
    pkgs = {p["name"]: p.get("versionInfo") for p in doc["packages"]}
    purls = {r["referenceLocator"] for p in doc["packages"] for r in p.get("externalRefs", [])
             if r["referenceType"] == "purl"}
    return pkgs, purls


@test
def test_pip_build_sbom_lists_the_installed_distributions():
    """build --sbom --provenance of a pip build: the SPDX document (valid SPDX 2.3, in an
    in-toto statement with predicateType https://spdx.dev/Document) lists the
    distributions pip installed, with versions, and the base's dpkg packages."""
    repo = f"{registry().host}/py/sbom"
    res = json.loads(build(f"{repo}:1", "--sbom", "--provenance", "--pip-index-url",
                           pip_index(), text="tinypkg==1.0\n", source=debian()).stdout)
    ix = raw(f"{repo}:1")
    am = manifest(repo, ix["manifests"][1]["digest"])
    types = [l["annotations"]["in-toto.io/predicate-type"] for l in am["layers"]]
    assert sorted(types) == [SLSA, SPDX], am
    for layer in am["layers"]:
        st = json.loads(skopeo_blob(repo, layer["digest"]))
        assert st["subject"][0]["digest"] == {"sha256": res["manifest"][7:]}
        schema_ok(st, "slsa-provenance-v1.schema.json" if st["predicateType"] == SLSA else None)
    doc = json.loads(hoist("inspect", "--sbom", f"{repo}:1").stdout)
    pkgs, purls = spdx_packages(doc)
    assert pkgs.get("tinypkg") == "1.0" and pkgs.get("tinydep") == "2.1", pkgs
    # what pip installed, no more, is of the layer the build added
    layer = {r["referenceLocator"] for p in doc["packages"] for r in p["externalRefs"]
             if p["comment"].startswith("in the layer the build added")}
    assert layer == {"pkg:pypi/tinypkg@1.0", "pkg:pypi/tinydep@2.1"}, layer
    # the base's system packages, from its dpkg database
    assert pkgs.get("python3-pip") and any(p.startswith("pkg:deb/debian/python3-pip@")
                                           for p in purls), sorted(purls)[:20]
    prov = json.loads(hoist("inspect", "--provenance", f"{repo}:1").stdout)
    assert prov["buildDefinition"]["internalParameters"]["mirrors"] == \
        {"pip-index-url": pip_index()}, prov


def skopeo_blob(repo, digest):
    host, path = repo.split("/", 1)
    with registry().get(f"/v2/{path}/blobs/{digest}") as r:
        return r.read()


if __name__ == "__main__":
    main()
