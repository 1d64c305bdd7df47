package runner

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/rootless"
)

// A process inside a sandbox can see a kiln process through /proc/PID/exe:
// the tiny init of Spec.Init stays PID 1, the init is PID 1 until it execs
// the command, and the process StartExec forks is kiln until it execs. Had
// that link led to the host's kiln binary, a root process in the sandbox
// could write it or chmod it (runc's CVE-2019-5736). So every kiln process
// that ends up where a sandbox can see it is executed from a sealed view of
// the binary, which nothing, root included, can change: as runc 1.2, a
// detached overlay mount (no upper directory: read-only for good, no remount
// makes it writable) of the binary's directory; where overlay cannot be
// used, a sealed memfd copy. Processes executed from it re-execute
// /proc/self/exe, which is then the sealed view already: one mount (or one
// copy) per kiln command, not per sandbox.

// sealedExeLower is the empty directory the overlay takes as its second
// lower layer on kernels that refuse an empty detached tmpfs there
// (emptyLayer): /run/kiln/sealed-exe under root, the user's runtime
// directory rootless.
func sealedExeLower() string { return rootless.RuntimePath("sealed-exe") }

// exeFdMin keeps the sealed executable's descriptor above those exec.Cmd
// moves into place in a child (stdio, ExtraFiles), where execve resolves
// /proc/self/fd/N.
const exeFdMin = 100

var sealed struct {
	once sync.Once
	path string
	err  error
}

// SealedExe returns the path to execute this binary by (instead of
// /proc/self/exe) for a process a sandbox may see: /proc/self/exe itself
// when this process already runs from a sealed view, else /proc/self/fd/N
// of a sealed view made once per process.
func SealedExe() (string, error) {
	sealed.once.Do(func() {
		sealed.path, sealed.err = sealExe()
	})
	return sealed.path, sealed.err
}

func sealExe() (string, error) {
	if ok, err := isSealedExe("/proc/self/exe"); err != nil {
		return "", err
	} else if ok {
		return "/proc/self/exe", nil
	}
	fd, err := sealedOverlayExe()
	if err != nil {
		fd, err = sealedMemfdExe()
		if err != nil {
			return "", fmt.Errorf("seal the kiln binary: %w", err)
		}
	}
	high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, exeFdMin)
	unix.Close(fd)
	if err != nil {
		return "", fmt.Errorf("seal the kiln binary: %w", err)
	}
	return "/proc/self/fd/" + strconv.Itoa(high), nil
}

// isSealedExe reports whether the file p names cannot be changed through
// that name: it lives on a read-only overlay, or is a memfd with every
// write seal.
func isSealedExe(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", p, err)
	}
	defer f.Close()
	if seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0); err == nil {
		return seals&memfdSeals == memfdSeals, nil
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return false, fmt.Errorf("statfs %s: %w", p, err)
	}
	return st.Type == unix.OVERLAYFS_SUPER_MAGIC && st.Flags&unix.ST_RDONLY != 0, nil
}

// sealedOverlayExe opens the binary through a new overlay mount that is
// attached nowhere (see sealedOverlay).
func sealedOverlayExe() (int, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return -1, err
	}
	if strings.HasSuffix(exe, " (deleted)") {
		return -1, errors.New("the binary was deleted")
	}
	return sealedOverlay(filepath.Dir(exe), filepath.Base(exe))
}

// sealedOverlay opens dir/name through a new overlay mount that is attached
// nowhere, with dir and an empty directory as its only (read-only) layers,
// and returns an O_PATH descriptor of it. Overlay without an upper directory
// needs two layers, and refuses layers of one file system where one holds
// the other (ELOOP): the empty one is an empty tmpfs of its own, attached
// nowhere either, so that it never overlaps dir (a binary in / or in a
// directory holding the runtime directory, which sealedExeLower would
// overlap; rootless kiln then fell back to copying itself, ~30 ms a
// command). Kernels before 6.15, which take no detached mount as a layer
// ("failed to clone lowerpath"), get sealedExeLower.
func sealedOverlay(dir, name string) (int, error) {
	esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`)
	// dir on top: nothing in the empty layer hides its files.
	top := esc.Replace(dir)
	if empty, err := emptyLayer(); err == nil {
		fd, err := overlayOpen(top+":/proc/self/fd/"+strconv.Itoa(empty), name)
		unix.Close(empty) // the overlay holds the tmpfs now
		if err == nil {
			return fd, nil
		}
	}
	if err := os.MkdirAll(sealedExeLower(), 0o700); err != nil {
		return -1, err
	}
	return overlayOpen(top+":"+esc.Replace(sealedExeLower()), name)
}

// emptyLayer is a read-only empty tmpfs mounted nowhere, as a descriptor.
func emptyLayer() (int, error) {
	ctx, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen tmpfs: %w", err)
	}
	defer unix.Close(ctx)
	if err := unix.FsconfigSetString(ctx, "size", "4k"); err != nil {
		return -1, fmt.Errorf("tmpfs size=4k: %w", err)
	}
	if err := unix.FsconfigCreate(ctx); err != nil {
		return -1, fmt.Errorf("create tmpfs: %w", err)
	}
	mnt, err := unix.Fsmount(ctx, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsmount tmpfs: %w", err)
	}
	return mnt, nil
}

// overlayOpen mounts a read-only overlay of the layers lower (lowerdir's
// syntax) nowhere and opens name in it (O_PATH).
func overlayOpen(lower, name string) (int, error) {
	ctx, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(ctx)
	if err := unix.FsconfigSetString(ctx, "lowerdir", lower); err != nil {
		return -1, fmt.Errorf("overlay lowerdir=%s: %w", lower, err)
	}
	_ = unix.FsconfigSetString(ctx, "xino", "off") // not needed; avoids a kernel warning
	if err := unix.FsconfigCreate(ctx); err != nil {
		return -1, fmt.Errorf("create overlay lowerdir=%s: %w", lower, err)
	}
	mnt, err := unix.Fsmount(ctx, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID)
	if err != nil {
		return -1, fmt.Errorf("fsmount overlay: %w", err)
	}
	defer unix.Close(mnt)
	fd, err := unix.Openat(mnt, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s in the sealed overlay: %w", name, err)
	}
	return fd, nil
}

const memfdSeals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE

// sealedMemfdExe copies the binary into a memfd and seals it.
func sealedMemfdExe() (int, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return -1, err
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("kiln", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, fmt.Errorf("memfd_create: %w", err)
	}
	dst := os.NewFile(uintptr(fd), "kiln-memfd")
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return -1, fmt.Errorf("copy the binary: %w", err)
	}
	if err := dst.Chmod(0o555); err == nil {
		_, err = unix.FcntlInt(dst.Fd(), unix.F_ADD_SEALS, memfdSeals)
	}
	if err != nil {
		dst.Close()
		return -1, fmt.Errorf("seal the memfd: %w", err)
	}
	// A descriptor of our own, independent of dst's finalizer.
	out, err := unix.FcntlInt(dst.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	dst.Close()
	return out, err
}
