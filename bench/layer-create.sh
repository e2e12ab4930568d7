#!/usr/bin/env bash
# Layer creation over ~1 GiB of real files (a copy of /usr/lib/x86_64-linux-gnu):
#   hoist layer create            (tar -> sha256 -> igzip -1 on every core -> sha256 -> file)
#   hoist layer create --compress-threads 1   (the same with one compressing thread)
#   tar -cf - | igzip -1 | sha256sum   (the peer: no diffID, no file, one core for igzip)
#   buildah from scratch + add + commit to an oci: layout (vfs, chroot isolation)
# The contenders take turns in every round (never all runs of one, then the
# next), so a change in the machine's load hits them alike; the load average
# is printed before and after; every run starts after a sync. Three rounds,
# medians reported, and the ratio both of the medians and round by round.
# BUILDAH=0 leaves buildah out.
set -euo pipefail

HOIST=${1:?usage: layer-create.sh PATH/TO/hoist}
HOIST=$(readlink -f "$HOIST")
CACHE=${HOIST_CACHE:-$HOME/.cache/hoist}/bench
TREE=$CACHE/layer-tree
CAP=$((1024 * 1024 * 1024))
RUNS=${RUNS:-3}
BUILDAH=${BUILDAH:-1}

mkdir -p "$CACHE"
if [ ! -f "$TREE/.complete" ]; then
  echo "building $TREE (~1 GiB copy of /usr/lib/x86_64-linux-gnu)"
  rm -rf "$TREE"
  mkdir -p "$TREE"
  total=0
  # deterministic choice of files: sorted paths, stop at the cap
  while IFS= read -r -d '' f; do
    sz=$(stat -c %s "$f")
    if [ $((total + sz)) -gt $CAP ]; then continue; fi
    total=$((total + sz))
    rel=${f#/usr/lib/x86_64-linux-gnu/}
    mkdir -p "$TREE/$(dirname "$rel")"
    cp -a "$f" "$TREE/$rel"
  done < <(find /usr/lib/x86_64-linux-gnu -type f -print0 | sort -z)
  touch "$TREE/.complete"
fi
echo "tree: $(du -sh --apparent-size "$TREE" | cut -f1), $(find "$TREE" | wc -l) entries"

WORK=$(mktemp -d "$CACHE/run.XXXXXX")
cleanup() {
  buildah rm --all --storage-driver vfs --root "$WORK/storage" --runroot "$WORK/run" \
    >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }

# warm the page cache so every contender reads from memory
tar -cf - -C "$TREE" . >/dev/null

run_hoist() {
  "$HOIST" layer create "$TREE" -o "$WORK/layer.tar.gz" >"$WORK/hoist.out"
}
run_hoist1() {
  "$HOIST" layer create "$TREE" -o "$WORK/layer1.tar.gz" --compress-threads 1 >"$WORK/hoist1.out"
}
run_pipe() {
  tar -cf - -C "$TREE" . | igzip -1 | sha256sum >/dev/null
}
run_buildah() {
  local b=(--storage-driver vfs --root "$WORK/storage" --runroot "$WORK/run")
  local ctr
  ctr=$(buildah "${b[@]}" from --isolation chroot scratch)
  buildah "${b[@]}" add "$ctr" "$TREE" /data >/dev/null
  buildah "${b[@]}" commit --quiet "$ctr" "oci:$WORK/buildah-oci:bench" >/dev/null
  buildah "${b[@]}" rm "$ctr" >/dev/null
}
# not timed: buildah's storage and output between runs
reset_buildah() {
  buildah rm --all --storage-driver vfs --root "$WORK/storage" --runroot "$WORK/run" \
    >/dev/null 2>&1 || true
  rm -rf "$WORK/buildah-oci" "$WORK/storage" "$WORK/run"
}

contenders=(hoist hoist1 pipe)
[ "$BUILDAH" = 0 ] || contenders+=(buildah)
echo "cores: $(nproc); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -a T_HOIST T_HOIST1 T_PIPE T_BUILDAH
for i in $(seq "$RUNS"); do
  for who in "${contenders[@]}"; do
    # not timed: the last run's output is removed and the disk caught up,
    # so neither its unlink nor its writeback lands on this run
    case $who in
    hoist) rm -f "$WORK/layer.tar.gz" ;;
    hoist1) rm -f "$WORK/layer1.tar.gz" ;;
    esac
    sync
    s=$(now)
    "run_$who"
    e=$(now)
    t=$(echo "$e - $s" | bc -l)
    [ "$who" = buildah ] && reset_buildah
    case $who in
    hoist) T_HOIST+=("$t") ;;
    hoist1) T_HOIST1+=("$t") ;;
    pipe) T_PIPE+=("$t") ;;
    buildah) T_BUILDAH+=("$t") ;;
    esac
    printf 'run %d %-8s %.2fs\n' "$i" "$who" "$t"
  done
done

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
h=$(median "${T_HOIST[@]}")
h1=$(median "${T_HOIST1[@]}")
p=$(median "${T_PIPE[@]}")
cat "$WORK/hoist.out"
# the blob does not depend on the number of compressing threads
cmp -s "$WORK/layer.tar.gz" "$WORK/layer1.tar.gz" || echo "DIFFERENT BLOBS with 1 thread and $(nproc)"
tar_size=$(gzip -dc "$WORK/layer.tar.gz" | wc -c)
printf 'blob: %d bytes of %d (%.4f)\n' "$(stat -c %s "$WORK/layer.tar.gz")" "$tar_size" \
  "$(echo "$(stat -c %s "$WORK/layer.tar.gz") / $tar_size" | bc -l)"
printf 'hoist layer create:             %.2fs (median of %d)\n' "$h" "$RUNS"
printf 'hoist, 1 compression thread:    %.2fs\n' "$h1"
printf 'tar | igzip -1 | sha256sum:     %.2fs\n' "$p"
# each round's hoist run against the pipeline's run next to it: a drift in
# the machine's speed over the rounds moves both alike
paired=()
for i in "${!T_HOIST[@]}"; do paired+=("$(echo "${T_HOIST[$i]} / ${T_PIPE[$i]}" | bc -l)"); done
printf 'ratio of the medians: hoist/tar-igzip-pipeline = %.2f\n' "$(echo "$h / $p" | bc -l)"
printf 'ratio, median of the rounds: hoist/tar-igzip-pipeline = %.2f (target <= 0.45)\n' \
  "$(median "${paired[@]}")"
if [ "$BUILDAH" != 0 ]; then
  b=$(median "${T_BUILDAH[@]}")
  printf 'buildah add + commit:           %.2fs\n' "$b"
  printf 'ratio: buildah/hoist = %.2f (target >= 3.00)\n' "$(echo "$b / $h" | bc -l)"
fi
