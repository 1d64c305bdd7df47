package runner

import (
	"fmt"
	"math"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// CloseExtraFilesOnExec marks every descriptor of the calling process from
// 3 up close-on-exec, so that a child started afterwards gets only its
// stdio and its ExtraFiles (which exec dup2's into place), never a
// descriptor kiln inherited from whoever started it (runc's CVE-2024-21626:
// a leaked directory descriptor is a way out of the container through
// /proc/self/fd). Go opens its own descriptors close-on-exec already.
func CloseExtraFilesOnExec() error {
	if err := unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("mark descriptors close-on-exec: %w", err)
	}
	return nil
}

// closeInheritedFiles closes, in the sandbox init, every descriptor above
// the last one Run passes that is not close-on-exec: Go opens all of its
// own close-on-exec, so these came from Run's caller and must not reach
// the sandbox.
func closeInheritedFiles(last int) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		// Without /proc, close-on-exec for all still keeps them from the command.
		_ = unix.CloseRange(uint(last)+1, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
		return
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= last {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
}

// chdirInRoot makes dir, an absolute path of the sandbox, the calling
// thread's working directory. Each component is opened from the one before
// without following magic links (/proc/self/fd/N, /proc/PID/cwd: the way
// to a directory outside the root), and the result must be under the root.
// With create, missing directories are made (mode 0755, owned by uid:gid,
// as BuildKit does for the working directory).
func chdirInRoot(dir string, create bool, uid, gid int) error {
	clean := path.Clean("/" + dir)
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("working directory %s: %w", clean, err)
	}
	defer func() { unix.Close(fd) }()
	for _, name := range strings.Split(strings.Trim(clean, "/"), "/") {
		if name == "" {
			continue
		}
		next, err := openDirAt(fd, name)
		if err == unix.ENOENT && create {
			if err := unix.Mkdirat(fd, name, 0o755); err == nil {
				if err := unix.Fchownat(fd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					return fmt.Errorf("chown working directory %s: %w", clean, err)
				}
			} else if err != unix.EEXIST {
				return fmt.Errorf("create working directory %s: %w", clean, err)
			}
			next, err = openDirAt(fd, name)
		}
		if err == unix.ELOOP || err == unix.EXDEV {
			return fmt.Errorf("working directory %s: leads outside the container", clean)
		}
		if err != nil {
			return fmt.Errorf("chdir %s: %w", clean, err)
		}
		unix.Close(fd)
		fd = next
	}
	if err := unix.Fchdir(fd); err != nil {
		return fmt.Errorf("chdir %s: %w", clean, err)
	}
	// The kernel names a directory outside the root "(unreachable)/...".
	if wd, err := unix.Getwd(); err != nil || !strings.HasPrefix(wd, "/") {
		return fmt.Errorf("working directory %s: leads outside the container", clean)
	}
	return nil
}

// openDirAt opens the directory name of dirfd, following symlinks (an
// absolute one from the calling thread's root) but no magic link.
func openDirAt(dirfd int, name string) (int, error) {
	for {
		fd, err := unix.Openat2(dirfd, name, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_NO_MAGICLINKS,
		})
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		return fd, err
	}
}
