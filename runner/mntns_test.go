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
)

func TestEnterMountNamespace(t *testing.T) {
	requireRoot(t)
	// TestMain called it: this process is the re-executed child.
	if os.Getenv(MountNamespaceEnv) == "" {
		t.Fatal("marker not set")
	}
	if err := EnterMountNamespace(); err != nil {
		t.Fatalf("with the marker set: %v", err)
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

// helperProcess runs this test binary as a fresh process (without the
// marker) executing only TestHelperProcess in the given mode.
func helperProcess(mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, MountNamespaceEnv+"=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(cmd.Env, "KILN_TEST_HELPER="+mode)
	return cmd
}

func TestHelperProcess(t *testing.T) {
	switch os.Getenv("KILN_TEST_HELPER") {
	case "exit7":
		os.Exit(7)
	case "sleep":
		os.Stdout.WriteString("ready\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
}

func TestEnterMountNamespaceExitAndSignals(t *testing.T) {
	requireRoot(t)
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
