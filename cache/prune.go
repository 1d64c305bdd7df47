package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
)

// PruneOptions say which build cache records PruneBuildCache removes.
type PruneOptions struct {
	// All removes records whose layers images still use too; without it only
	// the cache no image needs goes.
	All bool
	// KeepStorage keeps the most recently used records while their layers
	// take at most this many bytes (0: no such limit).
	KeepStorage int64
	// Until only removes records last used longer ago than this (0: any).
	Until time.Duration
	// Match, when not nil, keeps the records it returns false for.
	Match func(CachedStep) bool
}

// PruneResult is what a prune removed.
type PruneResult struct {
	Records int
	// Freed is the disk space the store gave back, measured on the removed
	// files themselves.
	Freed int64
}

// PruneBuildCache removes build cache records, least recently used first,
// and then the layers, blobs and file lists only they kept. The sweep waits
// until no other kiln process has the store open, so a prune beside a build
// never removes what that build uses.
func (s *Store) PruneBuildCache(ctx context.Context, opts PruneOptions, waiting func()) (PruneResult, error) {
	recs, err := s.CacheRecords()
	if err != nil {
		return PruneResult{}, err
	}
	inImages, err := s.imageLayers()
	if err != nil {
		return PruneResult{}, err
	}
	sizes := map[digest.Digest]int64{}
	var kept int64
	var res PruneResult
	// recs is most recently used first: walk it keeping records until the
	// storage budget is spent, then remove the rest of the candidates.
	for _, r := range recs {
		candidate := (opts.All || !inImages[r.DiffID]) &&
			(opts.Until == 0 || time.Since(r.LastUsed) > opts.Until) &&
			(opts.Match == nil || opts.Match(r))
		size := int64(0)
		if r.DiffID != "" {
			if _, seen := sizes[r.DiffID]; !seen {
				sizes[r.DiffID] = SpaceOnDisk(s.layerPath(r.DiffID))
				size = sizes[r.DiffID]
			}
		}
		if !candidate || (opts.KeepStorage > 0 && kept+size <= opts.KeepStorage) {
			kept += size
			continue
		}
		res.Freed += SpaceOnDisk(s.recordPath(r.Key))
		if err := s.RemoveCacheRecord(r.Key); err != nil {
			return res, fmt.Errorf("remove cache record %s: %w", r.Key, err)
		}
		res.Records++
	}
	freed, err := s.gcWait(ctx, waiting)
	res.Freed += freed
	return res, err
}

// gcWait runs GC, waiting for other kiln processes to close the store,
// and then for the trash to be deleted: the space a prune reports is free
// when it returns.
func (s *Store) gcWait(ctx context.Context, waiting func()) (int64, error) {
	told := false
	for {
		freed, err := s.gc(ctx)
		if !errors.Is(err, ErrBusy) {
			if err == nil {
				err = WaitTrash(s.root)
			}
			return freed, err
		}
		if !told && waiting != nil {
			waiting()
			told = true
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// imageLayers is the set of layers some image uses.
func (s *Store) imageLayers() (map[digest.Digest]bool, error) {
	ids, err := s.ImageIDs()
	if err != nil {
		return nil, err
	}
	out := map[digest.Digest]bool{}
	for _, id := range ids {
		img, _, err := s.Image(id)
		if err != nil {
			continue
		}
		for _, d := range img.RootFS.DiffIDs {
			out[d] = true
		}
	}
	return out, nil
}

// DiskUsage is what `system df` reports of the store.
type DiskUsage struct {
	Images, ImagesSize, ImagesReclaimable int64
	UnusedImages                          int
	CacheRecords, CacheSize               int64
	CacheReclaimable                      int64
	// Trash is what no image, cache record or container uses any more
	// and the deleter has yet to remove (counted in no other figure:
	// its space is already being given back).
	Trash int64
}

// Usage measures the store: images (their layers, each counted once) and the
// build cache (layers only cache records keep, which a prune can free).
func (s *Store) Usage() (DiskUsage, error) {
	var u DiskUsage
	ids, err := s.ImageIDs()
	if err != nil {
		return u, err
	}
	refs, err := s.References()
	if err != nil {
		return u, err
	}
	named := map[digest.Digest]bool{}
	for _, id := range refs {
		named[id] = true
	}
	counted := map[digest.Digest]bool{}
	usedByNamed := map[digest.Digest]bool{}
	for _, id := range ids {
		if img, _, err := s.Image(id); err == nil && named[id] {
			for _, d := range img.RootFS.DiffIDs {
				usedByNamed[d] = true
			}
		}
	}
	for _, id := range ids {
		u.Images++
		if !named[id] {
			u.UnusedImages++
		}
		img, _, err := s.Image(id)
		if err != nil {
			continue
		}
		for _, d := range img.RootFS.DiffIDs {
			if counted[d] {
				continue
			}
			counted[d] = true
			n := SpaceOnDisk(s.layerPath(d))
			u.ImagesSize += n
			if !usedByNamed[d] {
				u.ImagesReclaimable += n
			}
		}
	}
	recs, err := s.CacheRecords()
	if err != nil {
		return u, err
	}
	for _, r := range recs {
		u.CacheRecords++
		if r.DiffID == "" || counted[r.DiffID] {
			continue
		}
		counted[r.DiffID] = true
		n := SpaceOnDisk(s.layerPath(r.DiffID))
		u.CacheSize += n
		u.CacheReclaimable += n
	}
	u.Trash = s.TrashSize()
	return u, nil
}
