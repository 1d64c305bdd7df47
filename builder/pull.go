package builder

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"

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

// PullFunc fetches the named image from its registry into the store and
// returns its image ID.
type PullFunc func(ctx context.Context, name string) (digest.Digest, error)

// resolveBase finds the image a FROM names: in the store, or pulled as
// Options.PullPolicy says when Options.Pull is set. An image ID is only ever
// looked up in the store.
func (b *build) resolveBase(ctx context.Context, name string) (digest.Digest, error) {
	pull := b.opts.Pull
	if _, err := digest.Parse(name); err == nil || pull == nil || b.opts.PullPolicy == PullNever {
		return b.store.Resolve(name)
	}
	pull = b.reportPull(pull)
	if b.opts.PullPolicy == PullAlways {
		id, err := pull(ctx, name)
		if err != nil {
			return "", fmt.Errorf("pull: %v", err)
		}
		return id, nil
	}
	id, err := b.store.Resolve(name)
	if !errors.Is(err, cache.ErrNotFound) {
		return id, err
	}
	if id, err = pull(ctx, name); err != nil {
		// Not cache.ErrNotFound any more: the store was not the last word.
		return "", fmt.Errorf("image not found in the store, and pulling it failed: %v", err)
	}
	return id, nil
}

// reportPull makes a pull a vertex of the build's progress.
func (b *build) reportPull(pull PullFunc) PullFunc {
	return func(ctx context.Context, name string) (digest.Digest, error) {
		v := b.rep.start("", "[internal] pulling "+name)
		id, err := pull(ctx, name)
		v.done(false, err)
		return id, err
	}
}
