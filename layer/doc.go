// Package layer converts between directories and OCI image layers.
//
// WriteDiff turns a directory (an overlayfs upperdir, or any plain tree) into
// a reproducible layer tar; Write streams that tar through compression while
// computing its diffID and digest in one pass. Apply extracts a layer tar
// into a directory with chroot-like name resolution, either as an overlay
// lowerdir (whiteouts become overlay whiteouts) or onto a flattened tree
// (whiteouts delete). Compress and Decompress handle the blob compressions.
//
// The package is Linux-only: it relies on openat2(2), overlayfs and xattrs.
package layer
