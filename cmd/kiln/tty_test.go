package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/runner"
)

// ptyKiln is kiln running on a terminal of its own, as a user types at it.
type ptyKiln struct {
	t      *testing.T
	master *os.File
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    strings.Builder
	done   chan struct{}
}

// startPty starts kiln args on a new terminal of rows x cols, as the
// session leader with the terminal as its controlling terminal.
func (e *env) startPty(rows, cols uint16, args ...string) *ptyKiln {
	e.t.Helper()
	master, slave, err := runner.OpenPty()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := runner.SetWinsize(master, rows, cols); err != nil {
		e.t.Fatal(err)
	}
	self, _ := os.Executable()
	p := &ptyKiln{t: e.t, master: master, done: make(chan struct{})}
	p.cmd = exec.Command(self, append([]string{"--root", e.root}, args...)...)
	p.cmd.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = slave, slave, slave
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	slave.Close()
	go func() {
		defer close(p.done)
		r := bufio.NewReader(master)
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	e.t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		master.Close()
		<-p.done
	})
	return p
}

func (p *ptyKiln) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// expect waits for the terminal to show s, counted from the start.
func (p *ptyKiln) expect(s string) {
	p.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(p.output(), s) {
		if time.Now().After(deadline) {
			p.t.Fatalf("the terminal never showed %q; it shows:\n%q", s, p.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *ptyKiln) send(s string) {
	p.t.Helper()
	if _, err := p.master.WriteString(s); err != nil {
		p.t.Fatal(err)
	}
}

// wait waits for kiln to exit and returns its exit code.
func (p *ptyKiln) wait() int {
	p.t.Helper()
	ch := make(chan error, 1)
	go func() { ch <- p.cmd.Wait() }()
	select {
	case err := <-ch:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			p.t.Fatal(err)
		}
		return 0
	case <-time.After(time.Minute):
		p.t.Fatalf("kiln did not exit; the terminal shows:\n%q", p.output())
		return -1
	}
}

// run -it: the terminal's size and its changes reach the container, and
// Ctrl-C reaches its process.
func TestContainerTTYSizeAndCtrlC(t *testing.T) {
	e := newContainerEnv(t)
	p := e.startPty(40, 120, "run", "-it", "--rm", "bb", "sh", "-c",
		`trap 'echo size $(stty size)' WINCH; trap 'echo got-int; exit 7' INT; echo size $(stty size); `+
			`echo tty=$(tty) term=$TERM; ls -l /dev/console | grep -q ' 136, *0 ' && echo console-is-pts0; test -t 0 && echo ready; while :; do sleep 0.05; done`)
	p.expect("size 40 120")
	// The terminal is the container's own: /dev/pts/0 of its devpts, also
	// its /dev/console, and TERM says what it is.
	p.expect("tty=/dev/pts/0 term=xterm")
	p.expect("console-is-pts0")
	p.expect("ready")
	if err := runner.SetWinsize(p.master, 50, 160); err != nil {
		t.Fatal(err)
	}
	p.expect("size 50 160")
	p.send("\x03")
	p.expect("got-int")
	if code := p.wait(); code != 7 {
		t.Errorf("exit %d, want 7; terminal:\n%q", code, p.output())
	}
}

// The detach keys leave a container running; attach gets back to it.
func TestContainerTTYDetachAndAttach(t *testing.T) {
	e := newContainerEnv(t)
	p := e.startPty(24, 80, "run", "-it", "--name", "d", "bb", "sh")
	p.send("echo hel''lo\n")
	p.expect("hello")
	p.send("\x10\x11") // ctrl-p ctrl-q
	if code := p.wait(); code != 0 {
		t.Fatalf("detaching from run exited %d:\n%q", code, p.output())
	}
	if got := e.inspectF("{{.State.Status}}", "d"); got != "running" {
		t.Fatalf("after detaching: %s", got)
	}
	a := e.startPty(24, 80, "attach", "d")
	a.send("echo ag''ain\n")
	a.expect("again")
	a.send("\x10\x11")
	a.expect("read escape sequence")
	if code := a.wait(); code != 1 {
		t.Errorf("detaching from attach exited %d, want docker's 1", code)
	}
	a = e.startPty(24, 80, "attach", "--detach-keys", "ctrl-x,x", "d")
	a.send("echo $((6*7))\n")
	a.expect("42")
	a.send("\x18x")
	if code := a.wait(); code != 1 {
		t.Errorf("detaching with --detach-keys exited %d", code)
	}
	a = e.startPty(24, 80, "attach", "d")
	a.send("exit 3\n")
	if code := a.wait(); code != 3 {
		t.Errorf("attach exited %d when the container exited 3:\n%q", code, a.output())
	}
	if got := e.inspectF("{{.State.Status}} {{.State.ExitCode}}", "d"); got != "exited 3" {
		t.Errorf("after exit: %s", got)
	}
	if r := e.run("", "attach", "d"); r.code == 0 || !strings.Contains(r.stderr, "start it first") {
		t.Errorf("attach to a stopped container: %+v", r)
	}
	// -it needs a terminal, and nothing is created without one.
	if r := e.run("", "run", "-it", "--name", "notty", "bb", "true"); r.code == 0 || !strings.Contains(r.stderr, "not a TTY") {
		t.Errorf("run -it without a terminal: %+v", r)
	}
	if r := e.run("", "inspect", "notty"); r.code == 0 {
		t.Errorf("run -it without a terminal created a container")
	}
}

func TestContainerExecTTY(t *testing.T) {
	e := newContainerEnv(t)
	startBox(e, "box")
	p := e.startPty(30, 90, "exec", "-it", "box", "sh", "-c", "tty; stty size; echo $TERM")
	p.expect("/dev/pts/0")
	p.expect("30 90")
	p.expect("xterm")
	if code := p.wait(); code != 0 {
		t.Errorf("exec -it exited %d", code)
	}
	p = e.startPty(30, 90, "exec", "-it", "box", "sh", "-c", `trap 'echo got-int; exit 9' INT; echo ready; while :; do sleep 0.05; done`)
	p.expect("ready")
	p.send("\x03")
	p.expect("got-int")
	if code := p.wait(); code != 9 {
		t.Errorf("exec -it after Ctrl-C exited %d, want 9", code)
	}
	p = e.startPty(30, 90, "exec", "-it", "box", "sh")
	p.send("echo $((6*7))\n")
	p.expect("42")
	p.send("\x10\x11")
	if code := p.wait(); code != 1 {
		t.Errorf("detaching from exec exited %d", code)
	}
}

// attach without a terminal follows the output and ends with the
// container's exit code.
func TestContainerAttachNoTTY(t *testing.T) {
	e := newContainerEnv(t)
	e.kiln("run", "-d", "--name", "ticker", "bb", "sh", "-c", "trap 'exit 4' TERM; while :; do echo tick; sleep 0.05; done")
	self, _ := os.Executable()
	cmd := exec.Command(self, "--root", e.root, "attach", "ticker")
	cmd.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "tick\n" {
		t.Fatalf("attach read %q", line)
	}
	// SIGTERM to attach goes to the container (--sig-proxy).
	cmd.Process.Signal(syscall.SIGTERM)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 4 {
		t.Errorf("attach ended with %v, want exit 4", err)
	}
}
