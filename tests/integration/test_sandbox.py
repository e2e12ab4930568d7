"""hoist run: the sandbox seen from outside, on a busybox-static base image.

The base image comes from tests/fixtures/busybox-image.sh (cached under
$HOIST_CACHE); its unpacked tree (the overlay's lower dir) is hashed before
and after runs that write and delete files to prove it is never modified.
"""
import hashlib
import json
import os
import stat
import subprocess
import time

from hoisttest import (HOIST, SOURCE_ROOT, Registry, Skip, hoist, main, run, sleepers, test,
                       tmpdir, wait_for)

WORK = tmpdir("hoist-sandbox-")
LAYOUT = os.path.join(WORK, "layout")
IMG = f"oci:{LAYOUT}:base"
_lower = None


def image():
    """Builds the base image once and returns the path of its cached rootfs."""
    global _lower
    if _lower is None:
        run("bash", os.path.join(SOURCE_ROOT, "tests/fixtures/busybox-image.sh"), HOIST, LAYOUT,
            "base")
        _lower = hoist("unpack", "--cache", IMG).stdout.strip()
    return _lower


def tree_hash(root):
    """SHA-256 over every entry's path, type, mode, owner, size, content or target."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            h.update(f"{os.path.relpath(p, root)} {st.st_mode:o} {st.st_uid} {st.st_gid} "
                     f"{st.st_size} {st.st_mtime_ns}\n".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(p).encode())
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def sh(script, *opts, check=False, timeout=120):
    image()
    return hoist("run", *opts, IMG, "--", "sh", "-c", script, check=check, timeout=timeout)


def is_whiteout(path):
    st = os.lstat(path)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)


@test
def help_and_usage():
    p = hoist("run", "--help")
    assert p.returncode == 0 and p.stdout.startswith("Usage: hoist run"), p.stdout
    assert hoist("run", check=False).returncode == 2
    assert hoist("run", "--network", "bogus", IMG, "--", "true", check=False).returncode == 2
    image()
    p = hoist("run", IMG, check=False)  # no command and none in the image config
    assert p.returncode == 2 and "Cmd" in p.stderr, p


@test
def exit_status_and_output_lines():
    p = sh("echo one; echo two >&2; printf 'three\\nfour'; exit 7")
    assert p.returncode == 7, p
    # byte for byte: the unterminated last line gains no newline
    assert p.stdout == "one\nthree\nfour", repr(p.stdout)
    assert "two\n" in p.stderr, p.stderr
    assert sh("kill -TERM $$").returncode == 128 + 15
    p = hoist("run", IMG, "--", "no-such-command", check=False)
    assert p.returncode == 127 and "no-such-command" in p.stderr, p


@test
def environment_user_and_workdir():
    p = sh('id -u; id -g; id -G; echo "$GREETING"; pwd; echo "$PATH"; echo "$HOME"', "-u",
           "daemon", "-e", "GREETING=hello there", "-w", "/etc", check=True)
    lines = p.stdout.splitlines()
    assert lines[6] == "/usr/sbin", lines  # HOME from the image's passwd
    assert lines[0] == "1" and lines[1] == "1", lines
    assert "100" in lines[2].split(), lines  # supplementary group from the image's /etc/group
    assert lines[3] == "hello there" and lines[4] == "/etc", lines
    assert "/usr/bin" in lines[5], lines
    p = sh("grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; hostname", check=True)
    assert "NoNewPrivs:\t1" in p.stdout, p.stdout
    eff = int(p.stdout.split("CapEff:\t")[1].split()[0], 16)
    assert eff & (1 << 21) == 0, "CAP_SYS_ADMIN must be gone"
    assert eff & (1 << 0), "CAP_CHOWN must stay for package installs"
    assert p.stdout.splitlines()[-1] == "hoist"


@test
def host_files_outside_rootfs_are_invisible():
    d = tmpdir("hoist-marker-")
    marker = os.path.join(d, "hoist-secret-marker")
    with open(marker, "w") as f:
        f.write("secret\n")
    p = sh(f"cat {marker}; ls {d}; "
           "find / -path /proc -prune -o -name 'hoist-secret-marker*' -print; "
           "cat /proc/1/root" + marker + "; echo done")
    assert "secret" not in p.stdout and "hoist-secret-marker" not in p.stdout, p.stdout
    assert p.stdout.strip().endswith("done"), p
    # the control: the same names are there on the host
    assert os.path.exists(marker)


@test
def base_rootfs_is_never_modified():
    lower = image()
    before = tree_hash(lower)
    script = ("echo changed > /etc/passwd; rm -rf /home /bin/ls; mkdir -p /new/dir; "
              "echo data > /new/dir/f; chmod 700 /etc; touch /bin/busybox; "
              "ln -sf /nowhere /bin/cat; echo ok")
    for opts in ([], ["--userns"], ["--no-overlay"]):
        p = sh(script, *opts)
        assert p.returncode == 0 and p.stdout == "ok\n", (opts, p)
        assert tree_hash(lower) == before, f"lower changed with {opts}"
    # and the changes are really thrown away
    p = sh("cat /etc/passwd; ls /bin/ls", check=True)
    assert p.stdout.startswith("root:x:0:0"), p.stdout


@test
def network_none_has_only_loopback():
    p = sh("ip -o link; echo ROUTES; ip route; cat /proc/net/route", "--network", "none",
           check=True)
    links, routes = p.stdout.split("ROUTES\n")
    names = [line.split(":")[1].strip() for line in links.splitlines()]
    assert names == ["lo"], links
    assert "UP" in links.split(">")[0], links
    assert routes.splitlines()[1:] == [], routes  # only /proc/net/route's header line
    # the control: the host network has more than loopback
    host = sh("ip -o link", "--network", "host", check=True).stdout
    assert len(host.splitlines()) > 1, host


@test
def timeout_kills_the_command_and_its_children():
    start = time.monotonic()
    p = sh("sleep 1001 & sleep 1002 & echo started; sleep 1003", "--timeout", "2", timeout=60)
    took = time.monotonic() - start
    assert p.returncode == 124, p
    assert p.stdout == "started\n", p.stdout
    assert "timed out" in p.stderr, p.stderr
    assert took < 8, f"took {took:.1f}s"
    # killed with the sandbox: gone once the kernel has reaped them
    wait_for(lambda: not any(sleepers(tag) for tag in ("1001", "1002", "1003")), timeout=10,
             what="sleep 1001, 1002 and 1003 to be gone (they survived the timeout)")


@test
def changes_land_in_upper_as_overlay_whiteouts():
    for opts in ([], ["--no-overlay"], ["--userns"]):
        upper = os.path.join(tmpdir(), "upper")
        p = sh("rm /bin/ls; rm -rf /home; mkdir /new; echo hi > /new/f; echo x >> /etc/group; "
               "cat /etc/resolv.conf /etc/hosts > /dev/null; echo ok",
               "--keep-upper", upper, *opts)
        assert p.returncode == 0 and p.stdout == "ok\n", (opts, p)
        assert is_whiteout(os.path.join(upper, "bin/ls")), opts
        assert is_whiteout(os.path.join(upper, "home")), opts
        with open(os.path.join(upper, "new/f")) as f:
            assert f.read() == "hi\n"
        # owners as the image sees them, not the user namespace's host ids
        st = os.lstat(os.path.join(upper, "new/f"))
        assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid()), (opts, st)
        assert sorted(os.listdir(os.path.join(upper, "etc"))) == ["group"], (opts,
                                                                              os.listdir(upper))
        assert sorted(os.listdir(upper)) == ["bin", "etc", "home", "new"], (opts,
                                                                            os.listdir(upper))


@test
def resolver_files_are_the_hosts_read_only_and_stay_out_of_upper():
    upper = os.path.join(tmpdir(), "upper")
    p = sh("cat /etc/resolv.conf; echo --; cat /etc/hosts; echo --; "
           "echo bad >> /etc/hosts && echo WROTE; rm /etc/resolv.conf && echo REMOVED; true",
           "--keep-upper", upper, check=True)
    with open("/etc/resolv.conf") as f:
        resolv = f.read()
    with open("/etc/hosts") as f:
        hosts = f.read()
    assert p.stdout == resolv + "--\n" + hosts + "--\n", p.stdout
    assert "WROTE" not in p.stdout and "REMOVED" not in p.stdout
    # the base image has no /etc/resolv.conf or /etc/hosts: the mount points go away
    assert os.listdir(upper) == [], os.listdir(upper)


@test
def upper_becomes_a_layer():
    upper = os.path.join(tmpdir(), "upper")
    sh("rm /bin/ls; echo built > /etc/built", "--keep-upper", upper, check=True)
    hoist("append", IMG, "--target", f"oci:{LAYOUT}:changed", "--layer", upper, "--overlay")
    p = hoist("run", f"oci:{LAYOUT}:changed", "--", "sh", "-c",
              "cat /etc/built; test -e /bin/ls || echo gone", check=True)
    assert p.stdout == "built\ngone\n", p.stdout


@test
def upper_on_overlayfs_falls_back_to_copy_and_oci_whiteouts():
    """Inside a container the upper dir sits on overlayfs, which can be neither an overlay
    upper nor hold 0:0 whiteouts: the copy fallback writes OCI ".wh." files instead."""
    if os.geteuid() != 0:
        raise Skip("mounting the overlayfs that plays the container's root needs root")
    d = tmpdir()
    for sub in ("l", "u", "w", "m"):
        os.mkdir(os.path.join(d, sub))
    run("mount", "-t", "overlay", "overlay", "-o",
        f"lowerdir={d}/l,upperdir={d}/u,workdir={d}/w", f"{d}/m")
    try:
        upper = os.path.join(d, "m", "upper")
        p = sh("rm /bin/ls; rm -rf /home; echo x > /etc/x; echo ok", "--keep-upper", upper)
        assert p.returncode == 0 and p.stdout == "ok\n", p
        assert "falling back" in p.stderr or "copy of the base" in p.stderr, p.stderr
        assert os.path.isfile(os.path.join(upper, "bin/.wh.ls"))
        assert os.path.isfile(os.path.join(upper, ".wh.home"))
        hoist("append", IMG, "--target", f"oci:{LAYOUT}:from-ovl", "--layer", upper, "--overlay")
        p = hoist("run", f"oci:{LAYOUT}:from-ovl", "--", "sh", "-c",
                  "cat /etc/x; test -e /bin/ls || echo no-ls; test -e /home || echo no-home",
                  check=True)
        assert p.stdout == "x\nno-ls\nno-home\n", p.stdout
    finally:
        run("umount", f"{d}/m", check=False)


@test
def registry_reference_is_pulled_then_run():
    image()
    reg = Registry(tmpdir()).start()
    hoist("push", IMG, f"{reg.host}/sandbox/busybox:1")
    env = {"HOIST_CACHE": os.path.join(tmpdir(), "cache"), "HOIST_IMAGES": ""}
    p = hoist("run", f"{reg.host}/sandbox/busybox:1", "--", "sh", "-c", "echo from-registry",
              env=env, check=False)
    assert p.returncode == 0 and p.stdout == "from-registry\n", p
    p = hoist("run", f"{reg.host}/sandbox/busybox:nope", "--", "true", env=env, check=False)
    assert p.returncode == 1 and "pull" in p.stderr, p


@test
def user_namespace_root_is_never_host_root():
    """--userns: root inside maps to a subordinate range (as root: root's in
    /etc/subuid), never to host uid 0; --userns=host as root keeps host ids."""
    p = sh("cat /proc/self/uid_map; id -u", "--userns", check=True)
    inside, outside, count = p.stdout.split()[:3]
    assert inside == "0" and outside != "0", p.stdout
    if os.geteuid() != 0:
        assert outside == str(os.geteuid()), p.stdout
    assert int(count) < 4294967295, "a new user namespace, not the host's"
    assert p.stdout.split()[-1] == "0"
    if os.geteuid() == 0:
        p = sh("cat /proc/self/uid_map", "--userns=host", check=True)
        assert p.stdout.split()[:3] == ["0", "0", "4294967295"], p.stdout


@test
def rootless_run():
    if os.geteuid() != 0:
        cache = os.environ.get("HOIST_CACHE")
        p = sh("id -u; cat /proc/self/uid_map; echo hi > /root/f; cat /root/f", check=True)
        assert p.stdout.splitlines()[0] == "0", p.stdout
        return
    # as root: run hoist itself as an unprivileged user, with its own cache
    d = tmpdir("hoist-rootless-")
    os.chmod(d, 0o777)
    layout = os.path.join(d, "layout")
    image()
    subprocess.run(["cp", "-r", LAYOUT, layout], check=True)
    subprocess.run(["chown", "-R", "65534:65534", d], check=True)
    env = dict(os.environ, HOIST_CACHE=os.path.join(d, "cache"), HOME=d, TMPDIR=d)
    env.pop("HOIST_ROOTFS_CACHE")  # the unprivileged user's own, under HOIST_CACHE
    # --network none: pasta cannot open /dev/net/tun (0600) as nobody on this host
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", HOIST,
                        "run", "--network", "none", f"oci:{layout}:base", "--", "sh", "-c",
                        "id -u; echo hi > /root/f; cat /root/f; rm /bin/ls && echo rm-ok"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p
    assert p.stdout == "0\nhi\nrm-ok\n", p.stdout



@test
def prune_keeps_the_tree_a_run_is_using():
    image()
    env = {"HOIST_ROOTFS_CACHE": tmpdir("hoist-prune-run-"), "HOIST_IMAGES": tmpdir()}
    e = dict(os.environ, **env)
    proc = subprocess.Popen([HOIST, "run", IMG, "--", "sh", "-c", "echo started; exec sleep 60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)
    try:
        assert proc.stdout.readline() == "started\n", proc.stderr.read()
        trees = [n for n in os.listdir(env["HOIST_ROOTFS_CACHE"]) if not n.endswith(".used")]
        assert len(trees) == 1, trees
        tree = os.path.join(env["HOIST_ROOTFS_CACHE"], trees[0])
        res = json.loads(hoist("prune", "--json", "--max-age", "0", env=env).stdout)["rootfs"]
        assert res["removed"] == 0 and res["inUse"] == 1, res
        assert os.path.isdir(tree)
        text = hoist("prune", "--max-age", "0", env=env).stdout
        assert "kept 1 in use" in text, text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    res = json.loads(hoist("prune", "--json", "--max-age", "0", env=env).stdout)["rootfs"]
    assert res["removed"] == 1 and res["inUse"] == 0, res
    assert not os.path.exists(tree)


@test
def no_process_sandbox_on_the_host():
    """--no-process-sandbox: no PID namespace, the host's /proc bound with the masks over it;
    the user, mount, UTS, IPC and network namespaces and the filter stay, and what the command
    leaves running is killed before hoist returns."""
    for opt in ("--help",):
        for verb in ("run", "build"):
            assert "--no-process-sandbox" in hoist(verb, opt).stdout, verb
    me = str(os.getpid())
    script = (f"ls /proc | grep -cx {me}; cat /proc/self/uid_map; hostname; ip -o link | wc -l; "
              "wc -c < /proc/keys; grep ' /proc/sys ' /proc/self/mountinfo | cut -d' ' -f6; "
              "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; "
              "sleep 1071 & setsid sh -c 'sleep 1072 &'; echo done")
    p = sh(script, "--no-process-sandbox", "--network", "none", check=True)
    lines = p.stdout.splitlines()
    assert lines[0] == "1", lines  # this test's own process, outside the sandbox, is in view
    inside, outside, count = lines[1].split()
    assert inside == "0" and int(count) < 4294967295, lines  # still a user namespace
    if os.geteuid() == 0:
        assert outside != "0", lines
    assert lines[2] == "hoist" and lines[3] == "1", lines  # UTS; network: only lo
    assert lines[4] == "0", lines  # /proc/keys masked
    assert lines[5].startswith("ro,"), lines  # /proc/sys read-only over the bind
    assert lines[6].split() == ["NoNewPrivs:", "1"] and lines[7].split() == ["Seccomp:", "2"]
    assert lines[8] == "done", lines
    # reaped by the sandbox's helper before it reported the command's status
    assert not sleepers("1071") and not sleepers("1072"), "left running after the run"
    # the control: with its PID namespace the command sees none of the host's processes
    p = sh(f"ls /proc | grep -cx {me}", check=False)
    assert p.stdout == "0\n", p


@test
def no_process_sandbox_timeout_kills_everything_it_started():
    start = time.monotonic()
    p = sh("sleep 1081 & setsid sh -c 'sleep 1082 &'; echo started; sleep 1083",
           "--no-process-sandbox", "--timeout", "2", timeout=60)
    assert p.returncode == 124 and p.stdout == "started\n", p
    assert "timed out" in p.stderr, p.stderr
    assert time.monotonic() - start < 8
    wait_for(lambda: not any(sleepers(tag) for tag in ("1081", "1082", "1083")), timeout=10,
             what="sleep 1081, 1082 and 1083 to be gone (they survived the timeout)")


@test
def no_process_sandbox_helper_killed_by_the_command():
    """Without a PID namespace the command can signal the sandbox's helper (same uid): the run
    then ends at once and the cgroup takes what the command left."""
    if os.geteuid() != 0:
        raise Skip("the cgroup that takes the rest needs root (or a delegated parent)")
    start = time.monotonic()
    p = sh("sleep 1091 & echo started; kill -9 $PPID; sleep 1092", "--no-process-sandbox",
           timeout=60)
    assert p.returncode == 1 and p.stdout == "started\n", p
    assert "without a status" in p.stderr, p.stderr
    assert time.monotonic() - start < 4, "waited for output the cgroup should have ended"
    wait_for(lambda: not sleepers("1091") and not sleepers("1092"), timeout=10,
             what="sleep 1091 and 1092 to be gone")


@test
def killing_hoist_kills_what_the_command_started():
    """hoist killed with SIGKILL mid-run (a cancelled build): the sandbox goes with it, with
    and without a PID namespace."""
    image()
    for opts, tag in (([], "1101"), (["--no-process-sandbox"], "1102")):
        proc = subprocess.Popen([HOIST, "run", *opts, "--network", "none", IMG, "--", "sh", "-c",
                                 f"sleep {tag} & setsid sh -c 'sleep {tag} &'; echo started; "
                                 f"exec sleep {tag}"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline() == "started\n", proc.stderr.read()
            wait_for(lambda: len(sleepers(tag)) == 3, timeout=10, what=f"three sleep {tag}")
        finally:
            proc.kill()
            proc.wait(timeout=30)
        wait_for(lambda: not sleepers(tag), timeout=10,
                 what=f"sleep {tag} to be gone after hoist was killed ({opts})")


if __name__ == "__main__":
    main()
