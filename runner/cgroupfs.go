package runner

import (
	"strings"
)

// cgroupHierarchy is one line of /proc/self/cgroup: a v1 hierarchy (its
// controllers, "cpu,cpuacct", or a named one, "name=systemd") or, with
// empty Controllers, the v2 unified one.
type cgroupHierarchy struct {
	Controllers string
}

// parseProcCgroup reads /proc/self/cgroup's "ID:CONTROLLERS:PATH" lines.
func parseProcCgroup(data string) (v1 []cgroupHierarchy, unified bool) {
	for _, line := range strings.Split(data, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			unified = true
			continue
		}
		v1 = append(v1, cgroupHierarchy{Controllers: parts[1]})
	}
	return v1, unified
}

// dir is the hierarchy's directory under /sys/fs/cgroup, as on the host:
// "cpu,cpuacct", "systemd" for name=systemd.
func (h cgroupHierarchy) dir() string {
	return strings.TrimPrefix(h.Controllers, "name=")
}

// options are the cgroup v1 mount options that name the hierarchy.
func (h cgroupHierarchy) options() string {
	if strings.HasPrefix(h.Controllers, "name=") {
		return "none," + h.Controllers
	}
	return h.Controllers
}

// links are the names of a co-mounted hierarchy's controllers, each a
// symlink to its directory as on the host (cpu -> cpu,cpuacct).
func (h cgroupHierarchy) links() []string {
	if strings.HasPrefix(h.Controllers, "name=") || !strings.Contains(h.Controllers, ",") {
		return nil
	}
	return strings.Split(h.Controllers, ",")
}
