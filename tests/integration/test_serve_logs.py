#!/usr/bin/env python3
"""hoist serve: followed logs (GET build/logs?follow=1) with real builds.

A follower waits for its build's log to grow without holding one of the
server's threads: while builds are followed the rest of the API answers at
once; a follower gets every line its build writes, in order, and its answer
ends when the build does; a follower that goes away is forgotten while the
build still runs; stopping the server ends every follower.

Builds are real `hoist build` children of a `hoist serve` on loopback: a
busybox base with a scripted /bin/extend, pushed to a real registry.
"""
import contextlib
import http.client
import os
import signal
import socket
import struct
import threading
import time

from hoisttest import (API, Registry, SOURCE_ROOT, Server, Skip, busybox_with_extend, hoist, main,
                       test, tmpdir, wait_for)

FIXTURES = os.path.join(SOURCE_ROOT, "tests", "fixtures")
_state = {}

# prints a line, then waits (the followed build that does not end by itself)
SLOW = "#!/bin/sh\necho extending\nsleep 120\n"
# 60 numbered lines over about 3 s
LINES = ("#!/bin/sh\ni=0\nwhile [ $i -lt 60 ]; do echo \"line $i\"; i=$((i+1)); sleep 0.05; done\n"
         "echo done > /extended\n")


def work():
    if "work" not in _state:
        _state["work"] = tmpdir("hoist-serve-logs-")
        os.environ["HOIST_IMAGES"] = os.path.join(_state["work"], "images")
    return _state["work"]


def registry():
    if "reg" not in _state:
        _state["reg"] = Registry(work()).start()
    return _state["reg"]


def base_with_extend(tag, script):
    """busybox + an executable /bin/extend, pushed to the test registry."""
    if hoist("build", "--help", check=False).returncode != 0 or \
            not os.path.exists(os.path.join(FIXTURES, "busybox-image.sh")):
        raise Skip("hoist build is not available in this tree")
    return busybox_with_extend(_state, work(), registry().host, tag, script)


def server(**kw):
    kw.setdefault("config", {"registry_host": registry().host, "per_user_limit": 4,
                             "allowed_sources": [f"{registry().host}/base/*"]})
    return Server(**kw).start()


@contextlib.contextmanager
def own(s):
    """The test's server, killed if the test fails (its builds would slow the
    next tests); a test that passes stops it itself."""
    try:
        yield s
    finally:
        s.stop(signal.SIGKILL)


def start(s, key, source, target, file="Zmxhc2sK"):
    st, r = s.api("POST", "/build/start", key,
                  {"source": source, "target": target, "kind": "python", "file": file})
    assert st == 200, r
    return r["id"]


def wait_log(s, key, job, text, timeout=120):
    """Waits until the job's log holds text; returns the log."""
    got = []

    def holds():
        st, log = s.request("GET", f"{API}/build/logs?id={job}", auth=key, raw=True)
        got[:] = [log]
        return st == 200 and text.encode() in log

    wait_for(holds, timeout=timeout, what=f"job {job}: {text!r} in the log")
    return got[0]


def raw_follow(s, key, job):
    """A follower on a raw socket, after the answer's first bytes arrived."""
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=30)
    sock.sendall(f"GET {API}/build/logs?id={job}&follow=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 f"authorization: {key}\r\n\r\n".encode())
    got = b""
    while b"\r\n\r\n" not in got or b"hoist serve: job" not in got:
        b = sock.recv(65536)
        assert b, f"follower of {job} closed early: {got!r}"
        got += b
    assert got.startswith(b"HTTP/1.1 200"), got
    return sock


class Follower:
    """GET logs?follow=1 with http.client in a thread: each line with the
    time it arrived, and when the answer ended."""

    def __init__(self, s, key, job):
        self.lines, self.ended_at, self.error = [], None, None
        self.done = threading.Event()
        self.c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=300)
        self.c.request("GET", f"{API}/build/logs?id={job}&follow=1",
                       headers={"authorization": key})
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        try:
            r = self.c.getresponse()
            assert r.status == 200, r.status
            while True:
                line = r.readline()
                if not line:
                    break
                self.lines.append((time.monotonic(), line))
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e
        self.ended_at = time.monotonic()
        self.done.set()

    def text(self):
        return b"".join(line for _, line in self.lines)


def server_fds(s, suffix):
    """How many files the server has open for reading whose names end with
    suffix: its followers' logs (the worker of a running job has the log
    open for writing too)."""
    n = 0
    d = f"/proc/{s.proc.pid}/fd"
    for fd in os.listdir(d):
        try:
            if not os.readlink(os.path.join(d, fd)).endswith(suffix):
                continue
            with open(f"/proc/{s.proc.pid}/fdinfo/{fd}") as info:
                flags = next(int(line.split()[1], 8) for line in info
                             if line.startswith("flags:"))
            if flags & os.O_ACCMODE == os.O_RDONLY:
                n += 1
        except (OSError, StopIteration):
            pass
    return n


def server_sockets(s, state):
    """The server's TCP connections on its port in state (hex, /proc/net/tcp)."""
    n = 0
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == s.port and f[3] == state:
            n += 1
    return n


CLOSE_WAIT = "08"


@test
def followers_do_not_stall_the_api():
    base = base_with_extend("logs-slow", SLOW)
    with own(server(workers=2)) as s:
        key = s.token("alice")
        job = start(s, key, base, "alice:followed")
        wait_log(s, key, job, "extending")
        followers = [raw_follow(s, key, job) for _ in range(16)]
        # 200 status requests, one connection each, while 16 clients follow
        lat = []
        deadline = time.monotonic() + 60
        while len(lat) < 200 and time.monotonic() < deadline:
            t0 = time.monotonic()
            st, r = s.api("GET", f"/build/status?id={job}", key)
            lat.append(time.monotonic() - t0)
            assert st == 200 and r["phase"] == "Running", r
        assert len(lat) == 200, f"{len(lat)} of 200 status requests answered in 60 s, " \
            f"slowest {max(lat):.2f} s"
        lat.sort()
        p99 = lat[197]
        print(f"# status with 16 followers: p50 {lat[99] * 1000:.1f} ms, "
              f"p99 {p99 * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms")
        assert p99 < 0.25, f"status p99 {p99 * 1000:.0f} ms with 16 followers"
        # the followers are still there, and end when the build does
        assert s.api("DELETE", f"/build?id={job}", key)[0] == 200
        for f in followers:
            f.settimeout(30)
            rest = b""
            while True:
                b = f.recv(65536)
                if not b:
                    break
                rest += b
                if rest.endswith(b"\r\n0\r\n\r\n"):  # the chunked answer's end
                    break
            assert b"hoist serve: job %s canceled" % job.encode() in rest, rest[-300:]
            f.close()
        s.stop()


@test
def a_follower_gets_every_line_in_order_and_ends_with_the_build():
    hold = base_with_extend("logs-slow", SLOW)
    base = base_with_extend("logs-lines", LINES)
    with own(server(workers=1)) as s:
        key = s.token("alice")
        # the one worker is busy: the followed job waits in the queue, without a log
        blocker = start(s, key, hold, "alice:blocker")
        wait_log(s, key, blocker, "extending")
        job = start(s, key, base, "alice:lines")
        assert s.status(key, job)["phase"] == "Pending"
        early = [Follower(s, key, job) for _ in range(2)]
        time.sleep(0.5)
        assert s.api("DELETE", f"/build?id={blocker}", key)[0] == 200
        wait_log(s, key, job, "line 0")
        late = Follower(s, key, job)  # joins a running build
        r = s.wait_phase(key, job, ("Succeeded", "Failed"), timeout=180)
        assert r["phase"] == "Succeeded", r
        ended = time.monotonic()
        for f in early + [late]:
            assert f.done.wait(10), "a follower did not end with its build"
            assert f.error is None, f.error
        st, log = s.request("GET", f"{API}/build/logs?id={job}", auth=key, raw=True)
        assert st == 200
        want = [b"line %d\n" % i for i in range(60)]
        assert [ln for ln in log.splitlines(keepends=True) if ln.startswith(b"line ")] == want, log
        for f in early + [late]:
            # every byte of the log, in order, and nothing else
            assert f.text() == log, (f.text()[-300:], log[-300:])
            # it streamed: the lines came while the build ran, not at its end
            first = next(t for t, ln in f.lines if ln.startswith(b"line "))
            last = next(t for t, ln in f.lines if ln == b"line 59\n")
            assert last - first > 1.5, (first, last)
            # each line as it came (the build writes one every 50 ms), not once a second
            times = [t for t, ln in f.lines if ln.startswith(b"line ")]
            gap = max(b - a for a, b in zip(times, times[1:]))
            assert gap < 0.6, f"{gap:.2f} s between two lines"
            # and the answer ended soon after the build (its status saw it first)
            assert f.ended_at - ended < 3, f.ended_at - ended
        # (the answer is freed just after its last bytes went out)
        wait_for(lambda: server_fds(s, f"/jobs/{job}/log") == 0, timeout=5,
                 what="the followers' logs closed")
        s.stop()


@test
def a_follower_that_goes_away_is_forgotten():
    base = base_with_extend("logs-slow", SLOW)
    with own(server(workers=2)) as s:
        key = s.token("alice")
        job = start(s, key, base, "alice:gone")
        wait_log(s, key, job, "extending")
        stay = Follower(s, key, job)
        gone = [raw_follow(s, key, job) for _ in range(8)]
        wait_for(lambda: server_fds(s, f"/jobs/{job}/log") == 9, timeout=10, what="9 followers")
        for i, sock in enumerate(gone):
            if i % 2:  # reset, the others closed
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        # the build still runs and writes nothing: the server notices by itself
        wait_for(lambda: server_fds(s, f"/jobs/{job}/log") == 1, timeout=10,
                 what="the gone followers' logs closed")
        wait_for(lambda: server_sockets(s, CLOSE_WAIT) == 0, timeout=10,
                 what="no connection in CLOSE_WAIT")
        assert s.status(key, job)["phase"] == "Running"
        t0 = time.monotonic()
        for _ in range(20):
            assert s.api("GET", f"/build/status?id={job}", key)[0] == 200
        assert time.monotonic() - t0 < 2
        # the one left ends with the build, and then nothing waits
        assert s.api("DELETE", f"/build?id={job}", key)[0] == 200
        assert stay.done.wait(15) and stay.error is None, stay.error
        assert stay.text().endswith(b"hoist serve: job %s canceled\n" % job.encode()), stay.text()
        wait_for(lambda: server_fds(s, "/log") == 0, timeout=5, what="no log open")
        s.stop()


@test
def stopping_the_server_ends_its_followers():
    base = base_with_extend("logs-slow", SLOW)
    with own(server(workers=2)) as s:
        key = s.token("alice")
        job = start(s, key, base, "alice:stop")
        wait_log(s, key, job, "extending")
        followers = [Follower(s, key, job) for _ in range(4)]
        wait_for(lambda: server_fds(s, f"/jobs/{job}/log") == 4, timeout=10, what="4 followers")
        time.sleep(0.3)  # they wait
        t0 = time.monotonic()
        s.stop()  # SIGTERM: exit status 0, no abort
        assert time.monotonic() - t0 < 15
        for f in followers:
            assert f.done.wait(10), "a follower outlived the server"


if __name__ == "__main__":
    main()
