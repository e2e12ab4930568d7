#!/usr/bin/env python3
"""hoist serve: the limits of its HTTP front, over raw sockets on loopback.

What an unauthenticated or misbehaving client can make the service hold
(memory, connections, time) and what it answers: each limit names itself.
Requests are written byte by byte (duplicate headers, bodies that never
come, connections that never finish their headers); a second client
address is 127.0.0.2 and up (a socket bound to that source address).
"""
import base64
import json
import os
import re
import resource
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from hoisttest import API, Server, Skip, hoist, main, on_exit, run, test, tmpdir, wait_for

START = API + "/build/start"
START_MAX = 10_000_000 + 65536  # HOIST_SERVER_MAX_FILE_B64 + JSON overhead
SMALL_MAX = 4096
# a registry never reached; builds from base/ on it are allowed (any port: the
# followed-log test holds one on a port of its own)
CONFIG = {"registry_host": "127.0.0.1:5999", "allowed_sources": ["127.0.0.1:5999/base/*"]}


def b64(data):
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def head(method, path, headers=()):
    """The request line and headers (a list of pairs: duplicates allowed)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def connect(port, src="127.0.0.1", timeout=5):
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.bind((src, 0))
    c.settimeout(timeout)
    c.connect(("127.0.0.1", port))
    return c


def answer(c):
    """(status, JSON or bytes) of the one answer read from socket c."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = c.recv(65536)
        if not d:
            raise AssertionError(f"connection closed without an answer: {buf!r}")
        buf += d
    headers, _, rest = buf.partition(b"\r\n\r\n")
    status = int(headers.split()[1])
    m = re.search(rb"(?im)^content-length:\s*(\d+)", headers)
    n = int(m.group(1)) if m else 0
    while len(rest) < n:
        d = c.recv(65536)
        if not d:
            break
        rest += d
    try:
        return status, json.loads(rest[:n])
    except ValueError:
        return status, rest[:n]


def closed(c, within):
    """The server closed c (EOF or reset) within the given seconds."""
    c.settimeout(within)
    try:
        while True:
            d = c.recv(65536)
            if not d:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def push(c, size):
    """Sends up to size bytes of body on c; stops quietly when the server
    stops reading or closes."""
    chunk = b"x" * (256 << 10)
    sent = 0
    try:
        while sent < size:
            sent += c.send(chunk[:min(len(chunk), size - sent)])
    except (OSError, socket.timeout):
        pass
    return sent


def more_files(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        if hard < n:
            raise Skip(f"needs {n} open files, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))


# ------------------------------------------------------------------ memory


@test
def memory_bounded_before_authentication():
    s = Server(config=CONFIG).start()
    key = s.token("alice")
    base = rss_mb(s.proc.pid)
    # the authorization is checked when the headers arrive: 401 at once, no body read
    c = connect(s.port)
    c.sendall(head("POST", START, [("Content-Length", 9_000_000)]))
    assert answer(c) == (401, {"status": "ko", "message": "Missing authorization header"})
    c.close()
    # 100 stalled unauthenticated requests announcing 9 MB, each sending 4 MB of it
    socks = []
    for i in range(100):
        c = connect(s.port, timeout=2)
        c.sendall(head("POST", START, [("Authorization", "nobody:" + "0" * 64),
                                       ("Content-Type", "application/json"),
                                       ("Content-Length", 9_000_000)]))
        push(c, 4 << 20)
        socks.append(c)
    time.sleep(0.5)
    peak = max(rss_mb(s.proc.pid) for _ in range(5) if time.sleep(0.1) is None)
    assert peak < 100, f"RSS {base:.0f} MB -> {peak:.0f} MB with 100 unauthenticated bodies"
    for c in socks:
        c.close()
    # authenticated, each endpoint's limit is refused at once, naming the limit
    for path, method, declared, limit in ((START, "POST", START_MAX + 1, START_MAX),
                                          (API + "/build/cleanup", "POST", 5000, SMALL_MAX),
                                          (API + "/builds", "GET", 1 << 20, SMALL_MAX)):
        socks = []
        for i in range(50):
            c = connect(s.port)
            c.sendall(head(method, path, [("Authorization", key), ("Content-Length", declared)]))
            socks.append(c)
        for c in socks:
            st, r = answer(c)
            assert (st, r["message"]) == (
                413, f"Request body too large (max {limit} bytes for this endpoint)."), (st, r)
            c.close()
    # a stalled authenticated body is held up to its endpoint's limit only
    socks = []
    for i in range(5):
        c = connect(s.port, timeout=2)
        c.sendall(head("POST", START, [("Authorization", key), ("Content-Length", START_MAX)]))
        push(c, 8 << 20)
        socks.append(c)
    time.sleep(0.5)
    held = rss_mb(s.proc.pid)
    assert held < base + 5 * 2 * START_MAX / 1e6 + 50, f"RSS {base:.0f} -> {held:.0f} MB"
    for c in socks:
        c.close()
    # what a 5 MB requirements file needs still fits
    body = json.dumps({"source": "127.0.0.1:5999/base/busybox:1", "target": "alice:big",
                       "kind": "python", "file": b64("a" * 4_999_999 + "\n")})
    st, r = s.api("POST", "/build/start", key, body)
    assert st == 200, r
    assert s.request("GET", "/healthz")[0] == 200
    s.stop()


@test
def bodies_over_their_limit_to_curl():
    """curl, an independent client, reads every 413: a declared length over
    the limit is answered before the body is sent, a chunked body that
    outgrows it once it ends."""
    s = Server(config=CONFIG).start()
    key = s.token("alice")
    d = tmpdir()
    big = os.path.join(d, "big")
    with open(big, "wb") as f:
        f.write(b"a" * (START_MAX + 1))
    small = os.path.join(d, "small")
    with open(small, "wb") as f:
        f.write(b"{" + b" " * SMALL_MAX + b"}")
    url = f"http://127.0.0.1:{s.port}"
    chunked = ["-H", "Transfer-Encoding: chunked"]
    for path, extra, f, limit in ((START, [], big, START_MAX), (START, chunked, big, START_MAX),
                                  (API + "/build/cleanup", [], small, SMALL_MAX),
                                  (API + "/build/cleanup", chunked, small, SMALL_MAX)):
        for auth in (["-H", f"authorization: {key}"], []):
            p = run("curl", "-sS", "-o", "-", "-w", "\n%{http_code}", *auth, *extra,
                    "--data-binary", f"@{f}", url + path, check=False, timeout=60)
            out, code = p.stdout.rsplit("\n", 1)
            want = (413, f"Request body too large (max {limit} bytes for this endpoint).")
            if not auth and extra:  # the size of a chunked body is not known at the headers
                want = (401, "Missing authorization header")
            assert (int(code), json.loads(out)["message"]) == want, (path, extra, auth, p)
    s.stop()


# ------------------------------------------------------------------ connections


@test
def half_open_connections_from_one_address():
    n = 4200
    more_files(n + 512)
    s = Server(config=CONFIG).start()
    socks = []
    for i in range(n):
        try:
            c = connect(s.port, src="127.0.0.2", timeout=5)
            c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
            socks.append(c)
        except OSError:
            pass
    try:
        t0 = time.monotonic()
        c = connect(s.port, timeout=5)
        c.sendall(head("GET", "/healthz"))
        st, r = answer(c)
        assert st == 200 and r["message"] == "healthy", (st, r)
        assert time.monotonic() - t0 < 5
        c.close()
        # the address over its limit (64) was closed at once
        wait_for(lambda: sum(1 for c in socks[-100:] if closed(c, 0.01)) == 100, timeout=10,
                 what="connections over the per-address limit closed")
    finally:
        for c in socks:
            c.close()
    s.stop()
    # a refused connection is not a line of the log each
    log = open(s.log.name, "rb").read()
    assert log.count(b"connection limit") <= 2, log[-2000:]


@test
def idle_connections_closed_after_request_timeout():
    s = Server(config=dict(CONFIG, request_timeout=2, max_connections_per_address=8)).start()
    key = s.token("alice")
    # unfinished headers, a body that stops, nothing at all
    a = connect(s.port, src="127.0.0.3")
    a.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    b = connect(s.port, src="127.0.0.3")
    b.sendall(head("POST", API + "/build/cleanup", [("Authorization", key),
                                                    ("Content-Length", 100)]) + b"{")
    c = connect(s.port, src="127.0.0.3")
    t0 = time.monotonic()
    for x in (a, b, c):
        assert closed(x, 10), "an idle connection outlived request_timeout"
        x.close()
    assert time.monotonic() - t0 < 6
    # eight connections from one address are held, the ninth is closed at once
    held = [connect(s.port, src="127.0.0.4") for _ in range(8)]
    for x in held:
        x.sendall(b"GET /heal")
    extra = connect(s.port, src="127.0.0.4")
    assert closed(extra, 1), "the ninth connection from one address was kept"
    # another address is served meanwhile
    o = connect(s.port, src="127.0.0.5")
    o.sendall(head("GET", "/healthz"))
    assert answer(o)[0] == 200
    for x in held + [extra, o]:
        x.close()
    s.stop()


@test
def followed_log_outlives_request_timeout():
    """A build silent in its pull (the registry accepts and never answers):
    its followed log stays open past request_timeout."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)
    on_exit(hole.close)
    source = f"127.0.0.1:{hole.getsockname()[1]}/base/busybox:1"
    s = Server(config=dict(CONFIG, request_timeout=1,
                           allowed_sources=[f"127.0.0.1:{hole.getsockname()[1]}/base/*"])).start()
    key = s.token("alice")
    st, r = s.api("POST", "/build/start", key,
                  {"source": source, "target": "alice:quiet", "kind": "python"})
    assert st == 200, r
    c = connect(s.port, timeout=10)
    c.sendall(head("GET", f"{API}/build/logs?id={r['id']}&follow=1", [("Authorization", key)]))
    assert not closed(c, 4), "a followed log was cut by request_timeout"
    c.close()
    s.api("DELETE", f"/build?id={r['id']}", key)
    s.stop()


@test
def config_limits_refused():
    d = tmpdir()
    for cfg, word in (({"request_timeout": 0}, "request_timeout"),
                      ({"request_timeout": "30"}, "request_timeout"),
                      ({"max_connections_per_address": -1}, "max_connections_per_address"),
                      ({"metrics_token": 7}, "metrics_token"),
                      ({"metrics_per_user": "yes"}, "metrics_per_user"),
                      ({"couchdb_password_file": "/nonexistent/password"},
                       "couchdb_password_file"),
                      ({"lease_seconds": 0.5}, "lease_seconds"),
                      ({"poll_seconds": 0}, "poll_seconds"),
                      ({"poll_seconds": "2"}, "poll_seconds"),
                      ({"on_restart": "retry"}, "on_restart"),
                      ({"registry_cache": "yes"}, "registry_cache")):
        path = os.path.join(d, "config.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        try:
            p = hoist("serve", "--listen", "127.0.0.1:0", "--data", os.path.join(d, "data"),
                      "--config", path, check=False, timeout=10)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{cfg}: accepted")
        assert p.returncode != 0 and word in p.stderr, (cfg, p.returncode, p.stderr)


# ------------------------------------------------------------------ framing


@test
def duplicate_content_length():
    s = Server(config=CONFIG).start()
    key = s.token("alice")
    want = (400, {"status": "ko", "message": "Duplicate Content-Length header"})
    for auth in ((("Authorization", key),), ()):
        for lengths in ((100, 5), (5, 100), (5, 6)):
            c = connect(s.port, timeout=3)
            h = list(auth) + [("Content-Length", n) for n in lengths]
            c.sendall(head("POST", START, h) + b"{}{}{")
            t0 = time.monotonic()
            got = answer(c)
            assert got == want and time.monotonic() - t0 < 2, (lengths, got)
            c.close()
    # the same length twice is one length
    c = connect(s.port, timeout=3)
    c.sendall(head("POST", START, [("Authorization", key), ("Content-Length", 2),
                                   ("content-length", 2)]) + b"[]")
    assert answer(c) == (400, {"status": "ko", "message": "No JSON payload provided for build."})
    c.close()
    s.stop()


# ------------------------------------------------------------------ full disk


@test
def full_data_volume_answers_507():
    if os.geteuid() != 0:
        raise Skip("mounting a tmpfs needs root")
    vol = tmpdir()
    p = run("mount", "-t", "tmpfs", "-o", "size=16m", "hoist-test", vol, check=False)
    if p.returncode != 0:
        raise Skip(f"cannot mount a tmpfs: {p.stderr.strip()}")
    on_exit(lambda: run("umount", "-l", vol, check=False))
    os.makedirs(os.path.join(vol, "data"))
    s = Server(data=os.path.join(vol, "data"), config=CONFIG).start()
    key = s.token("alice")
    body = {"source": "127.0.0.1:5999/base/busybox:1", "target": "alice:t", "kind": "python",
            "file": b64("flask==3.0\n" * 10000)}
    # fill the volume
    filler = os.path.join(vol, "filler")
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    # writing the requirements file meets the full volume (ENOSPC at the root)
    st, r = s.api("POST", "/build/start", key, body)
    assert (st, r) == (507, {"status": "ko",
                             "message": "No space left on the service's data volume."}), (st, r)
    # nothing half-made is left, and with room again the same request is taken
    assert os.listdir(os.path.join(s.data, "jobs")) == []
    os.unlink(filler)
    st, r = s.api("POST", "/build/start", key, body)
    assert st == 200, r
    s.stop()


# ------------------------------------------------------------------ registry answers


class _HugeManifests(BaseHTTPRequestHandler):
    """/v2/big/manifests/*: 100 MB announced; /v2/endless/...: chunks forever."""

    def log_message(self, *a):
        pass

    def do_GET(self):
        try:
            if self.path == "/v2/":
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
                return
            ct = "application/vnd.oci.image.manifest.v1+json"
            if self.path.startswith("/v2/big/manifests/"):
                self.send_response(200)
                self.send_header("Content-Type", ct)
                self.send_header("Content-Length", str(100 << 20))
                self.end_headers()
                self.wfile.write(b'{"schemaVersion": 2, "x": "')
                for _ in range(100):
                    self.wfile.write(b"a" * (1 << 20))
                return
            if self.path.startswith("/v2/endless/manifests/"):
                self.send_response(200)
                self.send_header("Content-Type", ct)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"a" * (1 << 20)
                while True:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
        except (BrokenPipeError, ConnectionResetError):
            pass


@test
def registry_manifest_over_its_limit():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _HugeManifests)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    on_exit(srv.shutdown)
    host = f"127.0.0.1:{srv.server_address[1]}"
    for repo in ("big", "endless"):
        t0 = time.monotonic()
        p = hoist("inspect", f"{host}/{repo}:latest", check=False, timeout=120)
        assert p.returncode != 0 and "manifest larger than 4 MiB" in p.stderr, (repo, p.stderr)
        assert time.monotonic() - t0 < 60
    # the service's manifest endpoint says the same
    s = Server(config={"registry_host": host}).start()
    for repo in ("big", "endless"):
        st, r = s.api("GET", f"/registry/manifest?image={repo}:latest", s.token(repo))
        assert st == 502 and "manifest larger than 4 MiB" in r["message"], (st, r)
    s.stop()


# ------------------------------------------------------------------ metrics


@test
def metrics_token_and_per_user_counts():
    s = Server(config=CONFIG).start()
    key = s.token("alice")
    st, r = s.api("POST", "/build/start", key, {"source": "127.0.0.1:5999/base/busybox:1",
                                                "target": "alice:m", "kind": "python"})
    assert st == 200, r
    st, m = s.request("GET", "/metrics", raw=True)
    assert st == 200 and b"hoist_builds{" in m and b"hoist_builds_by_user" not in m, m
    s.stop()

    s = Server(data=s.data, config=dict(CONFIG, metrics_token="s3cret-metrics",
                                        metrics_per_user=True)).start()
    for h, msg in (({}, "Missing authorization header"),
                   ({"authorization": "Bearer wrong"}, "Invalid authorization"),
                   ({"authorization": "Bearer s3cret-metricsx"}, "Invalid authorization"),
                   ({"authorization": "s3cret-metrics"}, "Invalid authorization"),
                   ({"authorization": key}, "Invalid authorization")):
        st, r = s.request("GET", "/metrics", headers=h)
        assert (st, r) == (401, {"status": "ko", "message": msg}), (h, st, r)
    st, m = s.request("GET", "/metrics", headers={"authorization": "Bearer s3cret-metrics"},
                      raw=True)
    assert st == 200, m
    assert re.search(rb'hoist_builds_by_user\{user="alice",state="[a-z]+"\} 1\n', m), m
    # /healthz stays open
    assert s.request("GET", "/healthz")[0] == 200
    s.stop()


if __name__ == "__main__":
    main()
