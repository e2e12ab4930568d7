#!/usr/bin/env python3
"""hoist serve: the deployer service, over HTTP, with real builds.

A `hoist serve` runs on a free loopback port with its own data directory and
tokens made by `hoist token add`; requests go over plain HTTP (http.client),
so every header and body is exactly what the table says. Builds are real
`hoist build` children: a busybox base (the build tests' fixture) with a fake
/bin/extend, pushed to a real registry (docker-registry).
"""
import base64
import http.client
import json
import os
import signal
import sqlite3
import ssl
import threading
import time

from hoisttest import (API, Registry, SOURCE_ROOT, Server, Skip, busybox_with_extend,
                       couchdb_compat, hoist, main, make_ca, run, test, tmpdir, wait_for)

FIXTURES = os.path.join(SOURCE_ROOT, "tests", "fixtures")
_state = {}
# a registry that is never reached: the requests are refused or queued before a pull
FAKE_REGISTRY = {"registry_host": "127.0.0.1:5999", "allowed_sources": ["127.0.0.1:5999/base/*"]}


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def have_build():
    return hoist("build", "--help", check=False).returncode == 0 and \
        os.path.exists(os.path.join(FIXTURES, "busybox-image.sh"))


def work():
    if "work" not in _state:
        _state["work"] = tmpdir("hoist-serve-it-")
        os.environ["HOIST_IMAGES"] = os.path.join(_state["work"], "images")
    return _state["work"]


def registry():
    if "reg" not in _state:
        _state["reg"] = Registry(work()).start()
    return _state["reg"]


def base_with_extend(tag, script):
    """busybox + an executable /bin/extend, pushed to the test registry."""
    if not have_build():
        raise Skip("hoist build is not available in this tree")
    return busybox_with_extend(_state, work(), registry().host, tag, script)


def server(**kw):
    kw.setdefault("config", {"registry_host": registry().host, "per_user_limit": 2,
                             "allowed_sources": [f"{registry().host}/base/*",
                                                 *FAKE_REGISTRY["allowed_sources"]]})
    return Server(**kw).start()


# ------------------------------------------------------------------ the table

GOOD_FILE = b64("flask==3.0\n")


def body(**over):
    b = {"source": "127.0.0.1:5999/base/busybox:1", "target": "alice:t1", "kind": "python",
         "file": GOOD_FILE}
    for k, v in over.items():
        if v is None:
            b.pop(k, None)
        else:
            b[k] = v
    return b


def bad_requests(key, uuid):
    start = API + "/build/start"
    bad_key = uuid + ":" + "0" * 64
    kinds = "python, nodejs, php, java, go, ruby, dotnet"
    r = [
        # (name, method, path, auth, body, status, message)
        ("no header", "POST", start, None, body(), 401, "Missing authorization header"),
        ("empty header", "POST", start, "", body(), 401, "Missing authorization header"),
        ("raw wrong key", "POST", start, bad_key, body(), 401, "Invalid authorization"),
        ("basic wrong key", "POST", start, "Basic " + b64(bad_key), body(), 401,
         "Invalid authorization"),
        ("bare wrong key", "POST", start, b64(bad_key), body(), 401, "Invalid authorization"),
        ("basic not base64", "POST", start, "Basic !!!", body(), 401, "Invalid authorization"),
        ("bare not base64", "POST", start, "%%%%", body(), 401, "Invalid authorization"),
        ("basic no colon", "POST", start, "Basic " + b64("justakey"), body(), 401,
         "Invalid authorization"),
        ("colon only", "POST", start, ":", body(), 401, "Invalid authorization"),
        ("unknown uuid", "POST", start, "nobody:" + key.split(":")[1], body(), 401,
         "Invalid authorization"),
        ("bearer", "POST", start, "Bearer abc", body(), 401, "Invalid authorization"),
        ("huge header", "POST", start, "A" * 6000, body(), 401, "Invalid authorization"),
        ("NUL in key", "POST", start, "Basic " + b64(key.encode() + b"\0x"), body(), 401,
         "Invalid authorization"),
        ("no body", "POST", start, key, None, 400, "No JSON payload provided for build."),
        ("not JSON", "POST", start, key, "source=busybox", 400,
         "No JSON payload provided for build."),
        ("JSON array", "POST", start, key, "[1]", 400, "No JSON payload provided for build."),
        ("no source", "POST", start, key, body(source=None), 400, "No source provided for build."),
        ("no target", "POST", start, key, body(target=None), 400, "No target provided for build."),
        ("no kind", "POST", start, key, body(kind=None), 400, "No kind provided for build."),
        ("source a number", "POST", start, key, body(source=7), 400,
         "Invalid source for the build."),
        ("wrong user", "POST", start, key, body(target="bob:t1"), 400,
         "Invalid target for the build."),
        ("injection in target", "POST", start, key, body(target="alice:tag;rm -rf /"), 400,
         "Invalid target for the build."),
        ("target without tag", "POST", start, key, body(target="alice"), 400,
         "Invalid target for the build."),
        ("newline in target", "POST", start, key, body(target="alice:t1\nRUN x"), 400,
         "Invalid target for the build."),
        ("newline in source", "POST", start, key, body(source="busybox\nRUN rm -rf /"), 400,
         "Invalid source for the build."),
        ("injection in source", "POST", start, key, body(source="busybox;rm -rf /"), 400,
         "Invalid source for the build."),
        ("uppercase source", "POST", start, key, body(source="BusyBox"), 400,
         "Invalid source for the build."),
        ("unknown kind", "POST", start, key, body(kind="cobol"), 400,
         f'Unknown kind "cobol" (known kinds: {kinds}).'),
        ("file not base64", "POST", start, key, body(file="%%%%"), 400,
         "Requirements file must be valid base64-encoded data"),
        ("file bad padding", "POST", start, key, body(file="abc"), 400,
         "Requirements file must be valid base64-encoded data"),
        ("file a number", "POST", start, key, body(file=12), 400,
         "Requirements file must be valid base64-encoded data"),
        ("file not UTF-8", "POST", start, key, body(file=b64(b"flask\xff\xfe\n")), 400,
         "Requirements file must be UTF-8 text"),
        ("file with NUL", "POST", start, key, body(file=b64(b"a\0b")), 400,
         "Requirements file must be UTF-8 text"),
        ("file over 10MB base64", "POST", start, key, body(file="A" * 10_000_004), 400,
         "Requirements file too large (max 10MB base64-encoded)"),
        ("file over 5MB decoded", "POST", start, key, body(file=b64(b"a" * 5_000_001)), 400,
         "Decoded requirements file too large (max 5MB)"),
        # a body over its endpoint's limit: 413 at once (test_serve_front.py)
        ("NUL in source", "POST", start, key, body(source="busybox\u0000x"), 400,
         "Invalid source for the build."),
        ("NUL in target", "POST", start, key, body(target="alice:t1\u0000"), 400,
         "Invalid target for the build."),
        ("max_age_hours abc", "POST", API + "/build/cleanup", key, {"max_age_hours": "abc"}, 400,
         "Invalid max_age_hours: must be a non-negative number."),
        ("max_age_hours -1", "POST", API + "/build/cleanup", key, {"max_age_hours": -1}, 400,
         "Invalid max_age_hours: must be a non-negative number."),
        ("max_age_hours true", "POST", API + "/build/cleanup", key, {"max_age_hours": True}, 400,
         "Invalid max_age_hours: must be a non-negative number."),
        ("cleanup not JSON", "POST", API + "/build/cleanup", key, "{", 400,
         "No JSON payload provided for cleanup."),
        ("cleanup no auth", "POST", API + "/build/cleanup", None, {}, 401,
         "Missing authorization header"),
        ("status no id", "GET", API + "/build/status", key, None, 400,
         "No id provided for build status."),
        ("status unknown id", "GET", API + "/build/status?id=0123456789abcdef", key, None, 404,
         "Build job not found."),
        ("status path id", "GET", API + "/build/status?id=../../etc/passwd", key, None, 404,
         "Build job not found."),
        ("logs unknown id", "GET", API + "/build/logs?id=0123456789abcdef", key, None, 404,
         "Build job not found."),
        ("cancel unknown id", "DELETE", API + "/build?id=0123456789abcdef", key, None, 404,
         "Build job not found."),
        ("start by GET", "GET", start, key, None, 405, "Method not allowed."),
        ("unknown path", "GET", API + "/nothing", key, None, 404, "Not found."),
        ("registry other user", "GET", API + "/registry/tags?image=bob", key, None, 403,
         "Image outside the caller's namespace."),
    ]
    return r


@test
def bad_requests_table():
    s = Server(config=FAKE_REGISTRY).start()
    key = s.token("alice")
    s.token("bob")
    uuid = key.split(":")[0]
    failures = []
    rows = bad_requests(key, uuid)
    assert len(rows) >= 30
    for name, method, path, auth, b, status, message in rows:
        got_status, got = s.request(method, path, body=b, auth=auth)
        want = {"status": "ko", "message": message}
        if got_status != status or not isinstance(got, dict) or \
                {k: got.get(k) for k in want} != want:
            failures.append(f"{name}: want {status} {message!r}, got {got_status} {got!r:.200}")
    assert not failures, "\n".join(failures)
    # nothing was queued, nothing was written
    assert s.api("GET", "/builds", key)[1]["builds"] == []
    assert os.listdir(os.path.join(s.data, "jobs")) == []
    assert set(os.listdir(s.data)) <= {".tokens.lock", "jobs", "jobs.db", "jobs.db-shm",
                                       "jobs.db-wal", "serve.lock", "tokens.json"}, \
        os.listdir(s.data)
    # the server still answers, and secrets never reached its log
    assert s.request("GET", "/healthz")[0] == 200
    s.stop()
    log = open(s.log.name, "rb").read()
    assert key.split(":")[1].encode() not in log


@test
def auth_forms_and_envelope():
    s = Server(config=FAKE_REGISTRY).start()
    key = s.token("alice")
    # the three forms of the header are the same caller
    for auth in (key, b64(key), "Basic " + b64(key)):
        st, r = s.api("GET", "/builds", auth)
        assert st == 200 and r["status"] == "ok" and r["builds"] == [], (auth, st, r)
    # the tokens file is the owner's only and keeps no key in clear
    tokens = os.path.join(s.data, "tokens.json")
    assert os.stat(tokens).st_mode & 0o777 == 0o600
    text = open(tokens).read()
    assert key.split(":")[1] not in text and key.split(":")[0] in text
    assert len(key.split(":")[1]) == 64
    # a key added while the server runs is accepted at once
    k2 = s.token("carol")
    assert s.api("GET", "/builds", k2)[0] == 200
    st, r = s.api("POST", "/build/start", key, body(target="ALICE:t1"))
    assert st == 400, r
    s.stop()


@test
def https():
    d = tmpdir()
    ca, cert, key = make_ca(d)
    s = Server(config=FAKE_REGISTRY, tls=(ca, cert, key)).start()
    k = s.token("alice")
    st, r = s.api("GET", "/builds", k)
    assert st == 200 and r["builds"] == [], r
    # the client verbs speak https too
    url = f"https://127.0.0.1:{s.port}"
    p = hoist("service", "status", "0123456789abcdef", "--server", url, "--auth", k,
              "--ca-file", ca, check=False)
    assert p.returncode == 1 and "Build job not found. (HTTP 404)" in p.stderr, p.stderr
    assert "deprecated" not in p.stderr, p.stderr
    s.stop()


@test
def client_verbs_under_service_and_their_old_names():
    s = Server(config=FAKE_REGISTRY).start()
    url = f"http://127.0.0.1:{s.port}"
    # token: a local admin verb on the data directory
    k = hoist("service", "token", "add", "carol", "--data", s.data).stdout.strip()
    p = hoist("token", "add", "dave", "--data", s.data)
    assert ":" in p.stdout and "'hoist token' is deprecated" in p.stderr, p.stderr
    for old, args in (("status", ["0123456789abcdef"]), ("logs", ["0123456789abcdef"]),
                      ("clean", []), ("send", ["--source", "busybox", "--target", "x:y",
                                               "--kind", "nope", "--no-follow"])):
        new = hoist("service", old, *args, "--server", url, "--auth", k, check=False)
        was = hoist(old, *args, "--server", url, "--auth", k, check=False)
        assert new.returncode == was.returncode and new.stdout == was.stdout, (old, new, was)
        note = (f"hoist: 'hoist {old}' is deprecated and goes in the next release; "
                f"use 'hoist service {old}'\n")
        assert was.stderr == note + new.stderr, (old, was.stderr, new.stderr)
        assert "deprecated" not in new.stderr
    # `hoist images` is the local image store now, not the service's
    p = hoist("images", "list-catalogs", check=False)
    assert p.returncode == 2 and "'hoist service images list-catalogs'" in p.stderr, p.stderr
    p = hoist("service", "images", "list-catalogs", "--server", url, "--auth", k, check=False)
    assert "deprecated" not in p.stderr, p.stderr
    s.stop()


def client_cert(d):
    """A client certificate signed by make_ca's CA in d."""
    key, csr, cert = (os.path.join(d, n) for n in ("client.key", "client.csr", "client.crt"))
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=client", "-keyout", key,
        "-out", csr)
    run("openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(d, "ca.crt"), "-CAkey",
        os.path.join(d, "ca.key"), "-CAcreateserial", "-days", "2", "-out", cert)
    return cert, key


@test
def mutual_tls():
    d = tmpdir()
    ca, cert, key = make_ca(d)
    ccert, ckey = client_cert(d)
    s = Server(config=FAKE_REGISTRY,
               tls=(ca, cert, key, (ccert, ckey))).start()
    k = s.token("alice")
    assert s.api("GET", "/builds", k)[0] == 200
    # without a client certificate: refused before the key is looked at
    s.tls = (ca, cert, key, None)
    st, r = s.api("GET", "/builds", k)
    assert (st, r["message"]) == (401, "Client certificate required."), (st, r)
    url = f"https://127.0.0.1:{s.port}"
    p = hoist("service", "status", "0123456789abcdef", "--server", url, "--auth", k,
              "--ca-file", ca, "--cert", ccert, "--key", ckey, check=False)
    assert "Build job not found. (HTTP 404)" in p.stderr, p.stderr
    s.tls = (ca, cert, key, (ccert, ckey))
    s.stop()


@test
def start_status_cancel_and_ownership():
    s = Server(config=FAKE_REGISTRY, workers=1).start()
    ka, kb = s.token("alice"), s.token("bob")
    st, r = s.api("POST", "/build/start", ka, body())
    assert st == 200, r
    job = r["id"]
    assert r["job_name"] == f"build-alice-{job}"
    assert r["message"] == f"Build process initiated successfully. Job: build-alice-{job}"
    st, r = s.api("GET", f"/build/status?id={job}", ka)
    assert st == 200 and r["id"] == job and r["phase"] in ("Pending", "Running", "Failed"), r
    assert r["image"] == "127.0.0.1:5999/alice:t1"
    # bob does not see alice's job
    assert s.api("GET", f"/build/status?id={job}", kb)[0] == 404
    assert s.api("GET", f"/build/logs?id={job}", kb)[0] == 404
    assert s.api("DELETE", f"/build?id={job}", kb)[0] == 404
    # it ends (the source registry does not exist) with an error and a log
    r = s.wait_phase(ka, job, ("Failed", "Succeeded"))
    assert r["phase"] == "Failed" and r["error"] and r["completionTime"], r
    st, log = s.request("GET", f"{API}/build/logs?id={job}", auth=ka, raw=True)
    assert st == 200 and f"job {job}".encode() in log, log
    # following the log of an ended job gives the whole log and ends
    t0 = time.monotonic()
    st, followed = s.request("GET", f"{API}/build/logs?id={job}&follow=1", auth=ka, raw=True)
    assert st == 200 and followed == log and time.monotonic() - t0 < 5
    # a long login still makes a name of at most 63 characters
    kl = s.token("a" * 60)
    st, r = s.api("POST", "/build/start", kl, body(target="a" * 60 + ":t", file=None))
    assert st == 200 and len(r["job_name"]) <= 63, r
    # metrics count the jobs
    st, m = s.request("GET", "/metrics", raw=True)
    assert st == 200 and b'hoist_builds{state="failed"}' in m
    s.stop()


@test
def cleanup_keeps_recent_and_running():
    s = Server(config=FAKE_REGISTRY, workers=1).start()
    ka, kb = s.token("alice"), s.token("bob")
    jobs = []
    for i in range(3):
        st, r = s.api("POST", "/build/start", ka, body(target=f"alice:t{i}"))
        assert st == 200, r
        jobs.append(r["id"])
    st, r = s.api("POST", "/build/start", kb, body(target="bob:t0"))
    bobs = r["id"]
    for j in jobs:
        s.wait_phase(ka, j, ("Failed", "Succeeded"))
    s.wait_phase(kb, bobs, ("Failed", "Succeeded"))
    # two of alice's jobs and bob's are made 48 hours old
    db = sqlite3.connect(os.path.join(s.data, "jobs.db"))
    with db:
        db.execute("UPDATE jobs SET created = created - 48 * 3600 WHERE id IN (?, ?, ?)",
                   (jobs[0], jobs[1], bobs))
    db.close()
    st, r = s.api("POST", "/build/cleanup", ka, {"max_age_hours": "24"})
    assert st == 200 and r["message"] == "Cleaned up 2 jobs successfully.", r
    left = {b["id"] for b in s.api("GET", "/builds", ka)[1]["builds"]}
    assert left == {jobs[2]}, left
    assert sorted(os.listdir(os.path.join(s.data, "jobs"))) == sorted([jobs[2], bobs])
    # bob's old job is bob's business
    assert s.status(kb, bobs)["id"] == bobs
    # default age is 24 hours; 0 removes every finished job
    assert s.api("POST", "/build/cleanup", ka)[1]["message"] == "Cleaned up 0 jobs successfully."
    assert s.api("POST", "/build/cleanup", ka, {"max_age_hours": 0})[1]["message"] == \
        "Cleaned up 1 jobs successfully."
    s.stop()


@test
def couchdb_authenticator():
    url, put = couchdb_compat(work())
    put("/nuvolaris_subjects/alice", {"subject": "alice", "namespaces": [
        {"name": "alice", "uuid": "23bc46b1-71f6-4ed5-8c54-816aa4f8c502", "key": "k" * 64}]})
    put("/nuvolaris_subjects/bob", {"subject": "bob", "namespaces": [
        {"name": "bob", "uuid": "b0b", "key": "bobkey"}]})
    put("/nuvolaris_users_metadata/alice", {"login": "alice", "env": [
        {"key": "REGISTRY_HOST", "value": "127.0.0.1:5998"}]})
    s = Server(config={"auth": "couchdb", "couchdb_url": url,
                       "registry_host": "127.0.0.1:5999",
                       "allowed_sources": ["127.0.0.1:5999/base/*"]}, workers=1).start()
    key = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:" + "k" * 64
    for auth in (key, b64(key), "Basic " + b64(key)):
        st, r = s.api("GET", "/builds", auth)
        assert st == 200 and r["builds"] == [], (st, r)
    # a wrong key, an unknown uuid, a subject without user metadata
    for auth in ("23bc46b1-71f6-4ed5-8c54-816aa4f8c502:" + "j" * 64, "nope:" + "k" * 64,
                 "b0b:bobkey"):
        st, r = s.api("GET", "/builds", auth)
        assert (st, r["message"]) == (401, "Invalid authorization"), (auth, st, r)
    # the user's env names the registry
    st, r = s.api("POST", "/build/start", key, body(target="alice:c1"))
    assert st == 200, r
    assert s.status(key, r["id"])["image"] == "127.0.0.1:5998/alice:c1"
    s.stop()


SLOW = "#!/bin/sh\necho extending\nsleep 30\necho done > /extended\n"
FAST = "#!/bin/sh\necho extending\ncat /tmp/requirements.txt > /extended\n"


@test
def full_build_through_the_api():
    base = base_with_extend("fast", FAST)
    s = server()
    key = s.token("alice")
    wsk = os.path.join(s.data, "..", "wskprops")
    with open(wsk, "w") as f:
        f.write(f"AUTH={key}\nAPIHOST=http://127.0.0.1:{s.port}\n")
    req = os.path.join(s.data, "..", "requirements.txt")
    with open(req, "w") as f:
        f.write("flask==3.0\n")
    p = hoist("service", "send", "--source", base, "--target", "alice:py", "--kind", "python",
              "--file", req, env={"WSK_CONFIG_FILE": wsk}, timeout=300)
    assert "extending" in p.stdout, p.stdout
    image = p.stdout.strip().splitlines()[-1]
    assert image.startswith(f"{registry().host}/alice:py@sha256:"), image
    tags = hoist("tags", f"{registry().host}/alice").stdout.split()
    assert "py" in tags
    last = s.api("GET", "/builds", key)[1]["builds"][0]
    assert last["phase"] == "Succeeded" and last["digest"] == image.split("@")[1], last
    # the same build again: the layer comes from the build cache
    p2 = hoist("service", "send", "--source", base, "--target", "alice:py2", "--kind", "python",
               "--file", req, env={"WSK_CONFIG_FILE": wsk}, timeout=300)
    assert p2.stdout.strip().splitlines()[-1].split("@")[1] == image.split("@")[1], p2.stdout
    st, m = s.request("GET", "/metrics", raw=True)
    assert b"hoist_build_cache_hits_total 1" in m, m
    assert b'hoist_builds{state="succeeded"} 2' in m, m
    # logs and status verbs
    env = {"WSK_CONFIG_FILE": wsk}
    assert "extending" in hoist("service", "logs", last["id"], env=env).stdout
    assert "job" in hoist("service", "logs", env=env).stdout  # the latest build
    st = hoist("service", "status", last["id"], env=env).stdout
    assert "phase: Succeeded" in st, st
    # the old names still work for a release, with a note
    p = hoist("logs", last["id"], env=env)
    assert "extending" in p.stdout, p.stdout
    assert "'hoist logs' is deprecated" in p.stderr and "hoist service logs" in p.stderr, p.stderr
    # registry housekeeping, own namespace only
    assert hoist("service", "images", "list-catalogs", env=env).stdout.split() == ["alice"]
    assert "py" in hoist("service", "images", "list-images", "alice", env=env).stdout.split()
    m = json.loads(hoist("service", "images", "get-image", "alice:py", env=env).stdout)
    assert m["schemaVersion"] == 2
    assert hoist("service", "images", "get-image", "base/busybox:fast", env=env,
                 check=False).returncode == 1
    hoist("service", "images", "delete-image", "alice:py", env=env)
    assert "py" not in hoist("tags", f"{registry().host}/alice", check=False).stdout.split()


@test
def registry_cache_off_by_default_here_and_on_when_asked():
    base = base_with_extend("fast", FAST)
    cache = f"{registry().host}/alice/hoist-build-cache"
    for on in (None, True):
        cfg = {"registry_host": registry().host, "allowed_sources": [f"{registry().host}/base/*"]}
        if on is not None:
            cfg["registry_cache"] = on
        s = server(config=cfg)
        key = s.token("alice")
        st, r = s.api("POST", "/build/start", key,
                      body(source=base, target=f"alice:rc{on}", file=b64(f"rc {on}\n")))
        assert st == 200, r
        assert s.wait_phase(key, r["id"], ("Succeeded", "Failed"))["phase"] == "Succeeded"
        st, log = s.request("GET", f"{API}/build/logs?id={r['id']}", auth=key, raw=True)
        wrote = f"registry cache {cache}: entry".encode() in log
        assert wrote == bool(on), (on, log)
        s.stop()


@test
def concurrency_limit_and_sharing():
    base = base_with_extend("slow", SLOW)
    s = server(workers=8)
    keys = {u: s.token(u) for u in ("u1", "u2", "u3", "u4")}
    results = []

    def start(u, i):
        st, r = s.api("POST", "/build/start", keys[u],
                      body(source=base, target=f"{u}:t{i % 4}", file=b64(f"pkg{i % 4}\n")))
        results.append((u, st, r))

    threads = [threading.Thread(target=start, args=(u, i)) for u in keys for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 32 and all(st == 200 for _, st, _ in results), results
    # 8 requests per user, 4 distinct: identical ones share a job
    for u in keys:
        ids = {r["id"] for uu, _, r in results if uu == u}
        assert len(ids) == 4, (u, ids)
    # at most 2 running per user, however many workers are idle
    for _ in range(20):
        for u, k in keys.items():
            running = [b for b in s.api("GET", "/builds", k)[1]["builds"]
                       if b["state"] == "running"]
            assert len(running) <= 2, (u, running)
        time.sleep(0.1)
    wait_for(lambda: sum(1 for k in keys.values() for b in s.api("GET", "/builds", k)[1]["builds"]
                         if b["state"] == "running") == 8, timeout=60, what="8 running")
    # cancel everything: running builds are killed, queued ones never start
    for k in keys.values():
        for b in s.api("GET", "/builds", k)[1]["builds"]:
            st, r = s.api("DELETE", f"/build?id={b['id']}", k)
            assert st in (200, 409), r
    for k in keys.values():
        for b in s.api("GET", "/builds", k)[1]["builds"]:
            r = s.wait_phase(k, b["id"], ("Failed", "Succeeded"), timeout=60)
            assert r["state"] == "canceled", r


@test
def cleanup_while_building():
    base = base_with_extend("slow", SLOW)
    s = server(workers=2)
    key = s.token("alice")
    st, r = s.api("POST", "/build/start", key, body(source=base, target="alice:run"))
    running = r["id"]
    st, r = s.api("POST", "/build/start", key, body(target="alice:gone"))  # fails at once
    failed = r["id"]
    s.wait_phase(key, running, ("Running",))
    s.wait_phase(key, failed, ("Failed",))
    db = sqlite3.connect(os.path.join(s.data, "jobs.db"))
    with db:
        db.execute("UPDATE jobs SET created = created - 100 * 3600")
    db.close()
    st, r = s.api("POST", "/build/cleanup", key, {"max_age_hours": 1})
    assert st == 200 and r["message"] == "Cleaned up 1 jobs successfully.", r
    assert s.status(key, running)["state"] == "running"
    assert os.listdir(os.path.join(s.data, "jobs")) == [running]
    s.api("DELETE", f"/build?id={running}", key)
    assert s.wait_phase(key, running, ("Failed",))["state"] == "canceled"
    s.stop()


@test
def restart_after_sigkill():
    base = base_with_extend("slow", SLOW)
    for policy, want in (("fail", "failed"), ("requeue", "running")):
        data = tmpdir("hoist-serve-")
        cfg = {"registry_host": registry().host, "on_restart": policy,
               "allowed_sources": [f"{registry().host}/base/*"]}
        s = Server(data=data, workers=1, config=cfg).start()
        key = s.token("alice")
        st, r = s.api("POST", "/build/start", key, body(source=base, target="alice:slow"))
        job = r["id"]
        s.wait_phase(key, job, ("Running",))
        s.stop(signal.SIGKILL)
        db = sqlite3.connect(os.path.join(data, "jobs.db"))
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
        s2 = Server(data=data, workers=1, config=cfg).start()
        r = s2.status(key, job)
        if want == "failed":
            assert r["state"] == "failed" and r["error"] == "server restarted", r
        else:
            r = s2.wait_phase(key, job, ("Running",))
        # a new build runs
        st, r2 = s2.api("POST", "/build/start", key,
                        body(source=base_with_extend("fast", FAST), target="alice:after"))
        if want == "running":
            s2.api("DELETE", f"/build?id={job}", key)
        r2 = s2.wait_phase(key, r2["id"], ("Succeeded", "Failed"), timeout=120)
        assert r2["phase"] == "Succeeded", r2
        s2.stop()


if __name__ == "__main__":
    main()
