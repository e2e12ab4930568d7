#!/usr/bin/env python3
"""hoist serve among tenants who do not trust each other, nor play fair.

The service runs as root, as build hosts run it, with real builds: a busybox
base whose /bin/extend runs the requirements file as a shell script
(tests/fixtures/hostile-image.sh), so each test's file says what its build
does. Registries are real (docker-registry, htpasswd where credentials
matter).
"""
import base64
import json
import os
import socket
import sqlite3
import stat
import subprocess
import threading

from hoisttest import (API, HOIST, Registry, Server, Skip, hoist, main, on_exit, script_base,
                       test, tmpdir)
_state = {}


def need_root():
    if os.geteuid() != 0:
        raise Skip("the service's builds run as root here, as on a build host")


def work():
    if "work" not in _state:
        _state["work"] = tmpdir("hoist-tenants-")
        os.environ["HOIST_IMAGES"] = os.path.join(_state["work"], "images")
    return _state["work"]


def layout():
    if "layout" not in _state:
        _state["layout"] = script_base(work())
    return _state["layout"]


def registry():
    """An open registry holding the base as base/script:1."""
    if "reg" not in _state:
        reg = Registry(work()).start()
        hoist("copy", layout(), f"{reg.host}/base/script:1")
        _state["reg"] = reg
    return _state["reg"]


def b64(text):
    return base64.b64encode(text.encode()).decode()


def start(srv, key, target, script, source=None):
    code, ans = srv.api("POST", "/build/start", key,
                        {"source": source or f"{registry().host}/base/script:1",
                         "target": target, "kind": "python", "file": b64(script)})
    return code, ans


def log_of(srv, key, job):
    return srv.request("GET", f"{API}/build/logs?id={job}", auth=key, raw=True)[1].decode(
        errors="replace")


def config(**extra):
    c = {"registry_host": registry().host, "allowed_sources": [f"{registry().host}/base/*"]}
    c.update(extra)
    return c


def hold_registry():
    """A 'registry' that accepts connections and never answers: a build pulling
    from it stays in flight."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    conns = []
    threading.Thread(target=lambda: [conns.append(s.accept()) for _ in iter(int, 1)],
                     daemon=True).start()
    on_exit(s.close)
    return f"127.0.0.1:{s.getsockname()[1]}"


@test
def sources_are_confined_and_credentials_go_to_the_push_host_only():
    """alice may not build from bob's private image (the service's credential
    would have pulled it); her own namespace and the allowed bases work; the
    service's credential is not handed to a build for another registry."""
    need_root()
    users = {"svc": "svc-pw"}
    push = Registry(work(), auth="htpasswd", users=users).start()
    other = Registry(work(), auth="htpasswd", users=users).start()
    creds = {"--creds": "svc:svc-pw"}
    for ref in (f"{push.host}/bob/private:1", f"{push.host}/alice/own:1",
                f"{other.host}/base/script:1"):
        hoist("copy", "--creds", creds["--creds"], layout(), ref)
    auth = base64.b64encode(b"svc:svc-pw").decode()
    secret = os.path.join(work(), "dockerconfig.json")
    with open(secret, "w") as f:
        json.dump({"auths": {push.host: {"auth": auth}, other.host: {"auth": auth}}}, f)
    srv = Server(workers=2, config={"registry_host": push.host, "registry_secret": secret,
                                    "allowed_sources": [f"{other.host}/base/*"]}).start()
    key = srv.token("alice")
    code, ans = start(srv, key, "alice:stolen", "echo stolen\n", f"{push.host}/bob/private:1")
    assert code == 403 and "Source not allowed" in ans["message"], (code, ans)
    assert "allowed_sources" in ans["message"], ans
    code, ans = start(srv, key, "alice:mine", "echo mine\n", f"{push.host}/alice/own:1")
    assert code == 200, ans
    st = srv.wait_phase(key, ans["id"], ("Succeeded", "Failed"), timeout=300)
    assert st["phase"] == "Succeeded", (st, log_of(srv, key, ans["id"]))
    # an allowed base on another registry: pulled without the service's credential
    code, ans = start(srv, key, "alice:other", "echo other\n", f"{other.host}/base/script:1")
    assert code == 200, ans
    st = srv.wait_phase(key, ans["id"], ("Succeeded", "Failed"), timeout=300)
    assert st["phase"] == "Failed", st
    assert "authentication" in st["error"] or "401" in st["error"], st


@test
def build_timeout_frees_the_workers():
    """Two endless builds of alice's hold both workers only until the build
    timeout; bob's build then runs."""
    need_root()
    srv = Server(workers=2, config=config(build_timeout=3, per_user_limit=2)).start()
    alice, bob = srv.token("alice"), srv.token("bob")
    stuck = [start(srv, alice, f"alice:sleep{i}", f"sleep 100000 # {i}\n")[1]["id"]
             for i in range(2)]
    for job in stuck:
        srv.wait_phase(alice, job, ("Running",), timeout=120)
    code, ans = start(srv, bob, "bob:quick", "echo quick\n")
    assert code == 200, ans
    st = srv.wait_phase(bob, ans["id"], ("Succeeded", "Failed"), timeout=120)
    assert st["phase"] == "Succeeded", st
    for job in stuck:
        st = srv.wait_phase(alice, job, ("Failed",), timeout=60)
        assert "timed out after 3 s" in st["error"], st


@test
def queued_builds_are_capped_per_user():
    need_root()
    hold = hold_registry()
    srv = Server(workers=1, config={"registry_host": registry().host, "per_user_queue": 3,
                                    "allowed_sources": [f"{hold}/base/*"]}).start()
    alice, bob = srv.token("alice"), srv.token("bob")
    src = f"{hold}/base/script:1"
    first = start(srv, alice, "alice:q0", "echo 0\n", src)[1]["id"]
    srv.wait_phase(alice, first, ("Running",), timeout=60)  # held in its pull
    for i in range(1, 4):
        code, ans = start(srv, alice, f"alice:q{i}", f"echo {i}\n", src)
        assert code == 200, (i, ans)
    c = srv.request("POST", f"{API}/build/start", raw=True, auth=alice,
                    body={"source": src, "target": "alice:q4", "kind": "python",
                          "file": b64("echo 4\n")})
    assert c[0] == 429, c
    assert b"per_user_queue" in c[1], c
    # the answer says when to come back
    import http.client
    h = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    h.request("POST", f"{API}/build/start", body=json.dumps(
        {"source": src, "target": "alice:q5", "kind": "python", "file": b64("echo 5\n")}),
        headers={"authorization": alice})
    r = h.getresponse()
    r.read()
    assert r.status == 429 and r.getheader("Retry-After"), (r.status, r.getheaders())
    # another user's queue is their own
    code, ans = start(srv, bob, "bob:q0", "echo bob\n", src)
    assert code == 200, ans


@test
def users_take_turns():
    """With one worker, bob's single build runs before alice's queued ones
    that came before it."""
    need_root()
    srv = Server(workers=1, config=config(per_user_limit=1)).start()
    alice, bob = srv.token("alice"), srv.token("bob")
    a = [start(srv, alice, f"alice:t{i}", f"sleep 1 # {i}\n")[1]["id"] for i in range(3)]
    b = start(srv, bob, "bob:t0", "echo bob\n")[1]["id"]
    for job, key in [(j, alice) for j in a] + [(b, bob)]:
        st = srv.wait_phase(key, job, ("Succeeded", "Failed"), timeout=300)
        assert st["phase"] == "Succeeded", st
    # the store's start times (the API's have a resolution of a second)
    db = sqlite3.connect(f"file:{srv.data}/jobs.db?mode=ro", uri=True)
    started = dict(db.execute("SELECT id, started FROM jobs"))
    db.close()
    order = sorted(a + [b], key=lambda j: started[j])
    assert order.index(b) == 1, ("bob's build did not get the next turn", order, started)


@test
def job_logs_are_bounded():
    """A build that writes without end fills its log only up to max_log_bytes:
    the cut is marked and the build goes on; with log_overflow "fail" the
    build is stopped."""
    need_root()
    srv = Server(workers=2, config=config(max_log_bytes=65536)).start()
    key = srv.token("alice")
    floods = {"lines": "yes | head -c 20000000\necho last line of the build\n",
              "one-line": "head -c 20000000 /dev/zero | tr '\\0' x\necho\necho last line\n"}
    for name, script in floods.items():
        job = start(srv, key, f"alice:{name}", script)[1]["id"]
        st = srv.wait_phase(key, job, ("Succeeded", "Failed"), timeout=300)
        assert st["phase"] == "Succeeded", st
        path = os.path.join(srv.data, "jobs", job, "log")
        size = os.path.getsize(path)
        assert size < 65536 + 4096, (name, size)
        text = open(path, errors="replace").read()
        assert "log cut at 65536 bytes (max_log_bytes)" in text, text[-2000:]
        assert "the build goes on" in text
    srv2 = Server(workers=1, config=config(max_log_bytes=65536, log_overflow="fail")).start()
    key = srv2.token("alice")
    job = start(srv2, key, "alice:fail", "yes\n")[1]["id"]
    st = srv2.wait_phase(key, job, ("Failed",), timeout=120)
    assert "exceeded max_log_bytes" in st["error"], st


@test
def one_server_per_data_directory_and_a_private_store():
    need_root()
    data = tmpdir("hoist-tenants-data-")
    os.chmod(data, 0o755)
    srv = Server(data=data, workers=1, config=config()).start()
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700, oct(os.stat(data).st_mode)
    key = srv.token("alice")
    job = start(srv, key, "alice:long", "sleep 5\n")[1]["id"]
    srv.wait_phase(key, job, ("Running",), timeout=120)
    p = subprocess.run([HOIST, "serve", "--listen", "127.0.0.1:0", "--data", data],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0, p
    assert f"in use by another hoist serve (pid {srv.proc.pid})" in p.stderr, p.stderr
    # the first server's build was not touched
    st = srv.wait_phase(key, job, ("Succeeded", "Failed"), timeout=120)
    assert st["phase"] == "Succeeded", st
    for name in ("jobs.db", "jobs.db-wal", "jobs.db-shm"):
        path = os.path.join(data, name)
        if os.path.exists(path):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, (name, oct(os.stat(path).st_mode))
    assert os.path.exists(os.path.join(data, "jobs.db"))


if __name__ == "__main__":
    main()
