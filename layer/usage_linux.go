package layer

import (
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// DiskUsage measures the tree at dir (symlinks are counted, never
// followed). It goes on past what it cannot read, and returns what it
// counted with the first such error.
func DiskUsage(dir string) (Usage, error) {
	var u Usage
	var first error
	seen := map[[2]uint64]bool{}
	filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err == nil {
			var st unix.Stat_t
			if err = unix.Lstat(p, &st); err == nil {
				u.add(&st, seen)
				return nil
			}
		}
		if first == nil {
			first = err
		}
		return nil
	})
	return u, first
}

func (u *Usage) add(st *unix.Stat_t, seen map[[2]uint64]bool) {
	if st.Nlink > 1 {
		key := [2]uint64{st.Dev, st.Ino}
		if seen[key] {
			return
		}
		seen[key] = true
	}
	u.Disk += st.Blocks * 512
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		u.Size += st.Size
	}
}
