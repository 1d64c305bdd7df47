package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/layer"
)

func openTestStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestBlobWriteVerifies(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	data := []byte("hello blob")
	want := digest.FromBytes(data)

	got, n, err := s.WriteBlob(ctx, bytes.NewReader(data), want, int64(len(data)))
	if err != nil || got != want || n != int64(len(data)) {
		t.Fatalf("WriteBlob = %s, %d, %v", got, n, err)
	}
	back, err := s.ReadBlob(want)
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("ReadBlob = %q, %v", back, err)
	}

	// Wrong content under a digest: refused, nothing stored.
	wrong := digest.FromString("something else")
	if _, _, err := s.WriteBlob(ctx, bytes.NewReader(data), wrong, -1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("mismatched digest: err = %v, want ErrInvalid", err)
	}
	if s.HasBlob(wrong) {
		t.Fatal("a blob was stored under a digest its content does not have")
	}
	// Wrong size: refused too.
	other := []byte("other")
	if _, _, err := s.WriteBlob(ctx, bytes.NewReader(other), digest.FromBytes(other), 99); !errors.Is(err, ErrInvalid) {
		t.Fatalf("mismatched size: err = %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Root(), "tmp")); len(ents) != 0 {
		t.Fatalf("tmp not empty after failed writes: %v", ents)
	}
	// A blob corrupted on disk is detected when read.
	os.WriteFile(s.blobPath(want), []byte("tampered!!"), 0o644)
	if _, err := s.ReadBlob(want); !errors.Is(err, ErrInvalid) {
		t.Fatalf("tampered blob: err = %v", err)
	}
}

// importTree makes a layer from a small directory tree.
func importTree(t *testing.T, s *Store, files map[string]string) Layer {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := s.ImportDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func putImage(t *testing.T, s *Store, layers ...Layer) digest.Digest {
	t.Helper()
	img := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}, RootFS: ocispec.RootFS{Type: "layers"}}
	for _, l := range layers {
		img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, l.DiffID)
	}
	data, _ := json.Marshal(img)
	id, err := s.PutImage(context.Background(), data, ImageOptions{Compression: layer.Gzip, OwnLayers: len(layers)})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestLayerBlobIsRegeneratedExactly(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	l := importTree(t, s, map[string]string{"etc/hello": "hi", "bin/tool": strings.Repeat("x", 100000)})
	if !l.Canonical || len(l.Blobs) != 0 {
		t.Fatalf("imported layer: %+v", l)
	}
	for _, c := range []layer.Compression{layer.Gzip, layer.Zstd} {
		desc, err := s.LayerBlob(ctx, l.DiffID, c)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if desc.MediaType != c.MediaType() {
			t.Errorf("media type %s, want %s", desc.MediaType, c.MediaType())
		}
		// The blob decompresses to the tar whose digest is the diffID.
		f, _ := s.OpenBlob(desc.Digest)
		rc, got, err := layer.Decompress(f)
		if err != nil || got != c {
			t.Fatalf("decompress: %v %s", err, got)
		}
		dg := digest.Canonical.Digester()
		n, _ := bytes.NewBuffer(nil).ReadFrom(teeTo(rc, dg))
		rc.Close()
		f.Close()
		if dg.Digest() != l.DiffID || n != l.Size {
			t.Errorf("%s blob: tar digest %s (%d bytes), want %s (%d)", c, dg.Digest(), n, l.DiffID, l.Size)
		}
		// Second call reuses it.
		again, err := s.LayerBlob(ctx, l.DiffID, c)
		if err != nil || again.Digest != desc.Digest {
			t.Errorf("second LayerBlob: %v %v", again, err)
		}
	}
}

func TestTagResolveUntag(t *testing.T) {
	s := openTestStore(t)
	l := importTree(t, s, map[string]string{"a": "a"})
	id := putImage(t, s, l)
	if err := s.Tag("busybox", id); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"busybox", "busybox:latest", "docker.io/library/busybox:latest", id.String(), id.Encoded(), id.Encoded()[:12]} {
		got, err := s.Resolve(ref)
		if err != nil || got != id {
			t.Errorf("Resolve(%q) = %s, %v", ref, got, err)
		}
	}
	if _, err := s.Resolve("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(nope): %v", err)
	}
	if err := s.Tag("Bad Name", id); !errors.Is(err, ErrInvalid) {
		t.Errorf("Tag(bad name): %v", err)
	}
	if err := s.DeleteImage(id); !errors.Is(err, ErrExists) {
		t.Errorf("DeleteImage of a tagged image: %v", err)
	}
	if _, err := s.Untag("busybox"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteImage(id); err != nil {
		t.Fatal(err)
	}
}

func TestGCKeepsWhatImagesUse(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	kept := importTree(t, s, map[string]string{"kept": "1"})
	gone := importTree(t, s, map[string]string{"gone": "2"})
	keptID := putImage(t, s, kept)
	goneID := putImage(t, s, gone)
	if _, _, err := s.Manifest(ctx, keptID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteImage(goneID); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(s.Root(), "tmp", "debris"), []byte("crash leftovers"), 0o644)

	// Another process holding the store defers the collection.
	other, err := Open(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(ctx); !errors.Is(err, ErrBusy) {
		t.Fatalf("GC with another user: %v, want ErrBusy", err)
	}
	other.Close()

	freed, err := s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if freed <= 0 {
		t.Errorf("freed %d bytes", freed)
	}
	if _, err := s.Layer(gone.DiffID); !errors.Is(err, ErrNotFound) {
		t.Errorf("unreferenced layer survived: %v", err)
	}
	if s.HasBlob(goneID) {
		t.Error("unreferenced config survived")
	}
	if _, err := s.Layer(kept.DiffID); err != nil {
		t.Errorf("referenced layer removed: %v", err)
	}
	if _, _, err := s.Manifest(ctx, keptID); err != nil {
		t.Errorf("manifest of kept image: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "tmp", "debris")); !os.IsNotExist(err) {
		t.Error("tmp debris survived")
	}
}
