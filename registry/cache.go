package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
)

// CacheConfigType is the config media type of a registry build cache: an
// OCI image manifest whose config is kiln's cache index (the records, each
// with its layer's descriptor) and whose layers are the records' layer blobs.
const CacheConfigType = "application/vnd.kiln.buildcache.index.v1+json"

// Cache is a build cache kept in a registry (--cache-to/--cache-from
// type=registry,ref=REF). A build that imports it fetches the index once and
// then only the layers of the steps it hits.
type Cache struct {
	name string
	ref  name.Reference
	opts Options

	once    sync.Once
	loadErr error
	records map[digest.Digest]cache.ExportedRecord
}

// NewCache names a registry cache image.
func NewCache(ref string, opts Options) (*Cache, error) {
	n, r, err := ParseReference(ref, opts)
	if err != nil {
		return nil, fmt.Errorf("cache ref %s: %w", ref, err)
	}
	return &Cache{name: n, ref: r, opts: opts}, nil
}

// String names the cache in messages.
func (c *Cache) String() string { return cache.FamiliarName(c.name) }

// load fetches the cache index; a cache image that does not exist yet is an
// empty cache.
func (c *Cache) load(ctx context.Context) error {
	c.once.Do(func() {
		c.records = map[digest.Digest]cache.ExportedRecord{}
		p, err := remote.NewPuller(c.opts.remoteOptions()...)
		if err != nil {
			c.loadErr = err
			return
		}
		got, err := p.Get(ctx, c.ref)
		if err != nil {
			if errors.Is(describeErr(err), cache.ErrNotFound) {
				return
			}
			c.loadErr = describeErr(err)
			return
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(got.Manifest, &m); err != nil || m.Config.MediaType != CacheConfigType {
			c.loadErr = fmt.Errorf("%s is not a kiln build cache: %w", c, cache.ErrInvalid)
			return
		}
		data, err := fetchBlob(ctx, p, c.ref.Context(), m.Config)
		if err != nil {
			c.loadErr = err
			return
		}
		c.records, c.loadErr = cache.ParseCacheIndex(data)
	})
	return c.loadErr
}

// Restore brings the step's record and its layer from the registry into the
// store, if the cache has it. The layer streams into the store, verified.
func (c *Cache) Restore(ctx context.Context, s *cache.Store, key digest.Digest) (cache.CacheRecord, bool, error) {
	if err := c.load(ctx); err != nil {
		return cache.CacheRecord{}, false, fmt.Errorf("cache %s: %w", c, err)
	}
	e, ok := c.records[key]
	if !ok {
		return cache.CacheRecord{}, false, nil
	}
	rec, err := s.ImportRecord(ctx, e, func() (io.ReadCloser, error) {
		l, err := remote.Layer(c.ref.Context().Digest(e.Layer.Digest.String()), append(c.opts.remoteOptions(), remote.WithContext(ctx))...)
		if err != nil {
			return nil, describeErr(err)
		}
		rc, err := l.Compressed()
		return rc, describeErr(err)
	})
	if err != nil {
		return cache.CacheRecord{}, false, fmt.Errorf("cache %s: %w", c, err)
	}
	return rec, true, nil
}

// Export pushes the records, added to those the cache image has, with their
// layers: blobs the registry has already are not uploaded again.
func (c *Cache) Export(ctx context.Context, s *cache.Store, records []cache.CacheRecord, comp layer.Compression) error {
	if err := c.load(ctx); err != nil {
		return err
	}
	merged := map[digest.Digest]cache.ExportedRecord{}
	for k, e := range c.records {
		merged[k] = e
	}
	for _, r := range records {
		e, err := s.ExportRecord(ctx, r, comp)
		if err != nil {
			return err
		}
		merged[r.Key] = e
	}
	index, err := cache.MarshalCacheIndex(merged)
	if err != nil {
		return err
	}
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: CacheConfigType, Digest: digest.FromBytes(index), Size: int64(len(index))},
		Layers:    []ocispec.Descriptor{},
	}
	m.SchemaVersion = 2
	var diffIDs []digest.Digest
	seen := map[digest.Digest]bool{}
	for _, e := range merged {
		if e.Layer != nil && !seen[e.Layer.Digest] {
			seen[e.Layer.Digest] = true
			m.Layers = append(m.Layers, *e.Layer)
			diffIDs = append(diffIDs, e.DiffID)
		}
	}
	// A stable order: the same records give the same manifest.
	order := make([]int, len(m.Layers))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return m.Layers[order[a]].Digest < m.Layers[order[b]].Digest })
	layers, ids := make([]ocispec.Descriptor, len(order)), make([]digest.Digest, len(order))
	for i, j := range order {
		layers[i], ids[i] = m.Layers[j], diffIDs[j]
	}
	m.Layers = layers
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	// Layers of records that came from the registry may be missing locally:
	// the registry has them, so remote.Write never opens them.
	im := &storeImage{s: s, manifest: raw, mt: types.OCIManifestSchema1, m: m, config: index, diffIDs: ids}
	if err := remote.Write(c.ref, im, append(c.opts.remoteOptions(), remote.WithContext(ctx))...); err != nil {
		return fmt.Errorf("push cache %s: %w", c, describeErr(err))
	}
	return nil
}
