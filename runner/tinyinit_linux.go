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
