"""A TEST DOUBLE of the Kubernetes API server (a contract fake), written for hoist's tests from the Kubernetes API reference; no cluster runs here.

What it answers, as a real API server does for the groups hoist uses:
- discovery: /version, /api (APIVersions), /apis (APIGroupList), /apis/batch (APIGroup),
  /api/v1 and /apis/batch/v1 (APIResourceList);
- namespaced jobs (batch/v1), pods, secrets and configmaps (v1): create (201; 409
  AlreadyExists on a duplicate), get (404 NotFound), list with a labelSelector (=, ==, !=,
  KEY, !KEY joined by commas), watch (?watch=1: a chunked stream of newline-delimited
  {"type","object"} events from a resourceVersion, BOOKMARK events when
  allowWatchBookmarks=true, an ERROR event with a 410 Status when the resourceVersion was
  compacted away, timeoutSeconds), delete with propagationPolicy (Background and Foreground
  delete the dependents - a Job's pods, Secrets owned by it - Orphan, the default for Jobs
  through the REST API, leaves them with their ownerReference removed), and
  pods/{name}/log (follow=true streams until the container ends);
- authentication by bearer token, or by a client certificate signed by the fake's CA whose
  common name is in `cert_users` (401 Unauthorized Status otherwise).

It plays the Job controller: a Job gets one pod (`<job>-<5 chars>`, labels job-name and
controller-uid, an ownerReference), whose container runs locally as
`entrypoints[image] + args` (or `command + args`), its output the pod's log. The
container's terminationMessagePath is the local file named by the environment variable
KUBEFAKE_TERMINATION_LOG; with terminationMessagePolicy FallbackToLogsOnError an empty one
is replaced by the log's tail on failure. Exit 0 makes the pod Succeeded and the Job
Complete; anything else Failed with reason BackoffLimitExceeded (backoffLimit 0 is all it
plays); activeDeadlineSeconds kills the container and fails the Job with reason
DeadlineExceeded. ttlSecondsAfterFinished deletes a finished Job (Background).

Every object it receives is checked against the JSON schemas of the npm package
kubernetes-models (through kube_validate.js and node): an object they refuse is answered
422 Invalid, and kept in `invalid` for the test to see.

Each container gets an image store of its own (HOIST_IMAGES in a directory of the pod's),
empty at start as a fresh container's filesystem is, so nothing hoist caches there is
shared between pods.

Secret volumes: the container starts once its Secrets exist (as the kubelet waits for
them); their data is written to a directory of the pod's own, and an argument naming a
path under the volume's mountPath (or the terminationMessagePath) is rewritten to the local
file, since the command runs on this machine, not in a mount namespace.

What it records for the tests: each request as it arrives (`requests`: (method, path))
and each answer's status line (`responses`: (method, path, code), a 401 included).
`tokens` may change while it runs (a token rotated, an old one revoked): a request is
authenticated when it arrives, and a stream already open (a watch, a followed log) goes on,
as with a real API server.

Not played: admission, quotas, scheduling, images (the image name only picks the local
command), other volumes, RBAC, server-side apply, field selectors.
"""
import base64
import http.server
import json
import os
import random
import re
import shutil
import signal
import socketserver
import ssl
import string
import subprocess
import threading
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
NPM_DIR = os.path.expanduser(os.environ.get("HOIST_NPM_CACHE", "~/.cache/hoist/npm"))
MODELS_VERSION = "4.5.1"

RESOURCES = {
    # (group/version, plural): (Kind, singular, short names, verbs)
    ("v1", "pods"): ("Pod", "pod", ["po"]),
    ("v1", "secrets"): ("Secret", "secret", []),
    ("v1", "configmaps"): ("ConfigMap", "configmap", ["cm"]),
    ("batch/v1", "jobs"): ("Job", "job", []),
}
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def ensure_models():
    """Installs kubernetes-models into NPM_DIR (outside the repository) from the npm
    registry when it is not there yet; returns its node_modules directory."""
    mods = os.path.join(NPM_DIR, "node_modules")
    pkg = os.path.join(mods, "kubernetes-models", "package.json")
    if not os.path.exists(pkg):
        os.makedirs(NPM_DIR, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", NPM_DIR,
                        f"kubernetes-models@{MODELS_VERSION}"], check=True,
                       capture_output=True, timeout=600)
    return mods


class Validator:
    """The kubernetes-models schemas, asked through one node process."""

    def __init__(self):
        env = dict(os.environ, NODE_PATH=ensure_models())
        self.p = subprocess.Popen(["node", os.path.join(HERE, "kube_validate.js")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env=env)
        self.lock = threading.Lock()

    def check(self, obj):
        """None when the schemas accept obj, else their message."""
        with self.lock:
            self.p.stdin.write(json.dumps(obj) + "\n")
            self.p.stdin.flush()
            answer = json.loads(self.p.stdout.readline())
        return None if answer["ok"] else answer["error"]

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def status(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": message, "reason": reason, "code": code}
    if details:
        s["details"] = details
    return s


def parse_selector(sel):
    """[(key, op, value)] of a labelSelector; ValueError when it is not one."""
    out = []
    for part in filter(None, (p.strip() for p in (sel or "").split(","))):
        m = re.fullmatch(r"([A-Za-z0-9./_-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)", part)
        if m:
            out.append((m.group(1), "!=" if m.group(2) == "!=" else "=", m.group(3)))
        elif re.fullmatch(r"![A-Za-z0-9./_-]+", part):
            out.append((part[1:], "!", None))
        elif re.fullmatch(r"[A-Za-z0-9./_-]+", part):
            out.append((part, "exists", None))
        else:
            raise ValueError(f"unable to parse requirement: {part}")
    return out


def matches(obj, sel):
    labels = obj.get("metadata", {}).get("labels") or {}
    for k, op, v in sel:
        if op == "=" and labels.get(k) != v:
            return False
        if op == "!=" and labels.get(k) == v:
            return False
        if op == "exists" and k not in labels:
            return False
        if op == "!" and k in labels:
            return False
    return True


class KubeFake:
    def __init__(self, workdir, tls=True, token="fake-token", entrypoints=None,
                 bookmark_interval=0.5, validate=True):
        self.workdir = workdir
        self.tokens = {token}
        self.cert_users = set()  # CNs of client certificates accepted
        self.entrypoints = entrypoints or {}
        self.bookmark_interval = bookmark_interval
        self.lock = threading.Condition()
        self.objects = {}  # (gv, plural, ns, name) -> obj
        self.events = []  # (rv, gv, plural, ns, type, obj)
        self.rv = 100
        self.compacted = 0  # watches from a resourceVersion below this get 410
        self.invalid = []  # (path, object, message) refused by the schemas
        self.requests = []  # (method, path) as received
        self.responses = []  # (method, path, code) as answered
        self.procs = {}  # pod uid -> Popen
        self.watch_conns = []
        self.validator = Validator() if validate else None
        self.ca = self.cert = self.key = None
        self.tls = tls
        self.stopped = False

    # ------------------------------------------------------------ life
    def start(self):
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        self.httpd = _Server(("127.0.0.1", 0), Handler)
        if self.tls:
            from hoisttest import make_ca
            self.ca, self.cert, self.key = make_ca(self.workdir)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.cert, self.key)
            ctx.verify_mode = ssl.CERT_OPTIONAL  # a client certificate is one way to log in
            ctx.load_verify_locations(self.ca)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.ticker = threading.Thread(target=self._tick, daemon=True)
        self.ticker.start()
        return self

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def stop(self):
        self.stopped = True
        with self.lock:
            self.lock.notify_all()
            procs = list(self.procs.values())
        for p in procs:
            _kill(p)
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.validator:
            self.validator.close()

    def client_cert(self, cn):
        """A client certificate for cn signed by the fake's CA: (cert, key) paths."""
        from hoisttest import run
        base = os.path.join(self.workdir, f"client-{cn}")
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}/O=hoist",
            "-keyout", base + ".key", "-out", base + ".csr")
        run("openssl", "x509", "-req", "-in", base + ".csr", "-CA", self.ca, "-CAkey",
            os.path.join(self.workdir, "ca.key"), "-CAcreateserial", "-days", "2",
            "-out", base + ".crt")
        return base + ".crt", base + ".key"

    def kubeconfig(self, path, token=None, namespace="default", extra_user=None):
        """Writes a kubeconfig for this server; returns its path."""
        user = extra_user or {"token": token or next(iter(self.tokens))}
        cluster = {"server": self.url}
        if self.tls:
            cluster["certificate-authority"] = self.ca
        cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "fake",
               "clusters": [{"name": "fake", "cluster": cluster}],
               "users": [{"name": "u", "user": user}],
               "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "u",
                                                         "namespace": namespace}}]}
        with open(path, "w") as f:
            json.dump(cfg, f)  # JSON is YAML
        return path

    # --------------------------------------------------------- faults
    def compact(self):
        """As etcd compaction: resourceVersions up to now are gone for watches."""
        with self.lock:
            self.compacted = self.rv
            self.events = []

    def expire(self):
        """As a compaction past every resourceVersion a client has seen (other writers
        having moved it on): open watches are cut, and one resumed from any version seen
        gets 410, so the client must list again."""
        with self.lock:
            self.rv += 1
            self.compacted = self.rv
            self.events = []
        self.drop_watches()

    def drop_watches(self):
        """Cuts every open watch stream mid-way (no final chunk)."""
        with self.lock:
            conns, self.watch_conns = self.watch_conns, []
        for c in conns:
            try:
                c.shutdown(2)
            except OSError:
                pass

    # ---------------------------------------------------------- store
    def _next_rv(self):
        self.rv += 1
        return str(self.rv)

    def _emit(self, gv, plural, ns, typ, obj):
        self.events.append((int(obj["metadata"]["resourceVersion"]), gv, plural, ns, typ,
                            json.loads(json.dumps(obj))))
        self.lock.notify_all()

    def put_new(self, gv, plural, ns, obj):
        """Stores a new object (lock held); returns it or raises KeyError on a duplicate."""
        meta = obj.setdefault("metadata", {})
        key = (gv, plural, ns, meta["name"])
        if key in self.objects:
            raise KeyError(meta["name"])
        meta["namespace"] = ns
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        meta["resourceVersion"] = self._next_rv()
        meta.setdefault("generation", 1)
        self.objects[key] = obj
        self._emit(gv, plural, ns, "ADDED", obj)
        return obj

    def update(self, gv, plural, ns, obj):
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self.objects[(gv, plural, ns, obj["metadata"]["name"])] = obj
        self._emit(gv, plural, ns, "MODIFIED", obj)

    def remove(self, gv, plural, ns, name, policy):
        """Deletes an object (lock held) and, as the garbage collector, its dependents."""
        obj = self.objects.pop((gv, plural, ns, name))
        obj["metadata"]["resourceVersion"] = self._next_rv()
        obj["metadata"]["deletionTimestamp"] = now()
        self._emit(gv, plural, ns, "DELETED", obj)
        uid = obj["metadata"]["uid"]
        if plural == "pods" and uid in self.procs:
            _kill(self.procs.pop(uid))
        for key, dep in list(self.objects.items()):
            refs = dep["metadata"].get("ownerReferences") or []
            if key[2] != ns or not any(r.get("uid") == uid for r in refs):
                continue
            if policy in ("Background", "Foreground"):
                self.remove(key[0], key[1], key[2], key[3], policy)
            else:
                dep["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
                self.update(key[0], key[1], key[2], dep)
        return obj

    def add(self, gv, plural, ns, obj):
        """Stores an object the cluster already has (an operator's ConfigMap, a Secret
        made by an administrator), checked by the schemas as a created one would be."""
        obj = json.loads(json.dumps(obj))
        err = self.validator.check(obj) if self.validator else None
        assert not err, err
        with self.lock:
            self.put_new(gv, plural, ns, obj)
            self.lock.notify_all()

    def replace(self, gv, plural, ns, obj):
        """Replaces an object's content as a PUT would (its uid and creation kept)."""
        obj = json.loads(json.dumps(obj))
        err = self.validator.check(obj) if self.validator else None
        assert not err, err
        with self.lock:
            old = self.objects[(gv, plural, ns, obj["metadata"]["name"])]
            for k in ("namespace", "uid", "creationTimestamp", "generation"):
                obj["metadata"][k] = old["metadata"][k]
            self.update(gv, plural, ns, obj)
            self.lock.notify_all()

    def get(self, gv, plural, ns, name):
        with self.lock:
            o = self.objects.get((gv, plural, ns, name))
            return json.loads(json.dumps(o)) if o else None

    def list(self, gv, plural, ns, selector=""):
        sel = parse_selector(selector)
        with self.lock:
            return [json.loads(json.dumps(o)) for (g, p, n, _), o in sorted(self.objects.items())
                    if (g, p, n) == (gv, plural, ns) and matches(o, sel)]

    def _tick(self):
        """Wakes the watches for their bookmarks."""
        while not self.stopped:
            time.sleep(self.bookmark_interval)
            with self.lock:
                self.lock.notify_all()

    # ----------------------------------------------- the Job controller
    def _job_created(self, ns, job):
        """Creates the Job's pod and runs its container (lock held)."""
        jname = job["metadata"]["name"]
        juid = job["metadata"]["uid"]
        tmpl = job["spec"]["template"]
        suffix = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(5))
        labels = dict(tmpl.get("metadata", {}).get("labels") or {})
        labels.update({"job-name": jname, "batch.kubernetes.io/job-name": jname,
                       "controller-uid": juid, "batch.kubernetes.io/controller-uid": juid})
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{jname[:57]}-{suffix}", "labels": labels,
                            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
                                                 "name": jname, "uid": juid,
                                                 "controller": True,
                                                 "blockOwnerDeletion": True}]},
               "spec": json.loads(json.dumps(tmpl["spec"])),
               "status": {"phase": "Pending"}}
        pod = self.put_new("v1", "pods", ns, pod)
        job["status"] = {"startTime": now(), "active": 1, "ready": 0}
        self.update("batch/v1", "jobs", ns, job)
        if self._missing_secrets(ns, pod):
            # as the kubelet: the container waits for its Secret volumes
            threading.Thread(target=self._await_secrets, args=(ns, jname, pod),
                             daemon=True).start()
        else:
            self._start_container(ns, jname, job, pod)

    def _missing_secrets(self, ns, pod):
        return [v["secret"]["secretName"] for v in pod["spec"].get("volumes") or []
                if "secret" in v and
                ("v1", "secrets", ns, v["secret"]["secretName"]) not in self.objects]

    def _await_secrets(self, ns, jname, pod):
        end = time.monotonic() + 120
        while time.monotonic() < end and not self.stopped:
            with self.lock:
                job = self.objects.get(("batch/v1", "jobs", ns, jname))
                cur = self.objects.get(("v1", "pods", ns, pod["metadata"]["name"]))
                if not job or not cur:
                    return
                if not self._missing_secrets(ns, cur):
                    self._start_container(ns, jname, job, cur)
                    return
            time.sleep(0.05)

    def _start_container(self, ns, jname, job, pod):
        """Runs the pod's container locally (lock held). Secret volumes are written to a
        directory of the pod's own, and the container's args naming a path under a volume's
        mountPath, or its terminationMessagePath, are rewritten to the local files."""
        c = pod["spec"]["containers"][0]
        logdir = os.path.join(self.workdir, "pods", pod["metadata"]["uid"])
        os.makedirs(logdir)
        log = os.path.join(logdir, "log")
        term = os.path.join(logdir, "termination-log")
        open(term, "w").close()
        mounts = {}
        vols = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        for m in c.get("volumeMounts") or []:
            v = vols.get(m["name"], {})
            if "secret" not in v:
                continue
            local = os.path.join(logdir, "volumes", m["name"])
            os.makedirs(local)
            sec = self.objects[("v1", "secrets", ns, v["secret"]["secretName"])]
            for k, b64 in (sec.get("data") or {}).items():
                with open(os.path.join(local, k), "wb") as f:
                    f.write(base64.b64decode(b64))
            mounts[m["mountPath"].rstrip("/")] = local
        tpath = c.get("terminationMessagePath") or "/dev/termination-log"

        def local_path(a):
            if a == tpath:
                return term
            for mp, local in mounts.items():
                if a.startswith(mp + "/"):
                    return local + a[len(mp):]
            return a
        argv = list(c.get("command") or self.entrypoints.get(c.get("image"), [])) + \
            [local_path(a) for a in c.get("args") or []]
        # a pod's filesystem is its own: hoist's image store (and so its build cache) starts
        # empty in each pod, as in a fresh container
        env = dict(os.environ, KUBEFAKE_TERMINATION_LOG=term,
                   HOIST_IMAGES=os.path.join(logdir, "images"))
        for e in c.get("env") or []:
            env[e["name"]] = e.get("value", "")
        with open(log, "wb") as out:
            try:
                p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
            except OSError as e:
                out.write(f"exec {argv}: {e}\n".encode())
                p = None
        pod["metadata"]["annotations"] = {"kubefake/log": log}
        pod["status"] = {"phase": "Running", "startTime": now(),
                         "containerStatuses": [{"name": c["name"], "ready": True,
                                                "restartCount": 0, "image": c.get("image", ""),
                                                "imageID": "", "started": True,
                                                "state": {"running": {"startedAt": now()}}}]}
        self.update("v1", "pods", ns, pod)
        if p:
            self.procs[pod["metadata"]["uid"]] = p
        deadline = job["spec"].get("activeDeadlineSeconds")
        threading.Thread(target=self._run_pod, daemon=True,
                         args=(ns, jname, pod["metadata"]["name"], p, term, log, c,
                               deadline)).start()

    def _run_pod(self, ns, jname, pname, p, term, log, c, deadline):
        timed_out = False
        if p:
            try:
                p.wait(timeout=deadline)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill(p)
                p.wait()
            code = p.returncode
        else:
            code = 128
        with open(term, errors="replace") as f:
            message = f.read()[:4096]
        if not message and code != 0 and c.get("terminationMessagePolicy") == \
                "FallbackToLogsOnError":
            with open(log, "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()[-80:]
            message = "\n".join(lines)[-2048:]
        with self.lock:
            pod = self.objects.get(("v1", "pods", ns, pname))
            if pod:
                self.procs.pop(pod["metadata"]["uid"], None)
                term_state = {"exitCode": code if code >= 0 else 128 - code,
                              "reason": "Completed" if code == 0 else "Error",
                              "startedAt": pod["status"].get("startTime", now()),
                              "finishedAt": now()}
                if message:
                    term_state["message"] = message
                pod["status"]["phase"] = "Succeeded" if code == 0 else "Failed"
                cs = pod["status"]["containerStatuses"][0]
                cs.update({"ready": False, "started": False,
                           "state": {"terminated": term_state}})
                self.update("v1", "pods", ns, pod)
            job = self.objects.get(("batch/v1", "jobs", ns, jname))
            if not job:
                return
            st = job.setdefault("status", {})
            st.pop("active", None)
            st["ready"] = 0
            t = now()
            if code == 0 and not timed_out:
                st["succeeded"] = 1
                st["completionTime"] = t
                st["conditions"] = [
                    {"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": t,
                     "lastTransitionTime": t},
                    {"type": "Complete", "status": "True", "lastProbeTime": t,
                     "lastTransitionTime": t}]
            else:
                st["failed"] = 1
                reason, msg = (("DeadlineExceeded", "Job was active longer than specified "
                                "deadline") if timed_out else
                               ("BackoffLimitExceeded", "Job has reached the specified backoff "
                                "limit"))
                st["conditions"] = [
                    {"type": "FailureTarget", "status": "True", "reason": reason, "message": msg,
                     "lastProbeTime": t, "lastTransitionTime": t},
                    {"type": "Failed", "status": "True", "reason": reason, "message": msg,
                     "lastProbeTime": t, "lastTransitionTime": t}]
            self.update("batch/v1", "jobs", ns, job)
            ttl = job["spec"].get("ttlSecondsAfterFinished")
            uid = job["metadata"]["uid"]
        if ttl is not None:
            t = threading.Timer(ttl, self._ttl_expired, args=(ns, jname, uid))
            t.daemon = True
            t.start()

    def _ttl_expired(self, ns, jname, uid):
        with self.lock:
            job = self.objects.get(("batch/v1", "jobs", ns, jname))
            if job and job["metadata"]["uid"] == uid and not self.stopped:
                self.remove("batch/v1", "jobs", ns, jname, "Background")

    def pod_running(self, uid):
        with self.lock:
            return uid in self.procs


def _kill(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake = None

    def log_message(self, *args):
        pass

    # ---------------------------------------------------------- replies
    def send_response(self, code, message=None):
        self.fake.responses.append((self.command, self.path, code))
        super().send_response(code, message)

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def fail(self, code, reason, message, details=None):
        self.reply(code, status(code, reason, message, details))

    def start_chunks(self, ctype):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunks(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # -------------------------------------------------------- dispatch
    def authorized(self):
        h = self.headers.get("Authorization", "")
        if h.startswith("Bearer ") and h[7:] in self.fake.tokens:
            return True
        peer = self.connection.getpeercert() if self.fake.tls else None
        if peer:
            cn = dict(x[0] for x in peer.get("subject", ())).get("commonName")
            if cn in self.fake.cert_users:
                return True
        self.fail(401, "Unauthorized", "Unauthorized")
        return False

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_DELETE(self):
        self.route("DELETE")

    def do_PUT(self):
        self.route("PUT")

    def do_PATCH(self):
        self.route("PATCH")

    def route(self, method):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        self.fake.requests.append((method, self.path))
        data = self.body() if method in ("POST", "PUT", "PATCH", "DELETE") else b""
        if not self.authorized():
            return
        path = u.path.rstrip("/") or "/"
        if method == "GET" and self.discovery(path):
            return
        m = re.fullmatch(r"/(?:api/(v1)|apis/(batch/v1))/namespaces/([^/]+)/([a-z]+)"
                         r"(?:/([^/]+)(?:/(log|status))?)?", path)
        if not m:
            return self.fail(404, "NotFound", "the server could not find the requested resource")
        gv = m.group(1) or m.group(2)
        ns, plural, name, sub = m.group(3), m.group(4), m.group(5), m.group(6)
        if (gv, plural) not in RESOURCES:
            return self.fail(404, "NotFound", "the server could not find the requested resource")
        kind = RESOURCES[(gv, plural)][0]
        if sub == "log":
            if plural != "pods" or method != "GET":
                return self.fail(405, "MethodNotAllowed", "only GET pods/log")
            return self.pod_log(ns, name, q)
        if sub:
            return self.fail(405, "MethodNotAllowed", f"{sub} is not served by this fake")
        if method == "POST" and not name:
            return self.create(gv, plural, kind, ns, data)
        if method == "GET" and name:
            o = self.fake.get(gv, plural, ns, name)
            if not o:
                return self.not_found(gv, plural, name)
            return self.reply(200, o)
        if method == "GET" and q.get("watch") in ("1", "true"):
            return self.watch(gv, plural, kind, ns, q)
        if method == "GET":
            return self.list(gv, plural, kind, ns, q)
        if method == "DELETE" and name:
            return self.delete(gv, plural, kind, ns, name, q, data)
        return self.fail(405, "MethodNotAllowed", f"{method} is not served by this fake")

    def not_found(self, gv, plural, name):
        group = gv.split("/")[0] if "/" in gv else ""
        res = f"{plural}.{group}" if group else plural
        self.fail(404, "NotFound", f'{res} "{name}" not found',
                  {"name": name, "group": group, "kind": plural})

    # -------------------------------------------------------- discovery
    def discovery(self, path):
        f = self.fake
        if path == "/version":
            self.reply(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0-kubefake",
                             "platform": "linux/amd64"})
        elif path == "/api":
            self.reply(200, {"kind": "APIVersions", "versions": ["v1"],
                             "serverAddressByClientCIDRs": [
                                 {"clientCIDR": "0.0.0.0/0",
                                  "serverAddress": f"127.0.0.1:{f.port}"}]})
        elif path == "/apis":
            self.reply(200, {"kind": "APIGroupList", "apiVersion": "v1",
                             "groups": [self.batch_group()]})
        elif path == "/apis/batch":
            g = self.batch_group()
            g.update({"kind": "APIGroup", "apiVersion": "v1"})
            self.reply(200, g)
        elif path in ("/api/v1", "/apis/batch/v1"):
            gv = path.split("/", 2)[2]
            res = []
            for (g, plural), (kind, singular, short) in sorted(RESOURCES.items()):
                if g != gv:
                    continue
                r = {"name": plural, "singularName": singular, "namespaced": True, "kind": kind,
                     "verbs": VERBS}
                if short:
                    r["shortNames"] = short
                if plural in ("pods", "jobs"):
                    r["categories"] = ["all"]
                res.append(r)
                if plural in ("pods", "jobs"):
                    res.append({"name": f"{plural}/status", "singularName": "",
                                "namespaced": True, "kind": kind,
                                "verbs": ["get", "patch", "update"]})
                if plural == "pods":
                    res.append({"name": "pods/log", "singularName": "", "namespaced": True,
                                "kind": "Pod", "verbs": ["get"]})
            self.reply(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                             "resources": res})
        else:
            return False
        return True

    @staticmethod
    def batch_group():
        v = {"groupVersion": "batch/v1", "version": "v1"}
        return {"name": "batch", "versions": [v], "preferredVersion": v}

    # ------------------------------------------------------------ verbs
    def create(self, gv, plural, kind, ns, data):
        try:
            obj = json.loads(data)
        except ValueError as e:
            return self.fail(400, "BadRequest", f"the body is not JSON: {e}")
        if not isinstance(obj, dict) or obj.get("apiVersion") != gv or obj.get("kind") != kind:
            return self.fail(400, "BadRequest",
                             f"the object is not a {gv} {kind}: apiVersion "
                             f"{obj.get('apiVersion')!r} kind {obj.get('kind')!r}")
        meta = obj.get("metadata") or {}
        if meta.get("namespace") not in (None, ns):
            return self.fail(400, "BadRequest", "the namespace of the provided object does not "
                             "match the namespace sent on the request")
        err = self.fake.validator.check(obj) if self.fake.validator else None
        name = meta.get("name", "")
        if not err and not NAME_RE.fullmatch(name or "") or len(name or "") > 253:
            err = f"metadata.name: Invalid value: {name!r}: a lowercase RFC 1123 subdomain"
        if not err and kind == "Job" and len(name) > 63:
            err = f"metadata.name: Invalid value: {name!r}: must be no more than 63 characters"
        if err:
            self.fake.invalid.append((self.path, obj, err))
            return self.fail(422, "Invalid", f'{kind} "{name}" is invalid: {err}',
                             {"name": name, "kind": plural})
        with self.fake.lock:
            try:
                stored = self.fake.put_new(gv, plural, ns, obj)
            except KeyError:
                return self.fail(409, "AlreadyExists", f'{plural}{".batch" if gv != "v1" else ""}'
                                 f' "{name}" already exists', {"name": name, "kind": plural})
            if kind == "Job":
                stored.setdefault("status", {})
                self.fake._job_created(ns, stored)
            out = json.loads(json.dumps(self.fake.objects[(gv, plural, ns, name)]))
        self.reply(201, out)

    def list(self, gv, plural, kind, ns, q):
        try:
            items = self.fake.list(gv, plural, ns, q.get("labelSelector", ""))
        except ValueError as e:
            return self.fail(400, "BadRequest", str(e))
        with self.fake.lock:
            rv = str(self.fake.rv)
        self.reply(200, {"kind": f"{kind}List", "apiVersion": gv,
                         "metadata": {"resourceVersion": rv}, "items": items})

    def delete(self, gv, plural, kind, ns, name, q, data):
        policy = q.get("propagationPolicy")
        if data:
            try:
                opts = json.loads(data)
                policy = opts.get("propagationPolicy", policy)
            except ValueError:
                return self.fail(400, "BadRequest", "DeleteOptions is not JSON")
        if policy not in (None, "Background", "Foreground", "Orphan"):
            return self.fail(400, "BadRequest", f"unknown propagationPolicy {policy!r}")
        if policy is None:  # batch/v1 Jobs default to orphaning through the REST API
            policy = "Orphan" if plural == "jobs" else "Background"
        with self.fake.lock:
            if (gv, plural, ns, name) not in self.fake.objects:
                return self.not_found(gv, plural, name)
            obj = self.fake.remove(gv, plural, ns, name, policy)
        self.reply(200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                         "status": "Success", "details": {"name": name, "kind": plural,
                                                          "uid": obj["metadata"]["uid"]}})

    def watch(self, gv, plural, kind, ns, q):
        f = self.fake
        try:
            sel = parse_selector(q.get("labelSelector", ""))
        except ValueError as e:
            return self.fail(400, "BadRequest", str(e))
        rv = q.get("resourceVersion", "")
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
        timeout = float(q.get("timeoutSeconds") or 1800)
        end = time.monotonic() + timeout
        self.start_chunks("application/json")

        def send(typ, obj):
            self.chunk(json.dumps({"type": typ, "object": obj}).encode() + b"\n")

        with f.lock:
            f.watch_conns.append(self.connection)
            if rv not in ("", "0") and (not rv.isdigit() or int(rv) < f.compacted):
                send("ERROR", status(410, "Expired",
                                     f"too old resource version: {rv} ({f.compacted})"))
                self.end_chunks()
                return
            if rv in ("", "0"):
                pending = [("ADDED", o) for (g, p, n, _), o in sorted(f.objects.items())
                           if (g, p, n) == (gv, plural, ns) and matches(o, sel)]
                pos = int(f.rv)
            else:
                pos = int(rv)
                pending = []
            last_bookmark = time.monotonic()
        try:
            while not f.stopped and time.monotonic() < end:
                for typ, o in pending:
                    send(typ, json.loads(json.dumps(o)))
                pending = []
                with f.lock:
                    for erv, g, p, n, typ, o in f.events:
                        if erv > pos and (g, p, n) == (gv, plural, ns):
                            pos = erv
                            if matches(o, sel):
                                pending.append((typ, o))
                    pos = max(pos, f.rv) if not pending else pos
                    if not pending:
                        if bookmarks and time.monotonic() - last_bookmark >= f.bookmark_interval:
                            last_bookmark = time.monotonic()
                            pending = [("BOOKMARK", {"kind": kind, "apiVersion": gv,
                                                     "metadata": {"resourceVersion": str(pos)}})]
                        else:
                            f.lock.wait(timeout=min(f.bookmark_interval,
                                                    max(0.01, end - time.monotonic())))
            if not f.stopped:
                self.end_chunks()
        except OSError:
            pass  # the client went, or drop_watches cut the stream
        finally:
            with f.lock:
                if self.connection in f.watch_conns:
                    f.watch_conns.remove(self.connection)
        self.close_connection = True

    def pod_log(self, ns, name, q):
        f = self.fake
        pod = f.get("v1", "pods", ns, name)
        if not pod:
            return self.not_found("v1", "pods", name)
        path = (pod["metadata"].get("annotations") or {}).get("kubefake/log")
        if not path:
            return self.fail(400, "BadRequest",
                             f'container "{pod["spec"]["containers"][0]["name"]}" in pod '
                             f'"{name}" is waiting to start: ContainerCreating')
        follow = q.get("follow") in ("true", "1")
        self.start_chunks("text/plain")
        try:
            with open(path, "rb") as lf:
                while True:
                    data = lf.read(65536)
                    if data:
                        self.chunk(data)
                        continue
                    if not follow or not f.pod_running(pod["metadata"]["uid"]):
                        rest = lf.read()
                        if rest:
                            self.chunk(rest)
                        break
                    time.sleep(0.05)  # a file has no change notification here: poll it
            self.end_chunks()
        except OSError:
            pass
        self.close_connection = True


def secret_value(obj, key):
    return base64.b64decode(obj["data"][key]).decode()


def kubectl():
    return shutil.which("kubectl")
