#!/usr/bin/env python3
"""hoist serve --executor kubernetes against the contract fake of the Kubernetes API server
(kubefake.py: a test double, no cluster runs here). The fake plays the Job controller by
running the pod's `hoist build` on this machine, so the whole path is real but the cluster:
`hoist service send` -> the service -> a Job and the Secret it owns -> `hoist build` ->
pushed to a real registry (docker-registry) -> the digest from the termination message ->
status Succeeded -> the log -> the Job and its Secret deleted. Then the faults: a watch
dropped mid-build, a 410 relist, a Job failed by its deadline, the API server unreachable,
the kubeconfig's token file rotated mid-build, a service killed mid-build whose requeued
job adopts its Job (409 on create).
"""
import base64
import json
import os
import signal
import subprocess

from hoisttest import (HOIST, LooseServer, Registry, SOURCE_ROOT, Server, Skip, busybox_with_extend,
                       hoist, main, on_exit, run, sleepers, test, tmpdir, wait_for)
import kubefake

FIXTURES = os.path.join(SOURCE_ROOT, "tests", "fixtures")
IMAGE = "registry.local/hoist:test"
MANAGED = "app.kubernetes.io/managed-by=hoist"
NS = "builds"
_state = {}

FAST = "#!/bin/sh\necho extending\ncat /tmp/requirements.txt > /extended\n"
SLOW = "#!/bin/sh\necho extending\nsleep 4\necho extended\necho done > /extended\n"
# held until the test ends its `sleep 2101` (sleepers() finds it on this machine)
HELD = "#!/bin/sh\necho extending\nsleep 2101\necho released\necho done > /extended\n"
GATED = ("#!/bin/sh\necho extending\nwhile [ ! -e /tmp/requirements.txt ] || "
         "! grep -q go /tmp/requirements.txt; do sleep 0.05; done\necho done > /extended\n")


def work():
    if "work" not in _state:
        _state["work"] = tmpdir("hoist-serve-kube-")
        os.environ["HOIST_IMAGES"] = os.path.join(_state["work"], "images")
    return _state["work"]


def registry():
    if "reg" not in _state:
        _state["reg"] = Registry(work()).start()
    return _state["reg"]


def fake():
    if "fake" not in _state:
        d = os.path.join(work(), "kube")
        os.makedirs(d)
        k = kubefake.KubeFake(d, entrypoints={IMAGE: [HOIST]}).start()
        on_exit(k.stop)
        _state.update(fake=k, kubeconfig=k.kubeconfig(os.path.join(d, "config"), namespace=NS))
    return _state["fake"]


def base_with_extend(tag, script):
    """busybox + an executable /bin/extend, pushed to the test registry."""
    if not os.path.exists(os.path.join(FIXTURES, "busybox-image.sh")):
        raise Skip("no busybox fixture")
    return busybox_with_extend(_state, work(), registry().host, tag, script)


def server(executor=None, settings=None, **kw):
    fake()
    cfg = {"registry_host": registry().host, "per_user_limit": 4,
           "allowed_sources": [f"{registry().host}/base/*"],
           "build_process_sandbox": False,
           "executor": {"kind": "kubernetes", "image": IMAGE, "namespace": NS,
                        "kubeconfig": _state["kubeconfig"], "ttl_seconds_after_finished": 300,
                        "pod_security": "userns",
                        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"},
                                      "limits": {"memory": "2Gi"}}}}
    cfg["executor"].update(executor or {})
    cfg.update(settings or {})
    return Server(config=cfg, workers=2, **kw).start()


def hoist_objects(plural, gv="v1"):
    return fake().list(gv, plural, NS, MANAGED)


def send(s, key, base, target, req_text):
    wsk = os.path.join(s.data, "..", "wskprops")
    with open(wsk, "w") as f:
        f.write(f"AUTH={key}\nAPIHOST=http://127.0.0.1:{s.port}\n")
    req = os.path.join(s.data, "..", "requirements.txt")
    with open(req, "w") as f:
        f.write(req_text)
    return hoist("service", "send", "--source", base, "--target", target, "--kind", "python",
                 "--file", req, env={"WSK_CONFIG_FILE": wsk}, timeout=300, check=False)


@test
def a_build_runs_as_a_job_end_to_end():
    base = base_with_extend("fast", FAST)
    s = server()
    key = s.token("alice")
    p = send(s, key, base, "alice:k1", "flask==3.0\n")
    assert p.returncode == 0, (p.stdout, p.stderr, open(s.log.name).read()[-3000:])
    assert "extending" in p.stdout, p.stdout
    image = p.stdout.strip().splitlines()[-1]
    assert image.startswith(f"{registry().host}/alice:k1@sha256:"), image
    # the registry has it, with that digest (an independent client's view)
    tags = hoist("tags", f"{registry().host}/alice").stdout.split()
    assert "k1" in tags, tags
    last = s.api("GET", "/builds", key)[1]["builds"][0]
    assert last["phase"] == "Succeeded" and last["digest"] == image.split("@")[1], last
    st, log = s.request("GET", f"/system/api/v1/build/logs?id={last['id']}", auth=key, raw=True)
    assert st == 200 and b"extending" in log, log
    # what the service created, as the fake saw it: schema-valid, then all deleted
    assert not fake().invalid, fake().invalid
    wait_for(lambda: not hoist_objects("jobs", "batch/v1") and not hoist_objects("secrets")
             and not hoist_objects("pods"), what="the Job, its pod and its Secret deleted")
    kc = kubefake.kubectl()
    if kc:
        out = run(kc, "--kubeconfig", _state["kubeconfig"], "-n", NS, "get", "jobs", "-l",
                  MANAGED, "-o", "json").stdout
        assert json.loads(out)["items"] == [], out
    s.stop()


@test
def a_pod_with_an_empty_cache_hits_the_registry_cache():
    # each pod starts with no cache of its own: the second identical build (another
    # target) finds the layer in the user's registry cache and runs no install
    base = base_with_extend("fast", FAST)
    s = server()
    key = s.token("alice")
    file = base64.b64encode(b"flask==3.0\n# registry cache\n").decode()
    runs = []
    for tag in ("rc1", "rc2"):
        st, r = s.api("POST", "/build/start", key,
                      {"source": base, "target": f"alice:{tag}", "kind": "python", "file": file})
        assert st == 200, r
        r, log = finished(s, key, r["id"])
        assert r["phase"] == "Succeeded", (r, log)
        runs.append((r, log))
    (r1, log1), (r2, log2) = runs
    cache = f"{registry().host}/alice/hoist-build-cache"
    assert b"extending" in log1 and f"registry cache {cache}: entry".encode() in log1, log1
    assert b"extending" not in log2 and f" in {cache}: layer".encode() in log2, log2
    # the catalog lists images: the cache is left out, yet its tags (the keys) answer
    st, r = s.api("GET", "/registry/catalog", key)
    assert st == 200 and "alice" in r["repositories"], r
    assert "alice/hoist-build-cache" not in r["repositories"], r
    st, r = s.api("GET", "/registry/tags?image=alice/hoist-build-cache", key)
    assert st == 200 and r["tags"], r
    assert all(len(t) == 64 and int(t, 16) >= 0 for t in r["tags"]), r
    s.stop()


@test
def the_job_the_service_made():
    """The Job's shape: name, labels, the arguments of the local executor (with the
    attestations the config asks for, naming the user), the Secret mounted and owned by
    the Job; captured while the build waits."""
    base = base_with_extend("gated", GATED)
    s = server(settings={"attestations": True, "attest_mode": "referrer"})
    key = s.token("alice")
    st, r = s.api("POST", "/build/start", key,
                  {"source": base, "target": "alice:k2", "kind": "python",
                   "file": "Zmxhc2s9PTMuMAo="})  # no "go" in it: the extend waits
    assert st == 200, r
    job_id = r["id"]
    name = f"hoist-build-{job_id}"
    wait_for(lambda: fake().get("v1", "secrets", NS, name), what="the Secret")
    job = fake().get("batch/v1", "jobs", NS, name)
    labels = job["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "hoist", labels
    assert job["spec"]["backoffLimit"] == 0
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert c["args"][:2] == ["build", "--source"], c["args"]
    assert "--no-process-sandbox" in c["args"] and "--termination-log" in c["args"], c["args"]
    # the registry cache is the Kubernetes executor's default: the user's, beside the target
    cache = f"{registry().host}/alice/hoist-build-cache"
    a = c["args"]
    assert a[a.index("--cache-from") + 1] == cache and a[a.index("--cache-to") + 1] == cache, a
    assert "--provenance" in a and "--sbom" in a, a
    assert a[a.index("--attest-mode") + 1] == "referrer", a
    assert a[a.index("--requested-by") + 1] == "alice", a
    assert c["resources"]["requests"]["cpu"] == "500m", c["resources"]
    sec = fake().get("v1", "secrets", NS, name)
    owner = sec["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Job", name, job["metadata"]["uid"])
    assert set(sec["data"]) == {"auth.json", "requirements.txt"}, sec["data"].keys()
    # cancel: the Job deleted, the Secret with it
    st, r = s.api("DELETE", f"/build?id={job_id}", key)
    assert st == 200, r
    assert s.wait_phase(key, job_id, ("Failed",))["state"] == "canceled"
    wait_for(lambda: not fake().get("batch/v1", "jobs", NS, name) and
             not fake().get("v1", "secrets", NS, name), what="the canceled Job deleted")
    s.stop()


def unique_file(target):
    """A requirement file of its own (no build cache hit: the install runs)."""
    return base64.b64encode(f"flask==3.0\n# {target}\n".encode()).decode()


def job_lists(job_id):
    """How often the service listed its Job (a start, or a relist after 410)."""
    return sum(1 for m, path in fake().requests
               if m == "GET" and "/jobs?" in path and f"job-id%3D{job_id}" in path.replace(
                   "=", "%3D") and "watch" not in path)


def start_slow(s, key, target, base=None):
    st, r = s.api("POST", "/build/start", key,
                  {"source": base or base_with_extend("slow", SLOW), "target": target,
                   "kind": "python", "file": unique_file(target)})
    assert st == 200, r
    job_id = r["id"]
    name = f"hoist-build-{job_id}"
    # the container runs (the service's watch and log stream are open)
    wait_for(lambda: any(fake().pod_running(p["metadata"]["uid"])
                         for p in fake().list("v1", "pods", NS, f"job-name={name}")),
             timeout=60, what="the build's container running")
    wait_for(lambda: b"extending" in s.request(
        "GET", f"/system/api/v1/build/logs?id={job_id}", auth=key, raw=True)[1],
        timeout=60, what="the build's first line in the job's log")
    return job_id, name


def finished(s, key, job_id):
    r = s.wait_phase(key, job_id, ("Succeeded", "Failed"), timeout=120)
    st, log = s.request("GET", f"/system/api/v1/build/logs?id={job_id}", auth=key, raw=True)
    return r, log


@test
def a_watch_dropped_mid_build_resumes():
    s = server()
    key = s.token("alice")
    job_id, name = start_slow(s, key, "alice:drop")
    lists = job_lists(job_id)
    fake().drop_watches()
    r, log = finished(s, key, job_id)
    assert r["phase"] == "Succeeded" and r["digest"].startswith("sha256:"), (r, log)
    assert b"extended" in log, log
    assert job_lists(job_id) == lists, "a dropped watch resumes without a relist"
    s.stop()


@test
def a_410_after_compaction_relists():
    s = server()
    key = s.token("alice")
    job_id, name = start_slow(s, key, "alice:gone")
    lists = job_lists(job_id)
    fake().expire()
    r, log = finished(s, key, job_id)
    assert r["phase"] == "Succeeded" and r["digest"].startswith("sha256:"), (r, log)
    assert job_lists(job_id) > lists, "no relist after 410"
    s.stop()


@test
def a_job_failed_by_its_deadline():
    s = server(executor={"active_deadline_seconds": 2})
    key = s.token("alice")
    st, r = s.api("POST", "/build/start", key,
                  {"source": base_with_extend("slow", SLOW), "target": "alice:late",
                   "kind": "python", "file": "Zmxhc2s9PTMuMAo="})
    assert st == 200, r
    r, log = finished(s, key, r["id"])
    assert r["phase"] == "Failed" and "DeadlineExceeded" in r.get("error", ""), (r, log)
    assert b"extended" not in log, log
    wait_for(lambda: not hoist_objects("jobs", "batch/v1") and not hoist_objects("secrets"),
             what="the failed Job and its Secret deleted")
    s.stop()


def pod_log_file(name):
    """The local file the fake writes the running pod's log to (kept after the pod goes)."""
    pod = fake().list("v1", "pods", NS, f"job-name={name}")[0]
    return pod["metadata"]["annotations"]["kubefake/log"]


def answered(since, method, path_end, code):
    """How many requests since that index in the fake's responses got code."""
    return sum(1 for m, p, c in fake().responses[since:]
               if m == method and p.split("?")[0].endswith(path_end) and c == code)


@test
def a_token_file_rotated_mid_build():
    """The kubeconfig names a tokenFile. While a build runs, the token is replaced as the
    kubelet replaces a bound token (a new file renamed into place) and the old one revoked
    at once; the watch is cut, so its next request needs the new token. The build's end,
    its log and the cleanup go on with the new one."""
    k = fake()
    d = tmpdir()
    token_file = os.path.join(d, "token")

    def put_token(t):
        tmp = token_file + ".new"
        with open(tmp, "w") as f:
            f.write(t + "\n")
        os.rename(tmp, token_file)

    put_token("rotating-1")
    k.tokens.add("rotating-1")
    on_exit(lambda: k.tokens.difference_update({"rotating-1", "rotating-2"}))
    cfg = k.kubeconfig(os.path.join(d, "config"), namespace=NS,
                       extra_user={"tokenFile": token_file})
    s = server(executor={"kubeconfig": cfg})
    key = s.token("alice")
    job_id, name = start_slow(s, key, "alice:rotated")
    pod_log = pod_log_file(name)
    k.tokens.add("rotating-2")
    put_token("rotating-2")
    k.tokens.discard("rotating-1")
    mark = len(k.responses)
    k.drop_watches()
    r, log = finished(s, key, job_id)
    assert r["phase"] == "Succeeded" and r["digest"].startswith("sha256:"), (r, log)
    with open(pod_log, "rb") as f:
        last = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    assert b"extended" in log and last in log, (last, log)
    wait_for(lambda: not hoist_objects("jobs", "batch/v1") and not hoist_objects("secrets")
             and not hoist_objects("pods"), what="the Job, its pod and its Secret deleted")
    # after the rotation: the watch opened again, the pod read, the Job deleted, all
    # answered (so with the new token); a request that raced the rotation with the old
    # token is refused once and then succeeds (the token file read again)
    after = k.responses[mark:]
    assert any(m == "GET" and "watch=1" in p and c == 200 for m, p, c in after), after
    assert answered(mark, "GET", "/pods", 200), after
    assert answered(mark, "DELETE", f"/jobs/{name}", 200) == 1, after
    for i, (m, p, c) in enumerate(after):
        if c == 401:
            assert any((m2, p2) == (m, p) and c2 < 300 for m2, p2, c2 in after[i + 1:]), after
    s.stop()


@test
def a_requeued_claim_adopts_its_job():
    """The service is killed while its build's Job runs; started again on the same data
    directory (on_restart: requeue) it claims the job again, its Job create answers 409
    and it adopts that Job (and its Secret): one Job ever made, the build ends there."""
    base = base_with_extend("held", HELD)
    before = set(sleepers("2101"))  # an earlier run's, left by a failure

    def release():
        for pid in (set(sleepers("2101")) - before):
            os.kill(int(pid), signal.SIGTERM)

    on_exit(release)  # a failure here leaves no build held
    s = server(settings={"on_restart": "requeue"})
    key = s.token("alice")
    job_id, name = start_slow(s, key, "alice:adopted", base)
    wait_for(lambda: set(sleepers("2101")) - before, what="the build held")
    job = fake().get("batch/v1", "jobs", NS, name)
    pod = fake().list("v1", "pods", NS, f"job-name={name}")[0]
    pod_log = pod_log_file(name)
    mark = len(fake().responses)
    s.stop(signal.SIGKILL)
    assert fake().pod_running(pod["metadata"]["uid"]), "the pod went with the service"
    s = server(settings={"on_restart": "requeue"}, data=s.data)
    wait_for(lambda: answered(mark, "POST", "/jobs", 409), timeout=60,
             what="the requeued job's Job create answered 409")
    wait_for(lambda: answered(mark, "POST", "/secrets", 409), what="its Secret adopted too")
    assert s.status(key, job_id)["phase"] == "Running", s.status(key, job_id)
    release()
    r, log = finished(s, key, job_id)
    assert r["phase"] == "Succeeded" and r["digest"].startswith("sha256:"), (r, log)
    with open(pod_log, "rb") as f:
        last = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    assert b"released" in log and last in log, (last, log)
    assert answered(mark, "POST", "/jobs", 201) == 0, fake().responses[mark:]
    assert answered(mark, "POST", "/secrets", 201) == 0, fake().responses[mark:]
    made = [o["metadata"]["uid"] for _, _, p, _, typ, o in fake().events
            if (p, typ) == ("jobs", "ADDED") and o["metadata"]["name"] == name]
    assert made == [job["metadata"]["uid"]], made
    wait_for(lambda: not fake().get("batch/v1", "jobs", NS, name) and
             not fake().get("v1", "secrets", NS, name), what="the adopted Job and Secret deleted")
    s.stop()


@test
def healthz_while_the_api_server_is_unreachable():
    # unreachable at start: the service runs, /healthz says why
    d = os.path.join(work(), "kube-gone")
    os.makedirs(d)
    other = kubefake.KubeFake(d, validate=False).start()
    on_exit(other.stop)
    cfg_path = other.kubeconfig(os.path.join(d, "config"), namespace=NS)
    other.stop()
    cfg = {"registry_host": registry().host, "build_process_sandbox": False,
           "executor": {"kind": "kubernetes", "image": IMAGE, "kubeconfig": cfg_path}}
    s = LooseServer(config=cfg, workers=1).start()
    st, r = s.request("GET", "/healthz")
    assert st == 503 and "Kubernetes" in r["message"], (st, r)
    s.stop()
    # reachable at start, then gone: 503 within the probe's period
    d2 = os.path.join(work(), "kube-later")
    os.makedirs(d2)
    later = kubefake.KubeFake(d2, validate=False).start()
    on_exit(later.stop)
    cfg["executor"]["kubeconfig"] = later.kubeconfig(os.path.join(d2, "config"), namespace=NS)
    s = LooseServer(config=cfg, workers=1).start()
    wait_for(lambda: s.request("GET", "/healthz")[0] == 200, what="healthy")
    later.stop()
    wait_for(lambda: s.request("GET", "/healthz")[0] == 503, timeout=30, what="503")
    s.stop()


if __name__ == "__main__":
    main()
