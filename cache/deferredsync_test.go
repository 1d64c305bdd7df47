package cache

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// buildView is the view of s a build named name works through: leased to
// this process.
func buildView(t *testing.T, s *Store, name string) *Store {
	t.Helper()
	self, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Leased(Lease{Kind: "build", Name: name, Owner: self})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// deferringView is a build's view of s whose layers are committed unsynced.
func deferringView(t *testing.T, s *Store) *Store {
	t.Helper()
	v := buildView(t, s, "deferred")
	if err := v.DeferLayerSyncs(); err != nil {
		t.Fatal(err)
	}
	if v.deferred == nil {
		t.Skip("no boot ID on this machine: layers are synced one by one")
	}
	return v
}

// restartMachine makes the store's process see another boot, as it would
// after a power cut, until the test ends.
func restartMachine(t *testing.T) {
	was := bootID
	bootID = func() string { return "another-boot" }
	t.Cleanup(func() { bootID = was })
}

func marked(t *testing.T, s *Store, d digest.Digest) bool {
	t.Helper()
	data, err := os.ReadFile(s.layerPath(d, "layer.json"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(data), `"unsynced"`)
}

// TestDeferredLayerSyncs: a build's layers are published unsynced and
// marked; storing an image syncs and unmarks the layers it lists (whoever
// committed them), SyncLayers the rest.
func TestDeferredLayerSyncs(t *testing.T) {
	s := openTestStore(t)
	v := deferringView(t, s)
	a := importTree(t, v, map[string]string{"a": "a"})
	b := importTree(t, v, map[string]string{"b": "b"})
	c := importTree(t, v, map[string]string{"c": "c"})
	for _, l := range []Layer{a, b, c} {
		if l.Unsynced != bootID() || !marked(t, s, l.DiffID) {
			t.Fatalf("layer %s committed through a deferring view: %+v", l.DiffID, l)
		}
		if _, err := s.Layer(l.DiffID); err != nil {
			t.Fatalf("an unsynced layer of this boot: %v", err)
		}
	}
	// Another view (another process) stores an image on a and b.
	putImage(t, s, a, b)
	if marked(t, s, a.DiffID) || marked(t, s, b.DiffID) || !marked(t, s, c.DiffID) {
		t.Fatalf("after PutImage of a and b: marked a %v b %v c %v", marked(t, s, a.DiffID), marked(t, s, b.DiffID), marked(t, s, c.DiffID))
	}
	if err := v.SyncLayers(); err != nil {
		t.Fatal(err)
	}
	if marked(t, s, c.DiffID) {
		t.Fatal("SyncLayers left c marked")
	}
	// Layers of a view that no longer defers are synced one by one.
	if d := importTree(t, v, map[string]string{"d": "d"}); d.Unsynced != "" || marked(t, s, d.DiffID) {
		t.Fatalf("layer after SyncLayers: %+v", d)
	}
	if rep := check(t, s, CheckOptions{}); len(rep.Problems) != 0 {
		t.Errorf("problems: %v", rep.Problems)
	}
	// The snapshots' work directories were removed in the background.
	s.bg.Wait()
	if ents, _ := os.ReadDir(s.path("tmp")); len(ents) != 0 {
		t.Errorf("tmp holds %d entries", len(ents))
	}
}

// TestUnsyncedLayersAfterPowerCut: after a restart, a layer committed
// unsynced under the boot before is checked when first looked up: one
// whose files are all there is unmarked and kept; one that lost some is no
// layer (not found by a lookup, its cache records are misses, the next
// commit of it replaces it, Check names it and repair removes it). The
// synced layers and the image on them stay.
func TestUnsyncedLayersAfterPowerCut(t *testing.T) {
	s := openTestStore(t)
	v := deferringView(t, s)
	synced := importTree(t, v, map[string]string{"s": "s"})
	id := putImage(t, v, synced)
	lost := importTree(t, v, map[string]string{"lost/f": "lost"})
	lostToo := importTree(t, v, map[string]string{"again": "again"})
	intact := importTree(t, v, map[string]string{"intact": "intact"})
	for i, l := range []Layer{synced, lost} {
		rec := CacheRecord{Key: digest.FromString(string(rune('k' + i))), Parent: digest.FromString("p"), DiffID: l.DiffID}
		if err := v.PutCacheRecord(rec); err != nil {
			t.Fatal(err)
		}
	}
	// The power cut: files of two snapshots did not reach the disk.
	if err := os.WriteFile(s.SnapshotDir(lost.DiffID)+"/lost/f", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(s.SnapshotDir(lostToo.DiffID) + "/again"); err != nil {
		t.Fatal(err)
	}
	restartMachine(t)
	// Its build went with the machine, and the build's lease with it.
	if err := s.DeleteLease("build", "deferred"); err != nil {
		t.Fatal(err)
	}

	for _, l := range []Layer{lost, lostToo} {
		if _, err := s.Layer(l.DiffID); !errors.Is(err, ErrInvalid) {
			t.Errorf("unsynced layer of the boot before, files lost: %v", err)
		}
	}
	if l, err := s.Layer(intact.DiffID); err != nil || l.Unsynced != "" || marked(t, s, intact.DiffID) {
		t.Errorf("unsynced layer of the boot before, files all there: %+v, %v", l, err)
	}
	if _, ok := s.CacheRecord(digest.FromString("l")); ok {
		t.Error("the record of the lost layer is a hit")
	}
	if _, ok := s.CacheRecord(digest.FromString("k")); !ok {
		t.Error("the record of the synced layer is a miss")
	}
	if _, err := s.Lowers([]digest.Digest{synced.DiffID, lost.DiffID}); err == nil {
		t.Error("the lost layer is given as a lower")
	}
	// Committed anew (now synced one by one: s does not defer), over the
	// stale directory.
	if l := importTree(t, s, map[string]string{"again": "again"}); l.DiffID != lostToo.DiffID || l.Unsynced != "" {
		t.Fatalf("commit over a stale unsynced layer: %+v", l)
	}
	if _, err := s.Layer(lostToo.DiffID); err != nil {
		t.Fatalf("layer committed over a stale unsynced one: %v", err)
	}
	snapshotDigestOK(t, s, lostToo)

	rep := check(t, s, CheckOptions{})
	if len(problemsAbout(rep, s.layerPath(lost.DiffID))) == 0 {
		t.Errorf("no problem reported about the lost layer: %v", rep.Problems)
	}
	if rep = check(t, s, CheckOptions{Repair: true}); !rep.Clean() {
		t.Fatalf("after repair: %v", rep.Problems)
	}
	if _, err := os.Stat(s.layerPath(lost.DiffID)); !os.IsNotExist(err) {
		t.Errorf("repair left the lost layer's directory: %v", err)
	}
	if _, _, err := s.Image(id); err != nil {
		t.Errorf("the image on the synced layer: %v", err)
	}
	if again := check(t, s, CheckOptions{}); len(again.Problems) != 0 {
		t.Errorf("after repair: %v", again.Problems)
	}
}
