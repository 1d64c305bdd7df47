package layer

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"testing"
)

// BenchmarkHashWriter is the diffID hasher alone, fed as the tar writer feeds it.
func BenchmarkHashWriter(b *testing.B) {
	chunk := make([]byte, 256<<10)
	rand.Read(chunk)
	const total = 64 << 20
	b.SetBytes(total)
	for b.Loop() {
		hw := newHashWriter(io.Discard)
		for n := 0; n < total; n += len(chunk) {
			hw.Write(chunk)
		}
		must(b, hw.Close())
	}
}

// BenchmarkApply extracts a layer tar (benchTree's), as COPY and pull do.
// The differ and compression are BenchmarkWrite.
func BenchmarkApply(b *testing.B) {
	src, total := benchTree(b)
	var tarball bytes.Buffer
	_, err := Write(context.Background(), &tarball, src, Uncompressed, DiffOptions{})
	must(b, err)
	b.SetBytes(total)
	for b.Loop() {
		dst, err := os.MkdirTemp(b.TempDir(), "apply")
		must(b, err)
		if _, err := Apply(context.Background(), dst, bytes.NewReader(tarball.Bytes()), ApplyOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		must(b, os.RemoveAll(dst))
		b.StartTimer()
	}
}
