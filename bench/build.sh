#!/usr/bin/env bash
# hoist build vs buildah (from + run --isolation chroot + commit + push), same
# registry (docker-registry on loopback), same base, same step:
#   (a) busybox base, a one-line shell step (the base's /bin/extend, which
#       hoist runs instead of a recipe and buildah runs with `buildah run`);
#   (b) the Debian base (tests/fixtures/debian-image.sh), pip install of a
#       wheel from a PEP 503 index served on loopback;
#   (c) hoist's rebuild with identical inputs (build cache hit);
#   (d) the same rebuild with an empty local cache (a fresh pod, another
#       replica), the layer found in a registry build cache (--cache-from).
# The base is local for both after one untimed warm-up run (buildah's storage,
# hoist's image store and rootfs cache); hoist runs with --no-cache in (a) and
# (b). Three runs each, median reported, ratios printed (buildah / hoist).
set -euo pipefail
shopt -s inherit_errexit

HOIST=${1:?usage: build.sh PATH/TO/hoist}
HOIST=$(readlink -f "$HOIST")
SRC=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${HOIST_CACHE:-$HOME/.cache/hoist}/bench
RUNS=${RUNS:-3}
mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/build.XXXXXX")
BUILDAH=(buildah --root "$CACHE/buildah-root" --runroot "$WORK/buildah-run" --storage-driver overlay)
export HOIST_IMAGES=$WORK/images
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "${BUILDAH[@]}" rm --all >/dev/null 2>&1 || true
  "${BUILDAH[@]}" rmi --prune >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- registry
REG_PORT=$(free_port)
REG=127.0.0.1:$REG_PORT
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $WORK/registry}}
http: {addr: $REG, secret: bench}
EOF
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
pids+=($!)

# --- pip index with one wheel
mkdir -p "$WORK/pypi/simple/benchpkg" "$WORK/pypi/packages"
python3 - "$WORK/pypi" <<'EOF'
import base64, hashlib, sys, zipfile
root = sys.argv[1]
name, ver = "benchpkg", "1.0"
whl = f"{name}-{ver}-py3-none-any.whl"
files = {f"{name}/__init__.py": b"VALUE = 1\n",
         f"{name}-{ver}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {ver}\n".encode(),
         f"{name}-{ver}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
rec = []
with zipfile.ZipFile(f"{root}/packages/{whl}", "w") as z:
    for n, d in files.items():
        z.writestr(n, d)
        rec.append(f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}")
    rec.append(f"{name}-{ver}.dist-info/RECORD,,")
    z.writestr(f"{name}-{ver}.dist-info/RECORD", "\n".join(rec) + "\n")
h = hashlib.sha256(open(f"{root}/packages/{whl}", "rb").read()).hexdigest()
open(f"{root}/simple/{name}/index.html", "w").write(f'<a href="../../packages/{whl}#sha256={h}">{whl}</a>\n')
EOF
PIP_PORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$WORK/pypi" "$PIP_PORT" >/dev/null 2>&1 &
pids+=($!)
INDEX=http://127.0.0.1:$PIP_PORT/simple/
for _ in $(seq 100); do
  curl -fs "http://$REG/v2/" >/dev/null && curl -fs "$INDEX" >/dev/null && break
  sleep 0.1
done

# --- bases in the registry
bash "$SRC/tests/fixtures/busybox-image.sh" "$HOIST" "$WORK/bb" latest
mkdir -p "$WORK/ext"
printf '#!/bin/sh\necho hello > /hello\n' >"$WORK/ext/extend"
chmod 755 "$WORK/ext/extend"
"$HOIST" append "oci:$WORK/bb:latest" --target "$REG/bench/busybox:ext" \
  --map "$WORK/ext/extend:/bin/extend" >/dev/null
bash "$SRC/tests/fixtures/debian-image.sh" "$HOIST" "$WORK/deb" bookworm
"$HOIST" copy "oci:$WORK/deb:bookworm" "$REG/bench/debian:bookworm" >/dev/null
echo "benchpkg==1.0" >"$WORK/requirements.txt"
echo "x" >"$WORK/none.txt"

# time_runs NAME CMD... : median wall time of RUNS runs (after one warm-up)
time_runs() {
  local name=$1
  shift
  "$@" >/dev/null 2>"$WORK/last.log" || { cat "$WORK/last.log" >&2; return 1; }
  local times=() t0 t1
  for _ in $(seq "$RUNS"); do
    t0=$(now)
    "$@" >/dev/null 2>"$WORK/last.log" || { cat "$WORK/last.log" >&2; return 1; }
    t1=$(now)
    times+=("$(echo "$t1 - $t0" | bc -l)")
  done
  local m
  m=$(median "${times[@]}")
  printf '%-34s median %7.3fs  (runs: %s)\n' "$name" "$m" "${times[*]}" >&2
  echo "$m"
}

PIP_ENV=(PIP_INDEX_URL="$INDEX" PIP_NO_CACHE_DIR=1 PIP_BREAK_SYSTEM_PACKAGES=1
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore)

# buildah's side of (a) and (b): from + (copy) + run + commit + push
buildah_busybox() {
  local c
  c=$("${BUILDAH[@]}" from --tls-verify=false --pull=missing "docker://$REG/bench/busybox:ext")
  "${BUILDAH[@]}" run --isolation chroot "$c" -- /bin/extend
  "${BUILDAH[@]}" commit --quiet "$c" bench-a >/dev/null
  "${BUILDAH[@]}" push --tls-verify=false bench-a "docker://$REG/bench/out-buildah:a"
  "${BUILDAH[@]}" rm "$c" >/dev/null
}
buildah_debian() {
  local c e=()
  for kv in "${PIP_ENV[@]}"; do e+=(--env "$kv"); done
  c=$("${BUILDAH[@]}" from --tls-verify=false --pull=missing "docker://$REG/bench/debian:bookworm")
  "${BUILDAH[@]}" copy "$c" "$WORK/requirements.txt" /tmp/requirements.txt >/dev/null
  "${BUILDAH[@]}" run --isolation chroot "${e[@]}" "$c" -- \
    python3 -m pip install -r /tmp/requirements.txt
  "${BUILDAH[@]}" commit --quiet "$c" bench-b >/dev/null
  "${BUILDAH[@]}" push --tls-verify=false bench-b "docker://$REG/bench/out-buildah:b"
  "${BUILDAH[@]}" rm "$c" >/dev/null
}

ha=$(time_runs "(a) hoist build busybox" "$HOIST" build --source "$REG/bench/busybox:ext" \
  --kind python --file "$WORK/none.txt" --target "$REG/bench/out-hoist:a" --no-cache \
  --cache-dir "$WORK/bcache")
ba=$(time_runs "(a) buildah busybox" buildah_busybox)
hb=$(time_runs "(b) hoist build debian pip" "$HOIST" build --source "$REG/bench/debian:bookworm" \
  --kind python --file "$WORK/requirements.txt" --pip-index-url "$INDEX" \
  --target "$REG/bench/out-hoist:b" --no-cache --cache-dir "$WORK/bcache")
bb=$(time_runs "(b) buildah debian pip" buildah_debian)
hc=$(time_runs "(c) hoist build cache hit" "$HOIST" build --source "$REG/bench/debian:bookworm" \
  --kind python --file "$WORK/requirements.txt" --pip-index-url "$INDEX" \
  --target "$REG/bench/out-hoist:b" --cache-dir "$WORK/bcache")
# (d): the registry cache filled once; each run starts with an empty build cache
"$HOIST" build --source "$REG/bench/debian:bookworm" --kind python --file "$WORK/requirements.txt" \
  --pip-index-url "$INDEX" --target "$REG/bench/out-hoist:b" --cache-dir "$WORK/bcache-fill" \
  --cache-to "$REG/bench/build-cache" --no-cache >/dev/null 2>"$WORK/last.log" ||
  { cat "$WORK/last.log" >&2; exit 1; }
regcache_hit() {
  local d
  d=$(mktemp -d "$WORK/bcache-empty.XXXXXX")
  "$HOIST" build --source "$REG/bench/debian:bookworm" --kind python \
    --file "$WORK/requirements.txt" --pip-index-url "$INDEX" --target "$REG/bench/out-hoist:d" \
    --cache-dir "$d" --cache-from "$REG/bench/build-cache" 2>"$d.log"
  grep -q "in $REG/bench/build-cache: layer" "$d.log" ||
    { echo "(d) was not a registry cache hit:" >&2; cat "$d.log" >&2; return 1; }
}
hd=$(time_runs "(d) hoist registry cache hit" regcache_hit)

printf 'ratio: (a) busybox one-line step: buildah / hoist = %.2f (target >= 2)\n' \
  "$(echo "$ba / $ha" | bc -l)"
printf 'ratio: (b) debian pip install: buildah / hoist = %.2f (target >= 2)\n' \
  "$(echo "$bb / $hb" | bc -l)"
printf 'ratio: (c) cache-hit rebuild %.0f ms (target < 100 ms); buildah (b) / hoist (c) = %.1f\n' \
  "$(echo "$hc * 1000" | bc -l)" "$(echo "$bb / $hc" | bc -l)"
printf 'ratio: (d) registry cache hit, empty local cache %.0f ms (target < 300 ms); hoist (b) / (d) = %.1f\n' \
  "$(echo "$hd * 1000" | bc -l)" "$(echo "$hb / $hd" | bc -l)"
