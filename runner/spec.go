package runner

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/kiln-build/kiln/runner/seccomp"
)

// DefaultPath is Docker's default PATH, used when Spec.Env has none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// DefaultHostname is the sandbox hostname when Spec.Hostname is empty.
const DefaultHostname = "kiln"

// ErrExecutableNotFound is wrapped by Run's error when Args[0] cannot be found
// (exit code 127).
var ErrExecutableNotFound = errors.New("executable file not found in $PATH")

// Spec describes one sandboxed process: a RUN step, later a container.
type Spec struct {
	Lowers      []string // snapshot directories of the parent layers, top-most first (may be empty for scratch)
	Upper, Work string   // fresh overlay upperdir and workdir (same filesystem); the caller diffs Upper afterwards
	Rootfs      string   // an empty directory to mount the merged tree on (inside the sandbox's mount namespace only)
	// Volatile mounts the overlay volatile (see Mount.Volatile): nothing
	// syncs Upper, not even the unmount when the sandbox ends; for a caller
	// that syncs Upper's filesystem itself before trusting it. Work must be
	// fresh and not reused.
	Volatile    bool
	Args        []string // argv; Args[0] is looked up in the PATH of Env inside the rootfs, like execvp
	Env         []string // KEY=VALUE; PATH defaults to DefaultPath, HOME to the user's home directory
	Cwd         string   // working directory inside the rootfs, created (owned by the user) when missing; default "/"
	User        string   // "", "name", "uid", "name:group", "uid:gid", resolved through the image's /etc/passwd and /etc/group
	Hostname    string   // default DefaultHostname
	Network     string   // "host" (default: the host's network namespace) or "none" (a new one with only lo, up)
	NetNS       *os.File // when not nil, a network namespace (an nsfs file) the sandbox joins; Network is then ignored
	Stdin       io.Reader
	Stdout      io.Writer
	Stderr      io.Writer
	ExtraMounts []Mount // bind/tmpfs mounts inside the rootfs (Target is a container path), mounted in order of depth
	// Prestarted, when not nil, is an init Prestart started for this Spec's
	// network: Run uses it instead of starting one, unless the Spec has a
	// Terminal or a Stdin (then it stays for the caller to Close).
	Prestarted *Prestarted

	// Container isolation. The zero values keep the RUN sandbox as it is:
	// every capability, the host's /etc/hosts and /etc/resolv.conf read-only.
	Capabilities    []string          // when not nil, the capability bounding set ("CAP_CHOWN", ...); inheritable and ambient sets are cleared
	NoNewPrivileges bool              // set no_new_privs before the exec
	Seccomp         *seccomp.Filter   // when not nil, installed before the exec (see Confinement)
	MaskedPaths     []string          // container paths hidden after pivot_root: /dev/null over files, an empty read-only tmpfs over directories
	ReadonlyPaths   []string          // container paths remounted read-only after pivot_root
	ReadonlyRootfs  bool              // the root filesystem is remounted read-only once everything is mounted
	Files           map[string]string // container path -> host file bind-mounted over it read-write; replaces the host's /etc/hosts or /etc/resolv.conf
	Cgroups         []string          // cgroup directories the sandbox joins (via cgroup.procs) before any setup
	CgroupNS        bool              // a new cgroup namespace, rooted at the joined cgroups, shown at /sys/fs/cgroup (read-write only if Privileged)
	Privileged      bool              // /sys read-write and the host's devices in /dev
	// Terminal gives the command a new pseudo-terminal of the sandbox's own
	// devpts (/dev/pts/0 inside, also bound over /dev/console) as its stdio
	// and controlling terminal, in a new session; Start's Process.Pty is
	// its master. Stdin, Stdout and Stderr are then ignored.
	Terminal   bool
	Rows, Cols uint16            // the terminal's initial size, when not 0
	Init       bool              // a tiny init (this binary) is PID 1: it runs the command as its child, forwards signals and reaps orphans
	Devices    []Device          // host devices made in the sandbox
	Rlimits    []Rlimit          // resource limits of the command, set before the user switch
	ShmSize    int64             // bytes of the /dev/shm tmpfs; 0 is DefaultShmSize
	Sysctls    map[string]string // written to the sandbox's /proc/sys (see ValidateSysctl for which a container may set)
	Hooks      *Hooks            // OCI lifecycle hooks (hooks_linux.go)
	// Joined, when not nil, runs once the init lives in the sandbox's
	// namespaces and cgroups, before it gets its configuration (so before
	// it mounts anything or runs the command): work that must be done
	// before the command runs but needs no more than the namespaces (the
	// network namespace's endpoints) overlaps the init's own start. An
	// error kills the sandbox and is Start's.
	Joined func(pid int) error
	// Populate lists ExtraMounts targets (volumes) whose source, when it is
	// an empty directory, is first filled with what the rootfs has there,
	// as docker fills a new volume from the image.
	Populate []string
}

// Device is a host device node (Source, e.g. /dev/fuse) made at Target in
// the sandbox with the same type, numbers, mode and owner; or, when Source
// is empty, the node Node describes (a CDI device's).
type Device struct {
	Source, Target string
	Node           *DeviceNode `json:",omitempty"`
}

// DeviceNode is a device node given by its numbers: Type "c" (or "u"),
// "b" or "p"; Mode is the permission bits (0 is 0666); UID and GID its owner.
type DeviceNode struct {
	Type         string
	Major, Minor int64
	Mode         uint32
	UID, GID     uint32
}

// initConfig is what the sandbox init receives (as JSON) from Run.
type initConfig struct {
	Lowers      []string
	Upper, Work string
	Rootfs      string
	Volatile    bool
	Args, Env   []string
	Cwd, User   string
	Hostname    string
	NetNone     bool
	ExtraMounts []Mount

	Capabilities    []string
	NoNewPrivileges bool
	Seccomp         *seccomp.Filter
	MaskedPaths     []string
	ReadonlyPaths   []string
	ReadonlyRootfs  bool
	Files           map[string]string
	CgroupNS        bool
	Privileged      bool
	Terminal        bool
	Rows, Cols      uint16
	Init            bool
	Devices         []Device
	Populate        []string
	Rlimits         []Rlimit
	ShmSize         int64
	Sysctls         map[string]string
	Hooks           *Hooks
	hostPid         int // the init's PID on the host (set by the init, for the hooks' state)
}

func newInitConfig(s *Spec) (*initConfig, error) {
	if len(s.Args) == 0 || s.Args[0] == "" {
		return nil, errors.New("no command")
	}
	if s.Upper == "" || s.Work == "" || s.Rootfs == "" {
		return nil, errors.New("upper, work and rootfs directories are required")
	}
	for _, p := range append([]string{s.Upper, s.Work, s.Rootfs}, s.Lowers...) {
		if !path.IsAbs(p) {
			return nil, fmt.Errorf("directory %q: not absolute", p)
		}
	}
	c := &initConfig{
		Lowers: s.Lowers, Upper: path.Clean(s.Upper), Work: s.Work, Rootfs: path.Clean(s.Rootfs), Volatile: s.Volatile,
		Args: s.Args, Env: s.Env, Cwd: s.Cwd, User: s.User, Hostname: s.Hostname,
		ExtraMounts: s.ExtraMounts,

		Capabilities: s.Capabilities, NoNewPrivileges: s.NoNewPrivileges, Seccomp: s.Seccomp,
		MaskedPaths: s.MaskedPaths, ReadonlyPaths: s.ReadonlyPaths, ReadonlyRootfs: s.ReadonlyRootfs,
		Files: s.Files, CgroupNS: s.CgroupNS, Privileged: s.Privileged,
		Terminal: s.Terminal, Rows: s.Rows, Cols: s.Cols, Init: s.Init, Devices: s.Devices, Populate: s.Populate,
		Rlimits: s.Rlimits, ShmSize: s.ShmSize, Sysctls: s.Sysctls, Hooks: s.Hooks,
	}
	for _, d := range s.Devices {
		if (d.Node == nil && !path.IsAbs(d.Source)) || !path.IsAbs(d.Target) || path.Clean(d.Target) == "/" {
			return nil, fmt.Errorf("device %q at %q: paths must be absolute", d.Source, d.Target)
		}
		if d.Node != nil && d.Source == "" {
			switch d.Node.Type {
			case "c", "u", "b", "p":
			default:
				return nil, fmt.Errorf("device %s: unknown type %q", d.Target, d.Node.Type)
			}
		}
	}
	if s.Capabilities != nil {
		c.Capabilities = make([]string, 0, len(s.Capabilities))
		for _, name := range s.Capabilities {
			if _, ok := capabilityNumber(name); !ok {
				return nil, fmt.Errorf("capability %q: %w", name, ErrUnknownCapability)
			}
			c.Capabilities = append(c.Capabilities, NormalizeCapability(name))
		}
	}
	for target, src := range s.Files {
		if !path.IsAbs(target) || path.Clean(target) == "/" || !path.IsAbs(src) {
			return nil, fmt.Errorf("file %q from %q: paths must be absolute", target, src)
		}
	}
	for name := range s.Sysctls {
		if _, err := sysctlPath(name); err != nil {
			return nil, err
		}
	}
	if c.Cwd == "" {
		c.Cwd = "/"
	}
	if c.Hostname == "" {
		c.Hostname = DefaultHostname
	}
	switch s.Network {
	case "", "host":
	case "none":
		if s.NetNS != nil {
			break // the joined namespace is the sandbox's network
		}
		c.NetNone = true
	default:
		return nil, fmt.Errorf("network %q: must be host or none", s.Network)
	}
	for _, m := range s.ExtraMounts {
		if !path.IsAbs(m.Target) || path.Clean(m.Target) == "/" {
			return nil, fmt.Errorf("mount target %q: must be an absolute path below /", m.Target)
		}
	}
	return c, nil
}

// withDefaultEnv adds PATH and HOME to env when they are missing.
func withDefaultEnv(env []string, home string) []string {
	out := make([]string, 0, len(env)+2)
	out = append(out, env...)
	if _, ok := lookupEnv(env, "PATH"); !ok {
		out = append(out, "PATH="+DefaultPath)
	}
	if _, ok := lookupEnv(env, "HOME"); !ok {
		out = append(out, "HOME="+home)
	}
	return out
}

// lookupEnv returns the last value of key in env.
func lookupEnv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// Kinds of sandbox setup errors, carried from the init to Run.
const (
	kindNotFound = "notfound" // the executable is missing: 127
	kindNoExec   = "noexec"   // found but cannot be executed: 126
	kindNoUser   = "nouser"
	kindNoGroup  = "nogroup"
)

// sandboxError is a setup failure reported by the sandbox init.
type sandboxError struct {
	Msg  string
	Kind string
}

func (e *sandboxError) Error() string { return e.Msg }

func (e *sandboxError) Unwrap() error {
	switch e.Kind {
	case kindNotFound:
		return ErrExecutableNotFound
	case kindNoExec:
		return fs.ErrPermission
	case kindNoUser:
		return ErrNoPasswdEntries
	case kindNoGroup:
		return ErrNoGroupEntries
	}
	return nil
}

// exitCode is the shell-style exit code of a setup failure.
func (e *sandboxError) exitCode() int {
	switch e.Kind {
	case kindNotFound:
		return 127
	case kindNoExec:
		return 126
	}
	return -1
}

// errorKind classifies err for the trip from the init to Run.
func errorKind(err error) string {
	var se *sandboxError
	switch {
	case errors.As(err, &se):
		return se.Kind
	case errors.Is(err, ErrNoPasswdEntries):
		return kindNoUser
	case errors.Is(err, ErrNoGroupEntries):
		return kindNoGroup
	}
	return ""
}

// depth counts the components of a clean absolute path ("/" is 0).
func depth(p string) int {
	p = path.Clean("/" + p)
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// nestedUnder reports whether target lies strictly below dir (lexically).
func nestedUnder(target, dir string) bool {
	target, dir = path.Clean("/"+target), path.Clean("/"+dir)
	if dir == "/" {
		return target != "/"
	}
	return strings.HasPrefix(target, dir+"/")
}
