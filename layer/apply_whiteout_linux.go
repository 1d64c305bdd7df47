package layer

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/layer/inroot"
)

// whiteout applies a ".wh." entry named base inside the directory parent.
func (a *applier) whiteout(parent, base string) error {
	if base == opaqueMarker {
		return a.opaque(parent)
	}
	if strings.HasPrefix(base, whiteoutMetaPrefix) {
		return nil // AUFS bookkeeping, meaningless here
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("whiteout name: %w", ErrInvalid)
	}
	rel := joinRel(parent, name)
	if _, ok := a.written[rel]; ok {
		// A whiteout hides lower layers only, never entries of its own layer.
		return nil
	}
	if a.opts.OverlayWhiteouts {
		pfd, err := a.parentFD(parent)
		if err != nil {
			return err
		}
		if err := removeAt(pfd, name, a.dents); err != nil {
			return fmt.Errorf("replace existing %s: %w", rel, err)
		}
		if err := unix.Mknodat(pfd, name, unix.S_IFCHR, 0); err != nil {
			return fmt.Errorf("create whiteout device: %w", err)
		}
		return nil
	}
	pfd, err := inroot.Open(a.rootfd, parent, unix.O_PATH|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil // nothing to delete
	}
	if err != nil {
		return fmt.Errorf("resolve %q: %w", parent, err)
	}
	defer unix.Close(pfd)
	a.invalidate()
	if err := removeAt(pfd, name, a.dents); err != nil {
		return fmt.Errorf("whiteout: %w", err)
	}
	return nil
}

// opaque applies a ".wh..wh..opq" entry of the directory rel.
func (a *applier) opaque(rel string) error {
	if a.opts.OverlayWhiteouts {
		if _, err := a.parentFD(rel); err != nil { // create it if missing
			return err
		}
		fd, err := inroot.Open(a.rootfd, rel, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return fmt.Errorf("open opaque directory: %w", err)
		}
		defer unix.Close(fd)
		if err := setXattrFD(fd, opaqueXattr(), []byte("y")); err != nil {
			return fmt.Errorf("set xattr %s: %w", opaqueXattr(), err)
		}
		return nil
	}
	fd, err := inroot.Open(a.rootfd, rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open opaque directory: %w", err)
	}
	defer unix.Close(fd)
	a.invalidate()
	if err := a.pruneUnwritten(fd, rel); err != nil {
		return fmt.Errorf("opaque directory: %w", err)
	}
	return nil
}

// pruneUnwritten removes everything below the directory fd (named rel) that
// this tar did not write: under an opaque directory nothing of the lower
// layers survives, not even inside subdirectories this layer also has.
func (a *applier) pruneUnwritten(fd int, rel string) error {
	names, err := readDirNames(fd, a.dents)
	if err != nil {
		return err
	}
	for _, name := range names {
		child := joinRel(rel, name)
		if _, ok := a.written[child]; !ok {
			if err := removeAt(fd, name, a.dents); err != nil {
				return err
			}
			continue
		}
		cfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			continue // a written non-directory
		}
		if err != nil {
			return fmt.Errorf("open %s: %w", child, err)
		}
		err = a.pruneUnwritten(cfd, child)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}
