package main

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/runner/container"
)

// createFlags are the flags `create` and `run` share.
type createFlags struct {
	name, user, workdir, hostname, entrypoint, memory, restart, stopSignal, network string
	env, envFiles, volumes, mounts, capAdd, capDrop, labels                         []string
	interactive, tty, rm, privileged, readOnly                                      bool
	cpus                                                                            float64
	cpuShares, pidsLimit                                                            int64
	stopTimeout                                                                     int
	iso                                                                             isolationFlags
	detach                                                                          bool
	net                                                                             netFlags // runnet.go
	pull                                                                            string
	reg                                                                             registryFlags
	rt                                                                              runFlags  // runflags.go
	live                                                                            liveFlags // run_live.go
	platform                                                                        string    // platform.go
}

func (f *createFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.pull, "pull", "missing", `pull the image before creating the container ("always", "missing", "never")`)
	fs.StringVar(&f.platform, "platform", "", "the platform of the image to run, os/arch[/variant] (default: this machine's)")
	fs.BoolVar(&f.reg.tlsVerify, "tls-verify", true, "require HTTPS and verify certificates when pulling")
	fs.StringVar(&f.name, "name", "", "assign a name to the container")
	fs.StringVarP(&f.user, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fs.Bool("help", false, "print usage") // -h is --hostname, as in docker
	fs.StringVarP(&f.hostname, "hostname", "h", "", "container host name")
	fs.StringVar(&f.entrypoint, "entrypoint", "", "overwrite the default ENTRYPOINT of the image")
	fs.StringVarP(&f.memory, "memory", "m", "", "memory limit")
	fs.StringVar(&f.restart, "restart", "no", "restart policy: no, on-failure[:max-retries], always, unless-stopped")
	fs.StringVar(&f.stopSignal, "stop-signal", "", "signal to stop the container")
	fs.IntVar(&f.stopTimeout, "stop-timeout", -1, "timeout (in seconds) to stop a container")
	fs.StringVar(&f.network, "network", "bridge", "connect a container to a network: bridge, host, none, container:NAME|ID or a network's name")
	fs.StringVar(&f.network, "net", "bridge", "connect a container to a network")
	_ = fs.MarkHidden("net")
	f.net.register(fs)
	fs.StringArrayVarP(&f.env, "env", "e", nil, "set environment variables")
	fs.StringArrayVar(&f.envFiles, "env-file", nil, "read in a file of environment variables")
	fs.StringArrayVarP(&f.volumes, "volume", "v", nil, "bind mount a volume")
	fs.StringArrayVar(&f.mounts, "mount", nil, "attach a filesystem mount to the container")
	fs.StringArrayVar(&f.capAdd, "cap-add", nil, "add Linux capabilities")
	fs.StringArrayVar(&f.capDrop, "cap-drop", nil, "drop Linux capabilities")
	fs.StringArrayVarP(&f.labels, "label", "l", nil, "set meta data on a container")
	fs.BoolVarP(&f.interactive, "interactive", "i", false, "keep STDIN open even if not attached")
	fs.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-TTY")
	fs.BoolVar(&f.rm, "rm", false, "automatically remove the container when it exits")
	fs.BoolVar(&f.privileged, "privileged", false, "give extended privileges to this container")
	fs.BoolVar(&f.readOnly, "read-only", false, "mount the container's root filesystem as read only")
	fs.Float64Var(&f.cpus, "cpus", 0, "number of CPUs")
	fs.Int64VarP(&f.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.Int64Var(&f.pidsLimit, "pids-limit", 0, "tune container pids limit (-1 for unlimited)")
	f.iso.register(fs)
	f.rt.register(fs)
	f.live.register(fs)
}

// create makes a container from the flags, the image ref and the command.
func (f *createFlags) create(cmd *cobra.Command, g *globals, ref string, args []string) (*container.Store, *container.Container, error) {
	o := container.CreateOptions{
		Name: f.name, ImageName: ref, Cmd: args, WorkingDir: f.workdir, User: f.user, Hostname: f.hostname,
		Tty: f.tty, OpenStdin: f.interactive, StopSignal: f.stopSignal, Detach: f.detach,
	}
	if cmd.Flags().Changed("entrypoint") {
		o.EntrypointSet = true
		if f.entrypoint != "" {
			o.Entrypoint = []string{f.entrypoint}
		}
	}
	if f.stopTimeout >= 0 {
		o.StopTimeout = &f.stopTimeout
	}
	env, err := readEnv(f.envFiles, f.env)
	if err != nil {
		return nil, nil, err
	}
	o.Env = env
	if len(f.labels) > 0 {
		o.Labels = map[string]string{}
		for _, l := range f.labels {
			k, v, _ := strings.Cut(l, "=")
			o.Labels[k] = v
		}
	}
	if err := f.rt.apply(&o, f.detach); err != nil {
		return nil, nil, err
	}
	hc := &o.HostConfig
	hc.AutoRemove, hc.Privileged, hc.ReadonlyRootfs = f.rm, f.privileged, f.readOnly
	hc.CapAdd, hc.CapDrop, hc.CpuShares = f.capAdd, f.capDrop, f.cpuShares
	if err := f.iso.apply(hc); err != nil {
		return nil, nil, err
	}
	if err := f.net.apply(g, f.network, &o); err != nil {
		return nil, nil, err
	}
	if f.memory != "" {
		if hc.Memory, err = container.ParseBytes(f.memory); err != nil {
			return nil, nil, fmt.Errorf("invalid argument %q for \"-m, --memory\" flag: %w", f.memory, err)
		}
		if hc.Memory < 6<<20 {
			return nil, nil, errors.New("minimum memory limit allowed is 6MB")
		}
	}
	if f.cpus != 0 {
		if f.cpus < 0 || math.IsNaN(f.cpus) || math.IsInf(f.cpus, 0) {
			return nil, nil, fmt.Errorf("invalid argument %v for \"--cpus\" flag", f.cpus)
		}
		hc.NanoCpus = int64(f.cpus * 1e9)
	}
	if cmd.Flags().Changed("pids-limit") {
		hc.PidsLimit = &f.pidsLimit
	}
	if hc.RestartPolicy, err = container.ParseRestartPolicy(f.restart); err != nil {
		return nil, nil, err
	}
	if f.rm && hc.RestartPolicy.Name != "no" {
		return nil, nil, errors.New("conflicting options: cannot specify both --restart and --rm")
	}
	for _, v := range f.volumes {
		m, err := container.ParseVolumeFlag(v)
		if err != nil {
			return nil, nil, err
		}
		hc.Mounts = append(hc.Mounts, m)
	}
	for _, v := range f.mounts {
		m, err := container.ParseMountFlag(v)
		if err != nil {
			return nil, nil, err
		}
		hc.Mounts = append(hc.Mounts, m)
	}

	s, err := cache.Open(g.root)
	if err != nil {
		return nil, nil, err
	}
	defer s.Close()
	policy, err := builder.ParsePullPolicy(f.pull)
	if err != nil {
		return nil, nil, fmt.Errorf("--pull: %w", err)
	}
	f.reg.g = g
	id, err := resolveImage(cmd.Context(), s, ref, policy, f.reg.platformOptions(f.platform), cmd.ErrOrStderr())
	if err != nil {
		return nil, nil, err
	}
	img, raw, err := s.Image(id)
	if err != nil {
		return nil, nil, err
	}
	if err := f.live.apply(cmd, &o, raw); err != nil {
		return nil, nil, err
	}
	o.Image, o.ImageConfig, o.Layers = id, img.Config, img.RootFS.DiffIDs
	if o.Lowers, err = s.Lowers(o.Layers); err != nil {
		return nil, nil, err
	}
	cfg, err := container.NewConfig(o)
	if err != nil {
		return nil, nil, err
	}
	cs := container.NewStore(s.Root())
	c, err := cs.Create(cfg)
	if err != nil {
		return nil, nil, err
	}
	if err := f.net.created(c); err != nil {
		_ = cs.Remove(c, true, true)
		return nil, nil, err
	}
	if err := f.rt.created(c.ID); err != nil {
		_ = cs.Remove(c, true, true)
		return nil, nil, err
	}
	return cs, c, nil
}

// readEnv reads --env-file files then -e flags; "KEY" alone takes the value
// from kiln's own environment (and is dropped when unset), as docker does.
func readEnv(files, flags []string) ([]string, error) {
	var out []string
	add := func(kv string) {
		if !strings.Contains(kv, "=") {
			if v, ok := os.LookupEnv(kv); ok {
				kv += "=" + v
			} else {
				return
			}
		}
		out = append(out, kv)
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("read env file: %w", err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimLeft(sc.Text(), " \t")
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			add(line)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read env file %s: %w", name, err)
		}
	}
	for _, kv := range flags {
		add(kv)
	}
	return out, nil
}

func newCreateCommand(g *globals) *cobra.Command {
	f := &createFlags{}
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, c, err := f.create(cmd, g, args[0], args[1:])
			if err != nil {
				return exitWith(125, err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), c.ID)
			return nil
		},
	}
	cmd.Flags().SetInterspersed(false)
	f.register(cmd.Flags())
	return cmd
}

func newRunCommand(g *globals) *cobra.Command {
	f := &createFlags{}
	var detach bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.tty && f.interactive && !detach && !isTerminal(os.Stdin) {
				return errNotATerminal // before anything is created, as docker
			}
			f.detach = detach
			// The container's monitor starts now, its own start-up beside
			// the container's creation; it waits for the container.
			var sb *container.Standby
			if !f.tty {
				sb, _ = container.NewStore(storeRoot(g)).NewStandby(!detach, f.interactive, f.network)
				defer sb.Close()
			} else {
				container.DropEarlyStandby()
			}
			cs, c, err := f.create(cmd, g, args[0], args[1:])
			if err != nil {
				return exitWith(125, err)
			}
			if detach {
				r, err := cs.StartStandby(sb, c, nil)
				if err != nil {
					return startFailed(err)
				}
				r.Close()
				fmt.Fprintln(cmd.OutOrStdout(), c.ID)
				return nil
			}
			return runAttached(cs, c, sb, f.interactive, f.tty, detachKeys)
		},
	}
	cmd.Flags().SetInterspersed(false)
	f.register(cmd.Flags())
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "run container in background and print container ID")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "override the key sequence for detaching a container")
	return cmd
}

// startFailed reports a container that did not start with docker's exit
// codes: 127 and 126 from the command, 125 for anything else.
func startFailed(err error) error {
	var se *container.StartError
	if errors.As(err, &se) {
		return exitWith(se.ExitCode, err)
	}
	return exitWith(125, err)
}

// exitWith prints err and makes kiln exit with code.
func exitWith(code int, err error) error {
	fmt.Fprintln(os.Stderr, "kiln:", err)
	return exitError(code)
}

func newStartCommand(g *globals) *cobra.Command {
	var attach, interactive bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs := container.NewStore(storeRoot(g))
			if attach || interactive {
				if len(args) > 1 {
					return errors.New("you cannot start and attach multiple containers at once")
				}
				c, err := cs.Get(args[0])
				if err != nil {
					return err
				}
				return runAttached(cs, c, nil, interactive, c.Config.Config.Tty, detachKeys)
			}
			if len(args) == 1 {
				c, err := cs.Get(args[0])
				if err != nil {
					return err
				}
				r, err := cs.Start(c, nil)
				if err != nil {
					return startFailed(err)
				}
				r.Close()
				fmt.Fprintln(cmd.OutOrStdout(), args[0])
				return nil
			}
			var failed error
			for _, a := range args {
				c, err := cs.Get(a)
				if err == nil {
					var r *container.Running
					if r, err = cs.Start(c, nil); err == nil {
						r.Close()
						fmt.Fprintln(cmd.OutOrStdout(), a)
						continue
					}
				}
				fmt.Fprintln(cmd.ErrOrStderr(), "Error:", err)
				failed = errors.New("failed to start containers: " + a)
			}
			return failed
		},
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "attach STDOUT/STDERR and forward signals")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "attach container's STDIN")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "override the key sequence for detaching a container")
	return cmd
}
