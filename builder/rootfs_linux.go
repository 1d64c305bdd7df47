package builder

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
	"github.com/kiln-build/kiln/layer/inroot"
	"github.com/kiln-build/kiln/runner"
)

// rootfs is a mounted image filesystem. Paths are resolved inside it as if it
// were the root (symlinks, absolute or with "..", never leave it), which is
// how Docker resolves COPY destinations and WORKDIR.
type rootfs struct {
	dir string
	fd  int
	// detached: dir is a detached mount's /proc name, where the kernel
	// names files from the mount's root (runner.DetachedMount).
	detached bool
	// afterUnmount runs on the new layer's directory once it is no longer
	// mounted, before it is committed (a COPY's reused files are linked).
	afterUnmount []func(upper string) error
	// streamed, when set, is the new layer's tar as a COPY streamed it,
	// checked against the layer's directory when it is committed.
	streamed *layer.StreamDiff
	// existing, when set, is a layer of the store that is exactly what the
	// step would have written (a COPY found it by streaming its tar first):
	// it is the step's layer, and the new snapshot, which holds none of
	// it, is discarded.
	existing *cache.Layer
}

func openRootfs(dir string) (*rootfs, error) {
	detached := runner.IsDetachedDir(dir)
	if detached {
		// Its link reads "/": the mount is no part of the host's tree.
	} else if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs %s: %w", dir, err)
	}
	return &rootfs{dir: dir, fd: fd, detached: detached}, nil
}

func (r *rootfs) Close() error { return unix.Close(r.fd) }

func (r *rootfs) openat(p string, flags uint64) (int, error) {
	return inroot.Open(r.fd, inroot.Rel(p), flags)
}

// Open opens a file of the image for reading.
func (r *rootfs) Open(p string) (io.ReadCloser, error) {
	fd, err := r.openat(p, unix.O_RDONLY)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// IsDir reports whether p exists (following symlinks inside the root) and is a directory.
func (r *rootfs) IsDir(p string) bool {
	fd, err := r.openat(p, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// MkdirAll creates p and its missing parents with mode and owner; existing
// directories are left as they are. It reports whether it created anything.
func (r *rootfs) MkdirAll(p string, mode uint32, owner ids) (bool, error) {
	fd, created, err := inroot.MkdirAll(r.fd, p, mode, func(pfd int, name, p string) error {
		if err := unix.Fchownat(pfd, name, owner.UID, owner.GID, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown %s: %w", p, err)
		}
		if err := unix.Fchmodat(pfd, name, mode, 0); err != nil {
			return fmt.Errorf("chmod %s: %w", p, err)
		}
		return nil
	})
	if err != nil {
		return created, err
	}
	unix.Close(fd)
	return created, nil
}

// resolve follows p inside the root and returns the host path it ends at,
// with that file's info.
func (r *rootfs) resolve(p string) (string, fs.FileInfo, error) {
	fd, err := r.openat(p, unix.O_PATH)
	if err != nil {
		return "", nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	real, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return "", nil, err
	}
	if r.detached {
		if !strings.HasPrefix(real, "/") {
			return "", nil, fmt.Errorf("%s resolves outside %s", p, r.dir)
		}
		// The root is "dir/.": dir itself is a (magic) link, which
		// Lstat would not follow.
		real = path.Clean(real)
		if real == "/" {
			real = "/."
		}
		real = r.dir + real
	}
	if real != r.dir && !strings.HasPrefix(real, strings.TrimSuffix(r.dir, "/")+"/") {
		return "", nil, fmt.Errorf("%s resolves outside %s", p, r.dir)
	}
	info, err := os.Lstat(real)
	return real, info, err
}

// dirEntry is a tar header for the directory p (symlinks followed inside
// the root) as it is: its real path in the root, mode and owner.
func (r *rootfs) dirEntry(p string) (*tar.Header, error) {
	real, info, err := r.resolve(p)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s: not a directory", p)
	}
	rel, err := filepath.Rel(r.dir, real)
	if err != nil {
		return nil, err
	}
	st := info.Sys().(*syscall.Stat_t)
	return &tar.Header{
		Typeflag: tar.TypeDir,
		Name:     filepath.ToSlash(rel) + "/",
		Mode:     int64(st.Mode & 0o7777),
		Uid:      int(st.Uid),
		Gid:      int(st.Gid),
		ModTime:  info.ModTime(),
		Format:   tar.FormatPAX,
	}, nil
}
