"""Credentials and TLS as a user meets them: hoist login and logout against a
real registry (htpasswd), the auth file podman reads, credentials per side
of a copy, CAs from certs.d and --cert-dir, --tls-verify=false, and the
errors of a registry that cannot be reached. skopeo is the oracle."""
import base64
import json
import os
import pty
import select
import stat
import time

from hoisttest import Registry, free_port, hoist, main, run, skopeo, test, tmpdir, HOIST

MAKE_LAYOUT = os.environ.get("HOIST_MAKE_LAYOUT", "make_layout")


def make_image(tag="v1", content=None):
    """oci:DIR:TAG of a fresh one-layer image, and its manifest digest."""
    d = os.path.join(tmpdir(), "src")
    digest = run(MAKE_LAYOUT, d, tag, content or f"login test {time.time()}\n").stdout.strip()
    return f"oci:{d}:{tag}", digest


def user_env():
    """A HOME and XDG_RUNTIME_DIR of the test's own: no auth file or certs.d
    of the machine's user is read or written."""
    home = tmpdir("hoist-home-")
    xdg = tmpdir("hoist-xdg-")
    return {"HOME": home, "XDG_RUNTIME_DIR": xdg, "REGISTRY_AUTH_FILE": "",
            "DOCKER_CONFIG": ""}


def auth_of(path):
    with open(path) as f:
        return json.load(f)


def b64(user, password):
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@test
def login_logout_round_trip():
    reg = Registry(tmpdir(), auth="htpasswd", users={"alice": "s3cret"}).start()
    env = user_env()
    path = os.path.join(env["XDG_RUNTIME_DIR"], "containers", "auth.json")
    os.makedirs(os.path.dirname(path))
    # another registry's entry and other keys stay as they are
    with open(path, "w") as f:
        json.dump({"auths": {"other.example": {"auth": b64("o", "p")}},
                   "credHelpers": {"helped.example": "none"}}, f)
    p = hoist("login", "-u", "alice", "--password-stdin", reg.host, input="s3cret\n", env=env)
    assert "Login Succeeded" in p.stdout, p.stdout
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    doc = auth_of(path)
    assert doc["auths"][reg.host] == {"auth": b64("alice", "s3cret")}, doc
    assert doc["auths"]["other.example"] == {"auth": b64("o", "p")}, doc
    assert doc["credHelpers"] == {"helped.example": "none"}, doc
    # skopeo reads what login wrote; hoist's verbs use it without flags
    ref, digest = make_image()
    hoist("push", ref, f"{reg.host}/app:1", env=env)
    got = skopeo("inspect", "--tls-verify=false", "--authfile", path, "--format",
                 "{{.Digest}}", f"docker://{reg.host}/app:1").stdout.strip()
    assert got == digest, (got, digest)
    assert hoist("tags", f"{reg.host}/app", env=env).stdout.split() == ["1"]
    # logout removes that entry alone
    p = hoist("logout", reg.host, env=env)
    assert f"Removed login credentials for {reg.host}" in p.stdout, p.stdout
    doc = auth_of(path)
    assert reg.host not in doc["auths"] and "other.example" in doc["auths"], doc
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    p = hoist("tags", f"{reg.host}/app", env=env, check=False)
    assert p.returncode == 1 and "no credentials" in p.stderr, p.stderr
    p = hoist("logout", reg.host, env=env, check=False)
    assert p.returncode == 1 and f"not logged into {reg.host}" in p.stderr, p.stderr
    # --all empties auths, keeps the rest; --authfile and $REGISTRY_AUTH_FILE
    hoist("logout", "--all", env=env)
    assert auth_of(path)["auths"] == {} and "credHelpers" in auth_of(path)
    other = os.path.join(tmpdir(), "new", "auth.json")
    hoist("login", "--authfile", other, "-u", "alice", "--password-stdin",
          f"https://{reg.host}/", input="s3cret", env=env)
    assert list(auth_of(other)["auths"]) == [reg.host], auth_of(other)
    hoist("logout", reg.host, env=dict(env, REGISTRY_AUTH_FILE=other))
    assert auth_of(other)["auths"] == {}
    reg.stop()


@test
def login_refused_writes_nothing():
    reg = Registry(tmpdir(), auth="htpasswd", users={"alice": "s3cret"}).start()
    env = user_env()
    path = os.path.join(env["XDG_RUNTIME_DIR"], "containers", "auth.json")
    start = time.monotonic()
    p = hoist("login", "-u", "alice", "--password-stdin", reg.host, input="wrong\n", env=env,
              check=False)
    assert p.returncode == 1 and "credentials were refused" in p.stderr, p.stderr
    assert "Login Succeeded" not in p.stdout
    assert time.monotonic() - start < 5, "refused credentials were retried"
    assert not os.path.exists(path), "a refused login wrote the auth file"
    # an existing file is left byte for byte
    hoist("login", "-u", "alice", "--password-stdin", reg.host, input="s3cret", env=env)
    before = open(path, "rb").read()
    p = hoist("login", "-u", "alice", "--password-stdin", reg.host, input="nope", env=env,
              check=False)
    assert p.returncode == 1
    assert open(path, "rb").read() == before
    # usage errors: no user with --password-stdin, a user with ':'
    p = hoist("login", "--password-stdin", reg.host, input="x", env=env, check=False)
    assert p.returncode == 2 and "--username" in p.stderr, p.stderr
    p = hoist("login", "-u", "a:b", "--password-stdin", reg.host, input="x", env=env,
              check=False)
    assert p.returncode == 2, p.stderr
    # no terminal to ask on
    p = hoist("login", reg.host, env=env, check=False, input="")
    assert p.returncode == 1 and "/dev/tty" in p.stderr, p.stderr
    reg.stop()


def _pty_read_until(fd, needle, timeout=20):
    out = b""
    end = time.monotonic() + timeout
    while needle not in out:
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {needle!r} in {out!r}")
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


@test
def login_asks_on_the_terminal():
    reg = Registry(tmpdir(), auth="htpasswd", users={"alice": "s3cret"}).start()
    env = dict(os.environ, **user_env())
    path = os.path.join(env["XDG_RUNTIME_DIR"], "containers", "auth.json")
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(HOIST, [HOIST, "login", reg.host], env)
    out = _pty_read_until(fd, b"Username: ")
    os.write(fd, b"alice\n")
    out += _pty_read_until(fd, b"Password: ")
    os.write(fd, b"s3cret\n")
    out += _pty_read_until(fd, b"Login Succeeded")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, out
    assert b"alice" in out, out  # the username is echoed
    assert b"s3cret" not in out, out  # the password is not
    assert auth_of(path)["auths"][reg.host] == {"auth": b64("alice", "s3cret")}
    reg.stop()


@test
def copy_with_credentials_per_side():
    a = Registry(tmpdir(), auth="htpasswd", users={"alice": "apw"}).start()
    b = Registry(tmpdir(), auth="htpasswd", users={"bob": "bpw"}).start()
    ref, digest = make_image()
    hoist("push", "--creds", "alice:apw", ref, f"{a.host}/app:1")
    env = user_env()
    # one set of credentials cannot serve both
    p = hoist("copy", "--creds", "alice:apw", f"{a.host}/app:1", f"{b.host}/app:1", env=env,
              check=False)
    assert p.returncode == 1 and "credentials were refused" in p.stderr, p.stderr
    out = json.loads(hoist("copy", "--json", "--src-creds", "alice:apw", "--dest-creds", "bob:bpw",
                           f"{a.host}/app:1", f"{b.host}/app:1", env=env).stdout)
    assert out["digest"] == digest, out
    got = skopeo("inspect", "--tls-verify=false", "--creds", "bob:bpw", "--format",
                 "{{.Digest}}", f"docker://{b.host}/app:1").stdout.strip()
    assert got == digest
    # auth files per side, made by login; a shared --creds gives way to them
    fa = os.path.join(tmpdir(), "a.json")
    fb = os.path.join(tmpdir(), "b.json")
    hoist("login", "--authfile", fa, "-u", "alice", "--password-stdin", a.host, input="apw",
          env=env)
    hoist("login", "--authfile", fb, "-u", "bob", "--password-stdin", b.host, input="bpw",
          env=env)
    hoist("copy", "--creds", "nobody:x", "--src-authfile", fa, "--dest-authfile", fb,
          f"{a.host}/app:1", f"{b.host}/other:2", env=env)
    assert hoist("tags", "--authfile", fb, f"{b.host}/other", env=env).stdout.split() == ["2"]
    # a side of its own and the other side from the shared options
    hoist("copy", "--creds", "alice:apw", "--dest-creds", "bob:bpw", f"{a.host}/app:1",
          f"{b.host}/third:3", env=env)
    p = hoist("copy", "--src-creds", "alice", f"{a.host}/app:1", f"{b.host}/x:1", env=env,
              check=False)
    assert p.returncode == 2 and "USER:PASSWORD" in p.stderr, p.stderr
    a.stop()
    b.stop()


def _certs_d(env, reg):
    """Puts reg's CA where podman looks first: ~/.config/containers/certs.d/HOST:PORT/."""
    d = os.path.join(env["HOME"], ".config", "containers", "certs.d", reg.host)
    os.makedirs(d)
    with open(os.path.join(d, "ca.crt"), "w") as f:
        f.write(open(reg.ca).read())
    return d


@test
def tls_ca_from_certs_d_without_flags():
    reg = Registry(tmpdir(), tls=True, auth="htpasswd", users={"alice": "s3cret"}).start()
    env = user_env()
    ref, digest = make_image()
    # a TLS registry on loopback, its CA not trusted: what to give, not "HTTP 400"
    p = hoist("push", "--creds", "alice:s3cret", ref, f"{reg.host}/tls:1", env=env, check=False)
    assert p.returncode == 1, p.stderr
    assert "HTTP 400" not in p.stderr, p.stderr
    for hint in ("not trusted", "--ca-file", "certs.d", "--tls-verify=false",
                 os.path.join(env["HOME"], ".config/containers/certs.d", reg.host, "ca.crt")):
        assert hint in p.stderr, (hint, p.stderr)
    # the CA in certs.d: https, verified, no flag
    _certs_d(env, reg)
    hoist("push", "--creds", "alice:s3cret", ref, f"{reg.host}/tls:1", env=env)
    p = hoist("login", "-u", "alice", "--password-stdin", reg.host, input="s3cret",
              env=dict(env, HOIST_LOG="debug"))
    assert "Login Succeeded" in p.stdout and f"GET https://{reg.host}/v2/" in p.stderr, p.stderr
    assert "http://" not in p.stderr, p.stderr
    assert hoist("tags", f"{reg.host}/tls", env=env).stdout.split() == ["1"]
    got = skopeo("inspect", "--creds", "alice:s3cret", "--cert-dir",
                 os.path.dirname(_ca_copy(reg)), "--format", "{{.Digest}}",
                 f"docker://{reg.host}/tls:1").stdout.strip()
    assert got == digest
    # --tls-verify=true still verifies, with the same CA
    hoist("inspect", "--tls-verify=true", f"{reg.host}/tls:1", env=env)
    reg.stop()


def _ca_copy(reg):
    d = tmpdir("hoist-certdir-")
    path = os.path.join(d, "ca.crt")
    with open(path, "w") as f:
        f.write(open(reg.ca).read())
    return path


@test
def tls_cert_dir_and_unverified():
    reg = Registry(tmpdir(), tls=True).start()
    env = user_env()
    ref, digest = make_image()
    certs = os.path.dirname(_ca_copy(reg))
    hoist("push", "--cert-dir", certs, ref, f"{reg.host}/cd:1", env=env)
    info = json.loads(hoist("inspect", "--json", "--cert-dir", certs, f"{reg.host}/cd:1",
                            env=env).stdout)
    assert info["digest"] == digest
    # --tls-verify=false: https without verification (was: plain http, HTTP 400)
    assert hoist("tags", "--tls-verify=false", f"{reg.host}/cd", env=env).stdout.split() == ["1"]
    p = hoist("tags", f"{reg.host}/cd", env=env, check=False)
    assert p.returncode == 1 and "--ca-file" in p.stderr, p.stderr
    # a host made insecure is spoken to as podman does: https, unverified
    assert hoist("tags", "--insecure-registry", reg.host, f"{reg.host}/cd",
                 env=env).stdout.split() == ["1"]
    # a pair without its key is named
    with open(os.path.join(certs, "client.cert"), "w") as f:
        f.write("x\n")
    p = hoist("tags", "--cert-dir", certs, f"{reg.host}/cd", env=env, check=False)
    assert p.returncode == 1 and "client.cert has no key client.key" in p.stderr, p.stderr
    # copy: per-side TLS settings
    plain = Registry(tmpdir()).start()
    os.unlink(os.path.join(certs, "client.cert"))
    hoist("copy", "--src-tls-verify=false", f"{reg.host}/cd:1", f"{plain.host}/cd:1", env=env)
    hoist("copy", "--dest-cert-dir", certs, f"{plain.host}/cd:1", f"{reg.host}/back:1", env=env)
    assert hoist("tags", "--cert-dir", certs, f"{reg.host}/back", env=env).stdout.split() == ["1"]
    plain.stop()
    reg.stop()


@test
def plain_http_on_loopback():
    reg = Registry(tmpdir()).start()
    env = user_env()
    ref, _ = make_image()
    # loopback: https tried, plain http taken
    p = hoist("push", ref, f"{reg.host}/plain:1", env=dict(env, HOIST_LOG="debug"))
    assert f"GET https://{reg.host}/v2/" in p.stderr, p.stderr
    assert f"http://{reg.host}/v2/plain/manifests/1" in p.stderr, p.stderr
    # --tls-verify=true: https only
    p = hoist("tags", "--tls-verify=true", f"{reg.host}/plain", env=env, check=False)
    assert p.returncode == 1 and "TLS handshake failed" in p.stderr, p.stderr
    assert "--tls-verify=true" in p.stderr, p.stderr
    reg.stop()


@test
def connection_refused_is_quick_and_named():
    port = free_port()
    env = user_env()
    for args in (["tags", f"127.0.0.1:{port}/busy"], ["login", "-u", "u", "--password-stdin",
                                                      f"127.0.0.1:{port}"]):
        start = time.monotonic()
        p = hoist(*args, env=env, check=False, input="pw")
        took = time.monotonic() - start
        assert p.returncode == 1, p.stderr
        assert f"127.0.0.1:{port}: connection refused" in p.stderr, p.stderr
        assert "after 0 ms" not in p.stderr, p.stderr
        assert took < 3, f"{took:.1f}s to report a refused connection"


if __name__ == "__main__":
    main()
