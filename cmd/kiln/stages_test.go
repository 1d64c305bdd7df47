package main

// TestTargetBuildsOnlyWhatItNeeds, TestHeredocs, TestOnbuild and
// TestCopyParentsAndExclude test the builder: they live in
// builder/stages_test.go.

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/layer"
)

// stepOrder lists, in the order the plain progress shows them, the starts
// and the ends (DONE) of the steps whose names begin with the prefixes.
func stepOrder(plain string, prefixes ...string) []string {
	ids := map[string]string{}
	var out []string
	for _, line := range strings.Split(plain, "\n") {
		id, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		for _, p := range prefixes {
			if strings.HasPrefix(rest, p) && ids[id] == "" {
				ids[id] = p
				out = append(out, "start"+p)
			}
		}
		if p := ids[id]; p != "" && strings.HasPrefix(rest, "DONE ") {
			out = append(out, "done"+p)
		}
	}
	return out
}

// TestParallelStages: independent stages build side by side — the build's
// own step report shows both sleeps started before either finished — and a
// failing stage cancels the one beside it.
func TestParallelStages(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	ctx := writeContext(t, map[string]string{"Dockerfile": `FROM localhost/bb:latest AS one
RUN sleep 2 && echo 1 > /one
FROM localhost/bb:latest AS two
RUN sleep 2 && echo 2 > /two
FROM localhost/bb:latest
COPY --from=one /one /one
COPY --from=two /two /two
`})
	start := time.Now()
	r := e.run("", "build", "--no-cache", "-t", "par", ctx)
	elapsed := time.Since(start)
	if r.code != 0 {
		t.Fatalf("build: %s", r.stderr)
	}
	// The sleeps: both start before either is done.
	order := stepOrder(r.stderr, "[one 2/2] RUN", "[two 2/2] RUN")
	if len(order) != 4 || !strings.HasPrefix(order[0], "start") || !strings.HasPrefix(order[1], "start") {
		t.Errorf("the two sleeping stages did not overlap: %v\n%s", order, r.stderr)
	}
	t.Logf("two 2-second stages took %.1fs", elapsed.Seconds())

	failing := writeContext(t, map[string]string{"Dockerfile": `FROM localhost/bb:latest AS slow
RUN sleep 59.123
FROM localhost/bb:latest AS bad
RUN sleep 0.3 && exit 5
FROM localhost/bb:latest
COPY --from=slow / /slow
COPY --from=bad / /bad
`})
	r = e.run("", "build", "--no-cache", failing)
	if r.code == 0 || !strings.Contains(r.stderr, "Dockerfile:4: RUN sleep 0.3 && exit 5") {
		t.Fatalf("want the bad stage's error: %d %q", r.code, r.stderr)
	}
	// Cancelled, the slow step never reports done.
	if order := stepOrder(r.stderr, "[slow 2/2] RUN"); len(order) != 1 {
		t.Errorf("the failing stage did not cancel the slow one: %v\n%s", order, r.stderr)
	}
	if procs := sandboxProcesses(t, "sleep 59.123"); len(procs) > 0 {
		t.Errorf("left running: %v", procs)
	}
}

// imageFiles reads every entry of an image's layers from what `kiln save`
// writes: path → content, the top-most layer winning (regular files have
// their bytes, other entries an empty string).
func imageFiles(t *testing.T, e *env, image string) map[string]string {
	t.Helper()
	archive := filepath.Join(t.TempDir(), "img.tar")
	e.kiln("save", "-o", archive, image)
	blobs := readTar(t, archive)
	var idx ocispec.Index
	json.Unmarshal(blobs["index.json"], &idx)
	var m ocispec.Manifest
	json.Unmarshal(blobs["blobs/sha256/"+idx.Manifests[0].Digest.Encoded()], &m)
	files := map[string]string{}
	for _, l := range m.Layers {
		rc, _, err := layer.Decompress(bytes.NewReader(blobs["blobs/sha256/"+l.Digest.Encoded()]))
		if err != nil {
			t.Fatal(err)
		}
		lt := tar.NewReader(rc)
		for {
			hdr, err := lt.Next()
			if err != nil {
				break
			}
			data, _ := io.ReadAll(lt)
			files["/"+strings.TrimSuffix(hdr.Name, "/")] = string(data)
		}
		rc.Close()
	}
	return files
}

// catFile is the content of one file of an image.
func catFile(t *testing.T, e *env, image, path string) string {
	t.Helper()
	content, ok := imageFiles(t, e, image)[path]
	if !ok {
		t.Fatalf("%s: no %s in any layer", image, path)
	}
	return content
}

// TestPredefinedArgs: the platform ARGs exist in every build, the proxy
// build args reach RUN without an ARG and stay out of history, unused build
// args are warned about, and a syntax directive is accepted.
func TestPredefinedArgs(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	e.kiln("tag", "localhost/bb:latest", "localhost/bb:linux") // FROM uses the predefined $TARGETOS
	ctx := writeContext(t, map[string]string{"Dockerfile": "# syntax=docker/dockerfile:1\n" +
		"ARG TARGETOS\nFROM localhost/bb:$TARGETOS AS build\n" +
		"ARG TARGETPLATFORM\nARG BUILDOS\n" +
		"RUN echo \"$TARGETPLATFORM $BUILDOS\" > /platform && echo \"proxy=$HTTP_PROXY\" > /proxy\n"})
	r := e.run("", "build", "--build-arg", "HTTP_PROXY=http://proxy.invalid:3128", "--build-arg", "UNUSED=1", "-t", "args", ctx)
	if r.code != 0 {
		t.Fatalf("build: %s", r.stderr)
	}
	if !strings.Contains(r.stderr, "[UNUSED] were not consumed") || !strings.Contains(r.stderr, "# syntax=docker/dockerfile:1") {
		t.Errorf("warnings:\n%s", r.stderr)
	}
	files := imageFiles(t, e, "args")
	if got := files["/platform"]; got != "linux/"+runtime.GOARCH+" linux\n" {
		t.Errorf("/platform = %q", got)
	}
	if got := files["/proxy"]; got != "proxy=http://proxy.invalid:3128\n" {
		t.Errorf("/proxy = %q", got)
	}
	if hist := e.kiln("history", "--no-trunc", "args"); strings.Contains(hist, "proxy.invalid") {
		t.Errorf("the proxy is in the history:\n%s", hist)
	}
}
