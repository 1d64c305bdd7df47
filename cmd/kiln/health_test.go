package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/runner/container"
)

func (e *env) health(ref string) container.Health {
	e.t.Helper()
	var h container.Health
	out := e.inspectF("{{json .State.Health}}", ref)
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		e.t.Fatalf("health of %s: %q: %v", ref, out, err)
	}
	return h
}

// Health checks as docker's: the image's HEALTHCHECK and the --health-*
// flags, run by the container's monitor; .State.Health, ps STATUS, wait
// --condition; and the event journal they and the other commands append to.
// Every state change is waited for, never slept for.
func TestContainerHealth(t *testing.T) {
	e := newContainerEnv(t)
	since := time.Now().Add(-time.Second).Format(time.RFC3339Nano)
	e.kiln("build", "-q", "-t", "hc", writeContext(t, map[string]string{
		"Dockerfile": "FROM bb\nHEALTHCHECK --interval=100ms --timeout=10s --retries=2 CMD test -f /tmp/ok\n",
	}))

	// `events` follows the journal: it sees the start of a later container.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	follow := exec.Command(self, "--root", e.root, "events", "--filter", "event=start", "--format", "{{.Actor.Attributes.name}}")
	follow.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
	stdout, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = follow.Process.Kill(); _ = follow.Wait() }()
	followed := make(chan string, 8)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			followed <- sc.Text()
		}
		close(followed)
	}()

	// The image's check fails until /tmp/ok exists: unhealthy after 2 failures.
	e.kiln("run", "-d", "--network", "none", "--name", "web", "hc", "sleep", "1000")
	e.kiln("wait", "--condition", "unhealthy", "web")
	h := e.health("web")
	if h.Status != "unhealthy" || h.FailingStreak < 2 || len(h.Log) == 0 || len(h.Log) > 5 || h.Log[len(h.Log)-1].ExitCode != 1 {
		t.Errorf("failing check: %+v", h)
	}
	if st := e.inspectF("{{.State.Status}}", "web"); st != "running" {
		t.Errorf("unhealthy container status %q", st)
	}
	if ps := e.kiln("ps", "--format", "{{.Status}}"); !strings.Contains(ps, "(unhealthy)") {
		t.Errorf("ps status %q", ps)
	}
	if r := e.run("", "wait", "--condition", "healthy", "web"); r.code == 0 || !strings.Contains(r.stderr, "unhealthy") {
		t.Errorf("wait --condition healthy on an unhealthy container: %+v", r)
	}
	e.kiln("exec", "web", "touch", "/tmp/ok")
	e.kiln("wait", "--condition", "healthy", "web")
	h = e.health("web")
	if h.Status != "healthy" || h.FailingStreak != 0 || h.Log[len(h.Log)-1].ExitCode != 0 || len(h.Log) > 5 {
		t.Errorf("passing check: %+v", h)
	}
	waitFor(t, func() bool { return len(e.health("web").Log) == 5 }) // the log keeps the last 5
	if ps := e.kiln("ps", "--format", "{{.Status}}"); !strings.Contains(ps, "(healthy)") {
		t.Errorf("ps status %q", ps)
	}
	select {
	case name := <-followed:
		if name != "web" {
			t.Errorf("followed event of %q", name)
		}
	case <-time.After(time.Minute):
		t.Error("events did not follow the start")
	}

	// Flags: a failing check during a long start period stays "starting".
	e.kiln("run", "-d", "--network", "none", "--name", "slow", "--health-cmd", "echo checking; exit 3", "--health-interval", "1h",
		"--health-start-period", "1h", "--health-start-interval", "100ms", "bb", "sleep", "1000")
	waitFor(t, func() bool { return len(e.health("slow").Log) >= 2 })
	h = e.health("slow")
	if h.Status != "starting" || h.FailingStreak != 0 || h.Log[0].ExitCode != 3 || h.Log[0].Output != "checking\n" ||
		h.Log[0].End.Before(h.Log[0].Start) {
		t.Errorf("start period: %+v", h)
	}
	if ps := e.kiln("ps", "--format", "{{.Names}} {{.Status}}"); !strings.Contains(ps, "slow Up") || !strings.Contains(ps, "(health: starting)") {
		t.Errorf("ps status %q", ps)
	}
	for status, want := range map[string]string{"starting": "slow\n", "healthy": "web\n", "unhealthy": "", "none": ""} {
		if got := e.kiln("ps", "--filter", "health="+status, "--format", "{{.Names}}"); got != want {
			t.Errorf("ps --filter health=%s: %q, want %q", status, got, want)
		}
	}
	if got := e.kiln("ps", "--filter", "name=slow", "--format", "{{.HealthStatus}}"); got != "starting\n" {
		t.Errorf("ps {{.HealthStatus}}: %q", got)
	}
	if r := e.run("", "ps", "--filter", "health=fine"); r.code == 0 {
		t.Errorf("ps --filter health=fine: exit 0")
	}

	// A check that outlives its timeout counts as a failure with exit code -1.
	e.kiln("rm", "-f", "slow") // its checks stop with it
	e.kiln("run", "-d", "--network", "none", "--name", "hung", "--health-cmd", "sleep 100", "--health-timeout", "100ms",
		"--health-interval", "100ms", "--health-retries", "1", "bb", "sleep", "1000")
	e.kiln("wait", "--condition", "unhealthy", "hung")
	h = e.health("hung")
	if l := h.Log[0]; l.ExitCode != -1 || !strings.Contains(l.Output, "exceeded timeout") {
		t.Errorf("timed out check: %+v", h)
	}
	e.kiln("rm", "-f", "hung")

	// --no-healthcheck disables the image's; a stopped container is unhealthy.
	e.kiln("run", "-d", "--network", "none", "--name", "none", "--no-healthcheck", "hc", "sleep", "1000")
	if got := e.inspectF("{{json .State.Health}}", "none"); got != "null" {
		t.Errorf("--no-healthcheck: health %s", got)
	}
	if r := e.run("", "wait", "--condition", "healthy", "none"); r.code == 0 || !strings.Contains(r.stderr, "no health check") {
		t.Errorf("wait --condition healthy without a check: %+v", r)
	}
	if r := e.run("", "run", "--no-healthcheck", "--health-cmd", "true", "bb", "true"); r.code != 125 || !strings.Contains(r.stderr, "conflicts") {
		t.Errorf("--no-healthcheck with --health-cmd: %+v", r)
	}
	e.kiln("kill", "web")
	if h := e.health("web"); h.Status != "unhealthy" {
		t.Errorf("stopped container: %+v", h)
	}
	if r := e.run("", "wait", "--condition", "healthy", "web"); r.code == 0 {
		t.Errorf("wait --condition healthy on a stopped container: %+v", r)
	}

	// The journal has what happened to web, in order.
	e.kiln("rm", "web")
	got := e.kiln("events", "--since", since, "--until", time.Now().Add(time.Second).Format(time.RFC3339Nano),
		"--filter", "container=web", "--format", "{{.Action}}")
	want := []string{"create", "start", "health_status: unhealthy", "health_status: healthy", "kill", "die", "destroy"}
	if strings.Join(strings.Fields(strings.ReplaceAll(got, ": ", ":")), " ") != strings.ReplaceAll(strings.Join(want, " "), ": ", ":") {
		t.Errorf("events of web:\n%s\nwant %q", got, want)
	}
}
