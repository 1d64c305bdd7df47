package container

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/runner"
)

// editConfig changes the container's config.json under an exclusive lock
// of its directory (rename and update may run at once), from a fresh read.
func (c *Container) editConfig(fn func(*Config) error) error {
	fd, err := unix.Open(c.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		return err
	}
	var cfg Config
	p := filepath.Join(c.Dir, "config.json")
	if err := readJSON(p, &cfg); err != nil {
		return err
	}
	if err := fn(&cfg); err != nil {
		return err
	}
	if err := writeJSONAtomic(p, cfg); err != nil {
		return err
	}
	c.Config = cfg
	return nil
}

// reloadHostConfig takes the HostConfig `update` may have changed.
func (m *monitorState) reloadHostConfig() {
	var cfg Config
	if err := readJSON(filepath.Join(m.c.Dir, "config.json"), &cfg); err == nil {
		m.c.HostConfig = cfg.HostConfig
	}
}

// Rename gives the container a new name, as docker rename.
func (s *Store) Rename(c *Container, name string) error {
	name = strings.TrimPrefix(name, "/")
	if !validName().MatchString(name) {
		return fmt.Errorf("invalid container name (%s), only %s are allowed", name, validName())
	}
	if name == c.Name {
		return fmt.Errorf("renaming a container with the same name as its current name")
	}
	if err := os.Symlink(c.ID, filepath.Join(s.namesDir(), name)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			other, _ := os.Readlink(filepath.Join(s.namesDir(), name))
			return fmt.Errorf("the container name \"/%s\" is already in use by container %q: %w", name, other, ErrNameInUse)
		}
		return fmt.Errorf("rename container %s: %w", c.ShortID(), err)
	}
	old := c.Name
	err := c.editConfig(func(cfg *Config) error {
		old = cfg.Name
		cfg.Name = name
		return nil
	})
	if err != nil {
		os.Remove(filepath.Join(s.namesDir(), name))
		return fmt.Errorf("rename container %s: %w", c.ShortID(), err)
	}
	if link, err := os.Readlink(filepath.Join(s.namesDir(), old)); err == nil && link == c.ID {
		os.Remove(filepath.Join(s.namesDir(), old))
	}
	c.logEvent("rename", map[string]string{"oldName": "/" + old})
	return nil
}

// UpdateOptions are what `update` changes; nil fields stay as they are.
type UpdateOptions struct {
	Memory, MemorySwap, NanoCpus, CpuShares, PidsLimit *int64
	CpusetCpus                                         *string
	RestartPolicy                                      *RestartPolicy
}

// Update changes the container's resources and restart policy, in its
// config and, when it runs, in its cgroup at once.
func (c *Container) Update(o UpdateOptions) error {
	if err := c.Refresh(); err != nil {
		return err
	}
	if flags := o.limitFlags(); len(flags) > 0 {
		if err := checkCgroups(flags[0]); err != nil {
			return err
		}
	}
	if o.RestartPolicy != nil && o.RestartPolicy.Name != "no" && c.HostConfig.AutoRemove {
		return errors.New("restart policy cannot be updated because AutoRemove is enabled for the container")
	}
	var live runner.LiveResources
	set := func(dst *int64, v *int64, liveDst *int64) {
		if v != nil {
			*dst = *v
			*liveDst = *v
		}
	}
	err := c.editConfig(func(cfg *Config) error {
		hc := &cfg.HostConfig
		set(&hc.Memory, o.Memory, &live.Memory)
		set(&hc.MemorySwap, o.MemorySwap, &live.MemorySwap)
		set(&hc.NanoCpus, o.NanoCpus, &live.NanoCPUs)
		set(&hc.CpuShares, o.CpuShares, &live.CPUShares)
		if o.PidsLimit != nil {
			n := *o.PidsLimit
			if n <= 0 {
				n = -1
			}
			hc.PidsLimit, live.PidsLimit = &n, n
		}
		if o.Memory != nil && o.MemorySwap == nil && hc.MemorySwap > 0 && hc.Memory > hc.MemorySwap {
			return errors.New("memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time")
		}
		if hc.MemorySwap > 0 && hc.Memory == 0 {
			return errors.New("you should always set the memory limit when using memoryswap limit, see usage")
		}
		if hc.Memory > 0 && hc.MemorySwap > 0 && hc.MemorySwap < hc.Memory {
			return errors.New("minimum memoryswap limit should be larger than memory limit, see usage")
		}
		if o.CpusetCpus != nil {
			hc.CpusetCpus, live.CpusetCpus = *o.CpusetCpus, *o.CpusetCpus
		}
		if o.RestartPolicy != nil {
			hc.RestartPolicy = *o.RestartPolicy
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update container %s: %w", c.ShortID(), err)
	}
	if c.State.Running {
		if err := c.cgroup().Update(live); err != nil {
			return fmt.Errorf("update container %s: %w", c.ShortID(), err)
		}
	}
	c.logEvent("update", nil)
	return nil
}
