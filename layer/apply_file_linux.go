package layer

import (
	"archive/tar"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// writeFile creates the regular file base in pfd with the entry's contents
// and metadata.
func (a *applier) writeFile(pfd int, base string, tr io.Reader, hdr *tar.Header, uid, gid int, mode uint32) error {
	// O_EXCL: whatever was there has been removed, and a name that reappears
	// (a racing symlink, say) must not be written through.
	// Created with its permission bits: when the umask leaves them whole, the
	// file needs no chmod, and when it is ours already (owner as the entry
	// says, no setgid parent handing it another group) no chown: fewer
	// metadata writes per file, which is what extraction mostly costs.
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode&0o777)
	if err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	needChown := uid != a.euid || gid != a.egid || a.parentSetgid(pfd)
	needChmod := needChown || mode&^0o777 != 0 || mode&a.umask != 0
	err = a.copyTo(fd, tr)
	if err == nil && needChown {
		if err = unix.Fchown(fd, uid, gid); err != nil {
			err = chownError(err, uid, gid)
		}
	}
	if err == nil && needChmod {
		if err = unix.Fchmod(fd, mode); err != nil {
			err = fmt.Errorf("chmod: %w", err)
		}
	}
	if err == nil && len(hdr.PAXRecords) > 0 {
		err = a.setXattrs(hdr, func(name string, value []byte) error {
			return setXattrFD(fd, name, value)
		})
	}
	if err == nil {
		ts := unix.Timespec{Sec: hdr.ModTime.Unix(), Nsec: int64(hdr.ModTime.Nanosecond())}
		if err = unix.UtimesNanoAt(fd, "", []unix.Timespec{ts, ts}, unix.AT_EMPTY_PATH); err != nil {
			// Older kernels lack AT_EMPTY_PATH for utimensat: by name then.
			err = setTimes(pfd, base, hdr.ModTime)
		}
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = fmt.Errorf("close file: %w", cerr)
	}
	return err
}

// copyTo writes r to the new file fd. Chunks of zeros are skipped with a
// seek instead of written, so sparse files (which the tar reader expands)
// stay sparse on disk.
func (a *applier) copyTo(fd int, r io.Reader) error {
	var size int64
	hole := false
	for {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		n, err := r.Read(a.buf)
		if n >= 4096 && isZero(a.buf[:n]) {
			if _, serr := unix.Seek(fd, int64(n), io.SeekCurrent); serr != nil {
				return fmt.Errorf("seek file: %w", serr)
			}
			hole = true
		} else {
			for p := a.buf[:n]; len(p) > 0; {
				m, werr := unix.Write(fd, p)
				if errors.Is(werr, unix.EINTR) {
					continue
				}
				if werr != nil {
					return fmt.Errorf("write file: %w", werr)
				}
				p = p[m:]
			}
			hole = false
		}
		size += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read file contents: %w", err)
		}
	}
	if hole { // a trailing hole: set the length
		if err := unix.Ftruncate(fd, size); err != nil {
			return fmt.Errorf("truncate file: %w", err)
		}
	}
	return nil
}

// isZero reports whether p holds only zero bytes.
func isZero(p []byte) bool {
	for len(p) >= 8 {
		if binary.NativeEndian.Uint64(p) != 0 {
			return false
		}
		p = p[8:]
	}
	for _, b := range p {
		if b != 0 {
			return false
		}
	}
	return true
}
