#!/bin/bash
# hoist's own image, built by hoist: `make image` (linux/amd64), `make image-arm64`.
#
#   scripts/make-image.sh [--arch amd64|arm64] HOIST_BIN oci:DIR:TAG
#
# HOIST_BIN is the hoist built on this (amd64) machine: it writes the image, and is the one in it
# for amd64. For arm64 the image holds hoist cross-built by scripts/build-arm64.sh (cached) and
# the files of Debian's arm64 packages, unpacked into that script's sysroot, not installed.
#
# One layer on scratch, written with `hoist append scratch --map SRC:DEST`:
#   /usr/bin/hoist                   hoist for the image's architecture
#   /usr/bin/newuidmap, newgidmap    the user namespace's id maps (setuid root, as Debian ships them)
#   /usr/bin/pasta                   the build network (src/lib/sandbox/net.c)
#   their shared libraries           each under its soname, and the loader: amd64's as ldd
#                                    resolves them; arm64's from their ELF NEEDED entries and
#                                    interpreter, looked up in the sysroot, recursively
#   /lib (amd64: and /lib64)         Debian's merged-/usr symlinks (the loaders' paths are
#                                    /lib64/ld-linux-x86-64.so.2, /lib/ld-linux-aarch64.so.1)
#   /etc/ssl/certs/ca-certificates.crt   the CA bundle libcurl reads by default
#   /etc/passwd, group, subuid, subgid   root, nobody, and root's subordinate ids for the sandbox
#                                        (1-65535: what a pod with hostUsers: false maps)
#   /tmp                             1777, for the build's temporary files
# and nothing else: no shell, no package manager. The config: linux/amd64 or linux/arm64 (variant
# v8), Entrypoint ["/usr/bin/hoist"], PATH, the OCI version label. Reproducible: every mtime and
# `created` are SOURCE_DATE_EPOCH (default: the last commit's time), so the same binary and the
# same Debian packages give the same manifest digest.
set -euo pipefail

usage() {
	echo "usage: $0 [--arch amd64|arm64] HOIST_BIN oci:DIR:TAG" >&2
	exit 2
}
arch=amd64
if [ "${1:-}" = --arch ]; then
	[ $# -ge 2 ] || usage
	arch=$2
	shift 2
fi
[ $# -eq 2 ] || usage
case $arch in
amd64 | arm64) ;;
*)
	echo "make-image: no image for $arch: amd64 or arm64" >&2
	exit 2
	;;
esac
bin=$(realpath "$1")
target=$2
host=$(dpkg --print-architecture)
if [ "$host" != amd64 ]; then
	echo "make-image: this machine is $host; the images are made on amd64 from its packages" >&2
	exit 1
fi
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git -C "$(dirname "$0")" log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH

# The files for the image's architecture: hoist, the tools, where their libraries are looked up.
if [ "$arch" = arm64 ]; then
	paths=$(bash "$(dirname "$0")/build-arm64.sh")
	sys=$(sed -n 1p <<<"$paths")
	payload=$(sed -n 2p <<<"$paths")
else
	sys=
	payload=$bin
fi
tools=(/usr/bin/newuidmap /usr/bin/newgidmap /usr/bin/pasta)
for t in "${tools[@]/#/$sys}" /etc/ssl/certs/ca-certificates.crt; do
	[ -e "$t" ] || { echo "make-image: $t is missing (make deps)" >&2; exit 1; }
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
ln -s usr/lib "$stage/lib"
if [ "$arch" = amd64 ]; then
	ln -s usr/lib64 "$stage/lib64"
fi
mkdir -m 1777 "$stage/tmp"
mkdir -p "$stage/etc"
printf 'root:x:0:0:root:/root:/usr/bin/hoist\nnobody:x:65534:65534:nobody:/nonexistent:/usr/bin/hoist\n' \
	>"$stage/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$stage/etc/group"
printf 'root:1:65535\n' >"$stage/etc/subuid"
printf 'root:1:65535\n' >"$stage/etc/subgid"
chmod 644 "$stage"/etc/*

maps=(--map "$payload:/usr/bin/hoist" --map "$stage/lib:/lib" --map "$stage/tmp:/tmp"
	--map /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt)
if [ "$arch" = amd64 ]; then
	maps+=(--map "$stage/lib64:/lib64")
fi
for f in passwd group subuid subgid; do
	maps+=(--map "$stage/etc/$f:/etc/$f")
done
# each tool's file itself: /usr/bin/pasta is a symlink to passt, which runs as pasta by its name
for t in "${tools[@]}"; do
	maps+=(--map "$(realpath "$sys$t"):$t")
done

# arm64: the NEEDED entries and the interpreter of each ELF file, found in the sysroot's library
# directories, then theirs, until nothing new turns up. Prints each library's path in the image.
needed() {
	local queue=("$@") seen=" " f so path real
	while [ ${#queue[@]} -gt 0 ]; do
		f=${queue[0]}
		queue=("${queue[@]:1}")
		for so in $(LC_ALL=C readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p') \
			$(LC_ALL=C readelf -l "$f" | sed -n 's/.*program interpreter: \(.*\)\]/\1/p'); do
			case $so in
			/*) path=$so ;;
			*)
				path=
				for d in /usr/lib/aarch64-linux-gnu /usr/lib; do
					if [ -e "$sys$d/$so" ]; then
						path=$d/$so
						break
					fi
				done
				[ -n "$path" ] || {
					echo "make-image: $so (needed by ${f#"$sys"}) is not in $sys" >&2
					return 1
				}
				;;
			esac
			# the loader is NEEDED by libc under its soname too: one copy, where PT_INTERP says
			real=$(realpath "$sys$path")
			case $seen in *" $real "*) continue ;; esac
			seen="$seen$real "
			echo "$path"
			queue+=("$sys$path")
		done
	done
}

# Each library, at its soname under the real (merged-/usr) directory, read through its symlinks;
# sorted, so the argument order never varies.
if [ "$arch" = arm64 ]; then
	libs=$(needed "$payload" "${tools[@]/#/$sys}" | sort -u)
	[ -n "$libs" ] || { echo "make-image: found no libraries for $payload" >&2; exit 1; }
else
	libs=$(for f in "$bin" "${tools[@]}"; do
		ldd "$f" | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }'
	done | sort -u)
fi
for l in $libs; do
	dir=$(realpath "$sys$(dirname "$l")")
	maps+=(--map "$(realpath "$sys$l"):${dir#"$sys"}/$(basename "$l")")
done

# the version label: the project's version, the same in both binaries (the arm64 one built from
# this tree)
version=$("$bin" --version | awk '{ print $2; exit }')
variant=()
if [ "$arch" = arm64 ]; then
	variant=(--variant v8)
fi
"$bin" append scratch --target "$target" "${maps[@]}" \
	--source-date-epoch "$SOURCE_DATE_EPOCH" --created-by "make image" \
	--os linux --arch "$arch" "${variant[@]}" --entrypoint '["/usr/bin/hoist"]' --env PATH=/usr/bin \
	--label "org.opencontainers.image.title=hoist" \
	--label "org.opencontainers.image.version=$version"
