package cache

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/layer"
)

// CheckOptions say how deep Check looks and what it may change, with the
// meanings of podman's `system check`.
type CheckOptions struct {
	// Quick skips re-hashing layer snapshots (blobs are still hashed).
	Quick bool
	// Repair removes what is damaged or half-made, the images that depend
	// on it, and the references and cache records pointing at those.
	Repair bool
	// Force lets Repair remove images (and layers) that leases hold too
	// (a container's, a running build's).
	Force bool
	// Waiting, when not nil, is called once if Repair has to wait for other
	// kiln processes to close the store.
	Waiting func()
}

// Problem kinds.
const (
	KindBlob        = "blob"
	KindLayer       = "layer"
	KindImage       = "image"
	KindReference   = "reference"
	KindCacheRecord = "cache-record"
	KindCacheMount  = "cache-mount"
	KindContainer   = "container" // a container's lease: a lease's problems are of its Kind

	KindDebris = "debris"
)

// Problem is one thing wrong in the store.
type Problem struct {
	Kind string `json:"kind"`
	// Object names what is wrong: a digest, a reference, or a path.
	Object  string `json:"object"`
	Message string `json:"message"`
	// Repaired says that Repair dealt with it (Removed lists how).
	Repaired bool `json:"repaired"`
}

func (p Problem) String() string {
	s := p.Kind + " " + p.Object + ": " + p.Message
	if p.Repaired {
		s += " (repaired)"
	}
	return s
}

// CheckReport is what Check found and, with Repair, removed.
type CheckReport struct {
	Blobs        int `json:"blobs"`
	Layers       int `json:"layers"`
	Images       int `json:"images"`
	References   int `json:"references"`
	CacheRecords int `json:"cacheRecords"`
	// Problems in the order found.
	Problems []Problem `json:"problems"`
	// Removed lists what Repair removed or rewrote, one object a line.
	Removed []string `json:"removed"`
	// DebrisSkipped: other kiln processes had the store open, so the temp
	// files in it may be theirs and were not judged.
	DebrisSkipped bool `json:"debrisSkipped,omitempty"`
}

// Clean reports whether nothing is wrong (or everything was repaired).
func (r CheckReport) Clean() bool {
	for _, p := range r.Problems {
		if !p.Repaired {
			return false
		}
	}
	return true
}

// checker holds the state of one Check.
type checker struct {
	s    *Store
	ctx  context.Context
	opts CheckOptions
	rep  CheckReport

	badBlobs   map[digest.Digest]bool  // corrupt or wrongly named
	blobSizes  map[digest.Digest]int64 // every well-formed blob
	goodLayers map[digest.Digest]bool
	badLayers  map[digest.Digest]bool // records that exist but are damaged
	badImages  map[digest.Digest][]int
	leases     []Lease // in force: what containers and builds hold

	// repair work, decided while checking
	dropLayerBlobs map[digest.Digest][]digest.Digest
	clearManifest  map[digest.Digest]int
	removeDebris   map[string]int // path → problem index
}

// Check verifies the store: blob digests and sizes; that every layer record
// has its snapshot and (unless Quick) that the snapshot, or for a layer
// loaded as a blob its blob, still gives the recorded diffID; that images,
// their configs, layers and manifests, references, cache records and cache
// mounts resolve; and it reports debris (temp files of killed processes,
// half-made or half-removed layers). With Repair it removes what is damaged.
//
// Check and Repair hold the store exclusively while they judge temp files:
// Repair waits for that, a plain Check skips the judgement when the store
// is busy (DebrisSkipped).
func (s *Store) Check(ctx context.Context, opts CheckOptions) (CheckReport, error) {
	c := &checker{
		s: s, ctx: ctx, opts: opts,
		badBlobs: map[digest.Digest]bool{}, blobSizes: map[digest.Digest]int64{},
		goodLayers: map[digest.Digest]bool{}, badLayers: map[digest.Digest]bool{},
		badImages:      map[digest.Digest][]int{},
		dropLayerBlobs: map[digest.Digest][]digest.Digest{},
		clearManifest:  map[digest.Digest]int{}, removeDebris: map[string]int{},
		rep: CheckReport{Problems: []Problem{}, Removed: []string{}},
	}
	exclusive, err := s.lockExclusive(ctx, opts.Repair, opts.Waiting)
	if err != nil {
		return c.rep, err
	}
	if exclusive {
		defer flock(s.lock, unix.LOCK_SH)
		if err := c.checkTemp(); err != nil {
			return c.rep, err
		}
		if !opts.Repair {
			// Temp files judged: let other processes in while hashing.
			flock(s.lock, unix.LOCK_SH)
		}
	} else {
		c.rep.DebrisSkipped = true
	}
	if c.leases, err = s.Leases(); err != nil {
		return c.rep, err
	}
	for _, step := range []func() error{c.checkBlobs, c.checkLayers, c.checkImages, c.checkReferences, c.checkCacheRecords, c.checkCacheMounts, c.checkLeases} {
		if err := step(); err != nil {
			return c.rep, err
		}
	}
	if opts.Repair {
		if err := c.repair(); err != nil {
			return c.rep, err
		}
	}
	return c.rep, nil
}

// lockExclusive takes the store's lock exclusively: waiting for it when
// wait is set, else only if no other process holds the store. The caller
// gives it back with flock(s.lock, LOCK_SH).
func (s *Store) lockExclusive(ctx context.Context, wait bool, waiting func()) (bool, error) {
	told := false
	for {
		err := flock(s.lock, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return false, fmt.Errorf("lock store %s: %w", s.root, err)
		}
		if !wait {
			return false, nil
		}
		if !told && waiting != nil {
			waiting()
			told = true
		}
		if err := sleepCtx(ctx, lockPoll); err != nil {
			return false, err
		}
	}
}

func (c *checker) problem(kind, object, format string, args ...any) int {
	c.rep.Problems = append(c.rep.Problems, Problem{Kind: kind, Object: object, Message: fmt.Sprintf(format, args...)})
	return len(c.rep.Problems) - 1
}

func (c *checker) removed(i int, what string) {
	if i >= 0 {
		c.rep.Problems[i].Repaired = true
	}
	c.rep.Removed = append(c.rep.Removed, what)
}

// checkTemp reports what killed processes left in tmp/ and statcache/.
func (c *checker) checkTemp() error {
	ents, err := os.ReadDir(c.s.path("tmp"))
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := c.s.path("tmp", e.Name())
		if ext, ok := c.s.externalTemp(e.Name()); ok {
			if _, err := os.Lstat(ext); err == nil {
				c.removeDebris[ext] = c.problem(KindDebris, ext, "temp file of a killed kiln save")
			}
		}
		c.removeDebris[p] = c.problem(KindDebris, p, "left in tmp/ by a killed kiln process")
	}
	ents, _ = os.ReadDir(c.s.path("statcache"))
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), statCacheExt) {
			p := c.s.path("statcache", e.Name())
			c.removeDebris[p] = c.problem(KindDebris, p, "temp file of a killed build")
		}
	}
	return nil
}

func (c *checker) checkBlobs() error {
	ents, err := os.ReadDir(c.s.path("blobs", "sha256"))
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		p := c.s.path("blobs", "sha256", e.Name())
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if d.Validate() != nil || !e.Type().IsRegular() {
			c.removeDebris[p] = c.problem(KindDebris, p, "not a blob")
			continue
		}
		c.rep.Blobs++
		got, n, err := hashFile(p)
		if err != nil {
			return fmt.Errorf("check blob %s: %w", d, err)
		}
		if got != d {
			c.badBlobs[d] = true
			c.problem(KindBlob, d.String(), "content has digest %s", got)
			continue
		}
		c.blobSizes[d] = n
	}
	return nil
}

func hashFile(p string) (digest.Digest, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return digest.NewDigest(digest.SHA256, h), n, err
}

// blobOK reports whether the blob is present, sound and of the given size.
func (c *checker) blobOK(d digest.Digest, size int64) (bool, string) {
	if c.badBlobs[d] {
		return false, "is corrupt"
	}
	n, ok := c.blobSizes[d]
	if !ok {
		return false, "is missing"
	}
	if size >= 0 && n != size {
		return false, fmt.Sprintf("has %d bytes, %d recorded", n, size)
	}
	return true, ""
}

func (c *checker) checkLayers() error {
	ents, err := os.ReadDir(c.s.path("layers"))
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		p := c.s.path("layers", e.Name())
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if d.Validate() != nil || !e.IsDir() {
			c.removeDebris[p] = c.problem(KindDebris, p, "not a layer directory")
			continue
		}
		l, err := c.s.Layer(d)
		if err != nil {
			// Invisible to every command (no record), replaced by the
			// next commit of that layer.
			c.removeDebris[p] = c.problem(KindDebris, p, "layer directory without a valid record (half-made or half-removed)")
			continue
		}
		c.rep.Layers++
		if fi, err := os.Stat(c.s.SnapshotDir(d)); err != nil || !fi.IsDir() {
			c.badLayers[d] = true
			c.problem(KindLayer, d.String(), "snapshot directory missing")
			continue
		}
		var good []ocispec.Descriptor
		for _, b := range l.Blobs {
			if ok, why := c.blobOK(b.Digest, b.Size); !ok {
				c.dropLayerBlobs[d] = append(c.dropLayerBlobs[d], b.Digest)
				c.problem(KindLayer, d.String(), "blob %s %s", b.Digest, why)
				continue
			}
			good = append(good, b)
		}
		if !l.Canonical && len(good) == 0 {
			c.badLayers[d] = true
			c.problem(KindLayer, d.String(), "no sound blob and a snapshot that does not regenerate the layer: cannot be exported")
			continue
		}
		if c.opts.Quick {
			c.goodLayers[d] = true
			continue
		}
		if l.Canonical {
			res, err := layer.Write(c.ctx, io.Discard, c.s.SnapshotDir(d), layer.Uncompressed, layer.DiffOptions{})
			if err != nil {
				if c.ctx.Err() != nil {
					return c.ctx.Err()
				}
				c.badLayers[d] = true
				c.problem(KindLayer, d.String(), "snapshot unreadable: %v", err)
				continue
			}
			if res.DiffID != d || res.Size != l.Size {
				c.badLayers[d] = true
				c.problem(KindLayer, d.String(), "snapshot gives %s (%d bytes), recorded %d bytes", res.DiffID, res.Size, l.Size)
				continue
			}
		} else {
			// A snapshot extracted from a blob is checked through the blob:
			// it must still decompress to the diffID it was extracted from.
			got, n, err := c.diffIDOfBlob(good[0].Digest)
			if err != nil {
				if c.ctx.Err() != nil {
					return c.ctx.Err()
				}
				c.badLayers[d] = true
				c.problem(KindLayer, d.String(), "blob %s: %v", good[0].Digest, err)
				continue
			}
			if got != d || n != l.Size {
				c.badLayers[d] = true
				c.problem(KindLayer, d.String(), "blob %s decompresses to %s (%d bytes)", good[0].Digest, got, n)
				continue
			}
		}
		c.goodLayers[d] = true
	}
	return nil
}

func (c *checker) diffIDOfBlob(b digest.Digest) (digest.Digest, int64, error) {
	f, err := c.s.OpenBlob(b)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	rc, _, err := layer.Decompress(f)
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{c.ctx, rc})
	return digest.NewDigest(digest.SHA256, h), n, err
}

func (c *checker) damagedImage(id digest.Digest, format string, args ...any) {
	c.badImages[id] = append(c.badImages[id], c.problem(KindImage, id.String(), format, args...))
}

func (c *checker) checkImages() error {
	ents, err := os.ReadDir(c.s.path("images"))
	if err != nil {
		return err
	}
	for _, e := range ents {
		hex, ok := strings.CutSuffix(e.Name(), ".json")
		id := digest.NewDigestFromEncoded(digest.SHA256, hex)
		if !ok || id.Validate() != nil {
			p := c.s.path("images", e.Name())
			c.removeDebris[p] = c.problem(KindDebris, p, "not an image record")
			continue
		}
		c.rep.Images++
		rec, err := c.s.imageRecord(id)
		if err != nil {
			c.damagedImage(id, "record unreadable: %v", err)
			continue
		}
		if ok, why := c.blobOK(id, -1); !ok {
			c.damagedImage(id, "config blob %s", why)
			continue
		}
		img, _, err := c.s.Image(id)
		if err != nil {
			c.damagedImage(id, "config: %v", err)
			continue
		}
		for _, d := range img.RootFS.DiffIDs {
			if !c.goodLayers[d] {
				what := "is missing"
				if c.badLayers[d] {
					what = "is damaged"
				}
				c.damagedImage(id, "layer %s %s", d, what)
			}
		}
		if rec.Manifest != nil {
			if why := c.manifestProblem(id, *rec.Manifest, img); why != "" {
				// The manifest is made again from the layers when needed.
				c.clearManifest[id] = c.problem(KindImage, id.String(), "manifest %s %s", rec.Manifest.Digest, why)
			}
		}
	}
	return nil
}

func (c *checker) manifestProblem(id digest.Digest, desc ocispec.Descriptor, img ocispec.Image) string {
	if ok, why := c.blobOK(desc.Digest, desc.Size); !ok {
		return why
	}
	data, err := c.s.ReadBlob(desc.Digest)
	if err != nil {
		return err.Error()
	}
	var m ocispec.Manifest
	if json.Unmarshal(data, &m) != nil {
		return "does not parse"
	}
	if m.Config.Digest != id {
		return "names config " + m.Config.Digest.String()
	}
	if len(m.Layers) != len(img.RootFS.DiffIDs) {
		return fmt.Sprintf("lists %d layers, the config %d", len(m.Layers), len(img.RootFS.DiffIDs))
	}
	for _, l := range m.Layers {
		if ok, why := c.blobOK(l.Digest, l.Size); !ok {
			return "layer blob " + l.Digest.String() + " " + why
		}
	}
	return ""
}

func (c *checker) checkReferences() error {
	refs, err := c.s.readRefs()
	if err != nil {
		i := c.problem(KindReference, c.s.path("refs.json"), "%v", err)
		c.removeDebris[c.s.path("refs.json")] = i
		return nil
	}
	names := make([]string, 0, len(refs))
	for n := range refs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c.rep.References++
		if !c.s.isImage(refs[n]) && !c.s.IsIndex(refs[n]) {
			// rmi untags before it removes the image: look again before blaming.
			if again, err := c.s.readRefs(); err == nil && again[n] == refs[n] && !c.s.isImage(refs[n]) && !c.s.IsIndex(refs[n]) {
				c.problem(KindReference, n, "names image %s, which is not in the store", refs[n])
			}
		}
	}
	return nil
}

func (c *checker) checkCacheRecords() error {
	ents, err := os.ReadDir(c.s.path("buildcache"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		hex, ok := strings.CutSuffix(e.Name(), ".json")
		if e.IsDir() || !ok {
			continue // parents/, files/, last/
		}
		c.rep.CacheRecords++
		p := c.s.path("buildcache", e.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			continue // removed meanwhile
		}
		var rec CacheRecord
		if json.Unmarshal(data, &rec) != nil || rec.Key.Validate() != nil || rec.Key.Encoded() != hex {
			c.removeDebris[p] = c.problem(KindCacheRecord, p, "record does not parse or names another key")
			continue
		}
		if rec.DiffID != "" && !c.goodLayers[rec.DiffID] {
			what := "is missing"
			if c.badLayers[rec.DiffID] {
				what = "is damaged"
			}
			c.removeDebris[p] = c.problem(KindCacheRecord, rec.Key.String(), "layer %s %s", rec.DiffID, what)
		}
	}
	return nil
}

func (c *checker) checkCacheMounts() error {
	roots, err := os.ReadDir(c.s.path("cachemounts"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, r := range roots {
		root := c.s.path("cachemounts", r.Name())
		if d := digest.NewDigestFromEncoded(digest.SHA256, r.Name()); d.Validate() != nil || !r.IsDir() {
			c.removeDebris[root] = c.problem(KindCacheMount, root, "not a cache mount")
			continue
		}
		ents, err := os.ReadDir(root)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if _, err := strconv.Atoi(e.Name()); err != nil || !e.IsDir() {
				p := filepath.Join(root, e.Name())
				c.removeDebris[p] = c.problem(KindCacheMount, p, "not a cache mount instance")
			}
		}
	}
	return nil
}

// checkLeases reports what a lease holds that is gone or damaged, as a
// problem of its holder (kind "container" for a container's lease): the
// holder is not the store's to remove, so Repair leaves these reported.
func (c *checker) checkLeases() error {
	for _, l := range c.leases {
		for _, id := range l.Images {
			if !c.s.isImage(id) {
				if ok, _ := c.blobOK(id, -1); !ok {
					c.problem(l.Kind, l.Name, "image config %s is gone", id)
				}
			}
		}
		for _, d := range l.Layers {
			if !c.goodLayers[d] {
				c.problem(l.Kind, l.Name, "layer %s is missing or damaged", d)
			}
		}
		for _, d := range l.Blobs {
			if ok, _ := c.blobOK(d, -1); !ok {
				c.problem(l.Kind, l.Name, "blob %s is missing or damaged", d)
			}
		}
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
