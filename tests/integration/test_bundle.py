"""hoist bundle verify / stage / fetch against the runtime bundle contract
(specs/runtime-bundle.md). Fixtures are made here with Python's tarfile: the
valid bundle of the contract for amd64 and arm64, and one tarball per failure
rule, each checked for exit 1, its exact message, and that no stage remains."""
import copy
import gzip
import hashlib
import io
import json
import os
import tarfile

from bundlefixture import LIBDIR, NAME, Bundle, sha
from hoisttest import HOIST, hoist, main, run, test, tmpdir

PREFIX = "hoist bundle {}: runtime bundle validation failed: "
# the binary, runnable from another working directory
HOIST_EXE = os.path.abspath(HOIST) if os.sep in HOIST else HOIST


def tinfo(name, type=tarfile.REGTYPE, data=b"", linkname=""):
    ti = tarfile.TarInfo(name)
    ti.type = type
    ti.size = len(data) if type == tarfile.REGTYPE else 0
    ti.linkname = linkname
    ti.mode = 0o644
    return ti, data if type == tarfile.REGTYPE else None


def assert_fails(tarball, msg, *opts, prefix=True, startswith=False, stage_removed=True):
    """verify and stage both exit 1 with msg; stage leaves no stage behind,
    and a good stage of the arch made before is gone."""
    d = tmpdir()
    into = os.path.join(d, "stage")
    arch = "amd64"
    good = Bundle(arch).build(os.path.join(d, "good.tar.gz"))
    hoist("bundle", "stage", good, "--arch", arch, "--into", into)
    assert os.path.isdir(os.path.join(into, arch, NAME))
    before = sorted(os.listdir(d))
    for verb in ("verify", "stage"):
        args = ["bundle", verb, tarball, *opts]
        if "--arch" not in opts and "--platform" not in opts:
            args += ["--arch", arch]
        if verb == "stage":
            args += ["--into", into]
        p = hoist(*args, check=False, env={"HOIST_LOG": "error"})
        want = (PREFIX.format(verb) if prefix else f"hoist bundle {verb}: ") + msg
        assert p.returncode == 1, f"{verb}: exit {p.returncode}, stderr {p.stderr!r}"
        got = p.stderr.rstrip("\n")
        if startswith:
            assert got.startswith(want), f"{verb}: {got!r} does not start with {want!r}"
        else:
            assert got == want, f"{verb}: got {got!r}, want {want!r}"
        assert p.stdout == "", p.stdout
    # nothing staged: the old stage of the arch is gone, no temporary remains
    assert sorted(os.listdir(d)) == before
    assert os.listdir(into) == ([] if stage_removed else [arch]), os.listdir(into)


def failing(mutate, msg, *opts, **kw):
    d = tmpdir()
    b = Bundle("amd64")
    mutate(b)
    assert_fails(b.build(os.path.join(d, "bad.tar.gz")), msg, *opts, **kw)


# ------------------------------------------------------------------ valid bundles


def check_stage(into, arch, b, mtimes=True):
    root = os.path.join(into, arch, NAME)
    assert sorted(os.listdir(os.path.join(into))) == [arch]
    assert os.listdir(os.path.join(into, arch)) == [NAME]
    for p, (kind, data, mode) in b.payload.items():
        full = os.path.join(root, p)
        if kind == "file":
            assert not os.path.islink(full)
            with open(full, "rb") as f:
                assert f.read() == data, p
            assert os.stat(full).st_mode & 0o777 == mode, (p, oct(os.stat(full).st_mode))
            assert not mtimes or int(os.stat(full).st_mtime) == 1773837296
        else:
            assert os.readlink(full) == data, p
    with open(os.path.join(root, "manifest.json"), "rb") as f:
        assert json.load(f) == b.manifest


@test
def valid_amd64_verify_and_stage():
    d = tmpdir()
    b = Bundle("amd64")
    t = b.build(os.path.join(d, "openshell-gpu-runtime-bundle_0.1.0_amd64.tar.gz"))
    p = hoist("bundle", "verify", t, "--arch", "amd64")
    assert p.stdout == f"Runtime bundle verified: {NAME} 0.1.0 (amd64), 9 manifest entries\n"
    into = os.path.join(d, "out")
    p = hoist("bundle", "stage", t, "--arch", "amd64", "--into", into)
    assert p.stdout == f"Runtime bundle staged at {into}/amd64/{NAME}\n", p.stdout
    check_stage(into, "amd64", b)
    j = json.loads(hoist("bundle", "verify", t, "--arch", "amd64", "--json").stdout)
    payload = sum(len(v[1]) for v in b.payload.values() if v[0] == "file") + \
        len(json.dumps(b.manifest, indent=2).encode())
    assert j == {"architecture": "amd64", "bundle_name": NAME, "bundle_version": "0.1.0",
                 "created_at": "2026-03-18T12:34:56Z", "manifest_entries": 9,
                 "payload_bytes": payload}, j
    j = json.loads(hoist("bundle", "stage", t, "--arch", "amd64", "--into", into,
                         "--json").stdout)
    assert j["staged_at"] == f"{into}/amd64/{NAME}", j


@test
def valid_arm64_platform_and_default_stage_dir():
    d = tmpdir()
    b = Bundle("arm64")
    b.manifest_first = True
    t = b.build(os.path.join(d, "arm64.tar.gz"))
    run(HOIST_EXE, "bundle", "verify", t, "--platform", "linux/arm64")
    p = run(HOIST_EXE, "bundle", "stage", t, "--platform",
            "linux/arm64", cwd=d)
    rel = f"deploy/docker/.build/runtime-bundle/arm64/{NAME}"
    assert p.stdout == f"Runtime bundle staged at {rel}\n", p.stdout
    check_stage(os.path.join(d, "deploy/docker/.build/runtime-bundle"), "arm64", b)


@test
def manifest_before_and_after_payload():
    d = tmpdir()
    for first in (True, False):
        b = Bundle("amd64")
        b.manifest_first = first
        t = b.build(os.path.join(d, f"b{first}.tar.gz"))
        hoist("bundle", "verify", t, "--arch", "amd64")
        into = os.path.join(d, f"s{first}")
        hoist("bundle", "stage", t, "--arch", "amd64", "--into", into)
        check_stage(into, "amd64", b)


@test
def host_architecture_is_the_default():
    if os.uname().machine not in ("x86_64", "aarch64", "arm64"):
        return
    arch = "amd64" if os.uname().machine == "x86_64" else "arm64"
    other = "arm64" if arch == "amd64" else "amd64"
    d = tmpdir()
    hoist("bundle", "verify", Bundle(arch).build(os.path.join(d, "a.tar.gz")))
    p = hoist("bundle", "verify", Bundle(other).build(os.path.join(d, "b.tar.gz")), check=False)
    assert p.returncode == 1
    assert p.stderr.rstrip() == PREFIX.format("verify") + \
        f"bundle architecture mismatch: expected {arch}, got {other}"


@test
def gnu_tar_layout_with_dot_prefix_is_accepted():
    """A bundle packed by GNU tar from a tree (members "./<top>/...")."""
    d = tmpdir()
    b = Bundle("amd64")
    # a sparse member (GNU sparse format) with a hole in the middle and at the end
    ctk = b"ctk" + b"\0" * (1 << 20) + b"more" + b"\0" * (2 << 20)
    b.payload["usr/bin/nvidia-ctk"] = ("file", ctk, 0o755)
    b.manifest = b.make_manifest()
    src = os.path.join(d, "src")
    top = os.path.join(src, b.top)
    for p, (kind, data, mode) in b.payload.items():
        full = os.path.join(top, p)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if kind == "file" and data is ctk:
            with open(full, "wb") as f:
                f.write(b"ctk")
                f.seek(3 + (1 << 20))
                f.write(b"more")
                f.truncate(len(ctk))
            os.chmod(full, mode)
        elif kind == "file":
            with open(full, "wb") as f:
                f.write(data)
            os.chmod(full, mode)
        else:
            os.symlink(data, full)
    with open(os.path.join(top, "manifest.json"), "w") as f:
        json.dump(b.manifest, f)
    t = os.path.join(d, "gnu.tar.gz")
    run("tar", "--sparse", "-czf", t, "-C", src, ".")
    listing = run("tar", "-tvzf", t).stdout
    assert "nvidia-ctk" in listing
    hoist("bundle", "verify", t, "--arch", "amd64")
    hoist("bundle", "stage", t, "--arch", "amd64", "--into", os.path.join(d, "st"))
    check_stage(os.path.join(d, "st"), "amd64", b, mtimes=False)


@test
def verify_writes_nothing():
    d = tmpdir()
    t = Bundle("amd64").build(os.path.join(d, "b.tar.gz"))
    cwd = os.path.join(d, "cwd")
    os.makedirs(cwd)
    run(HOIST_EXE, "bundle", "verify", t, "--arch", "amd64", cwd=cwd)
    assert os.listdir(cwd) == []
    assert sorted(os.listdir(d)) == ["b.tar.gz", "cwd"]


@test
def stage_replaces_the_previous_stage():
    d = tmpdir()
    into = os.path.join(d, "st")
    b = Bundle("amd64")
    t1 = b.build(os.path.join(d, "1.tar.gz"))
    hoist("bundle", "stage", t1, "--arch", "amd64", "--into", into)
    with open(os.path.join(into, "amd64", NAME, "stale"), "w") as f:
        f.write("x")
    b2 = Bundle("amd64")
    b2.payload["usr/bin/nvidia-ctk"] = ("file", b"new ctk\n", 0o755)
    b2.manifest = b2.make_manifest()
    hoist("bundle", "stage", b2.build(os.path.join(d, "2.tar.gz")), "--arch", "amd64", "--into",
          into)
    check_stage(into, "amd64", b2)
    assert not os.path.exists(os.path.join(into, "amd64", NAME, "stale"))


@test
def help_and_usage():
    for args in (["bundle", "--help"], ["bundle", "verify", "--help"],
                 ["bundle", "stage", "--help"], ["bundle", "fetch", "--help"],
                 ["bundle", "apply", "--help"], ["bundle", "publish", "--help"]):
        p = hoist(*args)
        assert p.stdout.startswith("Usage: hoist bundle"), p.stdout
    p = hoist("bundle", "--help")
    assert "apply" in p.stdout and "publish" in p.stdout
    assert hoist("bundle", "verify", check=False).returncode == 2
    assert hoist("bundle", "frobnicate", check=False).returncode == 2
    assert hoist("bundle", "verify", "x", "--max-size", "lots", check=False).returncode == 2


# ------------------------------------------------------------- check 1: the file


@test
def fail_tarball_missing():
    d = tmpdir()
    missing = os.path.join(d, "nope.tar.gz")
    assert_fails(missing, f"tarball not found: {missing}")


@test
def fail_tarball_is_a_directory():
    d = tmpdir()
    assert_fails(d, f"tarball is not a readable file: {d}")


@test
def fail_not_gzip():
    d = tmpdir()
    t = os.path.join(d, "plain.tar")
    with open(t, "wb") as f:
        f.write(Bundle().tarbytes())
    assert_fails(t, f"tarball is not gzip-compressed: {t}")


@test
def fail_gzip_but_not_tar():
    d = tmpdir()
    t = os.path.join(d, "text.tar.gz")
    with open(t, "wb") as f:
        f.write(gzip.compress(b"this is not a tar archive\n" * 100))
    assert_fails(t, "tar extraction reported warnings or errors: Unrecognized archive format")


@test
def fail_truncated_gzip():
    d = tmpdir()
    data = gzip.compress(Bundle().tarbytes())
    t = os.path.join(d, "cut.tar.gz")
    with open(t, "wb") as f:
        f.write(data[: len(data) * 2 // 3])
    assert_fails(t, "tar extraction reported warnings or errors: "
                 "unexpected end of gzip data (truncated)")


@test
def fail_truncated_tar_in_a_whole_gzip():
    d = tmpdir()
    b = Bundle()
    b.manifest_first = True
    data = b.tarbytes()
    cut = data.index(b"\x7fELF") + 100  # inside the library's data
    t = os.path.join(d, "cut-tar.tar.gz")
    with open(t, "wb") as f:
        f.write(gzip.compress(data[:cut]))
    assert_fails(t, "tar extraction reported warnings or errors: Truncated tar archive")


@test
def fail_trailing_garbage_after_gzip():
    d = tmpdir()
    t = os.path.join(d, "junk.tar.gz")
    with open(t, "wb") as f:
        f.write(gzip.compress(Bundle().tarbytes()) + b"JUNK")
    assert_fails(t, "tar extraction reported warnings or errors: trailing garbage after gzip data")


@test
def concatenated_gzip_members_are_one_stream():
    """gzip -d reads concatenated members as one stream; so does hoist."""
    d = tmpdir()
    data = Bundle().tarbytes()
    t = os.path.join(d, "multi.tar.gz")
    with open(t, "wb") as f:
        f.write(gzip.compress(data[:7000]) + gzip.compress(data[7000:]))
    hoist("bundle", "verify", t, "--arch", "amd64")


@test
def fail_corrupt_gzip_trailer():
    d = tmpdir()
    data = bytearray(gzip.compress(Bundle().tarbytes()))
    data[-6] ^= 0xFF  # CRC32 of the trailer
    t = os.path.join(d, "crc.tar.gz")
    with open(t, "wb") as f:
        f.write(bytes(data))
    assert_fails(t, "tar extraction reported warnings or errors: gzip checksum mismatch")


# ------------------------------------------------------------ check 2: the names

SHAPE = "expected a single top-level bundle directory"


@test
def fail_two_top_level_directories():
    failing(lambda b: b.extra.append(tinfo("other/file", data=b"x")), SHAPE)


@test
def fail_hidden_top_level_entry():
    failing(lambda b: b.extra.append(tinfo(".hidden", data=b"x")), SHAPE)


@test
def fail_absolute_member_name():
    failing(lambda b: b.extra.append(tinfo("/etc/evil", data=b"x")), SHAPE)


@test
def fail_dotdot_member_name():
    failing(lambda b: b.extra.append(tinfo(f"{b.top}/../evil", data=b"x")), SHAPE)


@test
def fail_top_level_is_a_file():
    d = tmpdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        ti, data = tinfo("manifest.json", data=b"{}")
        t.addfile(ti, io.BytesIO(data))
    p = os.path.join(d, "flat.tar.gz")
    with open(p, "wb") as f:
        f.write(gzip.compress(buf.getvalue()))
    assert_fails(p, SHAPE)


@test
def fail_empty_tarball():
    d = tmpdir()
    p = os.path.join(d, "empty.tar.gz")
    with open(p, "wb") as f:
        f.write(gzip.compress(b"\0" * 10240))
    assert_fails(p, SHAPE)


@test
def fail_duplicate_tar_member():
    def m(b):
        b.extra.append(tinfo(f"{b.top}/usr/bin/nvidia-ctk", data=b"again"))
    failing(m, "duplicate payload path in tarball: usr/bin/nvidia-ctk")


@test
def fail_member_below_a_symlink():
    def m(b):
        b.extra.append(tinfo(f"{b.top}/usr/lib64", tarfile.SYMTYPE, linkname="/etc"))
        b.extra.append(tinfo(f"{b.top}/usr/lib64/evil", data=b"x"))
    failing(m, "payload path below a non-directory: usr/lib64/evil")


# ------------------------------------------------------- checks 3-5: the manifest


@test
def fail_manifest_missing():
    def m(b):
        b.with_manifest = False
    failing(m, "missing bundle manifest.json")


@test
def fail_manifest_not_json():
    def m(b):
        b.manifest_raw = b"{ this is not json"
    failing(m, "malformed manifest.json")


@test
def fail_schema_version_string():
    failing(lambda b: b.manifest.update(schema_version="1"),
            "missing required manifest field: schema_version")


@test
def fail_bundle_version_missing():
    failing(lambda b: b.manifest.pop("bundle_version"),
            "missing required manifest field: bundle_version")


@test
def fail_architecture_blank():
    failing(lambda b: b.manifest.update(architecture="   "),
            "missing required manifest field: architecture")


@test
def fail_component_commit_missing():
    failing(lambda b: b.manifest["components"]["libnvidia_container"].pop("commit"),
            "missing required manifest field: components.libnvidia_container.commit")


@test
def fail_component_missing():
    failing(lambda b: b.manifest["components"].pop("nvidia_container_toolkit"),
            "missing required manifest field: components.nvidia_container_toolkit")


@test
def fail_files_not_a_list():
    failing(lambda b: b.manifest.update(files={"path": "x"}),
            "missing required manifest field: files")


@test
def fail_created_at_not_rfc3339():
    failing(lambda b: b.manifest.update(created_at="18/03/2026 12:34"),
            "invalid manifest field created_at: not an RFC 3339 timestamp: 18/03/2026 12:34")


@test
def fail_bundle_name_not_a_safe_component():
    failing(lambda b: b.manifest.update(bundle_name="../../evil"),
            "invalid manifest field bundle_name: not a safe path component: ../../evil")


@test
def fail_architecture_mismatch():
    failing(lambda b: b.manifest.update(architecture="x86_64"),
            "bundle architecture mismatch: expected amd64, got x86_64")


@test
def fail_arm64_bundle_for_amd64():
    d = tmpdir()
    assert_fails(Bundle("arm64").build(os.path.join(d, "arm.tar.gz")),
                 "bundle architecture mismatch: expected amd64, got arm64")


@test
def fail_multi_platform():
    d = tmpdir()
    assert_fails(Bundle().build(os.path.join(d, "b.tar.gz")),
                 "multi-platform builds are not supported: linux/amd64,linux/arm64",
                 "--platform", "linux/amd64,linux/arm64", prefix=False, stage_removed=False)


# -------------------------------------------------------- check 6: files[] entries


@test
def fail_manifest_path_escapes():
    def m(b):
        b.manifest["files"].append({"path": "../etc/passwd", "entry_type": "file",
                                    "sha256": "0" * 64, "size": 1})
    failing(m, "invalid manifest-listed payload path: ../etc/passwd")


@test
def fail_manifest_path_absolute():
    def m(b):
        b.manifest["files"].insert(0, {"path": "/usr/bin/nvidia-ctk", "entry_type": "file",
                                       "sha256": "0" * 64, "size": 1})
    failing(m, "invalid manifest-listed payload path: /usr/bin/nvidia-ctk")


@test
def fail_manifest_path_missing():
    failing(lambda b: b.manifest["files"][2].pop("path"),
            "missing required manifest field: files[2].path")


@test
def fail_entry_type_unknown():
    failing(lambda b: b.entry("usr/bin/nvidia-ctk").update(entry_type="directory"),
            'unsupported manifest entry_type "directory": usr/bin/nvidia-ctk')


@test
def fail_checksum_mismatch():
    failing(lambda b: b.entry("usr/bin/nvidia-ctk").update(sha256=sha(b"other")),
            "checksum mismatch: usr/bin/nvidia-ctk")


@test
def fail_sha256_uppercase():
    def m(b):
        e = b.entry("usr/bin/nvidia-ctk")
        e["sha256"] = e["sha256"].upper()
    failing(m, "invalid manifest sha256 (64 lowercase hex): usr/bin/nvidia-ctk")


@test
def fail_size_mismatch():
    failing(lambda b: b.entry("usr/bin/nvidia-ctk").update(size=1000),
            "size mismatch: usr/bin/nvidia-ctk")


@test
def fail_size_is_bool():
    failing(lambda b: b.entry("usr/bin/nvidia-ctk").update(size=True),
            "invalid manifest size (a non-negative integer): usr/bin/nvidia-ctk")


@test
def fail_size_is_float():
    def m(b):
        e = b.entry("usr/bin/nvidia-ctk")
        e["size"] = float(e["size"])
    failing(m, "invalid manifest size (a non-negative integer): usr/bin/nvidia-ctk")


@test
def fail_size_negative():
    failing(lambda b: b.entry("usr/bin/nvidia-ctk").update(size=-1),
            "invalid manifest size (a non-negative integer): usr/bin/nvidia-ctk")


@test
def fail_listed_file_missing_on_disk():
    def m(b):
        b.manifest["files"].append({"path": "usr/bin/nvidia-extra", "entry_type": "file",
                                    "sha256": sha(b""), "size": 0})
    failing(m, "missing manifest-listed payload path: usr/bin/nvidia-extra")


@test
def fail_listed_file_is_a_symlink_on_disk():
    def m(b):
        b.payload["usr/bin/nvidia-ctk"] = ("symlink", "nvidia-cdi-hook", 0o777)
    failing(m, "missing manifest-listed payload path: usr/bin/nvidia-ctk")


@test
def fail_symlink_target_outside():
    def m(b):
        b.payload["usr/share/evil"] = ("symlink", "../../../../etc/passwd", 0o777)
        b.manifest = b.make_manifest()
    failing(m, "symlink points outside the bundle: usr/share/evil")


@test
def fail_symlink_through_symlink_outside():
    def m(b):
        b.payload["usr/share/up"] = ("symlink", "../..", 0o777)
        b.payload["usr/share/evil"] = ("symlink", "up/../x", 0o777)
        b.manifest = b.make_manifest()
    failing(m, "symlink points outside the bundle: usr/share/evil")


@test
def fail_symlink_loop():
    def m(b):
        b.payload["usr/share/a"] = ("symlink", "b", 0o777)
        b.payload["usr/share/b"] = ("symlink", "a", 0o777)
        b.manifest = b.make_manifest()
    failing(m, "symlink loop: usr/share/a")


@test
def fail_symlink_target_absolute():
    def m(b):
        b.payload["usr/share/abs"] = ("symlink", "/usr/bin/nvidia-ctk", 0o777)
        b.manifest = b.make_manifest()
    failing(m, "symlink target is not relative: usr/share/abs")


@test
def fail_symlink_target_differs_from_manifest():
    lib = f"usr/lib/{LIBDIR['amd64']}/libnvidia-container.so"
    failing(lambda b: b.entry(lib).update(target="libnvidia-container.so.1.17.8"),
            f"symlink target mismatch: {lib}")


@test
def fail_duplicate_manifest_path():
    def m(b):
        b.manifest["files"].append(dict(b.entry("usr/bin/nvidia-ctk")))
    failing(m, "duplicate manifest-listed payload path: usr/bin/nvidia-ctk")


@test
def fail_no_regular_file_listed():
    def m(b):
        b.manifest["files"] = [f for f in b.manifest["files"] if f["entry_type"] == "symlink"]
    failing(m, "manifest.json lists no regular files")


# --------------------------------------------------- check 7: required runtime assets


@test
def fail_required_binary_missing():
    failing(lambda b: b.drop("usr/bin/nvidia-container-cli"),
            "required runtime asset missing from manifest.json: usr/bin/nvidia-container-cli")


@test
def fail_required_binary_is_a_symlink():
    def m(b):
        b.payload["usr/bin/nvidia-ctk"] = ("symlink", "nvidia-cdi-hook", 0o777)
        b.manifest = b.make_manifest()
    failing(m, "invalid required binary entry type: usr/bin/nvidia-ctk")


@test
def fail_config_missing():
    failing(lambda b: b.drop("etc/nvidia-container-runtime/config.toml"),
            "required runtime asset missing from manifest.json: "
            "etc/nvidia-container-runtime/config.toml")


@test
def fail_library_missing():
    def m(b):
        for p in [p for p in b.payload if p.startswith("usr/lib/")]:
            b.drop(p)
    failing(m, "missing required library subtree: "
            "usr/lib/x86_64-linux-gnu/libnvidia-container*.so*")


@test
def fail_library_for_the_other_arch_only():
    """An amd64 manifest whose libraries sit in the arm64 directory."""
    def m(b):
        b.payload = {(p.replace(LIBDIR["amd64"], LIBDIR["arm64"])): v
                     for p, v in b.payload.items()}
        b.manifest = b.make_manifest()
    failing(m, "missing required library subtree: "
            "usr/lib/x86_64-linux-gnu/libnvidia-container*.so*")


@test
def fail_library_dangling_symlink():
    def m(b):
        b.drop(f"{b.lib}/libnvidia-container.so.1.17.8")
    failing(m, "required library does not resolve to a regular file: "
            "usr/lib/x86_64-linux-gnu/libnvidia-container.so.1")


# ------------------------------------------------------------ check 8: the payload


@test
def fail_unlisted_payload():
    failing(lambda b: b.extra.append(tinfo(f"{b.top}/usr/bin/stowaway", data=b"x")),
            "unlisted payload path present on disk: usr/bin/stowaway")


@test
def fail_hardlink():
    failing(lambda b: b.extra.append(tinfo(f"{b.top}/usr/bin/hl", tarfile.LNKTYPE,
                                           linkname=f"{b.top}/usr/bin/nvidia-ctk")),
            "hardlink not allowed in a runtime bundle: usr/bin/hl")


@test
def fail_device_node():
    def m(b):
        ti, _ = tinfo(f"{b.top}/dev/null", tarfile.CHRTYPE)
        ti.devmajor, ti.devminor = 1, 3
        b.extra.append((ti, None))
    failing(m, "device node not allowed in a runtime bundle: dev/null")


@test
def fail_fifo():
    failing(lambda b: b.extra.append(tinfo(f"{b.top}/run/fifo", tarfile.FIFOTYPE)),
            "fifo not allowed in a runtime bundle: run/fifo")


@test
def fail_member_larger_than_manifest_size_stops_early():
    """A 64 MiB member the manifest (read first) says is 4 bytes: refused at
    its header, before its data is read or written."""
    d = tmpdir()
    b = Bundle("amd64")
    b.manifest_first = True
    big = os.urandom(1 << 20) * 64
    b.payload["usr/bin/nvidia-ctk"] = ("file", big, 0o755)
    b.manifest = b.make_manifest()
    b.entry("usr/bin/nvidia-ctk").update(size=4)
    assert_fails(b.build(os.path.join(d, "bomb.tar.gz")), "size mismatch: usr/bin/nvidia-ctk")


@test
def fail_total_size_limit():
    d = tmpdir()
    assert_fails(Bundle().build(os.path.join(d, "b.tar.gz")),
                 "runtime bundle exceeds the size limit of 1024 bytes (--max-size)",
                 "--max-size", "1K")


@test
def limits_at_the_boundary_pass():
    d = tmpdir()
    b = Bundle()
    t = b.build(os.path.join(d, "b.tar.gz"))
    with tarfile.open(t) as tf:
        members = tf.getmembers()
    total = sum(m.size for m in members if m.isfile())
    hoist("bundle", "verify", t, "--arch", "amd64", "--max-entries", len(members),
          "--max-size", total)
    p = hoist("bundle", "verify", t, "--arch", "amd64", "--max-entries", len(members) - 1,
              check=False)
    assert p.returncode == 1 and "more than" in p.stderr, p.stderr
    p = hoist("bundle", "verify", t, "--arch", "amd64", "--max-size", total - 1, check=False)
    assert p.returncode == 1 and "size limit" in p.stderr, p.stderr


@test
def fail_entry_limit():
    d = tmpdir()
    assert_fails(Bundle().build(os.path.join(d, "b.tar.gz")),
                 "runtime bundle has more than 5 entries (--max-entries)", "--max-entries", "5")


# ----------------------------------------------------------------------------- fetch


def url_cache_name(url, arch):
    return f"{arch}-{hashlib.sha256(url.encode()).hexdigest()}-{url.rsplit('/', 1)[1]}"


@test
def fetch_file_url_and_reuse_cache():
    d = tmpdir()
    src = Bundle().build(os.path.join(d, "openshell-gpu-runtime-bundle_0.1.0_amd64.tar.gz"))
    url = "file://" + src
    cache = os.path.join(d, "cache")
    p = hoist("bundle", "fetch", url, "--arch", "amd64", "--cache", cache)
    path = p.stdout.strip()
    assert path == os.path.join(cache, url_cache_name(url, "amd64")), path
    with open(path, "rb") as f, open(src, "rb") as g:
        assert f.read() == g.read()
    st = os.stat(path)
    # the second fetch reuses the cached file: the source may even be gone
    os.rename(src, src + ".moved")
    p = hoist("bundle", "fetch", url, "--arch", "amd64", "--cache", cache, "--sha256",
              sha(open(path, "rb").read()))
    assert p.stdout.strip() == path
    st2 = os.stat(path)
    assert (st.st_ino, st.st_mtime_ns) == (st2.st_ino, st2.st_mtime_ns)
    assert os.listdir(cache) == [os.path.basename(path)]
    j = json.loads(hoist("bundle", "fetch", url, "--arch", "amd64", "--cache", cache,
                         "--json").stdout)
    assert j == {"path": path, "cached": True}, j
    hoist("bundle", "verify", path, "--arch", "amd64")


@test
def fetch_default_cache_dir_is_relative_to_cwd():
    d = tmpdir()
    src = Bundle("arm64").build(os.path.join(d, "b_arm64.tar.gz"))
    url = "file://" + src
    p = run(HOIST_EXE, "bundle", "fetch", url, "--arch", "arm64",
            cwd=d)
    rel = "deploy/docker/.build/runtime-bundles/" + url_cache_name(url, "arm64")
    assert p.stdout.strip() == rel, p.stdout
    assert os.path.isfile(os.path.join(d, rel))


@test
def fetch_sha256_mismatch_is_not_cached():
    d = tmpdir()
    src = Bundle().build(os.path.join(d, "b.tar.gz"))
    url = "file://" + src
    cache = os.path.join(d, "cache")
    want = "0" * 64
    p = hoist("bundle", "fetch", url, "--arch", "amd64", "--cache", cache, "--sha256", want,
              check=False)
    assert p.returncode == 1
    got = sha(open(src, "rb").read())
    assert p.stderr.strip() == \
        f"hoist bundle fetch: fetch {url}: sha256 mismatch: expected {want}, got {got}", p.stderr
    assert os.listdir(cache) == []
    p = hoist("bundle", "fetch", url, "--arch", "amd64", "--cache", cache, "--sha256", got)
    assert os.path.isfile(p.stdout.strip())


@test
def fetch_over_http():
    import functools
    import http.server
    import threading
    d = tmpdir()
    src = Bundle().build(os.path.join(d, "openshell-gpu-runtime-bundle_0.1.0_amd64.tar.gz"))
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=d)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        url = f"{base}/{os.path.basename(src)}?token=x"
        cache = os.path.join(d, "cache")
        p = hoist("bundle", "fetch", url, "--arch", "amd64", "--cache", cache, "--sha256",
                  "sha256:" + sha(open(src, "rb").read()))
        path = p.stdout.strip()
        assert path == os.path.join(
            cache, f"amd64-{hashlib.sha256(url.encode()).hexdigest()}-{os.path.basename(src)}")
        hoist("bundle", "stage", path, "--arch", "amd64", "--into", os.path.join(d, "st"))
        p = hoist("bundle", "fetch", f"{base}/missing.tar.gz", "--arch", "amd64", "--cache",
                  cache, check=False)
        assert p.returncode == 1 and "404" in p.stderr, p.stderr
        assert os.listdir(cache) == [os.path.basename(path)]
    finally:
        srv.shutdown()
        srv.server_close()


@test
def fetch_missing_source_fails():
    d = tmpdir()
    cache = os.path.join(d, "cache")
    url = "file://" + os.path.join(d, "nope.tar.gz")
    p = hoist("bundle", "fetch", url, "--arch", "amd64", "--cache", cache, check=False)
    assert p.returncode == 1 and p.stderr.startswith(f"hoist bundle fetch: fetch {url}: "), \
        p.stderr
    assert os.listdir(cache) == []


if __name__ == "__main__":
    main()
