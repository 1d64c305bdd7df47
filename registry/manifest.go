package registry

import (
	"encoding/json"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
)

// maxManifest bounds the size of a manifest or config read into memory, as
// the store does.
const maxManifest = 16 << 20

// mediaTypeOf is the media type a manifest declares, else the one the
// registry served it with.
func mediaTypeOf(raw []byte, served string) string {
	var probe struct {
		MediaType string `json:"mediaType"`
	}
	if json.Unmarshal(raw, &probe) == nil && probe.MediaType != "" {
		return probe.MediaType
	}
	return served
}

func isIndex(mt string) bool {
	return mt == string(types.OCIImageIndex) || mt == string(types.DockerManifestList)
}

func isImageManifest(mt string) bool {
	return mt == string(types.OCIManifestSchema1) || mt == string(types.DockerManifestSchema2)
}

func isConfig(mt string) bool {
	return mt == string(types.OCIConfigJSON) || mt == string(types.DockerConfigJSON)
}

// parseIndex parses an OCI index or docker manifest list.
func parseIndex(raw []byte, d digest.Digest) (ocispec.Index, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return idx, fmt.Errorf("index %s does not parse: %v: %w", d, err, cache.ErrInvalid)
	}
	if idx.SchemaVersion != 2 {
		return idx, fmt.Errorf("index %s: schemaVersion %d, expected 2: %w", d, idx.SchemaVersion, cache.ErrInvalid)
	}
	for _, m := range idx.Manifests {
		if m.Digest.Validate() != nil || m.Size < 0 {
			return idx, fmt.Errorf("index %s: bad manifest descriptor %q: %w", d, m.Digest, cache.ErrInvalid)
		}
	}
	return idx, nil
}

// pickPlatform returns the index's image manifest for the platform.
func pickPlatform(idx ocispec.Index, d digest.Digest, want v1.Platform) (ocispec.Descriptor, error) {
	var have []string
	for _, m := range idx.Manifests {
		if m.Platform == nil || !isImageManifest(m.MediaType) {
			continue
		}
		p := v1.Platform{OS: m.Platform.OS, Architecture: m.Platform.Architecture, Variant: m.Platform.Variant, OSVersion: m.Platform.OSVersion}
		have = append(have, p.String())
		if p.Satisfies(want) {
			return m, nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("index %s has no image for %s (it has %s): %w", d, want.String(), strings.Join(have, ", "), ErrUnsupported)
}

// parseImageManifest parses and checks an image manifest: its config must be
// an image config and every layer a layer kiln can read.
func parseImageManifest(raw []byte, mt string, d digest.Digest) (ocispec.Manifest, error) {
	if strings.HasPrefix(mt, "application/vnd.docker.distribution.manifest.v1") {
		return ocispec.Manifest{}, fmt.Errorf("manifest %s is docker schema 1, which kiln does not read: %w", d, ErrUnsupported)
	}
	if !isImageManifest(mt) {
		return ocispec.Manifest{}, fmt.Errorf("manifest %s has media type %q, not an image manifest: %w", d, mt, ErrUnsupported)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("manifest %s does not parse: %v: %w", d, err, cache.ErrInvalid)
	}
	if m.SchemaVersion != 2 {
		return m, fmt.Errorf("manifest %s: schemaVersion %d, expected 2: %w", d, m.SchemaVersion, cache.ErrInvalid)
	}
	if !isConfig(m.Config.MediaType) {
		return m, fmt.Errorf("manifest %s: config media type %q is not an image config: %w", d, m.Config.MediaType, ErrUnsupported)
	}
	if m.Config.Digest.Validate() != nil || m.Config.Size < 0 || m.Config.Size > maxManifest {
		return m, fmt.Errorf("manifest %s: bad config descriptor %q (%d bytes): %w", d, m.Config.Digest, m.Config.Size, cache.ErrInvalid)
	}
	for _, l := range m.Layers {
		if l.Digest.Validate() != nil || l.Size < 0 {
			return m, fmt.Errorf("manifest %s: bad layer descriptor %q: %w", d, l.Digest, cache.ErrInvalid)
		}
		if _, err := layer.CompressionFromMediaType(l.MediaType); err != nil {
			return m, fmt.Errorf("manifest %s: layer %s has media type %q: %w", d, l.Digest, l.MediaType, ErrUnsupported)
		}
	}
	return m, nil
}

// parseConfig checks that an image config parses and lists one diffID per
// layer of the manifest.
func parseConfig(raw []byte, m ocispec.Manifest) (ocispec.Image, error) {
	var img ocispec.Image
	if err := json.Unmarshal(raw, &img); err != nil {
		return img, fmt.Errorf("config %s does not parse: %v: %w", m.Config.Digest, err, cache.ErrInvalid)
	}
	if img.RootFS.Type != "layers" {
		return img, fmt.Errorf("config %s: rootfs type %q, expected \"layers\": %w", m.Config.Digest, img.RootFS.Type, cache.ErrInvalid)
	}
	if len(img.RootFS.DiffIDs) != len(m.Layers) {
		return img, fmt.Errorf("config %s lists %d diff_ids for the manifest's %d layers: %w", m.Config.Digest, len(img.RootFS.DiffIDs), len(m.Layers), cache.ErrInvalid)
	}
	for _, d := range img.RootFS.DiffIDs {
		if d.Validate() != nil {
			return img, fmt.Errorf("config %s: bad diff_id %q: %w", m.Config.Digest, d, cache.ErrInvalid)
		}
	}
	return img, nil
}

// Format is the manifest format of a push.
type Format string

const (
	// FormatKeep pushes the manifest the image has.
	FormatKeep Format = ""
	// FormatOCI pushes an OCI image manifest.
	FormatOCI Format = "oci"
	// FormatDocker pushes a Docker v2 schema 2 manifest.
	FormatDocker Format = "docker"
)

// ParseFormat parses a --format value: oci or docker (v2s2 is an alias).
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "":
		return FormatKeep, nil
	case "oci":
		return FormatOCI, nil
	case "docker", "v2s2":
		return FormatDocker, nil
	}
	return "", fmt.Errorf("format %q: want oci or docker: %w", s, cache.ErrInvalid)
}

// layerMediaTypes maps each layer media type to its counterpart in the other format.
var (
	toDocker = map[string]string{
		ocispec.MediaTypeImageLayerGzip: string(types.DockerLayer),
		ocispec.MediaTypeImageLayer:     string(types.DockerUncompressedLayer),
	}
	toOCI = map[string]string{
		string(types.DockerLayer):             ocispec.MediaTypeImageLayerGzip,
		string(types.DockerUncompressedLayer): ocispec.MediaTypeImageLayer,
	}
)

// convertManifest rewrites an image manifest in format f. The config and
// layer blobs stay the same bytes; only media types change (and with them the
// manifest's digest). It returns raw unchanged when it already has format f.
func convertManifest(raw []byte, m ocispec.Manifest, mt string, f Format) ([]byte, string, error) {
	switch {
	case f == FormatKeep,
		f == FormatOCI && mt == ocispec.MediaTypeImageManifest,
		f == FormatDocker && mt == string(types.DockerManifestSchema2):
		return raw, mt, nil
	}
	out := m
	out.Layers = make([]ocispec.Descriptor, len(m.Layers))
	conv, configMT, manifestMT := toOCI, ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageManifest
	if f == FormatDocker {
		conv, configMT, manifestMT = toDocker, string(types.DockerConfigJSON), string(types.DockerManifestSchema2)
		// Docker's schema has no annotations, artifact type or subject.
		out.Annotations, out.ArtifactType, out.Subject = nil, "", nil
	}
	out.MediaType = manifestMT
	out.Config = ocispec.Descriptor{MediaType: configMT, Digest: m.Config.Digest, Size: m.Config.Size}
	for i, l := range m.Layers {
		lmt, ok := conv[l.MediaType]
		if !ok {
			if f == FormatOCI && strings.HasPrefix(l.MediaType, "application/vnd.oci.") {
				lmt = l.MediaType // zstd and the like are OCI already
			} else {
				return nil, "", fmt.Errorf("layer %s has media type %q, which has no %s equivalent: %w", l.Digest, l.MediaType, f, ErrUnsupported)
			}
		}
		nl := ocispec.Descriptor{MediaType: lmt, Digest: l.Digest, Size: l.Size, URLs: l.URLs}
		if f == FormatOCI {
			nl.Annotations = l.Annotations
		}
		out.Layers[i] = nl
	}
	data, err := json.Marshal(out)
	if err != nil {
		return nil, "", err
	}
	return data, manifestMT, nil
}
