"""registries.conf, the containers way, and short names, the OpenShell way:
every verb that takes an image reference resolves a short name by the
[aliases], hoist's community prefix ([hoist] short-name-prefix) and the
unqualified-search-registries; [[registry]] rewrites, blocks, mirrors and
makes hosts insecure. Registries are the CNCF registry on loopback; HOME is
a temporary directory and CONTAINERS_REGISTRIES_CONF (or --registries-conf)
names the file, so the user's files do not count."""
import json
import os

from hoisttest import (HOIST, SOURCE_ROOT, Registry, free_port, hoist, main, run, test, tmpdir)

WORK = tmpdir("hoist-regconf-")
HOME = os.path.join(WORK, "home")
os.makedirs(HOME)
LAYOUT = os.path.join(WORK, "layout")
_reg = None


def registry():
    """The registry holding HOST/sb/base:latest, a busybox image."""
    global _reg
    if _reg is None:
        run("bash", os.path.join(SOURCE_ROOT, "tests/fixtures/busybox-image.sh"), HOIST, LAYOUT,
            "base")
        _reg = Registry(WORK).start()
        hoist("push", "-q", f"oci:{LAYOUT}:base", f"{_reg.host}/sb/base:latest", env=env(None))
    return _reg


def env(conf_text):
    """An environment whose registries.conf holds conf_text (None: no file
    named), with an image store of its own."""
    e = {"HOME": HOME, "HOIST_IMAGES": tmpdir("hoist-regconf-images-"), "HOIST_LOG": "info"}
    if conf_text is not None:
        path = os.path.join(tmpdir("hoist-regconf-conf-"), "registries.conf")
        with open(path, "w") as f:
            f.write(conf_text)
        e["CONTAINERS_REGISTRIES_CONF"] = path
    return e


def stored(e, ref):
    """The tags of the image store's layout for ref's repository."""
    host, path = ref.split("/", 1)
    layout = os.path.join(e["HOIST_IMAGES"], host.replace(":", "_"), path)
    with open(os.path.join(layout, "index.json")) as f:
        return [m["annotations"]["org.opencontainers.image.ref.name"]
                for m in json.load(f)["manifests"]]


def digest():
    with open(os.path.join(LAYOUT, "index.json")) as f:
        return json.load(f)["manifests"][0]["digest"]


@test
def test_pull_by_alias():
    reg = registry()
    e = env(f'[aliases]\n"sandbox" = "{reg.host}/sb/base"\n')
    p = hoist("pull", "sandbox", env=e)
    assert f"{reg.host}/sb/base:latest" in p.stdout, p.stdout
    assert "alias \"sandbox\" at " in p.stderr, p.stderr
    assert stored(e, f"{reg.host}/sb/base") == ["latest"]
    # the tag written is kept; inspect resolves the same way
    p = hoist("inspect", "sandbox:latest", env=e)
    assert digest() in p.stdout, p.stdout


@test
def test_pull_and_run_by_community_prefix():
    reg = registry()
    e = env(f'[hoist]\nshort-name-prefix = "{reg.host}/sb"\n')
    p = hoist("pull", "base", env=e)
    assert f"{reg.host}/sb/base:latest" in p.stdout, p.stdout
    assert stored(e, f"{reg.host}/sb/base") == ["latest"]
    r = hoist("run", "base", "--", "echo", "hello from base", env=env(
        f'[hoist]\nshort-name-prefix = "{reg.host}/sb"\n'), check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello from base\n", r.stdout


@test
def test_prefix_in_a_dropin_with_registries_conf_flag():
    """The community prefix from ~/.config/containers/registries.conf.d, the
    main file from --registries-conf."""
    reg = registry()
    e = env(None)
    home = tmpdir("hoist-regconf-home-")
    dropins = os.path.join(home, ".config", "containers", "registries.conf.d")
    os.makedirs(dropins)
    with open(os.path.join(dropins, "50-openshell.conf"), "w") as f:
        f.write(f'[hoist]\nshort-name-prefix = "{reg.host}/nowhere"\n')
    with open(os.path.join(dropins, "60-override.conf"), "w") as f:
        f.write(f'[hoist]\nshort-name-prefix = "{reg.host}/sb"\n')
    main_conf = os.path.join(home, "main.conf")
    with open(main_conf, "w") as f:
        f.write("# nothing here\n")
    e["HOME"] = home
    p = hoist("pull", "--registries-conf", main_conf, "base", env=e)
    assert f"{reg.host}/sb/base:latest" in p.stdout, p.stdout
    assert "60-override.conf:2" in p.stderr, p.stderr


@test
def test_pull_by_single_search_registry():
    reg = registry()
    e = env(f'unqualified-search-registries = ["{reg.host}"]\n')
    p = hoist("pull", "sb/base", env=e)
    assert f"{reg.host}/sb/base:latest" in p.stdout, p.stdout
    assert "unqualified-search-registries at " in p.stderr, p.stderr


@test
def test_ambiguous_short_name_lists_candidates():
    reg = registry()
    dead = f"127.0.0.1:{free_port()}"
    e = env(f'unqualified-search-registries = ["{reg.host}", "{dead}"]\n'
            'short-name-mode = "enforcing"\n')
    for verb in (["pull"], ["inspect"], ["run"]):
        p = hoist(*verb, "sb/base", *(["--", "true"] if verb == ["run"] else []), env=e,
                  check=False)
        assert p.returncode != 0
        assert (f'short name "sb/base" is ambiguous: it could be {reg.host}/sb/base:latest, '
                f'{dead}/sb/base:latest') in p.stderr, p.stderr
    assert not os.path.exists(os.path.join(e["HOIST_IMAGES"], reg.host.replace(":", "_")))


@test
def test_blocked_registry_refused():
    reg = registry()
    e = env(f'[[registry]]\nprefix = "{reg.host}/sb"\nblocked = true\n')
    p = hoist("pull", f"{reg.host}/sb/base", env=e, check=False)
    assert p.returncode != 0
    assert f'blocked by the [[registry]] of prefix "{reg.host}/sb" at ' in p.stderr, p.stderr
    p = hoist("push", f"oci:{LAYOUT}:base", f"{reg.host}/sb/other:1", env=e, check=False)
    assert p.returncode != 0 and "blocked by the [[registry]]" in p.stderr, p.stderr
    # another prefix of the same host is not blocked
    hoist("push", "-q", f"oci:{LAYOUT}:base", f"{reg.host}/open/base:1", env=e)


@test
def test_location_rewrites_the_prefix():
    reg = registry()
    e = env(f'[[registry]]\nprefix = "{reg.host}/team"\nlocation = "{reg.host}/sb"\n')
    p = hoist("pull", f"{reg.host}/team/base", env=e)
    # stored under the name written, fetched from the location
    assert stored(e, f"{reg.host}/team/base") == ["latest"], p.stdout


@test
def test_mirror_first():
    """The image only on a second registry, the mirror; the primary's host
    listens to nobody. Pulls come from the mirror, pushes go to the primary
    only."""
    reg = registry()
    mirror = Registry(WORK).start()
    hoist("copy", "-q", f"oci:{LAYOUT}:base", f"{mirror.host}/mirrored/sb/base:latest",
          env=env(None))
    dead = f"127.0.0.1:{free_port()}"
    conf = (f'[[registry]]\nlocation = "{dead}"\n'
            f'[[registry.mirror]]\nlocation = "{reg.host}/empty"\n'
            f'[[registry.mirror]]\nlocation = "{mirror.host}/mirrored"\n')
    e = env(conf)
    p = hoist("pull", f"{dead}/sb/base", env=e)
    assert f"pulling from the mirror {mirror.host}/mirrored/sb/base:latest" in p.stderr, p.stderr
    assert f"mirror {reg.host}/empty/sb/base skipped" in p.stderr, p.stderr
    assert stored(e, f"{dead}/sb/base") == ["latest"]
    # run pulls the same way
    r = hoist("run", f"{dead}/sb/base", "--", "echo", "mirrored", env=env(conf), check=False)
    assert r.returncode == 0 and r.stdout == "mirrored\n", r.stderr
    p = hoist("push", f"oci:{LAYOUT}:base", f"{dead}/sb/pushed:1", env=e, check=False)
    assert p.returncode != 0 and dead in p.stderr, p.stderr
    mirror.stop()


@test
def test_insecure_from_the_file():
    """A TLS registry whose CA nobody trusts: refused, until registries.conf
    says insecure = true."""
    reg = Registry(WORK, tls=True).start()
    hoist("push", "-q", "--tls-verify=false", f"oci:{LAYOUT}:base", f"{reg.host}/sb/base:1",
          env=env(None))
    p = hoist("pull", f"{reg.host}/sb/base:1", env=env(None), check=False)
    assert p.returncode != 0 and "not trusted" in p.stderr, p.stderr
    e = env(f'[[registry]]\nlocation = "{reg.host}"\ninsecure = true\n')
    hoist("pull", f"{reg.host}/sb/base:1", env=e)
    assert stored(e, f"{reg.host}/sb/base") == ["1"]
    reg.stop()


@test
def test_bad_file_named_with_line():
    e = env('[[registry]]\nlocation = "127.0.0.1:1"\nblocked = "yes"\n')
    p = hoist("pull", "127.0.0.1:1/x", env=e, check=False)
    assert p.returncode != 0
    assert "registries.conf:3: blocked must be a boolean, not a string" in p.stderr, p.stderr
    e = env(None)
    e["CONTAINERS_REGISTRIES_CONF"] = os.path.join(WORK, "missing.conf")
    p = hoist("pull", "127.0.0.1:1/x", env=e, check=False)
    assert p.returncode != 0 and "missing.conf" in p.stderr, p.stderr


if __name__ == "__main__":
    main()
