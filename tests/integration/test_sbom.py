#!/usr/bin/env python3
"""SBOMs: `hoist sbom` of real images and of trees real package managers
filled, checked against independent readers and the SPDX 2.3 JSON schema.

- the Debian fixture (in a registry): its dpkg packages against what
  dpkg-query reads from the layer's own var/lib/dpkg;
- a tree pip installed (`pip install --no-index` of local wheels) against
  `pip list --path`, and one npm installed (`npm install --offline` of local
  tarballs) against `npm ls --all --json`;
- an image of two layers (the Debian base and a layer of pip's tree): what
  is of the base and what of the layer, --last-layer, --layer N;
- a real build of the nodejs kind (npm against a registry served here):
  the SBOM of the layer it added lists what npm installed (npm ls, run in
  the image), no more, and so does the SBOM the build attached (the pip
  build's is test_attest's);
- a record that cannot be read fails the command, named.

The schema (tests/data/schemas/spdx-2.3.schema.json, from spdx/spdx-spec)
is applied by Ajv (tests/integration/schema_check.js), installed once under
$HOIST_CACHE/npm/schema.
"""
import copy
import json
import os
import re
import shutil
import tarfile
from urllib.parse import quote

import pkgsources
from hoisttest import (CACHE, HOIST, SOURCE_ROOT, Registry, Skip, hoist, main, run, schema_errors,
                       test, tmpdir)

FIXTURES = os.path.join(SOURCE_ROOT, "tests", "fixtures")
_state = {}

SPDX_SCHEMA = "spdx-2.3.schema.json"

# A small document written by hand from the SPDX 2.3 specification.
MINIMAL = {
    "spdxVersion": "SPDX-2.3",
    "dataLicense": "CC0-1.0",
    "SPDXID": "SPDXRef-DOCUMENT",
    "name": "example",
    "documentNamespace": "https://example.test/spdxdocs/example-1",
    "creationInfo": {"created": "2026-01-01T00:00:00Z", "creators": ["Tool: example-1"]},
    "packages": [{
        "SPDXID": "SPDXRef-Package-a-1", "name": "a", "versionInfo": "1.0",
        "downloadLocation": "NOASSERTION", "filesAnalyzed": False,
        "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                          "referenceLocator": "pkg:pypi/a@1.0"}],
    }],
    "relationships": [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                       "relatedSpdxElement": "SPDXRef-Package-a-1"}],
}


@test
def schema_check_accepts_a_valid_document():
    assert schema_errors(SPDX_SCHEMA, MINIMAL) == []


@test
def schema_check_refuses_what_the_schema_refuses():
    # each a document the SPDX 2.3 schema must refuse, and the property Ajv names
    def without(key):
        d = copy.deepcopy(MINIMAL)
        del d[key]
        return d

    bad_category = copy.deepcopy(MINIMAL)
    bad_category["packages"][0]["externalRefs"][0]["referenceCategory"] = "NOT-A-CATEGORY"
    bad_relationship = copy.deepcopy(MINIMAL)
    bad_relationship["relationships"][0]["relationshipType"] = "OWNS"
    wrong_type = copy.deepcopy(MINIMAL)
    wrong_type["packages"][0]["filesAnalyzed"] = "no"
    for doc, needle in ((without("SPDXID"), "SPDXID"), (without("creationInfo"), "creationInfo"),
                        (bad_category, "allowed values"), (bad_relationship, "allowed values"),
                        (wrong_type, "boolean"), ([], "object")):
        errors = schema_errors(SPDX_SCHEMA, doc)
        assert errors, f"accepted: {doc}"
        assert needle in json.dumps(errors), (needle, errors)


# ------------------------------------------------------------------ fixtures


def work():
    if "work" not in _state:
        _state["work"] = tmpdir("hoist-sbom-")
    return _state["work"]


def env():
    """An image store of this test's own."""
    return {"HOIST_IMAGES": os.path.join(work(), "images")}


def registry():
    if "reg" not in _state:
        _state["reg"] = Registry(tmpdir()).start()
    return _state["reg"]


def debian_layout():
    """oci:DIR:bookworm of a copy of the Debian fixture."""
    if "debian" not in _state:
        cached = os.path.join(CACHE, "fixtures", "debian-bookworm", "index.json")
        if os.geteuid() != 0 and not os.path.exists(cached):
            raise Skip("the Debian fixture needs root (debootstrap) to be made once")
        out = os.path.join(work(), "debian")
        run("bash", os.path.join(FIXTURES, "debian-image.sh"), HOIST, out, "bookworm",
            timeout=1800)
        _state["debian"] = out
    return f"oci:{_state['debian']}:bookworm"


def layers_of(layout_dir, tag):
    """The layer blob paths of the image tagged tag in an OCI layout."""
    def blob(digest):
        return os.path.join(layout_dir, "blobs", *digest.split(":"))

    with open(os.path.join(layout_dir, "index.json")) as f:
        index = json.load(f)
    desc = next(d for d in index["manifests"]
                if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
    with open(blob(desc["digest"])) as f:
        manifest = json.load(f)
    return [blob(layer["digest"]) for layer in manifest["layers"]]


def sbom(*args, check=True):
    """hoist sbom's document (parsed) for args."""
    p = hoist("sbom", *args, env=env(), check=check)
    return json.loads(p.stdout) if check else p


def packages(doc, purl_type=None):
    """{purl: package} of an SPDX document hoist wrote, of one purl type."""
    out = {}
    for p in doc["packages"]:
        refs = [r["referenceLocator"] for r in p["externalRefs"] if r["referenceType"] == "purl"]
        assert len(refs) == 1, p
        if purl_type is None or refs[0].startswith(f"pkg:{purl_type}/"):
            out[refs[0]] = p
    return out


def check_document(doc):
    """What every document must be: valid SPDX 2.3, each package described."""
    assert schema_errors(SPDX_SCHEMA, doc) == []
    assert doc["spdxVersion"] == "SPDX-2.3" and doc["dataLicense"] == "CC0-1.0"
    assert doc["documentNamespace"].startswith("https://")
    ids = [p["SPDXID"] for p in doc["packages"]]
    assert len(set(ids)) == len(ids)
    described = {r["relatedSpdxElement"] for r in doc["relationships"]
                 if r["spdxElementId"] == "SPDXRef-DOCUMENT" and r["relationshipType"] == "DESCRIBES"}
    assert described == set(ids)
    purls = list(packages(doc))
    assert len(set(purls)) == len(purls), "a package listed twice"


PIP_WANT = {"pkg:pypi/hoist-test-pkg@1.2.3", "pkg:pypi/tiny-dep@0.1.0", "pkg:pypi/other-lib@2024.1"}
NPM_WANT = {"pkg:npm/hoist-sbom-a@1.0.0-rc.1", "pkg:npm/%40hoist-test/b@2.0.0",
            "pkg:npm/hoist-sbom-c@3.1.4"}


def wheels():
    """Three wheels (one requires another), in a directory of their own."""
    if "wheels" not in _state:
        d = os.path.join(work(), "wheels")
        os.makedirs(d)
        pkgsources.make_wheel(d, "Hoist_Test.Pkg", "1.2.3", requires=["tiny-dep"], license="MIT")
        pkgsources.make_wheel(d, "tiny-dep", "0.1.0", license="MIT")
        pkgsources.make_wheel(d, "other_lib", "2024.1", license="MIT")
        _state["wheels"] = d
    return _state["wheels"]


def pip_tree():
    """A tree holding usr/local/lib/python3/dist-packages that pip filled
    with three local wheels (one a dependency of another, pulled in by pip's
    resolver); its directory and the site-packages directory."""
    if "pip" not in _state:
        wheels_dir = wheels()
        tree = os.path.join(work(), "pip-tree")
        site = os.path.join(tree, "usr", "local", "lib", "python3", "dist-packages")
        p = run("python3", "-m", "pip", "install", "--no-index", "--find-links", wheels_dir,
                "--target", site, "--no-cache-dir", "--disable-pip-version-check",
                "Hoist_Test.Pkg", "other-lib", check=False)
        if p.returncode != 0:
            raise Skip(f"pip install failed: {p.stderr[-300:]}")
        _state["pip"] = (tree, site)
    return _state["pip"]


def npm_tarballs():
    """{name: (version, tarball path)} of three packages `npm pack` made
    (one scoped, one with a prerelease version; a depends on b)."""
    if "tarballs" not in _state:
        root = os.path.join(work(), "npm")
        out = {}
        for name, version, deps in (("@hoist-test/b", "2.0.0", {}),
                                    ("hoist-sbom-c", "3.1.4", {}),
                                    ("hoist-sbom-a", "1.0.0-rc.1", {"@hoist-test/b": "^2.0.0"})):
            meta = {"name": name, "version": version, "license": "MIT", "main": "index.js",
                    "dependencies": deps}
            try:
                path = pkgsources.npm_pack(root, meta, {"index.js": "module.exports = 1;\n"})
            except AssertionError as e:
                raise Skip(f"npm pack failed: {str(e)[-300:]}")
            out[name] = (meta, path)
        _state["tarballs"] = out
    return _state["tarballs"]


def npm_registry():
    """An npm registry on loopback serving npm_tarballs(); its URL."""
    if "registry" not in _state:
        _state["registry"] = pkgsources.npm_registry(npm_tarballs().values())
    return _state["registry"]


def npm_tree():
    """A project npm installed the three tarballs into, offline (a and c
    named, b as a's dependency)."""
    if "npm" not in _state:
        tarballs = npm_tarballs()
        app = os.path.join(work(), "npm", "app")
        os.makedirs(app)
        with open(os.path.join(app, "package.json"), "w") as f:
            json.dump({"name": "app", "version": "0.0.1", "private": True}, f)
        p = run("npm", "install", "--offline", "--no-audit", "--no-fund",
                *(path for _, path in tarballs.values()), cwd=app, check=False,
                env={"npm_config_cache": os.path.join(work(), "npm", "cache")})
        if p.returncode != 0:
            raise Skip(f"npm install failed: {p.stderr[-300:]}")
        _state["npm"] = app
    return _state["npm"]


def build(kind, text, *extra):
    """hoist build of kind on the Debian fixture; the new image's location."""
    out = os.path.join(work(), f"built-{kind}")
    req = os.path.join(work(), f"req-{kind}")
    with open(req, "w") as f:
        f.write(text)
    hoist("build", "--source", debian_layout(), "--kind", kind, "--file", req, "--target",
          f"oci:{out}:v1", "--cache-dir", os.path.join(work(), "build-cache"), *extra,
          env=env(), timeout=900)
    return f"oci:{out}:v1"


# --------------------------------------------------------------------- tests


@test
def debian_image_lists_dpkg_packages_as_dpkg_query_reads_them():
    layout = debian_layout()
    ref = f"{registry().host}/base/debian:bookworm"
    hoist("copy", layout, ref)
    doc = sbom(ref)
    check_document(doc)
    debs = packages(doc, "deb")
    # dpkg's own reader over the layer's database, extracted independently
    layer = layers_of(layout.split(":")[1], "bookworm")
    assert len(layer) == 1
    admin = os.path.join(work(), "dpkg-admin")
    with tarfile.open(layer[0]) as t:
        members = [m for m in t.getmembers()
                   if m.name.lstrip("./").startswith("var/lib/dpkg/") and (m.isfile() or m.isdir())]
        t.extractall(admin, members=members)
    q = run("dpkg-query", "--admindir", os.path.join(admin, "var", "lib", "dpkg"), "-W",
            "-f", "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n")
    want = {}
    for line in q.stdout.splitlines():
        status, name, version, arch = line.split("\t")
        if status.strip() == "ii":
            want[name, arch] = version
    got = {(p["name"], purl.split("arch=")[1]): p["versionInfo"] for purl, p in debs.items()}
    assert len(want) > 100
    assert got == want
    for purl, p in debs.items():
        arch = purl.split("arch=")[1]
        assert purl == f"pkg:deb/debian/{quote(p['name'], safe='')}@" \
                       f"{quote(p['versionInfo'], safe=':')}?arch={arch}", purl
        assert "var/lib/dpkg/status" in p["comment"]
    # pip itself is a distribution of the image, found by its dist-info
    assert any(purl.startswith("pkg:pypi/pip@") for purl in packages(doc, "pypi"))
    table = hoist("sbom", "--format", "table", ref, env=env()).stdout.splitlines()
    assert table[0].split() == ["TYPE", "NAME", "VERSION", "WHERE"]
    assert len(table) == len(doc["packages"]) + 1
    assert any(line.split()[:3] == ["deb", "libc6", want["libc6", "amd64"]] for line in table)


@test
def pip_tree_lists_what_pip_installed():
    tree, site = pip_tree()
    doc = sbom("--dir", tree)
    check_document(doc)
    listed = json.loads(run("python3", "-m", "pip", "list", "--path", site, "--format", "json",
                            "--disable-pip-version-check").stdout)
    want = {f"pkg:pypi/{pkgsources.pep503(d['name'])}@{d['version']}" for d in listed}
    assert want == PIP_WANT
    assert set(packages(doc)) == want
    p = packages(doc)["pkg:pypi/hoist-test-pkg@1.2.3"]
    assert p["name"] == "Hoist_Test.Pkg" and p["versionInfo"] == "1.2.3"
    assert p["licenseDeclared"] == "MIT"
    assert doc["name"] == tree


@test
def npm_tree_lists_what_npm_installed():
    app = npm_tree()
    doc = sbom("--dir", app, "--name", "npm-app")
    check_document(doc)
    assert doc["name"] == "npm-app"
    tree = json.loads(run("npm", "ls", "--all", "--json", cwd=app).stdout)
    want = set()

    def walk(deps):
        for name, d in (deps or {}).items():
            want.add(f"pkg:npm/{name.replace('@', '%40')}@{d['version']}")
            walk(d.get("dependencies"))

    walk(tree.get("dependencies"))
    assert want == NPM_WANT
    assert set(packages(doc)) == want
    b = packages(doc)["pkg:npm/%40hoist-test/b@2.0.0"]
    assert b["name"] == "@hoist-test/b" and b["licenseDeclared"] == "MIT"
    # the lock file alone says the same
    lock_only = os.path.join(work(), "lock-only")
    os.makedirs(lock_only)
    shutil.copy(os.path.join(app, "package-lock.json"), lock_only)
    assert set(packages(sbom("--dir", lock_only))) == want


@test
def image_of_two_layers_says_what_each_added():
    base = debian_layout()
    tree, _ = pip_tree()
    layout = os.path.join(work(), "two")
    hoist("append", base, "--target", f"oci:{layout}:2", "--layer", tree)
    doc = sbom(f"oci:{layout}:2")
    check_document(doc)
    mine = PIP_WANT
    for purl, p in packages(doc).items():
        where = "in the layer the build added" if purl in mine else "in the base image"
        assert p["comment"].startswith(where), (purl, p["comment"])
    assert mine < set(packages(doc))
    assert len(packages(doc, "deb")) > 100
    # the last layer alone: what the build added
    assert set(packages(sbom(f"oci:{layout}:2", "--last-layer"))) == mine
    assert set(packages(sbom(f"oci:{layout}:2", "--layer", "-1"))) == mine
    first = sbom(f"oci:{layout}:2", "--layer", "1")
    assert set(packages(first)) == set(packages(doc)) - mine
    assert first["documentNamespace"] != doc["documentNamespace"]
    # the digest of what was read makes the namespace
    assert sbom(f"oci:{layout}:2")["documentNamespace"] == doc["documentNamespace"]
    p = sbom(f"oci:{layout}:2", "--layer", "3", check=False)
    assert p.returncode == 1 and "no layer 3" in p.stderr, p.stderr


@test
def nodejs_build_layer_lists_what_npm_installed():
    pkg = json.dumps({"name": "app", "version": "1.0.0",
                      "dependencies": {"hoist-sbom-a": "1.0.0-rc.1", "hoist-sbom-c": "^3.0.0"}})
    image = build("nodejs", pkg, "--npm-registry", npm_registry(), "--sbom", "--attest-mode",
                  "referrer")
    doc = sbom("--last-layer", image)
    check_document(doc)
    # the SBOM the build attached (a referrer) says the same of the layer
    attached = json.loads(hoist("inspect", "--sbom", image, env=env()).stdout)
    check_document(attached)
    assert {purl for purl, p in packages(attached).items()
            if p["comment"].startswith("in the layer the build added")} == set(packages(doc))
    # npm's own account of the tree, inside the image
    tree = json.loads(hoist("run", image, "--", "npm", "ls", "--all", "--json", "--prefix",
                            "/opt/hoist/nodejs", env=env()).stdout)
    want = set()

    def walk(deps):
        for name, d in (deps or {}).items():
            want.add(f"pkg:npm/{name.replace('@', '%40')}@{d['version']}")
            walk(d.get("dependencies"))

    walk(tree.get("dependencies"))
    assert want == NPM_WANT
    assert set(packages(doc)) == want
    records = {p["comment"].split("read from ")[1] for p in doc["packages"]}
    assert all(r.startswith("opt/hoist/nodejs/") for r in records), records


@test
def a_record_that_cannot_be_read_is_named():
    d = os.path.join(work(), "bad")
    os.makedirs(os.path.join(d, "srv", "app"))
    with open(os.path.join(d, "srv", "app", "package-lock.json"), "w") as f:
        f.write('{"lockfileVersion": 3, "packages": {"node_modules/x": {"version": 1}}}')
    p = sbom("--dir", d, check=False)
    assert p.returncode == 1
    assert "srv/app/package-lock.json" in p.stderr and "not a string" in p.stderr, p.stderr
    assert p.stdout == ""
    for args in (["--format", "xml", "--dir", d], ["--layer", "0", "x"], ["--dir", d, "extra"],
                 ["--last-layer", "--layer", "1", "x"]):
        p = hoist("sbom", *args, check=False)
        assert p.returncode == 2, (args, p.stderr)


if __name__ == "__main__":
    main()
