package layer

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// readDirNames returns the names in the open directory fd (without "." and
// ".."), in directory order. buf is scratch space for getdents.
func readDirNames(fd int, buf []byte) ([]string, error) {
	var names []string
	for {
		n, err := unix.Getdents(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read directory: %w", err)
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// removeAt removes the entry name inside the directory dirfd, recursively if
// it is a directory. Symlinks are removed, never followed. A missing entry
// is not an error.
func removeAt(dirfd int, name string, buf []byte) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s for removal: %w", name, err)
	}
	names, err := readDirNames(fd, buf)
	if err == nil {
		for _, child := range names {
			if err = removeAt(fd, child, buf); err != nil {
				break
			}
		}
	}
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove directory %s: %w", name, err)
	}
	return nil
}

// splitRel splits a cleaned root-relative name into its parent ("" for the
// root) and its last element.
func splitRel(rel string) (dir, base string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return "", rel
	}
	return rel[:i], rel[i+1:]
}

// joinRel joins a root-relative directory ("" for the root) and a name.
func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}
