package builder

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/runner"
)

// treeSource is a filesystem a RUN --mount from= names: an earlier stage of
// the build or an image.
type treeSource struct {
	name    string
	key     digest.Digest // the stage's cache key or the image ID: its content follows from it
	diffIDs []digest.Digest
}

// resolveFrom finds the stage or image from names. During the dry pass a
// stage becomes a dependency of st and the result is nil.
func (b *build) resolveFrom(ctx context.Context, st *stage, from string) (*treeSource, error) {
	from, dirCtx := b.named(from)
	if dirCtx != nil {
		return b.dirContext(ctx, from, dirCtx)
	}
	if j, ok := b.stageIndex(from, st.index); ok {
		if b.dry {
			return nil, b.needStage(ctx, st, j)
		}
		src := b.results(j)
		if src == nil {
			return nil, fmt.Errorf("from=%s: the stage was not built", from)
		}
		return &treeSource{name: from, key: src.cacheKey, diffIDs: src.img.RootFS.DiffIDs}, nil
	}
	id, err := b.resolveBase(ctx, from, st.platform)
	if err != nil {
		if errors.Is(err, cache.ErrNotFound) {
			return nil, fmt.Errorf("from=%s: no stage or image of that name", from)
		}
		return nil, fmt.Errorf("from=%s: %w", from, err)
	}
	if b.dry {
		return nil, nil
	}
	img, _, err := b.store.Image(id)
	if err != nil {
		return nil, fmt.Errorf("from=%s: %w", from, err)
	}
	return &treeSource{name: from, key: id, diffIDs: img.RootFS.DiffIDs}, nil
}

// mountTree mounts the source's filesystem as an overlay with a throwaway
// upper directory: writes to it are discarded by release.
func (b *build) mountTree(ts *treeSource) (dir string, release func(), err error) {
	lowers, err := b.lowers(&stage{img: imageWithLayers(ts.diffIDs)})
	if err != nil {
		return "", nil, err
	}
	sn, err := b.store.NewSnapshot()
	if err != nil {
		return "", nil, err
	}
	if len(lowers) == 0 {
		return sn.Dir, sn.Discard, nil // scratch: an empty directory
	}
	// Volatile: the throwaway upper is never synced, not even at unmount.
	dir, unmount, err := mountPrivate(runner.OverlayMount(sn.Mountpoint, lowers, sn.Dir, sn.Work).Volatile())
	if err != nil {
		sn.Discard()
		return "", nil, err
	}
	return dir, func() {
		if err := unmount(); err != nil {
			b.opts.Log.Warn("unmount mount source", "from", ts.name, "err", err)
		}
		sn.Discard()
	}, nil
}
