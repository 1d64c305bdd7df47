package cache

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/layer"
)

func TestParsePlatform(t *testing.T) {
	host := HostPlatform()
	for in, want := range map[string]string{
		"linux/amd64":    "linux/amd64",
		"linux/x86_64":   "linux/amd64",
		"linux/aarch64":  "linux/arm64",
		"linux/arm64/v8": "linux/arm64",
		"linux/arm":      "linux/arm/v7",
		"linux/arm/v6":   "linux/arm/v6",
		"arm64":          "linux/arm64",
		"linux":          FormatPlatform(host),
		" Linux/AMD64 ":  "linux/amd64",
	} {
		p, err := ParsePlatform(in)
		if err != nil || FormatPlatform(p) != want {
			t.Errorf("ParsePlatform(%q) = %s, %v; want %s", in, FormatPlatform(p), err, want)
		}
	}
	for _, bad := range []string{"", "linux//amd64", "linux/arm/v7/x", "windows/amd64", "/"} {
		if _, err := ParsePlatform(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParsePlatform(%q): %v, want ErrInvalid", bad, err)
		}
	}
	if !PlatformMatches(ocispec.Platform{OS: "linux", Architecture: "arm64"}, ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}) {
		t.Error("linux/arm64 should match linux/arm64/v8")
	}
	if PlatformMatches(ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, ocispec.Platform{OS: "linux", Architecture: "arm"}) {
		t.Error("linux/arm/v6 should not match linux/arm (v7)")
	}
}

// putPlatformImage stores a one-layer image of platform p.
func putPlatformImage(t *testing.T, s *Store, p ocispec.Platform, content string) digest.Digest {
	t.Helper()
	l := importTree(t, s, map[string]string{"arch": content})
	img := ocispec.Image{Platform: p, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{l.DiffID}}}
	data, _ := json.Marshal(img)
	id, err := s.PutImage(context.Background(), data, ImageOptions{Compression: layer.Gzip, OwnLayers: 1})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestIndexLifecycle: an index is tagged like an image; names resolve to
// the host's image, ResolvePlatform to each platform's, a missing platform
// is a clear ErrPlatformNotFound; GC keeps the index blob and its images'
// content; prune keeps the images a kept index lists, and removes an
// untagged index, then its images.
func TestIndexLifecycle(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	amd := ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm := ocispec.Platform{OS: "linux", Architecture: "arm64"}
	amdID, armID := putPlatformImage(t, s, amd, "amd64"), putPlatformImage(t, s, arm, "arm64")
	d, err := s.PutIndex(ctx, []IndexImage{{Image: amdID, Manifest: ocispec.Descriptor{Platform: &amd}}, {Image: armID, Manifest: ocispec.Descriptor{Platform: &arm}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag("multi:1", d); err != nil {
		t.Fatal(err)
	}
	idx, images, err := s.Index(d)
	if err != nil || len(idx.Manifests) != 2 || len(images) != 2 || idx.MediaType != ocispec.MediaTypeImageIndex ||
		idx.Manifests[1].Platform.Architecture != "arm64" || images[1].Image != armID {
		t.Fatalf("Index = %+v, %+v, %v", idx, images, err)
	}
	if got, isIndex, err := s.ResolveTarget("multi:1"); got != d || !isIndex || err != nil {
		t.Errorf("ResolveTarget = %s, %v, %v", got, isIndex, err)
	}
	if got, err := s.ResolvePlatform("multi:1", arm); got != armID || err != nil {
		t.Errorf("ResolvePlatform(arm64) = %s, %v", got, err)
	}
	if got, err := s.ResolvePlatform(d.String(), amd); got != amdID || err != nil {
		t.Errorf("ResolvePlatform(index ID, amd64) = %s, %v", got, err)
	}
	if HostPlatform().Architecture == "amd64" {
		if got, err := s.Resolve("multi:1"); got != amdID || err != nil {
			t.Errorf("Resolve = %s, %v: want the host's image", got, err)
		}
	}
	_, err = s.ResolvePlatform("multi:1", ocispec.Platform{OS: "linux", Architecture: "s390x"})
	if !errors.Is(err, ErrPlatformNotFound) || !errors.Is(err, ErrNotFound) || err.Error() != "image multi:1 has no manifest for platform linux/s390x (it has linux/amd64, linux/arm64)" {
		t.Errorf("missing platform: %v", err)
	}
	if _, err := s.ResolvePlatform(armID.String(), amd); !errors.Is(err, ErrPlatformNotFound) {
		t.Errorf("an arm64 image asked for amd64: %v", err)
	}

	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if !s.HasBlob(d) || !s.HasBlob(images[0].Manifest.Digest) || !s.HasBlob(images[1].Manifest.Digest) {
		t.Fatal("GC removed the index or a manifest it names")
	}
	res, err := s.PruneImages(ctx, PruneImagesOptions{})
	if err != nil || len(res.Images) != 0 {
		t.Fatalf("prune of dangling images removed the images of a tagged index: %+v, %v", res, err)
	}

	if _, err := s.Untag("multi:1"); err != nil {
		t.Fatal(err)
	}
	res, err = s.PruneImages(ctx, PruneImagesOptions{})
	if err != nil || len(res.Images) != 3 || res.Images[0].ID != d {
		t.Fatalf("prune of an untagged index: %+v, %v; want the index, then its two images", res, err)
	}
	if s.IsIndex(d) || s.HasBlob(d) || s.isImage(amdID) || s.isImage(armID) {
		t.Error("the pruned index or its images survived")
	}
}

// TestPutIndexAnnotations: the index carries the index annotations and each
// manifest descriptor its own; without them the same images give another
// index (the annotations are part of its digest).
func TestPutIndexAnnotations(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	amd := ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm := ocispec.Platform{OS: "linux", Architecture: "arm64"}
	amdID, armID := putPlatformImage(t, s, amd, "amd64"), putPlatformImage(t, s, arm, "arm64")
	images := []IndexImage{
		{Image: amdID, Manifest: ocispec.Descriptor{Platform: &amd, Annotations: map[string]string{"d": "amd"}}},
		{Image: armID, Manifest: ocispec.Descriptor{Platform: &arm}},
	}
	d, err := s.PutIndex(ctx, images, map[string]string{"org.example.i": "1"})
	if err != nil {
		t.Fatal(err)
	}
	idx, recs, err := s.Index(d)
	if err != nil || idx.Annotations["org.example.i"] != "1" || len(idx.Annotations) != 1 ||
		idx.Manifests[0].Annotations["d"] != "amd" || idx.Manifests[1].Annotations != nil || recs[0].Manifest.Annotations["d"] != "amd" {
		t.Fatalf("Index = %+v, %+v, %v", idx, recs, err)
	}
	plain, err := s.PutIndex(ctx, []IndexImage{{Image: amdID, Manifest: ocispec.Descriptor{Platform: &amd}}, images[1]}, nil)
	if err != nil || plain == d {
		t.Errorf("index without annotations: %s, %v (annotated: %s)", plain, err, d)
	}
}
