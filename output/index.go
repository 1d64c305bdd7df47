package output

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cache/archive"
	"github.com/kiln-build/kiln/registry"
)

// A multi-platform build's result is an image index. Its outputs are as
// buildx's: the index rebuilt over its platforms' manifests (each carrying
// exactly the manifest annotations, its descriptor the manifest-descriptor
// ones, the index the index ones), tagged, pushed with every manifest, or
// saved whole; local and tar outputs get one directory per platform
// (linux_amd64, linux_arm_v7).

// exportIndex is Export of the index id.
func exportIndex(ctx context.Context, st *cache.Store, id digest.Digest, s Spec, o Options) (Result, error) {
	switch s.Type {
	case Local:
		return Result{}, exportLocal(ctx, st, id, s.Dest)
	case Tar:
		return Result{}, exportTar(ctx, st, id, s.Dest, o.Stdout)
	}
	final, desc, err := annotateIndex(ctx, st, id, o.Annotations)
	if err != nil {
		return Result{}, err
	}
	res := Result{ID: final, Index: true, Manifest: &desc, Names: normalizedNames(s.Names)}
	if s.StoresImage() && final != id {
		// The build tagged the index it made; the names go to the final one.
		for _, n := range s.Names {
			if err := st.Tag(n, final); err != nil {
				return Result{}, err
			}
		}
	}
	switch s.Type {
	case OCI, Docker:
		if err := saveArchive(ctx, st, final, s, o, archive.SaveOptions{DescriptorAnnotations: o.Annotations.IndexDescriptor}); err != nil {
			return Result{}, err
		}
		return res, nil
	}
	if !s.Push {
		return res, nil
	}
	if _, err := push(ctx, st, final, s.Names, registry.FormatOCI, o); err != nil {
		return Result{}, err
	}
	return res, nil
}

// annotateIndex makes each platform's manifest of the index id carry
// exactly the manifest annotations and returns the index over them, its
// descriptors carrying the manifest-descriptor annotations, itself the
// index ones: id itself when that changes nothing.
func annotateIndex(ctx context.Context, st *cache.Store, id digest.Digest, a Annotations) (digest.Digest, ocispec.Descriptor, error) {
	images, err := indexImages(st, id)
	if err != nil {
		return "", ocispec.Descriptor{}, err
	}
	var with []cache.IndexImage
	for _, im := range images {
		if err := annotateManifest(ctx, st, im.Image, a.Manifest); err != nil {
			return "", ocispec.Descriptor{}, err
		}
		with = append(with, cache.IndexImage{Image: im.Image, Manifest: ocispec.Descriptor{Platform: im.Manifest.Platform, Annotations: maps.Clone(a.ManifestDescriptor)}})
	}
	final, err := st.PutIndex(ctx, with, a.Index)
	if err != nil {
		return "", ocispec.Descriptor{}, fmt.Errorf("annotate index: %w", err)
	}
	data, err := st.ReadBlob(final)
	if err != nil {
		return "", ocispec.Descriptor{}, err
	}
	return final, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: final, Size: int64(len(data))}, nil
}

// indexImages are the images of the index id in its order; the store must
// have every one (a build's index has).
func indexImages(st *cache.Store, id digest.Digest) ([]cache.IndexImage, error) {
	idx, have, err := st.Index(id)
	if err != nil {
		return nil, err
	}
	byManifest := map[digest.Digest]cache.IndexImage{}
	for _, im := range have {
		byManifest[im.Manifest.Digest] = im
	}
	var out []cache.IndexImage
	for _, m := range idx.Manifests {
		im, ok := byManifest[m.Digest]
		if !ok {
			return nil, fmt.Errorf("index %s: manifest %s is not in the store: %w", id, m.Digest, cache.ErrNotFound)
		}
		im.Manifest = m
		out = append(out, im)
	}
	return out, nil
}

// PlatformDir is the directory of a platform's files in a multi-platform
// local or tar output, as BuildKit names it: linux_amd64, linux_arm_v7.
func PlatformDir(p ocispec.Platform) string {
	return strings.ReplaceAll(cache.FormatPlatform(p), "/", "_")
}

// flattenIndex writes each platform's files of the index id into its
// PlatformDir of dir.
func flattenIndex(ctx context.Context, st *cache.Store, id digest.Digest, dir string) error {
	images, err := indexImages(st, id)
	if err != nil {
		return err
	}
	for _, im := range images {
		if im.Manifest.Platform == nil {
			return fmt.Errorf("index %s: manifest %s has no platform: %w", id, im.Manifest.Digest, cache.ErrInvalid)
		}
		sub := filepath.Join(dir, PlatformDir(*im.Manifest.Platform))
		if err := os.Mkdir(sub, 0o755); err != nil && !os.IsExist(err) {
			return err
		}
		if err := flatten(ctx, st, im.Image, sub); err != nil {
			return fmt.Errorf("%s: %w", cache.FormatPlatform(*im.Manifest.Platform), err)
		}
	}
	return nil
}

// RemoveUnnamed removes the image or index id from the store when no name
// points at it (an output sent it elsewhere): an index with the images
// only it listed that have no name of their own. Their layers stay, as
// build cache.
func RemoveUnnamed(st *cache.Store, id digest.Digest) error {
	names, err := st.NamesOf(id)
	if err != nil || len(names) > 0 {
		return err
	}
	if !st.IsIndex(id) {
		return st.DeleteImage(id)
	}
	_, images, err := st.Index(id)
	if err != nil {
		return err
	}
	if err := st.DeleteIndex(id); err != nil {
		return err
	}
	listed, err := st.IndexedImages()
	if err != nil {
		return err
	}
	for _, im := range images {
		if listed[im.Image] > 0 {
			continue
		}
		if own, err := st.NamesOf(im.Image); err != nil || len(own) > 0 {
			continue
		}
		if err := st.DeleteImage(im.Image); err != nil {
			return err
		}
	}
	return nil
}
