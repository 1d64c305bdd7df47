package layer

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/layer/inroot"
)

// parentFD returns an O_PATH fd of the directory rel, creating missing
// directories. The fd belongs to the applier: do not close it.
func (a *applier) parentFD(rel string) (int, error) {
	if rel == "" {
		return a.rootfd, nil
	}
	if a.cacheFD >= 0 && a.cacheRel == rel {
		return a.cacheFD, nil
	}
	fd, err := a.mkdirAll(rel)
	if err != nil {
		return -1, err
	}
	a.invalidate()
	a.cacheRel, a.cacheFD, a.cacheSetgid = rel, fd, -1
	return fd, nil
}

// parentSetgid reports whether the directory pfd has the setgid bit.
func (a *applier) parentSetgid(pfd int) bool {
	if pfd == a.cacheFD && a.cacheSetgid >= 0 {
		return a.cacheSetgid == 1
	}
	var st unix.Stat_t
	setgid := unix.Fstat(pfd, &st) != nil || st.Mode&unix.S_ISGID != 0 // unknown: assume it is
	if pfd == a.cacheFD {
		a.cacheSetgid = 0
		if setgid {
			a.cacheSetgid = 1
		}
	}
	return setgid
}

// processUmask reads the umask without changing it (umask(2) can only set
// it, and setting it is process-wide).
func processUmask() uint32 {
	data, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return uint32(n)
				}
			}
		}
	}
	return 0o777 // unknown: every mode is set explicitly
}

// mkdirAll resolves the directory rel in root, creating missing elements
// (mode 0755, root-owned), and returns an O_PATH fd of it.
func (a *applier) mkdirAll(rel string) (int, error) {
	if rel == "" {
		return unix.Dup(a.rootfd)
	}
	fd, err := inroot.Open(a.rootfd, rel, unix.O_PATH|unix.O_DIRECTORY)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		if err != nil {
			return -1, fmt.Errorf("resolve parent %q: %w", rel, err)
		}
		return fd, nil
	}
	// Walk down from the root, creating what is missing.
	parentFD, err := unix.Dup(a.rootfd)
	if err != nil {
		return -1, fmt.Errorf("dup root: %w", err)
	}
	prefix := ""
	for _, elem := range strings.Split(rel, "/") {
		prefix = joinRel(prefix, elem)
		fd, err := inroot.Open(a.rootfd, prefix, unix.O_PATH|unix.O_DIRECTORY)
		if errors.Is(err, unix.ENOENT) {
			if err = unix.Mkdirat(parentFD, elem, 0o755); err != nil {
				unix.Close(parentFD)
				return -1, fmt.Errorf("create parent %q: %w", prefix, err)
			}
			a.markWritten(prefix)
			fd, err = inroot.Open(a.rootfd, prefix, unix.O_PATH|unix.O_DIRECTORY)
		}
		unix.Close(parentFD)
		if err != nil {
			return -1, fmt.Errorf("resolve parent %q: %w", prefix, err)
		}
		parentFD = fd
	}
	return parentFD, nil
}

func (a *applier) markWritten(rel string) {
	for rel != "" {
		if _, ok := a.written[rel]; ok {
			return
		}
		a.written[rel] = struct{}{}
		rel, _ = splitRel(rel)
	}
}

// finishDirs sets the mtimes of the directories written, last entry first so
// that a directory listed twice gets the later entry's time, skipping any
// path that no longer holds the directory that was created.
func (a *applier) finishDirs() error {
	a.invalidate()
	done := make(map[inode]struct{}, len(a.dirs))
	for i := len(a.dirs) - 1; i >= 0; i-- {
		d := a.dirs[i]
		if _, ok := done[d.ino]; ok {
			continue
		}
		done[d.ino] = struct{}{}
		parent, base := splitRel(d.rel)
		pfd, err := inroot.Open(a.rootfd, parent, unix.O_PATH|unix.O_DIRECTORY)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("entry %q: resolve parent: %w", d.rel, err)
		}
		var st unix.Stat_t
		err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR && (inode{uint64(st.Dev), st.Ino}) == d.ino {
			err = setTimes(pfd, base, d.mtime)
		} else if errors.Is(err, unix.ENOENT) {
			err = nil
		}
		unix.Close(pfd)
		if err != nil {
			return fmt.Errorf("entry %q: %w", d.rel+"/", err)
		}
	}
	return nil
}
