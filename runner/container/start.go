package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// winsizeEnv passes the client terminal's "rows cols" to the monitor.
const winsizeEnv = "KILN_WINSIZE"

// Attach connects the container's first run to the caller. Writers that are
// *os.File are still copied through a pipe: the monitor must never hold the
// caller's own descriptors.
type Attach struct {
	Stdin          io.Reader // nil: no stdin
	Stdout, Stderr io.Writer
	Rows, Cols     uint16 // the terminal size, with a TTY
}

// Running is a started container, seen from the client that started it.
type Running struct {
	c      *Container
	status *os.File
	dec    *json.Decoder
	copies chan error
	n      int // copy goroutines
}

// StartError is a container that could not be started; ExitCode is what
// `run` exits with (127 executable not found, 126 not executable, 125 else).
type StartError struct {
	ExitCode int
	Msg      string
}

func (e *StartError) Error() string { return e.Msg }

// Start starts a created or exited container under a new monitor and
// returns once it runs (or failed to start: a *StartError). With a nil
// attach it is detached. Killing the caller never stops the container: the
// monitor is in a session of its own and holds none of the caller's
// descriptors.
func (s *Store) Start(c *Container, a *Attach) (*Running, error) {
	if err := c.Refresh(); err != nil {
		return nil, err
	}
	if c.State.Running || c.State.Restarting {
		return nil, fmt.Errorf("container %s: %w", c.ShortID(), ErrRunning)
	}
	os.Remove(filepath.Join(c.Dir, "stopping"))
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start container: %w", err)
	}
	defer statusW.Close()
	r := &Running{c: c, status: statusR, dec: json.NewDecoder(statusR), copies: make(chan error, 3)}
	files := []*os.File{statusW}
	var closeAfter []*os.File
	flags := "-"
	if a != nil {
		flags += "a"
		for _, w := range []io.Writer{a.Stdout, a.Stderr} {
			pr, pw, err := os.Pipe()
			if err != nil {
				statusR.Close()
				return nil, fmt.Errorf("start container: %w", err)
			}
			files, closeAfter = append(files, pw), append(closeAfter, pw)
			r.n++
			go func() {
				if w == nil {
					w = io.Discard
				}
				_, err := io.Copy(w, pr)
				pr.Close()
				r.copies <- err
			}()
		}
		if a.Stdin != nil {
			flags += "i"
			pr, pw, err := os.Pipe()
			if err != nil {
				statusR.Close()
				return nil, fmt.Errorf("start container: %w", err)
			}
			files, closeAfter = append(files, pr), append(closeAfter, pr)
			go func() {
				_, _ = io.Copy(pw, a.Stdin)
				pw.Close()
			}()
		}
	}
	logf, err := os.OpenFile(filepath.Join(c.Dir, "monitor.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		statusR.Close()
		return nil, fmt.Errorf("start container: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command("/proc/self/exe", filepath.Dir(filepath.Dir(c.Dir)), c.ID, flags)
	cmd.Args[0] = monitorArg0
	cmd.Env = []string{"GOMAXPROCS=1"}
	if a != nil && a.Rows > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d %d", winsizeEnv, a.Rows, a.Cols))
	}
	cmd.Stderr = logf
	cmd.ExtraFiles = files
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	for _, f := range closeAfter {
		f.Close()
	}
	if err != nil {
		statusR.Close()
		return nil, fmt.Errorf("start container monitor: %w", err)
	}
	go cmd.Wait() // reap it if we outlive it
	statusW.Close()

	var msg monitorMsg
	if err := r.dec.Decode(&msg); err != nil {
		statusR.Close()
		return nil, fmt.Errorf("start container %s: the monitor died (see %s)", c.ShortID(), logf.Name())
	}
	if msg.Error != "" {
		r.drain()
		statusR.Close()
		code := 125
		if msg.ExitCode != nil {
			code = *msg.ExitCode
		}
		return nil, &StartError{ExitCode: code, Msg: msg.Error}
	}
	return r, nil
}

// drain waits for the attached output to be copied.
func (r *Running) drain() error {
	var errs []error
	for range r.n {
		errs = append(errs, <-r.copies)
	}
	r.n = 0
	return errors.Join(errs...)
}

// Close forgets a detached container: it keeps running.
func (r *Running) Close() error { return r.status.Close() }

// Wait waits for the container's first exit, after its attached output was
// copied, and returns its exit code. With AutoRemove it also waits for the
// monitor to remove the container.
func (r *Running) Wait() (int, error) {
	defer r.status.Close()
	copyErr := r.drain()
	var msg monitorMsg
	code := -1
	for {
		if err := r.dec.Decode(&msg); err != nil {
			break
		}
		if msg.ExitCode != nil {
			code = *msg.ExitCode
			if !r.c.HostConfig.AutoRemove {
				return code, copyErr
			}
		}
	}
	if code >= 0 {
		return code, copyErr
	}
	// The monitor died without a word: ask the state.
	if err := r.c.Refresh(); err != nil {
		return -1, err
	}
	return r.c.State.ExitCode, copyErr
}
