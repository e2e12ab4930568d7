#!/usr/bin/env bash
# Benchmark: one shell command in a busybox image, with changes thrown away:
# `hoist run` against buildah (from + run with chroot isolation + rm), in the
# same run. The image is in both tools' stores before timing starts (hoist's
# rootfs cache, buildah's containers storage). Prints the median of 3 runs of
# each and the ratio.
# Usage: bench/run.sh path/to/hoist
set -euo pipefail
hoist=$(realpath "${1:?usage: $0 path/to/hoist}")
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${HOIST_CACHE:-$HOME/.cache/hoist}/bench/run
mkdir -p "$cache"
layout=$cache/layout
RUNS=3
script='echo hello > /tmp/x; rm -f /bin/vi; cat /etc/passwd >/dev/null'

bash "$root/tests/fixtures/busybox-image.sh" "$hoist" "$layout" bench
"$hoist" unpack --cache "oci:$layout:bench" >/dev/null
image=localhost/hoist-bench-run:latest
skopeo copy -q "oci:$layout:bench" "containers-storage:$image" >/dev/null

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }

time_runs() {
  local name=$1
  shift
  local times=()
  for _ in $(seq "$RUNS"); do
    local t0 t1
    t0=$(now)
    "$@" >/dev/null
    t1=$(now)
    times+=("$(echo "$t1 - $t0" | bc -l)")
  done
  local m
  m=$(median "${times[@]}")
  printf '%-34s median %6.3fs  (runs: %s)\n' "$name" "$m" "${times[*]}" >&2
  echo "$m"
}

buildah_run() {
  local ctr
  ctr=$(buildah from --pull=never "$image")
  buildah run --isolation chroot "$ctr" -- sh -c "$script"
  buildah rm "$ctr" >/dev/null
}

h=$(time_runs "hoist run" "$hoist" run "oci:$layout:bench" -- sh -c "$script")
hn=$(time_runs "hoist run --network none" "$hoist" run --network none "oci:$layout:bench" -- \
  sh -c "$script")
b=$(time_runs "buildah from + run (chroot) + rm" buildah_run)

printf 'ratio: buildah from+run+rm / hoist run = %.2f\n' "$(echo "$b / $h" | bc -l)"
printf 'ratio: buildah from+run+rm / hoist run --network none = %.2f\n' "$(echo "$b / $hn" | bc -l)"
