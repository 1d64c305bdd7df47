package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
)

func TestSaveOCILayout(t *testing.T) {
	s := openStore(t)
	id := buildImage(t, s, "bb", layer.Gzip)
	md, m, err := s.Manifest(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	ms := readTar(t, saveFile(t, s, FormatOCI, "bb"))

	var names []string
	for _, mb := range ms {
		names = append(names, mb.hdr.Name)
		h := mb.hdr
		if !h.ModTime.Equal(epoch) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: header not deterministic: %+v", h.Name, h)
		}
		if want := map[byte]int64{tar.TypeDir: 0o755, tar.TypeReg: 0o644}[h.Typeflag]; h.Mode != want {
			t.Errorf("%s: mode %o, want %o", h.Name, h.Mode, want)
		}
	}
	want := []string{"blobs/", "blobs/sha256/", "oci-layout", "index.json", blobPath(md.Digest), blobPath(id)}
	for _, l := range m.Layers {
		want = append(want, blobPath(l.Digest))
	}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("members:\n%v\nwant:\n%v", names, want)
	}
	if got := string(memberData(t, ms, "oci-layout")); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %s", got)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(memberData(t, ms, "index.json"), &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 1 {
		t.Fatalf("index.json: %d manifests, want 1", len(idx.Manifests))
	}
	d := idx.Manifests[0]
	if d.Digest != md.Digest || d.Size != md.Size || d.MediaType != ocispec.MediaTypeImageManifest {
		t.Errorf("index descriptor %+v, want %+v", d, md)
	}
	if d.Annotations[ocispec.AnnotationRefName] != "latest" || d.Annotations[annotationImageName] != "docker.io/library/bb:latest" {
		t.Errorf("annotations %v", d.Annotations)
	}
	if d.Platform == nil || d.Platform.OS != "linux" {
		t.Errorf("platform %+v", d.Platform)
	}
	for _, mb := range ms {
		if strings.HasPrefix(mb.hdr.Name, "blobs/sha256/") && mb.hdr.Typeflag == tar.TypeReg {
			if got := digest.FromBytes(mb.data); got.Encoded() != strings.TrimPrefix(mb.hdr.Name, "blobs/sha256/") {
				t.Errorf("%s has digest %s", mb.hdr.Name, got)
			}
		}
	}
}

func TestSaveSharedBlobsOnceAndNames(t *testing.T) {
	s := openStore(t)
	id := buildImage(t, s, "bb:v1", layer.Gzip)
	if err := s.Tag("bb:v2", id); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag("example.com/other/cc:x", id); err != nil {
		t.Fatal(err)
	}
	// A second image sharing both layers (its config differs).
	img, config, err := s.Image(id)
	if err != nil {
		t.Fatal(err)
	}
	img.Config.Cmd = []string{"/bin/other"}
	config2, _ := json.Marshal(img)
	id2, err := s.PutImage(context.Background(), config2, cache.ImageOptions{Compression: layer.Gzip})
	if err != nil {
		t.Fatal(err)
	}
	if id2 == id || bytes.Equal(config, config2) {
		t.Fatal("second image is the same")
	}

	// "bb" means every tag of bb; the ID names no tag.
	ms := readTar(t, saveFile(t, s, FormatDocker, "bb", "example.com/other/cc:x", id2.String()))
	seen := map[string]int{}
	for _, mb := range ms {
		seen[mb.hdr.Name]++
	}
	for n, c := range seen {
		if c != 1 {
			t.Errorf("%s written %d times", n, c)
		}
	}
	var items []dockerManifestItem
	if err := json.Unmarshal(memberData(t, ms, "manifest.json"), &items); err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 {
		t.Fatalf("manifest.json has %d entries, want 2", len(items))
	}
	if got := strings.Join(items[0].RepoTags, ","); got != "bb:v1,bb:v2,example.com/other/cc:x" {
		t.Errorf("RepoTags %s", got)
	}
	if items[1].RepoTags != nil || items[1].Config != blobPath(id2) {
		t.Errorf("second entry %+v", items[1])
	}
	if strings.Join(items[0].Layers, ",") != strings.Join(items[1].Layers, ",") {
		t.Errorf("shared layers differ: %v %v", items[0].Layers, items[1].Layers)
	}
	for _, l := range items[0].Layers {
		if seen[l] != 1 {
			t.Errorf("layer %s not in archive", l)
		}
	}
	var repos map[string]map[string]string
	if err := json.Unmarshal(memberData(t, ms, "repositories"), &repos); err != nil {
		t.Fatal(err)
	}
	if repos["bb"]["v1"] == "" || repos["bb"]["v2"] == "" || repos["example.com/other/cc"]["x"] == "" {
		t.Errorf("repositories %v", repos)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(memberData(t, ms, "index.json"), &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 4 {
		t.Errorf("index.json has %d manifests, want 4 (3 names + 1 by ID)", len(idx.Manifests))
	}
}

func TestSaveDockerZstdLayersUncompressed(t *testing.T) {
	s := openStore(t)
	id := buildImage(t, s, "zz", layer.Zstd)
	_, m, err := s.Manifest(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if m.Layers[0].MediaType != ocispec.MediaTypeImageLayerZstd {
		t.Fatalf("layer media type %s", m.Layers[0].MediaType)
	}
	img, _, _ := s.Image(id)
	p := saveFile(t, s, FormatDocker, "zz")
	ms := readTar(t, p)
	var items []dockerManifestItem
	if err := json.Unmarshal(memberData(t, ms, "manifest.json"), &items); err != nil {
		t.Fatal(err)
	}
	for i, l := range items[0].Layers {
		data := memberData(t, ms, l)
		if got := digest.FromBytes(data); got != img.RootFS.DiffIDs[i] {
			t.Errorf("layer %d: %s has digest %s, want the diffID %s", i, l, got, img.RootFS.DiffIDs[i])
		}
	}
	// The OCI side lists the same uncompressed layers.
	var idx ocispec.Index
	json.Unmarshal(memberData(t, ms, "index.json"), &idx)
	var m2 ocispec.Manifest
	if err := json.Unmarshal(memberData(t, ms, blobPath(idx.Manifests[0].Digest)), &m2); err != nil {
		t.Fatal(err)
	}
	if m2.Layers[1].MediaType != ocispec.MediaTypeImageLayer || m2.Layers[1].Digest != img.RootFS.DiffIDs[1] {
		t.Errorf("rewritten manifest layer %+v", m2.Layers[1])
	}
	// The archive loads back as the same image.
	s2 := openStore(t)
	loaded, err := loadFile(t, s2, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || loaded[0].ID != id {
		t.Fatalf("loaded %+v, want %s", loaded, id)
	}
	// And the OCI format keeps zstd.
	ms = readTar(t, saveFile(t, s, FormatOCI, "zz"))
	memberData(t, ms, blobPath(m.Layers[0].Digest))
}

func TestSaveErrors(t *testing.T) {
	s := openStore(t)
	buildImage(t, s, "bb", layer.Gzip)
	var buf bytes.Buffer
	if err := Save(context.Background(), s, &buf, []string{"nope"}, FormatOCI); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("unknown image: %v", err)
	}
	if err := Save(context.Background(), s, &buf, []string{"bb"}, "tgz"); !errors.Is(err, cache.ErrInvalid) {
		t.Errorf("unknown format: %v", err)
	}
	if err := Save(context.Background(), s, &buf, nil, FormatOCI); !errors.Is(err, cache.ErrInvalid) {
		t.Errorf("no image: %v", err)
	}
	if buf.Len() != 0 {
		t.Errorf("failed saves wrote %d bytes", buf.Len())
	}
}
