package runner

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/layer"
)

// DetachedMount is a mount attached to no mount table (fsmount(2) without
// move_mount(2)): no other process sees it in its mountinfo, and the kernel
// dissolves it when its last descriptor closes — also when kiln is killed.
// Its files are reached through Dir, the /proc/PID/fd name of the mount's
// descriptor, which works in this process and in its children (a RUN's
// sandbox binds a directory of it, see mount(2)'s detached sources).
type DetachedMount struct {
	fd int
}

// Dir is the path of the mount's root while it is open.
func (d *DetachedMount) Dir() string { return detachedDir(os.Getpid(), d.fd) }

// Close drops the mount; with no other reference left (open files, a bind
// of it in a living sandbox) the overlay is unmounted before Close returns.
func (d *DetachedMount) Close() error { return unix.Close(d.fd) }

func detachedDir(pid, fd int) string { return fmt.Sprintf("/proc/%d/fd/%d", pid, fd) }

// IsDetachedDir reports whether dir is the Dir of a DetachedMount of this
// process: readlink of what it holds names paths from the mount's root,
// not the host's.
func IsDetachedDir(dir string) bool {
	rest, ok := strings.CutPrefix(dir, fmt.Sprintf("/proc/%d/fd/", os.Getpid()))
	if !ok {
		return false
	}
	_, err := strconv.Atoi(rest)
	return err == nil
}

// ErrNoDetachedMounts means the kernel cannot build or bind detached
// overlays (before 6.15): overlays must be mounted on a path, in a private
// mount namespace (EnterMountNamespace).
var ErrNoDetachedMounts = errors.New("detached overlay mounts unsupported by this kernel")

// DetachedMountsSupported reports whether MountOverlayDetached works here:
// fsopen with overlayfs "lowerdir+" (6.8) and bind mounts whose source is
// a detached mount of another mount namespace (6.15), which a RUN's
// --mount=from needs.
func DetachedMountsSupported() bool {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return false
	}
	var major, minor int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(uts.Release[:]), "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 6 || major == 6 && minor >= 15
}

// MountDetached makes m, an "overlay" or a filesystem such as "tmpfs"
// (not a bind; m.Target is unused), as a DetachedMount.
func MountDetached(m Mount) (*DetachedMount, error) {
	if m.Type == "bind" || m.Type == "rbind" {
		return nil, fmt.Errorf("mount %s: a bind mount cannot be made detached", m.Type)
	}
	if !DetachedMountsSupported() {
		return nil, ErrNoDetachedMounts
	}
	var lowers, rest []string
	if m.Type == "overlay" {
		lowers, rest = overlayOptions(m.Options)
		if layer.UserXattrOverlay() {
			rest = userxattrOptions(rest)
		}
	} else {
		rest = m.Options
	}
	o := parseMountOptions(rest)
	if o.flags&^(unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_NOATIME|unix.MS_NODIRATIME|unix.MS_STRICTATIME) != 0 || o.propagation != 0 {
		return nil, fmt.Errorf("mount %s: options %q cannot apply to a detached mount", m.Type, m.Options)
	}
	mfd, err := fsmount(m.Type, lowers, o)
	if errors.Is(err, errNewMountAPI) {
		err = ErrNoDetachedMounts
	}
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", m.Type, err)
	}
	return &DetachedMount{fd: mfd}, nil
}
