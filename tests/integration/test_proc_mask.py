"""Why a build's pod needs `procMount: Unmasked` (with `hostUsers: false`), reproduced with
unshare(1): once a container runtime has masked paths of /proc (as the runtime spec's
maskedPaths do in every pod with the Default procMount), a user namespace made inside it may
no longer mount a new procfs (the kernel's mount_too_revealing: the masks are locked mounts
over a procfs that is then not fully visible), which the sandbox's PID namespace needs. A
recursive bind of the /proc it was given still works: the idea of a sandbox mode without its
own PID namespace for clusters without user namespaces (BuildKit's
--oci-worker-no-process-sandbox). That mode is not in the sandbox yet; this file holds the
kernel facts it would stand on.
"""
import os
import shutil

from hoisttest import Skip, main, run, test, tmpdir

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


if __name__ == "__main__":
    main()
