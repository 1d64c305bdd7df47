package runner

import (
	"fmt"
	"os"
	"slices"
	"syscall"
)

// setRlimits sets the init's resource limits, which the command inherits.
// It runs before the user switch: raising a hard limit takes
// CAP_SYS_RESOURCE. (syscall.Setrlimit, not x/sys: it also drops the Go
// runtime's saved RLIMIT_NOFILE, which exec would otherwise restore.)
func setRlimits(rls []Rlimit) error {
	for _, r := range rls {
		if err := syscall.Setrlimit(r.Type, &syscall.Rlimit{Cur: r.Soft, Max: r.Hard}); err != nil {
			return fmt.Errorf("set rlimit %d to %d:%d: %w", r.Type, r.Soft, r.Hard, err)
		}
	}
	return nil
}

// applySysctls writes the sandbox's sysctls through its own /proc (after
// pivot_root, before /proc/sys is made read-only), in name order.
func applySysctls(sysctls map[string]string) error {
	names := make([]string, 0, len(sysctls))
	for k := range sysctls {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, name := range names {
		p, err := sysctlPath(name)
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(sysctls[name]), 0); err != nil {
			return fmt.Errorf("set sysctl %s=%s: %w", name, sysctls[name], err)
		}
	}
	return nil
}
