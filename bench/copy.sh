#!/usr/bin/env bash
# Copy of a ~1 GiB multi-layer image, hoist vs skopeo, in the same run:
#   registry -> registry (two local registries, so blobs really move)
#   registry -> OCI layout
#   layout -> a new repository of a registry whose other repository holds the
#     blobs (each tool pushed the image there once before, in another process:
#     what it remembers of where blobs live lets it mount instead of upload;
#     hoist's blob-location record, skopeo's blob-info cache)
# Each copy runs 3 times into a fresh destination; the median is reported.
# ratio = skopeo time / hoist time (above 1: hoist is faster).
# Usage: bench/copy.sh path/to/hoist
set -euo pipefail
hoist=$(realpath "${1:?usage: $0 HOIST_BINARY}")
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${HOIST_CACHE:-$HOME/.cache/hoist}/bench
img=$cache/copy-image
layers=${BENCH_LAYERS:-8}
layer_mib=${BENCH_LAYER_MIB:-128}
work=$(mktemp -d /tmp/hoist-bench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# ---- the image, made once: random-ish data in gzip'd tar layers
if [ ! -f "$img/.complete-$layers-$layer_mib" ]; then
  echo "making a $((layers * layer_mib)) MiB image in $img (once)"
  rm -rf "$img"
  mkdir -p "$img"
  python3 - "$img" "$layers" "$layer_mib" <<'EOF'
import hashlib, io, json, os, subprocess, sys, tarfile
img, n, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
blobs = os.path.join(img, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, d), "wb").write(data)
    return "sha256:" + d, len(data)
layers, diffs = [], []
for i in range(n):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        data = os.urandom(mib << 20)
        info = tarfile.TarInfo(f"layer{i}/data.bin")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    tar = raw.getvalue()
    diffs.append("sha256:" + hashlib.sha256(tar).hexdigest())
    gz = subprocess.run(["igzip", "-1", "-c"], input=tar, capture_output=True, check=True).stdout
    d, s = put(gz)
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s})
cfg = json.dumps({"architecture": "amd64", "os": "linux",
                  "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
cd, cs = put(cfg)
m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                "layers": layers}).encode()
md, ms = put(m)
open(os.path.join(img, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "bench"}}]},
          open(os.path.join(img, "index.json"), "w"))
EOF
  touch "$img/.complete-$layers-$layer_mib"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts a registry with storage in $1; sets reg_host to its host:port.
start_registry() {
  local dir=$1 port
  port=$(free_port)
  mkdir -p "$dir"
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
http:
  addr: 127.0.0.1:$port
  secret: bench
EOF
  docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
    sleep 0.05
  done
  reg_host="127.0.0.1:$port"
}

stop_last_registry() {
  local p=${pids[-1]}
  kill "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  unset 'pids[-1]'
}

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }

start_registry "$work/src"
src=$reg_host
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$img:bench" "docker://$src/bench/app:1"

# hoist's record of where blobs live, this run's own (skopeo keeps its cache
# where it always does)
export HOIST_BLOB_LOCATIONS=$work/blob-locations.db
# each tool pushes the image once to a repository of its own, not timed
"$hoist" push -q "oci:$img:bench" "$src/bench/held-by-hoist:1" >/dev/null
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$img:bench" \
  "docker://$src/bench/held-by-skopeo:1"

declare -A times
for run in 1 2 3; do
  for tool in hoist skopeo; do
    # layout -> a new repository of the registry that holds the blobs
    t0=$(now)
    if [ "$tool" = hoist ]; then
      "$hoist" push -q "oci:$img:bench" "$src/bench/mount-$tool-$run:1" >/dev/null
    else
      skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$img:bench" \
        "docker://$src/bench/mount-$tool-$run:1"
    fi
    t1=$(now)
    times[mnt-$tool]+="$(echo "$t1 - $t0" | bc) "
    # registry -> registry, into an empty registry
    start_registry "$work/dst-$tool-$run"
    dst=$reg_host
    t0=$(now)
    if [ "$tool" = hoist ]; then
      "$hoist" copy "$src/bench/app:1" "$dst/bench/app:1" >/dev/null
    else
      skopeo --insecure-policy copy -q --src-tls-verify=false --dest-tls-verify=false \
        "docker://$src/bench/app:1" "docker://$dst/bench/app:1"
    fi
    t1=$(now)
    times[r2r-$tool]+="$(echo "$t1 - $t0" | bc) "
    stop_last_registry
    rm -rf "$work/dst-$tool-$run"
    # registry -> layout, into a fresh directory
    out=$work/layout-$tool-$run
    t0=$(now)
    if [ "$tool" = hoist ]; then
      "$hoist" copy "$src/bench/app:1" "oci:$out:1" >/dev/null
    else
      skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$src/bench/app:1" "oci:$out:1"
    fi
    t1=$(now)
    times[r2l-$tool]+="$(echo "$t1 - $t0" | bc) "
    rm -rf "$out"
  done
done

for k in r2r r2l mnt; do
  # shellcheck disable=SC2086
  h=$(median ${times[$k-hoist]})
  # shellcheck disable=SC2086
  s=$(median ${times[$k-skopeo]})
  case $k in
  r2r) name="registry->registry" ;;
  r2l) name="registry->layout" ;;
  *) name="push, blobs held" ;;
  esac
  printf '%-20s hoist %6.2fs  skopeo %6.2fs  (runs: hoist %s| skopeo %s)\n' "$name" "$h" "$s" \
    "${times[$k-hoist]}" "${times[$k-skopeo]}"
  printf 'ratio: copy %s skopeo/hoist = %.2f\n' "$name" "$(echo "$s / $h" | bc -l)"
done
