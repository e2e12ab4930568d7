#!/usr/bin/env bash
# Runs every fuzz target in BUILD/fuzz for SECONDS on a scratch copy of its
# seed corpus (fuzz/corpus/<name>); fails on the first crash.
set -euo pipefail
build=$1
seconds=${2:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
n=0
for exe in "$build"/fuzz/fuzz_*; do
  [ -f "$exe" ] && [ -x "$exe" ] || continue
  name=$(basename "$exe")
  name=${name#fuzz_}
  work=$(mktemp -d)
  cp -r "$root/fuzz/corpus/$name/." "$work/" 2>/dev/null || true
  if ! "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$work/" "$work" >"$work.log" 2>&1; then
    tail -40 "$work.log"
    echo "fuzz $name: crashed (artifacts in $work)"
    exit 1
  fi
  runs=$(grep -o 'Done [0-9]* runs' "$work.log" | tail -1 || true)
  echo "fuzz $name: ok (${runs:-ran} in ${seconds}s)"
  rm -rf "$work" "$work.log"
  n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "no fuzz targets built"; exit 1; }
