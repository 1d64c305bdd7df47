package runner

import (
	"errors"
	"fmt"
	"os"
	"path"

	"github.com/kiln-build/kiln/runner/seccomp"
)

// ErrSandboxGone: the process whose namespaces StartExec should join is no
// longer the one that was meant (it exited, or its PID was reused).
var ErrSandboxGone = errors.New("sandbox process is gone")

// ExecSpec describes a process started inside a running sandbox, as
// `docker exec` does: it joins the mount, PID, UTS, IPC, network and cgroup
// namespaces of the sandbox process Pid and its cgroups, with the sandbox's
// capabilities and no_new_privs, as User (resolved through the sandbox's own
// /etc/passwd and /etc/group).
type ExecSpec struct {
	Pid      int    // a process of the sandbox, normally its PID 1, in the caller's PID namespace
	PidStart uint64 // when not 0, the start time (ProcStart) Pid must still have: a guard against PID reuse

	Args []string // argv; Args[0] is looked up in the PATH of Env inside the sandbox
	Env  []string // KEY=VALUE; PATH and HOME get defaults as in Spec
	Cwd  string   // working directory inside the sandbox (must exist); default "/"
	User string   // as Spec.User

	Capabilities    []string // when not nil, the capability bounding set, as Spec.Capabilities
	NoNewPrivileges bool
	Seccomp         *seccomp.Filter // when not nil, the process's seccomp filter
	Cgroups         []string        // cgroup directories the process starts in (v1 hierarchies, or one v2 directory)

	// Stdio of the process; nil is /dev/null. Ignored with Terminal.
	Stdin, Stdout, Stderr *os.File
	// Terminal gives the process a new pseudo-terminal of the sandbox's own
	// devpts as its stdio and controlling terminal, in a new session;
	// Process.Pty is its master.
	Terminal   bool
	Rows, Cols uint16 // the terminal's initial size, when not 0
}

func (s *ExecSpec) validate() error {
	if s.Pid <= 0 {
		return errors.New("exec: no sandbox process")
	}
	if len(s.Args) == 0 || s.Args[0] == "" {
		return errors.New("exec: no command")
	}
	if s.Cwd != "" && !path.IsAbs(s.Cwd) {
		return fmt.Errorf("exec: working directory %q: not absolute", s.Cwd)
	}
	for _, name := range s.Capabilities {
		if _, ok := capabilityNumber(name); !ok {
			return fmt.Errorf("exec: capability %q: %w", name, ErrUnknownCapability)
		}
	}
	return nil
}
