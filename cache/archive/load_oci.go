package archive

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
)

// maxIndexDepth bounds how deeply indexes may nest.
const maxIndexDepth = 4

// planOCI plans the images of the archive's OCI image layout.
func (p *loadPlan) planOCI() error {
	if p.ms.has(ocispec.ImageLayoutFile) {
		data, err := p.ms.readSmall(ocispec.ImageLayoutFile)
		if err != nil {
			return err
		}
		var l ocispec.ImageLayout
		if err := json.Unmarshal(data, &l); err != nil {
			return fmt.Errorf("archive member %s: %v: %w", ocispec.ImageLayoutFile, err, cache.ErrInvalid)
		}
		if l.Version != ocispec.ImageLayoutVersion {
			return fmt.Errorf("archive member %s: image layout version %q, want %q: %w", ocispec.ImageLayoutFile, l.Version, ocispec.ImageLayoutVersion, cache.ErrInvalid)
		}
	}
	data, err := p.ms.readSmall(ocispec.ImageIndexFile)
	if err != nil {
		return err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return fmt.Errorf("archive member %s: parse index: %v: %w", ocispec.ImageIndexFile, err, cache.ErrInvalid)
	}
	if idx.SchemaVersion != 2 {
		return fmt.Errorf("archive member %s: schemaVersion %d, want 2: %w", ocispec.ImageIndexFile, idx.SchemaVersion, cache.ErrInvalid)
	}
	for i, d := range idx.Manifests {
		names, err := ociNames(d)
		if err != nil {
			return fmt.Errorf("archive member %s: manifest %d: %w", ocispec.ImageIndexFile, i, err)
		}
		if err := p.planDescriptor(d, ocispec.ImageIndexFile, names, 0); err != nil {
			return err
		}
	}
	return nil
}

// planDescriptor plans the image that d, listed in the member from, describes:
// d is an image manifest, or an index in which the manifest for this platform
// is chosen.
func (p *loadPlan) planDescriptor(d ocispec.Descriptor, from string, names []string, depth int) error {
	data, name, err := p.blob(d, from)
	if err != nil {
		return err
	}
	kind, err := mediaTypeOf(d, data)
	if err != nil {
		return fmt.Errorf("archive member %s: %w", name, err)
	}
	switch kind {
	case ocispec.MediaTypeImageIndex, mediaTypeDockerManifestList:
		if depth >= maxIndexDepth {
			return fmt.Errorf("archive member %s: indexes nested more than %d deep: %w", name, maxIndexDepth, cache.ErrInvalid)
		}
		var idx ocispec.Index
		if err := json.Unmarshal(data, &idx); err != nil {
			return fmt.Errorf("archive member %s: parse index: %v: %w", name, err, cache.ErrInvalid)
		}
		if depth == 0 && kind == ocispec.MediaTypeImageIndex {
			return p.planIndex(d, data, idx, name, names) // load_index.go
		}
		pick, ok := choosePlatform(idx.Manifests)
		if !ok {
			return fmt.Errorf("archive member %s: index has no manifest for linux/%s: %w", name, runtime.GOARCH, cache.ErrInvalid)
		}
		return p.planDescriptor(pick, name, names, depth+1)
	case ocispec.MediaTypeImageManifest, mediaTypeDockerManifest:
		d.MediaType = kind
		return p.planManifest(d, data, name, names)
	}
	return fmt.Errorf("archive member %s: media type %q is neither an image manifest nor an index: %w", name, kind, cache.ErrInvalid)
}

// mediaTypeOf returns the media type of the manifest or index data that d
// describes, from d or else from data itself; the two must agree.
func mediaTypeOf(d ocispec.Descriptor, data []byte) (string, error) {
	var probe struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Config    json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return "", fmt.Errorf("parse manifest: %v: %w", err, cache.ErrInvalid)
	}
	switch {
	case d.MediaType != "" && probe.MediaType != "" && d.MediaType != probe.MediaType:
		return "", fmt.Errorf("media type %q, its descriptor says %q: %w", probe.MediaType, d.MediaType, cache.ErrInvalid)
	case d.MediaType != "":
		return d.MediaType, nil
	case probe.MediaType != "":
		return probe.MediaType, nil
	case probe.Manifests != nil:
		return ocispec.MediaTypeImageIndex, nil
	case probe.Config != nil:
		return ocispec.MediaTypeImageManifest, nil
	}
	return "", fmt.Errorf("neither an image manifest nor an index: %w", cache.ErrInvalid)
}

// choosePlatform picks from an index the manifest for linux on this machine's
// architecture, or else one that states no platform.
func choosePlatform(ds []ocispec.Descriptor) (ocispec.Descriptor, bool) {
	for _, d := range ds {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == runtime.GOARCH {
			return d, true
		}
	}
	for _, d := range ds {
		if d.Platform == nil {
			return d, true
		}
	}
	return ocispec.Descriptor{}, false
}

// planManifest plans the image of the manifest data (member name), which d describes.
func (p *loadPlan) planManifest(d ocispec.Descriptor, data []byte, name string, names []string) error {
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("archive member %s: parse manifest: %v: %w", name, err, cache.ErrInvalid)
	}
	if m.SchemaVersion != 2 {
		return fmt.Errorf("archive member %s: manifest schemaVersion %d, want 2: %w", name, m.SchemaVersion, cache.ErrInvalid)
	}
	config, configName, err := p.blob(m.Config, name)
	if err != nil {
		return err
	}
	if p.known(m.Config.Digest, names) {
		return nil
	}
	diffIDs, err := parseConfig(config, configName, len(m.Layers))
	if err != nil {
		return err
	}
	img := &loadImage{
		id:           m.Config.Digest,
		config:       config,
		manifest:     data,
		manifestDesc: ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size},
		names:        names,
	}
	for i, l := range m.Layers {
		if _, err := layer.CompressionFromMediaType(l.MediaType); err != nil {
			return fmt.Errorf("archive member %s: layer %d: %w", name, i, err)
		}
		if err := validDigest(l.Digest); err != nil {
			return fmt.Errorf("archive member %s: layer %d: %w", name, i, err)
		}
		lname := blobPath(l.Digest)
		mem, err := p.ms.lookup(lname)
		if err != nil {
			if len(l.URLs) > 0 {
				return fmt.Errorf("archive member %s: layer %s is a foreign layer, not in the archive: %w", name, l.Digest, cache.ErrInvalid)
			}
			return err
		}
		if mem.size != l.Size {
			return fmt.Errorf("archive member %s: %d bytes, manifest %s says %d: %w", lname, mem.size, name, l.Size, cache.ErrInvalid)
		}
		img.layers = append(img.layers, loadLayer{name: lname, member: mem, desc: l, diffID: diffIDs[i]})
	}
	p.add(img)
	return nil
}

// blob reads and verifies the metadata blob d, listed in the member from.
func (p *loadPlan) blob(d ocispec.Descriptor, from string) ([]byte, string, error) {
	if err := validDigest(d.Digest); err != nil {
		return nil, "", fmt.Errorf("archive member %s: %w", from, err)
	}
	name := blobPath(d.Digest)
	data, err := p.ms.readSmall(name)
	if err != nil {
		return nil, "", err
	}
	if int64(len(data)) != d.Size {
		return nil, "", fmt.Errorf("archive member %s: %d bytes, %s says %d: %w", name, len(data), from, d.Size, cache.ErrInvalid)
	}
	if got := digest.FromBytes(data); got != d.Digest {
		return nil, "", fmt.Errorf("archive member %s: content has digest %s: %w", name, got, cache.ErrInvalid)
	}
	return data, name, nil
}

// validDigest accepts the digests the store can hold.
func validDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("digest %q: %v: %w", d, err, cache.ErrInvalid)
	}
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("digest %s: only sha256 is supported: %w", d, cache.ErrInvalid)
	}
	return nil
}

// parseConfig checks an image config (member name) for a manifest of
// nLayers layers and returns its diff_ids.
func parseConfig(data []byte, name string, nLayers int) ([]digest.Digest, error) {
	var img ocispec.Image
	if err := json.Unmarshal(data, &img); err != nil {
		return nil, fmt.Errorf("archive member %s: parse image config: %v: %w", name, err, cache.ErrInvalid)
	}
	if img.RootFS.Type != "layers" {
		return nil, fmt.Errorf("archive member %s: rootfs type %q, want \"layers\": %w", name, img.RootFS.Type, cache.ErrInvalid)
	}
	if len(img.RootFS.DiffIDs) != nLayers {
		return nil, fmt.Errorf("archive member %s: config lists %d diff_ids for %d layers: %w", name, len(img.RootFS.DiffIDs), nLayers, cache.ErrInvalid)
	}
	for _, d := range img.RootFS.DiffIDs {
		if err := validDigest(d); err != nil {
			return nil, fmt.Errorf("archive member %s: diff_ids: %w", name, err)
		}
	}
	return img.RootFS.DiffIDs, nil
}
