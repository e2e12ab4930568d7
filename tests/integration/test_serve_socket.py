#!/usr/bin/env python3
"""hoist serve under systemd: socket activation and the units.

No systemd runs here, so the test passes the listening socket the way systemd
does (sd_listen_fds(3)): it binds and listens on loopback itself, the child
gets the socket as fd 3 with LISTEN_FDS=1, LISTEN_FDNAMES, and LISTEN_PID set
to the child's own pid (`sh -c 'LISTEN_PID=$$ exec hoist serve ...'`: exec
keeps the pid). The units in deploy/systemd are checked with
`systemd-analyze verify` and `systemd-sysusers --root`, which need no running
systemd.
"""
import base64
import http.client
import json
import os
import shlex
import shutil
import socket
import subprocess

from hoisttest import (HOIST, SOURCE_ROOT, Server, Skip, free_port, main, make_ca, on_exit, run,
                       test, tmpdir, wait_for)

UNITS = os.path.join(SOURCE_ROOT, "deploy", "systemd")
FDNAME = "hoist-serve.socket"
# what sh runs: the pid it sets is its own, which exec hands to hoist serve
ACTIVATE = 'LISTEN_PID=$$ exec "$0" "$@"'


def listener(family=socket.AF_INET, kind=socket.SOCK_STREAM, listen=True):
    """A socket on a free loopback port (a unix one in a temp dir), listening
    unless told otherwise: what a socket unit's ListenStream= makes."""
    s = socket.socket(family, kind)
    on_exit(s.close)
    if family == socket.AF_UNIX:
        s.bind(os.path.join(tmpdir(), "sock"))
    else:
        s.bind(("127.0.0.1", 0))
    if listen:
        s.listen(64)
    return s


def as_fd3(fd):
    """preexec_fn: fd becomes the child's fd 3, inherited (dup2 onto itself
    would leave close-on-exec set)."""
    def put():
        if fd != 3:
            os.dup2(fd, 3)
        os.set_inheritable(3, True)
    return put


class Activated(Server):
    """`hoist serve` given fd as systemd gives a socket-activated service its
    socket. listen: a --listen as well; env: over the LISTEN_* variables."""

    def __init__(self, fd, listen=None, env=None, own_pid=True, **kw):
        super().__init__(**kw)
        self.fd = fd
        self.listen = listen
        self.listen_env = {"LISTEN_FDS": "1", "LISTEN_FDNAMES": FDNAME, **(env or {})}
        self.own_pid = own_pid

    def argv(self):
        args = [HOIST, "serve", "--data", self.data, "--workers", str(self.workers)]
        if self.listen:
            args += ["--listen", self.listen]
        if self.config:
            path = os.path.join(self.data, "..", f"config-{os.getpid()}-{id(self)}.json")
            with open(path, "w") as f:
                json.dump(self.config, f)
            args += ["--config", path]
        if self.tls:
            args += ["--tls-cert", self.tls[1], "--tls-key", self.tls[2]]
        return ["sh", "-c", ACTIVATE, *args] if self.own_pid else args

    def popen(self, **kw):
        e = dict(os.environ)
        e.update(self.listen_env)
        if self.fd is None:  # no fd 3 at all
            return subprocess.Popen(self.argv(), env=e, start_new_session=True, **kw)
        # close_fds would close fd 3 after preexec_fn made it
        return subprocess.Popen(self.argv(), env=e, close_fds=False, preexec_fn=as_fd3(self.fd),
                                start_new_session=True, **kw)

    def start(self, port):
        self.port = port
        self.log = open(os.path.join(self.data, "..", f"serve-{id(self)}.log"), "ab")
        self.proc = self.popen(stdout=self.log, stderr=self.log)
        on_exit(self.stop)
        wait_for(self._ready, what="hoist serve")
        return self

    def log_text(self):
        return open(self.log.name, errors="replace").read()


def listening_inodes(pid):
    """The inodes of the listening TCP sockets process pid holds open."""
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":  # TCP_LISTEN
                    listening.add(int(fields[9]))
    held = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            held.add(int(target[8:-1]))
    return held & listening


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def children(pid):
    """The pids whose parent is pid."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(p))
    return out


# ------------------------------------------------------------------ activation

@test
def api_answers_on_the_passed_socket_and_nothing_else_is_bound():
    sock = listener()
    port = sock.getsockname()[1]
    s = Activated(sock.fileno()).start(port)
    assert s.request("GET", "/healthz") == (200, {"status": "ok", "message": "healthy"})
    key = s.token("alice")
    st, r = s.api("GET", "/builds", key)
    assert st == 200 and r["status"] == "ok" and r["builds"] == [], (st, r)
    st, r = s.api("GET", "/builds", key.split(":")[0] + ":" + "0" * 64)
    assert st == 401 and r["message"] == "Invalid authorization", (st, r)
    # the only listening socket it holds is the one passed (fd 3 and the
    # server's duplicate of it); nothing on its default 127.0.0.1:8080
    ino = os.fstat(sock.fileno()).st_ino
    assert listening_inodes(s.proc.pid) == {ino}, (listening_inodes(s.proc.pid), ino)
    # fd 3 is close-on-exec now: no build inherits it
    with open(f"/proc/{s.proc.pid}/fdinfo/3") as f:
        flags = int(next(line for line in f if line.startswith("flags:")).split()[1], 8)
    assert flags & 0o2000000, oct(flags)
    assert f"listening on port {port} (the socket systemd passed, fd 3)" in s.log_text()
    s.stop()


@test
def passed_socket_wins_over_listen():
    sock = listener()
    other = free_port()
    s = Activated(sock.fileno(), listen=f"127.0.0.1:{other}").start(sock.getsockname()[1])
    assert s.request("GET", "/healthz")[0] == 200
    assert port_free(other), f"hoist serve bound --listen 127.0.0.1:{other} too"
    assert listening_inodes(s.proc.pid) == {os.fstat(sock.fileno()).st_ino}
    assert (f"hoist serve: --listen 127.0.0.1:{other} ignored: answering on the socket "
            "systemd passed") in s.log_text(), s.log_text()
    s.stop()


@test
def tls_on_the_passed_socket():
    ca, cert, key = make_ca(tmpdir())
    sock = listener()
    s = Activated(sock.fileno(), tls=(ca, cert, key)).start(sock.getsockname()[1])
    k = s.token("alice")
    st, r = s.api("GET", "/builds", k)
    assert st == 200 and r["builds"] == [], (st, r)
    # https only: a plain request on the same socket gets no HTTP answer
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    try:
        c.request("GET", "/healthz")
        status = c.getresponse().status
    except (OSError, http.client.HTTPException):
        status = None
    c.close()
    assert status != 200, status
    s.stop()


@test
def builds_do_not_inherit_listen_variables():
    # a "registry" that accepts connections and never answers: the build
    # waits in its pull, alive, until it is canceled
    mute = listener()
    host = f"127.0.0.1:{mute.getsockname()[1]}"
    sock = listener()
    s = Activated(sock.fileno(), config={"registry_host": host,
                                         "allowed_sources": [f"{host}/base/*"]})
    s.start(sock.getsockname()[1])
    key = s.token("alice")
    st, r = s.api("POST", "/build/start", key,
                  {"source": f"{host}/base/busybox:1", "target": "alice:t1", "kind": "python",
                   "file": base64.b64encode(b"flask\n").decode()})
    assert st == 200, r
    job = r["id"]
    found = {}

    def build_child():
        for pid in children(s.proc.pid):
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            if argv[1:2] == [b"build"]:
                found["pid"] = pid
                return True
        return False

    wait_for(build_child, timeout=60, what="the build's hoist build process")
    pid = found["pid"]
    with open(f"/proc/{pid}/environ", "rb") as f:
        environ = f.read().split(b"\0")
    leaked = [v for v in environ if v.startswith(b"LISTEN_")]
    assert leaked == [], leaked
    assert any(v.startswith(b"PATH=") for v in environ)  # the environment is there
    assert listening_inodes(pid) == set(), "the build inherited the service's socket"
    assert s.api("DELETE", f"/build?id={job}", key)[0] == 200
    assert s.wait_phase(key, job, ("Failed",))["state"] == "canceled"
    s.stop()


@test
def listen_pid_of_another_process_is_ignored():
    sock = listener()
    port = free_port()
    # LISTEN_PID names this test, not hoist serve: the socket is not its own
    s = Activated(sock.fileno(), listen=f"127.0.0.1:{port}", own_pid=False,
                  env={"LISTEN_PID": str(os.getpid())}).start(port)
    assert s.request("GET", "/healthz")[0] == 200
    assert not port_free(port)
    assert "the socket systemd passed" not in s.log_text(), s.log_text()
    s.stop()


def bad_fd3_cases():
    d = tmpdir()
    regular = open(os.path.join(d, "file"), "w+")
    on_exit(regular.close)
    directory = os.open(d, os.O_RDONLY | os.O_CLOEXEC)
    on_exit(lambda: os.close(directory))
    named = f"LISTEN_FDS=1: fd 3 ({FDNAME})"
    return [
        # (name, fd given as fd 3 or None, LISTEN_* over the defaults, stderr)
        ("a regular file", regular.fileno(), {},
         f"{named} is not a listening socket: a regular file"),
        ("a directory", directory, {},
         f"{named} is not a listening socket: a directory"),
        ("a TCP socket that does not listen", listener(listen=False).fileno(), {},
         f"{named} is not a listening socket: a socket that is not listening"),
        ("a UDP socket", listener(kind=socket.SOCK_DGRAM, listen=False).fileno(), {},
         f"{named} is not a listening socket: not a stream socket"),
        ("a unix socket", listener(family=socket.AF_UNIX).fileno(), {},
         f"{named} is not a TCP socket"),
        ("no fd 3 at all", None, {}, f"{named}: Bad file descriptor"),
        ("no name", regular.fileno(), {"LISTEN_FDNAMES": ""},
         "LISTEN_FDS=1: fd 3 is not a listening socket: a regular file"),
        ("two sockets", listener().fileno(), {"LISTEN_FDS": "2"},
         "LISTEN_FDS=2: systemd passed 2 sockets, hoist serve answers on one"),
        ("LISTEN_FDS not a number", listener().fileno(), {"LISTEN_FDS": "one"},
         "LISTEN_FDS=one: not a number of descriptors"),
    ]


@test
def bad_passed_descriptor_is_refused_by_name():
    failures = []
    for name, fd, env, want in bad_fd3_cases():
        port = free_port()
        s = Activated(fd, listen=f"127.0.0.1:{port}", env=env)
        p = s.popen(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            failures.append(f"{name}: still running after 60 s")
            continue
        # an error, said in one line; it did not fall back to binding --listen
        if p.returncode != 1 or not err.startswith(f"hoist serve: {want}") or \
                err.count("\n") != 1:
            failures.append(f"{name}: exit {p.returncode}, stderr {err!r}, want {want!r}")
        if not port_free(port):
            failures.append(f"{name}: port {port} is taken")
    assert not failures, "\n".join(failures)


# ----------------------------------------------------------------------- units

def exec_start(unit_text):
    """The ExecStart= of a unit's text as systemd reads it: continuation lines
    joined, split into words, $$ as $."""
    text = unit_text.replace("\\\n", " ")
    line = next(ln for ln in text.splitlines() if ln.startswith("ExecStart="))
    return [w.replace("$$", "$") for w in shlex.split(line[len("ExecStart="):])]


@test
def units_verify():
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        raise Skip("systemd-analyze is not installed (Debian package systemd)")
    d = tmpdir()
    # the service as meson configures it, its hoist the one under test
    with open(os.path.join(UNITS, "hoist-serve.service.in")) as f:
        service = f.read().replace("@bindir@", os.path.dirname(os.path.abspath(HOIST)))
    with open(os.path.join(d, "hoist-serve.service"), "w") as f:
        f.write(service)
    shutil.copy(os.path.join(UNITS, "hoist-serve.socket"), d)
    # --man=no: hoist-serve(1) need not be installed on this machine
    p = run(analyze, "verify", "--man=no", os.path.join(d, "hoist-serve.socket"),
            os.path.join(d, "hoist-serve.service"), check=False, cwd=d)
    assert p.returncode == 0 and p.stdout == "" and p.stderr == "", (p.stdout, p.stderr)
    # what verify does not look into: the shell script and hoist serve's flags
    argv = exec_start(service)
    assert argv[:2] == ["/bin/sh", "-c"], argv
    assert run("sh", "-n", "-c", argv[2], check=False).returncode == 0, argv[2]
    tail = shlex.split(argv[2].rsplit("exec ", 1)[1])
    assert tail[:2] == [os.path.abspath(HOIST), "serve"], tail
    usage = run(HOIST, "serve", "--help").stdout
    for flag in (a for a in tail[2:] if a.startswith("--")):
        assert f"  {flag} " in usage, (flag, usage)
    assert "LISTEN_PID=" not in service  # systemd sets it, for the pid it starts
    assert "\nDelegate=yes\n" in service and "\nUser=hoist\n" in service
    assert "\nStateDirectory=hoist\n" in service and "--data /var/lib/hoist" in argv[2]
    for forbidden in ("RestrictNamespaces=", "PrivateUsers=", "NoNewPrivileges=yes",
                      "SystemCallFilter=", "ProtectKernelTunables=", "ProtectControlGroups="):
        assert f"\n{forbidden}" not in service, forbidden
    with open(os.path.join(UNITS, "hoist-serve.socket")) as f:
        socket_unit = f.read()
    assert "\nAccept=no\n" in socket_unit
    assert socket_unit.count("\nListenStream=") == 1  # hoist serve answers on one socket


@test
def sysusers_makes_the_user():
    sysusers = shutil.which("systemd-sysusers")
    if not sysusers:
        raise Skip("systemd-sysusers is not installed (Debian package systemd)")
    root = tmpdir()
    os.makedirs(os.path.join(root, "etc"))
    run(sysusers, f"--root={root}", os.path.join(UNITS, "hoist.conf"))
    with open(os.path.join(root, "etc", "passwd")) as f:
        users = {ln.split(":")[0]: ln.strip().split(":") for ln in f}
    assert "hoist" in users, users
    uid, gid, home = int(users["hoist"][2]), users["hoist"][3], users["hoist"][5]
    assert 0 < uid < 1000 and home == "/var/lib/hoist", users["hoist"]  # a system user
    with open(os.path.join(root, "etc", "group")) as f:
        assert f"hoist:x:{gid}:" in f.read()


if __name__ == "__main__":
    main()
