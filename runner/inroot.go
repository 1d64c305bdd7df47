package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
)

const maxSymlinks = 255

// resolveInRoot resolves the container path p inside the host directory root
// as if root were "/": symlinks (absolute or relative) and ".." never leave
// root. It returns the clean absolute container path with every existing
// symlink resolved; components that do not exist are kept lexically.
func resolveInRoot(root, p string) (string, error) {
	resolved := "/"
	remaining := p
	links := 0
	for remaining != "" {
		var comp string
		remaining = strings.TrimLeft(remaining, "/")
		comp, remaining, _ = strings.Cut(remaining, "/")
		switch comp {
		case "", ".":
			continue
		case "..":
			resolved = path.Dir(resolved)
			continue
		}
		next := path.Join(resolved, comp)
		fi, err := os.Lstat(root + next)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				resolved = next
				continue
			}
			return "", fmt.Errorf("resolve %s in root: %w", p, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		if links++; links > maxSymlinks {
			return "", fmt.Errorf("resolve %s in root: %w", p, syscall.ELOOP)
		}
		target, err := os.Readlink(root + next)
		if err != nil {
			return "", fmt.Errorf("resolve %s in root: %w", p, err)
		}
		if path.IsAbs(target) {
			resolved = "/"
		}
		remaining = target + "/" + remaining
	}
	return resolved, nil
}
