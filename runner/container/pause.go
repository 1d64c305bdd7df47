package container

import (
	"errors"
	"fmt"

	"github.com/kiln-build/kiln/runner"
)

// ErrPaused: the operation needs a container that is not paused.
var ErrPaused = errors.New("container is paused")

func (c *Container) cgroup() *runner.Cgroup { return runner.OpenCgroup("kiln/" + c.ID) }

// frozen reports whether the container's cgroup is frozen.
func (c *Container) frozen() bool { return c.cgroup().Frozen() }

// Pause freezes every process of the running container (the cgroup
// freezer), as docker pause.
func (c *Container) Pause() error {
	if err := c.Refresh(); err != nil {
		return err
	}
	if !c.State.Running {
		return fmt.Errorf("container %s: %w", c.ShortID(), ErrNotRunning)
	}
	if c.State.Paused {
		return fmt.Errorf("container %s is already paused", c.ShortID())
	}
	if err := checkCgroups("pause (the cgroup freezer)"); err != nil {
		return err
	}
	if err := c.cgroup().Freeze(); err != nil {
		return fmt.Errorf("pause container %s: %w", c.ShortID(), err)
	}
	c.logEvent("pause", nil)
	return c.Refresh()
}

// Unpause thaws a paused container.
func (c *Container) Unpause() error {
	if err := c.Refresh(); err != nil {
		return err
	}
	if !c.State.Paused {
		return fmt.Errorf("container %s is not paused", c.ShortID())
	}
	if err := c.cgroup().Thaw(); err != nil {
		return fmt.Errorf("unpause container %s: %w", c.ShortID(), err)
	}
	c.logEvent("unpause", nil)
	return c.Refresh()
}

// thawForSignal lets a paused container receive the signal just sent (kill
// and stop work on paused containers, as docker's).
func (c *Container) thawForSignal() {
	if c.State.Paused {
		_ = c.cgroup().Thaw()
		c.logEvent("unpause", nil)
	}
}
