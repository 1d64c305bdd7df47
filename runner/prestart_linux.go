package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
)

// Prestarted is a sandbox init started before the Spec it will run is
// known, so that what every sandbox pays first — the clone into new
// namespaces, the exec of the sealed binary (and, for the Go init, the Go
// runtime's start) — overlaps with the caller's other work (a build
// commits one RUN step's layer while the next step's init starts). Until a
// Run takes it, the init does nothing but wait for its config; it has no
// stdin and its output goes to pipes that Run copies to the taker's Stdout
// and Stderr.
//
// Lifecycle: Prestart (or AdoptPrestarted: an init a container monitor's
// constructor started before Go), then at most one Run with
// Spec.Prestarted set to it (Run uses it when the spec fits, see
// Spec.Prestarted), then Close, always: Close kills and reaps an init no
// Run took and does nothing otherwise.
type Prestarted struct {
	mu      sync.Mutex
	taken   bool
	netNS   *os.File
	netNone bool
	cmd     *exec.Cmd
	cfgW    *os.File
	repR    *os.File
	outR    *os.File
	errR    *os.File
	release func()
	// outTaken: TakeOutput handed outR and errR to the caller.
	outTaken bool
	// adopted: the constructor started the init (AdoptPrestarted).
	adopted bool
}

// Prestart starts a sandbox init for a later Run of a Spec whose network is
// netNS (Spec.NetNS), or a new namespace with only loopback when netNone
// (Spec.Network "none" without NetNS), or else the host's.
func Prestart(netNS *os.File, netNone bool) (*Prestarted, error) {
	var err error
	var files []*os.File // the child's ends, closed on return: it has its copies
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	p := &Prestarted{netNS: netNS, netNone: netNone}
	var ends [4][2]*os.File
	for i := range ends {
		if ends[i][0], ends[i][1], err = os.Pipe(); err != nil {
			break
		}
	}
	// config: the child reads; report, stdout, stderr: the child writes
	p.cfgW, p.repR, p.outR, p.errR = ends[0][1], ends[1][0], ends[2][0], ends[3][0]
	cfgR, repW, outW, errW := ends[0][0], ends[1][1], ends[2][1], ends[3][1]
	for _, f := range []*os.File{cfgR, repW, outW, errW} {
		if f != nil {
			files = append(files, f)
		}
	}
	if err != nil {
		p.closePipes()
		return nil, fmt.Errorf("prestart sandbox: %w", err)
	}
	// As start's, but the parent's end of each pipe stays ours (cfgW and
	// repR are close-on-exec: os.Pipe makes them so).
	if p.cmd, err = initCommand(context.Background(), cfgR, repW, netNone); err != nil {
		p.closePipes()
		return nil, fmt.Errorf("prestart sandbox: %w", err)
	}
	p.cmd.Stdout, p.cmd.Stderr = outW, errW
	// Pdeathsig fires when the thread that forked the init exits: it is a
	// thread of its own, which lasts until the init is reaped.
	if p.release, err = startOnOwnThread(netNS, p.cmd.Start); err != nil {
		p.closePipes()
		return nil, fmt.Errorf("prestart sandbox: %w", err)
	}
	return p, nil
}

// PrestartEnv, "1" in the environment of a process executed as a
// container monitor (rootless.HolderArg0), makes the constructor of
// prestart_linux.c start a sandbox init before the monitor's Go runtime
// starts, for AdoptPrestarted: an init in a new network namespace of its
// own (lo up), with /dev/null as its stdin. Only root's monitors (not
// rootless ones) are given it.
const PrestartEnv = "_KILN_PRESTART_INIT"

// AdoptPrestarted returns the init the constructor started (see
// PrestartEnv), or nil when it started none. A Run takes it only for a Spec
// whose NetNS is the init's own namespace (NetNS) and that has neither a
// Terminal nor a Stdin; the Prestarted lifecycle holds as for Prestart. It
// is nil too (and the init is killed) when this process does not run from
// a sealed view of the binary, which the init then would not either.
func AdoptPrestarted() *Prestarted {
	pid, fds, ok := constructorInit()
	if !ok {
		return nil
	}
	p := &Prestarted{release: func() {}, adopted: true}
	p.cfgW, p.repR = os.NewFile(uintptr(fds[0]), "config"), os.NewFile(uintptr(fds[1]), "report")
	p.outR, p.errR = os.NewFile(uintptr(fds[2]), "stdout"), os.NewFile(uintptr(fds[3]), "stderr")
	proc, err := os.FindProcess(pid)
	if err != nil {
		// Not reachable on Linux (FindProcess always succeeds); the
		// init ends when its config pipe closes.
		p.closePipes()
		return nil
	}
	p.cmd = &exec.Cmd{Path: "/proc/self/exe", Args: []string{initArg0}, Process: proc}
	exe, err := SealedExe()
	if err == nil && exe == "/proc/self/exe" {
		p.netNS, err = os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	} else if err == nil {
		err = errors.New("not run from the sealed binary")
	}
	if err != nil {
		_ = p.Close()
		return nil
	}
	return p
}

// NetNS is the network namespace a Spec must name (Spec.NetNS) to take an
// adopted init (AdoptPrestarted): the init's own, lo up; the caller owns
// the file. Nil for an init of Prestart.
func (p *Prestarted) NetNS() *os.File {
	if p == nil || !p.adopted {
		return nil
	}
	return p.netNS
}

// TakeOutput hands the init's stdout and stderr pipes to the caller, who
// reads them (to EOF: every process of the sandbox gone) and closes them;
// a Run that takes p then leaves them alone, whatever Spec.Stdout and
// Spec.Stderr say.
func (p *Prestarted) TakeOutput() (stdout, stderr *os.File) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.outTaken = true
	return p.outR, p.errR
}

// cloneFlags are the namespaces a sandbox init is born in.
func cloneFlags(netNone bool) uintptr {
	flags := uintptr(syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC)
	if netNone {
		flags |= syscall.CLONE_NEWNET
	}
	return flags
}

// take hands the init to start for spec, whose config is cfg; false when
// the init cannot run spec (another network, a terminal or stdin) or was
// taken already. The output copies end before the returned wait returns.
func (p *Prestarted) take(ctx context.Context, spec *Spec, cfg *initConfig) (l *launched, ok bool) {
	if p == nil {
		return nil, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.taken || p.netNS != spec.NetNS || p.netNone != cfg.NetNone || spec.Terminal || spec.Stdin != nil {
		return nil, false
	}
	p.taken = true
	var copies sync.WaitGroup
	for _, c := range []struct {
		r *os.File
		w io.Writer
	}{{p.outR, spec.Stdout}, {p.errR, spec.Stderr}} {
		if p.outTaken {
			break
		}
		w := c.w
		if w == nil {
			w = io.Discard
		}
		copies.Add(1)
		go func() {
			defer copies.Done()
			_, _ = io.Copy(w, c.r) // to EOF: every process of the sandbox is gone
			c.r.Close()
		}()
	}
	stop := context.AfterFunc(ctx, func() { _ = p.cmd.Process.Kill() })
	return &launched{cmd: p.cmd, cfgW: p.cfgW, repR: p.repR, release: p.release, after: func() {
		stop()
		copies.Wait()
	}}, true
}

// Close kills and reaps the init unless a Run took it.
func (p *Prestarted) Close() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.taken {
		return nil
	}
	p.taken = true
	_ = p.cmd.Process.Kill()
	err := p.cmd.Wait()
	p.release()
	p.closePipes()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return fmt.Errorf("stop prestarted sandbox: %w", err)
	}
	return nil
}

func (p *Prestarted) closePipes() {
	files := []*os.File{p.cfgW, p.repR, p.outR, p.errR}
	if p.outTaken {
		files = files[:2] // the caller's now
	}
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}
