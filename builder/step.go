package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
	"github.com/kiln-build/kiln/runner"
)

// stepSpec is one step that goes through the build cache: RUN, COPY, ADD
// and WORKDIR each describe themselves as one and hand it to build.step,
// which owns the cached-step routine:
//
//	look up key (the store, then --cache-from)
//	  hit:  the stage takes the record's layer and time (or an empty
//	        history entry), and its key
//	  miss: explain why (--explain-cache), make the layer, store the file
//	        list (COPY, ADD), record the step, and the stage takes the layer
//
// A step fills its spec in the real pass only (the dry pass stops at the
// step's checks) and once everything its key depends on is known.
type stepSpec struct {
	// createdBy is the step's history text.
	createdBy string
	// key is the step's cache key: stepKey of the stage's key and the
	// step's inputs. inputs is what went into it, kept to explain a later
	// miss; files, for COPY and ADD, is the file list inputs.Files names
	// (filled in from files on a miss: a hit needs neither).
	key    digest.Digest
	inputs cache.StepInputs
	files  fileListing
	// keyAfterMake, when set, stands for key, inputs and files and is
	// called only once make has run: a COPY whose key nothing in the cache
	// can match hashes its files while it copies them. Such a step is not
	// looked up, and its miss is explained by its instruction alone.
	keyAfterMake func() (digest.Digest, cache.StepInputs, fileListing)
	// make makes the step's layer over the stage's filesystem. created is
	// false when the step changed nothing (WORKDIR /): the stage then takes
	// an empty history entry and no layer.
	make func() (l cache.Layer, created bool, err error)
}

// step runs s through the build cache. hit reports that the stage took the
// step's result from the cache, and nothing was made.
func (b *build) step(ctx context.Context, st *stage, s stepSpec) (hit bool, err error) {
	if s.keyAfterMake == nil {
		// Another platform's build making the same step: wait, then hit.
		defer b.claim(s.key)()
		if rec, ok := b.lookup(ctx, st, s.key); ok {
			st.applyRecord(rec, s.createdBy)
			return true, nil
		}
		if s.files != nil {
			s.inputs.Files = listingDigest(s.files)
		}
		b.explainMiss(st, s.inputs, s.files)
	} else {
		b.explainMiss(st, cache.StepInputs{Instruction: s.createdBy}, nil)
	}
	l, created, err := s.make()
	if err != nil {
		return false, err
	}
	if s.keyAfterMake != nil {
		s.key, s.inputs, s.files = s.keyAfterMake()
		if s.files != nil {
			s.inputs.Files = listingDigest(s.files)
		}
	}
	if s.files != nil {
		if err := b.store.PutCacheFiles(s.inputs.Files, s.files.writeJSON); err != nil {
			b.opts.Log.Warn("record build cache files", "err", err)
		}
	}
	now := time.Now()
	b.record(st, s.key, l.DiffID, now, s.inputs)
	if created {
		st.addLayer(l.DiffID, s.createdBy, now)
	} else {
		st.addHistory(s.createdBy, true)
	}
	return false, nil
}

// stepKey derives a step's cache key from its parent's key and everything
// that decides the step's result (marshalled as JSON, so field order and
// escaping are fixed). Keys are stored: changing what goes into one, or how,
// makes every existing cache miss (TestStepKeysUnchanged).
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
	if (b.opts.NoCache || b.noCacheStage(st)) && !b.madeHere(key) {
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

// commitSnapshot turns a step's upper directory into a layer, its times
// clamped to SOURCE_DATE_EPOCH first when that is set.
func (b *build) commitSnapshot(ctx context.Context, st *stage, sn *cache.Snapshot) (cache.Layer, error) {
	return b.commitStreamed(ctx, st, sn, nil)
}

// commitStreamed is commitSnapshot for a step that streamed its layer tar
// (see layer.StreamDiff; nil if it did not): it is taken if it checks out
// against the snapshot.
func (b *build) commitStreamed(ctx context.Context, st *stage, sn *cache.Snapshot, streamed *layer.StreamDiff) (cache.Layer, error) {
	if st.epoch != nil {
		streamed = nil // the times change below
		if err := layer.ClampTimes(ctx, sn.Dir, *st.epoch); err != nil {
			sn.Discard()
			return cache.Layer{}, err
		}
	}
	return b.store.CommitStreamed(ctx, sn, streamed)
}

// mountPrivate mounts m where no other process sees it: as a detached mount
// (runner.MountDetached), or on m.Target on kernels without them, where
// the build process runs in its own mount namespace instead (kiln build
// enters one, runner.EnterMountNamespace). Either way the mount vanishes
// with the build process. It returns the mount's directory and what
// unmounts it.
func mountPrivate(m runner.Mount) (dir string, unmount func() error, err error) {
	d, err := runner.MountDetached(m)
	if err == nil {
		return d.Dir(), d.Close, nil
	}
	if !errors.Is(err, runner.ErrNoDetachedMounts) {
		return "", nil, err
	}
	if err := runner.MountOverlay(m); err != nil {
		return "", nil, err
	}
	return m.Target, func() error { return runner.Unmount(m.Target) }, nil
}

// changeLayer gives fn the stage's filesystem with a fresh writable layer on
// top, then commits what fn changed as a layer. When fn reports that it
// changed nothing, no layer is made and ok is false.
func (b *build) changeLayer(ctx context.Context, st *stage, fn func(r *rootfs) (bool, error)) (l cache.Layer, ok bool, err error) {
	lowers, err := b.lowers(st)
	if err != nil {
		return l, false, err
	}
	sn, err := b.store.NewSnapshot()
	if err != nil {
		return l, false, err
	}
	dir, unmount := sn.Dir, func() error { return nil }
	if len(lowers) > 0 {
		// Volatile: the unmount below does not sync the upper directory;
		// the store syncs it while diffing (Store.CommitDiff).
		if dir, unmount, err = mountPrivate(runner.OverlayMount(sn.Mountpoint, lowers, sn.Dir, sn.Work).Volatile()); err != nil {
			sn.Discard()
			return l, false, err
		}
	}
	r, err := openRootfs(dir)
	if err == nil {
		ok, err = fn(r)
		r.Close()
		if r.streamed != nil {
			defer r.streamed.Close()
		}
	}
	if uerr := unmount(); uerr != nil && err == nil {
		err = uerr
	}
	if err == nil && ok && r.existing != nil {
		b.opts.Log.Debug("existing layer", "diffID", r.existing.DiffID)
		sn.Discard()
		return *r.existing, true, nil
	}
	if r != nil {
		for _, after := range r.afterUnmount {
			if err == nil && ok {
				err = after(sn.Dir)
			}
		}
	}
	if err != nil || !ok {
		sn.Discard()
		return l, false, err
	}
	l, err = b.commitStreamed(ctx, st, sn, r.streamed)
	if err == nil && r.streamed != nil {
		b.opts.Log.Debug("streamed layer", "diffID", l.DiffID, "taken", r.streamed.Taken())
	}
	return l, err == nil, err
}
