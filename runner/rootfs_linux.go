package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/layer/inroot"
)

// plannedMount is one mount of the sandbox; Target is a container path.
type plannedMount struct {
	Mount
	dir      bool   // the mount point is a directory (else a file)
	nested   bool   // below an earlier mount: its mount point is made then, not as a stub
	fallback *Mount // mounted instead (on the same mount point) when the mount fails
	dev      bool   // the sandbox's /dev: populated once mounted (populateDev)
	populate bool   // fill an empty Source from the rootfs first (Spec.Populate)
}

// planMounts lists the sandbox mounts in mount order: /proc, /dev, /sys, the
// host's /etc/resolv.conf and /etc/hosts (read-only), then ExtraMounts sorted
// (stably) by depth so parents come before what is mounted inside them.
func planMounts(cfg *initConfig) []plannedMount {
	sysOpts := []string{"ro", "nosuid", "nodev", "noexec"}
	if cfg.Privileged {
		sysOpts = sysOpts[1:]
	}
	plan := []plannedMount{
		{Mount: Mount{Type: "proc", Source: "proc", Target: "/proc", Options: []string{"nosuid", "nodev", "noexec"}}, dir: true},
		{Mount: Mount{Type: "tmpfs", Source: "tmpfs", Target: "/dev", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}}, dir: true, dev: true},
		{Mount: Mount{Type: "sysfs", Source: "sysfs", Target: "/sys", Options: sysOpts}, dir: true,
			fallback: &Mount{Type: "rbind", Source: "/sys", Options: sysOpts}},
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
	// Nothing the sandbox mounts reaches the host: its tree is private, or,
	// when a bind mount asks for slave propagation, a slave of the host's
	// (as runc's default), each other mount then made private on its own.
	if rootfsSlave(cfg.ExtraMounts) {
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
			return fmt.Errorf("make / rslave: %w", err)
		}
	} else if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / rprivate: %w", err)
	}
	m := OverlayMount(cfg.Rootfs, cfg.Lowers, cfg.Upper, cfg.Work)
	if cfg.Volatile {
		m = m.Volatile()
	}
	if err := MountOverlay(m); err != nil {
		return err
	}
	plan := planMounts(cfg)
	rootfd, err := unix.Open(cfg.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	defer unix.Close(rootfd)

	sm := newStubMaker(rootfd, cfg.Upper)
	var stubErr error
	for _, pm := range plan {
		if pm.nested {
			continue
		}
		p, err := inroot.Resolve(rootfd, pm.Target)
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
		if err := mountPlanned(rootfd, pm, cfg); err != nil {
			return err
		}
	}
	for _, d := range cfg.Devices {
		if err := makeDevice(rootfd, d); err != nil {
			return err
		}
	}
	if cfg.Hooks != nil {
		cfg.hostPid = hostPid()
		if err := cfg.Hooks.run(cfg.Hooks.CreateContainer, specs.StateCreating, cfg.hostPid); err != nil {
			return fmt.Errorf("createContainer %w", err)
		}
	}
	if cfg.ReadonlyRootfs {
		if err := unix.Mount("", cfg.Rootfs, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("remount rootfs read-only: %w", err)
		}
	}
	return pivotRoot(cfg.Rootfs)
}

// rootfsSlave reports whether a mount asks for slave propagation, which
// only a slave copy of the host's tree can give.
func rootfsSlave(mounts []Mount) bool {
	for _, m := range mounts {
		if slices.Contains(m.Options, "slave") || slices.Contains(m.Options, "rslave") {
			return true
		}
	}
	return false
}

// testHookMount, when set (by tests), runs at each stage of mountPlanned
// where a concurrent process could change the tree: "resolved" (the target
// resolved), "opened" (the mount point opened, not yet mounted on).
var testHookMount func(stage string)

// mountPlanned mounts pm inside the root rootfd. Its mount point is resolved,
// created (when nested) and opened inside the root, and the mount goes onto
// that descriptor: a concurrent RUN that shares a directory with this one
// (a cache mount) and swaps a component for a symlink meanwhile cannot make
// it create or mount anything outside the root.
func mountPlanned(rootfd int, pm plannedMount, cfg *initConfig) error {
	p, err := inroot.Resolve(rootfd, pm.Target)
	if err != nil {
		return err
	}
	if testHookMount != nil {
		testHookMount("resolved")
	}
	mp, err := openMountPoint(rootfd, p, pm.dir, pm.nested)
	if err != nil {
		return err
	}
	defer mp.close()
	if testHookMount != nil {
		testHookMount("opened")
	}
	if pm.populate {
		// "/." reads through the descriptor into the directory itself.
		if err := populate(pm.Source, mp.path()+"/."); err != nil {
			return fmt.Errorf("fill volume %s from the image: %w", pm.Target, err)
		}
	}
	m := pm.Mount
	m.Target = mp.path()
	err = mountOn(m, mp.top)
	if err != nil && pm.fallback != nil {
		fb := *pm.fallback
		fb.Target = mp.path()
		if ferr := mountOn(fb, mp.top); ferr != nil {
			return errors.Join(err, ferr)
		}
		err = nil
	}
	if err == nil && pm.dev {
		err = onTop(mp.path(), mp.top, func(host string) error { return populateDev(host, cfg.Privileged, shmSize(cfg)) })
	}
	return err
}

// mountPoint is a mount target opened inside the sandbox root. Mounting onto
// its /proc/self/fd name reaches the very file opened, whatever is renamed
// or replaced by a symlink meanwhile.
type mountPoint struct {
	parent int    // O_PATH descriptor of the directory that holds it
	name   string // its name there
	fd     int    // O_PATH descriptor of the mount point
}

// openMountPoint opens the resolved container path p inside rootfd as a
// mount point, first creating it (a directory, or an empty file when dir is
// false) and its missing parents when create is set.
func openMountPoint(rootfd int, p string, dir, create bool) (*mountPoint, error) {
	if p == "/" {
		return nil, fmt.Errorf("mount point %s: resolves to the root", p)
	}
	mp := &mountPoint{parent: -1, name: path.Base(p), fd: -1}
	var err error
	if create {
		mp.parent, _, err = inroot.MkdirAll(rootfd, path.Dir(p), 0o755, nil)
		if err == nil {
			err = makeStub(mp.parent, mp.name, dir)
		}
		if err != nil {
			mp.close()
			return nil, fmt.Errorf("create mount point %s: %w", p, err)
		}
	} else if mp.parent, err = inroot.Open(rootfd, inroot.Rel(path.Dir(p)), unix.O_PATH|unix.O_DIRECTORY); err != nil {
		return nil, fmt.Errorf("open mount point %s: %w", p, err)
	}
	mp.fd, err = unix.Openat(mp.parent, mp.name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == nil {
		var st unix.Stat_t
		if err = unix.Fstat(mp.fd, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			err = errors.New("is a symlink")
		}
	}
	if err != nil {
		mp.close()
		return nil, fmt.Errorf("open mount point %s: %w", p, err)
	}
	return mp, nil
}

// makeStub creates name in the directory dirfd, a directory or an empty
// file, unless it exists.
func makeStub(dirfd int, name string, dir bool) error {
	if dir {
		if err := unix.Mkdirat(dirfd, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		return nil
	}
	fd, err := unix.Openat(dirfd, name, unix.O_CREAT|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// path is the name that reaches the mount point (not what is mounted on it
// later: see top).
func (mp *mountPoint) path() string { return inroot.ProcPath(mp.fd) }

// top opens what is mounted on the mount point now: looking its name up in
// its parent crosses into the mount. Should the name have been replaced
// meanwhile, what it opens is no mount root, and a remount or propagation
// change on it fails.
func (mp *mountPoint) top() (int, error) {
	return unix.Openat(mp.parent, mp.name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

func (mp *mountPoint) close() {
	for _, fd := range []int{mp.fd, mp.parent} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// ensureMountPoint creates host (a directory, or an empty file) if missing,
// for the device nodes bound into the sandbox's own fresh /dev.
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

// shmSize is the size of the sandbox's /dev/shm.
func shmSize(cfg *initConfig) int64 {
	if cfg.ShmSize <= 0 {
		return DefaultShmSize
	}
	return cfg.ShmSize
}

var devices = []struct {
	name         string
	major, minor uint32
}{
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
}

// devMount is a filesystem mounted in the sandbox's /dev.
type devMount struct {
	dir  string
	mode uint32
	m    Mount
}

// devMounts are the private devpts and the /dev/shm tmpfs of shmSize bytes.
func devMounts(shmSize int64) []devMount {
	return []devMount{
		{"pts", 0o755, Mount{Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}}},
		{"shm", 0o1777, Mount{Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "nodev", "noexec", "mode=1777", "size=" + strconv.FormatInt(shmSize, 10)}}},
	}
}

// withoutTTYGroup is a devpts mount's options without "gid=5", for a user
// namespace that does not map gid 5 (tty): rootless kiln's single-uid
// mapping. The terminals keep the owner's group.
func withoutTTYGroup(opts []string) []string {
	return slices.DeleteFunc(slices.Clone(opts), func(o string) bool { return o == "gid=5" })
}

// devSymlinks are /dev's symlinks, name -> target.
var devSymlinks = [][2]string{
	{"ptmx", "pts/ptmx"}, {"fd", "/proc/self/fd"},
	{"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"},
}

// populateDev fills the /dev tmpfs at dev like runc: device nodes (bind
// mounts of the host's when mknod is not permitted), a private devpts, a
// /dev/shm tmpfs of shmSize bytes and the /proc/self/fd symlinks.
func populateDev(dev string, privileged bool, shmSize int64) error {
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
	for _, m := range devMounts(shmSize) {
		p := dev + "/" + m.dir
		if err := unix.Mkdir(p, m.mode); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create /dev/%s: %w", m.dir, err)
		}
		m.m.Target = p
		err := MountOverlay(m.m)
		if errors.Is(err, unix.EINVAL) && m.dir == "pts" {
			m.m.Options = withoutTTYGroup(m.m.Options)
			err = MountOverlay(m.m)
		}
		if err != nil {
			return err
		}
	}
	for _, l := range devSymlinks {
		name, target := l[0], l[1]
		if err := os.Symlink(target, dev+"/"+name); err != nil {
			return fmt.Errorf("create /dev/%s: %w", name, err)
		}
	}
	return nil
}

// stat is the node as makeDevice makes it.
func (n *DeviceNode) stat() unix.Stat_t {
	st := unix.Stat_t{Rdev: unix.Mkdev(uint32(n.Major), uint32(n.Minor)), Uid: n.UID, Gid: n.GID}
	switch n.Type {
	case "b":
		st.Mode = unix.S_IFBLK
	case "p":
		st.Mode = unix.S_IFIFO
		st.Rdev = 0
	default:
		st.Mode = unix.S_IFCHR
	}
	mode := n.Mode & 0o7777
	if mode == 0 {
		mode = 0o666
	}
	st.Mode |= mode
	return st
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

// bindDevice binds the host device d.Source over a new empty file name in
// dfd.
func bindDevice(dfd int, name string, d Device) error {
	fd, err := unix.Openat(dfd, name, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0o600)
	if err != nil {
		return fmt.Errorf("device %s: %w", d.Target, err)
	}
	defer unix.Close(fd)
	if err := MountOverlay(Mount{Type: "bind", Source: d.Source, Target: inroot.ProcPath(fd), Options: []string{"bind"}}); err != nil {
		return fmt.Errorf("device %s: %w", d.Target, err)
	}
	return nil
}

// makeDevice recreates the host device d.Source at d.Target inside rootfd (a
// character or block device: same numbers, mode and owner).
func makeDevice(rootfd int, d Device) error {
	var st unix.Stat_t
	if d.Source == "" && d.Node != nil {
		st = d.Node.stat()
	} else if err := unix.Stat(d.Source, &st); err != nil {
		return fmt.Errorf("device %s: %w", d.Source, err)
	} else if t := st.Mode & unix.S_IFMT; t != unix.S_IFCHR && t != unix.S_IFBLK {
		return fmt.Errorf("device %s: not a device", d.Source)
	}
	p, err := inroot.Resolve(rootfd, d.Target)
	if err != nil {
		return err
	}
	if p == "/" {
		return fmt.Errorf("device %s: resolves to the root", d.Target)
	}
	dfd, _, err := inroot.MkdirAll(rootfd, path.Dir(p), 0o755, nil)
	if err != nil {
		return fmt.Errorf("device %s: %w", d.Target, err)
	}
	defer unix.Close(dfd)
	name := path.Base(p)
	if err := unix.Unlinkat(dfd, name, 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("device %s: %w", d.Target, err)
	}
	if err := unix.Mknodat(dfd, name, st.Mode, int(st.Rdev)); errors.Is(err, unix.EPERM) && d.Source != "" {
		// A user namespace cannot make device nodes (rootless kiln): a
		// bind mount of the host's node, as for the default devices.
		return bindDevice(dfd, name, d)
	} else if err != nil {
		return fmt.Errorf("device %s: %w", d.Target, err)
	}
	// Mode (mknod applied the umask) and owner go through a descriptor of
	// the node made, so a swap for a symlink cannot redirect them.
	fd, err := unix.Openat(dfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("device %s: %w", d.Target, err)
	}
	defer unix.Close(fd)
	var made unix.Stat_t
	if err := unix.Fstat(fd, &made); err != nil {
		return fmt.Errorf("device %s: %w", d.Target, err)
	}
	if made.Mode&unix.S_IFMT != st.Mode&unix.S_IFMT || made.Rdev != st.Rdev {
		return fmt.Errorf("device %s: replaced while being made", d.Target)
	}
	if err := unix.Chmod(inroot.ProcPath(fd), st.Mode&0o7777); err != nil {
		return fmt.Errorf("device %s: %w", d.Target, err)
	}
	if err := unix.Fchownat(fd, "", int(st.Uid), int(st.Gid), unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("device %s: %w", d.Target, err)
	}
	return nil
}
