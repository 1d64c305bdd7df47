package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// joinedNamespaces are the namespaces StartExec joins, all at once through
// a pidfd.
const joinedNamespaces = unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// StartExec starts spec's process inside a running sandbox and returns once
// it has been exec'd (or failed to: then exitCode is 127 for a missing
// executable, 126 for one that cannot be executed, -1 otherwise, and err
// says why). Wait reaps it. The caller is the process's parent, but none of
// the caller's threads changes namespace: the joining is done by a locked
// OS thread that forks the process and is then thrown away.
//
// The thread first joins the cgroups (a v1 hierarchy takes the thread
// alone; on v2 the process is cloned into the cgroup), then leaves the
// file-system context it shares with the other threads (setns into a mount
// namespace needs that) and joins every namespace of Pid with one setns on a
// pidfd. From there it resolves the user, the working directory and the
// executable inside the sandbox, limits its capabilities and sets
// no_new_privs, all of which the forked process inherits; the fork itself
// lands in the sandbox's PID namespace.
func StartExec(spec *ExecSpec) (p *ExecProcess, exitCode int, err error) {
	if err := spec.validate(); err != nil {
		return nil, -1, err
	}
	// The thread ends up in the sandbox's namespaces and cgroups with
	// fewer capabilities: it must die rather than go back to the scheduler.
	err = OnThrowawayThread(func() (ferr error) {
		p, exitCode, ferr = enterAndStart(spec)
		return ferr
	})
	return p, exitCode, err
}

func enterAndStart(spec *ExecSpec) (*ExecProcess, int, error) {
	pidfd, err := unix.PidfdOpen(spec.Pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, -1, fmt.Errorf("exec: %w", ErrSandboxGone)
		}
		return nil, -1, fmt.Errorf("exec: open pidfd of %d: %w", spec.Pid, err)
	}
	defer unix.Close(pidfd)
	// With the pidfd open, the PID cannot name another process any more:
	// check that it still names the one meant.
	if spec.PidStart != 0 {
		if st, ok := ProcStart(spec.Pid); !ok || st != spec.PidStart {
			return nil, -1, fmt.Errorf("exec: %w", ErrSandboxGone)
		}
	}

	cgroupFD := -1
	defer func() {
		if cgroupFD >= 0 {
			unix.Close(cgroupFD)
		}
	}()
	tid := strconv.Itoa(unix.Gettid())
	for _, dir := range spec.Cgroups {
		tasks := filepath.Join(dir, "tasks")
		if _, err := os.Stat(tasks); err == nil {
			if err := os.WriteFile(tasks, []byte(tid), 0); err != nil {
				return nil, -1, fmt.Errorf("exec: join cgroup %s: %w", dir, err)
			}
			continue
		}
		if cgroupFD >= 0 {
			return nil, -1, fmt.Errorf("exec: cgroup %s: only one cgroup v2 directory can be joined", dir)
		}
		if cgroupFD, err = unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
			return nil, -1, fmt.Errorf("exec: open cgroup %s: %w", dir, err)
		}
	}

	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return nil, -1, fmt.Errorf("exec: unshare file-system context: %w", err)
	}
	if err := unix.Setns(pidfd, joinedNamespaces); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, -1, fmt.Errorf("exec: %w", ErrSandboxGone)
		}
		return nil, -1, fmt.Errorf("exec: join the namespaces of %d: %w", spec.Pid, err)
	}
	// From here on every path is the sandbox's.
	u, err := lookupUser(spec.User)
	if err != nil {
		return nil, -1, fmt.Errorf("exec: %w", err)
	}
	cwd := "/"
	if spec.Cwd != "" {
		cwd = path.Clean(spec.Cwd)
	}
	// The fork inherits this thread's working directory: the child must not
	// resolve cwd again (cmd.Dir), its /proc/self/fd holds our descriptors.
	if err := chdirInRoot(cwd, false, 0, 0); err != nil {
		return nil, 126, fmt.Errorf("exec: %w", err)
	}
	env := withDefaultEnv(spec.Env, u.Home)
	pathEnv, _ := lookupEnv(env, "PATH")
	exe, err := lookPath(spec.Args[0], pathEnv)
	if err != nil {
		var se *sandboxError
		if errors.As(err, &se) {
			return nil, se.exitCode(), fmt.Errorf("exec: %w", err)
		}
		return nil, -1, fmt.Errorf("exec: %w", err)
	}
	if spec.Capabilities != nil {
		if err := limitCapabilities(spec.Capabilities); err != nil {
			return nil, -1, fmt.Errorf("exec: %w", err)
		}
	}
	if spec.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return nil, -1, fmt.Errorf("exec: set no_new_privs: %w", err)
		}
	}
	if spec.Seccomp != nil {
		// On this thread alone (it forks the process and dies), which still
		// has every capability in its effective set: the filter loads with
		// or without no_new_privs.
		if err := spec.Seccomp.InstallThread(); err != nil {
			return nil, -1, fmt.Errorf("exec: load seccomp filter: %w", err)
		}
	}

	groups := make([]uint32, 0, len(u.Groups))
	for _, g := range u.Groups {
		groups = append(groups, uint32(g))
	}
	cmd := &exec.Cmd{Path: exe, Args: spec.Args, Env: env}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID), Groups: groups},
	}
	if cgroupFD >= 0 {
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, cgroupFD
	}
	var pty *os.File
	if spec.Terminal {
		master, slave, err := OpenPty()
		if err != nil {
			return nil, -1, fmt.Errorf("exec: %w", err)
		}
		defer slave.Close()
		if spec.Rows > 0 && spec.Cols > 0 {
			_ = SetWinsize(master, spec.Rows, spec.Cols)
		}
		// The slave belongs to the user, as a login's terminal would.
		_ = slave.Chown(u.UID, u.GID)
		pty = master
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr.Setsid, cmd.SysProcAttr.Setctty, cmd.SysProcAttr.Ctty = true, true, 0
	} else {
		// (A nil *os.File must not become a non-nil io.Reader.)
		if spec.Stdin != nil {
			cmd.Stdin = spec.Stdin
		}
		if spec.Stdout != nil {
			cmd.Stdout = spec.Stdout
		}
		if spec.Stderr != nil {
			cmd.Stderr = spec.Stderr
		}
	}
	// The umask lives in the file-system context this thread no longer shares.
	unix.Umask(0o022)
	// Only stdio reaches the process, nothing the caller inherited.
	if err := CloseExtraFilesOnExec(); err != nil {
		if pty != nil {
			pty.Close()
		}
		return nil, -1, fmt.Errorf("exec: %w", err)
	}
	err = cmd.Start()
	if err != nil {
		if pty != nil {
			pty.Close()
		}
		code := 126
		if errors.Is(err, fs.ErrNotExist) {
			code = 127
		}
		return nil, code, fmt.Errorf("exec: %q: %w", spec.Args[0], err)
	}
	return &ExecProcess{Pid: cmd.Process.Pid, Pty: pty, cmd: cmd}, 0, nil
}

// ExecProcess is a process StartExec started in a sandbox.
type ExecProcess struct {
	Pid int      // in the caller's PID namespace
	Pty *os.File // with Terminal: the master of the process's terminal (Wait does not close it)
	cmd *exec.Cmd
}

// Wait waits for the process to exit and returns its exit code (128+signal
// if a signal killed it).
func (p *ExecProcess) Wait() (int, error) {
	err := p.cmd.Wait()
	if p.cmd.ProcessState == nil {
		return -1, fmt.Errorf("wait exec process: %w", err)
	}
	return processExitCode(p.cmd.ProcessState), nil
}
