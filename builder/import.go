package builder

import (
	"context"
	"encoding/json"
	"io"
	"runtime"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
)

// ImportSource is a root filesystem to import: a tar stream (plain, gzip or
// zstd) or a directory.
type ImportSource struct {
	Tar  io.Reader
	Dir  string
	Name string // shown in history: "Imported from NAME"
	// Platform is the platform of the root filesystem (nil: the host's).
	Platform *ocispec.Platform
}

// Import turns a root filesystem into a one-layer image, tagged with tag when
// it is not empty, and returns its ID.
func Import(ctx context.Context, s *cache.Store, src ImportSource, tag string) (digest.Digest, error) {
	if tag != "" {
		if _, err := cache.NormalizeName(tag); err != nil {
			return "", err
		}
	}
	var l cache.Layer
	var err error
	if src.Dir != "" {
		l, err = s.ImportDir(ctx, src.Dir)
	} else {
		l, err = s.ImportTar(ctx, src.Tar)
	}
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	platform := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if src.Platform != nil {
		platform = *src.Platform
	}
	img := dockerspec.DockerOCIImage{Image: ocispec.Image{
		Created:  &now,
		Platform: platform,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{l.DiffID}},
		History:  []ocispec.History{{Created: &now, CreatedBy: "Imported from " + src.Name, Comment: "kiln import"}},
	}}
	data, err := json.Marshal(img)
	if err != nil {
		return "", err
	}
	id, err := s.PutImage(ctx, data, cache.ImageOptions{Compression: layer.Gzip, OwnLayers: 1})
	if err != nil {
		return "", err
	}
	if tag != "" {
		if err := s.Tag(tag, id); err != nil {
			return "", err
		}
	}
	return id, nil
}
