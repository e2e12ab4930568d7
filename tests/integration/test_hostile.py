#!/usr/bin/env python3
"""Hostile builds: what a build must not be able to do, tried as an attacker would.

Each row of the table is a requirements file that the base's /bin/extend runs
as a shell script (tests/fixtures/hostile-image.sh; /bin/probe makes the
attempts busybox cannot make). Every row runs as a build of `hoist serve`
started as root, as container hosts run it, and again through `hoist run` as
root with the defaults: the rows that test a limit give that limit a small
value (a 4 GiB balloon or a 10 GiB disk filler would only make the test slow),
and `hoist run` has no default timeout. Each row asserts that the attempt
failed, from the line the attempt printed or the error that ended the build,
and that the host is unchanged.

No traffic leaves the loopback range: the network rows connect only to ports
on 127.0.0.1 and read the sandbox's routing table.
"""
import hashlib
import http.server
import ipaddress
import json
import os
import re
import socket
import subprocess
import threading

from hoisttest import (HOIST, Registry, Server, Skip, hoist, main, on_exit, run, script_base,
                       sleepers, test, tmpdir, wait_for)
_state = {}

# Small limits for the rows that hit them (service config and `hoist run`).
LIMITS = {"pids": 64, "memory": "64M", "layer": "32M", "tmp": "16M", "timeout": 8}


def need_root():
    if os.geteuid() != 0:
        raise Skip("the hostile table runs hoist as root, as a build host does")


def work():
    if "work" not in _state:
        _state["work"] = tmpdir("hoist-hostile-")
        os.environ["HOIST_IMAGES"] = os.path.join(_state["work"], "images")
    return _state["work"]


def layout():
    if "layout" not in _state:
        _state["layout"] = script_base(work())
    return _state["layout"]


def registry():
    if "reg" not in _state:
        _state["reg"] = Registry(work()).start()
    return _state["reg"]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def mirror():
    """A package mirror on the host's loopback that builds are allowed to reach."""
    if "mirror" not in _state:
        root = os.path.join(work(), "mirror")
        os.makedirs(root)
        with open(os.path.join(root, "ok.txt"), "w") as f:
            f.write("mirror-ok\n")
        handler = lambda *a, **k: _Quiet(*a, directory=root, **k)  # noqa: E731
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        on_exit(srv.shutdown)
        _state["mirror"] = srv.server_address[1]
    return _state["mirror"]


def listener():
    """A host service on loopback that builds must not reach (stands for the
    service's own port when the table runs through `hoist run`)."""
    if "listener" not in _state:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        on_exit(s.close)
        _state["listener"] = s
    return _state["listener"].getsockname()[1]


def host_addresses():
    """This host's own addresses, loopback excluded (read with ip, nothing sent)."""
    out = run("ip", "-o", "addr", "show").stdout
    addrs = []
    for line in out.splitlines():
        m = re.search(r"\binet6? ([0-9a-f.:]+)/\d+", line)
        if m and not ipaddress.ip_address(m.group(1)).is_loopback:
            addrs.append(ipaddress.ip_address(m.group(1)))
    return addrs


def reject_routes(text):
    """The unreachable IPv4 routes in a /proc/net/route text, as networks."""
    nets = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 8 or not re.fullmatch(r"[0-9A-F]{8}", f[1]):
            continue
        flags = int(f[3], 16)
        if flags & 0x0200:  # RTF_REJECT
            dest = ipaddress.IPv4Address(int.from_bytes(bytes.fromhex(f[1]), "little"))
            mask = bin(int.from_bytes(bytes.fromhex(f[7]), "little")).count("1")
            nets.append(ipaddress.ip_network(f"{dest}/{mask}"))
    return nets


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# ------------------------------------------------------------------ the table

MASKED = ("kcore", "keys", "timer_list", "sched_debug", "latency_stats")

# name, script, what the output must show (regular expressions), what the
# build's error must say (None: the script ran to its end, "DONE").
# {mirror} and {closed} are ports on 127.0.0.1: the allowed mirror, and a
# host service the build must not reach (the registry, the service itself).
ROWS = [
    ("core_pattern",
     'v=$(cat /proc/sys/kernel/core_pattern)\n'
     'if printf "%s\\n" "$v" > /proc/sys/kernel/core_pattern; then echo "core_pattern: written";'
     ' else echo "core_pattern: refused"; fi',
     [r"core_pattern: refused"], None),
    ("drop_caches",
     'if echo 1 > /proc/sys/vm/drop_caches; then echo "drop_caches: written";'
     ' else echo "drop_caches: refused"; fi\n'
     'if echo h > /proc/sysrq-trigger; then echo "sysrq: written"; else echo "sysrq: refused"; fi\n'
     'if sysctl -w kernel.hostname=owned; then echo "sysctl: written"; else echo "sysctl: refused"; fi',
     [r"drop_caches: refused", r"sysrq: refused", r"sysctl: refused"], None),
    ("mknod_char_twin",
     "probe mknod /null-twin c 1 3\nprobe open /null-twin w\n"
     "probe mknod /tmp/null-twin c 1 3\nprobe open /tmp/null-twin w",
     [r"mknod /null-twin: EPERM", r"open /null-twin w: ENOENT", r"mknod /tmp/null-twin: EPERM",
      r"open /tmp/null-twin w: ENOENT"], None),
    ("loop_block_device",
     "probe mknod /loop0 b 7 0\nprobe read /loop0\nprobe read /dev/loop0\nls /dev",
     [r"mknod /loop0: EPERM", r"read /loop0: ENOENT", r"read /dev/loop0: ENOENT"], None),
    ("proc_masks",
     "for f in " + " ".join(MASKED) + "; do probe read /proc/$f; done\n"
     "echo ACPI; ls -A /proc/acpi; echo END",
     # what this kernel has must read empty (a /dev/null on top), the rest not exist
     [rf"read /proc/{f}: {'empty' if os.path.exists('/proc/' + f) else 'ENOENT'}"
      for f in MASKED], None),
    ("keyctl", "probe syscall keyctl\nprobe syscall add_key",
     [r"keyctl: EPERM", r"add_key: EPERM"], None),
    ("open_by_handle_at", "probe syscall open_by_handle_at", [r"open_by_handle_at: EPERM"], None),
    ("unshare_user",
     'probe syscall unshare-user\nif unshare -U true; then echo "unshare -U: ok";'
     ' else echo "unshare -U: refused"; fi',
     [r"unshare-user: EPERM", r"unshare -U: refused"], None),
    ("mount",
     'probe syscall mount\nprobe syscall umount\nif mount -t tmpfs none /mnt; then echo "mount: ok";'
     ' else echo "mount: refused"; fi',
     [r"^mount: EPERM", r"umount: EPERM", r"mount: refused"], None),
    ("kernel_syscalls",
     "for s in bpf perf_event_open userfaultfd init_module kexec_load setns ptrace swapon reboot;"
     " do probe syscall $s; done",
     [rf"{s}: EPERM" for s in ("bpf", "perf_event_open", "userfaultfd", "init_module",
                               "kexec_load", "setns", "ptrace", "swapon", "reboot")], None),
    ("uid_map", "cat /proc/self/uid_map; cat /proc/self/gid_map; id -u",
     [r"^\s*0\s+[1-9]\d*\s+\d+"], None),
    ("proc_1_exe", "probe open /proc/1/exe w\nprobe open /proc/1/exe r\nls -l /proc/1/exe",
     [r"open /proc/1/exe w: (EACCES|EPERM|ENOENT)", r"open /proc/1/exe r: (EACCES|EPERM|ENOENT)"],
     None),
    ("host_loopback", "probe connect 127.0.0.1 {closed}\nprobe connect 127.0.0.1 {closed2}",
     [r"connect 127.0.0.1:\d+: ECONNREFUSED\n.*connect 127.0.0.1:\d+: ECONNREFUSED"], None),
    ("allowed_mirror", "wget -q -O - http://127.0.0.1:{mirror}/ok.txt", [r"mirror-ok"], None),
    ("routes", "echo ROUTES; cat /proc/net/route; echo END", [r"ROUTES"], None),
    ("fork_bomb", "while true; do sleep 1001 & done", [], r"process limit reached \(64 pids\)"),
    ("memory_balloon", "probe balloon 512", [], r"out of memory \(limit 64 MiB\)"),
    ("disk_filler", "dd if=/dev/zero of=/filler bs=1M count=100", [],
     r"changes reached max_layer_bytes \(32 MiB\)"),
    ("tmp_filler", "dd if=/dev/zero of=/tmp/filler bs=1M count=100", [], r"/tmp was full"),
    ("timeout", "sleep 1002", [], r"timed out after 8 s"),
]


def script_of(row, closed, closed2):
    text = row[1].format(mirror=mirror(), closed=closed, closed2=closed2)
    return f"{text}\necho DONE\n" if row[3] is None else text + "\n"


def check_row(row, output, error):
    name, _, patterns, want_error = row
    for p in patterns:
        assert re.search(p, output, re.M), f"{name}: no line matches {p!r} in:\n{output}"
    if want_error is None:
        assert "DONE" in output, f"{name}: the script did not run to its end:\n{output}\n{error}"
        assert not re.search(r": (ok|written)$", output, re.M), f"{name}: an attempt worked:\n{output}"
    else:
        assert re.search(want_error, error), f"{name}: error {error!r} lacks {want_error!r}"
    host_acpi = os.listdir("/proc/acpi") if os.path.isdir("/proc/acpi") else []
    if name == "proc_masks" and host_acpi:
        listing = output.split("ACPI\n", 1)[1].split("END", 1)[0]
        assert listing.strip() == "", f"/proc/acpi is not masked:\n{listing}"
    if name == "uid_map":
        first = re.search(r"^\s*(\d+)\s+(\d+)\s+(\d+)", output, re.M)
        assert first and first.group(1) == "0" and first.group(2) != "0", output
    if name == "routes":
        table = output.split("ROUTES\n", 1)[1].split("END", 1)[0]
        rejects = reject_routes(table)
        assert ipaddress.ip_network("169.254.0.0/16") in rejects, table
        for a in host_addresses():
            if a.version == 4:
                assert any(a in n for n in rejects), f"no unreachable route to {a}:\n{table}"
        assert "00000000" in table, f"no default route (egress):\n{table}"


class HostState:
    """What the rows must leave as it was."""

    def __init__(self):
        self.core_pattern = open("/proc/sys/kernel/core_pattern").read()
        self.hostname = socket.gethostname()
        self.hoist = sha256(HOIST)
        self.ip_forward = open("/proc/sys/net/ipv4/ip_forward").read()

    def check(self):
        assert open("/proc/sys/kernel/core_pattern").read() == self.core_pattern
        assert socket.gethostname() == self.hostname
        assert sha256(HOIST) == self.hoist, "the hoist binary changed"
        assert open("/proc/sys/net/ipv4/ip_forward").read() == self.ip_forward
        wait_for(lambda: not sleepers("1001") and not sleepers("1002"), timeout=20,
                 what="no process of a build left on the host")


def service():
    if "serve" not in _state:
        reg = registry()
        config = {
            "registry_host": reg.host,
            "per_user_limit": 2,
            "build_timeout": LIMITS["timeout"],
            "build_memory": LIMITS["memory"],
            "build_pids": LIMITS["pids"],
            "max_layer_bytes": LIMITS["layer"],
            "build_tmp_size": LIMITS["tmp"],
            "build_allow": [f"127.0.0.1:{mirror()}"],
            "allowed_sources": [f"{reg.host}/base/*"],
        }
        srv = Server(data=tmpdir("hoist-hostile-serve-"), workers=2, config=config).start()
        _state["serve"] = (srv, srv.token("alice"))
    return _state["serve"]


@test
def service_refuses_to_start_without_what_builds_need():
    need_root()
    # a range that contains host root is refused, not used
    d = tmpdir("hoist-hostile-cfg-")
    path = os.path.join(d, "config.json")
    with open(path, "w") as f:
        json.dump({"subuid": "0:65536", "subgid": "0:65536"}, f)
    p = subprocess.run([HOIST, "serve", "--listen", "127.0.0.1:0", "--data", d, "--config", path],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "host uid 0" in p.stderr, p
    # no subordinate ids at all: the message says how to add them
    with open(path, "w") as f:
        json.dump({}, f)
    empty = os.path.join(d, "empty")
    open(empty, "w").close()
    p = subprocess.run(["unshare", "-m", "sh", "-c",
                        f"mount --bind {empty} /etc/subuid && mount --bind {empty} /etc/subgid && "
                        f"exec {HOIST} serve --listen 127.0.0.1:0 --data {d} --config {path}"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "usermod --add-subuids" in p.stderr, p


@test
def hostile_builds_through_the_service():
    need_root()
    host = HostState()
    srv, key = service()
    reg = registry()
    base = f"{reg.host}/base/hostile:1"
    hoist("copy", layout(), base)
    jobs = {}
    for row in ROWS:
        script = script_of(row, reg.port, srv.port)
        code, ans = srv.api("POST", "/build/start", key,
                            {"source": base, "target": f"alice:{row[0].replace('_', '-')}",
                             "kind": "python", "file": hoist_b64(script)})
        assert code == 200, (row[0], code, ans)
        jobs[row[0]] = ans["id"]
    failures = []
    for row in ROWS:
        st = srv.wait_phase(key, jobs[row[0]], ("Succeeded", "Failed"), timeout=300)
        code, log = srv.request("GET", f"/system/api/v1/build/logs?id={jobs[row[0]]}", auth=key,
                                raw=True)
        output = log.decode(errors="replace")
        if row[3] is not None:
            assert st["phase"] == "Failed", (row[0], st, output)
        try:
            check_row(row, output, st.get("error") or "")
        except AssertionError as e:
            failures.append(str(e))
    assert not failures, "\n\n".join(failures)
    host.check()


def hoist_b64(text):
    import base64
    return base64.b64encode(text.encode()).decode()


RUN_LIMITS = {
    "fork_bomb": ["--pids-limit", str(LIMITS["pids"])],
    "memory_balloon": ["--memory", LIMITS["memory"]],
    "disk_filler": ["--max-layer-bytes", LIMITS["layer"]],
    "tmp_filler": ["--tmp-size", LIMITS["tmp"]],
    "timeout": ["--timeout", str(LIMITS["timeout"])],
}


@test
def hostile_commands_through_hoist_run():
    need_root()
    host = HostState()
    img = layout()
    failures = []
    for row in ROWS:
        script = script_of(row, registry().port, listener())
        p = hoist("run", "--allow-port", str(mirror()), *RUN_LIMITS.get(row[0], []), img, "--",
                  "sh", "-c", script, check=False, timeout=300)
        try:
            if row[3] is not None:
                assert p.returncode in (124, 137, 1) or p.returncode != 0, (row[0], p)
            check_row(row, p.stdout, p.stderr)
        except AssertionError as e:
            failures.append(f"{e}\nstderr: {p.stderr[-2000:]}")
    assert not failures, "\n\n".join(failures)
    host.check()


@test
def trusted_run_with_host_ids_still_has_no_devices_and_no_kernel_calls():
    """--userns=host (root stays host root, for trusted local use) keeps the
    rest: device nodes it may create cannot be opened, /proc/sys is read-only,
    the filter holds."""
    need_root()
    host = HostState()
    script = ("probe mknod /null-twin c 1 3\nprobe open /null-twin w\nprobe syscall keyctl\n"
              "probe syscall unshare-user\nprobe syscall mount\n"
              'if echo 1 > /proc/sys/vm/drop_caches; then echo "drop_caches: written";'
              ' else echo "drop_caches: refused"; fi\ncat /proc/self/uid_map\n')
    p = hoist("run", "--userns=host", "--allow-mknod", layout(), "--", "sh", "-c", script,
              check=False)
    assert p.returncode == 0, p
    for want in (r"mknod /null-twin: ok", r"open /null-twin w: EACCES", r"keyctl: EPERM",
                 r"unshare-user: EPERM", r"^mount: EPERM", r"drop_caches: refused",
                 r"^\s*0\s+0\s+4294967295"):
        assert re.search(want, p.stdout, re.M), (want, p.stdout)
    host.check()


if __name__ == "__main__":
    main()
