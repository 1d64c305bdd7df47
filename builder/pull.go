package builder

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
)

// PullPolicy says when FROM fetches its image from a registry.
type PullPolicy string

const (
	// PullMissing pulls an image the store does not have (the default).
	PullMissing PullPolicy = "missing"
	// PullAlways pulls every FROM image, to get what its tag names now.
	PullAlways PullPolicy = "always"
	// PullNever uses the store only.
	PullNever PullPolicy = "never"
)

// ParsePullPolicy parses a --pull value: always, missing or never ("true"
// and "false", as docker's boolean --pull, mean always and missing).
func ParsePullPolicy(s string) (PullPolicy, error) {
	switch strings.ToLower(s) {
	case "", "missing", "false":
		return PullMissing, nil
	case "always", "true":
		return PullAlways, nil
	case "never":
		return PullNever, nil
	}
	return "", fmt.Errorf("pull policy %q: want always, missing or never: %w", s, cache.ErrInvalid)
}

// PullFunc fetches the named image's manifest for platform p from its
// registry into the store and returns its image ID.
type PullFunc func(ctx context.Context, name string, p ocispec.Platform) (digest.Digest, error)

// resolveBase finds the image a FROM names: in the store, or pulled as
// Options.PullPolicy says when Options.Pull is set. An image ID is only ever
// looked up in the store.
func (b *build) resolveBase(ctx context.Context, name string, p ocispec.Platform) (digest.Digest, error) {
	pull := b.opts.Pull
	if _, err := digest.Parse(name); err == nil || pull == nil || b.opts.PullPolicy == PullNever {
		return b.resolveLocal(name, p)
	}
	pull = b.reportPull(pull)
	if b.opts.PullPolicy == PullAlways {
		id, err := pull(ctx, name, p)
		if err != nil {
			return "", fmt.Errorf("pull: %v", err)
		}
		return id, nil
	}
	id, err := b.resolveLocal(name, p)
	if !errors.Is(err, cache.ErrNotFound) {
		return id, err
	}
	if id, err = pull(ctx, name, p); err != nil {
		// Not cache.ErrNotFound any more: the store was not the last word.
		return "", fmt.Errorf("image not found in the store, and pulling it failed: %v", err)
	}
	return id, nil
}

// reportPull makes a pull a vertex of the build's progress.
func (b *build) reportPull(pull PullFunc) PullFunc {
	return func(ctx context.Context, name string, p ocispec.Platform) (digest.Digest, error) {
		v := b.rep.start("", "[internal] pulling "+name)
		id, err := pull(ctx, name, p)
		v.done(false, err)
		return id, err
	}
}

// resolveLocal finds the image of platform p a FROM names in the store. An
// image (not an index) of another platform is used with a warning, as
// BuildKit does (its InvalidBaseImagePlatform check).
func (b *build) resolveLocal(name string, p ocispec.Platform) (digest.Digest, error) {
	id, err := b.store.ResolvePlatform(name, p)
	if !errors.Is(err, cache.ErrPlatformNotFound) {
		return id, err
	}
	if _, isIndex, terr := b.store.ResolveTarget(name); terr != nil || isIndex {
		return "", err
	}
	id, rerr := b.store.Resolve(name)
	if rerr != nil {
		return "", err
	}
	if img, _, ierr := b.store.Image(id); ierr == nil && !b.dry {
		b.warnf("InvalidBaseImagePlatform: Base image %s was pulled with platform %q, expected %q for current build", name, cache.FormatPlatform(img.Platform), cache.FormatPlatform(p))
	}
	return id, nil
}
