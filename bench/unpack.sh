#!/usr/bin/env bash
# Unpacking a ~1 GiB image (a copy of /usr/lib/x86_64-linux-gnu packed by umoci
# into an OCI layout, one gzip layer):
#   hoist unpack oci:L:img DEST            vs  umoci unpack --image L:img BUNDLE
#   hoist unpack --no-chown oci:L:img DEST vs  umoci unpack --rootless ...
# Three runs each, median reported, ratios printed (umoci time / hoist time).
#
# Then, against GNU tar (`igzip -dc LAYER | tar -x -C DEST`, a fresh directory,
# as root it applies owners too), runs alternating hoist and tar on two images:
#   lib    the ~1 GiB image above (large files)
#   share  /usr/share in one gzip layer (~66,000 small files, written by hoist)
# ratios printed as hoist time / tar time (target: share <= 0.7).
# CASES=umoci,tar (default both) picks the parts.
set -euo pipefail
shopt -s inherit_errexit

HOIST=${1:?usage: unpack.sh PATH/TO/hoist}
HOIST=$(readlink -f "$HOIST")
CACHE=${HOIST_CACHE:-$HOME/.cache/hoist}/bench
LAYOUT=$CACHE/unpack-image
CAP=$((1024 * 1024 * 1024))
RUNS=${RUNS:-3}
CASES=${CASES:-umoci,tar}
SHARE=$CACHE/unpack-share

mkdir -p "$CACHE"
if [ ! -f "$LAYOUT/.complete" ]; then
  echo "building $LAYOUT (~1 GiB of /usr/lib/x86_64-linux-gnu packed with umoci)"
  rm -rf "$LAYOUT" "$CACHE/unpack-bundle"
  umoci init --layout "$LAYOUT"
  umoci new --image "$LAYOUT:base"
  umoci unpack --rootless --image "$LAYOUT:base" "$CACHE/unpack-bundle" >/dev/null
  # deterministic choice of files and symlinks: sorted paths, stop at the cap
  python3 - "$CACHE/unpack-bundle/rootfs/usr/lib/x86_64-linux-gnu" "$CAP" <<'EOF'
import os, shutil, sys
src, dst, cap = "/usr/lib/x86_64-linux-gnu", sys.argv[1], int(sys.argv[2])
total = 0
for dirpath, dirnames, filenames in sorted(os.walk(src)):
    dirnames.sort()
    for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
        p = os.path.join(dirpath, name)
        st = os.lstat(p)
        if total + st.st_size > cap:
            continue
        rel = os.path.relpath(p, src)
        os.makedirs(os.path.join(dst, os.path.dirname(rel)), exist_ok=True)
        if os.path.islink(p):
            os.symlink(os.readlink(p), os.path.join(dst, rel))
        elif os.path.isfile(p):
            shutil.copy2(p, os.path.join(dst, rel))
            total += st.st_size
EOF
  umoci repack --image "$LAYOUT:img" "$CACHE/unpack-bundle"
  rm -rf "$CACHE/unpack-bundle"
  touch "$LAYOUT/.complete"
fi
echo "image: $(du -sh --apparent-size "$LAYOUT/blobs" | cut -f1) of blobs"
if [[ $CASES == *tar* && ! -f "$SHARE/.complete" ]]; then
  echo "building $SHARE (/usr/share in one gzip layer)"
  rm -rf "$SHARE"
  "$HOIST" append scratch --target "oci:$SHARE:img" --map /usr/share:/usr/share >/dev/null
  touch "$SHARE/.complete"
fi

WORK=$(mktemp -d "$CACHE/run.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }

# warm the page cache so every contender reads the blobs from memory
cat "$LAYOUT"/blobs/sha256/* >/dev/null
[ ! -d "$SHARE" ] || cat "$SHARE"/blobs/sha256/* >/dev/null

# time_runs NAME CMD... : the command gets the destination as its last argument
time_runs() {
  local name=$1
  shift
  local times=()
  for _ in $(seq "$RUNS"); do
    rm -rf "$WORK/dest"
    sync
    local t0 t1
    t0=$(now)
    "$@" "$WORK/dest" >/dev/null
    t1=$(now)
    times+=("$(echo "$t1 - $t0" | bc -l)")
  done
  rm -rf "$WORK/dest"
  local m
  m=$(median "${times[@]}")
  printf '%-28s median %6.2fs  (runs: %s)\n' "$name" "$m" "${times[*]}" >&2
  echo "$m"
}

# the largest blob of a layout: its one layer
layer_of() { find "$1/blobs/sha256" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2; }

tar_x() {
  mkdir "$2"
  igzip -dc "$1" | tar -x -C "$2"
}

# alternate NAME LAYOUT: hoist unpack and igzip|tar, one after the other, RUNS
# times; prints both medians and the ratio
alternate() {
  local name=$1 layout=$2 blob ht=() tt=() t0 t1
  blob=$(layer_of "$layout")
  for _ in $(seq "$RUNS"); do
    rm -rf "$WORK/dest"
    sync
    t0=$(now)
    "$HOIST" unpack "oci:$layout:img" "$WORK/dest" >/dev/null
    t1=$(now)
    ht+=("$(echo "$t1 - $t0" | bc -l)")
    rm -rf "$WORK/dest"
    sync
    t0=$(now)
    tar_x "$blob" "$WORK/dest"
    t1=$(now)
    tt+=("$(echo "$t1 - $t0" | bc -l)")
  done
  rm -rf "$WORK/dest"
  local h t
  h=$(median "${ht[@]}")
  t=$(median "${tt[@]}")
  printf '%-6s hoist unpack median %6.2fs (runs: %s)\n' "$name" "$h" "${ht[*]}"
  printf '%-6s igzip|tar -x median %6.2fs (runs: %s)\n' "$name" "$t" "${tt[*]}"
  printf '%-6s ratio: hoist / tar = %.2f\n' "$name" "$(echo "$h / $t" | bc -l)"
}

if [[ $CASES == *umoci* ]]; then
  h_root=$(time_runs "hoist unpack" "$HOIST" unpack "oci:$LAYOUT:img")
  u_root=$(time_runs "umoci unpack" umoci unpack --image "$LAYOUT:img")
  h_rl=$(time_runs "hoist unpack --no-chown" "$HOIST" unpack --no-chown "oci:$LAYOUT:img")
  u_rl=$(time_runs "umoci unpack --rootless" umoci unpack --rootless --image "$LAYOUT:img")

  printf 'ratio: umoci unpack / hoist unpack = %.2f (target >= 2)\n' "$(echo "$u_root / $h_root" | bc -l)"
  printf 'ratio: umoci unpack --rootless / hoist unpack --no-chown = %.2f (target >= 2)\n' \
    "$(echo "$u_rl / $h_rl" | bc -l)"
fi

if [[ $CASES == *tar* ]]; then
  echo "load: $(uptime)"
  alternate lib "$LAYOUT"
  alternate share "$SHARE"
  echo "load: $(uptime)"
fi
