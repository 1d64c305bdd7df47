package runner

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
)

// MountNamespaceEnv marks a process re-executed by EnterMountNamespace.
const MountNamespaceEnv = "KILN_MNTNS"

// EnterMountNamespace makes sure the calling process runs in its own private
// mount namespace, so the overlay mounts it makes vanish if it is killed.
// When MountNamespaceEnv is set it returns nil at once. Otherwise it
// re-executes /proc/self/exe with the same arguments and environment plus the
// marker in a new mount namespace (Go remounts / rprivate there), forwards
// SIGINT, SIGTERM and SIGHUP to it and exits with its exit code (128+signal
// if a signal killed it); it only returns on failure to start.
func EnterMountNamespace() error {
	if os.Getenv(MountNamespaceEnv) != "" {
		return nil
	}
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), MountNamespaceEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	// Pdeathsig is tied to the starting thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("enter mount namespace: %w", err)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	_ = cmd.Wait()
	close(done)
	os.Exit(processExitCode(cmd.ProcessState))
	return nil
}
