package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/layer/inroot"
)

// setAttrs applies ownership, mode, xattrs and (except for directories,
// which are done at the end) times to the entry base in pfd.
func (a *applier) setAttrs(pfd int, base string, hdr *tar.Header, uid, gid int, mode uint32, symlink bool) error {
	if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return chownError(err, uid, gid)
	}
	if !symlink {
		// base was just created or checked to be a directory, never a
		// symlink, so following is safe (Linux has no lchmod).
		if err := unix.Fchmodat(pfd, base, mode, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	err := a.setXattrs(hdr, func(name string, value []byte) error {
		return setXattrAt(pfd, base, name, value)
	})
	if err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeDir {
		return nil
	}
	return setTimes(pfd, base, hdr.ModTime)
}

// setXattrs sets the entry's SCHILY.xattr records with set.
func (a *applier) setXattrs(hdr *tar.Header, set func(name string, value []byte) error) error {
	for key, value := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(key, paxXattrPrefix)
		if !ok || name == "" || isOverlayXattr(name) {
			continue
		}
		err := set(name, []byte(value))
		if err == nil {
			continue
		}
		if strings.HasPrefix(name, "user.") && (errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM)) {
			continue
		}
		return fmt.Errorf("set xattr %s: %w", name, err)
	}
	return nil
}

func setTimes(pfd int, base string, mtime time.Time) error {
	ts := unix.Timespec{Sec: mtime.Unix(), Nsec: int64(mtime.Nanosecond())}
	if err := unix.UtimesNanoAt(pfd, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// link creates base in pfd as a hardlink to target, both resolved in root.
// A symlink named by target is linked itself, never followed.
func (a *applier) link(pfd int, base, target string) error {
	tparent, tbase := splitRel(target)
	tfd, err := inroot.Open(a.rootfd, tparent, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", target, err)
	}
	defer unix.Close(tfd)
	if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
		return fmt.Errorf("hardlink to %q: %w", target, err)
	}
	return nil
}
