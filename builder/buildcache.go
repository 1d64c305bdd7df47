package builder

import (
	"context"

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
