#!/usr/bin/env python3
"""The go, java, php and ruby kinds with their real package managers.

Each base is the Debian fixture plus the language's Debian toolchain and a
non-root user "runtime" (tests/fixtures/kind-image.sh, cached), pushed to a
real registry (docker-registry). Each mirror speaks its ecosystem's protocol
on loopback (mirrors.py) and holds two packages, greet depending on words.
For every kind: `hoist build` and the same build through `hoist serve` make
an image in which the language runtime, run by `hoist run` as the image's
user with no network, uses greet (and through it words); the new layer holds
the dependencies and no download cache; a requirement the mirror lacks fails
with the package manager's own message and pushes nothing.

(python and nodejs run their real package managers in test_build.py; dotnet
has no SDK in Debian and stays a stand-in there.)
"""
import base64
import json
import os
import re
import tarfile
import urllib.error

import mirrors
from hoisttest import (CACHE, HOIST, SOURCE_ROOT, Registry, Server, Skip, hoist, main, run,
                       skopeo, test, tmpdir)

FIXTURES = os.path.join(SOURCE_ROOT, "tests", "fixtures")
_state = {}

GO_PROGRAM = ('package main\n\nimport (\n\t"fmt"\n\n\t"hoist.test/greet"\n)\n\n'
              'func main() { fmt.Println(greet.Hello("x")) }\n')
JAVA_PROGRAM = ("public class M { public static void main(String[] a) {\n"
                "  System.out.println(test.hoist.greet.Greet.hello(\"x\")); } }\n")

# kind: the option naming its mirror (plus extra options), a requirement file
# using greet and one naming a package the mirror lacks with the tool's
# message about it, the command that uses greet in the image (run as the
# image's user), files the new layer must hold
KINDS = {
    "go": {
        "mirror": "--goproxy",
        # the checksum database is never asked about the mirror's own modules
        "extra": ["--gonosumdb", "hoist.test"],
        "good": "module example.com/app\n\ngo 1.19\n\nrequire hoist.test/greet v1.2.0\n\n"
                "require hoist.test/words v1.0.0 // indirect\n",
        "bad": "module example.com/app\n\ngo 1.19\n\nrequire hoist.test/nosuch v1.0.0\n",
        "bad_message": r"hoist\.test/nosuch@v1\.0\.0: reading http://127\.0\.0\.1:\d+/"
                       r"hoist\.test/nosuch/@v/v1\.0\.0\.(info|mod): 404 ",
        # a program of the user's, built against the module cache the build left
        "use": ["sh", "-c", "mkdir /tmp/app && cd /tmp/app && "
                "cp /opt/hoist/go/go.mod /opt/hoist/go/go.sum . && "
                f"printf '%s' '{GO_PROGRAM}' > main.go && GOPROXY=off go run ."],
        "layer": ["opt/hoist/go/go.mod", "opt/hoist/go/go.sum",
                  "opt/hoist/go/mod/hoist.test/greet@v1.2.0/greet.go",
                  "opt/hoist/go/mod/hoist.test/words@v1.0.0/words.go"],
        "env": ["GOMODCACHE=/opt/hoist/go/mod"],
    },
    "java": {
        "mirror": "--maven-mirror",
        "extra": [],
        "good": '<project xmlns="http://maven.apache.org/POM/4.0.0">'
                "<modelVersion>4.0.0</modelVersion><groupId>app</groupId>"
                "<artifactId>app</artifactId><version>1</version><dependencies>"
                "<dependency><groupId>test.hoist</groupId><artifactId>greet</artifactId>"
                "<version>1.0</version></dependency></dependencies></project>\n",
        "bad": '<project xmlns="http://maven.apache.org/POM/4.0.0">'
               "<modelVersion>4.0.0</modelVersion><groupId>app</groupId>"
               "<artifactId>app</artifactId><version>1</version><dependencies>"
               "<dependency><groupId>test.hoist</groupId><artifactId>nosuch</artifactId>"
               "<version>1.0</version></dependency></dependencies></project>\n",
        "bad_message": r"Could not find artifact test\.hoist:nosuch:jar:1\.0 in hoist "
                       r"\(http://127\.0\.0\.1:\d+/\)",
        # a class on the image's CLASSPATH (java's single-file launcher)
        "use": ["sh", "-c", f"cd /tmp && printf '%s' '{JAVA_PROGRAM}' > M.java && java M.java"],
        "layer": ["opt/hoist/java/pom.xml", "opt/hoist/java/lib/greet-1.0.jar",
                  "opt/hoist/java/lib/words-1.0.jar"],
        "env": ["CLASSPATH=/opt/hoist/java/lib/*"],
    },
    "php": {
        "mirror": "--composer-repo",
        "extra": [],
        "good": json.dumps({"require": {"hoist/greet": "^1.2"}}) + "\n",
        "bad": json.dumps({"require": {"hoist/nosuch": "^1.0"}}) + "\n",
        "bad_message": r"Root composer\.json requires hoist/nosuch, it could not be found in "
                       r"any version",
        "use": ["php", "-r", "require 'vendor/autoload.php'; "
                "echo \\Hoist\\Greet\\Greet::hello('x'), PHP_EOL;"],
        "workdir": "/opt/hoist/php",
        "layer": ["opt/hoist/php/composer.json", "opt/hoist/php/composer.lock",
                  "opt/hoist/php/vendor/autoload.php",
                  "opt/hoist/php/vendor/hoist/greet/src/Greet.php",
                  "opt/hoist/php/vendor/hoist/words/src/Words.php"],
        "env": ["COMPOSER_VENDOR_DIR=/opt/hoist/php/vendor"],
    },
    "ruby": {
        "mirror": "--gem-source",
        "extra": [],
        "good": 'source "https://rubygems.org"\n\ngem "hoist-greet", "~> 1.2"\n',
        "bad": 'source "https://rubygems.org"\n\ngem "hoist-nosuch", "~> 1.0"\n',
        "bad_message": r"Could not find gem 'hoist-nosuch \(~> 1\.0\)' in rubygems repository",
        # Bundler with the image's BUNDLE_GEMFILE (and BUNDLE_PATH)
        "use": ["ruby", "-e", "require 'bundler/setup'; require 'hoist_greet'; "
                "puts HoistGreet.hello('x')"],
        "layer": ["opt/hoist/ruby/Gemfile", "opt/hoist/ruby/Gemfile.lock",
                  "opt/hoist/ruby/vendor/bundle/ruby/3.1.0/gems/hoist-greet-1.2.0/lib/"
                  "hoist_greet.rb",
                  "opt/hoist/ruby/vendor/bundle/ruby/3.1.0/gems/hoist-words-1.0.0/lib/"
                  "hoist_words.rb"],
        "env": ["BUNDLE_GEMFILE=/opt/hoist/ruby/Gemfile",
                "BUNDLE_PATH=/opt/hoist/ruby/vendor/bundle"],
    },
}

FILES = {"go": "go.mod", "java": "pom.xml", "php": "composer.json", "ruby": "Gemfile"}

# What must never reach a layer: download caches and build caches of every
# tool (the module store under GOMODCACHE is the dependency itself), the build
# user's home, and what the install wrote to /tmp (a tmpfs) besides the file.
FORBIDDEN = re.compile(r"(^|/)(\.m2|\.go-build|go-build|\.composer|\.npm|\.bundle|\.gem)(/|$)"
                       r"|^root/|^var/lib/gems/|^opt/hoist/ruby/vendor/bundle/ruby/[^/]+/cache/"
                       r"|^tmp/(?!(go\.mod|pom\.xml|composer\.json|Gemfile)$)")


def work():
    if "work" not in _state:
        _state["work"] = tmpdir("hoist-kinds-")
        os.environ["HOIST_IMAGES"] = os.path.join(_state["work"], "images")
    return _state["work"]


def registry():
    if "reg" not in _state:
        _state["reg"] = Registry(work()).start()
    return _state["reg"]


def base(kind):
    """The kind's base pushed to the test registry; returns its reference."""
    key = ("base", kind)
    if key not in _state:
        cached = os.path.join(CACHE, "fixtures", f"kind-{kind}", "index.json")
        if os.geteuid() != 0 and not os.path.exists(cached):
            raise Skip("the kind bases need root (debootstrap, apt-get) to be made once")
        out = os.path.join(work(), f"base-{kind}")
        run("bash", os.path.join(FIXTURES, "kind-image.sh"), HOIST, kind, out, kind,
            timeout=1800)
        ref = f"{registry().host}/base/{kind}:1"
        hoist("copy", f"oci:{out}:{kind}", ref)
        _state[key] = ref
    return _state[key]


# The bases' unpacked trees, kept between runs (the bases change only when
# their fixture is made again): builds find them there. Trees of the images
# the tests make go to the run's own rootfs cache (hoisttest), removed after.
BASE_TREES = {"HOIST_ROOTFS_CACHE": os.path.join(CACHE, "fixtures", "kind-rootfs")}


def mirror_args(kind):
    return [KINDS[kind]["mirror"], mirrors.start(kind), *KINDS[kind]["extra"]]


def build(kind, text, target, check=True):
    path = os.path.join(work(), f"{kind}-{len(os.listdir(work()))}", FILES[kind])
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        f.write(text)
    return hoist("build", "--source", base(kind), "--kind", kind, "--file", path,
                 "--target", target, *mirror_args(kind), check=check, timeout=900,
                 env=BASE_TREES)


def new_layer(ref):
    """Member names of ref's last layer (fetched from the registry)."""
    reg = registry()
    repo, tag = ref.split("/", 1)[1].rsplit(":", 1)
    manifest = json.load(reg.get(f"/v2/{repo}/manifests/{tag}", headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json"}))
    digest = manifest["layers"][-1]["digest"]
    path = os.path.join(work(), digest.split(":")[1])
    with open(path, "wb") as f:
        f.write(reg.get(f"/v2/{repo}/blobs/{digest}").read())
    with tarfile.open(path) as t:
        return [m.name.lstrip("./").rstrip("/") for m in t.getmembers()]


def check_runtime(kind, ref):
    """The runtime, as the image's user and without a network, uses greet."""
    k = KINDS[kind]
    wd = ["-w", k["workdir"]] if "workdir" in k else []
    p = hoist("run", ref, "--network", "none", *wd, "--", "sh", "-c", 'id -un && exec "$@"',
              "sh", *k["use"], check=False, timeout=300)
    assert p.returncode == 0 and p.stdout.split() == ["runtime", "hello,", "x"], \
        (kind, p.returncode, p.stdout, p.stderr[-3000:])


def check_image(kind, ref):
    """The new layer holds the dependencies and no cache; the config has the
    kind's Env and keeps the base's user."""
    k = KINDS[kind]
    names = new_layer(ref)
    for want in k["layer"]:
        assert want in names, (kind, want, names)
    bad = [n for n in names if FORBIDDEN.search(n)]
    assert not bad, (kind, bad)
    cfg = json.loads(skopeo("inspect", "--config", "--tls-verify=false",
                            f"docker://{ref}").stdout)["config"]
    for e in k["env"]:
        assert e in cfg["Env"], (kind, e, cfg["Env"])
    assert cfg["User"] == "runtime", cfg
    # the mirror is a build setting: it never reaches the image
    assert mirrors.start(kind).rstrip("/") not in json.dumps(cfg), cfg


def tag_exists(repo, tag):
    try:
        tags = json.load(registry().get(f"/v2/{repo}/tags/list")).get("tags") or []
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return False
        raise
    return tag in tags


def end_to_end(kind):
    target = f"{registry().host}/kinds/{kind}:v1"
    build(kind, KINDS[kind]["good"], target)
    check_runtime(kind, target)
    check_image(kind, target)


def refused(kind):
    p = build(kind, KINDS[kind]["bad"], f"{registry().host}/kinds/{kind}-bad:v1", check=False)
    assert p.returncode == 1, (kind, p.returncode, p.stderr[-3000:])
    assert re.search(KINDS[kind]["bad_message"], p.stderr), (kind, p.stderr[-3000:])
    assert f"{kind} install: `" in p.stderr and "exited with status" in p.stderr, p.stderr[-800:]
    assert not tag_exists(f"kinds/{kind}-bad", "v1")


@test
def test_go_module_from_goproxy():
    end_to_end("go")


@test
def test_go_module_the_proxy_lacks_fails():
    refused("go")


@test
def test_java_jars_from_maven_repository():
    end_to_end("java")


@test
def test_java_artifact_the_repository_lacks_fails():
    refused("java")


@test
def test_php_packages_from_composer_repository():
    end_to_end("php")


@test
def test_php_package_the_repository_lacks_fails():
    refused("php")


@test
def test_ruby_gems_from_gem_source():
    end_to_end("ruby")


@test
def test_ruby_gem_the_source_lacks_fails():
    refused("ruby")


@test
def test_every_kind_through_the_service():
    """The same four builds as jobs of `hoist serve` (two workers), with the
    mirrors from its environment and allowed by its config, in a build cache
    of its own so each install really runs. The images are checked as the
    command line's are, short of running them (the recipe is the same)."""
    reg = registry()
    urls = {kind: mirrors.start(kind) for kind in KINDS}
    env = {"HOIST_GOPROXY": urls["go"], "HOIST_GONOSUMDB": "hoist.test",
           "HOIST_MAVEN_MIRROR": urls["java"], "HOIST_COMPOSER_REPO": urls["php"],
           "HOIST_GEM_SOURCE": urls["ruby"],
           "HOIST_IMAGES": os.path.join(work(), "serve-images"), **BASE_TREES}
    config = {"registry_host": reg.host, "allowed_sources": [f"{reg.host}/base/*"],
              "build_allow": [f"127.0.0.1:{mirrors.port(u)}" for u in urls.values()]}
    for kind in KINDS:
        base(kind)
    s = Server(config=config, env=env, workers=2).start()
    key = s.token("alice")
    jobs = {}
    for kind in KINDS:
        file = base64.b64encode(KINDS[kind]["good"].encode()).decode()
        st, r = s.api("POST", "/build/start", key, {"source": base(kind),
                                                     "target": f"alice:{kind}", "kind": kind,
                                                     "file": file})
        assert st == 200, r
        jobs[kind] = r["id"]
    # the package managers' own output, in each job's log
    # (go prints nothing when it succeeds: its traced command is the sign it ran)
    said = {"go": "+ go mod download all", "java": "Downloaded from hoist: ",
            "php": "Installing hoist/greet (1.2.0)", "ruby": "Installing hoist-greet 1.2.0"}
    for kind, job in jobs.items():
        r = s.wait_phase(key, job, ("Failed", "Succeeded"), timeout=900)
        st, log = s.request("GET", f"/system/api/v1/build/logs?id={job}", auth=key, raw=True)
        assert r["phase"] == "Succeeded", (kind, r, log[-3000:])
        assert said[kind].encode() in log, (kind, log[-3000:])
        assert b"cache hit" not in log, (kind, log[-2000:])
        check_image(kind, f"{reg.host}/alice:{kind}")


if __name__ == "__main__":
    main()
