package layer

import (
	"bytes"
	"errors"
	"io/fs"
	"strconv"

	"golang.org/x/sys/unix"
)

// xattrReader reads the xattrs of many paths, reusing its buffers.
type xattrReader struct {
	names []byte
	value []byte
}

func newXattrReader() *xattrReader {
	return &xattrReader{names: make([]byte, 4096), value: make([]byte, 4096)}
}

// listFD is list for an open file or directory (a lookup less than by path).
func (x *xattrReader) listFD(fd int, path string) ([]byte, error) {
	return readXattr(&x.names, "flistxattr", path, true, func(b []byte) (int, error) { return unix.Flistxattr(fd, b) })
}

// getFD is get for an open file or directory.
func (x *xattrReader) getFD(fd int, path, name string) ([]byte, error) {
	return readXattr(&x.value, "fgetxattr "+name, path, false, func(b []byte) (int, error) { return unix.Fgetxattr(fd, name, b) })
}

// list returns the NUL-separated xattr names of path (not following a final
// symlink). The result aliases the reader's buffer: use it before the next
// call.
func (x *xattrReader) list(path string) ([]byte, error) {
	return readXattr(&x.names, "llistxattr", path, true, func(b []byte) (int, error) { return unix.Llistxattr(path, b) })
}

// get returns the value of xattr name on path. The result aliases the
// reader's buffer.
func (x *xattrReader) get(path, name string) ([]byte, error) {
	return readXattr(&x.value, "lgetxattr "+name, path, false, func(b []byte) (int, error) { return unix.Lgetxattr(path, name, b) })
}

// readXattr runs one of the xattr calls into *buf, growing it while the
// call says ERANGE (asking the size with a nil buffer, as the calls allow).
// With notSupOK a filesystem without xattrs reads as none.
func readXattr(buf *[]byte, op, path string, notSupOK bool, call func([]byte) (int, error)) ([]byte, error) {
	for {
		n, err := call(*buf)
		switch {
		case err == nil:
			return (*buf)[:n], nil
		case notSupOK && errors.Is(err, unix.ENOTSUP):
			return nil, nil
		case !errors.Is(err, unix.ERANGE):
			return nil, &fs.PathError{Op: op, Path: path, Err: err}
		}
		size, err := call(nil)
		if err != nil {
			return nil, &fs.PathError{Op: op, Path: path, Err: err}
		}
		*buf = make([]byte, size+1024)
	}
}

// splitXattrNames iterates over a NUL-separated name list.
func splitXattrNames(list []byte, fn func(name string) error) error {
	for len(list) > 0 {
		i := bytes.IndexByte(list, 0)
		if i < 0 {
			i = len(list)
		}
		if i > 0 {
			if err := fn(string(list[:i])); err != nil {
				return err
			}
		}
		if i == len(list) {
			break
		}
		list = list[i+1:]
	}
	return nil
}

// setXattrAt sets an xattr on the entry base inside the directory dirfd
// without following a final symlink. Linux has no lsetxattr relative to a
// directory fd before 6.13, so the entry is named through /proc/self/fd,
// whose magic link is the already-resolved directory.
func setXattrAt(dirfd int, base, name string, value []byte) error {
	return unix.Lsetxattr(procFDPath(dirfd)+"/"+base, name, value, 0)
}

// setXattrFD sets an xattr on an open (non O_PATH) fd.
func setXattrFD(fd int, name string, value []byte) error {
	return unix.Fsetxattr(fd, name, value, 0)
}

func procFDPath(fd int) string {
	return "/proc/self/fd/" + strconv.Itoa(fd)
}
