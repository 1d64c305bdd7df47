package builder

import (
	"archive/tar"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/moby/patternmatcher"
	"github.com/opencontainers/go-digest"
)

// walkReference is the plain recursive walk walkSource must equal: os.ReadDir
// order, os.Lstat's FileInfo, exclusions as .dockerignore has them.
func walkReference(t *testing.T, dir, rel string, ig *ignorer) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		host := filepath.Join(dir, e.Name())
		childRel := path.Join(rel, e.Name())
		x, descend := ig.check(host, e.IsDir())
		if x && !descend {
			continue
		}
		info, err := os.Lstat(host)
		if err != nil {
			t.Fatal(err)
		}
		link, _ := os.Readlink(host)
		desc := fmt.Sprintf("%s %s %v %d %v %s", host, childRel, info.Mode(), info.Size(), info.ModTime(), link)
		mark := len(out)
		if !x {
			out = append(out, desc)
		}
		if e.IsDir() {
			out = append(out, walkReference(t, host, childRel, ig)...)
			if x && len(out) > mark {
				out = append(out[:mark], append([]string{desc}, out[mark:]...)...)
			}
		}
	}
	return out
}

// TestWalkSource: the parallel walk lists what a plain recursive walk
// lists, in its order, with the same file information, exceptions of an
// excluded directory bringing back their parent.
func TestWalkSource(t *testing.T) {
	ctx := t.TempDir()
	src := filepath.Join(ctx, "src")
	for i := range 30 {
		dir := filepath.Join(src, fmt.Sprintf("d%d", i%7), fmt.Sprintf("e%d", i%3))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d.go", i)), []byte(fmt.Sprint(i)), 0o600)
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d.txt", i)), []byte("t"), 0o755)
	}
	os.MkdirAll(filepath.Join(src, "a.b", "c"), 0o700)
	os.WriteFile(filepath.Join(src, "a"), nil, 0o644)
	os.Symlink("../../etc/passwd", filepath.Join(src, "d1", "up"))
	os.Symlink("d2", filepath.Join(src, "d2link"))
	os.Chmod(filepath.Join(src, "d3"), 0o2775|os.ModeSetgid)
	info, err := os.Lstat(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, patterns := range [][]string{nil, {"src/d1", "**/*.txt"}, {"src/d*", "!src/d4/e1/f*.go"}, {"src/d2link", "src/a.b/c"}} {
		var ig *ignorer
		if patterns != nil {
			pm, err := patternmatcher.New(patterns)
			if err != nil {
				t.Fatal(err)
			}
			ig = &ignorer{root: ctx, pm: pm}
		}
		files, err := walkSource(source{path: src, info: info}, ig)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range files {
			if f.fi().Sys() == nil || f.fi().Name() != path.Base(f.rel) {
				t.Errorf("%s: FileInfo name %q, sys %v", f.rel, f.fi().Name(), f.fi().Sys())
			}
			// archive/tar reads the stat through Sys: the same header as from os.Lstat.
			osInfo, err := os.Lstat(f.host)
			if err != nil {
				t.Fatal(err)
			}
			h1, err1 := tar.FileInfoHeader(f.fi(), f.symlink())
			h2, err2 := tar.FileInfoHeader(osInfo, f.symlink())
			if err1 == nil && err2 == nil {
				h1.AccessTime, h2.AccessTime = time.Time{}, time.Time{} // reading a directory moves it
			}
			if err1 != nil || err2 != nil || !reflect.DeepEqual(h1, h2) {
				t.Errorf("%s: tar header %+v (%v), from os.Lstat %+v (%v)", f.rel, h1, err1, h2, err2)
			}
			got = append(got, fmt.Sprintf("%s %s %v %d %v %s", f.host, f.rel, f.fi().Mode(), f.fi().Size(), f.fi().ModTime(), f.symlink()))
		}
		if want := walkReference(t, src, "", ig); !reflect.DeepEqual(got, want) {
			t.Errorf("%v: walk\n%q\nwant\n%q", patterns, got, want)
		}
	}
}

// BenchmarkWalkSource is the walk of a COPY's sources: 2,000 files in 20
// directories, listed with their stat and ordered.
func BenchmarkWalkSource(b *testing.B) {
	ctx, _ := benchContext(b, 20, 100, 16)
	src := benchSource(b, ctx)
	for b.Loop() {
		if _, err := walkSource(src); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCopyKey is what a cached COPY computes from its walked files:
// the key (streamed) and, on a miss, the file list's digest.
func BenchmarkCopyKey(b *testing.B) {
	ctx, _ := benchContext(b, 20, 100, 16)
	files, err := walkSource(benchSource(b, ctx))
	if err != nil {
		b.Fatal(err)
	}
	for i, f := range files {
		f.setSum(sha256.Sum256([]byte(fmt.Sprint(i))))
	}
	for b.Loop() {
		hole := newHole()
		stepKeyStreaming(digest.FromString("parent"), holeValue(hole), hole, func(w io.Writer) {
			writeKeySources(w, []keySource{{Name: "src", Base: "src", Dir: true, Files: files}})
		})
		listingDigest(newContextListing(ctx, files))
	}
}

// TestContextFileSize: a COPY of 100,000 files holds 100,000 of these until
// its layer is made; on a 64-bit machine each fits the 144-byte size class.
func TestContextFileSize(t *testing.T) {
	if size := unsafe.Sizeof(contextFile{}); unsafe.Sizeof(uintptr(0)) == 8 && size > 144 {
		t.Errorf("contextFile is %d bytes, want at most 144", size)
	}
}
