package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/rootless"
)

// CgroupRoot is where cgroup filesystems are mounted.
const CgroupRoot = "/sys/fs/cgroup"

// cgroupV1Controllers are the v1 hierarchies a container is placed in.
var cgroupV1Controllers = []string{"memory", "pids", "cpu", "cpuacct", "blkio", "freezer", "devices", "cpuset"}

// Cgroup is a container's cgroup: one directory on cgroup v2, one per
// hierarchy on v1 (hybrid hosts use the v1 hierarchies).
type Cgroup struct {
	v2   bool
	dirs map[string]string // controller ("" on v2) -> directory
}

// OpenCgroup returns the cgroup at name (e.g. "kiln/<id>") relative to
// each hierarchy's root, whether or not it exists.
// Without cgroups (CgroupsUnavailable) it is a cgroup of no directories: no
// processes, nothing to remove.
func OpenCgroup(name string) *Cgroup {
	base, err := cgroupBase()
	if err != nil {
		return &Cgroup{dirs: map[string]string{}}
	}
	return openCgroupIn(base, name, cgroupV1Controllers)
}

// openCgroupIn is OpenCgroup with the cgroup filesystems mounted at root
// (CgroupRoot but in tests), in the given v1 hierarchies only. root is
// cgroup v2 when it has cgroup.controllers.
func openCgroupIn(root, name string, controllers []string) *Cgroup {
	c := &Cgroup{dirs: map[string]string{}}
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		c.v2 = true
		c.dirs[""] = filepath.Join(root, name)
		return c
	}
	seen := map[string]bool{}
	for _, ctl := range controllers {
		h, err := filepath.EvalSymlinks(filepath.Join(root, ctl))
		if err != nil || seen[h] {
			continue
		}
		if _, err := os.Stat(filepath.Join(h, "cgroup.procs")); err != nil {
			continue
		}
		seen[h] = true
		c.dirs[ctl] = filepath.Join(h, name)
	}
	return c
}

// NewCgroup creates the cgroup name with the limits r. On cgroup v2, the
// device rules of r are a device filter program attached to the cgroup.
//
// Rootless, the device rules are dropped (an unprivileged user namespace
// can neither make device nodes nor open those its user cannot, and
// attaching a device program needs real root); without cgroups
// (CgroupsUnavailable) NewCgroup returns a cgroup of no directories when r
// asks for no limit, and the reason (ErrNoCgroups) when it does.
func NewCgroup(name string, r Resources) (*Cgroup, error) {
	if rootless.Active() {
		r.Devices = nil
	}
	base, err := cgroupBase()
	if err != nil {
		if r.Memory != 0 || r.CPUShares != 0 || r.NanoCPUs != 0 || r.PidsLimit > 0 || r.MemorySwap != 0 || r.CpusetCpus != "" || r.Devices != nil {
			return nil, err
		}
		return &Cgroup{dirs: map[string]string{}}, nil
	}
	return newCgroupIn(base, name, r)
}

// newCgroupIn is NewCgroup with the cgroup filesystems mounted at root.
func newCgroupIn(root, name string, r Resources) (*Cgroup, error) {
	devices, err := parseDeviceRules(r.Devices)
	if err != nil {
		return nil, fmt.Errorf("create cgroup: %w", err)
	}
	c := openCgroupIn(root, name, cgroupV1Controllers)
	if len(c.dirs) == 0 {
		return nil, errors.New("create cgroup: no cgroup hierarchy mounted")
	}
	if c.v2 {
		if err := enableV2Controllers(root, filepath.Dir(c.dirs[""])); err != nil {
			return nil, err
		}
	}
	if dir, ok := c.dirs["cpuset"]; ok && !c.v2 {
		if err := newCpusetParent(filepath.Dir(dir)); err != nil {
			return nil, err
		}
	}
	for _, d := range c.Dirs() {
		if err := mkdirRetry(d); err != nil {
			c.Remove()
			return nil, fmt.Errorf("create cgroup: %w", err)
		}
	}
	if dir, ok := c.dirs["cpuset"]; ok && !c.v2 {
		if err := initCpuset(dir); err != nil {
			c.Remove()
			return nil, err
		}
	}
	if c.v2 && r.Devices != nil {
		if err := attachDeviceFilter(c.dirs[""], devices); err != nil {
			c.Remove()
			return nil, fmt.Errorf("create cgroup: %w", err)
		}
	}
	for _, f := range cgroupFiles(r, c.v2) {
		dir, ok := c.dirs[f.Controller]
		if c.v2 {
			dir, ok = c.dirs[""], true
		}
		if !ok {
			if (f.Controller == "cpu" && r.CPUShares == 0) || f.Controller == "devices" {
				continue // a hierarchy this host lacks (devices: enforced where it exists)
			}
			c.Remove()
			return nil, fmt.Errorf("create cgroup: no %s controller", f.Controller)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name), []byte(f.Value), 0); err != nil {
			c.Remove()
			return nil, fmt.Errorf("set cgroup %s=%s: %w", f.Name, f.Value, err)
		}
	}
	if r.MemorySwap != 0 || r.CpusetCpus != "" {
		if err := c.Update(LiveResources{MemorySwap: r.MemorySwap, CpusetCpus: r.CpusetCpus}); err != nil {
			c.Remove()
			return nil, fmt.Errorf("create cgroup: %w", err)
		}
	}
	return c, nil
}

// mkdirRetry makes dir and its parents; a parent removed concurrently by
// another container's cleanup is made again.
func mkdirRetry(dir string) error {
	var err error
	for range 20 {
		if err = os.MkdirAll(dir, 0o755); err == nil || !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return err
}

// enableV2Controllers turns on memory, pids and cpu for the children of every
// cgroup from root down to parent (inclusive).
func enableV2Controllers(root, parent string) error {
	rel, err := filepath.Rel(root, parent)
	if err != nil {
		return err
	}
	dir := root
	for _, comp := range append([]string{""}, strings.Split(rel, "/")...) {
		if comp != "" && comp != "." {
			dir = filepath.Join(dir, comp)
			if err := mkdirRetry(dir); err != nil {
				return fmt.Errorf("create cgroup %s: %w", dir, err)
			}
		}
		avail, _ := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
		for _, ctl := range []string{"memory", "pids", "cpu", "cpuset"} {
			if slices.Contains(strings.Fields(string(avail)), ctl) {
				_ = os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+ctl), 0)
			}
		}
	}
	return nil
}

// Dirs are the cgroup's directories, to join through Spec.Cgroups.
func (c *Cgroup) Dirs() []string {
	var out []string
	for _, k := range slicesSortedKeys(c.dirs) {
		out = append(out, c.dirs[k])
	}
	return out
}

func slicesSortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// OOMKilled reports whether the kernel's OOM killer killed a task of the
// cgroup (memory.events on v2, memory.oom_control on v1).
func (c *Cgroup) OOMKilled() bool {
	file, dir := "memory.oom_control", c.dirs["memory"]
	if c.v2 {
		file, dir = "memory.events", c.dirs[""]
	}
	if dir == "" {
		return false
	}
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return false
	}
	n, _ := parseFlatKeyed(string(data), "oom_kill")
	return n > 0
}

// Pids lists the processes in the cgroup.
func (c *Cgroup) Pids() []int {
	seen := map[int]bool{}
	var out []int
	for _, d := range c.Dirs() {
		data, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil && !seen[pid] {
				seen[pid] = true
				out = append(out, pid)
			}
		}
	}
	return out
}

// Remove SIGKILLs anything left in the cgroup and removes its directories,
// waiting up to a few seconds for dying tasks to leave. Their parents
// ("kiln") stay, as docker's do: see newCpusetParent.
func (c *Cgroup) Remove() error {
	var errs []error
	deadline := time.Now().Add(5 * time.Second)
	if c.Frozen() {
		_ = c.Thaw() // frozen tasks cannot die
	}
	for _, d := range c.Dirs() {
		for {
			err := unix.Rmdir(d)
			if err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
				break
			}
			for _, pid := range c.Pids() {
				if pid != os.Getpid() { // a thread of ours (a health check's exec) is leaving
					_ = unix.Kill(pid, unix.SIGKILL)
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return errors.Join(errs...)
}

// DeviceRule is the rule allowing the device at path with permissions
// perms (some of r, w, m; "" is rwm).
func DeviceRule(path, perms string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "", err
	}
	t := "c"
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
	case unix.S_IFBLK:
		t = "b"
	default:
		return "", fmt.Errorf("%s: not a device", path)
	}
	if perms == "" {
		perms = "rwm"
	}
	if strings.Trim(perms, "rwm") != "" {
		return "", fmt.Errorf("invalid device permissions %q", perms)
	}
	return fmt.Sprintf("%s %d:%d %s", t, unix.Major(st.Rdev), unix.Minor(st.Rdev), perms), nil
}

// buildCgroupPrefix names the cgroups of builds: kiln/build-<pid>-<start>.
const buildCgroupPrefix = "build-"

// NewBuildCgroup creates the cgroup the RUN steps of one build run in,
// kiln/build-<pid>-<start time> in the devices hierarchy (v1) or the
// unified one (v2), allowing only DefaultDevices (the devices controller
// on v1, a device filter program on v2). The cgroups of builds whose
// process is gone (killed before they could remove theirs) are removed
// first. Rootless, builds have no device cgroup (see NewCgroup): it returns
// a cgroup of no directories.
func NewBuildCgroup() (*Cgroup, error) {
	if rootless.Active() {
		return &Cgroup{dirs: map[string]string{}}, nil
	}
	return newBuildCgroupIn(CgroupRoot)
}

// newBuildCgroupIn is NewBuildCgroup with the cgroup filesystems mounted
// at root.
func newBuildCgroupIn(root string) (*Cgroup, error) {
	pid := os.Getpid()
	start, _ := ProcStart(pid)
	sweepBuildCgroups(root)
	name := fmt.Sprintf("kiln/%s%d-%d", buildCgroupPrefix, pid, start)
	c := openCgroupIn(root, name, []string{"devices"})
	if len(c.dirs) == 0 {
		return nil, errors.New("create build cgroup: no devices cgroup hierarchy mounted")
	}
	for _, d := range c.Dirs() {
		if err := mkdirRetry(d); err != nil {
			c.Remove()
			return nil, fmt.Errorf("create build cgroup: %w", err)
		}
	}
	if c.v2 {
		devices, err := parseDeviceRules(DefaultDevices)
		if err == nil {
			err = attachDeviceFilter(c.dirs[""], devices)
		}
		if err != nil {
			c.Remove()
			return nil, fmt.Errorf("create build cgroup: %w", err)
		}
		return c, nil
	}
	for _, f := range cgroupFiles(Resources{Devices: DefaultDevices}, false) {
		if err := os.WriteFile(filepath.Join(c.dirs[f.Controller], f.Name), []byte(f.Value), 0); err != nil {
			c.Remove()
			return nil, fmt.Errorf("set cgroup %s=%s: %w", f.Name, f.Value, err)
		}
	}
	return c, nil
}

// sweepBuildCgroups removes the build cgroups whose build process is gone.
func sweepBuildCgroups(root string) {
	c := openCgroupIn(root, "kiln", []string{"devices"})
	for _, dir := range c.Dirs() {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			rest, ok := strings.CutPrefix(e.Name(), buildCgroupPrefix)
			if !ok || !e.IsDir() {
				continue
			}
			p, s, _ := strings.Cut(rest, "-")
			pid, err1 := strconv.Atoi(p)
			start, err2 := strconv.ParseUint(s, 10, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			if st, ok := ProcStart(pid); ok && st == start {
				continue // a live build's
			}
			_ = unix.Rmdir(filepath.Join(dir, e.Name())) // EBUSY while something still runs in it
		}
	}
}
