"""hoist config (and append's config options): every field set and read back
by skopeo and umoci, layers never written again, layout to layout and
registry to registry, and an image made from scratch that `hoist run` runs."""
import json
import os

from hoisttest import HOIST, SOURCE_ROOT, Registry, hoist, main, run, skopeo, test, tmpdir

WORK = tmpdir("hoist-config-")
LAYOUT = os.path.join(WORK, "layout")
BASE = f"oci:{LAYOUT}:base"
_base = None


def base():
    """The busybox fixture (one layer, cached under $HOIST_CACHE) as oci:LAYOUT:base."""
    global _base
    if _base is None:
        run("bash", os.path.join(SOURCE_ROOT, "tests/fixtures/busybox-image.sh"), HOIST, LAYOUT,
            "base")
        _base = True
    return BASE


def config_of(ref, *extra):
    return json.loads(skopeo("inspect", *extra, "--config", ref).stdout)


def raw_of(ref, *extra):
    return json.loads(skopeo("inspect", *extra, "--raw", ref).stdout)


def blobs(layout):
    d = os.path.join(layout, "blobs", "sha256")
    return {name: os.stat(os.path.join(d, name)).st_ino for name in os.listdir(d)}


@test
def every_field_read_back_by_skopeo_and_umoci():
    src = base()
    before = raw_of(src)
    layer_files = blobs(LAYOUT)
    out = json.loads(hoist(
        "config", src, "--target", f"oci:{LAYOUT}:all", "--json",
        "--entrypoint", '["/bin/sh", "-c"]', "--cmd", '["echo $GREETING"]',
        "--env", "GREETING=hello", "--env", "PATH=/usr/bin:/bin",
        "--label", "org.opencontainers.image.title=demo", "--label", "team=core",
        "--annotation", "org.opencontainers.image.source=https://example.org/demo",
        "--user", "1000:1000", "--workdir", "/srv",
        "--expose", "8080", "--expose", "53/udp", "--volume", "/data",
        "--stop-signal", "SIGINT", "--author", "Jane <jane@example.org>",
        "--history-comment", "set the demo's config", "--source-date-epoch", "1700000000",
    ).stdout)
    assert out["layers"] == 1 and out["skipped"] == 1 and out["copied"] == 0, out
    ref = f"oci:{LAYOUT}:all"
    cfg = config_of(ref)
    c = cfg["config"]
    assert c["Entrypoint"] == ["/bin/sh", "-c"] and c["Cmd"] == ["echo $GREETING"]
    assert c["Env"] == ["GREETING=hello", "PATH=/usr/bin:/bin"], c["Env"]
    assert c["Labels"] == {"org.opencontainers.image.title": "demo", "team": "core"}
    assert c["User"] == "1000:1000" and c["WorkingDir"] == "/srv"
    assert c["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert c["Volumes"] == {"/data": {}} and c["StopSignal"] == "SIGINT"
    assert cfg["author"] == "Jane <jane@example.org>"
    assert cfg["history"][-1] == {"created": "2023-11-14T22:13:20Z", "created_by": "hoist config",
                                  "comment": "set the demo's config", "empty_layer": True}
    assert cfg["created"] == "2023-11-14T22:13:20Z"
    # the manifest: new config, the same layers, the annotation
    m = raw_of(ref)
    assert m["layers"] == before["layers"]
    assert m["config"]["digest"] == out["config"] != before["config"]["digest"]
    assert m["annotations"] == {"org.opencontainers.image.source": "https://example.org/demo"}
    assert cfg["rootfs"] == config_of(src)["rootfs"]
    # nothing but the config and the manifest was written; the layer file is
    # the same file (marked as used for gc's grace period, never rewritten)
    after = blobs(LAYOUT)
    assert set(after) - set(layer_files) == {out["config"][7:], out["manifest"][7:]}
    for name, inode in layer_files.items():
        assert after[name] == inode, name
    # the same view from umoci: the runtime config it derives
    bundle = os.path.join(tmpdir(), "bundle")
    run("umoci", "unpack", "--rootless", "--image", f"{LAYOUT}:all", bundle)
    with open(os.path.join(bundle, "config.json")) as f:
        spec = json.load(f)
    p = spec["process"]
    assert p["args"] == ["/bin/sh", "-c", "echo $GREETING"]
    assert "GREETING=hello" in p["env"] and p["cwd"] == "/srv"
    assert p["user"]["uid"] == 1000 and p["user"]["gid"] == 1000
    assert spec["annotations"]["org.opencontainers.image.stopSignal"] == "SIGINT"
    assert spec["annotations"]["org.opencontainers.image.author"] == "Jane <jane@example.org>"
    st = json.loads(run("umoci", "stat", "--json", "--image", f"{LAYOUT}:all").stdout)
    last = st["history"][-1]
    assert last["comment"] == "set the demo's config" and last["empty_layer"] is True, last
    # and hoist itself runs it
    r = hoist("run", "--network", "none", "-u", "0", "-w", "/", ref)
    assert r.stdout == "hello\n", r.stdout


@test
def command_forms_and_clearing():
    src = base()
    ref = f"oci:{LAYOUT}:forms"
    cases = [
        # (options, Entrypoint, Cmd)
        (["--cmd", "echo $HOME && id -u"], None, ["/bin/sh", "-c", "echo $HOME && id -u"]),
        (["--cmd", '["/bin/echo", "a b"]'], None, ["/bin/echo", "a b"]),
        (["--entrypoint", "exec echo ep", "--cmd", ""], ["/bin/sh", "-c", "exec echo ep"], None),
        (["--entrypoint", '["/bin/echo"]', "--cmd", '["x"]'], ["/bin/echo"], ["x"]),
        # a new Entrypoint alone drops the image's Cmd, as Docker's ENTRYPOINT does
        (["--entrypoint", '["/bin/echo", "only"]'], ["/bin/echo", "only"], None),
        (["--entrypoint", "", "--cmd", "[]"], None, None),
    ]
    for opts, entrypoint, cmd in cases:
        hoist("config", src, "--target", ref, *opts)
        c = config_of(ref)["config"]
        assert c.get("Entrypoint") == entrypoint, (opts, c)
        assert c.get("Cmd") == cmd, (opts, c)
        src = ref  # each edit starts from the previous one
    # a later change of the same field wins; the run sees the last one
    hoist("config", ref, "--target", ref, "--cmd", "echo first", "--cmd", '["/bin/echo", "last"]')
    assert hoist("run", "--network", "none", ref).stdout == "last\n"


@test
def env_and_labels_replace_and_remove():
    src = base()
    ref = f"oci:{LAYOUT}:env"
    hoist("config", src, "--target", ref, "--env", "A=1", "--env", "B=2", "--env", "C=3",
          "--label", "keep=1", "--label", "drop=2")
    hoist("config", ref, "--target", ref, "--env", "A=one", "--env-rm", "B", "--env-rm", "NONE",
          "--env", "D=x=y", "--label-rm", "drop", "--label", "keep=2")
    c = config_of(ref)["config"]
    assert c["Env"] == ["A=one", "C=3", "D=x=y"], c
    assert c["Labels"] == {"keep": "2"}
    r = hoist("run", "--network", "none", ref, "--", "sh", "-c", 'echo "$A $B $C $D"')
    assert r.stdout == "one  3 x=y\n", r.stdout


@test
def platform_user_and_workdir_fields():
    src = base()
    ref = f"oci:{LAYOUT}:plat"
    hoist("config", src, "--target", ref, "--os", "linux", "--arch", "aarch64", "--variant", "v8",
          "--user", "nobody", "--workdir", "/tmp")
    cfg = config_of(ref)
    assert (cfg["os"], cfg["architecture"], cfg["variant"]) == ("linux", "arm64", "v8")
    sk = json.loads(skopeo("inspect", "--override-arch", "arm64", ref).stdout)
    assert sk["Architecture"] == "arm64"
    hoist("config", ref, "--target", ref, "--arch", "amd64", "--variant", "", "--user", "",
          "--workdir", "", "--stop-signal", "15", "--stop-signal", "")
    cfg = config_of(ref)
    assert cfg["architecture"] == "amd64" and "variant" not in cfg
    for gone in ("User", "WorkingDir", "StopSignal"):
        assert gone not in cfg["config"], cfg["config"]


@test
def append_from_scratch_then_run():
    """The issue's case: an image from scratch has no command until one is set."""
    tree = os.path.join(tmpdir(), "tree")
    os.makedirs(os.path.join(tree, "bin"))
    run("cp", "/bin/busybox", os.path.join(tree, "bin", "busybox"))
    os.symlink("busybox", os.path.join(tree, "bin", "sh"))
    lay = os.path.join(tmpdir(), "lay")
    hoist("append", "scratch", "--target", f"oci:{lay}:base", "--layer", tree)
    r = hoist("run", "--network", "none", f"oci:{lay}:base", check=False)
    assert r.returncode != 0 and "no Entrypoint or Cmd" in r.stderr, r.stderr
    # hoist config on it
    hoist("config", f"oci:{lay}:base", "--target", f"oci:{lay}:app", "--cmd", "echo configured")
    assert hoist("run", "--network", "none", f"oci:{lay}:app").stdout == "configured\n"
    # or append with the command at once, with a history comment on the layer
    hoist("append", "scratch", "--target", f"oci:{lay}:one", "--layer", tree,
          "--entrypoint", '["/bin/sh", "-c"]', "--cmd", '["echo $X"]', "--env", "X=appended",
          "--history-comment", "busybox", "--annotation", "org.example=1")
    assert hoist("run", "--network", "none", f"oci:{lay}:one").stdout == "appended\n"
    cfg = config_of(f"oci:{lay}:one")
    assert cfg["history"] == [{"created": cfg["history"][0]["created"],
                               "created_by": "hoist append", "comment": "busybox"}]
    assert raw_of(f"oci:{lay}:one")["annotations"] == {"org.example": "1"}


@test
def registry_to_registry():
    reg = Registry(tmpdir()).start()
    other = Registry(tmpdir()).start()
    tls = "--tls-verify=false"
    hoist("push", base(), f"{reg.host}/cfg/a:1")
    layers = raw_of(f"docker://{reg.host}/cfg/a:1", tls)["layers"]
    # the same repository: nothing moves but the config and manifest
    out = json.loads(hoist("config", "--json", f"{reg.host}/cfg/a:1", "--target",
                           f"{reg.host}/cfg/a:2", "--cmd", "echo same-repo").stdout)
    assert out["skipped"] == len(layers) and out["copied"] == 0 and out["mounted"] == 0, out
    # another repository of the same registry: mounted
    out = json.loads(hoist("config", "--json", f"{reg.host}/cfg/a:2", "--target",
                           f"docker://{reg.host}/cfg/b:1", "--env", "WHERE=b",
                           "--annotation", "org.example.where=b").stdout)
    assert out["mounted"] == len(layers) and out["copied"] == 0, out
    cfg = config_of(f"docker://{reg.host}/cfg/b:1", tls)
    assert cfg["config"]["Cmd"] == ["/bin/sh", "-c", "echo same-repo"]
    assert "WHERE=b" in cfg["config"]["Env"]
    m = raw_of(f"docker://{reg.host}/cfg/b:1", tls)
    assert m["layers"] == layers and m["annotations"] == {"org.example.where": "b"}
    assert m["config"]["digest"] == out["config"]
    # another registry: streamed
    out = json.loads(hoist("config", "--json", f"{reg.host}/cfg/b:1", "--target",
                           f"{other.host}/cfg/c:1", "--label", "moved=yes").stdout)
    assert out["copied"] == len(layers), out
    assert config_of(f"docker://{other.host}/cfg/c:1", tls)["config"]["Labels"]["moved"] == "yes"
    assert raw_of(f"docker://{other.host}/cfg/c:1", tls)["layers"] == layers
    # a Docker schema 2 image stays one, and refuses annotations before writing anything
    skopeo("copy", "--dest-tls-verify=false", "--format", "v2s2", base(),
           f"docker://{reg.host}/cfg/d:1")
    hoist("config", f"{reg.host}/cfg/d:1", "--target", f"{reg.host}/cfg/d:2", "--user", "1")
    m = raw_of(f"docker://{reg.host}/cfg/d:2", tls)
    assert m["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json", m
    assert m["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json", m
    assert config_of(f"docker://{reg.host}/cfg/d:2", tls)["config"]["User"] == "1"
    r = hoist("config", f"{reg.host}/cfg/d:1", "--target", f"{reg.host}/cfg/d:3",
              "--annotation", "a=b", check=False)
    assert r.returncode == 1 and "Docker schema 2 manifest has no annotations" in r.stderr, r.stderr
    assert skopeo("inspect", tls, f"docker://{reg.host}/cfg/d:3", check=False).returncode != 0
    # a registry image into a layout, and hoist run of the registry image
    lay = os.path.join(tmpdir(), "from-reg")
    hoist("config", f"{other.host}/cfg/c:1", "--target", f"oci:{lay}:x", "--cmd", "echo pulled")
    assert hoist("run", "--network", "none", f"oci:{lay}:x").stdout == "pulled\n"
    assert hoist("run", "--network", "none", f"{reg.host}/cfg/a:2").stdout == "same-repo\n"
    other.stop()
    reg.stop()


@test
def bad_values_are_usage_errors_naming_the_option():
    src = base()
    dst = f"oci:{LAYOUT}:never"
    cases = [
        (["--env", "NOEQUALS"], "--env: \"NOEQUALS\" is not NAME=VALUE"),
        (["--env", "=1"], "--env:"),
        (["--env-rm", "A=1"], "--env-rm:"),
        (["--label", "k"], "--label: \"k\" is not KEY=VALUE"),
        (["--annotation", "k"], "--annotation:"),
        (["--expose", "http"], "--expose: \"http\" is not PORT[/PROTO]"),
        (["--expose", "70000"], "--expose:"),
        (["--expose", "80/icmp"], "--expose: \"80/icmp\": the protocol must be tcp, udp or sctp"),
        (["--cmd", '["unterminated"'], "--cmd: bad JSON"),
        (["--entrypoint", "[1, 2]"], "--entrypoint: want a JSON array of strings"),
        (["--workdir", "relative"], "--workdir: \"relative\" is not an absolute path"),
        (["--volume", "data"], "--volume:"),
        (["--stop-signal", "SIGNOPE"], "--stop-signal: \"SIGNOPE\" is not a signal"),
        (["--arch", "x/y"], "--arch:"),
        (["--os", ""], "--os:"),
        ([], None),  # no --target: below
    ]
    for opts, needle in cases:
        if needle is None:
            r = hoist("config", src, check=False)
            needle = "needs --target DEST"
        else:
            r = hoist("config", src, "--target", dst, *opts, check=False)
        assert r.returncode == 2, (opts, r.returncode, r.stderr)
        assert needle in r.stderr, (opts, r.stderr)
        # append takes the same options, with the same errors
        if opts:
            r = hoist("append", "scratch", "--target", dst, "--layer", WORK, *opts, check=False)
            assert r.returncode == 2 and needle in r.stderr, (opts, r.stderr)
    r = hoist("config", src, "--target", f"oci:{LAYOUT}", "--cmd", "x", check=False)
    assert r.returncode == 2 and "needs a tag" in r.stderr, r.stderr
    tags = run("umoci", "ls", "--layout", LAYOUT).stdout.split()
    assert "never" not in tags, tags
    # --help documents every option
    h = hoist("config", "--help").stdout
    for opt in ("--entrypoint", "--cmd", "--env NAME=VALUE", "--env-rm", "--label KEY=VALUE",
                "--label-rm", "--annotation", "--user", "--workdir", "--expose PORT[/PROTO]",
                "--volume", "--stop-signal", "--os", "--arch", "--variant", "--author",
                "--history-comment", "--target", "--platform"):
        assert opt in h, opt
    assert "--cmd CMD" in hoist("append", "--help").stdout


if __name__ == "__main__":
    main()
