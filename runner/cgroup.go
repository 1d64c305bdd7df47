package runner

import (
	"fmt"
	"strconv"
	"strings"
)

// Resources are a container's cgroup limits; zero values mean no limit (or
// the kernel's default share).
type Resources struct {
	Memory    int64 // bytes
	CPUShares int64 // relative weight, cgroup v1 style (default 1024)
	NanoCPUs  int64 // CPU quota in units of 1e-9 CPUs
	PidsLimit int64 // maximum tasks; <= 0 is unlimited
	// MemorySwap is the memory+swap limit (-1 unlimited swap; 0 the
	// kernel's default) and CpusetCpus the CPUs allowed ("" all): see
	// LiveResources.
	MemorySwap int64
	CpusetCpus string
	// Devices, when not nil, are the only devices the cgroup may use, as
	// device cgroup rules ("c 1:3 rwm", "b *:* m", "a"; see
	// parseDeviceRule); nil allows every device. Enforced by the devices
	// controller on cgroup v1, by an eBPF program attached to the cgroup on
	// v2 (devices_linux.go).
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

// deviceRule is one device cgroup rule allowing some accesses to some
// devices: "c 1:3 rwm" (type, major:minor, access), "b *:* m" (any
// major or minor), "a" (everything).
type deviceRule struct {
	Type         byte  // 'c', 'b', or 'a' for every device
	Major, Minor int64 // -1 is any ("*")
	Access       string
}

// The largest major and minor numbers the kernel's dev_t holds.
const (
	maxDeviceMajor = 1<<12 - 1
	maxDeviceMinor = 1<<20 - 1
)

// parseDeviceRule parses a rule as the v1 devices.allow file takes it:
// TYPE MAJOR:MINOR ACCESS with TYPE c or b, MAJOR and MINOR numbers or *,
// ACCESS one to three of r, w and m; or "a" (equally "a *:* rwm"), every
// device. An "a" rule narrower than everything is refused: the v1 kernel
// would read it as everything.
func parseDeviceRule(s string) (deviceRule, error) {
	bad := func(why string) (deviceRule, error) {
		return deviceRule{}, fmt.Errorf("invalid device rule %q: %s", s, why)
	}
	if s == "a" || s == "a *:* rwm" {
		return deviceRule{Type: 'a', Major: -1, Minor: -1, Access: "rwm"}, nil
	}
	f := strings.Split(s, " ")
	if len(f) != 3 {
		return bad("want TYPE MAJOR:MINOR ACCESS")
	}
	if f[0] == "a" {
		return bad(`type a is only "a" or "a *:* rwm"`)
	}
	if f[0] != "c" && f[0] != "b" {
		return bad("type must be c, b or a")
	}
	r := deviceRule{Type: f[0][0], Access: f[2]}
	maj, mnr, ok := strings.Cut(f[1], ":")
	if !ok {
		return bad("want MAJOR:MINOR")
	}
	var err error
	if r.Major, err = parseDeviceNumber(maj, maxDeviceMajor); err != nil {
		return bad("major " + err.Error())
	}
	if r.Minor, err = parseDeviceNumber(mnr, maxDeviceMinor); err != nil {
		return bad("minor " + err.Error())
	}
	if len(r.Access) == 0 || len(r.Access) > 3 || strings.Trim(r.Access, "rwm") != "" {
		return bad("access must be some of r, w and m")
	}
	return r, nil
}

// parseDeviceNumber parses a major or minor number up to max; "*" is -1.
func parseDeviceNumber(s string, max int64) (int64, error) {
	if s == "*" {
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > max || s[0] == '+' {
		return 0, fmt.Errorf("%q is not * or a number up to %d", s, max)
	}
	return n, nil
}

// parseDeviceRules parses every rule of rules.
func parseDeviceRules(rules []string) ([]deviceRule, error) {
	out := make([]deviceRule, 0, len(rules))
	for _, s := range rules {
		r, err := parseDeviceRule(s)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
