package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/runner/network"
)

// Docker's default capability set (docker run, BuildKit RUN), and every
// capability of this kernel.
const (
	dockerCapEff = "00000000a80425fb"
)

// buildProbe builds testdata/secprobe statically into dir/probe.
func buildProbe(t *testing.T, dir string) string {
	t.Helper()
	src, _ := filepath.Abs("../../testdata/secprobe")
	out := filepath.Join(dir, "probe")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build secprobe: %v\n%s", err, b)
	}
	return out
}

// probeReport parses secprobe's "name: value" lines.
func probeReport(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			m[k] = v
		}
	}
	return m
}

// allCaps is CapEff with every capability kiln can give: the test's own
// bounding set (a machine may withhold some).
func allCaps(t *testing.T) string {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	return probeReport(strings.ReplaceAll(string(data), ":\t", ": "))["CapBnd"]
}

// checkConfined asserts Docker's default confinement in a probe report.
func checkConfined(t *testing.T, what string, r map[string]string) {
	t.Helper()
	want := map[string]string{"CapEff": dockerCapEff, "CapBnd": dockerCapEff, "Seccomp": "2", "NoNewPrivs": "0"}
	for k, v := range want {
		if r[k] != v {
			t.Errorf("%s: %s = %q, want %q", what, k, r[k], v)
		}
	}
	for _, k := range []string{"unshare-user", "unshare-mount", "mount", "keyctl", "write-proc-sys", "write-sys", "open-kmsg", "open-block-device", "net-admin"} {
		if !strings.HasPrefix(r[k], "refused") {
			t.Errorf("%s: %s: %q, want refused", what, k, r[k])
		}
	}
	if r["clone3"] != "refused (function not implemented)" {
		t.Errorf("%s: clone3: %q, want ENOSYS as Docker's profile", what, r["clone3"])
	}
}

// TestRunStepConfinement: a RUN step gets what BuildKit gives one by
// default, and the breakout Dockerfile cannot touch the host.
func TestRunStepConfinement(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	ctx := writeContext(t, map[string]string{"Dockerfile": `FROM localhost/bb:latest
RUN --mount=type=bind,source=probe,target=/probe /probe > /report
`})
	buildProbe(t, ctx)
	e.kiln("build", "-q", "-t", "probe", ctx)
	checkConfined(t, "RUN", probeReport(catFile(t, e, "probe", "/report")))

	// RUN --security=insecure is BuildKit's privileged RUN: only with the
	// entitlement.
	insecure := writeContext(t, map[string]string{"Dockerfile": `FROM localhost/bb:latest
RUN --security=insecure --mount=type=bind,source=probe,target=/probe /probe > /report
`})
	buildProbe(t, insecure)
	r := e.run("", "build", insecure)
	if r.code == 0 || !strings.Contains(r.stderr, "Dockerfile:2:") || !strings.Contains(r.stderr, "--allow security.insecure") {
		t.Errorf("insecure RUN without --allow: exit %d, %q", r.code, r.stderr)
	}
	e.kiln("build", "-q", "--allow", "security.insecure", "-t", "insecure", insecure)
	rep := probeReport(catFile(t, e, "insecure", "/report"))
	if rep["CapEff"] != allCaps(t) || rep["Seccomp"] != "0" || rep["mount"] != "allowed" {
		t.Errorf("RUN --security=insecure: %v", rep)
	}

	// The breakout of the issue: mount the host's disk from a block device
	// made in the RUN, and write to it.
	canary := filepath.Join(os.TempDir(), fmt.Sprintf("kiln-pwned-%d", os.Getpid()))
	os.Remove(canary)
	defer os.Remove(canary)
	evil := writeContext(t, map[string]string{"Dockerfile": fmt.Sprintf(`FROM localhost/bb:latest
RUN set -e; d=$(awk '$5=="/etc/hosts"{print $3}' /proc/self/mountinfo); mknod /dev/host b ${d%%%%:*} ${d#*:}; mkdir /h; mount -t ext4 /dev/host /h || mount -t xfs /dev/host /h || mount -t btrfs /dev/host /h; echo pwned > /h%s
`, canary)})
	if r := e.run("", "build", evil); r.code == 0 {
		t.Errorf("the breakout Dockerfile built: %s", r.stderr)
	}
	if _, err := os.Stat(canary); err == nil {
		t.Fatalf("a RUN step wrote %s on the host", canary)
	}
}

// TestRunStepNetwork: RUN steps have a network namespace of the build's
// own on kiln's bridge: outbound traffic routes through it, the host's
// interfaces and loopback services are out of reach; --network none|host
// and RUN --network as BuildKit's, host only with its entitlement.
func TestRunStepNetwork(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	t.Cleanup(func() {
		e.run("", "network", "prune", "-f")
		e.assertNoLinks([]string{network.DefaultBridgeName(e.root)})
	})
	// A server on every address of the host: on 127.0.0.1 it is the host's
	// loopback service, on the bridge's gateway the route out of the build.
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello\n") }))
	port := ln.Addr().(*net.TCPAddr).Port
	hostNS, _ := os.Readlink("/proc/self/ns/net")
	probe := fmt.Sprintf(`readlink /proc/self/ns/net > /ns; ip -o link | awk -F': ' '{print $2}' | sed 's/@.*//' | sort | tr '\n' ' ' > /links; `+
		`get() { printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 10 $1 %d | grep -q hello; }; `+
		`if get 127.0.0.1; then echo reached > /loopback; else echo unreachable > /loopback; fi; `+
		`gw=$(ip route | awk '/^default/{print $3}'); if [ -n "$gw" ] && get $gw; then echo reached > /outbound; else echo unreachable > /outbound; fi`, port)
	ctxFor := func(flag string) string {
		return writeContext(t, map[string]string{"Dockerfile": "FROM localhost/bb:latest\nRUN " + flag + " " + probe + "\n"})
	}
	check := func(image, links, loopback, outbound string, hostNet bool) {
		t.Helper()
		if got := catFile(t, e, image, "/links"); got != links {
			t.Errorf("%s: interfaces %q, want %q", image, got, links)
		}
		if got := strings.TrimSpace(catFile(t, e, image, "/loopback")); got != loopback {
			t.Errorf("%s: the host's 127.0.0.1 service: %s, want %s", image, got, loopback)
		}
		if got := strings.TrimSpace(catFile(t, e, image, "/outbound")); got != outbound {
			t.Errorf("%s: outbound through the gateway: %s, want %s", image, got, outbound)
		}
		if ns := strings.TrimSpace(catFile(t, e, image, "/ns")); (ns == hostNS) != hostNet {
			t.Errorf("%s: network namespace %s, host's %s", image, ns, hostNS)
		}
	}

	e.kiln("build", "-q", "-t", "default", ctxFor(""))
	check("default", "eth0 lo ", "unreachable", "reached", false)
	e.kiln("build", "-q", "-t", "none", ctxFor("--network=none"))
	check("none", "lo ", "unreachable", "unreachable", false)
	e.kiln("build", "-q", "--network", "none", "-t", "none2", ctxFor(""))
	check("none2", "lo ", "unreachable", "unreachable", false)

	for _, args := range [][]string{{ctxFor("--network=host")}, {"--network", "host", ctxFor("")}} {
		r := e.run("", append([]string{"build"}, args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, "network.host") {
			t.Errorf("build %v without --allow network.host: exit %d, %q", args, r.code, r.stderr)
		}
	}
	e.kiln("build", "-q", "--allow", "network.host", "-t", "host", ctxFor("--network=host"))
	if got := strings.TrimSpace(catFile(t, e, "host", "/loopback")); got != "reached" {
		t.Errorf("RUN --network=host: the host's 127.0.0.1 service: %s", got)
	}
	if ns := strings.TrimSpace(catFile(t, e, "host", "/ns")); ns != hostNS {
		t.Errorf("RUN --network=host: namespace %s, host's %s", ns, hostNS)
	}
	if r := e.run("", "build", "--network", "bogus", ctxFor("")); r.code == 0 || !strings.Contains(r.stderr, "bogus") {
		t.Errorf("--network bogus: exit %d, %q", r.code, r.stderr)
	}
	if r := e.run("", "build", "--allow", "everything", ctxFor("")); r.code == 0 || !strings.Contains(r.stderr, "everything") {
		t.Errorf("--allow everything: exit %d, %q", r.code, r.stderr)
	}
}

// TestContainerConfinement: kiln run gives Docker's defaults, and
// --security-opt, --cap-add and --privileged change them as Docker's.
func TestContainerConfinement(t *testing.T) {
	e := newContainerEnv(t)
	dir := t.TempDir()
	probe := buildProbe(t, dir)
	run := func(args ...string) map[string]string {
		t.Helper()
		a := append([]string{"run", "--rm", "-v", probe + ":/probe:ro"}, args...)
		return probeReport(e.kiln(append(a, "bb", "/probe")...))
	}
	checkConfined(t, "run", run())

	if r := run("--security-opt", "no-new-privileges"); r["NoNewPrivs"] != "1" || r["Seccomp"] != "2" {
		t.Errorf("no-new-privileges: %v", r)
	}
	if r := run("--security-opt", "seccomp=unconfined"); r["Seccomp"] != "0" || r["CapEff"] != dockerCapEff || r["clone3"] != "allowed" {
		t.Errorf("seccomp=unconfined: %v", r)
	}
	// Docker's profile lets CAP_SYS_ADMIN mount.
	if r := run("--cap-add", "SYS_ADMIN"); r["mount"] != "allowed" || r["Seccomp"] != "2" || r["keyctl"] == "allowed" {
		t.Errorf("--cap-add SYS_ADMIN: %v", r)
	}
	if r := run("--privileged"); r["CapEff"] != allCaps(t) || r["Seccomp"] != "0" || r["mount"] != "allowed" {
		t.Errorf("--privileged: %v", r)
	}
	// A profile of one's own, in Docker's format.
	profile := filepath.Join(dir, "profile.json")
	writeFile(t, profile, `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}`)
	out := e.run("", "run", "--rm", "--security-opt", "seccomp="+profile, "bb", "sh", "-c", "mkdir /x; echo rc=$?")
	if !strings.Contains(out.stdout, "rc=1") || !strings.Contains(out.stderr+out.stdout, "ermission denied") {
		t.Errorf("custom profile: %+v", out)
	}
	for _, bad := range []string{"seccomp=" + filepath.Join(dir, "missing.json"), "apparmor=docker-default", "bogus=1", "no-new-privileges=maybe"} {
		if r := e.run("", "run", "--rm", "--security-opt", bad, "bb", "true"); r.code == 0 || !strings.Contains(r.stderr, strings.SplitN(bad, "=", 2)[0]) {
			t.Errorf("--security-opt %s: exit %d, %q", bad, r.code, r.stderr)
		}
	}
	writeFile(t, filepath.Join(dir, "broken.json"), `{"defaultAction": "SCMP_ACT_NOPE"}`)
	if r := e.run("", "run", "--rm", "--security-opt", "seccomp="+filepath.Join(dir, "broken.json"), "bb", "true"); r.code == 0 {
		t.Errorf("a broken profile was accepted: %q", r.stderr)
	}

	// kiln exec gets the container's confinement.
	id := strings.TrimSpace(e.kiln("run", "-d", "-v", probe+":/probe:ro", "bb", "sleep", "600"))
	checkConfined(t, "exec", probeReport(e.kiln("exec", id, "/probe")))
}
