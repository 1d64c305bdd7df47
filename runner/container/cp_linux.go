package container

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/layer/inroot"
	"github.com/kiln-build/kiln/runner"
)

// openRoot opens the container's root directory: a running container's
// own root (/proc/<pid>/root: its mounts and volumes included); else its
// image layers and writable layer mounted for the time of opening them
// (read-only unless writable) and detached at once, so that nothing is
// left mounted whatever happens next. The caller closes the descriptor.
func (c *Container) openRoot(writable bool) (int, error) {
	if err := c.Refresh(); err != nil {
		return -1, err
	}
	if c.State.Running {
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/root", c.State.Pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, fmt.Errorf("open root of container %s: %w", c.ShortID(), err)
		}
		if !alive(c.State.Pid, c.State.PidStart) {
			unix.Close(fd)
			return -1, fmt.Errorf("container %s: %w", c.ShortID(), ErrNotRunning)
		}
		return fd, nil
	}
	return c.mountRoot(writable, false)
}

// mountRoot mounts the container's file system (image layers under its
// writable layer) on a temporary directory, opens it and detaches the
// mount. Read-only, the writable layer is only the top lower directory, so
// that a container started meanwhile is not disturbed.
func (c *Container) mountRoot(writable, running bool) (int, error) {
	dir, err := os.MkdirTemp(c.Dir, ".mnt-")
	if err != nil {
		return -1, fmt.Errorf("mount container %s: %w", c.ShortID(), err)
	}
	defer os.Remove(dir)
	var m runner.Mount
	switch {
	case writable && !running:
		m = runner.OverlayMount(dir, c.Lowers, c.upper(), c.work())
	case len(c.Lowers) == 0:
		m = runner.Mount{Type: "bind", Source: c.upper(), Target: dir, Options: []string{"bind", "ro"}}
	default:
		opts := []string{"index=off", "redirect_dir=off", "metacopy=off", "lowerdir+=" + c.upper()}
		for _, l := range c.Lowers {
			opts = append(opts, "lowerdir+="+l)
		}
		m = runner.Mount{Type: "overlay", Source: "overlay", Target: dir, Options: append(opts, "ro")}
	}
	if err := runner.MountOverlay(m); err != nil {
		return -1, fmt.Errorf("mount container %s: %w", c.ShortID(), err)
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	uerr := runner.Unmount(dir)
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("mount container %s: %w", c.ShortID(), err)
	}
	if uerr != nil {
		unix.Close(fd)
		return -1, uerr
	}
	return fd, nil
}

// openIn opens the container path p (every symlink resolved inside root;
// the last one only with follow) and returns its descriptor (O_PATH) and
// its lstat.
func openIn(rootfd int, p string, follow bool) (int, unix.Stat_t, error) {
	var st unix.Stat_t
	parent, base := filepath.Split(filepath.Clean("/" + p))
	resolved, err := inroot.Resolve(rootfd, parent)
	if err != nil {
		return -1, st, err
	}
	full := filepath.Join(resolved, base)
	if follow {
		if full, err = inroot.Resolve(rootfd, full); err != nil {
			return -1, st, err
		}
	}
	fd, err := inroot.Open(rootfd, inroot.Rel(full), unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC)
	if err != nil {
		return -1, st, err
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, st, err
	}
	return fd, st, nil
}
