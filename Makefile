# kiln: `make` builds bin/kiln; `make test` runs every test (as root); `make demo` shows a build.
GO      ?= go
export GOFLAGS ?= -mod=mod
BIN     := bin/kiln
# Debian packages the tests need: busybox for base images, skopeo and umoci to check what kiln writes,
# docker-registry for the registry servers the push/pull tests run on 127.0.0.1; bzip2 and xz to make
# the ADD tests' archives (Go has no encoder for them); iptables for the rules of container networks.
TEST_PKGS := busybox-static skopeo umoci docker-registry bzip2 xz-utils iptables
TEST_BINS := /bin/busybox /usr/bin/skopeo /usr/bin/umoci /usr/bin/docker-registry /usr/bin/bzip2 /usr/bin/xz /usr/sbin/iptables
# tmux is the terminal the run -it tests and the build's live progress display are tested in.
TEST_PKGS += tmux
TEST_BINS += /usr/bin/tmux
# chromium (headless) renders kiln layers' HTML report (tmux drives its terminal UI).
TEST_PKGS += chromium
TEST_BINS += /usr/bin/chromium
# git for Git build contexts (cloned from a local bare repository), jq for the README's CI recipe.
TEST_PKGS += git jq
TEST_BINS += /usr/bin/git /usr/bin/jq
# qemu-user-static and binfmt-support run the arm64 RUN steps of the multi-platform tests.
TEST_PKGS += qemu-user-static binfmt-support
TEST_BINS += /usr/bin/qemu-aarch64-static /usr/sbin/update-binfmts
# uidmap (setuid newuidmap/newgidmap) maps rootless kiln's user namespace to the test users' subordinate ranges.
TEST_PKGS += uidmap
TEST_BINS += /usr/bin/newuidmap /usr/bin/newgidmap

# kiln is one static binary, with cgo for the constructor that joins the rootless user namespace
# (internal/rootless/join_linux.c) before the Go runtime starts, as runc's nsexec.
GO_BUILD_STATIC := CGO_ENABLED=1 $(GO) build -trimpath -tags netgo,osusergo -ldflags '-extldflags -static'
# slirp4netns connects rootless kiln's network namespace to the outside.
TEST_PKGS += slirp4netns
TEST_BINS += /usr/bin/slirp4netns

# podman and runc run the kiln CI image of the rootless-in-a-container tests too (Debian's crun refuses
# this machine's hybrid cgroup layout).
TEST_PKGS += podman runc
TEST_BINS += /usr/bin/podman /usr/sbin/runc

.PHONY: all build test deps demo clean bench bench-go bench-scale

all: build

build:
	$(GO_BUILD_STATIC) -o $(BIN) ./cmd/kiln

# deps installs what the tests need from Debian's packages, when missing.
deps:
	@missing=""; for b in $(TEST_BINS); do [ -x $$b ] || missing=1; done; \
	if [ -n "$$missing" ]; then \
		echo "installing $(TEST_PKGS) from Debian"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_PKGS) >/dev/null; \
	fi
	@# binfmt_misc with qemu's aarch64 handler (flag F: it works inside sandboxes), and an arm64 busybox.
	@[ -e /proc/sys/fs/binfmt_misc/status ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
	@[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64 || true
	@sh testdata/arm64busybox.sh >/dev/null

# The cgroup "kiln" (the parent of builds' and containers' cgroups) stays once made, as docker's does:
# the tests remove the ones they made, once every package is done.
test: deps build
	$(GO) vet ./...
	@made=""; for d in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do \
		[ -e $${d}cgroup.procs ] && [ ! -d $${d}kiln ] && made="$$made $${d}kiln"; done; \
	$(GO) test -count=1 -timeout 20m ./...; rc=$$?; \
	for d in $$made; do \
		for i in $$(seq 100); do [ ! -d $$d ] || rmdir $$d 2>/dev/null || { sleep 0.1; continue; }; break; done; \
		[ ! -d $$d ] || { echo "the tests left the cgroup $$d"; rc=1; }; \
	done; exit $$rc

# bench: kiln against BuildKit (docker.io), buildah and podman from Debian on bench/workloads (ratio
# table; BENCH_ARGS="--runs 5 --only cold-files,warm-files" narrows it), then kiln's Go micro-benchmarks.
bench: build bench-go
	bench/compare.sh $(BENCH_ARGS) $(BIN)

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./layer/ ./cache/ ./builder/

# bench-scale: cold COPY time and peak memory against file count (1k-100k) and size (100 MB, 1 GB)
# (SCALE_ARGS="--runs 1 --cases files-1k,size-100m" narrows it).
bench-scale: build
	bench/scale.sh $(SCALE_ARGS) $(BIN)

# demo: import a busybox base image, build testdata/demo, show its history, run it, show its layers.
DEMO_ROOT ?= /var/lib/kiln
demo: deps build
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	sh testdata/mkbase.sh "$$tmp/base"; \
	tar -C "$$tmp/base" -cf "$$tmp/base.tar" .; \
	$(BIN) --root $(DEMO_ROOT) import "$$tmp/base.tar" localhost/busybox:latest; \
	$(BIN) --root $(DEMO_ROOT) build -t kiln-demo:latest testdata/demo; \
	$(BIN) --root $(DEMO_ROOT) history kiln-demo:latest; \
	$(BIN) --root $(DEMO_ROOT) run --rm kiln-demo:latest; \
	$(BIN) --root $(DEMO_ROOT) layers kiln-demo:latest

clean:
	rm -rf bin
