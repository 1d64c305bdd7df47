package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
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

// adoptHelperArg0 makes the test binary a stand-in for a container
// monitor (the constructor of prestart_linux.c answers to this argv[0]).
const adoptHelperArg0 = "kiln-monitor"

// adoptHelper runs, in a process executed as adoptHelperArg0, the spec of
// its arguments (lower, upper, work, rootfs, then the command) in the init
// the constructor started, as a container's monitor does; it prints
// "adopted NETNS-INODE", the command's output, and exits with its code,
// or 100 when no init was adopted.
func adoptHelper() {
	p := AdoptPrestarted()
	if p == nil {
		fmt.Println("none")
		os.Exit(100)
	}
	var ns unix.Stat_t
	if err := unix.Fstat(int(p.NetNS().Fd()), &ns); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(101)
	}
	fmt.Printf("adopted %d\n", ns.Ino)
	a := os.Args[1:]
	s := &Spec{Lowers: []string{a[0]}, Upper: a[1], Work: a[2], Rootfs: a[3], Args: a[4:],
		NetNS: p.NetNS(), Prestarted: p, Capabilities: []string{"CAP_CHOWN"}}
	out, errOut := p.TakeOutput()
	copies := make(chan error, 2)
	for _, c := range []struct{ r, w *os.File }{{out, os.Stdout}, {errOut, os.Stderr}} {
		go func() {
			_, err := c.w.ReadFrom(c.r)
			copies <- err
		}()
	}
	code, err := Run(context.Background(), s)
	<-copies
	<-copies
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(102)
	}
	os.Exit(code)
}

// A container monitor's constructor starts its init before Go starts
// (PrestartEnv); the monitor adopts it and runs its container in it: in the
// init's own network namespace (lo up), with the Spec's confinement, its
// output through the pipes TakeOutput hands over, its exit code. Run from
// an unsealed binary, the init is not adopted but killed.
func TestAdoptPrestarted(t *testing.T) {
	s := newSpec(t, true)
	exe, err := SealedExe()
	if err != nil {
		t.Fatal(err)
	}
	helper := func(exe string, env ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(exe, s.Lowers[0], s.Upper, s.Work, s.Rootfs, "sh", "-c",
			"echo out; echo err >&2; stat -L -c %i /proc/self/ns/net; cat /sys/class/net/lo/flags; grep CapBnd /proc/self/status; exit 3")
		cmd.Args[0] = adoptHelperArg0
		cmd.Env, cmd.Stdout, cmd.Stderr = env, &stdout, &stderr
		err := cmd.Run()
		var exitErr *exec.ExitError
		if err != nil && !errors.As(err, &exitErr) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
	}
	code, out, errOut := helper(exe, PrestartEnv+"=1")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 3 || len(lines) != 5 || errOut != "err\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	var host unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &host); err != nil {
		t.Fatal(err)
	}
	ino, _ := strings.CutPrefix(lines[0], "adopted ")
	if lines[1] != "out" || lines[2] != ino || ino == strconv.FormatUint(host.Ino, 10) {
		t.Fatalf("want the init's own network namespace, not the host's (%d): %q", host.Ino, lines)
	}
	if flags, err := strconv.ParseUint(lines[3], 0, 32); err != nil || flags&unix.IFF_UP == 0 {
		t.Fatalf("lo flags %q: want up", lines[3])
	}
	if want := "CapBnd:\t0000000000000001"; lines[4] != want {
		t.Fatalf("%q, want %q", lines[4], want)
	}

	// Without the variable, or from a binary that is not sealed: no init.
	if code, out, _ := helper(exe); code != 100 {
		t.Fatalf("without %s: exit %d, %q", PrestartEnv, code, out)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if code, out, _ := helper(self, PrestartEnv+"=1"); code != 100 {
		t.Fatalf("unsealed: exit %d, %q", code, out)
	}
}
