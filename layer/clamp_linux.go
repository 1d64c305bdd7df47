package layer

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// ClampTimes sets the mtime (and atime) of every entry under dir that is newer
// than t to t, without following symlinks: what SOURCE_DATE_EPOCH asks of the
// files a build step wrote, done on the snapshot itself so that the layer tar
// regenerated from it later is the same. Directories are clamped after their
// contents, since writing into a directory moves its mtime.
func ClampTimes(ctx context.Context, dir string, t time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		return clampOne(p, t, ts)
	})
	if err != nil {
		return fmt.Errorf("clamp times in %s: %w", dir, err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := clampOne(dirs[i], t, ts); err != nil {
			return fmt.Errorf("clamp times in %s: %w", dir, err)
		}
	}
	return nil
}

func clampOne(p string, t time.Time, ts []unix.Timespec) error {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return err
	}
	if st.Mtim.Nano() <= t.UnixNano() {
		return nil
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}
