//go:build !linux

package layer

import (
	"context"
	"io"
)

// The package needs Linux (openat2, overlayfs, xattrs): elsewhere every
// function that touches a directory returns ErrUnsupported.

func Apply(ctx context.Context, dir string, r io.Reader, opts ApplyOptions) (int64, error) {
	return 0, ErrUnsupported
}

func WriteDiff(ctx context.Context, w io.Writer, dir string, opts DiffOptions) error {
	return ErrUnsupported
}

func PruneUnchangedDirs(ctx context.Context, upper string, lowers []string) error {
	return ErrUnsupported
}

func Changes(upper string, lowers, skip []string) ([]Change, error) {
	return nil, ErrUnsupported
}

func IsOpaqueDir(dir string) bool { return false }

func DiskUsage(dir string) (Usage, error) { return Usage{}, ErrUnsupported }

func (p *PageDrops) Drop()  {}
func (p *PageDrops) Close() {}
