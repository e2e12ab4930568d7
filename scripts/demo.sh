#!/usr/bin/env bash
# make demo: hoist's main job end to end, with no daemon and no other image tool:
# build an image into an OCI layout from scratch, inspect it, unpack it, collect garbage.
set -euo pipefail
hoist=$(realpath "${1:-build/src/cli/hoist}")
"$hoist" --version

work=$(mktemp -d /tmp/hoist-demo-XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
step() { printf '\n== %s\n' "$*"; }

step "a base image from scratch: busybox as one layer"
mkdir -p base/bin base/etc
cp /bin/busybox base/bin/busybox
ln -s busybox base/bin/sh
echo "root:x:0:0:root:/root:/bin/sh" >base/etc/passwd
"$hoist" append scratch --target oci:layout:base --layer base --created-by "busybox base"

step "the app image: base + one layer with the app"
mkdir -p app/srv
echo "hello from the demo" >app/srv/hello.txt
"$hoist" append oci:layout:base --target oci:layout:app --layer app --created-by "add app"

step "hoist ls oci:layout"
"$hoist" ls oci:layout

step "hoist inspect oci:layout:app"
"$hoist" inspect oci:layout:app

step "hoist unpack oci:layout:app rootfs (both layers applied, digests verified)"
"$hoist" unpack oci:layout:app rootfs
cat rootfs/srv/hello.txt
ls -l rootfs/bin

step "an independent reader agrees: umoci ls --layout layout"
umoci ls --layout layout

step "replace the base tag with a new image; hoist gc removes the old base's blobs"
"$hoist" append scratch --target oci:layout:base --layer app --created-by "replaced"
"$hoist" gc --min-age 0 oci:layout
"$hoist" ls oci:layout
