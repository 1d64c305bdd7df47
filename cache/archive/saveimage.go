package archive

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"

	"github.com/opencontainers/go-digest"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
)

// Image is an image of the store to save under names of the caller's
// choosing (a build's -t), whether or not the store knows them.
type Image struct {
	ID    digest.Digest
	Names []string // name[:tag]; normalized, tag "latest" when none
}

// SaveOptions add annotations to what Save writes.
type SaveOptions struct {
	// IndexAnnotations go on the layout's index.json.
	IndexAnnotations map[string]string
	// DescriptorAnnotations go on every descriptor of index.json, an
	// image's manifest or an image index (beside the name annotations).
	DescriptorAnnotations map[string]string
}

// SaveImages is Save for images (or image indexes) given by ID with their
// names, and with annotations.
func SaveImages(ctx context.Context, s *cache.Store, w io.Writer, images []Image, f Format, o SaveOptions) error {
	if _, err := ParseFormat(string(f)); err != nil {
		return err
	}
	targets, err := imageTargets(s, images)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return saveTargets(ctx, s, w, targets, f, o)
}

// SaveImagesFile writes the archive of SaveImages to path atomically, as
// SaveFile does.
func SaveImagesFile(ctx context.Context, s *cache.Store, path string, images []Image, f Format, o SaveOptions) error {
	return writeSaveFile(ctx, s, path, func(w io.Writer) error { return SaveImages(ctx, s, w, images, f, o) })
}

// SaveImagesDir writes the OCI layout of SaveImages into the directory dir
// (created when missing) instead of a tar: the layout's files are extracted
// as they stream, with layer.Apply, so nothing lands outside dir.
func SaveImagesDir(ctx context.Context, s *cache.Store, dir string, images []Image, f Format, o SaveOptions) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(SaveImages(ctx, s, pw, images, f, o)) }()
	_, err := layer.Apply(ctx, dir, pr, layer.ApplyOptions{})
	pr.CloseWithError(err)
	if err != nil {
		return fmt.Errorf("save %s: %w", dir, err)
	}
	return nil
}

func imageTargets(s *cache.Store, images []Image) ([]*saveTarget, error) {
	var out []*saveTarget
	for _, im := range images {
		t := &saveTarget{id: im.ID, index: s.IsIndex(im.ID)}
		if !t.index {
			if _, _, err := s.Image(im.ID); err != nil {
				return nil, err
			}
		}
		for _, n := range im.Names {
			norm, err := cache.NormalizeName(n)
			if err != nil {
				return nil, fmt.Errorf("name %q: %w", n, err)
			}
			if !isTagged(norm) {
				return nil, fmt.Errorf("name %q: a tag, not a digest, names an image in an archive: %w", n, cache.ErrInvalid)
			}
			if !slices.Contains(t.names, norm) {
				t.names = append(t.names, norm)
			}
		}
		out = append(out, t)
	}
	return out, nil
}

// copyAnnotations merges extra into base (base wins), nil when both are empty.
func copyAnnotations(extra, base map[string]string) map[string]string {
	if len(extra) == 0 {
		return base
	}
	out := maps.Clone(extra)
	maps.Copy(out, base)
	return out
}
