package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/rootless"
)

// ErrNoCgroups: this kiln cannot make cgroups. Rootless kiln has cgroups
// only through a cgroup v2 subtree delegated to the user (systemd's
// user@UID.service); without one, containers and RUN steps run without a
// cgroup of their own and resource limits are refused.
var ErrNoCgroups = errors.New("rootless kiln has no cgroups here")

var cgroupBaseOnce struct {
	once sync.Once
	dir  string
	err  error
}

// cgroupBase is the directory kiln's cgroups ("kiln/<id>") are made under:
// CgroupRoot under real root; rootless, the topmost cgroup of this
// process's cgroup v2 path that the user may write (the delegated
// subtree), or ErrNoCgroups with the reason.
func cgroupBase() (string, error) {
	if !rootless.Active() {
		return CgroupRoot, nil
	}
	b := &cgroupBaseOnce
	b.once.Do(func() { b.dir, b.err = delegatedCgroup(CgroupRoot) })
	return b.dir, b.err
}

// CgroupsUnavailable is nil when kiln can make cgroups, else why it cannot
// (wrapping ErrNoCgroups).
func CgroupsUnavailable() error {
	_, err := cgroupBase()
	return err
}

// delegatedCgroup finds the user's delegated cgroup v2 subtree under the
// cgroup filesystem mounted at root.
func delegatedCgroup(root string) (string, error) {
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err != nil {
		return "", fmt.Errorf("%w: %s is not cgroup v2 (cgroup v1 cannot be delegated to a user)", ErrNoCgroups, root)
	}
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoCgroups, err)
	}
	own, ok := unifiedPath(string(data))
	if !ok {
		return "", fmt.Errorf("%w: /proc/self/cgroup has no cgroup v2 line", ErrNoCgroups)
	}
	dir := filepath.Join(root, own)
	if !writableCgroup(dir) {
		return "", fmt.Errorf("%w: your cgroup %s is not delegated to you (systemd's user@%d.service delegates one)", ErrNoCgroups, own, rootless.HostUID())
	}
	for dir != root && writableCgroup(filepath.Dir(dir)) {
		dir = filepath.Dir(dir)
	}
	return dir, nil
}

// unifiedPath is the cgroup v2 path of a /proc/PID/cgroup ("0::/path").
func unifiedPath(data string) (string, bool) {
	for _, line := range strings.Split(data, "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, true
		}
	}
	return "", false
}

// writableCgroup: this process may make cgroups in dir and move processes
// into them.
func writableCgroup(dir string) bool {
	return unix.Faccessat(unix.AT_FDCWD, dir, unix.W_OK, unix.AT_EACCESS) == nil &&
		unix.Faccessat(unix.AT_FDCWD, filepath.Join(dir, "cgroup.procs"), unix.W_OK, unix.AT_EACCESS) == nil
}
