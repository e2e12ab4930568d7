#!/usr/bin/env bash
# Benchmark: the multi-arch image step of runtime bundles, in the same run:
#   hoist:   hoist bundle publish (verify + stage both bundles, one layer per
#            arch on the base's image of that arch, TAG-ARCH pushes, the index)
#   buildah: the same flow the reference way: tar -xzf of each bundle, then
#            buildah from --arch, buildah copy of the runtime files, commit,
#            push TAG-ARCH, buildah manifest create/add/push
# against a local registry holding a two-arch busybox base. Each bundle
# carries ${BENCH_LIB_MIB:-64} MiB of libraries. Median of 3 runs, each into a
# fresh repository; ratio = buildah time / hoist time (above 1: hoist is faster).
# Usage: bench/bundle-publish.sh path/to/hoist
set -euo pipefail
hoist=$(realpath "${1:?usage: $0 path/to/hoist}")
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${HOIST_CACHE:-$HOME/.cache/hoist}/bench/bundle-publish
lib_mib=${BENCH_LIB_MIB:-64}
mkdir -p "$cache"
work=$(mktemp -d "${TMPDIR:-/tmp}/hoist-bench-publish.XXXXXX")
reg_pid=
cleanup() {
  [ -n "$reg_pid" ] && { kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; }
  buildah "${bopts[@]}" rm --all >/dev/null 2>&1 || true
  rm -rf "$work"
}
bopts=(--root "$work/buildah/root" --runroot "$work/buildah/run" --storage-driver vfs)
trap cleanup EXIT

# ---- the bundles, made once (the contract's valid bundle, bigger libraries)
for arch in amd64 arm64; do
  tb=$cache/openshell-gpu-runtime-bundle_0.1.0_${arch}-${lib_mib}M.tar.gz
  [ -s "$tb" ] && continue
  echo "making the $arch bundle ($lib_mib MiB of libraries) in $cache (once)" >&2
  PYTHONPATH=$root/tests/integration python3 - "$tb" "$arch" "$lib_mib" <<'PY'
import os, sys
from bundlefixture import Bundle
out, arch, mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
b = Bundle(arch)
lib = f"{b.lib}/libnvidia-container.so.1.17.8"
b.payload[lib] = ("file", os.urandom(mib << 20), 0o755)
b.manifest = b.make_manifest()
b.build(out + ".tmp")
os.rename(out + ".tmp", out)
PY
done
tarball() { echo "$cache/openshell-gpu-runtime-bundle_0.1.0_$1-${lib_mib}M.tar.gz"; }

# ---- a registry with the base: busybox-static per arch (cached by the tests),
# else the host's busybox labelled with the arch
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
mkdir -p "$work/registry"
cat >"$work/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry/data
http:
  addr: 127.0.0.1:$port
  secret: bench
EOF
docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
reg_pid=$!
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
reg=127.0.0.1:$port
for arch in amd64 arm64; do
  tree=$work/tree-$arch
  mkdir -p "$tree/bin"
  bb=${HOIST_CACHE:-$HOME/.cache/hoist}/fixtures/busybox-static/$arch/bin/busybox
  [ -f "$bb" ] || bb=$(command -v busybox)
  cp "$bb" "$tree/bin/busybox"
  "$hoist" append scratch --target "oci:$work/bases:$arch" --layer "$tree" \
    --platform "linux/$arch" >/dev/null
  "$hoist" copy "oci:$work/bases:$arch" "$reg/base:$arch" >/dev/null
done
"$hoist" index create "$reg/base:multi" "$reg/base:amd64" "$reg/base:arm64" >/dev/null

run=0
hoist_publish() {
  run=$((run + 1))
  "$hoist" bundle publish --base "$reg/base:multi" --target "$reg/hoist$run/cluster:0.1.0" \
    --bundle "amd64=$(tarball amd64)" --bundle "arm64=$(tarball arm64)" >/dev/null
}

buildah_publish() {
  run=$((run + 1))
  local target=$reg/buildah$run/cluster:0.1.0 list=list$run
  buildah "${bopts[@]}" manifest create "$list" >/dev/null
  for arch in amd64 arm64; do
    local x=$work/extract-$arch libdir
    [ "$arch" = amd64 ] && libdir=x86_64-linux-gnu || libdir=aarch64-linux-gnu
    rm -rf "$x" && mkdir -p "$x"
    tar -xzf "$(tarball "$arch")" -C "$x"
    local b=("$x"/*)
    local ctr
    ctr=$(buildah "${bopts[@]}" from -q --tls-verify=false --arch "$arch" --os linux \
      "docker://$reg/base:multi")
    buildah "${bopts[@]}" copy "$ctr" "$b"/usr/bin/nvidia-cdi-hook "$b"/usr/bin/nvidia-container-runtime \
      "$b"/usr/bin/nvidia-container-runtime-hook "$b"/usr/bin/nvidia-container-cli \
      "$b"/usr/bin/nvidia-ctk /usr/bin/ >/dev/null
    buildah "${bopts[@]}" copy "$ctr" "$b"/etc/nvidia-container-runtime \
      /etc/nvidia-container-runtime/ >/dev/null
    buildah "${bopts[@]}" copy "$ctr" "$b/usr/lib/$libdir/" "/usr/lib/$libdir/" >/dev/null
    buildah "${bopts[@]}" commit -q "$ctr" "img-$run-$arch" >/dev/null
    buildah "${bopts[@]}" push -q --tls-verify=false "img-$run-$arch" "docker://$target-$arch"
    buildah "${bopts[@]}" manifest add --tls-verify=false "$list" "docker://$target-$arch" >/dev/null
    buildah "${bopts[@]}" rm "$ctr" >/dev/null
  done
  buildah "${bopts[@]}" manifest push -q --tls-verify=false --all "$list" "docker://$target"
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

cat "$(tarball amd64)" "$(tarball arm64)" >/dev/null # warm the page cache for both
echo "bundles: 2 x $lib_mib MiB of libraries; base: busybox for linux/amd64 and linux/arm64"
t_hoist=$(median3 hoist_publish)
t_buildah=$(median3 buildah_publish)
# both made a two-platform index
for who in hoist buildah; do
  skopeo inspect --tls-verify=false --raw "docker://$reg/${who}1/cluster:0.1.0" |
    python3 -c 'import json,sys; m=json.load(sys.stdin); assert len(m["manifests"])==2, m'
done
printf 'buildah (tar -xzf, from, copy, commit, push, manifest): %.2f s\n' "$t_buildah"
printf 'hoist bundle publish:                                   %.2f s\n' "$t_hoist"
printf 'ratio: %.2fx (hoist bundle publish vs buildah, median of 3)\n' \
  "$(awk -v a="$t_buildah" -v b="$t_hoist" 'BEGIN { print a / b }')"
