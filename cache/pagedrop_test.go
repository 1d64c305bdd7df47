package cache

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// heldFiles lists the files named name under dir (wherever they were
// moved, or deleted) this process has open.
func heldFiles(t *testing.T, dir, name string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var held []string
	for _, e := range ents {
		if p, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && strings.HasPrefix(p, dir+"/") && strings.Contains(p, "/"+name) {
			held = append(held, p)
		}
	}
	return held
}

// TestCommitDropsPages: a new layer's large files leave the page cache
// once the layer is durable (at the commit's sync, or a deferring view's
// SyncLayers), its small files stay; a duplicate's files are let go
// without a drop, and no descriptor is left open.
func TestCommitDropsPages(t *testing.T) {
	s := openTestStore(t)
	var fs unix.Statfs_t
	if err := unix.Statfs(s.root, &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Type == unix.TMPFS_MAGIC {
		t.Skip("the test store is on tmpfs, whose pages are the files themselves")
	}
	big := strings.Repeat("x", 1<<20)

	check := func(l Layer) {
		t.Helper()
		dir := s.SnapshotDir(l.DiffID)
		if n := kilntest.ResidentPages(t, filepath.Join(dir, "big")); n != 0 {
			t.Errorf("layer %s: big has %d pages in the page cache, want none", l.DiffID, n)
		}
		if kilntest.ResidentPages(t, filepath.Join(dir, "small")) == 0 {
			t.Errorf("layer %s: the small file's page left the page cache", l.DiffID)
		}
	}

	// Synced as committed: dropped then.
	l := importTree(t, s, map[string]string{"big": big, "small": "small\n"})
	check(l)

	// Deferred: held until SyncLayers has synced the layer.
	v := deferringView(t, s)
	tree := t.TempDir()
	for name, content := range map[string]string{"big": big + "y", "small": "small\n"} {
		if err := os.WriteFile(filepath.Join(tree, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := v.ImportDir(context.Background(), tree)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(v.deferred.drops); n != 1 {
		t.Fatalf("the deferring view holds the large files of %d layers, want 1", n)
	}
	// A duplicate of it: nothing more held.
	if again, err := v.ImportDir(context.Background(), tree); err != nil || again.DiffID != d.DiffID {
		t.Fatalf("the same tree again made layer %s (%v), want %s", again.DiffID, err, d.DiffID)
	}
	if n := len(v.deferred.drops); n != 1 {
		t.Fatalf("after a duplicate, the deferring view holds the large files of %d layers, want 1", n)
	}
	if held := heldFiles(t, s.root, "big"); len(held) != 1 || !strings.HasSuffix(held[0], "/"+d.DiffID.Encoded()+"/fs/big") {
		t.Fatalf("before SyncLayers, files of the store open: %q, want the new layer's big only", held)
	}
	if err := v.SyncLayers(); err != nil {
		t.Fatal(err)
	}
	check(d)
	if held := heldFiles(t, s.root, "big"); len(held) != 0 {
		t.Errorf("files of the store still open after SyncLayers: %q", held)
	}
}
