#!/usr/bin/env bash
# The no-op check of an incremental deploy on a repository of 100,000 files in
# 5,000 directories (three components covering all of it, a clean tree):
#   hoist deploy --dry-run   vs  the reference's approach in shell (git diff,
#                                git ls-files --others, git ls-tree, sha256sum)
# Both compute the same fingerprints and print the no-op message. Three runs
# each, median reported, ratio printed (shell time / hoist time). hoist
# answers from its stat cache (written by the deploy before); its full
# computation, with no cache, is timed too.
set -euo pipefail
shopt -s inherit_errexit

HOIST=${1:?usage: deploy.sh PATH/TO/hoist}
HOIST=$(readlink -f "$HOIST")
CACHE=${HOIST_CACHE:-$HOME/.cache/hoist}/bench
REPO=$CACHE/deploy-repo
RUNS=${RUNS:-3}

mkdir -p "$CACHE"
if [ ! -f "$CACHE/deploy-repo.complete" ]; then
  echo "building $REPO (100,000 files in 5,000 directories)"
  rm -rf "$REPO"
  mkdir -p "$REPO"
  python3 - "$REPO" <<'EOF'
import os, sys
root = sys.argv[1]
# 2,000 directories for the gateway, 2,000 for the supervisor, 999 for the
# chart and proto/: 5,000 directories of 20 files each
tops = [("server", 2000), ("sandbox", 2000), ("chart", 999)]
for top, ndirs in tops:
    for d in range(ndirs):
        dd = os.path.join(root, top, f"m{d // 100:02d}", f"d{d:04d}")
        os.makedirs(dd, exist_ok=True)
        for i in range(20):
            with open(os.path.join(dd, f"f{i:02d}.rs"), "w") as f:
                f.write(f"// {top} {d} {i}\npub fn f{i}() -> u32 {{ {d * 20 + i} }}\n")
os.makedirs(os.path.join(root, "proto"))
for i in range(20):
    with open(os.path.join(root, "proto", f"p{i:02d}.proto"), "w") as f:
        f.write(f"syntax = \"proto3\"; // {i}\n")
with open(os.path.join(root, "Cargo.toml"), "w") as f:
    f.write("[workspace]\n")
with open(os.path.join(root, ".gitignore"), "w") as f:
    f.write("target/\n")
with open(os.path.join(root, "hoist-deploy.toml"), "w") as f:
    f.write('''[component.gateway]
paths = ["Cargo.toml", "proto/*", "server/*"]
steps = ["true"]
triggers = ["helm"]

[component.supervisor]
paths = ["Cargo.toml", "proto/*", "sandbox/*"]
steps = ["true"]

[component.helm]
paths = ["chart/*"]
steps = ["true"]
''')
EOF
  (
    cd "$REPO"
    git init -q
    git add -A
    git -c gc.auto=0 -c user.name=bench -c user.email=bench@localhost commit -qm "bench tree"
    git gc -q
    # index entries as new as the index itself are "racily clean" and get
    # re-hashed by every reader: wait, then rewrite the index
    sleep 1.1
    git update-index -q --refresh --force-write-index
  )
  echo "$(git -C "$REPO" ls-files | wc -l) files, $(find "$REPO" -mindepth 1 -type d -not -path '*/.git*' | wc -l) directories"
  touch "$CACHE/deploy-repo.complete"
fi

WORK=$(mktemp -d "$CACHE/run.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# The reference's approach as a script: the same fingerprints as hoist's
# (committed ls-tree lines, then "path:<sha256|__MISSING__>" per changed file)
# compared with the same state file.
cat >"$WORK/reference.sh" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
state=$1
declare -A paths=(
  [gateway]="Cargo.toml proto server"
  [supervisor]="Cargo.toml proto sandbox"
  [helm]="chart"
)
changed=$(
  {
    git diff --name-only --no-renames
    git diff --name-only --no-renames --cached
    git ls-files --others --exclude-standard
  } | sort -u
)
fingerprint() {
  local -a specs
  read -r -a specs <<<"${paths[$1]}"
  {
    git ls-tree -r HEAD -- "${specs[@]}"
    if [ -n "$changed" ]; then
      local re
      re="^($(printf '%s|' "${specs[@]}" | sed 's/|$//'))(/|$)"
      grep -E "$re" <<<"$changed" | while IFS= read -r f; do
        if [ -f "$f" ]; then
          echo "$f:$(sha256sum <"$f" | cut -d' ' -f1)"
        else
          echo "$f:__MISSING__"
        fi
      done
    fi
  } | sha256sum | cut -d' ' -f1
}
any=0
for c in gateway supervisor helm; do
  fp=$(fingerprint "$c")
  old=$(sed -n "s/^$c=//p" "$state")
  if [ "$fp" != "$old" ]; then
    echo "$c changed"
    any=1
  fi
done
[ "$any" = 1 ] || echo "No new local changes since last deploy."
EOF
chmod +x "$WORK/reference.sh"

STATE=$WORK/state
(cd "$REPO" && "$HOIST" deploy --all --state "$STATE" >/dev/null)

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }

# time_one CMD... : runs in the repository, must print the no-op message;
# prints "WALL CPU" (CPU = user + system seconds of the command and its children)
time_one() {
  local t0 t1 out
  t0=$(now)
  out=$(cd "$REPO" && /usr/bin/time -f '%U %S' -o "$WORK/cpu" "$@")
  t1=$(now)
  if [ "$out" != "No new local changes since last deploy." ]; then
    echo "$1: expected the no-op message, got: $out" >&2
    exit 1
  fi
  echo "$(echo "$t1 - $t0" | bc -l) $(awk '{print $1 + $2}' "$WORK/cpu")"
}

# warm the page cache and git's own caches for both
(cd "$REPO" && git status --porcelain >/dev/null)

# the two alternate, so both see the same load on the machine
h_wall=() h_cpu=() s_wall=() s_cpu=()
for _ in $(seq "$RUNS"); do
  read -r w c < <(time_one "$HOIST" deploy --dry-run --state "$STATE")
  h_wall+=("$w") h_cpu+=("$c")
  read -r w c < <(time_one "$WORK/reference.sh" "$STATE")
  s_wall+=("$w") s_cpu+=("$c")
done
# the full computation hoist falls back to when its stat cache is missing
# or stale (the cache is removed before each run, and rewritten by it)
f_wall=()
for _ in $(seq "$RUNS"); do
  rm -f "$REPO/.git/hoist-deploy.cache"
  read -r w c < <(time_one "$HOIST" deploy --dry-run --state "$STATE")
  f_wall+=("$w")
done
f=$(median "${f_wall[@]}")
h=$(median "${h_wall[@]}")
s=$(median "${s_wall[@]}")
hc=$(median "${h_cpu[@]}")
sc=$(median "${s_cpu[@]}")
printf '%-24s median %6.3fs wall, %6.3fs cpu  (wall runs: %s)\n' "hoist deploy --dry-run" \
  "$h" "$hc" "${h_wall[*]}"
printf '%-24s median %6.3fs wall, %6.3fs cpu  (wall runs: %s)\n' "shell reference" \
  "$s" "$sc" "${s_wall[*]}"
printf '%-24s median %6.3fs wall                (wall runs: %s)\n' "hoist, no stat cache" \
  "$f" "${f_wall[*]}"
printf 'hoist no-op check: %.3fs (target < 0.5s)\n' "$h"
printf 'ratio: shell reference / hoist deploy --dry-run = %.2f (wall; target >= 3)\n' \
  "$(echo "$s / $h" | bc -l)"
printf 'ratio: shell reference / hoist deploy --dry-run = %.2f (cpu time)\n' \
  "$(echo "$sc / $hc" | bc -l)"
printf 'ratio: shell reference / hoist with no stat cache = %.2f (wall)\n' \
  "$(echo "$s / $f" | bc -l)"
