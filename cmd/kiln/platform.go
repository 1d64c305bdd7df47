package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/registry"
)

// parsePlatforms reads --platform values: each a comma-separated list of
// os/arch[/variant], as buildx takes them. Duplicates count once.
func parsePlatforms(list []string) ([]ocispec.Platform, error) {
	var out []ocispec.Platform
	seen := map[string]bool{}
	for _, v := range list {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			p, err := cache.ParsePlatform(s)
			if err != nil {
				return nil, fmt.Errorf("--platform: %w", err)
			}
			if k := cache.FormatPlatform(p); !seen[k] {
				seen[k] = true
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// onePlatform reads a --platform that names one platform (run, inspect,
// pull); empty is nil.
func onePlatform(v string) (*ocispec.Platform, error) {
	if v == "" {
		return nil, nil
	}
	p, err := cache.ParsePlatform(v)
	if err != nil {
		return nil, fmt.Errorf("--platform: %w", err)
	}
	return &p, nil
}

// platformOptions are the registry options with the platform to pull.
func (r *registryFlags) platformOptions(platform string) registry.Options {
	o := r.options(false)
	o.Platform = platform
	return o
}

// resolveInspected is the image inspect shows for ref: its image (for an
// index, the one of platform, by default the host's) and the ID it shows:
// an index's own digest unless a platform was asked for, as docker's
// containerd image store does.
func resolveInspected(s *cache.Store, ref, platform string) (id, shown digest.Digest, err error) {
	if platform != "" {
		id, err = resolvePlatform(s, ref, platform)
		return id, id, err
	}
	target, isIndex, err := s.ResolveTarget(ref)
	if err != nil || !isIndex {
		return target, target, err
	}
	id, err = s.Resolve(ref)
	if errors.Is(err, cache.ErrPlatformNotFound) {
		// Not pulled for this machine: the first platform the store has.
		if _, images, ierr := s.Index(target); ierr == nil && len(images) > 0 {
			return images[0].Image, target, nil
		}
	}
	return id, target, err
}
