"""How blobs go up to the real CNCF registry, counted by a proxy in front of
it: small blobs in one request or two, a new layer streamed while it is made
(and the ways a registry front may refuse), mounts from the repositories the
blob-location record remembers across processes, a stale or corrupt record."""
import hashlib
import http.client
import json
import os
import resource
import socket
import sqlite3
import subprocess
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from hoisttest import HOIST, Registry, Skip, hoist, main, on_exit, run, skopeo, test, tmpdir


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that hangs up (a refused upload) is no error of the test


class CountingProxy:
    """A reverse proxy on loopback in front of the registry that records each
    request it is sent (method, path, body bytes, whether the body came
    without a length, Content-Range, the answer's status). It can also stand
    for a registry front of a kind the registry on loopback is not:

    refuse="stream": a PATCH without a length is answered 411 (a front that
                     wants lengths); refuse="patch": every PATCH is 405;
    single_post:     a POST ?digest= with the blob is taken (relayed as POST
                     then PUT, the registry answering 201), as registries that
                     support the single-POST upload do;
    cut_patch_after: a PATCH's connection is cut after that many bytes.
    """

    def __init__(self, upstream_port, refuse=None, single_post=False, cut_patch_after=None):
        self.seen = []
        self.lock = threading.Lock()
        self.refuse = refuse
        self.single_post = single_post
        self.cut_patch_after = cut_patch_after
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def body_pieces(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return
                        left = size
                        while left:
                            d = self.rfile.read(min(left, 1 << 20))
                            if not d:
                                raise ConnectionError("client went away")
                            left -= len(d)
                            yield d
                        self.rfile.readline()
                else:
                    n = int(self.headers.get("Content-Length") or 0)
                    while n:
                        d = self.rfile.read(min(n, 1 << 20))
                        if not d:
                            raise ConnectionError("client went away")
                        n -= len(d)
                        yield d

            def answer(self, status, headers, body):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def refuse(self, rec, status, code, msg):
                rec["status"] = status
                body = json.dumps({"errors": [{"code": code, "message": msg}]}).encode()
                self.answer(status, [("Content-Type", "application/json"),
                                     ("Connection", "close")], body)
                self.wfile.flush()
                self.close_connection = True
                # a lingering close, as servers do: the client reads the answer
                self.connection.settimeout(2)
                try:
                    while self.connection.recv(1 << 16):
                        pass
                except OSError:
                    pass

            def upstream(self, method, path, headers, body=None):
                c = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=120)
                c.request(method, path, body=body, headers=headers)
                r = c.getresponse()
                data = r.read()
                c.close()
                return r, data

            def take_single_post(self, rec):
                body = b"".join(self.body_pieces())
                rec["bytes"] = len(body)
                url = urllib.parse.urlsplit(self.path)
                digest = urllib.parse.parse_qs(url.query)["digest"][0]
                host = {"Host": self.headers["Host"]}
                r, _ = self.upstream("POST", url.path, dict(host, **{"Content-Length": "0"}))
                loc = urllib.parse.urlsplit(r.getheader("Location"))
                put = f"{loc.path}?{loc.query}&digest={digest}"
                r, data = self.upstream("PUT", put, dict(host, **{
                    "Content-Type": "application/octet-stream", "Content-Length": str(len(body))}),
                    body)
                rec["status"] = r.status
                self.answer(r.status, [(k, v) for k, v in r.getheaders()
                                       if k.lower() not in ("content-length", "connection")], data)

            def relay(self):
                streamed = "Content-Length" not in self.headers and \
                    self.headers.get("Transfer-Encoding", "").lower() == "chunked"
                rec = {"method": self.command, "path": self.path, "bytes": 0,
                       "streamed": streamed, "range": self.headers.get("Content-Range"),
                       "status": None}
                with proxy.lock:
                    proxy.seen.append(rec)
                if self.command == "PATCH" and proxy.refuse == "patch":
                    return self.refuse(rec, 405, "UNSUPPORTED", "PATCH is not supported here")
                if self.command == "PATCH" and proxy.refuse == "stream" and streamed:
                    return self.refuse(rec, 411, "UNSUPPORTED", "a Content-Length is required")
                if self.command == "POST" and "digest=" in self.path and proxy.single_post:
                    return self.take_single_post(rec)
                c = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=120)
                c.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in self.headers.items():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                        c.putheader(k, v)
                if streamed:
                    c.putheader("Transfer-Encoding", "chunked")
                elif "Content-Length" in self.headers:
                    c.putheader("Content-Length", self.headers["Content-Length"])
                c.endheaders()
                for d in self.body_pieces():
                    rec["bytes"] += len(d)
                    if self.command == "PATCH" and proxy.cut_patch_after is not None and \
                            rec["bytes"] > proxy.cut_patch_after:
                        rec["status"] = "cut"
                        c.close()
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                    c.send(b"%x\r\n%s\r\n" % (len(d), d) if streamed else d)
                if streamed:
                    c.send(b"0\r\n\r\n")
                r = c.getresponse()
                data = r.read()
                c.close()
                rec["status"] = r.status
                headers = [(k, v) for k, v in r.getheaders()
                           if k.lower() not in ("content-length", "connection",
                                                "transfer-encoding")]
                if self.command == "HEAD":
                    self.send_response(r.status)
                    for k, v in r.getheaders():
                        if k.lower() not in ("connection", "transfer-encoding"):
                            self.send_header(k, v)
                    self.end_headers()
                    return
                self.answer(r.status, headers, data)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = relay

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        on_exit(self.stop)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def take(self):
        """The requests recorded so far, forgetting them."""
        with self.lock:
            seen, self.seen = self.seen, []
        return seen


def blob_requests(seen):
    return [r for r in seen if "/blobs/" in r["path"]]


def uploaded_bytes(seen):
    """Blob bytes sent in PATCH, PUT and POST bodies."""
    return sum(r["bytes"] for r in seen if "/blobs/uploads/" in r["path"])


def summary(seen):
    out = {}
    for r in seen:
        kind = r["path"].split("?")[0]
        kind = "uploads" if "/blobs/uploads/" in kind else "blobs" if "/blobs/" in kind else \
            "manifests" if "/manifests/" in kind else kind
        key = f"{r['method']} {kind}"
        out[key] = out.get(key, 0) + 1
    return out


_reg = None


def registry():
    global _reg
    if _reg is None:
        _reg = Registry(tmpdir()).start()
    return _reg


def records(db):
    with sqlite3.connect(db) as c:
        return set(c.execute("SELECT registry, repo, digest FROM blobs"))


def image(d, name, files):
    """An OCI layout d holding, as oci:d:name, scratch plus one layer of
    files ({path: bytes}); returns hoist append's JSON."""
    tree = os.path.join(d, f"tree-{name}")
    for path, data in files.items():
        os.makedirs(os.path.dirname(os.path.join(tree, path)), exist_ok=True)
        with open(os.path.join(tree, path), "wb") as f:
            f.write(data)
    out = hoist("append", "--json", "--source-date-epoch", "0", "scratch", "--target",
                f"oci:{d}/img:{name}", "--layer", tree).stdout
    return json.loads(out)


def record_env(d):
    """A record of this test's own (the next processes start from it)."""
    db = os.path.join(d, "blob-locations.db")
    return db, {"HOIST_BLOB_LOCATIONS": db}


def manifest_status(reg, repo, tag):
    c = http.client.HTTPConnection("127.0.0.1", reg.port, timeout=30)
    c.request("HEAD", f"/v2/{repo}/manifests/{tag}", headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json"})
    status = c.getresponse().status
    c.close()
    return status


# ------------------------------------------------------------ small blobs


@test
def small_push_takes_fewer_requests():
    reg = registry()
    d = tmpdir()
    db, env = record_env(d)
    image(d, "small", {"etc/motd": b"small image\n" * 100})
    proxy = CountingProxy(reg.port)
    out = json.loads(hoist("push", "--json", f"oci:{d}/img:small", f"{proxy.host}/small/hoist:1",
                           env=env).stdout)
    assert out["blobs"]["transferred"] == 2, out
    seen = proxy.take()
    blobs = blob_requests(seen)
    # config and layer: no HEAD, no PATCH; POST ?digest= (distribution 2.8
    # answers 202 and a session), then the PUT with the blob: two each
    assert not [r for r in blobs if r["method"] in ("HEAD", "PATCH")], summary(seen)
    assert len(blobs) == 4, summary(seen)
    # the single POST is tried once per host and process: the first blob's POST carries
    # ?digest=; a blob whose upload starts after that answer knows better (parallel
    # uploads may both try)
    posts = [r for r in blobs if r["method"] == "POST"]
    assert len(posts) == 2 and all(r["status"] == 202 for r in posts), blobs
    assert "digest=" in posts[0]["path"], blobs
    assert len(seen) <= 7, summary(seen)
    # skopeo, the same image, the same way
    skopeo("copy", "--dest-tls-verify=false", f"oci:{d}/img:small",
           f"docker://{proxy.host}/small/skopeo:1")
    sk = proxy.take()
    print(f"# small push, requests: hoist {len(seen)} {summary(seen)}; "
          f"skopeo {len(sk)} {summary(sk)}")
    assert len(seen) < len(sk), (summary(seen), summary(sk))
    skopeo("inspect", "--tls-verify=false", f"docker://{reg.host}/small/hoist:1")
    # a registry that takes the single POST: one request per blob, and the
    # host is remembered for the next blob
    sp = CountingProxy(reg.port, single_post=True)
    hoist("push", f"oci:{d}/img:small", f"{sp.host}/small/single:1", env=env)
    seen = sp.take()
    blobs = blob_requests(seen)
    assert len(blobs) == 2 and all(r["method"] == "POST" and r["status"] == 201 for r in blobs), \
        summary(seen)
    print(f"# small push to a registry taking single POSTs: {len(seen)} {summary(seen)}")
    digest = skopeo("inspect", "--tls-verify=false", "--format", "{{.Digest}}",
                    f"docker://{reg.host}/small/single:1").stdout.strip()
    assert digest == out["digest"], digest


# ---------------------------------------------------------- streamed layers


def unshare_ok():
    return run("unshare", "-rm", "true", check=False).returncode == 0


@test
def append_streams_the_layer_as_it_is_made():
    if not unshare_ok():
        raise Skip("unshare -rm is not allowed here")
    reg = registry()
    d = tmpdir()
    db, env = record_env(d)
    size = 128 << 20
    tree = os.path.join(d, "tree")
    os.makedirs(tree)
    with open(os.path.join(tree, "data"), "wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 20))
    proxy = CountingProxy(reg.port)
    small = os.path.join(d, "small-tmp")
    os.makedirs(small)
    # TMPDIR and /var/tmp are tmpfs of 8 MiB in a mount namespace of hoist's
    # own: a layer of 128 MiB spooled to either would not fit; and held in
    # memory it would show in hoist's peak memory (measured by a wrapper
    # whose only child it is; the sanitizers' own take it to some 80 MiB)
    script = (f"mount -t tmpfs -o size=8m tmpfs {small} && mount -t tmpfs -o size=8m tmpfs "
              f"/var/tmp && exec {HOIST} append --json scratch --target "
              f"{proxy.host}/stream/app:1 --layer {tree} --compress none")
    wrapper = ("import resource, subprocess, sys\n"
               "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
               "sys.stderr.write(p.stderr)\n"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
               "print(p.stdout)\n"
               "sys.exit(p.returncode)\n")
    p = run("python3", "-c", wrapper, "unshare", "-rm", "sh", "-c", script,
            env=dict(env, TMPDIR=small))
    rss_kib, out = p.stdout.split("\n", 1)
    res = json.loads(out)
    seen = proxy.take()
    patches = [r for r in seen if r["method"] == "PATCH"]
    # one PATCH that carried the whole layer without a length: it went up
    # while it was being made, as nobody knew its size yet
    assert len(patches) == 1 and patches[0]["streamed"], summary(seen)
    assert patches[0]["bytes"] == res["layerSize"] > size, (patches, res)
    assert int(rss_kib) << 10 < size, f"hoist's peak memory was {int(rss_kib) >> 10} MiB"
    print(f"# append of a {size >> 20} MiB layer: {summary(seen)}; peak RSS "
          f"{int(rss_kib) >> 10} MiB; TMPDIR and /var/tmp 8 MiB")
    digest = skopeo("inspect", "--tls-verify=false", "--format", "{{.Digest}}",
                    f"docker://{reg.host}/stream/app:1").stdout.strip()
    assert digest == res["manifest"], (digest, res)


def layer_tree(d, size):
    tree = os.path.join(d, "tree")
    os.makedirs(tree, exist_ok=True)
    with open(os.path.join(tree, "data"), "wb") as f:
        f.write(os.urandom(size))
    return tree


@test
def refused_streamed_patch_goes_in_chunks():
    reg = registry()
    d = tmpdir()
    db, env = record_env(d)
    tree = layer_tree(d, 6 << 20)
    proxy = CountingProxy(reg.port, refuse="stream")
    res = json.loads(hoist("append", "--json", "scratch", "--target", f"{proxy.host}/chunks/app:1",
                           "--layer", tree, "--compress", "none",
                           env=dict(env, HOIST_CHUNK_SIZE=str(1 << 20))).stdout)
    seen = proxy.take()
    patches = [r for r in seen if r["method"] == "PATCH"]
    assert patches[0]["streamed"] and patches[0]["status"] == 411, patches
    chunks = patches[1:]
    assert chunks and all(not r["streamed"] and r["status"] == 202 for r in chunks), patches
    assert [r["range"] for r in chunks[:2]] == ["0-1048575", "1048576-2097151"], chunks
    session = chunks[0]["path"].split("?")[0]
    put = [r for r in seen if r["method"] == "PUT" and r["path"].startswith(session)]
    assert len(put) == 1 and put[0]["status"] == 201, seen
    assert sum(r["bytes"] for r in chunks) + put[0]["bytes"] == res["layerSize"], (chunks, put)
    digest = skopeo("inspect", "--tls-verify=false", "--format", "{{.Digest}}",
                    f"docker://{reg.host}/chunks/app:1").stdout.strip()
    assert digest == res["manifest"]


@test
def refused_patch_goes_whole():
    reg = registry()
    d = tmpdir()
    db, env = record_env(d)
    tree = layer_tree(d, 6 << 20)
    spool = os.path.join(d, "spool")
    os.makedirs(spool)
    proxy = CountingProxy(reg.port, refuse="patch")
    res = json.loads(hoist("append", "--json", "scratch", "--target", f"{proxy.host}/whole/app:1",
                           "--layer", tree, "--compress", "none",
                           env=dict(env, TMPDIR=spool)).stdout)
    seen = proxy.take()
    patches = [r for r in seen if r["method"] == "PATCH"]
    assert len(patches) == 1 and patches[0]["status"] == 405, summary(seen)
    puts = [r for r in seen if r["method"] == "PUT" and r["bytes"] == res["layerSize"]]
    assert len(puts) == 1 and puts[0]["status"] == 201, seen
    assert os.listdir(spool) == [], os.listdir(spool)
    digest = skopeo("inspect", "--tls-verify=false", "--format", "{{.Digest}}",
                    f"docker://{reg.host}/whole/app:1").stdout.strip()
    assert digest == res["manifest"]


@test
def broken_upload_leaves_no_tag():
    reg = registry()
    d = tmpdir()
    db, env = record_env(d)
    tree = layer_tree(d, 12 << 20)
    proxy = CountingProxy(reg.port, cut_patch_after=6 << 20)
    p = hoist("append", "scratch", "--target", f"{proxy.host}/broken/app:1", "--layer", tree,
              "--compress", "none", env=env, check=False)
    assert p.returncode == 1, p
    assert "append" in p.stderr and f"{proxy.host}/broken/app" in p.stderr, p.stderr
    assert manifest_status(reg, "broken/app", "1") == 404
    seen = proxy.take()
    assert not [r for r in seen if "/manifests/" in r["path"] and r["method"] == "PUT"], seen
    # the session was cancelled
    assert [r for r in seen if r["method"] == "DELETE" and "/blobs/uploads/" in r["path"]], \
        summary(seen)


# ------------------------------------------------------------------ mounts


@test
def second_push_to_a_new_repository_mounts():
    reg = registry()
    d = tmpdir()
    db, env = record_env(d)
    res = image(d, "m", {"big": os.urandom(6 << 20), "small": b"x" * 100})
    proxy = CountingProxy(reg.port)
    first = json.loads(hoist("push", "--json", f"oci:{d}/img:m", f"{proxy.host}/mount/first:1",
                             env=env).stdout)
    assert first["blobs"]["transferred"] == 2, first
    proxy.take()
    # a new process, a new repository: the record says where the blobs are
    second = json.loads(hoist("push", "--json", f"oci:{d}/img:m", f"{proxy.host}/mount/second:1",
                              env=env).stdout)
    seen = proxy.take()
    assert second["blobs"]["mounted"] == 2 and second["blobs"]["transferred"] == 0, second
    assert uploaded_bytes(seen) == 0, seen
    assert not [r for r in seen if r["method"] in ("PATCH", "PUT") and "/blobs/" in r["path"]]
    mounts = [r for r in seen if "mount=" in r["path"]]
    assert len(mounts) == 2 and all("from=mount/first" in r["path"] and r["status"] == 201
                                    for r in mounts), mounts
    # no HEAD either: a mount takes what the repository has as well
    assert len(seen) == 5, summary(seen)
    print(f"# second push to a new repository: {summary(seen)}, {uploaded_bytes(seen)} bytes")
    host = proxy.host
    assert {(host, "mount/second", res["layer"]), (host, "mount/second", res["config"])} <= \
        records(db)
    digest = skopeo("inspect", "--tls-verify=false", "--format", "{{.Digest}}",
                    f"docker://{reg.host}/mount/second:1").stdout.strip()
    assert digest == first["digest"]


@test
def stale_record_falls_back_to_upload_and_is_fixed():
    reg = registry()
    d = tmpdir()
    db, env = record_env(d)
    res = image(d, "s", {"f": b"stale\n" * 1000})
    proxy = CountingProxy(reg.port)
    hoist("push", f"oci:{d}/img:s", f"{proxy.host}/stale/one:1", env=env)
    host = proxy.host
    assert (host, "stale/one", res["layer"]) in records(db)
    # the registry forgets the layer in stale/one (as a deletion or a
    # garbage collection does); the record does not know
    c = http.client.HTTPConnection("127.0.0.1", reg.port, timeout=30)
    c.request("DELETE", f"/v2/stale/one/blobs/{res['layer']}")
    assert c.getresponse().status == 202
    c.close()
    proxy.take()
    out = json.loads(hoist("push", "--json", f"oci:{d}/img:s", f"{proxy.host}/stale/two:1",
                           env=env).stdout)
    seen = proxy.take()
    assert out["blobs"]["mounted"] == 1 and out["blobs"]["transferred"] == 1, out
    layer_reqs = [r for r in seen if res["layer"] in r["path"] or
                  (r["method"] == "PUT" and res["layer"] in urllib.parse.unquote(r["path"]))]
    mount = [r for r in layer_reqs if "mount=" in r["path"]]
    assert len(mount) == 1 and mount[0]["status"] == 202, layer_reqs
    # the session the declined mount opened takes the blob: no second POST
    assert [r["method"] for r in layer_reqs] == ["POST", "PUT"], layer_reqs
    rows = records(db)
    assert (host, "stale/one", res["layer"]) not in rows, rows
    assert (host, "stale/two", res["layer"]) in rows, rows
    skopeo("inspect", "--tls-verify=false", f"docker://{reg.host}/stale/two:1")


@test
def declined_mount_of_a_blob_the_repository_has_sends_nothing():
    reg = registry()
    d = tmpdir()
    db, env = record_env(d)
    res = image(d, "h", {"big": os.urandom(6 << 20)})
    proxy = CountingProxy(reg.port)
    hoist("push", f"oci:{d}/img:h", f"{proxy.host}/has/one:1", env=env)
    # has/two gets the image from skopeo: the record does not know it
    skopeo("copy", "--dest-tls-verify=false", f"oci:{d}/img:h", f"docker://{proxy.host}/has/two:1")
    c = http.client.HTTPConnection("127.0.0.1", reg.port, timeout=30)
    c.request("DELETE", f"/v2/has/one/blobs/{res['layer']}")
    assert c.getresponse().status == 202
    c.close()
    proxy.take()
    out = json.loads(hoist("push", "--json", f"oci:{d}/img:h", f"{proxy.host}/has/two:2",
                           env=env).stdout)
    seen = proxy.take()
    # the layer: the mount from has/one is declined, has/two is asked and
    # has it: nothing is sent, the session the mount opened is cancelled
    assert out["blobs"]["present"] == 1 and out["blobs"]["mounted"] == 1, out
    assert uploaded_bytes(seen) == 0, seen
    layer = [r["method"] for r in seen if res["layer"] in r["path"]]
    assert layer == ["POST", "HEAD"], summary(seen)
    assert [r for r in seen if r["method"] == "DELETE" and "/blobs/uploads/" in r["path"]], seen


@test
def corrupt_record_is_replaced_with_a_warning():
    reg = registry()
    d = tmpdir()
    db, env = record_env(d)
    res = image(d, "c", {"f": b"corrupt\n"})
    with open(db, "wb") as f:
        f.write(b"this is not an SQLite database" * 200)
    p = hoist("push", f"oci:{d}/img:c", f"{reg.host}/corrupt/app:1", env=env)
    assert f"blob-location record {db}: setup: file is not a database: replaced by an empty " \
        "record" in p.stderr, p.stderr
    assert (reg.host, "corrupt/app", res["layer"]) in records(db)
    # and the next process finds it whole: no warning
    p = hoist("push", f"oci:{d}/img:c", f"{reg.host}/corrupt/again:1", env=env)
    assert "blob-location" not in p.stderr, p.stderr


@test
def no_record_when_told_so():
    reg = registry()
    d = tmpdir()
    image(d, "n", {"f": b"none\n"})
    hoist("push", f"oci:{d}/img:n", f"{reg.host}/none/app:1",
          env={"HOIST_BLOB_LOCATIONS": "none", "HOIST_CACHE": d})
    assert not [f for f in os.listdir(d) if f.startswith("blob-locations")], os.listdir(d)


if __name__ == "__main__":
    main()
