package layer

import (
	"os"
	"strings"
	"sync"
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
