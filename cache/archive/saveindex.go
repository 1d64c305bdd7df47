package archive

import (
	"context"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
)

// A multi-platform image is saved as docker 25+ (its containerd image
// store) saves one: index.json names the image index (annotated with its
// names), the index blob is written byte for byte, and with it each
// platform's image the store has. The docker format's manifest.json lists
// each of those images too, the names on the host platform's (else the
// first), so that an older docker load still gets a usable image.

// savedIndex is an index of the archive and the names it is saved under.
type savedIndex struct {
	saveTarget
	desc ocispec.Descriptor
}

// planIndex adds the index t and its images to the plan.
func (p *savePlan) planIndex(ctx context.Context, s *cache.Store, t *saveTarget) error {
	idx, images, err := s.Index(t.id)
	if err != nil {
		return err
	}
	data, err := s.ReadBlob(t.id)
	if err != nil {
		return err
	}
	mt := idx.MediaType
	if mt == "" {
		mt = ocispec.MediaTypeImageIndex
	}
	desc := ocispec.Descriptor{MediaType: mt, Digest: t.id, Size: int64(len(data))}
	named := 0
	for i, im := range images {
		if im.Manifest.Platform != nil && cache.PlatformMatches(cache.HostPlatform(), *im.Manifest.Platform) {
			named = i
		}
	}
	p.add(saveBlob{desc: desc})
	for i, im := range images {
		one := saveTarget{id: im.Image}
		if i == named {
			one.names = t.names
		}
		if err := p.planImage(ctx, s, &one); err != nil {
			return err
		}
		si := &p.images[len(p.images)-1]
		si.inIndex = true
		si.platform = im.Manifest.Platform
		if si.manifest.Digest != im.Manifest.Digest {
			return fmt.Errorf("image %s: its manifest is %s, the index %s names %s (zstd layers cannot be saved for docker load in an index; use --format oci): %w",
				im.Image, si.manifest.Digest, t.id, im.Manifest.Digest, cache.ErrInvalid)
		}
	}
	p.indexes = append(p.indexes, savedIndex{saveTarget: *t, desc: desc})
	return nil
}

// indexEntries are the index.json descriptors of the saved indexes.
func (p *savePlan) indexEntries() []ocispec.Descriptor {
	var out []ocispec.Descriptor
	for _, x := range p.indexes {
		d := x.desc
		if len(x.names) == 0 {
			d.Annotations = copyAnnotations(p.opts.DescriptorAnnotations, nil)
			out = append(out, d)
		}
		for _, n := range x.names {
			_, tag, _ := repoAndTag(n)
			d.Annotations = copyAnnotations(p.opts.DescriptorAnnotations, map[string]string{annotationImageName: n, ocispec.AnnotationRefName: tag})
			out = append(out, d)
		}
	}
	return out
}
