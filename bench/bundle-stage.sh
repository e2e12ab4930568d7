#!/usr/bin/env bash
# Benchmark: `hoist bundle stage` of a 500 MiB runtime bundle against a shell
# pipeline doing the same checks the reference way (tar -xzf, sha256sum of
# every file, a JSON check with python3, then the move into the stage), in
# the same run. Prints the median of 3 runs of each and the ratio.
# Usage: bench/bundle-stage.sh path/to/hoist
set -euo pipefail
hoist=$(realpath "${1:?usage: $0 path/to/hoist}")
cache=${HOIST_CACHE:-$HOME/.cache/hoist}/bench/bundle-stage
mkdir -p "$cache"
tarball=$cache/openshell-gpu-runtime-bundle_0.1.0_amd64.tar.gz

if [ ! -s "$tarball" ]; then
  echo "generating a 500 MiB bundle in $cache (once)" >&2
  python3 - "$tarball" <<'PY'
import hashlib, io, json, os, sys, tarfile
out = sys.argv[1]
top = "openshell-gpu-runtime-bundle_0.1.0_amd64"
lib = "usr/lib/x86_64-linux-gnu"
rnd = os.urandom(1 << 20)
def blob(n, seed):
    # incompressible-ish: mostly random with some runs, like stripped binaries
    parts, i = [], 0
    while sum(map(len, parts)) < n:
        off = (seed * 7919 + i * 104729) % (len(rnd) - 65536)
        parts.append(rnd[off:off + 49152] + bytes([i & 255]) * 16384)
        i += 1
    return b"".join(parts)[:n]
files = {}
for j, b in enumerate(["nvidia-cdi-hook", "nvidia-container-runtime",
                       "nvidia-container-runtime-hook", "nvidia-container-cli", "nvidia-ctk"]):
    files[f"usr/bin/{b}"] = blob(4 << 20, j)
files["etc/nvidia-container-runtime/config.toml"] = b"[nvidia-container-cli]\n"
files[f"{lib}/libnvidia-container.so.1.17.8"] = blob(8 << 20, 99)
rest = 500 * (1 << 20) - sum(map(len, files.values()))
for k in range(36):
    files[f"usr/share/nvidia/firmware/blob-{k:02d}.bin"] = blob(rest // 36, 100 + k)
links = {f"{lib}/libnvidia-container.so.1": "libnvidia-container.so.1.17.8",
         f"{lib}/libnvidia-container.so": "libnvidia-container.so.1"}
manifest = {"schema_version": 1, "bundle_name": "openshell-gpu-runtime-bundle",
            "bundle_version": "0.1.0", "architecture": "amd64",
            "created_at": "2026-03-18T12:34:56Z",
            "components": {"nvidia_container_toolkit": {"version": "1.17.8", "commit": "0" * 40},
                           "libnvidia_container": {"version": "1.17.8", "commit": "1" * 40}},
            "files": [{"path": p, "entry_type": "file", "sha256": hashlib.sha256(d).hexdigest(),
                       "size": len(d)} for p, d in files.items()] +
                     [{"path": p, "entry_type": "symlink", "target": t} for p, t in links.items()]}
tmp = out + ".tmp"
with tarfile.open(tmp, "w:gz", compresslevel=1) as t:
    def add(name, data=None, link=None):
        ti = tarfile.TarInfo(f"{top}/{name}" if name else top)
        ti.mode = 0o755
        if link is not None:
            ti.type, ti.linkname = tarfile.SYMTYPE, link
            t.addfile(ti)
        elif data is None:
            ti.type = tarfile.DIRTYPE
            t.addfile(ti)
        else:
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    add("")
    for p, d in files.items():
        add(p, d)
    for p, l in links.items():
        add(p, link=l)
    add("manifest.json", json.dumps(manifest, indent=2).encode())
os.rename(tmp, out)
PY
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/hoist-bench-bundle.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The reference way: extract, hash every file, check the manifest in python3,
# move the checked tree into the stage.
pipeline() {
  local extract=$work/extract stage=$work/pipe-stage
  rm -rf "$extract" "$stage"
  mkdir -p "$extract" "$stage"
  tar -xzf "$tarball" -C "$extract"
  local entries=("$extract"/* "$extract"/.[!.]*)
  local top=
  for e in "${entries[@]}"; do [ -e "$e" ] && { [ -z "$top" ] || return 1; top=$e; }; done
  [ -d "$top" ] || return 1
  (cd "$top" && find . \( -type f -o -type l \) ! -name manifest.json -printf '%y %p\n' \
    > "$work/list" && find . -type f ! -path ./manifest.json -print0 | xargs -0 sha256sum \
    > "$work/sums")
  python3 - "$top" "$work/sums" "$work/list" <<'PY'
import json, os, sys
root, sums, listing = sys.argv[1:4]
m = json.load(open(os.path.join(root, "manifest.json")))
for k in ("schema_version", "bundle_name", "bundle_version", "architecture", "created_at",
          "components", "files"):
    assert k in m, k
assert m["schema_version"] == 1 and m["architecture"].strip() == "amd64"
for c in ("nvidia_container_toolkit", "libnvidia_container"):
    for f in ("version", "commit"):
        assert m["components"][c][f].strip()
got = {}
for line in open(sums):
    h, p = line.rstrip("\n").split("  ", 1)
    got[p[2:]] = h
listed = set()
for e in m["files"]:
    p = e["path"]
    listed.add(p)
    full = os.path.join(root, p)
    if e["entry_type"] == "file":
        assert got[p] == e["sha256"], p
        assert os.path.getsize(full) == e["size"], p
    else:
        assert os.path.islink(full), p
for line in open(listing):
    assert line.split(" ", 1)[1].rstrip("\n")[2:] in listed
PY
  mv "$top" "$stage/openshell-gpu-runtime-bundle"
}

hoist_stage() {
  "$hoist" bundle stage "$tarball" --arch amd64 --into "$work/hoist-stage" >/dev/null
}

median3() {
  local fn=$1 times=()
  for _ in 1 2 3; do
    sync
    local t0 t1
    t0=$(date +%s.%N)
    $fn
    t1=$(date +%s.%N)
    times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n 2p
}

cat "$tarball" >/dev/null # warm the page cache for both
size=$(stat -c %s "$tarball")
echo "bundle: $tarball ($((size >> 20)) MiB compressed, 500 MiB payload)"
t_pipe=$(median3 pipeline)
rm -rf "$work/extract" "$work/pipe-stage"
t_hoist=$(median3 hoist_stage)
test -f "$work/hoist-stage/amd64/openshell-gpu-runtime-bundle/manifest.json"
printf 'shell pipeline (tar -xzf, sha256sum, python3): %.2f s\n' "$t_pipe"
printf 'hoist bundle stage:                             %.2f s\n' "$t_hoist"
printf 'ratio: %.2fx (hoist bundle stage vs shell pipeline, median of 3)\n' \
  "$(awk -v a="$t_pipe" -v b="$t_hoist" 'BEGIN { print a / b }')"
