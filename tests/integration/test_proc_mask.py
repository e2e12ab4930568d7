"""Why a build's pod needs `procMount: Unmasked` (with `hostUsers: false`), reproduced with
unshare(1): once a container runtime has masked paths of /proc (as the runtime spec's
maskedPaths do in every pod with the Default procMount), a user namespace made inside it may
no longer mount a new procfs (the kernel's mount_too_revealing: the masks are locked mounts
over a procfs that is then not fully visible), which the sandbox's PID namespace needs. A
recursive bind of the /proc it was given still works: the sandbox's mode without a PID
namespace for clusters without user namespaces (`--no-process-sandbox`, BuildKit's
--oci-worker-no-process-sandbox) stands on that. Then hoist itself in such a "pod": the
default sandbox fails saying why and what to use, and that mode runs.
"""
import os
import shutil
import subprocess

from hoisttest import HOIST, SOURCE_ROOT, Skip, main, run, test, tmpdir

MASKS = ["/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/kcore",
         "/proc/latency_stats", "/proc/timer_stats"]


def outer(script):
    """Runs script in a user and mount namespace (the 'pod') whose /proc is masked as a
    runtime masks it; returns its output."""
    if not shutil.which("unshare"):
        raise Skip("unshare is not installed")
    mnt = tmpdir()
    masks = " ".join(p for p in MASKS if os.path.exists(p))
    pod = (f"for p in {masks}; do mount --bind /dev/null $p || exit 90; done\n"
           f"M={mnt}\n{script}")
    p = run("unshare", "--user", "--map-root-user", "--mount", "--fork", "sh", "-c", pod,
            check=False, timeout=60)
    if p.returncode == 90 or "Operation not permitted" in p.stderr and "unshare:" in p.stderr:
        raise Skip(f"user namespaces are not available here: {p.stderr.strip()}")
    return p


@test
def without_masks_a_new_procfs_mounts():
    mnt = tmpdir()
    p = run("unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork", "sh", "-c",
            f"mount -t proc proc {mnt} && echo mounted", check=False, timeout=60)
    if p.returncode != 0 and "unshare:" in p.stderr:
        raise Skip(f"user namespaces are not available here: {p.stderr.strip()}")
    assert p.stdout.strip() == "mounted", (p.stdout, p.stderr)


@test
def a_masked_proc_refuses_a_new_procfs_in_a_nested_user_namespace():
    p = outer('unshare --user --map-root-user --mount --pid --fork '
              'sh -c "mount -t proc proc $M 2>&1; echo rc=\\$?"')
    lines = p.stdout.strip().splitlines()
    assert lines[-1] != "rc=0" and "permission denied" in p.stdout.lower(), (p.stdout, p.stderr)


@test
def a_bind_of_the_pods_proc_still_works_there():
    p = outer('unshare --user --map-root-user --mount --fork '
              'sh -c "mount --rbind /proc $M && head -1 $M/self/status"')
    assert p.stdout.strip().startswith("Name:"), (p.stdout, p.stderr)


# The pod as Kubernetes makes one without user namespaces: the runtime (host root) gives the
# container a mount and PID namespace with a /proc of its own and masks paths of it; the
# container's process is not root. hoist runs there as nobody, with its own cache, the image
# owned by nobody, --network none (pasta cannot open /dev/net/tun as nobody here) and no
# cgroup (not root): what it starts is then killed by the sandbox's helper alone.
_pod = None


def pod_layout():
    global _pod
    if os.geteuid() != 0:
        raise Skip("playing the container runtime (masking /proc, running as nobody) needs root")
    if not shutil.which("unshare") or not shutil.which("setpriv"):
        raise Skip("unshare and setpriv (util-linux) are needed")
    if _pod is None:
        d = tmpdir("hoist-pod-")
        os.chmod(d, 0o777)
        run("bash", os.path.join(SOURCE_ROOT, "tests/fixtures/busybox-image.sh"), HOIST,
            os.path.join(d, "layout"), "base")
        run("chown", "-R", "65534:65534", d)
        _pod = d
    return _pod


def in_pod(*args, after=""):
    """Runs hoist ARGS as nobody in a pod with a masked /proc; `after` runs in the pod once
    hoist has exited (its output follows hoist's, after a line "--after--")."""
    d = pod_layout()
    masks = " ".join(p for p in MASKS if os.path.exists(p))
    quoted = " ".join("'" + str(a).replace("'", "'\\''") + "'" for a in args)
    pod = (f"for p in {masks}; do mount --bind /dev/null $p || exit 90; done\n"
           f"export HOIST_CACHE={d}/cache HOME={d} TMPDIR={d}\n"
           "unset HOIST_ROOTFS_CACHE\n"
           f"setpriv --reuid=65534 --regid=65534 --clear-groups {HOIST} {quoted}\n"
           "rc=$?\necho --after--\n"
           f"{after}\nexit $rc\n")
    p = subprocess.run(["unshare", "--mount", "--pid", "--fork", "--mount-proc", "sh", "-c", pod],
                       capture_output=True, text=True, timeout=120)
    if p.returncode == 90:
        raise Skip(f"cannot mask /proc here: {p.stderr.strip()}")
    out, _, rest = p.stdout.rpartition("--after--\n")
    return p.returncode, out, rest, p.stderr


@test
def hoist_run_in_the_masked_pod_fails_naming_the_cause_and_the_mode():
    d = pod_layout()
    rc, out, _, err = in_pod("run", "--network", "none", f"oci:{d}/layout:base", "--", "echo",
                             "ran")
    assert rc == 1 and "ran" not in out, (rc, out, err)
    assert "mount /proc" in err and "refuses a new procfs" in err, err
    assert "/proc/keys" in err, err  # what is mounted over /proc, named
    assert "--no-process-sandbox" in err and "procMount: Unmasked" in err, err
    assert "Operation not permitted" in err, err


@test
def no_process_sandbox_runs_in_the_masked_pod():
    d = pod_layout()
    script = ("echo pid=$$; ls /proc | grep -x $$; ls /proc | grep -cx 1; "
              "wc -c < /proc/keys; wc -c < /proc/timer_list; "
              "grep -E ' /proc/sys ' /proc/self/mountinfo | cut -d' ' -f6; "
              "echo x > /proc/sys/kernel/hostname || echo refused; "
              "id -u; hostname; "
              "sleep 1051 & setsid sh -c 'sleep 1052 &'; echo left-behind")
    rc, out, after, err = in_pod("run", "--network", "none", "--no-process-sandbox",
                                 f"oci:{d}/layout:base", "--", "sh", "-c", script,
                                 after="pgrep -f '^sleep 105' || echo none-left")
    assert rc == 0, (rc, out, err)
    lines = out.splitlines()
    pid = lines[0].split("=")[1]
    # its own processes in the bound /proc, and the pod's first process (the shell)
    assert lines[1] == pid and lines[2] == "1", lines
    assert lines[3:5] == ["0", "0"], lines  # masked: /dev/null on top
    assert lines[5].startswith("ro,"), lines  # read-only over the bind
    assert lines[6] == "refused", lines
    assert lines[7:] == ["0", "hoist", "left-behind"], lines
    # the helper killed and reaped what the command left before hoist returned (no cgroup
    # here, and the pod's PID namespace is still alive: that was not what killed them)
    assert after.strip() == "none-left", after


@test
def no_process_sandbox_timeout_in_the_masked_pod():
    d = pod_layout()
    rc, out, after, err = in_pod("run", "--network", "none", "--no-process-sandbox",
                                 "--timeout", "2", f"oci:{d}/layout:base", "--", "sh", "-c",
                                 "sleep 1061 & setsid sh -c 'sleep 1062 &'; echo started; "
                                 "sleep 1063",
                                 after="pgrep -f '^sleep 106' || echo none-left")
    assert rc == 124 and out == "started\n", (rc, out, err)
    assert "timed out" in err, err
    assert after.strip() == "none-left", after


@test
def no_process_sandbox_refuses_a_proc_of_another_pid_namespace():
    """The helper finds what the command left in /proc by its own pid: a /proc that is not of
    hoist's PID namespace (here: unshare --pid without --mount-proc) is refused up front."""
    d = pod_layout()
    p = subprocess.run(["unshare", "--pid", "--fork", HOIST, "run", "--no-process-sandbox",
                        "--network", "none", f"oci:{d}/layout:base", "--", "echo", "ran"],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, HOIST_CACHE=os.path.join(d, "cache-root")))
    assert p.returncode == 1 and "ran" not in p.stdout, p
    assert "belongs to another PID namespace" in p.stderr, p.stderr


if __name__ == "__main__":
    main()
