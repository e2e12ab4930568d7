#!/usr/bin/env python3
"""Attestations: provenance and SBOM statements hoist attaches to the images it
pushes, stored the way BuildKit stores them (an attestation manifest in the
image's index) or as OCI 1.1 referrers, read back by hoist inspect and by
skopeo, copied intact by hoist and skopeo, validated against the in-toto
Statement, SLSA provenance v1 and SPDX 2.3 JSON schemas.
"""
import json
import os
import time

from hoisttest import (SOURCE_ROOT, Registry, busybox_with_extend, hoist, main, run,
                       schema_errors, skopeo, test, tmpdir)

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


def build(target, *extra, text="flask==3.0\n", kind="python", check=True):
    path = os.path.join(work(), "requirements.txt")
    with open(path, "w") as f:
        f.write(text)
    return hoist("build", "--source", base(), "--kind", kind, "--file", path, "--target", target,
                 "--cache-dir", os.path.join(work(), "cache"), "--json", *extra, check=check,
                 timeout=900)


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


@test
def test_referrer_mode_through_the_tag_schema():
    """--attest-mode referrer: the tag keeps naming the image; the statement is an OCI
    1.1 artifact whose subject is the image, listed in the referrers tag schema's index
    (docker-registry 2.8 has no referrers API), and hoist inspect finds it there."""
    repo = f"{registry().host}/app/ref"
    res = json.loads(build(f"{repo}:1", "--provenance", "--attest-mode", "referrer").stdout)
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


def skopeo_blob(repo, digest):
    host, path = repo.split("/", 1)
    with registry().get(f"/v2/{path}/blobs/{digest}") as r:
        return r.read()


if __name__ == "__main__":
    main()
