package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Freeze stops every task of the cgroup (v1 freezer.state, v2
// cgroup.freeze) and returns once they are all frozen.
func (c *Cgroup) Freeze() error { return c.setFrozen(true) }

// Thaw lets the tasks of a frozen cgroup run again.
func (c *Cgroup) Thaw() error { return c.setFrozen(false) }

func (c *Cgroup) setFrozen(frozen bool) error {
	file, val, want := "freezer.state", "THAWED", "THAWED"
	dir, ok := c.dirs["freezer"]
	if c.v2 {
		file, val, dir, ok = "cgroup.freeze", "0", c.dirs[""], true
	}
	if frozen {
		val, want = "FROZEN", "FROZEN"
		if c.v2 {
			val = "1"
		}
	}
	if !ok {
		return errors.New("freeze cgroup: no freezer controller")
	}
	if err := os.WriteFile(filepath.Join(dir, file), []byte(val), 0); err != nil {
		return fmt.Errorf("freeze cgroup %s: %w", dir, err)
	}
	// v1 goes through FREEZING; v2 reports "frozen 1" in cgroup.events.
	for delay := time.Millisecond; ; delay = min(delay*2, 20*time.Millisecond) {
		if c.v2 {
			if c.Frozen() == frozen {
				return nil
			}
		} else {
			data, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				return fmt.Errorf("freeze cgroup %s: %w", dir, err)
			}
			state := strings.TrimSpace(string(data))
			if state == want {
				return nil
			}
			if frozen && state == "THAWED" { // a task escaped the freeze: ask again
				_ = os.WriteFile(filepath.Join(dir, file), []byte(val), 0)
			}
		}
		time.Sleep(delay)
	}
}

// Frozen reports whether the cgroup is frozen (or freezing).
func (c *Cgroup) Frozen() bool {
	if c.v2 {
		data, err := os.ReadFile(filepath.Join(c.dirs[""], "cgroup.events"))
		if err != nil {
			return false
		}
		n, _ := parseFlatKeyed(string(data), "frozen")
		return n == 1
	}
	dir, ok := c.dirs["freezer"]
	if !ok {
		return false
	}
	data, err := os.ReadFile(filepath.Join(dir, "freezer.state"))
	return err == nil && strings.TrimSpace(string(data)) != "THAWED"
}

// Stats reads the cgroup's counters.
func (c *Cgroup) Stats() (CgroupStats, error) {
	var st CgroupStats
	read := func(ctl, name string) string {
		dir := c.dirs[ctl]
		if c.v2 {
			dir = c.dirs[""]
		}
		if dir == "" {
			return ""
		}
		data, _ := os.ReadFile(filepath.Join(dir, name))
		return string(data)
	}
	if c.v2 {
		if _, err := os.Stat(c.dirs[""]); err != nil {
			return st, fmt.Errorf("read cgroup stats: %w", err)
		}
		usec, _ := parseFlatKeyed(read("", "cpu.stat"), "usage_usec")
		st.CPUUsage = uint64(usec) * 1000
		st.MemoryUsage = parseUint(read("", "memory.current"))
		if inactive, ok := parseFlatKeyed(read("", "memory.stat"), "inactive_file"); ok && uint64(inactive) < st.MemoryUsage {
			st.MemoryUsage -= uint64(inactive)
		}
		st.MemoryLimit = parseUint(read("", "memory.max")) // "max": 0
		st.BlockRead, st.BlockWrite = parseIOStatV2(read("", "io.stat"))
		st.Pids = parseUint(read("", "pids.current"))
		return st, nil
	}
	if _, err := os.Stat(c.dirs["memory"]); err != nil {
		return st, fmt.Errorf("read cgroup stats: %w", err)
	}
	st.CPUUsage = parseUint(read("cpuacct", "cpuacct.usage"))
	st.MemoryUsage = parseUint(read("memory", "memory.usage_in_bytes"))
	if inactive, ok := parseFlatKeyed(read("memory", "memory.stat"), "total_inactive_file"); ok && uint64(inactive) < st.MemoryUsage {
		st.MemoryUsage -= uint64(inactive)
	}
	// v1 reports "no limit" as the largest page-aligned int64.
	if l := parseUint(read("memory", "memory.limit_in_bytes")); l < 1<<62 {
		st.MemoryLimit = l
	}
	st.BlockRead, st.BlockWrite = parseBlkioV1(read("blkio", "blkio.throttle.io_service_bytes"))
	st.Pids = parseUint(read("pids", "pids.current"))
	return st, nil
}

// Update changes the limits of a live cgroup.
func (c *Cgroup) Update(r LiveResources) error {
	growing := false
	if dir, ok := c.dirs["memory"]; ok && !c.v2 && r.Memory > 0 {
		cur, _ := os.ReadFile(filepath.Join(dir, "memory.limit_in_bytes"))
		growing = uint64(r.Memory) > parseUint(string(cur))
	}
	if !c.v2 && r.MemorySwap < 0 {
		growing = true // memsw unlimited first, then any memory limit
	}
	for _, f := range liveFiles(r, c.v2, growing) {
		dir, ok := c.dirs[f.Controller]
		if c.v2 {
			dir, ok = c.dirs[""], true
		}
		if !ok {
			return fmt.Errorf("update cgroup: no %s controller", f.Controller)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name), []byte(f.Value), 0); err != nil {
			return fmt.Errorf("set cgroup %s=%s: %w", f.Name, f.Value, err)
		}
	}
	return nil
}

// initCpuset gives a new v1 cpuset cgroup (and its parent, when it is new
// as well) the CPUs and memory nodes of its parent: an empty cpuset takes
// no task. Under a parent made by newCpusetParent the kernel copied them
// already (cgroup.clone_children): two reads find them.
func initCpuset(dir string) error {
	if cpusetSet(dir) {
		return nil
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		for _, name := range []string{"cpuset.cpus", "cpuset.mems"} {
			cur, err := os.ReadFile(filepath.Join(d, name))
			if err != nil {
				return fmt.Errorf("init cpuset %s: %w", d, err)
			}
			if strings.TrimSpace(string(cur)) != "" {
				continue
			}
			parent, err := os.ReadFile(filepath.Join(filepath.Dir(d), name))
			if err != nil {
				return fmt.Errorf("init cpuset %s: %w", d, err)
			}
			if err := os.WriteFile(filepath.Join(d, name), parent, 0); err != nil {
				return fmt.Errorf("init cpuset %s: %w", d, err)
			}
		}
	}
	return nil
}

// cpusetSet reports whether the v1 cpuset cgroup dir has CPUs and memory
// nodes.
func cpusetSet(dir string) bool {
	for _, name := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || strings.TrimSpace(string(cur)) == "" {
			return false
		}
	}
	return true
}

// newCpusetParent makes dir, the v1 cpuset parent of containers' cgroups
// ("kiln"), when it does not exist: with its parent's CPUs and memory
// nodes, and cgroup.clone_children on, so that the kernel gives each new
// child the same at its mkdir. The parent stays (as docker's does): the
// first cpuset cgroup below the root turns on the kernel's cpuset static
// keys, a patch of the kernel's text on every CPU (some 7 ms here, and as
// much again in a kernel worker when the last one goes), which a parent
// made and removed with each container paid on every run. Another kiln
// making it at the same time is harmless: initCpuset fills what is empty.
func newCpusetParent(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil // it exists; or mkdirRetry makes it, and initCpuset fills it, as any other
	}
	if err := initCpuset(dir); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.clone_children"), []byte("1"), 0); err != nil {
		return fmt.Errorf("init cpuset %s: %w", dir, err)
	}
	return nil
}
