"""hoist deploy on real git repositories made here with the git CLI.

The fingerprints hoist records are checked against ones computed
independently from `git ls-tree -r HEAD`, `git diff --name-only`,
`git ls-files --others --exclude-standard` and hashlib.
"""
import fnmatch
import hashlib
import json
import os
import time

from hoisttest import HOIST, main, run, test, tmpdir

DEPLOY_FILE = """\
# OpenShell's components, with steps that log what ran
[component.gateway]
paths = ["Cargo.toml", "proto/*", "server/*"]
steps = ['echo "gateway $HOIST_FINGERPRINT" >> "$LOG"', '[ -z "$FAIL" ]']
triggers = ["helm"]

[component.supervisor]
paths = ["Cargo.toml", "proto/*", "sandbox/*"]
steps = ['echo "supervisor $HOIST_FINGERPRINT" >> "$LOG"']
aliases = ["sandbox"]

[component.helm]
paths = ["chart/*"]
steps = ['echo "helm $HOIST_FINGERPRINT" >> "$LOG"']
aliases = ["chart"]

[scope.cluster_name]
command = "echo ${CLUSTER:-dev}"
invalidates = ["gateway", "supervisor", "helm"]

[scope.container_id]
command = "echo ${CONTAINER:-c1}"
invalidates = ["gateway", "helm"]
"""

PATTERNS = {
    "gateway": ["Cargo.toml", "proto/*", "server/*"],
    "supervisor": ["Cargo.toml", "proto/*", "sandbox/*"],
    "helm": ["chart/*"],
}

NOOP = "No new local changes since last deploy."
STATE = ".cache/hoist-deploy.state"

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@localhost",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@localhost",
    "GIT_CONFIG_NOSYSTEM": "1",
}


class Repo:
    def __init__(self):
        self.dir = tmpdir("hoist-deploy-")
        self.log = os.path.join(tmpdir("hoist-deploy-log-"), "ran.log")
        files = {
            "Cargo.toml": "[workspace]\n",
            "proto/api.proto": 'syntax = "proto3";\n',
            "server/src/main.rs": "fn main() {}\n",
            "server/Dockerfile": "FROM scratch\n",
            "sandbox/src/main.rs": "fn main() { sandbox() }\n",
            "chart/values.yaml": "replicas: 1\n",
            "chart/templates/sts.yaml": "kind: StatefulSet\n",
            "README.md": "not part of any component\n",
            ".gitignore": "*.log\n.cache/\n",
            "hoist-deploy.toml": DEPLOY_FILE,
        }
        for path, text in files.items():
            self.write(path, text)
        self.git("init", "-q")
        self.git("add", "-A")
        self.git("commit", "-qm", "initial")

    def git(self, *args):
        return run("git", *args, cwd=self.dir, env=GIT_ENV).stdout

    def path(self, rel):
        return os.path.join(self.dir, rel)

    def write(self, rel, text):
        os.makedirs(os.path.dirname(self.path(rel)), exist_ok=True)
        with open(self.path(rel), "w") as f:
            f.write(text)

    def deploy(self, *args, env=None, check=True):
        e = {"LOG": self.log}
        e.update(env or {})
        p = run(HOIST, "deploy", *args, cwd=self.dir, env=e, check=False)
        if check and p.returncode != 0:
            raise AssertionError(f"hoist deploy {args} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def ran(self):
        """Components whose steps ran since the last call, in order."""
        try:
            with open(self.log) as f:
                lines = f.read().split("\n")
        except FileNotFoundError:
            return []
        os.unlink(self.log)
        return [line.split()[0] for line in lines if line]

    def state(self, path=STATE):
        try:
            with open(self.path(path)) as f:
                return dict(line.split("=", 1) for line in f.read().splitlines())
        except FileNotFoundError:
            return None

    def expected_fingerprint(self, component):
        """The fingerprint computed with the git CLI and hashlib."""
        pats = PATTERNS[component]

        def matches(path):
            for p in pats:
                if any(c in p for c in "*?["):
                    if fnmatch.fnmatchcase(path, p):
                        return True
                elif path == p or path.startswith(p + "/"):
                    return True
            return False

        data = b""
        for line in self.git("ls-tree", "-r", "HEAD").splitlines(keepends=True):
            if matches(line.split("\t", 1)[1].rstrip("\n")):
                data += line.encode()
        changed = set(self.git("diff", "--name-only", "--no-renames").split())
        changed |= set(self.git("diff", "--name-only", "--no-renames", "--cached").split())
        changed |= set(self.git("ls-files", "--others", "--exclude-standard").split())
        for path in sorted(changed):
            if not matches(path):
                continue
            if os.path.islink(self.path(path)):  # a symlink: its target string
                h = hashlib.sha256(os.readlink(self.path(path)).encode()).hexdigest()
            elif os.path.isfile(self.path(path)):
                with open(self.path(path), "rb") as f:
                    h = hashlib.sha256(f.read()).hexdigest()
            else:
                h = "__MISSING__"
            data += f"{path}:{h}\n".encode()
        return hashlib.sha256(data).hexdigest() if data else ""


def deployed_repo():
    """A repository deployed once (everything ran, state written)."""
    r = Repo()
    p = r.deploy()
    assert r.ran() == ["gateway", "supervisor", "helm"], p.stdout
    assert r.state() is not None
    return r


@test
def first_deploy_runs_everything_and_records_git_fingerprints():
    r = Repo()
    p = r.deploy()
    assert "no fingerprint recorded yet" in p.stdout, p.stdout
    assert r.ran() == ["gateway", "supervisor", "helm"]
    st = r.state()
    assert list(st) == ["cluster_name", "container_id", "gateway", "supervisor", "helm"], st
    assert st["cluster_name"] == "dev" and st["container_id"] == "c1"
    for c in PATTERNS:
        assert st[c] == r.expected_fingerprint(c), (c, st[c])
        assert len(st[c]) == 64
    # each step's time is reported
    assert "==> gateway: step 1/2 done in " in p.stdout, p.stdout
    assert "==> helm: step 1/1 done in " in p.stdout


@test
def no_change_is_a_noop():
    r = deployed_repo()
    before = open(r.path(STATE)).read()
    p = r.deploy()
    assert p.stdout.strip() == "No new local changes since last deploy.", p.stdout
    assert r.ran() == []
    assert open(r.path(STATE)).read() == before


@test
def edit_tracked_file_runs_only_its_component():
    r = deployed_repo()
    r.write("sandbox/src/main.rs", "fn main() { sandbox(); changed() }\n")
    p = r.deploy()
    assert r.ran() == ["supervisor"], p.stdout
    assert "sandbox/src/main.rs" in p.stdout
    assert r.state()["supervisor"] == r.expected_fingerprint("supervisor")
    assert r.deploy().stdout.strip() == NOOP


@test
def staged_file_counts():
    r = deployed_repo()
    r.write("chart/values.yaml", "replicas: 3\n")
    r.git("add", "chart/values.yaml")
    r.deploy()
    assert r.ran() == ["helm"]
    assert r.state()["helm"] == r.expected_fingerprint("helm")
    # staged, then edited again in the work tree: changes again
    r.write("chart/values.yaml", "replicas: 5\n")
    r.deploy()
    assert r.ran() == ["helm"]


@test
def untracked_file_counts_ignored_does_not():
    r = deployed_repo()
    r.write("server/build.log", "ignored by *.log\n")
    r.write("docs/new.md", "outside every component\n")
    assert r.deploy().stdout.strip() == NOOP
    assert r.ran() == []
    r.write("server/src/new.rs", "pub fn x() {}\n")
    p = r.deploy()
    assert r.ran() == ["gateway", "helm"], p.stdout  # helm: triggered
    assert "server/src/new.rs" in p.stdout
    assert r.state()["gateway"] == r.expected_fingerprint("gateway")


@test
def deleted_file_counts_as_missing():
    r = deployed_repo()
    os.unlink(r.path("server/Dockerfile"))
    p = r.deploy("--dry-run")
    assert "server/Dockerfile" in p.stdout, p.stdout
    r.deploy()
    assert r.ran() == ["gateway", "helm"]
    # the fingerprint includes the __MISSING__ line, as the oracle computes it
    assert r.state()["gateway"] == r.expected_fingerprint("gateway")
    assert r.deploy().stdout.strip() == NOOP


@test
def commit_moves_head_with_clean_tree():
    r = deployed_repo()
    r.write("sandbox/src/lib.rs", "pub fn lib() {}\n")
    r.git("add", "-A")
    r.git("commit", "-qm", "sandbox lib")
    assert r.git("status", "--porcelain") == ""
    p = r.deploy()
    assert r.ran() == ["supervisor"], p.stdout
    assert "committed content differs" in p.stdout, p.stdout
    assert r.deploy().stdout.strip() == NOOP


@test
def shared_path_runs_both():
    r = deployed_repo()
    r.write("proto/api.proto", 'syntax = "proto3"; // v2\n')
    r.deploy()
    assert r.ran() == ["gateway", "supervisor", "helm"]
    r.write("Cargo.toml", "[workspace]\nmembers = []\n")
    r.deploy()
    assert r.ran() == ["gateway", "supervisor", "helm"]


@test
def triggers_run_the_triggered_component():
    r = deployed_repo()
    r.write("server/src/main.rs", "fn main() { serve() }\n")
    p = r.deploy()
    assert r.ran() == ["gateway", "helm"]
    assert "triggered by gateway" in p.stdout, p.stdout
    # the chart alone does not trigger the gateway
    r.write("chart/values.yaml", "replicas: 2\n")
    r.deploy()
    assert r.ran() == ["helm"]


@test
def scope_change_invalidates_exactly_its_components():
    r = deployed_repo()
    p = r.deploy(env={"CONTAINER": "c2"})
    assert r.ran() == ["gateway", "helm"], p.stdout
    assert "scope key container_id changed" in p.stdout
    assert r.state()["container_id"] == "c2"
    assert r.deploy(env={"CONTAINER": "c2"}).stdout.strip() == NOOP
    r.deploy(env={"CONTAINER": "c2", "CLUSTER": "other"})
    assert r.ran() == ["gateway", "supervisor", "helm"]
    assert r.state()["cluster_name"] == "other"


@test
def explicit_target_ignores_fingerprints_and_keeps_state():
    r = deployed_repo()
    before = open(r.path(STATE)).read()
    p = r.deploy("sandbox")  # an alias of supervisor
    assert r.ran() == ["supervisor"], p.stdout
    assert "state file not written" in p.stdout
    r.write("chart/values.yaml", "replicas: 9\n")
    r.deploy("gateway")
    assert r.ran() == ["gateway", "helm"]  # the gateway triggers helm
    assert open(r.path(STATE)).read() == before
    # the chart change is still pending
    r.deploy()
    assert r.ran() == ["helm"]


@test
def unknown_target_lists_valid_ones():
    r = deployed_repo()
    p = r.deploy("gateway", "frontend", check=False)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "unknown target 'frontend'" in p.stderr, p.stderr
    assert "gateway, supervisor (or sandbox), helm (or chart)" in p.stderr, p.stderr
    assert r.ran() == []


@test
def failed_step_keeps_old_state():
    r = deployed_repo()
    before = open(r.path(STATE)).read()
    r.write("server/src/main.rs", "fn main() { broken() }\n")
    r.write("sandbox/src/main.rs", "fn main() { also() }\n")
    p = r.deploy(env={"FAIL": "1"}, check=False)
    assert p.returncode == 1, p
    assert "gateway: step 2 ([ -z \"$FAIL\" ]) exited with status 1" in p.stderr, p.stderr
    assert "left unchanged" in p.stderr
    assert r.ran() == ["gateway"]  # nothing after the failed step
    assert open(r.path(STATE)).read() == before
    r.deploy()
    assert r.ran() == ["gateway", "supervisor", "helm"]


@test
def all_runs_everything_and_writes_state():
    r = deployed_repo()
    os.unlink(r.path(STATE))
    r.write("chart/values.yaml", "replicas: 4\n")
    p = r.deploy("--all")
    assert r.ran() == ["gateway", "supervisor", "helm"], p.stdout
    st = r.state()
    assert st["helm"] == r.expected_fingerprint("helm")
    assert r.deploy().stdout.strip() == NOOP


@test
def dry_run_prints_plan_and_runs_nothing():
    r = deployed_repo()
    before = open(r.path(STATE)).read()
    r.write("sandbox/src/extra.rs", "pub fn extra() {}\n")
    p = r.deploy("--dry-run")
    assert r.ran() == []
    assert open(r.path(STATE)).read() == before
    lines = p.stdout.splitlines()
    assert any(line.split()[:2] == ["supervisor", "run"] for line in lines), p.stdout
    assert any(line.split()[:2] == ["gateway", "skip"] for line in lines), p.stdout
    assert "sandbox/src/extra.rs" in p.stdout
    assert "step 1: echo \"supervisor $HOIST_FINGERPRINT\"" in p.stdout, p.stdout
    plan = json.loads(r.deploy("--dry-run", "--json").stdout)
    assert plan["run"] == ["supervisor"] and plan["writeState"] is True, plan
    sup = plan["components"][1]
    assert sup["name"] == "supervisor" and sup["reason"] == "changed"
    assert sup["changed"] == ["sandbox/src/extra.rs"]
    assert sup["fingerprint"] == r.expected_fingerprint("supervisor")
    assert sup["previous"] == r.state()["supervisor"]
    assert plan["components"][0]["reason"] == "unchanged"
    assert plan["scopes"] == {"cluster_name": "dev", "container_id": "c1"}
    assert r.ran() == [] and open(r.path(STATE)).read() == before
    p = r.deploy("--json", check=False)
    assert p.returncode == 2 and "--json needs --dry-run" in p.stderr


@test
def state_and_deploy_file_options():
    r = deployed_repo()
    other = os.path.join(tmpdir(), "elsewhere", "state")
    r.deploy("--state", other)
    assert r.ran() == ["gateway", "supervisor", "helm"]  # a new state file: everything
    assert r.deploy("--state", other).stdout.strip() == NOOP
    alt = os.path.join(tmpdir(), "deploy.toml")
    with open(alt, "w") as f:
        f.write('[component.docs]\npaths = ["README.md"]\n'
                'steps = [\'echo docs $("$HOIST" --version) >> "$LOG"\']\n')
    r.deploy("--file", alt, "--state", other + ".docs")
    with open(r.log) as f:
        assert f.read().startswith("docs hoist "), "a step calls hoist through $HOIST"
    assert r.ran() == ["docs"]
    p = r.deploy("--file", os.path.join(r.dir, "missing.toml"), check=False)
    assert p.returncode == 1 and "missing.toml" in p.stderr, p.stderr


@test
def odd_changes_fingerprint_as_git_sees_them():
    r = deployed_repo()
    r.write(".gitignore", "*.log\n.cache/\ntarget/\n")
    r.write("server/target/debug/out.rs", "ignored directory\n")
    r.write("server/newmod/deep/er/mod.rs", "untracked directory\n")
    r.write("sandbox/build.log", "ignored file\n")
    os.chmod(r.path("sandbox/src/main.rs"), 0o755)  # mode change only
    os.unlink(r.path("server/Dockerfile"))
    os.symlink("src/main.rs", r.path("server/Dockerfile"))  # file -> symlink
    os.utime(r.path("chart/values.yaml"), (1, 1))  # stat differs, content same
    r.git("rm", "-q", "--cached", "proto/api.proto")  # staged delete, untracked file
    os.unlink(r.path("chart/templates/sts.yaml"))
    os.makedirs(r.path("chart/templates/sts.yaml"))  # file -> directory
    r.write("chart/templates/sts.yaml/inner.yaml", "now a directory\n")
    p = r.deploy()
    assert r.ran() == ["gateway", "supervisor", "helm"], p.stdout
    st = r.state()
    for c in PATTERNS:
        assert st[c] == r.expected_fingerprint(c), (c, p.stdout)
    for path in ["server/newmod/deep/er/mod.rs", "sandbox/src/main.rs", "server/Dockerfile",
                 "proto/api.proto", "chart/templates/sts.yaml",
                 "chart/templates/sts.yaml/inner.yaml"]:
        assert path in p.stdout, (path, p.stdout)
    for path in ["server/target", "sandbox/build.log", "chart/values.yaml"]:
        assert path not in p.stdout, (path, p.stdout)
    assert r.deploy().stdout.strip() == NOOP


@test
def openshell_example_rebuilds_what_the_reference_does():
    """examples/openshell/hoist-deploy.toml on a tree shaped like OpenShell's."""
    from hoisttest import SOURCE_ROOT

    r = Repo()
    with open(os.path.join(SOURCE_ROOT, "examples", "openshell", "hoist-deploy.toml")) as f:
        r.write("hoist-deploy.toml", f.read())
    for path in ["Cargo.lock", "deploy/docker/cross-build.sh", "deploy/docker/Dockerfile.gateway",
                 "crates/openshell-server/src/lib.rs", "crates/openshell-sandbox/src/lib.rs",
                 "crates/openshell-core/src/lib.rs", "deploy/helm/openshell/Chart.yaml"]:
        r.write(path, path + "\n")
    r.git("add", "-A")
    r.git("commit", "-qm", "openshell layout")
    state = ".cache/cluster-deploy-fast.state"

    def plan(edit):
        r.write(edit, "edited " + edit + "\n")
        out = r.deploy().stdout
        runs = [line.split()[0] for line in out.splitlines() if line.split()[1:2] == ["run"]]
        assert r.deploy().stdout.strip() == NOOP
        return runs

    p = r.deploy()
    assert "cluster-deploy-fast.state" in p.stdout and r.state(state) is not None, p.stdout
    assert "push gateway image to the local registry of openshell" in p.stdout, p.stdout
    assert plan("crates/openshell-server/src/lib.rs") == ["gateway", "helm"]
    assert plan("crates/openshell-sandbox/src/lib.rs") == ["supervisor"]
    assert plan("Cargo.lock") == ["gateway", "supervisor", "helm"]
    assert plan("crates/openshell-core/src/lib.rs") == ["gateway", "supervisor", "helm"]
    assert plan("deploy/helm/openshell/Chart.yaml") == ["helm"]
    assert plan("deploy/docker/Dockerfile.gateway") == ["gateway", "helm"]
    assert plan("README.md") == []
    p = r.deploy(env={"CLUSTER_CONTAINER_ID": "c2"})
    assert "scope key container_id changed" in p.stdout
    assert [ln.split()[0] for ln in p.stdout.splitlines() if ln.split()[1:2] == ["run"]] == [
        "gateway", "helm"]
    p = r.deploy("sandbox")
    assert "docker cp it into container none" in p.stdout, p.stdout


@test
def usage_and_help():
    r = Repo()
    p = r.deploy("--help")
    assert p.stdout.startswith("Usage: hoist deploy"), p.stdout
    p = r.deploy("--all", "gateway", check=False)
    assert p.returncode == 2 and "exclude each other" in p.stderr
    p = run(HOIST, "deploy", cwd=tmpdir(), check=False)
    assert p.returncode == 1 and "git repository" in p.stderr, p.stderr


# ------------------------------------------------------------ the stat cache

CACHE_FILE = ".git/hoist-deploy.cache"
DEBUG = {"HOIST_LOG": "debug"}


def cache_in_use(r):
    """Waits out the timestamp tick, so that nothing in the tree is newer
    than the stat cache can trust, then runs the no-op check twice: the first
    writes the cache (unless the last deploy did), the second must answer
    from it."""
    time.sleep(0.1)
    p = r.deploy("--dry-run", env=DEBUG)
    assert "stat cache written" in p.stderr or "stat cache hit" in p.stderr, p.stderr
    p = r.deploy("--dry-run", env=DEBUG)
    assert "stat cache hit" in p.stderr, p.stderr
    assert p.stdout.strip() == NOOP, p.stdout


def plan_after_change(r):
    """The dry-run plan with the stat cache in place, checked against the
    plan computed with no cache at all and against the oracle's
    fingerprints: returns (components to run, stderr of the cached run)."""
    p = r.deploy("--dry-run", "--json", env=DEBUG)
    os.unlink(r.path(CACHE_FILE))
    full = r.deploy("--dry-run", "--json")
    cached, fresh = json.loads(p.stdout), json.loads(full.stdout)
    assert cached == fresh, (cached, fresh)
    for c in cached["components"]:
        assert c["fingerprint"] == r.expected_fingerprint(c["name"]), c
    return cached["run"], p.stderr


def same_size_rewrite(r, rel, text):
    """Rewrites a file with content of the same size and puts its mtime
    back: only the ctime tells."""
    st = os.stat(r.path(rel))
    with open(r.path(rel)) as f:
        assert len(f.read()) == len(text)
    r.write(rel, text)
    os.utime(r.path(rel), ns=(st.st_atime_ns, st.st_mtime_ns))


@test
def stat_cache_answers_a_noop_and_sees_every_kind_of_change():
    changes = [
        ("same-size edit, mtime restored",
         lambda r: same_size_rewrite(r, "server/src/main.rs", "fn main() {}\n".upper()),
         {"gateway", "helm"}),
        ("untracked file in a cached directory",
         lambda r: r.write("sandbox/src/new.rs", "pub fn n() {}\n"), {"supervisor"}),
        ("untracked file in a new directory",
         lambda r: r.write("chart/extra/new.yaml", "x: 1\n"), {"helm"}),
        ("deleted file", lambda r: os.unlink(r.path("server/Dockerfile")), {"gateway", "helm"}),
        ("file replaced by a symlink",
         lambda r: (os.unlink(r.path("proto/api.proto")),
                    os.symlink("../Cargo.toml", r.path("proto/api.proto"))),
         {"gateway", "supervisor", "helm"}),
        ("mode change only", lambda r: os.chmod(r.path("sandbox/src/main.rs"), 0o755),
         {"supervisor"}),
        ("staged change", lambda r: (r.write("chart/values.yaml", "replicas: 2\n"),
                                     r.git("add", "chart/values.yaml")), {"helm"}),
        ("commit with a clean tree",
         lambda r: (r.write("sandbox/src/lib.rs", "pub fn l() {}\n"), r.git("add", "-A"),
                    r.git("commit", "-qm", "lib")), {"supervisor"}),
    ]
    for what, change, expect in changes:
        r = deployed_repo()
        cache_in_use(r)
        change(r)
        run_, stderr = plan_after_change(r)
        assert "stat cache hit" not in stderr, (what, stderr)
        assert set(run_) == expect, (what, run_)


@test
def stat_cache_follows_the_ignore_rules():
    # an ignored file becomes visible when a .gitignore outside the
    # patterns is edited in place (its directory's mtime does not move)
    r = deployed_repo()
    r.write("server/build.log", "ignored by *.log\n")
    cache_in_use(r)
    with open(r.path(".gitignore"), "r+") as f:
        f.write("#.log\n")  # same size: "*.log" commented out
    run_, stderr = plan_after_change(r)
    assert set(run_) == {"gateway", "helm"}, (run_, stderr)
    # and when .git/info/exclude stops ignoring it
    r = deployed_repo()
    r.write("sandbox/out.tmp", "ignored by info/exclude\n")
    r.write(".git/info/exclude", "*.tmp\n")
    cache_in_use(r)
    r.write(".git/info/exclude", "\n")
    run_, _ = plan_after_change(r)
    assert run_ == ["supervisor"], run_
    # an ignored directory may change freely: still a hit
    r = deployed_repo()
    r.write(".gitignore", "*.log\n.cache/\ntarget/\n")
    r.git("commit", "-qam", "ignore target")
    r.deploy()
    r.write("server/target/a.o", "1\n")
    cache_in_use(r)
    r.write("server/target/b.o", "2\n")
    p = r.deploy("--dry-run", env=DEBUG)
    assert "stat cache hit" in p.stderr and p.stdout.strip() == NOOP, (p.stdout, p.stderr)



@test
def stat_cache_covers_untracked_directories():
    def with_untracked_dir():
        r = deployed_repo()
        r.write("sandbox/newmod/a.rs", "pub fn a() {}\n")
        r.write("sandbox/newmod/deep/b.rs", "pub fn b() {}\n")
        r.write("sandbox/newmod/.gitignore", "#.rs\n")
        r.deploy()
        assert r.ran() == ["supervisor"]
        cache_in_use(r)  # a hit, untracked directory and all
        return r

    changes = [
        ("file added deep inside", lambda r: r.write("sandbox/newmod/deep/c.rs", "c\n")),
        ("same-size edit, mtime restored",
         lambda r: same_size_rewrite(r, "sandbox/newmod/deep/b.rs", "PUB FN B() {}\n")),
        ("file removed", lambda r: os.unlink(r.path("sandbox/newmod/a.rs"))),
        ("its .gitignore edited in place",
         lambda r: same_size_rewrite(r, "sandbox/newmod/.gitignore", "*.rs\n")),
    ]
    for what, change in changes:
        r = with_untracked_dir()
        change(r)
        run_, stderr = plan_after_change(r)
        assert "stat cache hit" not in stderr, (what, stderr)
        assert run_ == ["supervisor"], (what, run_)

@test
def stat_cache_keeps_uncommitted_changes():
    r = deployed_repo()
    r.write("sandbox/src/main.rs", "fn main() { edited() }\n")
    r.write("sandbox/src/new.rs", "pub fn n() {}\n")
    r.deploy()
    assert r.ran() == ["supervisor"]
    # a tree with uncommitted changes is cached too: a no-op stays a no-op
    cache_in_use(r)
    assert r.deploy().stdout.strip() == NOOP and r.ran() == []
    # and an edit of an already changed file is seen
    r.write("sandbox/src/new.rs", "pub fn n() { 2 }\n")
    run_, stderr = plan_after_change(r)
    assert run_ == ["supervisor"] and "stat cache hit" not in stderr, (run_, stderr)


@test
def stat_cache_malformed_or_foreign_is_not_used():
    r = deployed_repo()
    cache_in_use(r)
    good = open(r.path(CACHE_FILE), "rb").read()
    bad = [b"", b"HOISTDC1", good[:-1], b"XOISTDC1" + good[8:], good[:200] + b"\xff" * 8 + good[208:]]
    for data in bad:
        with open(r.path(CACHE_FILE), "wb") as f:
            f.write(data)
        p = r.deploy("--dry-run", env=DEBUG)
        assert p.stdout.strip() == NOOP and "stat cache hit" not in p.stderr, (data[:16], p.stderr)
    # a cache for another deploy file is not used either
    with open(r.path(CACHE_FILE), "wb") as f:
        f.write(good)
    alt = os.path.join(tmpdir(), "deploy.toml")
    with open(alt, "w") as f:
        f.write('[component.docs]\npaths = ["README.md"]\nsteps = ["true"]\n')
    p = r.deploy("--file", alt, "--dry-run", env=DEBUG)
    assert "another HEAD, index or deploy file" in p.stderr, p.stderr


if __name__ == "__main__":
    main()
