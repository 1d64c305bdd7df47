#!/bin/sh
# arm64busybox.sh: prints the path of Debian's arm64 static busybox (for the
# arm64 base image of the multi-platform tests), downloaded once into
# ${KILN_TEST_CACHE:-/var/cache/kiln-test}, a directory CI can keep between runs.
set -eu
dir=${KILN_TEST_CACHE:-/var/cache/kiln-test}
bin=$dir/busybox-arm64
if [ ! -x "$bin" ]; then
	mkdir -p "$dir"
	if ! ls "$dir"/busybox-static_*_arm64.deb >/dev/null 2>&1; then
		if ! (cd "$dir" && apt-get download busybox-static:arm64) >&2 2>/dev/null; then
			dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
			apt-get update -qq >&2
			(cd "$dir" && apt-get download busybox-static:arm64) >&2
		fi
	fi
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	dpkg-deb -x "$(ls "$dir"/busybox-static_*_arm64.deb | head -n1)" "$tmp"
	cp "$tmp/bin/busybox" "$bin.tmp"
	mv "$bin.tmp" "$bin"
fi
echo "$bin"
