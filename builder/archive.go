package builder

import (
	"archive/tar"
	"context"
	"fmt"
	"os"

	"github.com/kiln-build/kiln/layer"
)

// isArchive reports whether the regular file p is a tar archive, plain or
// compressed (gzip, bzip2, xz, zstd), as BuildKit decides it for ADD: by
// content, never by name — its stream must start with a valid tar header.
func isArchive(p string) (bool, error) {
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return false, err
	}
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	r, _, err := layer.Decompress(f)
	if err != nil {
		return false, nil // a broken compressed stream: copied as a file
	}
	defer r.Close()
	_, err = tar.NewReader(r).Next()
	return err == nil, nil
}

// extractArchive extracts the archive at p into the directory dir with
// chroot semantics: dir is the root for every entry name, symlink and
// hardlink target, so "../x", "/x" and paths through symlinks pointing out
// all stay inside dir, as docker's chrooted untar keeps them. chown, when
// set, owns every entry; otherwise the archive's owners are kept.
func extractArchive(ctx context.Context, p, dir string, chown *layer.IDPair) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	r, _, err := layer.Decompress(f)
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := layer.Apply(ctx, dir, r, layer.ApplyOptions{Chown: chown}); err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	return nil
}
