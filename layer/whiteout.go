package layer

import "strings"

// OCI whiteout names (image-spec layer.md "Whiteouts").
const (
	whiteoutPrefix = ".wh."
	// whiteoutMetaPrefix marks AUFS bookkeeping entries; only the opaque
	// marker has a meaning in OCI layers.
	whiteoutMetaPrefix = ".wh..wh."
	opaqueMarker       = ".wh..wh..opq"
)

// Overlayfs xattrs. The kernel uses the trusted.overlay. namespace, or
// user.overlay. when mounted with userxattr.
const (
	overlayXattrTrusted = "trusted.overlay."
	overlayXattrUser    = "user.overlay."
	overlayOpaqueXattr  = "trusted.overlay.opaque"
)

// overlayXattrKind classifies an xattr name: "" for ordinary xattrs,
// otherwise the overlay attribute it sets ("opaque", "redirect", ...).
func overlayXattrKind(name string) string {
	if rest, ok := strings.CutPrefix(name, overlayXattrTrusted); ok {
		return rest
	}
	if rest, ok := strings.CutPrefix(name, overlayXattrUser); ok {
		return rest
	}
	return ""
}

// isOverlayXattr reports whether name belongs to overlayfs itself and so
// never travels inside a layer.
func isOverlayXattr(name string) bool {
	return strings.HasPrefix(name, overlayXattrTrusted) || strings.HasPrefix(name, overlayXattrUser)
}
