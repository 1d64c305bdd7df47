package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/registry"
	"github.com/kiln-build/kiln/runner"
	"github.com/kiln-build/kiln/runner/network"
)

// registryFlags are the flags the commands that talk to registries share.
type registryFlags struct {
	tlsVerify bool
	g         *globals
}

func (r *registryFlags) add(f *pflag.FlagSet, g *globals) {
	r.g = g
	f.BoolVar(&r.tlsVerify, "tls-verify", true, "require HTTPS and verify certificates (localhost and 127.0.0.1 registries use plain HTTP regardless)")
}

// options are the registry options; progress goes to stderr unless quiet.
// The registries the config file names under "insecure-registries" (as in
// docker's daemon.json) may use plain HTTP or unverified TLS.
func (r *registryFlags) options(quiet bool) registry.Options {
	o := registry.Options{Insecure: !r.tlsVerify}
	if r.g != nil {
		o.InsecureRegistries = insecureRegistries(r.g.root)
	}
	if !quiet {
		o.Progress, o.Terminal = os.Stderr, isTerminal(os.Stderr)
	}
	return o
}

func newPullCommand(g *globals) *cobra.Command {
	var (
		rf       registryFlags
		platform string
		quiet    bool
		all      bool
	)
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := rf.options(quiet)
			o.Platform, o.AllPlatforms = platform, all
			s, err := cache.Open(g.root)
			if err != nil {
				return err
			}
			defer s.Close()
			res, err := pull(cmd.Context(), s, args[0], o)
			if err != nil {
				return err
			}
			if !quiet {
				fmt.Fprintf(os.Stderr, "Digest: %s\n", res.Digest)
			}
			fmt.Println(res.Name)
			return nil
		},
	}
	f := cmd.Flags()
	rf.add(f, g)
	f.StringVar(&platform, "platform", "", "platform to take from a multi-platform image, os/arch[/variant] (default linux on this machine's architecture)")
	f.BoolVarP(&quiet, "quiet", "q", false, "suppress progress output")
	f.BoolVar(&all, "all-platforms", false, "pull every platform of a multi-platform image")
	return cmd
}

// pull pulls an image and records the repository digest it came as
// (RepoDigests), as every kiln pull does.
func pull(ctx context.Context, s *cache.Store, ref string, o registry.Options) (registry.Pulled, error) {
	res, err := registry.Pull(ctx, s, ref, o)
	if err != nil {
		return res, err
	}
	return res, recordRepoDigest(s, res.ID, res.Name, res.Digest)
}

// recordRepoDigest records name's repository at dgst as the image's.
func recordRepoDigest(s *cache.Store, id digest.Digest, name string, dgst digest.Digest) error {
	named, err := cache.ParseReference(name)
	if err != nil {
		return err
	}
	return s.AddRepoDigest(id, named.Name()+"@"+dgst.String())
}

// pullFunc is how a build pulls its FROM images: each name once per build,
// progress on w.
func pullFunc(s *cache.Store, o registry.Options, w io.Writer) builder.PullFunc {
	var mu sync.Mutex
	pulled := map[string]digest.Digest{}
	return func(ctx context.Context, name string, p ocispec.Platform) (digest.Digest, error) {
		mu.Lock()
		defer mu.Unlock()
		o := o
		o.Platform = cache.FormatPlatform(p)
		if id, ok := pulled[name+" "+o.Platform]; ok {
			return id, nil
		}
		fmt.Fprintf(w, "pulling %s\n", name)
		res, err := pull(ctx, s, name, o)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(w, "pulled %s: %s\n", res.Name, res.Digest)
		pulled[name+" "+o.Platform] = res.ID
		return res.ID, nil
	}
}

// resolveImage finds the image `run` and `create` start (findImage), and
// checks that this machine can run its binaries (natively or emulated).
func resolveImage(ctx context.Context, s *cache.Store, ref string, policy builder.PullPolicy, o registry.Options, w io.Writer) (digest.Digest, error) {
	id, err := findImage(ctx, s, ref, policy, o, w)
	if err != nil {
		return "", err
	}
	img, _, err := s.Image(id)
	if err != nil {
		return "", err
	}
	if err := runner.CheckEmulator(img.Architecture); err != nil {
		return "", fmt.Errorf("image %s is %s: %w", ref, cache.FormatPlatform(img.Platform), err)
	}
	return id, nil
}

// findImage finds the image `run` and `create` start: in the store, or
// pulled as the policy says (docker's "Unable to find image ... locally").
func findImage(ctx context.Context, s *cache.Store, ref string, policy builder.PullPolicy, o registry.Options, w io.Writer) (digest.Digest, error) {
	if _, err := digest.Parse(ref); err == nil || policy != builder.PullAlways {
		id, err := resolvePlatform(s, ref, o.Platform)
		if errors.Is(err, cache.ErrPlatformNotFound) {
			return "", err // the image is here, for other platforms
		}
		if err == nil || !errors.Is(err, cache.ErrNotFound) || policy == builder.PullNever {
			if err != nil {
				return "", fmt.Errorf("unable to find image '%s' locally: %w", ref, err)
			}
			return id, nil
		}
		if _, perr := digest.Parse(ref); perr == nil {
			return "", fmt.Errorf("unable to find image '%s' locally: %w", ref, err)
		}
		fmt.Fprintf(w, "Unable to find image '%s' locally\n", ref)
	}
	o.Progress = w
	res, err := pull(ctx, s, ref, o)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(w, "Digest: %s\nStatus: Downloaded newer image for %s\n", res.Digest, cache.FamiliarName(res.Name))
	return res.ID, nil
}

// resolvePlatform is Store.Resolve, or Store.ResolvePlatform when a
// --platform was given.
func resolvePlatform(s *cache.Store, ref, platform string) (digest.Digest, error) {
	if platform == "" {
		return s.Resolve(ref)
	}
	p, err := cache.ParsePlatform(platform)
	if err != nil {
		return "", fmt.Errorf("--platform: %w", err)
	}
	return s.ResolvePlatform(ref, p)
}

// insecureRegistries reads "insecure-registries" from the kiln config file
// (<root>/config.json, else /etc/kiln/config.json). An unreadable file names none.
func insecureRegistries(root string) []string {
	for _, p := range network.ConfigPaths(root) {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var c struct {
			InsecureRegistries []string `json:"insecure-registries"`
		}
		if json.Unmarshal(data, &c) == nil {
			return c.InsecureRegistries
		}
		return nil
	}
	return nil
}
