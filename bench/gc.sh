#!/usr/bin/env bash
# hoist gc on a layout of 10,000 and of 100,000 reachable blobs (five tags,
# each a manifest of a fifth of the layers), with a tenth as many unreachable
# blobs to remove. The set of marked digests must keep gc linear: the
# 100,000-blob run may take about 10x the 10,000-blob one, not 100x (target:
# ratio <= 15). Three runs each, median reported; the garbage is put back
# before every run. Prints both times and the ratio.
set -euo pipefail
shopt -s inherit_errexit

HOIST=${1:?usage: bench/gc.sh PATH/TO/hoist}
HOIST=$(readlink -f "$HOIST")
CACHE=${HOIST_CACHE:-$HOME/.cache/hoist}/bench/gc
RUNS=${RUNS:-3}
mkdir -p "$CACHE"

# make_layout DIR N: N layer blobs (tiny: gc reads names, not content), the
# manifests and configs reaching them, index.json; DIR/garbage.txt lists the
# unreachable blobs' contents (N / 10), written back by put_garbage.
make_layout() {
  python3 - "$1" "$2" <<'EOF'
import hashlib, json, os, sys
root, n = sys.argv[1], int(sys.argv[2])
blobs = os.path.join(root, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)
def put(data):
    h = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, h), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + h, "size": len(data)}
layer_mt = "application/vnd.oci.image.layer.v1.tar"
layers = [dict(put(b"layer %d\n" % i), mediaType=layer_mt) for i in range(n)]
tags = []
per = (n + 4) // 5
for t in range(5):
    part = layers[t * per:(t + 1) * per]
    config = put(json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers",
                                        "diff_ids": [l["digest"] for l in part]}}).encode())
    config["mediaType"] = "application/vnd.oci.image.config.v1+json"
    man = put(json.dumps({"schemaVersion": 2,
                          "mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "config": config, "layers": part}).encode())
    man["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    man["annotations"] = {"org.opencontainers.image.ref.name": "t%d" % t}
    tags.append(man)
with open(os.path.join(root, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
               "manifests": tags}, f)
with open(os.path.join(root, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
with open(os.path.join(root, "garbage.txt"), "w") as f:
    f.writelines("garbage %d\n" % i for i in range(n // 10))
EOF
}

put_garbage() {
  python3 - "$1" <<'EOF'
import hashlib, os, sys
root = sys.argv[1]
for line in open(os.path.join(root, "garbage.txt"), "rb"):
    with open(os.path.join(root, "blobs", "sha256", hashlib.sha256(line).hexdigest()), "wb") as f:
        f.write(line)
EOF
}

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }

# time_gc N: median seconds of `hoist gc` on the layout of N blobs
time_gc() {
  local n=$1 dir=$CACHE/layout-$1
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir"
    make_layout "$dir" "$n"
    touch "$dir/.complete"
  fi
  local times=()
  for _ in $(seq "$RUNS"); do
    put_garbage "$dir"
    local t0 t1 out
    t0=$(now)
    out=$("$HOIST" gc --json --min-age 0 "oci:$dir")
    t1=$(now)
    [ "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["removed"])' "$out")" = \
      "$((n / 10))" ] || { echo "gc of $n blobs: $out, expected $((n / 10)) removed" >&2; exit 1; }
    times+=("$(echo "$t1 - $t0" | bc -l)")
  done
  local m
  m=$(median "${times[@]}")
  printf 'hoist gc, %6d blobs: median %7.3fs  (runs: %s)\n' "$n" "$m" "${times[*]}" >&2
  echo "$m"
}

small=$(time_gc 10000)
large=$(time_gc 100000)
printf 'ratio: 100,000 blobs / 10,000 blobs = %.1f (linear: about 10; target <= 15)\n' \
  "$(echo "$large / $small" | bc -l)"
