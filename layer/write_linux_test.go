package layer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestWrite(t *testing.T) {
	root := richTree(t)
	plain := writeDiffBytes(t, root, DiffOptions{})
	for _, c := range []Compression{Uncompressed, Gzip, Zstd} {
		t.Run(string(c), func(t *testing.T) {
			var blobs [2][]byte
			for i := range blobs {
				var buf bytes.Buffer
				res, err := Write(context.Background(), &buf, root, c, DiffOptions{})
				must(t, err)
				blobs[i] = buf.Bytes()
				if res.Digest != digest.FromBytes(buf.Bytes()) || res.CompressedSize != int64(buf.Len()) {
					t.Errorf("digest %s size %d, blob has %s size %d", res.Digest, res.CompressedSize, digest.FromBytes(buf.Bytes()), buf.Len())
				}
				if res.DiffID != digest.FromBytes(plain) || res.Size != int64(len(plain)) {
					t.Errorf("diffID %s size %d, tar has %s size %d", res.DiffID, res.Size, digest.FromBytes(plain), len(plain))
				}
				if res.MediaType != c.MediaType() {
					t.Errorf("media type %q", res.MediaType)
				}
				if c == Uncompressed && res.Digest != res.DiffID {
					t.Error("uncompressed digest differs from diffID")
				}
			}
			if !bytes.Equal(blobs[0], blobs[1]) {
				t.Fatal("two Write runs produced different blobs")
			}
			r, got, err := Decompress(bytes.NewReader(blobs[0]))
			must(t, err)
			tarData, err := io.ReadAll(r)
			must(t, err)
			if got != c || !bytes.Equal(tarData, plain) {
				t.Fatalf("blob decompresses (as %s) to something else than the tar", got)
			}
		})
	}
}

type failingWriter struct{ after int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after -= len(p); f.after < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestWriteErrors(t *testing.T) {
	root := richTree(t)
	for _, c := range []Compression{Uncompressed, Gzip, Zstd} {
		if _, err := Write(context.Background(), &failingWriter{after: 1000}, root, c, DiffOptions{}); err == nil {
			t.Errorf("%s: a failing destination must fail Write", c)
		}
		if _, err := Write(context.Background(), io.Discard, filepath.Join(root, "missing"), c, DiffOptions{}); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: err = %v, want ErrNotExist", c, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Write(ctx, io.Discard, root, c, DiffOptions{}); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: err = %v, want context.Canceled", c, err)
		}
	}
	if _, err := Write(context.Background(), io.Discard, root, Bzip2, DiffOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bzip2: err = %v, want ErrInvalid", err)
	}
}

// benchTree writes about 64 MiB in 4000 files of mixed sizes, plus one
// large file, with text-like contents.
func benchTree(b *testing.B) (string, int64) {
	b.Helper()
	root := b.TempDir()
	data := sample()
	var total int64
	for i := 0; i < 4000; i++ {
		size := (i * 7919) % (16 << 10)
		off := (i * 104729) % (len(data) - size)
		p := filepath.Join(root, fmt.Sprintf("d%02d/s%02d/f%04d", i%40, i%7, i))
		must(b, os.MkdirAll(filepath.Dir(p), 0o755))
		must(b, os.WriteFile(p, data[off:off+size], 0o644))
		total += int64(size)
	}
	f, err := os.Create(filepath.Join(root, "large"))
	must(b, err)
	for total < 64<<20 {
		n, err := f.Write(data)
		must(b, err)
		total += int64(n)
	}
	must(b, f.Close())
	return root, total
}

func BenchmarkWrite(b *testing.B) {
	root, total := benchTree(b)
	for _, c := range []Compression{Uncompressed, Gzip, Zstd} {
		b.Run(string(c), func(b *testing.B) {
			b.SetBytes(total)
			for b.Loop() {
				if _, err := Write(context.Background(), io.Discard, root, c, DiffOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
