package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/internal/kilntest/storetest"
	"github.com/kiln-build/kiln/layer"
)

type tarEntry struct {
	name, link string
	typ        byte
	mode       int64
	data       []byte
}

// The shared helpers, under the names this package's tests use (the
// tests themselves are left as they are: the store's engineer edits them).
var (
	openStore = storetest.OpenStore
	needTool  = kilntest.NeedTool
)

// makeTar writes entries with a fixed mtime.
func makeTar(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	out := make([]kilntest.TarEntry, len(entries))
	for i, e := range entries {
		out[i] = kilntest.TarEntry{Name: e.name, Link: e.link, Type: e.typ, Mode: e.mode, Body: string(e.data), Mtime: 1700000000}
	}
	return kilntest.Tar(t, out...)
}

// blobData is incompressible, so that a flipped byte lands in real layer data.
func blobData() []byte {
	b := make([]byte, 64<<10)
	r := mrand.NewChaCha8([32]byte{1})
	r.Read(b)
	return b
}

// buildImage makes a two-layer image through the store API and tags it name.
func buildImage(t *testing.T, s *cache.Store, name string, c layer.Compression) digest.Digest {
	t.Helper()
	ctx := context.Background()
	l1, err := s.ImportTar(ctx, bytes.NewReader(makeTar(t, []tarEntry{
		{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "bin/run", mode: 0o755, data: []byte("#!/bin/sh\necho run\n")},
		{name: "etc/", typ: tar.TypeDir, mode: 0o750},
		{name: "etc/hello", mode: 0o644, data: []byte("hello\n")},
		{name: "link", typ: tar.TypeSymlink, link: "etc/hello", mode: 0o777},
	})))
	if err != nil {
		t.Fatal(err)
	}
	l2, err := s.ImportTar(ctx, bytes.NewReader(makeTar(t, []tarEntry{
		{name: "data/", typ: tar.TypeDir, mode: 0o755},
		{name: "data/blob", mode: 0o600, data: blobData()},
	})))
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := ocispec.Image{
		Created:  &created,
		Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		Config:   ocispec.ImageConfig{Cmd: []string{"/bin/run"}, Env: []string{"PATH=/bin", "NAME=" + name}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{l1.DiffID, l2.DiffID}},
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.PutImage(ctx, data, cache.ImageOptions{Compression: c, OwnLayers: len(cfg.RootFS.DiffIDs)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(name, id); err != nil {
		t.Fatal(err)
	}
	return id
}

// saveFile saves images from s to a file in a temp dir and returns its path.
func saveFile(t *testing.T, s *cache.Store, f Format, images ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "archive.tar")
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := Save(context.Background(), s, out, images, f); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func loadFile(t *testing.T, s *cache.Store, p string) ([]Loaded, error) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Load(context.Background(), s, f)
}

type tarMember struct {
	hdr  *tar.Header
	data []byte
}

func readTar(t *testing.T, p string) []tarMember {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []tarMember
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarMember{hdr, data})
	}
}

func memberData(t *testing.T, ms []tarMember, name string) []byte {
	t.Helper()
	for _, m := range ms {
		if m.hdr.Name == name {
			return m.data
		}
	}
	t.Fatalf("archive has no member %s", name)
	return nil
}

// writeTarFile writes members (in order) as a tar file and returns its path.
func writeTarFile(t *testing.T, ms []tarMember) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "edited.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, m := range ms {
		hdr := *m.hdr
		hdr.Size = int64(len(m.data))
		if hdr.Typeflag != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func fileMember(name string, data []byte) tarMember {
	return tarMember{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644}, data: data}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

func randomName() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "kiln-archive-test-" + hex.EncodeToString(b)
}

// assertNothingStored checks that a failed load left no image and no name.
func assertNothingStored(t *testing.T, s *cache.Store) {
	t.Helper()
	ids, err := s.ImageIDs()
	if err != nil {
		t.Fatal(err)
	}
	refs, err := s.References()
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 0 || len(refs) != 0 {
		t.Fatalf("failed load left images %v and names %v", ids, refs)
	}
}
