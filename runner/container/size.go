package container

import "github.com/kiln-build/kiln/layer"

// SizeRw is the size of the container's writable layer as docker reports
// it: the apparent sizes of everything but directories in the upper
// directory, each hard-linked inode once.
func (c *Container) SizeRw() int64 {
	u, _ := layer.DiskUsage(c.upper())
	return u.Size
}
