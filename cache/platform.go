package cache

import (
	"fmt"
	"runtime"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// HostPlatform is the platform of the machine kiln runs on.
func HostPlatform() ocispec.Platform {
	p := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm" {
		p.Variant = "v7"
	}
	return p
}

// archAliases are the other names architectures go by (uname -m, Debian),
// as containerd's platforms package normalizes them.
var archAliases = map[string]string{
	"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm",
	"armel": "arm", "i386": "386", "i686": "386",
}

// ParsePlatform parses os[/arch[/variant]] (or arch alone, for linux) and
// normalizes it as BuildKit does: "linux/aarch64" and "linux/arm64/v8" are
// linux/arm64, "linux/arm" is linux/arm/v7, a bare "linux" is the host's
// architecture.
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "/")
	if s == "" || len(parts) > 3 || slicesHasEmpty(parts) {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: want os/arch[/variant]: %w", s, ErrInvalid)
	}
	var p ocispec.Platform
	switch {
	case len(parts) == 1 && parts[0] == "linux":
		p = HostPlatform()
	case len(parts) == 1:
		p = ocispec.Platform{OS: "linux", Architecture: parts[0]}
	default:
		p = ocispec.Platform{OS: parts[0], Architecture: parts[1]}
		if len(parts) == 3 {
			p.Variant = parts[2]
		}
	}
	if a, ok := archAliases[p.Architecture]; ok {
		if p.Architecture == "armel" && p.Variant == "" {
			p.Variant = "v6"
		}
		p.Architecture = a
	}
	switch p.Architecture {
	case "arm64":
		if p.Variant == "v8" {
			p.Variant = ""
		}
	case "arm":
		if p.Variant == "" || p.Variant == "7" {
			p.Variant = "v7"
		}
	case "amd64":
		if p.Variant == "v1" {
			p.Variant = ""
		}
	}
	if p.OS != "linux" {
		return ocispec.Platform{}, fmt.Errorf("platform %q: kiln builds and runs linux images only: %w", s, ErrInvalid)
	}
	return p, nil
}

func slicesHasEmpty(parts []string) bool {
	for _, p := range parts {
		if p == "" {
			return true
		}
	}
	return false
}

// FormatPlatform is os/arch[/variant].
func FormatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// PlatformMatches reports whether an image of platform have serves want:
// same OS and architecture, and the same variant when want names one
// (arm64's v8 being no variant at all).
func PlatformMatches(want, have ocispec.Platform) bool {
	norm := func(p ocispec.Platform) ocispec.Platform {
		if p.Architecture == "arm64" && p.Variant == "v8" {
			p.Variant = ""
		}
		if p.Architecture == "arm" && p.Variant == "" {
			p.Variant = "v7"
		}
		return p
	}
	want, have = norm(want), norm(have)
	if want.OS != have.OS || want.Architecture != have.Architecture {
		return false
	}
	return want.Variant == "" || want.Variant == have.Variant
}
