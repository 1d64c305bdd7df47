package runner

import (
	"errors"
	"fmt"
	"strings"

	units "github.com/docker/go-units"
)

// Rlimit is one resource limit of the sandbox (setrlimit(2)): Type is the
// RLIMIT_* number, ^uint64(0) is unlimited.
type Rlimit struct {
	Type       int
	Soft, Hard uint64
}

// ParseUlimit parses docker's and BuildKit's --ulimit NAME=SOFT[:HARD]
// (-1: unlimited), e.g. "nofile=1024:2048".
func ParseUlimit(s string) (*units.Ulimit, error) {
	u, err := units.ParseUlimit(s)
	if err != nil {
		return nil, fmt.Errorf("--ulimit %s: %w", s, err)
	}
	return u, nil
}

// Rlimits converts parsed ulimits into the sandbox's.
func Rlimits(us []*units.Ulimit) ([]Rlimit, error) {
	var out []Rlimit
	for _, u := range us {
		r, err := u.GetRlimit()
		if err != nil {
			return nil, fmt.Errorf("ulimit %s: %w", u.Name, err)
		}
		out = append(out, Rlimit{Type: r.Type, Soft: r.Soft, Hard: r.Hard})
	}
	return out, nil
}

// DefaultShmSize is the size of /dev/shm when Spec.ShmSize is 0 (docker's).
const DefaultShmSize = 64 << 20

// ErrSysctlNotNamespaced: a sysctl that is not isolated by the sandbox's
// namespaces, which a container may therefore not set.
var ErrSysctlNotNamespaced = errors.New("not a namespaced sysctl")

// ipcSysctls are the IPC namespace's sysctls (besides fs.mqueue.*), as
// docker's validation lists them.
var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// ValidateSysctl accepts, as docker does, only sysctls isolated by the
// sandbox's namespaces: the IPC ones (kernel.msg*, kernel.sem, kernel.shm*,
// fs.mqueue.*) and, when the sandbox has a network namespace of its own,
// net.*. kernel.domainname goes through the UTS namespace but is refused
// like docker refuses it (--domainname sets it).
func ValidateSysctl(name string, privateNet bool) error {
	switch {
	case ipcSysctls[name], strings.HasPrefix(name, "fs.mqueue.") && len(name) > len("fs.mqueue."):
		return nil
	case strings.HasPrefix(name, "net.") && len(name) > len("net."):
		if !privateNet {
			return fmt.Errorf("sysctl %q: not allowed with the host's network namespace", name)
		}
		return nil
	}
	return fmt.Errorf("sysctl %q: %w", name, ErrSysctlNotNamespaced)
}

// sysctlPath is name's file under /proc/sys ("net.ipv4.ip_forward" ->
// /proc/sys/net/ipv4/ip_forward). Dots in an interface name are given as
// slashes, as sysctl(8) accepts (net.ipv4.conf.eth0/1.forwarding).
func sysctlPath(name string) (string, error) {
	if name == "" || strings.Contains(name, "..") || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("sysctl %q: bad name", name)
	}
	parts := strings.Split(name, ".")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(p, "/", ".")
		if parts[i] == "" || parts[i] == "." || parts[i] == ".." {
			return "", fmt.Errorf("sysctl %q: bad name", name)
		}
	}
	return "/proc/sys/" + strings.Join(parts, "/"), nil
}
