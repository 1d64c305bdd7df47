package container

import (
	"path"

	"github.com/kiln-build/kiln/layer"
)

// Change is one entry of `docker diff` (layer.Change).
type Change = layer.Change

// Changes lists the changes of the container's writable layer against its
// image, sorted by path, as docker diff does: whiteouts are deletions (and
// an opaque directory deletes what the image had in it), what the image has
// is changed, the rest added. The container's own mount points (/proc,
// /etc/hosts, volumes, ...) are left out, and so are directories that were
// only copied up to hold them.
func (c *Container) Changes() ([]Change, error) {
	mounts := []string{"/proc", "/sys", "/dev", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}
	for _, m := range c.Mounts {
		mounts = append(mounts, path.Clean(m.Destination))
	}
	return layer.Changes(c.upper(), c.Lowers, mounts)
}
