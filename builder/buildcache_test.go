package builder

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// Moved from cmd/kiln/cache_test.go: they test the builder's cache, not the
// command line.

var explainLine = regexp.MustCompile(`^\[(\d+)/\d+\] (.*): cache (hit|miss)(?:: (.*))?$`)

// buildExplain builds with --explain-cache and returns the steps that
// missed, with their reasons, and the image ID.
func (e *buildEnv) buildExplain(opts Options) (misses map[string]string, id digest.Digest) {
	e.t.Helper()
	dockerfile, err := os.ReadFile(filepath.Join(e.ctx, "Dockerfile"))
	if err != nil {
		e.t.Fatal(err)
	}
	opts.Tags = []string{"matrix"}
	r := e.mustBuild(string(dockerfile), opts)
	misses = map[string]string{}
	for _, line := range strings.Split(r.explain, "\n") {
		if m := explainLine.FindStringSubmatch(line); m != nil && m[3] == "miss" {
			misses[m[1]] = m[4]
		}
	}
	return misses, r.id
}

func stepsOf(m map[string]string) string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}

// TestCacheInvalidationMatrix: each row makes one change and lists the steps
// that must run again, as with docker build.
func TestCacheInvalidationMatrix(t *testing.T) {
	e := newBuildEnv(t)
	e.importBase("localhost/bb:latest")
	e.write(map[string]string{
		"Dockerfile": "FROM localhost/bb:latest\nARG MODE=a\nCOPY a.txt /a.txt\nRUN cat /a.txt > /a.copy\nCOPY b/ /b/\nRUN echo $MODE > /mode\nLABEL x=1\n",
		"a.txt":      "a\n",
		"b/x":        "x\n",
	})
	ctx := e.ctx
	first, id1 := e.buildExplain(Options{})
	if stepsOf(first) != "2,3,4,5" {
		t.Fatalf("first build missed %v", first)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(ctx, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rows := []struct {
		name   string
		change func()
		args   map[string]string
		misses string
		reason map[string]string // step → substring of the explanation
	}{
		{"nothing", func() {}, nil, "", nil},
		{"touch mtime", func() {
			future := time.Now().Add(time.Hour)
			os.Chtimes(filepath.Join(ctx, "a.txt"), future, future)
		}, nil, "", nil},
		{"file no step copies", func() { write("unrelated.txt", "u") }, nil, "", nil},
		{"same content rewritten", func() { write("b/x", "x\n") }, nil, "", nil},
		{"change a copied dir's file", func() { write("b/x", "x2\n") }, nil, "4,5", map[string]string{"4": "file b/x changed"}},
		{"add a file to a copied dir", func() { write("b/y", "y\n") }, nil, "4,5", map[string]string{"4": "file b/y added"}},
		{"same size, mtime put back", func() {
			p := filepath.Join(ctx, "b/x")
			info, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			write("b/x", "x3\n")
			os.Chtimes(p, info.ModTime(), info.ModTime())
		}, nil, "4,5", map[string]string{"4": "file b/x changed"}},
		{"add a symlink", func() { os.Symlink("x", filepath.Join(ctx, "b/l")) }, nil, "4,5", map[string]string{"4": "file b/l added"}},
		{"symlink target", func() {
			os.Remove(filepath.Join(ctx, "b/l"))
			os.Symlink("y", filepath.Join(ctx, "b/l"))
		}, nil, "4,5", map[string]string{"4": "file b/l changed"}},
		{".dockerignore excludes a copied file", func() { write(".dockerignore", "b/y\n") }, nil, "4,5", map[string]string{"4": "file b/y removed"}},
		{"an ignored file changes", func() { write("b/y", "yy\n") }, nil, "", nil},
		{".dockerignore removed", func() { os.Remove(filepath.Join(ctx, ".dockerignore")) }, nil, "4,5", map[string]string{"4": "file b/y added"}},
		{"remove a file", func() { os.Remove(filepath.Join(ctx, "b/l")) }, nil, "4,5", map[string]string{"4": "file b/l removed"}},
		{"change the first source", func() { write("a.txt", "A\n") }, nil, "2,3,4,5", map[string]string{"2": "file a.txt changed", "3": "an earlier step changed"}},
		{"chmod", func() { os.Chmod(filepath.Join(ctx, "a.txt"), 0o600) }, nil, "2,3,4,5", map[string]string{"2": "file a.txt changed"}},
		{"build arg", func() {}, map[string]string{"MODE": "b"}, "3,4,5", map[string]string{"3": `build arg MODE changed ("a" → "b")`}},
		{"label only", func() {
			write("Dockerfile", "FROM localhost/bb:latest\nARG MODE=a\nCOPY a.txt /a.txt\nRUN cat /a.txt > /a.copy\nCOPY b/ /b/\nRUN echo $MODE > /mode\nLABEL x=2\n")
		}, nil, "", nil},
		{"instruction", func() {
			write("Dockerfile", "FROM localhost/bb:latest\nARG MODE=a\nCOPY a.txt /a.txt\nRUN cat /a.txt > /a.copy2\nCOPY b/ /b/\nRUN echo $MODE > /mode\nLABEL x=2\n")
		}, nil, "3,4,5", map[string]string{"3": `instruction changed (was "RUN |1 MODE=a /bin/sh -c cat /a.txt > /a.copy # buildkit")`}},
		{"new base image", func() {
			// Same tag, other content: a new base digest re-runs everything.
			if err := os.WriteFile(filepath.Join(e.baseDir, "etc", "motd"), []byte("new base\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			e.importDir(e.baseDir, "localhost/bb:latest")
		}, nil, "2,3,4,5", map[string]string{"2": "base image localhost/bb:latest changed"}},
	}
	for _, row := range rows {
		row.change()
		misses, _ := e.buildExplain(Options{BuildArgs: row.args})
		if got := stepsOf(misses); got != row.misses {
			t.Errorf("%s: re-ran steps %q, want %q (%v)", row.name, got, row.misses, misses)
		}
		for step, want := range row.reason {
			if !strings.Contains(misses[step], want) {
				t.Errorf("%s: step %s explained as %q, want it to say %q", row.name, step, misses[step], want)
			}
		}
	}
	// A fully cached build gives the very same image.
	write("Dockerfile", "FROM localhost/bb:latest\nARG MODE=a\nCOPY a.txt /a.txt\nRUN cat /a.txt > /a.copy\nCOPY b/ /b/\nRUN echo $MODE > /mode\nLABEL x=1\n")
	_, a := e.buildExplain(Options{})
	_, b := e.buildExplain(Options{})
	if a != b || a == id1 {
		t.Errorf("cached rebuild gave %s then %s (first build %s)", a, b, id1)
	}
	// --no-cache and --no-cache-filter force misses.
	if misses, _ := e.buildExplain(Options{NoCache: true}); stepsOf(misses) != "2,3,4,5" || misses["2"] != "--no-cache" {
		t.Errorf("--no-cache: %v", misses)
	}
	if misses, _ := e.buildExplain(Options{NoCacheFilter: []string{"0"}}); stepsOf(misses) != "2,3,4,5" {
		t.Errorf("--no-cache-filter: %v", misses)
	}
}

// TestReproducibleBuilds: two --no-cache builds give one image digest with
// SOURCE_DATE_EPOCH; without it, everything but the created times.
func TestReproducibleBuilds(t *testing.T) {
	e := newBuildEnv(t)
	e.importBase("localhost/bb:latest")
	df := "FROM localhost/bb:latest\nCOPY src /src\nRUN mkdir -p /out && cp /src/f /out/g && rm /bin/vi\nWORKDIR /work\nCMD [\"cat\", \"/out/g\"]\n"
	e.write(map[string]string{"src/f": "content\n"})
	epoch := time.Unix(1700000000, 0)
	build := func(df string, epoch *time.Time) digest.Digest {
		return e.mustBuild(df, Options{NoCache: true, SourceDateEpoch: epoch}).id
	}
	a := build(df, &epoch)
	time.Sleep(1100 * time.Millisecond) // so that file times would differ
	b := build(df, &epoch)
	if a != b {
		t.Errorf("SOURCE_DATE_EPOCH builds differ: %s %s", a, b)
	}
	if got := e.image(a).Created.UTC().Format(time.RFC3339Nano); !strings.HasPrefix(got, "2023-11-14T22:13:20") {
		t.Errorf("created %q, want the epoch", got)
	}
	// Without it, COPY layers still match; only created times differ.
	e.write(map[string]string{"src/f": "x\n"})
	layers := func() []digest.Digest {
		return e.image(build("FROM localhost/bb:latest\nCOPY src /src\nENV A=1\n", nil)).RootFS.DiffIDs
	}
	if l1, l2 := layers(), layers(); !slices.Equal(l1, l2) {
		t.Errorf("COPY layers differ between two builds: %s %s", l1, l2)
	}
}
