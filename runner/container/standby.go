package container

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/rootless"
	"github.com/kiln-build/kiln/runner"
	"github.com/kiln-build/kiln/runner/network"
)

// StandbyFlag is how the early standby reads a flag of run (EarlyStandbyFlag).
type StandbyFlag int

const (
	StandbyFlagGo    StandbyFlag = iota // the run is left to Go's standby
	StandbyFlagValue                    // a flag that takes a value
	StandbyFlagBool                     // a boolean flag, skipped
)

// standbyID stands for the container's ID in the arguments of a monitor
// started before its container exists: it reads the ID on its stdin.
const standbyID = "-"

// Standby is a container monitor started before its container: `run`
// starts one first, so that the monitor's own start (exec, the runtime's
// and every package's initialization) overlaps the container's creation,
// then hands it the container with StartStandby. Until then it waits on
// its stdin (a pipe from the caller) and has nothing of the store open; it
// exits without a word when the pipe closes first (the caller failed or
// was killed).
type Standby struct {
	r        *Running
	root     string
	ctl      *os.File // the write end of its stdin
	attached bool
	stdin    bool
	net      string // the network mode it was started for (earlyStandby's)
}

// earlyStandby is the standby monitor that this process's constructor
// started (standby_linux.c) for an attached run without stdin, or nil; the
// caller checks that it fits (store root, network mode) or closes it.
func earlyStandby() *Standby {
	pid, fds, root, net, ok := constructorStandby()
	if !ok {
		return nil
	}
	for _, fd := range fds {
		_ = unix.SetNonblock(fd, true) // pollable, as os.Pipe and socketPair make them
	}
	status := os.NewFile(uintptr(fds[0]), "status")
	r := &Running{status: status, dec: json.NewDecoder(status), conn: os.NewFile(uintptr(fds[1]), "attach")}
	go unix.Wait4(pid, nil, 0, nil) // reap it if we outlive it
	// As NewStandby, for what this process starts later.
	_ = runner.CloseExtraFilesOnExec()
	return &Standby{r: r, root: root, ctl: os.NewFile(uintptr(fds[2]), "standby"), attached: true, net: net}
}

// DropEarlyStandby closes the standby monitor this process's constructor
// started, for a command that will not use it (one NewStandby does not
// serve), and returns once it is gone.
func DropEarlyStandby() { earlyStandby().Close() }

// NewStandby starts a monitor for a container still to be created; with
// attached, the client attaches from the start (stdin with stdin); netMode
// is the container's network mode (HostConfig.NetworkMode) as asked, for
// the sandbox init the monitor starts ahead. Close it when no StartStandby
// follows.
func (s *Store) NewStandby(attached, stdin bool, netMode string) (*Standby, error) {
	if sb := earlyStandby(); sb != nil {
		if sb.root == s.root && attached && !stdin && sb.net == netMode {
			return sb, nil
		}
		sb.Close()
	}
	var a *Attach
	if attached {
		a = &Attach{}
		if stdin {
			a.Stdin = os.Stdin
		}
	}
	r, files, err := newRunning(a)
	if err != nil {
		return nil, fmt.Errorf("start container: %w", err)
	}
	r.attach = nil // the caller's Attach is given at StartStandby
	sb := &Standby{r: r, root: s.root, attached: attached, stdin: stdin}
	exe, err := runner.SealedExe()
	if err == nil {
		err = runner.CloseExtraFilesOnExec()
	}
	var ctlR *os.File
	if err == nil {
		ctlR, sb.ctl, err = os.Pipe()
	}
	if err != nil {
		r.abort(files)
		return nil, fmt.Errorf("start container: %w", err)
	}
	defer ctlR.Close()
	cmd := exec.Command(exe, s.root, standbyID, monitorFlags(a))
	cmd.Args[0] = monitorArg0
	cmd.Env = append(append([]string{monitorProcs}, rootless.Environ()...), prestartEnv(false, stdin, netMode)...)
	cmd.Stdin = ctlR
	if err := r.spawn(cmd, nil, files); err != nil {
		sb.ctl.Close()
		return nil, fmt.Errorf("start container: %w", err)
	}
	return sb, nil
}

// Close sends a Standby that was not used away, and returns once it is
// gone (it leaves nothing behind the command that made it).
func (sb *Standby) Close() {
	if sb == nil || sb.ctl == nil {
		return
	}
	sb.ctl.Close()
	sb.ctl = nil
	_, _ = io.Copy(io.Discard, sb.r.status) // EOF: it exited
	sb.r.abort(nil)
}

// StartStandby starts c as Start does, under sb when sb matches the attach
// (else sb is closed and a monitor started as Start does).
func (s *Store) StartStandby(sb *Standby, c *Container, a *Attach) (*Running, error) {
	if sb == nil || sb.root != s.root || sb.attached != (a != nil) || sb.attached && sb.stdin != (a.Stdin != nil) || a != nil && a.Rows > 0 {
		sb.Close()
		return s.Start(c, a)
	}
	if err := s.startable(c); err != nil {
		sb.Close()
		return nil, err
	}
	r := sb.r
	r.attach = a
	_, err := sb.ctl.WriteString(c.ID + "\n")
	sb.ctl.Close()
	sb.ctl = nil
	if err == nil {
		err = r.awaitStart(filepath.Join(c.Dir, "monitor.log"))
	} else {
		r.abort(nil)
	}
	if err != nil {
		var se *StartError
		if errors.As(err, &se) {
			return nil, err
		}
		return nil, fmt.Errorf("start container %s: %w", c.ShortID(), err)
	}
	return r.of(c), nil
}

// prestartEnv is the environment that makes a container monitor start
// the sandbox init of its first run before its own Go runtime starts
// (runner.PrestartEnv), for a container that can run in it: one with a
// network namespace of its own, no terminal and no stdin, of root's kiln.
func prestartEnv(tty, stdin bool, netMode string) []string {
	if tty || stdin || !ownNetworkNamespace(netMode) || rootless.Active() {
		return nil
	}
	return []string{runner.PrestartEnv + "=1"}
}

// awaitContainer is a standby monitor's wait for its container: the ID on
// stdin, then its monitor.log as stderr and /dev/null as stdin. ok is
// false when the caller closed the pipe without one.
func awaitContainer(root string) (id string, ok bool, err error) {
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil {
		return "", false, nil
	}
	id = strings.TrimSuffix(line, "\n")
	if !validID(id) {
		return "", false, fmt.Errorf("bad container ID %q", id)
	}
	logf, err := os.OpenFile(filepath.Join(NewStore(root).containersDir(), id, "monitor.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return "", false, err
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		logf.Close()
		return "", false, err
	}
	err = errors.Join(unix.Dup3(int(logf.Fd()), 2, 0), unix.Dup3(int(null.Fd()), 0, 0))
	logf.Close()
	null.Close()
	return id, err == nil, err
}

// validID reports whether id is a container ID: 64 lowercase hex digits.
func validID(id string) bool {
	if len(id) != 64 {
		return false
	}
	for _, r := range id {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// premadeNetns is a network namespace a standby monitor makes while it
// waits for its container: most containers have one of their own.
type premadeNetns struct {
	ch   chan *os.File // the namespace, nil when making it failed
	f    *os.File
	done bool // f came from ch
}

func premakeNetns() *premadeNetns {
	p := &premadeNetns{ch: make(chan *os.File, 1)}
	go func() {
		f, _ := network.NewNamespace() // on failure, take makes one and says why
		p.ch <- f
	}()
	return p
}

// initNetns is the network namespace an init started ahead was born in.
func initNetns(f *os.File) *premadeNetns {
	p := &premadeNetns{ch: make(chan *os.File, 1)}
	p.ch <- f
	return p
}

func (p *premadeNetns) get() *os.File {
	if !p.done {
		p.f, p.done = <-p.ch, true
	}
	return p.f
}

// take returns the premade namespace, or a new one when there is none.
func (p *premadeNetns) take() (*os.File, error) {
	if p != nil {
		if f := p.get(); f != nil {
			p.f = nil
			return f, nil
		}
	}
	return network.NewNamespace()
}

// drop closes the premade namespace when nothing took it.
func (p *premadeNetns) drop() {
	if p != nil {
		if f := p.get(); f != nil {
			f.Close()
			p.f = nil
		}
	}
}
