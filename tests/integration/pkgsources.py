"""Package sources for the python and nodejs kinds, on loopback, holding the
packages a test makes for itself:

    whl = make_wheel(dir, "tinypkg", "1.0", requires=["tinydep==2.1"], license="MIT")
    url = pip_index(root, [whl, ...])        # a PEP 503 simple index: .../simple/
    tgz = npm_pack(dir, {"name": "tinyjs", "version": "1.0.0", "main": "index.js"},
                   {"index.js": "module.exports = 1;\\n"})
    url = npm_registry([(package_json, tgz), ...])     # an npm registry: .../

Wheels are written by hand (a zip with its .dist-info and a RECORD of
hashes, as PEP 427 says); npm tarballs are made by `npm pack`. Names may be
of any case and punctuation (wheels) or scoped (npm). Each server listens on
127.0.0.1 only and stops when the test process ends (mirrors.serve).
"""
import base64
import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import zipfile
from urllib.parse import unquote

from hoisttest import run
from mirrors import Quiet, serve


def pep503(name):
    """A Python project's normalised name (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def make_wheel(outdir, name, version, requires=(), license=None, body="VALUE = 1\n"):
    """A pure-Python wheel of name in outdir, its module's __init__.py body,
    its METADATA naming license and each of requires (Requires-Dist); its path."""
    stem = re.sub(r"[-_.]+", "_", name).lower()
    info = f"{stem}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    if license:
        meta += f"License: {license}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {
        f"{stem}/__init__.py": body.encode(),
        f"{info}/METADATA": meta.encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: hoist-test\nRoot-Is-Purelib: true\n"
                         b"Tag: py3-none-any\n",
    }
    record = ""
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{path},sha256={digest},{len(data)}\n"
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    os.makedirs(outdir, exist_ok=True)
    path = os.path.join(outdir, f"{stem}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as z:
        for p, data in files.items():
            z.writestr(p, data)
    return path


def pip_index(root, wheels):
    """A PEP 503 simple index of the wheel files wheels, laid out under root
    and served on loopback; its URL (ending in /simple/)."""
    projects = {}
    for whl in sorted(wheels, key=os.path.basename):
        file = os.path.basename(whl)
        name = pep503(file.split("-")[0])
        os.makedirs(os.path.join(root, "simple", name), exist_ok=True)
        shutil.copy(whl, os.path.join(root, "simple", name, file))
        with open(whl, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        projects.setdefault(name, []).append(f'<a href="{file}#sha256={digest}">{file}</a>')
    for name, links in projects.items():
        with open(os.path.join(root, "simple", name, "index.html"), "w") as f:
            f.write("<!DOCTYPE html><html><body>" + "".join(links) + "</body></html>\n")
    with open(os.path.join(root, "simple", "index.html"), "w") as f:
        f.write("<!DOCTYPE html><html><body>"
                + "".join(f'<a href="{n}/">{n}</a>' for n in sorted(projects))
                + "</body></html>\n")
    return serve(functools.partial(Quiet, directory=root)) + "/simple/"


def npm_pack(outdir, package_json, files):
    """The tarball `npm pack` makes, in outdir, of a package of package_json
    (a dict) and files ({path: text}); its path. npm's cache is outdir/cache;
    a failing `npm pack` raises AssertionError."""
    src = os.path.join(outdir, "src", package_json["name"].replace("/", "+"))
    os.makedirs(src)
    with open(os.path.join(src, "package.json"), "w") as f:
        json.dump(package_json, f)
    for path, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(src, path)), exist_ok=True)
        with open(os.path.join(src, path), "w") as f:
            f.write(text)
    p = run("npm", "pack", "--pack-destination", outdir, cwd=src,
            env={"npm_config_cache": os.path.join(outdir, "cache"),
                 "npm_config_update_notifier": "false"})
    return os.path.join(outdir, p.stdout.strip().splitlines()[-1])


def npm_registry(packages):
    """An npm registry on loopback serving packages, (package.json as a dict,
    tarball path) pairs: each name's document lists its versions, each with
    its tarball's URL, sha1 and sha512 integrity; its URL (ending in /)."""
    docs, tarballs = {}, {}
    for meta, path in packages:
        name, version = meta["name"], meta["version"]
        with open(path, "rb") as f:
            tgz = f.read()
        where = f"/{name}/-/{os.path.basename(path)}"
        tarballs[where] = tgz
        doc = docs.setdefault(name, {"name": name, "dist-tags": {}, "versions": {}})
        doc["dist-tags"]["latest"] = version
        doc["versions"][version] = dict(meta, dist={
            "tarball": where, "shasum": hashlib.sha1(tgz).hexdigest(),
            "integrity": "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()})

    class Npm(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            path = unquote(self.path.split("?")[0])
            name = path.strip("/")
            if name in docs:
                here = f"http://127.0.0.1:{self.server.server_address[1]}"
                doc = dict(docs[name], versions={
                    v: dict(m, dist=dict(m["dist"], tarball=here + m["dist"]["tarball"]))
                    for v, m in docs[name]["versions"].items()})
                body, ctype = json.dumps(doc).encode(), "application/json"
            elif path in tarballs:
                body, ctype = tarballs[path], "application/octet-stream"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return serve(Npm) + "/"
