"""Image signatures in cosign's formats: what hoist signs is verified by the
sigstore JavaScript packages (@sigstore/verify, installed from npm into
$HOIST_CACHE/npm/sigstore) over the payload and signature read from the
registry with skopeo and plain HTTP; what @sigstore/sign signs, pushed in
cosign's layout over plain HTTP, verifies with hoist; tampering is refused
with the message naming why; --sign-key on push, append and build,
--verify-key on pull, run and build, the registries configuration's
hoist-verify-key, and the service's sign_key."""
import base64
import hashlib
import json
import os
import subprocess
import time
import urllib.request

from hoisttest import (CACHE, HOIST, SOURCE_ROOT, Registry, Server, Skip, busybox_with_extend,
                       hoist, main, npm_modules, run, skopeo, test, tmpdir)

MAKE_LAYOUT = os.environ.get("HOIST_MAKE_LAYOUT", "make_layout")
CHECK_JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sigstore_check.js")
SIGSTORE = {"@sigstore/verify": "4.1.3", "@sigstore/sign": "4.1.1", "@sigstore/bundle": "5.0.1",
            "@sigstore/core": "4.0.1"}
PAYLOAD_MT = "application/vnd.dev.cosign.simplesigning.v1+json"
SIG_ANN = "dev.cosignproject.cosign/signature"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_state = {}


def work():
    if "work" not in _state:
        _state["work"] = tmpdir()
    return _state["work"]


def registry():
    if "reg" not in _state:
        _state["reg"] = Registry(work()).start()
    return _state["reg"]


def env():
    """A private image store, so what a refused pull would leave is visible."""
    if "env" not in _state:
        _state["env"] = {"HOIST_IMAGES": os.path.join(work(), "images")}
    return _state["env"]


def sigstore(*args):
    p = subprocess.run(["node", CHECK_JS, npm_modules("sigstore", SIGSTORE), *args],
                       capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def keys():
    """hoist.key/hoist.pub (hoist generate-key-pair) and other.key/other.pub (openssl)."""
    if "keys" not in _state:
        d = os.path.join(work(), "keys")
        os.makedirs(d)
        hoist("generate-key-pair", "--output-key-prefix", os.path.join(d, "hoist"))
        run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", os.path.join(d, "other.key"))
        run("openssl", "pkey", "-in", os.path.join(d, "other.key"), "-pubout", "-out",
            os.path.join(d, "other.pub"))
        _state["keys"] = d
    return _state["keys"]


def key(name):
    return os.path.join(keys(), name)


def image(repo, content):
    """A small image pushed to the registry as REPO:v1; returns (ref, digest)."""
    d = os.path.join(work(), f"layout-{time.monotonic_ns()}")
    run(MAKE_LAYOUT, d, "v1", content)
    ref = f"{registry().host}/{repo}:v1"
    skopeo("copy", "--dest-tls-verify=false", f"oci:{d}:v1", f"docker://{ref}")
    return ref, digest_of(ref)


def digest_of(ref):
    out = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}").stdout
    return "sha256:" + hashlib.sha256(out.encode()).hexdigest()


def sig_tag(digest):
    return "sha256-" + digest.split(":", 1)[1] + ".sig"


def raw_manifest(ref):
    return json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}").stdout)


def blob(repo, digest):
    data = registry().get(f"/v2/{repo}/blobs/{digest}").read()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    return data


def put_blob(repo, data):
    reg = registry()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = urllib.request.urlopen(urllib.request.Request(
        reg.url(f"/v2/{repo}/blobs/uploads/"), data=b"", method="POST"), timeout=30)
    loc = start.headers["Location"]
    loc = loc if loc.startswith("http") else reg.url(loc)
    sep = "&" if "?" in loc else "?"
    urllib.request.urlopen(urllib.request.Request(
        f"{loc}{sep}digest={digest}", data=data, method="PUT",
        headers={"Content-Type": "application/octet-stream"}), timeout=30)
    return {"digest": digest, "size": len(data)}


def put_manifest(repo, tag, doc):
    data = json.dumps(doc).encode()
    urllib.request.urlopen(urllib.request.Request(
        registry().url(f"/v2/{repo}/manifests/{tag}"), data=data, method="PUT",
        headers={"Content-Type": OCI_MANIFEST}), timeout=30)


def cosign_payload(ref_repo, digest):
    """cosign's simple-signing payload, written here as cosign writes it."""
    return json.dumps({"critical": {"identity": {"docker-reference": ref_repo},
                                    "image": {"docker-manifest-digest": digest},
                                    "type": "cosign container image signature"},
                       "optional": None}, separators=(",", ":"), sort_keys=True).encode()


def push_signature(repo, tag, layers):
    """A signature manifest in cosign's layout: layers [(payload bytes, signature)]."""
    descs = []
    for payload, sig in layers:
        d = put_blob(repo, payload)
        descs.append({"mediaType": PAYLOAD_MT, **d, "annotations": {SIG_ANN: sig}})
    cfg = json.dumps({"architecture": "", "os": "", "config": {},
                      "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descs]}}
                     ).encode()
    c = put_blob(repo, cfg)
    put_manifest(repo, tag, {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                             "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                        **c}, "layers": descs})


def node_sign(payload, keyname="other"):
    path = os.path.join(work(), f"payload-{time.monotonic_ns()}")
    with open(path, "wb") as f:
        f.write(payload)
    bundle = sigstore("sign", key(f"{keyname}.key"), key(f"{keyname}.pub"), path)
    return bundle["messageSignature"]["signature"]


def verify(ref, pub="hoist.pub", check=True):
    return hoist("verify", "--key", key(pub), ref, check=check)


def refused(p, *words):
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    for w in words:
        assert w in p.stderr, (w, p.stderr)


# ------------------------------------------------------------------ tests


@test
def test_signature_is_verified_by_sigstore():
    ref, digest = image("app", "signed by hoist\n")
    host = registry().host
    p = hoist("sign", "--key", key("hoist.key"), "--json", ref)
    res = json.loads(p.stdout)
    assert res["digest"] == digest and res["signatures"] == 1, res
    sig_ref = f"{host}/app:{sig_tag(digest)}"
    m = raw_manifest(sig_ref)
    assert m["mediaType"] == OCI_MANIFEST and len(m["layers"]) == 1, m
    cfg = json.loads(blob("app", m["config"]["digest"]))
    assert cfg["rootfs"]["diff_ids"] == [m["layers"][0]["digest"]], cfg
    layer = m["layers"][0]
    assert layer["mediaType"] == PAYLOAD_MT
    payload = blob("app", layer["digest"])
    # byte for byte the payload cosign writes for this image
    assert payload == cosign_payload(f"{host}/app", digest), payload
    path = os.path.join(work(), "payload-hoist")
    with open(path, "wb") as f:
        f.write(payload)
    sig = layer["annotations"][SIG_ANN]
    assert sigstore("verify", key("hoist.pub"), path, sig)["ok"] is True
    bad = sigstore("verify", key("other.pub"), path, sig)
    assert bad["ok"] is False and bad["code"] == "SIGNATURE_ERROR", bad
    assert "verified" in verify(ref).stdout
    out = json.loads(hoist("verify", "--json", "--key", key("hoist.pub"), ref).stdout)
    assert out["digest"] == digest and out["where"].startswith("tag "), out
    # signing again adds a signature, the first one kept
    hoist("sign", "--key", key("hoist.key"), ref)
    m2 = raw_manifest(sig_ref)
    assert len(m2["layers"]) == 2 and m2["layers"][0] == layer, m2


@test
def test_sigstore_signature_verifies_with_hoist():
    ref, digest = image("theirs", "signed by @sigstore/sign\n")
    payload = cosign_payload(f"{registry().host}/theirs", digest)
    push_signature("theirs", sig_tag(digest), [(payload, node_sign(payload))])
    p = verify(ref, "other.pub")
    assert digest in p.stdout and "tag " in p.stdout, p.stdout
    refused(verify(ref, "hoist.pub", check=False), "does not verify with this key")


@test
def test_tampering_is_refused():
    host = registry().host
    ref, digest = image("tamper", "original\n")
    hoist("sign", "--key", key("hoist.key"), ref)
    verify(ref)
    refused(verify(ref, "other.pub", check=False),
            "signature does not verify with this key", "1 signature checked")
    # the tag moved to another, unsigned manifest
    d = os.path.join(work(), "moved")
    run(MAKE_LAYOUT, d, "v1", "replacement\n")
    skopeo("copy", "--dest-tls-verify=false", f"oci:{d}:v1", f"docker://{ref}")
    moved = digest_of(ref)
    refused(verify(ref, check=False), "no signature found", moved)
    # the first image's signature put where the new one's would be
    sig = raw_manifest(f"{host}/tamper:{sig_tag(digest)}")
    put_manifest("tamper", sig_tag(moved), sig)
    refused(verify(ref, check=False), "signs " + digest, "another image's digest")
    # a changed payload byte, a changed signature byte
    layer = sig["layers"][0]
    payload = blob("tamper", layer["digest"])
    changed = payload.replace(b"tamper", b"tampex")
    push_signature("tamper", sig_tag(moved), [(changed, layer["annotations"][SIG_ANN])])
    refused(verify(ref, check=False), "does not verify with this key")
    good = cosign_payload(f"{host}/tamper", moved)
    s = bytearray(base64.b64decode(node_sign(good, "hoist")))
    s[-1] ^= 1
    push_signature("tamper", sig_tag(moved), [(good, base64.b64encode(bytes(s)).decode())])
    refused(verify(ref, check=False), "does not verify with this key")
    # a payload signed properly but not a payload
    junk = b'{"critical":{"type":"something else"}}'
    push_signature("tamper", sig_tag(moved), [(junk, node_sign(junk, "hoist"))])
    refused(verify(ref, check=False), "malformed payload", "critical.type")
    # a good signature among bad ones is enough
    push_signature("tamper", sig_tag(moved),
                   [(junk, node_sign(junk, "hoist")), (good, node_sign(good, "hoist"))])
    assert "verified" in verify(ref).stdout


@test
def test_layout_signatures_and_referrers():
    d = os.path.join(work(), "lay")
    run(MAKE_LAYOUT, d, "a", "layout a\n")
    run(MAKE_LAYOUT, d, "b", "layout b\n")
    hoist("sign", "--key", key("hoist.key"), f"oci:{d}:a")
    assert "tag oci:" in verify(f"oci:{d}:a").stdout
    p = hoist("sign", "--key", key("hoist.key"), "--attach", "referrer", "-a", "team=qa",
              "--json", f"oci:{d}:b")
    res = json.loads(p.stdout)
    m = json.load(open(os.path.join(d, "blobs", "sha256", res["manifest"].split(":")[1])))
    assert m["artifactType"] == "application/vnd.dev.cosign.artifact.sig.v1+json", m
    assert m["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert m["subject"]["digest"] == res["digest"], m
    out = json.loads(hoist("verify", "--json", "--key", key("hoist.pub"), f"oci:{d}:b").stdout)
    assert out["where"] == "referrer " + res["manifest"] and out["optional"] == {"team": "qa"}
    # --recursive: an index and each of its images
    c = run(MAKE_LAYOUT, d, "c", "layout c\n").stdout.strip()
    e = run(MAKE_LAYOUT, d, "e", "layout e\n").stdout.strip()
    entries = []
    for dg in (c, e):
        size = os.path.getsize(os.path.join(d, "blobs", "sha256", dg.split(":")[1]))
        entries.append({"mediaType": OCI_MANIFEST, "digest": dg, "size": size,
                        "platform": {"os": "linux", "architecture": "amd64"}})
    ix = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                     "manifests": entries}).encode()
    ix_digest = "sha256:" + hashlib.sha256(ix).hexdigest()
    with open(os.path.join(d, "blobs", "sha256", ix_digest.split(":")[1]), "wb") as f:
        f.write(ix)
    with open(os.path.join(d, "index.json")) as f:
        top = json.load(f)
    top["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json",
                             "digest": ix_digest, "size": len(ix),
                             "annotations": {"org.opencontainers.image.ref.name": "ix"}})
    with open(os.path.join(d, "index.json"), "w") as f:
        json.dump(top, f)
    res = json.loads(hoist("sign", "--key", key("hoist.key"), "--recursive", "--json",
                           f"oci:{d}:ix").stdout)
    assert res["digest"] == ix_digest and res["images"] == 3, res
    for tag, dg in (("ix", ix_digest), ("c", c), ("e", e)):
        out = json.loads(hoist("verify", "--json", "--key", key("hoist.pub"),
                               f"oci:{d}:{tag}").stdout)
        assert out["digest"] == dg, out
    # a payload whose bytes no longer match their digest
    layer = m["layers"][0]
    path = os.path.join(d, "blobs", "sha256", layer["digest"].split(":")[1])
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data.replace(b"layout", b"layouT") if b"layout" in data else data[:-1] + b" ")
    refused(verify(f"oci:{d}:b", check=False), "sha256")


@test
def test_referrer_in_registry():
    ref, digest = image("refs", "referrer\n")
    res = json.loads(hoist("sign", "--key", key("hoist.key"), "--attach", "referrer", "--json",
                           ref).stdout)
    m = raw_manifest(f"{registry().host}/refs@{res['manifest']}")
    assert m["subject"]["digest"] == digest and m["layers"][0]["mediaType"] == PAYLOAD_MT, m
    payload = blob("refs", m["layers"][0]["digest"])
    path = os.path.join(work(), "payload-ref")
    with open(path, "wb") as f:
        f.write(payload)
    assert sigstore("verify", key("hoist.pub"), path, m["layers"][0]["annotations"][SIG_ANN])["ok"]
    assert "referrer " in verify(ref).stdout


@test
def test_keys():
    d = os.path.join(work(), "keys2")
    os.makedirs(d)
    pw = os.path.join(d, "pw")
    with open(pw, "w") as f:
        f.write("s3cret\n")
    hoist("generate-key-pair", "--output-key-prefix", f"{d}/enc", "--key-password-file", pw)
    assert os.stat(f"{d}/enc.key").st_mode & 0o777 == 0o600
    assert "ENCRYPTED PRIVATE KEY" in open(f"{d}/enc.key").read()
    p = hoist("generate-key-pair", "--output-key-prefix", f"{d}/enc", check=False)
    assert p.returncode == 1 and "exists" in p.stderr, p.stderr
    ref, _ = image("keys", "keys\n")
    refused(hoist("sign", "--key", f"{d}/enc.key", ref, check=False), "encrypted", "password")
    refused(hoist("sign", "--key", f"{d}/enc.key", ref, check=False,
                  env={"HOIST_KEY_PASSWORD": "wrong"}), "wrong password")
    hoist("sign", "--key", f"{d}/enc.key", "--key-password-file", pw, ref)
    verify(ref, f"{d}/enc.pub")
    # a SEC1 key signs too; a P-384 key and cosign's own format are refused
    run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{d}/sec1.key")
    assert "EC PRIVATE KEY" in open(f"{d}/sec1.key").read()
    hoist("sign", "--key", f"{d}/sec1.key", ref)
    run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out",
        f"{d}/p384.key")
    refused(hoist("sign", "--key", f"{d}/p384.key", ref, check=False), "not P-256")
    with open(f"{d}/cosign.key", "w") as f:
        f.write("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\neyJrZGYiOnt9fQ==\n"
                "-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    refused(hoist("sign", "--key", f"{d}/cosign.key", ref, check=False),
            "cosign's encrypted key format", "import-key-pair")


@test
def test_sign_key_on_push_append_build():
    host = registry().host
    d = os.path.join(work(), "push")
    run(MAKE_LAYOUT, d, "v1", "pushed\n")
    hoist("push", "--sign-key", key("hoist.key"), f"oci:{d}:v1", f"{host}/pushed:v1")
    verify(f"{host}/pushed:v1")
    tree = os.path.join(work(), "tree")
    os.makedirs(tree)
    with open(os.path.join(tree, "added"), "w") as f:
        f.write("appended\n")
    hoist("append", f"oci:{d}:v1", "--target", f"{host}/appended:v1", "--layer", tree,
          "--sign-key", key("hoist.key"))
    verify(f"{host}/appended:v1")
    base = busybox_with_extend(_state, work(), host, "sign", "#!/bin/sh\necho built > /built\n")
    req = os.path.join(work(), "requirements.txt")
    with open(req, "w") as f:
        f.write("x\n")
    hoist("build", "--source", base, "--kind", "python", "--file", req, "--target",
          f"{host}/built:v1", "--cache-dir", os.path.join(work(), "cache"), "--sign-key",
          key("hoist.key"), env=env(), timeout=600)
    assert "verified" in verify(f"{host}/built:v1").stdout


def store_has(repo, tag):
    """Whether the image store's layout of repo has tag."""
    path = os.path.join(env()["HOIST_IMAGES"], registry().host.replace(":", "_"), repo,
                        "index.json")
    try:
        with open(path) as f:
            ix = json.load(f)
    except FileNotFoundError:
        return False
    return any(m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
               for m in ix["manifests"])


@test
def test_verify_key_on_pull_run_build():
    host = registry().host
    base = busybox_with_extend(_state, work(), host, "verify", "#!/bin/sh\necho ok > /ok\n")
    pub = key("hoist.pub")
    # unsigned: refused before anything reaches the image store
    refused(hoist("pull", "--verify-key", pub, base, check=False, env=env()), "no signature found")
    refused(hoist("run", "--verify-key", pub, base, "true", check=False, env=env()),
            "no signature found")
    req = os.path.join(work(), "req-verify.txt")
    with open(req, "w") as f:
        f.write("x\n")
    refused(hoist("build", "--source", base, "--kind", "python", "--file", req, "--target",
                  f"oci:{work()}/out:v1", "--verify-key", pub, check=False, env=env()),
            "no signature found")
    assert not store_has("base/busybox", "verify")
    # wrongly signed: refused
    hoist("sign", "--key", key("other.key"), base)
    refused(hoist("pull", "--verify-key", pub, base, check=False, env=env()),
            "does not verify with this key")
    assert not store_has("base/busybox", "verify")
    # signed: used
    hoist("sign", "--key", key("hoist.key"), base)
    hoist("pull", "--verify-key", pub, base, env=env())
    assert store_has("base/busybox", "verify")
    p = hoist("run", "--verify-key", pub, base, "cat", "/etc/passwd", env=env())
    assert "root" in p.stdout
    hoist("build", "--source", base, "--kind", "python", "--file", req, "--target",
          f"oci:{work()}/out:v1", "--verify-key", pub, "--cache-dir",
          os.path.join(work(), "cache"), env=env(), timeout=600)


@test
def test_registries_conf_policy():
    host = registry().host
    signed, _ = image("policy/signed", "policy signed\n")
    unsigned, _ = image("policy/unsigned", "policy unsigned\n")
    hoist("sign", "--key", key("hoist.key"), signed)
    conf = os.path.join(work(), "registries.conf")
    with open(conf, "w") as f:
        f.write(f'[[registry]]\nprefix = "{host}/policy"\nhoist-verify-key = "{key("hoist.pub")}"\n')
    e = dict(env(), CONTAINERS_REGISTRIES_CONF=conf)
    p = hoist("pull", unsigned, check=False, env=e)
    refused(p, "no signature found", "hoist-verify-key of " + conf)
    assert not store_has("policy/unsigned", "v1")
    hoist("pull", signed, env=e)
    assert store_has("policy/signed", "v1")
    with open(conf, "w") as f:
        f.write(f'[[registry]]\nprefix = "{host}/policy"\nhoist-verify-key = "relative.pub"\n')
    refused(hoist("pull", signed, check=False, env=e), "must be an absolute path")


@test
def test_service_signs_what_it_pushes():
    host = registry().host
    base = busybox_with_extend(_state, work(), host, "serve", "#!/bin/sh\necho served > /s\n")
    s = Server(config={"registry_host": host, "allowed_sources": [f"{host}/base/*"],
                       "sign_key": key("hoist.key")}, workers=1, env=env()).start()
    k = s.token("alice")
    req = os.path.join(work(), "req-serve.txt")
    with open(req, "w") as f:
        f.write("x\n")
    st, r = s.api("POST", "/build/start", k, {
        "source": base, "target": "alice:signed", "kind": "python",
        "file": base64.b64encode(b"x\n").decode()})
    assert st == 200, r
    r = s.wait_phase(k, r["id"], ("Failed", "Succeeded"), timeout=300)
    assert r["phase"] == "Succeeded", r
    out = json.loads(hoist("verify", "--json", "--key", key("hoist.pub"),
                           f"{host}/alice:signed").stdout)
    assert out["digest"] == r["digest"] and out["dockerReference"] == f"{host}/alice", out
    st, log = s.request("GET", f"/system/api/v1/build/logs?id={r['id']}", auth=k, raw=True)
    assert b"signed " + f"{host}/alice".encode() in log, log
    s.stop()
    # with attestations in an index, the tag names the index: that is signed,
    # and the image the job reports too
    s = Server(config={"registry_host": host, "allowed_sources": [f"{host}/base/*"],
                       "sign_key": key("hoist.key"), "attestations": True},
               workers=1, env=env()).start()
    k = s.token("alice")
    st, r = s.api("POST", "/build/start", k, {
        "source": base, "target": "alice:attested", "kind": "python",
        "file": base64.b64encode(b"y\n").decode()})
    assert st == 200, r
    r = s.wait_phase(k, r["id"], ("Failed", "Succeeded"), timeout=300)
    assert r["phase"] == "Succeeded", r
    raw = json.loads(skopeo("inspect", "--tls-verify=false", "--raw",
                            f"docker://{host}/alice:attested").stdout)
    assert raw["mediaType"] == "application/vnd.oci.image.index.v1+json", raw
    out = json.loads(hoist("verify", "--json", "--key", key("hoist.pub"),
                           f"{host}/alice:attested").stdout)
    assert out["digest"] != r["digest"], out
    out = json.loads(hoist("verify", "--json", "--key", key("hoist.pub"),
                           f"{host}/alice@{r['digest']}").stdout)
    assert out["digest"] == r["digest"], out
    s.stop()
    # a key the service cannot read stops it at the start
    cfg = os.path.join(work(), "serve-bad.json")
    with open(cfg, "w") as f:
        json.dump({"registry_host": host, "sign_key": os.path.join(work(), "none.key")}, f)
    p = hoist("serve", "--listen", "127.0.0.1:0", "--data", tmpdir(), "--config", cfg,
              check=False, timeout=60)
    assert p.returncode != 0 and "sign_key" in p.stderr, (p.returncode, p.stderr)

if __name__ == "__main__":
    main()
