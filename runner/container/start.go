package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/kiln-build/kiln/internal/rootless"
	"github.com/kiln-build/kiln/runner"
)

// winsizeEnv passes the client terminal's "rows cols" to the monitor.
const winsizeEnv = "KILN_WINSIZE"

// Running is a started container (or exec), seen from the client that
// started it.
type Running struct {
	autoRemove bool
	status     *os.File
	dec        *json.Decoder
	conn       *os.File // attached: the client's end of the attach protocol
	attach     *Attach
	refresh    func() (int, error) // the exit code from the state, when the monitor said nothing
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
	if err := s.startable(c); err != nil {
		return nil, err
	}
	cc := c.Config.Config
	env := prestartEnv(cc.Tty, cc.OpenStdin, c.HostConfig.NetworkMode)
	if a != nil && a.Rows > 0 {
		env = append(env, fmt.Sprintf("%s=%d %d", winsizeEnv, a.Rows, a.Cols))
	}
	r, err := spawnMonitor(c, monitorCmd{
		arg0: monitorArg0, root: filepath.Dir(filepath.Dir(c.Dir)), env: env,
		op: "start container", opOn: "start container",
	}, a)
	if err != nil {
		return nil, err
	}
	return r.of(c), nil
}

// of makes r, a started container's, wait as c asks and fall back on its
// state.
func (r *Running) of(c *Container) *Running {
	r.autoRemove = c.HostConfig.AutoRemove
	r.refresh = func() (int, error) {
		if err := c.Refresh(); err != nil {
			return -1, err
		}
		return c.State.ExitCode, nil
	}
	return r
}

// startable checks that c can start, and forgets a stop asked of its
// last run.
func (s *Store) startable(c *Container) error {
	if err := c.Refresh(); err != nil {
		return err
	}
	if c.State.Running || c.State.Restarting {
		return fmt.Errorf("container %s: %w", c.ShortID(), ErrRunning)
	}
	os.Remove(filepath.Join(c.Dir, "stopping"))
	return nil
}

// monitorFlags are a monitor's attach flags: "-", with a "-a", with its
// stdin "-ai".
func monitorFlags(a *Attach) string {
	flags := "-"
	if a != nil {
		flags += "a"
		if a.Stdin != nil {
			flags += "i"
		}
	}
	return flags
}

// monitorCmd is what differs between the monitors spawnMonitor starts.
type monitorCmd struct {
	arg0     string   // monitorArg0 or execArg0
	root     string   // the store's root
	env      []string // besides monitorProcs
	op, opOn string   // error prefixes: before the monitor runs, and once it was started for the container
}

// spawnMonitor starts a monitor of c (a container's or an exec's) with
// the status pipe and, with a, the attach socket, and returns once it
// reports the start (or a failure: a *StartError). The monitor runs from a
// sealed view of the binary, in a session of its own, with its stderr in
// the container's monitor.log, and inherits nothing but what it is given.
func spawnMonitor(c *Container, mc monitorCmd, a *Attach) (*Running, error) {
	r, files, err := newRunning(a)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mc.op, err)
	}
	logf, err := os.OpenFile(filepath.Join(c.Dir, "monitor.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		r.abort(files)
		return nil, fmt.Errorf("%s: %w", mc.op, err)
	}
	defer logf.Close()
	exe, err := runner.SealedExe()
	if err == nil {
		err = runner.CloseExtraFilesOnExec()
	}
	if err != nil {
		r.abort(files)
		return nil, fmt.Errorf("%s: %w", mc.op, err)
	}
	cmd := exec.Command(exe, mc.root, c.ID, monitorFlags(a))
	cmd.Args[0] = mc.arg0
	cmd.Env = append(append([]string{monitorProcs}, rootless.Environ()...), mc.env...)
	if err := r.startMonitor(cmd, logf, files); err != nil {
		var se *StartError
		if errors.As(err, &se) {
			return nil, err
		}
		return nil, fmt.Errorf("%s %s: %w", mc.opOn, c.ShortID(), err)
	}
	return r, nil
}

// newRunning makes the status pipe and, with a, the attach socket pair;
// files are the monitor's ends.
func newRunning(a *Attach) (*Running, []*os.File, error) {
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	r := &Running{status: statusR, dec: json.NewDecoder(statusR), attach: a}
	files := []*os.File{statusW}
	if a != nil {
		mine, theirs, err := socketPair()
		if err != nil {
			r.abort(files)
			return nil, nil, err
		}
		r.conn = mine
		files = append(files, theirs)
	}
	return r, files, nil
}

// abort closes everything of a Running that did not start.
func (r *Running) abort(monitorFiles []*os.File) {
	for _, f := range monitorFiles {
		f.Close()
	}
	r.status.Close()
	if r.conn != nil {
		r.conn.Close()
	}
}

// startMonitor starts cmd, a monitor, in a session of its own with files
// as its descriptors 3 and on, and waits for its first message.
func (r *Running) startMonitor(cmd *exec.Cmd, logf *os.File, files []*os.File) error {
	if err := r.spawn(cmd, logf, files); err != nil {
		return err
	}
	return r.awaitStart(logf.Name())
}

// spawn starts cmd, a monitor, in a session of its own with files as its
// descriptors 3 and on (closed here) and logf as its stderr.
func (r *Running) spawn(cmd *exec.Cmd, logf *os.File, files []*os.File) error {
	if logf != nil {
		cmd.Stderr = logf
	}
	cmd.ExtraFiles = files
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err := cmd.Start()
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		r.abort(nil)
		return fmt.Errorf("start monitor: %w", err)
	}
	go cmd.Wait() // reap it if we outlive it
	return nil
}

// awaitStart waits for the monitor's first message: the start, or why it
// failed (a *StartError). logName is its log, for when it died.
func (r *Running) awaitStart(logName string) error {
	var msg monitorMsg
	if err := r.dec.Decode(&msg); err != nil {
		r.abort(nil)
		return fmt.Errorf("the monitor died (see %s)", logName)
	}
	if msg.Error != "" {
		r.abort(nil)
		code := 125
		if msg.ExitCode != nil {
			code = *msg.ExitCode
		}
		return &StartError{ExitCode: code, Msg: msg.Error}
	}
	return nil
}

// Close forgets a detached container: it keeps running.
func (r *Running) Close() error {
	if r.conn != nil {
		r.conn.Close()
	}
	return r.status.Close()
}

// Wait streams the attached process's input and output until it exits
// the first time, and returns its exit code. With AutoRemove it also waits
// for the monitor to remove the container. When the client typed the
// detach keys it returns ErrDetached at once: the process goes on.
func (r *Running) Wait() (int, error) {
	defer r.status.Close()
	code := -1
	var streamErr error
	if r.conn != nil {
		code, streamErr = r.attach.stream(r.conn)
		if errors.Is(streamErr, ErrDetached) {
			return -1, streamErr
		}
	}
	var msg monitorMsg
	for {
		if err := r.dec.Decode(&msg); err != nil {
			break
		}
		if msg.ExitCode != nil {
			code = *msg.ExitCode
			if !r.autoRemove {
				return code, nil
			}
		}
	}
	if code >= 0 {
		return code, nil
	}
	// The monitor died without a word: ask the state.
	if r.refresh != nil {
		c, err := r.refresh()
		return c, errors.Join(streamErr, err)
	}
	return -1, streamErr
}
