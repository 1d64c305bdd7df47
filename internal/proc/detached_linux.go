package proc

import (
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// StartDetached starts kiln again (/proc/self/exe) as a background role
// named arg0 (kiln's re-executions keep an argv[0] starting with "kiln-")
// with args, in a session of its own, in "/", with env only and no
// descriptor but /dev/null and extra (from fd 3): nothing that keeps a
// caller's pipe or directory busy. Descriptors this process inherited
// without close-on-exec (a monitor's status pipe, a shell's extra
// redirections) get it first, as every descriptor Go opens has it. The
// child is reaped if the caller outlives it.
func StartDetached(arg0 string, env []string, extra []*os.File, args ...string) error {
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return err
	}
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Args[0] = arg0
	cmd.Env = env
	cmd.Dir = "/"
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	return nil
}
