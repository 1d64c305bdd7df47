package archive

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
)

// LoadLayoutImage stores one image of the OCI image layout directory dir —
// the one index.json names tag (org.opencontainers.image.ref.name, or the
// tag of io.containerd.image.name), or its only image when tag is empty —
// and returns its ID, without naming it in the store (a build's
// --build-context NAME=oci-layout://DIR[:TAG]). It is Load, verifying
// everything, over a tar of the layout whose index.json lists that image
// alone; the layout is read through os.Root, so its symlinks cannot reach
// out of dir.
func LoadLayoutImage(ctx context.Context, s *cache.Store, dir, tag string) (digest.Digest, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", fmt.Errorf("oci layout %s: %w", dir, err)
	}
	defer root.Close()
	data, err := root.ReadFile(ocispec.ImageIndexFile)
	if err != nil {
		return "", fmt.Errorf("oci layout %s: %w", dir, err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return "", fmt.Errorf("oci layout %s: index.json: %v: %w", dir, err, cache.ErrInvalid)
	}
	var picked []ocispec.Descriptor
	var tags []string
	for _, d := range idx.Manifests {
		t := d.Annotations[ocispec.AnnotationRefName]
		if n := d.Annotations[annotationImageName]; n != "" {
			if _, nt, ok := repoAndTag(mustNormalize(n)); ok {
				t = nt
			}
		}
		tags = append(tags, t)
		if tag == "" || t == tag {
			picked = append(picked, d)
		}
	}
	switch {
	case len(picked) == 0:
		return "", fmt.Errorf("oci layout %s: no image tagged %q (it has %s): %w", dir, tag, strings.Join(tags, ", "), cache.ErrNotFound)
	case len(picked) > 1 && tag == "":
		return "", fmt.Errorf("oci layout %s holds %d images: name one as oci-layout://%s:TAG: %w", dir, len(picked), dir, cache.ErrInvalid)
	}
	one := picked[0]
	one.Annotations = nil // no name for the store
	idx.Manifests, idx.Annotations = []ocispec.Descriptor{one}, nil
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeLayoutTar(pw, root, idx)) }()
	loaded, err := Load(ctx, s, pr)
	pr.CloseWithError(err)
	if err != nil {
		return "", fmt.Errorf("oci layout %s: %w", dir, err)
	}
	if len(loaded) != 1 {
		return "", fmt.Errorf("oci layout %s: %d images for one descriptor: %w", dir, len(loaded), cache.ErrInvalid)
	}
	return loaded[0].ID, nil
}

func mustNormalize(n string) string {
	if norm, err := cache.NormalizeName(n); err == nil {
		return norm
	}
	return n
}

// writeLayoutTar writes the layout of root as a tar with idx as its index.json.
func writeLayoutTar(w io.Writer, root *os.Root, idx ocispec.Index) error {
	tw := tar.NewWriter(w)
	data, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	layout, err := root.ReadFile(ocispec.ImageLayoutFile)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{ocispec.ImageLayoutFile, layout}, {ocispec.ImageIndexFile, data}} {
		if err := writeFile(tw, f.name, f.data); err != nil {
			return err
		}
	}
	err = fs.WalkDir(root.FS(), "blobs", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := root.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(fileHeader(p, fi.Size())); err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
