package layer

import "golang.org/x/sys/unix"

// isWhiteout reports whether st is an overlay whiteout: a character device
// with device number 0/0.
func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// IsOpaqueDir reports whether the directory dir is an opaque overlay
// directory (its opaque xattr, trusted. or user., is "y"): it hides what
// the layers below have at its path.
func IsOpaqueDir(dir string) bool {
	for _, prefix := range []string{overlayXattrTrusted, overlayXattrUser} {
		var b [1]byte
		if n, err := unix.Lgetxattr(dir, prefix+"opaque", b[:]); err == nil && n == 1 && b[0] == 'y' {
			return true
		}
	}
	return false
}
