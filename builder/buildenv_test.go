package builder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/progress"
)

// buildEnv drives the builder directly: its own store on a temp root, and a
// build context in a temp directory.
type buildEnv struct {
	t     *testing.T
	store *cache.Store
	ctx   string // the build context
	// baseDir is the root filesystem importBase imported.
	baseDir string
}

// requireRoot skips tests that need root: overlay mounts and namespaces
// (CI runs as root).
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root (overlay mounts, namespaces), running as uid %d", os.Geteuid())
	}
}

func newBuildEnv(t *testing.T) *buildEnv {
	t.Helper()
	requireRoot(t)
	s, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &buildEnv{t: t, store: s, ctx: t.TempDir()}
}

// write writes files into the build context (mode 0644; cache keys do not
// depend on file times).
func (e *buildEnv) write(files map[string]string) {
	e.t.Helper()
	for name, content := range files {
		p := filepath.Join(e.ctx, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
}

// importBase imports the busybox root filesystem of testdata/mkbase.sh as
// name.
func (e *buildEnv) importBase(name string) digest.Digest {
	e.t.Helper()
	if _, err := os.Stat("/bin/busybox"); err != nil {
		e.t.Skip("needs /bin/busybox (Debian busybox-static; make deps installs it)")
	}
	dir := filepath.Join(e.t.TempDir(), "rootfs")
	mk, err := filepath.Abs("../testdata/mkbase.sh")
	if err != nil {
		e.t.Fatal(err)
	}
	if out, err := exec.Command("sh", mk, dir).CombinedOutput(); err != nil {
		e.t.Fatalf("mkbase: %v\n%s", err, out)
	}
	e.baseDir = dir
	return e.importDir(dir, name)
}

// importDir imports a root filesystem directory as name.
func (e *buildEnv) importDir(dir, name string) digest.Digest {
	e.t.Helper()
	id, err := Import(context.Background(), e.store, ImportSource{Dir: dir, Name: dir}, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// buildResult is what one build gave: the image (empty on failure), the
// error, and what it wrote as progress and --explain-cache.
type buildResult struct {
	id       digest.Digest
	err      error
	progress string
	explain  string
}

// build builds dockerfile in the context with opts (Network defaults to
// NetworkNone: these tests make no network).
func (e *buildEnv) build(dockerfile string, opts Options) buildResult {
	e.t.Helper()
	e.write(map[string]string{"Dockerfile": dockerfile})
	var out, explain bytes.Buffer
	opts.ContextDir = e.ctx
	display := progress.New(progress.Plain, &out)
	opts.Progress = display
	opts.ExplainCache = &explain
	if opts.Warnings == nil {
		opts.Warnings = &out
	}
	if opts.Network == "" {
		opts.Network = NetworkNone
	}
	id, err := Build(context.Background(), e.store, opts)
	display.Close()
	return buildResult{id: id, err: err, progress: out.String(), explain: explain.String()}
}

// mustBuild builds and fails the test if the build fails.
func (e *buildEnv) mustBuild(dockerfile string, opts Options) buildResult {
	e.t.Helper()
	r := e.build(dockerfile, opts)
	if r.err != nil {
		e.t.Fatalf("build: %v\nprogress:\n%s", r.err, r.progress)
	}
	return r
}

// image reads an image's config.
func (e *buildEnv) image(id digest.Digest) dockerImage {
	e.t.Helper()
	_, raw, err := e.store.Image(id)
	if err != nil {
		e.t.Fatal(err)
	}
	var img dockerImage
	if err := json.Unmarshal(raw, &img); err != nil {
		e.t.Fatal(err)
	}
	return img
}

// layerFiles is the snapshot directory of the layer the step whose history
// text starts with createdBy made.
func (e *buildEnv) layerFiles(img dockerImage, createdBy string) string {
	e.t.Helper()
	i := 0
	for _, h := range img.History {
		if h.EmptyLayer {
			continue
		}
		if strings.HasPrefix(h.CreatedBy, createdBy) {
			return e.store.SnapshotDir(img.RootFS.DiffIDs[i])
		}
		i++
	}
	e.t.Fatalf("no layer made by %q in %+v", createdBy, img.History)
	return ""
}

// imageFiles reads every entry of an image's layers from their snapshot
// directories: path → content, the top-most layer winning (regular files
// have their bytes, other entries an empty string).
func (e *buildEnv) imageFiles(id digest.Digest) map[string]string {
	e.t.Helper()
	files := map[string]string{}
	for _, diffID := range e.image(id).RootFS.DiffIDs {
		dir := e.store.SnapshotDir(diffID)
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			continue // an empty layer may have no snapshot
		}
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || p == dir {
				return err
			}
			content := ""
			if d.Type().IsRegular() {
				data, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				content = string(data)
			}
			files[strings.TrimPrefix(p, dir)] = content
			return nil
		})
		if err != nil {
			e.t.Fatal(err)
		}
	}
	return files
}

// catFile is the content of one file of an image.
func (e *buildEnv) catFile(id digest.Digest, path string) string {
	e.t.Helper()
	content, ok := e.imageFiles(id)[path]
	if !ok {
		e.t.Fatalf("%s: no %s in any layer", id, path)
	}
	return content
}

// records is the store's build cache records by instruction.
func (e *buildEnv) records() map[string]cache.CachedStep {
	e.t.Helper()
	recs, err := e.store.CacheRecords()
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]cache.CachedStep{}
	for _, r := range recs {
		out[r.Inputs.Instruction] = r
	}
	return out
}

// cachedSteps are the numbers of the steps (of single-stage builds) the
// plain progress says were cached: "#4 [3/8] COPY …" then "#4 CACHED".
func cachedSteps(plain string) []string {
	var out []string
	steps := map[string]string{}
	for _, line := range strings.Split(plain, "\n") {
		id, rest, _ := strings.Cut(line, " ")
		if rest == "CACHED" {
			out = append(out, steps[id])
		} else if n, _, ok := strings.Cut(strings.TrimPrefix(rest, "["), "/"); ok && strings.HasPrefix(rest, "[") {
			steps[id] = strings.TrimSpace(n)
		}
	}
	return out
}
