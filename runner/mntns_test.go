package runner

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
)

func TestEnterMountNamespace(t *testing.T) {
	kilntest.RequireRoot(t)
	// TestMain called it: this process is the re-executed child.
	if private, err := InPrivateMountNamespace(); err != nil || !private {
		t.Fatalf("InPrivateMountNamespace = %v, %v in the re-executed child", private, err)
	}
	if err := EnterMountNamespace(); err != nil {
		t.Fatalf("in the re-executed child: %v", err)
	}
	self, err1 := os.Readlink("/proc/self/ns/mnt")
	parent, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", os.Getppid()))
	if err1 != nil || err2 != nil || self == parent {
		t.Fatalf("mount namespace %q, the parent's %q (%v, %v)", self, parent, err1, err2)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 6 && f[4] == "/" && strings.Contains(line, "shared:") {
			t.Fatalf("/ is still shared: %s", line)
		}
	}
}

// helperProcess runs this test binary as a fresh process executing only
// TestHelperProcess in the given mode.
func helperProcess(mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "KILN_TEST_HELPER="+mode)
	return cmd
}

func TestHelperProcess(t *testing.T) {
	switch os.Getenv("KILN_TEST_HELPER") {
	case "exit7":
		os.Exit(7)
	case "mntns":
		// Report the namespace this helper ended up in, from the host's
		// view of it: its own and its parent's.
		self, _ := os.Readlink("/proc/self/ns/mnt")
		parent, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", os.Getppid()))
		fmt.Printf("%s %s\n", self, parent)
		os.Exit(0)
	case "sleep":
		os.Stdout.WriteString("ready\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
}

func TestEnterMountNamespaceExitAndSignals(t *testing.T) {
	kilntest.RequireRoot(t)
	err := helperProcess("exit7").Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("exit code: %v", err)
	}

	cmd := helperProcess("sleep")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("helper: %q, %v", buf, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if !errors.As(err, &ee) || ee.ExitCode() != 128+int(syscall.SIGTERM) {
		t.Fatalf("after SIGTERM: %v", err)
	}
}

// An internal marker once said "already in a private mount namespace"; set
// in a user's environment, it made kiln mount on the host's namespace. The
// environment must change nothing: the process that runs is in a namespace
// of its own, not its parent's.
func TestEnterMountNamespaceIgnoresEnvironment(t *testing.T) {
	kilntest.RequireRoot(t)
	for _, marker := range []string{"KILN_MNTNS=1", "KILN_MNTNS=yes"} {
		cmd := helperProcess("mntns")
		cmd.Env = append(cmd.Env, marker)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", marker, err)
		}
		f := strings.Fields(string(out))
		if len(f) != 2 || f[0] == f[1] {
			t.Fatalf("with %s in the environment the process runs in its parent's mount namespace: %q", marker, out)
		}
	}
}
