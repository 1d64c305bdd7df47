package builder

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
	"github.com/kiln-build/kiln/runner"
)

// runStep keys a RUN instruction and takes it through the build cache: on a
// miss, runSandbox runs it.
func (b *build) runStep(ctx context.Context, st *stage, c *instructions.RunCommand) (hit bool, err error) {
	network, insecure := b.opts.Network, false
	for _, f := range c.FlagsUsed {
		switch f {
		case "network":
			if n := instructions.GetNetwork(c); n != NetworkDefault {
				network = n
			}
			if network == NetworkHost && !slices.Contains(b.opts.Allow, EntitlementNetworkHost) {
				return false, fmt.Errorf("RUN --network=host requires the entitlement %s: start the build with --allow %s", EntitlementNetworkHost, EntitlementNetworkHost)
			}
		case "security":
			insecure = instructions.GetSecurity(c) == instructions.SecurityInsecure
			if insecure && !slices.Contains(b.opts.Allow, EntitlementSecurityInsecure) {
				return false, fmt.Errorf("RUN --security=insecure requires the entitlement %s: start the build with --allow %s", EntitlementSecurityInsecure, EntitlementSecurityInsecure)
			}
		case "mount":
			// prepareRunMounts below
		default:
			return false, fmt.Errorf("RUN --%s is not supported yet", f)
		}
	}
	mounts, err := b.prepareRunMounts(ctx, st, c)
	if err != nil {
		return false, err
	}
	defer mounts.release()
	if b.dry {
		return false, nil
	}
	args := b.commandLine(st, c.ShellDependantCmdLine)
	var script *heredocScript
	if len(c.Files) > 0 {
		if args, script, err = b.heredocCommand(st, c); err != nil {
			return false, err
		}
	}
	argEnv := st.argEnv()
	createdBy := "RUN " + strings.Join(args, " ")
	if declared := st.argHistory(); len(declared) > 0 {
		createdBy = fmt.Sprintf("RUN |%d %s %s", len(declared), strings.Join(declared, " "), strings.Join(args, " "))
	}
	createdBy += " # buildkit"

	env := append(append([]string(nil), st.img.Config.Env...), argEnv...)
	inputs := cache.StepInputs{Instruction: createdBy, Args: st.argValues(), Env: env}
	key := stepKey(st.cacheKey, struct {
		Op, User, Workdir, Network string
		Insecure                   bool `json:",omitempty"`
		Args, Env                  []string
		Epoch                      *time.Time
		Mounts                     any                            `json:",omitempty"`
		Heredocs                   []instructions.ShellInlineFile `json:",omitempty"`
		Limits                     *RunLimits                     `json:",omitempty"`
		Hosts                      []string                       `json:",omitempty"`
	}{"RUN", st.img.Config.User, st.img.Config.WorkingDir, network, insecure, args, env, st.epoch, mounts.key, c.Files, b.opts.RunLimits.key(), b.opts.ExtraHosts})
	return b.step(ctx, st, stepSpec{createdBy: createdBy, key: key, inputs: inputs, make: func() (cache.Layer, bool, error) {
		if err := runner.CheckEmulator(st.platform.Architecture); err != nil {
			return cache.Layer{}, false, fmt.Errorf("RUN for %s: %w", cache.FormatPlatform(st.platform), err)
		}
		l, err := b.runSandbox(ctx, st, c, sandboxStep{args: args, env: env, script: script, mounts: mounts, network: network, insecure: insecure})
		return l, err == nil, err
	}})
}

// sandboxStep is what a RUN step runs in its sandbox.
type sandboxStep struct {
	args     []string
	env      []string // the image's ENV and the build args: in the step's key
	script   *heredocScript
	mounts   *runMounts
	network  string
	insecure bool
}

// runSandbox runs a RUN step's command in a sandbox over the stage's layers
// and commits what it changed as a layer.
func (b *build) runSandbox(ctx context.Context, st *stage, c *instructions.RunCommand, s sandboxStep) (cache.Layer, error) {
	if err := s.mounts.acquire(ctx); err != nil {
		return cache.Layer{}, err
	}

	lowers, err := b.lowers(st)
	if err != nil {
		return cache.Layer{}, err
	}
	sn, err := b.store.NewSnapshot()
	if err != nil {
		return cache.Layer{}, err
	}
	extra := s.mounts.mounts
	if s.script != nil {
		m, release, err := s.script.mount(b.store)
		if err != nil {
			sn.Discard()
			return cache.Layer{}, err
		}
		defer release()
		extra = append(append([]runner.Mount(nil), extra...), m)
	}
	spec := &runner.Spec{
		Lowers: lowers,
		Upper:  sn.Dir,
		Work:   sn.Work,
		Rootfs: sn.Mountpoint,
		// The store syncs the snapshot before committing it (in parallel
		// with the diff), so the sandbox's unmount need not sync it first.
		Volatile: true,
		Args:     s.args,
		// Secrets as env and the proxy build args: in no key and no history.
		Env:         append(append(s.env[:len(s.env):len(s.env)], s.mounts.env...), b.proxyEnv(st)...),
		Cwd:         st.img.Config.WorkingDir,
		User:        st.img.Config.User,
		ExtraMounts: extra,
		Stdout:      st.vtx.stream(1),
		Stderr:      st.vtx.stream(2),
	}
	if err := b.confine(ctx, spec, s.network, s.insecure); err != nil {
		sn.Discard()
		return cache.Layer{}, fmt.Errorf("RUN %s: %w", strings.Join(c.CmdLine, " "), err)
	}
	removeHosts, err := b.addHosts(spec)
	if err != nil {
		sn.Discard()
		return cache.Layer{}, fmt.Errorf("RUN %s: %w", strings.Join(c.CmdLine, " "), err)
	}
	defer removeHosts()
	spec.Prestarted = b.sb().takeSpare()
	if spec.Prestarted == nil && spec.NetNS != nil {
		// The first step in the build's network: its init starts while
		// the namespace is being attached to the network.
		b.sb().prestart(spec)
		spec.Prestarted = b.sb().takeSpare()
	}
	code, err := -1, b.sb().networkReady()
	if err == nil {
		if st.runsLeft > 0 {
			// The next RUN step's init starts now: its start-up overlaps
			// with this step's command and commit, where it would
			// otherwise be the longest part of the way from one step's
			// command to the next's. A failed step's build stops it
			// (sandboxes.release).
			b.sb().prestart(spec)
		}
		stopWriteBehind := sn.WriteBehind()
		code, err = runner.Run(ctx, spec)
		stopWriteBehind()
	}
	if cerr := spec.Prestarted.Close(); cerr != nil { // unless Run took it
		b.opts.Log.Warn("stop prestarted sandbox", "err", cerr)
	}
	if err != nil {
		sn.Discard()
		return cache.Layer{}, fmt.Errorf("RUN %s: %w", strings.Join(c.CmdLine, " "), err)
	}
	if code != 0 {
		sn.Discard()
		return cache.Layer{}, fmt.Errorf("RUN %s: process %q did not complete successfully: exit code: %d",
			strings.Join(c.CmdLine, " "), strings.Join(s.args, " "), code)
	}
	// As BuildKit, a directory whose only change is its mtime is no part of the layer.
	if err := layer.PruneUnchangedDirs(ctx, sn.Dir, lowers); err != nil {
		sn.Discard()
		return cache.Layer{}, fmt.Errorf("RUN %s: %w", strings.Join(c.CmdLine, " "), err)
	}
	return b.commitSnapshot(ctx, st, sn)
}
