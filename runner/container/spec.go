package container

import (
	"fmt"
	"path"
	"strings"

	"github.com/kiln-build/kiln/runner"
)

// containerSpec is the runner sandbox for c: its own namespaces with only a
// loopback network, Docker's default confinement (capabilities, seccomp,
// masked /proc paths) unless privileged or changed by --cap-add, --cap-drop
// and --security-opt, its own /etc files, volumes and cgroup.
func containerSpec(c *Container, cgroups []string) (*runner.Spec, error) {
	args := append([]string{c.Path}, c.Args...)
	if c.Path == "" {
		return nil, errNoCommand
	}
	hc := c.HostConfig
	env := c.Config.Config.Env
	if !hasEnv(env, "HOSTNAME") {
		env = append([]string{"HOSTNAME=" + c.Config.Config.Hostname}, env...)
	}
	if c.Config.Config.Tty && !hasEnv(env, "TERM") {
		env = append(env, "TERM=xterm") // as docker
	}
	spec := &runner.Spec{
		Lowers: c.Lowers, Upper: c.upper(), Work: c.work(), Rootfs: c.rootfs(),
		Args: args, Env: env, Cwd: c.Config.Config.WorkingDir, User: c.Config.Config.User,
		Hostname: c.Config.Config.Hostname, Network: "none",
		ReadonlyRootfs: hc.ReadonlyRootfs, Files: c.etcFiles(),
		Cgroups: cgroups, CgroupNS: true, Privileged: hc.Privileged, Init: hc.Init,
		// A container removed once it exits has its upper directory
		// thrown away: nothing syncs it, not even the unmount (which
		// would sync the whole filesystem holding it on the container's
		// exit). The monitor gives it a fresh work directory.
		Volatile: hc.AutoRemove,
	}
	for _, d := range hc.Devices {
		spec.Devices = append(spec.Devices, runner.Device{Source: d.PathOnHost, Target: d.PathInContainer})
	}
	conf, err := c.confinement()
	if err != nil {
		return nil, err
	}
	conf.Confine(spec)
	if !hc.Privileged {
		spec.MaskedPaths, spec.ReadonlyPaths = hc.MaskedPaths, hc.ReadonlyPaths
	}
	asked := map[string]MountSpec{}
	for _, m := range hc.Mounts {
		asked[path.Clean(m.Target)] = m
	}
	for _, mp := range c.Mounts {
		if mp.Type == "volume" && !asked[mp.Destination].NoCopy {
			spec.Populate = append(spec.Populate, mp.Destination)
		}
		m := runner.Mount{Target: mp.Destination}
		switch mp.Type {
		case "bind", "volume":
			propagation := "rprivate"
			if mp.Type == "bind" && mp.Propagation != "" {
				propagation = mp.Propagation
			}
			m.Type, m.Source, m.Options = "rbind", mp.Source, []string{"rbind", propagation}
		case "tmpfs":
			m.Type, m.Source, m.Options = "tmpfs", "tmpfs", tmpfsMountOptions(asked[mp.Destination].TmpfsOptions)
		default:
			return nil, fmt.Errorf("mount %s: unsupported type %q", mp.Destination, mp.Type)
		}
		if !mp.RW {
			m.Options = append(m.Options, "ro")
		}
		spec.ExtraMounts = append(spec.ExtraMounts, m)
	}
	if err := c.applyRunOptions(spec); err != nil {
		return nil, err
	}
	return spec, nil
}

func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			return true
		}
	}
	return false
}

// security is the container's confinement as its HostConfig asks.
func security(hc HostConfig) (runner.Security, error) {
	sec := runner.Security{Privileged: hc.Privileged, CapAdd: hc.CapAdd, CapDrop: hc.CapDrop}
	err := sec.ParseSecurityOpt(hc.SecurityOpt)
	return sec, err
}

// confinement resolves the container's security settings.
func (c *Container) confinement() (*runner.Confinement, error) {
	sec, err := security(c.HostConfig)
	if err != nil {
		return nil, err
	}
	return sec.Resolve()
}
