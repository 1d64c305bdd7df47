package runner

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A prestarted init runs the Spec it is given as Run would: output, exit
// code, network namespace, and the same confinement (here: capabilities).
func TestRunPrestarted(t *testing.T) {
	s := newSpec(t, true, "sh", "-c", "echo out; echo err >&2; stat -L -c %i /proc/self/ns/net; grep CapBnd /proc/self/status; exit 3")
	s.Network = "none"
	s.Capabilities = []string{"CAP_CHOWN"}
	p, err := Prestart(nil, true)
	if err != nil {
		t.Fatal(err)
	}
	s.Prestarted = p
	code, out, errOut, err := run(t, s)
	if cerr := p.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil || code != 3 {
		t.Fatalf("Run = %d, %v (stderr %q)", code, err, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var host unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &host); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 3 || lines[0] != "out" || errOut != "err\n" {
		t.Fatalf("stdout %q stderr %q", out, errOut)
	}
	if lines[1] == strconv.FormatUint(host.Ino, 10) {
		t.Fatal("prestarted with Network none: the sandbox has the host's network namespace")
	}
	if want := "CapBnd:\t0000000000000001"; lines[2] != want {
		t.Fatalf("%q, want %q", lines[2], want)
	}
}

// A prestarted init for another network is not used (and Close reaps it);
// one no Run took is killed by Close.
func TestPrestartedMismatchAndClose(t *testing.T) {
	s := newSpec(t, true, "stat", "-L", "-c", "%i", "/proc/self/ns/net")
	p, err := Prestart(nil, true) // a new network; s wants the host's
	if err != nil {
		t.Fatal(err)
	}
	s.Prestarted = p
	out := mustRun(t, s)
	var host unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &host); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != strconv.FormatUint(host.Ino, 10) {
		t.Fatalf("host network: namespace inode %s, host's %d", out, host.Ino)
	}
	pid := p.cmd.Process.Pid
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
		t.Fatalf("prestarted init %d after Close: kill 0 = %v", pid, err)
	}
	if err := p.Close(); err != nil { // twice: nothing
		t.Fatal(err)
	}
}
