package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// tmuxSession is kiln running in a pane of a private tmux server, as a
// user would run it in a terminal emulator.
type tmuxSession struct {
	t    *testing.T
	sock string
}

func (e *env) startTmux(cols, rows int, args ...string) *tmuxSession {
	e.t.Helper()
	kilntest.NeedTool(e.t, "tmux")
	s := &tmuxSession{t: e.t, sock: filepath.Join(e.t.TempDir(), "tmux")}
	self, _ := os.Executable()
	cmd := append([]string{"new-session", "-d", "-s", "k", "-x", strconv.Itoa(cols), "-y", strconv.Itoa(rows),
		"-e", "KILN_TEST_MAIN=1", self, "--root", e.root}, args...)
	s.tmux(cmd...)
	e.t.Cleanup(func() { _ = exec.Command("tmux", "-S", s.sock, "kill-server").Run() })
	return s
}

func (s *tmuxSession) tmux(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", s.sock}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// screen is what the pane shows now.
func (s *tmuxSession) screen() string {
	out, _ := exec.Command("tmux", "-S", s.sock, "capture-pane", "-p", "-t", "k").Output()
	return string(out)
}

// expect waits for the pane to show want.
func (s *tmuxSession) expect(want string) {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if strings.Contains(s.screen(), want) {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the pane never showed %q; it shows:\n%s", want, s.screen())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// line types a line into the pane.
func (s *tmuxSession) line(text string) {
	s.t.Helper()
	s.tmux("send-keys", "-t", "k", "-l", text)
	s.tmux("send-keys", "-t", "k", "Enter")
}

// run -it in a real terminal emulator: the shell prompts and echoes, the
// terminal is the container's own, its size is the pane's and follows it.
func TestContainerTTYInTmux(t *testing.T) {
	e := newContainerEnv(t)
	s := e.startTmux(100, 30, "run", "-it", "--rm", "bb", "sh")
	s.expect("/ #")
	s.line("echo typed-''and-echoed")
	s.expect("echo typed-''and-echoed") // the terminal's echo
	s.expect("typed-and-echoed\n")      // the command's output
	s.line("echo size=$(stty size) tty=$(tty) term=$TERM")
	s.expect("size=30 100 tty=/dev/pts/0 term=xterm")
	s.tmux("resize-window", "-t", "k", "-x", "120", "-y", "40")
	s.line("echo size=$(stty size)")
	s.expect("size=40 120")
	s.line("exit")
	deadline := time.Now().Add(time.Minute)
	for exec.Command("tmux", "-S", s.sock, "has-session", "-t", "k").Run() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("kiln did not exit with the shell; the pane shows:\n%s", s.screen())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
