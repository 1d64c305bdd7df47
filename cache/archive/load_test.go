package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
)

func TestRoundTrip(t *testing.T) {
	for _, f := range []Format{FormatOCI, FormatDocker} {
		t.Run(string(f), func(t *testing.T) {
			s1 := openStore(t)
			id := buildImage(t, s1, "bb:1.0", layer.Gzip)
			if err := s1.Tag("example.com/team/bb:latest", id); err != nil {
				t.Fatal(err)
			}
			p1 := saveFile(t, s1, f, "bb:1.0", "example.com/team/bb")

			s2 := openStore(t)
			loaded, err := loadFile(t, s2, p1)
			if err != nil {
				t.Fatal(err)
			}
			names1, _ := s1.NamesOf(id)
			if len(loaded) != 1 || loaded[0].ID != id || !slices.Equal(sorted(loaded[0].Names), names1) {
				t.Fatalf("loaded %+v, want %s %v", loaded, id, names1)
			}
			names2, _ := s2.NamesOf(id)
			if !slices.Equal(names1, names2) {
				t.Errorf("names %v, want %v", names2, names1)
			}
			// The loaded layers are usable snapshots.
			img, _, err := s2.Image(id)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(s2.SnapshotDir(img.RootFS.DiffIDs[0]), "etc/hello"))
			if err != nil || string(got) != "hello\n" {
				t.Errorf("etc/hello in loaded snapshot: %q, %v", got, err)
			}
			p2 := saveFile(t, s2, f, "bb:1.0", "example.com/team/bb")
			a, _ := os.ReadFile(p1)
			b, _ := os.ReadFile(p2)
			if !bytes.Equal(a, b) {
				t.Errorf("archive saved from the loading store differs (%d vs %d bytes)", len(a), len(b))
			}
			// Loading again changes nothing and reports the same.
			again, err := loadFile(t, s2, p1)
			if err != nil || len(again) != 1 || again[0].ID != id {
				t.Errorf("second load: %+v, %v", again, err)
			}
		})
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestLoadStreams reads archives from a pipe, plain and gzip-compressed as a
// whole, so that nothing can be read in place.
func TestLoadStreams(t *testing.T) {
	s1 := openStore(t)
	id := buildImage(t, s1, "bb", layer.Gzip)
	data, err := os.ReadFile(saveFile(t, s1, FormatDocker, "bb"))
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	for name, input := range map[string][]byte{"plain": data, "gzip": gz.Bytes()} {
		t.Run(name, func(t *testing.T) {
			s2 := openStore(t)
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				pw.Write(input)
				pw.Close()
			}()
			loaded, err := Load(context.Background(), s2, pr)
			pr.Close()
			if err != nil {
				t.Fatal(err)
			}
			if len(loaded) != 1 || loaded[0].ID != id || !slices.Equal(loaded[0].Names, []string{"docker.io/library/bb:latest"}) {
				t.Fatalf("loaded %+v", loaded)
			}
			tmp, _ := os.ReadDir(filepath.Join(s2.Root(), "tmp"))
			if len(tmp) != 0 {
				t.Errorf("load left %d entries in the store's tmp", len(tmp))
			}
		})
	}
}

func TestLoadCorruptLayer(t *testing.T) {
	s1 := openStore(t)
	id := buildImage(t, s1, "bb", layer.Gzip)
	_, m, err := s1.Manifest(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	bad := blobPath(m.Layers[1].Digest)
	for _, f := range []Format{FormatOCI, FormatDocker} {
		ms := readTar(t, saveFile(t, s1, f, "bb"))
		for _, mb := range ms {
			if mb.hdr.Name == bad {
				mb.data[len(mb.data)/2] ^= 0x40
			}
		}
		p := writeTarFile(t, ms)
		// A byte of the gzip header's mtime: the layer still decompresses to
		// the right tar, only the blob digest tells.
		for _, mb := range ms {
			if mb.hdr.Name == bad {
				mb.data[len(mb.data)/2] ^= 0x40
				mb.data[5] ^= 1
			}
		}
		pHeader := writeTarFile(t, ms)
		t.Run(string(f)+"/gzip-header", func(t *testing.T) {
			s2 := openStore(t)
			_, err := loadFile(t, s2, pHeader)
			t.Logf("error: %v", err)
			if err == nil || !strings.Contains(err.Error(), "archive member "+bad) || !errors.Is(err, cache.ErrInvalid) {
				t.Fatalf("error %v does not name %s", err, bad)
			}
			assertNothingStored(t, s2)
		})
		t.Run(string(f)+"/file", func(t *testing.T) {
			s2 := openStore(t)
			_, err := loadFile(t, s2, p)
			t.Logf("error: %v", err)
			if err == nil || !strings.Contains(err.Error(), "archive member "+bad) {
				t.Fatalf("error %v does not name %s", err, bad)
			}
			assertNothingStored(t, s2)
		})
		t.Run(string(f)+"/stream", func(t *testing.T) {
			s2 := openStore(t)
			data, _ := os.ReadFile(p)
			_, err := Load(context.Background(), s2, bytes.NewReader(data))
			t.Logf("error: %v", err)
			if err == nil || !strings.Contains(err.Error(), "archive member "+bad) {
				t.Fatalf("error %v does not name %s", err, bad)
			}
			assertNothingStored(t, s2)
		})
	}
}

// TestLoadCorruptSecondImage: the first image of the archive is fine, the
// second has a bad layer; the first must not be recorded either.
func TestLoadCorruptSecondImage(t *testing.T) {
	ctx := context.Background()
	s1 := openStore(t)
	id := buildImage(t, s1, "bb", layer.Gzip)
	img, _, err := s1.Image(id)
	if err != nil {
		t.Fatal(err)
	}
	l3, err := s1.ImportTar(ctx, bytes.NewReader(makeTar(t, []tarEntry{{name: "other", mode: 0o644, data: blobData()[:5000]}})))
	if err != nil {
		t.Fatal(err)
	}
	img.RootFS.DiffIDs = []digest.Digest{img.RootFS.DiffIDs[0], l3.DiffID}
	id2, err := s1.PutImage(ctx, mustJSON(t, img), cache.ImageOptions{Compression: layer.Gzip})
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Tag("cc", id2); err != nil {
		t.Fatal(err)
	}
	_, m2, err := s1.Manifest(ctx, id2)
	if err != nil {
		t.Fatal(err)
	}
	bad := blobPath(m2.Layers[1].Digest)
	ms := readTar(t, saveFile(t, s1, FormatOCI, "bb", "cc"))
	for _, mb := range ms {
		if mb.hdr.Name == bad {
			mb.data[len(mb.data)-3] ^= 1 // in the gzip trailer
		}
	}
	s2 := openStore(t)
	_, err = loadFile(t, s2, writeTarFile(t, ms))
	t.Logf("error: %v", err)
	if err == nil || !strings.Contains(err.Error(), "archive member "+bad) {
		t.Fatalf("error %v does not name %s", err, bad)
	}
	assertNothingStored(t, s2)
}

// TestLoadCorruptMetadata breaks manifests, configs and the archive's indexes.
func TestLoadCorruptMetadata(t *testing.T) {
	s1 := openStore(t)
	id := buildImage(t, s1, "bb", layer.Gzip)
	md, m, err := s1.Manifest(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	base := readTar(t, saveFile(t, s1, FormatDocker, "bb"))
	garbage := []byte("{not json")
	gd := digest.FromBytes(garbage)

	// edit copies base, applies fn to it, and may drop members.
	edit := func(fn func(ms []tarMember) []tarMember) string {
		var ms []tarMember
		for _, mb := range base {
			h := *mb.hdr
			ms = append(ms, tarMember{&h, slices.Clone(mb.data)})
		}
		return writeTarFile(t, fn(ms))
	}
	set := func(ms []tarMember, name string, data []byte) []tarMember {
		for i := range ms {
			if ms[i].hdr.Name == name {
				ms[i].data = data
				return ms
			}
		}
		return append(ms, fileMember(name, data))
	}
	drop := func(ms []tarMember, name string) []tarMember {
		return slices.DeleteFunc(ms, func(mb tarMember) bool { return mb.hdr.Name == name })
	}
	ociIndex := func(d ocispec.Descriptor) []byte {
		idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{d}}
		idx.SchemaVersion = 2
		return mustJSON(t, idx)
	}
	cases := []struct {
		name, archive, want string
	}{
		{"manifest does not parse", edit(func(ms []tarMember) []tarMember {
			ms = set(ms, blobPath(gd), garbage)
			ms = drop(ms, "manifest.json")
			return set(ms, "index.json", ociIndex(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: gd, Size: int64(len(garbage))}))
		}), "archive member " + blobPath(gd) + ": parse manifest"},
		{"manifest altered", edit(func(ms []tarMember) []tarMember {
			return set(ms, blobPath(md.Digest), bytes.Replace(memberData(t, ms, blobPath(md.Digest)), []byte(`"size"`), []byte(`"size" `), 1))
		}), "archive member " + blobPath(md.Digest) + ": "},
		{"config altered", edit(func(ms []tarMember) []tarMember {
			return set(ms, blobPath(id), bytes.Replace(memberData(t, ms, blobPath(id)), []byte("/bin/run"), []byte("/bin/xxx"), 1))
		}), "archive member " + blobPath(id) + ": content has digest"},
		{"layer missing", edit(func(ms []tarMember) []tarMember {
			return drop(ms, blobPath(m.Layers[0].Digest))
		}), "archive member " + blobPath(m.Layers[0].Digest) + ": not in the archive"},
		{"diff_ids do not match the layers", edit(func(ms []tarMember) []tarMember {
			// A consistent chain of digests whose config swaps the diff_ids.
			img, _, _ := s1.Image(id)
			img.RootFS.DiffIDs[0], img.RootFS.DiffIDs[1] = img.RootFS.DiffIDs[1], img.RootFS.DiffIDs[0]
			config := mustJSON(t, img)
			m2 := m
			m2.Config.Digest, m2.Config.Size = digest.FromBytes(config), int64(len(config))
			manifest := mustJSON(t, m2)
			md2 := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(manifest), Size: int64(len(manifest))}
			ms = append(ms, fileMember(blobPath(m2.Config.Digest), config), fileMember(blobPath(md2.Digest), manifest))
			return set(drop(ms, "manifest.json"), "index.json", ociIndex(md2))
		}), "archive member " + blobPath(m.Layers[0].Digest) + ": layer " + string(m.Layers[0].Digest) + ": uncompressed content has digest"},
		{"index.json does not parse", edit(func(ms []tarMember) []tarMember {
			return set(ms, "index.json", garbage)
		}), "archive member index.json: parse index"},
		{"manifest.json does not parse", edit(func(ms []tarMember) []tarMember {
			return set(drop(ms, "index.json"), "manifest.json", garbage)
		}), "archive member manifest.json: parse"},
		{"bad name", edit(func(ms []tarMember) []tarMember {
			return set(drop(ms, "index.json"), "manifest.json", bytes.Replace(memberData(t, ms, "manifest.json"), []byte("bb:latest"), []byte("BB:latest"), 1))
		}), "archive member manifest.json: entry 0: RepoTags"},
		{"wrong layout version", edit(func(ms []tarMember) []tarMember {
			return set(ms, "oci-layout", []byte(`{"imageLayoutVersion":"9"}`))
		}), "archive member oci-layout: image layout version"},
		{"not an archive of images", edit(func(ms []tarMember) []tarMember {
			return drop(drop(ms, "index.json"), "manifest.json")
		}), "not an image archive"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s2 := openStore(t)
			_, err := loadFile(t, s2, c.archive)
			t.Logf("error: %v", err)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if !errors.Is(err, cache.ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
			assertNothingStored(t, s2)
		})
	}
	t.Run("not a tar", func(t *testing.T) {
		s2 := openStore(t)
		_, err := Load(context.Background(), s2, strings.NewReader(strings.Repeat("x", 2000)))
		t.Logf("error: %v", err)
		if err == nil {
			t.Fatal("garbage loaded")
		}
		assertNothingStored(t, s2)
	})
}

// TestLoadNestedIndex loads an index.json whose entry is a multi-platform
// index that has only this platform's image (the other one's blobs are not
// even in the archive): the index is kept and takes the name, which
// resolves to this platform's image.
func TestLoadNestedIndex(t *testing.T) {
	s1 := openStore(t)
	id := buildImage(t, s1, "bb", layer.Gzip)
	md, _, err := s1.Manifest(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	ms := readTar(t, saveFile(t, s1, FormatOCI, "bb"))
	other := "arm64"
	if runtime.GOARCH == other {
		other = "amd64"
	}
	missing := digest.FromString("elsewhere")
	nested := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{
		{MediaType: ocispec.MediaTypeImageManifest, Digest: missing, Size: 9, Platform: &ocispec.Platform{OS: "linux", Architecture: other}},
		{MediaType: ocispec.MediaTypeImageManifest, Digest: md.Digest, Size: md.Size, Platform: &ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}},
	}}
	nested.SchemaVersion = 2
	nestedData := mustJSON(t, nested)
	nd := digest.FromBytes(nestedData)
	top := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{{
		MediaType: ocispec.MediaTypeImageIndex, Digest: nd, Size: int64(len(nestedData)),
		Annotations: map[string]string{ocispec.AnnotationRefName: "example.com/multi:2"},
	}}}
	top.SchemaVersion = 2
	for i := range ms {
		if ms[i].hdr.Name == "index.json" {
			ms[i].data = mustJSON(t, top)
		}
	}
	ms = append(ms, fileMember(blobPath(nd), nestedData))
	s2 := openStore(t)
	loaded, err := loadFile(t, s2, writeTarFile(t, ms))
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || loaded[0].ID != nd || !slices.Equal(loaded[0].Names, []string{"example.com/multi:2"}) {
		t.Fatalf("loaded %+v, want the index %s named", loaded, nd)
	}
	if got, err := s2.Resolve("example.com/multi:2"); got != id || err != nil {
		t.Errorf("the name resolves to %s, %v; want this platform's image %s", got, err, id)
	}
	if _, err := s2.ResolvePlatform("example.com/multi:2", ocispec.Platform{OS: "linux", Architecture: other}); !errors.Is(err, cache.ErrPlatformNotFound) || !strings.Contains(err.Error(), "was not pulled") {
		t.Errorf("the platform the archive lacks: %v", err)
	}
}

// TestLoadLegacyDockerArchive loads the layout of docker save before docker
// 25: <id>/layer.tar per layer, a layer shared by two images stored once and
// symlinked from the other's directory, configs as <hex>.json.
func TestLoadLegacyDockerArchive(t *testing.T) {
	s1 := openStore(t)
	id := buildImage(t, s1, "bb", layer.Gzip)
	img, config, err := s1.Image(id)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s1.Manifest(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	img.Config.Cmd = []string{"/bin/other"}
	config2 := mustJSON(t, img)
	id2 := digest.FromBytes(config2)

	tarOf := func(diffID digest.Digest) []byte {
		var buf bytes.Buffer
		f, _ := s1.OpenBlob(mustLayerBlob(t, s1, diffID).Digest)
		defer f.Close()
		dr, _, err := layer.Decompress(f)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(&buf, dr)
		return buf.Bytes()
	}
	dir := func(name string) tarMember {
		return tarMember{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
	}
	manifest := []dockerManifestItem{
		{Config: id.Encoded() + ".json", RepoTags: []string{"bb:old"}, Layers: []string{"l1/layer.tar", "l2/layer.tar"}},
		{Config: id2.Encoded() + ".json", RepoTags: []string{"cc:old"}, Layers: []string{"l1/layer.tar", "l3/layer.tar"}},
	}
	// manifest.json last, as docker wrote it.
	ms := []tarMember{
		dir("l1/"), fileMember("l1/layer.tar", tarOf(img.RootFS.DiffIDs[0])),
		dir("l2/"), fileMember("l2/layer.tar", tarOf(img.RootFS.DiffIDs[1])),
		dir("l3/"), {hdr: &tar.Header{Typeflag: tar.TypeSymlink, Name: "l3/layer.tar", Linkname: "../l2/layer.tar"}},
		fileMember(id.Encoded()+".json", config),
		fileMember(id2.Encoded()+".json", config2),
		fileMember("repositories", []byte(`{"bb":{"old":"l2"}}`)),
		fileMember("manifest.json", mustJSON(t, manifest)),
	}
	p := writeTarFile(t, ms)
	data, _ := os.ReadFile(p)
	s2 := openStore(t)
	loaded, err := Load(context.Background(), s2, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 2 || loaded[0].ID != id || loaded[1].ID != id2 || loaded[1].Names[0] != "docker.io/library/cc:old" {
		t.Fatalf("loaded %+v", loaded)
	}
	// Saved again, the layers are the uncompressed blobs they came as.
	out := readTar(t, saveFile(t, s2, FormatDocker, "cc:old"))
	var items []dockerManifestItem
	json.Unmarshal(memberData(t, out, "manifest.json"), &items)
	if items[0].Layers[0] != blobPath(img.RootFS.DiffIDs[0]) {
		t.Errorf("layers saved as %v", items[0].Layers)
	}

	// A symlink leading out of the archive leads nowhere.
	ms[5] = tarMember{hdr: &tar.Header{Typeflag: tar.TypeSymlink, Name: "l3/layer.tar", Linkname: "../../../../etc/passwd"}}
	s3 := openStore(t)
	if _, err := loadFile(t, s3, writeTarFile(t, ms)); err == nil || !strings.Contains(err.Error(), "l3/layer.tar") {
		t.Fatalf("escaping symlink: %v", err)
	}
	assertNothingStored(t, s3)
}

func mustLayerBlob(t *testing.T, s *cache.Store, diffID digest.Digest) ocispec.Descriptor {
	t.Helper()
	l, err := s.Layer(diffID)
	if err != nil || len(l.Blobs) == 0 {
		t.Fatalf("layer %s: %+v, %v", diffID, l, err)
	}
	return l.Blobs[0]
}
