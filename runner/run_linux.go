package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kiln-build/kiln/internal/proc"
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
	if spec.Terminal {
		return -1, errors.New("run: a terminal needs Start, whose caller serves it")
	}
	p, code, err := start(ctx, spec)
	if err != nil {
		return code, err
	}
	return p.Wait()
}

// Process is a sandbox whose command is running (Start returned it).
type Process struct {
	Pid int      // the command's PID in the caller's PID namespace
	Pty *os.File // with Spec.Terminal: the master of the sandbox's terminal (the caller closes it)
	ctx context.Context
	cmd *exec.Cmd
	cfg *initConfig
	// stubs are the mount points the init created in Upper.
	stubs []stubEntry
	// releaseStarter ends the thread that started the sandbox, once it is gone.
	releaseStarter func()
	// after, when not nil, runs once the sandbox is reaped (a prestarted
	// init's output copies end).
	after func()
	// cInit: the C init ran the sandbox (cplan_linux.go), not Init.
	cInit bool
}

// Start starts spec like Run but returns once the command has been exec'd
// (or failed to start: then exitCode is Run's for that failure, e.g. 127 for
// a missing executable, and err says why). The sandbox is SIGKILLed if the
// calling OS thread exits: Start locks the calling goroutine to its thread
// and Wait, which must be called from the same goroutine, unlocks it.
func Start(spec *Spec) (p *Process, exitCode int, err error) {
	return start(context.Background(), spec)
}

func start(ctx context.Context, spec *Spec) (*Process, int, error) {
	cfg, err := newInitConfig(spec)
	if err != nil {
		return nil, -1, fmt.Errorf("run: %w", err)
	}
	// Pdeathsig fires when the thread that started the child exits: keep
	// this goroutine on its thread until the sandbox is gone (a prestarted
	// init has a thread of its own; Wait unlocks this one all the same).
	runtime.LockOSThread()
	l, ok := spec.Prestarted.take(ctx, spec, cfg)
	if !ok {
		if l, err = launch(ctx, spec, cfg); err != nil {
			runtime.UnlockOSThread()
			return nil, -1, err
		}
	}
	defer l.repR.Close()
	defer l.cfgW.Close()
	p := &Process{Pid: l.cmd.Process.Pid, ctx: ctx, cmd: l.cmd, cfg: cfg, releaseStarter: l.release, after: l.after}
	consoleSock := l.consoleSock
	if consoleSock != nil {
		defer consoleSock.Close()
	}
	cfgW, repR, cmd := l.cfgW, l.repR, l.cmd
	var joinErr error
	for _, dir := range spec.Cgroups {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(p.Pid)), 0); err != nil {
			joinErr = fmt.Errorf("join cgroup %s: %w", dir, err)
			break
		}
	}
	if joinErr == nil && spec.Joined != nil {
		joinErr = spec.Joined(p.Pid)
	}
	if joinErr == nil {
		// A write error means the init died early; Wait tells why.
		p.cInit, _ = writeConfig(cfgW, cfg)
	}
	cfgW.Close()

	var setupErr *sandboxError
	dec := json.NewDecoder(repR)
	for {
		var msg initReport
		if err := dec.Decode(&msg); err != nil {
			break // EOF: the command was exec'd, or the init died
		}
		p.stubs = append(p.stubs, msg.Stubs...)
		if msg.Error != "" {
			setupErr = &sandboxError{Msg: msg.Error, Kind: msg.Kind}
		}
	}
	switch {
	case joinErr != nil:
		_ = cmd.Process.Kill()
		_, werr := p.Wait()
		return nil, -1, errors.Join(joinErr, werr)
	case setupErr != nil:
		_, werr := p.Wait()
		return nil, setupErr.exitCode(), errors.Join(fmt.Errorf("start sandbox: %w", setupErr), werr)
	}
	if consoleSock != nil {
		// Sent before the exec (which closed the report pipe): it is there.
		if p.Pty, err = receiveConsole(consoleSock); err != nil {
			_ = cmd.Process.Kill()
			_, werr := p.Wait()
			return nil, -1, errors.Join(fmt.Errorf("start sandbox: %w", err), werr)
		}
	}
	if spec.Hooks != nil {
		if err := spec.Hooks.run(spec.Hooks.Poststart, specs.StateRunning, p.Pid); err != nil {
			fmt.Fprintln(os.Stderr, "kiln: warning: poststart", err)
		}
	}
	return p, 0, nil
}

// launched is a sandbox init that runs and waits for its config on cfgW.
type launched struct {
	cmd         *exec.Cmd
	cfgW, repR  *os.File
	consoleSock *os.File // with Spec.Terminal: where the init sends the terminal's master
	release     func()   // ends the thread that started the init, once it is reaped
	after       func()   // when not nil, called once it is reaped
}

// launch starts the sandbox init for spec, on the calling thread (locked)
// or, to join spec.NetNS, a thread of its own.
func launch(ctx context.Context, spec *Spec, cfg *initConfig) (*launched, error) {
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	defer cfgR.Close()
	repR, repW, err := os.Pipe()
	if err != nil {
		cfgW.Close()
		return nil, fmt.Errorf("run: %w", err)
	}
	defer repW.Close()
	l := &launched{cfgW: cfgW, repR: repR}
	if err := l.start(ctx, spec, cfg, cfgR, repW); err != nil {
		cfgW.Close()
		repR.Close()
		if l.consoleSock != nil {
			l.consoleSock.Close()
		}
		return nil, err
	}
	return l, nil
}

func (l *launched) start(ctx context.Context, spec *Spec, cfg *initConfig, cfgR, repW *os.File) error {
	cmd, err := initCommand(ctx, cfgR, repW, cfg.NetNone)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if spec.Terminal {
		// The init makes the terminal and sends its master back (consoleFd).
		parent, child, err := consoleSocketPair()
		if err != nil {
			return fmt.Errorf("run: %w", err)
		}
		defer child.Close()
		l.consoleSock = parent
		cmd.ExtraFiles = append(cmd.ExtraFiles, child)
	} else {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = spec.Stdin, spec.Stdout, spec.Stderr
	}
	if spec.Terminal {
		cmd.SysProcAttr.Setsid = true // the init's terminal becomes its controlling one
	}
	release, err := startInNetNS(spec.NetNS, cmd.Start)
	if err != nil {
		return fmt.Errorf("start sandbox: %w", err)
	}
	l.cmd, l.release = cmd, release
	return nil
}

// initCommand is a sandbox init, PID 1 of the sandbox, born in its
// namespaces (cloneFlags) and killed with the thread that starts it: it runs
// from a sealed view of the binary and gets its two pipes (configFd,
// reportFd), nothing else of ours but the stdio the caller gives it.
func initCommand(ctx context.Context, cfgR, repW *os.File, netNone bool) (*exec.Cmd, error) {
	exe, err := SealedExe()
	if err != nil {
		return nil, err
	}
	if err := CloseExtraFilesOnExec(); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Args = []string{initArg0}
	cmd.Env = []string{"GOMAXPROCS=1"}
	cmd.ExtraFiles = []*os.File{cfgR, repW} // configFd, reportFd
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: cloneFlags(netNone), Pdeathsig: syscall.SIGKILL}
	return cmd, nil
}

// Wait waits for the sandbox to exit, removes the mount stubs from Upper and
// returns the command's exit code, as Run does.
func (p *Process) Wait() (exitCode int, err error) {
	defer runtime.UnlockOSThread()
	waitErr := p.cmd.Wait()
	p.releaseStarter()
	if p.after != nil {
		p.after()
	}
	code := -1
	if p.cmd.ProcessState != nil {
		code = processExitCode(p.cmd.ProcessState)
	}
	cleanErr := cleanStubs(p.cfg.Upper, p.stubs)
	if h := p.cfg.Hooks; h != nil {
		if err := h.run(h.Poststop, specs.StateStopped, p.Pid); err != nil {
			fmt.Fprintln(os.Stderr, "kiln: warning: poststop", err)
		}
	}

	var exitErr *exec.ExitError
	switch {
	case p.ctx.Err() != nil && code == 128+int(syscall.SIGKILL):
		return code, errors.Join(fmt.Errorf("run: %w", p.ctx.Err()), cleanErr)
	case waitErr != nil && !errors.As(waitErr, &exitErr):
		return code, errors.Join(fmt.Errorf("wait sandbox: %w", waitErr), cleanErr)
	}
	return code, cleanErr
}

// processExitCode is the exit status, or 128+signal when a signal killed it.
func processExitCode(ps *os.ProcessState) int { return proc.ExitCode(ps) }
