package cache

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
)

// ContainerRefs lists the images and layers that containers use: the
// "Image" and "Layers" of every <root>/containers/<id>/config.json (written
// by runner/container). GC keeps them, so that a container's rootfs
// survives the removal of its image.
func (s *Store) ContainerRefs() (images, layers []digest.Digest, err error) {
	ents, err := os.ReadDir(s.path("containers"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(s.path("containers"), e.Name(), "config.json"))
		if err != nil {
			continue // not a container, or one being created or removed
		}
		var c struct {
			Image  digest.Digest
			Layers []digest.Digest
		}
		if json.Unmarshal(data, &c) != nil {
			continue
		}
		if c.Image.Validate() == nil {
			images = append(images, c.Image)
		}
		for _, l := range c.Layers {
			if l.Validate() == nil {
				layers = append(layers, l)
			}
		}
	}
	return images, layers, nil
}
