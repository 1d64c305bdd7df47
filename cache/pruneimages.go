package cache

import (
	"context"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PruneImagesOptions say which images PruneImages removes.
type PruneImagesOptions struct {
	// All removes every image no lease holds, untagging it first; without
	// it only the untagged (dangling) ones go.
	All bool
	// Until, when not zero, keeps the images created at or after it.
	Until time.Time
	// Waiting, when not nil, is called once if the collection has to wait
	// for other kiln processes to close the store.
	Waiting func()
	// Match, when not nil, keeps the images it returns false for (the
	// label filters of a prune).
	Match func(id digest.Digest, img ocispec.Image) bool
}

// PrunedImage is an image PruneImages removed, and the names it untagged
// from it first.
type PrunedImage struct {
	ID       digest.Digest
	Untagged []string
}

// PruneImagesResult is what PruneImages removed, in order, and the disk
// space freed: the image records and what the collection then removed,
// each measured as it goes.
type PruneImagesResult struct {
	Images []PrunedImage
	Freed  int64
}

// PruneImages removes the images no lease holds (no container uses them,
// no running build made them) that opts selects, then the content only
// they kept: it waits for the other kiln processes to close the store to
// collect it, as docker's image prune.
func (s *Store) PruneImages(ctx context.Context, opts PruneImagesOptions) (PruneImagesResult, error) {
	var res PruneImagesResult
	held, err := s.leasedImages()
	if err != nil {
		return res, err
	}
	if err := s.pruneIndexes(opts, held, &res); err != nil {
		return res, err
	}
	indexed, err := s.IndexedImages()
	if err != nil {
		return res, err
	}
	ids, err := s.ImageIDs()
	if err != nil {
		return res, err
	}
	for _, id := range ids {
		if held[id] > 0 || indexed[id] > 0 {
			continue // a container or build uses it, or an index that stays lists it
		}
		names, err := s.NamesOf(id)
		if err != nil {
			return res, err
		}
		if len(names) > 0 && !opts.All {
			continue
		}
		if !opts.Until.IsZero() || opts.Match != nil {
			img, _, err := s.Image(id)
			if err != nil {
				continue
			}
			if !opts.Until.IsZero() && (img.Created == nil || !img.Created.Before(opts.Until)) {
				continue
			}
			if opts.Match != nil && !opts.Match(id, img) {
				continue
			}
		}
		p := PrunedImage{ID: id}
		for _, n := range names {
			if _, err := s.Untag(n); err != nil {
				return res, err
			}
			p.Untagged = append(p.Untagged, n)
		}
		record := SpaceOnDisk(s.imagePath(id))
		if err := s.DeleteImage(id); err != nil {
			if len(p.Untagged) > 0 {
				res.Images = append(res.Images, PrunedImage{Untagged: p.Untagged})
			}
			return res, err
		}
		res.Images = append(res.Images, p)
		res.Freed += record
	}
	n, err := s.gcWait(ctx, opts.Waiting)
	res.Freed += n
	return res, err
}

// leasedImages counts, for each image, the leases in force holding it.
func (s *Store) leasedImages() (map[digest.Digest]int, error) {
	ls, err := s.Leases()
	if err != nil {
		return nil, err
	}
	held := map[digest.Digest]int{}
	for _, l := range ls {
		for _, id := range l.Images {
			held[id]++
		}
	}
	return held, nil
}

// pruneIndexes removes the indexes prune selects: the untagged ones, or
// with All those none of whose images a lease holds. Their images are then
// pruned as images no index lists.
func (s *Store) pruneIndexes(opts PruneImagesOptions, held map[digest.Digest]int, res *PruneImagesResult) error {
	idxs, err := s.IndexIDs()
	if err != nil {
		return err
	}
	for _, d := range idxs {
		names, err := s.NamesOf(d)
		if err != nil {
			return err
		}
		if len(names) > 0 && !opts.All {
			continue
		}
		_, images, err := s.Index(d)
		if err != nil {
			continue
		}
		inUse := held[d] > 0
		for _, im := range images {
			inUse = inUse || held[im.Image] > 0
		}
		if inUse {
			continue
		}
		p := PrunedImage{ID: d}
		for _, n := range names {
			if _, err := s.Untag(n); err != nil {
				return err
			}
			p.Untagged = append(p.Untagged, n)
		}
		if err := s.DeleteIndex(d); err != nil {
			return err
		}
		res.Images = append(res.Images, p)
	}
	return nil
}
