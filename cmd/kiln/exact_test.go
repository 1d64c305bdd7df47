package main

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/layer"
)

// The exactness cases of testdata/exact: each folder holds ctx/ (a Dockerfile
// and its context), optional build-args and expected/, which BuildKit v0.34.2
// (../shared/oracle/buildkit.sh) produced from the same Dockerfile on the
// same base image: layers.txt lists every entry of every layer the build
// made, with its mtime as a class (the context's files and directories get
// fixed, distinct times before the build), and config.json the config and
// history. An optional deviations file lists the lines where kiln is meant
// to differ from BuildKit (see applyDeviations).
//
// To re-record expected/ with the oracle:
//
//	KILN_RECORD_BUILDKIT=1 go test ./cmd/kiln -run TestBuildMatchesBuildKit
const (
	ctxFileTime = 900000000  // mtime of every file of a case's context
	ctxDirTime  = 1000000000 // mtime of every directory of a case's context
)

// oracleScript is the BuildKit v0.34.2 the expectations are recorded from.
const oracleScript = "/work/shared/oracle/buildkit.sh"

func TestBuildMatchesBuildKit(t *testing.T) {
	kilntest.RequireRoot(t)
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("needs skopeo (make deps installs it)")
	}
	cases, err := filepath.Glob("../../testdata/exact/*/ctx/Dockerfile")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no exactness cases: %v", err)
	}
	record := os.Getenv("KILN_RECORD_BUILDKIT") == "1"
	for _, df := range cases {
		dir := filepath.Dir(filepath.Dir(df))
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.importBase("localhost/bb:latest")
			work := t.TempDir()
			ctx := filepath.Join(work, "ctx")
			// Git keeps no hard links: a case's hardlinks file makes them
			// ("EXISTING NEW" a line, paths in the context).
			copyContext(t, filepath.Join(dir, "ctx"), ctx, readLines(t, filepath.Join(dir, "hardlinks")))
			buildArgs := readLines(t, filepath.Join(dir, "build-args"))
			if record {
				start := time.Now()
				out := oracleBuild(t, e, dir, ctx, work)
				layers, config := imageLayers(t, "oci-archive:"+out, work, start)
				layers = applyDeviations(t, filepath.Join(dir, "deviations"), layers)
				os.MkdirAll(filepath.Join(dir, "expected"), 0o755)
				writeFile(t, filepath.Join(dir, "expected", "layers.txt"), layers)
				writeFile(t, filepath.Join(dir, "expected", "config.json"), config)
			}
			args := []string{"build", "-q", "-t", "exact-" + name}
			for _, a := range buildArgs {
				args = append(args, "--build-arg", a)
			}
			start := time.Now()
			e.kiln(append(args, ctx)...)
			archive := filepath.Join(work, "image.tar")
			e.kiln("save", "--format", "oci", "-o", archive, "exact-"+name)
			layers, config := imageLayers(t, "oci-archive:"+archive, work, start)
			compareText(t, "layers", readFile(t, filepath.Join(dir, "expected", "layers.txt")), layers)
			compareText(t, "config", readFile(t, filepath.Join(dir, "expected", "config.json")), config)
		})
	}
}

// applyDeviations replaces, in what the oracle recorded, the lines where
// kiln is meant to differ from BuildKit (the "where kiln is better"
// list). The file holds "ORACLE LINE => KILN LINE" rows (" +++ " parts
// the kiln lines when one becomes several), each after a comment saying why; a row whose oracle line is missing fails, so that a
// BuildKit that changed is noticed.
func applyDeviations(t *testing.T, file, text string) string {
	t.Helper()
	for _, row := range readLines(t, file) {
		from, to, ok := strings.Cut(row, " => ")
		if !ok {
			t.Fatalf("%s: %q is not ORACLE => KILN", file, row)
		}
		lines := strings.Split(text, "\n")
		found := false
		for i, l := range lines {
			if strings.TrimSpace(l) == from {
				indent := l[:len(l)-len(strings.TrimLeft(l, " "))]
				var repl []string
				for _, r := range strings.Split(strings.TrimSpace(to), " +++ ") {
					repl = append(repl, indent+r)
				}
				lines[i] = strings.Join(repl, "\n")
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("%s: the oracle no longer wrote %q", file, from)
		}
		text = strings.Join(lines, "\n")
	}
	return text
}

// oracleBuild builds the context ctx of the case in dir (its build-args)
// with BuildKit v0.34.2 on the store's localhost/bb:latest, and returns the
// OCI archive it wrote.
func oracleBuild(t *testing.T, e *env, dir, ctx, work string) string {
	t.Helper()
	if _, err := os.Stat(oracleScript); err != nil {
		t.Fatalf("recording needs the BuildKit oracle %s: %v", oracleScript, err)
	}
	bb := filepath.Join(work, "bb.tar")
	e.kiln("save", "--format", "oci", "-o", bb, "localhost/bb:latest")
	out := filepath.Join(work, "oracle.tar")
	args := []string{"build", "--image", "localhost/bb:latest=" + bb, "-o", out}
	for _, a := range readLines(t, filepath.Join(dir, "build-args")) {
		args = append(args, "--build-arg", a)
	}
	if b, err := exec.Command(oracleScript, append(args, ctx)...).CombinedOutput(); err != nil {
		t.Fatalf("oracle: %v\n%s", err, b)
	}
	return out
}

// TestReproducibleCopyLayers: two --no-cache builds more than a second apart
// give the same layers from COPY (a directory COPY creates takes the source
// directory's time, not the build's), hence the same image but for its
// created times.
func TestReproducibleCopyLayers(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	ctx := writeContext(t, map[string]string{
		// Only destinations whose parents exist: like BuildKit, kiln gives
		// the parents it creates the build's time.
		"Dockerfile": "FROM localhost/bb:latest\nCOPY src /src\nCOPY src /home/app/\nCOPY --chmod=750 src /moded/\nWORKDIR /tmp\n",
		"src/f":      "content\n",
		"src/sub/h":  "h\n",
	})
	layers := func() string {
		id := strings.TrimSpace(e.kiln("build", "-q", "--no-cache", ctx))
		return e.kiln("inspect", "--format", "{{json .RootFS.Layers}}", id)
	}
	first := layers()
	// Past a second: whole-second tar times would differ by then.
	time.Sleep(1100 * time.Millisecond)
	if second := layers(); first != second {
		t.Errorf("COPY layers differ between two --no-cache builds:\n%s\n%s", first, second)
	}
}

// copyContext copies a case's context to dst, adds the hard links given
// ("EXISTING NEW" in the context), and gives every file mtime
// ctxFileTime and every directory with ctxDirTime, so that layers can tell
// which times came from the context.
func copyContext(t *testing.T, src, dst string, links []string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	for _, l := range links {
		from, to, _ := strings.Cut(l, " ")
		if err := os.Link(filepath.Join(dst, from), filepath.Join(dst, to)); err != nil {
			t.Fatal(err)
		}
	}
	var dirs []string
	err := filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p) // after their contents
			return nil
		}
		ts := []unix.Timespec{{Sec: ctxFileTime}, {Sec: ctxFileTime}}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
	for i := len(dirs) - 1; i >= 0 && err == nil; i-- {
		ts := []unix.Timespec{{Sec: ctxDirTime}, {Sec: ctxDirTime}}
		err = unix.UtimesNanoAt(unix.AT_FDCWD, dirs[i], ts, 0)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// imageLayers lists the layers of the image at src (a skopeo reference) above
// the base image's, entry by entry, and returns them with the normalized
// config. Times are shown as classes: the context's, the base's (0), the
// build's (since start), or the time itself.
func imageLayers(t *testing.T, src, work string, start time.Time) (layers, config string) {
	t.Helper()
	layout := filepath.Join(work, "layout")
	os.RemoveAll(layout)
	defer os.RemoveAll(layout)
	mustRun(t, "skopeo", "copy", "--quiet", src, "oci:"+layout+":img")
	var idx ocispec.Index
	readJSON(t, filepath.Join(layout, "index.json"), &idx)
	var m ocispec.Manifest
	readJSON(t, filepath.Join(layout, "blobs", "sha256", idx.Manifests[0].Digest.Encoded()), &m)
	var b strings.Builder
	for i, l := range m.Layers[1:] { // the first is the base image's
		fmt.Fprintf(&b, "layer %d:\n", i+1)
		n := listLayer(t, &b, filepath.Join(layout, "blobs", "sha256", l.Digest.Encoded()), start)
		if n == 0 {
			b.WriteString("  (no files)\n")
		}
	}
	var raw map[string]json.RawMessage
	readJSON(t, filepath.Join(layout, "blobs", "sha256", m.Config.Digest.Encoded()), &raw)
	return b.String(), normalizeConfig(t, raw)
}

// listLayer writes one line per entry of a layer blob and returns how many.
func listLayer(t *testing.T, w io.Writer, blob string, start time.Time) int {
	t.Helper()
	f, err := os.Open(blob)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := layer.Decompress(f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tr := tar.NewReader(r)
	n := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		var extra string
		switch hdr.Typeflag {
		case tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			extra = fmt.Sprintf(" %d %q", len(data), truncate(string(data), 24))
		case tar.TypeSymlink:
			extra = " -> " + hdr.Linkname
		case tar.TypeLink:
			extra = " link to /" + strings.TrimPrefix(hdr.Linkname, "/")
		case tar.TypeChar, tar.TypeBlock:
			extra = fmt.Sprintf(" %d,%d", hdr.Devmajor, hdr.Devminor)
		}
		name := "/" + strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(hdr.Name, "./"), "/"), "/")
		fmt.Fprintf(w, "  %s %c%04o %d:%d%s mtime=%s\n", name, hdr.Typeflag, hdr.Mode&0o7777, hdr.Uid, hdr.Gid, extra, timeClass(hdr.ModTime, start))
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// timeClass names an mtime by where it came from.
func timeClass(mt, start time.Time) string {
	switch {
	case mt.Unix() == ctxFileTime:
		return "context-file"
	case mt.Unix() == ctxDirTime:
		return "context-dir"
	case mt.Unix() == 0:
		return "base"
	case !mt.Before(start.Add(-time.Second)) && mt.Before(time.Now().Add(time.Second)):
		return "build"
	}
	return mt.UTC().Format(time.RFC3339)
}
