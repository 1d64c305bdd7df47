package main

import (
	"errors"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/runner/container"
)

// errNotATerminal is docker's answer to -it with a stdin that is no terminal.
var errNotATerminal = errors.New("the input device is not a TTY")

// clientSide is kiln's end of an attached process: its stdio, and with a
// TTY the terminal in raw mode, its size and changes, the detach keys.
type clientSide struct {
	attach  *container.Attach
	restore func()
}

// newClientSide prepares kiln's stdio for a process with (tty) or without a
// terminal, with or without stdin. detachKeys only apply with both.
func newClientSide(tty, stdin bool, detachKeys string) (*clientSide, error) {
	a := &container.Attach{Stdout: os.Stdout, Stderr: os.Stderr}
	cs := &clientSide{attach: a, restore: func() {}}
	if stdin {
		a.Stdin = os.Stdin
	}
	if !tty {
		return cs, nil
	}
	if stdin && !isTerminal(os.Stdin) {
		return nil, errNotATerminal
	}
	keys, err := container.ParseDetachKeys(detachKeys)
	if err != nil {
		return nil, err
	}
	if stdin {
		a.DetachKeys = keys
	}
	size := func() (uint16, uint16, bool) {
		if r, c, ok := termSize(os.Stdout); ok {
			return r, c, ok
		}
		return termSize(os.Stdin)
	}
	a.Rows, a.Cols, _ = size()
	resize := make(chan [2]uint16, 1)
	a.Resize = resize
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	go func() {
		for range winch {
			if r, c, ok := size(); ok {
				select { // only the latest size matters
				case <-resize:
				default:
				}
				resize <- [2]uint16{r, c}
			}
		}
	}()
	restoreTerm := func() {}
	if stdin {
		if restore, err := makeRaw(os.Stdin); err == nil {
			restoreTerm = restore
		}
	}
	cs.restore = func() {
		signal.Stop(winch)
		restoreTerm()
	}
	return cs, nil
}

// proxySignals forwards the signals a user sends kiln to the container, as
// docker's --sig-proxy (only without a TTY: there the terminal delivers
// them). The returned func stops it.
func proxySignals(c *container.Container) func() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		for s := range sigs {
			_ = c.Kill(strconv.Itoa(int(s.(syscall.Signal))))
		}
	}()
	return func() { signal.Stop(sigs) }
}

// runAttached starts c with kiln's stdio attached and exits with its exit
// code; the detach keys leave it running (and kiln exits 0, as docker run).
func runAttached(cs *container.Store, c *container.Container, sb *container.Standby, interactive, tty bool, detachKeys string) error {
	client, err := newClientSide(tty, interactive, detachKeys)
	if err != nil {
		return exitWith(125, err)
	}
	defer client.restore()
	attachStreams(client.attach, c.Config.Config)
	if !tty {
		defer proxySignals(c)()
	}
	r, err := cs.StartStandby(sb, c, client.attach)
	if err != nil {
		client.restore()
		return startFailed(err)
	}
	code, err := r.Wait()
	client.restore()
	if errors.Is(err, container.ErrDetached) {
		return nil
	}
	if err != nil && code < 0 {
		return err
	}
	if code != 0 {
		return exitError(code)
	}
	return nil
}

func newAttachCommand(g *globals) *cobra.Command {
	var noStdin bool
	var sigProxy bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := container.NewStore(storeRoot(g)).Get(args[0])
			if err != nil {
				return err
			}
			if err := c.Refresh(); err != nil {
				return err
			}
			if !c.State.Running {
				return errors.New("you cannot attach to a stopped container, start it first")
			}
			cc := c.Config.Config
			client, err := newClientSide(cc.Tty, cc.OpenStdin && !noStdin, detachKeys)
			if err != nil {
				return err
			}
			defer client.restore()
			if !cc.Tty && sigProxy {
				defer proxySignals(c)()
			}
			code, err := c.Attach(client.attach)
			client.restore()
			if err != nil {
				return err // with the detach keys: "read escape sequence", exit 1, as docker
			}
			if code != 0 {
				return exitError(code)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "do not attach STDIN")
	cmd.Flags().BoolVar(&sigProxy, "sig-proxy", true, "proxy all received signals to the process")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "override the key sequence for detaching a container")
	return cmd
}

func newExecCommand(g *globals) *cobra.Command {
	var (
		detach, interactive, tty, privileged bool
		env, envFiles                        []string
		user, workdir, detachKeys            string
	)
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs := container.NewStore(storeRoot(g))
			c, err := cs.Get(args[0])
			if err != nil {
				return err
			}
			envs, err := readEnv(envFiles, env)
			if err != nil {
				return err
			}
			o := container.ExecOptions{
				Args: args[1:], Env: envs, User: user, WorkingDir: workdir,
				Tty: tty, Interactive: interactive, Privileged: privileged,
			}
			if detach {
				r, err := cs.Exec(c, o, nil)
				if err != nil {
					return execFailed(err)
				}
				return r.Close()
			}
			client, err := newClientSide(tty, interactive, detachKeys)
			if err != nil {
				return err
			}
			defer client.restore()
			o.Rows, o.Cols = client.attach.Rows, client.attach.Cols
			r, err := cs.Exec(c, o, client.attach)
			if err != nil {
				client.restore()
				return execFailed(err)
			}
			code, err := r.Wait()
			client.restore()
			if err != nil && code < 0 {
				return err
			}
			if code != 0 {
				return exitError(code)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.BoolVarP(&detach, "detach", "d", false, "detached mode: run command in the background")
	f.BoolVarP(&interactive, "interactive", "i", false, "keep STDIN open even if not attached")
	f.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-TTY")
	f.BoolVar(&privileged, "privileged", false, "give extended privileges to the command")
	f.StringArrayVarP(&env, "env", "e", nil, "set environment variables")
	f.StringArrayVar(&envFiles, "env-file", nil, "read in a file of environment variables")
	f.StringVarP(&user, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	f.StringVarP(&workdir, "workdir", "w", "", "working directory inside the container")
	f.StringVar(&detachKeys, "detach-keys", "", "override the key sequence for detaching a container")
	return cmd
}

// execFailed reports an exec that did not start: the command's 126 or 127,
// or 1 when the container is not there to run it, as docker's.
func execFailed(err error) error {
	var se *container.StartError
	if errors.As(err, &se) {
		return exitWith(se.ExitCode, err)
	}
	return exitWith(1, err)
}
