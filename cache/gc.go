package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/layer"
)

// ErrBusy: another kiln process has the store open, so garbage collection was deferred.
var ErrBusy = errors.New("store in use by another kiln process")

// GC removes what no image record, build cache record or lease reaches:
// blobs, layers with their snapshots, and debris left in tmp/ by crashed
// processes. It is mark and sweep, rooted at the image records, the cache
// records and the leases in force (it first removes those that have ended).
// What it removes goes to the trash, which a deleter empties in the
// background (see trash.go). It needs the store to itself: if another
// process holds it open, GC does nothing and returns ErrBusy. It returns the
// bytes freed.
func (s *Store) GC(ctx context.Context) (int64, error) {
	freed, err := s.gc(ctx)
	if !trashEmpty(s.root) {
		err = errors.Join(err, s.startDeleter())
	}
	return freed, err
}

// gc is GC but for the deletion of what it moved to the trash.
func (s *Store) gc(ctx context.Context) (int64, error) {
	if err := flock(s.lock, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return 0, ErrBusy
		}
		return 0, err
	}
	defer flock(s.lock, unix.LOCK_SH)

	blobs := map[digest.Digest]bool{}
	layers := map[digest.Digest]bool{}
	markLayer := func(d digest.Digest) {
		layers[d] = true
		if l, err := s.Layer(d); err == nil {
			for _, b := range l.Blobs {
				blobs[b.Digest] = true
			}
		}
	}
	ids, err := s.ImageIDs()
	if err != nil {
		return 0, err
	}
	if err := s.sweepLeases(); err != nil {
		return 0, err
	}
	lImages, lLayers, lBlobs, err := s.leaseRoots()
	if err != nil {
		return 0, err
	}
	for _, id := range lImages {
		blobs[id] = true // the config, even when the image record is gone
	}
	for _, d := range lLayers {
		layers[d] = true
	}
	for _, d := range lBlobs {
		blobs[d] = true
	}
	for _, id := range ids {
		blobs[id] = true
		if rec, err := s.imageRecord(id); err == nil && rec.Manifest != nil {
			blobs[rec.Manifest.Digest] = true
			if data, err := s.ReadBlob(rec.Manifest.Digest); err == nil {
				var m ocispec.Manifest
				if json.Unmarshal(data, &m) == nil {
					for _, l := range m.Layers {
						blobs[l.Digest] = true
					}
				}
			}
		}
		img, _, err := s.Image(id)
		if err != nil {
			continue // an unreadable config keeps nothing alive but itself
		}
		for _, d := range img.RootFS.DiffIDs {
			markLayer(d)
		}
	}

	// Indexes keep their blob (their images are image records, kept above).
	idxs, err := s.IndexIDs()
	if err != nil {
		return 0, err
	}
	for _, d := range idxs {
		blobs[d] = true
	}

	// Build cache records keep their layers, and their file lists.
	recs, err := s.CacheRecords()
	if err != nil {
		return 0, err
	}
	files := map[string]bool{}
	for _, r := range recs {
		if r.DiffID != "" {
			markLayer(r.DiffID)
		}
		if r.Inputs.Files != "" {
			files[r.Inputs.Files.Encoded()+".json"] = true
		}
	}

	var freed int64
	parents := map[string]bool{}
	for _, r := range recs {
		parents[r.Parent.Encoded()] = true
	}
	if ents, err := os.ReadDir(s.path("buildcache", "parents")); err == nil {
		for _, e := range ents {
			if !parents[e.Name()] {
				os.Remove(s.path("buildcache", "parents", e.Name()))
			}
		}
	}
	// The notes of the latest record per parent and instruction go with it.
	keys := map[string]bool{}
	for _, r := range recs {
		keys[string(r.Key)] = true
	}
	if ents, err := os.ReadDir(s.path("buildcache", "last")); err == nil {
		for _, e := range ents {
			p := s.path("buildcache", "last", e.Name())
			if key, err := os.ReadFile(p); err != nil || !keys[string(key)] {
				os.Remove(p)
			}
		}
	}
	if ents, err := os.ReadDir(s.path("buildcache", "files")); err == nil {
		for _, e := range ents {
			if !files[e.Name()] {
				p := s.path("buildcache", "files", e.Name())
				freed += SpaceOnDisk(p)
				os.Remove(p)
			}
		}
	}
	ents, err := os.ReadDir(s.path("layers"))
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if !layers[d] {
			freed += SpaceOnDisk(s.path("layers", e.Name()))
			// Out of layers/ in one rename, then deleted in the background:
			// a kill never leaves a record over a half-removed snapshot.
			if _, err := s.moveToTrash(s.path("layers", e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return freed, fmt.Errorf("remove layer %s: %w", d, err)
			}
		}
	}
	ents, err = os.ReadDir(s.path("blobs", "sha256"))
	if err != nil {
		return freed, err
	}
	for _, e := range ents {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if !blobs[d] {
			freed += SpaceOnDisk(s.path("blobs", "sha256", e.Name()))
			if err := os.Remove(s.path("blobs", "sha256", e.Name())); err != nil {
				return freed, err
			}
		}
	}
	n, err := s.sweepTmp()
	return freed + n, err
}

// sweepTmp moves everything in tmp/ to the trash (the caller starts a
// deleter), and removes the temp files outside the store that notes there
// name. It returns the space that frees. The caller holds the store
// exclusively.
func (s *Store) sweepTmp() (int64, error) {
	ents, err := os.ReadDir(s.path("tmp"))
	if err != nil {
		return 0, err
	}
	var freed int64
	for _, e := range ents {
		p := s.path("tmp", e.Name())
		if ext, ok := s.externalTemp(e.Name()); ok {
			// The temp file of a killed process, outside the store.
			freed += SpaceOnDisk(ext)
			os.Remove(ext)
		}
		freed += SpaceOnDisk(p)
		if _, err := s.moveToTrash(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return freed, err
		}
	}
	// The stat cache writes its temp files beside its files.
	stats, _ := os.ReadDir(s.path("statcache"))
	for _, e := range stats {
		if !strings.HasSuffix(e.Name(), statCacheExt) {
			p := s.path("statcache", e.Name())
			freed += SpaceOnDisk(p)
			os.Remove(p)
		}
	}
	return freed, nil
}

// SpaceOnDisk is the space the tree at path occupies on disk, as du(1)
// counts it: the blocks of every inode, directories included, each
// hard-linked inode once.
func SpaceOnDisk(path string) int64 {
	u, _ := layer.DiskUsage(path)
	return u.Disk
}

// removeAll removes a tree even where it holds read-only directories.
func removeAll(path string) error {
	err := os.RemoveAll(path)
	if err == nil {
		return nil
	}
	filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(path)
}
