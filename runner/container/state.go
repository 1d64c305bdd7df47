package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kiln-build/kiln/runner"
)

// writeJSONAtomic replaces path with v's JSON through a temporary file and a
// rename, so that readers see the old or the new content, never a part.
func writeJSONAtomic(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// procStart is runner.ProcStart.
func procStart(pid int) (uint64, bool) { return runner.ProcStart(pid) }

// alive reports whether pid is alive and still the process that started at start.
func alive(pid int, start uint64) bool {
	s, ok := procStart(pid)
	return ok && (start == 0 || s == start)
}

func (c *Container) statePath() string { return filepath.Join(c.Dir, "state.json") }

func (c *Container) saveState() error { return writeJSONAtomic(c.statePath(), c.State) }

func (c *Container) loadState() error {
	var st State
	if err := readJSON(c.statePath(), &st); err != nil {
		return err
	}
	c.State = st
	c.State.Health = c.loadHealth()
	if c.State.Running {
		c.State.Paused = c.frozen()
		if c.State.Paused {
			c.State.Status = "paused"
		}
	}
	return nil
}

// Refresh reloads the state and corrects it when the processes it names are
// gone: a dead monitor means a dead container (the monitor's death kills
// it), recorded as exited with 137 unless the monitor recorded better. A
// container that died under a living monitor is given a moment for the
// monitor to record its exit.
func (c *Container) Refresh() error {
	if err := c.loadState(); err != nil {
		return err
	}
	if !c.State.Running && !c.State.Restarting {
		return nil
	}
	for range 50 {
		if !alive(c.State.MonitorPid, c.State.MonitorStart) {
			if err := c.loadState(); err != nil || (!c.State.Running && !c.State.Restarting) {
				return err
			}
			c.State.Status, c.State.Running, c.State.Restarting = "exited", false, false
			c.State.Pid, c.State.ExitCode, c.State.Error = 0, 137, "container monitor died"
			c.State.FinishedAt = time.Now().UTC()
			// The monitor left its cgroup behind (and maybe dying tasks).
			_ = runner.OpenCgroup("kiln/" + c.ID).Remove()
			releaseNetwork(c) // and its network
			return c.saveState()
		}
		if !c.State.Running || alive(c.State.Pid, c.State.PidStart) {
			return nil
		}
		time.Sleep(2 * time.Millisecond)
		if err := c.loadState(); err != nil {
			return err
		}
	}
	return nil
}
