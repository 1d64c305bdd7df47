#!/bin/bash
# How kiln's cold COPY grows with the file count and the total size, and its peak memory.
#
#   bench/scale.sh [--runs N] [--cases LIST] [KILN_BINARY]       (or: make bench-scale)
#
# Each case is a build context of generated files (random bytes, 1,000 files a directory) copied by
# `COPY data /data` onto a busybox base, built with --no-cache N times (default 3). Printed: the
# median wall time of the whole `kiln build`, the median per file and per MB, the median CPU time
# (user+sys: what counts on a loaded machine), and the largest peak RSS (GNU time's "Maximum
# resident set size"). Cases (default all): files-1k, files-10k, files-100k
# (4 KiB files) and size-100m, size-1g (1 MiB files). Run as root from the project's checkout.
set -u
runs=3 cases="files-1k files-10k files-100k size-100m size-1g" kiln=bin/kiln
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --cases) cases=${2//,/ }; shift 2 ;;
    *) kiln=$1; shift ;;
  esac
done
[ -x "$kiln" ] || { echo "no kiln binary at $kiln (run make first)"; exit 2; }
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)"; exit 2; }
[ -x /bin/busybox ] || { echo "needs /bin/busybox (apt-get install busybox-static)"; exit 2; }
kiln=$(realpath "$kiln")
work=$(mktemp -d /tmp/kiln-scale.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
base=$work/base; mkdir -p "$base/bin" "$base/etc" "$base/tmp"
cp /bin/busybox "$base/bin/"; ln -s busybox "$base/bin/sh"
tar -C "$base" -cf "$work/base.tar" .
"$kiln" --root "$root" import "$work/base.tar" localhost/bb:latest >/dev/null || { echo "kiln import failed"; exit 1; }

# gen DIR COUNT SIZE: COUNT files of SIZE bytes, 1,000 a directory
gen() {
  local dir=$1 count=$2 size=$3 d=0
  while [ "$count" -gt 0 ]; do
    local n=$((count < 1000 ? count : 1000))
    mkdir -p "$dir/d$d"
    head -c $((n * size)) /dev/urandom | (cd "$dir/d$d" && split -b "$size" -a 3 - f)
    count=$((count - n)) d=$((d + 1))
  done
}

printf '%-11s %8s %8s %9s %12s %10s %9s %9s\n' case files MB "wall s" "µs/file" "s/GB" "cpu s" "peak MB"
for c in $cases; do
  case $c in
    files-1k) count=1000 size=4096 ;;
    files-10k) count=10000 size=4096 ;;
    files-100k) count=100000 size=4096 ;;
    size-100m) count=100 size=1048576 ;;
    size-1g) count=1024 size=1048576 ;;
    *) echo "unknown case $c"; exit 2 ;;
  esac
  ctx=$work/ctx-$c; mkdir -p "$ctx"
  gen "$ctx/data" $count $size
  printf 'FROM localhost/bb:latest\nCOPY data /data\n' > "$ctx/Dockerfile"
  walls=() cpus=() peak=0
  for _ in $(seq "$runs"); do
    /usr/bin/time -f '%e %M %U %S' -o "$work/t" "$kiln" --root "$root" build -q --no-cache -t "scale-$c" "$ctx" >/dev/null ||
      { echo "$c: kiln build failed"; exit 1; }
    read -r wall rss user sys < "$work/t"
    walls+=("$wall") cpus+=("$(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}')"); [ "$rss" -gt "$peak" ] && peak=$rss
  done
  median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
  awk -v c="$c" -v n=$count -v s=$size -v w="$(median "${walls[@]}")" -v cpu="$(median "${cpus[@]}")" -v p="$peak" 'BEGIN {
    mb = n * s / 1048576
    printf "%-11s %8d %8.0f %9.2f %12.0f %10.2f %9.2f %9.1f\n", c, n, mb, w, w * 1e6 / n, w / (mb / 1024), cpu, p / 1024 }'
  rm -rf "$ctx"
  "$kiln" --root "$root" rmi "scale-$c" >/dev/null 2>&1
  "$kiln" --root "$root" builder prune -af >/dev/null 2>&1
done
