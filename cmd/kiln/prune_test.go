package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCacheExportImport: cache exported from one store makes an empty
// store's build all hits, and the same image.
func TestCacheExportImport(t *testing.T) {
	a := newEnv(t)
	a.importBase("localhost/bb:latest")
	ctx := writeContext(t, map[string]string{
		"Dockerfile": "FROM localhost/bb:latest\nCOPY app /app\nRUN echo built > /app/out\nWORKDIR /srv\nCMD [\"cat\", \"/app/out\"]\n",
		"app/main":   "main\n",
	})
	dir := t.TempDir()
	id := strings.TrimSpace(a.kiln("build", "-q", "--cache-to", "type=local,dest="+dir, ctx))
	// Export is incremental: a second export adds nothing and still works.
	a.kiln("build", "-q", "--cache-to", "type=local,dest="+dir, ctx)

	// The fresh machine gets the same base image (as a pull would give it).
	baseArchive := filepath.Join(t.TempDir(), "base.tar")
	a.kiln("save", "-o", baseArchive, "localhost/bb:latest")
	b := &env{t: t, root: t.TempDir()}
	b.kiln("load", "-i", baseArchive)
	r := b.run("", "build", "--explain-cache", "--cache-from", "type=local,src="+dir, ctx)
	if r.code != 0 {
		t.Fatalf("build from imported cache: %s", r.stderr)
	}
	if strings.Contains(r.stderr, "cache miss") || strings.Count(r.stderr, "cache hit") != 3 {
		t.Errorf("want three hits and no miss:\n%s", r.stderr)
	}
	if got := strings.TrimSpace(b.kiln("images", "-q", "--no-trunc")); !strings.Contains(got, id) {
		t.Errorf("imported build made %s, want %s", got, id)
	}
	// A failing export only warns.
	bad := filepath.Join(t.TempDir(), "file")
	os.WriteFile(bad, nil, 0o644)
	r = b.run("", "build", "-q", "--cache-to", "type=local,dest="+bad, ctx)
	if r.code != 0 || !strings.Contains(r.stderr, "warning: export build cache") {
		t.Errorf("failed export: exit %d, %q", r.code, r.stderr)
	}
}

// du is the disk usage of dir in bytes, as du(1) measures it.
func du(t *testing.T, dir string) int64 {
	t.Helper()
	out, err := exec.Command("du", "-s", "-B1", dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.Fields(string(out))[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var reclaimed = func(out string) int64 {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "Total reclaimed space: "); ok {
			return parseHuman(v)
		}
	}
	return -1
}

// parseHuman reads humanSize's output back (3 significant digits).
func parseHuman(s string) int64 {
	units := []struct {
		suffix string
		mult   float64
	}{{"PB", 1e15}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}, {"B", 1}}
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return -1
			}
			return int64(f * u.mult)
		}
	}
	return -1
}

// TestBuilderPrune: prune frees what it says it frees (measured with du),
// keeps what images use unless -a, and honours --keep-storage.
func TestBuilderPrune(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB per file
	ctx := writeContext(t, map[string]string{
		"Dockerfile": "FROM localhost/bb:latest\nCOPY a /a\nRUN cp /a /b\n",
		"a":          big,
	})
	// A build whose image is removed: its cache is dangling.
	e.kiln("build", "-q", "-t", "gone", ctx)
	e.kiln("rmi", "gone")
	// A build whose image stays.
	ctx2 := writeContext(t, map[string]string{"Dockerfile": "FROM localhost/bb:latest\nCOPY c /c\n", "c": big + "c"})
	e.kiln("build", "-q", "-t", "kept", ctx2)

	df := e.kiln("system", "df")
	if !strings.Contains(df, "Build Cache") || !strings.Contains(df, "Images") {
		t.Errorf("system df:\n%s", df)
	}
	before := du(t, e.root)
	out := e.kiln("builder", "prune", "-f")
	freed := reclaimed(out)
	after := du(t, e.root)
	if got := before - after; freed < 2<<20 || abs(got-freed) > freed/100+8192 {
		t.Errorf("prune said %d bytes freed, du says %d\n%s", freed, got, out)
	}
	// The kept image's layers are still there, and its cache record too.
	r := e.run("", "build", "--explain-cache", "-t", "kept", ctx2)
	if !strings.Contains(r.stderr, "cache hit") {
		t.Errorf("prune without -a removed the cache of a kept image:\n%s", r.stderr)
	}
	// --keep-storage 1GB keeps everything; -a then removes the rest.
	if out := e.kiln("builder", "prune", "-f", "-a", "--keep-storage", "1GB"); !strings.Contains(out, "Deleted build cache objects: 0") {
		t.Errorf("keep-storage 1GB: %s", out)
	}
	if out := e.kiln("builder", "prune", "-f", "-a"); !strings.Contains(out, "Deleted build cache objects: 1") {
		t.Errorf("prune -a: %s", out)
	}
	if r := e.run("", "build", "--explain-cache", "-t", "kept", ctx2); !strings.Contains(r.stderr, "cache miss") {
		t.Errorf("after prune -a the step still hit:\n%s", r.stderr)
	}
	// --filter until: nothing is old enough.
	if out := e.kiln("builder", "prune", "-f", "-a", "--filter", "until=1h"); !strings.Contains(out, "Deleted build cache objects: 0") {
		t.Errorf("until=1h: %s", out)
	}
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// TestPruneRacingBuild: a prune started while a build runs waits for it and
// never removes what the build uses.
func TestPruneRacingBuild(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM localhost/bb:latest\nCOPY f /f\nRUN sleep 1 && cat /f > /g\nRUN cat /g\n", "f": "x\n"})
	self, _ := os.Executable()
	build := exec.Command(self, "--root", e.root, "build", "-q", "-t", "raced", ctx)
	build.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
	if err := build.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the build is in its sleep, its COPY layer cached
	prune := exec.Command(self, "--root", e.root, "builder", "prune", "-f", "-a")
	prune.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
	pruneOut, perr := prune.CombinedOutput()
	if err := build.Wait(); err != nil {
		t.Fatalf("build beside a prune failed: %v", err)
	}
	if perr != nil {
		t.Fatalf("prune: %v\n%s", perr, pruneOut)
	}
	if !strings.Contains(string(pruneOut), "waiting for running kiln commands") {
		t.Logf("prune did not have to wait:\n%s", pruneOut)
	}
	// The image is whole: it saves (every layer regenerates to its diffID).
	e.kiln("save", "-o", filepath.Join(t.TempDir(), "raced.tar"), "raced")
}
