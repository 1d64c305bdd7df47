package runner

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startSleeper starts a sandbox that writes /marker and sleeps, and returns
// its PID; the sandbox is killed after the test.
func startSleeper(t *testing.T, s *Spec) int {
	t.Helper()
	started := make(chan int)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Start and Wait share a goroutine (the sandbox is tied to its thread).
		p, _, err := Start(s)
		if err != nil {
			t.Error(err)
			close(started)
			return
		}
		started <- p.Pid
		p.Wait()
	}()
	pid, ok := <-started
	if !ok {
		t.FailNow()
	}
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGKILL)
		<-done
	})
	deadline := time.Now().Add(time.Minute)
	for !exists(filepath.Join(s.Upper, "marker")) {
		if time.Now().After(deadline) {
			t.Fatal("the sandbox did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return pid
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// execOut runs spec to completion and returns its exit code and stdout.
func execOut(t *testing.T, spec *ExecSpec) (int, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	spec.Stdout = w
	p, code, err := StartExec(spec)
	w.Close()
	if err != nil {
		r.Close()
		t.Fatalf("StartExec(%q) = %d, %v", spec.Args, code, err)
	}
	out, _ := io.ReadAll(r)
	r.Close()
	code, err = p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return code, string(out)
}

func TestStartExecJoinsTheSandbox(t *testing.T) {
	s := newSpec(t, true, "sh", "-c", "echo hi > /marker; exec sleep 100")
	s.Hostname, s.Network = "box", "none"
	pid := startSleeper(t, s)

	// The mounts, hostname, PID namespace (the sleeper is PID 1, we are
	// not) and network namespace (only lo) of the sandbox.
	code, out := execOut(t, &ExecSpec{Pid: pid, Args: []string{"sh", "-c",
		`cat /marker; hostname; cat /proc/1/cmdline | busybox tr '\0' ' '; echo; test $$ -ne 1 && echo not-pid-1; ls /sys/class/net; pwd; echo $HOME`}})
	want := "hi\nbox\nsleep 100 \nnot-pid-1\nlo\n/\n/root\n"
	if code != 0 || out != want {
		t.Errorf("exec = %d %q, want %q", code, out, want)
	}
	// The user, the working directory, the environment.
	code, out = execOut(t, &ExecSpec{Pid: pid, User: "app", Cwd: "/etc", Env: []string{"A=1"},
		Args: []string{"sh", "-c", `echo $(id -u):$(id -g) $(pwd) $A $HOME; exit 3`}})
	if code != 3 || out != "1000:1000 /etc 1 /home/app\n" {
		t.Errorf("exec as app = %d %q", code, out)
	}
	// Capabilities and no_new_privs, from the spec.
	_, out = execOut(t, &ExecSpec{Pid: pid, Capabilities: []string{"CAP_KILL"}, NoNewPrivileges: true,
		Args: []string{"sh", "-c", `while read k v; do case $k in CapEff:|CapBnd:|NoNewPrivs:) echo $k $v;; esac; done < /proc/self/status`}})
	if out != "CapEff: 0000000000000020\nCapBnd: 0000000000000020\nNoNewPrivs: 1\n" {
		t.Errorf("capabilities: %q", out)
	}
	// The caller's own threads stay where they were (the throwaway thread
	// that joined the sandbox ends once its goroutine returns).
	if left := threadsElsewhere(t, "mnt", 0); len(left) > 0 {
		t.Errorf("threads outside the process's mount namespace: %v", left)
	}
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) == 0 {
		t.Fatalf("glob %s: %v", pattern, err)
	}
	return m
}

func TestStartExecTerminal(t *testing.T) {
	s := newSpec(t, true, "sh", "-c", "echo hi > /marker; exec sleep 100")
	pid := startSleeper(t, s)
	p, _, err := StartExec(&ExecSpec{Pid: pid, Terminal: true, Rows: 30, Cols: 100,
		Args: []string{"sh", "-c", `test -t 0 && echo tty; busybox stty size; ls -l /proc/self/fd/0 | busybox sed 's/.*-> //'`}})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(p.Pty) // EIO once the slave is closed
	p.Pty.Close()
	if code, err := p.Wait(); code != 0 || err != nil {
		t.Errorf("exit %d, %v", code, err)
	}
	// The terminal is one of the sandbox's own devpts.
	if got := strings.ReplaceAll(string(out), "\r\n", "\n"); got != "tty\n30 100\n/dev/pts/0\n" {
		t.Errorf("terminal: %q", got)
	}
}

func TestStartExecErrors(t *testing.T) {
	s := newSpec(t, true, "sh", "-c", "echo hi > /marker; exec sleep 100")
	pid := startSleeper(t, s)
	for _, tc := range []struct {
		spec ExecSpec
		code int
		is   error
	}{
		{ExecSpec{Pid: pid, Args: []string{"no-such-command"}}, 127, ErrExecutableNotFound},
		{ExecSpec{Pid: pid, Args: []string{"/etc/passwd"}}, 126, nil},
		{ExecSpec{Pid: pid, Args: []string{"true"}, User: "nobody"}, -1, ErrNoPasswdEntries},
		{ExecSpec{Pid: pid, Args: []string{"true"}, Cwd: "/no/such/dir"}, 126, nil},
		{ExecSpec{Pid: pid, Args: []string{"true"}, PidStart: 1}, -1, ErrSandboxGone},
		{ExecSpec{Pid: pid, Args: []string{"true"}, Capabilities: []string{"CAP_NOPE"}}, -1, ErrUnknownCapability},
	} {
		p, code, err := StartExec(&tc.spec)
		if err == nil {
			p.Wait()
			t.Errorf("%+v: no error", tc.spec)
			continue
		}
		if code != tc.code || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("%+v: %d, %v; want %d, %v", tc.spec, code, err, tc.code, tc.is)
		}
	}
	// A process that is gone.
	if _, _, err := StartExec(&ExecSpec{Pid: 1 << 22, Args: []string{"true"}}); !errors.Is(err, ErrSandboxGone) {
		t.Errorf("exec into a missing process: %v", err)
	}
}
