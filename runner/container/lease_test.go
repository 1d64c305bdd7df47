package container

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
)

// TestContainerLeasesItsImage: a container holds its image through a lease
// from create to rm, so that removing the image (and collecting) leaves the
// container's rootfs whole; after rm the content goes.
func TestContainerLeasesItsImage(t *testing.T) {
	root := t.TempDir()
	st, err := cache.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	dir := t.TempDir()
	l, err := st.ImportDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{l.DiffID}}})
	id, err := st.PutImage(ctx, cfg, cache.ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}

	s := NewStore(root)
	c, err := s.Create(Config{Name: "leaser", Path: "true", Image: id, Layers: []digest.Digest{l.DiffID}})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := st.Leases()
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || ls[0].Kind != cache.KindContainer || ls[0].Name != c.ID || len(ls[0].Images) != 1 || ls[0].Images[0] != id || len(ls[0].Layers) != 1 {
		t.Fatalf("leases after create: %+v", ls)
	}
	if err := st.DeleteImage(id); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Layer(l.DiffID); err != nil || !st.HasBlob(id) {
		t.Fatalf("GC took what a container uses: layer %v, config kept %v", err, st.HasBlob(id))
	}

	if err := s.Remove(c, false, true); err != nil {
		t.Fatal(err)
	}
	if ls, err := st.Leases(); err != nil || len(ls) != 0 {
		t.Fatalf("leases after rm: %+v, %v", ls, err)
	}
	if _, err := st.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Layer(l.DiffID); err == nil || st.HasBlob(id) {
		t.Error("the removed container's image outlived the collection")
	}
}

// TestPruneReleasesOrphanLeases: the lease of a container whose rm was
// killed halfway (its directory gone) is released by container prune; the
// leases of existing containers stay.
func TestPruneReleasesOrphanLeases(t *testing.T) {
	root := t.TempDir()
	s := NewStore(root)
	c := create(t, s, "kept")
	st, err := cache.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	orphan := strings.Repeat("ab", 32)
	if err := st.PutLease(cache.Lease{Kind: cache.KindContainer, Name: orphan}); err != nil {
		t.Fatal(err)
	}
	// Created after until, the kept container is not pruned.
	if _, err := s.PruneContainers(time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	ls, err := st.Leases()
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || ls[0].Name != c.ID {
		t.Errorf("leases after prune: %+v, want only container %s's", ls, c.ID)
	}
	if err := s.Remove(c, false, true); err != nil {
		t.Fatal(err)
	}
}
