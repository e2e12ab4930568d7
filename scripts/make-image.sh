#!/bin/bash
# hoist's own image, built by hoist from the files of this machine: `make image`.
#
#   scripts/make-image.sh HOIST_BIN oci:DIR:TAG
#
# One layer on scratch, written with `hoist append scratch --map SRC:DEST`:
#   /usr/bin/hoist                   the binary given
#   /usr/bin/newuidmap, newgidmap    the user namespace's id maps (setuid root, as Debian ships them)
#   /usr/bin/pasta                   the build network (src/lib/sandbox/net.c)
#   their shared libraries           as ldd resolves them, each under its soname, and the loader
#   /lib, /lib64                     Debian's merged-/usr symlinks (the loader's path is /lib64/...)
#   /etc/ssl/certs/ca-certificates.crt   the CA bundle libcurl reads by default
#   /etc/passwd, group, subuid, subgid   root, nobody, and root's subordinate ids for the sandbox
#                                        (1-65535: what a pod with hostUsers: false maps)
#   /tmp                             1777, for the build's temporary files
# and nothing else: no shell, no package manager. The config: linux/amd64, Entrypoint
# ["/usr/bin/hoist"], PATH, the OCI version label. Reproducible: every mtime and `created` are
# SOURCE_DATE_EPOCH (default: the last commit's time), so the same binary and the same Debian
# packages give the same manifest digest.
set -euo pipefail

if [ $# -ne 2 ]; then
	echo "usage: $0 HOIST_BIN oci:DIR:TAG" >&2
	exit 2
fi
bin=$(realpath "$1")
target=$2
arch=$(dpkg --print-architecture)
if [ "$arch" != amd64 ]; then
	echo "make-image: this machine is $arch; the image is made for linux/amd64 from its packages" >&2
	exit 1
fi
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git -C "$(dirname "$0")" log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH

tools=(/usr/bin/newuidmap /usr/bin/newgidmap /usr/bin/pasta)
for t in "${tools[@]}" /etc/ssl/certs/ca-certificates.crt; do
	[ -e "$t" ] || { echo "make-image: $t is missing (make deps)" >&2; exit 1; }
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
ln -s usr/lib "$stage/lib"
ln -s usr/lib64 "$stage/lib64"
mkdir -m 1777 "$stage/tmp"
mkdir -p "$stage/etc"
printf 'root:x:0:0:root:/root:/usr/bin/hoist\nnobody:x:65534:65534:nobody:/nonexistent:/usr/bin/hoist\n' \
	>"$stage/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$stage/etc/group"
printf 'root:1:65535\n' >"$stage/etc/subuid"
printf 'root:1:65535\n' >"$stage/etc/subgid"
chmod 644 "$stage"/etc/*

maps=(--map "$bin:/usr/bin/hoist" --map "$stage/lib:/lib" --map "$stage/lib64:/lib64"
	--map "$stage/tmp:/tmp" --map /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt)
for f in passwd group subuid subgid; do
	maps+=(--map "$stage/etc/$f:/etc/$f")
done
# each tool's file itself: /usr/bin/pasta is a symlink to passt, which runs as pasta by its name
for t in "${tools[@]}"; do
	maps+=(--map "$(realpath "$t"):$t")
done

# Each library ldd names, at its soname under the real (merged-/usr) directory, read through
# its symlinks; sorted, so the argument order never varies.
libs=$(for f in "$bin" "${tools[@]}"; do
	ldd "$f" | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }'
done | sort -u)
for l in $libs; do
	dest="$(realpath "$(dirname "$l")")/$(basename "$l")"
	maps+=(--map "$(realpath "$l"):$dest")
done

version=$("$bin" --version | awk '{ print $2; exit }')
"$bin" append scratch --target "$target" "${maps[@]}" \
	--source-date-epoch "$SOURCE_DATE_EPOCH" --created-by "make image" \
	--os linux --arch amd64 --entrypoint '["/usr/bin/hoist"]' --env PATH=/usr/bin \
	--label "org.opencontainers.image.title=hoist" \
	--label "org.opencontainers.image.version=$version"
