package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/runner/container"
)

// standbyMonitors are the processes of monitors of e's store still waiting
// for their container.
func (e *env) standbyMonitors() []string {
	return processesOf("kiln-monitor\x00" + e.root + "\x00-\x00")
}

// `run` starts the container's monitor before it creates the container: a
// run that fails before its container starts leaves no monitor behind once
// it exits, and one that starts its container gets the same results as
// before, attached or not, with stdin or without.
func TestRunStandbyMonitor(t *testing.T) {
	e := newContainerEnv(t)
	for _, args := range [][]string{
		{"run", "--rm", "--pull", "never", "nosuchimage", "true"},
		{"run", "-d", "--pull", "never", "nosuchimage", "true"},
		{"run", "--rm", "--cap-add", "CAP_NOPE", "bb", "true"},
		{"run", "--rm", "--name", "bad/name", "bb", "true"},
	} {
		if r := e.run("", args...); r.code != 125 {
			t.Errorf("%v: exit %d, want 125\n%s", args, r.code, r.stderr)
		}
		if left := e.standbyMonitors(); len(left) > 0 {
			t.Errorf("%v left standby monitors: %v", args, left)
		}
	}
	if r := e.run("", "run", "--rm", "bb", "sh", "-c", "echo out; echo err >&2; exit 3"); r.code != 3 || r.stdout != "out\n" || r.stderr != "err\n" {
		t.Errorf("run --rm: %+v", r)
	}
	if r := e.run("in\n", "run", "--rm", "-i", "bb", "cat"); r.code != 0 || r.stdout != "in\n" {
		t.Errorf("run -i: %+v", r)
	}
	if r := e.run("", "run", "--rm", "bb", "nosuchcommand"); r.code != 127 {
		t.Errorf("run of a missing command: %+v", r)
	}
	id := strings.TrimSpace(e.kiln("run", "-d", "bb", "sh", "-c", "echo detached"))
	if got := strings.TrimSpace(e.kiln("wait", id)); got != "0" {
		t.Errorf("wait: %q", got)
	}
	if got := e.kiln("logs", id); got != "detached\n" {
		t.Errorf("logs of run -d: %q", got)
	}
	e.kiln("rm", id)
	if out := e.kiln("ps", "-aq"); out != "" {
		t.Errorf("containers left: %q", out)
	}
	if left := e.standbyMonitors(); len(left) > 0 {
		t.Errorf("standby monitors left: %v", left)
	}
}

// A --rm container's overlay is volatile (nothing syncs its upper
// directory, which goes with it), and each start gets a fresh work
// directory: after its monitor was killed, the container starts again
// (overlayfs refuses a work directory a volatile mount used). The init the
// monitor started before Go runs it confined as any: in a network
// namespace of its own with eth0, without the capabilities docker drops.
func TestRunRmVolatile(t *testing.T) {
	e := newContainerEnv(t)
	r := e.run("", "run", "--rm", "bb", "sh", "-c", "grep ' / overlay ' /proc/mounts; ls /sys/class/net; grep CapBnd /proc/self/status")
	if r.code != 0 || !strings.Contains(r.stdout, "volatile") || !strings.Contains(r.stdout, "eth0\n") ||
		!strings.Contains(r.stdout, "CapBnd:\t00000000a80425fb") {
		t.Fatalf("run --rm: %+v", r)
	}
	if r := e.run("", "run", "--name", "kept", "bb", "grep", "-c", "volatile", "/proc/mounts"); r.code != 1 || r.stdout != "0\n" {
		t.Errorf("a container without --rm: %+v", r)
	}
	e.kiln("rm", "kept")
	id := strings.TrimSpace(e.kiln("run", "-d", "--rm", "--name", "again", "bb", "sleep", "3600"))
	e.killMonitor(id)
	waitFor(t, func() bool { return e.inspectF("{{.State.Status}}", id) == "exited" })
	if r := e.run("", "start", "again"); r.code != 0 {
		t.Fatalf("start of the --rm container after its monitor's death: %+v", r)
	}
	if s := e.inspectF("{{.State.Status}}", id); s != "running" {
		t.Fatalf("status after start: %s", s)
	}
	e.kiln("rm", "-f", "again")
}

// The standby monitor of an attached run without stdin is started by the
// client's constructor, before its Go runtime, for the flags it reads
// there; the client takes it only when its own flags, store root and
// network mode agree, and else closes it and starts its own. Either way
// the container runs as asked and no monitor is left (a --rm container's
// removes the cgroup and the trashed files once its client returned: it is
// waited for).
func TestRunEarlyStandby(t *testing.T) {
	e := newContainerEnv(t)
	nets := "ls /sys/class/net | tr '\\n' ' '"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--rm", "bb", "sh", "-c", nets}, "eth0 lo"},
		{[]string{"run", "--rm", "--network", "none", "bb", "sh", "-c", nets}, "lo"},
		{[]string{"run", "--rm", "--net=none", "-e", "A=1", "--name=early", "bb", "sh", "-c", "echo $A"}, "1"},
		{[]string{"run", "--rm", "--network", "host", "bb", "sh", "-c", "test -e /sys/class/net/lo && echo host"}, "host"},
		// read as the last network flag, as the client reads it
		{[]string{"run", "--rm", "--network=none", "--network", "bridge", "bb", "sh", "-c", nets}, "eth0 lo"},
		{[]string{"run", "--rm", "-e", "B=2", "--stop-timeout", "3", "--cpus", "1", "bb", "sh", "-c", "echo $B"}, "2"},
		// not started there (a flag it does not know, -i): the client's own
		{[]string{"run", "--rm", "--health-cmd", "true", "bb", "echo", "unknown there"}, "unknown there"},
		{[]string{"run", "--rm", "-i", "bb", "echo", "stdin"}, "stdin"},
	} {
		r := e.run("", c.args...)
		if r.code != 0 || strings.TrimSpace(r.stdout) != c.want {
			t.Errorf("%v: %+v, want %q", c.args, r, c.want)
		}
		e.assertNoContainers(nil)
	}
	// Another store root than the client's (a relative one, made absolute
	// without cleaning there): closed, and the client's own started.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, e.root)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "--root", "./"+rel+"/", "run", "--rm", "bb", "echo", "relative")
	cmd.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "relative\n" {
		t.Errorf("run with a relative --root: %v\n%s", err, out)
	}
	e.assertNoContainers(nil)
}

// The constructor that starts run's standby monitor before the Go runtime
// reads run's flags from a table of its own: it must know each of them as
// run does (a value flag, a boolean), except those that change how the
// client attaches, which leave the run to the monitor Go starts.
func TestEarlyStandbyKnowsRunFlags(t *testing.T) {
	goOnly := map[string]bool{"attach": true, "interactive": true, "tty": true, "detach": true, "detach-keys": true, "help": true}
	cmd := newRunCommand(&globals{})
	cmd.InitDefaultHelpFlag()
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		want := container.StandbyFlagValue
		switch {
		case goOnly[f.Name]:
			want = container.StandbyFlagGo
		case f.Value.Type() == "bool":
			want = container.StandbyFlagBool
		}
		names := []string{"--" + f.Name}
		if f.Shorthand != "" && !(f.Name == "help" && f.Shorthand == "h") {
			names = append(names, "-"+f.Shorthand)
		}
		for _, n := range names {
			if got := container.EarlyStandbyFlag(n); got != want {
				t.Errorf("standby_linux.c reads %s as %d, want %d", n, got, want)
			}
		}
	})
}
