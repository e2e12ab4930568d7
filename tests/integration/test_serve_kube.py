#!/usr/bin/env python3
"""hoist serve --executor kubernetes against the contract fake of the Kubernetes API server
(kubefake.py: a test double, no cluster runs here). The fake plays the Job controller by
running the pod's `hoist build` on this machine, so the whole path is real but the cluster:
`hoist service send` -> the service -> a Job and the Secret it owns -> `hoist build` ->
pushed to a real registry (docker-registry) -> the digest from the termination message ->
status Succeeded -> the log -> the Job and its Secret deleted. Then the faults: a watch
dropped mid-build, a 410 relist, a Job failed by its deadline, the API server unreachable.
"""
import json
import os
import subprocess

from hoisttest import (HOIST, SOURCE_ROOT, Registry, Server, Skip, hoist, main, on_exit, run,
                       test, tmpdir, wait_for)
import kubefake

FIXTURES = os.path.join(SOURCE_ROOT, "tests", "fixtures")
IMAGE = "registry.local/hoist:test"
MANAGED = "app.kubernetes.io/managed-by=hoist"
NS = "builds"
_state = {}

FAST = "#!/bin/sh\necho extending\ncat /tmp/requirements.txt > /extended\n"
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
    key = ("base", tag)
    if key not in _state:
        if "busybox" not in _state:
            out = os.path.join(work(), "busybox")
            run("bash", os.path.join(FIXTURES, "busybox-image.sh"), HOIST, out, "latest")
            _state["busybox"] = out
        d = tmpdir()
        path = os.path.join(d, "extend")
        with open(path, "w") as f:
            f.write(script)
        os.chmod(path, 0o755)
        ref = f"{registry().host}/base/busybox:{tag}"
        hoist("append", f"oci:{_state['busybox']}:latest", "--target", ref, "--map",
              f"{path}:/bin/extend")
        _state[key] = ref
    return _state[key]


def server(executor=None, **kw):
    fake()
    cfg = {"registry_host": registry().host, "per_user_limit": 4,
           "allowed_sources": [f"{registry().host}/base/*"],
           "build_process_sandbox": False,
           "executor": {"kind": "kubernetes", "image": IMAGE, "namespace": NS,
                        "kubeconfig": _state["kubeconfig"], "ttl_seconds": 300,
                        "pod_security": "userns",
                        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"},
                                      "limits": {"memory": "2Gi"}}}}
    cfg["executor"].update(executor or {})
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
def the_job_the_service_made():
    """The Job's shape: name, labels, the arguments of the local executor, the Secret
    mounted and owned by the Job; captured while the build waits."""
    base = base_with_extend("gated", GATED)
    s = server()
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


if __name__ == "__main__":
    main()
