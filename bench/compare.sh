#!/bin/bash
# Times kiln against Docker's BuildKit and buildah on the same workloads, in one run, on this machine.
#
#   bench/compare.sh [--only SCENARIO[,SCENARIO]] [--runs N] [--no-peers] [--user NAME] [KILN_BINARY]   (or: make bench)
#
# --user NAME runs the kiln column as NAME, rootless (NAME needs a range in /etc/subuid and /etc/subgid;
# its store is a directory it owns under /tmp), next to kiln as root in a kiln-root column; the peers
# stay as they are, as root. The table then adds kiln-root's ratio and rootless/root, the cost of
# rootless (`make bench BENCH_ARGS="--user NAME"`).
#
# Run from the project's checkout as root. KILN_BINARY defaults to bin/kiln. The workloads are in
# bench/workloads; the file tree of cold-files is the source tree of the Go toolchain that builds kiln
# ($(go env GOROOT)/src, ~156 MB and 12.8k files for Go 1.26). The first run installs
# the peers from Debian's packages (docker.io, buildah, hyperfine, busybox-static) and starts dockerd.
# Every figure is a median of N runs (default 3); the last column is kiln's median over BuildKit's:
# below 1.00 means kiln is faster. Absolute times drift between machines; the ratios are what count.
#
# Scenarios:
#   cold-small   5-step Dockerfile, no cache            warm-small  the same, everything cached
#   cold-layers  40 RUN steps, no cache (per-step cost)
#   cold-files   COPY of Go's src tree (~156 MB, 12.8k files) + a RUN that deletes files, no cache
#   warm-files   the same, everything cached            edit-files  one source file changed, rebuild
#   cold-big     one RUN writing 256 MB random + 256 MB zeros (layer hashing/compression throughput)
#   run-true     run --rm busybox true (container start and teardown)
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
runs=3 only="" peers=1 kiln=bin/kiln user=""
while [ $# -gt 0 ]; do
  case $1 in
    --user) user=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --no-peers) peers=0; shift ;;
    *) kiln=$1; shift ;;
  esac
done
[ -x "$kiln" ] || { echo "no kiln binary at $kiln (run make first)"; exit 2; }
kiln=$(realpath "$kiln")
want() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }

if [ -n "$user" ]; then
  id -u "$user" >/dev/null 2>&1 || { echo "--user $user: no such user"; exit 2; }
  for f in /etc/subuid /etc/subgid; do
    grep -q "^$user:" $f || { echo "--user $user: no range in $f (add a line $user:100000:65536)"; exit 2; }
  done
fi

pkgs=()
[ -n "$user" ] && ! command -v newuidmap >/dev/null && pkgs+=(uidmap)
command -v hyperfine >/dev/null || pkgs+=(hyperfine)
[ -x /bin/busybox ] || pkgs+=(busybox-static)
if [ $peers = 1 ]; then
  [ -x /usr/sbin/dockerd ] || pkgs+=(docker.io)
  command -v buildah >/dev/null || pkgs+=(buildah)
  command -v podman >/dev/null || pkgs+=(podman)
fi
if [ ${#pkgs[@]} -gt 0 ]; then
  echo "installing ${pkgs[*]} ..." >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}") >/dev/null 2>&1 ||
    { echo "could not install ${pkgs[*]}"; exit 2; }
fi
docker=/usr/bin/docker
if [ $peers = 1 ]; then
  # buildah and podman: runc, and limits this machine allows
  mkdir -p /etc/containers
  [ -f /etc/containers/containers.conf ] || printf '[containers]\ndefault_ulimits = ["nofile=%s:%s","nproc=4096:4096"]\n[engine]\nruntime = "runc"\n' "$(ulimit -Hn)" "$(ulimit -Hn)" > /etc/containers/containers.conf
  if ! $docker info >/dev/null 2>&1; then
    (setsid /usr/sbin/dockerd > /tmp/bench-dockerd.log 2>&1 &)
    for _ in $(seq 50); do $docker info >/dev/null 2>&1 && break; sleep 0.2; done
    $docker info >/dev/null 2>&1 || { echo "dockerd did not start (see /tmp/bench-dockerd.log)"; exit 2; }
  fi
fi

work=$(mktemp -d /tmp/kiln-bench.XXXXXX)
# cleanup: with --user, the rootless kiln's pause process (its user namespace) and its user-mode network
# outlive the runs, as may its network reaper (the store's, in its arguments): they go with the bench's directory
cleanup() {
  if [ -n "$user" ]; then
    for f in $(find "$urun/run" -name pause.pid 2>/dev/null); do
      p=$(cut -d' ' -f1 "$f")
      [ "$(tr -d '\0' < "/proc/$p/cmdline" 2>/dev/null)" = kiln-rootless-pause ] && kill -9 "$p"
    done
    pkill -9 -f -- "$urun/"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
root=$work/kiln-root
if [ -n "$user" ]; then
  # the rootless kiln: its own copy of the binary, its store and runtime directory, all the user's;
  # setpriv switches to the user without a PAM session (runuser/su would add theirs to every run).
  chmod 755 "$work"
  urun=$work/rootless; mkdir -p "$urun/run"; install -m 755 "$kiln" "$urun/kiln"
  chown -R "$user:" "$urun"; chmod 700 "$urun/run"
  uhome=$(getent passwd "$user" | cut -d: -f6)
  RL="setpriv --reuid=$user --regid=$(id -g "$user") --init-groups env HOME=$uhome XDG_RUNTIME_DIR=$urun/run $urun/kiln --root $urun/store"
  # the root column goes through the same two programs (setpriv, env: ~7 ms here), so that rootless/root
  # compares kiln with kiln and not the wrapper's start with nothing
  RW="setpriv --reuid=0 --regid=0 --init-groups env HOME=/root"
fi
# the base image: Debian's static busybox as a tiny root filesystem, imported into each tool
base=$work/base; mkdir -p "$base/bin" "$base"/{etc,tmp,root,home,usr/bin,var,proc,sys,dev}
cp /bin/busybox "$base/bin/"
for c in $("$base/bin/busybox" --list); do [ "$c" = busybox ] || ln -sf busybox "$base/bin/$c"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$base/etc/passwd"; echo 'root:x:0:' > "$base/etc/group"; chmod 1777 "$base/tmp"
tar -C "$base" -cf "$work/base.tar" .
"$kiln" --root "$root" import "$work/base.tar" localhost/bb:latest >/dev/null || { echo "kiln import failed"; exit 1; }
if [ -n "$user" ]; then
  chmod 644 "$work/base.tar"
  $RL import "$work/base.tar" localhost/bb:latest >/dev/null || { echo "rootless kiln import (as $user) failed"; exit 1; }
fi
if [ $peers = 1 ]; then
  $docker import "$work/base.tar" localhost/bb:latest >/dev/null
  buildah rmi -f localhost/bb:latest >/dev/null 2>&1
  podman import -q "$work/base.tar" localhost/bb:latest >/dev/null || { echo "podman import failed"; exit 2; }
fi
cp -r "$here/workloads" "$work/ctx"
goroot=${GOROOT:-$(go env GOROOT 2>/dev/null)}
[ -d "$goroot/src" ] || { echo "no Go source tree for cold-files (set GOROOT)"; exit 2; }
cp -r "$goroot/src" "$work/ctx/files/src"
chmod -R a+rX "$work/ctx"

results=$work/results; mkdir -p "$results"
# bench NAME PREPARE KILN_CMD BUILDKIT_CMD BUILDAH_CMD: hyperfine over each, medians into $results/NAME.json;
# with --user, KILN_CMD runs rootless as kiln and as root as kiln-root
bench() {
  local name=$1 prep=$2; shift 2
  # -i: a failing command is reported as failed in the table, the others are still timed
  local args=(-N -i --runs "$runs" --warmup 1 --export-json "$results/$name.json")
  [ -n "$prep" ] && args+=(--prepare "$prep")
  if [ -n "$user" ]; then args+=(-n kiln "${1/#$K /$RL }" -n kiln-root "$RW $1"); else args+=(-n kiln "$1"); fi
  if [ $peers = 1 ]; then args+=(-n buildkit "$2" -n buildah "$3"); fi
  echo "== $name" >&2
  hyperfine "${args[@]}" > "$results/$name.log" 2>&1 || { echo "$name: a command failed (see below)"; tail -5 "$results/$name.log"; }
}
K="$kiln --root $root"
BK="env DOCKER_BUILDKIT=1 $docker build -q"
BH="buildah bud -q --layers"
for w in small layers files big; do
  want cold-$w && bench cold-$w "" "$K build -q --no-cache -t $w $work/ctx/$w" "$BK --no-cache -t $w $work/ctx/$w" "$BH --no-cache -t $w $work/ctx/$w"
done
for w in small files; do
  want warm-$w && bench warm-$w "" "$K build -q -t $w $work/ctx/$w" "$BK -t $w $work/ctx/$w" "$BH -t $w $work/ctx/$w"
done
if want edit-files; then
  edit="sh -c 'date +%s%N >> $work/ctx/files/src/fmt/print.go'"
  bench edit-files "$edit" "$K build -q -t files $work/ctx/files" "$BK -t files $work/ctx/files" "$BH -t files $work/ctx/files"
fi
if want run-true; then
  bench run-true "" "$K run --rm localhost/bb:latest true" "$docker run --rm localhost/bb:latest true" "podman run --rm localhost/bb:latest true"
fi

[ -n "$user" ] && echo "kiln: rootless as $user; kiln-root: as root"
python3 - "$results" "$user" <<'EOF'
import json, os, sys
d, user = sys.argv[1], sys.argv[2]
head = f"{'scenario':<12} {'kiln':>9} {'BuildKit':>9} {'buildah':>9} {'kiln/BuildKit':>14}"
if user:
    head += f" {'kiln-root':>9} {'root/BuildKit':>14} {'rootless/root':>14}"
print(head)
for f in sorted(os.listdir(d)):
    if not f.endswith(".json"):
        continue
    try:
        res = {r["command"]: r for r in json.load(open(os.path.join(d, f)))["results"]}
    except ValueError:
        res = {}
    med = {k: (r["median"] if r.get("exit_codes") and not any(r["exit_codes"]) else None) for k, r in res.items()}
    fmt = lambda v: f"{v:8.3f}s" if v is not None else "   failed"
    k, b, h = med.get("kiln"), med.get("buildkit"), med.get("buildah")
    ratio = f"{k / b:13.2f}" if k is not None and b else "            -"
    line = f"{f[:-5]:<12} {fmt(k):>9} {fmt(b):>9} {fmt(h):>9} {ratio:>14}"
    if user:
        r = med.get("kiln-root")
        line += f" {fmt(r):>9} " + (f"{r / b:14.2f}" if r is not None and b else f"{'-':>14}")
        line += " " + (f"{k / r:14.2f}" if k is not None and r else f"{'-':>14}")
    print(line)
EOF
