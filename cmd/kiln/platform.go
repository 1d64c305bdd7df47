package main

import (
	"fmt"
	"strings"

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
