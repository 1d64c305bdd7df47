package container

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/kiln-build/kiln/runner"
)

// stdio is one run's plumbing between a process and its monitor: the
// process's output goes to the log (when there is one) and to the attached
// clients, their input to its stdin.
type stdio struct {
	stdin, stdout, stderr *os.File   // the process's ends
	keep                  []*os.File // the monitor's ends
	child                 []*os.File // closed once the process has them
	wg                    sync.WaitGroup
}

// closeChild closes the process's ends in the monitor.
func (s *stdio) closeChild() {
	for _, f := range s.child {
		f.Close()
	}
	s.child = nil
}

// closeAll closes every end: the copies stop.
func (s *stdio) closeAll() {
	s.closeChild()
	for _, f := range s.keep {
		f.Close()
	}
	s.keep = nil
}

// wait waits for the output to be copied to its end (every writer gone),
// then closes everything.
func (s *stdio) wait() {
	s.closeChild()
	s.wg.Wait()
	s.closeAll()
}

// pump starts copying r to the log (nil: none) as stream and to h's
// clients as typ frames.
func (s *stdio) pump(logw *logWriter, stream string, r io.Reader, h *hub, typ byte) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if logw != nil {
			logw.pump(stream, r, h.output(typ))
			return
		}
		_, _ = io.Copy(h.output(typ), r)
	}()
}

// newStdio makes the plumbing of a process: with tty nothing yet (the
// sandbox makes its own terminal: attachPty takes its master), otherwise a
// pipe per output stream; openStdin gives it a stdin pipe fed by the
// clients (closed after the first client's input ends when stdinOnce),
// otherwise /dev/null. With pre (no tty, no openStdin), the process is that
// prestarted init's: its output pipes are read, and it has /dev/null.
func newStdio(h *hub, logw *logWriter, tty, openStdin, stdinOnce bool, pre *runner.Prestarted) (*stdio, error) {
	st := &stdio{}
	fail := func(err error) (*stdio, error) { st.closeAll(); return nil, err }
	if tty {
		return st, nil
	}
	var outs [2]*os.File // the read ends
	if pre != nil {
		outs[0], outs[1] = pre.TakeOutput()
		st.keep = append(st.keep, outs[:]...)
	}
	for i, stream := range []string{"stdout", "stderr"} {
		typ := byte(frameStdout)
		if stream == "stderr" {
			typ = frameStderr
		}
		r := outs[i]
		if r == nil {
			var w *os.File
			var err error
			if r, w, err = os.Pipe(); err != nil {
				return fail(err)
			}
			st.keep = append(st.keep, r)
			st.child = append(st.child, w)
			if stream == "stdout" {
				st.stdout = w
			} else {
				st.stderr = w
			}
		}
		st.pump(logw, stream, r, h, typ)
	}
	if !openStdin {
		if pre == nil {
			null, err := os.Open(os.DevNull)
			if err != nil {
				return fail(err)
			}
			st.child = append(st.child, null)
			st.stdin = null
		}
		h.setProcess(nil, false, nil)
		return st, nil
	}
	// The monitor holds the write end (through the hub) even while no
	// client is attached, as docker keeps stdin open for a later attach.
	r, w, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	st.child = append(st.child, r)
	st.stdin = r
	h.setProcess(w, stdinOnce, nil)
	return st, nil
}

// attachPty makes master, the terminal the sandbox made, the process's
// plumbing: its output goes to the log and the clients, their input (with
// openStdin) and sizes to it.
func (s *stdio) attachPty(h *hub, logw *logWriter, master *os.File, openStdin, stdinOnce bool) {
	s.keep = append(s.keep, master)
	s.pump(logw, "stdout", master, h, frameStdout)
	var in io.WriteCloser
	if openStdin {
		in = master
	}
	h.setProcess(in, stdinOnce, master)
}

// stdio makes the plumbing of the container's next run, run by pre when
// not nil.
func (m *monitorState) stdio(pre *runner.Prestarted) (*stdio, error) {
	cc := m.c.Config.Config
	return newStdio(m.hub, m.logw, cc.Tty, cc.OpenStdin, cc.StdinOnce, pre)
}

// winsize is the size of the terminal of the client that started the
// container, "rows cols" in winsizeEnv (zeros: unknown).
func winsize() (rows, cols uint16) {
	if _, err := fmt.Sscanf(os.Getenv(winsizeEnv), "%d %d", &rows, &cols); err != nil {
		return 0, 0
	}
	return rows, cols
}

// serveAttach serves the clients of `attach` until l is closed.
func (m *monitorState) serveAttach(l *attachListener) {
	for {
		conn, err := l.AcceptUnix()
		if err != nil {
			return
		}
		go m.hub.serve(conn, m.c.Config.Config.OpenStdin)
	}
}
