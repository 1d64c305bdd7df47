package cache

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/opencontainers/go-digest"
)

// containerUse is what one container uses of the store.
type containerUse struct {
	ID     string
	Image  digest.Digest
	Layers []digest.Digest
}

// containerUses reads the "Image" and "Layers" of every
// <root>/containers/<id>/config.json (written by runner/container), sorted
// by container ID.
func (s *Store) containerUses() ([]containerUse, error) {
	ents, err := os.ReadDir(s.path("containers"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []containerUse
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
		u := containerUse{ID: e.Name()}
		if c.Image.Validate() == nil {
			u.Image = c.Image
		}
		for _, l := range c.Layers {
			if l.Validate() == nil {
				u.Layers = append(u.Layers, l)
			}
		}
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// ContainerRefs lists the images and layers that containers use. GC keeps
// them, so that a container's rootfs survives the removal of its image.
func (s *Store) ContainerRefs() (images, layers []digest.Digest, err error) {
	uses, err := s.containerUses()
	if err != nil {
		return nil, nil, err
	}
	for _, u := range uses {
		if u.Image != "" {
			images = append(images, u.Image)
		}
		layers = append(layers, u.Layers...)
	}
	return images, layers, nil
}
