package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/registry/registrytest"
	"github.com/kiln-build/kiln/runner"
)

// needArm64 skips, saying why, unless this machine runs arm64 binaries
// through binfmt_misc (make deps registers qemu's handler), and imports an
// arm64 busybox base (Debian's busybox-static:arm64, testdata/arm64busybox.sh)
// as name.
func (e *env) importArm64Base(name string) {
	e.t.Helper()
	if err := runner.CheckEmulator("arm64"); err != nil {
		e.t.Skipf("needs to run arm64 binaries: %v", err)
	}
	kilntest.NeedTool(e.t, "dpkg-deb")
	script, _ := filepath.Abs("../../testdata/arm64busybox.sh")
	out, err := exec.Command("sh", script).Output()
	if err != nil {
		e.t.Fatalf("arm64 busybox: %v", err)
	}
	dir := e.t.TempDir()
	mk, _ := filepath.Abs("../../testdata/mkbase.sh")
	if out, err := exec.Command("sh", mk, filepath.Join(dir, "rootfs"), strings.TrimSpace(string(out))).CombinedOutput(); err != nil {
		e.t.Fatalf("mkbase: %v\n%s", err, out)
	}
	e.kiln("import", "--platform", "linux/arm64", filepath.Join(dir, "rootfs"), name)
}

// platformDockerfile is the cross-compile pattern: stages on the build
// platform (one that does not depend on the target, shared by both
// platforms' builds, and one that "compiles" for the target), copied into a
// stage of the target platform whose RUN runs under emulation for arm64.
const platformDockerfile = `ARG TARGETARCH
FROM --platform=$BUILDPLATFORM bb:amd64 AS common
RUN echo shared-step > /shared
FROM --platform=$BUILDPLATFORM bb:amd64 AS cross
ARG TARGETPLATFORM
ARG BUILDPLATFORM
RUN echo "for $TARGETPLATFORM on $BUILDPLATFORM, built on $(uname -m)" > /out
FROM bb:$TARGETARCH
ARG TARGETOS TARGETARCH TARGETVARIANT BUILDOS BUILDARCH
COPY --from=common /shared /shared
COPY --from=cross /out /out
RUN echo "$TARGETOS $TARGETARCH [$TARGETVARIANT] $BUILDOS $BUILDARCH $(uname -m)" > /arch
CMD ["cat", "/arch", "/out", "/shared"]
`

// TestMultiPlatformBuild: a linux/amd64,linux/arm64 build gives an OCI index
// tagged locally; each platform's RUN ran as that platform (uname -m), the
// build-platform stages natively and the shared one once; a rebuild is fully
// cached with the same index digest, and so is a --no-cache build with
// SOURCE_DATE_EPOCH; run, inspect and images know the platforms; the index
// goes to a registry (skopeo reads it, copies it whole) and comes back by
// platform into empty stores; rmi removes the index and its images.
func TestMultiPlatformBuild(t *testing.T) {
	e := newEnv(t)
	e.importArm64Base("bb:arm64")
	e.importBase("bb:amd64")
	ctx := writeContext(t, map[string]string{"Dockerfile": platformDockerfile})

	r := e.run("", "build", "--platform", "linux/amd64,linux/arm64", "-t", "multi:1", "--source-date-epoch", "1700000000", ctx)
	if r.code != 0 {
		t.Fatalf("build: exit %d\n%s", r.code, r.stderr)
	}
	// The step no target ARG reaches is made once, by one platform's build.
	shown := 0
	if vs, _ := parsePlain(t, r.stderr); vs != nil {
		for name := range vs {
			if strings.HasSuffix(name, "] RUN echo shared-step > /shared") {
				shown++
			}
		}
	}
	if n := shown; n != 2 {
		t.Errorf("shared step shown %d times, want once per platform:\n%s", n, r.stderr)
	}
	if ran := countDone(t, r.stderr, "RUN echo shared-step"); ran != 1 {
		t.Errorf("the shared step ran %d times, want 1:\n%s", ran, r.stderr)
	}
	want := map[string]string{
		"linux/amd64": "linux amd64 [] linux amd64 x86_64\nfor linux/amd64 on linux/amd64, built on x86_64\nshared-step\n",
		"linux/arm64": "linux arm64 [] linux amd64 aarch64\nfor linux/arm64 on linux/amd64, built on x86_64\nshared-step\n",
	}
	for p, w := range want {
		if got := e.kiln("run", "--rm", "--network", "none", "--platform", p, "multi:1"); got != w {
			t.Errorf("run --platform %s:\n%s\nwant:\n%s", p, got, w)
		}
	}
	// Without --platform: the host's.
	if got := e.kiln("run", "--rm", "--network", "none", "multi:1", "uname", "-m"); got != "x86_64\n" {
		t.Errorf("run (host platform): %q", got)
	}
	if r := e.run("", "run", "--rm", "--platform", "linux/s390x", "multi:1"); r.code == 0 || !strings.Contains(r.stderr, "has no manifest for platform linux/s390x (it has linux/amd64, linux/arm64)") {
		t.Errorf("run of a platform the index lacks: exit %d\n%s", r.code, r.stderr)
	}
	if got := e.kiln("inspect", "--platform", "linux/arm64", "--format", "{{.Architecture}}", "multi:1"); got != "arm64\n" {
		t.Errorf("inspect --platform linux/arm64: %q", got)
	}
	// kiln layers per platform: the analysed image is that platform's (its
	// layers are the ones inspect --platform lists).
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		var got struct {
			Layers []struct {
				DiffID string `json:"diffID"`
			} `json:"layers"`
		}
		if err := json.Unmarshal([]byte(e.kiln("layers", "--platform", p, "--format", "json", "multi:1")), &got); err != nil {
			t.Fatalf("layers --platform %s --format json: %v", p, err)
		}
		var ids []string
		for _, l := range got.Layers {
			if l.DiffID != "" {
				ids = append(ids, l.DiffID)
			}
		}
		want := strings.TrimSpace(e.kiln("image", "inspect", "--platform", p, "--format", "{{range .RootFS.Layers}}{{.}} {{end}}", "multi:1"))
		if strings.Join(ids, " ") != want {
			t.Errorf("layers --platform %s analysed layers %v, want %s", p, ids, want)
		}
	}
	if r := e.run("", "layers", "--platform", "linux/s390x", "multi:1"); r.code == 0 {
		t.Errorf("layers of a platform the index lacks: exit 0")
	}
	images := e.kiln("images")
	if strings.Count(images, "multi ") != 1 || strings.Contains(images, "<none>") {
		t.Errorf("images shows an index once, its images through it:\n%s", images)
	}
	tree := e.kiln("images", "--tree")
	if !strings.Contains(tree, "├─ linux/amd64") || !strings.Contains(tree, "└─ linux/arm64") {
		t.Errorf("images --tree:\n%s", tree)
	}

	// Nothing changed: fully cached, the same index.
	first := indexDigest(t, e, "multi:1")
	r = e.run("", "build", "--platform", "linux/amd64,linux/arm64", "-t", "multi:2", "--source-date-epoch", "1700000000", ctx)
	if r.code != 0 || countDone(t, r.stderr, "RUN ") > 0 {
		t.Errorf("rebuild not fully cached: exit %d\n%s", r.code, r.stderr)
	}
	if again := indexDigest(t, e, "multi:2"); again != first {
		t.Errorf("rebuild: index %s, first build %s", again, first)
	}
	// A clean build with SOURCE_DATE_EPOCH gives the same index.
	e.kiln("build", "--no-cache", "--platform", "linux/amd64,linux/arm64", "-t", "multi:3", "--source-date-epoch", "1700000000", ctx)
	if clean := indexDigest(t, e, "multi:3"); clean != first {
		t.Errorf("--no-cache build with SOURCE_DATE_EPOCH: index %s, first build %s", clean, first)
	}

	// save and load keep the index, in both formats; skopeo reads the layout.
	kilntest.NeedTool(t, "skopeo")
	for _, format := range []string{"oci", "docker"} {
		archive := filepath.Join(t.TempDir(), "multi.tar")
		e.kiln("save", "--format", format, "-o", archive, "multi:1")
		fresh := newEnv(t)
		if out := fresh.kiln("load", "-i", archive); out != "Loaded image: multi:1\n" {
			t.Errorf("load (%s): %q", format, out)
		}
		if got := indexDigest(t, fresh, "multi:1"); got != first {
			t.Errorf("loaded (%s): index %s, saved %s", format, got, first)
		}
		if got := fresh.kiln("run", "--rm", "--network", "none", "--platform", "linux/arm64", "multi:1", "uname", "-m"); got != "aarch64\n" {
			t.Errorf("loaded (%s): run --platform linux/arm64: %q", format, got)
		}
		if format == "oci" {
			layout := t.TempDir()
			if out, err := exec.Command("tar", "-C", layout, "-xf", archive).CombinedOutput(); err != nil {
				t.Fatalf("untar: %v\n%s", err, out)
			}
			raw, err := exec.Command("skopeo", "inspect", "--raw", "oci:"+layout+":1").Output()
			if err != nil || digest.FromBytes(raw).String() != first {
				t.Errorf("skopeo inspect --raw of the saved layout: %v\n%s", err, raw)
			}
		}
	}

	// To a registry and back.
	reg := registrytest.Start(t, registrytest.Options{})
	ref := reg.Ref("kiln/multi:1")
	e.kiln("push", "-q", "multi:1", ref)
	raw, err := exec.Command("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+ref).Output()
	if err != nil {
		t.Fatalf("skopeo inspect --raw: %v", err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil || idx.MediaType != ocispec.MediaTypeImageIndex || len(idx.Manifests) != 2 ||
		idx.Manifests[0].Platform == nil || idx.Manifests[0].Platform.Architecture != "amd64" ||
		idx.Manifests[1].Platform == nil || idx.Manifests[1].Platform.Architecture != "arm64" {
		t.Fatalf("registry's index: %v\n%s", err, raw)
	}
	if got := digest.FromBytes(raw).String(); got != first {
		t.Errorf("registry serves index %s, the store has %s", got, first)
	}
	oci := filepath.Join(t.TempDir(), "oci")
	if out, err := exec.Command("skopeo", "copy", "--all", "--src-tls-verify=false", "docker://"+ref, "oci:"+oci+":multi").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy --all: %v\n%s", err, out)
	}
	for p, arch := range map[string]string{"linux/amd64": "x86_64", "linux/arm64": "aarch64"} {
		fresh := newEnv(t)
		fresh.kiln("pull", "-q", "--platform", p, ref)
		if got := fresh.kiln("run", "--rm", "--network", "none", "--platform", p, ref, "uname", "-m"); got != arch+"\n" {
			t.Errorf("pulled %s: uname -m %q", p, got)
		}
		if got := indexDigest(t, fresh, ref); got != first {
			t.Errorf("pulled %s: the name points at %s, want the index %s", p, got, first)
		}
		if p == "linux/amd64" {
			if r := fresh.run("", "run", "--rm", "--pull", "never", "--platform", "linux/arm64", ref); r.code == 0 || !strings.Contains(r.stderr, "platform linux/arm64 was not pulled") {
				t.Errorf("run of a platform not pulled: exit %d\n%s", r.code, r.stderr)
			}
			fresh.kiln("pull", "-q", "--all-platforms", ref)
			if tree := fresh.kiln("images", "--tree"); strings.Contains(tree, "not pulled") {
				t.Errorf("after pull --all-platforms:\n%s", tree)
			}
		}
	}

	// rmi of the last name removes the index and the images only it listed.
	for _, n := range []string{"multi:2", "multi:3"} {
		e.kiln("rmi", n)
	}
	e.kiln("rmi", "multi:1")
	if images := e.kiln("images", "-q"); len(strings.Fields(images)) != 2 {
		t.Errorf("after rmi, only the two bases should remain:\n%s", images)
	}
	if out := e.kiln("system", "check", "--quick"); !strings.Contains(out, " 0 problems") {
		t.Errorf("system check after rmi:\n%s", out)
	}
}

// countDone counts the steps of a multi-platform build's plain progress
// whose instruction starts with prefix and that ran ("DONE"; a step taken
// from the cache says "CACHED"). Their vertices are named
// "[linux/arm64] [3/9] RUN ...".
func countDone(t *testing.T, progress, prefix string) int {
	t.Helper()
	vs, _ := parsePlain(t, progress)
	n := 0
	for name, v := range vs {
		_, text, _ := strings.Cut(name, "] ") // the platform
		_, text, _ = strings.Cut(text, "] ")  // the step number
		if strings.HasPrefix(text, prefix) && strings.HasPrefix(v.end, "DONE ") {
			n++
		}
	}
	return n
}

// indexDigest is the digest name points at in e's store, through inspect.
func indexDigest(t *testing.T, e *env, name string) string {
	t.Helper()
	return strings.TrimSpace(e.kiln("inspect", "--format", "{{.Id}}", name))
}
