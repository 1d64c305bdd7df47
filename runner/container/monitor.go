package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kiln-build/kiln/internal/rootless"
	"github.com/kiln-build/kiln/runner"
)

// monitorArg0 marks a re-execution as a container monitor.
const monitorArg0 = rootless.HolderArg0 // a monitor holds the rootless namespaces too

// The monitor's file descriptors (Start's ExtraFiles order).
const (
	statusFd = 3 // monitorMsg JSON lines to the client that started it
	attachFd = 4 // attached: the client's end of the attach protocol (stream.go)
)

// monitorMsg is one message from the monitor to the client that started it:
// first the start (Pid, or Error with ExitCode), then the exit.
type monitorMsg struct {
	Pid      int    `json:",omitempty"`
	Error    string `json:",omitempty"`
	ExitCode *int   `json:",omitempty"`
}

// IsMonitor reports whether this process was re-executed as a container
// monitor (or an exec monitor); main() must then call Monitor before
// anything else.
func IsMonitor() bool {
	return len(os.Args) > 0 && (os.Args[0] == monitorArg0 || os.Args[0] == execArg0)
}

// Monitor runs the container (or the exec) named by the arguments (store
// root, ID, attach flags) until it exits for good, then exits the process.
func Monitor() {
	startupGC()
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, os.Args[0]+": bad arguments")
		os.Exit(2)
	}
	// The sandbox init the constructor started (runner.PrestartEnv), in
	// the network namespace it is the container's.
	pre := runner.AdoptPrestarted()
	var netns *premadeNetns
	if pre != nil {
		netns = initNetns(pre.NetNS())
	}
	run := func(root, id, flags string) error { return monitor(root, id, flags, netns, pre) }
	if os.Args[0] == execArg0 {
		run = execMonitor
	}
	id := os.Args[2]
	if id == standbyID && os.Args[0] == monitorArg0 {
		// While the container is made: what most containers need.
		runner.WarmSeccomp()
		if netns == nil {
			netns = premakeNetns()
		}
		var ok bool
		var err error
		if id, ok, err = awaitContainer(os.Args[1]); !ok {
			if err != nil {
				m := &monitorState{status: os.NewFile(statusFd, "status")}
				m.send(monitorMsg{Error: err.Error(), ExitCode: ptr(125)})
				fmt.Fprintln(os.Stderr, os.Args[0]+":", err)
				os.Exit(1)
			}
			os.Exit(0)
		}
	}
	if err := run(os.Args[1], id, os.Args[3]); err != nil {
		fmt.Fprintln(os.Stderr, os.Args[0]+":", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// monitorProcs is a monitor's GOMAXPROCS: two, so that the network attach
// of the first run (startAttach) runs beside its cgroup, stdio and spec
// set-up on a machine's second core (with one, paired runs of run --rm
// true gained nothing from it; with two, 5%).
const monitorProcs = "GOMAXPROCS=2"

type monitorState struct {
	s      *Store
	c      *Container
	status *os.File
	hub    *hub // attached clients
	logw   *logWriter
	net    netSandbox // network.go
	netns  *premadeNetns
	pre    *runner.Prestarted // for the first run, when it fits (runOnce)
	// attached has the result of the network attach started beside the
	// first run's set-up (nil: none pending; see startAttach).
	attached chan error
	cgroups  []*runner.Cgroup // to remove at the end (runOnce)
}

// monitor runs container id of the store at root; netns, when not nil, is
// a network namespace made ahead for it, pre an init started ahead in it.
func monitor(root, id, flags string, netns *premadeNetns, pre *runner.Prestarted) error {
	s := NewStore(root)
	c, err := s.load(id)
	if err != nil {
		return err
	}
	m := &monitorState{s: s, c: c, status: os.NewFile(statusFd, "status"), hub: newHub(), netns: netns, pre: pre}
	defer func() { _ = m.pre.Close() }() // when no run took it
	if strings.Contains(flags, "a") {
		// The client that started the container, attached from the start.
		// Added before the process starts: its first output reaches the
		// client that started it, however late the reader gets scheduled.
		go m.hub.serveClient(m.hub.add(inheritedSocket(attachFd, "attach"), strings.Contains(flags, "i")))
	}
	if l, err := listenAttach(c.Dir); err == nil {
		defer l.Close()
		go m.serveAttach(l)
	} else {
		fmt.Fprintln(os.Stderr, "kiln-monitor:", err)
	}
	logf, err := os.OpenFile(c.LogPath(), os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC, 0o640)
	if err != nil {
		m.send(monitorMsg{Error: err.Error(), ExitCode: ptr(125)})
		return err
	}
	defer logf.Close()
	m.logw = &logWriter{f: logf}
	start, _ := procStart(os.Getpid())
	c.State.MonitorPid, c.State.MonitorStart = os.Getpid(), start
	netErr := m.setupNetwork()
	m.netns.drop() // when the container did not want it
	if netErr != nil {
		_, _ = m.failed(125, netErr)
	} else {
		m.startAttach()
	}

	backoff := 100 * time.Millisecond
	for netErr == nil {
		code, err := m.runOnce()
		if err != nil || !m.restart(code) {
			break
		}
		steadyGC() // a restarting container's monitor lives on
		c.State.RestartCount++
		c.State.Status, c.State.Restarting = "restarting", true
		_ = c.saveState()
		time.Sleep(backoff)
		backoff = min(backoff*2, 10*time.Second)
		if m.stopping() {
			c.State.Status, c.State.Restarting = "exited", false
			_ = c.saveState()
			break
		}
	}
	finish := func() error { return nil }
	if c.HostConfig.AutoRemove {
		// The container's files go while its network is released: the
		// release does not touch them (ReleaseDying), and both wait for
		// locks and the kernel more than they run.
		m.stopNetwork()
		removed := make(chan error, 1)
		go func() {
			var err error
			finish, err = s.removeFilesLater(c, true)
			removed <- err
		}()
		m.teardownNetwork()
		if err := <-removed; err != nil {
			fmt.Fprintln(os.Stderr, "kiln-monitor:", err)
		}
	} else {
		m.teardownNetwork()
	}
	// The client that waits for the container's removal (run --rm) returns
	// now: what is left is invisible to it and to any command.
	m.status.Close()
	if err := errors.Join(finish(), m.removeCgroups()); err != nil {
		fmt.Fprintln(os.Stderr, "kiln-monitor:", err)
	}
	return nil
}

// removeCgroups removes the cgroups of runs whose removal waited for the
// monitor's end (see runOnce).
func (m *monitorState) removeCgroups() error {
	var errs []error
	for _, cg := range m.cgroups {
		errs = append(errs, cg.Remove())
	}
	m.cgroups = nil
	return errors.Join(errs...)
}

func ptr[T any](v T) *T { return &v }

func (m *monitorState) send(msg monitorMsg) {
	if m.status == nil {
		return
	}
	data, _ := json.Marshal(msg)
	if _, err := m.status.Write(append(data, '\n')); err != nil {
		m.status.Close()
		m.status = nil
	}
}

func (m *monitorState) stopping() bool {
	_, err := os.Stat(filepath.Join(m.c.Dir, "stopping"))
	return err == nil
}

// restart applies the restart policy to an exit with code.
func (m *monitorState) restart(code int) bool {
	if m.stopping() || m.c.HostConfig.AutoRemove {
		return false
	}
	m.reloadHostConfig() // `update` may have changed the policy and limits
	p := m.c.HostConfig.RestartPolicy
	switch p.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return code != 0 && (p.MaximumRetryCount <= 0 || m.c.State.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// runOnce starts the container, records it running, waits for it and
// records its exit. err means it could not start.
func (m *monitorState) runOnce() (int, error) {
	c := m.c
	var pids int64
	if c.HostConfig.PidsLimit != nil {
		pids = *c.HostConfig.PidsLimit
	}
	devices, err := deviceRules(c.HostConfig)
	if err != nil {
		return m.failed(125, err)
	}
	cg, err := runner.NewCgroup("kiln/"+c.ID, runner.Resources{
		Memory: c.HostConfig.Memory, CPUShares: c.HostConfig.CpuShares, NanoCPUs: c.HostConfig.NanoCpus, PidsLimit: pids,
		Devices: devices, MemorySwap: c.HostConfig.MemorySwap, CpusetCpus: c.HostConfig.CpusetCpus,
	})
	if err != nil {
		return m.failed(125, err)
	}
	defer func() {
		if c.HostConfig.AutoRemove {
			// Removed once the client waiting for the container's removal
			// was let go: the sandbox is gone (its PID namespace with its
			// init), and the cgroup's name is the container's own.
			m.cgroups = append(m.cgroups, cg)
			return
		}
		if err := cg.Remove(); err != nil {
			fmt.Fprintln(os.Stderr, "kiln-monitor:", err)
		}
	}()

	// The init started ahead runs the first run when it can: in the
	// container's network namespace (its own), without terminal or stdin.
	pre := m.pre
	m.pre = nil
	cc := c.Config.Config
	if pre != nil && (cc.Tty || cc.OpenStdin || m.net.ns == nil || m.net.ns != pre.NetNS()) {
		_ = pre.Close()
		pre = nil
	}
	st, err := m.stdio(pre)
	if err != nil {
		_ = pre.Close()
		return m.failed(125, err)
	}
	spec, err := containerSpec(c, cg.Dirs())
	if err == nil && spec.Volatile {
		err = freshDir(spec.Work)
	}
	if err != nil {
		_ = pre.Close()
		st.closeAll()
		return m.failed(125, err)
	}
	m.applyNetwork(spec)
	if pre != nil {
		spec.Prestarted = pre // its stdio is st's already
	} else {
		spec.Stdin, spec.Stdout, spec.Stderr, spec.Terminal = st.stdin, st.stdout, st.stderr, c.Config.Config.Tty
	}
	if spec.Terminal {
		spec.Rows, spec.Cols = winsize()
	}
	p, code, err := runner.Start(spec)
	_ = pre.Close() // when Start did not take it: its output then ends
	st.closeChild()
	if err != nil {
		st.wait()
		if code < 0 {
			code = 125
		}
		return m.failed(code, err)
	}
	if p.Pty != nil {
		st.attachPty(m.hub, m.logw, p.Pty, c.Config.Config.OpenStdin, c.Config.Config.StdinOnce)
	}
	pstart, _ := procStart(p.Pid)
	c.State = State{
		Status: "running", Running: true, Pid: p.Pid, StartedAt: time.Now().UTC(),
		PidStart: pstart, MonitorPid: c.State.MonitorPid, MonitorStart: c.State.MonitorStart,
		RestartCount: c.State.RestartCount,
	}
	if err := c.saveState(); err != nil {
		fmt.Fprintln(os.Stderr, "kiln-monitor:", err)
	}
	m.send(monitorMsg{Pid: p.Pid})
	c.logEvent("start", nil)
	health := m.startHealth()
	stopShed := shedLater()
	code, werr := p.Wait()
	stopShed()
	health.finish()
	st.wait()
	if werr != nil {
		fmt.Fprintln(os.Stderr, "kiln-monitor:", werr)
	}
	c.State.Status, c.State.Running, c.State.Pid, c.State.PidStart = "exited", false, 0, 0
	c.State.ExitCode, c.State.OOMKilled, c.State.FinishedAt = code, cg.OOMKilled(), time.Now().UTC()
	if err := c.saveState(); err != nil {
		fmt.Fprintln(os.Stderr, "kiln-monitor:", err)
	}
	if c.State.OOMKilled {
		c.logEvent("oom", nil)
	}
	c.logEvent("die", map[string]string{"exitCode": fmt.Sprint(code)})
	m.hub.exit(code)
	m.send(monitorMsg{ExitCode: ptr(code)})
	return code, nil
}

// failed records a start failure.
func (m *monitorState) failed(code int, err error) (int, error) {
	c := m.c
	c.State.Status, c.State.Running, c.State.Pid = "exited", false, 0
	c.State.ExitCode, c.State.Error, c.State.FinishedAt = code, err.Error(), time.Now().UTC()
	if c.State.StartedAt.IsZero() {
		c.State.StartedAt = c.State.FinishedAt
	}
	_ = c.saveState()
	m.hub.exit(code)
	m.send(monitorMsg{Error: err.Error(), ExitCode: ptr(code)})
	return code, err
}

// freshDir empties dir, an overlay work directory no mount uses: a
// volatile overlay refuses one a volatile mount used before
// (work/incompat/volatile), as after a monitor that died. An empty one
// (a new container's) is left as it is.
func freshDir(dir string) error {
	if d, err := os.Open(dir); err == nil {
		names, _ := d.Readdirnames(1)
		d.Close()
		if len(names) == 0 {
			return nil
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Mkdir(dir, 0o755)
}

var errNoCommand = errors.New("no command specified")
