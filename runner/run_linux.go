package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
)

// Run runs spec.Args in a sandbox: new mount, PID, UTS and IPC namespaces
// (and network with Network "none"), the overlay of Lowers and Upper as the
// root, the command as PID 1. It returns the process's exit code (128+signal
// if a signal killed it). err is only for setup failures; a missing
// executable is an error wrapping ErrExecutableNotFound with exit code 127
// (126 when it cannot be executed). When ctx is done the whole sandbox is
// SIGKILLed and err wraps ctx.Err().
//
// Mount points the image lacks are removed from Upper afterwards. After any
// error Upper may hold partial changes and should be discarded.
func Run(ctx context.Context, spec *Spec) (exitCode int, err error) {
	cfg, err := newInitConfig(spec)
	if err != nil {
		return -1, fmt.Errorf("run: %w", err)
	}
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return -1, fmt.Errorf("run: %w", err)
	}
	defer cfgR.Close()
	defer cfgW.Close()
	repR, repW, err := os.Pipe()
	if err != nil {
		return -1, fmt.Errorf("run: %w", err)
	}
	defer repR.Close()
	defer repW.Close()

	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	cmd.Args = []string{initArg0}
	cmd.Env = []string{"GOMAXPROCS=1"}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = spec.Stdin, spec.Stdout, spec.Stderr
	cmd.ExtraFiles = []*os.File{cfgR, repW} // configFd, reportFd
	flags := uintptr(syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC)
	if cfg.NetNone {
		flags |= syscall.CLONE_NEWNET
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags, Pdeathsig: syscall.SIGKILL}

	// Pdeathsig fires when the thread that started the child exits: keep
	// this goroutine on its thread until the sandbox is gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("start sandbox: %w", err)
	}
	cfgR.Close()
	repW.Close()
	// A write error means the init died early; Wait tells why.
	_ = json.NewEncoder(cfgW).Encode(cfg)
	cfgW.Close()

	var stubs []stubEntry
	var setupErr *sandboxError
	dec := json.NewDecoder(repR)
	for {
		var msg initReport
		if err := dec.Decode(&msg); err != nil {
			break // EOF: the command was exec'd, or the init died
		}
		stubs = append(stubs, msg.Stubs...)
		if msg.Error != "" {
			setupErr = &sandboxError{Msg: msg.Error, Kind: msg.Kind}
		}
	}
	waitErr := cmd.Wait()
	code := -1
	if cmd.ProcessState != nil {
		code = processExitCode(cmd.ProcessState)
	}
	cleanErr := cleanStubs(cfg.Upper, stubs)

	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil && code == 128+int(syscall.SIGKILL):
		return code, errors.Join(fmt.Errorf("run: %w", ctx.Err()), cleanErr)
	case setupErr != nil:
		return setupErr.exitCode(), errors.Join(fmt.Errorf("start sandbox: %w", setupErr), cleanErr)
	case waitErr != nil && !errors.As(waitErr, &exitErr):
		return code, errors.Join(fmt.Errorf("wait sandbox: %w", waitErr), cleanErr)
	}
	return code, cleanErr
}

// processExitCode is the exit status, or 128+signal when a signal killed it.
func processExitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
