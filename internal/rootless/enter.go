package rootless

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/proc"
)

// envJoin names the pause process ("PID START") whose namespaces the
// constructor of join_linux.c joins before the Go runtime starts.
const envJoin = "_KILN_ROOTLESS_JOIN"

// Enter makes this process rootless kiln when an ordinary user runs it.
// In the steady state the constructor of join_linux.c has already joined
// the user's pause process, before the Go runtime started, and Enter only
// completes the environment. Otherwise it finds the user's pause process
// (starting one if none lives), then re-executes kiln joined to that
// process's user and mount namespaces, waits for it, and exits with its
// status. Under real root, and inside the namespace already (where the
// euid is 0), it returns at once: no file read, no exec. Call it first
// thing in main, after the re-executions that are already inside (sandbox
// init, container monitor).
func Enter() {
	if os.Geteuid() == 0 {
		if uid, rt, ok := joinedEarly(); ok {
			exitOn(finishJoin(uid, rt))
		}
		return
	}
	code, err := enter()
	exitOn(err)
	os.Exit(code)
}

// exitOn ends kiln with the entry's error, if any.
func exitOn(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "kiln:", err)
		os.Exit(125)
	}
}

func enter() (int, error) {
	if !canJoin {
		return 0, errors.New("kiln was built without cgo: rootless mode needs it")
	}
	u := lookupUser(os.Getuid(), os.Getgid())
	rt, err := userRuntimeDir(u.uid)
	if err != nil {
		return 0, err
	}
	env, err := rootlessEnv(u, rt)
	if err != nil {
		return 0, err
	}
	if err := CheckProc(); err != nil {
		return 0, err
	}
	p, err := ensurePause(rt, u)
	if err != nil {
		return 0, err
	}
	return reexec(p, env)
}

// finishJoin gives a process the constructor entered (joinedEarly) the
// environment the Go path gives the kiln it re-executes.
func finishJoin(uid int, rt string) error {
	u := account{uid: uid, home: os.Getenv("HOME")}
	if u.home == "" {
		u = lookupUser(uid, 0)
	}
	env, err := rootlessEnv(u, rt)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	return err
}

// rootlessEnv is the environment of rootless kiln for u, whose runtime
// directory is rt (EnvUID, EnvRuntimeDir, EnvDataDir).
func rootlessEnv(u account, rt string) ([]string, error) {
	data, err := userDataDir(u)
	if err != nil {
		return nil, err
	}
	return []string{
		EnvUID + "=" + strconv.Itoa(u.uid),
		EnvRuntimeDir + "=" + rt,
		EnvDataDir + "=" + data,
	}, nil
}

// account is the user kiln runs for.
type account struct {
	uid, gid   int
	name, home string
}

// lookupUser is the account of uid and gid: its name and, without HOME,
// its home from the passwd database.
func lookupUser(uid, gid int) account {
	a := account{uid: uid, gid: gid, home: os.Getenv("HOME")}
	// A uid without a passwd entry (a CI container's random uid) is
	// matched in /etc/subuid by number only.
	if u, err := user.LookupId(strconv.Itoa(a.uid)); err == nil {
		a.name = u.Username
		if a.home == "" {
			a.home = u.HomeDir
		}
	}
	return a
}

// userRuntimeDir is $XDG_RUNTIME_DIR/kiln (/tmp/kiln-run-UID/kiln without
// it), made when missing; the base directory must be the user's own and
// closed to others. join_linux.c's kiln_rootless_runtime_dir finds the
// same directory by the same rules (TestRuntimeDirAgrees).
func userRuntimeDir(uid int) (string, error) {
	base := os.Getenv("XDG_RUNTIME_DIR")
	if base == "" || !filepath.IsAbs(base) {
		base = fmt.Sprintf("/tmp/kiln-run-%d", uid)
		if err := os.Mkdir(base, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("create the runtime directory: %w", err)
		}
	}
	if err := ownDir(base, uid); err != nil {
		return "", err
	}
	rt := filepath.Join(base, "kiln")
	if err := os.Mkdir(rt, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("create the runtime directory: %w", err)
	}
	return rt, ownDir(rt, uid)
}

// ownDir checks that dir is a directory (not a symlink) of uid that no one
// else may write.
func ownDir(dir string, uid int) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return fmt.Errorf("runtime directory: %w", err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("runtime directory %s is not a directory", dir)
	case int(st.Uid) != uid:
		return fmt.Errorf("runtime directory %s is owned by uid %d, not by you (uid %d): set XDG_RUNTIME_DIR to a directory of yours", dir, st.Uid, uid)
	case st.Mode&0o022 != 0:
		return fmt.Errorf("runtime directory %s is writable by others (mode %o): set XDG_RUNTIME_DIR to a directory only you can write", dir, st.Mode&0o777)
	}
	return nil
}

// userDataDir is the default store, $XDG_DATA_HOME/kiln
// (~/.local/share/kiln).
func userDataDir(u account) (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "kiln"), nil
	}
	if !filepath.IsAbs(u.home) {
		return "", errors.New("neither XDG_DATA_HOME nor HOME is set: kiln does not know where the user's store is (use --root)")
	}
	return filepath.Join(u.home, ".local", "share", "kiln"), nil
}

// forwarded are the signals the waiting parent passes on to kiln in the
// namespace (those a terminal sends the whole foreground group reach it
// twice, which kiln's handlers absorb).
var forwarded = []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH}

// reexec runs this binary again with the same arguments, standard streams
// and environment plus env, joined to the namespaces of p, and returns the
// exit status it ends with (128+N when killed by signal N).
func reexec(p pauseProc, env []string) (int, error) {
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, envJoin+"="+p.String())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	code, err := proc.RunForwarding(cmd, forwarded...)
	if err != nil {
		return 0, fmt.Errorf("re-execute kiln in the user namespace: %w", err)
	}
	return code, nil
}
