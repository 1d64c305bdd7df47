package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/registry/registrytest"
)

// platformOutDockerfile makes each platform's /arch on the build platform
// (no emulated RUN: the outputs are under test, not the build).
const platformOutDockerfile = `ARG TARGETARCH
FROM --platform=$BUILDPLATFORM bb:amd64 AS cross
ARG TARGETARCH
RUN echo "$TARGETARCH" > /arch
FROM bb:$TARGETARCH
COPY --from=cross /arch /arch
`

// TestMultiPlatformBuildOutputs: the outputs of a linux/amd64,linux/arm64
// build, as buildx's. --push sends the index and both manifests under each
// -t (skopeo reads them back), the manifests with the manifest annotation,
// the index with the index and manifest-descriptor ones; --metadata-file and
// --iidfile give the index digest (no config digest), which the names in the
// store point at (the unannotated index is gone). A cached rebuild to
// type=oci and type=docker writes the index (index-descriptor annotation on
// its index.json entry) and leaves nothing in the store; one to type=local
// and type=tar writes a directory per platform.
func TestMultiPlatformBuildOutputs(t *testing.T) {
	e := newEnv(t)
	e.importArm64Base("bb:arm64")
	e.importBase("bb:amd64")
	kilntest.NeedTool(t, "skopeo")
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := registrytest.Start(t, registrytest.Options{})
	ctxDir := writeContext(t, map[string]string{"Dockerfile": platformOutDockerfile})
	platforms := []string{"build", "--platform", "linux/amd64,linux/arm64"}
	out := t.TempDir()
	meta, iid := filepath.Join(out, "meta.json"), filepath.Join(out, "iid")
	one, two := reg.Ref("kiln/multi:one"), reg.Ref("kiln/other:two")

	e.kiln(append(platforms, "--push", "-t", one, "-t", two, "--metadata-file", meta, "--iidfile", iid,
		"--annotation", "org.example.m=man", "--annotation", "index:org.example.i=idx",
		"--annotation", "manifest-descriptor:org.example.d=desc", ctxDir)...)
	var md map[string]any
	data, _ := os.ReadFile(meta)
	if err := json.Unmarshal(data, &md); err != nil {
		t.Fatalf("metadata: %v\n%s", err, data)
	}
	idxDigest, _ := md["containerimage.digest"].(string)
	desc, _ := md["containerimage.descriptor"].(map[string]any)
	if _, ok := md["containerimage.config.digest"]; ok || idxDigest == "" || desc["digest"] != idxDigest || desc["mediaType"] != ocispec.MediaTypeImageIndex ||
		md["image.name"] != one+","+two {
		t.Errorf("metadata of a multi-platform build:\n%s", data)
	}
	if got, _ := os.ReadFile(iid); string(got) != idxDigest {
		t.Errorf("--iidfile %q, metadata digest %s", got, idxDigest)
	}
	for _, ref := range []string{one, two} {
		raw := mustRun(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+ref)
		if got := digest.FromBytes([]byte(raw)).String(); got != idxDigest {
			t.Errorf("%s: registry serves %s, metadata says %s", ref, got, idxDigest)
		}
		if got := indexDigest(t, e, ref); got != idxDigest {
			t.Errorf("%s in the store points at %s, want the pushed index %s", ref, got, idxDigest)
		}
	}
	var idx ocispec.Index
	raw := mustRun(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+one)
	if err := json.Unmarshal([]byte(raw), &idx); err != nil || idx.MediaType != ocispec.MediaTypeImageIndex || len(idx.Manifests) != 2 ||
		idx.Annotations["org.example.i"] != "idx" || idx.Manifests[1].Platform == nil || idx.Manifests[1].Platform.Architecture != "arm64" {
		t.Fatalf("pushed index: %v\n%s", err, raw)
	}
	for _, m := range idx.Manifests {
		if m.Annotations["org.example.d"] != "desc" {
			t.Errorf("index descriptor of %s: annotations %v", m.Digest, m.Annotations)
		}
		mraw := mustRun(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+strings.Split(one, ":one")[0]+"@"+m.Digest.String())
		var man ocispec.Manifest
		if err := json.Unmarshal([]byte(mraw), &man); err != nil || man.Annotations["org.example.m"] != "man" || digest.FromBytes([]byte(mraw)) != m.Digest {
			t.Errorf("pushed manifest %s: %v\n%s", m.Digest, err, mraw)
		}
	}
	if got := e.kiln("run", "--rm", "--network", "none", "--platform", "linux/arm64", one, "cat", "/arch"); got != "arm64\n" {
		t.Errorf("run --platform linux/arm64 of the pushed name: %q", got)
	}
	indexes, _ := os.ReadDir(filepath.Join(e.root, "indexes"))
	if len(indexes) != 1 {
		t.Errorf("store holds %d indexes, want the annotated one only", len(indexes))
	}

	// Archives: the cached build's index, nothing left in the store.
	ociTar, dockerTar := filepath.Join(out, "oci.tar"), filepath.Join(out, "docker.tar")
	r := e.run("", append(platforms, "-t", "multi:arch", "-o", "type=oci,dest="+ociTar, "-o", "type=docker,dest="+dockerTar,
		"--annotation", "index-descriptor:org.example.x=entry", "--metadata-file", meta, ctxDir)...)
	if r.code != 0 || countDone(t, r.stderr, "RUN ") > 0 {
		t.Fatalf("cached build to oci and docker: exit %d\n%s", r.code, r.stderr)
	}
	data, _ = os.ReadFile(meta)
	md = nil
	if err := json.Unmarshal(data, &md); err != nil || md["containerimage.digest"] == idxDigest || md["containerimage.digest"] == nil {
		t.Errorf("metadata of the archive build (its index has no annotations but the index.json entry's): %v\n%s", err, data)
	}
	layout := t.TempDir()
	mustRun(t, "tar", "-C", layout, "-xf", ociTar)
	raw = mustRun(t, "skopeo", "inspect", "--raw", "oci:"+layout+":arch")
	if got := digest.FromBytes([]byte(raw)).String(); got != md["containerimage.digest"] || !strings.Contains(raw, `"architecture":"arm64"`) {
		t.Errorf("oci layout's index %s (metadata %v):\n%s", got, md["containerimage.digest"], raw)
	}
	var top ocispec.Index
	data, _ = os.ReadFile(filepath.Join(layout, "index.json"))
	if err := json.Unmarshal(data, &top); err != nil || len(top.Manifests) != 1 || top.Manifests[0].MediaType != ocispec.MediaTypeImageIndex ||
		top.Manifests[0].Annotations["org.example.x"] != "entry" || top.Manifests[0].Annotations[ocispec.AnnotationRefName] != "arch" {
		t.Errorf("oci layout's index.json: %v\n%s", err, data)
	}
	if got := mustRun(t, "tar", "-xOf", dockerTar, "index.json"); !strings.Contains(got, top.Manifests[0].Digest.String()) {
		t.Errorf("docker archive's index.json does not name the index %s:\n%s", top.Manifests[0].Digest, got)
	}
	if r := e.run("", "inspect", "multi:arch"); r.code == 0 {
		t.Errorf("type=oci/docker outputs left multi:arch in the store")
	}
	if indexes, _ := os.ReadDir(filepath.Join(e.root, "indexes")); len(indexes) != 1 {
		t.Errorf("after the archive build, the store holds %d indexes, want 1", len(indexes))
	}

	// Files: a directory per platform.
	local, tarFile := filepath.Join(out, "local"), filepath.Join(out, "fs.tar")
	e.kiln(append(platforms, "-o", "type=local,dest="+local, "-o", "type=tar,dest="+tarFile, ctxDir)...)
	for _, arch := range []string{"amd64", "arm64"} {
		if got, err := os.ReadFile(filepath.Join(local, "linux_"+arch, "arch")); string(got) != arch+"\n" {
			t.Errorf("type=local: linux_%s/arch: %q, %v", arch, got, err)
		}
		if got := mustRun(t, "tar", "-xOf", tarFile, "linux_"+arch+"/arch"); got != arch+"\n" {
			t.Errorf("type=tar: linux_%s/arch: %q", arch, got)
		}
	}
	if ents, _ := os.ReadDir(local); len(ents) != 2 {
		t.Errorf("type=local: %d entries, want the two platform directories", len(ents))
	}
	if out := e.kiln("system", "check", "--quick"); !strings.Contains(out, " 0 problems") {
		t.Errorf("system check:\n%s", out)
	}
}
