#!/usr/bin/env bash
# hoist serve on one PostgreSQL with two replicas, against one replica on
# SQLite, in the same run and on the same machine:
#
#   status      GET build/status of an existing job under load (wrk, 10 s,
#               64 connections: all on the SQLite replica; 32 on each
#               PostgreSQL replica at once): requests/s and p99;
#   throughput  1,000 trivial jobs (re-tags: a base from the registry pushed
#               under a new tag, no requirements file) queued at once
#               (alternating replicas), timed from the first start to the
#               last job done; --workers 4 per replica.
#
# PostgreSQL is a throwaway one (Debian's postgresql 15, initdb in the work
# dir, fsync off, loopback); the registry is docker-registry on loopback.
# Aim: PostgreSQL within 2x of SQLite on status p99, and above it on job
# throughput. Prints the figures and the ratios.
set -euo pipefail
hoist=${1:?usage: bench/serve-replicas.sh HOIST_BINARY}
SRC=$(cd "$(dirname "$0")/.." && pwd)
work=${HOIST_CACHE:-$HOME/.cache/hoist}/bench/serve-replicas
JOBS=${JOBS:-1000}
PG_BIN=/usr/lib/postgresql/15/bin
[ -x "$PG_BIN/postgres" ] || { echo "serve-replicas: $PG_BIN/postgres missing (apt-get install postgresql)" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work"
chmod 755 "$work"
pids=()
# PostgreSQL's directory where its user (postgres, when run as root) can reach it
pgdir=$(mktemp -d /tmp/hoist-bench-pg-XXXXXX)
chmod 755 "$pgdir"
pgdata=$pgdir/data
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  if [ -f "$pgdata/postmaster.pid" ]; then
    kill -INT "$(head -1 "$pgdata/postmaster.pid")" 2>/dev/null || true
    for _ in $(seq 100); do [ -f "$pgdata/postmaster.pid" ] || break; sleep 0.1; done
  fi
  rm -rf "$pgdir"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

# --- registry, with the base
reg_port=$(free_port)
reg=127.0.0.1:$reg_port
cat >"$work/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: $reg, secret: bench}
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
wait_port "$reg_port"
bash "$SRC/tests/fixtures/busybox-image.sh" "$hoist" "$work/bb" latest
"$hoist" copy "oci:$work/bb:latest" "$reg/base/busybox:1" >/dev/null

# --- PostgreSQL
[ "$(id -u)" = 0 ] && chown postgres "$pgdir"
pg_port=$(free_port)
as_pg "$PG_BIN/initdb" -D "$pgdata" -U hoist --auth=trust -E UTF8 --no-sync --no-instructions >/dev/null
as_pg "$PG_BIN/postgres" -D "$pgdata" -k "$pgdir" -p "$pg_port" -c listen_addresses=127.0.0.1 \
  -c fsync=off -c synchronous_commit=off -c full_page_writes=off >"$work/postgres.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do
  psql -X -q -h 127.0.0.1 -p "$pg_port" -U hoist -d postgres -c 'SELECT 1' >/dev/null 2>&1 && break
  sleep 0.05
done

# --- the services: one on SQLite, two on PostgreSQL (each its data directory,
# one tokens file); a store of each kind for each measure
cat >"$work/serve.json" <<EOF
{"registry_host": "$reg", "allowed_sources": ["$reg/base/*"], "per_user_queue": 100000,
 "per_user_limit": 8, "max_connections_per_address": 512}
EOF
key=$("$hoist" service token add bench --data "$work/sqlite")
for d in pg-a pg-b; do mkdir -p "$work/$d" && cp "$work/sqlite/tokens.json" "$work/$d/"; done
serve() { # NAME PORT [--db URL]: starts a replica
  local name=$1 port=$2
  shift 2
  "$hoist" serve --listen "127.0.0.1:$port" --data "$work/$name" --workers 4 \
    --config "$work/serve.json" "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return 0; sleep 0.05; done
  echo "serve-replicas: $name did not start: $(tail -3 "$work/$name.log")" >&2
  return 1
}
psql -X -q -h 127.0.0.1 -p "$pg_port" -U hoist -d postgres -c 'CREATE DATABASE hoist'
db=postgres://hoist@127.0.0.1:$pg_port/hoist
sq=$(free_port)
pa=$(free_port)
pb=$(free_port)
serve sqlite "$sq"
serve pg-a "$pa" --db "$db" ${PG_THREADS:+--threads $PG_THREADS}
serve pg-b "$pb" --db "$db" ${PG_THREADS:+--threads $PG_THREADS}
auth="Basic $(printf %s "$key" | base64 -w0)"
api=/system/api/v1

# --- status
job_on() { # PORT: a finished job's id
  curl -sf -H "authorization: $key" -d "{\"source\":\"$reg/base/busybox:1\",\"target\":\"bench:status\",\"kind\":\"python\"}" \
    "http://127.0.0.1:$1$api/build/start" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}
wrk_status() { # PORT ID CONNECTIONS OUT
  wrk -t1 -c"$3" -d10s --latency -H "authorization: $auth" "http://127.0.0.1:$1$api/build/status?id=$2" >"$4"
}
ms() { # a wrk latency (us, ms, s) in ms
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[^m]s$/) n *= 1000; printf "%.2f", n }'
}
field() { awk -v k="$2" '$1 == k {print $2}' "$1"; }
non2xx() { if grep -q Non-2xx "$1"; then echo "serve-replicas: answers not 200: $(grep Non-2xx "$1")" >&2; exit 1; fi; }
sid=$(job_on "$sq")
pid_=$(job_on "$pa")
wrk_status "$sq" "$sid" 64 "$work/wrk-sqlite"
non2xx "$work/wrk-sqlite"
wrk_status "$pa" "$pid_" 32 "$work/wrk-pg-a" &
w1=$!
wrk_status "$pb" "$pid_" 32 "$work/wrk-pg-b" &
w2=$!
wait $w1 $w2
non2xx "$work/wrk-pg-a"
non2xx "$work/wrk-pg-b"
sq_rps=$(field "$work/wrk-sqlite" Requests/sec:)
sq_p99=$(ms "$(field "$work/wrk-sqlite" 99%)")
pg_rps=$(echo "$(field "$work/wrk-pg-a" Requests/sec:) + $(field "$work/wrk-pg-b" Requests/sec:)" | bc -l)
a99=$(ms "$(field "$work/wrk-pg-a" 99%)")
b99=$(ms "$(field "$work/wrk-pg-b" 99%)")
pg_p99=$(awk -v a="$a99" -v b="$b99" 'BEGIN { print (a > b ? a : b) }')

# --- throughput: JOBS re-tags queued at once, first start to last done
throughput() { # PORT... : jobs per second
  python3 - "$key" "$reg" "$JOBS" "$@" <<'EOF'
import http.client, json, sys, time
key, reg, n, ports = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
conns = [http.client.HTTPConnection("127.0.0.1", int(p), timeout=60) for p in ports]
def call(i, method, path, body=None):
    c = conns[i % len(conns)]
    c.request(method, path, body=body, headers={"authorization": key})
    r = c.getresponse()
    return r.status, r.read()
def succeeded(i):
    st, text = call(i, "GET", "/metrics")
    for line in text.decode().splitlines():
        if line.startswith('hoist_builds{state="succeeded"}'):
            return int(float(line.split()[1]))
    return 0
base = succeeded(0)
t0 = time.monotonic()
for i in range(n):
    st, r = call(i, "POST", "/system/api/v1/build/start",
                 json.dumps({"source": f"{reg}/base/busybox:1", "target": f"bench:t{i}-{t0}",
                             "kind": "python"}))
    assert st == 200, r
while True:
    st, text = call(0, "GET", "/metrics")
    counts = {l.split('"')[1]: float(l.split()[1]) for l in text.decode().splitlines()
              if l.startswith("hoist_builds{")}
    if counts.get("failed", 0) > 0:
        sys.exit(f"serve-replicas: {counts['failed']:.0f} jobs failed")
    if counts.get("succeeded", 0) - base >= n:
        break
    time.sleep(0.05)
print(f"{n / (time.monotonic() - t0):.1f}")
EOF
}
sq_tput=$(throughput "$sq")
pg_tput=$(throughput "$pa" "$pb")

echo "status, 1 replica on SQLite:       ${sq_rps} requests/s, p99 ${sq_p99} ms (64 connections)"
echo "status, 2 replicas on PostgreSQL:  ${pg_rps} requests/s, p99 ${pg_p99} ms (32 + 32 connections)"
echo "throughput, 1 replica on SQLite:      ${sq_tput} jobs/s ($JOBS re-tags, 4 workers)"
echo "throughput, 2 replicas on PostgreSQL: ${pg_tput} jobs/s ($JOBS re-tags, 4 + 4 workers)"
awk -v a="$pg_p99" -v b="$sq_p99" -v r1="$pg_rps" -v r2="$sq_rps" -v t1="$pg_tput" -v t2="$sq_tput" 'BEGIN {
  printf "ratios (PostgreSQL / SQLite): status p99 %.2fx (aim <= 2), status requests/s %.2fx, job throughput %.2fx (aim > 1)\n", a / b, r1 / r2, t1 / t2 }'
