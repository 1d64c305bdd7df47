package builder

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/progress"
)

// stepBuild is a build with no Dockerfile, to drive build.step directly.
func stepBuild(t *testing.T, e *buildEnv, opts Options) (*build, *bytes.Buffer) {
	t.Helper()
	var explain bytes.Buffer
	opts.ContextDir = e.ctx
	opts.ExplainCache = &explain
	opts.Progress, opts.Warnings = progress.Discard, io.Discard
	opts.Log = slog.New(slog.DiscardHandler)
	b := &build{store: e.store, opts: opts, df: &dockerfile{name: "Dockerfile"}, rep: &reporter{w: progress.Discard}}
	return b, &explain
}

// scratchStage is a stage on scratch, at step 1.
func scratchStage() *stage {
	base := digest.FromString("scratch")
	return &stage{cacheKey: base, baseKey: base, created: time.Unix(0, 0), index: 0, stepText: "[1/1] STEP"}
}

// fileStep is a step that writes one file; made counts the layers it made.
func fileStep(ctx context.Context, b *build, st *stage, key digest.Digest, name string, made *int) stepSpec {
	return stepSpec{
		createdBy: "TEST " + name,
		key:       key,
		inputs:    cache.StepInputs{Instruction: "TEST " + name},
		make: func() (cache.Layer, bool, error) {
			*made++
			sn, err := b.store.NewSnapshot()
			if err != nil {
				return cache.Layer{}, false, err
			}
			if err := os.WriteFile(filepath.Join(sn.Dir, name), []byte(name), 0o644); err != nil {
				sn.Discard()
				return cache.Layer{}, false, err
			}
			l, err := b.commitSnapshot(ctx, st, sn)
			return l, err == nil, err
		},
	}
}

// TestStepMissThenHit: a miss makes the layer, records it under the step's
// key with the stage's key as parent, and moves the stage on; the same step
// on the same parent then hits: nothing is made, the stage takes the same
// layer with the recorded time, and ends on the same key.
func TestStepMissThenHit(t *testing.T) {
	e := newBuildEnv(t)
	ctx := context.Background()
	b, explain := stepBuild(t, e, Options{})
	key := stepKey(digest.FromString("scratch"), "a")
	made := 0

	st := scratchStage()
	hit, err := b.step(ctx, st, fileStep(ctx, b, st, key, "a", &made))
	if err != nil || hit || made != 1 {
		t.Fatalf("cold step: hit %v, made %d, err %v", hit, made, err)
	}
	if st.cacheKey != key || len(st.img.RootFS.DiffIDs) != 1 || len(st.img.History) != 1 || st.img.History[0].EmptyLayer {
		t.Fatalf("cold step left the stage at key %s with layers %v and history %+v", st.cacheKey, st.img.RootFS.DiffIDs, st.img.History)
	}
	diffID := st.img.RootFS.DiffIDs[0]
	if _, err := os.Stat(filepath.Join(e.store.SnapshotDir(diffID), "a")); err != nil {
		t.Errorf("the step's layer lacks its file: %v", err)
	}
	rec, ok := e.store.CacheRecord(key)
	if !ok || rec.Parent != digest.FromString("scratch") || rec.DiffID != diffID || rec.Inputs.Instruction != "TEST a" {
		t.Fatalf("record %+v (found %v)", rec, ok)
	}
	if !strings.Contains(explain.String(), "[1/1] STEP: cache miss: ") {
		t.Errorf("explain-cache said %q", explain.String())
	}
	if !rec.Created.Equal(st.created) || !st.img.History[0].Created.Equal(rec.Created) {
		t.Errorf("stage time %v, history %v, record %v: want the record's time", st.created, st.img.History[0].Created, rec.Created)
	}

	again := scratchStage()
	hit, err = b.step(ctx, again, fileStep(ctx, b, again, key, "a", &made))
	if err != nil || !hit || made != 1 {
		t.Fatalf("warm step: hit %v, made %d, err %v", hit, made, err)
	}
	if again.cacheKey != key || len(again.img.RootFS.DiffIDs) != 1 || again.img.RootFS.DiffIDs[0] != diffID ||
		!again.created.Equal(rec.Created) || !again.img.History[0].Created.Equal(rec.Created) {
		t.Errorf("hit gave key %s, layers %v, time %v; want %s, %s, %v", again.cacheKey, again.img.RootFS.DiffIDs, again.created, key, diffID, rec.Created)
	}
	if len(b.used) != 2 {
		t.Errorf("the build used %d records, want the one it made and the one it hit", len(b.used))
	}
}

// TestStepNoCache: --no-cache and --no-cache-filter make a step miss a
// record that matches, and say why.
func TestStepNoCache(t *testing.T) {
	e := newBuildEnv(t)
	ctx := context.Background()
	key := stepKey(digest.FromString("scratch"), "a")
	made := 0
	b, _ := stepBuild(t, e, Options{})
	st := scratchStage()
	if _, err := b.step(ctx, st, fileStep(ctx, b, st, key, "a", &made)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		opts Options
		why  string
	}{
		{Options{NoCache: true}, "--no-cache"},
		{Options{NoCacheFilter: []string{"0"}}, "--no-cache-filter"},
	} {
		b, explain := stepBuild(t, e, c.opts)
		st := scratchStage()
		before := made
		hit, err := b.step(ctx, st, fileStep(ctx, b, st, key, "a", &made))
		if err != nil || hit || made != before+1 {
			t.Errorf("%s: hit %v, made %d layers, err %v", c.why, hit, made-before, err)
		}
		if !strings.Contains(explain.String(), "cache miss: "+c.why) {
			t.Errorf("%s: explain-cache said %q", c.why, explain.String())
		}
	}
}

// TestStepNoLayer: a step that changes nothing (WORKDIR /) records no layer
// and gives an empty history entry, on a miss and on a hit.
func TestStepNoLayer(t *testing.T) {
	e := newBuildEnv(t)
	ctx := context.Background()
	b, _ := stepBuild(t, e, Options{})
	key := stepKey(digest.FromString("scratch"), "nothing")
	spec := func(st *stage) stepSpec {
		return stepSpec{createdBy: "TEST nothing", key: key, inputs: cache.StepInputs{Instruction: "TEST nothing"},
			make: func() (cache.Layer, bool, error) {
				return b.changeLayer(ctx, st, func(*rootfs) (bool, error) { return false, nil })
			}}
	}
	for _, wantHit := range []bool{false, true} {
		st := scratchStage()
		hit, err := b.step(ctx, st, spec(st))
		if err != nil || hit != wantHit {
			t.Fatalf("hit %v, err %v; want hit %v", hit, err, wantHit)
		}
		if len(st.img.RootFS.DiffIDs) != 0 || len(st.img.History) != 1 || !st.img.History[0].EmptyLayer || st.cacheKey != key {
			t.Errorf("hit %v: layers %v, history %+v, key %s", hit, st.img.RootFS.DiffIDs, st.img.History, st.cacheKey)
		}
	}
	if rec, ok := e.store.CacheRecord(key); !ok || rec.DiffID != "" {
		t.Errorf("record %+v (found %v), want one without a layer", rec, ok)
	}
}

// TestStepKeyAfterMake: a step whose key is known only once its layer is
// made is not looked up (even when a record has that key), its miss is
// explained by its instruction alone, and it is recorded under the key and
// with the file list it gives after making.
func TestStepKeyAfterMake(t *testing.T) {
	e := newBuildEnv(t)
	ctx := context.Background()
	b, explain := stepBuild(t, e, Options{})
	key := stepKey(digest.FromString("scratch"), "late")
	files := map[string]string{"f": "f f 644 1 sha256:x "}
	filesDigest := digest.FromBytes(mustJSON(files))
	made := 0
	for range 2 {
		st := scratchStage()
		spec := fileStep(ctx, b, st, "", "late", &made)
		spec.inputs = cache.StepInputs{}
		spec.keyAfterMake = func() (digest.Digest, cache.StepInputs, fileListing) {
			if made == 0 {
				t.Error("key asked for before the layer was made")
			}
			return key, cache.StepInputs{Instruction: "TEST late"}, mapListing(files)
		}
		hit, err := b.step(ctx, st, spec)
		if err != nil || hit || st.cacheKey != key {
			t.Fatalf("hit %v, err %v, key %s", hit, err, st.cacheKey)
		}
	}
	if made != 2 {
		t.Errorf("made %d layers, want 2: such a step is never looked up", made)
	}
	if rec, ok := e.store.CacheRecord(key); !ok || rec.Inputs.Files != filesDigest {
		t.Errorf("record %+v (found %v)", rec, ok)
	}
	if got, err := e.store.CacheFiles(filesDigest); err != nil || got["f"] != files["f"] {
		t.Errorf("file list %v, %v", got, err)
	}
	if !strings.Contains(explain.String(), "cache miss: no earlier build of this stage on this base image") {
		t.Errorf("explain-cache said %q", explain.String())
	}
}

// TestStepMakeFails: a step that fails records nothing and leaves the stage
// as it was.
func TestStepMakeFails(t *testing.T) {
	e := newBuildEnv(t)
	b, _ := stepBuild(t, e, Options{})
	st := scratchStage()
	boom := errors.New("boom")
	key := stepKey(st.cacheKey, "fails")
	hit, err := b.step(context.Background(), st, stepSpec{createdBy: "TEST fails", key: key,
		make: func() (cache.Layer, bool, error) { return cache.Layer{}, false, boom }})
	if !errors.Is(err, boom) || hit {
		t.Fatalf("hit %v, err %v", hit, err)
	}
	if _, ok := e.store.CacheRecord(key); ok || st.cacheKey != st.baseKey || len(st.img.History) != 0 {
		t.Errorf("a failed step changed the stage (key %s, history %v) or was recorded", st.cacheKey, st.img.History)
	}
}
