package builder

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest/storetest"
	"github.com/kiln-build/kiln/layer"
)

// benchContext is a build context directory of dirs×per files of size bytes.
func benchContext(b *testing.B, dirs, per, size int) (string, int64) {
	b.Helper()
	root := b.TempDir()
	data := make([]byte, size)
	for d := range dirs {
		dir := filepath.Join(root, "src", fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range per {
			rand.Read(data)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", f)), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	return root, int64(dirs * per * size)
}

func benchSource(b *testing.B, ctx string) source {
	b.Helper()
	p := filepath.Join(ctx, "src")
	info, err := os.Lstat(p)
	if err != nil {
		b.Fatal(err)
	}
	return source{path: p, base: "src", name: "src", info: info}
}

// BenchmarkHashFiles is the hasher of a COPY's sources with an empty stat
// cache (a first build): the walk and the parallel sha256 of every file.
func BenchmarkHashFiles(b *testing.B) {
	ctx, total := benchContext(b, 20, 100, 8<<10)
	s := storetest.OpenStore(b)
	src := benchSource(b, ctx)
	b.SetBytes(total)
	for b.Loop() {
		files, err := walkSource(src)
		if err != nil {
			b.Fatal(err)
		}
		if err := hashFiles(files, s.StatCache(b.TempDir())); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCopyPlan is the copier: a COPY of a directory of small files
// into a root filesystem, hashing on the way as a cold build does.
func BenchmarkCopyPlan(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("COPY gives files to root: needs root")
	}
	ctx, total := benchContext(b, 20, 100, 8<<10)
	src := benchSource(b, ctx)
	b.SetBytes(total)
	for b.Loop() {
		dst, r := benchCopy(b, src, false)
		b.StopTimer()
		r.Close()
		os.RemoveAll(dst)
		b.StartTimer()
	}
}

// benchCopy copies src into a fresh root filesystem as a cold COPY to /src
// does (timed from the placing of the item; streamed: with its layer tar
// hashed on the way) and returns the root filesystem, still open.
func benchCopy(b *testing.B, src source, streamed bool) (string, *rootfs) {
	b.StopTimer()
	dst, err := os.MkdirTemp(b.TempDir(), "rootfs")
	if err != nil {
		b.Fatal(err)
	}
	files, err := walkSource(src) // fresh: no digests known
	if err != nil {
		b.Fatal(err)
	}
	r, err := openRootfs(dst)
	if err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	it, err := placeItem(r, copyItem{src: src, files: files}, "/src", true, false, ids{}, fileMode{})
	if err != nil {
		b.Fatal(err)
	}
	plan := copyPlan{items: []copyItem{it}, stream: streamed}
	if err := plan.apply(context.Background(), r); err != nil {
		b.Fatal(err)
	}
	return dst, r
}

// BenchmarkCopyLayer is a cold COPY and its layer's diffID: "streamed"
// hashes the layer tar while copying and checks the result's headers
// (layer.StreamDiff), "diffed" reads the result back (layer.Write).
func BenchmarkCopyLayer(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("COPY gives files to root: needs root")
	}
	ctx, total := benchContext(b, 20, 100, 8<<10)
	src := benchSource(b, ctx)
	for _, streamed := range []bool{true, false} {
		b.Run(map[bool]string{true: "streamed", false: "diffed"}[streamed], func(b *testing.B) {
			b.SetBytes(total)
			for b.Loop() {
				dst, r := benchCopy(b, src, streamed)
				ok, err := false, error(nil)
				if r.streamed != nil {
					_, ok, err = r.streamed.Verify(context.Background(), dst)
					r.streamed.Close()
				}
				if err == nil && !ok {
					_, err = layer.Write(context.Background(), io.Discard, dst, layer.Uncompressed, layer.DiffOptions{})
				}
				if err != nil || ok != streamed {
					b.Fatalf("layer: streamed %v, err %v", ok, err)
				}
				b.StopTimer()
				r.Close()
				os.RemoveAll(dst)
				b.StartTimer()
			}
		})
	}
}

// BenchmarkCopyExistingLayer is a --no-cache re-run of a COPY whose layer
// the store has: the layer tar is streamed from the sources, nothing
// written, and checked against the existing snapshot's metadata.
func BenchmarkCopyExistingLayer(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("COPY gives files to root: needs root")
	}
	ctx, total := benchContext(b, 20, 100, 8<<10)
	src := benchSource(b, ctx)
	store := storetest.OpenStore(b)
	sn, err := store.NewSnapshot()
	if err != nil {
		b.Fatal(err)
	}
	made := benchPlace(b, sn.Dir, src)
	made.plan.stream = true
	if err := made.plan.apply(context.Background(), made.r); err != nil {
		b.Fatal(err)
	}
	made.r.Close()
	l, err := store.CommitStreamed(context.Background(), sn, made.r.streamed)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	for b.Loop() {
		b.StopTimer()
		dst, err := os.MkdirTemp(b.TempDir(), "rootfs")
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		re := benchPlace(b, dst, src)
		re.plan.stream, re.plan.known, re.plan.likely = true, store, l.DiffID
		if err := re.plan.apply(context.Background(), re.r); err != nil {
			b.Fatal(err)
		}
		if re.r.existing == nil || re.r.existing.DiffID != l.DiffID {
			b.Fatalf("the existing layer %s was not found", l.DiffID)
		}
		b.StopTimer()
		re.r.Close()
		os.RemoveAll(dst)
		b.StartTimer()
	}
}

type placed struct {
	r    *rootfs
	plan copyPlan
}

// benchPlace lists src afresh (no digests known), opens dir as a root
// filesystem and places src at /src in it, as a COPY to /src does.
func benchPlace(b *testing.B, dir string, src source) placed {
	files, err := walkSource(src)
	if err != nil {
		b.Fatal(err)
	}
	r, err := openRootfs(dir)
	if err != nil {
		b.Fatal(err)
	}
	it, err := placeItem(r, copyItem{src: src, files: files}, "/src", true, false, ids{}, fileMode{})
	if err != nil {
		b.Fatal(err)
	}
	return placed{r: r, plan: copyPlan{items: []copyItem{it}}}
}
