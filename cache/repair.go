package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// repair removes what the checks found damaged: debris, then images with
// damaged parts (but those a lease holds, unless Force) and the references
// to them, cache records of damaged layers, damaged layers nothing kept
// needs, corrupt blobs; and it rewrites layer records naming lost blobs and
// image records naming a broken manifest.
func (c *checker) repair() error {
	s := c.s
	heldImages := map[digest.Digest]string{} // → the lease's holder
	heldLayers := map[digest.Digest]string{}
	for _, l := range c.leases {
		for _, id := range l.Images {
			heldImages[id] = l.Holder()
		}
		for _, d := range l.Layers {
			heldLayers[d] = l.Holder()
		}
	}
	var paths []string
	for p := range c.removeDebris {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if err := removeAll(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("repair: remove %s: %w", p, err)
		}
		c.removed(c.removeDebris[p], p)
	}
	ids := make([]digest.Digest, 0, len(c.badImages))
	for id := range c.badImages {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	kept := map[digest.Digest]bool{} // layers a kept image still uses
	for _, id := range ids {
		if holder, ok := heldImages[id]; ok && !c.opts.Force {
			for _, i := range c.badImages[id] {
				c.rep.Problems[i].Message += " (" + holder + " uses it: --force removes it)"
			}
			if img, _, err := s.Image(id); err == nil {
				for _, d := range img.RootFS.DiffIDs {
					kept[d] = true
				}
			}
			continue
		}
		if err := c.removeImage(id); err != nil {
			return err
		}
	}
	for d := range c.badLayers {
		if holder, ok := heldLayers[d]; ok && !c.opts.Force {
			c.problem(KindLayer, d.String(), "damaged but kept: %s uses it (--force removes it)", holder)
			continue
		}
		if kept[d] {
			continue
		}
		if err := s.Trash(s.layerPath(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("repair: remove layer %s: %w", d, err)
		}
		c.rep.Removed = append(c.rep.Removed, "layer "+d.String())
		c.markRepaired(KindLayer, d.String())
	}
	for d, blobs := range c.dropLayerBlobs {
		if c.badLayers[d] {
			continue
		}
		l, err := s.Layer(d)
		if err != nil {
			continue
		}
		var keep []ocispec.Descriptor
		for _, b := range l.Blobs {
			if !contains(blobs, b.Digest) {
				keep = append(keep, b)
			}
		}
		l.Blobs = keep
		data, err := json.Marshal(l)
		if err != nil {
			return err
		}
		if err := s.writeFileAtomic(s.layerPath(d, "layer.json"), data); err != nil {
			return fmt.Errorf("repair: layer %s: %w", d, err)
		}
		c.rep.Removed = append(c.rep.Removed, "layer "+d.String()+": lost blobs dropped from its record")
		c.markRepaired(KindLayer, d.String())
	}
	for id, i := range c.clearManifest {
		if _, gone := c.badImages[id]; gone && !c.rep.Problems[c.badImages[id][0]].Repaired {
			continue
		}
		rec, err := s.imageRecord(id)
		if err != nil {
			c.rep.Problems[i].Repaired = true // the image went
			continue
		}
		rec.Manifest = nil
		if err := s.writeImageRecord(id, rec); err != nil {
			return fmt.Errorf("repair: image %s: %w", id, err)
		}
		c.removed(i, "image "+id.String()+": manifest record (made again when needed)")
	}
	for d := range c.badBlobs {
		if err := os.Remove(s.blobPath(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("repair: remove blob %s: %w", d, err)
		}
		c.rep.Removed = append(c.rep.Removed, "blob "+d.String())
		c.markRepaired(KindBlob, d.String())
	}
	// References to images that are gone.
	refsFixed := map[string]bool{}
	err := s.updateRefs(func(refs map[string]digest.Digest) error {
		for n, id := range refs {
			if !s.isImage(id) {
				delete(refs, n)
				refsFixed[n] = true
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("repair: references: %w", err)
	}
	names := make([]string, 0, len(refsFixed))
	for n := range refsFixed {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c.rep.Removed = append(c.rep.Removed, "reference "+n)
		c.markRepaired(KindReference, n)
	}
	return nil
}

// removeImage removes an image record and marks its problems repaired.
func (c *checker) removeImage(id digest.Digest) error {
	if err := os.Remove(c.s.imagePath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("repair: remove image %s: %w", id, err)
	}
	c.rep.Removed = append(c.rep.Removed, "image "+id.String())
	for _, i := range c.badImages[id] {
		c.rep.Problems[i].Repaired = true
	}
	return nil
}

func (c *checker) markRepaired(kind, object string) {
	for i := range c.rep.Problems {
		if p := &c.rep.Problems[i]; p.Kind == kind && p.Object == object && !strings.Contains(p.Message, "--force") {
			p.Repaired = true
		}
	}
}

func contains(ds []digest.Digest, d digest.Digest) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}
