package builder

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/cache"
)

// stepsDockerfile has every kind of cached step over the busybox base.
const stepsDockerfile = `FROM localhost/bb:latest
USER app
WORKDIR /home/app/work
USER root
WORKDIR /
COPY a.txt /c/
ADD b.tar /x/
RUN echo run > /r
RUN <<EOT
echo heredoc > /h
EOT
RUN --mount=type=tmpfs,target=/t echo tmp > /t/f && cat /t/f > /tcopy
ENV X=1
`

func stepsContext(e *buildEnv) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "t/one", Mode: 0o644, Size: 2, ModTime: time.Unix(1600000000, 0), Typeflag: tar.TypeReg})
	tw.Write([]byte("1\n"))
	if err := tw.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.write(map[string]string{"a.txt": "a\n", "b.tar": tb.String()})
}

// TestStepKinds builds every kind of cached step, checks what each made,
// then rebuilds: every step hits, and the image is the same.
func TestStepKinds(t *testing.T) {
	e := newBuildEnv(t)
	e.importBase("localhost/bb:latest")
	stepsContext(e)
	cold := e.mustBuild(stepsDockerfile, Options{})
	if c := cachedSteps(cold.progress); len(c) != 0 {
		t.Errorf("cold build cached steps %v", c)
	}
	// Every step goes through the cache (USER and ENV are no step).
	for _, n := range []string{"2", "3", "4", "5", "6", "7", "8"} {
		if !strings.Contains(cold.explain, "["+n+"/8] ") {
			t.Errorf("cold build did not explain step %s:\n%s", n, cold.explain)
		}
	}
	if strings.Count(cold.explain, "cache miss") != 7 {
		t.Errorf("cold build explained:\n%s", cold.explain)
	}
	img := e.image(cold.id)
	// WORKDIR makes the directory, owned by the USER of the moment; WORKDIR /
	// makes no layer.
	fi, err := os.Stat(filepath.Join(e.layerFiles(img, "WORKDIR /home/app/work"), "home/app/work"))
	if err != nil || !fi.IsDir() || fi.Sys().(*syscall.Stat_t).Uid != 1000 {
		t.Errorf("WORKDIR's layer: %v %v", fi, err)
	}
	for _, h := range img.History {
		if h.CreatedBy == "WORKDIR /" && !h.EmptyLayer {
			t.Errorf("WORKDIR / made a layer")
		}
	}
	want := map[string]map[string]string{
		"COPY a.txt /c/":              {"c/a.txt": "a\n"},
		"ADD b.tar /x/":               {"x/t/one": "1\n"},
		"RUN /bin/sh -c echo run":     {"r": "run\n"},
		"RUN /bin/sh -c echo heredoc": {"h": "heredoc\n"},
		"RUN /bin/sh -c echo tmp":     {"tcopy": "tmp\n"},
	}
	for step, files := range want {
		dir := e.layerFiles(img, step)
		for name, content := range files {
			if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(got) != content {
				t.Errorf("%s: %s holds %q (%v), want %q", step, name, got, err, content)
			}
		}
	}
	if _, err := os.Lstat(filepath.Join(e.layerFiles(img, "RUN /bin/sh -c echo tmp"), "t", "f")); err == nil {
		t.Errorf("the tmpfs mount's file is in the RUN's layer")
	}
	layers := 0
	for _, h := range img.History {
		if !h.EmptyLayer {
			layers++
		}
	}
	if layers != len(img.RootFS.DiffIDs) {
		t.Errorf("%d history entries with a layer for %d layers", layers, len(img.RootFS.DiffIDs))
	}

	warm := e.mustBuild(stepsDockerfile, Options{})
	if c := strings.Join(cachedSteps(warm.progress), ","); c != "2,3,4,5,6,7,8" {
		t.Errorf("warm build cached steps %s:\n%s", c, warm.progress)
	}
	if strings.Count(warm.explain, "cache hit") != 7 || strings.Contains(warm.explain, "miss") {
		t.Errorf("warm build explained:\n%s", warm.explain)
	}
	if warm.id != cold.id {
		t.Errorf("a fully cached build gave %s, the first %s", warm.id, cold.id)
	}
}

// TestStepsSourceDateEpoch: with SOURCE_DATE_EPOCH every time of the
// image is the epoch: the config's, the history's, and the new files'.
func TestStepsSourceDateEpoch(t *testing.T) {
	e := newBuildEnv(t)
	e.importBase("localhost/bb:latest")
	stepsContext(e)
	epoch := time.Unix(1700000000, 0).UTC()
	r := e.mustBuild(stepsDockerfile, Options{SourceDateEpoch: &epoch})
	img := e.image(r.id)
	if !img.Created.Equal(epoch) {
		t.Errorf("created %v, want %v", img.Created, epoch)
	}
	for _, h := range img.History[1:] { // the base's own entry keeps its time
		if !h.Created.Equal(epoch) {
			t.Errorf("%s: created %v", h.CreatedBy, h.Created)
		}
	}
	for _, step := range []string{"WORKDIR /home/app/work", "COPY a.txt", "RUN /bin/sh -c echo run", "RUN /bin/sh -c echo heredoc"} {
		err := filepath.Walk(e.layerFiles(img, step), func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			if fi.ModTime().After(epoch) {
				t.Errorf("%s: %s has mtime %v, after the epoch", step, p, fi.ModTime())
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}
	// The tar's entry is older than the epoch: it keeps its time.
	if fi, err := os.Stat(filepath.Join(e.layerFiles(img, "ADD b.tar"), "x/t/one")); err != nil || !fi.ModTime().Equal(time.Unix(1600000000, 0)) {
		t.Errorf("ADD's extracted file: %v %v", fi, err)
	}
}

// TestStepsCacheToFrom: the records every step kind made go to --cache-to;
// a store without them takes them back from --cache-from (every step hits,
// and the image is the same).
func TestStepsCacheToFrom(t *testing.T) {
	e := newBuildEnv(t)
	e.importBase("localhost/bb:latest")
	stepsContext(e)
	dir := t.TempDir()
	first := e.mustBuild(stepsDockerfile, Options{CacheTo: cache.LocalCacheExport{Dir: dir}})
	recs := e.records()
	if len(recs) != 7 {
		t.Fatalf("%d records, want one per cached step: %v", len(recs), recs)
	}
	for _, r := range recs {
		if err := e.store.RemoveCacheRecord(r.Key); err != nil {
			t.Fatal(err)
		}
	}
	// The records are gone: nothing hits without --cache-from. This build
	// makes new records (of layers with other times): drop them too.
	if r := e.mustBuild(stepsDockerfile, Options{}); len(cachedSteps(r.progress)) != 0 {
		t.Fatalf("hit without records:\n%s", r.progress)
	}
	for _, r := range e.records() {
		if err := e.store.RemoveCacheRecord(r.Key); err != nil {
			t.Fatal(err)
		}
	}
	src, err := cache.OpenCacheSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	again := e.mustBuild(stepsDockerfile, Options{CacheFrom: []CacheImporter{src}})
	if c := strings.Join(cachedSteps(again.progress), ","); c != "2,3,4,5,6,7,8" {
		t.Errorf("--cache-from build cached steps %s:\n%s", c, again.progress)
	}
	if again.id != first.id {
		t.Errorf("--cache-from build gave %s, the first %s", again.id, first.id)
	}
}
