package layer

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// UserXattrOverlay reports whether overlays made by this process keep
// their metadata in user.overlay. xattrs (mounted with userxattr): it runs
// outside the initial user namespace (rootless kiln, an unprivileged
// container), where trusted.* xattrs are out of reach. The whiteouts of
// layers extracted for such overlays use the same namespace.
var UserXattrOverlay = sync.OnceValue(func() bool {
	data, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	return !isInitialUIDMap(string(data))
})

// isInitialUIDMap: a uid_map of the initial user namespace maps every id
// to itself.
func isInitialUIDMap(data string) bool {
	return strings.Join(strings.Fields(data), " ") == "0 0 4294967295"
}

// opaqueXattr is the xattr that makes an overlay directory opaque.
func opaqueXattr() string {
	if UserXattrOverlay() {
		return overlayXattrUser + "opaque"
	}
	return overlayOpaqueXattr
}

// chownError is the error of a chown to uid:gid. EINVAL from chown means an
// id this user namespace does not map: rootless kiln with no subordinate
// range for it.
func chownError(err error, uid, gid int) error {
	if errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("chown to %d:%d: owner not mapped in this user namespace (rootless kiln maps only the ids of /etc/subuid and /etc/subgid): %w", uid, gid, err)
	}
	return fmt.Errorf("chown: %w", err)
}
