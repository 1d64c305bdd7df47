package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultMaskedPaths and DefaultReadonlyPaths are Docker's defaults for
// unprivileged containers.
var (
	DefaultMaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
		"/sys/devices/virtual/powercap",
	}
	DefaultReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// restrictProc runs after pivot_root: it hides cfg.MaskedPaths and makes
// cfg.ReadonlyPaths read-only. Paths that do not exist are skipped.
func restrictProc(cfg *initConfig) error {
	for _, p := range cfg.MaskedPaths {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
		if fi.IsDir() {
			err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "size=0,mode=0555")
		} else {
			err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
	}
	for _, p := range cfg.ReadonlyPaths {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s read-only: %w", p, err)
		}
		if err := unix.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			// /proc/sys and friends may only accept the flags they had.
			if err2 := unix.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err2 != nil {
				return fmt.Errorf("remount %s read-only: %w", p, err)
			}
		}
	}
	return nil
}

// hostDevice is a directory or device node of the host's /dev, rel its
// path below /dev.
type hostDevice struct {
	rel      string
	dir      bool
	mode     uint32
	rdev     uint64
	uid, gid uint32
}

// hostDevices lists the host's device nodes (outside /dev/pts, /dev/shm and
// /dev/mqueue) and the directories that hold them, parents first.
func hostDevices() []hostDevice {
	var out []hostDevice
	_ = filepath.WalkDir("/dev", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel := strings.TrimPrefix(p, "/dev")
		switch rel {
		case "/ptmx", "/fd", "/stdin", "/stdout", "/stderr", "/console":
			return nil // made by populateDev
		}
		if d.IsDir() {
			switch rel {
			case "/pts", "/shm", "/mqueue":
				return filepath.SkipDir
			}
			if rel != "" {
				out = append(out, hostDevice{rel: rel, dir: true})
			}
			return nil
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil {
			return nil
		}
		if t := st.Mode & unix.S_IFMT; t != unix.S_IFCHR && t != unix.S_IFBLK {
			return nil
		}
		out = append(out, hostDevice{rel: rel, mode: st.Mode, rdev: st.Rdev, uid: st.Uid, gid: st.Gid})
		return nil
	})
	return out
}

// copyHostDevices recreates the host's device nodes (hostDevices) in the
// /dev tmpfs at dev, for --privileged.
func copyHostDevices(dev string) error {
	for _, d := range hostDevices() {
		if d.dir {
			if err := os.MkdirAll(dev+d.rel, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := unix.Mknod(dev+d.rel, d.mode, int(d.rdev)); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create device /dev%s: %w", d.rel, err)
		}
		_ = unix.Lchown(dev+d.rel, int(d.uid), int(d.gid))
	}
	return nil
}
