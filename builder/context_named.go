package builder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/kiln-build/kiln/cache"
)

// NamedContext is a context a build gets by name (kiln build
// --build-context NAME=...): FROM NAME and COPY/RUN --mount --from=NAME use
// it in place of the image or stage of that name, as BuildKit's named
// contexts. Exactly one field is set.
type NamedContext struct {
	// Image is an image reference (docker-image://REF), looked up in the
	// store or pulled as FROM pulls.
	Image string
	// ImageID is an image already in the store (oci-layout://, loaded by
	// the caller).
	ImageID digest.Digest
	// Stage is a stage of the Dockerfile (target:STAGE).
	Stage string
	// Dir is a local directory: its files are what COPY --from=NAME copies
	// (imported once per build as a one-layer tree).
	Dir string
}

// ParseNamedContext reads a --build-context value: NAME=DIR,
// NAME=docker-image://REF or NAME=target:STAGE. NAME=oci-layout://DIR[:TAG]
// gives OCILayout (the directory and tag) for the caller to load.
func ParseNamedContext(v string) (name string, nc NamedContext, ociLayout string, err error) {
	name, val, ok := strings.Cut(v, "=")
	if !ok || name == "" || val == "" {
		return "", nc, "", fmt.Errorf("build context %q: want NAME=DIR|docker-image://REF|oci-layout://DIR[:TAG]|target:STAGE: %w", v, cache.ErrInvalid)
	}
	name = strings.ToLower(name)
	switch {
	case strings.HasPrefix(val, "docker-image://"):
		nc.Image = strings.TrimPrefix(val, "docker-image://")
	case strings.HasPrefix(val, "oci-layout://"):
		ociLayout = strings.TrimPrefix(val, "oci-layout://")
	case strings.HasPrefix(val, "target:"):
		nc.Stage = strings.TrimPrefix(val, "target:")
	case strings.Contains(val, "://"):
		return "", nc, "", fmt.Errorf("build context %q: source %q not supported (a directory, docker-image://, oci-layout:// or target:): %w", v, val, cache.ErrInvalid)
	default:
		abs, err := filepath.Abs(val)
		if err != nil {
			return "", nc, "", err
		}
		if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
			return "", nc, "", fmt.Errorf("build context %s: %s is not a directory: %w", name, val, cache.ErrInvalid)
		}
		nc.Dir = abs
	}
	if nc.Image == "" && nc.Stage == "" && nc.Dir == "" && ociLayout == "" {
		return "", nc, "", fmt.Errorf("build context %q: empty source: %w", v, cache.ErrInvalid)
	}
	return name, nc, ociLayout, nil
}

// namedContexts resolves the names FROM and --from use through
// Options.Contexts.
type namedContexts struct {
	mu   sync.Mutex
	dirs map[string]digest.Digest // Dir contexts imported: name → layer diffID
}

// named is what name stands for after the build's named contexts: an image
// reference or a stage name (target:), else name itself. ok reports a Dir
// context, which only --from can use.
func (b *build) named(name string) (string, *NamedContext) {
	nc, ok := b.opts.Contexts[strings.ToLower(name)]
	if !ok {
		return name, nil
	}
	switch {
	case nc.Image != "":
		return nc.Image, nil
	case nc.ImageID != "":
		return nc.ImageID.String(), nil
	case nc.Stage != "":
		return nc.Stage, nil
	}
	return name, &nc
}

// dirContext is the tree of a Dir named context, imported as one layer the
// first time the build uses it.
func (b *build) dirContext(ctx context.Context, name string, nc *NamedContext) (*treeSource, error) {
	if b.dry {
		return nil, nil
	}
	b.namedCtx.mu.Lock()
	defer b.namedCtx.mu.Unlock()
	d, ok := b.namedCtx.dirs[name]
	if !ok {
		l, err := b.store.ImportDir(ctx, nc.Dir)
		if err != nil {
			return nil, fmt.Errorf("from=%s: build context %s: %w", name, nc.Dir, err)
		}
		if b.namedCtx.dirs == nil {
			b.namedCtx.dirs = map[string]digest.Digest{}
		}
		d = l.DiffID
		b.namedCtx.dirs[name] = d
	}
	return &treeSource{name: name, key: digest.FromString("context " + d.String()), diffIDs: []digest.Digest{d}}, nil
}
