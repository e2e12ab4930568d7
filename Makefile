# hoist: the front door. `make demo` and `make test` work on a fresh Debian machine.

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 5
# make image: hoist's own image (scripts/make-image.sh), an OCI layout; image-arm64 and
# image-multiarch tag theirs in the same layout.
IMAGE      ?= oci:$(BUILD)/image:hoist
IMAGE_ARM64 ?= oci:$(BUILD)/image:hoist-arm64
IMAGE_MULTIARCH ?= oci:$(BUILD)/image:hoist-multiarch
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# make install: into $(DESTDIR)$(PREFIX).
PREFIX     ?= /usr/local
DESTDIR    ?=

# Every package the build, the tests, the demo and the benchmarks use. podman runs hoist's own
# image in test_image, with runc: crun refuses a hybrid cgroup hierarchy such as CI's. The arm64
# image: the cross compiler, and qemu to run its hoist in test_image; Debian's arm64 packages are
# fetched, not installed, by scripts/build-arm64.sh (deps adds dpkg's arm64 architecture for it).
# The Debian package (debian/, test_package): dpkg-buildpackage, debhelper, fakeroot, lintian.
# scdoc makes the man pages, man-db renders them in test_docs; test_completion runs the
# completion scripts in bash (with bash-completion) and zsh.
# ccache: Meson compiles through it when it is installed, so a fresh clone's builds reuse
# the objects of earlier ones (in ~/.cache/ccache, outside the repository; paths taken
# relative to the checkout, so a clone elsewhere hits too).
DEPS := meson ninja-build pkg-config gcc clang clang-format libclang-rt-14-dev git \
	libssl-dev libcurl4-openssl-dev libarchive-dev libjansson-dev libcmocka-dev \
	libisal-dev isal libzstd-dev zlib1g-dev libmicrohttpd-dev libgnutls28-dev libsqlite3-dev libpq-dev postgresql libgit2-dev libseccomp-dev libyaml-dev \
	python3 python3-yaml openssl skopeo umoci buildah docker-registry busybox-static wrk \
	uidmap passt debootstrap apache2-utils isal nodejs time bc podman runc \
	gcc-aarch64-linux-gnu qemu-user-static \
	ruby default-jdk-headless maven libmaven-dependency-plugin-java junit4 \
	build-essential dpkg-dev debhelper fakeroot lintian \
	scdoc man-db zsh bash-completion ccache

export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

SOURCES = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find src include tests fuzz bench -name '*.[ch]')

.PHONY: all deps build build-asan test unit-test asan-test format format-check module-check style-check fuzz \
	fuzz-smoke demo bench clean image image-arm64 image-multiarch install

all: build

deps:
	@missing=$$(for p in $(DEPS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
		grep -q 'install ok installed' || echo $$p; done); \
	arm64=$$(dpkg --print-foreign-architectures | grep -qx arm64 || echo arm64); \
	if [ -n "$$arm64" ]; then \
		echo "adding dpkg's arm64 architecture (scripts/build-arm64.sh)"; \
		$(SUDO) dpkg --add-architecture arm64 || exit 1; \
	fi; \
	if [ -n "$$missing$$arm64" ]; then \
		$(SUDO) apt-get update -qq || exit 1; \
	fi; \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@SUDO=$(SUDO) bash scripts/subids.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) -Dwerror=true

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

# The binary, libhoist (static, its headers, hoist.pc) and the example configs, installed by
# meson from $(BUILD), configured for PREFIX first (DESTDIR: a staging root, as for a package).
install: $(BUILD)/build.ninja
	meson configure $(BUILD) --prefix=$(PREFIX)
	meson install -C $(BUILD) $(if $(DESTDIR),--destdir $(abspath $(DESTDIR)))

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
		-Dbuildtype=debug

build-asan: $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

unit-test: build
	meson test -C $(BUILD) --print-errorlogs --num-processes 2 || true
	@python3 scripts/test-summary.py "gcc" $(BUILD)/meson-logs/testlog.json

asan-test: build-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		meson test -C $(ASAN_BUILD) --print-errorlogs --num-processes 2 || true
	@python3 scripts/test-summary.py "asan+ubsan" $(ASAN_BUILD)/meson-logs/testlog.json

format-check:
	clang-format --dry-run --Werror $(SOURCES)
	@echo "clang-format: clean"

format:
	clang-format -i $(SOURCES)

# The modules of src/lib include only what README's code map lets them use; no cycle.
module-check:
	@python3 scripts/check-modules.py --self-test
	@python3 scripts/check-modules.py

# The library's house rules (no getenv, printing, exit, signal, fork...; see the script).
style-check:
	@python3 scripts/checksrc.py --self-test
	@python3 scripts/checksrc.py

$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) -Dfuzz=true -Dtests=false -Db_lundef=false

fuzz: $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)

# Runs every fuzz target for a few seconds on its seed corpus.
fuzz-smoke: fuzz
	@bash scripts/fuzz-smoke.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

test: deps
	$(MAKE) unit-test
	$(MAKE) asan-test
	$(MAKE) fuzz-smoke
	$(MAKE) format-check
	$(MAKE) module-check
	$(MAKE) style-check
	@python3 scripts/test-summary.py --total $(BUILD)/meson-logs/testlog.json \
		$(ASAN_BUILD)/meson-logs/testlog.json

# hoist's own image, built by hoist: the binary, its libraries, newuidmap/newgidmap, pasta,
# the CA bundle; reproducible with SOURCE_DATE_EPOCH (default: the last commit's time).
image: build
	bash scripts/make-image.sh $(BUILD)/src/cli/hoist $(IMAGE)

# The same for linux/arm64: hoist cross-built and Debian's arm64 packages (scripts/build-arm64.sh,
# both cached under $$HOIST_CACHE/arm64); image-multiarch joins the two into one index.
image-arm64: build
	bash scripts/make-image.sh --arch arm64 $(BUILD)/src/cli/hoist $(IMAGE_ARM64)

image-multiarch: image image-arm64
	$(BUILD)/src/cli/hoist index create $(IMAGE_MULTIARCH) $(IMAGE) $(IMAGE_ARM64)

demo: deps build
	bash scripts/demo.sh $(BUILD)/src/cli/hoist

# Runs every benchmark; BENCH=name runs only bench/name.sh.
bench: deps build
	@set -e; ls bench/$(or $(BENCH),*).sh >/dev/null 2>&1 || { echo "no benchmarks in bench/"; exit 0; }; \
	for b in bench/$(or $(BENCH),*).sh; do echo "== $$b"; bash $$b $(abspath $(BUILD))/src/cli/hoist; done

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
