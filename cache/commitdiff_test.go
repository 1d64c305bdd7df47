package cache

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCommitDiffTwice: the same tree committed twice gives one layer; the
// second snapshot, never synced, is out of tmp/ (in the trash, removed at
// once as a small tree) once the store is closed, and the first is intact.
func TestCommitDiffTwice(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	commit := func() Layer {
		t.Helper()
		sn, err := s.NewSnapshot()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(sn.Dir, "d"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sn.Dir, "d", "f"), []byte("data\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		old := time.Unix(1700000000, 0)
		for _, p := range []string{"d/f", "d"} {
			if err := os.Chtimes(filepath.Join(sn.Dir, p), old, old); err != nil {
				t.Fatal(err)
			}
		}
		l, err := s.CommitDiff(context.Background(), sn)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	a, b := commit(), commit()
	if a.DiffID != b.DiffID {
		t.Fatalf("same tree, layers %s and %s", a.DiffID, b.DiffID)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(filepath.Join(root, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("tmp/%s left behind", e.Name())
	}
	if data, err := os.ReadFile(filepath.Join(s.SnapshotDir(a.DiffID), "d", "f")); err != nil || string(data) != "data\n" {
		t.Errorf("first snapshot: %q, %v", data, err)
	}
}
