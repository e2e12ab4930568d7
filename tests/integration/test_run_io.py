"""hoist run's streams: stdout and stderr byte for byte, stdin with -i, a terminal with -t,
and the podman-style options -v, --rm and --entrypoint, on the busybox-static base image
(tests/fixtures/busybox-image.sh)."""
import fcntl
import hashlib
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time

from hoisttest import HOIST, busybox_rootfs, hoist, main, test, tmpdir

LAYOUT = os.path.join(tmpdir("hoist-run-io-"), "layout")
IMG = f"oci:{LAYOUT}:base"
_state = {}


def image():
    """The base image, made once; returns its unpacked tree (the overlay's lower dir)."""
    if "lower" not in _state:
        _state["lower"] = busybox_rootfs(LAYOUT)
    return _state["lower"]


def raw(*args, input=None, timeout=120):
    """hoist run ARGS with bytes in and out (stdin /dev/null unless input)."""
    image()
    return subprocess.run([HOIST, "run", *args], input=input, capture_output=True,
                          stdin=None if input is not None else subprocess.DEVNULL,
                          timeout=timeout)


def sh(script, *opts, input=None):
    return raw(*opts, IMG, "--", "sh", "-c", script, input=input)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


@test
def binary_output_is_byte_for_byte():
    with open(os.path.join(image(), "bin/busybox"), "rb") as f:
        want = f.read()
    p = raw(IMG, "--", "cat", "/bin/busybox")
    assert p.returncode == 0, p.stderr
    assert len(p.stdout) == len(want) and sha256(p.stdout) == sha256(want), len(p.stdout)
    assert b"\0" in want  # the control: the file really is binary


@test
def no_newline_is_added_and_long_lines_stay_whole():
    p = sh("printf abc")
    assert p.returncode == 0 and p.stdout == b"abc", p
    # one line of 100 kB: not split at 64 KiB, no newline of hoist's
    p = sh("head -c 100000 /dev/zero | tr '\\0' x")
    assert p.stdout == b"x" * 100000, (len(p.stdout), p.stdout.count(b"\n"))
    p = sh("head -c 100000 /dev/zero | tr '\\0' y; echo")
    assert p.stdout == b"y" * 100000 + b"\n", len(p.stdout)
    p = sh("printf 'a\\r\\nb\\0c\\n\\n'")
    assert p.stdout == b"a\r\nb\0c\n\n", p.stdout


@test
def stderr_is_separate_and_exact():
    p = sh("printf 'e1\\ne2' >&2; printf o; printf 'e3' >&2; exit 3")
    assert p.returncode == 3, p
    assert p.stdout == b"o", p.stdout
    assert p.stderr == b"e1\ne2e3", p.stderr


@test
def stdin_is_dev_null_without_i_and_forwarded_with_it():
    p = sh("read x; echo \"[$x]\"; readlink /proc/self/fd/0", input=b"hi\n")
    assert p.stdout == b"[]\n/dev/null\n", p.stdout  # not forwarded without -i
    p = sh("read x; echo $x", "-i", input=b"hi\n")
    assert p.returncode == 0 and p.stdout == b"hi\n", p
    # both ways at once, larger than every buffer, and the end of stdin reaches the command
    data = os.urandom(3 << 20)
    p = raw("-i", IMG, "--", "cat", input=data)
    assert p.returncode == 0 and sha256(p.stdout) == sha256(data), (len(p.stdout), p.stderr)
    p = raw("--interactive", IMG, "--", "wc", "-c", input=data)
    assert p.stdout.split() == [str(len(data)).encode()], p.stdout
    # a command that does not read its stdin still ends
    p = raw("-i", IMG, "--", "true", input=b"x" * (1 << 20))
    assert p.returncode == 0, p


@test
def a_reader_that_goes_away_stops_the_command():
    """`hoist run IMG -- yes | head -c 10`: the command gets EPIPE as if it wrote there."""
    image()
    start = time.monotonic()
    p = subprocess.run(f"'{HOIST}' run {IMG} -- yes | head -c 10", shell=True,
                       capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.stdout == b"y\n" * 5, p
    assert time.monotonic() - start < 30


def spawn_tty(*args, rows=33, cols=101):
    """hoist run ARGS under a new pseudo-terminal of rows x cols; returns (pid, master)."""
    image()
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execv(HOIST, [HOIST, "run", *args])
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    return pid, fd


def read_until(fd, want, timeout=60):
    buf = b""
    end = time.monotonic() + timeout
    while want not in buf and time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                d = os.read(fd, 4096)
            except OSError:
                break
            if not d:
                break
            buf += d
    return buf


def wait_exit(pid, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        w, st = os.waitpid(pid, os.WNOHANG)
        if w == pid:
            return os.waitstatus_to_exitcode(st)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"hoist run did not end within {timeout}s")


@test
def tty_is_a_terminal_of_the_run_with_size_and_ctrl_c():
    pid, fd = spawn_tty("-it", IMG, "--", "sh", "-c",
                        "tty; stty size; echo READY; read x; stty size; echo SIZED; "
                        "exec sleep 100")
    try:
        out = read_until(fd, b"READY")
        lines = out.decode(errors="replace").split("\r\n")
        assert lines[0] in ("/dev/console",) or lines[0].startswith("/dev/pts/"), out
        assert lines[1] == "33 101", out
        # the window size follows hoist's terminal (SIGWINCH)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        time.sleep(0.5)
        os.write(fd, b"go\r")
        out = read_until(fd, b"SIZED")
        assert b"40 120\r\nSIZED" in out, out
        time.sleep(0.5)
        start = time.monotonic()
        os.write(fd, b"\x03")  # through the line discipline: SIGINT to the command
        code = wait_exit(pid, 20)
        assert code == 128 + signal.SIGINT, code
        assert time.monotonic() - start < 10
        # hoist's terminal is back as it was (not raw): it echoes and reads lines again
        lflag = termios.tcgetattr(fd)[3]
        assert lflag & termios.ECHO and lflag & termios.ICANON and lflag & termios.ISIG, lflag
    finally:
        os.close(fd)
    # also when a signal ends hoist
    pid, fd = spawn_tty("-it", IMG, "--", "sh", "-c", "echo READY; exec sleep 100")
    try:
        assert b"READY" in read_until(fd, b"READY")
        assert not termios.tcgetattr(fd)[3] & termios.ICANON  # raw while it runs
        os.kill(pid, signal.SIGTERM)
        assert wait_exit(pid, 20) == -signal.SIGTERM
        lflag = termios.tcgetattr(fd)[3]
        assert lflag & termios.ECHO and lflag & termios.ICANON, lflag
    finally:
        os.close(fd)
    # every stream is the terminal; nothing else of the host's /dev
    pid, fd = spawn_tty("-t", IMG, "--", "sh", "-c", "test -t 0 && test -t 1 && test -t 2 && "
                        "echo ALL-TTY; ls /dev")
    try:
        out = read_until(fd, b"urandom")
        assert b"ALL-TTY" in out, out
        names = out.decode().split("ALL-TTY")[1].split()
        assert "tty" not in names and "console" in names, names
        assert wait_exit(pid, 30) == 0
    finally:
        os.close(fd)


@test
def tty_without_a_terminal_and_nothing_else_of_dev_pts():
    p = raw("-t", IMG, "--", "sh", "-c",
            "tty; ls /dev/pts | wc -l; printf 'a\\nb'")
    assert p.returncode == 0, p
    assert p.stdout.startswith(b"/dev/console\r\n0\r\n"), p.stdout
    assert p.stdout.endswith(b"a\r\nb"), p.stdout  # the terminal's own \r\n, nothing added
    p = raw("-t", IMG, "--", "sh", "-c", "echo x > /dev/console && echo OPENED")
    assert b"OPENED" not in p.stdout, p.stdout  # nodev: only the descriptors reach it
    # -it with piped input: its end is the terminal's end of file (Ctrl-D)
    p = raw("-it", IMG, "--", "sh", "-c", "cat > /tmp/in; echo; echo END; od -c /tmp/in",
            input=b"hello\n", timeout=60)
    assert p.returncode == 0 and b"END" in p.stdout, p
    assert p.stdout.split(b"END")[1].split()[1:3] == [b"h", b"e"], p.stdout


@test
def volumes_bind_host_paths_read_write_and_read_only():
    d = tmpdir("hoist-vol-")
    os.chmod(d, 0o777)  # root inside may be a subordinate uid
    with open(os.path.join(d, "f"), "w") as f:
        f.write("host data\n")
    p = sh("cat /data/f; echo written > /data/new && echo WROTE; grep ' /data ' /proc/mounts",
           "-v", f"{d}:/data")
    assert p.stdout.startswith(b"host data\nWROTE\n"), p
    opts = p.stdout.split(b"\n")[2].split()[3].split(b",")
    assert b"nosuid" in opts and b"nodev" in opts and b"rw" in opts, opts
    with open(os.path.join(d, "new")) as f:
        assert f.read() == "written\n"
    p = sh("cat /ro/f; echo no > /ro/f && echo WROTE; rm /ro/new && echo REMOVED; "
           "grep ' /ro ' /proc/mounts", "-v", f"{d}:/ro:ro")
    assert p.stdout.startswith(b"host data\n"), p
    assert b"WROTE" not in p.stdout and b"REMOVED" not in p.stdout, p.stdout
    assert b"Read-only file system" in p.stderr, p.stderr
    opts = p.stdout.split(b"\n")[1].split()[3].split(b",")
    assert b"ro" in opts and b"nosuid" in opts and b"nodev" in opts, opts
    with open(os.path.join(d, "f")) as f:
        assert f.read() == "host data\n"
    # a file
    p = sh("cat /etc/bound", "-v", f"{d}/f:/etc/bound:ro")
    assert p.stdout == b"host data\n", p
    bad = raw("-v", "named:/x", IMG, "--", "true")  # podman's named volumes: not here
    assert bad.returncode == 2 and b"named" in bad.stderr, bad
    bad = raw("-v", f"{d}:/x:bogus", IMG, "--", "true")
    assert bad.returncode == 2, bad
    bad = raw("-v", f"{d}/missing:/x", IMG, "--", "true")
    assert bad.returncode == 1 and b"missing" in bad.stderr, bad


@test
def rm_is_accepted_and_entrypoint_replaces_the_images():
    p = raw("--rm", IMG, "--", "echo", "removed")
    assert p.returncode == 0 and p.stdout == b"removed\n", p
    p = raw("--entrypoint", '["echo", "from", "array"]', IMG, "--", "arg")
    assert p.stdout == b"from array arg\n", p
    p = raw("--entrypoint", "echo", IMG, "--", "one", "two")
    assert p.stdout == b"one two\n", p
    p = raw("--entrypoint", "", IMG, "--", "echo", "none")
    assert p.stdout == b"none\n", p
    p = raw("--entrypoint", "/bin/pwd", "-w", "/etc", IMG)
    assert p.stdout == b"/etc\n", p
    bad = raw("--entrypoint", '["echo", 1]', IMG, "--", "x")
    assert bad.returncode == 2, bad


@test
def help_documents_the_options():
    p = hoist("run", "--help")
    for opt in ("--interactive", "--tty", "--volume", "--entrypoint", "--rm", "byte for byte"):
        assert opt in p.stdout, opt


if __name__ == "__main__":
    main()
