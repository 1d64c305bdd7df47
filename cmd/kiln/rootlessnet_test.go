package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// rootlessNetScript is the rootless networking scenario, run by a shell of
// the user (every kiln it starts joins the user's kiln user namespace):
// every check prints "ok: NAME" or "FAIL: NAME ...".
const rootlessNetScript = `
K() { "$KILN" "$@"; }
RT=$XDG_RUNTIME_DIR/kiln
get() { printf 'GET %s HTTP/1.0\r\n\r\n' "$3" | busybox nc -w 5 "$1" "$2"; }
K import "$BASE" bb >/dev/null || exit 3
if ! out=$(K run --rm bb true 2>&1); then echo "cannot run a container: $out"; exit 4; fi
check() { name=$1; shift; if "$@"; then echo "ok: $name"; else echo "FAIL: $name"; fi; }
outbound() { K run --rm bb sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 $OUT_IP $OUT_PORT" | grep -q "hello from"; }

check outbound outbound
noloopback() { ! K run --rm bb sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 10.0.2.2 $LOOP_PORT" 2>/dev/null | grep -q "hello from"; }
check no-host-loopback noloopback

K network create rlnet >/dev/null
K run -d --name srv --network rlnet bb httpd -f -p 80 -h /etc >/dev/null
byname() {
	for i in $(seq 20); do # until httpd listens
		K run --rm --network rlnet bb sh -c "printf 'GET /hostname HTTP/1.0\r\n\r\n' | nc -w 5 srv 80" | grep -q "200 OK" && return 0
	done
	return 1
}
check by-name byname

K run -d --name web -p 127.0.0.1::80 bb httpd -f -p 80 -h /etc >/dev/null
PUB=$(K port web 80/tcp)
PUB=${PUB##*:}
published() {
	for i in $(seq 100); do
		get 127.0.0.1 "$PUB" /hostname | grep -q "200 OK" && return 0
		sleep 0.1
	done
	return 1
}
check published published

before=$(K ps -aq | wc -l)
lowport() {
	err=$RT/lowport.err
	! K run --rm -p 80:80 bb true 2>"$err" && grep -q "sysctl net.ipv4.ip_unprivileged_port_start=80" "$err" &&
		[ "$(wc -l <"$err")" -eq 1 ] && [ "$(K ps -aq | wc -l)" -eq "$before" ]
}
check low-port lowport

check build-run K build -q -t rl ctx

# The stack killed, the next container brings networking back.
gone() { [ ! -e /proc/$1 ] || grep -q ') Z' /proc/$1/stat; }
pid=$(cat "$RT/slirp4netns.pid")
kill -9 "$pid"
while ! gone "$pid"; do sleep 0.05; done
check restored outbound

K rm -f srv web >/dev/null
K network prune -f >/dev/null
pid=$(cat "$RT/slirp4netns.pid")
kill -9 "$pid"
while ! gone "$pid"; do sleep 0.05; done
echo done
`

// TestRootlessNetworking runs kiln as a fresh user, rootless, in one user
// and mount namespace (what the rootless core's pause process will hold):
// outbound TCP from a container and from a build's RUN step through
// slirp4netns, the host's loopback out of reach of both, containers of a
// user-defined network that reach each other by name, -p reachable on the
// host's 127.0.0.1, a port below ip_unprivileged_port_start refused with a
// one-line error before anything is made, networking back after the stack
// process was killed, and nothing left (no process of the user, which is
// removed; no mount on the host).
func TestRootlessNetworking(t *testing.T) {
	kilntest.NeedTool(t, "slirp4netns")
	kilntest.UsableTun(t)
	u := kilntest.RootlessUser(t, "")
	u.Env = append(u.Env, "KILN_TEST_MAIN=1")
	var base string
	importBaseInto(t, func(tarPath string) { base = userCopy(t, u, tarPath, "base.tar") })
	t.Cleanup(func() { kilntest.KillPidFile(filepath.Join(u.RuntimeDir, "kiln", "slirp4netns.pid"), "slirp4netns") })
	store := filepath.Join(u.Home, ".local", "share", "kiln")
	if err := os.MkdirAll(store, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(store, "config.json"), []byte(`{"teardown-delay": 0}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(u.Home, ".local"), filepath.Join(u.Home, ".local", "share"), store} {
		if err := os.Chown(d, u.UID, u.GID); err != nil {
			t.Fatal(err)
		}
	}

	hostIP := kilntest.HostAddress(t)
	outside, loopback := kilntest.ServeHello(t, hostIP+":0"), kilntest.ServeHello(t, "127.0.0.1:0")
	_, outPort, _ := net.SplitHostPort(outside)
	_, loopPort, _ := net.SplitHostPort(loopback)

	ctx := filepath.Join(u.Home, "ctx")
	if err := os.Mkdir(ctx, 0o755); err != nil {
		t.Fatal(err)
	}
	get := `printf "GET / HTTP/1.0\r\n\r\n" | nc -w 5`
	dockerfile := fmt.Sprintf("FROM bb\nRUN %s %s %s | grep -q 'hello from'\nRUN ! (%s 10.0.2.2 %s | grep -q 'hello from')\n",
		get, hostIP, outPort, get, loopPort)
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(u.Home, "scenario.sh")
	if err := os.WriteFile(script, []byte(rootlessNetScript), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := u.Command()
	cmd.Path, cmd.Args = "/bin/sh", []string{"sh", script}
	cmd.Env = append(cmd.Env, "KILN="+u.Kiln, "BASE="+base, "OUT_IP="+hostIP, "OUT_PORT="+outPort, "LOOP_PORT="+loopPort)
	res, err := cmd.CombinedOutput()
	text := string(res)
	if err != nil || !strings.Contains(text, "\ndone") && !strings.HasPrefix(text, "done") {
		t.Fatalf("rootless scenario: %v\n%s", err, text)
	}
	for _, check := range []string{"outbound", "no-host-loopback", "by-name", "published", "low-port", "build-run", "restored"} {
		if !strings.Contains(text, "ok: "+check+"\n") {
			t.Errorf("%s failed", check)
		}
	}
	if t.Failed() {
		t.Logf("scenario output:\n%s", text)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), u.Home) || strings.Contains(string(mi), u.RuntimeDir) {
		t.Errorf("mount of the user's left in the host's mount namespace")
	}
}

// userCopy copies src into the user's home as name, readable by all.
func userCopy(t *testing.T, u *kilntest.User, src, name string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(u.Home, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
