#!/usr/bin/env python3
"""hoist serve as a drop-in for the OpenServerless deployer, on the contract fake of the
Kubernetes API server (kubefake.py: a test double, no cluster runs here) holding what an
OpenServerless cluster holds in its namespace `nuvolaris`: ConfigMap `config` with the
`registry_host` annotation, the Secret `registry-pull-secret` and a user's own
dockerconfigjson Secret. The users and their env come from a CouchDB-compatible server
(express-pouchdb, as in test_serve); each build runs as a Job (the Kubernetes executor) and
pushes to a real registry (docker-registry) that wants a password.
"""
import base64
import json
import os

from hoisttest import (API, HOIST, LooseServer, Registry, SOURCE_ROOT, Server, Skip, couchdb_compat,
                       hoist, main, on_exit, run, test, tmpdir)
import kubefake

FIXTURES = os.path.join(SOURCE_ROOT, "tests", "fixtures")
IMAGE = "registry.local/hoist:test"
NS = "nuvolaris"
FAST = "#!/bin/sh\necho extending\ncat /tmp/requirements.txt > /extended\n"
PLATFORM = ("platform", "platform-pw")  # registry-pull-secret's, as the operator made it
BOB = ("bob", "bob-pw")  # bob's own Secret's
_state = {}


def b64(s):
    return base64.b64encode(s.encode()).decode()


def work():
    if "work" not in _state:
        _state["work"] = tmpdir("hoist-serve-ops-")
        os.environ["HOIST_IMAGES"] = os.path.join(_state["work"], "images")
    return _state["work"]


def registries():
    """Two registries wanting a password: the platform's, and another a user names."""
    if "regs" not in _state:
        users = dict([PLATFORM, BOB])
        _state["regs"] = [Registry(work(), auth="htpasswd", users=users).start()
                          for _ in range(2)]
    return _state["regs"]


def base():
    """busybox + /bin/extend in the platform's registry (pulled with the push credentials)."""
    if "base" not in _state:
        if not os.path.exists(os.path.join(FIXTURES, "busybox-image.sh")):
            raise Skip("no busybox fixture")
        out = os.path.join(work(), "busybox")
        run("bash", os.path.join(FIXTURES, "busybox-image.sh"), HOIST, out, "latest")
        path = os.path.join(work(), "extend")
        with open(path, "w") as f:
            f.write(FAST)
        os.chmod(path, 0o755)
        for reg in registries():
            hoist("append", f"oci:{out}:latest", "--target", f"{reg.host}/base/busybox:fast",
                  "--map", f"{path}:/bin/extend", "--creds", ":".join(PLATFORM))
        _state["base"] = "base/busybox:fast"
    return _state["base"]


def dockerconfig(name, hosts, user):
    auth = {"auths": {h: {"auth": b64(":".join(user))} for h in hosts}}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": b64(json.dumps(auth))}}


def configmap(host):
    meta = {"name": "config"}
    if host:
        meta["annotations"] = {"registry_host": host, "apihost": "https://api.example"}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {}}


def cluster():
    """The fake with the platform's objects, and the users in CouchDB:
    alice (nothing set), bob (REGISTRY_SECRET: his Secret), carol (userenv over env:
    the second registry with user:password), dave (a Secret that does not exist)."""
    if "fake" not in _state:
        d = os.path.join(work(), "kube")
        os.makedirs(d)
        k = kubefake.KubeFake(d, entrypoints={IMAGE: [HOIST]}).start()
        on_exit(k.stop)
        _state.update(fake=k, kubeconfig=k.kubeconfig(os.path.join(d, "config"), namespace=NS))
        first, second = registries()
        k.add("v1", "configmaps", NS, configmap(first.host))
        k.add("v1", "secrets", NS,
              dockerconfig("registry-pull-secret", [first.host, second.host], PLATFORM))
        k.add("v1", "secrets", NS, dockerconfig("bob-registry", [first.host], BOB))
        url, put = couchdb_compat(work())
        keys = {}
        envs = {"alice": {},
                "bob": {"env": [{"key": "REGISTRY_SECRET", "value": "bob-registry"}]},
                "carol": {"env": [{"key": "REGISTRY_HOST", "value": first.host}],
                          "userenv": [{"key": "REGISTRY_HOST", "value": second.host},
                                      {"key": "REGISTRY_SECRET", "value": ":".join(BOB)}]},
                "dave": {"env": {"REGISTRY_SECRET": "nope"}}}
        for user, env in envs.items():
            uuid, key = f"{user}-uuid", f"{user}-key"
            put(f"/nuvolaris_subjects/{user}", {"subject": user, "namespaces": [
                {"name": user, "uuid": uuid, "key": key}]})
            put(f"/nuvolaris_users_metadata/{user}", dict(login=user, **env))
            keys[user] = f"{uuid}:{key}"
        _state.update(couch=url, keys=keys)
    return _state["fake"]


def server(ops=True, **kw):
    cluster()
    cfg = {"auth": "couchdb", "couchdb_url": _state["couch"], "per_user_limit": 4,
           "allowed_sources": [f"{r.host}/base/*" for r in registries()],
           "build_process_sandbox": False,
           "executor": {"kind": "kubernetes", "image": IMAGE, "namespace": NS,
                        "kubeconfig": _state["kubeconfig"]}}
    if ops is not None:
        cfg["openserverless"] = ops
    cfg.update(kw)
    return Server(config=cfg, workers=2).start()


def build(s, user, target, reg=None):
    """Starts a build of the base in reg (the platform's registry) and waits for its end."""
    key = _state["keys"][user]
    source = f"{(reg or registries()[0]).host}/{base()}"
    st, r = s.api("POST", "/build/start", key,
                  {"source": source, "target": target, "kind": "python",
                   "file": b64(f"flask\n# {target}\n")})
    assert st == 200, (st, r)
    r = s.wait_phase(key, r["id"], ("Succeeded", "Failed"), timeout=180)
    st, log = s.request("GET", f"{API}/build/logs?id={r['id']}", auth=key, raw=True)
    assert st == 200, (st, log)
    return r, log


def tags(reg, repo):
    p = hoist("tags", f"{reg.host}/{repo}", "--creds", ":".join(PLATFORM), check=False)
    return p.stdout.split()


@test
def registry_and_credentials_as_the_deployer_resolves_them():
    first, second = registries()
    base()
    s = server()
    # alice: the ConfigMap's registry, the pull secret's credentials
    r, log = build(s, "alice", "alice:ops1")
    assert r["phase"] == "Succeeded", (r, log)
    assert r["image"] == f"{first.host}/alice:ops1", r
    assert "ops1" in tags(first, "alice")
    # bob's own Secret is used, not the pull secret: the pull secret broken, his build works
    cluster().replace("v1", "secrets", NS,
                      dockerconfig("registry-pull-secret", [first.host, second.host],
                                  ("platform", "wrong")))
    r, log = build(s, "bob", "bob:ops2")
    assert r["phase"] == "Succeeded", (r, log)
    assert "ops2" in tags(first, "bob")
    # ... and alice's now fails, refused by the registry with the broken pull secret
    r, log = build(s, "alice", "alice:ops3")
    assert r["phase"] == "Failed" and "ops3" not in tags(first, "alice"), (r, log)
    assert b"401" in log or b"unauthorized" in log.lower() or b"authentication" in log.lower(), log
    cluster().replace("v1", "secrets", NS,
                      dockerconfig("registry-pull-secret", [first.host, second.host], PLATFORM))
    # carol: userenv over env picks the second registry; user:password are her credentials
    r, log = build(s, "carol", "carol:ops4", reg=second)
    assert r["phase"] == "Succeeded" and r["image"] == f"{second.host}/carol:ops4", (r, log)
    assert "ops4" in tags(second, "carol")
    # dave names a Secret that is not there: his build fails and says which
    r, log = build(s, "dave", "dave:ops5")
    assert r["phase"] == "Failed", r
    assert "registry Secret nuvolaris/nope is not configured" in r.get("error", "") + log.decode(), \
        (r, log)
    st, r = s.api("GET", "/registry/catalog", _state["keys"]["dave"])
    assert st == 502 and "registry Secret nuvolaris/nope is not configured" in r["message"], \
        (st, r)
    # the ConfigMap is read for each build: a new annotation moves the next one
    cluster().replace("v1", "configmaps", NS, configmap(second.host))
    r, log = build(s, "alice", "alice:ops6", reg=second)
    assert r["phase"] == "Succeeded" and r["image"] == f"{second.host}/alice:ops6", (r, log)
    cluster().replace("v1", "configmaps", NS, configmap(first.host))
    # housekeeping goes to the same registry with the same credentials
    key = _state["keys"]["alice"]
    st, r = s.api("GET", "/registry/catalog", key)
    assert st == 200 and r["repositories"] == ["alice"], (st, r)
    st, r = s.api("GET", "/registry/tags?image=alice", key)
    assert st == 200 and "ops1" in r["tags"], (st, r)
    st, r = s.api("DELETE", "/registry/manifest?image=alice:ops1", key)
    assert st == 200, (st, r)
    assert "ops1" not in tags(first, "alice")
    assert not cluster().invalid, cluster().invalid
    s.stop()


@test
def detected_from_the_configmap_and_turned_off_by_the_config():
    first, second = registries()
    cluster()
    # no openserverless key: the API server at hand has ConfigMap config, so it is on
    s = server(ops=None)
    st, r = s.api("POST", "/build/start", _state["keys"]["alice"],
                  {"source": f"{first.host}/{base()}", "target": "alice:det",
                   "kind": "python", "file": b64("flask\n# det\n")})
    assert st == 200, (st, r)
    assert s.status(_state["keys"]["alice"], r["id"])["image"] == f"{first.host}/alice:det"
    s.stop()
    # openserverless false: no registry at all, the embedded layout
    s = server(ops=False)
    st, r = s.api("POST", "/build/start", _state["keys"]["alice"],
                  {"source": f"{first.host}/{base()}", "target": "alice:off",
                   "kind": "python", "file": b64("flask\n# off\n")})
    assert st == 200, (st, r)
    assert s.status(_state["keys"]["alice"], r["id"])["image"].startswith("oci:"), r
    s.stop()


@test
def the_api_server_unreachable_is_a_503():
    first, _ = registries()
    cluster()
    d = os.path.join(work(), "kube-gone")
    os.makedirs(d)
    gone = kubefake.KubeFake(d, validate=False).start()
    on_exit(gone.stop)
    cfg_path = gone.kubeconfig(os.path.join(d, "config"), namespace=NS)
    gone.stop()
    cfg = {"auth": "couchdb", "couchdb_url": _state["couch"], "openserverless": True,
           "allowed_sources": [f"{first.host}/base/*"], "build_process_sandbox": False,
           "executor": {"kind": "kubernetes", "image": IMAGE, "kubeconfig": cfg_path}}
    s = LooseServer(config=cfg, workers=1).start()
    key = _state["keys"]["alice"]
    st, r = s.api("POST", "/build/start", key,
                  {"source": f"{first.host}/base/busybox:fast", "target": "alice:gone",
                   "kind": "python", "file": b64("flask\n")})
    assert (st, r["message"]) == (503, "The Kubernetes API server is unreachable; retry later."), \
        (st, r)
    st, r = s.api("GET", "/registry/catalog", key)
    assert st == 503, (st, r)
    s.stop()


if __name__ == "__main__":
    main()
