package archive

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
)

// Load reads an image archive from r — an OCI image layout or a docker-archive
// tar (docker 25 writes both in one), optionally compressed as a whole — and
// stores every image in it, named as the archive names it (OCI: the
// io.containerd.image.name annotation, or org.opencontainers.image.ref.name
// when it is a full reference; docker: RepoTags).
//
// Everything is verified before anything is named: the digests and sizes of
// manifests, configs and layer blobs, and each layer's uncompressed content
// against the config's diff_ids. A bad archive yields one error naming the
// archive member at fault, and no image is recorded nor tagged (layers already
// ingested are left to garbage collection). OCI indexes nested in index.json
// contribute their manifest for linux on this machine's architecture.
//
// When r is a regular file holding an uncompressed tar, members are read in
// place; otherwise the stream is read once and spooled to the store's tmp
// directory, so manifest.json may come after the blobs it lists.
func Load(ctx context.Context, s *cache.Store, r io.Reader) ([]Loaded, error) {
	ms, done, err := openArchive(ctx, s, r)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer done()
	imgs, idxs, err := planLoad(ms)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	// All layers of all images first: an image is recorded only once every
	// layer of the archive has been verified.
	for _, img := range imgs {
		for _, l := range img.layers {
			if _, err := s.IngestLayerBlob(ctx, ms.open(l.member), l.desc, l.diffID); err != nil {
				return nil, fmt.Errorf("load: archive member %s: %w", l.name, err)
			}
		}
	}
	for _, img := range imgs {
		if err := img.record(ctx, s); err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
	}
	var loaded []Loaded
	listed := indexedNames(idxs) // load_index.go
	for _, img := range imgs {
		if names, ok := listed[img.id]; ok {
			// An index's image: the index takes the names they share.
			img.names = slices.DeleteFunc(img.names, func(n string) bool { return slices.Contains(names, n) })
			if len(img.names) == 0 {
				continue
			}
		}
		for _, n := range img.names {
			if err := s.Tag(n, img.id); err != nil {
				return nil, fmt.Errorf("load: tag %s: %w", n, err)
			}
		}
		loaded = append(loaded, Loaded{ID: img.id, Names: img.names})
	}
	for _, x := range idxs {
		if err := x.record(ctx, s); err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		loaded = append(loaded, Loaded{ID: x.desc.Digest, Names: x.names})
	}
	return loaded, nil
}

// loadImage is an image of the archive whose metadata has been verified.
type loadImage struct {
	id     digest.Digest
	config []byte
	// manifest is the image's manifest, kept as it came; nil for an image
	// described only by a docker manifest.json.
	manifest     []byte
	manifestDesc ocispec.Descriptor
	layers       []loadLayer
	names        []string
}

// loadLayer is a layer blob of the archive with what it must verify against.
type loadLayer struct {
	name   string // the member as the archive refers to it
	member *member
	desc   ocispec.Descriptor
	diffID digest.Digest
}

// record stores the image's manifest (if any) and config.
func (img *loadImage) record(ctx context.Context, s *cache.Store) error {
	var md *ocispec.Descriptor
	if img.manifest != nil {
		if _, _, err := s.WriteBlob(ctx, bytes.NewReader(img.manifest), img.manifestDesc.Digest, img.manifestDesc.Size); err != nil {
			return err
		}
		md = &ocispec.Descriptor{MediaType: img.manifestDesc.MediaType, Digest: img.manifestDesc.Digest, Size: img.manifestDesc.Size}
	}
	id, err := s.PutImage(ctx, img.config, cache.ImageOptions{Manifest: md})
	if err != nil {
		return fmt.Errorf("image %s: %w", img.id, err)
	}
	if id != img.id {
		return fmt.Errorf("image %s: stored as %s: %w", img.id, id, cache.ErrInvalid)
	}
	return nil
}

// loadPlan collects the archive's images, one per image ID.
type loadPlan struct {
	ms      *members
	images  []*loadImage
	byID    map[digest.Digest]*loadImage
	indexes []*loadIndex // load_index.go
}

// planLoad reads and verifies the archive's metadata: index.json and the
// manifests and configs it reaches, and manifest.json with the configs it
// lists. An image described by both keeps its OCI manifest and gets the names
// of both.
func planLoad(ms *members) ([]*loadImage, []*loadIndex, error) {
	p := &loadPlan{ms: ms, byID: map[digest.Digest]*loadImage{}}
	hasIndex, hasDocker := ms.has(ocispec.ImageIndexFile), ms.has(dockerManifestFile)
	if !hasIndex && !hasDocker {
		return nil, nil, fmt.Errorf("not an image archive: it has neither %s nor %s: %w", ocispec.ImageIndexFile, dockerManifestFile, cache.ErrInvalid)
	}
	if hasIndex {
		if err := p.planOCI(); err != nil {
			return nil, nil, err
		}
	}
	if hasDocker {
		if err := p.planDocker(); err != nil {
			return nil, nil, err
		}
	}
	if len(p.images) == 0 {
		return nil, nil, fmt.Errorf("archive holds no image: %w", cache.ErrInvalid)
	}
	return p.images, p.indexes, nil
}

// known returns the image already planned with that ID, after giving it names.
func (p *loadPlan) known(id digest.Digest, names []string) bool {
	img := p.byID[id]
	if img == nil {
		return false
	}
	for _, n := range names {
		if !slices.Contains(img.names, n) {
			img.names = append(img.names, n)
		}
	}
	return true
}

func (p *loadPlan) add(img *loadImage) {
	p.byID[img.id] = img
	p.images = append(p.images, img)
}
