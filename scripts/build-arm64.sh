#!/bin/bash
# hoist for linux/arm64, cross-built on an amd64 Debian machine: `make image-arm64`, test_image.
#
#   scripts/build-arm64.sh              prints the arm64 sysroot's path, then the arm64 binary's
#   scripts/build-arm64.sh --sysroot    prints only the sysroot's
#
# The sysroot: Debian's arm64 packages of what meson.build links (their -dev packages) and of
# what the image ships (uidmap, passt), with everything they depend on as apt resolves it for an
# empty arm64 system, fetched with `apt-get download` and unpacked with dpkg-deb into a merged-/usr
# tree. Nothing is installed: libpq-dev and libisal-dev cannot be installed for two architectures
# at once, and arm64 libraries would pull the host's amd64 ones to the same versions.
#
# Both are cached under ${HOIST_CACHE:-~/.cache/hoist}/arm64:
#   sysroot-KEY   KEY: the packages' names and versions (a new Debian point release makes a new one)
#   hoist-KEY     KEY: the sources (src/, include/, the meson files), the commit `hoist --version`
#                 names, the sysroot and the compiler; a hit costs nothing, a miss is a cross build
#                 of src/cli/hoist alone (-Dtests=false: the library and the CLI), about
#                 25 s on 2 cores (the packages: another 20 s, the first time)
# Only the 3 of each used last are kept. Concurrent callers wait on a lock.
#
# Needs: gcc-aarch64-linux-gnu, dpkg's arm64 architecture with apt's arm64 lists (make deps adds
# both: dpkg --add-architecture arm64; apt-get update).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${HOIST_CACHE:-$HOME/.cache/hoist}/arm64
# the -dev packages of meson.build's dependency() calls, and what the image ships besides hoist
PACKAGES=(libc6-dev libssl-dev libjansson-dev libarchive-dev libcurl4-openssl-dev zlib1g-dev
	libzstd-dev libmicrohttpd-dev libsqlite3-dev libpq-dev libgnutls28-dev libgit2-dev
	libseccomp-dev libyaml-dev libisal-dev uidmap passt)
APT_ARM64=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64)

die() {
	echo "build-arm64: $*" >&2
	exit 1
}

command -v aarch64-linux-gnu-gcc >/dev/null ||
	die "aarch64-linux-gnu-gcc is missing (make deps installs gcc-aarch64-linux-gnu)"
dpkg --print-foreign-architectures | grep -qx arm64 ||
	die "dpkg has no arm64 architecture (make deps: dpkg --add-architecture arm64; apt-get update)"

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

# Keeps the 3 entries matching a glob used last (a hit touches its entry); their names are hex keys.
prune() {
	# shellcheck disable=SC2012
	ls -dt "$@" 2>/dev/null | tail -n +4 | xargs -r rm -rf
}

# The packages and versions an empty arm64 system would install, one "name version" a line.
closure() {
	local empty
	empty=$(mktemp)
	if ! apt-get -s -o Dir::State::Status="$empty" "${APT_ARM64[@]}" --no-install-recommends \
		install "${PACKAGES[@]}" >"$empty.out" 2>&1; then
		rm -f "$empty"
		tail -5 "$empty.out" >&2
		rm -f "$empty.out"
		die "apt cannot resolve the arm64 packages (apt-get update after dpkg --add-architecture arm64?)"
	fi
	awk '/^Inst / { v = $3; sub(/^\(/, "", v); print $2, v }' "$empty.out" | sort
	rm -f "$empty" "$empty.out"
}

# Fetches the packages of the list ("name version" lines) into $2/debs.
download() {
	# shellcheck disable=SC2046
	(cd "$2/debs" && apt-get -q "${APT_ARM64[@]}" download \
		$(printf '%s\n' "$1" | awk '{ print $1 "=" $2 }') >"$2/download.log" 2>&1)
}

sysroot() {
	local list key dir tmp deb l
	list=$(closure)
	[ -n "$list" ] || die "apt resolved no arm64 packages"
	key=$(printf '%s\n' "$list" | sha256sum | cut -c1-16)
	dir=$cache/sysroot-$key
	if [ ! -f "$dir/.done" ]; then
		tmp=$(mktemp -d "$cache/sysroot.XXXXXX")
		trap 'rm -rf "$tmp"' EXIT
		mkdir -p "$tmp/debs" "$tmp/root/usr/lib" "$tmp/root/usr/bin" "$tmp/root/usr/sbin"
		ln -s usr/lib "$tmp/root/lib"
		ln -s usr/bin "$tmp/root/bin"
		ln -s usr/sbin "$tmp/root/sbin"
		# a list older than a Debian security update names versions the mirror no longer has:
		# apt-get update, and the closure again
		if ! download "$list" "$tmp"; then
			echo "build-arm64: apt-get download failed; apt-get update and again" >&2
			apt-get update -qq >"$tmp/update.log" 2>&1 || {
				tail -5 "$tmp/update.log" >&2
				die "apt-get update failed"
			}
			list=$(closure)
			key=$(printf '%s\n' "$list" | sha256sum | cut -c1-16)
			dir=$cache/sysroot-$key
			rm -f "$tmp"/debs/*
			download "$list" "$tmp" || {
				tail -5 "$tmp/download.log" >&2
				die "apt-get download of the arm64 packages failed"
			}
		fi
		for deb in "$tmp"/debs/*.deb; do
			dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$tmp/root"
		done
		# absolute symlinks (libfoo.so -> /lib/...) point into the sysroot instead
		find "$tmp/root" -type l -lname '/*' | while read -r l; do
			ln -sfn "$(realpath -m --relative-to="$(dirname "$l")" "$tmp/root$(readlink "$l")")" "$l"
		done
		printf '%s\n' "$list" >"$tmp/root/.packages"
		rm -rf "$dir"
		mv "$tmp/root" "$dir"
		touch "$dir/.done"
		rm -rf "$tmp"
		trap - EXIT
		prune "$cache"/sysroot-*
	else
		touch "$dir"
	fi
	echo "$dir"
}

if [ "${1:-}" = --sysroot ]; then
	sysroot
	exit 0
fi
[ $# -eq 0 ] || die "usage: $0 [--sysroot]"

sys=$(sysroot)
commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
key=$(
	cd "$root"
	{
		find src include -type f -print0 | sort -z | xargs -0 sha256sum
		sha256sum meson.build meson_options.txt scripts/cross/aarch64-linux-gnu.ini
		echo "$commit $sys"
		aarch64-linux-gnu-gcc --version | head -1
	} | sha256sum | cut -c1-16
)
bin=$cache/hoist-$key
if [ ! -x "$bin" ]; then
	start=$(date +%s)
	build=$(mktemp -d "$cache/build.XXXXXX")
	trap 'rm -rf "$build"' EXIT
	cat >"$build/sysroot.ini" <<-EOF
		[properties]
		sys_root = '$sys'
		pkg_config_libdir = ['$sys/usr/lib/aarch64-linux-gnu/pkgconfig', '$sys/usr/share/pkgconfig']

		[built-in options]
		c_args = ['--sysroot=$sys']
		c_link_args = ['--sysroot=$sys']
	EOF
	if ! { meson setup "$build/dir" "$root" -Dwerror=true -Dtests=false \
		--cross-file "$root/scripts/cross/aarch64-linux-gnu.ini" --cross-file "$build/sysroot.ini" &&
		ninja -C "$build/dir" src/cli/hoist; } >"$build/log" 2>&1; then
		tail -30 "$build/log" >&2
		die "the arm64 cross build failed"
	fi
	cp "$build/dir/src/cli/hoist" "$bin.tmp"
	mv "$bin.tmp" "$bin"
	rm -rf "$build"
	trap - EXIT
	prune "$cache"/hoist-*
	echo "build-arm64: built $bin in $(($(date +%s) - start)) s" >&2
else
	touch "$bin"
fi
echo "$sys"
echo "$bin"
