package imageview

import "github.com/kiln-build/kiln/cache"

// AnalyzeImage analyses the image the store knows by name or ID.
func AnalyzeImage(s *cache.Store, name string) (*Analysis, error) {
	id, err := s.Resolve(name)
	if err != nil {
		return nil, err
	}
	img, _, err := s.Image(id)
	if err != nil {
		return nil, err
	}
	return Analyze(s, id, img)
}
