package builder

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
)

// CacheImporter is a --cache-from source: a cache directory or a registry
// cache image. Restore brings the record of a step, with its layer, into the
// store when the source has it.
type CacheImporter interface {
	Restore(ctx context.Context, s *cache.Store, key digest.Digest) (cache.CacheRecord, bool, error)
}

// CacheExporter is a --cache-to destination: it receives the records a
// build used or made, with their layers.
type CacheExporter interface {
	Export(ctx context.Context, s *cache.Store, records []cache.CacheRecord, c layer.Compression) error
}

// stepKey derives a step's cache key from its parent's key and everything
// that decides the step's result (marshalled as JSON, so field order and
// escaping are fixed).
func stepKey(parent digest.Digest, inputs any) digest.Digest {
	data, err := json.Marshal(struct {
		Parent digest.Digest
		Inputs any
	}{parent, inputs})
	if err != nil {
		panic(fmt.Sprintf("cache key inputs: %v", err)) // plain data: cannot fail
	}
	return digest.FromBytes(data)
}

// lookup returns the cache record of a step unless the build must not use
// it: from the store, else from a --cache-from source (whose layer is then
// brought into the store).
func (b *build) lookup(ctx context.Context, st *stage, key digest.Digest) (cache.CacheRecord, bool) {
	if b.opts.NoCache || b.noCacheStage(st) {
		return cache.CacheRecord{}, false
	}
	if rec, ok := b.store.CacheRecord(key); ok {
		b.markUsed(rec)
		return rec, true
	}
	for _, src := range b.opts.CacheFrom {
		rec, ok, err := src.Restore(ctx, b.store, key)
		if err != nil {
			b.warnf("import build cache: %v", err)
			continue
		}
		if ok {
			b.markUsed(rec)
			return rec, true
		}
	}
	return cache.CacheRecord{}, false
}

// noCacheStage reports whether --no-cache-filter names the stage.
func (b *build) noCacheStage(st *stage) bool {
	for _, n := range b.opts.NoCacheFilter {
		if n == st.name || (st.index >= 0 && n == fmt.Sprint(st.index)) {
			return true
		}
	}
	return false
}

// applyRecord makes the stage take a cached step's result.
func (st *stage) applyRecord(rec cache.CacheRecord, createdBy string) {
	if rec.DiffID != "" {
		st.addLayer(rec.DiffID, createdBy, rec.Created)
	} else {
		st.addHistory(createdBy, true)
	}
	st.cacheKey = rec.Key
}

// record stores a step's result in the build cache and moves the stage to it.
// A failure to record costs only a later rebuild: it warns.
func (b *build) record(st *stage, key digest.Digest, diffID digest.Digest, created time.Time, inputs cache.StepInputs) {
	rec := cache.CacheRecord{Key: key, Parent: st.cacheKey, DiffID: diffID, Created: created, Inputs: inputs}
	if st.cacheKey == st.baseKey && st.baseName != "" {
		rec.Inputs.Base = st.baseName + "=" + string(st.baseKey)
	}
	if err := b.store.PutCacheRecord(rec); err != nil {
		b.opts.Log.Warn("record build cache", "step", inputs.Instruction, "err", err)
	} else {
		b.markUsed(rec)
	}
	st.cacheKey = key
}

// exportCache writes the records this build used or made to --cache-to. It
// never fails the build: a failed export warns.
func (b *build) exportCache(ctx context.Context) {
	if b.opts.CacheTo == nil {
		return
	}
	if err := b.opts.CacheTo.Export(ctx, b.store, b.used, b.opts.Compression); err != nil {
		b.warnf("export build cache to %s: %v", b.opts.CacheTo, err)
	}
}

func (b *build) markUsed(rec cache.CacheRecord) {
	b.mu.Lock()
	b.used = append(b.used, rec)
	b.mu.Unlock()
}
