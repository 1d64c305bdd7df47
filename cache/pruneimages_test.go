package cache

import (
	"context"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestPruneImagesSparesLeasedImages: image prune -a removes every image no
// lease holds; system df counts the containers' leases.
func TestPruneImagesSparesLeasedImages(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	used := importTree(t, s, map[string]string{"used": "1"})
	unused := importTree(t, s, map[string]string{"unused": "2"})
	usedID, unusedID := putImage(t, s, used), putImage(t, s, unused)
	if err := s.Tag("used:1", usedID); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag("unused:1", unusedID); err != nil {
		t.Fatal(err)
	}
	if err := s.PutLease(Lease{Kind: KindContainer, Name: "c1", Images: []digest.Digest{usedID}, Layers: []digest.Digest{used.DiffID}}); err != nil {
		t.Fatal(err)
	}
	u, err := s.ImageUsage()
	if err != nil {
		t.Fatal(err)
	}
	if u.Total != 2 || u.Active != 1 || u.Reclaimable <= 0 || u.Reclaimable >= u.Size {
		t.Errorf("image usage %+v: want 2 images, 1 active, the unused one's layer reclaimable", u)
	}
	for _, r := range u.Images {
		if want := map[digest.Digest]int{usedID: 1}[r.ID]; r.Containers != want {
			t.Errorf("image %s: %d containers, want %d", r.ID, r.Containers, want)
		}
	}

	// Without -a, tagged images stay.
	res, err := s.PruneImages(ctx, PruneImagesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 0 {
		t.Errorf("prune without -a removed %+v", res.Images)
	}
	res, err = s.PruneImages(ctx, PruneImagesOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 1 || res.Images[0].ID != unusedID || len(res.Images[0].Untagged) != 1 || res.Freed <= 0 {
		t.Fatalf("prune -a: %+v, want the unused image removed and its name untagged", res)
	}
	if !s.isImage(usedID) {
		t.Error("prune -a removed the image a container's lease holds")
	}
	if _, err := s.Layer(unused.DiffID); err == nil {
		t.Error("the pruned image's layer survived the collection")
	}
}
