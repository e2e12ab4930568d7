#!/usr/bin/env python3
"""Several `hoist serve` replicas on one PostgreSQL, and the job store's
contract against both drivers.

A throwaway PostgreSQL (Debian's postgresql 15: initdb in a temp dir, fsync
off, loopback only) is started for this file; each test gets a database of
its own. The store's side runs in store_tool (tests/unit/store_tool.c); the
replicas are real `hoist serve` processes with real builds pushed to a real
registry (docker-registry on loopback).
"""
import base64
import concurrent.futures
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time

from hoisttest import (API, Postgres, Registry, SOURCE_ROOT, Server, Skip, busybox_with_extend,
                       hoist, main, make_ca, on_exit, run, test, tmpdir, wait_for)

FIXTURES = os.path.join(SOURCE_ROOT, "tests", "fixtures")
STORE_TOOL = os.path.join(os.path.dirname(os.environ.get("HOIST_MAKE_LAYOUT", "")), "store_tool")
_state = {}
# a build that runs long enough to be watched, killed or outlive a restart
STEADY = "#!/bin/sh\necho extending\nfor i in 1 2 3 4 5 6; do echo tick $i; sleep 1; done\n" \
         "cat /tmp/requirements.txt > /extended\n"
FAST = "#!/bin/sh\necho extending\ncat /tmp/requirements.txt > /extended\n"


def pg():
    if "pg" not in _state:
        if not Postgres.available():
            raise Skip("Debian's postgresql 15 is not installed")
        _state["pg"] = Postgres().start()
    return _state["pg"]


def db_url():
    return pg().url(pg().create_db())


def tool(*args, check=True):
    if not os.path.exists(STORE_TOOL):
        raise Skip("store_tool is not built")
    return run(STORE_TOOL, *args, check=check, timeout=600)


def work():
    if "work" not in _state:
        _state["work"] = tmpdir("hoist-replicas-it-")
        os.environ["HOIST_IMAGES"] = os.path.join(_state["work"], "images")
    return _state["work"]


def registry():
    if "reg" not in _state:
        _state["reg"] = Registry(work()).start()
    return _state["reg"]


def base_with_extend(tag, script):
    """busybox + an executable /bin/extend, pushed to the test registry."""
    return busybox_with_extend(_state, work(), registry().host, tag, script)


def replicas(url, n=2, workers=2, **cfg):
    """n replicas on the store url, each with its data directory, sharing
    one tokens file; returns (servers, alice's key)."""
    config = {"registry_host": registry().host, "per_user_limit": 2,
              "allowed_sources": [f"{registry().host}/base/*"]}
    config.update(cfg)
    servers = []
    key = None
    for i in range(n):
        data = tmpdir("hoist-serve-")
        if servers:
            shutil.copy(os.path.join(servers[0].data, "tokens.json"),
                        os.path.join(data, "tokens.json"))
        s = Server(data=data, workers=workers, config=config, db=url).start()
        if key is None:
            key = s.token("alice")  # the tokens file is read again when it changes
        servers.append(s)
    return servers, key


def start(s, key, source, target, file=None):
    """Starts a build; its own requirements file unless given, so the build
    cache never answers for it."""
    if file is None:
        file = base64.b64encode(f"flask # {target} {time.time()}\n".encode()).decode()
    st, r = s.api("POST", "/build/start", key,
                  {"source": source, "target": target, "kind": "python", "file": file})
    assert st == 200, r
    return r


def metric(s, name):
    st, text = s.request("GET", "/metrics", raw=True)
    assert st == 200
    for line in text.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def kill_all(servers):
    for s in servers:
        s.stop(signal.SIGKILL)


# ------------------------------------------------------------------ the store


@test
def store_contract_on_sqlite_and_postgres():
    d = tmpdir()
    os.makedirs(os.path.join(d, "jobs"))
    for url in (f"sqlite:{d}/jobs.db", db_url()):
        p = tool("suite", url, d, check=False)
        bad = [ln for ln in p.stdout.splitlines() if ln.startswith("not ok")]
        assert p.returncode == 0 and not bad and p.stdout.count("\nok ") > 30, \
            (url, bad, p.stderr)


@test
def a_store_of_the_schema_before_is_migrated_and_keeps_its_jobs():
    # the schema before the index of queued jobs: the newest one without it, its
    # version set back; opening the store adds the index and keeps what is there
    d = tmpdir()
    os.makedirs(os.path.join(d, "jobs"))
    db = f"{d}/jobs.db"
    tool("enqueue", f"sqlite:{db}", d, "3", "1")
    c = sqlite3.connect(db)
    assert c.execute("PRAGMA user_version").fetchone()[0] == 3
    c.execute("DROP INDEX jobs_user_queued")
    c.execute("PRAGMA user_version = 2")
    c.commit()
    c.close()
    tool("enqueue", f"sqlite:{db}", d, "2", "1")
    c = sqlite3.connect(db)
    assert c.execute("PRAGMA user_version").fetchone()[0] == 3
    assert c.execute("SELECT count(*) FROM sqlite_master WHERE name = 'jobs_user_queued'"
                     ).fetchone()[0] == 1
    assert c.execute("SELECT count(*) FROM jobs WHERE state = 'queued'").fetchone()[0] == 5
    c.close()

    name = pg().create_db()
    url = pg().url(name)
    tool("enqueue", url, d, "3", "1")
    assert pg().psql("SELECT version FROM hoist_schema", db=name).stdout.strip() == "2"
    pg().psql("DROP INDEX jobs_user_queued; UPDATE hoist_schema SET version = 1", db=name)
    tool("enqueue", url, d, "2", "1")
    assert pg().psql("SELECT version FROM hoist_schema", db=name).stdout.strip() == "2"
    assert pg().psql("SELECT count(*) FROM pg_indexes WHERE indexname = 'jobs_user_queued'",
                     db=name).stdout.strip() == "1"
    assert pg().psql("SELECT count(*) FROM jobs WHERE state = 'queued'",
                     db=name).stdout.strip() == "5"


def go(d, names, procs):
    """The start line of store_tool's claimers and sampler: waits until each
    has its store open, then lets them all go at once."""
    def ready():
        dead = [p.args for p in procs if p.poll() is not None]
        assert not dead, f"ended before the start: {dead}"
        return all(os.path.exists(os.path.join(d, f"ready.{n}")) for n in names)

    wait_for(ready, timeout=60, what="the claimers at the start line")
    open(os.path.join(d, "go"), "w").close()


@test
def three_claimers_each_job_claimed_once():
    url = db_url()
    d = tmpdir()
    tool("enqueue", url, d, 300, 300)
    # each claim held 5 ms: the run lasts long enough that all three take part
    procs = [subprocess.Popen([STORE_TOOL, "claim", url, d, f"claimer{i}", "1000", "5"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(3)]
    go(d, [f"claimer{i}" for i in range(3)], procs)
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    claimed = [ln for o in outs for ln in o[0].split()]
    assert len(claimed) == 300 and len(set(claimed)) == 300, (len(claimed), len(set(claimed)))
    # all three took part (the claims ran side by side)
    assert all(o[0].split() for o in outs), [len(o[0].split()) for o in outs]


@test
def per_user_limit_under_contention():
    url = db_url()
    d = tmpdir()
    # one user's 40 jobs, three claimers, a limit of 2: two claims at once are the rule (the
    # check bites), a third would break the limit. (With a user per claimer the users' turns
    # would give each claimer its own user, and the limit would rarely be reached.)
    tool("enqueue", url, d, 40, 1)
    sampler = subprocess.Popen([STORE_TOOL, "sample", url, d], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    procs = [subprocess.Popen([STORE_TOOL, "claim", url, d, f"claimer{i}", "2", "30"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(3)]
    go(d, ["sampler"] + [f"claimer{i}" for i in range(3)], procs + [sampler])
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    out, errs = sampler.communicate(timeout=60)
    assert sampler.returncode == 0, errs
    most, samples = map(int, out.split())
    assert samples > 10, samples
    # never more than the limit; and the limit was reached, so the check bites
    assert most == 2, f"{most} builds of one user ran at once (limit 2)"
    assert len(sum((o[0].split() for o in outs), [])) == 40


# ------------------------------------------------------------------ replicas


@test
def identical_starts_across_two_replicas_share_one_job():
    # a registry that accepts connections and never answers keeps the job in flight
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    on_exit(silent.close)
    port = silent.getsockname()[1]
    servers, key = replicas(db_url(), allowed_sources=[f"127.0.0.1:{port}/base/*"])
    try:
        src = f"127.0.0.1:{port}/base/x:1"

        def one(i):
            return start(servers[i % 2], key, src, "alice:same", file="Zmxhc2sK")

        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            answers = list(ex.map(one, range(32)))
        ids = {a["id"] for a in answers}
        assert len(ids) == 1, ids
        assert sum(a["shared"] for a in answers) == 31
        job = ids.pop()
        for s in servers:
            assert s.status(key, job)["id"] == job
        assert servers[1].api("DELETE", f"/build?id={job}", key)[0] == 200
        wait_for(lambda: servers[0].status(key, job)["state"] == "canceled", timeout=30,
                 what="the canceled job")
        for s in servers:
            s.stop()
    finally:
        kill_all(servers)


def running_on(servers):
    """The replica running the one build, by its metrics (waited for)."""
    on = []

    def one():
        on[:] = [s for s in servers if metric(s, "hoist_replica_builds_running") > 0]
        return len(on) == 1

    wait_for(one, what="one replica running the build")
    return on[0]


@test
def two_replicas_end_to_end():
    fast = base_with_extend("fast", FAST)
    steady = base_with_extend("steady", STEADY)
    servers, key = replicas(db_url())
    try:
        # the client alternates: each job is seen and finished from both sides
        jobs = [start(servers[i % 2], key, fast, f"alice:e{i}")["id"] for i in range(4)]
        for i, job in enumerate(jobs):
            r = servers[(i + 1) % 2].wait_phase(key, job, ("Succeeded", "Failed"), timeout=180)
            assert r["phase"] == "Succeeded", r
            assert r["digest"].startswith("sha256:"), r
        for s in servers:
            got = {b["id"] for b in s.api("GET", "/builds", key)[1]["builds"]}
            assert set(jobs) <= got
        assert sum(metric(s, "hoist_replica_builds_started_total") for s in servers) == 4
        # a log followed on the other replica while the build runs on one
        job = start(servers[0], key, steady, "alice:follow")["id"]
        servers[0].wait_phase(key, job, ("Running",))
        here = running_on(servers)
        other = servers[1] if here is servers[0] else servers[0]
        c = __import__("http.client").client.HTTPConnection("127.0.0.1", other.port, timeout=60)
        c.request("GET", f"{API}/build/logs?id={job}&follow=1", headers={"authorization": key})
        resp = c.getresponse()
        seen = b""
        t_tick = None
        while b"tick 2" not in seen:
            seen += resp.read1(4096)
        t_tick = time.monotonic()
        assert here.status(key, job)["phase"] == "Running"
        rest = resp.read()
        seen += rest
        assert b"tick 6" in seen and seen.endswith(f"hoist serve: job {job} succeeded\n".encode()), \
            seen[-300:]
        assert time.monotonic() - t_tick < 30
        # a cancel reaching the other replica stops the build within seconds
        job = start(other, key, steady, "alice:cancel")["id"]
        other.wait_phase(key, job, ("Running",))
        here = running_on(servers)
        there = servers[1] if here is servers[0] else servers[0]
        t0 = time.monotonic()
        assert there.api("DELETE", f"/build?id={job}", key)[0] == 200
        wait_for(lambda: there.status(key, job)["state"] == "canceled", timeout=10,
                 what="the cancel to reach the build's replica")
        assert time.monotonic() - t0 < 5, time.monotonic() - t0
        wait_for(lambda: metric(here, "hoist_replica_builds_running") == 0, timeout=10,
                 what="the build to stop")
        st, log = there.request("GET", f"{API}/build/logs?id={job}", auth=key, raw=True)
        assert b"cancel requested" in log and b"tick 6" not in log, log
        # cleanup from either side removes the other's jobs too
        st, r = there.api("POST", "/build/cleanup", key, {"max_age_hours": 0})
        assert st == 200 and r["message"] == "Cleaned up 6 jobs successfully.", r
        assert here.api("GET", "/builds", key)[1]["builds"] == []
        q = metric(here, "hoist_build_queue_depth")
        assert q == 0
        for s in servers:
            s.stop()
    finally:
        kill_all(servers)


@test
def a_killed_replica_loses_its_lease_and_the_job_runs_again():
    steady = base_with_extend("steady", STEADY)
    for policy in ("requeue", "fail"):
        servers, key = replicas(db_url(), workers=1, lease_seconds=3, on_restart=policy)
        try:
            r = start(servers[0], key, steady, f"alice:kill-{policy}")
            job = r["id"]
            servers[0].wait_phase(key, job, ("Running",))
            victim = running_on(servers)
            survivor = servers[1] if victim is servers[0] else servers[0]
            t0 = time.monotonic()
            victim.stop(signal.SIGKILL)
            if policy == "requeue":
                # the lease runs out; the survivor runs the job again, to success
                wait_for(lambda: metric(survivor, "hoist_replica_builds_started_total") == 1,
                         timeout=30, what="the survivor to take the job")
                assert time.monotonic() - t0 > 2, "the job moved before its lease expired"
                r = survivor.wait_phase(key, job, ("Succeeded", "Failed"), timeout=180)
                assert r["phase"] == "Succeeded", r
                st, log = survivor.request("GET", f"{API}/build/logs?id={job}", auth=key,
                                           raw=True)
                assert b"stopped renewing its lease; queued again" in log, log
            else:
                r = survivor.wait_phase(key, job, ("Failed", "Succeeded"), timeout=30)
                assert time.monotonic() - t0 > 2, "the job failed before its lease expired"
                assert r["state"] == "failed" and r["error"] == "server restarted", r
                assert metric(survivor, "hoist_replica_builds_started_total") == 0
                # a retry of the same build succeeds
                retry = start(survivor, key, steady, f"alice:kill-{policy}")["id"]
                assert retry != job
                r = survivor.wait_phase(key, retry, ("Succeeded", "Failed"), timeout=180)
                assert r["phase"] == "Succeeded", r
            survivor.stop()
        finally:
            kill_all(servers)


@test
def a_replica_that_lost_its_lease_stops_its_build():
    # a replica frozen past its lease (SIGSTOP: as cut off from the database)
    # finds on waking that the job went to another replica, and stops its copy
    steady = base_with_extend("steady", STEADY)
    servers, key = replicas(db_url(), workers=1, lease_seconds=3, on_restart="requeue")
    try:
        job = start(servers[0], key, steady, "alice:frozen")["id"]
        servers[0].wait_phase(key, job, ("Running",))
        frozen = running_on(servers)
        other = servers[1] if frozen is servers[0] else servers[0]
        frozen.proc.send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: metric(other, "hoist_replica_builds_started_total") == 1,
                     timeout=30, what="the other replica to take the job")
        finally:
            frozen.proc.send_signal(signal.SIGCONT)
        wait_for(lambda: metric(frozen, "hoist_replica_builds_running") == 0, timeout=15,
                 what="the frozen replica to stop its copy")
        r = other.wait_phase(key, job, ("Succeeded", "Failed"), timeout=180)
        assert r["phase"] == "Succeeded", r
        assert frozen.status(key, job)["state"] == "succeeded"
        for s in servers:
            s.stop()
    finally:
        kill_all(servers)


@test
def a_queued_job_starts_at_once_on_the_free_replica():
    # one worker each; the busy replica's new job goes to the other one's free
    # worker through NOTIFY: the idle workers' own look comes only every 30 s
    steady = base_with_extend("steady", STEADY)
    fast = base_with_extend("fast", FAST)
    url = db_url()
    db = url.rsplit("/", 1)[1]
    servers, key = replicas(url, workers=1, poll_seconds=30)
    try:
        waits = []
        for i in range(3):
            busy = start(servers[i % 2], key, steady, f"alice:busy{i}")["id"]
            servers[0].wait_phase(key, busy, ("Running",))
            here = running_on(servers)
            job = start(here, key, fast, f"alice:quick{i}")["id"]
            r = here.wait_phase(key, job, ("Succeeded", "Failed"), timeout=120)
            assert r["phase"] == "Succeeded", r
            waits.append(float(pg().psql(
                f"SELECT started - created FROM jobs WHERE id = '{job}'", db=db).stdout))
            here.api("DELETE", f"/build?id={busy}", key)
            here.wait_phase(key, busy, ("Failed",))
        print("# queued to started on the free replica: " +
              ", ".join(f"{w * 1000:.0f} ms" for w in waits), flush=True)
        # milliseconds here when idle; the bound leaves room for a loaded machine
        # and is still far below the poll's 30 s
        assert max(waits) < 5, waits
        for s in servers:
            s.stop()
    finally:
        kill_all(servers)


@test
def postgres_restarted_mid_build():
    steady = base_with_extend("steady", STEADY)
    url = db_url()
    servers, key = replicas(url)
    try:
        jobs = [start(servers[i % 2], key, steady, f"alice:pg{i}")["id"] for i in range(2)]
        for job in jobs:
            servers[0].wait_phase(key, job, ("Running",))
        pg().stop()
        # the service says so, and answers 503 rather than guessing
        wait_for(lambda: all(s.request("GET", "/healthz")[0] == 503 for s in servers),
                 timeout=15, what="/healthz 503 while PostgreSQL is down")
        st, r = servers[1].api("GET", f"/build/status?id={jobs[0]}", key)
        assert st == 503, (st, r)
        time.sleep(1)  # the builds go on meanwhile
        pg().start()
        wait_for(lambda: all(s.request("GET", "/healthz")[0] == 200 for s in servers),
                 timeout=30, what="/healthz 200 once PostgreSQL is back")
        # the pools' connections to the old server are replaced, not answered with 503
        for s in servers:
            codes = [s.api("GET", f"/build/status?id={jobs[0]}", key)[0] for _ in range(40)]
            assert codes == [200] * 40, codes
        for job in jobs:
            r = servers[1].wait_phase(key, job, ("Succeeded", "Failed"), timeout=180)
            assert r["phase"] == "Succeeded", r
        # no job lost, none run twice
        assert sum(metric(s, "hoist_replica_builds_started_total") for s in servers) == 2
        for s in servers:
            s.stop()
    finally:
        kill_all(servers)


@test
def tls_to_postgres_through_the_connection_string():
    if not Postgres.available():
        raise Skip("Debian's postgresql 15 is not installed")
    d = tmpdir()
    ca, cert, key = make_ca(d)
    p = Postgres(tls=(cert, key)).start()
    url = f"postgres://hoist@127.0.0.1:{p.port}/postgres?sslmode=verify-full&sslrootcert={ca}"
    # another CA's certificate is refused, with libpq's reason
    other = make_ca(tmpdir())[0]
    bad = hoist("serve", "--db", url.replace(ca, other), "--migrate", "--data", tmpdir(),
                check=False)
    assert bad.returncode == 1 and "certificate verify failed" in bad.stderr, bad.stderr
    servers, key = replicas(url, n=1)
    try:
        st, r = servers[0].api("GET", "/builds", key)
        assert st == 200 and r["builds"] == [], r
        out = p.psql("SELECT bool_and(s.ssl), count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a "
                     "USING (pid) WHERE a.application_name = 'hoist-serve'").stdout.strip()
        ssl, n = out.split("|")
        assert ssl == "t" and int(n) >= 2, out  # the pool's and the listener's, all TLS
        servers[0].stop()
    finally:
        kill_all(servers)
        p.stop()


if __name__ == "__main__":
    main()
