package runner

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
)

func TestMain(m *testing.M) {
	if IsInit() {
		Init()
	}
	if len(os.Args) > 0 && os.Args[0] == adoptHelperArg0 {
		adoptHelper() // prestart_test.go
	}
	// Mounts made by the tests themselves stay out of the host's namespace.
	if err := EnterMountNamespace(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

var applets = []string{
	"sh", "echo", "cat", "ls", "id", "touch", "rm", "mkdir", "rmdir", "hostname", "true",
	"sleep", "pwd", "stat", "head", "wc", "test", "env", "kill",
}

const (
	testPasswd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
	testGroup  = "root:x:0:\napp:x:1000:\nextra:x:2000:app\n"
)

// makeBusyboxRoot builds a tiny image in dir: /bin/busybox and applet
// symlinks, plus /etc/passwd and /etc/group when withEtc.
func makeBusyboxRoot(t testing.TB, dir string, withEtc bool) {
	t.Helper()
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("busybox: %v", err)
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(bin, a)); err != nil {
			t.Fatal(err)
		}
	}
	if withEtc {
		etc := filepath.Join(dir, "etc")
		if err := os.MkdirAll(etc, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(etc, "passwd"), []byte(testPasswd), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(etc, "group"), []byte(testGroup), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// newSpec returns a Spec over a fresh busybox lower with empty upper, work
// and rootfs directories, and checks after the test that nothing is left.
func newSpec(t testing.TB, withEtc bool, args ...string) *Spec {
	t.Helper()
	kilntest.RequireRoot(t)
	base := t.TempDir()
	t.Cleanup(func() { assertClean(t, base) })
	s := &Spec{
		Lowers: []string{filepath.Join(base, "lower")},
		Upper:  filepath.Join(base, "upper"),
		Work:   filepath.Join(base, "work"),
		Rootfs: filepath.Join(base, "rootfs"),
		Args:   args,
	}
	for _, d := range []string{s.Upper, s.Work, s.Rootfs} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	makeBusyboxRoot(t, s.Lowers[0], withEtc)
	return s
}

// run runs s and returns the exit code and captured output.
func run(t testing.TB, s *Spec) (int, string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	s.Stdout, s.Stderr = &stdout, &stderr
	code, err := Run(context.Background(), s)
	return code, stdout.String(), stderr.String(), err
}

// mustRun runs s and fails unless it exits 0.
func mustRun(t testing.TB, s *Spec) string {
	t.Helper()
	code, out, errOut, err := run(t, s)
	if err != nil || code != 0 {
		t.Fatalf("Run(%q) = %d, %v; stderr %q", s.Args, code, err, errOut)
	}
	return out
}

// assertClean fails if a mount under dir remains (in this process's mount
// namespace or PID 1's) or if a child process (a sandbox init) is left.
func assertClean(t testing.TB, dir string) {
	t.Helper()
	for _, f := range []string{"/proc/self/mountinfo", "/proc/1/mountinfo"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Errorf("read %s: %v", f, err)
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, dir) {
				t.Errorf("mount left behind in %s: %s", f, line)
			}
		}
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	me := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(stat, ')')
		fields := strings.Fields(string(stat[i+1:]))
		// Sandbox processes all die with their init, which is our child:
		// none may remain once Run returned.
		if len(fields) > 1 && fields[1] == strconv.Itoa(me) {
			t.Errorf("child process %d left behind: %s", pid, stat)
		}
	}
}

// listTree lists the paths under dir, relative to it.
func listTree(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
