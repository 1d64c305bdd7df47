package container

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-build/kiln/runner"
)

// StatsSample is one reading of a container's resource use.
type StatsSample struct {
	Read       time.Time
	Cgroup     runner.CgroupStats
	NetRx      uint64 // bytes received on the container's interfaces (its network namespace)
	NetTx      uint64
	SystemCPU  uint64 // the host's CPU time, nanoseconds (/proc/stat)
	OnlineCPUs int
	MemTotal   uint64 // the host's memory: the limit of a container without one
}

// StatsAvailable is nil when Stats can read containers' counters, else why
// not: they are their cgroups', and rootless kiln may have none.
func StatsAvailable() error { return checkCgroups("stats") }

// Stats reads the running container's counters: its cgroup, its network
// namespace's interfaces (/proc/<pid>/net/dev), and the host's CPU time
// for CPU percentages.
func (c *Container) Stats() (StatsSample, error) {
	if err := c.Refresh(); err != nil {
		return StatsSample{}, err
	}
	if !c.State.Running {
		return StatsSample{}, fmt.Errorf("container %s: %w", c.ShortID(), ErrNotRunning)
	}
	if err := StatsAvailable(); err != nil {
		return StatsSample{}, err
	}
	var s StatsSample
	s.Read = time.Now()
	var err error
	if s.Cgroup, err = c.cgroup().Stats(); err != nil {
		return s, err
	}
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", c.State.Pid)); err == nil {
		s.NetRx, s.NetTx = parseNetDev(string(data))
	}
	if data, err := os.ReadFile("/proc/stat"); err == nil {
		s.SystemCPU, s.OnlineCPUs = parseProcStat(string(data))
	}
	if s.OnlineCPUs == 0 {
		s.OnlineCPUs = runtime.NumCPU()
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		kb, _ := fieldAfter(string(data), "MemTotal:")
		s.MemTotal = kb * 1024
	}
	return s, nil
}

// CPUPercent is docker's CPU %: the container's share of the host's CPU
// time between two samples, times the number of CPUs.
func CPUPercent(prev, cur StatsSample) float64 {
	cpu := float64(cur.Cgroup.CPUUsage) - float64(prev.Cgroup.CPUUsage)
	sys := float64(cur.SystemCPU) - float64(prev.SystemCPU)
	if cpu <= 0 || sys <= 0 {
		return 0
	}
	return cpu / sys * float64(cur.OnlineCPUs) * 100
}

// MemoryLimit is the container's memory limit, or the host's memory.
func (s StatsSample) MemoryLimit() uint64 {
	if s.Cgroup.MemoryLimit > 0 && (s.MemTotal == 0 || s.Cgroup.MemoryLimit < s.MemTotal) {
		return s.Cgroup.MemoryLimit
	}
	return s.MemTotal
}

// parseNetDev sums the received and sent bytes of every interface but
// loopback, as docker's stats.
func parseNetDev(data string) (rx, tx uint64) {
	for _, line := range strings.Split(data, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 9 {
			continue
		}
		r, _ := strconv.ParseUint(f[0], 10, 64)
		t, _ := strconv.ParseUint(f[8], 10, 64)
		rx, tx = rx+r, tx+t
	}
	return rx, tx
}

// parseProcStat is the host's total CPU time in nanoseconds (the "cpu"
// line, in USER_HZ = 100 ticks per second) and the number of CPUs.
func parseProcStat(data string) (total uint64, cpus int) {
	for _, line := range strings.Split(data, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if f[0] != "cpu" {
			cpus++
			continue
		}
		for _, v := range f[1:min(len(f), 9)] { // user..steal, as docker
			n, _ := strconv.ParseUint(v, 10, 64)
			total += n
		}
	}
	return total * (1e9 / 100), cpus
}

func fieldAfter(data, key string) (uint64, bool) {
	i := strings.Index(data, key)
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(data[i+len(key):])
	if len(f) == 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(f[0], 10, 64)
	return n, err == nil
}
