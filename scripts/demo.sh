#!/usr/bin/env bash
# make demo: hoist's main job end to end.
set -euo pipefail
hoist=$(realpath "${1:-build/src/cli/hoist}")
"$hoist" --version

work=$(mktemp -d /tmp/hoist-demo-XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
step() { printf '\n== %s\n' "$*"; }

step "an OCI image layout with two images (made with umoci)"
umoci init --layout layout
umoci new --image layout:base
umoci unpack --rootless --image layout:base bundle >/dev/null
echo "hello from the demo" >bundle/rootfs/hello.txt
umoci repack --image layout:app bundle
umoci config --image layout:app --config.cmd /bin/sh --config.env GREETING=hi \
  --config.workingdir /srv --config.label org.example.demo=yes
umoci gc --layout layout
echo "made oci:layout with tags base and app"

step "hoist ls oci:layout"
"$hoist" ls oci:layout

step "hoist inspect oci:layout:app"
"$hoist" inspect oci:layout:app

step "untag base (umoci rm), then hoist gc oci:layout"
umoci rm --image layout:base
"$hoist" gc oci:layout
"$hoist" ls oci:layout
