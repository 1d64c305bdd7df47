package runner

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/layer"
)

// mountOpts is the parsed form of Mount.Options.
type mountOpts struct {
	flags       uintptr  // MS_* flags for mount(2)
	propagation uintptr  // MS_PRIVATE, MS_SHARED, ... (with MS_REC), applied after mounting
	attrs       int      // MOUNT_ATTR_* for fsmount(2)
	data        []string // filesystem-specific options, in order
}

type flagOption struct {
	clear bool
	flag  uintptr
	attr  int
}

var flagOptions = map[string]flagOption{
	"ro":            {flag: unix.MS_RDONLY, attr: unix.MOUNT_ATTR_RDONLY},
	"rw":            {clear: true, flag: unix.MS_RDONLY, attr: unix.MOUNT_ATTR_RDONLY},
	"nosuid":        {flag: unix.MS_NOSUID, attr: unix.MOUNT_ATTR_NOSUID},
	"suid":          {clear: true, flag: unix.MS_NOSUID, attr: unix.MOUNT_ATTR_NOSUID},
	"nodev":         {flag: unix.MS_NODEV, attr: unix.MOUNT_ATTR_NODEV},
	"dev":           {clear: true, flag: unix.MS_NODEV, attr: unix.MOUNT_ATTR_NODEV},
	"noexec":        {flag: unix.MS_NOEXEC, attr: unix.MOUNT_ATTR_NOEXEC},
	"exec":          {clear: true, flag: unix.MS_NOEXEC, attr: unix.MOUNT_ATTR_NOEXEC},
	"noatime":       {flag: unix.MS_NOATIME, attr: unix.MOUNT_ATTR_NOATIME},
	"atime":         {clear: true, flag: unix.MS_NOATIME, attr: unix.MOUNT_ATTR_NOATIME},
	"nodiratime":    {flag: unix.MS_NODIRATIME, attr: unix.MOUNT_ATTR_NODIRATIME},
	"diratime":      {clear: true, flag: unix.MS_NODIRATIME, attr: unix.MOUNT_ATTR_NODIRATIME},
	"relatime":      {flag: unix.MS_RELATIME},
	"norelatime":    {clear: true, flag: unix.MS_RELATIME},
	"strictatime":   {flag: unix.MS_STRICTATIME, attr: unix.MOUNT_ATTR_STRICTATIME},
	"nostrictatime": {clear: true, flag: unix.MS_STRICTATIME, attr: unix.MOUNT_ATTR_STRICTATIME},
	"sync":          {flag: unix.MS_SYNCHRONOUS},
	"async":         {clear: true, flag: unix.MS_SYNCHRONOUS},
	"dirsync":       {flag: unix.MS_DIRSYNC},
	"bind":          {flag: unix.MS_BIND},
	"rbind":         {flag: unix.MS_BIND | unix.MS_REC},
}

var propagationOptions = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// parseMountOptions sorts mount(8)-style options into flags, propagation,
// fsmount attributes and filesystem data.
func parseMountOptions(opts []string) mountOpts {
	var o mountOpts
	for _, opt := range opts {
		if f, ok := flagOptions[opt]; ok {
			if f.clear {
				o.flags &^= f.flag
				o.attrs &^= f.attr
			} else {
				o.flags |= f.flag
				o.attrs |= f.attr
			}
			continue
		}
		if p, ok := propagationOptions[opt]; ok {
			o.propagation = p
			continue
		}
		o.data = append(o.data, opt)
	}
	return o
}

// errNewMountAPI means the kernel lacks fsopen(2) or overlayfs "lowerdir+".
var errNewMountAPI = errors.New("new mount API unsupported")

// MountOverlay mounts m. Overlays use the new mount API (fsopen, one
// "lowerdir+" per lower: no page-size limit on the number of lowers) and fall
// back to a classic mount(2) data string on kernels before 6.8. Types "bind"
// (options "bind"/"rbind" plus flags, remounted to apply "ro" etc.), "tmpfs",
// "proc", "sysfs", "devpts" and others go through mount(2).
func MountOverlay(m Mount) error { return mountOn(m, nil) }

// mountOn mounts m. When top is set, m.Target is the /proc/self/fd name of
// an open mount point, which keeps reaching the directory underneath once
// mounted on: what applies to the new mount afterwards (a bind's flags,
// propagation) goes through the descriptor top opens instead.
func mountOn(m Mount, top func() (int, error)) error {
	var err error
	switch m.Type {
	case "overlay":
		lowers, rest := overlayOptions(m.Options)
		if layer.UserXattrOverlay() {
			rest = userxattrOptions(rest)
		}
		err = mountOverlay(m.Target, lowers, rest, top)
		if err != nil && errors.Is(err, unix.EINVAL) && slices.Contains(rest, overlayVolatile) {
			// A kernel before 5.10: no volatile overlays (Volatile).
			err = mountOverlay(m.Target, lowers, slices.DeleteFunc(slices.Clone(rest), func(o string) bool { return o == overlayVolatile }), top)
		}
	case "bind", "rbind":
		err = mountBind(m, top)
	default:
		o := parseMountOptions(m.Options)
		src := m.Source
		if src == "" {
			src = m.Type
		}
		err = unix.Mount(src, m.Target, m.Type, o.flags, strings.Join(o.data, ","))
		if err == nil && o.propagation != 0 {
			err = onTop(m.Target, top, func(t string) error { return unix.Mount("", t, "", o.propagation, "") })
		}
	}
	if err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.Type, m.Target, err)
	}
	return nil
}

// mountOverlay mounts an overlay with the new mount API, else with mount(2).
func mountOverlay(target string, lowers, opts []string, top func() (int, error)) error {
	o := parseMountOptions(opts)
	err := mountOverlayNew(target, lowers, o, top)
	if errors.Is(err, errNewMountAPI) {
		err = mountOverlayClassic(target, lowers, o, top)
	}
	return err
}

// onTop calls fn with a name of the mount just made on target: target
// itself, or the /proc/self/fd name of the descriptor top opens.
func onTop(target string, top func() (int, error), fn func(string) error) error {
	if top == nil {
		return fn(target)
	}
	fd, err := top()
	if err != nil {
		return fmt.Errorf("open the new mount: %w", err)
	}
	defer unix.Close(fd)
	return fn(fmt.Sprintf("/proc/self/fd/%d", fd))
}

func mountBind(m Mount, top func() (int, error)) error {
	o := parseMountOptions(m.Options)
	flags := o.flags | unix.MS_BIND
	if m.Type == "rbind" {
		flags |= unix.MS_REC
	}
	if err := unix.Mount(m.Source, m.Target, "", flags, ""); err != nil {
		return err
	}
	return onTop(m.Target, top, func(t string) error {
		// A bind mount ignores every flag but MS_REC: apply them with a remount.
		if rest := flags &^ (unix.MS_BIND | unix.MS_REC); rest != 0 {
			if err := unix.Mount("", t, "", unix.MS_BIND|unix.MS_REMOUNT|rest, ""); err != nil {
				_ = unix.Unmount(t, unix.MNT_DETACH)
				return fmt.Errorf("remount: %w", err)
			}
		}
		if o.propagation != 0 {
			return unix.Mount("", t, "", o.propagation, "")
		}
		return nil
	})
}

// mountOverlayNew mounts an overlay with fsopen/fsconfig/fsmount/move_mount.
func mountOverlayNew(target string, lowers []string, o mountOpts, top func() (int, error)) error {
	mfd, err := fsmount("overlay", lowers, o)
	if err != nil {
		return err
	}
	defer unix.Close(mfd)
	// T_SYMLINKS: a /proc/self/fd target is a (magic) link to follow, as
	// mount(2) does.
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_SYMLINKS); err != nil {
		return fmt.Errorf("move mount: %w", err)
	}
	if o.propagation != 0 {
		return onTop(target, top, func(t string) error { return unix.Mount("", t, "", o.propagation, "") })
	}
	return nil
}

// fsmount makes a filesystem of type fstype (an overlay of lowers, for
// "overlay") with fsopen/fsconfig/fsmount and returns the descriptor of the
// new, detached mount.
func fsmount(fstype string, lowers []string, o mountOpts) (int, error) {
	fd, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) {
			return -1, errNewMountAPI
		}
		return -1, fmt.Errorf("fsopen %s: %w", fstype, err)
	}
	defer unix.Close(fd)
	for i, l := range lowers {
		if err := unix.FsconfigSetString(fd, "lowerdir+", l); err != nil {
			if i == 0 && errors.Is(err, unix.EINVAL) {
				return -1, errNewMountAPI
			}
			return -1, fmt.Errorf("set lowerdir+ %q: %w%s", l, err, fsLog(fd))
		}
	}
	for _, d := range o.data {
		k, v, ok := strings.Cut(d, "=")
		if ok {
			err = unix.FsconfigSetString(fd, k, v)
		} else {
			err = unix.FsconfigSetFlag(fd, k)
		}
		if err != nil {
			return -1, fmt.Errorf("set %s option %q: %w%s", fstype, d, err, fsLog(fd))
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return -1, fmt.Errorf("create %s: %w%s", fstype, err, fsLog(fd))
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, o.attrs)
	if err != nil {
		return -1, fmt.Errorf("fsmount %s: %w", fstype, err)
	}
	return mfd, nil
}

// fsLog drains the kernel's messages for an fs context, for error text.
func fsLog(fd int) string {
	var msgs []string
	buf := make([]byte, 512)
	for range 8 {
		n, err := unix.Read(fd, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) == 0 {
		return ""
	}
	return " (" + strings.Join(msgs, "; ") + ")"
}

// mountOverlayClassic mounts an overlay with one mount(2) data string, using
// the paths as given (no chdir tricks: that is not thread-safe).
func mountOverlayClassic(target string, lowers []string, o mountOpts, top func() (int, error)) error {
	data, err := overlayData(lowers, o.data, os.Getpagesize())
	if err != nil {
		return err
	}
	if err := unix.Mount("overlay", target, "overlay", o.flags, data); err != nil {
		return err
	}
	if o.propagation != 0 {
		return onTop(target, top, func(t string) error { return unix.Mount("", t, "", o.propagation, "") })
	}
	return nil
}

// Unmount lazily detaches the mount at target (MNT_DETACH).
func Unmount(target string) error {
	if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}
