package runner

import "strconv"

// Resources are a container's cgroup limits; zero values mean no limit (or
// the kernel's default share).
type Resources struct {
	Memory    int64 // bytes
	CPUShares int64 // relative weight, cgroup v1 style (default 1024)
	NanoCPUs  int64 // CPU quota in units of 1e-9 CPUs
	PidsLimit int64 // maximum tasks; <= 0 is unlimited
	// Devices, when not nil, are the only devices the cgroup may use, as
	// device cgroup rules ("c 1:3 rwm"); nil allows every device. Enforced
	// on cgroup v1 (the devices controller); v2 would need an eBPF program.
	Devices []string
}

// DefaultDevices are the device rules of docker's unprivileged containers:
// any node may be made, and the usual character devices used (null, zero,
// full, random, urandom, tty, console, ptmx, the pseudo-terminals, tun).
var DefaultDevices = []string{
	"c *:* m", "b *:* m",
	"c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
	"c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm",
}

// cgroupFile is one control file write.
type cgroupFile struct {
	Controller string // v1 hierarchy ("memory", "cpu", ...); ignored on v2
	Name       string
	Value      string
}

// cpuPeriod is the CFS period the --cpus quota is expressed in, as Docker's.
const cpuPeriod = 100000

// cgroupFiles lists the control file writes for r on cgroup v1 or v2.
func cgroupFiles(r Resources, v2 bool) []cgroupFile {
	var out []cgroupFile
	if r.Memory > 0 {
		name := "memory.limit_in_bytes"
		if v2 {
			name = "memory.max"
		}
		out = append(out, cgroupFile{"memory", name, strconv.FormatInt(r.Memory, 10)})
	}
	if r.PidsLimit > 0 {
		out = append(out, cgroupFile{"pids", "pids.max", strconv.FormatInt(r.PidsLimit, 10)})
	}
	if r.CPUShares > 0 {
		if v2 {
			// runc's conversion from shares [2, 262144] to weight [1, 10000].
			s := min(max(r.CPUShares, 2), 262144)
			out = append(out, cgroupFile{"cpu", "cpu.weight", strconv.FormatInt(1+((s-2)*9999)/262142, 10)})
		} else {
			out = append(out, cgroupFile{"cpu", "cpu.shares", strconv.FormatInt(r.CPUShares, 10)})
		}
	}
	if r.Devices != nil && !v2 {
		out = append(out, cgroupFile{"devices", "devices.deny", "a"})
		for _, rule := range r.Devices {
			out = append(out, cgroupFile{"devices", "devices.allow", rule})
		}
	}
	if r.NanoCPUs > 0 {
		quota := max(r.NanoCPUs*cpuPeriod/1e9, 1000)
		if v2 {
			out = append(out, cgroupFile{"cpu", "cpu.max", strconv.FormatInt(quota, 10) + " " + strconv.Itoa(cpuPeriod)})
		} else {
			out = append(out,
				cgroupFile{"cpu", "cpu.cfs_period_us", strconv.Itoa(cpuPeriod)},
				cgroupFile{"cpu", "cpu.cfs_quota_us", strconv.FormatInt(quota, 10)})
		}
	}
	return out
}

// parseFlatKeyed returns the value of key in a "key value" per line file
// (memory.events, memory.oom_control).
func parseFlatKeyed(data, key string) (int64, bool) {
	for len(data) > 0 {
		var line string
		line, data, _ = cut(data, '\n')
		k, v, ok := cut(line, ' ')
		if ok && k == key {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

func cut(s string, sep byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
