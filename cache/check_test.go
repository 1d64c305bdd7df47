package cache

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func check(t *testing.T, s *Store, opts CheckOptions) CheckReport {
	t.Helper()
	rep, err := s.Check(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// problemsAbout lists the problems naming object.
func problemsAbout(rep CheckReport, object string) []Problem {
	var out []Problem
	for _, p := range rep.Problems {
		if p.Object == object {
			out = append(out, p)
		}
	}
	return out
}

func TestCheckCleanStore(t *testing.T) {
	s := openTestStore(t)
	l := importTree(t, s, map[string]string{"a": "a"})
	id := putImage(t, s, l)
	if err := s.Tag("x", id); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Manifest(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCacheRecord(CacheRecord{Key: digest.FromString("k"), Parent: digest.FromString("p"), DiffID: l.DiffID}); err != nil {
		t.Fatal(err)
	}
	for _, quick := range []bool{false, true} {
		rep := check(t, s, CheckOptions{Quick: quick})
		if !rep.Clean() || len(rep.Problems) != 0 {
			t.Errorf("quick=%v: problems in a sound store: %v", quick, rep.Problems)
		}
		if rep.Blobs != 3 || rep.Layers != 1 || rep.Images != 1 || rep.References != 1 || rep.CacheRecords != 1 {
			t.Errorf("quick=%v: counted %+v", quick, rep)
		}
	}
}

func TestCheckFindsAndRepairsDamage(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	good := importTree(t, s, map[string]string{"good": "g"})
	bad := importTree(t, s, map[string]string{"bad": "b"})
	goodID := putImage(t, s, good)
	badID := putImage(t, s, good, bad)
	s.Tag("good", goodID)
	s.Tag("bad", badID)
	if _, _, err := s.Manifest(ctx, goodID); err != nil {
		t.Fatal(err)
	}
	s.PutCacheRecord(CacheRecord{Key: digest.FromString("k"), Parent: digest.FromString("p"), DiffID: bad.DiffID})

	// A snapshot changed behind the store's back, a corrupt manifest
	// blob, debris of a killed commit and of a killed process.
	os.WriteFile(filepath.Join(s.SnapshotDir(bad.DiffID), "bad"), []byte("changed"), 0o644)
	rec, _ := s.imageRecord(goodID)
	os.WriteFile(s.blobPath(rec.Manifest.Digest), []byte("{}"), 0o644)
	half := s.path("layers", strings.Repeat("b", 64))
	os.MkdirAll(filepath.Join(half, "fs", "x"), 0o755)
	os.WriteFile(s.path("tmp", "blob.1"), []byte("partial"), 0o644)

	quick := check(t, s, CheckOptions{Quick: true})
	if len(problemsAbout(quick, bad.DiffID.String())) != 0 {
		t.Errorf("--quick re-hashed the snapshot: %v", quick.Problems)
	}
	rep := check(t, s, CheckOptions{})
	if rep.Clean() {
		t.Fatal("damaged store reported clean")
	}
	for _, obj := range []string{bad.DiffID.String(), badID.String(), goodID.String(), rec.Manifest.Digest.String(), half, s.path("tmp", "blob.1"), digest.FromString("k").String()} {
		if len(problemsAbout(rep, obj)) == 0 {
			t.Errorf("no problem reported about %s; got:\n%v", obj, rep.Problems)
		}
	}
	for _, p := range rep.Problems {
		if p.Repaired {
			t.Errorf("check without --repair repaired %v", p)
		}
	}

	rep = check(t, s, CheckOptions{Repair: true})
	if !rep.Clean() {
		t.Fatalf("after repair: %v", rep.Problems)
	}
	if _, err := s.Resolve("bad"); err == nil {
		t.Error("the image with the damaged layer and its name survived the repair")
	}
	if _, err := s.Layer(bad.DiffID); err == nil {
		t.Error("the damaged layer survived")
	}
	if _, ok := s.CacheRecord(digest.FromString("k")); ok {
		t.Error("the cache record of the damaged layer survived")
	}
	// The sound image stays, its manifest made again when asked for.
	if id, err := s.Resolve("good"); err != nil || id != goodID {
		t.Fatalf("good image: %s, %v", id, err)
	}
	if _, _, err := s.Manifest(ctx, goodID); err != nil {
		t.Errorf("manifest of the good image after repair: %v", err)
	}
	if again := check(t, s, CheckOptions{}); len(again.Problems) != 0 {
		t.Errorf("after repair: %v", again.Problems)
	}
}

// TestCheckContainerHeldImages: repair keeps a damaged image a container's
// lease holds unless forced.
func TestCheckContainerHeldImages(t *testing.T) {
	s := openTestStore(t)
	l := importTree(t, s, map[string]string{"f": "1"})
	id := putImage(t, s, l)
	if err := s.PutLease(Lease{Kind: KindContainer, Name: "c1", Images: []digest.Digest{id}, Layers: []digest.Digest{l.DiffID}}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(s.SnapshotDir(l.DiffID), "f"), []byte("changed"), 0o644)

	rep := check(t, s, CheckOptions{Repair: true})
	if rep.Clean() {
		t.Fatal("repair without --force reports clean though it kept a damaged image")
	}
	if !s.isImage(id) {
		t.Fatal("repair without --force removed an image a container uses")
	}
	for _, p := range problemsAbout(rep, id.String()) {
		if !strings.Contains(p.String(), "--force") {
			t.Errorf("problem does not say how to remove it: %v", p)
		}
	}
	rep = check(t, s, CheckOptions{Repair: true, Force: true})
	if s.isImage(id) {
		t.Fatal("--force kept the image")
	}
	if _, err := s.Layer(l.DiffID); err == nil {
		t.Error("--force kept the damaged layer")
	}
	if !rep.Clean() {
		// The container itself is not the store's to remove: it stays reported.
		for _, p := range rep.Problems {
			if !p.Repaired && p.Kind != KindContainer {
				t.Errorf("after --force: %v", p)
			}
		}
	}
}

// TestCheckBusyStoreSkipsDebris: temp files of live processes are not debris.
func TestCheckBusyStoreSkipsDebris(t *testing.T) {
	s := openTestStore(t)
	other, err := Open(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	w, err := other.NewBlobWriter()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	rep := check(t, s, CheckOptions{})
	if !rep.DebrisSkipped || len(rep.Problems) != 0 {
		t.Errorf("busy store: skipped=%v problems=%v", rep.DebrisSkipped, rep.Problems)
	}
}

// TestExternalTempOfKilledProcess: a note left in tmp/ leads check and GC to
// the temp file outside the store.
func TestExternalTempOfKilledProcess(t *testing.T) {
	s := openTestStore(t)
	out := filepath.Join(t.TempDir(), ".kiln-save-1-2")
	os.WriteFile(out, []byte("partial archive"), 0o644)
	if _, err := s.NoteExternalTemp(out); err != nil { // never forgotten: the process "died"
		t.Fatal(err)
	}
	rep := check(t, s, CheckOptions{})
	if len(problemsAbout(rep, out)) != 1 {
		t.Fatalf("problems: %v", rep.Problems)
	}
	if _, err := s.GC(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("GC left the killed save's temp file: %v", err)
	}
}
