"""deploy/kubernetes/ and its OpenServerless overlay deploy/openserverless/: the manifests
hoist ships, as kustomize renders them, checked against the Kubernetes JSON schemas of the
npm package kubernetes-models and against hoist's own rules for what the schemas miss: names of at most 63 characters, procMount Unmasked only with
hostUsers false, nothing privileged (hoist_kube_job_check, through kube_tool), and the
service's Role granting exactly what the Kubernetes executor uses. No cluster runs here:
nothing is applied.
"""
import json
import os
import re

import yaml

from hoisttest import SOURCE_ROOT, Skip, hoist, main, run, test, tmpdir
import kubefake

TOOL = os.environ.get("HOIST_KUBE_TOOL", "kube_tool")
DIR = os.path.join(SOURCE_ROOT, "deploy", "kubernetes")
OPS_DIR = os.path.join(SOURCE_ROOT, "deploy", "openserverless")  # the OpenServerless overlay
LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_state = {}


def validator():
    if "v" not in _state:
        _state["v"] = kubefake.Validator()
    return _state["v"]


def files():
    return sorted(f for f in os.listdir(DIR) if f.endswith(".yaml"))


def objects():
    """The objects of the manifests, one per file, without kustomize."""
    out = []
    for f in files():
        if f == "kustomization.yaml":
            continue
        with open(os.path.join(DIR, f)) as fh:
            out.extend(d for d in yaml.safe_load_all(fh) if d)
    return out


def rendered(d=DIR):
    """kubectl kustomize's output: what `kubectl apply -k` would send."""
    if not kubefake.kubectl():
        raise Skip("kubectl is not installed")
    p = run("kubectl", "kustomize", d, timeout=120)
    return [d for d in yaml.safe_load_all(p.stdout) if d]


def grants(role):
    return {(g, res, v, tuple(r.get("resourceNames") or ())) for r in role["rules"]
            for g in r["apiGroups"] for res in r["resources"] for v in r["verbs"]}


def own_checks(obj, where):
    name = obj["metadata"]["name"]
    assert LABEL.match(name) and len(name) <= 63, f"{where}: name {name!r}"
    for k, v in (obj["metadata"].get("labels") or {}).items():
        assert len(v) <= 63, f"{where}: label {k}"
    if obj["kind"] in ("Deployment", "Job"):
        path = os.path.join(tmpdir(), "obj.json")
        with open(path, "w") as f:
            json.dump(obj, f)
        p = run(TOOL, "check", path, check=False)
        assert p.returncode == 0, f"{where}: {p.stderr}"


@test
def every_file_is_kustomized():
    with open(os.path.join(DIR, "kustomization.yaml")) as f:
        k = yaml.safe_load(f)
    listed = set(k["resources"])
    assert listed == set(files()) - {"kustomization.yaml"}, listed
    kinds = sorted(o["kind"] for o in objects())
    assert kinds == ["ConfigMap", "Deployment", "Role", "RoleBinding", "Service",
                     "ServiceAccount"], kinds


@test
def manifests_pass_the_schemas_and_hoists_checks():
    for o in objects():
        where = f"{o['kind']} {o['metadata']['name']}"
        err = validator().check(o)
        assert err is None, f"{where}: {err}"
        own_checks(o, where)


@test
def kustomize_output_passes_too():
    docs = rendered()
    assert len(docs) == 6, [d["kind"] for d in docs]
    for d in docs:
        where = f"{d['kind']} {d['metadata']['name']}"
        assert d["metadata"]["namespace"] == "hoist", where
        err = validator().check(d)
        assert err is None, f"{where}: {err}"
        own_checks(d, where)
    dep = [d for d in docs if d["kind"] == "Deployment"][0]
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "registry.example.com/hoist:0.1.0", c["image"]


@test
def role_grants_exactly_what_the_executor_uses():
    role = [o for o in objects() if o["kind"] == "Role"][0]
    granted = set()
    for r in role["rules"]:
        for g in r["apiGroups"]:
            for res in r["resources"]:
                for v in r["verbs"]:
                    granted.add((g, res, v))
    want = {("batch", "jobs", v) for v in ("create", "get", "list", "watch", "delete")} | \
        {("", "pods", v) for v in ("get", "list", "watch")} | {("", "pods/log", "get")} | \
        {("", "secrets", v) for v in ("create", "delete")}
    assert granted == want, (granted - want, want - granted)
    rb = [o for o in objects() if o["kind"] == "RoleBinding"][0]
    assert rb["roleRef"]["name"] == "hoist" and rb["subjects"][0]["name"] == "hoist"
    dep = [o for o in objects() if o["kind"] == "Deployment"][0]
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "hoist"


@test
def service_takes_postgres_from_a_secret_and_runs_unprivileged():
    dep = [o for o in objects() if o["kind"] == "Deployment"][0]
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    env = {e["name"]: e for e in c["env"]}
    ref = env["HOIST_DB_URL"]["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == ("hoist-postgres", "url"), ref
    assert "$(HOIST_DB_URL)" in c["args"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    cm = [o for o in objects() if o["kind"] == "ConfigMap"][0]
    cfg = json.loads(cm["data"]["serve.json"])
    assert cfg["executor"]["kind"] == "kubernetes"
    svc = [o for o in objects() if o["kind"] == "Service"][0]
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]


@test
def openserverless_overlay_routes_the_deployers_api_to_hoist():
    docs = rendered(OPS_DIR)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["ConfigMap", "Deployment", "Ingress", "Role", "Role", "RoleBinding",
                     "RoleBinding", "Service", "ServiceAccount"], kinds
    for d in docs:
        where = f"{d['kind']} {d['metadata']['name']}"
        assert d["metadata"]["namespace"] == "nuvolaris", where
        err = validator().check(d)
        assert err is None, f"{where}: {err}"
        own_checks(d, where)
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    # the deployer's paths on the API host go to hoist's Service, by its port's name
    svc = by[("Service", "hoist")]
    ing = by[("Ingress", "hoist-build-api")]
    routes = {(p["path"], p["pathType"]): p["backend"]["service"]
              for r in ing["spec"]["rules"] for p in r["http"]["paths"]}
    assert set(routes) == {("/system/api/v1/build", "Prefix"), ("/system/api/v1/builds", "Exact"),
                           ("/system/api/v1/registry", "Prefix")}, routes
    ports = {p["name"] for p in svc["spec"]["ports"]}
    assert all(b["name"] == "hoist" and b["port"]["name"] in ports for b in routes.values())
    # the config turns the drop-in on, with CouchDB's users; the password file is mounted
    cfg = json.loads(by[("ConfigMap", "hoist-config")]["data"]["serve.json"])
    assert cfg["openserverless"]["namespace"] == "nuvolaris" and cfg["auth"] == "couchdb", cfg
    pod = by[("Deployment", "hoist")]["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    vols = {v["name"]: v for v in pod["volumes"]}
    mount = os.path.dirname(cfg["couchdb_password_file"])
    assert vols[mounts[mount]]["secret"]["secretName"] == "hoist-couchdb", (mounts, vols)
    # the executor's Role unchanged; the drop-in's reads in a Role of their own
    assert grants(by[("Role", "hoist")]) == grants(
        [o for o in objects() if o["kind"] == "Role"][0])
    assert grants(by[("Role", "hoist-openserverless")]) == {
        ("", "configmaps", "get", ("config",)), ("", "secrets", "get", ())}
    rb = by[("RoleBinding", "hoist-openserverless")]
    assert rb["roleRef"]["name"] == "hoist-openserverless" and \
        rb["subjects"][0]["name"] == "hoist", rb
    # hoist serve takes the shipped config: it stops only at the cluster it is not in
    d = tmpdir()
    with open(os.path.join(d, "password"), "w") as f:
        f.write("secret\n")
    cfg["couchdb_password_file"] = os.path.join(d, "password")
    with open(os.path.join(d, "serve.json"), "w") as f:
        json.dump(cfg, f)
    p = hoist("serve", "--listen", "127.0.0.1:0", "--data", os.path.join(d, "data"), "--config",
              os.path.join(d, "serve.json"), check=False, timeout=30,
              env={"KUBERNETES_SERVICE_HOST": "", "KUBERNETES_SERVICE_PORT": ""})
    assert p.returncode == 1 and "not in a cluster" in p.stderr, p.stderr


@test
def own_checks_refuse_what_the_schemas_let_through():
    dep = [o for o in objects() if o["kind"] == "Deployment"][0]
    bad = json.loads(json.dumps(dep))
    bad["spec"]["template"]["spec"]["containers"][0]["securityContext"]["procMount"] = "Unmasked"
    assert validator().check(bad) is None  # the schemas accept it...
    path = os.path.join(tmpdir(), "bad.json")
    with open(path, "w") as f:
        json.dump(bad, f)
    p = run(TOOL, "check", path, check=False)
    assert p.returncode == 1 and "procMount Unmasked without hostUsers: false" in p.stderr, \
        p.stderr  # ...hoist does not
    bad = json.loads(json.dumps(dep))
    bad["metadata"]["name"] = "h" * 64
    assert validator().check(bad) is None
    with open(path, "w") as f:
        json.dump(bad, f)
    p = run(TOOL, "check", path, check=False)
    assert p.returncode == 1 and "at most 63" in p.stderr, p.stderr


if __name__ == "__main__":
    main()
