package output

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/opencontainers/go-digest"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
)

// exportLocal writes the image's files (an index: each platform's, in
// its PlatformDir) into dir (created when missing), as
// BuildKit's local exporter: its layers applied in order, each streamed
// from its snapshot (layer.WriteDiff) into layer.Apply, which never writes
// outside dir.
func exportLocal(ctx context.Context, st *cache.Store, id digest.Digest, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("output %s: %w", dir, err)
	}
	if err := flattenResult(ctx, st, id, dir); err != nil {
		return fmt.Errorf("output %s: %w", dir, err)
	}
	return nil
}

// flattenResult writes the files of the build result id into dir: an
// image's, or each platform's of an index in its own directory.
func flattenResult(ctx context.Context, st *cache.Store, id digest.Digest, dir string) error {
	if st.IsIndex(id) {
		return flattenIndex(ctx, st, id, dir)
	}
	return flatten(ctx, st, id, dir)
}

// flatten applies the image's layers, base first, onto dir.
func flatten(ctx context.Context, st *cache.Store, id digest.Digest, dir string) error {
	img, _, err := st.Image(id)
	if err != nil {
		return err
	}
	lowers, err := st.Lowers(img.RootFS.DiffIDs)
	if err != nil {
		return err
	}
	slices.Reverse(lowers) // Lowers is top-most first
	for _, l := range lowers {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(layer.WriteDiff(ctx, pw, l, layer.DiffOptions{})) }()
		_, err := layer.Apply(ctx, dir, pr, layer.ApplyOptions{})
		pr.CloseWithError(err)
		if err != nil {
			return err
		}
	}
	return nil
}

// exportTar writes the image's files as one tar to dest ("-": stdout), as
// BuildKit's tar exporter: flattened in a temp dir of the store, written
// with layer.WriteDiff.
func exportTar(ctx context.Context, st *cache.Store, id digest.Digest, dest string, stdout io.Writer) error {
	tmp, err := st.TempDir("output-tar-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := flattenResult(ctx, st, id, tmp); err != nil {
		return fmt.Errorf("output tar: %w", err)
	}
	if dest == "-" {
		return layer.WriteDiff(ctx, stdout, tmp, layer.DiffOptions{})
	}
	f, err := os.CreateTemp(filepath.Dir(dest), ".kiln-output-*")
	if err != nil {
		return fmt.Errorf("output %s: %w", dest, err)
	}
	if err := layer.WriteDiff(ctx, f, tmp, layer.DiffOptions{}); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("output %s: %w", dest, err)
	}
	if err := f.Chmod(0o644); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), dest)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("output %s: %w", dest, err)
	}
	return nil
}
