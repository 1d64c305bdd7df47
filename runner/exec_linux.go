package runner

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/runner/seccomp"
)

// execProcess runs inside the new root: it resolves the user, creates and
// enters the working directory, drops to the user and execs the command
// (with cfg.Init, starts it under the tiny init, and calls started once it
// runs). It only returns on failure.
func execProcess(cfg *initConfig, started func()) error {
	u, err := lookupUser(cfg.User)
	if err != nil {
		return err
	}
	if err := chdirInRoot(cfg.Cwd, true, u.UID, u.GID); err != nil {
		return err
	}
	if cfg.Terminal {
		if err := setupConsole(os.NewFile(consoleFd, "console"), cfg.Rows, cfg.Cols, u.UID, u.GID); err != nil {
			return err
		}
	}
	env := withDefaultEnv(cfg.Env, u.Home)
	if cfg.Seccomp != nil && !cfg.NoNewPrivileges {
		// Without no_new_privs, loading a filter takes CAP_SYS_ADMIN: load
		// it while the init still has every capability, as runc does. The
		// syscalls left before the exec are all ones the profile allows.
		if err := installSeccomp(cfg.Seccomp); err != nil {
			return err
		}
	}
	if cfg.Capabilities != nil {
		if err := limitCapabilities(cfg.Capabilities); err != nil {
			return err
		}
	}
	if err := setRlimits(cfg.Rlimits); err != nil {
		return err
	}
	if err := setCredentials(u); err != nil {
		return err
	}
	if cfg.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	unix.Umask(0o022)
	pathEnv, _ := lookupEnv(env, "PATH")
	exe, err := lookPath(cfg.Args[0], pathEnv)
	if err != nil {
		return err
	}
	if cfg.Seccomp != nil && cfg.NoNewPrivileges {
		if err := installSeccomp(cfg.Seccomp); err != nil {
			return err
		}
	}
	if cfg.Init {
		err = runInit(exe, cfg.Args, env, cfg.Terminal, started)
	} else {
		err = unix.Exec(exe, cfg.Args, env)
	}
	kind := kindNoExec
	if errors.Is(err, unix.ENOENT) {
		kind = kindNotFound
	}
	return &sandboxError{Msg: fmt.Sprintf("exec: %q: %v", cfg.Args[0], err), Kind: kind}
}

// lookupUser resolves spec through the (new) root's /etc/passwd and /etc/group.
func lookupUser(spec string) (execUser, error) {
	var readers [2]io.Reader
	for i, name := range []string{"/etc/passwd", "/etc/group"} {
		f, err := openUserFile(name)
		if err != nil {
			return execUser{}, err
		}
		if f != nil {
			defer f.Close()
			readers[i] = f
		}
	}
	return resolveUser(spec, readers[0], readers[1])
}

// openUserFile opens a regular file without blocking on FIFOs; a missing
// file is (nil, nil).
func openUserFile(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open %s: not a regular file", name)
	}
	return f, nil
}

// setCredentials switches the calling thread (locked: the exec follows on
// it) to the user; execve makes them the process's credentials.
func setCredentials(u execUser) error {
	if err := unix.Setgroups(u.Groups); err != nil && !setgroupsDenied(err, u) {
		return fmt.Errorf("setgroups: %w", err)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("setgid %d: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("setuid %d: %w", u.UID, e)
	}
	return nil
}

// setgroupsDenied reports whether a setgroups that failed with err can be
// done without: the user namespace denies setgroups (rootless kiln's
// single-uid mapping, where only the user's own group is mapped) and u asks
// for no group besides its primary one.
func setgroupsDenied(err error, u execUser) bool {
	if !errors.Is(err, unix.EPERM) {
		return false
	}
	for _, g := range u.Groups {
		if g != u.GID {
			return false
		}
	}
	data, _ := os.ReadFile("/proc/self/setgroups")
	return strings.TrimSpace(string(data)) == "deny"
}

// lookPath finds file like execvp: names with a slash are used as is,
// others are searched in pathEnv (an empty entry is the working directory).
func lookPath(file, pathEnv string) (string, error) {
	if strings.Contains(file, "/") {
		err := checkExecutable(file)
		if err == nil {
			return file, nil
		}
		kind := kindNoExec
		if errors.Is(err, fs.ErrNotExist) {
			kind = kindNotFound
		}
		return "", &sandboxError{Msg: fmt.Sprintf("exec: %q: %v", file, err), Kind: kind}
	}
	var denied error
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + file
		err := checkExecutable(p)
		if err == nil {
			return p, nil
		}
		if denied == nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTDIR) {
			denied = err
		}
	}
	if denied != nil {
		return "", &sandboxError{Msg: fmt.Sprintf("exec: %q: %v", file, denied), Kind: kindNoExec}
	}
	return "", &sandboxError{Msg: fmt.Sprintf("exec: %q: %v", file, ErrExecutableNotFound), Kind: kindNotFound}
}

func checkExecutable(p string) error {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return &fs.PathError{Op: "exec", Path: p, Err: unix.EISDIR}
	}
	if err := unix.Faccessat(unix.AT_FDCWD, p, unix.X_OK, unix.AT_EACCESS); err != nil {
		return &fs.PathError{Op: "access", Path: p, Err: err}
	}
	return nil
}

// installSeccomp loads the sandbox's seccomp filter on every thread of the
// init, so that whatever it forks or execs from now on is filtered.
func installSeccomp(f *seccomp.Filter) error {
	if err := f.Install(); err != nil {
		return fmt.Errorf("load seccomp filter: %w", err)
	}
	return nil
}
