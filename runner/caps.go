package runner

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrUnknownCapability: a capability name Linux does not have.
var ErrUnknownCapability = errors.New("unknown capability")

// capabilityNames are Linux's capabilities, indexed by number.
var capabilityNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
	"CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
	"CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// DefaultCapabilities is Docker's default capability set for containers.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
	"CAP_AUDIT_WRITE",
}

// NormalizeCapability upper-cases name and adds the "CAP_" prefix, as
// docker's --cap-add does ("net_admin" is CAP_NET_ADMIN).
func NormalizeCapability(name string) string {
	name = strings.ToUpper(strings.TrimSpace(name))
	if name != "ALL" && !strings.HasPrefix(name, "CAP_") {
		name = "CAP_" + name
	}
	return name
}

func capabilityNumber(name string) (int, bool) {
	i := slices.Index(capabilityNames, NormalizeCapability(name))
	return i, i >= 0
}

// AllCapabilities lists every capability kiln knows.
func AllCapabilities() []string { return slices.Clone(capabilityNames) }

// Capabilities computes a container's capability set like docker: base
// (DefaultCapabilities when nil) minus drop plus add, where "ALL" in drop
// starts from nothing and "ALL" in add gives everything. Names are
// normalized; unknown ones are an error wrapping ErrUnknownCapability.
func Capabilities(base, add, drop []string) ([]string, error) {
	if base == nil {
		base = DefaultCapabilities
	}
	norm := func(list []string) ([]string, bool, error) {
		var out []string
		all := false
		for _, c := range list {
			n := NormalizeCapability(c)
			if n == "ALL" {
				all = true
				continue
			}
			if _, ok := capabilityNumber(n); !ok {
				return nil, false, fmt.Errorf("capability %q: %w", c, ErrUnknownCapability)
			}
			out = append(out, n)
		}
		return out, all, nil
	}
	addN, addAll, err := norm(add)
	if err != nil {
		return nil, err
	}
	dropN, dropAll, err := norm(drop)
	if err != nil {
		return nil, err
	}
	var set []string
	switch {
	case addAll:
		set = AllCapabilities()
	case dropAll:
	default:
		set = slices.Clone(base)
	}
	set = slices.DeleteFunc(set, func(c string) bool { return slices.Contains(dropN, c) && !slices.Contains(addN, c) })
	for _, c := range addN {
		if !slices.Contains(set, c) {
			set = append(set, c)
		}
	}
	if set == nil {
		set = []string{}
	}
	return set, nil
}
