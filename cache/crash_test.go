package cache

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-build/kiln/layer"
)

// snapshotDigestOK checks that the layer's snapshot regenerates its diffID.
func snapshotDigestOK(t *testing.T, s *Store, l Layer) {
	t.Helper()
	res, err := layer.Write(context.Background(), io.Discard, s.SnapshotDir(l.DiffID), layer.Uncompressed, layer.DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.DiffID != l.DiffID {
		t.Errorf("snapshot of %s regenerates %s", l.DiffID, res.DiffID)
	}
}

// makeDebris leaves the layer directory as a GC or prune killed halfway
// through removing it could: no layer.json, part of fs/ gone, a read-only
// directory left behind.
func makeDebris(t *testing.T, s *Store, l Layer) {
	t.Helper()
	dir := s.layerPath(l.DiffID)
	if err := os.Remove(filepath.Join(dir, "layer.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "fs", "b")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "fs", "a"), 0o500); err != nil {
		t.Fatal(err)
	}
}

// importSame imports the same directory each time it is called.
func importSame(t *testing.T, files map[string]string) func(s *Store) (Layer, error) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return func(s *Store) (Layer, error) { return s.ImportDir(context.Background(), dir) }
}

// TestCommitOverDebris is the regression test for the commit that replaced
// a half-removed layer directory but returned the error of its first
// rename: the commit must succeed the first time, and the snapshot must be
// whole.
func TestCommitOverDebris(t *testing.T) {
	s := openTestStore(t)
	imp := importSame(t, map[string]string{"a/x": "x", "b/y": strings.Repeat("y", 5000), "c": "c"})
	l, err := imp(s)
	if err != nil {
		t.Fatal(err)
	}
	makeDebris(t, s, l)
	if _, err := s.Layer(l.DiffID); err == nil {
		t.Fatal("debris still has a record")
	}
	again, err := imp(s)
	if err != nil {
		t.Fatalf("commit over debris: %v", err)
	}
	if again.DiffID != l.DiffID {
		t.Fatalf("diffID %s, first import %s", again.DiffID, l.DiffID)
	}
	if _, err := s.Layer(l.DiffID); err != nil {
		t.Fatalf("after commit over debris: %v", err)
	}
	snapshotDigestOK(t, s, l)
	if ents, _ := os.ReadDir(s.path("tmp")); len(ents) != 0 {
		t.Errorf("tmp holds %d entries after the commit", len(ents))
	}
}

// TestConcurrentCommitsOverDebris: processes meeting the same debris take
// turns; every commit succeeds and the layer stays whole.
func TestConcurrentCommitsOverDebris(t *testing.T) {
	s := openTestStore(t)
	imp := importSame(t, map[string]string{"a/x": "x", "b/y": "y"})
	l, err := imp(s)
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 5; round++ {
		makeDebris(t, s, l)
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			other, err := Open(s.Root())
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer other.Close()
				if got, err := imp(other); err != nil {
					errs <- err
				} else if got.DiffID != l.DiffID {
					errs <- fmt.Errorf("diffID %s, want %s", got.DiffID, l.DiffID)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
		if _, err := s.Layer(l.DiffID); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		snapshotDigestOK(t, s, l)
	}
}

// TestOpenSweepsDebris: a process that opens the store while no other has
// it open removes what killed processes left; one that opens it beside
// another leaves tmp/ alone.
func TestOpenSweepsDebris(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	debris := []string{filepath.Join(root, "tmp", "blob.1"), filepath.Join(root, "tmp", "snap.2", "fs", "f")}
	os.MkdirAll(filepath.Join(root, "statcache"), 0o700)
	debris = append(debris, filepath.Join(root, "statcache", "statcache.3"))
	for _, p := range debris {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	busy, err := Open(root) // s is open: nothing is swept
	if err != nil {
		t.Fatal(err)
	}
	busy.Close()
	for _, p := range debris {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("swept while another process had the store open: %s", p)
		}
	}
	s.Close()
	alone, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer alone.Close()
	for _, p := range debris {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("debris survived: %s", p)
		}
	}
}
