"""Package mirrors for the go, java, php and ruby kinds, on loopback.

Each speaks its ecosystem's real protocol and holds two packages made here,
one depending on the other ("greet" needs "words"; greet.hello("x") returns
"hello, x"):

    go     a GOPROXY (module proxy protocol: @v/list, .info, .mod, .zip) served
           from a directory laid out as GOPROXY=file:// would read it;
           modules hoist.test/greet v1.2.0 -> hoist.test/words v1.0.0
    java   a Maven repository (pom, jar, .sha1/.md5 checksums):
           test.hoist:greet:1.0 -> test.hoist:words:1.0, with Debian's
           /usr/share/maven-repo behind it for Maven's own plugins
           (maven-dependency-plugin and what it needs)
    php    a Composer repository (packages.json + dist zips):
           hoist/greet 1.2.0 -> hoist/words ^1.0 (PSR-4 autoloaded)
    ruby   a gem source (`gem generate_index` output):
           hoist-greet 1.2.0 -> hoist-words ~> 1.0

The trees are made once under $HOIST_CACHE/fixtures/mirrors/<eco>-v<N> and
served by a thread of the test process; start(eco) returns the URL the kind's
option takes. Nothing here reaches beyond 127.0.0.1.
"""
import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import zipfile

from hoisttest import CACHE, on_exit

VERSION = 2
ROOT = os.path.join(CACHE, "fixtures", "mirrors")
DEBIAN_MAVEN_REPO = "/usr/share/maven-repo"


def _cached(name, make):
    """The directory ROOT/name-vN, made by make(dir) once (atomically)."""
    final = os.path.join(ROOT, f"{name}-v{VERSION}")
    if not os.path.isdir(final):
        os.makedirs(ROOT, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f"{name}.", dir=ROOT)
        try:
            make(tmp)
            os.rename(tmp, final)
        except OSError:
            if not os.path.isdir(final):
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _zip_add(z, name, text):
    """A member as release archives have them: a regular file, mode 0644
    (zipfile's default is 0600, which no archive from a forge has)."""
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.external_attr = (0o100644 << 16)
    z.writestr(info, text)


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


# ------------------------------------------------------------------- go

GO_MODULES = {
    ("hoist.test/words", "v1.0.0"): {
        "go.mod": "module hoist.test/words\n\ngo 1.19\n",
        "words.go": "package words\n\nfunc Greeting() string { return \"hello\" }\n",
    },
    ("hoist.test/greet", "v1.2.0"): {
        "go.mod": "module hoist.test/greet\n\ngo 1.19\n\nrequire hoist.test/words v1.0.0\n",
        "greet.go": "package greet\n\nimport \"hoist.test/words\"\n\n"
                    "func Hello(n string) string { return words.Greeting() + \", \" + n }\n",
    },
}


def _make_go(d):
    for (path, version), files in GO_MODULES.items():
        v = os.path.join(d, path, "@v")
        _write(os.path.join(v, "list"), version + "\n")
        _write(os.path.join(v, version + ".info"),
               json.dumps({"Version": version, "Time": "2026-01-01T00:00:00Z"}))
        _write(os.path.join(v, version + ".mod"), files["go.mod"])
        with zipfile.ZipFile(os.path.join(v, version + ".zip"), "w") as z:
            for name, text in files.items():
                _zip_add(z, f"{path}@{version}/{name}", text)


# ----------------------------------------------------------------- java

JAVA = {
    "words": "package test.hoist.words;\n"
             "public class Words { public static String greeting() { return \"hello\"; } }\n",
    "greet": "package test.hoist.greet;\n"
             "public class Greet { public static String hello(String n) {\n"
             "  return test.hoist.words.Words.greeting() + \", \" + n; } }\n",
}


def _pom(artifact, deps=()):
    dep = "".join(f"<dependency><groupId>test.hoist</groupId><artifactId>{a}</artifactId>"
                  f"<version>1.0</version></dependency>" for a in deps)
    return ('<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
            f"<groupId>test.hoist</groupId><artifactId>{artifact}</artifactId>"
            f"<version>1.0</version><dependencies>{dep}</dependencies></project>\n")


def _make_java(d):
    src = tempfile.mkdtemp(dir=d)
    classes = {}
    for name, deps in (("words", ()), ("greet", ("words",))):
        java = os.path.join(src, name, f"{name.capitalize()}.java")
        _write(java, JAVA[name])
        out = os.path.join(src, "classes", name)
        cp = os.pathsep.join(classes[x] for x in deps) or "."
        subprocess.run(["javac", "--release", "11", "-cp", cp, "-d", out, java], check=True)
        classes[name] = out
        art = os.path.join(d, "test", "hoist", name, "1.0")
        os.makedirs(art)
        subprocess.run(["jar", "cf", os.path.join(art, f"{name}-1.0.jar"), "-C", out, "."],
                       check=True)
        _write(os.path.join(art, f"{name}-1.0.pom"), _pom(name, deps))
    shutil.rmtree(src)


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _Maven(http.server.BaseHTTPRequestHandler):
    """A Maven repository over the test's tree, then Debian's: files as they
    are, checksums (.sha1, .md5) computed as a repository manager serves
    them."""
    roots = ()

    def log_message(self, *args):
        pass

    def _find(self, path):
        for r in self.roots:
            f = os.path.realpath(os.path.join(r, path.lstrip("/")))
            if f.startswith(os.path.realpath(r) + "/") or f.startswith("/usr/share/java/"):
                if os.path.isfile(f):
                    return f
        return None

    def do_GET(self, head=False):
        path = self.path.split("?")[0]
        body = None
        if ".." not in path:
            for ext, h in ((".sha1", hashlib.sha1), (".md5", hashlib.md5)):
                if path.endswith(ext):
                    f = self._find(path[:-len(ext)])
                    if f:
                        body = h(open(f, "rb").read()).hexdigest().encode()
                    break
            else:
                f = self._find(path)
                if f:
                    body = open(f, "rb").read()
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET(head=True)


# ------------------------------------------------------------------ php

PHP = {
    ("hoist/words", "1.0.0"): ("Hoist\\Words\\", {
        "Words.php": "<?php\nnamespace Hoist\\Words;\n"
                     "class Words { public static function greeting() { return 'hello'; } }\n",
    }, {}),
    ("hoist/greet", "1.2.0"): ("Hoist\\Greet\\", {
        "Greet.php": "<?php\nnamespace Hoist\\Greet;\nclass Greet {\n"
                     "  public static function hello($n) {\n"
                     "    return \\Hoist\\Words\\Words::greeting() . ', ' . $n; } }\n",
    }, {"hoist/words": "^1.0"}),
}


def _make_php(d):
    packages = {}
    for (name, version), (ns, files, require) in PHP.items():
        meta = {"name": name, "version": version, "require": require,
                "autoload": {"psr-4": {ns: "src/"}}}
        dist = f"{name.replace('/', '-')}-{version}.zip"
        path = os.path.join(d, "dist", dist)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with zipfile.ZipFile(path, "w") as z:
            _zip_add(z, "composer.json", json.dumps(meta))
            for f, text in files.items():
                _zip_add(z, "src/" + f, text)
        sha = hashlib.sha1(open(path, "rb").read()).hexdigest()
        packages.setdefault(name, {})[version] = dict(
            meta, dist={"url": "{base}/dist/" + dist, "type": "zip", "shasum": sha})
    _write(os.path.join(d, "packages.json.in"), json.dumps({"packages": packages}))


class _Composer(Quiet):
    """packages.json with absolute dist URLs on this server's port."""

    def do_GET(self):
        if self.path.split("?")[0] != "/packages.json":
            return super().do_GET()
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        text = open(os.path.join(self.directory, "packages.json.in")).read()
        body = text.replace("{base}", base).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# ----------------------------------------------------------------- ruby

GEMS = {
    "hoist-words": ("1.0.0", "hoist_words", "module HoistWords\n"
                    "  def self.greeting = \"hello\"\nend\n", None),
    "hoist-greet": ("1.2.0", "hoist_greet", "require \"hoist_words\"\nmodule HoistGreet\n"
                    "  def self.hello(n) = \"#{HoistWords.greeting}, #{n}\"\nend\n",
                    ("hoist-words", "~> 1.0")),
}


def _make_ruby(d):
    src = tempfile.mkdtemp(dir=d)
    os.makedirs(os.path.join(d, "gems"))
    for name, (version, lib, code, dep) in GEMS.items():
        g = os.path.join(src, name)
        _write(os.path.join(g, "lib", lib + ".rb"), code)
        spec = (f'Gem::Specification.new do |s|\n  s.name = "{name}"; s.version = "{version}"\n'
                f'  s.summary = "{name}"; s.authors = ["hoist"]; s.license = "MIT"\n'
                f'  s.homepage = "https://hoist.test/"\n  s.files = ["lib/{lib}.rb"]\n')
        if dep:
            spec += f'  s.add_runtime_dependency "{dep[0]}", "{dep[1]}"\n'
        _write(os.path.join(g, f"{name}.gemspec"), spec + "end\n")
        subprocess.run(["gem", "build", "-q", f"{name}.gemspec", "-o",
                        os.path.join(d, "gems", f"{name}-{version}.gem")],
                       cwd=g, check=True, stdout=subprocess.DEVNULL)
    shutil.rmtree(src)
    subprocess.run(["gem", "generate_index", "-q", "-d", d], check=True,
                   stdout=subprocess.DEVNULL)


# --------------------------------------------------------------- serving

_MAKERS = {"go": _make_go, "java": _make_java, "php": _make_php, "ruby": _make_ruby}
_servers = {}


def serve(handler):
    """Serves handler on a free port of 127.0.0.1 until the test process ends; its URL."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    on_exit(srv.shutdown)
    return f"http://127.0.0.1:{srv.server_address[1]}"


def start(eco):
    """The URL of eco's mirror (go, java, php, ruby), started once."""
    if eco in _servers:
        return _servers[eco]
    d = _cached(eco, _MAKERS[eco])
    if eco == "java":
        handler = type("Maven", (_Maven,), {"roots": (d, DEBIAN_MAVEN_REPO)})
        url = serve(handler) + "/"
    elif eco == "php":
        url = serve(functools.partial(_Composer, directory=d))
    else:
        url = serve(functools.partial(Quiet, directory=d))
    _servers[eco] = url
    return url


def port(url):
    return int(url.rsplit(":", 1)[1].split("/")[0])
