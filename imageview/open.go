package imageview

import (
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
)

// AnalyzeImage analyses the image the store knows by name or ID. Of a
// multi-platform image (an index) it is the image of platform p, or of the
// host's platform when p is nil.
func AnalyzeImage(s *cache.Store, name string, p *ocispec.Platform) (*Analysis, error) {
	var id digest.Digest
	var err error
	if p != nil {
		id, err = s.ResolvePlatform(name, *p)
	} else {
		id, err = s.Resolve(name)
	}
	if err != nil {
		return nil, err
	}
	img, _, err := s.Image(id)
	if err != nil {
		return nil, err
	}
	return Analyze(s, id, img)
}
