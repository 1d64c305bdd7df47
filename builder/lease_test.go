package builder

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/progress"
)

// leaseWatcher is a progress writer that looks at the store's leases each
// time the build reports progress.
type leaseWatcher struct {
	mu   sync.Mutex
	s    *cache.Store
	seen []cache.Lease
}

func (w *leaseWatcher) Write(*progress.SolveStatus) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ls, err := w.s.Leases(); err == nil {
		for _, l := range ls {
			if l.Kind == "build" {
				w.seen = append(w.seen, l)
			}
		}
	}
}

// TestBuildHoldsALease: while it runs, a build holds a lease owned by its
// process on the layers it makes; it releases it when done, failed or not
// (a failed build's layers then go with the collection that follows).
func TestBuildHoldsALease(t *testing.T) {
	s, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	self, err := cache.Self()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("made by the build"), 0o644)
	for _, tc := range []struct {
		dockerfile string
		fails      bool
	}{
		{"FROM scratch\nCOPY f /f\nCOPY f /g\n", false},
		{"FROM scratch\nCOPY f /h\nCOPY missing /m\n", true},
	} {
		os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(tc.dockerfile), 0o644)
		w := &leaseWatcher{s: s}
		_, err := Build(context.Background(), s, Options{ContextDir: dir, Progress: w, Warnings: &strings.Builder{}})
		if (err != nil) != tc.fails {
			t.Fatalf("%q: build error %v", tc.dockerfile, err)
		}
		var layers int
		for _, l := range w.seen {
			if l.Owner == nil || *l.Owner != *self {
				t.Errorf("%q: the build's lease is not owned by the building process: %+v", tc.dockerfile, l)
			}
			layers = max(layers, len(l.Layers))
		}
		if layers == 0 && !tc.fails { // the failing one fails in the preflight pass, before any layer
			t.Errorf("%q: no build lease held a layer while the build ran (%d sightings)", tc.dockerfile, len(w.seen))
		}
		if ls, err := s.Leases(); err != nil || len(ls) != 0 {
			t.Errorf("%q: leases after the build: %+v, %v", tc.dockerfile, ls, err)
		}
	}
}
