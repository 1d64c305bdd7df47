package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"

	"golang.org/x/sys/unix"
)

// plannedMount is one mount of the sandbox; Target is a container path.
type plannedMount struct {
	Mount
	dir      bool                    // the mount point is a directory (else a file)
	nested   bool                    // below an earlier mount: its mount point is made then, not as a stub
	fallback func(host string) error // tried when the mount fails
	after    func(host string) error // run once mounted
	populate bool                    // fill an empty Source from the rootfs first (Spec.Populate)
}

// planMounts lists the sandbox mounts in mount order: /proc, /dev, /sys, the
// host's /etc/resolv.conf and /etc/hosts (read-only), then ExtraMounts sorted
// (stably) by depth so parents come before what is mounted inside them.
func planMounts(cfg *initConfig) []plannedMount {
	sysOpts := []string{"ro", "nosuid", "nodev", "noexec"}
	if cfg.Privileged {
		sysOpts = sysOpts[1:]
	}
	privileged := cfg.Privileged
	plan := []plannedMount{
		{Mount: Mount{Type: "proc", Source: "proc", Target: "/proc", Options: []string{"nosuid", "nodev", "noexec"}}, dir: true},
		{Mount: Mount{Type: "tmpfs", Source: "tmpfs", Target: "/dev", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}}, dir: true,
			after: func(host string) error { return populateDev(host, privileged) }},
		{Mount: Mount{Type: "sysfs", Source: "sysfs", Target: "/sys", Options: sysOpts}, dir: true,
			fallback: func(host string) error { return bindHostSys(host, sysOpts) }},
	}
	for _, f := range []string{"/etc/resolv.conf", "/etc/hosts"} {
		if _, ok := cfg.Files[f]; ok {
			continue
		}
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() {
			plan = append(plan, plannedMount{Mount: Mount{Type: "bind", Source: f, Target: f, Options: []string{"ro", "nosuid", "nodev", "noexec"}}})
		}
	}
	files := slices.Sorted(maps.Keys(cfg.Files))
	for _, f := range files {
		plan = append(plan, plannedMount{Mount: Mount{Type: "bind", Source: cfg.Files[f], Target: f, Options: []string{"nosuid", "nodev", "noexec"}}})
	}
	extras := slices.Clone(cfg.ExtraMounts)
	slices.SortStableFunc(extras, func(a, b Mount) int { return depth(a.Target) - depth(b.Target) })
	for _, m := range extras {
		dir := true
		if m.Type == "bind" || m.Type == "rbind" {
			if fi, err := os.Stat(m.Source); err == nil && !fi.IsDir() {
				dir = false
			}
		}
		plan = append(plan, plannedMount{Mount: m, dir: dir, populate: dir && slices.Contains(cfg.Populate, m.Target)})
	}
	for i := range plan {
		for j := range i {
			if nestedUnder(plan[i].Target, plan[j].Target) {
				plan[i].nested = true
			}
		}
	}
	return plan
}

// setupRootfs mounts the merged tree on cfg.Rootfs, creates the mount stubs
// (and reports them before anything else can fail), mounts everything in
// planMounts and pivots into the rootfs.
func setupRootfs(cfg *initConfig, report func([]stubEntry) error) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / rprivate: %w", err)
	}
	if err := MountOverlay(OverlayMount(cfg.Rootfs, cfg.Lowers, cfg.Upper, cfg.Work)); err != nil {
		return err
	}
	plan := planMounts(cfg)

	sm := newStubMaker(cfg.Rootfs, cfg.Upper)
	var stubErr error
	for _, pm := range plan {
		if pm.nested {
			continue
		}
		p, err := resolveInRoot(cfg.Rootfs, pm.Target)
		if err == nil {
			err = sm.ensure(p, pm.dir)
		}
		if err != nil {
			stubErr = err
			break
		}
	}
	if err := report(sm.finish()); err != nil {
		return err
	}
	if stubErr != nil {
		return stubErr
	}

	for _, pm := range plan {
		if err := mountPlanned(cfg.Rootfs, pm); err != nil {
			return err
		}
	}
	for _, d := range cfg.Devices {
		if err := makeDevice(cfg.Rootfs, d); err != nil {
			return err
		}
	}
	if cfg.ReadonlyRootfs {
		if err := unix.Mount("", cfg.Rootfs, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("remount rootfs read-only: %w", err)
		}
	}
	return pivotRoot(cfg.Rootfs)
}

func mountPlanned(rootfs string, pm plannedMount) error {
	p, err := resolveInRoot(rootfs, pm.Target)
	if err != nil {
		return err
	}
	host := rootfs + p
	if pm.nested {
		if err := ensureMountPoint(host, pm.dir); err != nil {
			return err
		}
	}
	if pm.populate {
		if err := populate(pm.Source, host); err != nil {
			return fmt.Errorf("fill volume %s from the image: %w", pm.Target, err)
		}
	}
	m := pm.Mount
	m.Target = host
	err = MountOverlay(m)
	if err != nil && pm.fallback != nil {
		if ferr := pm.fallback(host); ferr != nil {
			return errors.Join(err, ferr)
		}
		err = nil
	}
	if err == nil && pm.after != nil {
		err = pm.after(host)
	}
	return err
}

// ensureMountPoint creates host (a directory, or an empty file) if missing,
// for mount points that live inside another sandbox mount.
func ensureMountPoint(host string, dir bool) error {
	d := host
	if !dir {
		d = path.Dir(host)
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		return fmt.Errorf("create mount point: %w", err)
	}
	if dir {
		return nil
	}
	f, err := os.OpenFile(host, os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create mount point: %w", err)
	}
	return f.Close()
}

func bindHostSys(host string, opts []string) error {
	return MountOverlay(Mount{Type: "rbind", Source: "/sys", Target: host, Options: opts})
}

var devices = []struct {
	name         string
	major, minor uint32
}{
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
}

// populateDev fills the /dev tmpfs at dev like runc: device nodes (bind
// mounts of the host's when mknod is not permitted), a private devpts, a
// /dev/shm tmpfs and the /proc/self/fd symlinks.
func populateDev(dev string, privileged bool) error {
	if privileged {
		if err := copyHostDevices(dev); err != nil {
			return err
		}
	}
	for _, d := range devices {
		if _, err := os.Lstat(dev + "/" + d.name); err == nil {
			continue
		}
		p := dev + "/" + d.name
		err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor)))
		if errors.Is(err, unix.EPERM) {
			err = ensureMountPoint(p, false)
			if err == nil {
				err = MountOverlay(Mount{Type: "bind", Source: "/dev/" + d.name, Target: p})
			}
		}
		if err != nil {
			return fmt.Errorf("create /dev/%s: %w", d.name, err)
		}
	}
	for _, m := range []struct {
		dir  string
		mode uint32
		m    Mount
	}{
		{"pts", 0o755, Mount{Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}}},
		{"shm", 0o1777, Mount{Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "nodev", "noexec", "mode=1777", "size=65536k"}}},
	} {
		p := dev + "/" + m.dir
		if err := unix.Mkdir(p, m.mode); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create /dev/%s: %w", m.dir, err)
		}
		m.m.Target = p
		if err := MountOverlay(m.m); err != nil {
			return err
		}
	}
	for name, target := range map[string]string{
		"ptmx": "pts/ptmx", "fd": "/proc/self/fd",
		"stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(target, dev+"/"+name); err != nil {
			return fmt.Errorf("create /dev/%s: %w", name, err)
		}
	}
	return nil
}

// pivotRoot makes rootfs the root with runc's pivot_root(".", ".") trick:
// the old root ends up mounted on top of the new one and is lazily detached.
func pivotRoot(rootfs string) error {
	if err := unix.Chdir(rootfs); err != nil {
		return fmt.Errorf("chdir rootfs: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// makeDevice recreates the host device d.Source at d.Target in rootfs (a
// character or block device: same numbers, mode and owner).
func makeDevice(rootfs string, d Device) error {
	var st unix.Stat_t
	if err := unix.Stat(d.Source, &st); err != nil {
		return fmt.Errorf("device %s: %w", d.Source, err)
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFCHR && t != unix.S_IFBLK {
		return fmt.Errorf("device %s: not a device", d.Source)
	}
	p, err := resolveInRoot(rootfs, d.Target)
	if err != nil {
		return err
	}
	host := rootfs + p
	if err := os.MkdirAll(path.Dir(host), 0o755); err != nil {
		return fmt.Errorf("device %s: %w", d.Target, err)
	}
	if err := unix.Unlink(host); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("device %s: %w", d.Target, err)
	}
	if err := unix.Mknod(host, st.Mode, int(st.Rdev)); err != nil {
		return fmt.Errorf("device %s: %w", d.Target, err)
	}
	if err := unix.Chmod(host, st.Mode&0o7777); err != nil {
		return fmt.Errorf("device %s: %w", d.Target, err)
	}
	if err := unix.Lchown(host, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("device %s: %w", d.Target, err)
	}
	return nil
}
