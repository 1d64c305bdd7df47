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

// runStep executes a RUN instruction in a sandbox over the stage's layers and
// commits what it changed as a new layer.
func (b *build) runStep(ctx context.Context, st *stage, c *instructions.RunCommand) error {
	network, insecure := b.opts.Network, false
	for _, f := range c.FlagsUsed {
		switch f {
		case "network":
			if n := instructions.GetNetwork(c); n != NetworkDefault {
				network = n
			}
			if network == NetworkHost && !slices.Contains(b.opts.Allow, EntitlementNetworkHost) {
				return fmt.Errorf("RUN --network=host requires the entitlement %s: start the build with --allow %s", EntitlementNetworkHost, EntitlementNetworkHost)
			}
		case "security":
			insecure = instructions.GetSecurity(c) == instructions.SecurityInsecure
			if insecure && !slices.Contains(b.opts.Allow, EntitlementSecurityInsecure) {
				return fmt.Errorf("RUN --security=insecure requires the entitlement %s: start the build with --allow %s", EntitlementSecurityInsecure, EntitlementSecurityInsecure)
			}
		case "mount":
			// prepareRunMounts below
		default:
			return fmt.Errorf("RUN --%s is not supported yet", f)
		}
	}
	mounts, err := b.prepareRunMounts(ctx, st, c)
	if err != nil {
		return err
	}
	defer mounts.release()
	if b.dry {
		return nil
	}
	args := b.commandLine(st, c.ShellDependantCmdLine)
	var script *heredocScript
	if len(c.Files) > 0 {
		if args, script, err = b.heredocCommand(st, c); err != nil {
			return err
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
	}{"RUN", st.img.Config.User, st.img.Config.WorkingDir, network, insecure, args, env, st.epoch, mounts.key, c.Files})
	if rec, ok := b.lookup(ctx, st, key); ok {
		st.applyRecord(rec, createdBy)
		return errCached
	}
	b.explainMiss(st, inputs, nil)
	if err := mounts.acquire(ctx); err != nil {
		return err
	}

	lowers, err := b.lowers(st)
	if err != nil {
		return err
	}
	sn, err := b.store.NewSnapshot()
	if err != nil {
		return err
	}
	extra := mounts.mounts
	if script != nil {
		m, release, err := script.mount(b.store)
		if err != nil {
			sn.Discard()
			return err
		}
		defer release()
		extra = append(append([]runner.Mount(nil), extra...), m)
	}
	spec := &runner.Spec{
		Lowers: lowers,
		Upper:  sn.Dir,
		Work:   sn.Work,
		Rootfs: sn.Mountpoint,
		Args:   args,
		// Secrets as env and the proxy build args: in no key and no history.
		Env:         append(append(env[:len(env):len(env)], mounts.env...), b.proxyEnv(st)...),
		Cwd:         st.img.Config.WorkingDir,
		User:        st.img.Config.User,
		ExtraMounts: extra,
		Stdout:      b.opts.Progress,
		Stderr:      b.opts.Progress,
	}
	if err := b.confine(ctx, spec, network, insecure); err != nil {
		sn.Discard()
		return fmt.Errorf("RUN %s: %w", strings.Join(c.CmdLine, " "), err)
	}
	code, err := runner.Run(ctx, spec)
	if err != nil {
		sn.Discard()
		return fmt.Errorf("RUN %s: %w", strings.Join(c.CmdLine, " "), err)
	}
	if code != 0 {
		sn.Discard()
		return fmt.Errorf("RUN %s: process %q did not complete successfully: exit code: %d",
			strings.Join(c.CmdLine, " "), strings.Join(args, " "), code)
	}
	// As BuildKit, a directory whose only change is its mtime is no part of the layer.
	if err := layer.PruneUnchangedDirs(ctx, sn.Dir, lowers); err != nil {
		sn.Discard()
		return fmt.Errorf("RUN %s: %w", strings.Join(c.CmdLine, " "), err)
	}
	l, err := b.commitSnapshot(ctx, st, sn)
	if err != nil {
		return err
	}
	now := time.Now()
	b.record(st, key, l.DiffID, now, inputs)
	st.addLayer(l.DiffID, createdBy, now)
	return nil
}

// commitSnapshot turns a step's upper directory into a layer, its times
// clamped to SOURCE_DATE_EPOCH first when that is set.
func (b *build) commitSnapshot(ctx context.Context, st *stage, sn *cache.Snapshot) (cache.Layer, error) {
	if st.epoch != nil {
		if err := layer.ClampTimes(ctx, sn.Dir, *st.epoch); err != nil {
			sn.Discard()
			return cache.Layer{}, err
		}
	}
	return b.store.CommitDiff(ctx, sn)
}

// changeLayer gives fn the stage's filesystem with a fresh writable layer on
// top, then commits what fn changed as a layer. When fn reports that it
// changed nothing, no layer is made and ok is false.
func (b *build) changeLayer(ctx context.Context, st *stage, fn func(r *rootfs) (bool, error)) (l cache.Layer, ok bool, err error) {
	lowers, err := b.lowers(st)
	if err != nil {
		return l, false, err
	}
	sn, err := b.store.NewSnapshot()
	if err != nil {
		return l, false, err
	}
	dir := sn.Dir
	if len(lowers) > 0 {
		// The build process runs in its own mount namespace (see
		// runner.EnterMountNamespace): this mount vanishes with it.
		if err := runner.MountOverlay(runner.OverlayMount(sn.Mountpoint, lowers, sn.Dir, sn.Work)); err != nil {
			sn.Discard()
			return l, false, err
		}
		dir = sn.Mountpoint
	}
	r, err := openRootfs(dir)
	if err == nil {
		ok, err = fn(r)
		r.Close()
	}
	if len(lowers) > 0 {
		if uerr := runner.Unmount(sn.Mountpoint); uerr != nil && err == nil {
			err = uerr
		}
	}
	if err != nil || !ok {
		sn.Discard()
		return l, false, err
	}
	l, err = b.commitSnapshot(ctx, st, sn)
	return l, err == nil, err
}

// workdir sets the working directory and creates it, owned by the current
// USER as BuildKit does, when the image lacks it.
func (b *build) workdir(ctx context.Context, st *stage, c *instructions.WorkdirCommand) error {
	dir := resolveWorkdir(st.img.Config.WorkingDir, c.Path)
	st.img.Config.WorkingDir = dir
	if b.dry {
		return nil
	}
	createdBy := "WORKDIR " + dir
	key := stepKey(st.cacheKey, struct {
		Op, Dir, User string
		Epoch         *time.Time
	}{"WORKDIR", dir, st.img.Config.User, st.epoch})
	if rec, ok := b.lookup(ctx, st, key); ok {
		st.applyRecord(rec, createdBy)
		return errCached
	}
	inputs := cache.StepInputs{Instruction: createdBy}
	b.explainMiss(st, inputs, nil)
	// As BuildKit, WORKDIR makes a layer — without files when the
	// directory exists — except for "/".
	l, created, err := b.changeLayer(ctx, st, func(r *rootfs) (bool, error) {
		if dir == "/" {
			return false, nil
		}
		owner := ids{}
		if u := st.img.Config.User; u != "" {
			var err error
			if owner, err = resolveUserGroup(u, r.Open); err != nil {
				return false, err
			}
		}
		_, err := r.MkdirAll(dir, 0o755, owner)
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("WORKDIR %s: %w", c.Path, err)
	}
	now := time.Now()
	if created {
		b.record(st, key, l.DiffID, now, inputs)
		st.addLayer(l.DiffID, createdBy, now)
	} else {
		b.record(st, key, "", now, inputs)
		st.addHistory(createdBy, true)
	}
	return nil
}
