package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/kiln-build/kiln/runner"
)

// execArg0 marks a re-execution as an exec monitor: the parent of one
// `exec` process, which owns its stdio and reaps it.
const execArg0 = "kiln-exec"

// execOptionsEnv passes ExecOptions (JSON) to the exec monitor.
const execOptionsEnv = "KILN_EXEC"

// ExecOptions are what `exec` asks for.
type ExecOptions struct {
	Args        []string
	Env         []string // KEY=VALUE, over the container's environment
	User        string   // default: the container's user
	WorkingDir  string   // default: the container's working directory
	Tty         bool
	Interactive bool // the process gets a stdin, which attached clients feed
	Privileged  bool // every capability, no no_new_privs, even in an unprivileged container
	Rows, Cols  uint16
}

// Exec starts a process in the running container c, as `docker exec`,
// under an exec monitor of its own (so that killing the caller does not
// touch it), and returns once it runs, or failed to (a *StartError: 127
// for a missing executable, 126 for one that cannot be run). With a nil
// attach it is detached: its output goes nowhere, as docker's exec -d.
func (s *Store) Exec(c *Container, o ExecOptions, a *Attach) (*Running, error) {
	if len(o.Args) == 0 {
		return nil, errors.New("exec: no command specified")
	}
	if err := c.Refresh(); err != nil {
		return nil, err
	}
	if !c.State.Running {
		return nil, fmt.Errorf("container %s: %w", c.ShortID(), ErrNotRunning)
	}
	opts, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	return spawnMonitor(c, monitorCmd{
		arg0: execArg0, root: s.root, env: []string{execOptionsEnv + "=" + string(opts)},
		op: "exec", opOn: "exec in",
	}, a)
}

// execMonitor is the exec monitor's main: it starts the process, streams
// its stdio to the attached client and reports its start and exit on the
// status pipe.
func execMonitor(root, id, flags string) error {
	status := os.NewFile(statusFd, "status")
	m := &monitorState{status: status, hub: newHub()}
	defer m.status.Close()
	if strings.Contains(flags, "a") {
		// Added before the process starts: its first output reaches the
		// client that started it, however late the reader gets scheduled.
		go m.hub.serveClient(m.hub.add(inheritedSocket(attachFd, "attach"), strings.Contains(flags, "i")))
	}
	fail := func(code int, err error) error {
		m.hub.exit(code)
		m.send(monitorMsg{Error: err.Error(), ExitCode: ptr(code)})
		return err
	}
	var o ExecOptions
	if err := json.Unmarshal([]byte(os.Getenv(execOptionsEnv)), &o); err != nil {
		return fail(126, fmt.Errorf("exec: bad options: %w", err))
	}
	c, err := NewStore(root).load(id)
	if err != nil {
		return fail(126, err)
	}
	if !c.State.Running {
		return fail(126, fmt.Errorf("container %s: %w", c.ShortID(), ErrNotRunning))
	}
	spec, err := execSpec(c, o)
	if err != nil {
		return fail(126, err)
	}
	var st *stdio
	if !o.Tty {
		if st, err = newStdio(m.hub, nil, false, o.Interactive, true, nil); err != nil {
			return fail(126, err)
		}
		spec.Stdin, spec.Stdout, spec.Stderr = st.stdin, st.stdout, st.stderr
	}
	p, code, err := runner.StartExec(spec)
	if st != nil {
		st.closeChild()
	}
	if err != nil {
		if st != nil {
			st.wait()
		}
		if code < 0 {
			code = 126
		}
		if errors.Is(err, runner.ErrSandboxGone) {
			err = fmt.Errorf("container %s: %w", c.ShortID(), ErrNotRunning)
		}
		return fail(code, err)
	}
	if o.Tty {
		st = &stdio{keep: []*os.File{p.Pty}}
		st.pump(nil, "stdout", p.Pty, m.hub, frameStdout)
		var in *os.File
		if o.Interactive {
			in = p.Pty
		}
		m.hub.setProcess(in, true, p.Pty)
	}
	m.send(monitorMsg{Pid: p.Pid})
	stopShed := shedLater()
	code, werr := p.Wait()
	stopShed()
	if o.Tty {
		// Once the process is gone its terminal only has what is left to
		// read: do not wait long for others that hold it open.
		done := make(chan struct{})
		go func() { st.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(200 * time.Millisecond):
		}
		st.closeAll()
		<-done
	}
	st.wait()
	m.hub.exit(code)
	m.send(monitorMsg{ExitCode: ptr(code)})
	return werr
}

// execSpec is the runner's description of an exec in c: the container's
// environment, user, working directory, capabilities and cgroup, with o's
// overrides.
func execSpec(c *Container, o ExecOptions) (*runner.ExecSpec, error) {
	cc := c.Config.Config
	env := cc.Env
	if !hasEnv(env, "HOSTNAME") {
		env = append([]string{"HOSTNAME=" + cc.Hostname}, env...)
	}
	if cc.Tty || o.Tty {
		if !hasEnv(env, "TERM") && !hasEnv(o.Env, "TERM") {
			env = append(env, "TERM=xterm")
		}
	}
	spec := &runner.ExecSpec{
		Pid: c.State.Pid, PidStart: c.State.PidStart,
		Args: o.Args, Env: mergeEnv(env, o.Env), Cwd: cc.WorkingDir, User: cc.User,
		Cgroups:  runner.OpenCgroup("kiln/" + c.ID).Dirs(),
		Terminal: o.Tty, Rows: o.Rows, Cols: o.Cols,
	}
	if o.User != "" {
		spec.User = o.User
	}
	if o.WorkingDir != "" {
		spec.Cwd = o.WorkingDir
	}
	sec, err := security(c.HostConfig)
	if err != nil {
		return nil, err
	}
	sec.Privileged = sec.Privileged || o.Privileged
	conf, err := sec.Resolve()
	if err != nil {
		return nil, err
	}
	conf.ConfineExec(spec)
	return spec, nil
}
