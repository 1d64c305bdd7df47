package runner

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mountCgroupfs mounts /sys/fs/cgroup in the sandbox, after pivot_root and
// in its cgroup namespace, so that it shows the sandbox's own cgroups as
// their roots (cpu.shares is the container's): on cgroup v1 a tmpfs with
// each hierarchy the init belongs to (and the controller symlinks), on v2
// the unified tree. Read-only unless rw (docker's --privileged).
func mountCgroupfs(rw bool) error {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return fmt.Errorf("mount /sys/fs/cgroup: %w", err)
	}
	var ro uintptr
	if !rw {
		ro = unix.MS_RDONLY
	}
	const flags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	const root = "/sys/fs/cgroup"
	v1, unified := parseProcCgroup(string(data))
	if len(v1) == 0 {
		if !unified {
			return nil // no cgroups: nothing to show
		}
		if err := unix.Mount("cgroup2", root, "cgroup2", flags|ro, ""); err != nil {
			return fmt.Errorf("mount cgroup2 on %s: %w", root, err)
		}
		return nil
	}
	if err := unix.Mount("tmpfs", root, "tmpfs", flags, "mode=755,size=64k"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", root, err)
	}
	for _, h := range v1 {
		dir := root + "/" + h.dir()
		if err := os.Mkdir(dir, 0o555); err != nil {
			return fmt.Errorf("mount cgroup %s: %w", h.Controllers, err)
		}
		if err := unix.Mount("cgroup", dir, "cgroup", flags|ro, h.options()); err != nil {
			return fmt.Errorf("mount cgroup %s on %s: %w", h.Controllers, dir, err)
		}
		for _, l := range h.links() {
			if err := os.Symlink(h.dir(), root+"/"+l); err != nil {
				return fmt.Errorf("link cgroup %s: %w", l, err)
			}
		}
	}
	if !rw {
		if err := unix.Mount("", root, "", unix.MS_REMOUNT|unix.MS_BIND|flags|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("remount %s read-only: %w", root, err)
		}
	}
	return nil
}
