"""Shared harness for hoist's integration tests.

Tests are plain functions marked with @test; main() runs them in order and
prints TAP. Fixtures start real servers on free loopback ports:

    reg = Registry(tmp)                  # CNCF distribution, no auth
    reg = Registry(tmp, auth="htpasswd", users={"alice": "pw"})
    reg = Registry(tmp, tls=True)        # CA and cert made with openssl
    reg.start(); ...; reg.stop()

hoist(...) runs the binary under test (HOIST_BIN) and returns a
CompletedProcess; check=True raises with its stderr when it fails.
"""
import base64
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

HOIST = os.environ.get("HOIST_BIN", "hoist")
SOURCE_ROOT = os.environ.get(
    "HOIST_SOURCE_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
)
CACHE = os.environ.get("HOIST_CACHE", os.path.expanduser("~/.cache/hoist"))

_tests = []


def test(fn):
    _tests.append(fn)
    return fn


class Skip(Exception):
    pass


def main():
    only = sys.argv[1:]
    selected = [t for t in _tests if not only or t.__name__ in only]
    print(f"1..{len(selected)}", flush=True)
    failed = 0
    for i, t in enumerate(selected, 1):
        start = time.monotonic()
        try:
            t()
            print(f"ok {i} - {t.__name__} ({time.monotonic() - start:.1f}s)", flush=True)
        except Skip as e:
            print(f"ok {i} - {t.__name__} # SKIP {e}", flush=True)
        except Exception:
            failed += 1
            print(f"not ok {i} - {t.__name__}", flush=True)
            for line in traceback.format_exc().splitlines():
                print(f"# {line}", flush=True)
    _cleanup_all()
    sys.exit(1 if failed else 0)


_cleanups = []


def on_exit(fn):
    _cleanups.append(fn)


def _cleanup_all():
    while _cleanups:
        try:
            _cleanups.pop()()
        except Exception:
            pass


def _remove_tree(d):
    # rm(1) takes a large unpacked image several times faster than rmtree
    if subprocess.run(["rm", "-rf", "--one-file-system", d], stderr=subprocess.DEVNULL).returncode:
        shutil.rmtree(d, ignore_errors=True)


def tmpdir(prefix="hoist-it-"):
    d = tempfile.mkdtemp(prefix=prefix)
    on_exit(lambda: _remove_tree(d))
    return d


# Trees unpacked by the tests (their images are new on every run) go to a
# rootfs cache of this run, removed at its end, not to the user's.
if "HOIST_ROOTFS_CACHE" not in os.environ:
    os.environ["HOIST_ROOTFS_CACHE"] = tmpdir("hoist-rootfs-")
# So does the record of where blobs live: the registries of a run (on ports
# another run may reuse) are not the user's.
if "HOIST_BLOB_LOCATIONS" not in os.environ:
    os.environ["HOIST_BLOB_LOCATIONS"] = os.path.join(tmpdir("hoist-blobloc-"), "blob-locations.db")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hoist(*args, check=True, env=None, input=None, timeout=600):
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run(
        [HOIST, *map(str, args)],
        capture_output=True,
        text=True,
        env=e,
        input=input,
        timeout=timeout,
    )
    if check and p.returncode != 0:
        raise AssertionError(
            f"hoist {' '.join(map(str, args))} exited {p.returncode}\n"
            f"stdout: {p.stdout}\nstderr: {p.stderr}"
        )
    return p


def run(*args, check=True, env=None, timeout=600, cwd=None):
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run(
        list(map(str, args)), capture_output=True, text=True, env=e, timeout=timeout, cwd=cwd
    )
    if check and p.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} exited {p.returncode}\n"
            f"stdout: {p.stdout}\nstderr: {p.stderr}"
        )
    return p


def sleepers(tag):
    """Pids of the host's processes running `sleep TAG`."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read() == b"sleep\0" + tag.encode() + b"\0":
                    found.append(pid)
        except OSError:
            pass
    return found


def script_base(workdir):
    """oci:DIR:base of a busybox base whose /bin/extend runs the build's
    requirements file as a shell script, with /bin/probe for what busybox
    cannot do (tests/fixtures/hostile-image.sh)."""
    out = os.path.join(workdir, "script-base")
    run("bash", os.path.join(SOURCE_ROOT, "tests", "fixtures", "hostile-image.sh"), HOIST, out,
        "base", timeout=300)
    return f"oci:{out}:base"


def busybox_rootfs(layout):
    """Writes the busybox fixture (tests/fixtures/busybox-image.sh, cached under
    $HOIST_CACHE) as oci:LAYOUT:base and returns its unpacked tree in the rootfs
    cache."""
    run("bash", os.path.join(SOURCE_ROOT, "tests", "fixtures", "busybox-image.sh"), HOIST, layout,
        "base")
    return hoist("unpack", "--cache", f"oci:{layout}:base").stdout.strip()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def wait_for(pred, timeout=20, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if pred():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def make_ca(dirname, host="127.0.0.1"):
    """Makes a CA and a server certificate for host; returns (ca, cert, key)."""
    ca_key = os.path.join(dirname, "ca.key")
    ca = os.path.join(dirname, "ca.crt")
    key = os.path.join(dirname, "server.key")
    csr = os.path.join(dirname, "server.csr")
    cert = os.path.join(dirname, "server.crt")
    ext = os.path.join(dirname, "ext.cnf")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=hoist-test-ca", "-keyout", ca_key, "-out", ca)
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={host}",
        "-keyout", key, "-out", csr)
    with open(ext, "w") as f:
        f.write(f"subjectAltName=IP:{host},DNS:localhost\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-days", "2", "-extfile", ext, "-out", cert)
    return ca, cert, key


class Registry:
    """The CNCF distribution registry (Debian's docker-registry) on loopback."""

    def __init__(self, workdir, auth=None, users=None, tls=False, token=None, delete=True):
        self.dir = os.path.join(workdir, f"registry-{free_port()}")
        os.makedirs(self.dir)
        self.port = free_port()
        self.auth = auth
        self.users = users or {}
        self.tls = tls
        self.token = token  # dict(realm=, service=, issuer=, rootcertbundle=)
        self.delete = delete
        self.proc = None
        self.ca = None
        self.host = f"127.0.0.1:{self.port}"

    def _config(self):
        lines = [
            "version: 0.1",
            "log:",
            "  level: error",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.dir}/data",
            "  delete:",
            f"    enabled: {'true' if self.delete else 'false'}",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
            f"  secret: hoist-test-{self.port}",
        ]
        if self.tls:
            if not self.ca:
                self.ca, cert, key = make_ca(self.dir)
                self.cert, self.key = cert, key
            lines += ["  tls:", f"    certificate: {self.cert}", f"    key: {self.key}"]
        if self.auth == "htpasswd":
            path = os.path.join(self.dir, "htpasswd")
            with open(path, "w") as f:
                for user, pw in self.users.items():
                    f.write(f"{user}:{_bcrypt(pw)}\n")
            lines += ["auth:", "  htpasswd:", "    realm: hoist-test", f"    path: {path}"]
        elif self.auth == "token":
            t = self.token
            lines += [
                "auth:",
                "  token:",
                f"    realm: {t['realm']}",
                f"    service: {t['service']}",
                f"    issuer: {t['issuer']}",
                f"    rootcertbundle: {t['rootcertbundle']}",
            ]
        return "\n".join(lines) + "\n"

    def start(self):
        cfg = os.path.join(self.dir, "config.yml")
        with open(cfg, "w") as f:
            f.write(self._config())
        log = open(os.path.join(self.dir, "registry.log"), "ab")
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", cfg], stdout=log, stderr=log, start_new_session=True
        )
        on_exit(self.stop)
        wait_for(self._ready, what=f"registry on {self.host}")
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"registry exited: {self.log()}")
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True

    def log(self):
        try:
            return open(os.path.join(self.dir, "registry.log")).read()[-4000:]
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def url(self, path):
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}{path}"

    def get(self, path, headers=None, method="GET"):
        """A request to the registry without hoist (test oracle)."""
        req = urllib.request.Request(self.url(path), headers=headers or {}, method=method)
        if self.auth == "htpasswd" and self.users:
            u, p = next(iter(self.users.items()))
            req.add_header("Authorization", "Basic " + base64.b64encode(f"{u}:{p}".encode()).decode())
        return urllib.request.urlopen(req, timeout=30)


def _bcrypt(password):
    """bcrypt hash (the only kind distribution accepts) from apache2-utils' htpasswd."""
    out = run("htpasswd", "-nbB", "u", password).stdout.strip()
    return out.split(":", 1)[1]


def skopeo(*args, check=True):
    return run("skopeo", "--insecure-policy", *args, check=check)


API = "/system/api/v1"


class Server:
    """`hoist serve` on loopback."""

    def __init__(self, data=None, workers=2, config=None, env=None, tls=None, db=None):
        self.tls = tls  # (ca, cert, key)
        self.db = db  # the job store's URL (--db)
        self.data = data or tmpdir("hoist-serve-")
        self.workers = workers
        self.config = config
        self.env = env or {}
        self.proc = None

    def start(self):
        self.port = free_port()
        args = [HOIST, "serve", "--listen", f"127.0.0.1:{self.port}", "--data", self.data,
                "--workers", str(self.workers)]
        if self.db:
            args += ["--db", self.db]
        if self.config:
            path = os.path.join(self.data, "..", f"config-{self.port}.json")
            with open(path, "w") as f:
                json.dump(self.config, f)
            args += ["--config", path]
        if self.tls:
            args += ["--tls-cert", self.tls[1], "--tls-key", self.tls[2]]
            if len(self.tls) > 3:
                args += ["--tls-client-ca", self.tls[0]]
        e = dict(os.environ)
        e.update(self.env)
        self.log = open(os.path.join(self.data, "..", f"serve-{self.port}.log"), "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log, env=e,
                                     start_new_session=True)
        on_exit(self.stop)
        wait_for(self._ready, what="hoist serve")
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("hoist serve exited")
        return self.request("GET", "/healthz")[0] == 200

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if sig == signal.SIGTERM and self.proc.returncode != 0:
                raise AssertionError(f"hoist serve exited {self.proc.returncode}: "
                                     f"{open(self.log.name, 'rb').read()[-3000:]!r}")

    def token(self, login):
        return hoist("service", "token", "add", login, "--data", self.data).stdout.strip()

    def request(self, method, path, body=None, auth=None, headers=None, raw=False):
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.tls[0])
            if len(self.tls) > 3 and self.tls[3]:
                ctx.load_cert_chain(*self.tls[3])
            c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=60, context=ctx)
        else:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        h = dict(headers or {})
        if auth is not None:
            h["authorization"] = auth
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        if raw:
            return r.status, data
        try:
            return r.status, json.loads(data)
        except ValueError:
            return r.status, data

    def api(self, method, path, key, body=None):
        return self.request(method, API + path, body=body, auth=key)

    def status(self, key, job):
        return self.api("GET", f"/build/status?id={job}", key)[1]

    def wait_phase(self, key, job, phases, timeout=120):
        wait_for(lambda: self.status(key, job).get("phase") in phases, timeout=timeout,
                 what=f"job {job} in {phases}")
        return self.status(key, job)


class LooseServer(Server):
    """A service whose start does not wait for a healthy /healthz (one that starts while
    what it needs is out of reach answers 503)."""

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("hoist serve exited")
        return self.request("GET", "/healthz")[0] in (200, 503)


PG_BIN = "/usr/lib/postgresql/15/bin"


def busybox_with_extend(state, workdir, host, tag, script):
    """The busybox fixture plus an executable /bin/extend running script, pushed to the
    registry at host as base/busybox:TAG; returns the reference. state (the calling test
    file's dict) keeps the fixture's layout and each reference made."""
    key = ("base", tag)
    if key not in state:
        if "busybox" not in state:
            out = os.path.join(workdir, "busybox")
            run("bash", os.path.join(SOURCE_ROOT, "tests", "fixtures", "busybox-image.sh"), HOIST,
                out, "latest")
            state["busybox"] = out
        path = os.path.join(tmpdir(), "extend")
        with open(path, "w") as f:
            f.write(script)
        os.chmod(path, 0o755)
        ref = f"{host}/base/busybox:{tag}"
        hoist("append", f"oci:{state['busybox']}:latest", "--target", ref, "--map",
              f"{path}:/bin/extend")
        state[key] = ref
    return state[key]


COUCH_PACKAGES = ["express@5.3.0", "express-pouchdb@4.2.0", "pouchdb-core@9.0.0",
                  "pouchdb-adapter-memory@9.0.0", "pouchdb-mapreduce@9.0.0", "pouchdb-find@9.0.0"]


def couchdb_compat(workdir):
    """A CouchDB-compatible server (express-pouchdb, in memory; not CouchDB itself):
    its npm packages are installed once under $HOIST_CACHE/npm. Returns its URL and
    put(path, doc=None), which PUTs a database or a document."""
    prefix = os.path.join(CACHE, "npm", "couchdb-compat")
    mods = os.path.join(prefix, "node_modules")
    if not os.path.isdir(os.path.join(mods, "express-pouchdb")):
        os.makedirs(prefix, exist_ok=True)
        p = run("npm", "install", "--no-audit", "--no-fund", "--prefix", prefix, *COUCH_PACKAGES,
                check=False, timeout=600)
        if p.returncode != 0:
            raise Skip(f"npm install failed: {p.stderr[-300:]}")
    port = free_port()
    log = open(os.path.join(workdir, f"couch-{port}.log"), "ab")
    proc = subprocess.Popen(["node", os.path.join(os.path.dirname(__file__), "couchdb_compat.js"),
                             str(port)], stdout=log, stderr=log, start_new_session=True,
                            env=dict(os.environ, NODE_PATH=mods))
    on_exit(proc.kill)
    base = f"http://127.0.0.1:{port}"

    def put(path, doc=None):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("PUT", path, body=json.dumps(doc) if doc is not None else None,
                  headers={"content-type": "application/json"})
        r = c.getresponse()
        r.read()
        c.close()
        assert r.status in (200, 201), (path, r.status)

    wait_for(lambda: put("/nuvolaris_subjects") is None, what="couchdb-compatible server")
    put("/nuvolaris_users_metadata")
    return base, put


class Postgres:
    """A throwaway PostgreSQL (Debian's postgresql 15): initdb in a temp dir,
    fsync off, trust auth for the user `hoist`, a socket in that dir and a
    loopback port; run as the `postgres` user when the tests run as root.

        pg = Postgres().start(); url = pg.url(pg.create_db()); pg.restart(); pg.stop()
    """

    def __init__(self, tls=None):
        self.tls = tls  # (cert, key): TLS on, with this server certificate
        self.dir = tempfile.mkdtemp(prefix="hoist-pg-")
        os.chmod(self.dir, 0o755)
        on_exit(lambda: shutil.rmtree(self.dir, ignore_errors=True))
        self.data = os.path.join(self.dir, "data")
        self.proc = None
        self.port = None
        self.dbs = 0
        self.log = os.path.join(self.dir, "postgres.log")

    @staticmethod
    def available():
        return os.path.exists(os.path.join(PG_BIN, "postgres"))

    def _as_owner(self, args):
        if os.getuid() == 0:
            return ["runuser", "-u", "postgres", "--", *args]
        return args

    def start(self):
        if not os.path.exists(self.data):
            if os.getuid() == 0:
                shutil.chown(self.dir, "postgres")
            run(*self._as_owner([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", "hoist",
                                 "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"]))
            self.port = free_port()
        extra = []
        if self.tls:
            for name, src in (("server.crt", self.tls[0]), ("server.key", self.tls[1])):
                dst = os.path.join(self.dir, name)
                shutil.copy(src, dst)
                os.chmod(dst, 0o600)
                if os.getuid() == 0:
                    shutil.chown(dst, "postgres")
            extra = ["-c", "ssl=on", "-c", f"ssl_cert_file={self.dir}/server.crt",
                     "-c", f"ssl_key_file={self.dir}/server.key"]
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            self._as_owner([os.path.join(PG_BIN, "postgres"), "-D", self.data, "-k", self.dir,
                            "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
                            "-c", "fsync=off", "-c", "synchronous_commit=off",
                            "-c", "full_page_writes=off", "-c", "max_connections=300",
                            *extra]),
            stdout=log, stderr=log, start_new_session=True)
        on_exit(self.stop)
        wait_for(self._ready, timeout=60, what="postgres")
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"postgres exited: {open(self.log).read()[-2000:]}")
        return self.psql("SELECT 1", check=False).returncode == 0

    def psql(self, sql, db="postgres", check=True):
        return run("psql", "-X", "-q", "-t", "-A", "-h", "127.0.0.1", "-p", str(self.port),
                   "-U", "hoist", "-d", db, "-c", sql, check=check)

    def create_db(self):
        self.dbs += 1
        name = f"hoist{self.dbs}"
        self.psql(f"CREATE DATABASE {name}")
        return name

    def url(self, db="postgres"):
        return f"postgres://hoist@127.0.0.1:{self.port}/{db}"

    def stop(self, sig=signal.SIGINT):
        if self.proc and self.proc.poll() is None:
            # the postmaster itself (runuser may not pass signals on); SIGINT: fast shutdown
            try:
                with open(os.path.join(self.data, "postmaster.pid")) as f:
                    os.kill(int(f.readline()), sig)
            except (OSError, ValueError):
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self):
        self.stop()
        self.start()


# ------------------------------------------------------------- JSON Schemas

SCHEMAS = os.path.join(SOURCE_ROOT, "tests", "data", "schemas")
SCHEMA_CHECK_JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema_check.js")
SCHEMA_VALIDATOR = {"ajv": "8.20.0", "ajv-formats": "3.0.1"}


def npm_modules(name, pinned):
    """The node_modules of the npm packages pinned ({name: version}),
    installed once under $HOIST_CACHE/npm/<name>, again when one is missing or
    of another version; Skip when npm cannot install them."""
    prefix = os.path.join(CACHE, "npm", name)
    mods = os.path.join(prefix, "node_modules")

    def have(package, version):
        try:
            with open(os.path.join(mods, package, "package.json")) as f:
                return json.load(f)["version"] == version
        except (OSError, ValueError, KeyError):
            return False

    if not all(have(n, v) for n, v in pinned.items()):
        os.makedirs(prefix, exist_ok=True)
        p = run("npm", "install", "--no-audit", "--no-fund", "--prefix", prefix,
                *(f"{n}@{v}" for n, v in pinned.items()), check=False, timeout=600)
        if p.returncode != 0:
            raise Skip(f"npm install failed: {p.stderr[-300:]}")
    return mods


def schema_node_modules():
    """Ajv's node_modules for schema_check.js (under $HOIST_CACHE/npm/schema)."""
    return npm_modules("schema", SCHEMA_VALIDATOR)


def schema_errors(schema_file, doc, extra=()):
    """Ajv's errors for doc (a JSON value) against schema_file (a path, or a
    name under tests/data/schemas), the schemas extra registered by their $id
    for its $refs; [] when doc is valid."""
    def where(f):
        return f if os.path.isabs(f) else os.path.join(SCHEMAS, f)

    p = subprocess.run(["node", SCHEMA_CHECK_JS, schema_node_modules(), where(schema_file),
                        *map(where, extra)], capture_output=True, text=True, timeout=120,
                       input=json.dumps(doc))
    assert p.returncode == 0, f"schema_check.js exited {p.returncode}: {p.stderr}"
    verdict = json.loads(p.stdout)
    return [] if verdict["valid"] else verdict["errors"]
