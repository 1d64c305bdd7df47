package registry

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/internal/kilntest/storetest"
	"github.com/kiln-build/kiln/registry/registrytest"
)

var (
	filesA = map[string]string{"etc/a": "alpha\n", "bin/tool": strings.Repeat("x", 100000)}
	filesB = map[string]string{"etc/b": "bravo\n"}
)

// TestPushPullRoundTrip pushes an image kiln built, pulls it into an empty
// store, and pushes that back: the same image, the same manifest.
func TestPushPullRoundTrip(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.Options{})
	src := storetest.OpenStore(t)
	id := makeImage(t, src, "app", filesA, filesB)
	ref := reg.Ref("kiln/app:v1")
	pushed, err := Push(ctx, src, "app", ref, FormatKeep, anon)
	if err != nil {
		t.Fatal(err)
	}
	md, _, err := src.Manifest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if pushed.Manifest.Digest != md.Digest || pushed.Uploaded != 3 || pushed.Name != ref {
		t.Errorf("pushed %+v, want manifest %s and 3 uploads", pushed, md.Digest)
	}

	dst := storetest.OpenStore(t)
	pulled, err := Pull(ctx, dst, ref, anon)
	if err != nil {
		t.Fatal(err)
	}
	if pulled.ID != id || pulled.Digest != md.Digest || pulled.Manifest.Digest != md.Digest {
		t.Errorf("pulled %+v, want ID %s manifest %s", pulled, id, md.Digest)
	}
	if got, err := dst.Resolve(ref); err != nil || got != id {
		t.Errorf("resolve %s: %s, %v", ref, got, err)
	}
	img, _, err := dst.Image(id)
	if err != nil {
		t.Fatal(err)
	}
	if got := readSnapshot(t, dst, img.RootFS.DiffIDs[1], "etc/b"); got != "bravo\n" {
		t.Errorf("etc/b = %q", got)
	}
	if got := readSnapshot(t, dst, img.RootFS.DiffIDs[0], "bin/tool"); got != filesA["bin/tool"] {
		t.Errorf("bin/tool has %d bytes", len(got))
	}

	// The pulled image goes back exactly as it came.
	back, err := Push(ctx, dst, ref, reg.Ref("kiln/copy:v1"), FormatKeep, anon)
	if err != nil {
		t.Fatal(err)
	}
	if back.Manifest.Digest != md.Digest {
		t.Errorf("pushed back as %s, want %s", back.Manifest.Digest, md.Digest)
	}
}

// TestSecondPushUploadsNothing counts the blob uploads in the registry's log.
func TestSecondPushUploadsNothing(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.Options{})
	s := storetest.OpenStore(t)
	makeImage(t, s, "app", filesA, filesB)
	ref := reg.Ref("kiln/app:v1")
	if _, err := Push(ctx, s, "app", ref, FormatKeep, anon); err != nil {
		t.Fatal(err)
	}
	if n := reg.Requests(0, "PUT", "/blobs/uploads/"); n != 3 {
		t.Errorf("first push: %d blob uploads, want 3\n%s", n, reg.AccessLog())
	}
	mark := reg.Mark()
	res, err := Push(ctx, s, "app", ref, FormatKeep, anon)
	if err != nil {
		t.Fatal(err)
	}
	if n := reg.Requests(mark, "PUT", "/blobs/") + reg.Requests(mark, "POST", "/blobs/") + reg.Requests(mark, "PATCH", "/blobs/"); n != 0 {
		t.Errorf("second push: %d blob upload requests, want 0\n%s", n, reg.AccessLog()[mark:])
	}
	if res.Uploaded != 0 || res.Existing != 3 {
		t.Errorf("second push: %+v", res)
	}
}

// TestPushMountsFromAnotherRepository: a blob another repository of the
// registry has is mounted, not uploaded.
func TestPushMountsFromAnotherRepository(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.Options{})
	s := storetest.OpenStore(t)
	id := makeImage(t, s, "app", filesA, filesB)
	if _, err := Push(ctx, s, "app", reg.Ref("team/one:v1"), FormatKeep, anon); err != nil {
		t.Fatal(err)
	}
	mark := reg.Mark()
	res, err := Push(ctx, s, "app", reg.Ref("team/two:v1"), FormatKeep, anon)
	if err != nil {
		t.Fatal(err)
	}
	_, m, err := s.Manifest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Layers {
		esc := url.QueryEscape(l.Digest.String())
		if n := reg.Requests(mark, "POST", "/v2/team/two/blobs/uploads/?from=team%2Fone&mount="+esc); n != 1 {
			t.Errorf("layer %s: %d mount requests\n%s", l.Digest, n, reg.AccessLog()[mark:])
		}
		if n := reg.Requests(mark, "PUT", "digest="+esc); n != 0 {
			t.Errorf("layer %s uploaded although mounted", l.Digest)
		}
	}
	// Only the config, which is not mountable, is uploaded.
	if n := reg.Requests(mark, "PUT", "/blobs/uploads/"); n != 1 {
		t.Errorf("%d blobs uploaded, want the config only", n)
	}
	if res.Mounted != 2 {
		t.Errorf("push: %+v, want 2 layers mounted", res)
	}
	// The mounted blobs are really there.
	dst := storetest.OpenStore(t)
	if p, err := Pull(ctx, dst, reg.Ref("team/two:v1"), anon); err != nil || p.ID != id {
		t.Fatalf("pull: %+v, %v", p, err)
	}
}

// TestPushFormatDocker converts the manifest to docker's schema 2 and back.
func TestPushFormatDocker(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.Options{})
	s := storetest.OpenStore(t)
	id := makeImage(t, s, "app", filesA)
	res, err := Push(ctx, s, "app", reg.Ref("fmt/docker:v1"), FormatDocker, anon)
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.MediaType != string(types.DockerManifestSchema2) {
		t.Errorf("pushed %s", res.Manifest.MediaType)
	}
	dst := storetest.OpenStore(t)
	p, err := Pull(ctx, dst, reg.Ref("fmt/docker:v1"), anon)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != id || p.Manifest.MediaType != string(types.DockerManifestSchema2) || p.Manifest.Digest != res.Manifest.Digest {
		t.Errorf("pulled %+v, want ID %s and docker manifest %s", p, id, res.Manifest.Digest)
	}
	_, m, err := dst.Manifest(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.MediaType != string(types.DockerConfigJSON) || m.Layers[0].MediaType != string(types.DockerLayer) {
		t.Errorf("manifest kept: %+v", m)
	}
	// And to OCI again: the manifest kiln made at first.
	back, err := Push(ctx, dst, p.ID.String(), reg.Ref("fmt/oci:v1"), FormatOCI, anon)
	if err != nil {
		t.Fatal(err)
	}
	md, _, _ := s.Manifest(ctx, id)
	if back.Manifest.Digest != md.Digest {
		t.Errorf("docker → oci gives %s, kiln's own manifest is %s", back.Manifest.Digest, md.Digest)
	}
}

func TestPushErrors(t *testing.T) {
	ctx := context.Background()
	s := storetest.OpenStore(t)
	id := makeImage(t, s, "app", filesA)
	if _, err := Push(ctx, s, id.String(), "", FormatKeep, anon); !errors.Is(err, cache.ErrInvalid) {
		t.Errorf("push by ID without destination: %v", err)
	}
	if _, err := Push(ctx, s, "nope", "127.0.0.1:1/x", FormatKeep, anon); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("push of a missing image: %v", err)
	}
	if _, err := Push(ctx, s, "app", "127.0.0.1:1/x@"+digest.FromString("x").String(), FormatKeep, anon); !errors.Is(err, cache.ErrInvalid) {
		t.Errorf("push to a digest: %v", err)
	}
	if _, err := ParseFormat("v1"); !errors.Is(err, cache.ErrInvalid) {
		t.Errorf("format v1: %v", err)
	}
}

// TestSkopeoReadsWhatKilnPushed: skopeo inspects and copies the image.
func TestSkopeoReadsWhatKilnPushed(t *testing.T) {
	kilntest.NeedTool(t, "skopeo")
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.Options{})
	s := storetest.OpenStore(t)
	id := makeImage(t, s, "app", filesA, filesB)
	res, err := Push(ctx, s, "app", reg.Ref("kiln/app:v1"), FormatKeep, anon)
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Digest digest.Digest
		Layers []digest.Digest
		Env    []string
	}
	out := run(t, "skopeo", "inspect", "--tls-verify=false", "docker://"+reg.Ref("kiln/app:v1"))
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	_, m, _ := s.Manifest(ctx, id)
	if info.Digest != res.Manifest.Digest || len(info.Layers) != 2 || info.Layers[1] != m.Layers[1].Digest || len(info.Env) != 1 || info.Env[0] != "NAME=app" {
		t.Errorf("skopeo inspect: %s", out)
	}
	dir := t.TempDir()
	run(t, "skopeo", "copy", "--src-tls-verify=false", "docker://"+reg.Ref("kiln/app:v1"), "oci:"+dir+":app")
	if _, err := os.Stat(dir + "/blobs/" + strings.Replace(m.Layers[0].Digest.String(), ":", "/", 1)); err != nil {
		t.Errorf("skopeo copy: %v", err)
	}
}

// TestInsecure: a registry whose certificate cannot be verified is refused
// unless Options.Insecure (--tls-verify=false) says otherwise.
func TestInsecure(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.Options{TLS: true})
	s := storetest.OpenStore(t)
	id := makeImage(t, s, "app", filesA)
	ref := reg.Ref("tls/app:v1")
	_, err := Push(ctx, s, "app", ref, FormatKeep, anon)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("push to an unverifiable registry: %v", err)
	}
	o := anon
	o.Insecure = true
	if _, err := Push(ctx, s, "app", ref, FormatKeep, o); err != nil {
		t.Fatal(err)
	}
	if p, err := Pull(ctx, storetest.OpenStore(t), ref, o); err != nil || p.ID != id {
		t.Fatalf("pull: %+v, %v", p, err)
	}
	if n := reg.Requests(0, "PUT", "/manifests/v1"); n != 1 {
		t.Errorf("%d manifest uploads over TLS", n)
	}
}
