#!/usr/bin/env bash
# make demo, part 2: the deployer service on loopback. A registry and
# `hoist serve` start on free ports, a token is made, a busybox base with a
# /bin/extend goes to the registry, and `hoist service send` builds an image
# through the service's API and prints the pushed image's digest.
set -euo pipefail
hoist=$(realpath "${1:-build/src/cli/hoist}")
work=$(mktemp -d /tmp/hoist-demo-serve-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
step() { printf '\n== %s\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

step "a registry on loopback"
rport=$(free_port)
cat >registry.yml <<EOC
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$rport, secret: demo}
EOC
docker-registry serve registry.yml >registry.log 2>&1 &
pids+=($!)
wait_port "$rport"
echo "127.0.0.1:$rport"

step "a base image: busybox with a /bin/extend that records the requirements"
mkdir -p base/bin base/etc base/tmp
cp /bin/busybox base/bin/busybox
ln -s busybox base/bin/sh
ln -s busybox base/bin/cat
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >base/etc/passwd
printf '#!/bin/sh\necho "extend: installing $(cat /tmp/requirements.txt)"\ncp /tmp/requirements.txt /installed.txt\n' >base/bin/extend
chmod 755 base/bin/extend
"$hoist" append scratch --target "127.0.0.1:$rport/base/busybox:demo" --layer base \
  --created-by "demo base"

step "hoist serve on loopback, and a key for the user demo"
sport=$(free_port)
echo "{\"registry_host\": \"127.0.0.1:$rport\", \"allowed_sources\": [\"127.0.0.1:$rport/base/*\"]}" >serve.json
"$hoist" serve --listen "127.0.0.1:$sport" --data data --config serve.json --workers 2 \
  2>serve.log &
pids+=($!)
wait_port "$sport"
key=$("$hoist" service token add demo --data data)
printf 'AUTH=%s\nAPIHOST=http://127.0.0.1:%s\n' "$key" "$sport" >wskprops
echo "uuid ${key%%:*} (the key is printed once)"

step "hoist service send: build demo:py through the API and follow its log"
echo "flask==3.0" >requirements.txt
image=$(WSK_CONFIG_FILE=wskprops "$hoist" service send --source "127.0.0.1:$rport/base/busybox:demo" \
  --target demo:py --kind python --file requirements.txt | tee /dev/stderr | tail -1)
echo "pushed: $image"

step "the service's view: hoist service images list-images demo"
WSK_CONFIG_FILE=wskprops "$hoist" service images list-images demo
