package main

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

var explainLine = regexp.MustCompile(`^\[(\d+)/\d+\] (.*): cache (hit|miss)(?:: (.*))?$`)

// buildExplain builds ctx with --explain-cache and returns the steps that
// missed, with their reasons, and the image ID.
func (e *env) buildExplain(ctx string, args ...string) (misses map[string]string, id string) {
	e.t.Helper()
	r := e.run("", append(append([]string{"build", "--explain-cache", "-t", "matrix"}, args...), ctx)...)
	if r.code != 0 {
		e.t.Fatalf("build: %s", r.stderr)
	}
	misses = map[string]string{}
	for _, line := range strings.Split(r.stderr, "\n") {
		if m := explainLine.FindStringSubmatch(line); m != nil && m[3] == "miss" {
			misses[m[1]] = m[4]
		}
	}
	id = strings.TrimSpace(e.kiln("inspect", "--format", "{{.Id}}", "matrix"))
	return misses, id
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
	e := newEnv(t)
	baseTar := e.importBase("localhost/bb:latest")
	ctx := writeContext(t, map[string]string{
		"Dockerfile": "FROM localhost/bb:latest\nARG MODE=a\nCOPY a.txt /a.txt\nRUN cat /a.txt > /a.copy\nCOPY b/ /b/\nRUN echo $MODE > /mode\nLABEL x=1\n",
		"a.txt":      "a\n",
		"b/x":        "x\n",
	})
	first, id1 := e.buildExplain(ctx)
	if stepsOf(first) != "3,4,5,6" {
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
		args   []string
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
		{"change a copied dir's file", func() { write("b/x", "x2\n") }, nil, "5,6", map[string]string{"5": "file b/x changed"}},
		{"add a file to a copied dir", func() { write("b/y", "y\n") }, nil, "5,6", map[string]string{"5": "file b/y added"}},
		{"change the first source", func() { write("a.txt", "A\n") }, nil, "3,4,5,6", map[string]string{"3": "file a.txt changed", "4": "an earlier step changed"}},
		{"chmod", func() { os.Chmod(filepath.Join(ctx, "a.txt"), 0o600) }, nil, "3,4,5,6", map[string]string{"3": "file a.txt changed"}},
		{"build arg", func() {}, []string{"--build-arg", "MODE=b"}, "4,5,6", map[string]string{"4": `build arg MODE changed ("a" → "b")`}},
		{"label only", func() {
			write("Dockerfile", "FROM localhost/bb:latest\nARG MODE=a\nCOPY a.txt /a.txt\nRUN cat /a.txt > /a.copy\nCOPY b/ /b/\nRUN echo $MODE > /mode\nLABEL x=2\n")
		}, nil, "", nil},
		{"instruction", func() {
			write("Dockerfile", "FROM localhost/bb:latest\nARG MODE=a\nCOPY a.txt /a.txt\nRUN cat /a.txt > /a.copy2\nCOPY b/ /b/\nRUN echo $MODE > /mode\nLABEL x=2\n")
		}, nil, "4,5,6", map[string]string{"4": `instruction changed (was "RUN |1 MODE=a /bin/sh -c cat /a.txt > /a.copy # buildkit")`}},
		{"new base image", func() {
			// Same tag, other content: a new base digest re-runs everything.
			dir := t.TempDir()
			mustRun(t, "tar", "-C", dir, "-xf", baseTar)
			os.WriteFile(filepath.Join(dir, "etc", "motd"), []byte("new base\n"), 0o644)
			e.kiln("import", dir, "localhost/bb:latest")
		}, nil, "3,4,5,6", map[string]string{"3": "base image localhost/bb:latest changed"}},
	}
	for _, row := range rows {
		row.change()
		misses, _ := e.buildExplain(ctx, row.args...)
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
	_, a := e.buildExplain(ctx)
	_, b := e.buildExplain(ctx)
	if a != b || a == id1 {
		t.Errorf("cached rebuild gave %s then %s (first build %s)", a, b, id1)
	}
	// --no-cache and --no-cache-filter force misses.
	if misses, _ := e.buildExplain(ctx, "--no-cache"); stepsOf(misses) != "3,4,5,6" || misses["3"] != "--no-cache" {
		t.Errorf("--no-cache: %v", misses)
	}
	if misses, _ := e.buildExplain(ctx, "--no-cache-filter", "0"); stepsOf(misses) != "3,4,5,6" {
		t.Errorf("--no-cache-filter: %v", misses)
	}
}

// TestReproducibleBuilds: two --no-cache builds give one image digest with
// SOURCE_DATE_EPOCH; without it, everything but the created times.
func TestReproducibleBuilds(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	ctx := writeContext(t, map[string]string{
		"Dockerfile": "FROM localhost/bb:latest\nCOPY src /src\nRUN mkdir -p /out && cp /src/f /out/g && rm /bin/vi\nWORKDIR /work\nCMD [\"cat\", \"/out/g\"]\n",
		"src/f":      "content\n",
	})
	build := func(args ...string) string {
		return strings.TrimSpace(e.kiln(append(append([]string{"build", "-q", "--no-cache"}, args...), ctx)...))
	}
	a := build("--source-date-epoch", "1700000000")
	time.Sleep(1100 * time.Millisecond) // so that file times would differ
	b := build("--source-date-epoch", "1700000000")
	if a != b {
		t.Errorf("SOURCE_DATE_EPOCH builds differ: %s %s", a, b)
	}
	if got := e.kiln("inspect", "--format", "{{.Created}}", a); !strings.HasPrefix(got, "2023-11-14T22:13:20") {
		t.Errorf("created %q, want the epoch", got)
	}
	// Without it, COPY layers still match; only created times differ.
	ctx2 := writeContext(t, map[string]string{"Dockerfile": "FROM localhost/bb:latest\nCOPY src /src\nENV A=1\n", "src/f": "x\n"})
	layers := func() string {
		id := strings.TrimSpace(e.kiln("build", "-q", "--no-cache", ctx2))
		return e.kiln("inspect", "--format", "{{json .RootFS.Layers}}", id)
	}
	if l1, l2 := layers(), layers(); l1 != l2 {
		t.Errorf("COPY layers differ between two builds: %s %s", l1, l2)
	}
}
