package inroot

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Open opens p relative to rootfd as if rootfd were the root directory:
// "..", absolute names and symlinks (absolute or relative) never lead
// outside rootfd, and magic links (/proc/self/fd/...) are refused. p is used
// as given (an empty p is the root); flags are open(2) flags, O_CLOEXEC is
// always added.
func Open(rootfd int, p string, flags uint64) (int, error) {
	if p == "" {
		p = "."
	}
	how := unix.OpenHow{
		Flags:   flags | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(rootfd, p, &how)
		// EAGAIN: a concurrent rename raced the lookup; the kernel asks
		// for a retry. EINTR: interrupted before anything happened.
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		return fd, err
	}
}

// Rel turns a container path into the clean name Open takes for it:
// "/a/../b/" -> "b", "/" -> ".". The ".." are resolved lexically first, as
// Docker does for COPY destinations and WORKDIR.
func Rel(p string) string {
	rel := strings.TrimLeft(path.Clean("/"+p), "/")
	if rel == "" {
		return "."
	}
	return rel
}

// ProcPath is the /proc/self/fd name of fd: a path that reaches exactly the
// file fd holds, for calls that take no descriptor (mount(2), chmod).
func ProcPath(fd int) string { return fmt.Sprintf("/proc/self/fd/%d", fd) }

const maxSymlinks = 255

// Resolve resolves the container path p inside rootfd and returns the clean
// absolute container path with every existing symlink resolved ("/" being
// rootfd); components that do not exist are kept lexically, so a path to be
// created resolves too. Each component is read relative to its parent
// directory opened with Open: a concurrent swap can change the answer, never
// make it leave the root.
func Resolve(rootfd int, p string) (string, error) {
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
		target, isLink, err := readLink(rootfd, resolved, comp)
		if err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
				resolved = next
				continue
			}
			return "", fmt.Errorf("resolve %s in root: %w", p, err)
		}
		if !isLink {
			resolved = next
			continue
		}
		if links++; links > maxSymlinks {
			return "", fmt.Errorf("resolve %s in root: %w", p, syscall.ELOOP)
		}
		if path.IsAbs(target) {
			resolved = "/"
		}
		remaining = target + "/" + remaining
	}
	return resolved, nil
}

// readLink reports whether name in the directory dir (a container path) is
// a symlink, and its target.
func readLink(rootfd int, dir, name string) (string, bool, error) {
	dfd, err := Open(rootfd, Rel(dir), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return "", false, err
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return "", false, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return "", false, nil
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dfd, name, buf)
	if err != nil {
		return "", false, err
	}
	return string(buf[:n]), true, nil
}

// MkdirAll makes sure the container path p is a directory inside rootfd,
// creating it and its missing parents with mode (less the umask), each in
// its parent opened with Open. made, when not nil, is called for each
// directory created, with its parent, name and container path (to set
// its owner or mode).
// It returns an O_PATH descriptor of the directory, which the caller closes,
// and whether anything was created. An existing non-directory is an error.
func MkdirAll(rootfd int, p string, mode uint32, made func(parentfd int, name, p string) error) (fd int, created bool, err error) {
	clean := path.Clean("/" + p)
	if fd, err := Open(rootfd, Rel(clean), unix.O_PATH|unix.O_DIRECTORY); err == nil {
		return fd, false, nil
	}
	if clean == "/" {
		return -1, false, fmt.Errorf("open root: not a directory")
	}
	pfd, created, err := MkdirAll(rootfd, path.Dir(clean), mode, made)
	if err != nil {
		return -1, created, err
	}
	defer unix.Close(pfd)
	name := path.Base(clean)
	err = unix.Mkdirat(pfd, name, mode)
	existed := errors.Is(err, unix.EEXIST)
	if err != nil {
		if !existed {
			return -1, created, fmt.Errorf("mkdir %s: %w", clean, err)
		}
	} else {
		created = true
		if made != nil {
			if err := made(pfd, name, clean); err != nil {
				return -1, created, err
			}
		}
	}
	// An existing entry may be a symlink to a directory (inside the root).
	fd, err = Open(rootfd, Rel(clean), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		if existed || errors.Is(err, unix.ENOTDIR) {
			return -1, created, fmt.Errorf("mkdir %s: not a directory", clean)
		}
		return -1, created, fmt.Errorf("open %s: %w", clean, err)
	}
	return fd, created, nil
}
