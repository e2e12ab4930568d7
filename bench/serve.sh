#!/usr/bin/env bash
# hoist serve: GET build/status under load (wrk, 64 connections, 10 s), with
# a valid key and an existing job, so every request authenticates (SHA-256 of
# the key, constant-time compare) and reads the job store. Target on a
# 2-core machine: >= 5,000 requests/s, p99 < 10 ms. The same again while 64
# clients follow a running build's log (logs?follow=1): p99 < 10 ms still.
# Prints the figures.
set -euo pipefail
hoist=${1:?usage: bench/serve.sh HOIST_BINARY}
work=${HOIST_CACHE:-$HOME/.cache/hoist}/bench/serve
rm -rf "$work"
mkdir -p "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
key=$("$hoist" token add bench --data "$work/data")
# a registry that accepts connections and never answers: a build pulling from
# it stays in flight
hold=$(free_port)
python3 -c 'import socket,time,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(512); c=[]
while True: c.append(s.accept())' "$hold" &
holdpid=$!
# wrk's 64 connections and 64 followers come from one address
cat >"$work/serve.json" <<EOF
{"allowed_sources": ["127.0.0.1:9/none/*", "127.0.0.1:$hold/base/*"],
 "max_connections_per_address": 512}
EOF
"$hoist" serve --listen "127.0.0.1:$port" --data "$work/data" --workers 1 \
  --config "$work/serve.json" 2>"$work/serve.log" &
pid=$!
trap 'kill $pid $holdpid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.05
done
# one job (its source does not exist: it fails at once, and stays in the store)
id=$(curl -sf -H "authorization: $key" -d '{"source":"127.0.0.1:9/none/base:1","target":"bench:t","kind":"python"}' \
  "http://127.0.0.1:$port/system/api/v1/build/start" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
url="http://127.0.0.1:$port/system/api/v1/build/status?id=$id"
curl -sf -H "authorization: $key" "$url" >/dev/null
auth="Basic $(printf %s "$key" | base64 -w0)"
out=$(wrk -t1 -c64 -d10s --latency -H "authorization: $auth" "$url")
echo "$out"
rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
if [ -n "$non2xx" ]; then
  echo "serve: $non2xx answers were not 200" >&2
  exit 1
fi
echo "status: ${rps} requests/s, p99 ${p99} (64 connections)"

# a burst of identical build/start requests while their build is in flight:
# each is answered with the running job (its source is the registry that
# never answers)
followers=()
trap 'kill $pid $holdpid "${followers[@]}" 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
body="{\"source\":\"127.0.0.1:$hold/base/busybox:1\",\"target\":\"bench:burst\",\"kind\":\"python\",\"file\":\"Zmxhc2sK\"}"
first=$(curl -sf -H "authorization: $key" -d "$body" "http://127.0.0.1:$port/system/api/v1/build/start")

# status again while 64 clients follow the in-flight build's log
running=$(echo "$first" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
# the server's read-only opens of the job's log: its followers (its worker
# has the log open for writing)
readers() {
  local n=0 fd
  for fd in $(find /proc/$pid/fd -lname "*/jobs/$1/log" -printf '%f\n' 2>/dev/null); do
    [ $((0$(awk '/^flags:/ {print $2}' /proc/$pid/fdinfo/$fd 2>/dev/null) & 3)) -eq 0 ] && n=$((n + 1))
  done
  echo $n
}
for _ in $(seq 64); do
  curl -sN -H "authorization: $key" -o /dev/null \
    "http://127.0.0.1:$port/system/api/v1/build/logs?id=$running&follow=1" &
  followers+=($!)
done
for _ in $(seq 200); do # each follower holds the log open
  [ "$(readers "$running")" -ge 64 ] && break
  sleep 0.05
done
attached=$(readers "$running")
out=$(wrk -t1 -c64 -d10s --latency -H "authorization: $auth" "$url")
echo "$out" | tail -9
frps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
fp99=$(echo "$out" | awk '$1 == "99%" {print $2}')
non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
if [ -n "$non2xx" ]; then
  echo "serve: $non2xx answers were not 200 with followers" >&2
  exit 1
fi
echo "status with $attached followers: ${frps} requests/s, p99 ${fp99} (64 connections)"
echo "status p99: ${p99} with 0 followers, ${fp99} with $attached followers"
if [ "$attached" -lt 64 ] || awk -v r="$frps" 'BEGIN { exit !(r < 1) }'; then
  echo "serve: $attached of 64 followers attached, $frps status answers/s beside them" >&2
  exit 1
fi
kill "${followers[@]}" 2>/dev/null || true
wait "${followers[@]}" 2>/dev/null || true
followers=()
cat >"$work/start.lua" <<EOL
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["authorization"] = "$auth"
wrk.headers["content-type"] = "application/json"
EOL
out=$(wrk -t1 -c64 -d5s --latency -s "$work/start.lua" "http://127.0.0.1:$port/system/api/v1/build/start")
echo "$out" | tail -9
rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
jobs=$(curl -sf -H "authorization: $key" "http://127.0.0.1:$port/system/api/v1/builds" |
  python3 -c 'import json,sys; print(sum(1 for b in json.load(sys.stdin)["builds"] if b["target"] == "bench:burst"))')
echo "start (in-flight job shared): ${rps} requests/s, p99 ${p99} (64 connections; jobs made: $jobs)"
