package container

import (
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// SizeRw is the size of the container's writable layer as docker reports
// it: the apparent sizes of everything but directories in the upper
// directory, each hard-linked inode once.
func (c *Container) SizeRw() int64 {
	var total int64
	seen := map[uint64]bool{}
	filepath.WalkDir(c.upper(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil || st.Size == 0 {
			return nil
		}
		if st.Nlink > 1 {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		total += st.Size
		return nil
	})
	return total
}
