#!/usr/bin/env bash
# Runs every fuzz target in BUILD/fuzz for SECONDS on a scratch copy of its
# seed corpus (fuzz/corpus/<name>), as many at once as there are cores (each
# target still gets its SECONDS); fails if any crashes, showing its log.
set -euo pipefail
build=$1
seconds=${2:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
jobs_max=$(nproc)

# smoke EXE: one target's run; its lines on stdout, status 1 on a crash
smoke() {
  local exe=$1 name work runs
  name=$(basename "$exe")
  name=${name#fuzz_}
  work=$(mktemp -d)
  cp -r "$root/fuzz/corpus/$name/." "$work/" 2>/dev/null || true
  if ! "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$work/" "$work" >"$work.log" 2>&1; then
    tail -40 "$work.log"
    echo "fuzz $name: crashed (artifacts in $work)"
    return 1
  fi
  runs=$(grep -o 'Done [0-9]* runs' "$work.log" | tail -1 || true)
  echo "fuzz $name: ok (${runs:-ran} in ${seconds}s)"
  rm -rf "$work" "$work.log"
}

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
n=0 failed=0
for exe in "$build"/fuzz/fuzz_*; do
  [ -f "$exe" ] && [ -x "$exe" ] || continue
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do
    wait -n || failed=1
  done
  smoke "$exe" >"$out/$(printf %03d "$n")" &
  n=$((n + 1))
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do
  wait -n || failed=1
done
[ "$n" -gt 0 ] || { echo "no fuzz targets built"; exit 1; }
cat "$out"/*
[ "$failed" = 0 ]
