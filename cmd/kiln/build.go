package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
	"github.com/kiln-build/kiln/progress"
	"github.com/kiln-build/kiln/runner"
)

func newBuildCommand(g *globals) *cobra.Command {
	var (
		tags        []string
		file        string
		buildArgs   []string
		noCache     bool
		quiet       bool
		compression string
		explain     bool
		noCacheFor  []string
		epoch       string
		cacheFrom   []string
		cacheTo     string
		target      string
		pull        string
		secrets     []string
		netMode     string
		allow       []string
		progressArg string
		check       bool
		rf          registryFlags
		lim         buildLimitFlags // buildlimits.go
		checkLayers ciFlags         // --check-layers: cmd/kiln/layers_ci.go
		bio         buildIO
		platforms   []string
	)
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH | URL | -",
		Short: "Build an image from a Dockerfile",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := layer.ParseCompression(compression)
			if err != nil {
				return fmt.Errorf("--compression: %w", err)
			}
			// Mounts made while building must die with this process: they
			// are detached mounts (in no mount table), or, on kernels
			// without them, made in a private mount namespace.
			if !runner.DetachedMountsSupported() {
				if err := runner.EnterMountNamespace(); err != nil {
					return err
				}
			}
			sde, err := sourceDateEpoch(epoch)
			if err != nil {
				return err
			}
			mode, err := buildProgressMode(progressArg, quiet)
			if err != nil {
				return err
			}
			// A registry's progress bars would tear a display that redraws.
			quietRegistry := quiet || progress.Redraws(mode, os.Stderr)
			to, err := cacheExporter(cacheTo, rf.options(quietRegistry))
			if err != nil {
				return fmt.Errorf("--cache-to: %w", err)
			}
			from, err := cacheImporters(cacheFrom, rf.options(quietRegistry))
			if err != nil {
				return fmt.Errorf("--cache-from: %w", err)
			}
			opts := builder.Options{
				Target:          target,
				CacheFrom:       from,
				CacheTo:         to,
				NoCacheFilter:   noCacheFor,
				SourceDateEpoch: sde,
				ContextDir:      args[0],
				Dockerfile:      file,
				Stdin:           os.Stdin,
				Tags:            tags,
				BuildArgs:       parseBuildArgs(buildArgs),
				NoCache:         noCache,
				Compression:     c,
				Network:         netMode,
			}
			if check {
				return runCheck(g, opts)
			}
			for _, a := range allow {
				opts.Allow = append(opts.Allow, strings.Split(a, ",")...)
			}
			for _, spec := range secrets {
				id, src, err := builder.ParseSecret(spec)
				if err != nil {
					return fmt.Errorf("--secret: %w", err)
				}
				if opts.Secrets == nil {
					opts.Secrets = map[string]builder.SecretSource{}
				}
				opts.Secrets[id] = src
			}
			if opts.Platforms, err = parsePlatforms(platforms); err != nil {
				return err
			}
			if opts.RunLimits, err = lim.limits(); err != nil {
				return err
			}
			if opts.PullPolicy, err = builder.ParsePullPolicy(pull); err != nil {
				return fmt.Errorf("--pull: %w", err)
			}
			s, err := cache.Open(g.root)
			if err != nil {
				return err
			}
			defer s.Close()
			display := progress.New(mode, os.Stderr)
			opts.Progress = display
			aside, flushAside := asideDisplay(mode)
			opts.Warnings = aside
			if explain {
				opts.ExplainCache = aside
			}
			opts.Pull = pullFunc(s, rf.options(true), io.Discard)
			opts.NetworkNamespace = buildNetwork(g.root, s)
			defer bio.close()
			if err := bio.setup(cmd.Context(), s, &opts, args[0], rf.options(quiet)); err != nil {
				return err
			}
			id, err := builder.Build(cmd.Context(), s, opts)
			if cerr := display.Close(); err == nil {
				err = cerr
			}
			flushAside()
			if err != nil {
				reportBuildError(err)
				return err
			}
			id = bio.finalID(id)
			if err := bio.finish(id); err != nil {
				return err
			}
			if quiet && !bio.stdoutTaken() {
				fmt.Println(id)
			}
			return checkLayers.checkLayersAfterBuild(cmd, s, id)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&tags, "tag", "t", nil, "name and optionally a tag in the name:tag format")
	f.StringVarP(&file, "file", "f", "", "name of the Dockerfile (default CONTEXT/Dockerfile; - reads stdin; inside the context for a Git or stdin context)")
	f.StringArrayVar(&buildArgs, "build-arg", nil, "set a build-time variable (KEY=VALUE, or KEY to take it from the environment)")
	f.BoolVar(&noCache, "no-cache", false, "do not use cache when building the image")
	f.BoolVarP(&quiet, "quiet", "q", false, "suppress the build output and print the image ID on success")
	f.StringVar(&compression, "compression", "gzip", "layer compression: gzip or zstd")
	f.StringVar(&pull, "pull", "missing", "when FROM pulls its image: always, missing (the store lacks it) or never")
	f.Lookup("pull").NoOptDefVal = "always"
	rf.add(f, g)
	lim.register(f)
	bio.add(f)
	f.BoolVar(&explain, "explain-cache", false, "print for every step whether it hit the build cache and, for a miss, what changed")
	f.StringArrayVar(&noCacheFor, "no-cache-filter", nil, "do not use the cache for these stages")
	f.StringVar(&target, "target", "", "set the target build stage to build")
	f.StringArrayVar(&cacheFrom, "cache-from", nil, "import build cache: type=local,src=DIR or type=registry,ref=NAME")
	f.StringVar(&cacheTo, "cache-to", "", "export build cache: type=local,dest=DIR or type=registry,ref=NAME[,mode=max]")
	f.StringArrayVar(&secrets, "secret", nil, "secret for RUN --mount=type=secret: id=NAME,src=FILE or id=NAME,env=VAR")
	f.StringVar(&netMode, "network", builder.NetworkDefault, "the networking mode of RUN steps: default (the build's own namespace on kiln's bridge), none or host (needs --allow network.host)")
	f.StringArrayVar(&allow, "allow", nil, "extra privileged entitlements: network.host (RUN --network=host), security.insecure (RUN --security=insecure)")
	f.StringVar(&progressArg, "progress", "auto", "type of progress output: auto, tty, plain, rawjson or quiet (default $BUILDKIT_PROGRESS, else auto)")
	f.BoolVar(&check, "check", false, "run the Dockerfile's build checks and exit, without building (non-zero exit on violations)")
	f.StringVar(&epoch, "source-date-epoch", "", "timestamp (seconds since 1970) for the image's history, config and file times (default $SOURCE_DATE_EPOCH)")
	checkLayers.addToBuild(cmd)
	f.StringArrayVar(&platforms, "platform", nil, "target platforms, os/arch[/variant][,...]: several build one image each and tag their index (default: this machine's)")
	return cmd
}

// sourceDateEpoch reads --source-date-epoch, or SOURCE_DATE_EPOCH from the
// environment, as reproducible-builds.org defines it.
func sourceDateEpoch(flag string) (*time.Time, error) {
	v := flag
	if v == "" {
		v = os.Getenv("SOURCE_DATE_EPOCH")
	}
	if v == "" {
		return nil, nil
	}
	secs, err := strconv.ParseInt(v, 10, 64)
	if err != nil || secs < 0 {
		return nil, fmt.Errorf("source date epoch %q: expected a non-negative number of seconds", v)
	}
	t := time.Unix(secs, 0).UTC()
	return &t, nil
}

// parseBuildArgs reads --build-arg values as docker does: KEY=VALUE, or KEY
// alone to take the value from the environment (skipped when unset).
func parseBuildArgs(list []string) map[string]string {
	out := map[string]string{}
	for _, a := range list {
		if k, v, ok := strings.Cut(a, "="); ok {
			out[k] = v
		} else if v, ok := os.LookupEnv(a); ok {
			out[a] = v
		}
	}
	return out
}
