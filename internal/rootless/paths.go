// Package rootless is kiln run by an ordinary user: the user namespace every
// rootless kiln process lives in, and the paths that take the place of
// /var/lib/kiln and /run/kiln for that user.
//
// A kiln process started by a user other than root enters the user's kiln
// user namespace before doing anything else (Enter); from there on it is
// root of that namespace and the rest of kiln works as under real root, with
// the differences asked through Active.
package rootless

import (
	"os"
	"path/filepath"
	"strconv"
)

// Environment of a kiln process inside the rootless user namespace, set by
// the entry before it re-executes kiln there.
const (
	// EnvUID is the user's uid on the host: set means rootless.
	EnvUID = "_KILN_ROOTLESS_UID"
	// EnvRuntimeDir is the user's kiln runtime directory on the host
	// ($XDG_RUNTIME_DIR/kiln).
	EnvRuntimeDir = "_KILN_ROOTLESS_RUNTIME_DIR"
	// EnvDataDir is the user's default store ($XDG_DATA_HOME/kiln).
	EnvDataDir = "_KILN_ROOTLESS_DATA_DIR"
)

// Active reports whether this process is rootless kiln: root of a user
// namespace owned by an ordinary user.
func Active() bool { return os.Getenv(EnvUID) != "" }

// HostUID is the uid on the host of the user kiln runs for (0 under real
// root).
func HostUID() int {
	uid, err := strconv.Atoi(os.Getenv(EnvUID))
	if err != nil {
		return 0
	}
	return uid
}

// RuntimeDir is where kiln keeps what lives until the next boot (locks,
// network registrations): /run/kiln under root, the user's
// $XDG_RUNTIME_DIR/kiln rootless.
func RuntimeDir() string {
	if d := os.Getenv(EnvRuntimeDir); d != "" && Active() {
		return d
	}
	return "/run/kiln"
}

// RuntimePath is name under RuntimeDir.
func RuntimePath(name ...string) string {
	return filepath.Join(append([]string{RuntimeDir()}, name...)...)
}

// DefaultRoot is the store used when neither --root nor KILN_ROOT says:
// /var/lib/kiln under root, $XDG_DATA_HOME/kiln (~/.local/share/kiln)
// rootless.
func DefaultRoot() string {
	if d := os.Getenv(EnvDataDir); d != "" && Active() {
		return d
	}
	return "/var/lib/kiln"
}

// Env is the environment that keeps a kiln process this one re-executes
// (a container monitor, a network reaper) rootless kiln of the same user:
// nil under root.
func Env() []string {
	if !Active() {
		return nil
	}
	var env []string
	for _, k := range []string{EnvUID, EnvRuntimeDir, EnvDataDir} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
