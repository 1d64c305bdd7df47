package cache

import (
	"time"

	"github.com/opencontainers/go-digest"
)

// ImageUsage is `system df`'s view of the images, as docker's: an image is
// active while a container's lease holds it; Reclaimable is the size of the
// layers no active image uses (what image prune -a would free of them).
// Every size here is content bytes (ContentSize: the apparent size of the
// files, what `kiln images`, `kiln history` and `kiln layers` show, and
// docker's meaning), not the disk blocks they take.
type ImageUsage struct {
	Total, Active     int
	Size, Reclaimable int64
	Images            []ImageUse // by image ID
}

// ImageUse is one image's row of `system df -v`.
type ImageUse struct {
	ID      digest.Digest
	Name    string // its first name (normalized), or ""
	Created *time.Time
	// Size is the content size of its layers (as `kiln images`), Shared
	// that of those another image has too, Unique the rest.
	Size, Shared, Unique int64
	Containers           int // containers using it (their leases)
}

// ImageUsage measures the images: each layer's snapshot once, what images
// share, and what the containers' leases hold.
func (s *Store) ImageUsage() (ImageUsage, error) {
	var u ImageUsage
	ls, err := s.Leases()
	if err != nil {
		return u, err
	}
	users := map[digest.Digest]int{}
	for _, l := range ls {
		if l.Kind != KindContainer {
			continue
		}
		for _, id := range l.Images {
			users[id]++
		}
	}
	ids, err := s.ImageIDs()
	if err != nil {
		return u, err
	}
	layerSize := map[digest.Digest]int64{}
	usedBy := map[digest.Digest]int{} // layer -> images that have it
	inUse := map[digest.Digest]bool{} // layers of images with containers
	diffIDs := map[digest.Digest][]digest.Digest{}
	for _, id := range ids {
		img, _, err := s.Image(id)
		if err != nil {
			continue
		}
		seen := map[digest.Digest]bool{}
		for _, d := range img.RootFS.DiffIDs {
			if seen[d] {
				continue
			}
			seen[d] = true
			diffIDs[id] = append(diffIDs[id], d)
			usedBy[d]++
			if _, ok := layerSize[d]; !ok {
				if layerSize[d], err = s.ContentSize(d); err != nil {
					return u, err
				}
			}
			if users[id] > 0 {
				inUse[d] = true
			}
		}
		u.Total++
		if users[id] > 0 {
			u.Active++
		}
		row := ImageUse{ID: id, Containers: users[id], Created: img.Created}
		if names, _ := s.NamesOf(id); len(names) > 0 {
			row.Name = names[0]
		}
		u.Images = append(u.Images, row)
	}
	for d, n := range layerSize {
		u.Size += n
		if !inUse[d] {
			u.Reclaimable += n
		}
	}
	for i := range u.Images {
		r := &u.Images[i]
		for _, d := range diffIDs[r.ID] {
			r.Size += layerSize[d]
			if usedBy[d] > 1 {
				r.Shared += layerSize[d]
			}
		}
		r.Unique = r.Size - r.Shared
	}
	return u, nil
}
