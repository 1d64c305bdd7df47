package container

import (
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// DiskUsage is the space the tree at path occupies on disk, as du(1)
// counts it: the blocks of every inode, directories included, each
// hard-linked inode once.
func DiskUsage(path string) int64 {
	var total int64
	seen := map[[2]uint64]bool{}
	filepath.WalkDir(path, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil {
			return nil
		}
		if st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if seen[key] {
				return nil
			}
			seen[key] = true
		}
		total += st.Blocks * 512
		return nil
	})
	return total
}
