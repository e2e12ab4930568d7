#!/usr/bin/env bash
# How hoist's cost grows: each row is one piece of work at two sizes, hoist's
# wall time and peak memory (maximum resident set) at each, and the ratio of
# the times. The size grows 10x in every row, so a linear cost gives a time
# ratio near 10 and flat memory; a ratio well above 10, or memory that grows
# with the size where it should not, is a defect.
#
#   layer create      a tree of 100,000 vs 1,000,000 small files
#   layer create      1 GiB vs 10 GiB of data (64 MiB files): memory must stay flat
#   unpack            an image of 20 vs 200 layers
#   gc                a layout of 10,000 vs 100,000 reachable blobs
#   serve status      GET /build/status with 10,000 vs 100,000 jobs in the store
#                     (1,000 requests; memory: the server's)
#   deploy --dry-run  the no-op check on 100,000 vs 1,000,000 files
#
# SCALE=0.01 runs every row at a hundredth of its sizes (a check of the script).
# The inputs are cached under $HOIST_CACHE/bench/growth (the large ones take
# minutes to make, and 10 GiB of disk for the largest tree); RUNS runs each
# (default 1), median reported.
set -euo pipefail
shopt -s inherit_errexit

HOIST=${1:?usage: bench/growth.sh PATH/TO/hoist}
HOIST=$(readlink -f "$HOIST")
STORE_TOOL=$(dirname "$HOIST")/../../tests/unit/store_tool
SCALE=${SCALE:-1}
RUNS=${RUNS:-1}
CACHE=${HOIST_CACHE:-$HOME/.cache/hoist}/bench/growth-$SCALE
mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/run.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

scaled() { python3 -c "import sys; print(max(1, int(float(sys.argv[1]) * float(sys.argv[2]))))" "$1" "$SCALE"; }
median() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }

# measure CMD... : "SECONDS KIB" of the median run (by time) of RUNS runs
measure() {
  local best=() line
  for _ in $(seq "$RUNS"); do
    line=$(/usr/bin/time -f '%e %M' "$@" 2>&1 >/dev/null | tail -1)
    best+=("$line")
  done
  printf '%s\n' "${best[@]}" | sort -g | sed -n "$(((${#best[@]} + 1) / 2))p"
}

ROWS=()
# ONLY="files bytes layers gc serve deploy" picks rows (default: all)
want() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }
# row NAME SMALL_LABEL "T1 M1" BIG_LABEL "T2 M2"
row() {
  local name=$1 a=$2 b=$4 t1 m1 t2 m2
  read -r t1 m1 <<<"$3"
  read -r t2 m2 <<<"$5"
  ROWS+=("$(printf '| %s | %s: %.2f s, %d MiB | %s: %.2f s, %d MiB | %.1f |' "$name" "$a" "$t1" \
    $((m1 / 1024)) "$b" "$t2" $((m2 / 1024)) "$(echo "$t2 / $t1" | bc -l)")")
  echo "${ROWS[-1]}" >&2
}

# ------------------------------------------------------------ layer create, files
files_tree() { # DIR N: N files of 100 bytes, 1,000 a directory
  [ -f "$1.complete" ] && return
  rm -rf "$1"
  python3 - "$1" "$2" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"d{i // 1000:05d}")
    if i % 1000 == 0:
        os.makedirs(d)
    with open(os.path.join(d, f"f{i % 1000:03d}"), "w") as f:
        f.write(f"{i:099d}\n")
EOF
  touch "$1.complete"
}
n1=$(scaled 100000)
n2=$(scaled 1000000)
files_tree "$CACHE/files-$n1" "$n1"
files_tree "$CACHE/files-$n2" "$n2"
# not timed: each tree read once, so both sizes start from the page cache (a
# tree made in an earlier run may have left it)
warm() { tar -cf - -C "$1" . | cat >/dev/null; }
want files && row "layer create, files" \
  "$n1" "$(warm "$CACHE/files-$n1" && measure "$HOIST" layer create "$CACHE/files-$n1" -o "$WORK/l.tgz")" \
  "$n2" "$(warm "$CACHE/files-$n2" && measure "$HOIST" layer create "$CACHE/files-$n2" -o "$WORK/l.tgz")"
rm -f "$WORK/l.tgz"

# ------------------------------------------------------------ layer create, bytes
bytes_tree() { # DIR MIB: files of 64 MiB (the last one smaller), incompressible
  [ -f "$1.complete" ] && return
  rm -rf "$1"
  python3 - "$1" "$2" <<'EOF'
import os, sys
root, mib = sys.argv[1], int(sys.argv[2])
os.makedirs(root)
block = os.urandom(1 << 20)
i = 0
while mib > 0:
    n = min(64, mib)
    with open(os.path.join(root, f"blob{i:04d}"), "wb") as f:
        for k in range(n):
            f.write(block[k:] + block[:k])  # each MiB differs: no long repeats
    mib -= n
    i += 1
EOF
  touch "$1.complete"
}
g1=$(scaled 1024)
g2=$(scaled 10240)
bytes_tree "$CACHE/bytes-$g1" "$g1"
bytes_tree "$CACHE/bytes-$g2" "$g2"
want bytes && row "layer create, bytes" "$g1 MiB" "$(measure "$HOIST" layer create "$CACHE/bytes-$g1" -o "$WORK/b.tgz")" \
  "$g2 MiB" "$(measure "$HOIST" layer create "$CACHE/bytes-$g2" -o "$WORK/b.tgz")"
rm -f "$WORK/b.tgz"

# ------------------------------------------------------------ unpack, layers
layers_image() { # LAYOUT N: an image of N layers, each a few files
  [ -f "$1.complete" ] && return
  rm -rf "$1" "$1.src"
  local prev="scratch" i
  for i in $(seq "$2"); do
    mkdir -p "$1.src/$i/layer$i"
    printf 'layer %s\n' "$i" >"$1.src/$i/layer$i/file"
    printf 'shared %s\n' "$i" >"$1.src/$i/shared"
    "$HOIST" append "$prev" --target "oci:$1:img" --layer "$1.src/$i" >/dev/null
    prev="oci:$1:img"
  done
  rm -rf "$1.src"
  touch "$1.complete"
}
l1=$(scaled 20)
l2=$(scaled 200)
[ "$l1" -lt 2 ] && l1=2
[ "$l2" -lt 20 ] && l2=20
layers_image "$CACHE/layers-$l1" "$l1"
layers_image "$CACHE/layers-$l2" "$l2"
unpack_fresh() { rm -rf "$WORK/u"; "$HOIST" unpack "oci:$1:img" "$WORK/u"; }
export -f unpack_fresh
export HOIST WORK
want layers && row "unpack, layers" "$l1" "$(measure bash -c "unpack_fresh $CACHE/layers-$l1")" \
  "$l2" "$(measure bash -c "unpack_fresh $CACHE/layers-$l2")"
rm -rf "$WORK/u"

# ------------------------------------------------------------ gc, blobs
gc_layout() { # DIR N: N reachable layer blobs under five tags (as bench/gc.sh)
  rm -rf "$1"
  python3 - "$1" "$2" <<'EOF'
import hashlib, json, os, sys
root, n = sys.argv[1], int(sys.argv[2])
blobs = os.path.join(root, "blobs", "sha256")
os.makedirs(blobs)
def put(data):
    h = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, h), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + h, "size": len(data)}
lmt = "application/vnd.oci.image.layer.v1.tar"
layers = [dict(put(b"layer %d\n" % i), mediaType=lmt) for i in range(n)]
tags, per = [], (n + 4) // 5
for t in range(5):
    part = layers[t * per:(t + 1) * per]
    cfg = put(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": [l["digest"] for l in part]}}).encode())
    cfg["mediaType"] = "application/vnd.oci.image.config.v1+json"
    m = put(json.dumps({"schemaVersion": 2, "mediaType":
                        "application/vnd.oci.image.manifest.v1+json", "config": cfg,
                        "layers": part}).encode())
    m["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    m["annotations"] = {"org.opencontainers.image.ref.name": "t%d" % t}
    tags.append(m)
for i in range(n // 10):
    put(b"garbage %d\n" % i)
json.dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
           "manifests": tags}, open(os.path.join(root, "index.json"), "w"))
open(os.path.join(root, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
EOF
}
b1=$(scaled 10000)
b2=$(scaled 100000)
gc_layout "$WORK/gc1" "$b1"
gc_layout "$WORK/gc2" "$b2"
# one run each: gc removes the garbage it is timed on
want gc && row "gc, blobs" "$b1" "$(RUNS=1 measure "$HOIST" gc --min-age 0 "oci:$WORK/gc1")" \
  "$b2" "$(RUNS=1 measure "$HOIST" gc --min-age 0 "oci:$WORK/gc2")"
rm -rf "$WORK/gc1" "$WORK/gc2"

# ------------------------------------------------------------ serve status, jobs
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# serve_status N: "SECONDS KIB" for 1,000 status requests, the server's peak memory
serve_status() {
  local data=$WORK/serve-$1 port pid key id
  mkdir -p "$data/jobs"
  # ended jobs, as a store that has served for a while holds (none left for the
  # worker), enqueued a thousand at a time as a service's queue would see them
  local done=0 n
  while [ "$done" -lt "$1" ]; do
    n=$(($1 - done < 1000 ? $1 - done : 1000))
    "$STORE_TOOL" enqueue "sqlite:$data/jobs.db" "$data" "$n" 100 >/dev/null
    python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE jobs SET state='succeeded' WHERE state='queued'\"); c.commit()" "$data/jobs.db"
    done=$((done + n))
  done
  key=$("$HOIST" service token add u0 --data "$data")
  id=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT id FROM jobs WHERE user='u0' LIMIT 1\").fetchone()[0])" "$data/jobs.db")
  port=$(free_port)
  "$HOIST" serve --listen "127.0.0.1:$port" --data "$data" --workers 1 \
    --db "sqlite:$data/jobs.db" >"$data/serve.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  python3 - "$port" "$key" "$id" "$pid" <<'EOF'
import http.client, sys, time
port, key, job, pid = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
for _ in range(200):
    try:
        c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=5)
        c.request("GET", "/healthz")
        if c.getresponse().status == 200:
            break
    except OSError:
        time.sleep(0.05)
t0 = time.monotonic()
c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
for _ in range(1000):
    c.request("GET", f"/system/api/v1/build/status?id={job}", headers={"authorization": key})
    r = c.getresponse()
    r.read()
    assert r.status == 200, r.status
took = time.monotonic() - t0
hwm = [l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM")][0]
print(f"{took:.3f} {hwm}")
EOF
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -rf "$data"
}
if ! want serve; then
  :
elif [ -x "$STORE_TOOL" ]; then
  j1=$(scaled 10000)
  j2=$(scaled 100000)
  row "serve status, jobs" "$j1" "$(serve_status "$j1")" "$j2" "$(serve_status "$j2")"
else
  echo "serve status: $STORE_TOOL is not built (meson's tests); row left out" >&2
fi

# ------------------------------------------------------------ deploy no-op, files
deploy_repo() { # DIR N: a git repository of N files, one component
  [ -f "$1.complete" ] && return
  rm -rf "$1"
  files_tree "$1" "$2"
  rm -f "$1.complete"
  printf '[component.all]\npaths = ["d*"]\nsteps = ["true"]\n' >"$1/hoist-deploy.toml"
  (
    cd "$1"
    git init -q
    git add -A
    git -c gc.auto=0 -c user.name=bench -c user.email=bench@localhost commit -qm tree
    sleep 1.1 # past the index's racy-clean window
    git update-index -q --refresh --force-write-index
  )
  touch "$1.complete"
}
f1=$(scaled 100000)
f2=$(scaled 1000000)
deploy_repo "$CACHE/repo-$f1" "$f1"
deploy_repo "$CACHE/repo-$f2" "$f2"
for n in "$f1" "$f2"; do
  (cd "$CACHE/repo-$n" && "$HOIST" deploy --all --state "$WORK/state-$n" >/dev/null)
done
noop() { cd "$1" && "$HOIST" deploy --dry-run --state "$2"; }
export -f noop
want deploy && row "deploy --dry-run, files" "$f1" "$(measure bash -c "noop $CACHE/repo-$f1 $WORK/state-$f1")" \
  "$f2" "$(measure bash -c "noop $CACHE/repo-$f2 $WORK/state-$f2")"

echo
echo "| work | small | 10x | time ratio |"
echo "|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
