"""The runtime bundle of the contract (specs/runtime-bundle.md) as a fixture:
Bundle(arch) is the valid bundle, which tests may change before build()
writes the gzip tarball."""
import gzip
import hashlib
import io
import json
import tarfile

LIBDIR = {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}
BINS = ["nvidia-cdi-hook", "nvidia-container-runtime", "nvidia-container-runtime-hook",
        "nvidia-container-cli", "nvidia-ctk"]
NAME = "openshell-gpu-runtime-bundle"


def sha(data):
    return hashlib.sha256(data).hexdigest()


class Bundle:
    """The contract's valid bundle; tests change it before build()."""

    def __init__(self, arch="amd64"):
        self.arch = arch
        self.top = f"{NAME}_0.1.0_{arch}"
        lib = f"usr/lib/{LIBDIR[arch]}"
        self.lib = lib
        # path -> (kind, data or target, mode); kind: file, symlink
        self.payload = {}
        for b in BINS:
            self.payload[f"usr/bin/{b}"] = ("file", f"#!/bin/sh\necho {b}\n".encode(), 0o755)
        self.payload["etc/nvidia-container-runtime/config.toml"] = (
            "file", b"[nvidia-container-cli]\nldconfig = \"@/sbin/ldconfig\"\n", 0o644)
        self.payload[f"{lib}/libnvidia-container.so.1.17.8"] = ("file", b"\x7fELF" + b"L" * 4000,
                                                                0o755)
        self.payload[f"{lib}/libnvidia-container.so.1"] = ("symlink",
                                                           "libnvidia-container.so.1.17.8", 0o777)
        self.payload[f"{lib}/libnvidia-container.so"] = ("symlink", "libnvidia-container.so.1",
                                                         0o777)
        self.manifest_first = False
        self.manifest_raw = None  # bytes replacing the JSON manifest
        self.with_manifest = True
        self.extra = []  # TarInfo, data appended after the payload
        self.manifest = self.make_manifest()

    def make_manifest(self):
        files = []
        for p, (kind, data, _) in self.payload.items():
            if kind == "file":
                files.append({"path": p, "entry_type": "file", "sha256": sha(data),
                              "size": len(data)})
            else:
                files.append({"path": p, "entry_type": "symlink", "target": data})
        return {
            "schema_version": 1,
            "bundle_name": NAME,
            "bundle_version": "0.1.0",
            "architecture": self.arch,
            "created_at": "2026-03-18T12:34:56Z",
            "components": {
                "nvidia_container_toolkit": {"version": "1.17.8-openshell.1",
                                             "commit": "0123456789abcdef0123456789abcdef01234567"},
                "libnvidia_container": {"version": "1.17.8-openshell.1",
                                        "commit": "89abcdef0123456789abcdef0123456789abcdef"},
            },
            "files": files,
        }

    def entry(self, path):
        return next(f for f in self.manifest["files"] if f["path"] == path)

    def drop(self, path):
        """Removes path from the payload and the manifest."""
        del self.payload[path]
        self.manifest["files"] = [f for f in self.manifest["files"] if f["path"] != path]

    def tarbytes(self):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
            def add_dir(name):
                ti = tarfile.TarInfo(name)
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                t.addfile(ti)

            def add_manifest():
                if not self.with_manifest:
                    return
                data = self.manifest_raw if self.manifest_raw is not None else \
                    json.dumps(self.manifest, indent=2).encode()
                ti = tarfile.TarInfo(f"{self.top}/manifest.json")
                ti.size = len(data)
                ti.mode = 0o644
                t.addfile(ti, io.BytesIO(data))

            add_dir(self.top)
            if self.manifest_first:
                add_manifest()
            dirs = set()
            for p in self.payload:
                parts = p.split("/")[:-1]
                for i in range(1, len(parts) + 1):
                    d = "/".join(parts[:i])
                    if d not in dirs:
                        dirs.add(d)
                        add_dir(f"{self.top}/{d}")
            for p, (kind, data, mode) in self.payload.items():
                ti = tarfile.TarInfo(f"{self.top}/{p}")
                ti.mode = mode
                ti.mtime = 1773837296
                if kind == "file":
                    ti.size = len(data)
                    t.addfile(ti, io.BytesIO(data))
                else:
                    ti.type = tarfile.SYMTYPE
                    ti.linkname = data
                    t.addfile(ti)
            for ti, data in self.extra:
                t.addfile(ti, io.BytesIO(data) if data is not None else None)
            if not self.manifest_first:
                add_manifest()
        return buf.getvalue()

    def build(self, path):
        with open(path, "wb") as f:
            f.write(gzip.compress(self.tarbytes(), 6))
        return path
