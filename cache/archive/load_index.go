package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
)

// An image index named by index.json (a multi-platform image, as kiln and
// docker 25+ save one) is loaded whole: every platform's image the archive
// has, then the index, byte for byte, which takes the names. Platforms the
// archive lacks (an image pulled for one platform) stay in the index as
// not pulled.

// loadIndex is an index of the archive, verified, with its images.
type loadIndex struct {
	desc   ocispec.Descriptor
	data   []byte
	names  []string
	images []cache.IndexImage
}

// planIndex plans the index idx (member name, described by d) and each of
// its images the archive holds.
func (p *loadPlan) planIndex(d ocispec.Descriptor, data []byte, idx ocispec.Index, name string, names []string) error {
	for _, x := range p.indexes {
		if x.desc.Digest == d.Digest {
			for _, n := range names {
				if !slices.Contains(x.names, n) {
					x.names = append(x.names, n)
				}
			}
			return nil
		}
	}
	x := &loadIndex{desc: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: d.Digest, Size: d.Size}, data: data, names: names}
	for _, m := range idx.Manifests {
		if m.MediaType != ocispec.MediaTypeImageManifest && m.MediaType != mediaTypeDockerManifest || m.Platform == nil {
			continue // attestations, nested indexes
		}
		if !p.ms.has(blobPath(m.Digest)) {
			continue // not saved with it
		}
		mdata, mname, err := p.blob(m, name)
		if err != nil {
			return err
		}
		if err := p.planManifest(m, mdata, mname, nil); err != nil {
			return err
		}
		var man ocispec.Manifest
		if err := json.Unmarshal(mdata, &man); err != nil {
			return fmt.Errorf("archive member %s: %v: %w", mname, err, cache.ErrInvalid)
		}
		img := p.byID[man.Config.Digest]
		if img == nil {
			return fmt.Errorf("archive member %s: manifest %s: image not planned: %w", name, m.Digest, cache.ErrInvalid)
		}
		x.images = append(x.images, cache.IndexImage{Manifest: m, Image: img.id})
	}
	if len(x.images) == 0 {
		return fmt.Errorf("archive member %s: the archive holds none of the index's images: %w", name, cache.ErrInvalid)
	}
	p.indexes = append(p.indexes, x)
	return nil
}

// record stores the index and names it; its images are recorded.
func (x *loadIndex) record(ctx context.Context, s *cache.Store) error {
	if _, _, err := s.WriteBlob(ctx, bytes.NewReader(x.data), x.desc.Digest, x.desc.Size); err != nil {
		return err
	}
	if err := s.RecordIndex(x.desc, x.images); err != nil {
		return fmt.Errorf("index %s: %w", x.desc.Digest, err)
	}
	for _, n := range x.names {
		if err := s.Tag(n, x.desc.Digest); err != nil {
			return fmt.Errorf("tag %s: %w", n, err)
		}
	}
	return nil
}

// indexedNames maps each image of the indexes to the names of its indexes.
func indexedNames(idxs []*loadIndex) map[digest.Digest][]string {
	out := map[digest.Digest][]string{}
	for _, x := range idxs {
		for _, im := range x.images {
			out[im.Image] = append(out[im.Image], x.names...)
		}
	}
	return out
}
