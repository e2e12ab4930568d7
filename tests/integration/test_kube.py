"""The kube module's client (src/lib/kube, driven through kube_tool) against the contract fake of
the Kubernetes API server (kubefake.py: a test double, no cluster runs here), over TLS with a
CA of its own: discovery, create and 409, get, list by label, watch with bookmarks, 410 and the
relist, a pod's log followed, delete with propagationPolicy=Background (the Job's pod and the
Secret it owns go), the Job controller's Complete/Failed/DeadlineExceeded and termination
message, a rotated service-account token, an exec credential plugin, an unreachable server;
kubectl as an independent client; every object the fake receives checked against the
kubernetes-models schemas.
"""
import base64
import json
import os
import subprocess
import threading

from hoisttest import Skip, free_port, main, on_exit, run, test, tmpdir, wait_for
import kubefake

TOOL = os.environ.get("HOIST_KUBE_TOOL", "kube_tool")
IMAGE = "registry.local/hoist:test"
MANAGED = "app.kubernetes.io/managed-by=hoist"

_state = {}


def fake():
    """One fake for the file; its container is a shell script standing in for hoist."""
    if "fake" not in _state:
        d = tmpdir("hoist-kube-")
        script = os.path.join(d, "entry.sh")
        with open(script, "w") as f:
            f.write('#!/bin/sh\n'
                    'echo "building $*"\n'
                    'if [ -n "$GATE" ]; then\n'
                    '  while [ ! -e "$GATE" ]; do sleep 0.05; done\n'
                    'fi\n'
                    'echo "pushed"\n'
                    'printf "sha256:%s" "$DIGEST" > "$KUBEFAKE_TERMINATION_LOG"\n'
                    'exit "${EXIT:-0}"\n')
        os.chmod(script, 0o755)
        k = kubefake.KubeFake(d, entrypoints={IMAGE: ["/bin/sh", script]}).start()
        on_exit(k.stop)
        _state.update(fake=k, dir=d, kubeconfig=k.kubeconfig(os.path.join(d, "config"),
                                                             namespace="builds"))
    return _state["fake"]


def tool(*args, check=True, kubeconfig=None, input=None, timeout=60):
    fake()
    p = subprocess.run([TOOL, "--kubeconfig", kubeconfig or _state["kubeconfig"], *args],
                       capture_output=True, text=True, input=input, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"kube_tool {' '.join(args)} exited {p.returncode}: {p.stderr}")
    return p


def job_json(job_id, env=None, deadline=None, path=None):
    """The Job hoist_kube_job_build makes, with env for the stand-in script."""
    job = json.loads(tool("job", job_id, IMAGE).stdout)
    c = job["spec"]["template"]["spec"]["containers"][0]
    if env:
        c["env"] = [{"name": k, "value": v} for k, v in env.items()]
    if deadline:
        job["spec"]["activeDeadlineSeconds"] = deadline
    path = path or os.path.join(_state["dir"], f"{job_id}.json")
    with open(path, "w") as f:
        json.dump(job, f)
    return path


def create_job(job_id, **kw):
    return json.loads(tool("create", "jobs", job_json(job_id, **kw)).stdout)


def job_pod(job_id):
    pods = fake().list("v1", "pods", "builds", f"job-name=hoist-build-{job_id}")
    assert len(pods) == 1, pods
    return pods[0]


def job_condition(job_id):
    job = fake().get("batch/v1", "jobs", "builds", f"hoist-build-{job_id}")
    for c in (job or {}).get("status", {}).get("conditions", []):
        if c["type"] in ("Complete", "Failed") and c["status"] == "True":
            return c
    return None


class Lines:
    """A running kube_tool whose stdout lines are read as they come."""

    def __init__(self, *args, stdin=None):
        self.p = subprocess.Popen([TOOL, "--kubeconfig", _state["kubeconfig"], *args],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=stdin,
                                  text=True)
        on_exit(self.p.kill)
        self.lines = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.p.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def wait_line(self, pred, timeout=20, what="a line"):
        with self.cond:
            if not self.cond.wait_for(lambda: any(pred(x) for x in self.lines), timeout):
                raise AssertionError(f"no {what} in {self.lines}")
            return next(x for x in self.lines if pred(x))

    def finish(self, timeout=30):
        rc = self.p.wait(timeout=timeout)
        self.reader.join(timeout)  # every line it wrote is in self.lines
        return rc, self.p.stderr.read()


@test
def discovery_answers_as_an_api_server():
    k = fake()
    import ssl
    import urllib.request
    ctx = ssl.create_default_context(cafile=k.ca)

    def get(path):
        req = urllib.request.Request(k.url + path,
                                     headers={"Authorization": "Bearer fake-token"})
        with urllib.request.urlopen(req, context=ctx) as r:
            return json.load(r)

    assert get("/api")["versions"] == ["v1"]
    groups = get("/apis")
    assert groups["kind"] == "APIGroupList"
    assert groups["groups"][0]["preferredVersion"]["groupVersion"] == "batch/v1"
    batch = get("/apis/batch/v1")
    assert batch["kind"] == "APIResourceList" and batch["groupVersion"] == "batch/v1"
    jobs = [r for r in batch["resources"] if r["name"] == "jobs"][0]
    assert jobs["kind"] == "Job" and jobs["namespaced"] and "watch" in jobs["verbs"]
    core = {r["name"] for r in get("/api/v1")["resources"]}
    assert {"pods", "pods/log", "secrets", "configmaps"} <= core, core


@test
def create_get_and_409_on_a_duplicate():
    stored = create_job("c1")
    assert stored["metadata"]["uid"] and stored["metadata"]["resourceVersion"]
    assert stored["metadata"]["namespace"] == "builds"
    p = tool("create", "jobs", job_json("c1"), check=False)
    assert p.returncode == 3, (p.returncode, p.stderr)
    assert "409 AlreadyExists" in p.stderr, p.stderr
    assert '"hoist-build-c1" already exists' in p.stderr, p.stderr
    got = json.loads(tool("get", "jobs", "hoist-build-c1").stdout)
    assert got["metadata"]["uid"] == stored["metadata"]["uid"]
    p = tool("get", "jobs", "hoist-build-nope", check=False)
    assert p.returncode == 5 and "404 NotFound" in p.stderr, p.stderr
    wait_for(lambda: job_condition("c1"), what="c1 to finish")


@test
def the_objects_hoist_builds_pass_the_schemas():
    k = fake()
    job = json.loads(tool("job", "s1", IMAGE, "hoist-build-s1").stdout)
    assert k.validator.check(job) is None
    sec = json.loads(tool("secret", "s1", "0b7c5a60-0000-4000-8000-000000000000").stdout)
    assert k.validator.check(sec) is None
    # and what they refuse, the fake refuses as an API server would (422 Invalid)
    bad = dict(job, spec=dict(job["spec"], backoffLimit="zero"))
    path = os.path.join(_state["dir"], "bad.json")
    with open(path, "w") as f:
        json.dump(bad, f)
    p = tool("create", "jobs", path, check=False)
    assert p.returncode == 1 and "422 Invalid" in p.stderr and "must be integer" in p.stderr, \
        p.stderr
    assert k.invalid and k.invalid[-1][1]["spec"]["backoffLimit"] == "zero"


@test
def list_by_label_selector():
    create_job("l1")
    create_job("l2")
    with open(os.path.join(_state["dir"], "cm.json"), "w") as f:
        json.dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"},
                   "data": {"a": "b"}}, f)
    tool("create", "configmaps", os.path.join(_state["dir"], "cm.json"))
    one = json.loads(tool("list", "jobs", "hoist.dev/job-id=l1").stdout)
    assert [j["metadata"]["name"] for j in one["items"]] == ["hoist-build-l1"]
    ours = json.loads(tool("list", "jobs", MANAGED).stdout)
    names = {j["metadata"]["name"] for j in ours["items"]}
    assert {"hoist-build-l1", "hoist-build-l2"} <= names, names
    assert json.loads(tool("list", "configmaps", MANAGED).stdout)["items"] == []
    assert ours["metadata"]["resourceVersion"].isdigit()
    wait_for(lambda: job_condition("l1") and job_condition("l2"), what="l1 and l2 to finish")


@test
def kubectl_sees_the_jobs_hoist_made():
    if not kubefake.kubectl():
        raise Skip("kubectl is not installed")
    create_job("k1")
    p = run("kubectl", "--kubeconfig", _state["kubeconfig"], "get", "jobs", "-l", MANAGED,
            "-o", "json", timeout=60)
    names = {j["metadata"]["name"] for j in json.loads(p.stdout)["items"]}
    assert "hoist-build-k1" in names, names
    # kubectl's discovery of the fake finds what hoist uses where a real server has it
    p = run("kubectl", "--kubeconfig", _state["kubeconfig"], "api-resources", "-o", "wide",
            timeout=60)
    rows = {tuple(line.split()[:1] + [w for w in line.split() if "/" in w or w == "v1"][:1])
            for line in p.stdout.splitlines()[1:]}
    assert ("jobs", "batch/v1") in rows and ("pods", "v1") in rows, p.stdout
    wait_for(lambda: job_condition("k1"), what="k1 to finish")


@test
def job_completes_with_the_termination_message():
    create_job("t1", env={"DIGEST": "abc123"})
    wait_for(lambda: job_condition("t1"), what="t1 to finish", timeout=30)
    assert job_condition("t1")["type"] == "Complete"
    pod = job_pod("t1")
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 0 and term["message"] == "sha256:abc123", term
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Job"
    create_job("t2", env={"EXIT": "3"})
    wait_for(lambda: job_condition("t2"), what="t2 to fail", timeout=30)
    c = job_condition("t2")
    assert (c["type"], c["reason"]) == ("Failed", "BackoffLimitExceeded"), c


@test
def deadline_fails_the_job():
    fake()
    gate = os.path.join(_state["dir"], "never")
    create_job("d1", env={"GATE": gate}, deadline=1)
    wait_for(lambda: job_condition("d1"), what="d1's deadline", timeout=30)
    c = job_condition("d1")
    assert (c["type"], c["reason"]) == ("Failed", "DeadlineExceeded"), c


@test
def watch_sees_events_and_bookmarks():
    rv = json.loads(tool("list", "jobs", MANAGED).stdout)["metadata"]["resourceVersion"]
    w = Lines("watch", "jobs", "hoist.dev/job-id=w1", rv, "30", "0")
    w.wait_line(lambda x: x.startswith("BOOKMARK "), what="a bookmark")
    create_job("w1")
    w.wait_line(lambda x: x.startswith("ADDED hoist-build-w1 "), what="ADDED")
    wait_for(lambda: job_condition("w1"), what="w1 to finish")
    w.wait_line(lambda x: x.startswith("MODIFIED hoist-build-w1 "), what="MODIFIED")
    # nothing of other jobs passes the selector
    create_job("w2")
    wait_for(lambda: job_condition("w2"), what="w2 to finish")
    tool("delete", "jobs", "hoist-build-w1")
    w.wait_line(lambda x: x.startswith("DELETED hoist-build-w1 "), what="DELETED")
    w.p.terminate()
    w.finish()
    assert not [x for x in w.lines if "hoist-build-w2" in x], w.lines


@test
def watch_stops_when_the_caller_has_what_it_wants():
    # from "" the server first lists what exists as ADDED
    create_job("n1")
    p = tool("watch", "jobs", "hoist.dev/job-id=n1", "", "30", "1", timeout=30)
    lines = p.stdout.splitlines()
    assert lines[0].startswith("ADDED hoist-build-n1 ") and lines[-1].startswith("last "), lines
    wait_for(lambda: job_condition("n1"), what="n1 to finish")


@test
def watch_410_after_compaction_then_relist():
    k = fake()
    rv = json.loads(tool("list", "jobs", MANAGED).stdout)["metadata"]["resourceVersion"]
    create_job("g1")
    wait_for(lambda: job_condition("g1"), what="g1 to finish")
    k.compact()
    p = tool("watch", "jobs", MANAGED, rv, "5", "0", check=False)
    assert p.returncode == 4, (p.returncode, p.stdout, p.stderr)
    assert "410" in p.stderr and "list again" in p.stderr, p.stderr
    listed = json.loads(tool("list", "jobs", MANAGED).stdout)
    assert "hoist-build-g1" in {j["metadata"]["name"] for j in listed["items"]}
    rv2 = listed["metadata"]["resourceVersion"]
    w = Lines("watch", "jobs", MANAGED, rv2, "30", "1")
    create_job("g2")
    w.wait_line(lambda x: x.startswith("ADDED hoist-build-g2 "), what="ADDED after relist")
    rc, err = w.finish()
    assert rc == 0, err
    wait_for(lambda: job_condition("g2"), what="g2 to finish")


@test
def watch_dropped_mid_stream_resumes_without_a_lost_update():
    k = fake()
    rv = json.loads(tool("list", "jobs", MANAGED).stdout)["metadata"]["resourceVersion"]
    w = Lines("watch", "jobs", MANAGED, rv, "60", "0")
    w.wait_line(lambda x: x.startswith("BOOKMARK "), what="a bookmark")
    k.drop_watches()
    rc, err = w.finish()
    # a stream cut without its last chunk is not a clean end: the caller sees an error and
    # the last resourceVersion it saw, and resumes from there
    assert rc == 1 and "kubernetes GET" in err, (rc, err)
    last = w.lines[-1].split()
    assert last[0] == "last" and last[1].isdigit(), w.lines
    create_job("dd1")  # while nobody watches
    p = tool("watch", "jobs", MANAGED, last[1], "30", "1", timeout=30)
    assert p.stdout.splitlines()[0].startswith("ADDED hoist-build-dd1 "), p.stdout
    wait_for(lambda: job_condition("dd1"), what="dd1 to finish")


@test
def pod_log_followed_until_the_container_ends():
    fake()
    gate = os.path.join(_state["dir"], "gate-f1")
    create_job("f1", env={"GATE": gate})
    wait_for(lambda: fake().list("v1", "pods", "builds", "job-name=hoist-build-f1"),
             what="f1's pod")
    pod = job_pod("f1")["metadata"]["name"]
    log = Lines("log", pod, "follow")
    log.wait_line(lambda x: x.startswith("building build --json"), what="the first line")
    assert log.p.poll() is None, "the log ended while the container runs"
    open(gate, "w").close()
    rc, err = log.finish()
    assert rc == 0, err
    assert log.lines == ["building build --json", "pushed"], log.lines
    once = tool("log", pod, "once").stdout
    assert once == "building build --json\npushed\n", once


@test
def delete_background_takes_the_pods_and_owned_secret():
    fake()
    job = create_job("x1", env={"GATE": os.path.join(_state["dir"], "never")})
    sec = json.loads(tool("secret", "x1", job["metadata"]["uid"]).stdout)
    path = os.path.join(_state["dir"], "sec.json")
    with open(path, "w") as f:
        json.dump(sec, f)
    tool("create", "secrets", path)
    wait_for(lambda: fake().list("v1", "pods", "builds", "job-name=hoist-build-x1"),
             what="x1's pod")
    pod_uid = job_pod("x1")["metadata"]["uid"]
    assert fake().pod_running(pod_uid)
    tool("delete", "jobs", "hoist-build-x1")
    assert fake().list("v1", "pods", "builds", "job-name=hoist-build-x1") == []
    assert fake().get("v1", "secrets", "builds", "hoist-build-x1") is None
    assert not fake().pod_running(pod_uid), "the pod's container still runs"
    assert any(m == "DELETE" and "propagationPolicy=Background" in p
               for m, p in fake().requests)
    p = tool("delete", "jobs", "hoist-build-x1", check=False)
    assert p.returncode == 5, p.stderr


@test
def in_cluster_token_read_again_when_it_rotates():
    k = fake()
    sa = os.path.join(tmpdir(), "sa")
    os.makedirs(sa)
    with open(os.path.join(sa, "ca.crt"), "w") as f, open(k.ca) as c:
        f.write(c.read())
    with open(os.path.join(sa, "namespace"), "w") as f:
        f.write("builds")

    def rotate(token):
        # as the kubelet does: a new file put in place by a rename
        tmp = os.path.join(sa, ".token.new")
        with open(tmp, "w") as f:
            f.write(token + "\n")
        os.rename(tmp, os.path.join(sa, "token"))

    rotate("first")
    k.tokens.add("first")
    create_job("r1")
    p = subprocess.Popen([TOOL, "--in-cluster", sa, "127.0.0.1", str(k.port), "gets", "jobs",
                          "hoist-build-r1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    on_exit(p.kill)

    def ask():
        p.stdin.write("\n")
        p.stdin.flush()
        return p.stdout.readline().strip()

    assert ask() == "ok hoist-build-r1"
    k.tokens.discard("first")
    k.tokens.add("second")
    rotate("second")
    assert ask() == "ok hoist-build-r1"  # the same client, the new token
    rotate("revoked")
    answer = ask()
    assert answer.startswith("error ") and "401 Unauthorized" in answer, answer
    p.stdin.close()
    assert p.wait(timeout=10) == 0
    wait_for(lambda: job_condition("r1"), what="r1 to finish")


@test
def exec_credential_plugin():
    k = fake()
    d = tmpdir()
    plugin = os.path.join(d, "cred.sh")
    with open(plugin, "w") as f:
        f.write('#!/bin/sh\n'
                '# the kubeconfig\'s env and the exec info reach the plugin\n'
                '[ "$WHO" = hoist ] || exit 7\n'
                'case "$KUBERNETES_EXEC_INFO" in *ExecCredential*) ;; *) exit 8;; esac\n'
                'echo "{\\"apiVersion\\": \\"$1\\", \\"kind\\": \\"ExecCredential\\",'
                ' \\"status\\": {\\"token\\": \\"plugin-token\\",'
                ' \\"expirationTimestamp\\": \\"2099-01-01T00:00:00Z\\"}}"\n')
    os.chmod(plugin, 0o755)
    k.tokens.add("plugin-token")
    create_job("e1")

    def config(api, arg):
        return k.kubeconfig(os.path.join(d, f"config-{arg.split('/')[-1]}"), namespace="builds",
                            extra_user={"exec": {"apiVersion": api, "command": "./cred.sh",
                                                 "args": [arg],
                                                 "env": [{"name": "WHO", "value": "hoist"}]}})

    good = config("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1")
    got = json.loads(tool("get", "jobs", "hoist-build-e1", kubeconfig=good).stdout)
    assert got["metadata"]["name"] == "hoist-build-e1"
    wrong = config("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
    p = tool("get", "jobs", "hoist-build-e1", kubeconfig=wrong, check=False)
    assert p.returncode == 1 and "apiVersion client.authentication.k8s.io/v1beta1, not" in \
        p.stderr, p.stderr
    wait_for(lambda: job_condition("e1"), what="e1 to finish")


@test
def client_certificates_as_files_data_and_from_a_plugin():
    k = fake()
    d = tmpdir()
    cert, key = k.client_cert("hoist-sa")
    k.cert_users.add("hoist-sa")
    create_job("m1")
    files = k.kubeconfig(os.path.join(d, "files"), namespace="builds",
                         extra_user={"client-certificate": cert, "client-key": key})
    assert json.loads(tool("get", "jobs", "hoist-build-m1", kubeconfig=files).stdout)

    def b64(path):
        with open(path, "rb") as f:
            return base64.b64encode(f.read()).decode()

    data = k.kubeconfig(os.path.join(d, "data"), namespace="builds",
                        extra_user={"client-certificate-data": b64(cert),
                                    "client-key-data": b64(key)})
    assert json.loads(tool("get", "jobs", "hoist-build-m1", kubeconfig=data).stdout)
    with open(cert) as f:
        cert_pem = f.read()
    with open(key) as f:
        key_pem = f.read()
    plugin = os.path.join(d, "cred.py")
    with open(plugin, "w") as f:
        f.write("import json, sys\n"
                f"print(json.dumps({{'apiVersion': 'client.authentication.k8s.io/v1', "
                f"'kind': 'ExecCredential', 'status': {{'clientCertificateData': {cert_pem!r}, "
                f"'clientKeyData': {key_pem!r}}}}}))\n")
    execd = k.kubeconfig(os.path.join(d, "exec"), namespace="builds",
                         extra_user={"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                              "command": "python3", "args": [plugin],
                                              "interactiveMode": "Never"}})
    assert json.loads(tool("get", "jobs", "hoist-build-m1", kubeconfig=execd).stdout)
    # a certificate the fake does not know as a user: 401
    other, other_key = k.client_cert("stranger")
    nobody = k.kubeconfig(os.path.join(d, "nobody"), namespace="builds",
                          extra_user={"client-certificate": other, "client-key": other_key})
    p = tool("get", "jobs", "hoist-build-m1", kubeconfig=nobody, check=False)
    assert p.returncode == 1 and "401 Unauthorized" in p.stderr, p.stderr
    wait_for(lambda: job_condition("m1"), what="m1 to finish")


@test
def unreachable_server_is_a_clear_error():
    d = tmpdir()
    cfg = os.path.join(d, "config")
    with open(cfg, "w") as f:
        json.dump({"kind": "Config", "current-context": "c",
                   "clusters": [{"name": "c", "cluster": {
                       "server": f"https://127.0.0.1:{free_port()}",
                       "insecure-skip-tls-verify": "true"}}],
                   "contexts": [{"name": "c", "context": {"cluster": "c"}}]}, f)
    p = tool("list", "jobs", kubeconfig=cfg, check=False)
    assert p.returncode == 1, p
    assert "kubernetes GET https://127.0.0.1:" in p.stderr and "connect" in p.stderr.lower(), \
        p.stderr


@test
def bad_kubeconfig_file_is_named():
    d = tmpdir()
    cfg = os.path.join(d, "config")
    with open(cfg, "w") as f:
        f.write("kind: Config\ncurrent-context: nope\n")
    p = tool("list", "jobs", kubeconfig=cfg, check=False)
    assert p.returncode == 1 and f"kubeconfig {cfg}: no context named \"nope\"" in p.stderr, \
        p.stderr


if __name__ == "__main__":
    main()
