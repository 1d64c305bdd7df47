package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultStopTimeout is how long Stop waits before SIGKILL, as docker's.
const DefaultStopTimeout = 10 * time.Second

// Kill sends sig (a name or number, "" for SIGKILL) to the container's
// main process. It does not wait.
func (c *Container) Kill(sig string) error {
	if sig == "" {
		sig = "SIGKILL"
	}
	s, err := ParseSignal(sig)
	if err != nil {
		return err
	}
	if err := c.Refresh(); err != nil {
		return err
	}
	if !c.State.Running || !alive(c.State.Pid, c.State.PidStart) {
		if c.State.Restarting && s == unix.SIGKILL {
			return c.markStopping()
		}
		return fmt.Errorf("container %s: %w", c.ShortID(), ErrNotRunning)
	}
	if s == unix.SIGKILL {
		// A killed container is not restarted (docker kill; rm -f).
		if err := c.markStopping(); err != nil {
			return err
		}
	}
	if err := unix.Kill(c.State.Pid, s); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("kill container %s: %w", c.ShortID(), err)
	}
	c.logEvent("kill", map[string]string{"signal": fmt.Sprint(int(s))})
	c.thawForSignal()
	return nil
}

func (c *Container) markStopping() error {
	f, err := os.OpenFile(filepath.Join(c.Dir, "stopping"), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("stop container %s: %w", c.ShortID(), err)
	}
	return f.Close()
}

// StopTimeout is the container's stop timeout: its --stop-timeout, or
// DefaultStopTimeout.
func (c *Container) StopTimeout() time.Duration {
	if t := c.Config.Config.StopTimeout; t != nil {
		return time.Duration(*t) * time.Second
	}
	return DefaultStopTimeout
}

// Stop sends the container's stop signal (its STOPSIGNAL, default SIGTERM),
// waits up to timeout (a negative timeout waits forever) for it to exit,
// then SIGKILLs it and waits for the monitor to record the exit. Stopping a
// container that is not running does nothing.
func (c *Container) Stop(timeout time.Duration) error {
	if err := c.Refresh(); err != nil {
		return err
	}
	if !c.State.Running && !c.State.Restarting {
		return nil
	}
	if err := c.markStopping(); err != nil {
		return err
	}
	defer c.logEvent("stop", nil)
	sig := c.Config.Config.StopSignal
	if sig == "" {
		sig = "SIGTERM"
	}
	if err := c.Kill(sig); err == nil {
		if c.WaitExit(timeout) == nil {
			return c.waitMonitor(30 * time.Second)
		}
	} else if !errors.Is(err, ErrNotRunning) {
		return err
	}
	if err := c.Kill("SIGKILL"); err != nil && !errors.Is(err, ErrNotRunning) {
		return err
	}
	return c.waitMonitor(30 * time.Second)
}

// errTimeout: the container still runs.
var errTimeout = errors.New("timed out waiting for the container")

// WaitExit waits until the container is not running (timeout < 0: forever).
func (c *Container) WaitExit(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	delay := time.Millisecond
	for {
		if err := c.Refresh(); err != nil {
			return err
		}
		if !c.State.Running && !c.State.Restarting {
			return nil
		}
		if timeout >= 0 && time.Now().After(deadline) {
			return errTimeout
		}
		time.Sleep(delay)
		delay = min(delay*2, 50*time.Millisecond)
	}
}

// waitMonitor waits for the container's monitor to be gone, so that its
// state is final and its cgroup removed.
func (c *Container) waitMonitor(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for alive(c.State.MonitorPid, c.State.MonitorStart) {
		if time.Now().After(deadline) {
			return fmt.Errorf("container %s: %w", c.ShortID(), errTimeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return c.Refresh()
}
