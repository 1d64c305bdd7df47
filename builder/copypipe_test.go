package builder

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// The chunked pipe hands over every byte in order, whatever the sizes of
// the writes and reads (smaller, equal to and larger than a chunk, and more
// than all chunks together), then the writer's end.
func TestChunkPipeOrder(t *testing.T) {
	data := make([]byte, 5*chunkPipeSize*chunkPipeDepth/2+123)
	rand.Read(data)
	p := newChunkPipe()
	go func() {
		rest := data
		for i := 0; len(rest) > 0; i++ {
			n := min(len(rest), []int{1, 511, chunkPipeSize, 3*chunkPipeSize + 7, 4096}[i%5])
			if _, err := p.Write(rest[:n]); err != nil {
				p.CloseWithError(err)
				return
			}
			rest = rest[n:]
		}
		p.CloseWithError(nil)
	}()
	var got bytes.Buffer
	buf := make([]byte, 777)
	for {
		n, err := p.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("read %d bytes, not the %d written", got.Len(), len(data))
	}
}

// A writer's error reaches the reader after what was written before it.
func TestChunkPipeWriterError(t *testing.T) {
	p := newChunkPipe()
	boom := errors.New("boom")
	go func() {
		p.Write([]byte("abc"))
		p.CloseWithError(boom)
	}()
	got, err := io.ReadAll(p)
	if !errors.Is(err, boom) {
		t.Fatalf("read error %v, want %v", err, boom)
	}
	if string(got) != "" && string(got) != "abc" {
		t.Fatalf("read %q", got)
	}
}

// Once the reader gives up, the writer stops with the reader's error
// instead of blocking for ever on full chunks.
func TestChunkPipeReaderClose(t *testing.T) {
	p := newChunkPipe()
	stop := errors.New("apply failed")
	p.CloseReader(stop)
	p.CloseReader(errors.New("second")) // the first error counts
	big := make([]byte, chunkPipeSize)
	var err error
	for i := 0; i <= chunkPipeDepth && err == nil; i++ {
		_, err = p.Write(big)
	}
	if !errors.Is(err, stop) {
		t.Fatalf("write error %v, want %v", err, stop)
	}
}

// copySource writes a context file's bytes and learns its digest on the way,
// for empty files, files of a read buffer exactly and files larger than it.
func TestCopySource(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{0, 1, 4096, 1 << 20, 1<<20 + 1, 3 << 20} {
		data := make([]byte, size)
		rand.Read(data)
		f := writeContextFile(t, dir, data)
		var out bytes.Buffer
		if err := (&copyPlan{}).copySource(&out, f, int64(size)); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("size %d: wrote %d bytes", size, out.Len())
		}
		if want := digest.FromBytes(data); f.digest() != want {
			t.Fatalf("size %d: digest %s, want %s", size, f.digest(), want)
		}
	}
}

// A source that grew since it was listed fails with an error naming it
// instead of being cut to the listed size; one that was replaced by a
// symlink is not followed.
func TestCopySourceChanged(t *testing.T) {
	dir := t.TempDir()
	f := writeContextFile(t, dir, []byte("0123456789"))
	if err := (&copyPlan{}).copySource(io.Discard, f, 4); err == nil {
		t.Fatal("a file larger than listed was copied")
	}
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(f.host); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, f.host); err != nil {
		t.Fatal(err)
	}
	err := (&copyPlan{}).copySource(io.Discard, f, 1)
	if !errors.Is(err, unix.ELOOP) {
		t.Fatalf("a symlink put in place of a source: error %v, want ELOOP", err)
	}
}

func writeContextFile(t *testing.T, dir string, data []byte) *contextFile {
	t.Helper()
	p, err := os.CreateTemp(dir, "f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write(data); err != nil {
		t.Fatal(err)
	}
	p.Close()
	info, err := os.Lstat(p.Name())
	if err != nil {
		t.Fatal(err)
	}
	f, err := statFile(p.Name(), "", info)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
