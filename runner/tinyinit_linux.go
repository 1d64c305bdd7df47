package runner

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// runInit is the tiny init of Spec.Init, as docker's --init (tini): it
// starts the command as its child in a process group of its own (the
// terminal's foreground one, with a TTY) and stays PID 1, forwarding the
// signals it gets to the child and reaping every process that ends up its
// child. It exits as the command did (128+signal if a signal killed it),
// and only returns when the command cannot be started. The calling thread
// already has the command's credentials, capabilities and no_new_privs,
// which the child inherits.
func runInit(exe string, args, env []string, tty bool, started func()) error {
	_ = os.WriteFile("/proc/self/comm", []byte("kiln-init"), 0) // what ps shows
	// The init never execs: left as they are, its capabilities would be
	// more than the command's (whose permitted set execve cut to the
	// bounding set), a prize for whoever can ptrace it.
	if err := keepBoundingCapabilities(); err != nil {
		return err
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs)
	sys := &syscall.SysProcAttr{Setpgid: true}
	if tty {
		sys = &syscall.SysProcAttr{Foreground: true, Ctty: 0}
	}
	pid, err := syscall.ForkExec(exe, args, &syscall.ProcAttr{Env: env, Files: []uintptr{0, 1, 2}, Sys: sys})
	if err != nil {
		kind := kindNoExec
		if errors.Is(err, unix.ENOENT) {
			kind = kindNotFound
		}
		return &sandboxError{Msg: fmt.Sprintf("exec: %q: %v", args[0], err), Kind: kind}
	}
	started()
	for s := range sigs {
		switch s {
		case unix.SIGCHLD:
			if code, done := reapAll(pid); done {
				os.Exit(code)
			}
		case unix.SIGURG, unix.SIGTTIN, unix.SIGTTOU:
			// the Go runtime's preemption, and job control of the init itself
		default:
			_ = unix.Kill(pid, s.(syscall.Signal))
		}
	}
	return nil
}

// reapAll reaps every child that has exited; done says whether child was
// one of them, code is then its exit code.
func reapAll(child int) (code int, done bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return code, done
		}
		if pid == child {
			done = true
			code = ws.ExitStatus()
			if ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
		}
	}
}

// keepBoundingCapabilities cuts the calling thread's permitted and
// effective capabilities to its bounding set, which is what execve leaves
// a root process.
func keepBoundingCapabilities() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("get capabilities: %w", err)
	}
	for c := 0; c < 64; c++ {
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		if err == nil && in == 1 {
			continue
		}
		// Not in the bounding set (or past the kernel's last capability).
		mask := ^(uint32(1) << (c % 32))
		data[c/32].Permitted &= mask
		data[c/32].Effective &= mask
		data[c/32].Inheritable &= mask
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("drop the init's capabilities: %w", err)
	}
	return nil
}
