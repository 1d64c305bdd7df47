package registry

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/internal/kilntest/storetest"
	"github.com/kiln-build/kiln/registry/registrytest"
)

// TestPullCorruptBlob: a layer blob altered in the registry's storage is
// caught, the error names it, and nothing is named or recorded.
func TestPullCorruptBlob(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.Options{})
	src := storetest.OpenStore(t)
	id := makeImage(t, src, "app", filesA, filesB)
	if _, err := Push(ctx, src, "app", reg.Ref("kiln/app:v1"), FormatKeep, anon); err != nil {
		t.Fatal(err)
	}
	_, m, _ := src.Manifest(ctx, id)
	bad := m.Layers[0]
	p := reg.BlobPath(bad.Digest)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	orig := bytes.Clone(data)
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dst := storetest.OpenStore(t)
	_, err = Pull(ctx, dst, reg.Ref("kiln/app:v1"), anon)
	if err == nil || !strings.Contains(err.Error(), bad.Digest.String()) {
		t.Fatalf("pull of a corrupt blob: %v, want an error naming %s", err, bad.Digest)
	}
	t.Logf("corrupt blob: %v", err)
	checkNothingStored(t, dst, reg.Ref("kiln/app:v1"), bad.Digest)

	// The same layer compressed differently: it decompresses to the right
	// diffID, only the blob digest tells.
	zr, err := gzip.NewReader(bytes.NewReader(orig))
	if err != nil {
		t.Fatal(err)
	}
	var re bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&re, gzip.BestCompression)
	if _, err := io.Copy(zw, zr); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	if err := os.WriteFile(p, re.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Pull(ctx, dst, reg.Ref("kiln/app:v1"), anon)
	if !errors.Is(err, cache.ErrInvalid) || !strings.Contains(err.Error(), bad.Digest.String()) {
		t.Fatalf("pull of a recompressed blob: %v, want ErrInvalid naming %s", err, bad.Digest)
	}
	t.Logf("recompressed blob: %v", err)
	checkNothingStored(t, dst, reg.Ref("kiln/app:v1"), bad.Digest)

	// A blob of the right content but the wrong size is refused too.
	if err := os.WriteFile(p, append(orig, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Pull(ctx, dst, reg.Ref("kiln/app:v1"), anon); err == nil || !strings.Contains(err.Error(), bad.Digest.String()) {
		t.Fatalf("pull of a blob of the wrong size: %v", err)
	} else {
		t.Logf("blob of the wrong size: %v", err)
	}
}

func checkNothingStored(t *testing.T, s *cache.Store, name string, bad digest.Digest) {
	t.Helper()
	if _, err := s.Resolve(name); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("the image got a name: %v", err)
	}
	if ids, _ := s.ImageIDs(); len(ids) != 0 {
		t.Errorf("images recorded: %v", ids)
	}
	if s.HasBlob(bad) {
		t.Errorf("the bad blob is in the store")
	}
}

// TestPullResumes: blobs and layers already in the store are not fetched again.
func TestPullResumes(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.Options{})
	src := storetest.OpenStore(t)
	id := makeImage(t, src, "app", filesA, filesB)
	if _, err := Push(ctx, src, "app", reg.Ref("kiln/app:v1"), FormatKeep, anon); err != nil {
		t.Fatal(err)
	}
	_, m, _ := src.Manifest(ctx, id)
	img, _, _ := src.Image(id)

	// As if an earlier pull died after its first layer: the store has that
	// layer (blob and snapshot) and nothing else.
	dst := storetest.OpenStore(t)
	f, err := src.OpenBlob(m.Layers[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dst.IngestLayerBlob(ctx, f, m.Layers[0], img.RootFS.DiffIDs[0]); err != nil {
		t.Fatal(err)
	}
	f.Close()
	mark := reg.Mark()
	var progress strings.Builder
	o := anon
	o.Progress = &progress
	if _, err := Pull(ctx, dst, reg.Ref("kiln/app:v1"), o); err != nil {
		t.Fatal(err)
	}
	if n := reg.Requests(mark, "GET", "/blobs/"+m.Layers[0].Digest.String()); n != 0 {
		t.Errorf("the stored layer was fetched %d times", n)
	}
	if n := reg.Requests(mark, "GET", "/blobs/"+m.Layers[1].Digest.String()); n != 1 {
		t.Errorf("the missing layer was fetched %d times", n)
	}
	short0, short1 := m.Layers[0].Digest.Encoded()[:12], m.Layers[1].Digest.Encoded()[:12]
	for _, want := range []string{short0 + ": already exists", short1 + ": downloading", short1 + ": done"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}
}

// TestPullWhatSkopeoPushed: OCI and docker schema 2 manifests, and a
// multi-platform index, as skopeo writes them.
func TestPullWhatSkopeoPushed(t *testing.T) {
	kilntest.NeedTool(t, "skopeo")
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.Options{})
	src := storetest.OpenStore(t)
	amd := makeImage(t, src, "amd", filesA, filesB)
	other := makeImage(t, src, "other", filesB)
	for _, n := range []string{"amd", "other"} {
		if _, err := Push(ctx, src, n, reg.Ref("kiln/"+n+":v1"), FormatKeep, anon); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ format, mt string }{
		{"oci", ocispec.MediaTypeImageManifest},
		{"v2s2", string(types.DockerManifestSchema2)},
	} {
		dest := reg.Ref("skopeo/" + c.format + ":v1")
		run(t, "skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--format", c.format, "docker://"+reg.Ref("kiln/amd:v1"), "docker://"+dest)
		dst := storetest.OpenStore(t)
		p, err := Pull(ctx, dst, dest, anon)
		if err != nil {
			t.Fatalf("%s: %v", c.format, err)
		}
		if p.ID != amd || p.Manifest.MediaType != c.mt {
			t.Errorf("%s: pulled %+v, want image %s with a %s manifest", c.format, p, amd, c.mt)
		}
		// What skopeo wrote is what kiln keeps, byte for byte.
		var info struct{ Digest digest.Digest }
		json.Unmarshal([]byte(run(t, "skopeo", "inspect", "--tls-verify=false", "docker://"+dest)), &info)
		if info.Digest != p.Manifest.Digest {
			t.Errorf("%s: kept manifest %s, registry has %s", c.format, p.Manifest.Digest, info.Digest)
		}
	}

	// An index of two platforms, assembled in an OCI layout and copied by
	// skopeo --all.
	layout := t.TempDir()
	run(t, "skopeo", "copy", "--src-tls-verify=false", "docker://"+reg.Ref("kiln/amd:v1"), "oci:"+layout+":amd")
	run(t, "skopeo", "copy", "--src-tls-verify=false", "docker://"+reg.Ref("kiln/other:v1"), "oci:"+layout+":other")
	var top ocispec.Index
	readJSON(t, filepath.Join(layout, "index.json"), &top)
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	for _, m := range top.Manifests {
		m.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
		if m.Annotations[ocispec.AnnotationRefName] == "other" {
			m.Platform = &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
		}
		m.Annotations = nil
		idx.Manifests = append(idx.Manifests, m)
	}
	data, _ := json.Marshal(idx)
	d := digest.FromBytes(data)
	if err := os.WriteFile(filepath.Join(layout, "blobs/sha256", d.Encoded()), data, 0o644); err != nil {
		t.Fatal(err)
	}
	top.Manifests = []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageIndex, Digest: d, Size: int64(len(data)), Annotations: map[string]string{ocispec.AnnotationRefName: "multi"}}}
	data, _ = json.Marshal(top)
	if err := os.WriteFile(filepath.Join(layout, "index.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	multi := reg.Ref("skopeo/multi:v1")
	run(t, "skopeo", "copy", "--all", "--dest-tls-verify=false", "oci:"+layout+":multi", "docker://"+multi)

	dst := storetest.OpenStore(t)
	p, err := Pull(ctx, dst, multi, anon)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != amd || p.Digest != d {
		t.Errorf("index: pulled %+v, want image %s from index %s", p, amd, d)
	}
	o := anon
	o.Platform = "linux/arm64"
	p, err = Pull(ctx, dst, multi, o)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != other {
		t.Errorf("index for linux/arm64: pulled %s, want %s", p.ID, other)
	}
	// The same index as a docker manifest list of schema 2 manifests.
	list := reg.Ref("skopeo/list:v1")
	run(t, "skopeo", "copy", "--all", "--format", "v2s2", "--dest-tls-verify=false", "oci:"+layout+":multi", "docker://"+list)
	var raw struct{ MediaType string }
	json.Unmarshal([]byte(run(t, "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+list)), &raw)
	if raw.MediaType != string(types.DockerManifestList) {
		t.Fatalf("skopeo made a %q, not a docker manifest list", raw.MediaType)
	}
	for plat, want := range map[string]digest.Digest{"linux/amd64": amd, "linux/arm64/v8": other} {
		o.Platform = plat
		p, err := Pull(ctx, storetest.OpenStore(t), list, o)
		if err != nil {
			t.Fatalf("manifest list, %s: %v", plat, err)
		}
		if p.ID != want || p.Manifest.MediaType != string(types.DockerManifestSchema2) || p.Digest == d {
			t.Errorf("manifest list, %s: pulled %+v, want image %s with a docker manifest", plat, p, want)
		}
	}
	o.Platform = "linux/s390x"
	if _, err := Pull(ctx, dst, multi, o); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "linux/arm64/v8") {
		t.Errorf("index without the platform: %v", err)
	}
}

func TestPullErrors(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.Options{})
	s := storetest.OpenStore(t)
	if _, err := Pull(ctx, s, reg.Ref("no/such:image"), anon); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("missing image: %v", err)
	}
	if _, err := Pull(ctx, s, "UPPER/case", anon); !errors.Is(err, cache.ErrInvalid) {
		t.Errorf("bad name: %v", err)
	}
	o := anon
	o.Platform = "linux"
	if _, err := Pull(ctx, s, reg.Ref("x/y:z"), o); !errors.Is(err, cache.ErrInvalid) {
		t.Errorf("bad platform: %v", err)
	}
}

func TestParseReference(t *testing.T) {
	for _, c := range []struct{ in, name, registry, repo string }{
		{"busybox", "docker.io/library/busybox:latest", "index.docker.io", "library/busybox"},
		{"user/app:1", "docker.io/user/app:1", "index.docker.io", "user/app"},
		{"localhost:5000/a/b", "localhost:5000/a/b:latest", "localhost:5000", "a/b"},
		{"127.0.0.1:5000/a@sha256:" + strings.Repeat("a", 64), "127.0.0.1:5000/a@sha256:" + strings.Repeat("a", 64), "127.0.0.1:5000", "a"},
	} {
		n, ref, err := ParseReference(c.in, Options{})
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if n != c.name || ref.Context().RegistryStr() != c.registry || ref.Context().RepositoryStr() != c.repo {
			t.Errorf("%s: %s %s %s, want %s %s %s", c.in, n, ref.Context().RegistryStr(), ref.Context().RepositoryStr(), c.name, c.registry, c.repo)
		}
	}
	// Plain HTTP for loopback registries, and for any with Insecure.
	_, ref, _ := ParseReference("127.0.0.1:5000/a", Options{})
	_, ref2, _ := ParseReference("registry.example:5000/a", Options{})
	_, ref3, _ := ParseReference("registry.example:5000/a", Options{Insecure: true})
	_, ref4, _ := ParseReference("localhost/a", Options{})
	if ref.Context().Scheme() != "http" || ref2.Context().Scheme() != "https" || ref3.Context().Scheme() != "http" || ref4.Context().Scheme() != "http" {
		t.Errorf("schemes: %s %s %s %s", ref.Context().Scheme(), ref2.Context().Scheme(), ref3.Context().Scheme(), ref4.Context().Scheme())
	}
}

func readJSON(t *testing.T, p string, v any) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}
